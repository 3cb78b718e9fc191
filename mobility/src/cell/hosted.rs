//! An actor living on this node: its state, context, ordering and queue.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;

use mobility_proto::sequence::{Accepted, Tracker};

use super::panic_message;
use super::queued::Queued;
use crate::mailbox::envelope::Numbered;
use std::any::Any;

use super::host::NodeRef;
use crate::api::actor::Actor;
use crate::api::context::Context;
use crate::api::reply::ReplyTo;
use crate::api::timers::TimerKind;
use crate::mailbox::host::Lent;
use crate::proto::id::NodeId;
use crate::proto::migration::QueuedWire;
use crate::proto::wire::Origin;

/// An actor living on this node (active or paused).
pub(crate) struct Hosted<A: Actor> {
    pub(super) state: A,
    pub(super) ctx: Context<A>,
    pub(super) tracker: Tracker<Origin, Queued<A>>,
    pub(super) queue: VecDeque<Queued<A>>,
    pub(super) monitors: Vec<(NodeId, u64)>,
    pub(super) name: Option<String>,
    pub(super) epoch: u64,
    /// Messages postponed until the state changes, in order, in portable
    /// form (a local caller's channel is in the node's pending replies).
    pub(super) postponed: Vec<QueuedWire>,
    /// An event timeout fired and waits in the queue.
    pub(super) event_timeout_queued: bool,
    /// A handler run on a caller's task panicked with this: the cell ends
    /// the actor when it takes it back.
    pub(super) panicked: Option<String>,
}

impl<A: Actor> Hosted<A> {
    /// Any handled message cancels the event timeout, also one that already
    /// fired and waits in the queue.
    pub(super) fn cancel_event_timeout(&mut self) {
        self.ctx.timers.cancel_kind(&TimerKind::Event);
        if self.event_timeout_queued {
            self.queue
                .retain(|q| !matches!(q, Queued::Timer(_, TimerKind::Event)));
            self.event_timeout_queued = false;
        }
    }

    /// A state change: the state timeout is cancelled (also one that fired
    /// and waits in the queue) and the postponed messages come back first,
    /// in their order.
    pub(super) fn leave_state(&mut self, node: &NodeRef) {
        self.ctx.timers.cancel_kind(&TimerKind::State);
        self.queue
            .retain(|q| !matches!(q, Queued::Timer(_, TimerKind::State)));
        let actor = self.ctx.id();
        for wire in std::mem::take(&mut self.postponed).into_iter().rev() {
            self.queue.push_front(Queued::from_wire(wire, actor, node));
        }
    }

    /// Puts a numbered message in order; duplicates are dropped.
    pub(super) fn accept(&mut self, numbered: Numbered<A>) {
        let origin = numbered.origin.clone();
        let seq = numbered.seq;
        if let Accepted::Duplicate(_) =
            self.tracker
                .accept(&origin, seq, Queued::Numbered(numbered), &mut self.queue)
        {
            tracing::debug!(actor = %self.ctx.id(), node = %origin.node, seq, "duplicate message dropped");
        }
    }

    pub(super) fn pending_messages(&self) -> usize {
        self.queue.len()
    }

    /// Runs the handler of `msg` at once if it is a plain `fn`, catching a
    /// panic; gives the message back if the handler is `async`.
    #[allow(clippy::result_large_err)] // given back at once, never stored
    pub(super) fn run_plain(
        &mut self,
        msg: A::Msg,
        reply: ReplyTo,
    ) -> std::thread::Result<Result<(), (A::Msg, ReplyTo)>> {
        if !A::runs_now(&msg) {
            return Ok(Err((msg, reply)));
        }
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.state.dispatch_now(msg, &mut self.ctx, reply)
        }))
    }

    /// Handles `msg` on a caller's task while the actor is lent to it (see
    /// `idle.rs`); its handler must be a plain `fn` ([`Actor::runs_now`]).
    /// `Ok(true)`: the cell must look (a stop or move was asked, a timer
    /// armed, or the handler panicked).
    #[allow(clippy::result_large_err)] // given back at once, never stored
    pub(crate) fn handle_now(
        &mut self,
        msg: A::Msg,
        reply: ReplyTo,
    ) -> Result<bool, (A::Msg, ReplyTo)> {
        let armed = self.ctx.timers.armed();
        self.cancel_event_timeout();
        // The handler may spawn or arm timers: on the node's runtime, as
        // on its cell.
        let _runtime = self.ctx.host().runtime().enter();
        match self.run_plain(msg, reply) {
            Ok(Ok(())) => Ok(self.ctx.stop_requested
                || self.ctx.migrate_requested.is_some()
                || self.ctx.timers.armed() != armed),
            Ok(Err(back)) => Err(back),
            Err(panic) => {
                self.panicked = Some(panic_message(&*panic));
                Ok(true)
            }
        }
    }
}

impl<A: Actor> Lent<A> for Hosted<A> {
    fn handle_now(&mut self, msg: A::Msg, reply: ReplyTo) -> Result<bool, (A::Msg, ReplyTo)> {
        Hosted::handle_now(self, msg, reply)
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

impl<A: Actor> Hosted<A> {
    /// The actor back from its entry's idle slot, where only its cell puts
    /// it, so always this type.
    pub(super) fn from_lent(lent: Box<dyn Lent<A>>) -> Box<Self> {
        match lent.into_any().downcast::<Self>() {
            Ok(hosted) => hosted,
            Err(_) => unreachable!("only the cell lends its actor, as a `Hosted`"),
        }
    }
}
