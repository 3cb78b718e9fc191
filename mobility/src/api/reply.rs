//! Where a handler's return value goes: a caller on this node (the value
//! itself, never encoded), a caller on another node (encoded, over the link),
//! or nobody (fire-and-forget, timers).

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::api::actor::{Actor, Migratable};
use crate::api::context::Context;
use crate::api::host::Host;
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{ActorId, NodeId};
pub(crate) use crate::proto::wire::ReplyAddr;

/// A reply as it reaches the waiting caller.
pub(crate) enum ReplyValue {
    /// The handler's value, from this node.
    Local(Box<dyn Any + Send>),
    /// The handler's value, encoded on another node.
    Encoded(Vec<u8>),
}

/// What a waiting caller receives.
pub(crate) type ReplyResult = Result<ReplyValue, Error>;

/// The sending side of a caller's wait.
pub(crate) type ReplySender = oneshot::Sender<ReplyResult>;

enum Target {
    Nobody,
    Local(ReplySender),
    Remote {
        node: Arc<dyn Host>,
        origin: NodeId,
        request: u64,
    },
}

/// Where the reply of one message goes. Generated dispatch code calls
/// [`ReplyTo::send`] with the handler's return value; if a handler never
/// finishes (it panicked), the caller is told the actor is down.
#[doc(hidden)]
pub struct ReplyTo {
    actor: ActorId,
    target: Target,
}

impl ReplyTo {
    /// The portable form of this reply's target (`None`: nobody waits). A
    /// local caller's channel moves into `node`'s table of pending replies.
    pub(crate) fn into_addr(mut self, node: &dyn Host) -> Option<ReplyAddr> {
        match std::mem::replace(&mut self.target, Target::Nobody) {
            Target::Nobody => None,
            Target::Local(sender) => Some(ReplyAddr {
                node: node.id().clone(),
                request: node.register_pending(self.actor, sender),
            }),
            Target::Remote {
                origin, request, ..
            } => Some(ReplyAddr {
                node: origin,
                request,
            }),
        }
    }

    /// A reply target rebuilt from its portable form, sent through `node`.
    pub(crate) fn from_addr(actor: ActorId, node: Arc<dyn Host>, addr: Option<ReplyAddr>) -> Self {
        match addr {
            Some(addr) => ReplyTo::remote(actor, node, addr.node, Some(addr.request)),
            None => ReplyTo::nobody(actor),
        }
    }

    /// Whether a caller waits for this reply.
    pub(crate) fn is_awaited(&self) -> bool {
        !matches!(self.target, Target::Nobody)
    }

    pub(crate) fn nobody(actor: ActorId) -> Self {
        ReplyTo {
            actor,
            target: Target::Nobody,
        }
    }

    pub(crate) fn local(actor: ActorId, sender: Option<ReplySender>) -> Self {
        ReplyTo {
            actor,
            target: sender.map_or(Target::Nobody, Target::Local),
        }
    }

    pub(crate) fn remote(
        actor: ActorId,
        node: Arc<dyn Host>,
        origin: NodeId,
        request: Option<u64>,
    ) -> Self {
        ReplyTo {
            actor,
            target: match request {
                Some(request) => Target::Remote {
                    node,
                    origin,
                    request,
                },
                None => Target::Nobody,
            },
        }
    }

    /// Sends the handler's return value to the caller, if one waits.
    pub fn send<T: Migratable>(mut self, value: T) {
        match std::mem::replace(&mut self.target, Target::Nobody) {
            Target::Nobody => {}
            Target::Local(sender) => {
                let _ = sender.send(Ok(ReplyValue::Local(Box::new(value))));
            }
            Target::Remote {
                node,
                origin,
                request,
            } => {
                let result = mobility_net::encode(&value).map_err(Error::from);
                node.send_reply(&origin, request, result);
            }
        }
    }

    /// Sends the value of a handler returning [`Reply`]: `Now` goes to the
    /// caller; `Later` means the handler took the reply with
    /// [`Context::defer_reply`] (if it did not, the caller is told so rather
    /// than left waiting).
    pub fn send_reply<T: Migratable>(self, value: Reply<T>) {
        match value {
            Reply::Now(value) => self.send(value),
            Reply::Later => {
                if self.is_awaited() {
                    let actor = self.actor;
                    self.fail(Error::Refused {
                        actor,
                        reason: "the handler returned Reply::Later without taking                                  ctx.defer_reply()"
                            .into(),
                    });
                }
            }
        }
    }

    /// Tells the caller the message failed.
    pub(crate) fn fail(mut self, error: Error) {
        self.fail_in_place(error);
    }

    fn fail_in_place(&mut self, error: Error) {
        match std::mem::replace(&mut self.target, Target::Nobody) {
            Target::Nobody => {}
            Target::Local(sender) => {
                let _ = sender.send(Err(error));
            }
            Target::Remote {
                node,
                origin,
                request,
            } => node.send_reply(&origin, request, Err(error)),
        }
    }
}

impl Drop for ReplyTo {
    fn drop(&mut self) {
        // Only reached with a caller still waiting when a handler did not
        // finish: it panicked, or its node shut down under it. (Every reply
        // passes here; the error is built only when somebody waits.)
        if !self.is_awaited() {
            return;
        }
        let actor = self.actor;
        self.fail_in_place(Error::ActorDown {
            actor,
            reason: ExitReason::Panicked("the handler did not finish".into()),
        });
    }
}

impl fmt::Debug for ReplyTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.target {
            Target::Nobody => "nobody".to_string(),
            Target::Local(_) => "local caller".to_string(),
            Target::Remote {
                origin, request, ..
            } => format!("request {request} of node {origin}"),
        };
        f.debug_struct("ReplyTo")
            .field("actor", &self.actor)
            .field("to", &target)
            .finish()
    }
}

/// Turns what a caller received into the reply type it expects.
pub(crate) fn open_reply<R: Migratable>(
    node: impl FnOnce() -> Option<Arc<dyn Host>>,
    value: ReplyValue,
) -> Result<R, Error> {
    match value {
        ReplyValue::Local(boxed) => boxed
            .downcast::<R>()
            .map(|b| *b)
            .map_err(|_| Error::Codec(format!("reply is not a `{}`", std::any::type_name::<R>()))),
        ReplyValue::Encoded(bytes) => crate::api::codec::decode_on(node(), &bytes),
    }
}

/// What a handler returns when it may answer later: `Reply::Now(value)`
/// answers at once; `Reply::Later` answers through the [`DeferredReply`] the
/// handler took with [`Context::defer_reply`] (kept in the state, answered by
/// a later handler, on whatever node the actor is then).
///
/// The caller's method returns the `T` inside: a handler
/// `fn wait(&mut self, ctx: &mut Context<Self>) -> Reply<u64>` is called as
/// `let n: u64 = handle.wait().await?;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    /// The reply, now.
    Now(T),
    /// The reply comes later, through a [`DeferredReply`].
    Later,
}

/// A reply owed to a caller that is still waiting: taken by a handler with
/// [`Context::defer_reply`], kept (for example in the actor's state, where it
/// migrates with the actor), and answered by a later handler with
/// [`DeferredReply::send`], on any node.
///
/// While an actor owes replies, it remembers them: if it ends first, each
/// waiting caller is told the actor is down.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct DeferredReply<T> {
    to: Option<ReplyAddr>,
    #[serde(skip)]
    _reply: PhantomData<fn() -> T>,
}

impl<T: Migratable> DeferredReply<T> {
    pub(crate) fn new(to: Option<ReplyAddr>) -> Self {
        DeferredReply {
            to,
            _reply: PhantomData,
        }
    }

    /// Whether a caller waits for this reply (false for a fire-and-forget
    /// message or a timer: then sending does nothing).
    pub fn is_awaited(&self) -> bool {
        self.to.is_some()
    }

    /// Answers the waiting caller with `value`.
    #[allow(clippy::needless_pass_by_value)] // the value is given away, like a return value
    pub fn send<A: Actor>(self, ctx: &mut Context<A>, value: T) {
        let Some(to) = self.to else { return };
        ctx.settle(&to);
        let result = mobility_net::encode(&value).map_err(Error::from);
        ctx.host().send_reply(&to.node, to.request, result);
    }

    /// Answers the waiting caller with [`Error::Refused`] and `reason`.
    pub fn fail<A: Actor>(self, ctx: &mut Context<A>, reason: impl Into<String>) {
        let Some(to) = self.to else { return };
        ctx.settle(&to);
        let error = Error::Refused {
            actor: ctx.id(),
            reason: reason.into(),
        };
        ctx.host().send_reply(&to.node, to.request, Err(error));
    }
}

impl<T> fmt::Debug for DeferredReply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.to {
            Some(to) => write!(
                f,
                "DeferredReply(request {} of node {})",
                to.request, to.node
            ),
            None => f.write_str("DeferredReply(nobody waits)"),
        }
    }
}

impl<T> PartialEq for DeferredReply<T> {
    fn eq(&self, other: &Self) -> bool {
        self.to == other.to
    }
}
