//! [`Membership`]: a running chitchat instance on the encrypted
//! transport, its live members and their events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::{spawn_chitchat, Chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, NodeState};
use tokio::sync::{broadcast, watch, Mutex};

use super::auth_udp::{AuthUdpTransport, GossipKey, Identity, TransportStats};
use super::config::MembershipConfig;
use super::events::{Member, MemberEvent, Observed, Tracker};
use super::stall::{StallGuard, Standing};
use crate::{NetError, NodeId};

/// The reserved key that carries a member's lifecycle status.
pub(super) const STATUS_KEY: &str = "status";
/// The status of a member that announced a graceful leave.
pub(super) const LEAVING: &str = "leaving";
/// The reserved key under which a member lists the live peers it sees
/// (their ids, sorted, space-separated): how a joining node learns that
/// every member sees it (about 10 bytes per member in each member's state).
pub(super) const SEEN_KEY: &str = "seen";

/// Whether `key` is written by the membership itself, never by users.
fn reserved(key: &str) -> bool {
    key == STATUS_KEY || key == SEEN_KEY
}
/// Events buffered for a slow subscriber before it sees `Lagged`.
const EVENT_CAPACITY: usize = 1024;
/// `leave` waits at most this many gossip intervals for its status to go
/// out to every live peer.
const LEAVE_WAIT_INTERVALS: u32 = 10;

/// This node's membership in a cluster: gossip (chitchat over an
/// encrypted UDP transport), failure detection, the live members and
/// their published key-value state, and [`MemberEvent`]s.
///
/// Cheap to clone (the clones share one instance). Dropping the last clone
/// stops gossiping, like [`shutdown`](Membership::shutdown).
///
/// The keys `status` and `seen` are reserved (they carry the graceful-leave
/// announcement, shown as [`Member::leaving`], and the peers a member sees,
/// shown as [`Member::sees`]): [`set`](Membership::set) and
/// [`delete`](Membership::delete) refuse them.
#[derive(Clone)]
pub struct Membership {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    gossip_addr: SocketAddr,
    gossip_interval: Duration,
    chitchat: Arc<Mutex<Chitchat>>,
    /// `None` once shut down.
    handle: Mutex<Option<ChitchatHandle>>,
    /// Serializes `leave` calls.
    leave_lock: Mutex<()>,
    /// Tells the watcher task to stop.
    stop: watch::Sender<bool>,
    shared: Arc<Shared>,
    stats: Arc<TransportStats>,
}

/// What the watcher task and the handle share.
struct Shared {
    view: RwLock<View>,
    events: broadcast::Sender<MemberEvent>,
    /// This node's id and start generation (to find itself declared failed).
    me: NodeId,
    generation: u64,
    guard: StallGuard,
    /// The last snapshot, applied again when a hold on failures ends.
    last_observed: std::sync::Mutex<Vec<Observed>>,
    /// Members declared failed within the last `quorum_window`, with when:
    /// they still count when deciding which side of a split keeps running.
    recently_failed: std::sync::Mutex<Vec<(NodeId, std::time::Instant)>>,
    /// `None`: no split brain resolution (every side keeps running).
    quorum_window: Option<Duration>,
    /// The value of `seen` last published.
    seen: std::sync::Mutex<String>,
}

/// The key under which a member publishes that it declared `id` failed;
/// its value is the failed incarnation's generation.
pub(super) fn down_key(id: &NodeId) -> String {
    format!("down.{id}")
}

/// The members as last seen.
struct View {
    /// This node's own values (authoritative: written by `set`/`delete`
    /// under chitchat's lock, never from a possibly older snapshot).
    self_values: BTreeMap<String, String>,
    /// Whether this node announced its leave.
    leaving: bool,
    /// Live peers (latest incarnation of each id).
    peers: BTreeMap<NodeId, Arc<Member>>,
    tracker: Tracker,
    /// Shut down: no more snapshots are applied.
    stopped: bool,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a snapshot of live peers; emits the events it implies (after
    /// the view is updated, so a subscriber that hears `Joined(x)` finds `x`
    /// in `members()`).
    ///
    /// Just back from a stall, failures are held (the detector's view is
    /// stale). Returns the incarnations newly declared failed, for this
    /// node to publish.
    fn apply(&self, observed: Vec<Observed>) -> Vec<(NodeId, u64)> {
        *self
            .last_observed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = observed.clone();
        let standing = self.guard.check();
        let mut view = self.write();
        if view.stopped || standing == Standing::Fenced {
            return Vec::new();
        }
        let hold = standing == Standing::Validating;
        let before = self.voters(view.peers.values().map(|m| &**m));
        let (mut events, mut peers) = view.tracker.update_holding(observed, hold);
        let mut failed = view.tracker.take_failed();
        if !failed.is_empty() && !self.keeps_running(&before, &peers, &failed) {
            tracing::error!(node = %self.me, lost = failed.len(), "this node is on the smaller side of a split: fenced");
            self.guard.fence();
            peers.clear();
            failed.clear();
            events = vec![MemberEvent::Fenced];
        }
        // Declared failed by a member: this incarnation is fenced.
        let key = down_key(&self.me);
        let generation = self.generation.to_string();
        let fenced = peers
            .values()
            .find(|m| m.values.get(&key) == Some(&generation))
            .map(|m| m.id.clone());
        view.peers = peers;
        if let Some(by) = fenced {
            tracing::error!(node = %self.me, %by, "this node was declared failed by its cluster: fenced");
            self.guard.fence();
            view.peers.clear();
            events = vec![MemberEvent::Fenced];
        }
        drop(view);
        for event in events {
            match &event {
                MemberEvent::Joined(id) => tracing::info!(member = %id, "member joined"),
                MemberEvent::Left(id) => tracing::info!(member = %id, "member left"),
                MemberEvent::Failed(id) => tracing::info!(member = %id, "member failed"),
                MemberEvent::Fenced => {}
            }
            // No subscriber is not an error.
            let _ = self.events.send(event);
        }
        failed
    }

    /// This node and the live peers among `members` that are not leaving.
    fn voters<'a>(&self, members: impl Iterator<Item = &'a Member>) -> BTreeSet<NodeId> {
        members
            .filter(|m| !m.leaving)
            .map(|m| m.id.clone())
            .chain([self.me.clone()])
            .collect()
    }

    /// Whether this node's side keeps running after `failed` were declared
    /// failed (see `quorum.rs`); records them as recently failed.
    fn keeps_running(
        &self,
        before: &BTreeSet<NodeId>,
        peers: &BTreeMap<NodeId, Arc<Member>>,
        failed: &[(NodeId, u64)],
    ) -> bool {
        let Some(window) = self.quorum_window else {
            return true;
        };
        let now = std::time::Instant::now();
        let mut recent = self
            .recently_failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        recent.retain(|(_, at)| now.duration_since(*at) < window);
        let recently: BTreeSet<NodeId> = recent.iter().map(|(id, _)| id.clone()).collect();
        let after = self.voters(peers.values().map(|m| &**m));
        recent.extend(failed.iter().map(|(id, _)| (id.clone(), now)));
        super::quorum::keeps_running(before, &recently, &after)
    }

    /// Applies the last snapshot again (a hold on failures ended).
    fn reapply(&self) -> Vec<(NodeId, u64)> {
        let observed = self
            .last_observed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.apply(observed)
    }
}

impl Membership {
    /// Binds the gossip socket, starts chitchat on the encrypted
    /// transport with `initial` as this node's key-value state, and starts
    /// watching the live members.
    ///
    /// Fails with [`NetError::Bind`] if the address cannot be bound, or is
    /// not a concrete address (port 0 or an unspecified IP: it is advertised
    /// to peers as is).
    pub async fn start(
        config: MembershipConfig,
        initial: Vec<(String, String)>,
    ) -> Result<Membership, NetError> {
        let addr = config.gossip_addr;
        let bind_error = |source| NetError::Bind {
            addr: addr.to_string(),
            source,
        };
        if addr.port() == 0 || addr.ip().is_unspecified() {
            return Err(bind_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the gossip address is advertised to peers: give a concrete IP address and port",
            )));
        }
        let socket = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(bind_error)?;
        let stats = Arc::new(TransportStats::default());
        let generation = generation();
        let transport = AuthUdpTransport::new(
            socket,
            GossipKey::derive(&config.secret, &config.cluster),
            Identity {
                addr,
                incarnation: generation,
            },
            Arc::clone(&stats),
        );

        let initial: Vec<(String, String)> = initial
            .into_iter()
            .filter(|(key, _)| {
                let reserved = reserved(key);
                if reserved {
                    tracing::warn!(key, "reserved membership key ignored");
                }
                !reserved
            })
            .collect();
        let self_values: BTreeMap<String, String> = initial.iter().cloned().collect();

        let gossip_interval = config.effective_gossip_interval();
        let chitchat_config = ChitchatConfig {
            chitchat_id: ChitchatId::new(config.node.as_str(), generation, addr),
            cluster_id: config.cluster.clone(),
            gossip_interval,
            listen_addr: addr,
            seed_nodes: config.seeds.clone(),
            failure_detector_config: config.failure_detector_config(),
            marked_for_deletion_grace_period: config.grace_period(),
            catchup_callback: None,
            extra_liveness_predicate: None,
        };
        let handle = spawn_chitchat(chitchat_config, initial, &transport)
            .await
            .map_err(|err| bind_error(io::Error::other(format!("{err:#}"))))?;
        let chitchat = handle.chitchat();
        let live = chitchat.lock().await.live_nodes_watcher();

        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let guard = StallGuard::new(config.effective_failure_timeout());
        guard.tick();
        let shared = Arc::new(Shared {
            view: RwLock::new(View {
                self_values,
                leaving: false,
                peers: BTreeMap::new(),
                tracker: Tracker::default(),
                stopped: false,
            }),
            events,
            me: config.node.clone(),
            generation,
            guard,
            last_observed: std::sync::Mutex::new(Vec::new()),
            recently_failed: std::sync::Mutex::new(Vec::new()),
            quorum_window: config
                .keep_majority
                .then(|| config.effective_failure_timeout() * 3),
            seen: std::sync::Mutex::new(String::new()),
        });
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(watch_live_nodes(
            live,
            stop_rx.clone(),
            Arc::clone(&shared),
            Arc::clone(&chitchat),
            config.node.clone(),
        ));
        tokio::spawn(tick(stop_rx, Arc::clone(&shared), Arc::clone(&chitchat)));
        tracing::info!(node = %config.node, cluster = %config.cluster, %addr, "membership started");
        Ok(Membership {
            inner: Arc::new(Inner {
                id: config.node,
                gossip_addr: addr,
                gossip_interval,
                chitchat,
                handle: Mutex::new(Some(handle)),
                leave_lock: Mutex::new(()),
                stop,
                shared,
                stats,
            }),
        })
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.inner.id
    }

    /// This node's stalls and standing with its cluster: whether it is
    /// serving, validating after a stall, or fenced (declared failed).
    pub fn stall_guard(&self) -> StallGuard {
        self.inner.shared.guard.clone()
    }

    /// This node's UDP gossip address.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.inner.gossip_addr
    }

    /// Sets a key of this node's published state (the reserved keys
    /// `status` and `seen` are refused with a warning). Visible in this node's
    /// [`members`](Membership::members) on return; peers see it within a
    /// few gossip intervals.
    pub async fn set(&self, key: &str, value: &str) {
        if reserved(key) {
            tracing::warn!(key, "reserved membership key: not set");
            return;
        }
        let mut chitchat = self.inner.chitchat.lock().await;
        chitchat.self_node_state().set(key, value);
        // Under chitchat's lock, so concurrent writes land in the same order
        // in both places.
        self.inner
            .shared
            .write()
            .self_values
            .insert(key.to_owned(), value.to_owned());
    }

    /// Deletes a key of this node's published state (the reserved keys
    /// `status` and `seen` are refused with a warning).
    pub async fn delete(&self, key: &str) {
        if reserved(key) {
            tracing::warn!(key, "reserved membership key: not deleted");
            return;
        }
        let mut chitchat = self.inner.chitchat.lock().await;
        chitchat.self_node_state().delete(key);
        self.inner.shared.write().self_values.remove(key);
    }

    /// The live members, this node included (sorted by id): peers as of the
    /// last change chitchat reported, this node with its current values.
    /// Members that announced a leave stay (with `leaving` set) until they
    /// go silent. After [`shutdown`](Membership::shutdown) or
    /// [`leave`](Membership::leave), only this node.
    pub fn members(&self) -> Vec<Member> {
        let view = self.inner.shared.read();
        let mut members: Vec<Member> = view.peers.values().map(|m| (**m).clone()).collect();
        members.push(self.myself(&view));
        members.sort_by(|a, b| a.id.cmp(&b.id));
        members
    }

    /// The ids of the live members that have not announced a leave (this
    /// node included unless it is leaving), sorted: what
    /// [`members`](Membership::members) lists, without copying anyone's
    /// values (each member publishes an entry per actor it hosts).
    pub fn staying_ids(&self) -> Vec<NodeId> {
        let view = self.inner.shared.read();
        let mut ids: Vec<NodeId> = view
            .peers
            .values()
            .filter(|m| !m.leaving)
            .map(|m| m.id.clone())
            .collect();
        if !view.leaving {
            ids.push(self.inner.id.clone());
        }
        ids.sort();
        ids
    }

    /// One live member (this node included), if it is live.
    pub fn member(&self, id: &NodeId) -> Option<Member> {
        let view = self.inner.shared.read();
        if *id == self.inner.id {
            Some(self.myself(&view))
        } else {
            view.peers.get(id).map(|m| (**m).clone())
        }
    }

    /// Whether live member `id` (not this node) announced its leave,
    /// without copying its values.
    pub fn is_leaving(&self, id: &NodeId) -> bool {
        self.inner
            .shared
            .read()
            .peers
            .get(id)
            .is_some_and(|m| m.leaving)
    }

    /// The value of `key` at one live member (this node included), without
    /// copying the member's other values.
    pub fn value(&self, id: &NodeId, key: &str) -> Option<String> {
        let view = self.inner.shared.read();
        if *id == self.inner.id {
            view.self_values.get(key).cloned()
        } else {
            view.peers.get(id)?.values.get(key).cloned()
        }
    }

    /// Every live member (this node included) that has `key`, with its
    /// value: a read of one key across the cluster, without copying the
    /// members' other values.
    pub fn values_of(&self, key: &str) -> Vec<(NodeId, String)> {
        let view = self.inner.shared.read();
        let mine = view
            .self_values
            .get(key)
            .map(|value| (self.inner.id.clone(), value.clone()));
        view.peers
            .values()
            .filter_map(|m| m.values.get(key).map(|v| (m.id.clone(), v.clone())))
            .chain(mine)
            .collect()
    }

    /// Whether every live member (this node included) has published that
    /// it declared `id` failed: from then on no member acts on `id` any
    /// more (a destination that held a prepared copy from it has decided).
    pub fn failure_acknowledged(&self, id: &NodeId) -> bool {
        let key = down_key(id);
        let view = self.inner.shared.read();
        view.self_values.contains_key(&key)
            && view
                .peers
                .values()
                .filter(|m| m.id != *id)
                .all(|m| m.values.contains_key(&key))
    }

    /// Whether this node has joined: it sees at least one live peer, and
    /// every live peer that is not leaving has published that it sees this
    /// node (so each of them routes to it, finds its actors and counts it
    /// as a member).
    pub fn joined(&self) -> bool {
        let view = self.inner.shared.read();
        let me = self.inner.id.as_str();
        let mut peers = view.peers.values().filter(|m| !m.leaving).peekable();
        peers.peek().is_some() && peers.all(|m| m.sees.iter().any(|id| id.as_str() == me))
    }

    fn myself(&self, view: &View) -> Member {
        Member {
            id: self.inner.id.clone(),
            gossip_addr: self.inner.gossip_addr,
            values: view.self_values.clone(),
            leaving: view.leaving,
            sees: view.peers.keys().cloned().collect(),
        }
    }

    /// Member events from now on. Subscribe first, then read
    /// [`members`](Membership::members) for the current set. A receiver that
    /// falls more than 1024 events behind gets `RecvError::Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<MemberEvent> {
        self.inner.shared.events.subscribe()
    }

    /// Gossip datagrams dropped on receipt so far: truncated or oversized,
    /// wrong magic or version, failed decryption (wrong secret or cluster,
    /// altered bytes), an undecodable payload, or a replay (see
    /// [`replayed_datagrams`](Membership::replayed_datagrams)).
    pub fn rejected_datagrams(&self) -> u64 {
        self.inner.stats.rejected()
    }

    /// Of the [`rejected_datagrams`](Membership::rejected_datagrams), the
    /// replays: datagrams that decrypted but whose counter was already seen
    /// or is older than the sender's window, or that come from an
    /// incarnation of the sender that has since restarted. None of them is
    /// answered.
    pub fn replayed_datagrams(&self) -> u64 {
        self.inner.stats.replayed()
    }

    /// Gossip datagrams that decrypted but were not delivered because they
    /// do not echo this run's token: a sender's first datagrams to this
    /// node, or datagrams written before this node (re)started, replayed or
    /// late. Each is answered only by a probe to the sender's own gossip
    /// address (never to the address the datagram came from), at most one
    /// per 100 ms. Not counted in
    /// [`rejected_datagrams`](Membership::rejected_datagrams).
    pub fn unverified_datagrams(&self) -> u64 {
        self.inner.stats.unverified()
    }

    /// Bytes of gossip datagrams this node sent and received so far (UDP
    /// payloads as sealed, probes and refused datagrams included): what the
    /// membership and the state it replicates cost on the network.
    pub fn gossip_bytes(&self) -> (u64, u64) {
        (
            self.inner.stats.bytes_sent(),
            self.inner.stats.bytes_received(),
        )
    }

    /// Leaves gracefully: publishes `status = leaving` (peers report
    /// [`MemberEvent::Left`], not `Failed`), waits until that state has gone
    /// out to every live peer (at most 10 gossip intervals), then shuts
    /// down. Idempotent; concurrent calls return when the first is done.
    pub async fn leave(&self) {
        let _serial = self.inner.leave_lock.lock().await;
        let peers: Vec<SocketAddr> = {
            let mut chitchat = self.inner.chitchat.lock().await;
            let mut view = self.inner.shared.write();
            if view.leaving {
                return;
            }
            view.leaving = true;
            chitchat.self_node_state().set(STATUS_KEY, LEAVING);
            view.peers
                .values()
                .filter(|peer| !peer.leaving)
                .map(|peer| peer.gossip_addr)
                .collect()
        };
        if self.inner.handle.lock().await.is_some() {
            self.wait_until_announced(&peers).await;
        }
        self.shutdown().await;
        tracing::info!(node = %self.inner.id, "left the cluster");
    }

    /// Waits until every peer in `peers` was sent two delta-carrying
    /// messages since the `leaving` status was set: the second was computed
    /// after the status, so it carried it (chitchat sends whatever the peer
    /// lacks). Gives up after [`LEAVE_WAIT_INTERVALS`] gossip intervals.
    async fn wait_until_announced(&self, peers: &[SocketAddr]) {
        let stats = &self.inner.stats;
        let baseline: Vec<(SocketAddr, u64)> = peers
            .iter()
            .map(|&addr| (addr, stats.deltas_sent_to(addr)))
            .collect();
        let interval = self.inner.gossip_interval;
        let deadline = tokio::time::Instant::now() + interval.saturating_mul(LEAVE_WAIT_INTERVALS);
        let poll = (interval / 5).clamp(Duration::from_millis(1), Duration::from_millis(20));
        loop {
            let pending = baseline
                .iter()
                .filter(|(addr, before)| stats.deltas_sent_to(*addr) < before + 2)
                .count();
            if pending == 0 {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::debug!(
                    pending,
                    "leaving: not every peer was sent our status in time"
                );
                return;
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Stops gossiping at once and closes the socket: peers will declare
    /// this node [`Failed`](MemberEvent::Failed). Idempotent.
    pub async fn shutdown(&self) {
        let mut handle = self.inner.handle.lock().await;
        let Some(running) = handle.take() else {
            return;
        };
        {
            let mut view = self.inner.shared.write();
            view.stopped = true;
            view.peers.clear();
        }
        self.inner.stop.send_replace(true);
        if let Err(err) = running.shutdown().await {
            tracing::warn!(error = %err, "gossip server ended with an error");
        }
        tracing::debug!(node = %self.inner.id, "membership shut down");
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Membership")
            .field("id", &self.inner.id)
            .field("gossip_addr", &self.inner.gossip_addr)
            .finish_non_exhaustive()
    }
}

/// The start generation of this incarnation: microseconds since the UNIX
/// epoch, so a restarted node has a larger one.
fn generation() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The members last copied out of chitchat, per incarnation, with the
/// version of the node state they were copied at: a peer whose state did
/// not change since is not copied again (each copy costs as much as the
/// peer publishes, an entry per actor it hosts).
type Copied = HashMap<(Arc<str>, u64), (u64, Arc<Member>)>;

/// The live peers of a chitchat snapshot (any incarnation of `me` excluded).
fn observe(
    snapshot: &BTreeMap<ChitchatId, NodeState>,
    me: &NodeId,
    copied: &mut Copied,
) -> Vec<Observed> {
    let mut fresh: Copied = HashMap::with_capacity(snapshot.len());
    let observed = snapshot
        .iter()
        .filter_map(|(chitchat_id, state)| {
            let key = (chitchat_id.node_id.clone(), chitchat_id.generation_id);
            let version = state.max_version();
            if let Some((seen, member)) = copied.get(&key) {
                if *seen == version {
                    let member = Arc::clone(member);
                    fresh.insert(key, (version, Arc::clone(&member)));
                    return Some(Observed {
                        generation: chitchat_id.generation_id,
                        member,
                    });
                }
            }
            let id = match NodeId::new(&chitchat_id.node_id) {
                Ok(id) => id,
                Err(err) => {
                    tracing::debug!(error = %err, "gossip member with an invalid node id ignored");
                    return None;
                }
            };
            if id == *me {
                return None;
            }
            let mut values = BTreeMap::new();
            let mut leaving = false;
            let mut sees = Vec::new();
            for (key, value) in state.key_values() {
                if key == STATUS_KEY {
                    leaving = value == LEAVING;
                } else if key == SEEN_KEY {
                    sees = value
                        .split(' ')
                        .filter_map(|id| NodeId::new(id).ok())
                        .collect();
                } else {
                    values.insert(key.to_owned(), value.to_owned());
                }
            }
            let member = Arc::new(Member {
                id,
                gossip_addr: chitchat_id.gossip_advertise_addr,
                values,
                leaving,
                sees,
            });
            fresh.insert(key, (version, Arc::clone(&member)));
            Some(Observed {
                generation: chitchat_id.generation_id,
                member,
            })
        })
        .collect();
    *copied = fresh;
    observed
}

/// Applies every snapshot of chitchat's live nodes until told to stop (or
/// until the membership is dropped).
async fn watch_live_nodes(
    mut live: watch::Receiver<BTreeMap<ChitchatId, NodeState>>,
    mut stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
    chitchat: Arc<Mutex<Chitchat>>,
    me: NodeId,
) {
    let mut copied = Copied::new();
    loop {
        let observed = observe(&live.borrow_and_update(), &me, &mut copied);
        let failed = shared.apply(observed);
        publish_downs(&shared, &chitchat, failed).await;
        publish_seen(&shared, &chitchat).await;
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            changed = live.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Publishes that this node declared these incarnations failed, so that
/// every member (and the declared node itself, if it was only stalled or
/// cut off) learns it.
async fn publish_downs(shared: &Shared, chitchat: &Mutex<Chitchat>, failed: Vec<(NodeId, u64)>) {
    if failed.is_empty() {
        return;
    }
    let mut chitchat = chitchat.lock().await;
    for (id, generation) in failed {
        let (key, value) = (down_key(&id), generation.to_string());
        chitchat.self_node_state().set(&key, &value);
        shared.write().self_values.insert(key, value);
    }
}

/// Publishes the live peers this node sees, if they changed since the
/// last time (see [`SEEN_KEY`]).
async fn publish_seen(shared: &Shared, chitchat: &Mutex<Chitchat>) {
    let seen = {
        let view = shared.read();
        let ids: Vec<&str> = view.peers.keys().map(NodeId::as_str).collect();
        ids.join(" ")
    };
    {
        let mut published = shared.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if *published == seen {
            return;
        }
        published.clone_from(&seen);
    }
    chitchat.lock().await.self_node_state().set(SEEN_KEY, &seen);
}

/// Stamps the stall guard's clock; when a validation after a stall ends,
/// the failures held meanwhile are decided on the current view.
async fn tick(
    mut stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
    chitchat: Arc<Mutex<Chitchat>>,
) {
    let every = shared.guard.tick_every();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            () = tokio::time::sleep(every) => {}
        }
        if shared.guard.tick() {
            let failed = shared.reapply();
            publish_downs(&shared, &chitchat, failed).await;
        }
    }
}
