//! The one error type of the runtime, and why an actor ended.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::proto::id::{ActorId, NodeId};
use crate::proto::migration::MigrationFailure;
use crate::proto::migration::MigrationPhase;

/// Why an actor ended. Reported to callers and monitors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ExitReason {
    /// The actor was asked to stop (`Handle::stop`, `Context::stop`).
    #[error("stopped")]
    Stopped,
    /// A handler or hook panicked; the text is the panic message.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The node that hosted it shut down (gracefully: its actors ran their
    /// `on_stop` hooks).
    #[error("its node {0} shut down")]
    NodeDown(NodeId),
    /// The node that hosted it is unreachable and was declared failed by
    /// its cluster (it crashed, stalled or was cut off: it is fenced, so
    /// the actor never answers again).
    #[error(
        "its node {0} was declared failed by its cluster (it crashed, stalled or was cut off)"
    )]
    Unreachable(NodeId),
    /// The link to the node that hosted it was lost for good (it stayed
    /// unreachable past the reconnect window, or restarted): the node
    /// crashed, stopped or was cut off, which this node cannot tell apart.
    /// What was sent over the link and not acknowledged may or may not
    /// have been handled.
    #[error("the link to its node {0} was lost (it crashed, stopped or was cut off)")]
    LinkLost(NodeId),
    /// No actor with this id is known where the message arrived.
    #[error("no such actor")]
    NoSuchActor,
}

/// Everything that can go wrong in mobility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The actor has ended; the message was not handled.
    #[error("actor {actor} is down: {reason}")]
    ActorDown {
        /// The actor.
        actor: ActorId,
        /// Why it ended.
        reason: ExitReason,
    },
    /// No reply came within the request's timeout. The request is not
    /// withdrawn: it may already have been handled, or be handled later
    /// (its reply is then dropped). Make handlers that may time out
    /// idempotent, or ask the actor what it did.
    #[error("actor {actor} did not reply within {after:?}")]
    Timeout {
        /// The actor.
        actor: ActorId,
        /// The timeout that expired.
        after: Duration,
    },
    /// The request was in the hands of a node that was declared failed (a
    /// forwarder on the way, or the actor's old host): it may or may not
    /// have been handled, and its reply will not come. The actor lives on
    /// elsewhere; later requests reach it there.
    #[error("request to actor {actor} was lost with node {node}, declared failed: it may or may not have been handled (the actor lives on)")]
    Lost {
        /// The actor.
        actor: ActorId,
        /// The node declared failed that held the request.
        node: NodeId,
    },
    /// The actor's bounded mailbox is full; the message was not queued.
    #[error("mailbox of actor {actor} is full ({capacity} messages queued)")]
    MailboxFull {
        /// The actor.
        actor: ActorId,
        /// The mailbox bound.
        capacity: usize,
    },
    /// A name is already registered on this node.
    #[error("the name {name:?} is already taken by actor {owner}")]
    NameTaken {
        /// The name.
        name: String,
        /// The actor that holds it.
        owner: ActorId,
    },
    /// No actor is registered under this name.
    #[error("no actor is named {name:?}")]
    NameNotFound {
        /// The name.
        name: String,
    },
    /// The actor under this name (or id) has another type than the one asked.
    #[error("{what} is a `{found}`, not a `{expected}`")]
    WrongType {
        /// The name or id looked up.
        what: String,
        /// The type asked for (its tag).
        expected: String,
        /// The type it has (its tag).
        found: String,
    },
    /// The node is not linked to this node.
    #[error("node {node} is not connected to node {from}")]
    UnknownNode {
        /// The node asked for.
        node: NodeId,
        /// This node.
        from: NodeId,
    },
    /// A node could not be reached over TCP.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable {
        /// The address dialed.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// Two actor types of this binary share a type tag.
    #[error("type tag {tag:?} is used by several actor types: {types:?}; give one of them #[mobile(tag = \"...\")]")]
    DuplicateTypeTag {
        /// The tag.
        tag: String,
        /// The Rust names of the types that use it.
        types: Vec<String>,
    },
    /// A migration failed; the actor runs where it was, state unchanged.
    #[error("migration of actor {actor} failed at {phase}: {failure}")]
    Migration {
        /// The actor.
        actor: ActorId,
        /// The step that failed.
        phase: MigrationPhase,
        /// What failed.
        failure: MigrationFailure,
    },
    /// The actor answered the request with a refusal instead of a value
    /// (a deferred reply failed with [`DeferredReply::fail`](crate::DeferredReply::fail),
    /// or a handler returned `Reply::Later` without deferring its reply).
    #[error("actor {actor} refused the request: {reason}")]
    Refused {
        /// The actor.
        actor: ActorId,
        /// Why.
        reason: String,
    },
    /// The actor's node runs a version of its type without this handler
    /// (the caller's build has it): the message was not handled.
    #[error("actor {actor} runs version {version} of actor type {type_tag:?}, which has no handler `{handler}`")]
    UnknownHandler {
        /// The actor.
        actor: ActorId,
        /// Its type tag.
        type_tag: String,
        /// The version of its type where it runs.
        version: u32,
        /// The handler asked for (its message variant).
        handler: String,
    },
    /// A value could not be encoded or decoded.
    #[error("{0}")]
    Codec(String),
    /// A handle was decoded outside any node, or its node is gone.
    #[error("this handle is not bound to a running node")]
    Detached,
    /// The node is shut down.
    #[error("node {0} is shut down")]
    NodeStopped(NodeId),
    /// A node configuration value is invalid.
    #[error("invalid node configuration: {0}")]
    Config(String),
    /// [`Node::drain`](crate::Node::drain) could not place every actor: the
    /// node stays up with these actors; the others moved.
    #[error("node {node} cannot leave: {moved} actors moved, {} could not be placed: {}", failed.len(), failed.iter().map(|(a, why)| format!("{a} ({why})")).collect::<Vec<_>>().join(", "))]
    DrainIncomplete {
        /// The node that tried to drain.
        node: NodeId,
        /// How many actors moved.
        moved: usize,
        /// The actors that stay, each with why.
        failed: Vec<(ActorId, String)>,
    },
}

impl From<mobility_net::CodecError> for Error {
    fn from(e: mobility_net::CodecError) -> Self {
        Error::Codec(e.to_string())
    }
}
