//! What the api layer needs from the layers above it, as traits they
//! implement: [`Mailbox`] (a node's mailbox slot for one actor, what a
//! handle sends into) and [`Host`] (the node itself). Keeping these narrow
//! keeps imports pointing down: a handle or a context never names the node.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::api::actor::Actor;
use crate::api::deadline::Deadlines;
use crate::api::reply::{ReplyResult, ReplySender};
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{ActorId, Destination, NodeId, Route};

/// What a local sender asks of the actor.
#[derive(Debug)]
pub(crate) enum LocalBody<M> {
    User(M),
    Stop,
    Monitor(u64),
    /// Boxed: rare, and it would size every message slot of a mailbox.
    Migrate(Box<Destination>),
}

/// The node, as handles, contexts and replies see it.
pub(crate) trait Host: Send + Sync + 'static {
    /// This node's id.
    fn id(&self) -> &NodeId;
    /// Keeps a local caller's reply channel until the answer comes back from
    /// another node; the number to send with the request.
    fn register_pending(&self, actor: ActorId, sender: ReplySender) -> u64;
    /// Sends a reply to request `request` of node `origin`.
    fn send_reply(&self, origin: &NodeId, request: u64, result: Result<Vec<u8>, Error>);
    /// Registers a monitor of `actor`: its id and where the reason comes.
    fn register_monitor(&self, actor: ActorId) -> (u64, oneshot::Receiver<ExitReason>);
    /// Forgets a monitor that was never installed.
    fn forget_monitor(&self, id: u64);
    /// How long each step of a migration may take.
    fn migration_timeout(&self) -> Duration;
    /// The route to use for an actor last seen at `node` (`epoch`) by `via`.
    fn route_via(&self, node: NodeId, epoch: u64, via: &NodeId) -> Route;
    /// This node's mailbox for `actor`, of the type registered as
    /// `type_tag`, made (forwarding along `route`) if it has none: an
    /// `Arc<dyn Mailbox<A>>` in a box, for the caller to take out.
    fn mailbox_for(
        &self,
        actor: ActorId,
        type_tag: &'static str,
        route: Route,
    ) -> Result<Box<dyn Any + Send>, Error>;
    /// The tokio runtime the node runs on.
    fn runtime(&self) -> &tokio::runtime::Handle;
    /// The node's public handle, for the layer that knows its type
    /// (`Context::node`).
    fn node(&self) -> Box<dyn Any + Send + Sync>;
}

/// A node's mailbox slot for one actor of type `A`, as a handle sees it.
pub(crate) trait Mailbox<A: Actor>: Send + Sync + 'static {
    /// The actor.
    fn id(&self) -> ActorId;
    /// The node this slot belongs to.
    fn node_id(&self) -> &NodeId;
    /// Where this node believes the actor lives now.
    fn route(&self) -> Route;
    /// The node's default request timeout.
    fn timeout(&self) -> Duration;
    /// The node's clock for request timeouts.
    fn deadlines(&self) -> &Deadlines;
    /// Runs a request now on the caller's task if the actor is idle here
    /// and its handler is a plain `fn`; gives the message back otherwise.
    fn call_now(&self, msg: A::Msg) -> Result<oneshot::Receiver<ReplyResult>, A::Msg>;
    /// Queues a message from a handle of this node.
    fn send_local(
        &self,
        body: LocalBody<A::Msg>,
        reply: Option<ReplySender>,
        counted: bool,
    ) -> Result<(), Error>;
    /// The error a sender gets once the mailbox is closed.
    fn down_error(&self) -> Error;
    /// Why the actor ended, once it did.
    fn exit_reason(&self) -> Option<ExitReason>;
    /// The node, while it runs.
    fn host(&self) -> Option<Arc<dyn Host>>;
}
