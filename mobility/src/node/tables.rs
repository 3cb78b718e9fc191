//! The node's tables: entries and their cells, names, pending replies and
//! monitors, members declared failed, closed migration attempts.

use super::*;
use crate::mailbox::activity::Activity;
use crate::mailbox::control::ControlQueue;
use crate::mailbox::host::Router;

impl Node {
    pub(super) fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn cell_started(&self) {
        self.shared.live_cells.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn cell_finished(&self, id: ActorId) {
        let mut entries = write(&self.shared.entries);
        if entries.get(&id).is_some_and(|e| e.exit_reason().is_some()) {
            entries.remove(&id);
        }
        drop(entries);
        lock(&self.shared.cell_tasks).remove(&id);
        if self.shared.live_cells.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.cells_done.notify_waiters();
        }
    }

    pub(super) fn downcast<A: Actor>(
        entry: Arc<dyn ErasedEntry>,
        what: impl FnOnce() -> String,
    ) -> Result<Arc<Entry<A>>, Error> {
        let found = entry.type_tag();
        entry
            .as_any()
            .downcast::<Entry<A>>()
            .map_err(|_| Error::WrongType {
                what: what(),
                expected: A::TYPE_TAG.to_owned(),
                found: found.to_owned(),
            })
    }

    pub(super) fn create_entry<A: Actor>(
        &self,
        id: ActorId,
        route: Route,
        start: Start<A>,
    ) -> Arc<Entry<A>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let hosting = matches!(start, Start::Host { .. });
        let stream = Origin::fresh(self.id());
        // An actor elsewhere: local senders send directly from the start.
        let direct = (!hosting).then(|| DirectSend {
            stream: stream.clone(),
            next_seq: 0,
        });
        let entry = Arc::new(Entry {
            id,
            node_id: self.id().clone(),
            timeout: self.shared.config.request_timeout,
            capacity: self.shared.config.mailbox_capacity,
            queued: AtomicUsize::new(0),
            exit: OnceLock::new(),
            route: Mutex::new(route),
            hosting: AtomicBool::new(hosting),
            tx,
            control: ControlQueue::new(),
            node: Arc::downgrade(&self.shared) as std::sync::Weak<dyn Router>,
            deadlines: self.shared.deadlines.clone(),
            direct_on: AtomicBool::new(direct.is_some()),
            direct: Mutex::new(direct),
            stall: self.shared.stall.clone(),
            idle: IdleSlot::default(),
            activity: Activity::new(&self.shared.meters.of_type(A::TYPE_TAG)),
        });
        write(&self.shared.entries).insert(id, entry.clone());
        let cell = Cell::new(self.cell_host(), entry.clone(), rx, start, stream);
        self.cell_started();
        let task = self.spawn_task(Box::new(cell).run());
        if !task.is_finished() {
            lock(&self.shared.cell_tasks).insert(id, task.abort_handle());
        }
        entry
    }

    /// This node's slot for actor `id` of type `A`; created as a forwarder to
    /// `node` (where the actor was last seen) if the node has none yet.
    pub(crate) fn entry_for<A: Actor>(
        &self,
        id: ActorId,
        node: NodeId,
        epoch: u64,
    ) -> Result<Arc<Entry<A>>, Error> {
        let what = || format!("actor {id}");
        if let Some(entry) = read(&self.shared.entries).get(&id).cloned() {
            return Self::downcast::<A>(entry, what);
        }
        if node == *self.id() || self.shared.stopped.load(Ordering::Acquire) {
            // It was here and is gone: a slot whose every message says so.
            let (tx, rx) = mpsc::unbounded_channel();
            drop(rx);
            let exit = OnceLock::new();
            let _ = exit.set(ExitReason::NoSuchActor);
            return Ok(Arc::new(Entry {
                id,
                node_id: self.id().clone(),
                timeout: self.shared.config.request_timeout,
                capacity: None,
                queued: AtomicUsize::new(0),
                exit,
                route: Mutex::new(Route { node, epoch }),
                hosting: AtomicBool::new(false),
                tx,
                control: ControlQueue::closed(),
                node: Arc::downgrade(&self.shared) as std::sync::Weak<dyn Router>,
                deadlines: self.shared.deadlines.clone(),
                direct: Mutex::new(None),
                direct_on: AtomicBool::new(false),
                stall: self.shared.stall.clone(),
                idle: IdleSlot::default(),
                activity: Activity::new(&self.shared.meters.of_type(A::TYPE_TAG)),
            }));
        }
        // Check again under the write lock so two decoders make one slot.
        let existing = write(&self.shared.entries).get(&id).cloned();
        match existing {
            Some(entry) => Self::downcast::<A>(entry, what),
            None => Ok(self.create_entry::<A>(id, Route { node, epoch }, Start::Forward)),
        }
    }

    /// A snapshot of actor `actor` arrived: hand it to its cell here.
    pub(crate) fn arrive<A: Actor>(
        &self,
        from: NodeId,
        actor: ActorId,
        epoch: u64,
        snapshot: Box<Snapshot<A>>,
        started: Instant,
    ) -> Result<(), MigrationFailure> {
        if lock(&self.shared.closed_epochs)
            .get(&actor)
            .is_some_and(|closed| epoch <= *closed)
        {
            return Err(MigrationFailure::Busy);
        }
        // What the actor owes to nodes we have no link to goes back the way
        // it came: through the source.
        for owed in snapshot.nodes_owed() {
            self.learn_route(&owed, &from);
        }
        let entry = self
            .entry_for::<A>(actor, from.clone(), epoch.saturating_sub(1))
            .map_err(|e| MigrationFailure::Codec(e.to_string()))?;
        entry
            .control
            .send(Control::Prepare {
                from,
                epoch,
                snapshot,
                started,
            })
            .map_err(|_| MigrationFailure::Stopped)
    }

    /// Why an actor on `node` cannot be reached: its node was declared
    /// failed by the cluster, or this node has no link to it (any more).
    pub(crate) fn down_reason(&self, node: &NodeId) -> ExitReason {
        if lock(&self.shared.failed_members).contains(node) {
            return ExitReason::Unreachable(node.clone());
        }
        lock(&self.shared.lost_peers)
            .get(node)
            .cloned()
            .unwrap_or_else(|| ExitReason::LinkLost(node.clone()))
    }

    /// Whether member `node` was declared failed (and no new incarnation
    /// joined since).
    pub(crate) fn is_failed_member(&self, node: &NodeId) -> bool {
        // Most of the time nobody failed: no lock on the message path.
        self.shared.any_failed.load(Ordering::Acquire)
            && lock(&self.shared.failed_members).contains(node)
    }

    /// Where `actor` lives now if `route` leads to a member declared failed
    /// and the directory knows another location: it survived a move caught
    /// by the failure. What the failed node held of a stream through it is
    /// lost, so the sender starts a new stream there.
    pub(crate) fn relocated(&self, actor: ActorId, route: &Route) -> Option<Route> {
        if !self.is_failed_member(&route.node) {
            return None;
        }
        self.locate(actor)
            .filter(|(node, _)| *node != route.node)
            .map(|(node, epoch)| Route { node, epoch })
    }

    /// Records whether member `node` is declared failed.
    pub(crate) fn set_member_failed(&self, node: &NodeId, failed: bool) {
        let mut members = lock(&self.shared.failed_members);
        if failed {
            members.insert(node.clone());
        } else {
            members.remove(node);
        }
        self.shared
            .any_failed
            .store(!members.is_empty(), Ordering::Release);
    }

    /// Attempts up to `epoch` of moving `actor` here were aborted before
    /// this node had a slot for it: their prepares are refused.
    pub(super) fn close_epoch(&self, actor: ActorId, epoch: u64) {
        let mut closed = lock(&self.shared.closed_epochs);
        // Bounded: past 4,096 actors the table starts over (their attempts
        // are long over by then).
        if closed.len() >= 4096 {
            closed.clear();
        }
        let slot = closed.entry(actor).or_insert(0);
        *slot = (*slot).max(epoch);
    }

    /// Whether the cluster's directory has `name` held by another actor.
    pub(crate) fn name_held_elsewhere(&self, name: &str, actor: ActorId) -> bool {
        self.shared
            .directory
            .as_ref()
            .and_then(|d| d.find_name(name))
            .is_some_and(|found| found.actor != actor)
    }

    /// Claims `name` for `actor`; `Ok(true)` if newly claimed, `Ok(false)` if
    /// it already had it, `Err(owner)` if another actor has it.
    pub(crate) fn reserve_name(&self, name: &str, actor: ActorId) -> Result<bool, ActorId> {
        let mut names = lock(&self.shared.names);
        match names.get(name) {
            Some(owner) if *owner == actor => Ok(false),
            // A name left here by an actor that moved away (or ended) only
            // pointed at where it went: an actor active here takes it.
            Some(owner) if self.entry(owner).is_some_and(|e| e.is_hosting()) => Err(*owner),
            _ => {
                names.insert(name.to_owned(), actor);
                Ok(true)
            }
        }
    }

    /// Drops `name` if `actor` holds it.
    pub(crate) fn release_name(&self, name: &str, actor: ActorId) {
        let mut names = lock(&self.shared.names);
        if names.get(name) == Some(&actor) {
            names.remove(name);
        }
    }

    /// Keeps a caller's reply channel until the reply comes over a link.
    pub(crate) fn register_pending(&self, actor: ActorId, sender: ReplySender) -> u64 {
        let id = self.next_id();
        lock(&self.shared.pending).insert(id, Waiting { actor, sender });
        id
    }

    pub(super) fn take_pending(&self, request: u64) -> Option<ReplySender> {
        lock(&self.shared.pending)
            .remove(&request)
            .map(|w| w.sender)
    }

    pub(crate) fn register_monitor(&self, actor: ActorId) -> (u64, oneshot::Receiver<ExitReason>) {
        let (tx, rx) = oneshot::channel();
        let id = self.next_id();
        lock(&self.shared.monitors).insert(id, Waiting { actor, sender: tx });
        (id, rx)
    }

    pub(super) fn take_monitor(&self, monitor: u64) -> Option<oneshot::Sender<ExitReason>> {
        lock(&self.shared.monitors)
            .remove(&monitor)
            .map(|w| w.sender)
    }

    pub(crate) fn forget_monitor(&self, id: u64) {
        lock(&self.shared.monitors).remove(&id);
    }
}
