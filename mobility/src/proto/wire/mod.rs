//! The node-to-node protocol carried by peer links.
//!
//! Version history (bump `PROTOCOL_VERSION` and add a line for every change):
//! - 1: deliver / reply / down, two-phase migration (prepare, ack, commit,
//!   committed, abort), route corrections (moved, with the new location's
//!   address) and relays for nodes without a direct link.
//! - 2: name claims sent to the cluster's coordinator (claim, answer);
//!   the destination reports its first handled message after a move; a
//!   destination without a decision asks for it (resolve).
//! - 3: handler calls and successful replies travel in a compact form
//!   (see `compact`).
//! - 4: the migration protocol of `mobility_proto::handover`: a destination
//!   confirms an abort (aborted), a source that began no such attempt leaves
//!   a resolve unanswered, new refusals (destination failed, fenced) and an
//!   actor reported down on a node declared failed (unreachable).
//! - 5: versions of actor types: a prepare carries the actor's version and
//!   the fingerprint of its state alone (both default to a version-1 actor
//!   without it); new refusals (newer version, no upgrade, another schema of
//!   an older version).

mod compact;

use serde::{Deserialize, Serialize};

use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{ActorId, Destination, NodeId};
use crate::proto::migration::MigrationFailure;

/// Version of the protocol below; a link refuses peers of another version
/// (the TCP handshake compares it as the runtime's `app_version`).
pub(crate) const PROTOCOL_VERSION: u32 = 5;

/// One stream of messages toward an actor: the node that numbered them and a
/// random id of the numbering cell (so a new cell never reuses old numbers).
#[derive(Debug, Clone, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Origin {
    pub(crate) node: NodeId,
    pub(crate) stream: u64,
}

impl Origin {
    /// A new stream numbered by `node` (an id unique in this process and
    /// unpredictable across processes, so its numbers are never taken for
    /// those of an earlier stream).
    pub(crate) fn fresh(node: &NodeId) -> Origin {
        Origin {
            node: node.clone(),
            stream: crate::proto::id::unique_u64(),
        }
    }
}

// Every message looks up its stream: compare and hash the random stream id
// first and only (it tells streams apart by itself), not the node's name.
impl PartialEq for Origin {
    fn eq(&self, other: &Self) -> bool {
        self.stream == other.stream && self.node == other.node
    }
}

impl std::hash::Hash for Origin {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.stream.hash(state);
    }
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
    /// How many times old locations forwarded it: a message caught between
    /// stale routes (a loop) is refused once this passes `MAX_FORWARDS`.
    #[serde(default)]
    pub(crate) hops: u8,
}

/// How many forwarders a message may pass before it is refused.
pub(crate) const MAX_FORWARDS: u8 = 16;

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
    /// The sender learned that `actor` lives at `node` since `epoch`;
    /// `addr` is where that node listens, if the sender knows.
    Moved {
        actor: ActorId,
        node: NodeId,
        epoch: u64,
        addr: Option<String>,
    },
    /// Phase one of a migration: here is the actor, paused. The snapshot
    /// follows this header in the same frame, as its own encoding (no copy).
    Prepare {
        actor: ActorId,
        type_tag: String,
        /// Fingerprint of the state and messages (compared when both sides
        /// run the same version).
        schema: u64,
        epoch: u64,
        /// The actor type's version (`Actor::VERSION`).
        #[serde(default = "version_one")]
        version: u32,
        /// Fingerprint of the state alone (`Mobile::FINGERPRINT`), compared
        /// with the destination's declaration of an older version.
        #[serde(default)]
        state_schema: u64,
    },
    /// The destination's answer to `Prepare`.
    PrepareAck {
        actor: ActorId,
        epoch: u64,
        result: Result<u64, MigrationFailure>,
    },
    /// Phase two: activate the prepared actor.
    Commit { actor: ActorId, epoch: u64 },
    /// The prepared actor is active at the destination; `queued`: messages
    /// were waiting, and `FirstHandled` follows once the first is handled.
    Committed {
        actor: ActorId,
        epoch: u64,
        queued: bool,
    },
    /// The destination handled its first message after the move.
    FirstHandled { actor: ActorId, epoch: u64 },
    /// From a destination holding a prepared actor without a decision: was
    /// migration `epoch` committed?
    Resolve { actor: ActorId, epoch: u64 },
    /// Drop the prepared actor; the source keeps it.
    Abort { actor: ActorId, epoch: u64 },
    /// The destination holds no prepared copy of this attempt and never
    /// will (the answer to `Abort`).
    Aborted { actor: ActorId, epoch: u64 },
    /// A frame from `from` for `to`, carried by a node linked to both (a
    /// reply finding its way back along a forwarding chain); `hops` left.
    /// The carried frame follows this header.
    Relay { from: NodeId, to: NodeId, hops: u8 },
    /// To the cluster's coordinator: may `actor` take `name`?
    ClaimName {
        name: String,
        actor: ActorId,
        request: u64,
    },
    /// The coordinator's answer to claim `request`: granted, or the actor
    /// that holds the name.
    NameClaimed {
        request: u64,
        owner: Option<ActorId>,
    },
}

/// The version of an actor type that does not say (protocol 4 and before).
fn version_one() -> u32 {
    1
}

/// How many nodes a relayed frame may cross before it is dropped.
pub(crate) const RELAY_HOPS: u8 = 8;

/// A frame is `[u32 big-endian header length][CBOR header][tail]`: the tail
/// is a prepare's snapshot or a relayed frame, carried without re-encoding.
/// The header is in the compact form when it has one, else serde's.
pub(crate) fn frame_of(header: &PeerMsg) -> Result<Vec<u8>, mobility_net::CodecError> {
    let mut frame = vec![0; 4];
    if !compact::encode(header, &mut frame) {
        mobility_net::encode_into(header, &mut frame)?;
    }
    let len = u32::try_from(frame.len() - 4).map_err(|_| mobility_net::CodecError::Encode {
        what: "frame header",
        reason: "longer than 4 GiB".into(),
    })?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    Ok(frame)
}

/// Splits a frame into its header and its tail (a view, not a copy).
pub(crate) fn open_frame(
    frame: &bytes::Bytes,
) -> Result<(PeerMsg, bytes::Bytes), mobility_net::CodecError> {
    let (header, end) = header_slice(frame)?;
    Ok((decode_header(header)?, frame.slice(end..)))
}

/// A frame's header alone, decoded from a borrowed frame.
pub(crate) fn header_of(frame: &[u8]) -> Result<PeerMsg, mobility_net::CodecError> {
    decode_header(header_slice(frame)?.0)
}

fn decode_header(header: &[u8]) -> Result<PeerMsg, mobility_net::CodecError> {
    if compact::is_compact(header) {
        compact::decode(header)
    } else {
        mobility_net::decode(header)
    }
}

/// The header's bytes and where the tail begins.
fn header_slice(frame: &[u8]) -> Result<(&[u8], usize), mobility_net::CodecError> {
    let bad = |reason: &str| mobility_net::CodecError::Decode {
        what: "frame",
        reason: reason.into(),
    };
    let len_bytes: [u8; 4] = frame
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("shorter than its length prefix"))?;
    let end = 4usize.saturating_add(u32::from_be_bytes(len_bytes) as usize);
    let header = frame
        .get(4..end)
        .ok_or_else(|| bad("header longer than the frame"))?;
    Ok((header, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_into_header_and_tail_and_refuse_garbage() {
        let header = PeerMsg::Commit {
            actor: crate::proto::id::ActorId::fresh(),
            epoch: 3,
        };
        let mut frame = frame_of(&header).expect("encode");
        frame.extend_from_slice(b"tail bytes");
        let (back, tail) = open_frame(&bytes::Bytes::from(frame)).expect("decode");
        assert!(matches!(back, PeerMsg::Commit { epoch: 3, .. }));
        assert_eq!(&tail[..], b"tail bytes");
        for garbage in [
            &b""[..],
            &b"\0\0"[..],
            &[0, 0, 0, 9, 1][..],
            &[0, 0, 0, 1, 0xff][..],
        ] {
            assert!(
                open_frame(&bytes::Bytes::copy_from_slice(garbage)).is_err(),
                "{garbage:?}"
            );
        }
    }
}

/// Where a reply goes, in a form that travels: the caller's node and its
/// request number there (a local caller's channel is first registered in its
/// node's table of pending replies).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct ReplyAddr {
    pub(crate) node: NodeId,
    pub(crate) request: u64,
}

/// A frame of the migration protocol, as the node hands it to a cell: the
/// refusals a destination gives, and the restore time (nanoseconds) a
/// successful prepare answer carries.
pub(crate) type HandoverFrame = mobility_proto::handover::Frame<MigrationFailure, u64>;
