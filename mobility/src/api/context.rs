//! What a handler can do besides changing its state: know itself, arm timers,
//! stop, ask to move, and (state machines) postpone a message, arm state and
//! event timeouts and named timers, and answer a request later.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::api::actor::{Actor, Migratable};
use crate::api::handle::{Handle, MessageSink};
use crate::api::host::Host;
use crate::api::reply::{DeferredReply, ReplyAddr, ReplyTo};
use crate::api::timers::{TimerKind, Timers};
use crate::proto::id::{ActorId, Destination};

/// Names a timer armed with [`Context::send_after`],
/// [`Context::send_interval`] or the state machine timers; valid across
/// migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimerId(pub(crate) u64);

/// The actor's view of the runtime, passed to handlers that ask for it
/// (`ctx: &mut Context<Self>` as their last parameter) and to hooks.
pub struct Context<A: Actor> {
    host: Arc<dyn Host>,
    /// The node as its own layer knows it (`Context::node` gives it back).
    pub(crate) node: Box<dyn Any + Send + Sync>,
    me: Handle<A>,
    pub(crate) timers: Timers,
    pub(crate) stop_requested: bool,
    pub(crate) migrate_requested: Option<Destination>,
    /// The actor has states (its `state_key` is `Some`).
    pub(crate) state_machine: bool,
    /// The reply of the message being handled, until the handler returns or
    /// defers it.
    reply: Option<ReplyTo>,
    /// The current message is set aside until the state changes.
    pub(crate) postpone_requested: bool,
    /// The reply of a postponed message, for the cell to keep with it.
    pub(crate) postponed_reply: Option<ReplyTo>,
    /// Deferred replies still owed (they migrate; failed if the actor ends).
    pub(crate) owed: Vec<ReplyAddr>,
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(host: Arc<dyn Host>, me: Handle<A>, timers: Timers) -> Self {
        Context {
            node: host.node(),
            host,
            me,
            timers,
            stop_requested: false,
            migrate_requested: None,
            state_machine: false,
            reply: None,
            postpone_requested: false,
            postponed_reply: None,
            owed: Vec::new(),
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

    /// The node the actor runs on now, as the layers below the node see it
    /// (`Context::node`, defined with the node, gives the node itself).
    pub(crate) fn host(&self) -> &Arc<dyn Host> {
        &self.host
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

    fn timer(
        &mut self,
        after: Duration,
        interval: Option<Duration>,
        kind: TimerKind,
    ) -> A::Tell<TimerSink<'_, A>> {
        A::tell_with(TimerSink {
            timers: &mut self.timers,
            after,
            interval,
            kind,
            _actor: PhantomData,
        })
    }

    /// Sends a message to itself after `delay`: `ctx.send_after(d).tick()`.
    /// The timer moves with the actor, keeping its remaining time.
    pub fn send_after(&mut self, delay: Duration) -> A::Tell<TimerSink<'_, A>> {
        self.timer(delay, None, TimerKind::Plain)
    }

    /// Sends a message to itself every `period`, first after one period:
    /// `ctx.send_interval(d).tick()`. A zero period is raised to 1 ms.
    pub fn send_interval(&mut self, period: Duration) -> A::Tell<TimerSink<'_, A>> {
        let period = period.max(Duration::from_millis(1));
        self.timer(period, Some(period), TimerKind::Plain)
    }

    /// Arms the state timeout: the message is sent to itself after `delay`
    /// unless the state changes first: `ctx.set_state_timeout(d).relock()`.
    /// There is one state timeout: arming it again replaces it. It moves with
    /// the actor, keeping its remaining time.
    pub fn set_state_timeout(&mut self, delay: Duration) -> A::Tell<TimerSink<'_, A>> {
        self.timer(delay, None, TimerKind::State)
    }

    /// Cancels the state timeout; false if none is armed.
    pub fn cancel_state_timeout(&mut self) -> bool {
        self.timers.cancel_kind(&TimerKind::State)
    }

    /// Arms the event timeout: the message is sent to itself after `delay`
    /// unless any message is handled first: `ctx.set_event_timeout(d).idle()`.
    /// There is one event timeout: arming it again replaces it.
    pub fn set_event_timeout(&mut self, delay: Duration) -> A::Tell<TimerSink<'_, A>> {
        self.timer(delay, None, TimerKind::Event)
    }

    /// Cancels the event timeout; false if none is armed.
    pub fn cancel_event_timeout(&mut self) -> bool {
        self.timers.cancel_kind(&TimerKind::Event)
    }

    /// Arms the timer named `name`: the message is sent to itself after
    /// `delay`: `ctx.start_timer("retry", d).retry()`. Arming a name again
    /// replaces its timer; neither state changes nor messages cancel it.
    pub fn start_timer(
        &mut self,
        name: impl Into<String>,
        delay: Duration,
    ) -> A::Tell<TimerSink<'_, A>> {
        self.timer(delay, None, TimerKind::Named(name.into()))
    }

    /// Cancels the timer named `name`; false if it is not armed.
    pub fn cancel_timer_named(&mut self, name: &str) -> bool {
        self.timers.cancel_kind(&TimerKind::Named(name.to_owned()))
    }

    /// Sets the message being handled aside until the state changes; it is
    /// then handled again, before any newer message, in the order postponed.
    /// A postponed request keeps its caller waiting (within its timeout).
    /// Postponed messages move with the actor.
    ///
    /// Only for state machines (an enum actor, or a struct with a
    /// `#[mobile(state)]` field): an actor without states would never take
    /// the message back, so there the call is ignored with a warning.
    pub fn postpone(&mut self) {
        if self.state_machine {
            self.postpone_requested = true;
        } else {
            tracing::warn!(actor = %self.id(), "postpone() ignored: the actor has no states");
        }
    }

    /// Takes the reply of the request being handled, to answer it later with
    /// [`DeferredReply::send`] from any handler, on any node (keep it in the
    /// state: it migrates). The handler's own return value is then not sent;
    /// a handler that defers usually returns [`Reply::Later`](crate::Reply).
    /// For a fire-and-forget message or a timer, the deferred reply answers
    /// nobody.
    pub fn defer_reply<T: Migratable>(&mut self) -> DeferredReply<T> {
        let addr = self
            .reply
            .take()
            .and_then(|reply| reply.into_addr(&*self.host));
        if let Some(addr) = &addr {
            self.owed.push(addr.clone());
        }
        DeferredReply::new(addr)
    }

    /// Number of deferred replies the actor still owes.
    pub fn owed_replies(&self) -> usize {
        self.owed.len()
    }

    /// The reply of a handler that did not finish (it panicked).
    pub(crate) fn take_reply(&mut self) -> Option<ReplyTo> {
        self.reply.take()
    }

    /// Forgets an owed reply (it is being answered).
    pub(crate) fn settle(&mut self, addr: &ReplyAddr) {
        if let Some(i) = self.owed.iter().position(|a| a == addr) {
            self.owed.swap_remove(i);
        }
    }

    /// Generated dispatch: the reply of the message about to be handled.
    #[doc(hidden)]
    pub fn __mobility_begin(&mut self, reply: ReplyTo) {
        self.reply = Some(reply);
    }

    /// Generated dispatch: where the handler's return value goes (nobody if
    /// the handler deferred its reply or postponed the message).
    #[doc(hidden)]
    pub fn __mobility_end(&mut self) -> ReplyTo {
        let reply = self
            .reply
            .take()
            .unwrap_or_else(|| ReplyTo::nobody(self.me.id()));
        if self.postpone_requested {
            self.postponed_reply = Some(reply);
            return ReplyTo::nobody(self.me.id());
        }
        reply
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
            .field("node", self.host.id())
            .field("timers", &self.timers.len())
            .finish()
    }
}

/// The sink behind [`Context::send_after`] and [`Context::send_interval`].
#[doc(hidden)]
pub struct TimerSink<'a, A: Actor> {
    timers: &'a mut Timers,
    after: Duration,
    interval: Option<Duration>,
    kind: TimerKind,
    _actor: PhantomData<fn(A)>,
}

impl<A: Actor> fmt::Debug for TimerSink<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerSink")
            .field("after", &self.after)
            .field("interval", &self.interval)
            .field("kind", &self.kind)
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
        TimerId(
            self.timers
                .add_kind(self.after, self.interval, self.kind, bytes),
        )
    }
}
