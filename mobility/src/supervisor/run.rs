//! The supervisor's loop: a tokio task on the supervisor's node that starts
//! the children, waits for any of them to end (their monitors, which follow
//! each child wherever it moves) or for a stop, and applies the strategy.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::node::Node;
use crate::proto::error::Error;

use super::policy::{plan, Restart, RestartWindow, Strategy};
use super::spec::{is_own_node_down, BoxFuture, ChildSpec, Running};
use super::{ChildExit, Shared, StartError, SupervisorExit};

/// A request to the loop from a [`SupervisorHandle`](super::SupervisorHandle).
pub(crate) enum Command {
    /// Stop the children (reverse start order) and end with `Stopped`.
    Stop(oneshot::Sender<()>),
    /// The node begins a graceful shutdown: stop the children while it can
    /// still reach them, and end with `NodeDown`.
    NodeStopping(oneshot::Sender<()>),
}

/// How long a restart waits for the name of a child's previous incarnation
/// to be released (the node that held it drops it as it learns of the
/// death; a cluster's directory, once the failure is settled).
const NAME_RELEASE_PATIENCE: Duration = Duration::from_secs(10);
const NAME_RELEASE_POLL: Duration = Duration::from_millis(20);

struct Child {
    spec: ChildSpec,
    /// Bumped at every start: an end reported for an older incarnation is
    /// one the supervisor caused itself (it stopped it), or stale.
    incarnation: u64,
    stop: Option<Arc<dyn Fn() -> BoxFuture<()> + Send + Sync>>,
    /// The actor id of the latest incarnation (its name may still be held).
    last_actor: Option<crate::proto::id::ActorId>,
    /// A temporary child that ended: never started again.
    removed: bool,
}

/// A child ended: its index, its incarnation, how.
type Ended = (usize, u64, ChildExit);

pub(crate) struct Run {
    node: Node,
    strategy: Strategy,
    window: RestartWindow,
    intensity: u32,
    children: Vec<Child>,
    shared: Arc<Shared>,
    ended_tx: mpsc::UnboundedSender<Ended>,
    ended: mpsc::UnboundedReceiver<Ended>,
    /// The node's shutdown hook that tells this loop, forgotten at its end.
    shutdown_hook: Option<u64>,
}

impl Run {
    pub(crate) fn new(
        node: Node,
        strategy: Strategy,
        (intensity, period): (u32, Duration),
        specs: Vec<ChildSpec>,
        shared: Arc<Shared>,
    ) -> Self {
        let (ended_tx, ended) = mpsc::unbounded_channel();
        Run {
            node,
            strategy,
            window: RestartWindow::new(intensity, period),
            intensity,
            children: specs
                .into_iter()
                .map(|spec| Child {
                    spec,
                    incarnation: 0,
                    stop: None,
                    last_actor: None,
                    removed: false,
                })
                .collect(),
            shared,
            ended_tx,
            ended,
            shutdown_hook: None,
        }
    }

    /// Starts every child in order; on a failure, stops those started
    /// (reverse order) and says which child failed (OTP: a supervisor whose
    /// child cannot start does not start).
    pub(crate) async fn start_all(&mut self) -> Result<(), StartError> {
        for i in 0..self.children.len() {
            if let Err(error) = self.start_child(i, false).await {
                self.stop_all().await;
                return Err(StartError {
                    child: self.children[i].spec.id.clone(),
                    error,
                });
            }
        }
        Ok(())
    }

    /// Has the node tell this loop when a graceful shutdown begins. Called
    /// before the loop's task is spawned, so that a shutdown right after
    /// `start` is not missed.
    pub(crate) fn watch_shutdown(&mut self) {
        let sender = self.shared.commands.clone();
        self.shutdown_hook = Some(self.node.before_shutdown(move || async move {
            let (done, stopped) = oneshot::channel();
            if sender.send(Command::NodeStopping(done)).is_ok() {
                let _ = stopped.await;
            }
        }));
    }

    /// Runs until stopped, escalated, or its node goes down; then publishes
    /// how it ended.
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let (exit, done) = loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Stop(done)) => break (SupervisorExit::Stopped, Some(done)),
                    Some(Command::NodeStopping(done)) => {
                        break (SupervisorExit::NodeDown(self.node.id().clone()), Some(done))
                    }
                    // Unreachable while `shared` holds a sender; end cleanly anyway.
                    None => break (SupervisorExit::Stopped, None),
                },
                Some((i, incarnation, exit)) = self.ended.recv() => {
                    if let Some(end) = self.on_exit(i, incarnation, exit).await {
                        break (end, None);
                    }
                }
            }
        };
        if let Some(hook) = self.shutdown_hook.take() {
            self.node.forget_before_shutdown(hook);
        }
        self.stop_all().await;
        match &exit {
            SupervisorExit::Stopped => {
                tracing::debug!(node = %self.node.id(), "supervisor stopped")
            }
            other => tracing::warn!(node = %self.node.id(), reason = %other, "supervisor ended"),
        }
        self.shared.finish(exit);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// Handles the end of child `i`; `Some` when the supervisor must end.
    async fn on_exit(
        &mut self,
        i: usize,
        incarnation: u64,
        exit: ChildExit,
    ) -> Option<SupervisorExit> {
        let child = &mut self.children[i];
        if child.incarnation != incarnation || child.stop.is_none() {
            return None; // an incarnation the supervisor stopped itself
        }
        child.stop = None;
        self.shared.set_stopped(i);
        let mut failures = VecDeque::from([(i, exit)]);
        while let Some((i, exit)) = failures.pop_front() {
            if is_own_node_down(&exit, self.node.id()) {
                return Some(SupervisorExit::NodeDown(self.node.id().clone()));
            }
            let spec = &self.children[i].spec;
            if !spec.restart.restarts_after(exit.is_normal()) {
                tracing::info!(node = %self.node.id(), child = %spec.id, reason = %exit,
                    "supervisor: child ended, not restarted ({:?})", spec.restart);
                if spec.restart == Restart::Temporary {
                    self.remove(i);
                }
                continue;
            }
            if !self.window.allow(Instant::now()) {
                tracing::error!(node = %self.node.id(), child = %spec.id, reason = %exit,
                    "supervisor: restart intensity exceeded, escalating");
                return Some(SupervisorExit::Escalated {
                    child: spec.id.clone(),
                    reason: Box::new(exit),
                    intensity: self.intensity,
                    period: self.window.period(),
                });
            }
            tracing::info!(node = %self.node.id(), child = %spec.id, reason = %exit,
                strategy = ?self.strategy, "supervisor: restarting");
            let children = &self.children;
            let plan = plan(self.strategy, i, children.len(), |j| {
                children[j].spec.restart == Restart::Temporary || children[j].removed
            });
            for &j in &plan.stop {
                self.stop_child(j).await;
                if self.children[j].spec.restart == Restart::Temporary {
                    self.remove(j);
                }
            }
            for &j in &plan.start {
                if self.children[j].removed || self.children[j].stop.is_some() {
                    continue;
                }
                if let Err(error) = self.start_child(j, true).await {
                    tracing::warn!(node = %self.node.id(), child = %self.children[j].spec.id,
                        %error, "supervisor: restart failed");
                    // A failed start is a failure of that child, counted
                    // against the intensity like any other.
                    failures.push_back((j, ChildExit::StartFailed(error)));
                    break;
                }
            }
        }
        None
    }

    /// Starts a new incarnation of child `i` (a restart if `restart`) and
    /// watches it.
    async fn start_child(&mut self, i: usize, restart: bool) -> Result<(), Error> {
        let running = self.start_incarnation(i).await?;
        let child = &mut self.children[i];
        child.incarnation += 1;
        child.stop = Some(running.stop);
        child.last_actor = running.actor;
        self.shared
            .set_running(i, running.handle, running.actor, restart);
        let (ended, incarnation, exit) = (self.ended_tx.clone(), child.incarnation, running.exit);
        self.node.spawn_task(async move {
            let _ = ended.send((i, incarnation, exit.await));
        });
        Ok(())
    }

    /// One start; if the child's name is still held by its previous
    /// incarnation (known dead), waits for the release and tries again.
    async fn start_incarnation(&self, i: usize) -> Result<Running, Error> {
        let child = &self.children[i];
        let spec = &child.spec;
        let deadline = tokio::time::Instant::now() + NAME_RELEASE_PATIENCE;
        loop {
            let started = spec
                .starter
                .start(self.node.clone(), spec.name.clone(), spec.placement.clone())
                .await;
            match started {
                Err(Error::NameTaken { owner, .. })
                    if Some(owner) == child.last_actor
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(NAME_RELEASE_POLL).await;
                }
                other => return other,
            }
        }
    }

    /// Stops child `i` if it runs, waiting at most its `shutdown` time.
    async fn stop_child(&mut self, i: usize) {
        let child = &mut self.children[i];
        let Some(stop) = child.stop.take() else {
            return;
        };
        self.shared.set_stopped(i);
        if tokio::time::timeout(child.spec.shutdown, stop())
            .await
            .is_err()
        {
            tracing::warn!(node = %self.node.id(), child = %child.spec.id,
                "supervisor: child did not stop in time");
        }
    }

    /// Stops every running child, in reverse start order.
    async fn stop_all(&mut self) {
        for i in (0..self.children.len()).rev() {
            self.stop_child(i).await;
        }
    }

    fn remove(&mut self, i: usize) {
        self.children[i].removed = true;
        self.shared.set_removed(i);
    }
}
