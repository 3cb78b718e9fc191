//! Handler names that a `Handle` already answers to. The generated
//! request/reply methods are reached through `Deref` from `Handle<A>`, so
//! a method of `Handle` itself, or of a trait it implements, wins: a handler
//! named `id` would be unreachable (`handle.id()` is `Handle::id`).
//!
//! `mobility/tests/reserved_names.rs` includes this file and checks it
//! against `mobility/src/api/handle.rs`: a new public method or trait impl
//! on `Handle` fails that test until it is listed here.

/// The public methods of `Handle<A>` that take `self`.
pub(crate) const HANDLE_METHODS: &[&str] = &[
    "id",
    "node_id",
    "location",
    "with_timeout",
    "tell",
    "stop",
    "migrate",
    "monitor",
];

/// The traits `Handle<A>` implements, with their methods that take `self`:
/// those it implements itself, then the prelude's blanket ones it gets
/// (`ToOwned` through `Clone`, `Into`, `TryInto`).
pub(crate) const HANDLE_TRAITS: &[(&str, &[&str])] = &[
    ("Clone", &["clone", "clone_from"]),
    ("Debug", &["fmt"]),
    ("Deref", &["deref"]),
    ("Deserialize", &[]),
    ("Eq", &[]),
    ("Hash", &["hash"]),
    ("PartialEq", &["eq", "ne"]),
    ("Serialize", &["serialize"]),
    ("ToOwned", &["to_owned", "clone_into"]),
    ("Into", &["into"]),
    ("TryInto", &["try_into"]),
];

/// What a handler named `name` would be hidden by, as `Handle::id` or
/// `Clone::clone`.
pub(crate) fn hidden_by(name: &str) -> Option<String> {
    let name = name.strip_prefix("r#").unwrap_or(name);
    if HANDLE_METHODS.contains(&name) {
        return Some(format!("Handle::{name}"));
    }
    HANDLE_TRAITS
        .iter()
        .find(|(_, methods)| methods.contains(&name))
        .map(|(t, _)| format!("{t}::{name}"))
}

#[cfg(test)]
mod tests {
    use super::hidden_by;

    #[test]
    fn handle_methods_and_trait_methods_are_reserved() {
        assert_eq!(hidden_by("id").as_deref(), Some("Handle::id"));
        assert_eq!(hidden_by("stop").as_deref(), Some("Handle::stop"));
        assert_eq!(hidden_by("clone").as_deref(), Some("Clone::clone"));
        assert_eq!(hidden_by("into").as_deref(), Some("Into::into"));
        assert_eq!(hidden_by("add"), None);
        assert_eq!(hidden_by("get_id"), None);
    }
}
