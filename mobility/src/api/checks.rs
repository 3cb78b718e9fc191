//! What `#[mobile]` asserts of each type it makes travel, one trait per
//! place, so that a type that cannot migrate gets a message fitting where it
//! is: a field is skipped or made serializable, an argument or a reply is
//! replaced by a serializable value. (A type parameter is asserted
//! `Migratable` itself, whose message says to bound it.)
//!
//! Each trait holds exactly when the type is [`Migratable`]; only the
//! diagnostic differs. Users never name these traits, so they are hidden
//! (also from the blanket impls listed on every migratable type's page).

use crate::api::actor::Migratable;

/// A field of a `#[mobile]` struct or enum.
#[diagnostic::on_unimplemented(
    message = "the field's type `{Self}` cannot migrate with the actor",
    label = "this field is not migratable",
    note = "a migrating value must be serializable (serde Serialize + Deserialize), `Send` and own its data",
    note = "make the type serializable (for your own types: put `#[mobile]` on them), or mark the field `#[mobile(skip)]` to leave it behind and rebuild it on arrival"
)]
#[doc(hidden)]
pub trait MigratableField {}

#[doc(hidden)]
#[diagnostic::do_not_recommend]
impl<T: Migratable> MigratableField for T {}

/// An argument of a handler: it travels inside the message.
#[diagnostic::on_unimplemented(
    message = "the argument type `{Self}` cannot travel in a message to the actor",
    label = "this argument is not migratable",
    note = "a handler's arguments are serialized into its message, which may go to another node: they must be serializable (serde Serialize + Deserialize), `Send` and own their data",
    note = "make the type serializable (for your own types: put `#[mobile]` on them), or take a serializable value that names it (an id, a path, an address)"
)]
#[doc(hidden)]
pub trait MigratableArgument {}

#[doc(hidden)]
#[diagnostic::do_not_recommend]
impl<T: Migratable> MigratableArgument for T {}

/// The reply of a handler (the `T` of a `Reply<T>` too): it travels back.
#[diagnostic::on_unimplemented(
    message = "the reply type `{Self}` cannot travel back to the caller",
    label = "this reply is not migratable",
    note = "a handler's reply is serialized back to the caller, who may be on another node: it must be serializable (serde Serialize + Deserialize), `Send` and own its data",
    note = "make the type serializable (for your own types: put `#[mobile]` on them), or return a serializable value built from it"
)]
#[doc(hidden)]
pub trait MigratableReply {}

#[doc(hidden)]
#[diagnostic::do_not_recommend]
impl<T: Migratable> MigratableReply for T {}

/// The error type `E` of a handler replying `Result<T, E>`.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of this reply cannot travel back to the caller",
    label = "this error type is not migratable",
    note = "a `Result` reply is serialized back to the caller with its error, who may be on another node: the error type must be serializable (serde Serialize + Deserialize), `Send` and own its data",
    note = "put `#[mobile]` on the error type (or derive serde's traits), or map it to a serializable error (e.g. its message as a `String`) in the handler"
)]
#[doc(hidden)]
pub trait MigratableReplyError {}

#[doc(hidden)]
#[diagnostic::do_not_recommend]
impl<T: Migratable> MigratableReplyError for T {}

/// One step of an actor's upgrade chain: the state of version N becomes
/// the state of version N + 1.
#[diagnostic::on_unimplemented(
    message = "no upgrade from `{Self}` to `{New}`, the state of the next version",
    label = "this version has no path to the next one",
    note = "a node rebuilds an actor that arrives in an older version by upgrading its state one version at a time, each with `From`",
    note = "implement `From<{Self}> for {New}`, computing the fields the newer version adds"
)]
#[doc(hidden)]
pub trait UpgradeStep<New> {
    /// The upgrade.
    fn upgrade_step(self) -> New;
}

#[doc(hidden)]
#[diagnostic::do_not_recommend]
impl<Old, New: From<Old>> UpgradeStep<New> for Old {
    fn upgrade_step(self) -> New {
        New::from(self)
    }
}
