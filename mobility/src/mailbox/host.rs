//! What the mailbox layer needs from the layers above it: the node's links
//! ([`Router`], for direct senders) and the cell's idle actor ([`Lent`], run
//! by callers on their own task).

use std::any::Any;

use crate::api::actor::Actor;
use crate::api::host::Host;
use crate::api::reply::ReplyTo;
use crate::proto::id::{ActorId, Route};
use crate::proto::wire::WireEnvelope;

/// The node, as direct senders see it: where an actor lives, and the links
/// that take a message there.
pub(crate) trait Router: Host {
    /// A route that leads to a member declared failed while the actor lives
    /// on elsewhere: the actor's new route (start a new stream there).
    fn relocated(&self, actor: ActorId, route: &Route) -> Option<Route>;
    /// Sends `envelope` toward the actor along `route`; a newer route if
    /// the node knows one (the sender's cell should follow it).
    fn deliver_to(
        &self,
        actor: ActorId,
        type_tag: String,
        route: &Route,
        envelope: WireEnvelope,
    ) -> Option<Route>;
}

/// An idle actor lent to its node's callers (see `idle.rs`).
pub(crate) trait Lent<A: Actor>: Send {
    /// Runs a request now: `Ok(true)` if the cell must look (a stop or move
    /// was asked, a timer armed, or the handler panicked); the message back
    /// if it cannot run here.
    #[allow(clippy::result_large_err)] // given back at once, never stored
    fn handle_now(&mut self, msg: A::Msg, reply: ReplyTo) -> Result<bool, (A::Msg, ReplyTo)>;
    /// The cell's own type again, when it takes the actor back.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}
