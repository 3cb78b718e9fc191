//! Where a handler's return value goes: a caller on this node (the value
//! itself, never encoded), a caller on another node (encoded, over the link),
//! or nobody (fire-and-forget, timers).

use std::any::Any;
use std::fmt;

use tokio::sync::oneshot;

use crate::actor::Migratable;
use crate::error::{Error, ExitReason};
use crate::id::{ActorId, NodeId};
use crate::node::Node;

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
        node: Node,
        origin: NodeId,
        request: u64,
    },
}

/// Where the reply of one message goes. Generated dispatch code calls
/// [`ReplyTo::send`] with the handler's return value; if a handler never
/// finishes (it panicked), the caller is told the actor is down.
pub struct ReplyTo {
    actor: ActorId,
    target: Target,
}

impl ReplyTo {
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

    pub(crate) fn remote(actor: ActorId, node: Node, origin: NodeId, request: Option<u64>) -> Self {
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
        // Only reached when a handler did not finish: it panicked, or its
        // node shut down under it.
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
    node: Option<&Node>,
    value: ReplyValue,
) -> Result<R, Error> {
    match value {
        ReplyValue::Local(boxed) => boxed
            .downcast::<R>()
            .map(|b| *b)
            .map_err(|_| Error::Codec(format!("reply is not a `{}`", std::any::type_name::<R>()))),
        ReplyValue::Encoded(bytes) => crate::codec::decode_on(node, &bytes),
    }
}
