//! The traits `#[mobile]` implements: what a mobile type is and what an actor
//! is made of. Users never implement these by hand.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::context::Context;
use crate::api::handle::{Calls, MessageSink};
use crate::api::reply::ReplyTo;

/// A value that can travel with an actor: serializable both ways, `Send` and
/// owning its data.
///
/// Every field of a `#[mobile]` type and every handler argument and reply must
/// be `Migratable`. It is implemented for every type that qualifies; the
/// attribute checks it at compile time, at the span of the offending field.
///
/// `#[mobile]` reports a type that is not migratable with a message fitting
/// the place where it appears (a field, an argument, a reply).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot migrate with a mobile actor",
    label = "this type is not migratable",
    note = "a migrating value must be serializable (serde Serialize + Deserialize), `Send` and own its data",
    note = "for your own types: put `#[mobile]` on them (or derive serde's `Serialize` and `Deserialize`)",
    note = "for a type parameter `T` of a mobile type or a generic actor: declare it `T: mobility::Migratable`"
)]
pub trait Migratable: Serialize + DeserializeOwned + Send + 'static {}

// `do_not_recommend`: report "not migratable" with the note above, instead of
// one error per unmet part (Serialize, Deserialize, Send).
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> Migratable for T {}

/// A field marked `#[mobile(skip)]`: it stays behind and is rebuilt with
/// `Default` on arrival, yet it is part of the actor, so it must be `Send`.
#[diagnostic::on_unimplemented(
    message = "the skipped field's type `{Self}` must implement `Default` and `Send`",
    label = "a `#[mobile(skip)]` field is rebuilt with `Default` when the actor arrives",
    note = "wrap it in `Option<...>` (rebuilt as `None`, then set it in `#[mobile(on_arrive)]`), or implement `Default` for it"
)]
#[doc(hidden)]
pub trait Skippable: Default + Send + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Default + Send + 'static> Skippable for T {}

/// A concrete instantiation of a generic actor, registered with
/// `#[mobile(instances(Cache<u64>, Cache<String> = "tag"))]` on the actor's
/// impl block. A destination rebuilds an actor from its type tag, so each
/// instantiation has its own tag; only registered ones are actors.
/// Implemented by `#[mobile]`, never by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a registered instance of its generic actor",
    label = "`{Self}` is not registered, so it is not an actor",
    note = "a destination rebuilds an actor from its type tag, so each instantiation of a generic actor is registered with its own tag",
    note = "add it to the list on the actor's impl block: `#[mobile(instances({Self}))]`, or `#[mobile(instances({Self} = \"a-tag\"))]` to choose its tag"
)]
pub trait ActorInstance {
    /// The type tag of this instantiation.
    const TYPE_TAG: &'static str;
    /// Fingerprint of the instantiation's type arguments, mixed into
    /// [`Actor::SCHEMA`] so two instantiations never share a schema.
    const FINGERPRINT: u64;
}

/// A type whose values can migrate: the state of an actor, or data inside it.
///
/// Implemented by `#[mobile]` on a struct or enum.
pub trait Mobile: Migratable {
    /// Fingerprint of the type's shape (field names and types, in order).
    /// Two builds that disagree on it refuse to exchange the type.
    const FINGERPRINT: u64;

    /// The state of a state machine: `Some` key of the current state (the
    /// enum variant of an enum, or of the field marked `#[mobile(state)]`),
    /// `None` for a type without states. Only compared on one node, before
    /// and after each handler: a change is a state change (the state timeout
    /// is cancelled, `on_enter` runs, postponed messages come back).
    fn state_key(&self) -> Option<u64> {
        None
    }
}

/// The key of a value's enum variant (for [`Mobile::state_key`]); stable
/// within one process, which is all a state key needs.
#[doc(hidden)]
pub fn variant_key<T>(value: &T) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::mem::discriminant(value).hash(&mut hasher);
    hasher.finish()
}

/// A mobile actor: state plus handlers. Implemented by `#[mobile]` on the
/// type's impl block.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a mobile actor",
    label = "not an actor",
    note = "a type is an actor when `#[mobile]` is on its inherent impl block; a generic actor only for the instantiations listed in `#[mobile(instances(...))]` on that block"
)]
pub trait Actor: Mobile + Sized {
    /// The message enum: one variant per public handler.
    type Msg: Migratable;
    /// The typed request/reply methods, reached through `Deref` on
    /// [`Handle<Self>`](crate::Handle).
    type Calls: Calls<Self>;
    /// The typed fire-and-forget methods, over any message sink
    /// ([`Handle::tell`](crate::Handle::tell), timers of a [`Context`]).
    type Tell<S: MessageSink<Self>>;

    /// Stable tag naming the type on the wire (the module path and type name
    /// unless the user chose one with `#[mobile(tag = "...")]`).
    const TYPE_TAG: &'static str;
    /// Fingerprint of the state and of the message set: a destination whose
    /// build disagrees refuses the actor.
    const SCHEMA: u64;
    /// The version of the actor type (`#[mobile(version = N)]` on its impl
    /// block; 1 unless declared). A destination accepts its own version and
    /// the older ones it can upgrade ([`Versioned`]); a newer one is refused.
    const VERSION: u32 = 1;

    /// Wraps a sink into the typed fire-and-forget methods.
    fn tell_with<S: MessageSink<Self>>(sink: S) -> Self::Tell<S>;

    /// Runs the handler named by `msg` and sends its return value to `reply`.
    fn dispatch(
        &mut self,
        msg: Self::Msg,
        ctx: &mut Context<Self>,
        reply: ReplyTo,
    ) -> impl Future<Output = ()> + Send;

    /// Whether the handler of `msg` is a plain `fn` (not `async`): it can
    /// run to its end at once, on the caller's task while the actor is idle
    /// (see [`dispatch_now`](Actor::dispatch_now)). Generated by `#[mobile]`.
    #[doc(hidden)]
    fn runs_now(msg: &Self::Msg) -> bool {
        let _ = msg;
        false
    }

    /// Runs the handler named by `msg` to its end, without waiting, and
    /// sends its return value to `reply`; gives both back if that handler
    /// is `async`. Generated by `#[mobile]`.
    #[doc(hidden)]
    #[allow(clippy::result_large_err)] // given back at once, never stored
    fn dispatch_now(
        &mut self,
        msg: Self::Msg,
        ctx: &mut Context<Self>,
        reply: ReplyTo,
    ) -> Result<(), (Self::Msg, ReplyTo)> {
        let _ = ctx;
        Err((msg, reply))
    }

    /// Hook: runs once, before the first message, on the node that spawned
    /// the actor.
    fn on_start(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Hook: runs at the source just before the state is captured for a
    /// migration.
    fn on_depart(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Hook: runs at the destination after the state is restored and before
    /// the migration commits. Skipped fields hold their `Default` here; an
    /// error aborts the migration and the actor stays at the source.
    fn on_arrive(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Hook of a state machine: runs when the actor enters a state, once
    /// after `on_start` and after every handler that changed the state (a
    /// good place for `ctx.set_state_timeout`). Not run after a migration:
    /// the actor stays in its state.
    fn on_enter(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Whether the handler of `msg` can postpone it (it takes the context):
    /// a state machine keeps an encoded copy of such a message while it is
    /// handled. Generated by `#[mobile]`.
    #[doc(hidden)]
    fn may_postpone(msg: &Self::Msg) -> bool {
        let _ = msg;
        true
    }

    /// Hook: runs when the actor stops for any reason but a panic.
    fn on_stop(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }
}

/// Version `V` of the actor type `Self`, as a node of this build accepts
/// it: the state of that version and how it becomes the current actor.
///
/// Implemented by `#[mobile]`, never by hand: for the current version by
/// `#[mobile(version = N)]` on the actor's impl block (the state is the actor
/// itself), and for each older version by `#[mobile(previous_of = Actor,
/// version = N)]` on the struct or enum that keeps that version's state,
/// whose upgrade is `From<ThatState>` for the state of version `N + 1`,
/// applied step by step up to the current version (before `on_arrive`).
#[diagnostic::on_unimplemented(
    message = "version {V} of the actor `{Self}` is declared nowhere",
    label = "`{Self}` has no version {V}",
    note = "an actor declares its current version on its impl block, `#[mobile(version = N)]` (1 if absent), and each older version it accepts on the type that keeps that version's state, `#[mobile(previous_of = {Self}, version = N)]`",
    note = "the upgrades form a chain: version N upgrades to version N + 1 with `From`, so every version between the oldest accepted one and the current one must be declared"
)]
pub trait Versioned<const V: u32>: Actor {
    /// The state of version `V` (the actor itself for its current version).
    type State: Mobile;
    /// Turns a state of version `V` into the current actor.
    fn upgrade(state: Self::State) -> Self;
}

/// Mixes two fingerprints (used to combine the state's and the messages').
#[doc(hidden)]
pub const fn mix_fingerprints(a: u64, b: u64) -> u64 {
    // FNV-1a over the 16 bytes of both: order-sensitive and const.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes_a = a.to_le_bytes();
    let bytes_b = b.to_le_bytes();
    let mut i = 0;
    while i < 8 {
        hash ^= bytes_a[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    i = 0;
    while i < 8 {
        hash ^= bytes_b[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// FNV-1a of a string, usable in constants (the macro fingerprints shapes
/// with it).
#[doc(hidden)]
pub const fn fingerprint_str(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}
