//! The cell: the one task that reads a node's mailbox for one actor, for the
//! node's lifetime. It is in one of five modes:
//!
//! - `Hosting`: the actor lives here; messages are put in order by the
//!   sequence tracker and handled one at a time.
//! - `Migrating`: frozen at a message boundary, snapshot sent, until the
//!   migration protocol resumes it or hands it over; new messages wait
//!   aside.
//! - `Prepared`: (destination side) the actor is restored but paused until
//!   the protocol activates or drops it; new messages wait aside.
//! - `Forwarding`: the actor is elsewhere; messages are numbered (if local)
//!   and sent on to where it lives, and senders that came through here are
//!   told the newer location.
//! - `Stopped`: the actor ended; the cell finishes.
//!
//! The migration protocol itself is the pure machine of
//! `mobility_proto::handover`; `handover.rs` feeds it and carries out its
//! actions. The rest of the cell is split by job: `queued.rs` (messages),
//! `hosted.rs` (a live actor), `handling.rs` (one message), `routing.rs`
//! (a cell whose actor is elsewhere).

mod alarm;
mod handling;
mod handover;
mod host;
pub(crate) use self::host::{CellHost, NodeFuture, NodeRef};
mod hosted;
mod observed;
mod queued;
mod routing;

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use futures_util::FutureExt;
use mobility_proto::sequence::Tracker;

use tokio::sync::mpsc;

use self::handover::{Machine, Migrating, Pending, Prepared};
pub(crate) use self::hosted::Hosted;
use self::queued::Queued;
use crate::api::actor::Actor;
use crate::api::context::Context;
use crate::api::handle::Handle;
use crate::api::timers::Timers;
use crate::cell::alarm::Alarm;
use crate::mailbox::entry::{Entry, Route};
pub(crate) use crate::mailbox::envelope::{Control, Envelope, Item, NetControl, Numbered};
use crate::proto::error::ExitReason;
use crate::proto::id::{ActorId, NodeId};
use crate::proto::observe::NodeEvent;
use crate::proto::wire::{Origin, PeerMsg};

/// How many state changes in a row `on_enter` may cause before the cell
/// stops following them (a state machine that never settles).
const MAX_ENTERS: usize = 64;

/// How a new cell begins.
pub(crate) enum Start<A: Actor> {
    /// A freshly spawned actor.
    Host { state: A, name: Option<String> },
    /// A slot for an actor that lives elsewhere (route in the entry).
    Forward,
}
/// What the cell holds (see the module doc).
enum Mode<A: Actor> {
    Hosting(Box<Hosted<A>>),
    Migrating(Box<Migrating<A>>),
    Prepared(Box<Prepared<A>>),
    Forwarding(Route),
    /// Hosting, with the idle actor lent to callers while the cell waits.
    Lent,
    Stopped,
}

pub(crate) struct Cell<A: Actor> {
    node: NodeRef,
    entry: Arc<Entry<A>>,
    rx: mpsc::UnboundedReceiver<Envelope<A>>,
    stream: Origin,
    next_seq: u64,
    mode: Mode<A>,
    starting: Option<(A, Option<String>)>,
    /// The migration protocol of this actor on this node.
    handover: Machine,
    /// The machine's time origin.
    clock: tokio::time::Instant,
    /// A migration this node began, until its caller has the answer
    /// (boxed: 448 B that most cells never use).
    pending: Option<Box<Pending>>,
    /// The peer the node's table says this cell owes a word.
    owed_to: Option<NodeId>,
    /// When this cell last forwarded a message (or began forwarding).
    last_forward: tokio::time::Instant,
    /// Just arrived: tell this source, for this epoch, when the first
    /// message has been handled.
    first_notice: Option<(NodeId, u64)>,
}

impl<A: Actor> Drop for Cell<A> {
    fn drop(&mut self) {
        // A cell dropped while its actor is lent (its task aborted) must not
        // leave it in the slot: the actor holds a handle to the entry that
        // holds the slot.
        self.entry.idle.close();
        // Its control queue has no reader any more.
        self.entry.control.close();
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without message".to_owned()
    }
}
impl<A: Actor> Cell<A> {
    pub(crate) fn new(
        node: NodeRef,
        entry: Arc<Entry<A>>,
        rx: mpsc::UnboundedReceiver<Envelope<A>>,
        start: Start<A>,
        stream: Origin,
    ) -> Self {
        let timing = handover::timing(&node);
        let me = node.id().clone();
        let (mode, starting, machine) = match start {
            Start::Host { state, name } => (
                Mode::Stopped,
                Some((state, name)),
                Machine::hosting(me, 0, timing),
            ),
            Start::Forward => {
                let route = entry.route();
                let machine = Machine::forwarding(me, handover::to_proto(&route), timing);
                (Mode::Forwarding(route), None, machine)
            }
        };
        Cell {
            node,
            entry,
            rx,
            stream,
            next_seq: 0,
            mode,
            starting,
            handover: machine,
            clock: tokio::time::Instant::now(),
            pending: None,
            owed_to: None,
            last_forward: tokio::time::Instant::now(),
            first_notice: None,
        }
    }

    fn id(&self) -> ActorId {
        self.entry.id
    }

    fn new_context(&self, timers: Timers) -> Context<A> {
        Context::new(
            self.node.clone(),
            Handle::from_mailbox(self.entry.clone()),
            timers,
        )
    }

    /// The cell's life. Its state machine lives in every actor's task for
    /// as long as the actor: what runs rarely (the start, control messages,
    /// timers, a borrower's leftovers) is boxed so as not to size it. The
    /// cell is boxed too: an async fn keeps its argument and the moved
    /// local apart, which would hold the cell twice.
    pub(crate) async fn run(mut self: Box<Self>) {
        if let Some((state, name)) = self.starting.take() {
            Box::pin(self.start(state, name)).await;
        }
        let mut alarm = Alarm::default();
        loop {
            if matches!(self.mode, Mode::Stopped) {
                break;
            }
            if let Mode::Hosting(hosted) = &mut self.mode {
                if let Some(item) = hosted.queue.pop_front() {
                    self.entry.activity.set_in_cell(hosted.queue.len());
                    self.handle(item).await;
                    if let Some((source, epoch)) = self.first_notice.take() {
                        let actor = self.id();
                        let _ = self
                            .node
                            .send_peer(&source, &PeerMsg::FirstHandled { actor, epoch });
                    }
                    // Between queued items: control still comes first, and
                    // items that were queued, not just received, spend no
                    // cooperative budget on their own (a long queue must not
                    // starve a task woken on this worker: the peer task
                    // carrying a commit, say).
                    if self.has_queued() {
                        tokio::task::consume_budget().await;
                        while let Some(control) = self.entry.control.try_recv() {
                            Box::pin(self.on_control(control)).await;
                        }
                    }
                    continue;
                }
            }
            // Nothing ready to handle (or not hosting): none waits in the cell.
            self.entry.activity.set_in_cell(0);
            let wakeup = self.next_wakeup();
            let lent = match self.lend_idle_actor() {
                Lend::Lent => true,
                Lend::Kept => false,
                Lend::Drained => continue,
            };
            // Control first; receiving spends the task's budget.
            let event = std::future::poll_fn(|cx| {
                if let Poll::Ready(control) = self.entry.control.poll_recv(cx) {
                    return Poll::Ready(Event::Control(control));
                }
                if let Poll::Ready(Some(envelope)) = self.rx.poll_recv(cx) {
                    return Poll::Ready(Event::Envelope(envelope));
                }
                if lent && self.entry.idle.poll_attention(cx).is_ready() {
                    return Poll::Ready(Event::Attention);
                }
                alarm.poll_at(cx, wakeup).map(|()| Event::Wakeup)
            })
            .await;
            // Whatever woke the cell, it takes the actor back first.
            let attention = lent && self.take_back_idle_actor().await;
            match event {
                Event::Control(control) => Box::pin(self.on_control(control)).await,
                Event::Envelope(envelope) => self.on_envelope(envelope),
                Event::Wakeup => Box::pin(self.on_wakeup()).await,
                Event::Attention => {}
            }
            // After the event: a message it brought was sent while or after
            // the borrower ran, and must queue before anything a stop or a
            // move does with the mailbox.
            if attention {
                Box::pin(self.after_borrower()).await;
            }
        }
        (*self).finish();
    }

    /// Starts a freshly spawned actor: `on_start`, then its first state.
    async fn start(&mut self, state: A, name: Option<String>) {
        let mut ctx = self.new_context(Timers::default());
        ctx.state_machine = state.state_key().is_some();
        let mut hosted = Box::new(Hosted {
            state,
            ctx,
            tracker: Tracker::default(),
            queue: VecDeque::new(),
            monitors: Vec::new(),
            name,
            epoch: 0,
            postponed: Vec::new(),
            event_timeout_queued: false,
            panicked: None,
        });
        let started = AssertUnwindSafe(hosted.state.on_start(&mut hosted.ctx))
            .catch_unwind()
            .await;
        match started {
            Ok(()) => {
                let state_machine = hosted.ctx.state_machine;
                self.node
                    .announce_hosting(self.entry.id, 0, hosted.name.as_deref(), A::TYPE_TAG);
                self.node.emit(NodeEvent::Spawned {
                    actor: self.entry.id,
                    type_tag: A::TYPE_TAG,
                    name: hosted.name.clone(),
                });
                self.mode = Mode::Hosting(hosted);
                if state_machine {
                    self.enter_state(true).await;
                }
                self.after_handler().await;
            }
            Err(panic) => {
                self.exit(hosted, ExitReason::Panicked(panic_message(&*panic)), None)
                    .await
            }
        }
    }

    /// Lends the idle actor to this node's callers while the cell waits
    /// (see `idle.rs`): only an actor without states, with nothing queued,
    /// no arrival notice owed, and every message this node's senders sent
    /// handled. (After a move here, some may still be on their way back
    /// from the old location, or held until those arrive: a caller's
    /// request must not overtake them.)
    fn lend_idle_actor(&mut self) -> Lend {
        let lendable = self.node.calls_on_caller_task()
            && self.first_notice.is_none()
            && matches!(&self.mode, Mode::Hosting(h)
                if h.queue.is_empty()
                    && !h.ctx.state_machine
                    && h.tracker.next_expected(&self.stream) == self.next_seq);
        if !lendable {
            return Lend::Kept;
        }
        loop {
            // A message came in since the cell last looked: the mailbox
            // goes first.
            if self.entry.idle.take_mark() && self.drain_mailbox() {
                return Lend::Drained;
            }
            let Mode::Hosting(hosted) = std::mem::replace(&mut self.mode, Mode::Lent) else {
                return Lend::Kept;
            };
            match self.entry.idle.lend(hosted) {
                Ok(()) => return Lend::Lent,
                // Marked meanwhile: look again.
                Err(hosted) => self.mode = Mode::Hosting(Hosted::from_lent(hosted)),
            }
        }
    }

    /// Takes in whatever the mailbox holds now; true if anything.
    fn drain_mailbox(&mut self) -> bool {
        let mut drained = false;
        while let Ok(envelope) = self.rx.try_recv() {
            self.on_envelope(envelope);
            drained = true;
        }
        drained
    }

    /// Takes the lent actor back, waiting for a caller that runs a handler;
    /// true if a borrower asked for the cell.
    async fn take_back_idle_actor(&mut self) -> bool {
        let (hosted, attention) =
            std::future::poll_fn(|cx| self.entry.idle.poll_take_back(cx)).await;
        self.mode = Mode::Hosting(Hosted::from_lent(hosted));
        attention
    }

    /// Does what a handler run on a caller's task left for the cell: end
    /// the actor if it panicked, or carry out a stop or move it asked for.
    /// (A timer it armed needs nothing more: the next wait counts it.)
    async fn after_borrower(&mut self) {
        let Mode::Hosting(hosted) = &mut self.mode else {
            return;
        };
        if let Some(reason) = hosted.panicked.take() {
            let actor = self.id();
            let reason = ExitReason::Panicked(reason);
            tracing::error!(%actor, %reason, "handler panicked; the actor is down");
            let Mode::Hosting(hosted) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
                return;
            };
            self.exit(hosted, reason, None).await;
            return;
        }
        self.after_handler().await;
    }

    /// Whether the hosted actor has messages ready to handle.
    fn has_queued(&self) -> bool {
        matches!(&self.mode, Mode::Hosting(hosted) if !hosted.queue.is_empty())
    }

    /// Closes the mailbox and answers whatever is left in it.
    /// Why the actor ended here, as told to those who still send to it.
    fn exit_reason(&self) -> ExitReason {
        self.entry
            .exit
            .get()
            .cloned()
            .unwrap_or(ExitReason::NoSuchActor)
    }

    fn finish(mut self) {
        self.take_numbering();
        if let Some(owed) = self.owed_to.take() {
            self.node.owe_outcome(&owed, self.entry.id, false);
        }
        let reason = self.exit_reason();
        self.rx.close();
        while let Ok(envelope) = self.rx.try_recv() {
            let numbered = self.number(envelope);
            numbered.reject(&self.node, self.entry.id, &reason);
        }
        self.finish_migration();
        self.node.cell_finished(self.entry.id);
    }

    fn next_wakeup(&self) -> Option<tokio::time::Instant> {
        let timers = match &self.mode {
            Mode::Hosting(hosted) => hosted.ctx.timers.next_deadline(),
            _ => None,
        };
        let protocol = self.handover.poll_timeout().map(|at| self.clock + at);
        [timers, protocol, self.retire_at()]
            .into_iter()
            .flatten()
            .min()
    }

    async fn on_wakeup(&mut self) {
        let now = tokio::time::Instant::now();
        if self
            .handover
            .poll_timeout()
            .is_some_and(|at| self.clock + at <= now)
        {
            self.handover.handle_timeout(self.now());
            self.perform().await;
        }
        if let Mode::Hosting(hosted) = &mut self.mode {
            for (msg, kind) in hosted.ctx.timers.pop_due(now) {
                if kind == crate::api::timers::TimerKind::Event {
                    hosted.event_timeout_queued = true;
                }
                hosted.queue.push_back(Queued::Timer(msg, kind));
            }
        }
        if self.retire_at().is_some_and(|at| at <= now) {
            self.try_retire();
        }
    }

    /// Gives a local message its number in this node's stream.
    fn number(&mut self, envelope: Envelope<A>) -> Numbered<A> {
        self.entry.activity.taken();
        match envelope {
            Envelope::Local {
                body,
                reply,
                counted,
            } => {
                if counted {
                    self.entry.queued.fetch_sub(1, Ordering::AcqRel);
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                Numbered {
                    origin: self.stream.clone(),
                    seq,
                    item: Item::Local { body, reply },
                    hops: 0,
                }
            }
            Envelope::Wire(envelope) => Numbered::from_wire(*envelope),
        }
    }

    fn on_envelope(&mut self, envelope: Envelope<A>) {
        let numbered = self.number(envelope);
        match &mut self.mode {
            Mode::Hosting(hosted) => hosted.accept(numbered),
            Mode::Migrating(migrating) => migrating.arrived.push(numbered),
            Mode::Prepared(prepared) => prepared.arrived.push(numbered),
            Mode::Forwarding(route) => {
                let route = route.clone();
                self.forward(&route, numbered);
            }
            Mode::Lent => unreachable!("the cell takes its actor back before it reads the mailbox"),
            Mode::Stopped => {
                numbered.reject(&self.node, self.entry.id, &self.exit_reason());
            }
        }
    }

    /// Sends a message on toward where the actor lives, and tells a remote
    /// sender that came through here where that is.
    fn forward(&mut self, route: &Route, mut numbered: Numbered<A>) {
        self.last_forward = tokio::time::Instant::now();
        // Its node was declared failed and the actor lives on elsewhere:
        // a new stream begins there (see `Node::relocated`).
        let relocated = self.node.relocated(self.id(), route);
        let route = match &relocated {
            Some(relocated) => {
                self.restream(relocated.node.clone(), relocated.epoch);
                if matches!(numbered.item, Item::Local { .. })
                    && numbered.origin.node == *self.node.id()
                {
                    numbered.origin = self.stream.clone();
                    numbered.seq = self.next_seq;
                    self.next_seq += 1;
                }
                relocated
            }
            None => route,
        };
        let mut envelope = numbered.into_wire(&*self.node, self.id());
        if !self.node.pass_through(self.id(), route, &mut envelope) {
            return;
        }
        let type_tag = A::TYPE_TAG.to_owned();
        if let Some(newer) = self.node.deliver_to(self.id(), type_tag, route, envelope) {
            self.reroute(newer);
        }
    }

    async fn on_control(&mut self, control: Control<A>) {
        match control {
            Control::Prepare {
                from,
                epoch,
                snapshot,
                started,
            } => self.on_prepare(from, epoch, snapshot, started).await,
            Control::Net(NetControl::Handover { from, frame }) => {
                self.on_handover_frame(from, frame).await
            }
            Control::Net(NetControl::Committed {
                from,
                epoch,
                queued,
            }) => self.on_committed(from, epoch, queued).await,
            Control::Net(NetControl::FirstHandled { epoch }) => self.on_first_handled(epoch),
            Control::Net(NetControl::Moved { node, epoch }) => self.reroute(Route { node, epoch }),
            Control::Net(NetControl::PeerLost(peer)) => {
                self.handover.peer_lost(&peer, self.now());
                self.perform().await;
                // Its first handled message will not be heard of.
                if self
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.handed_over_to(&peer))
                    && self.handover.owes().is_none()
                {
                    self.finish_migration();
                }
            }
            Control::Net(NetControl::PeerUp(peer)) => {
                self.handover.peer_up(&peer);
                self.perform().await;
            }
            Control::Net(NetControl::Restream { node, epoch }) => self.restream(node, epoch),
            Control::Net(NetControl::MemberFailed(peer)) => {
                self.handover.peer_failed(&peer);
                self.perform().await;
            }
            Control::Net(NetControl::Fenced) => {
                self.handover.fenced();
                self.perform().await;
            }
            Control::Net(NetControl::Shutdown) => {
                let reason = ExitReason::NodeDown(self.node.id().clone());
                // What local senders already handed a forwarder goes on
                // to the actor: they were told it was sent.
                if let Mode::Forwarding(route) = &self.mode {
                    let route = route.clone();
                    self.forward_pending(&route);
                }
                match std::mem::replace(&mut self.mode, Mode::Stopped) {
                    Mode::Hosting(hosted) => self.exit(hosted, reason, None).await,
                    Mode::Migrating(migrating) => {
                        let hosted = (*migrating).into_hosted();
                        self.exit(hosted, reason, None).await
                    }
                    _ => {
                        let _ = self.entry.exit.set(reason);
                    }
                }
            }
        }
    }
}

/// What woke a waiting cell.
enum Event<A: Actor> {
    Control(Control<A>),
    Envelope(Envelope<A>),
    Wakeup,
    /// A caller that ran a handler of the lent actor needs the cell.
    Attention,
}

/// What became of the idle actor before the cell waits.
enum Lend {
    /// Lent to callers.
    Lent,
    /// Kept: not idle, or not lendable.
    Kept,
    /// Messages came in meanwhile and were read: handle them first.
    Drained,
}
