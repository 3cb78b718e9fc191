//! What travels to a cell: messages in its mailbox (`Envelope`, numbered
//! into `Numbered` by the cell or by direct senders) and control messages
//! from the node's links (`Control`).

use std::time::Instant;

use crate::api::actor::Actor;
use crate::api::host::{Host, LocalBody};
use crate::api::reply::ReplySender;
use crate::proto::error::Error;
use crate::proto::id::{ActorId, NodeId};
use crate::proto::migration::Snapshot;
use crate::proto::wire::{HandoverFrame, Origin, WireBody, WireEnvelope};

/// What travels in a node's mailbox for one actor.
pub(crate) enum Envelope<A: Actor> {
    /// From a handle on this node: typed, not numbered yet.
    Local {
        body: LocalBody<A::Msg>,
        reply: Option<ReplySender>,
        counted: bool,
    },
    /// From another node: numbered and encoded. Boxed: every actor's
    /// mailbox allocates 32 slots up front, each as large as the variant.
    Wire(Box<WireEnvelope>),
}

/// A message with its place in its stream.
pub(crate) struct Numbered<A: Actor> {
    pub(crate) origin: Origin,
    pub(crate) seq: u64,
    pub(crate) item: Item<A>,
    /// Forwarders passed so far.
    pub(crate) hops: u8,
}

pub(crate) enum Item<A: Actor> {
    Local {
        body: LocalBody<A::Msg>,
        reply: Option<ReplySender>,
    },
    Wire {
        body: WireBody,
        reply: Option<u64>,
    },
}

impl<A: Actor> Numbered<A> {
    pub(crate) fn from_wire(envelope: WireEnvelope) -> Self {
        Numbered {
            origin: envelope.origin,
            seq: envelope.seq,
            item: Item::Wire {
                body: envelope.body,
                reply: envelope.reply,
            },
            hops: envelope.hops,
        }
    }

    /// The portable form; local reply channels move into the node's table of
    /// pending replies. A message that cannot be encoded is answered with the
    /// error and travels as a no-op, so its number is not lost.
    pub(crate) fn into_wire(self, node: &dyn Host, actor: ActorId) -> WireEnvelope {
        let (body, reply) = match self.item {
            Item::Wire { body, reply } => (body, reply),
            Item::Local { body, reply } => {
                let body = match body {
                    LocalBody::User(msg) => match mobility_net::encode(&msg) {
                        Ok(bytes) => WireBody::User(bytes),
                        Err(e) => {
                            if let Some(reply) = reply {
                                let _ = reply.send(Err(Error::from(e)));
                            }
                            return WireEnvelope {
                                origin: self.origin,
                                seq: self.seq,
                                body: WireBody::Noop,
                                reply: None,
                                hops: self.hops,
                            };
                        }
                    },
                    LocalBody::Stop => WireBody::Stop,
                    LocalBody::Monitor(id) => WireBody::Monitor(id),
                    LocalBody::Migrate(dest) => WireBody::Migrate(*dest),
                };
                (
                    body,
                    reply.map(|sender| node.register_pending(actor, sender)),
                )
            }
        };
        WireEnvelope {
            origin: self.origin,
            seq: self.seq,
            body,
            reply,
            hops: self.hops,
        }
    }
}

/// Control messages from the node's links (untyped).
#[derive(Debug)]
pub(crate) enum NetControl {
    /// A frame of the migration protocol from `from`.
    Handover {
        from: NodeId,
        frame: HandoverFrame,
    },
    /// The destination `from` activated the actor; `queued`: it tells when
    /// it handled its first message (`FirstHandled`).
    Committed {
        from: NodeId,
        epoch: u64,
        queued: bool,
    },
    FirstHandled {
        epoch: u64,
    },
    Moved {
        node: NodeId,
        epoch: u64,
    },
    /// The link to this node is gone for good.
    PeerLost(NodeId),
    /// A (new) session with this node is up.
    PeerUp(NodeId),
    /// The node this cell forwarded through died, maybe with messages of
    /// its stream: go to `node` from now on, in a new stream (the actor
    /// would otherwise wait forever for the lost numbers).
    Restream {
        node: NodeId,
        epoch: u64,
    },
    /// This member of the cluster was declared failed (it is fenced).
    MemberFailed(NodeId),
    /// This node was declared failed by its cluster: whatever it holds is
    /// down.
    Fenced,
    Shutdown,
}

/// Control messages to a cell: from links, or a decoded arriving actor.
pub(crate) enum Control<A: Actor> {
    Net(NetControl),
    Prepare {
        from: NodeId,
        epoch: u64,
        snapshot: Box<Snapshot<A>>,
        started: Instant,
    },
}
