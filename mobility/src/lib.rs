//! Mobile actors for Rust: put `#[mobile]` on a struct and its impl block,
//! and each instance runs as an actor (its own task and mailbox, one
//! message at a time) that can be **migrated live** to another node, of its
//! cluster or of another cluster over TCP, while everyone who talks to it
//! keeps the same [`Handle`] and never notices the move.
//!
//! What it promises: a migration happens between two messages; every
//! message is handled exactly once and in each sender's order across any
//! number of moves; there are never two live copies of an actor; a failed
//! migration leaves the actor where it was, state unchanged; an actor
//! reported down never answers again; links between nodes are encrypted
//! and mutually authenticated.
//!
//! This page is the guide; the project's README has the design, the
//! examples to run and the benchmarks.
//!
//! # A first actor
//!
//! ```
//! use mobility::prelude::*;
//!
//! #[mobile]
//! #[derive(Default)]
//! pub struct Counter {
//!     count: u64,
//! }
//!
//! #[mobile]
//! impl Counter {
//!     /// Each `pub` method is a handler: a message the actor takes.
//!     pub fn add(&mut self, n: u64) -> u64 {
//!         self.count += n;
//!         self.count
//!     }
//!
//!     pub fn get(&self) -> u64 {
//!         self.count
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), mobility::Error> {
//! let node = Node::builder().id("solo").start().await?;
//! let counter: Handle<Counter> = node.spawn(Counter::default()).await?;
//! assert_eq!(counter.add(2).await?, 2);   // request/reply
//! counter.tell().add(3)?;                  // fire-and-forget
//! assert_eq!(counter.get().await?, 5);     // after the add: one sender's order holds
//! let down = counter.monitor();
//! counter.stop().await?;
//! assert_eq!(down.await, ExitReason::Stopped);
//! # Ok(()) }
//! ```
//!
//! The macro derives serde for the fields, checks at compile time that
//! every field, argument and reply can migrate (an `Rc`, a reference, a
//! socket is a compile error at its span, saying what to do), and
//! generates the typed methods on `Handle<Counter>`. Handlers may be
//! `async`, take `ctx: &mut Context<Self>` (timers, the node, moving
//! itself), and return a `Result`. Lifecycle hooks: `#[mobile(on_start)]`,
//! `#[mobile(on_depart)]`, `#[mobile(on_arrive)]`, `#[mobile(on_stop)]`; a
//! field marked `#[mobile(skip)]` does not migrate and is rebuilt with
//! `Default`.
//!
//! # A cluster, and a migration
//!
//! Nodes that share a cluster id and secret find each other by gossip.
//! [`NodeBuilder::start`] with [`join`](NodeBuilder::join) returns once
//! every member sees the new node; a name takes a few gossip rounds more to
//! reach every member, which [`Node::lookup_within`] waits for.
//!
//! ```
//! # use mobility::prelude::*;
//! # #[mobile] #[derive(Default)] pub struct Counter { count: u64 }
//! # #[mobile] impl Counter { pub fn add(&mut self, n: u64) -> u64 { self.count += n; self.count } }
//! use std::time::Duration;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let a = Node::builder()
//!     .id("a")
//!     .cluster("shop", "the members' secret")
//!     .listen("127.0.0.1:0")
//!     .start()
//!     .await?;
//! let seed = a.listen_addr().expect("a listens").to_string();
//! let b = Node::builder()
//!     .id("b")
//!     .cluster("shop", "the members' secret")
//!     .listen("127.0.0.1:0")
//!     .join(&seed)
//!     .start()
//!     .await?;
//!
//! let counter = a.spawn_named("orders", Counter::default()).await?;
//! counter.add(1).await?;
//! let report = a.migrate(&counter, b.id()).await?;   // live, between two messages
//! println!("frozen for {:?}, {} bytes of state", report.freeze, report.state_bytes);
//! assert_eq!(counter.add(1).await?, 2);                // the same handle, now answered by b
//! let found = a.lookup_within::<Counter>("orders", Duration::from_secs(5)).await?;
//! assert_eq!(found.id(), counter.id());
//! # Ok(()) }
//! ```
//!
//! An actor can also move itself ([`Context::migrate_to`]), and a
//! [`Destination`] of the form `tcp://host:port` names a node of another
//! cluster that trusts this one ([`NodeBuilder::trust_cluster`]). What
//! migrates: the fields (not those marked `skip`), the queued messages,
//! the pending timers with their remaining time, the replies still owed.
//! What does not: code (the destination must have the type compiled in,
//! with the same schema, or an older version of the actor that it upgrades:
//! see [`Versioned`]) and anything outside the actor.
//!
//! During a rolling upgrade, members of one cluster run different builds:
//! each announces the versions it runs and upgrades
//! ([`Node::type_versions`]), and [`Node::drain`] places an actor only on
//! members that take its version. The README's "Evolving an actor" says
//! which changes need a new version and what happens to messages.
//!
//! # Errors
//!
//! Every call returns `Result<_, `[`Error`]`>`. One situation, one answer,
//! from every node alike:
//!
//! | situation | a call answers | a monitor resolves with |
//! |---|---|---|
//! | the actor stopped | [`Error::ActorDown`] with [`ExitReason::Stopped`] | `Stopped` |
//! | a handler panicked | `ActorDown` with [`ExitReason::Panicked`] | `Panicked` |
//! | its node shut down | `ActorDown` with [`ExitReason::NodeDown`] | `NodeDown` |
//! | its node was declared failed by the cluster (crash, stall, cut off) | `ActorDown` with [`ExitReason::Unreachable`] | `Unreachable` |
//! | the link to its node (of another cluster) was lost for good | `ActorDown` with [`ExitReason::LinkLost`] | `LinkLost` |
//! | the request was held by a member declared failed, the actor lives on | [`Error::Lost`] (may or may not have been handled) | nothing: it lives |
//! | the actor moved | nothing: the handle follows it | nothing |
//! | no reply within the timeout | [`Error::Timeout`] (the request may still be handled) | |
//! | no actor holds the name (or its actor ended) | [`Error::NameNotFound`] | |
//! | a migration failed | [`Error::Migration`]: the step and why; the actor runs where it was | |
//! | a handler the actor's version does not have | [`Error::UnknownHandler`] | |
//! | this node is shut down | [`Error::NodeStopped`] | |
//!
//! A call with an explicit timeout ([`Handle::with_timeout`]) returns by
//! it, whatever the handler.
//!
//! # Configuration
//!
//! Everything is set on [`NodeBuilder`]: the node id, the request and
//! migration timeouts, mailbox bounds, the cluster and its secret, the
//! listen address, seeds, gossip and failure timing, trusted clusters, the
//! grace periods of shutdown and drain, and the TCP settings
//! ([`TcpConfig`]: limits, timeouts, and the node's identity: its key and
//! certificate, read from files or environment variables with
//! [`TcpConfig::with_identity_from_env`]). Without an identity a node
//! derives one from the cluster secret and says so in a warning.
//!
//! # Leaving
//!
//! [`Node::shutdown`] stops the node's actors; [`Node::drain`] first moves
//! them to the other members of the cluster, and [`Node::drain_to`] to one
//! destination. [`Node::shutdown_on_signal`] waits for Ctrl-C or SIGTERM
//! and drains: what a service does when it is stopped.
//!
//! # Observing
//!
//! [`Node::actors`] lists what a node hosts ([`ActorInfo`]: type, name,
//! mailbox depth, messages handled, and a handle back); [`Node::observe`]
//! tells what happens as it happens ([`NodeEvent`]: spawned, arrived,
//! departed with the migration report, stopped with the reason,
//! membership); [`Node::directory_snapshot`] says which member hosts which
//! named actor. Metrics go through the `metrics` facade to any recorder
//! installed before the node starts; [`metrics`] names them all.
//!
//! # More
//!
//! - [`fsm`]: state machines (what `gen_statem` offers), as ordinary actors;
//! - [`events`]: event managers (what `gen_event` offers);
//! - [`supervisor`]: supervision trees (what `supervisor` offers), for
//!   children that may move and nodes that may fail;
//! - [`Node`]: everything a node does, [`Handle`]: everything a handle does.
#![warn(missing_docs)]

// Lets the runtime use its own `#[mobile]` (whose output names `::mobility`).
#[allow(unused_extern_crates)]
extern crate self as mobility;

// The runtime in layers; each imports only from the layers below it, and
// reaches the node above it only through the traits of `api::host`:
//
//   node     the Node API, its tables, links, directory, membership glue
//   cell     the tokio shell per actor around the protocol core
//   mailbox  entries, direct senders, lending, envelopes
//   api      Actor, Handle, Context, Reply: what users and the macro see
//   proto    ids, errors, wire types and the pure core (`mobility-proto`)
//
// with `events` (event managers) and `supervisor` (supervision trees) on
// top, built from the public API of the node, then `dashboard` (feature
// `dashboard`: a node's live web page, built on the node's observation
// API), and `fuzzing` on top of them all: hidden entry points for `fuzz/`.
//
// `tests/layers.rs` checks that imports point down only.
mod api;
mod cell;
#[cfg(feature = "dashboard")]
pub mod dashboard;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
mod mailbox;
mod node;
mod proto;
pub mod supervisor;
mod sync;

pub use api::{fsm, metrics};
// What the macro's compile-time checks assert (see `api::checks`).
#[doc(hidden)]
pub use api::checks;
// The items of these modules are at the crate root; the modules stay for
// paths that name them.
#[doc(hidden)]
pub use api::{actor, context, handle};
#[doc(hidden)]
pub use proto::migration;

/// The README's snippets, run as doctests (the README is the project's
/// front page, not part of the API docs).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use api::actor::{Actor, ActorInstance, Migratable, Mobile, Versioned};
pub use api::context::{Context, TimerId};
pub use api::handle::{Handle, Monitor};
#[doc(hidden)]
pub use api::reply::ReplyTo;
pub use api::reply::{DeferredReply, Reply};
pub use mobility_macros::mobile;
pub use mobility_net::membership::MemberEvent;
pub use mobility_net::tcp::TcpConfig;
pub use node::{ActorInfo, DrainReport, NamedActor, Node, NodeBuilder, NodeStats, TypeVersions};
#[doc(hidden)]
pub use node::{Fault, FaultDirection, FaultStep};
pub use proto::error::{Error, ExitReason};
pub use proto::id::{ActorId, Destination, NodeId, ParseDestinationError};
pub use proto::migration::{MigrationFailure, MigrationPhase, MigrationReport};
pub use proto::observe::NodeEvent;

/// Everything a user of mobility needs: `use mobility::prelude::*;`.
pub mod prelude {
    #[doc(no_inline)]
    pub use crate::{
        mobile, Actor, ActorId, Context, DeferredReply, Destination, Error, ExitReason, Handle,
        MemberEvent, Migratable, MigrationFailure, MigrationPhase, MigrationReport, Mobile, Node,
        NodeId, Reply, TimerId,
    };
}

/// What the code generated by `#[mobile]` uses. Not a public API: it may
/// change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::api::actor::{fingerprint_str, mix_fingerprints, variant_key};
    pub use crate::api::handle::{Calls, HandleCore, MessageSink};
    pub use crate::node::registry::{ActorType, OlderVersion};
    pub use inventory;
    pub use serde;
    pub use serde_bytes;

    // Compile-time checks that a type can migrate; the macro calls one per
    // field, argument and reply type, spanned at that type, and the trait
    // of each gives the message that fits the place (see `api::checks`).

    /// A field of a `#[mobile]` type.
    pub const fn assert_field<T: crate::checks::MigratableField>() {}
    /// A handler's argument.
    pub const fn assert_argument<T: crate::checks::MigratableArgument>() {}
    /// A handler's reply (the `T` of `Reply<T>`, the `T` of a `Result<T, E>` reply).
    pub const fn assert_reply<T: crate::checks::MigratableReply>() {}
    /// The `E` of a handler replying `Result<T, E>`.
    pub const fn assert_reply_error<T: crate::checks::MigratableReplyError>() {}
    /// A type parameter used by a field, argument or reply (asserted alone,
    /// so that rustc suggests the bound on the parameter).
    pub const fn assert_param<T: crate::Migratable>() {}

    /// Compile-time check that a `#[mobile(skip)]` field can be rebuilt.
    pub const fn assert_skippable<T: crate::actor::Skippable>() {}

    /// One step of the upgrade chain of actor `A`: a state of the version
    /// before `NEXT` becomes the state of version `NEXT`, which is then
    /// upgraded on to the current version (called at the older version's
    /// declaration, whose errors say what is missing).
    pub fn upgrade_chain<A, const NEXT: u32, Old>(old: Old) -> A
    where
        A: crate::Versioned<NEXT>,
        Old: crate::checks::UpgradeStep<<A as crate::Versioned<NEXT>>::State>,
    {
        A::upgrade(old.upgrade_step())
    }
}
