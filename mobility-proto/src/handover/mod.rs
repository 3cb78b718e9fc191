//! The migration protocol of one actor as seen by one node: a pure state
//! machine. The shell (a cell of the runtime, or the simulation) feeds it
//! events and performs the actions it returns; it holds no actor state,
//! sends nothing and reads no clock (`now` is passed in).
//!
//! The hand-over is a two-phase commit with the source as coordinator:
//!
//! ```text
//!  source                                  destination
//!  Hosting --begin--> Preparing --Prepare-->  (restore) Prepared
//!            Preparing <--PrepareAck(ok)----  Prepared
//!  Committing --Commit-->                     Prepared --Activate--> Hosting
//!  Committing <--Committed--                  Hosting
//!  Forwarding
//! ```
//!
//! The rules that keep one copy and lose none, under any loss, delay,
//! duplication, stall or false suspicion of a node:
//!
//! - A destination activates its prepared copy only on the source's
//!   `Commit`, or once the source was declared failed (the source is then
//!   fenced: it learns it was declared failed before it acts again, so it
//!   never commits nor resumes). The copy held is then the latest state.
//! - A source that decided to abort stays frozen until the destination
//!   confirms it dropped its copy (`Aborted`) or was declared failed. So a
//!   destination whose source was declared failed knows the source never
//!   went on without it, and may activate.
//! - A source that sent `Commit` never resumes: the actor lives at the
//!   destination, or died with it.
//! - Every attempt has a fresh epoch; a destination refuses a prepare at or
//!   below an epoch it already dropped or refused, and each side says its
//!   decision again (`Commit`, `Abort`, `Resolve`) until it is confirmed, so
//!   a lost or repeated frame changes nothing.

mod types;

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::Duration;

pub use self::types::{
    Action, Admission, Failure, FailureKind, Frame, Outcome, Phase, Route, Step, Timing,
};

/// One actor's migration protocol on one node. `N`: node ids; `F`: why a
/// destination refuses; `R`: what a successful prepare answer carries.
#[derive(Debug, Clone)]
pub struct Handover<N, F, R> {
    me: N,
    timing: Timing,
    phase: Phase<N>,
    /// The highest epoch this node used or saw for the actor: a new attempt
    /// takes the next one, so no two attempts share an epoch.
    high_epoch: u64,
    /// Prepares at or below this epoch are refused (dropped or refused
    /// here already).
    closed_epoch: u64,
    /// The last attempt this node began as a source: `(dest, epoch)`.
    attempt: Option<(N, u64)>,
    /// The last attempt this node committed as a source.
    committed: Option<(N, u64)>,
    /// The last attempt this node activated as a destination.
    activated: Option<(N, u64)>,
    /// Whether the peer of the attempt in progress is fenced when declared
    /// failed (a member of this node's cluster): see [`Handover::begin`].
    arbitrated: bool,
    /// An abort said to a destination that may not have heard it, and when
    /// to say it again (unarbitrated attempts, which resume at once).
    owed_abort: Option<(N, u64, Duration)>,
    actions: VecDeque<Action<N, F, R>>,
}

impl<N: Clone + Eq + Debug, F: Clone + Debug, R: Clone + Debug> Handover<N, F, R> {
    /// An actor spawned here (epoch 0), or restarted here at `epoch`.
    pub fn hosting(me: N, epoch: u64, timing: Timing) -> Self {
        Self::with_phase(me, timing, Phase::Hosting { epoch }, epoch)
    }

    /// A slot for an actor that lives at `route`.
    pub fn forwarding(me: N, route: Route<N>, timing: Timing) -> Self {
        let epoch = route.epoch;
        Self::with_phase(me, timing, Phase::Forwarding { route }, epoch)
    }

    fn with_phase(me: N, timing: Timing, phase: Phase<N>, epoch: u64) -> Self {
        Handover {
            me,
            timing,
            phase,
            high_epoch: epoch,
            closed_epoch: 0,
            attempt: None,
            committed: None,
            activated: None,
            arbitrated: true,
            owed_abort: None,
            actions: VecDeque::new(),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase<N> {
        &self.phase
    }

    /// Whether the actor's state is here and may handle messages now.
    pub fn is_hosting(&self) -> bool {
        matches!(self.phase, Phase::Hosting { .. })
    }

    /// Whether the actor's state is here but frozen (a migration is
    /// deciding): messages wait aside.
    pub fn is_frozen(&self) -> bool {
        matches!(
            self.phase,
            Phase::Preparing { .. } | Phase::Aborting { .. } | Phase::Prepared { .. }
        )
    }

    /// Where messages go from here, if the actor lives elsewhere.
    pub fn route(&self) -> Option<Route<N>> {
        match &self.phase {
            Phase::Forwarding { route } => Some(route.clone()),
            Phase::Committing { dest, epoch, .. } => Some(Route {
                node: dest.clone(),
                epoch: *epoch,
            }),
            _ => None,
        }
    }

    /// The actor's epoch here, if it is hosted (live or frozen) here.
    pub fn hosted_epoch(&self) -> Option<u64> {
        match &self.phase {
            Phase::Hosting { epoch } => Some(*epoch),
            _ => None,
        }
    }

    /// The peer this node still owes a word (a decision not confirmed, or
    /// a question not answered): tell the machine when a session with it
    /// comes up ([`Handover::peer_up`]).
    pub fn owes(&self) -> Option<&N> {
        match &self.phase {
            Phase::Aborting { dest, .. } | Phase::Committing { dest, .. } => Some(dest),
            Phase::Prepared { source, .. } => Some(source),
            _ => self.owed_abort.as_ref().map(|(dest, ..)| dest),
        }
    }

    /// The next action to perform, in order.
    pub fn poll_action(&mut self) -> Option<Action<N, F, R>> {
        self.actions.pop_front()
    }

    /// When [`Handover::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let phase = match &self.phase {
            Phase::Preparing { deadline, .. } => Some(*deadline),
            Phase::Aborting { retry, .. } | Phase::Committing { retry, .. } => Some(*retry),
            Phase::Prepared { ask, .. } => Some(*ask),
            _ => None,
        };
        let owed = self.owed_abort.as_ref().map(|(_, _, at)| *at);
        phase.into_iter().chain(owed).min()
    }

    fn send(&mut self, to: &N, frame: Frame<F, R>) {
        self.actions.push_back(Action::Send {
            to: to.clone(),
            frame,
        });
    }

    // ---- source side -------------------------------------------------------

    /// Source: freeze for a move to `dest`; the shell captures the actor
    /// and sends the prepare with the returned epoch. `None` if the actor
    /// is not live here (or `dest` is this node).
    ///
    /// `arbitrated`: `dest` is a member of this node's cluster, so a failure
    /// declaration fences it. Then an aborting source stays frozen until the
    /// destination confirms (and a destination whose source was declared
    /// failed may activate). Without an arbiter (another cluster) the source
    /// resumes at once on a timeout or a lost link, and the destination
    /// activates only on a commit.
    pub fn begin(&mut self, dest: N, now: Duration, arbitrated: bool) -> Option<u64> {
        let Phase::Hosting { epoch: home } = self.phase else {
            return None;
        };
        if dest == self.me {
            return None;
        }
        self.high_epoch += 1;
        let epoch = self.high_epoch;
        self.attempt = Some((dest.clone(), epoch));
        self.arbitrated = arbitrated;
        self.phase = Phase::Preparing {
            dest,
            epoch,
            home,
            deadline: now + self.timing.prepare_timeout,
        };
        Some(epoch)
    }

    /// Source: the prepare could not be sent (or the snapshot not made):
    /// nothing left this node, the actor resumes.
    pub fn prepare_not_sent(&mut self, failure: Failure<F>) {
        if let Phase::Preparing { home, .. } = self.phase {
            self.resume(home, failure);
        }
    }

    fn resume(&mut self, home: u64, failure: Failure<F>) {
        self.phase = Phase::Hosting { epoch: home };
        self.actions.push_back(Action::Resume);
        self.actions
            .push_back(Action::Answer(Err((Step::Prepare, failure))));
    }

    fn abort(&mut self, dest: N, epoch: u64, home: u64, failure: FailureKind, now: Duration) {
        self.send(&dest, Frame::Abort { epoch });
        if !self.arbitrated {
            // The destination activates only on a commit: resume now, and
            // say the abort until it is confirmed.
            self.owed_abort = Some((dest, epoch, now + self.timing.retry));
            let failure = match failure {
                FailureKind::Timeout => Failure::Timeout,
                FailureKind::LinkDown => Failure::LinkDown,
            };
            return self.resume(home, failure);
        }
        self.phase = Phase::Aborting {
            dest,
            epoch,
            home,
            failure,
            retry: now + self.timing.retry,
        };
    }

    fn on_prepare_ack(&mut self, from: &N, epoch: u64, result: Result<R, F>, now: Duration) {
        let Phase::Preparing {
            dest,
            epoch: e,
            home,
            ..
        } = &self.phase
        else {
            return;
        };
        if dest != from || *e != epoch {
            return;
        }
        let (dest, home) = (dest.clone(), *home);
        match result {
            Ok(_) => {
                // The decision: from here on the actor is the destination's.
                self.send(&dest, Frame::Commit { epoch });
                self.committed = Some((dest.clone(), epoch));
                self.phase = Phase::Committing {
                    dest: dest.clone(),
                    epoch,
                    retry: now + self.timing.retry,
                };
                self.actions.push_back(Action::HandOver {
                    route: Route { node: dest, epoch },
                });
            }
            // Refused: the destination holds nothing.
            Err(refusal) => self.resume(home, Failure::Refused(refusal)),
        }
    }

    fn on_committed(&mut self, from: &N, epoch: u64) {
        // An aborting source hears that its destination went live anyway
        // (it declared this node failed and activated): the actor is there.
        if let Phase::Aborting { dest, epoch: e, .. } = &self.phase {
            if dest == from && *e == epoch {
                let route = Route {
                    node: dest.clone(),
                    epoch,
                };
                self.committed = Some((dest.clone(), epoch));
                self.phase = Phase::Forwarding {
                    route: route.clone(),
                };
                self.actions.push_back(Action::HandOver {
                    route: route.clone(),
                });
                self.actions.push_back(Action::Answer(Ok(route)));
                return;
            }
        }
        if let Phase::Committing { dest, epoch: e, .. } = &self.phase {
            if dest == from && *e == epoch {
                let route = Route {
                    node: dest.clone(),
                    epoch,
                };
                self.phase = Phase::Forwarding {
                    route: route.clone(),
                };
                self.actions.push_back(Action::Answer(Ok(route)));
            }
        }
    }

    fn on_aborted(&mut self, from: &N, epoch: u64) {
        if self
            .owed_abort
            .as_ref()
            .is_some_and(|(dest, e, _)| dest == from && *e == epoch)
        {
            self.owed_abort = None;
        }
        if let Phase::Aborting {
            dest,
            epoch: e,
            home,
            failure,
            ..
        } = &self.phase
        {
            if dest == from && *e == epoch {
                let failure = match failure {
                    FailureKind::Timeout => Failure::Timeout,
                    FailureKind::LinkDown => Failure::LinkDown,
                };
                self.resume(*home, failure);
            }
        }
    }

    /// A destination asks what was decided for `epoch`. Only the node that
    /// began that attempt answers: another (a restarted incarnation, which
    /// knows nothing) stays silent, and the destination waits until the
    /// source it asked is declared failed.
    fn on_resolve(&mut self, from: &N, epoch: u64) {
        let asked = Some((from.clone(), epoch));
        if self.committed == asked {
            return self.send(from, Frame::Commit { epoch });
        }
        if self.attempt != asked {
            return;
        }
        match &self.phase {
            // Still deciding: the answer comes.
            Phase::Preparing { .. } => {}
            // Begun here, and never committed.
            _ => self.send(from, Frame::Abort { epoch }),
        }
    }

    /// A newer location of the actor this node forwards to.
    pub fn moved(&mut self, newer: Route<N>) {
        self.high_epoch = self.high_epoch.max(newer.epoch);
        if let Phase::Forwarding { route } = &mut self.phase {
            if newer.epoch > route.epoch && newer.node != self.me {
                *route = newer;
            }
        }
    }

    // ---- destination side --------------------------------------------------

    /// Destination: a prepare for `epoch` arrived from `from`. Decides
    /// before the shell restores anything.
    pub fn admit_prepare(&mut self, from: &N, epoch: u64) -> Admission {
        let refuse = |this: &mut Self| {
            this.closed_epoch = this.closed_epoch.max(epoch);
            Admission::Refused
        };
        if epoch <= self.closed_epoch {
            return Admission::Refused;
        }
        match &self.phase {
            Phase::Forwarding { route } if route.epoch < epoch => Admission::Restore,
            Phase::Prepared {
                source, epoch: e, ..
            } if source == from && *e == epoch => Admission::Repeated,
            // Already activated: nothing to answer (the commit was heard).
            Phase::Hosting { epoch: e } if *e == epoch => Admission::Repeated,
            _ => refuse(self),
        }
    }

    /// Destination: the snapshot of `epoch` from `from` was restored and
    /// paused (`Ok` with what the answer carries), or could not be.
    /// `arbitrated` as in [`Handover::begin`].
    pub fn restored(
        &mut self,
        from: &N,
        epoch: u64,
        result: Result<R, F>,
        now: Duration,
        arbitrated: bool,
    ) {
        let Phase::Forwarding { route } = &self.phase else {
            return;
        };
        if epoch <= route.epoch || epoch <= self.closed_epoch {
            return;
        }
        match result {
            Ok(answer) => {
                self.high_epoch = self.high_epoch.max(epoch);
                self.arbitrated = arbitrated;
                self.phase = Phase::Prepared {
                    source: from.clone(),
                    epoch,
                    previous: route.clone(),
                    ask: now + self.timing.retry,
                };
                self.send(
                    from,
                    Frame::PrepareAck {
                        epoch,
                        result: Ok(answer),
                    },
                );
            }
            Err(refusal) => {
                self.closed_epoch = self.closed_epoch.max(epoch);
                self.send(
                    from,
                    Frame::PrepareAck {
                        epoch,
                        result: Err(refusal),
                    },
                );
            }
        }
    }

    fn on_commit(&mut self, from: &N, epoch: u64) {
        if self.activated.as_ref() == Some(&(from.clone(), epoch)) {
            // Said again: the confirmation was lost.
            return self.send(from, Frame::Committed { epoch });
        }
        if let Phase::Prepared {
            source, epoch: e, ..
        } = &self.phase
        {
            if source == from && *e == epoch {
                self.activate(from.clone(), epoch);
                self.send(from, Frame::Committed { epoch });
            }
        }
    }

    fn activate(&mut self, source: N, epoch: u64) {
        self.activated = Some((source.clone(), epoch));
        self.phase = Phase::Hosting { epoch };
        self.actions.push_back(Action::Activate { epoch, source });
    }

    fn on_abort(&mut self, from: &N, epoch: u64) {
        if self.activated.as_ref() == Some(&(from.clone(), epoch)) {
            // Activated after the source was declared failed: it is live
            // here, and the source must hear so (it stays frozen till then).
            return self.send(from, Frame::Committed { epoch });
        }
        if let Phase::Prepared {
            source,
            epoch: e,
            previous,
            ..
        } = &self.phase
        {
            if source == from && *e == epoch {
                let route = previous.clone();
                self.phase = Phase::Forwarding {
                    route: route.clone(),
                };
                self.actions.push_back(Action::DropPrepared { route });
            }
        }
        // Whether it dropped a copy or never had one, it never will.
        self.closed_epoch = self.closed_epoch.max(epoch);
        self.send(from, Frame::Aborted { epoch });
    }

    // ---- events from the shell -----------------------------------------

    /// A protocol frame from `from`.
    pub fn handle_frame(&mut self, from: &N, frame: Frame<F, R>, now: Duration) {
        match frame {
            // The shell admits prepares itself (it must restore first).
            Frame::Prepare { .. } => {}
            Frame::PrepareAck { epoch, result } => self.on_prepare_ack(from, epoch, result, now),
            Frame::Commit { epoch } => self.on_commit(from, epoch),
            Frame::Committed { epoch } => self.on_committed(from, epoch),
            Frame::Abort { epoch } => self.on_abort(from, epoch),
            Frame::Aborted { epoch } => self.on_aborted(from, epoch),
            Frame::Resolve { epoch } => self.on_resolve(from, epoch),
        }
    }

    /// Timers: gives up on a prepare, or says an unconfirmed decision or
    /// question again.
    pub fn handle_timeout(&mut self, now: Duration) {
        let retry = now + self.timing.retry;
        if let Some((dest, epoch, at)) = &mut self.owed_abort {
            if *at <= now {
                *at = retry;
                let (dest, epoch) = (dest.clone(), *epoch);
                self.send(&dest, Frame::Abort { epoch });
            }
        }
        match &mut self.phase {
            Phase::Preparing {
                dest,
                epoch,
                home,
                deadline,
            } if *deadline <= now => {
                let (dest, epoch, home) = (dest.clone(), *epoch, *home);
                self.abort(dest, epoch, home, FailureKind::Timeout, now);
            }
            Phase::Aborting {
                dest,
                epoch,
                retry: at,
                ..
            } if *at <= now => {
                *at = retry;
                let (dest, epoch) = (dest.clone(), *epoch);
                self.send(&dest, Frame::Abort { epoch });
            }
            Phase::Committing {
                dest,
                epoch,
                retry: at,
            } if *at <= now => {
                *at = retry;
                let (dest, epoch) = (dest.clone(), *epoch);
                self.send(&dest, Frame::Commit { epoch });
            }
            Phase::Prepared {
                source, epoch, ask, ..
            } if *ask <= now => {
                *ask = retry;
                let (source, epoch) = (source.clone(), *epoch);
                self.send(&source, Frame::Resolve { epoch });
            }
            _ => {}
        }
    }

    /// A new session with `peer` is up: whatever it may not have heard is
    /// said again.
    pub fn peer_up(&mut self, peer: &N) {
        if let Some((dest, epoch, _)) = &self.owed_abort {
            if dest == peer {
                let epoch = *epoch;
                self.send(peer, Frame::Abort { epoch });
            }
        }
        match &self.phase {
            Phase::Aborting { dest, epoch, .. } if dest == peer => {
                let epoch = *epoch;
                self.send(peer, Frame::Abort { epoch });
            }
            Phase::Committing { dest, epoch, .. } if dest == peer => {
                let epoch = *epoch;
                self.send(peer, Frame::Commit { epoch });
            }
            Phase::Prepared { source, epoch, .. } if source == peer => {
                let epoch = *epoch;
                self.send(peer, Frame::Resolve { epoch });
            }
            _ => {}
        }
    }

    /// The link to `peer` was lost for good, but nobody declared it failed
    /// (it may come back): a prepare waiting on it is aborted, which stays
    /// unconfirmed until it answers or is declared failed. Without an
    /// arbiter, an unconfirmed commit is answered as such.
    pub fn peer_lost(&mut self, peer: &N, now: Duration) {
        if let Phase::Committing { dest, epoch, .. } = &self.phase {
            if dest == peer && !self.arbitrated {
                // No arbiter will say more: the commit was sent, and the
                // actor lives there if it arrived.
                let route = Route {
                    node: dest.clone(),
                    epoch: *epoch,
                };
                self.phase = Phase::Forwarding { route };
                self.actions
                    .push_back(Action::Answer(Err((Step::Commit, Failure::LinkDown))));
                return;
            }
        }
        if let Phase::Preparing {
            dest, epoch, home, ..
        } = &self.phase
        {
            if dest == peer {
                let (dest, epoch, home) = (dest.clone(), *epoch, *home);
                self.abort(dest, epoch, home, FailureKind::LinkDown, now);
            }
        }
    }

    /// `peer` was declared failed by the cluster: it is fenced, and never
    /// acts again in this incarnation. For a peer of another cluster: its
    /// incarnation is gone (it restarted, or its link is lost for good).
    pub fn peer_failed(&mut self, peer: &N) {
        if self
            .owed_abort
            .as_ref()
            .is_some_and(|(dest, ..)| dest == peer)
        {
            self.owed_abort = None;
        }
        match &self.phase {
            // It holds no live copy (no commit was sent), and never will.
            Phase::Preparing { dest, home, .. } | Phase::Aborting { dest, home, .. }
                if dest == peer =>
            {
                let home = *home;
                self.resume(home, Failure::DestinationFailed);
            }
            // The actor was handed over and died with the destination (if
            // it ever got the commit, or never got live at all).
            Phase::Committing { dest, epoch, .. } if dest == peer => {
                let route = Route {
                    node: dest.clone(),
                    epoch: *epoch,
                };
                self.phase = Phase::Forwarding { route };
                self.actions.push_back(Action::Answer(Err((
                    Step::Commit,
                    Failure::DestinationFailed,
                ))));
            }
            // The source never resumes without our word, and is fenced now:
            // the copy here is the latest state. It goes live.
            Phase::Prepared { source, epoch, .. } if source == peer && self.arbitrated => {
                let (source, epoch) = (source.clone(), *epoch);
                self.activate(source, epoch);
            }
            // Without an arbiter the source may have resumed before it was
            // lost: the copy here may be stale, and goes.
            Phase::Prepared {
                source, previous, ..
            } if source == peer => {
                let route = previous.clone();
                self.phase = Phase::Forwarding {
                    route: route.clone(),
                };
                self.actions.push_back(Action::DropPrepared { route });
            }
            _ => {}
        }
    }

    /// This node learned that its cluster declared it failed: whatever it
    /// holds is down, and it decides nothing more.
    pub fn fenced(&mut self) {
        let failed = matches!(
            self.phase,
            Phase::Preparing { .. } | Phase::Aborting { .. } | Phase::Committing { .. }
        );
        let held = matches!(
            self.phase,
            Phase::Hosting { .. }
                | Phase::Preparing { .. }
                | Phase::Aborting { .. }
                | Phase::Prepared { .. }
        );
        let step = if matches!(self.phase, Phase::Committing { .. }) {
            Step::Commit
        } else {
            Step::Prepare
        };
        self.phase = Phase::Ended;
        if failed {
            self.actions
                .push_back(Action::Answer(Err((step, Failure::Fenced))));
        }
        if held {
            self.actions.push_back(Action::Down);
        }
    }

    /// The actor ended here (stopped or panicked while hosted).
    pub fn ended(&mut self) {
        self.phase = Phase::Ended;
    }
}

#[cfg(test)]
mod tests;
