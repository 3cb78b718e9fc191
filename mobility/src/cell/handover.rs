//! The cell's side of the migration protocol: it feeds the pure machine of
//! `mobility_proto::handover` (which decides everything) with what happens
//! here, and carries out the actions it returns. Capturing and restoring
//! the actor, its hooks, encoding, dialing and the report stay here.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use mobility_proto::handover::{
    Action, Admission, Failure, Frame, Handover, Outcome, Step, Timing,
};
use mobility_proto::sequence::Tracker;

use super::host::NodeRef;
use super::hosted::Hosted;
use super::queued::Queued;
use super::{panic_message, Cell, Mode};
use crate::api::actor::Actor;
use crate::api::reply::ReplyTo;
use crate::api::timers::{TimerKind, Timers};
use crate::mailbox::entry::Route;
use crate::mailbox::envelope::Numbered;
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{Destination, NodeId};
use crate::proto::migration::{
    MigrationFailure, MigrationPhase, MigrationReport, QueuedWire, Snapshot,
};
use crate::proto::observe::NodeEvent;
use crate::proto::wire::{HandoverFrame, Origin, PeerMsg, WireEnvelope};

/// The machine as the runtime instantiates it: node ids, the refusals a
/// destination gives, and the restore time a successful prepare answer
/// carries (nanoseconds).
pub(crate) type Machine = Handover<NodeId, MigrationFailure, u64>;

/// The machine's timing from the node's migration timeout: a prepare waits
/// that long; an unconfirmed decision or question is said again four times
/// as often.
pub(super) fn timing(node: &NodeRef) -> Timing {
    let timeout = node.migration_timeout();
    Timing {
        prepare_timeout: timeout,
        retry: (timeout / 4).max(Duration::from_millis(10)),
    }
}

pub(super) fn to_proto(route: &Route) -> mobility_proto::handover::Route<NodeId> {
    mobility_proto::handover::Route {
        node: route.node.clone(),
        epoch: route.epoch,
    }
}

fn from_proto(route: mobility_proto::handover::Route<NodeId>) -> Route {
    Route {
        node: route.node,
        epoch: route.epoch,
    }
}

/// Source side: the actor frozen for a move, until the machine resumes it
/// or hands it over.
pub(super) struct Migrating<A: Actor> {
    hosted: Box<Hosted<A>>,
    captured_queue: Vec<QueuedWire>,
    captured_held: Vec<(Origin, u64, QueuedWire)>,
    pub(super) arrived: Vec<Numbered<A>>,
}

impl<A: Actor> Migrating<A> {
    /// The frozen actor (to end it with its node).
    pub(super) fn into_hosted(self) -> Box<Hosted<A>> {
        self.hosted
    }
}

/// Destination side: restored, paused until the machine activates or
/// drops it.
pub(super) struct Prepared<A: Actor> {
    hosted: Box<Hosted<A>>,
    pub(super) arrived: Vec<Numbered<A>>,
    name_reserved: bool,
}

/// A migration this node began, until its caller has the answer.
pub(super) struct Pending {
    reply: ReplyTo,
    dest: NodeId,
    epoch: u64,
    started: Instant,
    capture: Duration,
    prepare_sent: Instant,
    restore: Duration,
    state_bytes: u64,
    snapshot_bytes: u64,
    queued_messages: u64,
    timers: u64,
    /// Built when the actor is handed over.
    report: Option<MigrationReport>,
    commit_sent: Option<Instant>,
    /// The destination said a `FirstHandled` follows its `Committed`.
    first_follows: bool,
    /// The destination's first handled message, if heard of already (it
    /// may overtake the `Committed` on a faulty link).
    first_message: Option<Duration>,
    /// The destination confirmed the commit.
    confirmed: bool,
}

impl Pending {
    /// Handed over to `peer`, waiting only for its first handled message.
    pub(super) fn handed_over_to(&self, peer: &NodeId) -> bool {
        self.report.is_some() && self.dest == *peer
    }
}

impl<A: Actor> Cell<A> {
    /// The machine's clock: time since this cell began.
    pub(super) fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    // ---- source side -------------------------------------------------------

    pub(super) async fn start_migration(&mut self, dest: Destination, reply: ReplyTo) {
        let actor = self.id();
        let invalid = MigrationPhase::Validate;
        // A `tcp://` destination is dialed here, at this message boundary and
        // before the freeze: nothing is captured until the link is up.
        let dest = match self.node.resolve(&dest).await {
            Ok(node) => node,
            Err(failure) => return self.migration_failed(reply, dest, invalid, failure),
        };
        if dest == *self.node.id() {
            let failure = MigrationFailure::AlreadyThere(dest.clone());
            return self.migration_failed(reply, dest.into(), invalid, failure);
        }
        // A member that announced it would refuse this version (a rolling
        // upgrade in progress): said now, before anything is frozen.
        if let Some(failure) = self.node.version_refusal(&dest, A::TYPE_TAG, A::VERSION) {
            return self.migration_failed(reply, dest.into(), invalid, failure);
        }
        if !self.node.has_peer(&dest) {
            let failure = MigrationFailure::Unreachable(format!(
                "destination {dest} is not linked to node {}",
                self.node.id()
            ));
            return self.migration_failed(reply, dest.into(), invalid, failure);
        }
        let Mode::Hosting(mut hosted) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let departed = AssertUnwindSafe(hosted.state.on_depart(&mut hosted.ctx))
            .catch_unwind()
            .await;
        if let Err(panic) = departed {
            let reason = ExitReason::Panicked(panic_message(&*panic));
            let failure = MigrationFailure::Stopped;
            self.migration_failed(reply, dest.into(), MigrationPhase::Capture, failure);
            self.exit(hosted, reason, None).await;
            return;
        }
        // Members are arbitrated by the cluster's failure detector (and
        // fenced by it); a node of another cluster is not.
        let arbitrated = self.node.is_cluster_node(&dest);
        let Some(epoch) = self.handover.begin(dest.clone(), self.now(), arbitrated) else {
            self.mode = Mode::Hosting(hosted);
            let failure = MigrationFailure::AlreadyThere(dest.clone());
            return self.migration_failed(reply, dest.into(), invalid, failure);
        };

        // Freeze: from here on, nothing is handled until the machine says.
        let started = Instant::now();
        let captured = self.capture(&mut hosted, epoch);
        let capture = started.elapsed();
        let (frame, snapshot_start, meta_bytes, queued_messages, timers) = match captured.encoded {
            Ok((frame, start, meta)) => (frame, start, meta, captured.queued, captured.timers),
            Err(error) => {
                tracing::warn!(%actor, %error, "snapshot does not encode; migration abandoned");
                self.mode = Mode::Migrating(Box::new(Migrating {
                    hosted,
                    captured_queue: captured.queue,
                    captured_held: captured.held,
                    arrived: Vec::new(),
                }));
                let failure = MigrationFailure::Codec(error.to_string());
                self.migration_failed(reply, dest.into(), MigrationPhase::Capture, failure);
                self.handover
                    .prepare_not_sent(Failure::Refused(MigrationFailure::Stopped));
                return self.perform().await;
            }
        };
        let snapshot_bytes = (frame.len() - snapshot_start) as u64;
        self.mode = Mode::Migrating(Box::new(Migrating {
            hosted,
            captured_queue: captured.queue,
            captured_held: captured.held,
            arrived: Vec::new(),
        }));
        self.pending = Some(Box::new(Pending {
            reply,
            dest: dest.clone(),
            epoch,
            started,
            capture,
            prepare_sent: Instant::now(),
            restore: Duration::ZERO,
            state_bytes: snapshot_bytes.saturating_sub(meta_bytes.saturating_sub(1)),
            snapshot_bytes,
            queued_messages,
            timers,
            report: None,
            commit_sent: None,
            first_follows: false,
            first_message: None,
            confirmed: false,
        }));
        if let Err(error) = self.node.send_frame(&dest, frame) {
            tracing::warn!(%actor, to = %dest, %error, "prepare could not be sent");
            self.handover.prepare_not_sent(Failure::LinkDown);
        } else {
            tracing::debug!(%actor, to = %dest, epoch, snapshot_bytes, ?capture, "prepare sent");
        }
        self.perform().await;
    }

    /// Takes the actor's whole truth at this message boundary: the queued
    /// mailbox, held messages, timers; encodes it after the prepare header.
    fn capture(&mut self, hosted: &mut Hosted<A>, epoch: u64) -> Captured {
        let actor = self.id();
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
        let queued = (queue.len() + held.len()) as u64;
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
        let header = PeerMsg::Prepare {
            actor,
            type_tag: A::TYPE_TAG.to_owned(),
            schema: A::SCHEMA,
            epoch,
            version: A::VERSION,
            state_schema: <A as crate::api::actor::Mobile>::FINGERPRINT,
        };
        let encoded = crate::proto::wire::frame_of(&header).and_then(|mut frame| {
            let start = frame.len();
            mobility_net::encode_into(&snapshot, &mut frame).map(|()| (frame, start))
        });
        // Measure the state alone: the same snapshot with a unit state (1 byte).
        let meta = snapshot.with_state(());
        let meta_bytes = mobility_net::encode(&meta).map_or(0, |b| b.len() as u64);
        Captured {
            encoded: encoded.map(|(frame, start)| (frame, start, meta_bytes)),
            queue: meta.queue,
            held,
            queued,
            timers: timer_count,
        }
    }

    /// Puts a frozen actor back to work after a failed migration: the
    /// captured queue first, then held messages, then what arrived meanwhile.
    fn resume_frozen(&mut self) {
        let Mode::Migrating(migrating) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let Migrating {
            mut hosted,
            captured_queue,
            captured_held,
            arrived,
        } = *migrating;
        let actor = self.id();
        hosted.queue = captured_queue
            .into_iter()
            .map(|q| Queued::from_wire(q, actor, &self.node))
            .collect();
        for (origin, seq, item) in captured_held {
            let item = Queued::from_wire(item, actor, &self.node);
            let _ = hosted.tracker.accept(&origin, seq, item, &mut hosted.queue);
        }
        for numbered in arrived {
            hosted.accept(numbered);
        }
        self.mode = Mode::Hosting(hosted);
    }

    /// Committed: the state lives at the destination now; what arrived
    /// while frozen follows it, and so does everything from now on.
    fn hand_over(&mut self, route: Route) {
        let Mode::Migrating(migrating) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let migrating = *migrating;
        let actor = self.id();
        self.entry.set_route(route.clone());
        self.entry.hosting.store(false, Ordering::Release);
        self.node
            .announce_left(actor, migrating.hosted.name.as_deref());
        let forwarded_messages = migrating.arrived.len() as u64;
        for numbered in migrating.arrived {
            self.forward(&route, numbered);
        }
        if let Some(pending) = &mut self.pending {
            pending.commit_sent = Some(Instant::now());
            pending.report = Some(MigrationReport {
                actor,
                type_tag: A::TYPE_TAG.to_owned(),
                from: self.node.id().clone(),
                to: route.node.clone(),
                epoch: route.epoch,
                state_bytes: pending.state_bytes,
                snapshot_bytes: pending.snapshot_bytes,
                queued_messages: pending.queued_messages,
                timers: pending.timers,
                forwarded_messages,
                capture: pending.capture,
                prepare: pending.prepare_sent.elapsed(),
                restore: pending.restore,
                commit: Duration::ZERO,
                freeze: Duration::ZERO,
                first_message: None,
            });
        }
        self.mode = Mode::Forwarding(route);
        self.last_forward = tokio::time::Instant::now();
        // The state stays only at the destination now; ours goes.
        drop(migrating.hosted);
    }

    /// The machine's answer to the caller of `migrate`.
    fn answer(&mut self, outcome: Outcome<NodeId, MigrationFailure>) {
        let actor = self.id();
        match outcome {
            Err((step, failure)) => {
                let Some(pending) = self.pending.take() else {
                    return;
                };
                let phase = match step {
                    Step::Prepare => MigrationPhase::Prepare,
                    Step::Commit => MigrationPhase::Commit,
                };
                let failure = match failure {
                    Failure::Refused(failure) => failure,
                    Failure::Timeout => MigrationFailure::Timeout(self.node.migration_timeout()),
                    Failure::LinkDown => MigrationFailure::LinkDown,
                    Failure::DestinationFailed => {
                        MigrationFailure::DestinationFailed(pending.dest.clone())
                    }
                    Failure::Fenced => MigrationFailure::Fenced,
                };
                tracing::warn!(%actor, to = %pending.dest, epoch = pending.epoch, %phase, %failure, "migration failed");
                self.migration_failed(pending.reply, pending.dest.into(), phase, failure);
            }
            Ok(_) => {
                let Some(pending) = self.pending.as_mut() else {
                    return;
                };
                pending.confirmed = true;
                if let Some(report) = pending.report.as_mut() {
                    report.commit = pending.commit_sent.map_or(Duration::ZERO, |t| t.elapsed());
                    report.freeze = pending.started.elapsed();
                    report.first_message = pending.first_message;
                }
                if !pending.first_follows || pending.first_message.is_some() {
                    self.finish_migration();
                }
            }
        }
    }

    /// The destination handled its first message: the report is complete.
    pub(super) fn on_first_handled(&mut self, epoch: u64) {
        let Some(pending) = self.pending.as_mut() else {
            return;
        };
        if pending.epoch != epoch || pending.report.is_none() || pending.first_message.is_some() {
            return;
        }
        let first = pending.started.elapsed();
        pending.first_message = Some(first);
        if let Some(report) = pending.report.as_mut() {
            report.first_message = Some(first);
        }
        // Before the confirmation (it overtook it): the answer waits for it.
        if pending.confirmed {
            self.finish_migration();
        }
    }

    /// Emits the migration's report and gives it to whoever asked.
    pub(super) fn finish_migration(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let Some(report) = pending.report else {
            // Never handed over (the cell ends mid-migration).
            let actor = self.id();
            return pending
                .reply
                .send(Err::<MigrationReport, _>(Error::Migration {
                    actor,
                    phase: MigrationPhase::Prepare,
                    failure: MigrationFailure::Stopped,
                }));
        };
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
        self.node.emit(NodeEvent::Departed {
            report: report.clone(),
        });
        pending.reply.send(Ok::<_, Error>(report));
    }

    // ---- destination side --------------------------------------------------

    pub(super) async fn on_prepare(
        &mut self,
        from: NodeId,
        epoch: u64,
        snapshot: Box<Snapshot<A>>,
        started: Instant,
    ) {
        let actor = self.id();
        let answer = |node: &NodeRef, result: Result<u64, MigrationFailure>| {
            let ack = PeerMsg::PrepareAck {
                actor,
                epoch,
                result,
            };
            let _ = node.send_peer(&from, &ack);
        };
        match self.handover.admit_prepare(&from, epoch) {
            Admission::Restore => {}
            // The same prepare again: still here, paused; say so again.
            Admission::Repeated => {
                if matches!(self.mode, Mode::Prepared(_)) {
                    answer(&self.node, Ok(0));
                }
                return;
            }
            Admission::Refused => {
                tracing::info!(%actor, %from, epoch, "refused a stale or conflicting prepare");
                self.arrival_refused(&from, &MigrationFailure::Busy);
                return answer(&self.node, Err(MigrationFailure::Busy));
            }
        }
        let arbitrated = self.node.is_cluster_node(&from);
        match self.restore(*snapshot, epoch).await {
            Ok((hosted, name_reserved)) => {
                let restore = started.elapsed();
                tracing::debug!(%actor, %from, epoch, queued = hosted.pending_messages(), ?restore, "actor restored, paused");
                // The actor is here now: local messages queue for it again.
                self.take_numbering();
                self.mode = Mode::Prepared(Box::new(Prepared {
                    hosted,
                    arrived: Vec::new(),
                    name_reserved,
                }));
                let nanos = restore.as_nanos() as u64;
                self.handover
                    .restored(&from, epoch, Ok(nanos), self.now(), arbitrated);
            }
            Err(failure) => {
                tracing::info!(%actor, %from, %failure, "refused an arriving actor");
                self.arrival_refused(&from, &failure);
                self.handover
                    .restored(&from, epoch, Err(failure), self.now(), arbitrated);
            }
        }
        self.perform().await;
    }

    /// Rebuilds the actor from its snapshot, paused: its name reserved, its
    /// timers rearmed, `on_arrive` run. `Ok` with whether the name was newly
    /// reserved here.
    async fn restore(
        &mut self,
        snapshot: Snapshot<A>,
        epoch: u64,
    ) -> Result<(Box<Hosted<A>>, bool), MigrationFailure> {
        let actor = self.id();
        let name_reserved = match &snapshot.name {
            Some(name) if self.node.name_held_elsewhere(name, actor) => {
                return Err(MigrationFailure::NameTaken(name.clone()))
            }
            Some(name) => self
                .node
                .reserve_name(name, actor)
                .map_err(|_| MigrationFailure::NameTaken(name.clone()))?,
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
            Ok(Ok(())) => return Ok((hosted, name_reserved)),
            Ok(Err(reason)) => reason,
            Err(panic) => format!("on_arrive panicked: {}", panic_message(&*panic)),
        };
        if name_reserved {
            if let Some(name) = &hosted.name {
                self.node.release_name(name, actor);
            }
        }
        Err(MigrationFailure::ArriveFailed(failure))
    }

    /// The prepared copy goes live at `epoch`.
    fn activate(&mut self, epoch: u64, source: NodeId) {
        let Mode::Prepared(prepared) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let Prepared {
            mut hosted,
            arrived,
            ..
        } = *prepared;
        for numbered in arrived {
            hosted.accept(numbered);
        }
        hosted.epoch = epoch;
        self.entry.set_route(Route {
            node: self.node.id().clone(),
            epoch,
        });
        self.entry.hosting.store(true, Ordering::Release);
        self.node
            .announce_hosting(self.entry.id, epoch, hosted.name.as_deref(), A::TYPE_TAG);
        self.node.emit(NodeEvent::Arrived {
            actor: self.entry.id,
            type_tag: A::TYPE_TAG,
            name: hosted.name.clone(),
            from: source.clone(),
            epoch,
        });
        if !hosted.queue.is_empty() {
            self.first_notice = Some((source, epoch));
        }
        self.mode = Mode::Hosting(hosted);
        tracing::debug!(actor = %self.id(), node = %self.node.id(), epoch, "actor active after migration");
    }

    /// The prepared copy goes; what arrived for it follows the actor.
    fn drop_prepared(&mut self, route: Route) {
        let Mode::Prepared(prepared) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let prepared = *prepared;
        if prepared.name_reserved {
            if let Some(name) = &prepared.hosted.name {
                self.node.release_name(name, self.id());
            }
        }
        tracing::info!(actor = %self.id(), "prepared actor dropped: the source keeps it");
        for numbered in prepared.arrived {
            self.forward(&route, numbered);
        }
        self.mode = Mode::Forwarding(route);
    }

    /// This node was declared failed: the actor it held is down.
    async fn fenced_down(&mut self) {
        let reason = ExitReason::Unreachable(self.node.id().clone());
        match std::mem::replace(&mut self.mode, Mode::Stopped) {
            Mode::Hosting(hosted) => self.exit(hosted, reason, None).await,
            Mode::Migrating(migrating) => self.exit(migrating.hosted, reason, None).await,
            Mode::Prepared(prepared) => self.exit(prepared.hosted, reason, None).await,
            other => self.mode = other,
        }
    }

    // ---- the machine's events and actions ------------------------------

    /// A protocol frame from `from`.
    pub(super) async fn on_handover_frame(&mut self, from: NodeId, frame: HandoverFrame) {
        if let (
            Frame::PrepareAck {
                result: Ok(nanos), ..
            },
            Some(pending),
        ) = (&frame, self.pending.as_mut())
        {
            pending.restore = Duration::from_nanos(*nanos);
        }
        self.handover.handle_frame(&from, frame, self.now());
        self.perform().await;
    }

    /// The destination activated the actor; `queued`: it will tell when it
    /// handled its first message.
    pub(super) async fn on_committed(&mut self, from: NodeId, epoch: u64, queued: bool) {
        if let Some(pending) = self.pending.as_mut().filter(|p| p.epoch == epoch) {
            pending.first_follows = queued;
        }
        self.on_handover_frame(from, Frame::Committed { epoch })
            .await;
    }

    /// Carries out what the machine decided, in order.
    pub(super) async fn perform(&mut self) {
        while let Some(action) = self.handover.poll_action() {
            match action {
                Action::Send { to, frame } => self.send_handover(&to, frame),
                Action::Resume => self.resume_frozen(),
                Action::HandOver { route } => self.hand_over(from_proto(route)),
                Action::Activate { epoch, source } => self.activate(epoch, source),
                Action::DropPrepared { route } => self.drop_prepared(from_proto(route)),
                Action::Down => self.fenced_down().await,
                Action::Answer(outcome) => self.answer(outcome),
            }
        }
        self.sync_owed();
    }

    fn send_handover(&self, to: &NodeId, frame: HandoverFrame) {
        let actor = self.id();
        let msg = match frame {
            // The shell sends the prepare itself: it carries the snapshot.
            Frame::Prepare { .. } => return,
            Frame::PrepareAck { epoch, result } => PeerMsg::PrepareAck {
                actor,
                epoch,
                result,
            },
            Frame::Commit { epoch } => PeerMsg::Commit { actor, epoch },
            Frame::Committed { epoch } => PeerMsg::Committed {
                actor,
                epoch,
                queued: self.first_notice.is_some(),
            },
            Frame::Abort { epoch } => PeerMsg::Abort { actor, epoch },
            Frame::Aborted { epoch } => PeerMsg::Aborted { actor, epoch },
            Frame::Resolve { epoch } => PeerMsg::Resolve { actor, epoch },
        };
        // Not sent now: the machine says it again until it is confirmed.
        if let Err(error) = self.node.send_peer(to, &msg) {
            tracing::debug!(%actor, %to, %error, "protocol frame not sent");
        }
    }

    /// Keeps the node's table of whom this cell owes a word when a session
    /// comes up in step with the machine.
    fn sync_owed(&mut self) {
        let owed = self.handover.owes().cloned();
        if owed == self.owed_to {
            return;
        }
        let actor = self.id();
        if let Some(old) = self.owed_to.take() {
            self.node.owe_outcome(&old, actor, false);
        }
        if let Some(new) = &owed {
            self.node.owe_outcome(new, actor, true);
        }
        self.owed_to = owed;
    }
}

/// What a capture produced.
struct Captured {
    /// The prepare frame, where its snapshot starts, and the size of the
    /// snapshot without the state.
    encoded: Result<(Vec<u8>, usize, u64), mobility_net::CodecError>,
    queue: Vec<QueuedWire>,
    held: Vec<(Origin, u64, QueuedWire)>,
    queued: u64,
    timers: u64,
}
