//! The node-to-node protocol carried by peer links.
//!
//! Version history (bump `PROTOCOL_VERSION` and add a line for every change):
//! - 1: deliver / reply / down, two-phase migration (prepare, ack, commit,
//!   committed, abort) and route corrections (moved).

use serde::{Deserialize, Serialize};

use crate::error::{Error, ExitReason};
use crate::id::{ActorId, Destination, NodeId};
use crate::migration::MigrationFailure;

/// Version of the protocol below; a link refuses peers of another version.
#[allow(dead_code)] // checked by the handshake of network links
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// One stream of messages toward an actor: the node that numbered them and a
/// random id of the numbering cell (so a new cell never reuses old numbers).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Origin {
    pub(crate) node: NodeId,
    pub(crate) stream: u64,
}

/// What a message asks of the actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum WireBody {
    /// A handler call: the encoded message enum.
    User(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Stop after the messages sent before.
    Stop,
    /// Report the actor's end to monitor `id` at the origin node.
    Monitor(u64),
    /// Migrate to this destination; the reply is the report.
    Migrate(Destination),
    /// Nothing: stands for a message that could not be encoded (its sender
    /// got the error), so that its number is not missing.
    Noop,
}

/// A numbered message on its way to an actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WireEnvelope {
    pub(crate) origin: Origin,
    pub(crate) seq: u64,
    pub(crate) body: WireBody,
    /// Request id in the origin node's table of pending replies.
    pub(crate) reply: Option<u64>,
}

/// Every frame between two nodes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum PeerMsg {
    /// A message for an actor, which may live here or further on.
    Deliver {
        actor: ActorId,
        type_tag: String,
        envelope: WireEnvelope,
    },
    /// The answer to request `request` of the receiving node.
    Reply {
        request: u64,
        result: Result<serde_bytes::ByteBuf, Error>,
    },
    /// An actor watched by monitor `monitor` of the receiving node ended.
    Down {
        monitor: u64,
        actor: ActorId,
        reason: ExitReason,
    },
    /// The sender learned that `actor` lives at `node` since `epoch`.
    Moved {
        actor: ActorId,
        node: NodeId,
        epoch: u64,
    },
    /// Phase one of a migration: here is the actor, paused.
    Prepare {
        actor: ActorId,
        type_tag: String,
        schema: u64,
        epoch: u64,
        snapshot: serde_bytes::ByteBuf,
    },
    /// The destination's answer to `Prepare`.
    PrepareAck {
        actor: ActorId,
        epoch: u64,
        result: Result<u64, MigrationFailure>,
    },
    /// Phase two: activate the prepared actor.
    Commit { actor: ActorId, epoch: u64 },
    /// The prepared actor is active at the destination.
    Committed { actor: ActorId, epoch: u64 },
    /// Drop the prepared actor; the source keeps it.
    Abort { actor: ActorId, epoch: u64 },
}
