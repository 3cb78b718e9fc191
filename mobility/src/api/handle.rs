//! Handles: typed, cloneable, serializable references to an actor, valid
//! wherever the actor goes.

use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::oneshot;

use crate::api::actor::{Actor, Migratable};
use crate::api::host::{LocalBody, Mailbox};
use crate::api::reply::{open_reply, ReplyResult};
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{ActorId, Destination, NodeId};
use crate::proto::migration::MigrationReport;

/// The generated request/reply methods of an actor type, wrapped around a
/// [`HandleCore`]. `Handle<A>` derefs to it.
#[doc(hidden)]
pub trait Calls<A: Actor>: Send + Sync + 'static {
    /// Wraps a core.
    fn from_core(core: HandleCore<A>) -> Self;
    /// The core inside.
    fn core(&self) -> &HandleCore<A>;
}

/// Something that accepts messages of actor `A`: the generated
/// fire-and-forget methods (`handle.tell().add(1)`, `ctx.send_after(d).tick()`)
/// build a message and `put` it here.
#[doc(hidden)]
pub trait MessageSink<A: Actor> {
    /// What putting a message returns.
    type Output;
    /// Takes one message.
    fn put(self, msg: A::Msg) -> Self::Output;
}

/// The untyped heart of a handle: the node's mailbox slot for the actor and
/// an optional per-call timeout. Used by generated code.
#[doc(hidden)]
pub struct HandleCore<A: Actor> {
    pub(crate) entry: Arc<dyn Mailbox<A>>,
    pub(crate) timeout: Option<Duration>,
}

impl<A: Actor> Clone for HandleCore<A> {
    fn clone(&self) -> Self {
        HandleCore {
            entry: self.entry.clone(),
            timeout: self.timeout,
        }
    }
}

impl<A: Actor> fmt::Debug for HandleCore<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.entry.id(), self.entry.node_id())
    }
}

impl<A: Actor> HandleCore<A> {
    /// Sends `msg` and waits for the handler's return value.
    ///
    /// While the actor is idle on this node and the handler is a plain `fn`,
    /// the handler runs now, on the caller's task (see
    /// [`NodeBuilder::calls_on_caller_task`](crate::NodeBuilder::calls_on_caller_task)),
    /// except for a call made with an explicit timeout
    /// ([`Handle::with_timeout`]): that one always goes through the
    /// mailbox, so that the caller's wait ends by the timeout whatever the
    /// handler does (a handler running on the caller's task could not be
    /// cut off).
    pub fn request<R: Migratable>(
        &self,
        msg: A::Msg,
    ) -> impl Future<Output = Result<R, Error>> + Send + '_ {
        let lent = if self.timeout.is_some() {
            Err(msg)
        } else {
            self.entry.call_now(msg)
        };
        let sent = match lent {
            Ok(rx) => Sent::Handled(rx),
            Err(msg) => match self.send_with_reply(LocalBody::User(msg), true) {
                Ok(rx) => Sent::Queued(rx),
                Err(e) => Sent::Failed(e),
            },
        };
        async move {
            let rx = match sent {
                Sent::Queued(rx) => rx,
                Sent::Handled(mut rx) => {
                    // Handled without waiting: the call still counts against
                    // the task's budget, so a loop of them cannot hog its
                    // thread.
                    tokio::task::consume_budget().await;
                    match rx.try_recv() {
                        Ok(reply) => {
                            return reply.and_then(|value| open_reply(|| self.entry.host(), value))
                        }
                        // Deferred: the reply comes later.
                        Err(_) => rx,
                    }
                }
                Sent::Failed(e) => {
                    // Likewise for a call that fails at once.
                    tokio::task::consume_budget().await;
                    return Err(e);
                }
            };
            self.wait(rx)
                .await
                .and_then(|value| open_reply(|| self.entry.host(), value))
        }
    }

    fn send_with_reply(
        &self,
        body: LocalBody<A::Msg>,
        counted: bool,
    ) -> Result<oneshot::Receiver<ReplyResult>, Error> {
        let (tx, rx) = oneshot::channel();
        self.entry.send_local(body, Some(tx), counted)?;
        Ok(rx)
    }

    async fn wait(&self, rx: oneshot::Receiver<ReplyResult>) -> ReplyResult {
        let after = self.timeout.unwrap_or(self.entry.timeout());
        tokio::select! {
            biased;
            reply = rx => match reply {
                Err(_) => Err(self.entry.down_error()),
                Ok(result) => result,
            },
            () = self.entry.deadlines().sleep(after) => Err(Error::Timeout {
                actor: self.entry.id(),
                after,
            }),
        }
    }

    /// Sends a system request and waits for its reply.
    pub(crate) async fn system<R: Migratable>(&self, body: LocalBody<A::Msg>) -> Result<R, Error> {
        let rx = self.send_with_reply(body, false)?;
        self.wait(rx)
            .await
            .and_then(|value| open_reply(|| self.entry.host(), value))
    }
}

/// What became of a request when it was made.
enum Sent {
    /// Its handler already ran on the caller's task.
    Handled(oneshot::Receiver<ReplyResult>),
    /// In the mailbox (or on its way to the actor's node).
    Queued(oneshot::Receiver<ReplyResult>),
    /// Refused at once.
    Failed(Error),
}

/// A typed reference to an actor. Clone it, send it to other actors (also on
/// other nodes), keep it across migrations: it stays valid wherever the actor
/// goes. The actor's handlers are its methods (through `Deref`):
/// `counter.add(2).await?`.
pub struct Handle<A: Actor> {
    calls: A::Calls,
}

impl<A: Actor> Handle<A> {
    pub(crate) fn from_mailbox(entry: Arc<dyn Mailbox<A>>) -> Self {
        Handle {
            calls: A::Calls::from_core(HandleCore {
                entry,
                timeout: None,
            }),
        }
    }

    fn core(&self) -> &HandleCore<A> {
        self.calls.core()
    }

    /// The actor's id, the same on every node and after every move.
    pub fn id(&self) -> ActorId {
        self.core().entry.id()
    }

    /// The node this handle sends from.
    pub fn node_id(&self) -> &NodeId {
        self.core().entry.node_id()
    }

    /// Where this handle's node believes the actor lives now.
    pub fn location(&self) -> NodeId {
        self.core().entry.route().node
    }

    pub(crate) fn route(&self) -> crate::proto::id::Route {
        self.core().entry.route()
    }

    /// The same handle with another request timeout (instead of the node's
    /// default) for the calls made through it. A call through it returns
    /// by the timeout whatever handler it reaches: it is never run on the
    /// caller's task (see [`HandleCore::request`]). A call that timed out
    /// ([`Error::Timeout`]) stays queued: the actor may still handle it
    /// after the caller stopped waiting, and its reply is then dropped.
    pub fn with_timeout(&self, timeout: Duration) -> Handle<A> {
        let mut core = self.core().clone();
        core.timeout = Some(timeout);
        Handle {
            calls: A::Calls::from_core(core),
        }
    }

    /// The fire-and-forget methods: `handle.tell().add(3)?` queues the message
    /// and returns at once.
    pub fn tell(&self) -> A::Tell<TellSink<'_, A>> {
        A::tell_with(TellSink { core: self.core() })
    }

    /// Stops the actor after the messages sent before; waits until it has
    /// stopped (its `on_stop` hook has run).
    pub async fn stop(&self) -> Result<(), Error> {
        self.core().system::<()>(LocalBody::Stop).await
    }

    /// Asks the actor to migrate to `dest` after the messages sent before,
    /// and waits for the outcome. [`Node::migrate`](crate::Node::migrate)
    /// is the same call.
    pub async fn migrate(&self, dest: Destination) -> Result<MigrationReport, Error> {
        let core = self.core().clone().with_migration_timeout();
        core.system::<Result<MigrationReport, Error>>(LocalBody::Migrate(Box::new(dest)))
            .await?
    }

    /// Watches the actor: the returned [`Monitor`] resolves with the reason
    /// the actor ends, wherever it is then.
    pub fn monitor(&self) -> Monitor {
        let entry = &self.core().entry;
        let Some(node) = entry.host() else {
            return Monitor::ready(ExitReason::NodeDown(entry.node_id().clone()));
        };
        let (id, rx) = node.register_monitor(entry.id());
        if entry
            .send_local(LocalBody::Monitor(id), None, false)
            .is_err()
        {
            node.forget_monitor(id);
            return Monitor::ready(entry.exit_reason().unwrap_or(ExitReason::NoSuchActor));
        }
        Monitor {
            rx: Some(rx),
            ready: None,
            fallback: ExitReason::NodeDown(entry.node_id().clone()),
        }
    }
}

impl<A: Actor> HandleCore<A> {
    fn with_migration_timeout(mut self) -> Self {
        let migration = self
            .entry
            .host()
            .map(|n| n.migration_timeout())
            .unwrap_or_default();
        // Prepare and commit each get the migration timeout; leave room for both.
        self.timeout = Some(
            self.timeout
                .unwrap_or(self.entry.timeout())
                .max(migration * 3),
        );
        self
    }
}

impl<A: Actor> Deref for Handle<A> {
    type Target = A::Calls;
    fn deref(&self) -> &A::Calls {
        &self.calls
    }
}

impl<A: Actor> Clone for Handle<A> {
    fn clone(&self) -> Self {
        Handle {
            calls: A::Calls::from_core(self.core().clone()),
        }
    }
}

impl<A: Actor> fmt::Debug for Handle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle<{}>({:?})", A::TYPE_TAG, self.core())
    }
}

impl<A: Actor> PartialEq for Handle<A> {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl<A: Actor> Eq for Handle<A> {}

impl<A: Actor> Hash for Handle<A> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

/// A handle on the wire: the actor, its type, where the sender last saw it,
/// and the sender's node (a route that works for whoever received it from
/// there, even without a link to the actor's node).
#[derive(Serialize, Deserialize)]
struct HandleWire {
    actor: ActorId,
    type_tag: String,
    node: NodeId,
    epoch: u64,
    via: NodeId,
}

impl<A: Actor> Serialize for Handle<A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let route = self.core().entry.route();
        HandleWire {
            actor: self.id(),
            type_tag: A::TYPE_TAG.to_owned(),
            node: route.node,
            epoch: route.epoch,
            via: self.core().entry.node_id().clone(),
        }
        .serialize(serializer)
    }
}

impl<'de, A: Actor> Deserialize<'de> for Handle<A> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let wire = HandleWire::deserialize(deserializer)?;
        if wire.type_tag != A::TYPE_TAG {
            return Err(D::Error::custom(Error::WrongType {
                what: format!("handle of actor {}", wire.actor),
                expected: A::TYPE_TAG.to_owned(),
                found: wire.type_tag,
            }));
        }
        let node =
            crate::api::codec::decoding_node().ok_or_else(|| D::Error::custom(Error::Detached))?;
        let route = node.route_via(wire.node, wire.epoch, &wire.via);
        let mailbox = node
            .mailbox_for(wire.actor, A::TYPE_TAG, route)
            .map_err(D::Error::custom)?;
        match mailbox.downcast::<Arc<dyn Mailbox<A>>>() {
            Ok(mailbox) => Ok(Handle::from_mailbox(*mailbox)),
            Err(_) => Err(D::Error::custom(Error::WrongType {
                what: format!("handle of actor {}", wire.actor),
                expected: A::TYPE_TAG.to_owned(),
                found: "another type with the same tag".to_owned(),
            })),
        }
    }
}

/// The sink behind [`Handle::tell`]: queues a message without waiting.
#[derive(Debug)]
pub struct TellSink<'a, A: Actor> {
    core: &'a HandleCore<A>,
}

impl<A: Actor> MessageSink<A> for TellSink<'_, A> {
    type Output = Result<(), Error>;
    fn put(self, msg: A::Msg) -> Result<(), Error> {
        self.core.entry.send_local(LocalBody::User(msg), None, true)
    }
}

/// Resolves with the reason a watched actor ended. See [`Handle::monitor`].
#[derive(Debug)]
pub struct Monitor {
    rx: Option<oneshot::Receiver<ExitReason>>,
    ready: Option<ExitReason>,
    fallback: ExitReason,
}

impl Monitor {
    fn ready(reason: ExitReason) -> Self {
        Monitor {
            rx: None,
            ready: Some(reason.clone()),
            fallback: reason,
        }
    }
}

impl Future for Monitor {
    type Output = ExitReason;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<ExitReason> {
        if let Some(reason) = self.ready.take() {
            return Poll::Ready(reason);
        }
        let fallback = self.fallback.clone();
        match self.rx.as_mut() {
            None => Poll::Ready(fallback),
            Some(rx) => Pin::new(rx).poll(cx).map(|r| r.unwrap_or(fallback)),
        }
    }
}
