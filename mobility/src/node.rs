//! A node: one running mobility runtime with its actors, names, links to
//! other nodes, and the tables that route replies and monitor reports.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::actor::Actor;
use crate::cell::{Cell, Control, NetControl, Start};
use crate::entry::{Entry, ErasedEntry, Route};
use crate::error::{Error, ExitReason};
use crate::handle::Handle;
use crate::id::{ActorId, Destination, NodeId};
use crate::migration::{MigrationFailure, MigrationReport, Snapshot};
use crate::registry::{PrepareArgs, Registry};
use crate::reply::{ReplySender, ReplyValue};
use crate::wire::{PeerMsg, WireBody, WireEnvelope};
use mobility_net::{LinkReceiver, LinkSender};

/// Settings of a node.
#[derive(Debug, Clone)]
struct Config {
    request_timeout: Duration,
    mailbox_capacity: Option<usize>,
    migration_timeout: Duration,
}

/// Builds a [`Node`]: `Node::builder().id("node-a").start().await?`.
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    id: Option<String>,
    config: Config,
}

impl NodeBuilder {
    /// The node's unique id (default: `node-` and a random number).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// How long a request waits for its reply unless the handle says
    /// otherwise ([`Handle::with_timeout`]). Default: 5 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Bounds every mailbox of this node to `capacity` queued messages from
    /// local senders; a full mailbox refuses new messages with
    /// [`Error::MailboxFull`] instead of growing. Default: unbounded.
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.config.mailbox_capacity = Some(capacity);
        self
    }

    /// How long each step of a migration (prepare, commit) may take before it
    /// is abandoned and the actor resumes at the source. Default: 10 s.
    pub fn migration_timeout(mut self, timeout: Duration) -> Self {
        self.config.migration_timeout = timeout;
        self
    }

    /// Starts the node. Fails if the id is invalid, a duration is zero, or
    /// two actor types of this binary share a type tag.
    pub async fn start(self) -> Result<Node, Error> {
        let id = match self.id {
            Some(text) => NodeId::new(&text).map_err(|e| Error::Config(e.to_string()))?,
            None => NodeId::new(&format!("node-{:08x}", crate::id::random_u64() as u32))
                .map_err(|e| Error::Config(e.to_string()))?,
        };
        if self.config.request_timeout.is_zero() || self.config.migration_timeout.is_zero() {
            return Err(Error::Config("timeouts must be longer than zero".into()));
        }
        if self.config.mailbox_capacity == Some(0) {
            return Err(Error::Config(
                "a mailbox capacity must be at least 1".into(),
            ));
        }
        let registry = Registry::global()?;
        tracing::debug!(node = %id, types = ?registry.tags(), "node started");
        Ok(Node {
            shared: Arc::new(NodeShared {
                id,
                config: self.config,
                registry,
                entries: RwLock::new(HashMap::new()),
                names: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                monitors: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                peers: RwLock::new(HashMap::new()),
                stopped: AtomicBool::new(false),
                live_cells: AtomicUsize::new(0),
            }),
        })
    }
}

pub(crate) struct NodeShared {
    id: NodeId,
    config: Config,
    registry: &'static Registry,
    entries: RwLock<HashMap<ActorId, Arc<dyn ErasedEntry>>>,
    names: Mutex<HashMap<String, ActorId>>,
    pending: Mutex<HashMap<u64, ReplySender>>,
    monitors: Mutex<HashMap<u64, oneshot::Sender<ExitReason>>>,
    next_id: AtomicU64,
    peers: RwLock<HashMap<NodeId, LinkSender>>,
    stopped: AtomicBool,
    live_cells: AtomicUsize,
}

/// A running mobility node. Cheap to clone; every clone is the same node.
#[derive(Clone)]
pub struct Node {
    shared: Arc<NodeShared>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.shared.id)
            .field("actors", &self.hosted().len())
            .field("peers", &self.peers())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Node {
    /// A builder with default settings.
    pub fn builder() -> NodeBuilder {
        NodeBuilder {
            id: None,
            config: Config {
                request_timeout: Duration::from_secs(5),
                mailbox_capacity: None,
                migration_timeout: Duration::from_secs(10),
            },
        }
    }

    pub(crate) fn from_shared(shared: Arc<NodeShared>) -> Self {
        Node { shared }
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.shared.id
    }

    /// Starts `actor` on this node; its `on_start` hook runs before its first
    /// message.
    pub async fn spawn<A: Actor>(&self, actor: A) -> Result<Handle<A>, Error> {
        self.spawn_inner(None, actor)
    }

    /// Starts `actor` under a name unique on this node, so that
    /// [`Node::lookup`] finds it. Fails if the name is taken.
    pub async fn spawn_named<A: Actor>(
        &self,
        name: impl Into<String>,
        actor: A,
    ) -> Result<Handle<A>, Error> {
        self.spawn_inner(Some(name.into()), actor)
    }

    fn spawn_inner<A: Actor>(&self, name: Option<String>, actor: A) -> Result<Handle<A>, Error> {
        self.check_running()?;
        let id = ActorId::fresh();
        if let Some(name) = &name {
            if let Err(owner) = self.reserve_name(name, id) {
                return Err(Error::NameTaken {
                    name: name.clone(),
                    owner,
                });
            }
        }
        let route = Route {
            node: self.id().clone(),
            epoch: 0,
        };
        let entry = self.create_entry::<A>(id, route, Start::Host { state: actor, name });
        Ok(Handle::from_entry(entry))
    }

    /// The actor registered here under `name`, as a handle of type `A`.
    /// Another type under that name is an error, not a panic.
    pub fn lookup<A: Actor>(&self, name: &str) -> Result<Handle<A>, Error> {
        let id =
            lock(&self.shared.names)
                .get(name)
                .copied()
                .ok_or_else(|| Error::NameNotFound {
                    name: name.to_owned(),
                })?;
        let entry = read(&self.shared.entries)
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::NameNotFound {
                name: name.to_owned(),
            })?;
        Self::downcast::<A>(entry, || format!("the actor named {name:?}")).map(Handle::from_entry)
    }

    /// The same actor as `handle`, sending from this node: what a handle
    /// becomes when it arrives here inside a message. Messages sent through
    /// it go from this node straight to wherever the actor lives.
    pub fn bind<A: Actor>(&self, handle: &Handle<A>) -> Result<Handle<A>, Error> {
        if handle.node_id() == self.id() {
            return Ok(handle.clone());
        }
        self.check_running()?;
        let route = handle.route();
        self.entry_for::<A>(handle.id(), route.node, route.epoch)
            .map(Handle::from_entry)
    }

    /// Migrates the actor to `dest` (after the messages this node sent it
    /// before) and reports how it went. Works from any node that has a handle:
    /// the request travels to wherever the actor is. On error the actor runs
    /// where it was, with its state unchanged.
    pub async fn migrate<A: Actor>(
        &self,
        handle: &Handle<A>,
        dest: impl Into<Destination>,
    ) -> Result<MigrationReport, Error> {
        self.bind(handle)?.migrate(dest.into()).await
    }

    /// Links this node with another node of the same process (both ways), so
    /// that actors can move between them and handles work across them.
    pub fn connect_in_process(&self, other: &Node) -> Result<(), Error> {
        if other.id() == self.id() {
            return Err(Error::Config(format!(
                "cannot link node {} to itself",
                self.id()
            )));
        }
        self.check_running()?;
        other.check_running()?;
        let (to_other, from_self) = mobility_net::memory_pair();
        let (to_self, from_other) = mobility_net::memory_pair();
        self.add_peer(other.id().clone(), to_other, from_other);
        other.add_peer(self.id().clone(), to_self, from_self);
        Ok(())
    }

    fn add_peer(&self, peer: NodeId, sender: LinkSender, receiver: LinkReceiver) {
        write(&self.shared.peers).insert(peer.clone(), sender);
        let node = self.clone();
        tokio::spawn(async move { node.read_link(peer, receiver).await });
    }

    async fn read_link(self, peer: NodeId, mut receiver: LinkReceiver) {
        while let Some(frame) = receiver.recv().await {
            match mobility_net::decode::<PeerMsg>(&frame) {
                Ok(msg) => self.on_peer_msg(&peer, msg),
                Err(e) => {
                    tracing::warn!(node = %self.id(), %peer, error = %e, "dropped an undecodable frame")
                }
            }
        }
        write(&self.shared.peers).remove(&peer);
        tracing::debug!(node = %self.id(), %peer, "link closed");
    }

    /// The nodes this node is linked to.
    pub fn peers(&self) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = read(&self.shared.peers).keys().cloned().collect();
        peers.sort();
        peers
    }

    /// Whether actor `id` is active on this node right now.
    pub fn hosts(&self, id: ActorId) -> bool {
        read(&self.shared.entries)
            .get(&id)
            .is_some_and(|e| e.is_hosting())
    }

    /// The actors active on this node right now.
    pub fn hosted(&self) -> Vec<ActorId> {
        read(&self.shared.entries)
            .iter()
            .filter(|(_, e)| e.is_hosting())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Stops every actor of this node (their `on_stop` hooks run and their
    /// monitors fire with [`ExitReason::NodeDown`]) and drops its links.
    pub async fn shutdown(&self) {
        if self.shared.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let entries: Vec<Arc<dyn ErasedEntry>> =
            read(&self.shared.entries).values().cloned().collect();
        for entry in &entries {
            entry.control(NetControl::Shutdown);
        }
        // Wait (bounded) for the cells to finish their on_stop hooks.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.shared.live_cells.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        write(&self.shared.peers).clear();
        write(&self.shared.entries).clear();
        lock(&self.shared.pending).clear();
        lock(&self.shared.monitors).clear();
        tracing::debug!(node = %self.id(), "node shut down");
    }

    fn check_running(&self) -> Result<(), Error> {
        if self.shared.stopped.load(Ordering::Acquire) {
            Err(Error::NodeStopped(self.id().clone()))
        } else {
            Ok(())
        }
    }

    // ---- crate-internal plumbing ------------------------------------------

    pub(crate) fn migration_timeout(&self) -> Duration {
        self.shared.config.migration_timeout
    }

    pub(crate) fn registry(&self) -> &'static Registry {
        self.shared.registry
    }

    fn next_id(&self) -> u64 {
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
        self.shared.live_cells.fetch_sub(1, Ordering::AcqRel);
    }

    fn downcast<A: Actor>(
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

    fn create_entry<A: Actor>(&self, id: ActorId, route: Route, start: Start<A>) -> Arc<Entry<A>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let hosting = matches!(start, Start::Host { .. });
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
            control: control_tx,
            node: Arc::downgrade(&self.shared),
        });
        write(&self.shared.entries).insert(id, entry.clone());
        let cell = Cell::new(self.clone(), entry.clone(), rx, control_rx, start);
        self.cell_started();
        tokio::spawn(cell.run());
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
            let (control, _) = mpsc::unbounded_channel();
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
                control,
                node: Arc::downgrade(&self.shared),
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

    /// Claims `name` for `actor`; `Ok(true)` if newly claimed, `Ok(false)` if
    /// it already had it, `Err(owner)` if another actor has it.
    pub(crate) fn reserve_name(&self, name: &str, actor: ActorId) -> Result<bool, ActorId> {
        let mut names = lock(&self.shared.names);
        match names.get(name) {
            Some(owner) if *owner == actor => Ok(false),
            Some(owner) => Err(*owner),
            None => {
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

    pub(crate) fn register_pending(&self, sender: ReplySender) -> u64 {
        let id = self.next_id();
        lock(&self.shared.pending).insert(id, sender);
        id
    }

    pub(crate) fn register_monitor(&self) -> (u64, oneshot::Receiver<ExitReason>) {
        let (tx, rx) = oneshot::channel();
        let id = self.next_id();
        lock(&self.shared.monitors).insert(id, tx);
        (id, rx)
    }

    pub(crate) fn forget_monitor(&self, id: u64) {
        lock(&self.shared.monitors).remove(&id);
    }

    pub(crate) fn has_peer(&self, node: &NodeId) -> bool {
        read(&self.shared.peers).contains_key(node)
    }

    /// Sends a frame to a linked node.
    pub(crate) fn send_peer(&self, to: &NodeId, msg: &PeerMsg) -> Result<(), Error> {
        let unknown = || Error::UnknownNode {
            node: to.clone(),
            from: self.id().clone(),
        };
        let link = read(&self.shared.peers)
            .get(to)
            .cloned()
            .ok_or_else(unknown)?;
        let frame = mobility_net::encode(msg)?;
        link.send(Bytes::from(frame)).map_err(|_| unknown())
    }

    /// Routes a reply to request `request` of node `origin`.
    pub(crate) fn send_reply(&self, origin: &NodeId, request: u64, result: Result<Vec<u8>, Error>) {
        if origin == self.id() {
            if let Some(waiter) = lock(&self.shared.pending).remove(&request) {
                let _ = waiter.send(result.map(ReplyValue::Encoded));
            }
            return;
        }
        let msg = PeerMsg::Reply {
            request,
            result: result.map(serde_bytes::ByteBuf::from),
        };
        if let Err(e) = self.send_peer(origin, &msg) {
            tracing::warn!(node = %self.id(), %origin, error = %e, "a reply could not be sent");
        }
    }

    /// Reports the end of `actor` to monitor `monitor` of node `to`.
    pub(crate) fn send_down(&self, to: &NodeId, monitor: u64, actor: ActorId, reason: ExitReason) {
        if to == self.id() {
            if let Some(waiter) = lock(&self.shared.monitors).remove(&monitor) {
                let _ = waiter.send(reason);
            }
            return;
        }
        if let Err(e) = self.send_peer(
            to,
            &PeerMsg::Down {
                monitor,
                actor,
                reason,
            },
        ) {
            tracing::warn!(node = %self.id(), %to, error = %e, "a monitor report could not be sent");
        }
    }

    /// Answers a message that cannot reach its actor.
    pub(crate) fn reject(&self, envelope: &WireEnvelope, actor: ActorId, reason: ExitReason) {
        if let WireBody::Monitor(monitor) = envelope.body {
            self.send_down(&envelope.origin.node, monitor, actor, reason.clone());
        }
        if let Some(request) = envelope.reply {
            self.send_reply(
                &envelope.origin.node,
                request,
                Err(Error::ActorDown { actor, reason }),
            );
        }
    }

    fn entry(&self, id: &ActorId) -> Option<Arc<dyn ErasedEntry>> {
        read(&self.shared.entries).get(id).cloned()
    }

    fn control(&self, actor: &ActorId, control: NetControl) {
        match self.entry(actor) {
            Some(entry) => entry.control(control),
            None => {
                tracing::debug!(node = %self.id(), %actor, ?control, "control for an unknown actor dropped")
            }
        }
    }

    /// Handles one frame from linked node `from`.
    fn on_peer_msg(&self, from: &NodeId, msg: PeerMsg) {
        match msg {
            PeerMsg::Deliver {
                actor, envelope, ..
            } => match self.entry(&actor) {
                Some(entry) => {
                    if let Err(envelope) = entry.deliver(envelope) {
                        let reason = entry.exit_reason().unwrap_or(ExitReason::NoSuchActor);
                        self.reject(&envelope, actor, reason);
                    }
                }
                None => self.reject(&envelope, actor, ExitReason::NoSuchActor),
            },
            PeerMsg::Reply { request, result } => {
                if let Some(waiter) = lock(&self.shared.pending).remove(&request) {
                    let _ = waiter.send(result.map(|bytes| ReplyValue::Encoded(bytes.into_vec())));
                }
            }
            PeerMsg::Down {
                monitor, reason, ..
            } => {
                if let Some(waiter) = lock(&self.shared.monitors).remove(&monitor) {
                    let _ = waiter.send(reason);
                }
            }
            PeerMsg::Moved { actor, node, epoch } => {
                self.control(&actor, NetControl::Moved { node, epoch })
            }
            PeerMsg::Prepare {
                actor,
                type_tag,
                schema,
                epoch,
                snapshot,
            } => {
                let result = match self.registry().get(&type_tag) {
                    None => Err(MigrationFailure::UnknownType {
                        tag: type_tag,
                        known: self.registry().tags(),
                    }),
                    Some(ty) if ty.schema() != schema => Err(MigrationFailure::SchemaMismatch {
                        tag: type_tag,
                        ours: schema,
                        theirs: ty.schema(),
                    }),
                    Some(ty) => ty.prepare(
                        self,
                        PrepareArgs {
                            from: from.clone(),
                            actor,
                            epoch,
                            snapshot: &snapshot,
                        },
                    ),
                };
                // On success the cell answers once the actor is restored.
                if let Err(failure) = result {
                    tracing::info!(node = %self.id(), %actor, %failure, "refused an arriving actor");
                    let ack = PeerMsg::PrepareAck {
                        actor,
                        epoch,
                        result: Err(failure),
                    };
                    if let Err(e) = self.send_peer(from, &ack) {
                        tracing::warn!(node = %self.id(), error = %e, "refusal could not be sent");
                    }
                }
            }
            PeerMsg::PrepareAck {
                actor,
                epoch,
                result,
            } => self.control(&actor, NetControl::PrepareAck { epoch, result }),
            PeerMsg::Commit { actor, epoch } => self.control(&actor, NetControl::Commit { epoch }),
            PeerMsg::Committed { actor, epoch } => {
                self.control(&actor, NetControl::Committed { epoch })
            }
            PeerMsg::Abort { actor, epoch } => self.control(&actor, NetControl::Abort { epoch }),
        }
    }
}
