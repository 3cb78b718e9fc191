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

use crate::api::actor::Actor;
use crate::api::handle::Handle;
use crate::api::reply::{ReplySender, ReplyValue};
use crate::cell::{Cell, Control, NetControl, Start};
use crate::mailbox::direct::DirectSend;
use crate::mailbox::entry::{Entry, ErasedEntry, Route};
use crate::mailbox::idle::IdleSlot;
use crate::node::directory::Directory;
use crate::node::links::{Links, Path, Queued};
use crate::node::network::{NetSettings, Network};
use crate::node::registry::{PrepareArgs, Registry};
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{ActorId, Destination, NodeId};
use crate::proto::migration::{MigrationFailure, MigrationReport, Snapshot};
use crate::proto::wire::HandoverFrame;
use crate::proto::wire::{Origin, PeerMsg, WireBody, WireEnvelope};
use mobility_net::membership::{MemberEvent, Membership, MembershipConfig};
use mobility_net::tcp::{Secret, TcpConfig};
use mobility_net::{LinkReceiver, LinkSender};
use mobility_proto::handover::Frame;
use std::net::SocketAddr;

mod builder;
pub(crate) mod directory;
mod drain;
mod faults;
mod frames;
mod host;
pub(crate) mod links;
mod members;
mod meters;
pub(crate) mod network;
mod observe;
mod ready;
pub(crate) mod registry;
mod shutdown;
mod shutdown_hooks;
mod tables;
#[cfg(test)]
#[allow(dead_code)] // handlers the tests never call
mod upgrade_tests;
mod versions;

use builder::Config;
pub use builder::NodeBuilder;
pub use drain::DrainReport;
#[doc(hidden)]
pub use faults::{Direction as FaultDirection, Fault, Step as FaultStep};
pub use observe::{ActorInfo, NamedActor};
pub use versions::TypeVersions;

/// Something waiting on an actor (a reply, a monitor report): failed if the
/// node the actor lives on is lost.
struct Waiting<T> {
    actor: ActorId,
    sender: T,
}

pub(crate) struct NodeShared {
    id: NodeId,
    /// This node, without keeping it alive (see `host.rs`).
    me: std::sync::Weak<NodeShared>,
    deadlines: Arc<crate::api::deadline::Deadlines>,
    network: Option<Network>,
    /// The cluster's membership and directory (nodes that listen).
    directory: Option<Directory>,
    /// Name claims waiting for the coordinator's answer, by request id.
    name_claims: Mutex<HashMap<u64, oneshot::Sender<Option<ActorId>>>>,
    /// Messages this node forwarded for others toward a moved actor.
    forwarded: AtomicU64,
    /// Membership events, once the node has acted on them.
    member_events: tokio::sync::broadcast::Sender<MemberEvent>,
    /// What happens on this node, for its observers (`observe.rs`).
    events: tokio::sync::broadcast::Sender<crate::proto::observe::NodeEvent>,
    meters: meters::NodeMeters,
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
    /// Why the links to nodes lost lately went (`NodeDown` for a node known
    /// to have shut down, `LinkLost` otherwise): what later senders to them
    /// are told. Bounded: cleared past a few thousand entries.
    lost_peers: Mutex<HashMap<NodeId, ExitReason>>,
    /// Whether `failed_members` has anyone.
    any_failed: AtomicBool,
    live_cells: AtomicUsize,
    /// The cell tasks, to abort those still busy when shutdown's grace ends.
    cell_tasks: Mutex<HashMap<ActorId, tokio::task::AbortHandle>>,
    cells_done: tokio::sync::Notify,
    /// Run as a graceful shutdown begins (see `shutdown_hooks.rs`).
    shutdown_hooks: shutdown_hooks::ShutdownHooks,
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
    /// Bytes of gossip datagrams sent so far (0 outside a cluster): the
    /// cost of the membership and of the directory it replicates.
    pub gossip_bytes_sent: u64,
    /// Bytes of gossip datagrams received so far.
    pub gossip_bytes_received: u64,
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
        NodeBuilder::new()
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
        Ok(Handle::from_mailbox(entry))
    }

    /// The actor named `name`, as a handle of type `A`: the one active on
    /// this node, else the one the cluster's directory knows (on whichever
    /// member hosts it), else the one that lived here and moved away
    /// (reached through its forwarder). Another type under that name is an
    /// error, not a panic. A name whose actor has ended is free:
    /// [`Error::NameNotFound`], from every node alike (a handle kept from
    /// before answers [`Error::ActorDown`] with the reason).
    pub async fn lookup<A: Actor>(&self, name: &str) -> Result<Handle<A>, Error> {
        self.check_running()?;
        let what = || format!("the actor named {name:?}");
        let local = lock(&self.shared.names)
            .get(name)
            .copied()
            .and_then(|id| self.entry(&id));
        if let Some(entry) = local.clone().filter(|e| e.is_hosting()) {
            return Self::downcast::<A>(entry, what).map(|entry| Handle::from_mailbox(entry));
        }
        let found = self.shared.directory.as_ref().and_then(|d| {
            d.find_name(name)
                .map(|found| (d.locate(found.actor), found))
        });
        // This node's own keys may still list an actor that ended here
        // moments ago (what other members list is theirs to correct).
        let found = found.filter(|(_, f)| {
            f.node != *self.id()
                || self
                    .entry(&f.actor)
                    .is_none_or(|e| e.is_hosting() || e.exit_reason().is_none())
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
            return Ok(Handle::from_mailbox(entry));
        }
        // An actor that has ended holds no name: the same answer as from
        // every other member, whose directory no longer lists it.
        match local.filter(|e| e.exit_reason().is_none()) {
            Some(entry) => {
                Self::downcast::<A>(entry, what).map(|entry| Handle::from_mailbox(entry))
            }
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
            .map(|entry| Handle::from_mailbox(entry))
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
                Some(addr) => self.connect(&addr).await.map_err(|e| {
                    MigrationFailure::Unreachable(format!("destination {id} at {addr}: {e}"))
                }),
                None => Err(MigrationFailure::Unreachable(format!(
                    "destination {id} is unknown to node {}: neither a member of its cluster nor linked to it",
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
                    .map_err(|e| MigrationFailure::Unreachable(format!("destination {dest}: {e}")))
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
        // An in-process link closes only when the other node shuts down.
        self.peer_lost(
            &peer,
            "the in-process link closed",
            ExitReason::NodeDown(peer.clone()),
        );
    }

    /// What later senders to `peer` are told its actors became.
    pub(crate) fn remember_lost(&self, peer: &NodeId, down: ExitReason) {
        let mut lost = lock(&self.shared.lost_peers);
        if lost.len() >= 4096 {
            lost.clear();
        }
        lost.insert(peer.clone(), down);
    }

    /// A linked node is gone for good (its link closed, or reconnecting to it
    /// failed): what waits on actors last seen there is failed with `down`
    /// ([`ExitReason::LinkLost`] unless the node is known to have shut
    /// down; not for a live member of this cluster, whose fate the
    /// membership decides), and cells are told (a migration toward it
    /// aborts at once).
    pub(crate) fn peer_lost(&self, peer: &NodeId, why: &str, down: ExitReason) {
        if !self.shared.links.remove(peer) {
            return;
        }
        tracing::warn!(node = %self.id(), %peer, reason = why, "peer lost");
        self.remember_lost(peer, down);
        let entries = self.all_entries();
        // Inside a cluster only the membership declares a node dead: a
        // live member whose link broke may still host its actors (and
        // answer others). What waited on it waits on, until the member is
        // declared failed (then settled: `members.rs`) or its timeout.
        if self.is_cluster_node(peer) && !self.is_failed_member(peer) {
            tracing::info!(node = %self.id(), %peer, "link to a live member lost: its actors are reported down only if the cluster declares it failed");
        } else {
            let down = self.down_reason(peer);
            self.fail_waiting_on(peer, &down);
        }
        for entry in entries {
            entry.control(NetControl::PeerLost(peer.clone()));
        }
    }

    /// The live members of this node's cluster that are not leaving, this
    /// node included, sorted (only this node if it does not listen).
    pub fn members(&self) -> Vec<NodeId> {
        match &self.shared.directory {
            Some(directory) => directory.staying(),
            None => vec![self.id().clone()],
        }
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
        let (gossip_bytes_sent, gossip_bytes_received) = self
            .shared
            .directory
            .as_ref()
            .map_or((0, 0), |d| d.gossip_bytes());
        NodeStats {
            hosted,
            forwarders,
            forwarded_messages: self.shared.forwarded.load(Ordering::Relaxed),
            gossip_bytes_sent,
            gossip_bytes_received,
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

    /// The ids of the actors active on this node right now ([`Node::actors`]
    /// tells more of each, and gives handles).
    pub fn hosted(&self) -> Vec<ActorId> {
        read(&self.shared.entries)
            .iter()
            .filter(|(_, e)| e.is_hosting())
            .map(|(id, _)| *id)
            .collect()
    }

    pub(crate) fn check_running(&self) -> Result<(), Error> {
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

    pub(crate) fn registry(&self) -> &'static Registry {
        self.shared.registry
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
