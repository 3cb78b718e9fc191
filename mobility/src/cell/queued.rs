//! Messages as a cell holds them: numbered in their stream, ready to be
//! handled, and in the portable form a migration carries.

use super::host::NodeRef;
use crate::api::actor::Actor;
use crate::api::reply::{ReplyAddr, ReplyTo};
use crate::api::timers::TimerKind;
use crate::mailbox::entry::LocalBody;
use crate::mailbox::envelope::{Item, Numbered};
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::ActorId;
use crate::proto::migration::QueuedWire;
use crate::proto::wire::WireEnvelope;

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
    /// Answers this message with `reason` without handling it.
    pub(super) fn reject(self, node: &NodeRef, actor: ActorId, reason: &ExitReason) {
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
    pub(super) fn into_wire(self, node: &NodeRef, actor: ActorId) -> QueuedWire {
        match self {
            Queued::Numbered(n) => QueuedWire::Numbered(n.into_wire(&**node, actor)),
            Queued::Timer(bytes, kind) => QueuedWire::Timer(bytes, kind),
            Queued::Replay { msg, reply } => QueuedWire::Replay {
                msg,
                reply: reply.into_addr(&**node),
            },
        }
    }

    pub(super) fn from_wire(wire: QueuedWire, actor: ActorId, node: &NodeRef) -> Self {
        match wire {
            QueuedWire::Numbered(envelope) => Queued::Numbered(Numbered::from_wire(envelope)),
            QueuedWire::Timer(bytes, kind) => Queued::Timer(bytes, kind),
            QueuedWire::Replay { msg, reply } => Queued::Replay {
                msg,
                reply: ReplyTo::from_addr(actor, node.clone(), reply),
            },
        }
    }

    /// Answers a waiting caller that this message will not be handled.
    pub(super) fn reject(self, node: &NodeRef, actor: ActorId, reason: &ExitReason) {
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
    node: &NodeRef,
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
