//! The transport: the connector, the table of peers and the test hooks.
//! The listener is in `accept.rs`; each peer's session lives in its own
//! task (`peer/`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::accept::{accept_loop, summary_loop};
use super::budget::Unauthenticated;
use super::cert::AuthorityKey;
use super::config::{Identity, Secret, TcpConfig};
use super::credentials::{settle, Trust};
use super::error::NetError;
use super::establish::{handshake, Established, Failure, Local, Policy};
use super::handshake::{random_bytes, RefusalReason, Role};
use super::peer::{spawn_peer, PeerCtrl};
use super::refusals::{RefusalLog, Refusals};
use super::session::SessionId;
use crate::{LinkSender, NodeId};

/// What the transport reports, from every peer, in order per peer.
#[derive(Debug)]
pub enum TransportEvent {
    /// A new session with an authenticated peer: frames for it go on `link`.
    PeerUp {
        /// The peer's node id.
        peer: NodeId,
        /// The peer's cluster.
        cluster: String,
        /// Sends frames to the peer, exactly once and in order.
        link: LinkSender,
    },
    /// One whole message from `peer`, in order, exactly once per session.
    Frame {
        /// Who sent it.
        peer: NodeId,
        /// The message.
        frame: Bytes,
    },
    /// The session with `peer` is gone: it stayed unreachable for
    /// `reconnect_for`, restarted (new incarnation) or broke the protocol.
    /// Frames not acknowledged may be lost: fail whatever waits on them.
    PeerLost {
        /// The peer's node id.
        peer: NodeId,
        /// Why.
        reason: String,
    },
}

/// Takes the transport's events as they happen (see [`Transport::bind_with`]).
///
/// It is called on the task of the peer an event is about: one call at a
/// time per peer, in order (a peer's `PeerUp` before its first `Frame`,
/// its `PeerLost` after its last), calls for different peers possibly at
/// once. It runs on the path of every message, so it must be quick and
/// must not block: hand longer work to another task. It may send on any
/// `LinkSender`, the peer's own included.
pub type EventHandler = Arc<dyn Fn(TransportEvent) + Send + Sync>;

/// The handler, with a `Debug` for `Inner`.
struct Handler(EventHandler);

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventHandler")
    }
}

/// First pause before dialing again a node that said it is busy (doubled
/// up to `BUSY_MAX_PAUSE`).
const BUSY_FIRST_PAUSE: Duration = Duration::from_millis(10);
const BUSY_MAX_PAUSE: Duration = Duration::from_millis(200);

/// How many lost sessions per peer are remembered (and told in `Resume`).
const MAX_DROPPED: usize = 8;

/// Locks a mutex, ignoring poisoning (no code here panics while holding one).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A peer task as the table knows it.
#[derive(Debug)]
pub(crate) struct PeerEntry {
    /// Tells this entry from a later one for the same peer.
    pub(crate) token: u64,
    /// The task's control channel.
    pub(crate) ctrl: mpsc::UnboundedSender<PeerCtrl>,
}

/// State shared by the transport's handles and tasks.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) local: Local,
    pub(crate) local_addr: SocketAddr,
    trusted: Mutex<HashMap<String, Trust>>,
    blocked: Mutex<HashSet<NodeId>>,
    /// The cluster each peer first authenticated as (see
    /// `Policy::cluster_of`).
    clusters: Mutex<HashMap<NodeId, String>>,
    pub(crate) peers: Mutex<HashMap<NodeId, PeerEntry>>,
    /// Addresses dialed (or advertised) to the node found there.
    addrs: Mutex<HashMap<String, NodeId>>,
    /// Those waiting for a session with a peer to be up (`connect`).
    waiters: Mutex<HashMap<NodeId, Vec<oneshot::Sender<()>>>>,
    /// The last sessions with each peer that were reported lost.
    dropped: Mutex<HashMap<NodeId, VecDeque<SessionId>>>,
    events: Handler,
    /// The links' budget (`max_connections`): authenticated sockets and
    /// this node's own dials.
    links: Arc<Semaphore>,
    /// The budget of accepted sockets not yet authenticated.
    pub(crate) unauthenticated: Arc<Unauthenticated>,
    /// Connections refused before authentication.
    pub(crate) refusals: RefusalLog,
    pub(crate) shutdown: CancellationToken,
    next_id: AtomicU64,
}

impl Policy for Inner {
    fn trust_for(&self, cluster: &str) -> Option<Trust> {
        let trusted = lock(&self.trusted);
        trusted.get(cluster).or_else(|| trusted.get("*")).cloned()
    }

    fn refuses(&self, peer: &NodeId) -> Option<String> {
        lock(&self.blocked)
            .contains(peer)
            .then(|| "blocked".to_owned())
    }

    fn cluster_of(&self, peer: &NodeId) -> Option<String> {
        lock(&self.clusters).get(peer).cloned()
    }

    fn busy(&self) -> Option<String> {
        (self.links.available_permits() == 0)
            .then(|| format!("too many links open ({})", self.config().max_connections))
    }
}

impl Inner {
    /// A fresh id for a socket or a peer entry.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Hands an event to the handler (on the calling peer task).
    pub(crate) fn emit(&self, event: TransportEvent) {
        (self.events.0)(event);
    }

    pub(crate) fn config(&self) -> &TcpConfig {
        &self.local.config
    }

    /// A receiver told when a session with `peer` is up.
    pub(crate) fn wait_up(&self, peer: &NodeId) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.add_waiter(peer, tx);
        rx
    }

    /// Registers someone waiting for a session with `peer` to be up.
    pub(crate) fn add_waiter(&self, peer: &NodeId, waiter: oneshot::Sender<()>) {
        let mut waiters = lock(&self.waiters);
        let list = waiters.entry(peer.clone()).or_default();
        list.retain(|w| !w.is_closed());
        list.push(waiter);
    }

    /// The session with `peer` is up: tells those waiting.
    pub(crate) fn notify_up(&self, peer: &NodeId) {
        let waiting = lock(&self.waiters).remove(peer).unwrap_or_default();
        for waiter in waiting {
            let _ = waiter.send(());
        }
    }

    /// Remembers that the session `id` with `peer` was reported lost.
    pub(crate) fn record_dropped(&self, peer: &NodeId, id: SessionId) {
        let mut dropped = lock(&self.dropped);
        let list = dropped.entry(peer.clone()).or_default();
        if list.len() >= MAX_DROPPED {
            list.pop_front();
        }
        list.push_back(id);
    }

    /// The last sessions with `peer` reported lost.
    pub(crate) fn dropped(&self, peer: &NodeId) -> Vec<SessionId> {
        lock(&self.dropped)
            .get(peer)
            .map(|l| l.iter().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn is_blocked(&self, peer: &NodeId) -> bool {
        lock(&self.blocked).contains(peer)
    }

    /// A place in the links' budget, or this node's own limit as the error.
    pub(crate) fn link_permit(&self) -> Result<OwnedSemaphorePermit, NetError> {
        Arc::clone(&self.links)
            .try_acquire_owned()
            .map_err(|_| NetError::TooManyConnections {
                max: self.config().max_connections,
            })
    }

    /// Dials `addr` and authenticates; the socket is handed to its peer's
    /// task. With `wait`, also returns a receiver told when the session
    /// with the peer is up.
    pub(crate) async fn dial(
        self: &Arc<Self>,
        addr: &str,
        expected: Option<&NodeId>,
        wait: bool,
    ) -> Result<(NodeId, Option<oneshot::Receiver<()>>), NetError> {
        if self.shutdown.is_cancelled() {
            return Err(NetError::Shutdown);
        }
        let permit = self.link_permit()?;
        let timeout = self.config().handshake_timeout;
        let connect_error = |reason: String| NetError::Connect {
            addr: addr.to_owned(),
            reason,
        };
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(connect_error(e.to_string())),
            Err(_) => return Err(connect_error(format!("no answer within {timeout:?}"))),
        };
        let handshaken = tokio::select! {
            r = handshake(stream, Role::Dialer, &self.local, &**self, || {}) => r,
            () = self.shutdown.cancelled() => return Err(NetError::Shutdown),
        }
        .map_err(|failure| match failure {
            Failure::Busy(limit) => {
                tracing::debug!(%addr, %limit, "the node dialed is busy");
                NetError::Busy {
                    addr: addr.to_owned(),
                    limit,
                }
            }
            // Told by the listener, a refusal of its policy rather than a
            // failed handshake.
            Failure::Refused(
                reason @ (RefusalReason::ClusterNotTrusted | RefusalReason::IdentityRefused),
            ) => {
                tracing::warn!(%addr, %reason, "the node dialed refused this node");
                NetError::Refused {
                    addr: addr.to_owned(),
                    reason,
                }
            }
            failure => {
                tracing::warn!(%addr, reason = %failure, "outbound handshake failed");
                NetError::Handshake {
                    addr: addr.to_owned(),
                    reason: failure.to_string(),
                }
            }
        })?;
        let established =
            handshaken
                .established(permit)
                .await
                .map_err(|reason| NetError::Handshake {
                    addr: addr.to_owned(),
                    reason,
                })?;
        let peer = established.hello.node.clone();
        if let Some(expected) = expected.filter(|e| **e != peer) {
            tracing::warn!(%addr, %peer, %expected, "address now belongs to another node");
            return Err(NetError::Handshake {
                addr: addr.to_owned(),
                reason: format!("{peer} answered, {expected} expected"),
            });
        }
        lock(&self.addrs).insert(addr.to_owned(), peer.clone());
        let up = wait.then(|| self.wait_up(&peer));
        self.route(established);
        Ok((peer, up))
    }

    /// Hands an authenticated socket to its peer's task (started if needed).
    pub(crate) fn route(self: &Arc<Self>, mut established: Established) {
        if self.shutdown.is_cancelled() {
            return;
        }
        if let Some(listen) = advertised(&established) {
            lock(&self.addrs).insert(listen, established.hello.node.clone());
        }
        let peer = established.hello.node.clone();
        lock(&self.clusters)
            .entry(peer.clone())
            .or_insert_with(|| established.hello.cluster.clone());
        let mut table = lock(&self.peers);
        if let Some(entry) = table.get(&peer) {
            match entry.ctrl.send(PeerCtrl::Attach(Box::new(established))) {
                Ok(()) => return,
                Err(mpsc::error::SendError(msg)) => match msg {
                    PeerCtrl::Attach(e) => established = *e,
                    _ => return,
                },
            }
        }
        let token = self.next_id();
        let ctrl = spawn_peer(Arc::clone(self), peer.clone(), token);
        let _ = ctrl.send(PeerCtrl::Attach(Box::new(established)));
        table.insert(peer, PeerEntry { token, ctrl });
    }

    /// Sends a control message to a peer's task, if it runs.
    fn tell(&self, peer: &NodeId, msg: PeerCtrl) -> bool {
        lock(&self.peers)
            .get(peer)
            .is_some_and(|entry| entry.ctrl.send(msg).is_ok())
    }
}

/// The address the peer of `established` listens on, with its IP replaced
/// by the socket's if it advertised an unspecified one (`0.0.0.0`).
pub(crate) fn advertised(established: &Established) -> Option<String> {
    let listen = established.hello.listen.as_ref()?;
    match listen.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            Some(SocketAddr::new(established.peer_addr.ip(), addr.port()).to_string())
        }
        _ => Some(listen.clone()),
    }
}

/// The TCP transport of one node. Cheap to clone; every clone is the same
/// transport, which shuts down when `shutdown` is called or the last clone
/// is dropped.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
    _guard: Arc<ShutdownOnDrop>,
}

/// Shuts the transport down when the last `Transport` handle goes (its
/// tasks hold `Inner`, not this).
struct ShutdownOnDrop(CancellationToken);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("node", &self.inner.local.identity.node)
            .field("cluster", &self.inner.local.identity.cluster)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Binds a listener on `addr` (port 0 picks a free one) and starts
    /// accepting. Events from every peer go to the returned receiver.
    pub async fn bind(
        identity: Identity,
        config: TcpConfig,
        addr: &str,
    ) -> Result<(Transport, mpsc::UnboundedReceiver<TransportEvent>), NetError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handler: EventHandler = Arc::new(move |event| {
            let _ = tx.send(event);
        });
        let transport = Transport::bind_with(identity, config, addr, handler).await?;
        Ok((transport, rx))
    }

    /// Like [`Transport::bind`], but every event is given to `handler` as
    /// it happens, on the task of its peer, with no channel nor task in
    /// between (see [`EventHandler`] for what it may do).
    pub async fn bind_with(
        identity: Identity,
        config: TcpConfig,
        addr: &str,
        handler: EventHandler,
    ) -> Result<Transport, NetError> {
        let config = config.sanitized();
        let bind_error = |source| NetError::Bind {
            addr: addr.to_owned(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let incarnation = u64::from_be_bytes(random_bytes().map_err(|e| NetError::Bind {
            addr: addr.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?);
        let keys = settle(&identity, &config).map_err(|e| NetError::Identity {
            node: identity.node.to_string(),
            reason: e.to_string(),
        })?;
        let trusted = config
            .trusted_clusters
            .iter()
            .map(|t| (t.cluster.clone(), Trust::Authority(t.authority)))
            .collect();
        let refusals = RefusalLog::new(identity.node.clone());
        let inner = Arc::new(Inner {
            local: Local {
                identity,
                keys,
                incarnation,
                listen: Some(local_addr.to_string()),
                config: config.clone(),
            },
            local_addr,
            trusted: Mutex::new(trusted),
            blocked: Mutex::new(HashSet::new()),
            clusters: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            addrs: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            dropped: Mutex::new(HashMap::new()),
            events: Handler(handler),
            links: Arc::new(Semaphore::new(config.max_connections)),
            unauthenticated: Unauthenticated::new(
                config.max_unauthenticated,
                config.max_unauthenticated_per_address,
            ),
            refusals,
            shutdown: CancellationToken::new(),
            next_id: AtomicU64::new(1),
        });
        tokio::spawn(accept_loop(Arc::clone(&inner), listener));
        tokio::spawn(summary_loop(Arc::clone(&inner)));
        tracing::info!(node = %inner.local.identity.node, %local_addr, "listening");
        let guard = Arc::new(ShutdownOnDrop(inner.shutdown.clone()));
        Ok(Transport {
            inner,
            _guard: guard,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// This node's id.
    pub fn node(&self) -> &NodeId {
        &self.inner.local.identity.node
    }

    /// Trusts another cluster by a secret both sides know: its nodes,
    /// inbound or outbound, must prove `secret` and show a certificate of
    /// the authority derived from it (so any holder of the secret can
    /// mint an identity). The cluster `"*"` stands for every other cluster
    /// not named explicitly (a federation secret). Replaces any trust
    /// given to `cluster` before.
    #[allow(clippy::needless_pass_by_value)] // The signature callers already use.
    pub fn trust_cluster(&self, cluster: &str, secret: Secret) {
        let local = &self.inner.local;
        match Trust::by_secret(&secret, &local.identity, &local.keys) {
            Ok(trust) => {
                lock(&self.inner.trusted).insert(cluster.to_owned(), trust);
            }
            // Only a cluster id the transport would refuse anyway: its own
            // was checked when it bound.
            Err(e) => tracing::warn!(%cluster, error = %e, "cannot trust cluster"),
        }
    }

    /// Trusts another cluster by its authority's key: its nodes must show
    /// a certificate signed by `authority` (no secret is shared; both
    /// sides must trust each other this way). Same as listing it in
    /// `TcpConfig::trusted_clusters`; replaces any trust given to
    /// `cluster` before.
    pub fn trust_cluster_authority(&self, cluster: &str, authority: AuthorityKey) {
        lock(&self.inner.trusted).insert(cluster.to_owned(), Trust::Authority(authority));
    }

    /// The public key of this node's static key pair, as its certificate
    /// names it.
    pub fn static_key(&self) -> [u8; 32] {
        self.inner.local.keys.key.public()
    }

    /// Connects to the node listening on `addr` (`host:port`), authenticates
    /// and returns its node id once the session is up. A session already up
    /// with the node at `addr` is reused.
    pub async fn connect(&self, addr: &str) -> Result<NodeId, NetError> {
        let timeout = self.inner.config().handshake_timeout;
        let known = lock(&self.inner.addrs).get(addr).cloned();
        if let Some(peer) = known {
            let (tx, rx) = oneshot::channel();
            if self.inner.tell(&peer, PeerCtrl::Wait(tx))
                && matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())))
            {
                return Ok(peer);
            }
            // No session with it comes up: dial anew.
        }
        let (peer, up) = self.dial_while_busy(addr).await?;
        let Some(up) = up else { return Ok(peer) };
        // The socket may lose a tie-break to one dialed by the peer at the
        // same time: wait for the session, whichever socket carries it.
        match tokio::time::timeout(timeout * 2, up).await {
            Ok(Ok(())) => Ok(peer),
            Ok(Err(_)) if self.inner.shutdown.is_cancelled() => Err(NetError::Shutdown),
            _ => Err(NetError::Session {
                peer: peer.to_string(),
                reason: format!(
                    "no session up within {:?} after the handshake (the peer took the \
                     socket, then closed it or went silent: its log says why)",
                    timeout * 2
                ),
            }),
        }
    }

    /// How many connections this node refused or closed before they were
    /// authenticated, per reason, since it started. Refusals are not
    /// logged one by one: a summary line goes at most every few seconds.
    pub fn refusals(&self) -> Refusals {
        self.inner.refusals.snapshot()
    }

    /// How many accepted sockets are in their handshake now (at most
    /// `TcpConfig::max_unauthenticated`).
    pub fn unauthenticated(&self) -> usize {
        self.inner.unauthenticated.len()
    }

    /// Dials `addr`, again while the node there says it is busy (its own
    /// limits), with a growing pause, until the handshake timeout.
    async fn dial_while_busy(
        &self,
        addr: &str,
    ) -> Result<(NodeId, Option<oneshot::Receiver<()>>), NetError> {
        let give_up = tokio::time::Instant::now() + self.inner.config().handshake_timeout;
        let mut pause = BUSY_FIRST_PAUSE;
        loop {
            match self.inner.dial(addr, None, true).await {
                Err(NetError::Busy { .. }) if tokio::time::Instant::now() + pause < give_up => {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = self.inner.shutdown.cancelled() => return Err(NetError::Shutdown),
                    }
                    pause = (pause * 2).min(BUSY_MAX_PAUSE);
                }
                result => return result,
            }
        }
    }

    /// Closes the listener and every connection; sessions end without
    /// `PeerLost` events.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Test hook: drops the current socket to `peer`; the session resumes
    /// over a new one.
    #[doc(hidden)]
    pub fn fault_cut(&self, peer: &NodeId) {
        self.inner
            .tell(peer, PeerCtrl::Cut("cut by fault_cut".into()));
    }

    /// Test hook: while `blocked`, no socket to or from `peer` is allowed
    /// (the current one is dropped, reconnects are refused).
    #[doc(hidden)]
    pub fn fault_block(&self, peer: &NodeId, blocked: bool) {
        if blocked {
            lock(&self.inner.blocked).insert(peer.clone());
            self.inner
                .tell(peer, PeerCtrl::Cut("blocked by fault_block".into()));
        } else {
            lock(&self.inner.blocked).remove(peer);
        }
    }
}
