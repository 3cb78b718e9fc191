//! A node: one running mobility runtime with its actors, names, links to
//! other nodes, and the tables that route replies and monitor reports.

use crate::sync::{lock, read, write};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::actor::Actor;
use crate::cell::{Cell, Control, HandoverFrame, NetControl, Start};
use crate::direct::DirectSend;
use crate::directory::Directory;
use crate::entry::{Entry, ErasedEntry, Route};
use crate::error::{Error, ExitReason};
use crate::handle::Handle;
use crate::id::{ActorId, Destination, NodeId};
use crate::idle::IdleSlot;
use crate::links::{Links, Path, Queued};
use crate::migration::{MigrationFailure, MigrationReport, Snapshot};
use crate::network::{NetSettings, Network};
use crate::registry::{PrepareArgs, Registry};
use crate::reply::{ReplySender, ReplyValue};
use crate::wire::{Origin, PeerMsg, WireBody, WireEnvelope};
use mobility_net::membership::{MemberEvent, Membership, MembershipConfig};
use mobility_net::tcp::{Secret, TcpConfig};
use mobility_net::{LinkReceiver, LinkSender};
use mobility_proto::handover::Frame;
use std::net::SocketAddr;

mod drain;
mod faults;
mod members;

pub use drain::DrainReport;
#[doc(hidden)]
pub use faults::{Direction as FaultDirection, Fault, Step as FaultStep};

/// Settings of a node.
#[derive(Debug, Clone)]
struct Config {
    request_timeout: Duration,
    mailbox_capacity: Option<usize>,
    migration_timeout: Duration,
    forwarder_idle: Duration,
    calls_on_caller_task: bool,
}

/// Settings of the node's cluster membership.
#[derive(Debug, Clone)]
struct Gossip {
    seeds: Vec<String>,
    interval: Duration,
    failure_timeout: Duration,
}

/// Builds a [`Node`]: `Node::builder().id("node-a").start().await?`.
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    id: Option<String>,
    config: Config,
    cluster: Option<(String, Secret)>,
    listen: Option<String>,
    trusted: Vec<(String, Secret)>,
    tcp: TcpConfig,
    gossip: Gossip,
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

    /// The cluster this node belongs to and the secret its members share.
    /// Every TCP link begins with a mutual proof of this secret bound to
    /// both node identities.
    pub fn cluster(mut self, id: impl Into<String>, secret: impl AsRef<[u8]>) -> Self {
        self.cluster = Some((id.into(), Secret::new(secret.as_ref())));
        self
    }

    /// Listens for TCP links on `addr` (`"127.0.0.1:0"` picks a free port;
    /// [`Node::listen_addr`] tells which). Needs [`NodeBuilder::cluster`].
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some(addr.into());
        self
    }

    /// Accepts links with nodes of another cluster that prove `secret`, in
    /// both directions: actors may then migrate between the two clusters.
    pub fn trust_cluster(mut self, id: impl Into<String>, secret: impl AsRef<[u8]>) -> Self {
        self.trusted.push((id.into(), Secret::new(secret.as_ref())));
        self
    }

    /// Joins the cluster through the member listening at `addr`
    /// (`"host:port"`, the address it gave [`NodeBuilder::listen`]). Call it
    /// once per seed; one live seed is enough. Without seeds the node forms
    /// a cluster of its own that others can join.
    pub fn join(mut self, addr: impl Into<String>) -> Self {
        self.gossip.seeds.push(addr.into());
        self
    }

    /// How often the node gossips with another member. Default: 100 ms.
    pub fn gossip_interval(mut self, interval: Duration) -> Self {
        self.gossip.interval = interval;
        self
    }

    /// About how long a silent member takes to be declared failed (its
    /// directory entries dropped, its actors reported down). Default: 2 s.
    pub fn failure_timeout(mut self, timeout: Duration) -> Self {
        self.gossip.failure_timeout = timeout;
        self
    }

    /// How long a forwarder left behind by a migration to another member
    /// stays without traffic (and without handles on this node) before it
    /// is retired; a sender that comes later is still forwarded, through
    /// the directory. Default: 30 s.
    pub fn forwarder_idle(mut self, idle: Duration) -> Self {
        self.config.forwarder_idle = idle;
        self
    }

    /// Whether a request to an actor idle on this node runs its handler on
    /// the caller's task, when the handler is a plain `fn` (not `async`).
    /// Default: true. It saves the two task switches of a round trip
    /// through the mailbox (a local call then costs about a quarter of a
    /// bare tokio channel round trip) and keeps every promise: one message
    /// at a time, each sender's order, migrations at a message boundary.
    ///
    /// What differs is where the handler runs: at the call, on the caller's
    /// task and thread (it sees the caller's task-locals; a caller that
    /// holds a lock the handler takes would wait on itself), and to its end
    /// even if the caller's timeout passes. Turn it off to run every
    /// handler on its actor's task; an `async` handler always does.
    pub fn calls_on_caller_task(mut self, enabled: bool) -> Self {
        self.config.calls_on_caller_task = enabled;
        self
    }

    /// Limits and timeouts of TCP links (frame size, handshake time,
    /// connection count, idle time, reconnection).
    pub fn tcp_config(mut self, config: TcpConfig) -> Self {
        self.tcp = config;
        self
    }

    /// Starts the node. Fails if the id is invalid, a duration is zero, the
    /// listener cannot bind, or two actor types of this binary share a type
    /// tag.
    pub async fn start(self) -> Result<Node, Error> {
        let id = match self.id {
            Some(text) => NodeId::new(&text).map_err(|e| Error::Config(e.to_string()))?,
            None => NodeId::new(&format!("node-{:08x}", crate::id::random_u64() as u32))
                .map_err(|e| Error::Config(e.to_string()))?,
        };
        if self.config.request_timeout.is_zero()
            || self.config.migration_timeout.is_zero()
            || self.config.forwarder_idle.is_zero()
            || self.gossip.interval.is_zero()
            || self.gossip.failure_timeout <= self.gossip.interval
        {
            return Err(Error::Config(
                "timeouts must be longer than zero, and the failure timeout longer than the gossip interval".into(),
            ));
        }
        if self.config.mailbox_capacity == Some(0) {
            return Err(Error::Config(
                "a mailbox capacity must be at least 1".into(),
            ));
        }
        let registry = Registry::global()?;
        let cluster_name = self.cluster.clone();
        let network = match (self.listen, self.cluster) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::Config(
                    "a listening node needs a cluster id and secret: Node::builder().cluster(id, secret)".into(),
                ))
            }
            (Some(listen), Some((cluster, secret))) => Some(
                Network::start(
                    &id,
                    NetSettings {
                        listen,
                        cluster,
                        secret,
                        trusted: self.trusted,
                        config: self.tcp,
                    },
                )
                .await?,
            ),
        };
        let (network, events) = match network {
            Some((network, events)) => (Some(network), Some(events)),
            None if !self.gossip.seeds.is_empty() => {
                return Err(Error::Config(
                    "joining a cluster needs a listening node: Node::builder().listen(addr)".into(),
                ))
            }
            None => (None, None),
        };
        let directory = match (&network, cluster_name) {
            (Some(network), Some((cluster, secret))) => Some(
                start_directory(&id, network.local_addr(), cluster, secret, self.gossip).await?,
            ),
            _ => None,
        };
        let stall = directory.as_ref().map(Directory::stall_guard);
        tracing::debug!(node = %id, types = ?registry.tags(), "node started");
        let node = Node {
            shared: Arc::new(NodeShared {
                deadlines: crate::deadline::Deadlines::start(),
                network,
                directory,
                name_claims: Mutex::new(HashMap::new()),
                forwarded: AtomicU64::new(0),
                member_events: tokio::sync::broadcast::channel(256).0,
                leaving: AtomicBool::new(false),
                faults: faults::Faults::default(),
                runtime: tokio::runtime::Handle::current(),
                id,
                config: self.config,
                registry,
                entries: RwLock::new(HashMap::new()),
                owed_outcomes: Mutex::new(HashMap::new()),
                names: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                monitors: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                links: Links::default(),
                stopped: AtomicBool::new(false),
                fenced: AtomicBool::new(false),
                stall,
                closed_epochs: Mutex::new(HashMap::new()),
                failed_members: Mutex::new(HashSet::new()),
                live_cells: AtomicUsize::new(0),
                cell_tasks: Mutex::new(HashMap::new()),
                cells_done: tokio::sync::Notify::new(),
            }),
        };
        if let Some(events) = events {
            tokio::spawn(crate::network::run_events(node.clone(), events));
        }
        if let Some(directory) = &node.shared.directory {
            let members = directory.subscribe();
            tokio::spawn(members::follow(Arc::downgrade(&node.shared), members));
        }
        Ok(node)
    }
}

/// Starts gossip on the UDP port of the same number as the TCP listener,
/// and the directory on top of it.
async fn start_directory(
    id: &NodeId,
    tcp_addr: SocketAddr,
    cluster: String,
    secret: Secret,
    gossip: Gossip,
) -> Result<Directory, Error> {
    let interval = gossip.interval;
    let mut config = MembershipConfig::new(id.clone(), cluster, secret, tcp_addr);
    config.seeds = gossip.seeds;
    config.gossip_interval = gossip.interval;
    config.failure_timeout = gossip.failure_timeout;
    let membership = Membership::start(config, Vec::new())
        .await
        .map_err(|e| Error::Config(format!("cannot start gossip on {tcp_addr} (UDP): {e}")))?;
    Ok(Directory::start(membership, tcp_addr.to_string(), interval).await)
}

/// Something waiting on an actor (a reply, a monitor report): failed if the
/// node the actor lives on is lost.
struct Waiting<T> {
    actor: ActorId,
    sender: T,
}

pub(crate) struct NodeShared {
    id: NodeId,
    deadlines: Arc<crate::deadline::Deadlines>,
    network: Option<Network>,
    /// The cluster's membership and directory (nodes that listen).
    directory: Option<Directory>,
    /// Name claims waiting for the coordinator's answer, by request id.
    name_claims: Mutex<HashMap<u64, oneshot::Sender<Option<ActorId>>>>,
    /// Messages this node forwarded for others toward a moved actor.
    forwarded: AtomicU64,
    /// Membership events, once the node has acted on them.
    member_events: tokio::sync::broadcast::Sender<MemberEvent>,
    /// Set by `drain`: no actor may arrive any more.
    leaving: AtomicBool,
    /// Faults injected by tests.
    faults: faults::Faults,
    /// The runtime the node was started on, where its tasks run.
    runtime: tokio::runtime::Handle,
    config: Config,
    registry: &'static Registry,
    entries: RwLock<HashMap<ActorId, Arc<dyn ErasedEntry>>>,
    /// The actors whose cell owes each peer a migration outcome, said again
    /// when a session with that peer comes up.
    owed_outcomes: Mutex<HashMap<NodeId, HashSet<ActorId>>>,
    names: Mutex<HashMap<String, ActorId>>,
    /// Callers waiting for a reply that comes over a link, by request id.
    pending: Mutex<HashMap<u64, Waiting<ReplySender>>>,
    /// Monitors of this node, by id.
    monitors: Mutex<HashMap<u64, Waiting<oneshot::Sender<ExitReason>>>>,
    next_id: AtomicU64,
    links: Links,
    stopped: AtomicBool,
    /// Declared failed by the cluster (see [`Node::is_fenced`]).
    fenced: AtomicBool,
    /// This node's stalls and standing (cluster members only).
    stall: Option<mobility_net::membership::StallGuard>,
    /// Per actor without a slot here, the highest migration attempt aborted
    /// before its prepare arrived.
    closed_epochs: Mutex<HashMap<ActorId, u64>>,
    /// Members declared failed (until a new incarnation joins).
    failed_members: Mutex<HashSet<NodeId>>,
    live_cells: AtomicUsize,
    /// The cell tasks, to abort those still busy when shutdown's grace ends.
    cell_tasks: Mutex<HashMap<ActorId, tokio::task::AbortHandle>>,
    cells_done: tokio::sync::Notify,
}

/// A node, if it still exists (held by what the node itself owns).
#[derive(Clone)]
pub(crate) struct WeakNode(std::sync::Weak<NodeShared>);

impl WeakNode {
    pub(crate) fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(Node::from_shared)
    }
}

/// Counters of a node ([`Node::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Actors active on this node.
    pub hosted: usize,
    /// Slots for actors that live elsewhere: proxies of local handles and
    /// forwarders left behind by migrations.
    pub forwarders: usize,
    /// Messages from other nodes this node sent on toward an actor that
    /// had moved (each one a hop a corrected sender no longer makes).
    pub forwarded_messages: u64,
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

impl Node {
    /// A builder with default settings.
    pub fn builder() -> NodeBuilder {
        NodeBuilder {
            id: None,
            config: Config {
                request_timeout: Duration::from_secs(5),
                mailbox_capacity: None,
                migration_timeout: Duration::from_secs(10),
                forwarder_idle: Duration::from_secs(30),
                calls_on_caller_task: true,
            },
            cluster: None,
            listen: None,
            trusted: Vec::new(),
            tcp: TcpConfig::default(),
            gossip: Gossip {
                seeds: Vec::new(),
                interval: Duration::from_millis(100),
                failure_timeout: Duration::from_secs(2),
            },
        }
    }

    pub(crate) fn from_shared(shared: Arc<NodeShared>) -> Self {
        Node { shared }
    }

    /// Runs `task` on the node's runtime: also when the call comes from
    /// outside any runtime (a handle bound from a plain thread, say).
    pub(crate) fn spawn_task<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared.runtime.spawn(task)
    }

    /// Whether idle actors run requests on their callers' tasks.
    pub(crate) fn calls_on_caller_task(&self) -> bool {
        self.shared.config.calls_on_caller_task
    }

    /// The runtime the node's tasks run on.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.shared.runtime
    }

    /// A reference that does not keep the node alive.
    pub(crate) fn downgrade(&self) -> WeakNode {
        WeakNode(Arc::downgrade(&self.shared))
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.shared.id
    }

    /// Starts `actor` on this node; its `on_start` hook runs before its first
    /// message.
    pub async fn spawn<A: Actor>(&self, actor: A) -> Result<Handle<A>, Error> {
        self.spawn_inner(None, ActorId::fresh(), actor)
    }

    /// Starts `actor` under a name unique in its cluster (on this node if it
    /// has none), so that [`Node::lookup`] finds it from every member. Fails
    /// with [`Error::NameTaken`] if another actor holds the name; of two
    /// nodes claiming one name at the same moment, exactly one gets it.
    pub async fn spawn_named<A: Actor>(
        &self,
        name: impl Into<String>,
        actor: A,
    ) -> Result<Handle<A>, Error> {
        self.check_running()?;
        let name = name.into();
        let id = ActorId::fresh();
        self.claim_name(&name, id).await?;
        self.spawn_inner(Some(name), id, actor)
    }

    /// Asks the cluster's coordinator for `name` (nothing to ask without a
    /// cluster: the node's own table decides).
    async fn claim_name(&self, name: &str, actor: ActorId) -> Result<(), Error> {
        let Some(directory) = &self.shared.directory else {
            return Ok(());
        };
        let taken = |owner| Error::NameTaken {
            name: name.to_owned(),
            owner,
        };
        let coordinator = directory.coordinator();
        if coordinator == *self.id() {
            let local = self.local_holder(name);
            return directory
                .decide_claim(name, actor, self.id(), local)
                .map_err(taken);
        }
        if let Some(found) = directory.find_name(name) {
            return Err(taken(found.actor));
        }
        let unreachable = |reason: &str| Error::Unreachable {
            addr: format!("the cluster's coordinator {coordinator}"),
            reason: reason.to_owned(),
        };
        let request = self.next_id();
        let (answer, answered) = oneshot::channel();
        lock(&self.shared.name_claims).insert(request, answer);
        let claim = PeerMsg::ClaimName {
            name: name.to_owned(),
            actor,
            request,
        };
        let outcome = match self.send_peer(&coordinator, &claim) {
            Err(e) => Err(unreachable(&e.to_string())),
            Ok(()) => {
                match tokio::time::timeout(self.shared.config.request_timeout, answered).await {
                    Ok(Ok(None)) => Ok(()),
                    Ok(Ok(Some(owner))) => Err(taken(owner)),
                    Ok(Err(_)) => Err(unreachable("the claim was dropped")),
                    Err(_) => Err(unreachable("no answer in time")),
                }
            }
        };
        lock(&self.shared.name_claims).remove(&request);
        outcome
    }

    /// The actor holding `name` on this node and still active here.
    fn local_holder(&self, name: &str) -> Option<ActorId> {
        let id = lock(&self.shared.names).get(name).copied()?;
        self.entry(&id).filter(|e| e.is_hosting()).map(|_| id)
    }

    fn spawn_inner<A: Actor>(
        &self,
        name: Option<String>,
        id: ActorId,
        actor: A,
    ) -> Result<Handle<A>, Error> {
        self.check_running()?;
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

    /// The actor named `name`, as a handle of type `A`: the one active on
    /// this node, else the one the cluster's directory knows (on whichever
    /// member hosts it), else the one that lived here and moved away
    /// (reached through its forwarder). Another type under that name is an
    /// error, not a panic.
    pub async fn lookup<A: Actor>(&self, name: &str) -> Result<Handle<A>, Error> {
        self.check_running()?;
        let what = || format!("the actor named {name:?}");
        let local = lock(&self.shared.names)
            .get(name)
            .copied()
            .and_then(|id| self.entry(&id));
        if let Some(entry) = local.clone().filter(|e| e.is_hosting()) {
            return Self::downcast::<A>(entry, what).map(Handle::from_entry);
        }
        let found = self.shared.directory.as_ref().and_then(|d| {
            d.find_name(name)
                .map(|found| (d.locate(found.actor), found))
        });
        if let Some((located, found)) = found {
            if found.type_tag != A::TYPE_TAG {
                return Err(Error::WrongType {
                    what: what(),
                    expected: A::TYPE_TAG.to_owned(),
                    found: found.type_tag,
                });
            }
            let (node, epoch) = located.unwrap_or((found.node, 0));
            let entry = self.entry_for::<A>(found.actor, node.clone(), epoch)?;
            if !entry.is_hosting() && entry.route().epoch < epoch {
                entry.control(NetControl::Moved { node, epoch });
            }
            return Ok(Handle::from_entry(entry));
        }
        match local {
            Some(entry) => Self::downcast::<A>(entry, what).map(Handle::from_entry),
            None => Err(Error::NameNotFound {
                name: name.to_owned(),
            }),
        }
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
        let (node, epoch) = self.route_via(route.node, route.epoch, handle.node_id());
        self.entry_for::<A>(handle.id(), node, epoch)
            .map(Handle::from_entry)
    }

    /// Where to send for an actor last seen at `node` (since `epoch`), told
    /// by node `via`: straight there if this node can reach it, else
    /// through `via` if that one is reachable (it can forward).
    pub(crate) fn route_via(&self, node: NodeId, epoch: u64, via: &NodeId) -> (NodeId, u64) {
        if self.reachable(&node) || !self.reachable(via) {
            (node, epoch)
        } else {
            (via.clone(), 0)
        }
    }

    /// Whether frames for `node` can leave now: it is this node, linked, a
    /// member of the cluster (dialed on first use), or behind a relay.
    fn reachable(&self, node: &NodeId) -> bool {
        node == self.id()
            || self.member_address(node).is_some()
            || !matches!(self.shared.links.path(node), Path::None)
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

    /// The address this node listens on for TCP links, if it listens.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.shared.network.as_ref().map(Network::local_addr)
    }

    /// Opens (or reuses) an authenticated TCP link to the node listening at
    /// `addr` (`"host:port"`, of this cluster or of a trusted one) and
    /// returns its id.
    pub async fn connect(&self, addr: &str) -> Result<NodeId, Error> {
        self.check_running()?;
        let network = self
            .shared
            .network
            .as_ref()
            .ok_or_else(|| Error::Unreachable {
                addr: addr.to_owned(),
                reason:
                    "this node has no TCP transport: give its builder .cluster(..) and .listen(..)"
                        .into(),
            })?;
        let peer = network.connect(addr).await?;
        if peer == *self.id() {
            return Err(Error::Unreachable {
                addr: addr.to_owned(),
                reason: "that address is this node itself".into(),
            });
        }
        // The session may be up before its PeerUp event is handled here.
        let deadline = Instant::now() + self.shared.config.migration_timeout;
        while !self.has_peer(&peer) {
            if Instant::now() > deadline {
                return Err(Error::Unreachable {
                    addr: addr.to_owned(),
                    reason: "the link did not come up".into(),
                });
            }
            tokio::task::yield_now().await;
        }
        Ok(peer)
    }

    /// Test hook: drops the TCP socket to `peer`; the session resumes over a
    /// new one without loss or duplication.
    #[doc(hidden)]
    pub fn fault_cut(&self, peer: &NodeId) {
        if let Some(network) = &self.shared.network {
            network.transport().fault_cut(peer);
        }
    }

    /// Test hook: while blocked, no socket to or from `peer` is allowed; past
    /// the reconnection window the peer is reported lost.
    #[doc(hidden)]
    pub fn fault_block(&self, peer: &NodeId, blocked: bool) {
        if let Some(network) = &self.shared.network {
            network.transport().fault_block(peer, blocked);
        }
    }

    /// The node a destination names: linked nodes by id, addresses after
    /// connecting to them.
    pub(crate) async fn resolve(&self, dest: &Destination) -> Result<NodeId, MigrationFailure> {
        match dest {
            Destination::Node(id) if self.has_peer(id) || id == self.id() => Ok(id.clone()),
            Destination::Node(id) => match self.address_of(id) {
                Some(addr) => self
                    .connect(&addr)
                    .await
                    .map_err(|e| MigrationFailure::Unreachable(e.to_string())),
                None => Err(MigrationFailure::Unreachable(format!(
                    "node {id} is not linked to node {}",
                    self.id()
                ))),
            },
            Destination::Tcp { .. } => {
                let addr = dest.to_string();
                let addr = addr.trim_start_matches("tcp://");
                // This node's own address: nothing to dial.
                if addr.parse::<SocketAddr>().ok() == self.listen_addr()
                    && self.listen_addr().is_some()
                {
                    return Ok(self.id().clone());
                }
                self.connect(addr)
                    .await
                    .map_err(|e| MigrationFailure::Unreachable(e.to_string()))
            }
        }
    }

    /// Where `peer` listens, if this node knows.
    pub(crate) fn address_of(&self, peer: &NodeId) -> Option<String> {
        self.member_address(peer).or_else(|| {
            self.shared
                .network
                .as_ref()
                .and_then(|n| n.address_of(peer))
        })
    }

    /// An authenticated link to `peer` is up (new, or replacing one).
    pub(crate) fn add_link(&self, peer: &NodeId, link: LinkSender) {
        self.shared.links.add(peer.clone(), link);
        // A migration's outcome lost with an earlier session is said again
        // (only the cells that owe this peer one are told).
        for actor in self.owing_outcome_to(peer) {
            if let Some(entry) = self.entry(&actor) {
                entry.control(NetControl::PeerUp(peer.clone()));
            }
        }
    }

    /// The actors whose cell owes `peer` a migration outcome.
    fn owing_outcome_to(&self, peer: &NodeId) -> Vec<ActorId> {
        lock(&self.shared.owed_outcomes)
            .get(peer)
            .map(|actors| actors.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Records whether `actor`'s cell owes `peer` a migration outcome.
    pub(crate) fn owe_outcome(&self, peer: &NodeId, actor: ActorId, owed: bool) {
        let mut table = lock(&self.shared.owed_outcomes);
        if owed {
            table.entry(peer.clone()).or_default().insert(actor);
        } else if let Some(actors) = table.get_mut(peer) {
            actors.remove(&actor);
            if actors.is_empty() {
                table.remove(peer);
            }
        }
    }

    fn add_peer(&self, peer: NodeId, sender: LinkSender, receiver: LinkReceiver) {
        self.shared.links.add(peer.clone(), sender);
        let node = self.clone();
        self.spawn_task(async move { node.read_link(peer, receiver).await });
    }

    async fn read_link(self, peer: NodeId, mut receiver: LinkReceiver) {
        while let Some(frame) = receiver.recv().await {
            self.on_frame(&peer, &frame);
        }
        self.peer_lost(&peer, "the in-process link closed");
    }

    /// A linked node is gone for good (its link closed, or reconnecting to it
    /// failed): what waits on actors last seen there is failed with
    /// [`ExitReason::NodeDown`], and cells are told (a migration toward it
    /// aborts at once).
    pub(crate) fn peer_lost(&self, peer: &NodeId, why: &str) {
        if !self.shared.links.remove(peer) {
            return;
        }
        tracing::warn!(node = %self.id(), %peer, reason = why, "peer lost");
        let entries = self.all_entries();
        self.fail_waiting_on(
            peer,
            &std::collections::HashSet::new(),
            &ExitReason::NodeDown(peer.clone()),
        );
        for entry in entries {
            entry.control(NetControl::PeerLost(peer.clone()));
        }
    }

    /// The live members of this node's cluster that are not leaving, this
    /// node included, sorted (only this node if it does not listen).
    pub fn members(&self) -> Vec<NodeId> {
        let mut members: Vec<NodeId> = match &self.shared.directory {
            Some(directory) => directory
                .members()
                .into_iter()
                .filter(|m| !m.leaving)
                .map(|m| m.id)
                .collect(),
            None => vec![self.id().clone()],
        };
        members.sort();
        members
    }

    /// Membership events (a member joined, left, failed), each sent once the
    /// node has acted on it (a failed member's actors are reported down
    /// before its `Failed` event).
    pub fn member_events(&self) -> tokio::sync::broadcast::Receiver<MemberEvent> {
        self.shared.member_events.subscribe()
    }

    /// Counters of this node: what it hosts, forwards, and has forwarded.
    pub fn stats(&self) -> NodeStats {
        let entries = read(&self.shared.entries);
        let hosted = entries.values().filter(|e| e.is_hosting()).count();
        let forwarders = entries
            .values()
            .filter(|e| !e.is_hosting() && e.exit_reason().is_none())
            .count();
        NodeStats {
            hosted,
            forwarders,
            forwarded_messages: self.shared.forwarded.load(Ordering::Relaxed),
        }
    }

    /// The nodes this node is linked to.
    pub fn peers(&self) -> Vec<NodeId> {
        self.shared.links.linked()
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
    /// An actor still inside a handler after a grace period of 2 s is
    /// aborted: its callers are told it is down.
    pub async fn shutdown(&self) {
        self.stop(|| NetControl::Shutdown).await;
    }

    /// Whether this node's cluster declared it failed (it was stalled or
    /// cut off for longer than the failure timeout). A fenced node has
    /// stopped: its actors were reported down (`Unreachable`) and never
    /// answer again, here or anywhere. It cannot rejoin: start a new node
    /// (a new incarnation), as a restarted process does.
    pub fn is_fenced(&self) -> bool {
        self.shared.fenced.load(Ordering::Acquire)
    }

    /// This node learned it was declared failed: everything it holds is
    /// down, and it stops (without a graceful leave: it is no member).
    pub(crate) async fn fence(&self) {
        if self.shared.fenced.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::error!(node = %self.id(), "declared failed by the cluster: this node is fenced and stops");
        self.stop(|| NetControl::Fenced).await;
    }

    async fn stop(&self, control: fn() -> NetControl) {
        if self.shared.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let entries: Vec<Arc<dyn ErasedEntry>> =
            read(&self.shared.entries).values().cloned().collect();
        for entry in &entries {
            entry.control(control());
        }
        let all_done = async {
            loop {
                let done = self.shared.cells_done.notified();
                if self.shared.live_cells.load(Ordering::Acquire) == 0 {
                    break;
                }
                done.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(2), all_done)
            .await
            .is_err()
        {
            let busy: Vec<(ActorId, tokio::task::AbortHandle)> =
                lock(&self.shared.cell_tasks).drain().collect();
            for (actor, task) in busy {
                tracing::warn!(node = %self.id(), %actor, "actor still busy at shutdown: aborted");
                task.abort();
            }
        }
        if let Some(directory) = &self.shared.directory {
            directory.shutdown().await;
        }
        if let Some(network) = &self.shared.network {
            network.shutdown();
        }
        self.shared.links.clear();
        write(&self.shared.entries).clear();
        lock(&self.shared.pending).clear();
        lock(&self.shared.monitors).clear();
        tracing::debug!(node = %self.id(), "node shut down");
    }

    /// Whether this node may handle a message that came from another node
    /// now. Just back from a stall it first waits to know it was not
    /// declared failed meanwhile (the cluster may have told that message's
    /// caller the actor is down): false if it was, and is fenced.
    pub(crate) async fn may_serve_remote(&self) -> bool {
        use mobility_net::membership::Standing;
        let Some(guard) = &self.shared.stall else {
            return true;
        };
        match guard.check() {
            Standing::Serving => true,
            Standing::Fenced => false,
            Standing::Validating => guard.settled().await,
        }
    }

    fn check_running(&self) -> Result<(), Error> {
        if self.shared.stopped.load(Ordering::Acquire) {
            Err(Error::NodeStopped(self.id().clone()))
        } else {
            Ok(())
        }
    }

    // ---- crate-internal plumbing ------------------------------------------

    /// `actor` is active here since `epoch`: the cluster's directory says so.
    pub(crate) fn announce_hosting(
        &self,
        actor: ActorId,
        epoch: u64,
        name: Option<&str>,
        type_tag: &str,
    ) {
        if let Some(directory) = &self.shared.directory {
            directory.hosting(actor, epoch, name.map(|n| (n, type_tag)));
        }
    }

    /// `actor` is no longer active here.
    pub(crate) fn announce_left(&self, actor: ActorId, name: Option<&str>) {
        if let Some(directory) = &self.shared.directory {
            directory.left(actor, name);
        }
    }

    /// Where the cluster's directory says `actor` is active, and since when.
    pub(crate) fn locate(&self, actor: ActorId) -> Option<(NodeId, u64)> {
        self.shared.directory.as_ref()?.locate(actor)
    }

    /// Whether `node` is this node or a live member of its cluster.
    pub(crate) fn is_cluster_node(&self, node: &NodeId) -> bool {
        node == self.id() || self.member_address(node).is_some()
    }

    /// Where a live member of this cluster (not this node) listens.
    fn member_address(&self, node: &NodeId) -> Option<String> {
        if node == self.id() {
            return None;
        }
        self.shared.directory.as_ref()?.address_of(node)
    }

    pub(crate) fn count_forwarded(&self) {
        self.shared.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// How long an idle forwarder waits before retiring; `None` where the
    /// directory cannot stand in for it (no cluster).
    pub(crate) fn forwarder_idle(&self) -> Option<Duration> {
        self.shared
            .directory
            .as_ref()
            .map(|_| self.shared.config.forwarder_idle)
    }

    /// Removes the forwarder of `actor` from the node's table if nothing
    /// here needs it: no handle holds it, and the directory knows where
    /// the actor is (so a late sender can still be forwarded). The check is
    /// made under the table's write lock, which every new holder needs.
    pub(crate) fn retire_forwarder(&self, actor: ActorId, route: &Route) -> bool {
        let located = self.locate(actor);
        if located.is_none_or(|(node, epoch)| node != route.node || epoch < route.epoch) {
            return false;
        }
        let mut entries = write(&self.shared.entries);
        // The table's reference and the cell's: nobody else holds it.
        let idle = entries
            .get(&actor)
            .is_some_and(|entry| Arc::strong_count(entry) == 2 && !entry.is_hosting());
        if idle {
            entries.remove(&actor);
            drop(entries);
            let mut names = lock(&self.shared.names);
            names.retain(|_, holder| *holder != actor);
        }
        idle
    }

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
        lock(&self.shared.cell_tasks).remove(&id);
        if self.shared.live_cells.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.cells_done.notify_waiters();
        }
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
        let stream = Origin {
            node: self.id().clone(),
            stream: crate::id::random_u64(),
        };
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
            control: control_tx,
            node: Arc::downgrade(&self.shared),
            deadlines: self.shared.deadlines.clone(),
            direct_on: AtomicBool::new(direct.is_some()),
            direct: Mutex::new(direct),
            idle: IdleSlot::default(),
        });
        write(&self.shared.entries).insert(id, entry.clone());
        let cell = Cell::new(self.clone(), entry.clone(), rx, control_rx, start, stream);
        self.cell_started();
        let task = self.spawn_task(cell.run());
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
                deadlines: self.shared.deadlines.clone(),
                direct: Mutex::new(None),
                direct_on: AtomicBool::new(false),
                idle: IdleSlot::default(),
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
    /// failed by the cluster, or (as far as this node knows) it is down.
    pub(crate) fn down_reason(&self, node: &NodeId) -> ExitReason {
        if lock(&self.shared.failed_members).contains(node) {
            ExitReason::Unreachable(node.clone())
        } else {
            ExitReason::NodeDown(node.clone())
        }
    }

    /// Whether member `node` was declared failed (and no new incarnation
    /// joined since).
    pub(crate) fn is_failed_member(&self, node: &NodeId) -> bool {
        lock(&self.shared.failed_members).contains(node)
    }

    /// Records whether member `node` is declared failed.
    pub(crate) fn set_member_failed(&self, node: &NodeId, failed: bool) {
        let mut members = lock(&self.shared.failed_members);
        if failed {
            members.insert(node.clone());
        } else {
            members.remove(node);
        }
    }

    /// Attempts up to `epoch` of moving `actor` here were aborted before
    /// this node had a slot for it: their prepares are refused.
    fn close_epoch(&self, actor: ActorId, epoch: u64) {
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

    fn take_pending(&self, request: u64) -> Option<ReplySender> {
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

    fn take_monitor(&self, monitor: u64) -> Option<oneshot::Sender<ExitReason>> {
        lock(&self.shared.monitors)
            .remove(&monitor)
            .map(|w| w.sender)
    }

    pub(crate) fn forget_monitor(&self, id: u64) {
        lock(&self.shared.monitors).remove(&id);
    }

    pub(crate) fn has_peer(&self, node: &NodeId) -> bool {
        self.shared.links.has_direct(node)
    }

    /// Sends a frame to a node: over the direct link, or else relayed by
    /// the linked node that traffic from it came through.
    pub(crate) fn send_peer(&self, to: &NodeId, msg: &PeerMsg) -> Result<(), Error> {
        self.send_frame(to, crate::wire::frame_of(msg)?)
    }

    /// Sends a whole frame (header and tail) to a node.
    pub(crate) fn send_frame(&self, to: &NodeId, frame: Vec<u8>) -> Result<(), Error> {
        match self.fault_outgoing(to, frame) {
            Some(frame) => self.route_frame(to, frame, self.id(), crate::wire::RELAY_HOPS),
            None => Ok(()),
        }
    }

    fn route_frame(
        &self,
        to: &NodeId,
        frame: Vec<u8>,
        from: &NodeId,
        hops: u8,
    ) -> Result<(), Error> {
        let unknown = || Error::UnknownNode {
            node: to.clone(),
            from: self.id().clone(),
        };
        let relayed = |hops: u8| -> Result<Vec<u8>, Error> {
            let mut outer = crate::wire::frame_of(&PeerMsg::Relay {
                from: from.clone(),
                to: to.clone(),
                hops,
            })?;
            outer.extend_from_slice(&frame);
            Ok(outer)
        };
        let path = self.shared.links.path(to);
        if let Path::Direct(link) = &path {
            let frame = if from == self.id() {
                frame
            } else {
                relayed(hops)?
            };
            return link.send(Bytes::from(frame)).map_err(|_| unknown());
        }
        // A member of this cluster is dialed on first use rather than
        // reached through a relay, which may leave the cluster.
        if let Some(addr) = self.member_address(to) {
            let frame = if from == self.id() {
                frame
            } else {
                relayed(hops)?
            };
            if let Queued::DialNeeded = self.shared.links.queue(to, Bytes::from(frame)) {
                self.dial(to.clone(), addr);
            }
            return Ok(());
        }
        match path {
            Path::Relay(link) if hops > 0 => link
                .send(Bytes::from(relayed(hops - 1)?))
                .map_err(|_| unknown()),
            _ => Err(unknown()),
        }
    }

    /// Dials `to` at `addr`; the frames queued for it go once the link is
    /// up, or are answered as undeliverable if it cannot be reached.
    fn dial(&self, to: NodeId, addr: String) {
        let node = self.clone();
        self.spawn_task(async move {
            let why = match node.connect(&addr).await {
                Ok(peer) if peer == to => return,
                Ok(other) => format!("{addr} is node {other}, not {to}"),
                Err(e) => e.to_string(),
            };
            tracing::warn!(node = %node.id(), peer = %to, reason = %why, "dial failed");
            for frame in node.shared.links.dial_failed(&to) {
                node.bounce(&to, &frame);
            }
        });
    }

    /// Answers a frame that could not reach `to` as undeliverable.
    fn bounce(&self, to: &NodeId, frame: &Bytes) {
        match crate::wire::open_frame(frame) {
            Ok((
                PeerMsg::Deliver {
                    actor, envelope, ..
                },
                _,
            )) => self.reject(&envelope, actor, self.down_reason(to)),
            Ok((PeerMsg::Prepare { actor, epoch, .. }, _)) => self.control(
                &actor,
                NetControl::Handover {
                    from: to.clone(),
                    frame: Frame::PrepareAck {
                        epoch,
                        result: Err(MigrationFailure::Unreachable(to.to_string())),
                    },
                },
            ),
            Ok((msg, _)) => {
                tracing::warn!(node = %self.id(), peer = %to, ?msg, "undeliverable frame dropped")
            }
            Err(e) => tracing::warn!(node = %self.id(), error = %e, "undeliverable frame dropped"),
        }
    }

    /// Handles one frame from linked node `from`.
    pub(crate) fn on_frame(&self, from: &NodeId, frame: &Bytes) {
        for _ in 0..self.fault_incoming(from, frame) {
            self.handle_frame(from, frame);
        }
    }

    fn handle_frame(&self, from: &NodeId, frame: &Bytes) {
        match crate::wire::open_frame(frame) {
            Ok((msg, tail)) => self.on_peer_msg(from, msg, &tail),
            Err(e) => {
                tracing::warn!(node = %self.id(), peer = %from, error = %e, "dropped an undecodable frame")
            }
        }
    }

    /// Remembers that `origin` can be reached through linked node `via`.
    fn learn_route(&self, origin: &NodeId, via: &NodeId) {
        if origin != self.id() {
            self.shared.links.learn_relay(origin, via);
        }
    }

    /// Routes a reply to request `request` of node `origin`.
    pub(crate) fn send_reply(&self, origin: &NodeId, request: u64, result: Result<Vec<u8>, Error>) {
        if origin == self.id() {
            if let Some(waiter) = self.take_pending(request) {
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
            if let Some(waiter) = self.take_monitor(monitor) {
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
    /// Sends a numbered message on to `actor` at `route` (for a forwarding
    /// cell and for direct senders alike). If that route is dead, it goes
    /// to where the directory places the actor, and that route is returned
    /// for the caller to follow; if it can go nowhere, its sender is told
    /// the route's node is down.
    pub(crate) fn deliver_to(
        &self,
        actor: ActorId,
        type_tag: String,
        route: &Route,
        envelope: WireEnvelope,
    ) -> Option<Route> {
        let deliver = PeerMsg::Deliver {
            actor,
            type_tag,
            envelope,
        };
        let Err(error) = self.send_peer(&route.node, &deliver) else {
            return None;
        };
        if let Some((node, epoch)) = self.locate(actor) {
            if node != route.node && node != *self.id() && self.send_peer(&node, &deliver).is_ok() {
                return Some(Route { node, epoch });
            }
        }
        tracing::warn!(%actor, to = %route.node, %error, "message could not be delivered");
        if let PeerMsg::Deliver { envelope, .. } = &deliver {
            self.reject(envelope, actor, self.down_reason(&route.node));
        }
        None
    }

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

    /// A frame of the migration protocol for `actor`'s cell.
    fn handover(&self, from: &NodeId, actor: ActorId, frame: HandoverFrame) {
        let from = from.clone();
        self.control(&actor, NetControl::Handover { from, frame });
    }

    fn control(&self, actor: &ActorId, control: NetControl) {
        match self.entry(actor) {
            Some(entry) => entry.control(control),
            None => {
                tracing::debug!(node = %self.id(), %actor, ?control, "control for an unknown actor dropped")
            }
        }
    }

    /// A message for an actor this node has no slot for (its forwarder
    /// retired, say): sent on to where the directory says it lives, and
    /// its sender told so.
    fn forward_unknown(&self, actor: ActorId, type_tag: String, envelope: WireEnvelope) {
        let located = self.locate(actor).filter(|(node, _)| node != self.id());
        let Some((node, epoch)) = located else {
            return self.reject(&envelope, actor, ExitReason::NoSuchActor);
        };
        let route = Route { node, epoch };
        let mut envelope = envelope;
        if self.pass_through(actor, &route, &mut envelope) {
            self.deliver_to(actor, type_tag, &route, envelope);
        }
    }

    /// A message of another node's stream passing through this one on its
    /// way to `route`: counted, its hops bumped (refused and answered past
    /// `MAX_FORWARDS`: it is caught between stale routes), and its origin
    /// told where the actor is. `false`: refused. Messages of this node's
    /// own streams pass untouched.
    pub(crate) fn pass_through(
        &self,
        actor: ActorId,
        route: &Route,
        envelope: &mut WireEnvelope,
    ) -> bool {
        let origin = &envelope.origin.node;
        if origin == self.id() {
            return true;
        }
        self.count_forwarded();
        envelope.hops = envelope.hops.saturating_add(1);
        if envelope.hops > crate::wire::MAX_FORWARDS {
            tracing::warn!(node = %self.id(), %actor, %origin, "a message passed too many forwarders; refused");
            self.reject(envelope, actor, ExitReason::NoSuchActor);
            return false;
        }
        if *origin != route.node {
            let moved = PeerMsg::Moved {
                actor,
                node: route.node.clone(),
                epoch: route.epoch,
                addr: self.address_of(&route.node),
            };
            let _ = self.send_peer(origin, &moved);
        }
        true
    }

    /// A correction: go straight to `node` from now on, dialing it first if
    /// this node has no link to it yet (until then, the old route works).
    fn on_moved(&self, actor: ActorId, node: NodeId, epoch: u64, addr: Option<String>) {
        if self.has_peer(&node) || node == *self.id() {
            self.control(&actor, NetControl::Moved { node, epoch });
            return;
        }
        let Some(addr) = addr else { return };
        let this = self.clone();
        self.spawn_task(async move {
            match this.connect(&addr).await {
                Ok(peer) if peer == node => this.control(&actor, NetControl::Moved { node, epoch }),
                Ok(other) => {
                    tracing::warn!(%addr, expected = %node, found = %other, "address names another node")
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "cannot reach the new location; keeping the old route")
                }
            }
        });
    }

    /// Handles one frame from linked node `from`.
    fn on_peer_msg(&self, from: &NodeId, msg: PeerMsg, tail: &Bytes) {
        match msg {
            PeerMsg::Relay {
                from: origin,
                to,
                hops,
            } => {
                self.learn_route(&origin, from);
                if to == *self.id() {
                    self.on_frame(&origin, tail);
                } else if let Err(e) = self.route_frame(&to, tail.to_vec(), &origin, hops) {
                    tracing::warn!(node = %self.id(), %to, error = %e, "a relayed frame could not be carried on");
                    // A message's sender is told, not left waiting.
                    if let Ok((
                        PeerMsg::Deliver {
                            actor, envelope, ..
                        },
                        _,
                    )) = crate::wire::open_frame(tail)
                    {
                        self.reject(&envelope, actor, self.down_reason(&to));
                    }
                }
            }
            PeerMsg::Deliver {
                actor,
                type_tag,
                envelope,
            } => match self.entry(&actor) {
                Some(entry) => {
                    self.learn_route(&envelope.origin.node, from);
                    if let Err(envelope) = entry.deliver(envelope) {
                        let reason = entry.exit_reason().unwrap_or(ExitReason::NoSuchActor);
                        self.reject(&envelope, actor, reason);
                    }
                }
                None => self.forward_unknown(actor, type_tag, envelope),
            },
            PeerMsg::Reply { request, result } => {
                if let Some(waiter) = self.take_pending(request) {
                    let _ = waiter.send(result.map(|bytes| ReplyValue::Encoded(bytes.into_vec())));
                }
            }
            PeerMsg::Down {
                monitor, reason, ..
            } => {
                if let Some(waiter) = self.take_monitor(monitor) {
                    let _ = waiter.send(reason);
                }
            }
            PeerMsg::Moved {
                actor,
                node,
                epoch,
                addr,
            } => self.on_moved(actor, node, epoch, addr),
            PeerMsg::Prepare {
                actor,
                type_tag,
                schema,
                epoch,
            } => {
                let result = match self.registry().get(&type_tag) {
                    _ if self.shared.leaving.load(Ordering::Acquire) => {
                        Err(MigrationFailure::Leaving)
                    }
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
                            snapshot: tail,
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
            } => self.handover(from, actor, Frame::PrepareAck { epoch, result }),
            PeerMsg::Commit { actor, epoch } => self.handover(from, actor, Frame::Commit { epoch }),
            PeerMsg::Committed {
                actor,
                epoch,
                queued,
            } => self.control(
                &actor,
                NetControl::Committed {
                    from: from.clone(),
                    epoch,
                    queued,
                },
            ),
            PeerMsg::FirstHandled { actor, epoch } => {
                self.control(&actor, NetControl::FirstHandled { epoch })
            }
            // A node that knows nothing of the actor (a restart, say) leaves
            // it unanswered: it did not begin that attempt, and the
            // destination waits until the one that did is declared failed.
            PeerMsg::Resolve { actor, epoch } => {
                self.handover(from, actor, Frame::Resolve { epoch })
            }
            PeerMsg::Abort { actor, epoch } => match self.entry(&actor) {
                Some(_) => self.handover(from, actor, Frame::Abort { epoch }),
                // Its prepare never got here (or its slot is gone): there is
                // no copy, and a late prepare of that attempt is refused.
                None => {
                    self.close_epoch(actor, epoch);
                    let _ = self.send_peer(from, &PeerMsg::Aborted { actor, epoch });
                }
            },
            PeerMsg::Aborted { actor, epoch } => {
                self.handover(from, actor, Frame::Aborted { epoch })
            }
            PeerMsg::ClaimName {
                name,
                actor,
                request,
            } => {
                let Some(directory) = &self.shared.directory else {
                    tracing::warn!(node = %self.id(), peer = %from, "a name claim reached a node outside any cluster");
                    return;
                };
                let owner = directory
                    .decide_claim(&name, actor, from, self.local_holder(&name))
                    .err();
                let answer = PeerMsg::NameClaimed { request, owner };
                if let Err(e) = self.send_peer(from, &answer) {
                    tracing::warn!(node = %self.id(), peer = %from, error = %e, "a claim's answer could not be sent");
                }
            }
            PeerMsg::NameClaimed { request, owner } => {
                if let Some(waiter) = lock(&self.shared.name_claims).remove(&request) {
                    let _ = waiter.send(owner);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_coming_up_concerns_only_the_cells_owing_that_peer() {
        let node = Node::builder().id("a").start().await.expect("start");
        let (b, c) = (NodeId::new("b").expect("id"), NodeId::new("c").expect("id"));
        let (x, y) = (ActorId::fresh(), ActorId::fresh());
        node.owe_outcome(&b, x, true);
        node.owe_outcome(&b, y, true);
        node.owe_outcome(&c, y, true);
        node.owe_outcome(&b, x, false);
        assert_eq!(node.owing_outcome_to(&b), [y]);
        assert_eq!(node.owing_outcome_to(&c), [y]);
        node.owe_outcome(&b, y, false);
        node.owe_outcome(&c, y, false);
        assert!(node.owing_outcome_to(&b).is_empty());
        assert!(
            lock(&node.shared.owed_outcomes).is_empty(),
            "no peer kept empty"
        );
        node.shutdown().await;
    }
}
