//! Messages as a cell holds them: numbered in their stream, ready to be
//! handled, and in the portable form a migration carries.

use crate::api::actor::Actor;
use crate::api::reply::{ReplyAddr, ReplySender, ReplyTo};
use crate::api::timers::TimerKind;
use crate::mailbox::entry::LocalBody;
use crate::node::Node;
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::ActorId;
use crate::proto::migration::QueuedWire;
use crate::proto::wire::{Origin, WireBody, WireEnvelope};

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

/// A message ready to be handled.
pub(crate) enum Queued<A: Actor> {
    Numbered(Numbered<A>),
    /// A timer that fired, with its kind.
    Timer(Vec<u8>, TimerKind),
    /// A postponed message back after a state change: handled again.
    Replay {
        msg: Vec<u8>,
        reply: ReplyTo,
    },
}

impl<A: Actor> Numbered<A> {
    pub(super) fn from_wire(envelope: WireEnvelope) -> Self {
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
    pub(crate) fn into_wire(self, node: &Node, actor: ActorId) -> WireEnvelope {
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
                    LocalBody::Migrate(dest) => WireBody::Migrate(dest),
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

    /// Answers this message with `reason` without handling it.
    pub(super) fn reject(self, node: &Node, actor: ActorId, reason: &ExitReason) {
        match self.item {
            Item::Local { body, reply } => {
                if let LocalBody::Monitor(id) = body {
                    node.send_down(node.id(), id, actor, reason.clone());
                }
                if let Some(reply) = reply {
                    let _ = reply.send(Err(Error::ActorDown {
                        actor,
                        reason: reason.clone(),
                    }));
                }
            }
            Item::Wire { body, reply } => node.reject(
                &WireEnvelope {
                    origin: self.origin,
                    seq: self.seq,
                    body,
                    reply,
                    hops: self.hops,
                },
                actor,
                reason.clone(),
            ),
        }
    }
}

impl<A: Actor> Queued<A> {
    pub(super) fn into_wire(self, node: &Node, actor: ActorId) -> QueuedWire {
        match self {
            Queued::Numbered(n) => QueuedWire::Numbered(n.into_wire(node, actor)),
            Queued::Timer(bytes, kind) => QueuedWire::Timer(bytes, kind),
            Queued::Replay { msg, reply } => QueuedWire::Replay {
                msg,
                reply: reply.into_addr(node),
            },
        }
    }

    pub(super) fn from_wire(wire: QueuedWire, actor: ActorId, node: &Node) -> Self {
        match wire {
            QueuedWire::Numbered(envelope) => Queued::Numbered(Numbered::from_wire(envelope)),
            QueuedWire::Timer(bytes, kind) => Queued::Timer(bytes, kind),
            QueuedWire::Replay { msg, reply } => Queued::Replay {
                msg,
                reply: ReplyTo::from_addr(actor, node, reply),
            },
        }
    }

    /// Answers a waiting caller that this message will not be handled.
    pub(super) fn reject(self, node: &Node, actor: ActorId, reason: &ExitReason) {
        match self {
            Queued::Numbered(numbered) => numbered.reject(node, actor, reason),
            Queued::Timer(..) => {}
            Queued::Replay { reply, .. } => reply.fail(Error::ActorDown {
                actor,
                reason: reason.clone(),
            }),
        }
    }
}

/// Answers a reply in portable form with the actor's end.
pub(super) fn reject_addr(
    node: &Node,
    addr: Option<ReplyAddr>,
    actor: ActorId,
    reason: &ExitReason,
) {
    if let Some(addr) = addr {
        let error = Error::ActorDown {
            actor,
            reason: reason.clone(),
        };
        node.send_reply(&addr.node, addr.request, Err(error));
    }
}
