//! Syntactic rejections: types that can never migrate, recognized in the
//! token tree and reported with `syn::Error` at their span with a tailored
//! message. Everything else is left to the spanned `assert_migratable`
//! assertions (see `probe.rs`), whose trait carries the diagnostic.

use crate::ctxt::Ctxt;
use syn::{GenericArgument, PathArguments, ReturnType, Type};

/// Where a type appears: it decides the fix we suggest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Field,
    Argument,
    Reply,
}

impl Role {
    fn fix(self) -> &'static str {
        match self {
            Role::Field => "or mark the field `#[mobile(skip)]` to rebuild it on arrival",
            Role::Argument => {
                "a handler argument travels in a message: take an owned, serializable value"
            }
            Role::Reply => {
                "a reply travels back to the caller: return an owned, serializable value"
            }
        }
    }
}

/// What the checks found in one type.
#[derive(Default, Clone, Copy)]
pub(crate) struct Found {
    /// At least one error was reported.
    pub(crate) rejected: bool,
    /// A reference was among them (then a lifetime parameter on the type is
    /// the same mistake, not a second one).
    pub(crate) reference: bool,
    /// The rejected part makes the type `!Send` or `!Sync`.
    pub(crate) breaks_auto_traits: bool,
}

impl Found {
    pub(crate) fn merge(&mut self, other: Found) {
        self.rejected |= other.rejected;
        self.reference |= other.reference;
        self.breaks_auto_traits |= other.breaks_auto_traits;
    }
}

/// Reports every part of `ty` that cannot migrate.
pub(crate) fn check_type(cx: &mut Ctxt, ty: &Type, role: Role) -> Found {
    let mut found = Found::default();
    walk(cx, ty, role, &mut found);
    found
}

fn reject(cx: &mut Ctxt, found: &mut Found, tokens: &dyn quote::ToTokens, msg: String) {
    found.rejected = true;
    cx.push(syn::Error::new_spanned(tokens.to_token_stream(), msg));
}

fn walk(cx: &mut Ctxt, ty: &Type, role: Role, found: &mut Found) {
    match ty {
        Type::Ptr(_) => {
            found.breaks_auto_traits = true;
            let msg = format!(
                "a raw pointer cannot migrate: its address means nothing on another node; \
                 store an owned value (`Box<T>`, `Vec<T>`), {}",
                role.fix()
            );
            reject(cx, found, ty, msg);
        }
        Type::Reference(_) => {
            found.reference = true;
            let what = match role {
                Role::Field => "a mobile value must own its data",
                Role::Argument => "a handler argument travels in a message and must own its data",
                Role::Reply => "a reply travels back to the caller and must own its data",
            };
            let mut msg = format!(
                "a reference cannot migrate: {what}; use an owned type (`String` for `&str`, \
                 `Vec<T>` for `&[T]`, `T` for `&T`)"
            );
            if role == Role::Field {
                msg.push_str(", or mark the field `#[mobile(skip)]`");
            }
            reject(cx, found, ty, msg);
        }
        Type::ImplTrait(_) => {
            let msg = match role {
                Role::Reply => {
                    "an `impl Trait` reply cannot travel back to the caller: return a concrete, \
                     serializable type"
                }
                _ => {
                    "an `impl Trait` argument cannot travel in a message: take a concrete, \
                     serializable type"
                }
            };
            reject(cx, found, ty, msg.to_owned());
        }
        Type::BareFn(_) => {
            let msg = format!(
                "a function pointer cannot migrate: code never travels between nodes; use an enum \
                 naming the behaviour, {}",
                role.fix()
            );
            reject(cx, found, ty, msg);
        }
        Type::Array(a) => walk(cx, &a.elem, role, found),
        Type::Slice(s) => walk(cx, &s.elem, role, found),
        Type::Group(g) => walk(cx, &g.elem, role, found),
        Type::Paren(p) => walk(cx, &p.elem, role, found),
        Type::Tuple(t) => t.elems.iter().for_each(|e| walk(cx, e, role, found)),
        Type::Path(p) => {
            if let Some(q) = &p.qself {
                walk(cx, &q.ty, role, found);
            }
            let path = &p.path;
            let local = path.leading_colon.is_none()
                && path.segments.len() > 1
                && path
                    .segments
                    .first()
                    .is_some_and(|s| s.ident == "crate" || s.ident == "self" || s.ident == "super");
            if let Some(last) = path.segments.last() {
                let generic = !matches!(last.arguments, PathArguments::None);
                if !local {
                    if let Some((msg, auto)) = known(&last.ident.to_string(), generic, role) {
                        found.breaks_auto_traits |= auto;
                        reject(cx, found, ty, msg);
                        return;
                    }
                }
            }
            for seg in &path.segments {
                match &seg.arguments {
                    PathArguments::AngleBracketed(args) => {
                        for arg in &args.args {
                            if let GenericArgument::Type(t) = arg {
                                walk(cx, t, role, found);
                            }
                        }
                    }
                    PathArguments::Parenthesized(args) => {
                        args.inputs.iter().for_each(|t| walk(cx, t, role, found));
                        if let ReturnType::Type(_, t) = &args.output {
                            walk(cx, t, role, found);
                        }
                    }
                    PathArguments::None => {}
                }
            }
        }
        _ => {}
    }
}

/// Well-known types that never migrate, by last path segment. The generic
/// ones only match with generic arguments (a user's own `Cell` struct is not
/// `std::cell::Cell<T>`); a path starting with `crate::`, `self::` or
/// `super::` never matches. Returns the message and whether the type breaks
/// `Send`/`Sync`.
fn known(name: &str, generic: bool, role: Role) -> Option<(String, bool)> {
    let fix = role.fix();
    let field = role == Role::Field;
    let msg = match (name, generic) {
        ("Rc", true) => {
            return Some((
                format!(
                    "`Rc` is not `Send` and cannot migrate: use `Arc` (its value is copied, not \
                     shared, after a move), {fix}"
                ),
                true,
            ))
        }
        ("Weak", true) => {
            return Some((
                format!(
                    "a `Weak` pointer does not own its value and cannot migrate: store the value \
                     (or an `Arc`) itself, {fix}"
                ),
                true,
            ))
        }
        ("RefCell" | "Cell", true) => {
            return Some((
                format!(
                    "`{name}` is not `Sync` and cannot be part of a mobile actor: handlers get \
                     `&mut self`, so store the value directly without `{name}`, {fix}"
                ),
                true,
            ))
        }
        ("File", false) => {
            if field {
                "a `File` is an OS resource and cannot migrate: mark the field `#[mobile(skip)]` \
                 (e.g. `Option<File>`) and reopen it in `#[mobile(on_arrive)]`"
                    .to_owned()
            } else {
                format!(
                    "a `File` is an OS resource and cannot migrate: send its path instead; {fix}"
                )
            }
        }
        ("TcpStream" | "TcpListener" | "UdpSocket" | "UnixStream" | "UnixListener", false) => {
            if field {
                format!(
                    "a socket (`{name}`) is an OS resource and cannot migrate: mark the field \
                     `#[mobile(skip)]` (e.g. `Option<{name}>`) and reconnect in \
                     `#[mobile(on_arrive)]`"
                )
            } else {
                format!("a socket (`{name}`) is an OS resource and cannot migrate: send its address instead; {fix}")
            }
        }
        (
            "Sender"
            | "Receiver"
            | "SyncSender"
            | "UnboundedSender"
            | "UnboundedReceiver"
            | "WeakSender"
            | "WeakUnboundedSender",
            true,
        ) => format!(
            "channel ends (`{name}`) cannot migrate: keep a `Handle` to an actor instead, {fix}"
        ),
        ("JoinHandle", true) => format!(
            "a `JoinHandle` is bound to a task on this node and cannot migrate: make the task an \
             actor and keep its `Handle`, {fix}"
        ),
        _ => return None,
    };
    Some((msg, false))
}

/// A lifetime parameter on a mobile type or an actor.
pub(crate) fn lifetime_message() -> &'static str {
    "a mobile type cannot borrow: lifetime parameters are not allowed, as a migrating value \
     must own its data (use owned types such as `String` or `Vec<T>`)"
}
