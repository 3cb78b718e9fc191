//! The cell: the one task that reads a node's mailbox for one actor, for the
//! node's lifetime. It is in one of five modes:
//!
//! - `Hosting`: the actor lives here; messages are put in order by the
//!   sequence tracker and handled one at a time.
//! - `Migrating`: frozen at a message boundary, snapshot sent, waiting for
//!   the destination's answer; new messages wait aside.
//! - `Prepared`: (destination side) the actor is restored but paused until
//!   the source commits; new messages wait aside.
//! - `Forwarding`: the actor is elsewhere; messages are numbered (if local)
//!   and sent on to where it lives, and senders that came through here are
//!   told the newer location.
//! - `Stopped`: the actor ended; the cell finishes.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::mpsc;

use crate::actor::Actor;
use crate::alarm::Alarm;
use crate::context::Context;
use crate::entry::{Entry, Envelope, LocalBody, Route};
use crate::error::{Error, ExitReason};
use crate::handle::Handle;
use crate::id::{ActorId, Destination, NodeId};
use crate::migration::{MigrationFailure, MigrationPhase, MigrationReport, QueuedWire, Snapshot};
use crate::node::Node;
use crate::reply::{ReplyAddr, ReplySender, ReplyTo};
use crate::timers::{TimerKind, Timers};
use crate::wire::{Origin, PeerMsg, WireBody, WireEnvelope};
use mobility_proto::sequence::{Accepted, Tracker};

/// Control messages from the node's links (untyped).
#[derive(Debug)]
pub(crate) enum NetControl {
    PrepareAck {
        epoch: u64,
        result: Result<u64, MigrationFailure>,
    },
    Commit {
        epoch: u64,
    },
    Committed {
        epoch: u64,
        queued: bool,
    },
    FirstHandled {
        epoch: u64,
    },
    Abort {
        epoch: u64,
    },
    Moved {
        node: NodeId,
        epoch: u64,
    },
    /// The link to this node is gone for good.
    PeerLost(NodeId),
    /// A (new) session with this node is up.
    PeerUp(NodeId),
    /// The node this cell forwarded through died, maybe with messages of
    /// its stream: go to `node` from now on, in a new stream (the actor
    /// would otherwise wait forever for the lost numbers).
    Restream {
        node: NodeId,
        epoch: u64,
    },
    /// The destination `from` of migration `epoch` asks for its outcome.
    Resolve {
        epoch: u64,
        from: NodeId,
    },
    /// This member of the cluster was declared failed.
    MemberFailed(NodeId),
    Shutdown,
}

/// Control messages to a cell: from links, or a decoded arriving actor.
pub(crate) enum Control<A: Actor> {
    Net(NetControl),
    Prepare {
        from: NodeId,
        epoch: u64,
        snapshot: Box<Snapshot<A>>,
        started: Instant,
    },
}

/// How a new cell begins.
pub(crate) enum Start<A: Actor> {
    /// A freshly spawned actor.
    Host { state: A, name: Option<String> },
    /// A slot for an actor that lives elsewhere (route in the entry).
    Forward,
}

/// A message with its place in its stream.
pub(crate) struct Numbered<A: Actor> {
    pub(crate) origin: Origin,
    pub(crate) seq: u64,
    pub(crate) item: Item<A>,
    /// Forwarders passed so far.
    pub(crate) hops: u8,
}

pub(crate) enum Item<A: Actor> {
    Local {
        body: LocalBody<A::Msg>,
        reply: Option<ReplySender>,
    },
    Wire {
        body: WireBody,
        reply: Option<u64>,
    },
}

/// A message ready to be handled.
enum Queued<A: Actor> {
    Numbered(Numbered<A>),
    /// A timer that fired, with its kind.
    Timer(Vec<u8>, TimerKind),
    /// A postponed message back after a state change: handled again.
    Replay {
        msg: Vec<u8>,
        reply: ReplyTo,
    },
}

/// How many state changes in a row `on_enter` may cause before the cell
/// stops following them (a state machine that never settles).
const MAX_ENTERS: usize = 64;

/// How many times a commit is said again before the source stops waiting
/// for its acknowledgement.
const COMMIT_RETRIES: u32 = 3;

impl<A: Actor> Numbered<A> {
    fn from_wire(envelope: WireEnvelope) -> Self {
        Numbered {
            origin: envelope.origin,
            seq: envelope.seq,
            item: Item::Wire {
                body: envelope.body,
                reply: envelope.reply,
            },
            hops: envelope.hops,
        }
    }

    /// The portable form; local reply channels move into the node's table of
    /// pending replies. A message that cannot be encoded is answered with the
    /// error and travels as a no-op, so its number is not lost.
    pub(crate) fn into_wire(self, node: &Node, actor: ActorId) -> WireEnvelope {
        let (body, reply) = match self.item {
            Item::Wire { body, reply } => (body, reply),
            Item::Local { body, reply } => {
                let body = match body {
                    LocalBody::User(msg) => match mobility_net::encode(&msg) {
                        Ok(bytes) => WireBody::User(bytes),
                        Err(e) => {
                            if let Some(reply) = reply {
                                let _ = reply.send(Err(Error::from(e)));
                            }
                            return WireEnvelope {
                                origin: self.origin,
                                seq: self.seq,
                                body: WireBody::Noop,
                                reply: None,
                                hops: self.hops,
                            };
                        }
                    },
                    LocalBody::Stop => WireBody::Stop,
                    LocalBody::Monitor(id) => WireBody::Monitor(id),
                    LocalBody::Migrate(dest) => WireBody::Migrate(dest),
                };
                (
                    body,
                    reply.map(|sender| node.register_pending(actor, sender)),
                )
            }
        };
        WireEnvelope {
            origin: self.origin,
            seq: self.seq,
            body,
            reply,
            hops: self.hops,
        }
    }

    /// Answers this message with `reason` without handling it.
    fn reject(self, node: &Node, actor: ActorId, reason: &ExitReason) {
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
    fn into_wire(self, node: &Node, actor: ActorId) -> QueuedWire {
        match self {
            Queued::Numbered(n) => QueuedWire::Numbered(n.into_wire(node, actor)),
            Queued::Timer(bytes, kind) => QueuedWire::Timer(bytes, kind),
            Queued::Replay { msg, reply } => QueuedWire::Replay {
                msg,
                reply: reply.into_addr(node),
            },
        }
    }

    fn from_wire(wire: QueuedWire, actor: ActorId, node: &Node) -> Self {
        match wire {
            QueuedWire::Numbered(envelope) => Queued::Numbered(Numbered::from_wire(envelope)),
            QueuedWire::Timer(bytes, kind) => Queued::Timer(bytes, kind),
            QueuedWire::Replay { msg, reply } => Queued::Replay {
                msg,
                reply: ReplyTo::from_addr(actor, node, reply),
            },
        }
    }

    /// Answers a waiting caller that this message will not be handled.
    fn reject(self, node: &Node, actor: ActorId, reason: &ExitReason) {
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
fn reject_addr(node: &Node, addr: Option<ReplyAddr>, actor: ActorId, reason: &ExitReason) {
    if let Some(addr) = addr {
        let error = Error::ActorDown {
            actor,
            reason: reason.clone(),
        };
        node.send_reply(&addr.node, addr.request, Err(error));
    }
}

/// An actor living on this node (active or paused).
pub(crate) struct Hosted<A: Actor> {
    state: A,
    ctx: Context<A>,
    tracker: Tracker<Origin, Queued<A>>,
    queue: VecDeque<Queued<A>>,
    monitors: Vec<(NodeId, u64)>,
    name: Option<String>,
    epoch: u64,
    /// Messages postponed until the state changes, in order, in portable
    /// form (a local caller's channel is in the node's pending replies).
    postponed: Vec<QueuedWire>,
    /// An event timeout fired and waits in the queue.
    event_timeout_queued: bool,
    /// A handler run on a caller's task panicked with this: the cell ends
    /// the actor when it takes it back.
    panicked: Option<String>,
}

impl<A: Actor> Hosted<A> {
    /// Any handled message cancels the event timeout, also one that already
    /// fired and waits in the queue.
    fn cancel_event_timeout(&mut self) {
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
    fn leave_state(&mut self, node: &Node) {
        self.ctx.timers.cancel_kind(&TimerKind::State);
        self.queue
            .retain(|q| !matches!(q, Queued::Timer(_, TimerKind::State)));
        let actor = self.ctx.id();
        for wire in std::mem::take(&mut self.postponed).into_iter().rev() {
            self.queue.push_front(Queued::from_wire(wire, actor, node));
        }
    }

    /// Puts a numbered message in order; duplicates are dropped.
    fn accept(&mut self, numbered: Numbered<A>) {
        let origin = numbered.origin.clone();
        let seq = numbered.seq;
        if let Accepted::Duplicate(_) =
            self.tracker
                .accept(&origin, seq, Queued::Numbered(numbered), &mut self.queue)
        {
            tracing::debug!(actor = %self.ctx.id(), node = %origin.node, seq, "duplicate message dropped");
        }
    }

    fn pending_messages(&self) -> usize {
        self.queue.len()
    }

    /// Runs the handler of `msg` at once if it is a plain `fn`, catching a
    /// panic; gives the message back if the handler is `async`.
    #[allow(clippy::result_large_err)] // given back at once, never stored
    fn run_plain(
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
        let _runtime = self.ctx.node().runtime().enter();
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

/// Source side of a migration in progress.
struct Migrating<A: Actor> {
    hosted: Box<Hosted<A>>,
    dest: NodeId,
    epoch: u64,
    captured_queue: Vec<QueuedWire>,
    captured_held: Vec<(Origin, u64, QueuedWire)>,
    arrived: Vec<Numbered<A>>,
    reply: ReplyTo,
    started: Instant,
    capture: Duration,
    prepare_sent: Instant,
    deadline: tokio::time::Instant,
    state_bytes: u64,
    snapshot_bytes: u64,
    queued_messages: u64,
    timers: u64,
}

/// Destination side: restored, paused until commit.
struct Prepared<A: Actor> {
    hosted: Box<Hosted<A>>,
    source: NodeId,
    epoch: u64,
    /// When to ask the source for its decision if none came.
    ask_at: tokio::time::Instant,
    arrived: Vec<Numbered<A>>,
    previous: Route,
    name_reserved: bool,
}

/// Source side after commit, until the destination acknowledges it.
struct CommitWait {
    report: MigrationReport,
    reply: ReplyTo,
    started: Instant,
    commit_sent: Instant,
    deadline: tokio::time::Instant,
    /// Committed, waiting for the destination's first handled message.
    acknowledged: bool,
    /// Times the commit was said again for want of an acknowledgement.
    retries: u32,
}

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
    node: Node,
    entry: Arc<Entry<A>>,
    rx: mpsc::UnboundedReceiver<Envelope<A>>,
    control: mpsc::UnboundedReceiver<Control<A>>,
    stream: Origin,
    next_seq: u64,
    mode: Mode<A>,
    starting: Option<(A, Option<String>)>,
    commit_wait: Option<CommitWait>,
    /// When this cell last forwarded a message (or began forwarding).
    last_forward: tokio::time::Instant,
    /// Just arrived: tell this source, for this epoch, when the first
    /// message has been handled.
    first_notice: Option<(NodeId, u64)>,
    /// A migration's outcome its destination may not have heard (the link
    /// was lost): said again whenever a session with it comes up.
    outcome_owed: Option<OwedOutcome>,
    /// The node the hosted actor last came from, to acknowledge a commit
    /// it says again.
    commit_source: Option<NodeId>,
}

impl<A: Actor> Drop for Cell<A> {
    fn drop(&mut self) {
        // A cell dropped while its actor is lent (its task aborted) must not
        // leave it in the slot: the actor holds a handle to the entry that
        // holds the slot.
        self.entry.idle.close();
    }
}

/// The decision of a migration, owed to its destination.
#[derive(Debug, Clone)]
struct OwedOutcome {
    dest: NodeId,
    epoch: u64,
    commit: bool,
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
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
        node: Node,
        entry: Arc<Entry<A>>,
        rx: mpsc::UnboundedReceiver<Envelope<A>>,
        control: mpsc::UnboundedReceiver<Control<A>>,
        start: Start<A>,
        stream: Origin,
    ) -> Self {
        let (mode, starting) = match start {
            Start::Host { state, name } => (Mode::Stopped, Some((state, name))),
            Start::Forward => (Mode::Forwarding(entry.route()), None),
        };
        Cell {
            node,
            entry,
            rx,
            control,
            stream,
            next_seq: 0,
            mode,
            starting,
            commit_wait: None,
            last_forward: tokio::time::Instant::now(),
            first_notice: None,
            outcome_owed: None,
            commit_source: None,
        }
    }

    fn id(&self) -> ActorId {
        self.entry.id
    }

    fn new_context(&self, timers: Timers) -> Context<A> {
        Context::new(
            self.node.clone(),
            Handle::from_entry(self.entry.clone()),
            timers,
        )
    }

    pub(crate) async fn run(mut self) {
        if let Some((state, name)) = self.starting.take() {
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
                    self.node.announce_hosting(
                        self.entry.id,
                        0,
                        hosted.name.as_deref(),
                        A::TYPE_TAG,
                    );
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
        let mut alarm = Alarm::default();
        loop {
            if matches!(self.mode, Mode::Stopped) {
                break;
            }
            if let Mode::Hosting(hosted) = &mut self.mode {
                if let Some(item) = hosted.queue.pop_front() {
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
                        while let Ok(control) = self.control.try_recv() {
                            self.on_control(control).await;
                        }
                    }
                    continue;
                }
            }
            let wakeup = self.next_wakeup();
            let lent = match self.lend_idle_actor() {
                Lend::Lent => true,
                Lend::Kept => false,
                Lend::Drained => continue,
            };
            // Control first; receiving spends the task's budget.
            let event = std::future::poll_fn(|cx| {
                if let Poll::Ready(Some(control)) = self.control.poll_recv(cx) {
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
                Event::Control(control) => self.on_control(control).await,
                Event::Envelope(envelope) => self.on_envelope(envelope),
                Event::Wakeup => self.on_wakeup().await,
                Event::Attention => {}
            }
            // After the event: a message it brought was sent while or after
            // the borrower ran, and must queue before anything a stop or a
            // move does with the mailbox.
            if attention {
                self.after_borrower().await;
            }
        }
        self.finish();
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
                Err(hosted) => self.mode = Mode::Hosting(hosted),
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
        self.mode = Mode::Hosting(hosted);
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
    fn finish(mut self) {
        self.take_numbering();
        self.owe_outcome(None);
        let reason = self
            .entry
            .exit
            .get()
            .cloned()
            .unwrap_or(ExitReason::NoSuchActor);
        self.rx.close();
        while let Ok(envelope) = self.rx.try_recv() {
            let numbered = self.number(envelope);
            numbered.reject(&self.node, self.entry.id, &reason);
        }
        if let Some(wait) = self.commit_wait.take() {
            wait.reply.send(Ok::<_, Error>(wait.report));
        }
        self.node.cell_finished(self.entry.id);
    }

    fn next_wakeup(&self) -> Option<tokio::time::Instant> {
        let mode = match &self.mode {
            Mode::Hosting(hosted) => hosted.ctx.timers.next_deadline(),
            Mode::Migrating(migrating) => Some(migrating.deadline),
            Mode::Prepared(prepared) => Some(prepared.ask_at),
            _ => None,
        };
        let commit = self.commit_wait.as_ref().map(|w| w.deadline);
        [mode, commit, self.retire_at()].into_iter().flatten().min()
    }

    async fn on_wakeup(&mut self) {
        let now = tokio::time::Instant::now();
        if let Some(wait) = self.commit_wait.as_mut().filter(|w| w.deadline <= now) {
            if !wait.acknowledged && wait.retries < COMMIT_RETRIES {
                // The commit is idempotent: say it again and wait again.
                wait.retries += 1;
                wait.deadline = now + self.node.migration_timeout();
                let dest = wait.report.to.clone();
                self.resend_outcome(&dest);
            } else {
                if !wait.acknowledged {
                    let (actor, to) = (wait.report.actor, &wait.report.to);
                    tracing::warn!(%actor, %to, "commit never acknowledged; the actor was handed over");
                }
                self.finish_migration();
            }
        }
        if let Mode::Prepared(prepared) = &mut self.mode {
            if prepared.ask_at <= now {
                // No decision came: ask the source for it (again).
                prepared.ask_at = now + self.node.migration_timeout();
                let ask = PeerMsg::Resolve {
                    actor: self.entry.id,
                    epoch: prepared.epoch,
                };
                tracing::info!(actor = %self.entry.id, source = %prepared.source, "no decision on a prepared actor: asking its source");
                let _ = self.node.send_peer(&prepared.source, &ask);
            }
        }
        match &mut self.mode {
            Mode::Hosting(hosted) => {
                for (msg, kind) in hosted.ctx.timers.pop_due(now) {
                    if kind == TimerKind::Event {
                        hosted.event_timeout_queued = true;
                    }
                    hosted.queue.push_back(Queued::Timer(msg, kind));
                }
            }
            Mode::Migrating(migrating) if migrating.deadline <= now => {
                let timeout = self.node.migration_timeout();
                self.abort_migration(
                    MigrationPhase::Prepare,
                    MigrationFailure::Timeout(timeout),
                    true,
                );
            }
            _ => {}
        }
        if self.retire_at().is_some_and(|at| at <= now) {
            self.try_retire();
        }
    }

    /// Gives a local message its number in this node's stream.
    fn number(&mut self, envelope: Envelope<A>) -> Numbered<A> {
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
            Envelope::Wire(envelope) => Numbered::from_wire(envelope),
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
                let reason = self
                    .entry
                    .exit
                    .get()
                    .cloned()
                    .unwrap_or(ExitReason::NoSuchActor);
                numbered.reject(&self.node, self.entry.id, &reason);
            }
        }
    }

    /// Sends a message on toward where the actor lives, and tells a remote
    /// sender that came through here where that is.
    fn forward(&mut self, route: &Route, numbered: Numbered<A>) {
        self.last_forward = tokio::time::Instant::now();
        let mut envelope = numbered.into_wire(&self.node, self.id());
        if !self.node.pass_through(self.id(), route, &mut envelope) {
            return;
        }
        let type_tag = A::TYPE_TAG.to_owned();
        if let Some(newer) = self.node.deliver_to(self.id(), type_tag, route, envelope) {
            self.reroute(newer);
        }
    }

    /// Handles one ready message (only called while hosting).
    async fn handle(&mut self, item: Queued<A>) {
        let Mode::Hosting(hosted) = &mut self.mode else {
            return;
        };
        let actor = hosted.ctx.id();
        // The message as bytes when it came so (kept if it may be postponed).
        let mut raw: Option<Vec<u8>> = None;
        let (body, reply) = match item {
            Queued::Timer(bytes, _) => {
                match crate::codec::decode_on::<A::Msg>(Some(&self.node), &bytes) {
                    Ok(msg) => {
                        raw = Some(bytes);
                        (LocalBody::User(msg), ReplyTo::nobody(actor))
                    }
                    Err(error) => {
                        tracing::error!(%actor, %error, "a timer message did not decode");
                        return;
                    }
                }
            }
            Queued::Replay { msg: bytes, reply } => {
                match crate::codec::decode_on::<A::Msg>(Some(&self.node), &bytes) {
                    Ok(msg) => {
                        raw = Some(bytes);
                        (LocalBody::User(msg), reply)
                    }
                    Err(error) => {
                        tracing::error!(%actor, %error, "a postponed message did not decode");
                        reply.fail(error);
                        return;
                    }
                }
            }
            Queued::Numbered(numbered) => match numbered.item {
                Item::Local { body, reply } => (body, ReplyTo::local(actor, reply)),
                Item::Wire { body, reply } => {
                    let reply = ReplyTo::remote(
                        actor,
                        self.node.clone(),
                        numbered.origin.node.clone(),
                        reply,
                    );
                    let body = match body {
                        WireBody::User(bytes) => {
                            match crate::codec::decode_on::<A::Msg>(Some(&self.node), &bytes) {
                                Ok(msg) => {
                                    raw = Some(bytes);
                                    LocalBody::User(msg)
                                }
                                Err(error) => {
                                    tracing::warn!(%actor, %error, "a message did not decode; refused");
                                    reply.fail(error);
                                    return;
                                }
                            }
                        }
                        WireBody::Stop => LocalBody::Stop,
                        WireBody::Monitor(id) => {
                            hosted.monitors.push((numbered.origin.node, id));
                            return;
                        }
                        WireBody::Migrate(dest) => LocalBody::Migrate(dest),
                        WireBody::Noop => return,
                    };
                    (body, reply)
                }
            },
        };
        match body {
            LocalBody::User(msg) => {
                let before = hosted.state.state_key();
                hosted.cancel_event_timeout();
                // A state machine keeps the message while it is handled, in
                // case the handler postpones it.
                let kept = match before {
                    Some(_) if A::may_postpone(&msg) => {
                        raw.or_else(|| mobility_net::encode(&msg).ok())
                    }
                    _ => None,
                };
                hosted.ctx.postpone_requested = false;
                // A plain handler runs without making the dispatch future.
                let ran = match hosted.run_plain(msg, reply) {
                    Ok(Err((msg, reply))) => {
                        AssertUnwindSafe(hosted.state.dispatch(msg, &mut hosted.ctx, reply))
                            .catch_unwind()
                            .await
                    }
                    Ok(Ok(())) => Ok(()),
                    Err(panic) => Err(panic),
                };
                if let Err(panic) = ran {
                    let reason = ExitReason::Panicked(panic_message(&*panic));
                    tracing::error!(%actor, %reason, "handler panicked; the actor is down");
                    let Mode::Hosting(hosted) = std::mem::replace(&mut self.mode, Mode::Stopped)
                    else {
                        return;
                    };
                    self.exit(hosted, reason, None).await;
                    return;
                }
                let Mode::Hosting(hosted) = &mut self.mode else {
                    return;
                };
                if std::mem::take(&mut hosted.ctx.postpone_requested) {
                    let reply = hosted.ctx.postponed_reply.take();
                    match kept {
                        Some(msg) => hosted.postponed.push(QueuedWire::Replay {
                            msg,
                            reply: reply.and_then(|r| r.into_addr(&self.node)),
                        }),
                        None => {
                            tracing::error!(%actor, "a message could not be kept to postpone it; refused");
                            if let Some(reply) = reply {
                                reply.fail(Error::Codec(
                                    "the postponed message could not be encoded".into(),
                                ));
                            }
                        }
                    }
                }
                if before.is_some() && hosted.state.state_key() != before {
                    self.enter_state(false).await;
                }
                self.after_handler().await;
            }
            LocalBody::Monitor(id) => hosted.monitors.push((self.node.id().clone(), id)),
            LocalBody::Stop => {
                let Mode::Hosting(hosted) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
                    return;
                };
                self.exit(hosted, ExitReason::Stopped, Some(reply)).await;
            }
            LocalBody::Migrate(dest) => self.start_migration(dest, reply).await,
        }
    }

    /// A state machine entered a state (`initial`: its first, at start):
    /// leave the old one unless initial, run `on_enter`, and follow further
    /// changes `on_enter` makes.
    async fn enter_state(&mut self, initial: bool) {
        let Mode::Hosting(hosted) = &mut self.mode else {
            return;
        };
        let actor = hosted.ctx.id();
        if !initial {
            hosted.leave_state(&self.node);
        }
        for _ in 0..MAX_ENTERS {
            let key = hosted.state.state_key();
            let entered = AssertUnwindSafe(hosted.state.on_enter(&mut hosted.ctx))
                .catch_unwind()
                .await;
            if let Err(panic) = entered {
                let reason = ExitReason::Panicked(panic_message(&*panic));
                tracing::error!(%actor, %reason, "on_enter panicked; the actor is down");
                let Mode::Hosting(hosted) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
                    return;
                };
                self.exit(hosted, reason, None).await;
                return;
            }
            hosted.ctx.postpone_requested = false;
            if hosted.state.state_key() == key {
                return;
            }
            hosted.leave_state(&self.node);
        }
        tracing::warn!(%actor, "on_enter changed the state {MAX_ENTERS} times in a row; not following further");
    }

    /// Carries out what the handler asked of its context.
    async fn after_handler(&mut self) {
        let Mode::Hosting(hosted) = &mut self.mode else {
            return;
        };
        if hosted.ctx.stop_requested {
            let Mode::Hosting(hosted) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
                return;
            };
            self.exit(hosted, ExitReason::Stopped, None).await;
        } else if let Some(dest) = hosted.ctx.migrate_requested.take() {
            let actor = hosted.ctx.id();
            self.start_migration(dest, ReplyTo::nobody(actor)).await;
        }
    }

    /// Ends the actor: hooks, monitors, name, and every waiting message.
    async fn exit(
        &mut self,
        mut hosted: Box<Hosted<A>>,
        reason: ExitReason,
        stop_reply: Option<ReplyTo>,
    ) {
        let actor = self.id();
        if !matches!(reason, ExitReason::Panicked(_)) {
            let stopped = AssertUnwindSafe(hosted.state.on_stop(&mut hosted.ctx))
                .catch_unwind()
                .await;
            if let Err(panic) = stopped {
                tracing::error!(%actor, panic = %panic_message(&*panic), "on_stop panicked");
            }
        }
        let _ = self.entry.exit.set(reason.clone());
        self.entry.hosting.store(false, Ordering::Release);
        if let Some(name) = &hosted.name {
            self.node.release_name(name, actor);
        }
        self.node.announce_left(actor, hosted.name.as_deref());
        for (node, monitor) in hosted.monitors.drain(..) {
            self.node.send_down(&node, monitor, actor, reason.clone());
        }
        let queue: Vec<Queued<A>> = hosted.queue.drain(..).collect();
        let held = hosted
            .tracker
            .take_held()
            .into_iter()
            .map(|(_, _, item)| item);
        for item in queue.into_iter().chain(held) {
            item.reject(&self.node, actor, &reason);
        }
        for wire in std::mem::take(&mut hosted.postponed) {
            if let QueuedWire::Replay { reply, .. } = wire {
                reject_addr(&self.node, reply, actor, &reason);
            }
        }
        for addr in std::mem::take(&mut hosted.ctx.owed) {
            reject_addr(&self.node, Some(addr), actor, &reason);
        }
        if let Some(reply) = hosted.ctx.take_reply() {
            reply.fail(Error::ActorDown {
                actor,
                reason: reason.clone(),
            });
        }
        if let Some(reply) = stop_reply {
            reply.send(());
        }
        tracing::debug!(%actor, node = %self.node.id(), %reason, "actor ended");
        self.mode = Mode::Stopped;
    }

    // ---- migration, source side -------------------------------------------

    async fn start_migration(&mut self, dest: Destination, reply: ReplyTo) {
        let actor = self.id();
        let fail = |phase, failure| Error::Migration {
            actor,
            phase,
            failure,
        };
        // A `tcp://` destination is dialed here, at this message boundary and
        // before the freeze: nothing is captured until the link is up.
        let dest = match self.node.resolve(&dest).await {
            Ok(node) => node,
            Err(failure) => {
                reply.send(Err::<MigrationReport, _>(fail(
                    MigrationPhase::Validate,
                    failure,
                )));
                return;
            }
        };
        if dest == *self.node.id() {
            let failure = MigrationFailure::AlreadyThere(dest);
            reply.send(Err::<MigrationReport, _>(fail(
                MigrationPhase::Validate,
                failure,
            )));
            return;
        }
        if !self.node.has_peer(&dest) {
            let failure = MigrationFailure::Unreachable(dest.to_string());
            reply.send(Err::<MigrationReport, _>(fail(
                MigrationPhase::Validate,
                failure,
            )));
            return;
        }
        let Mode::Hosting(mut hosted) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let departed = AssertUnwindSafe(hosted.state.on_depart(&mut hosted.ctx))
            .catch_unwind()
            .await;
        if let Err(panic) = departed {
            let reason = ExitReason::Panicked(panic_message(&*panic));
            reply.send(Err::<MigrationReport, _>(fail(
                MigrationPhase::Capture,
                MigrationFailure::Stopped,
            )));
            self.exit(hosted, reason, None).await;
            return;
        }

        // Freeze: from here on, nothing is handled until commit or abort.
        let started = Instant::now();
        // The mailbox moves too: take in what is already queued for us.
        while let Ok(envelope) = self.rx.try_recv() {
            let numbered = self.number(envelope);
            hosted.accept(numbered);
        }
        let now = tokio::time::Instant::now();
        let queue: Vec<QueuedWire> = hosted
            .queue
            .drain(..)
            .map(|q| q.into_wire(&self.node, actor))
            .collect();
        let held: Vec<(Origin, u64, QueuedWire)> = hosted
            .tracker
            .take_held()
            .into_iter()
            .map(|(origin, seq, item)| (origin, seq, item.into_wire(&self.node, actor)))
            .collect();
        let mut tracker: Tracker<Origin, WireEnvelope> = hosted.tracker.clone_expected();
        let mut scratch = VecDeque::new();
        for (origin, seq, item) in &held {
            if let QueuedWire::Numbered(envelope) = item {
                tracker.accept(origin, *seq, envelope.clone(), &mut scratch);
            }
        }
        let (timers, next_timer) = hosted.ctx.timers.snapshot(now);
        let queued_messages = (queue.len() + held.len()) as u64;
        let timer_count = timers.len() as u64;
        let snapshot = Snapshot {
            state: &hosted.state,
            from: self.node.id().clone(),
            name: hosted.name.clone(),
            queue,
            tracker,
            timers,
            next_timer,
            monitors: hosted.monitors.clone(),
            postponed: hosted.postponed.clone(),
            owed: hosted.ctx.owed.clone(),
        };
        // The snapshot is encoded straight into the prepare frame, after its
        // header: one pass over the state, no copy.
        let epoch = hosted.epoch + 1;
        let header = PeerMsg::Prepare {
            actor,
            type_tag: A::TYPE_TAG.to_owned(),
            schema: A::SCHEMA,
            epoch,
        };
        let encoded = crate::wire::frame_of(&header).and_then(|mut frame| {
            let start = frame.len();
            mobility_net::encode_into(&snapshot, &mut frame).map(|()| (frame, start))
        });
        // Measure the state alone: the same snapshot with a unit state (1 byte).
        let meta = snapshot.with_state(());
        let meta_bytes = mobility_net::encode(&meta).map_or(0, |b| b.len() as u64);
        let captured_queue = meta.queue;
        let (frame, snapshot_start) = match encoded {
            Ok(encoded) => encoded,
            Err(error) => {
                tracing::warn!(%actor, %error, "snapshot does not encode; migration abandoned");
                self.resume(hosted, captured_queue, held, Vec::new());
                reply.send(Err::<MigrationReport, _>(fail(
                    MigrationPhase::Capture,
                    MigrationFailure::Codec(error.to_string()),
                )));
                return;
            }
        };
        let capture = started.elapsed();
        let snapshot_bytes = (frame.len() - snapshot_start) as u64;
        let prepare_sent = Instant::now();
        if let Err(error) = self.node.send_frame(&dest, frame) {
            tracing::warn!(%actor, to = %dest, %error, "prepare could not be sent");
            self.resume(hosted, captured_queue, held, Vec::new());
            reply.send(Err::<MigrationReport, _>(fail(
                MigrationPhase::Prepare,
                MigrationFailure::LinkDown,
            )));
            return;
        }
        tracing::debug!(%actor, to = %dest, epoch, snapshot_bytes, ?capture, "prepare sent");
        self.mode = Mode::Migrating(Box::new(Migrating {
            hosted,
            dest,
            epoch,
            captured_queue,
            captured_held: held,
            arrived: Vec::new(),
            reply,
            started,
            capture,
            prepare_sent,
            deadline: tokio::time::Instant::now() + self.node.migration_timeout(),
            state_bytes: snapshot_bytes.saturating_sub(meta_bytes.saturating_sub(1)),
            snapshot_bytes,
            queued_messages,
            timers: timer_count,
        }));
    }

    /// Puts a frozen actor back to work after a failed migration: the
    /// captured queue first, then held messages, then what arrived meanwhile.
    fn resume(
        &mut self,
        mut hosted: Box<Hosted<A>>,
        queue: Vec<QueuedWire>,
        held: Vec<(Origin, u64, QueuedWire)>,
        arrived: Vec<Numbered<A>>,
    ) {
        let actor = self.id();
        hosted.queue = queue
            .into_iter()
            .map(|q| Queued::from_wire(q, actor, &self.node))
            .collect();
        for (origin, seq, item) in held {
            let item = Queued::from_wire(item, actor, &self.node);
            let _ = hosted.tracker.accept(&origin, seq, item, &mut hosted.queue);
        }
        for numbered in arrived {
            hosted.accept(numbered);
        }
        self.mode = Mode::Hosting(hosted);
    }

    fn abort_migration(
        &mut self,
        phase: MigrationPhase,
        failure: MigrationFailure,
        tell_destination: bool,
    ) {
        let Mode::Migrating(migrating) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let migrating = *migrating;
        let actor = self.id();
        if tell_destination {
            let abort = PeerMsg::Abort {
                actor,
                epoch: migrating.epoch,
            };
            let _ = self.node.send_peer(&migrating.dest, &abort);
        }
        // The destination may hold a prepared copy it never hears about:
        // the abort is said again when a session with it comes up.
        self.owe_outcome(Some(OwedOutcome {
            dest: migrating.dest.clone(),
            epoch: migrating.epoch,
            commit: false,
        }));
        tracing::warn!(%actor, to = %migrating.dest, %phase, %failure, "migration failed; the actor stays");
        self.resume(
            migrating.hosted,
            migrating.captured_queue,
            migrating.captured_held,
            migrating.arrived,
        );
        migrating
            .reply
            .send(Err::<MigrationReport, _>(Error::Migration {
                actor,
                phase,
                failure,
            }));
    }

    /// The destination holds the actor, paused: hand over and forward.
    fn commit_migration(&mut self, restore: Duration) {
        let Mode::Migrating(migrating) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let migrating = *migrating;
        let actor = self.id();
        let prepare = migrating.prepare_sent.elapsed();
        let commit = PeerMsg::Commit {
            actor,
            epoch: migrating.epoch,
        };
        let commit_sent = Instant::now();
        if self.node.send_peer(&migrating.dest, &commit).is_err() {
            // Not committed: the destination never activates without it.
            self.mode = Mode::Migrating(Box::new(migrating));
            self.abort_migration(MigrationPhase::Commit, MigrationFailure::LinkDown, true);
            return;
        }
        let route = Route {
            node: migrating.dest.clone(),
            epoch: migrating.epoch,
        };
        self.entry.set_route(route.clone());
        self.entry.hosting.store(false, Ordering::Release);
        self.node
            .announce_left(actor, migrating.hosted.name.as_deref());
        let forwarded_messages = migrating.arrived.len() as u64;
        for numbered in migrating.arrived {
            self.forward(&route, numbered);
        }
        let report = MigrationReport {
            actor,
            type_tag: A::TYPE_TAG.to_owned(),
            from: self.node.id().clone(),
            to: migrating.dest.clone(),
            epoch: migrating.epoch,
            state_bytes: migrating.state_bytes,
            snapshot_bytes: migrating.snapshot_bytes,
            queued_messages: migrating.queued_messages,
            timers: migrating.timers,
            forwarded_messages,
            capture: migrating.capture,
            prepare,
            restore,
            commit: Duration::ZERO,
            freeze: Duration::ZERO,
            first_message: None,
        };
        self.mode = Mode::Forwarding(route);
        self.last_forward = tokio::time::Instant::now();
        // Owed until acknowledged: a commit lost with a session is said
        // again on the next one.
        self.owe_outcome(Some(OwedOutcome {
            dest: migrating.dest.clone(),
            epoch: migrating.epoch,
            commit: true,
        }));
        // The state stays only at the destination now; drop ours.
        drop(migrating.hosted);
        self.commit_wait = Some(CommitWait {
            report,
            reply: migrating.reply,
            started: migrating.started,
            commit_sent,
            deadline: tokio::time::Instant::now() + self.node.migration_timeout(),
            acknowledged: false,
            retries: 0,
        });
    }

    fn on_committed(&mut self, epoch: u64, queued: bool) {
        if self
            .outcome_owed
            .as_ref()
            .is_some_and(|o| o.commit && o.epoch == epoch)
        {
            self.owe_outcome(None);
        }
        let current = |w: &CommitWait| w.report.epoch == epoch && !w.acknowledged;
        let Some(wait) = self.commit_wait.as_mut().filter(|w| current(w)) else {
            tracing::debug!(actor = %self.id(), epoch, "stale commit acknowledgement");
            return;
        };
        wait.report.commit = wait.commit_sent.elapsed();
        wait.report.freeze = wait.started.elapsed();
        wait.acknowledged = true;
        if !queued {
            self.finish_migration();
        }
    }

    /// The destination handled its first message: the report is complete.
    fn on_first_handled(&mut self, epoch: u64) {
        let Some(wait) = self
            .commit_wait
            .as_mut()
            .filter(|w| w.report.epoch == epoch && w.acknowledged)
        else {
            return;
        };
        wait.report.first_message = Some(wait.started.elapsed());
        self.finish_migration();
    }

    /// Emits the migration's report and gives it to whoever asked.
    fn finish_migration(&mut self) {
        let Some(wait) = self.commit_wait.take() else {
            return;
        };
        let report = wait.report;
        tracing::info!(
            target: "mobility::migration",
            actor = %report.actor,
            from = %report.from,
            to = %report.to,
            epoch = report.epoch,
            freeze_us = report.freeze.as_micros() as u64,
            capture_us = report.capture.as_micros() as u64,
            prepare_us = report.prepare.as_micros() as u64,
            transfer_us = report.transfer().as_micros() as u64,
            restore_us = report.restore.as_micros() as u64,
            commit_us = report.commit.as_micros() as u64,
            first_message_us = report.first_message.map(|d| d.as_micros() as u64),
            state_bytes = report.state_bytes,
            snapshot_bytes = report.snapshot_bytes,
            queued = report.queued_messages,
            forwarded = report.forwarded_messages,
            "actor migrated"
        );
        wait.reply.send(Ok::<_, Error>(report));
    }

    // ---- migration, destination side --------------------------------------

    async fn on_prepare(
        &mut self,
        from: NodeId,
        epoch: u64,
        snapshot: Box<Snapshot<A>>,
        started: Instant,
    ) {
        let actor = self.id();
        let refuse = |node: &Node, failure: MigrationFailure| {
            tracing::info!(%actor, %from, %failure, "refused an arriving actor");
            let ack = PeerMsg::PrepareAck {
                actor,
                epoch,
                result: Err(failure),
            };
            let _ = node.send_peer(&from, &ack);
        };
        let previous = match &self.mode {
            Mode::Forwarding(route) if route.epoch < epoch => route.clone(),
            // The same prepare again: it is already here, paused; say so
            // again (the source ignores what it no longer waits for).
            Mode::Prepared(prepared) if prepared.epoch == epoch && prepared.source == from => {
                let ack = PeerMsg::PrepareAck {
                    actor,
                    epoch,
                    result: Ok(0),
                };
                let _ = self.node.send_peer(&from, &ack);
                return;
            }
            // Already committed: nothing to answer.
            Mode::Hosting(hosted) if hosted.epoch == epoch => return,
            _ => return refuse(&self.node, MigrationFailure::Busy),
        };
        let snapshot = *snapshot;
        let name_reserved = match &snapshot.name {
            Some(name) if self.node.name_held_elsewhere(name, actor) => {
                return refuse(&self.node, MigrationFailure::NameTaken(name.clone()))
            }
            Some(name) => match self.node.reserve_name(name, actor) {
                Ok(newly) => newly,
                Err(_) => return refuse(&self.node, MigrationFailure::NameTaken(name.clone())),
            },
            None => false,
        };
        let now = tokio::time::Instant::now();
        let mut ctx = self.new_context(Timers::restore(snapshot.timers, snapshot.next_timer, now));
        ctx.state_machine = snapshot.state.state_key().is_some();
        ctx.owed = snapshot.owed;
        let event_timeout_queued = snapshot
            .queue
            .iter()
            .any(|q| matches!(q, QueuedWire::Timer(_, TimerKind::Event)));
        let mut hosted = Box::new(Hosted {
            state: snapshot.state,
            ctx,
            tracker: snapshot
                .tracker
                .map(|envelope| Queued::Numbered(Numbered::from_wire(envelope))),
            queue: snapshot
                .queue
                .into_iter()
                .map(|q| Queued::from_wire(q, actor, &self.node))
                .collect(),
            monitors: snapshot.monitors,
            name: snapshot.name,
            epoch,
            postponed: snapshot.postponed,
            event_timeout_queued,
            panicked: None,
        });
        let arrived = AssertUnwindSafe(hosted.state.on_arrive(&mut hosted.ctx))
            .catch_unwind()
            .await;
        let failure = match arrived {
            Ok(Ok(())) => None,
            Ok(Err(reason)) => Some(reason),
            Err(panic) => Some(format!("on_arrive panicked: {}", panic_message(&*panic))),
        };
        if let Some(reason) = failure {
            if name_reserved {
                if let Some(name) = &hosted.name {
                    self.node.release_name(name, actor);
                }
            }
            return refuse(&self.node, MigrationFailure::ArriveFailed(reason));
        }
        let restore = started.elapsed();
        tracing::debug!(%actor, %from, epoch, queued = hosted.pending_messages(), ?restore, "actor restored, paused");
        // The actor is here now: local messages queue for it again.
        self.take_numbering();
        self.mode = Mode::Prepared(Box::new(Prepared {
            hosted,
            source: from.clone(),
            epoch,
            ask_at: tokio::time::Instant::now() + self.node.migration_timeout(),
            arrived: Vec::new(),
            previous,
            name_reserved,
        }));
        let ack = PeerMsg::PrepareAck {
            actor,
            epoch,
            result: Ok(restore.as_nanos() as u64),
        };
        if self.node.send_peer(&from, &ack).is_err() {
            // The source cannot hear us, so it will not commit: undo.
            self.on_abort(epoch);
        }
    }

    fn on_commit(&mut self, epoch: u64) {
        let Mode::Prepared(prepared) = &self.mode else {
            // A commit said again (its acknowledgement was lost): say again
            // that it is done.
            if let Mode::Hosting(hosted) = &self.mode {
                if hosted.epoch == epoch {
                    if let Some(source) = self.commit_source.clone() {
                        let committed = PeerMsg::Committed {
                            actor: self.id(),
                            epoch,
                            queued: false,
                        };
                        let _ = self.node.send_peer(&source, &committed);
                        return;
                    }
                }
            }
            tracing::warn!(actor = %self.id(), epoch, "commit without a prepared actor ignored");
            return;
        };
        if prepared.epoch != epoch {
            tracing::warn!(actor = %self.id(), epoch, prepared = prepared.epoch, "commit for another epoch ignored");
            return;
        }
        let Mode::Prepared(prepared) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let prepared = *prepared;
        let mut hosted = prepared.hosted;
        for numbered in prepared.arrived {
            hosted.accept(numbered);
        }
        self.entry.set_route(Route {
            node: self.node.id().clone(),
            epoch,
        });
        self.entry.hosting.store(true, Ordering::Release);
        self.node
            .announce_hosting(self.entry.id, epoch, hosted.name.as_deref(), A::TYPE_TAG);
        self.mode = Mode::Hosting(hosted);
        self.commit_source = Some(prepared.source.clone());
        let queued = matches!(&self.mode, Mode::Hosting(h) if !h.queue.is_empty());
        if queued {
            self.first_notice = Some((prepared.source.clone(), epoch));
        }
        let committed = PeerMsg::Committed {
            actor: self.id(),
            epoch,
            queued,
        };
        let _ = self.node.send_peer(&prepared.source, &committed);
        tracing::debug!(actor = %self.id(), node = %self.node.id(), epoch, "actor active after migration");
    }

    fn on_abort(&mut self, epoch: u64) {
        let Mode::Prepared(prepared) = &self.mode else {
            return;
        };
        if prepared.epoch != epoch {
            return;
        }
        let Mode::Prepared(prepared) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let prepared = *prepared;
        if prepared.name_reserved {
            if let Some(name) = &prepared.hosted.name {
                self.node.release_name(name, self.id());
            }
        }
        tracing::info!(actor = %self.id(), epoch, "prepared actor dropped: the source keeps it");
        let route = prepared.previous;
        for numbered in prepared.arrived {
            self.forward(&route, numbered);
        }
        self.mode = Mode::Forwarding(route);
    }

    async fn on_control(&mut self, control: Control<A>) {
        match control {
            Control::Prepare {
                from,
                epoch,
                snapshot,
                started,
            } => self.on_prepare(from, epoch, snapshot, started).await,
            Control::Net(NetControl::PrepareAck { epoch, result }) => {
                let current = matches!(&self.mode, Mode::Migrating(m) if m.epoch == epoch);
                if !current {
                    tracing::debug!(actor = %self.id(), epoch, "stale prepare answer ignored");
                    return;
                }
                match result {
                    Ok(restore_nanos) => self.commit_migration(Duration::from_nanos(restore_nanos)),
                    Err(failure) => self.abort_migration(MigrationPhase::Prepare, failure, false),
                }
            }
            Control::Net(NetControl::Commit { epoch }) => self.on_commit(epoch),
            Control::Net(NetControl::Committed { epoch, queued }) => {
                self.on_committed(epoch, queued)
            }
            Control::Net(NetControl::FirstHandled { epoch }) => self.on_first_handled(epoch),
            Control::Net(NetControl::Abort { epoch }) => self.on_abort(epoch),
            Control::Net(NetControl::Moved { node, epoch }) => self.reroute(Route { node, epoch }),
            Control::Net(NetControl::PeerLost(peer)) => {
                if matches!(&self.mode, Mode::Migrating(m) if m.dest == peer) {
                    self.abort_migration(
                        MigrationPhase::Prepare,
                        MigrationFailure::LinkDown,
                        false,
                    );
                }
                if self
                    .commit_wait
                    .as_ref()
                    .is_some_and(|w| w.report.to == peer)
                {
                    if self.commit_wait.as_ref().is_some_and(|w| !w.acknowledged) {
                        tracing::warn!(actor = %self.id(), %peer, "destination lost before acknowledging the commit");
                    }
                    self.finish_migration();
                }
            }
            Control::Net(NetControl::PeerUp(peer)) => self.resend_outcome(&peer),
            Control::Net(NetControl::Restream { node, epoch }) => {
                if let Mode::Forwarding(route) = &self.mode {
                    if epoch >= route.epoch && node != *self.node.id() {
                        self.stream = Origin {
                            node: self.node.id().clone(),
                            stream: crate::id::random_u64(),
                        };
                        self.next_seq = 0;
                        let route = Route { node, epoch };
                        // Stream and route change together for direct
                        // senders: no new-stream message to the old route.
                        self.entry.restream(&self.stream, route.clone());
                        self.mode = Mode::Forwarding(route);
                    }
                }
            }
            Control::Net(NetControl::Resolve { epoch, from }) => self.on_resolve(epoch, &from),
            Control::Net(NetControl::MemberFailed(peer)) => {
                if matches!(&self.mode, Mode::Prepared(p) if p.source == peer) {
                    self.discard_prepared(ExitReason::NodeDown(peer));
                }
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
                    Mode::Migrating(migrating) => self.exit(migrating.hosted, reason, None).await,
                    _ => {
                        let _ = self.entry.exit.set(reason);
                    }
                }
            }
        }
    }
}

impl<A: Actor> Cell<A> {
    /// Says a migration's outcome again to its destination, now that a
    /// session with it is up (both are idempotent there).
    /// Sets the outcome this cell owes a destination, keeping the node's
    /// table of whom to tell when a session comes up in step.
    fn owe_outcome(&mut self, owed: Option<OwedOutcome>) {
        let actor = self.id();
        if let Some(old) = self.outcome_owed.take() {
            self.node.owe_outcome(&old.dest, actor, false);
        }
        if let Some(new) = &owed {
            self.node.owe_outcome(&new.dest, actor, true);
        }
        self.outcome_owed = owed;
    }

    fn resend_outcome(&self, peer: &NodeId) {
        let Some(owed) = self.outcome_owed.as_ref().filter(|o| o.dest == *peer) else {
            return;
        };
        let (actor, epoch) = (self.id(), owed.epoch);
        let msg = if owed.commit {
            PeerMsg::Commit { actor, epoch }
        } else {
            PeerMsg::Abort { actor, epoch }
        };
        tracing::info!(%actor, %peer, epoch, commit = owed.commit, "migration outcome said again");
        let _ = self.node.send_peer(peer, &msg);
    }

    /// A destination holding a prepared copy asks what was decided: commit
    /// if this cell handed the actor to it at that epoch, else abort.
    fn on_resolve(&self, epoch: u64, from: &NodeId) {
        let committed = match &self.mode {
            Mode::Forwarding(route) => route.node == *from && route.epoch == epoch,
            _ => false,
        };
        // Still deciding (waiting for its prepare answer): the answer comes.
        if matches!(&self.mode, Mode::Migrating(m) if m.epoch == epoch && m.dest == *from) {
            return;
        }
        let actor = self.id();
        let msg = if committed {
            PeerMsg::Commit { actor, epoch }
        } else {
            PeerMsg::Abort { actor, epoch }
        };
        tracing::info!(%actor, to = %from, epoch, committed, "told a destination the outcome it asked for");
        let _ = self.node.send_peer(from, &msg);
    }

    /// The source of a prepared actor died before deciding: the copy here
    /// is dropped and the actor reported down (it died with its node; it
    /// never lives in two places).
    fn discard_prepared(&mut self, reason: ExitReason) {
        let Mode::Prepared(prepared) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let prepared = *prepared;
        let actor = self.id();
        tracing::warn!(%actor, source = %prepared.source, "source failed during the migration: the prepared copy is dropped");
        if prepared.name_reserved {
            if let Some(name) = &prepared.hosted.name {
                self.node.release_name(name, actor);
            }
        }
        for numbered in prepared.arrived {
            numbered.reject(&self.node, actor, &reason);
        }
        let mut hosted = prepared.hosted;
        for item in hosted.queue.drain(..) {
            item.reject(&self.node, actor, &reason);
        }
        for (node, monitor) in hosted.monitors.drain(..) {
            self.node.send_down(&node, monitor, actor, reason.clone());
        }
        let _ = self.entry.exit.set(reason);
    }

    /// A newer location for the actor this cell forwards to (an older one
    /// never overwrites a newer: epochs fence stale answers).
    fn reroute(&mut self, newer: Route) {
        if let Mode::Forwarding(route) = &mut self.mode {
            if newer.epoch > route.epoch && newer.node != *self.node.id() {
                *route = newer;
                self.entry.set_route(route.clone());
            }
        }
    }

    /// When an idle forwarder may retire, if it may at all.
    fn retire_at(&self) -> Option<tokio::time::Instant> {
        match (&self.mode, self.node.forwarder_idle()) {
            (Mode::Forwarding(_), Some(idle)) if self.commit_wait.is_none() => {
                Some(self.last_forward + idle)
            }
            _ => None,
        }
    }

    /// Numbers local messages again (from now on, for good) if local
    /// senders were sending directly: they queue in the mailbox again.
    fn take_numbering(&mut self) {
        if let Some(direct) = self.entry.stop_direct() {
            self.stream = direct.stream;
            self.next_seq = direct.next_seq;
        }
    }

    /// Sends on whatever already waits in the mailbox, before the cell ends.
    fn forward_pending(&mut self, route: &Route) {
        self.take_numbering();
        while let Ok(envelope) = self.rx.try_recv() {
            let numbered = self.number(envelope);
            self.forward(route, numbered);
        }
    }

    /// An idle forwarder with no handle left on this node leaves the node's
    /// table; what was already in its mailbox goes on to the actor.
    fn try_retire(&mut self) {
        let Mode::Forwarding(route) = &self.mode else {
            return;
        };
        let route = route.clone();
        if !self.node.retire_forwarder(self.entry.id, &route) {
            // Still needed: look again after another idle period.
            self.last_forward = tokio::time::Instant::now();
            return;
        }
        self.forward_pending(&route);
        tracing::debug!(actor = %self.id(), node = %self.node.id(), "idle forwarder retired");
        self.mode = Mode::Stopped;
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
