//! What a handler can do besides changing its state: know itself, arm timers,
//! stop, and ask to move.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::handle::{Handle, MessageSink};
use crate::id::{ActorId, Destination};
use crate::node::Node;
use crate::timers::Timers;

/// Names a timer armed with [`Context::send_after`] or
/// [`Context::send_interval`]; valid across migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimerId(pub(crate) u64);

/// The actor's view of the runtime, passed to handlers that ask for it
/// (`ctx: &mut Context<Self>` as their last parameter) and to hooks.
pub struct Context<A: Actor> {
    node: Node,
    me: Handle<A>,
    pub(crate) timers: Timers,
    pub(crate) stop_requested: bool,
    pub(crate) migrate_requested: Option<Destination>,
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(node: Node, me: Handle<A>, timers: Timers) -> Self {
        Context {
            node,
            me,
            timers,
            stop_requested: false,
            migrate_requested: None,
        }
    }

    /// A handle to this actor (to give to others, or to send to itself).
    pub fn handle(&self) -> &Handle<A> {
        &self.me
    }

    /// This actor's id.
    pub fn id(&self) -> ActorId {
        self.me.id()
    }

    /// The node the actor runs on now.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Stops the actor once the current handler returns (`on_stop` runs).
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// Asks to migrate to `dest` once the current handler returns (the seed's
    /// `send_me`). If the migration fails, the actor goes on here and the
    /// failure is logged.
    pub fn migrate_to(&mut self, dest: impl Into<Destination>) {
        self.migrate_requested = Some(dest.into());
    }

    /// Sends a message to itself after `delay`: `ctx.send_after(d).tick()`.
    /// The timer moves with the actor, keeping its remaining time.
    pub fn send_after(&mut self, delay: Duration) -> A::Tell<TimerSink<'_, A>> {
        A::tell_with(TimerSink {
            timers: &mut self.timers,
            after: delay,
            interval: None,
            _actor: PhantomData,
        })
    }

    /// Sends a message to itself every `period`, first after one period:
    /// `ctx.send_interval(d).tick()`. A zero period is raised to 1 ms.
    pub fn send_interval(&mut self, period: Duration) -> A::Tell<TimerSink<'_, A>> {
        let period = period.max(Duration::from_millis(1));
        A::tell_with(TimerSink {
            timers: &mut self.timers,
            after: period,
            interval: Some(period),
            _actor: PhantomData,
        })
    }

    /// Cancels a timer; false if it already fired (one-shot) or is unknown.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.timers.cancel(timer.0)
    }

    /// Number of pending timers.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }
}

impl<A: Actor> fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("actor", &self.me)
            .field("node", self.node.id())
            .field("timers", &self.timers.len())
            .finish()
    }
}

/// The sink behind [`Context::send_after`] and [`Context::send_interval`].
pub struct TimerSink<'a, A: Actor> {
    timers: &'a mut Timers,
    after: Duration,
    interval: Option<Duration>,
    _actor: PhantomData<fn(A)>,
}

impl<A: Actor> fmt::Debug for TimerSink<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerSink")
            .field("after", &self.after)
            .field("interval", &self.interval)
            .finish()
    }
}

impl<A: Actor> MessageSink<A> for TimerSink<'_, A> {
    type Output = TimerId;
    fn put(self, msg: A::Msg) -> TimerId {
        // Timers are kept encoded: they move with the actor and repeat without
        // needing `Clone`. A derived message enum always encodes.
        let bytes = mobility_net::encode(&msg).unwrap_or_else(|e| {
            tracing::error!(error = %e, "timer message does not encode; the timer will deliver nothing");
            Vec::new()
        });
        TimerId(self.timers.add(self.after, self.interval, bytes))
    }
}
