//! Building and starting a node.

use super::*;

/// Settings of a node.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) request_timeout: Duration,
    pub(super) mailbox_capacity: Option<usize>,
    pub(super) migration_timeout: Duration,
    pub(super) forwarder_idle: Duration,
    pub(super) calls_on_caller_task: bool,
    pub(super) metrics_interval: Duration,
    /// Whether to record metrics; `None`: if a recorder is installed.
    pub(super) record_metrics: Option<bool>,
    pub(super) shutdown_grace: Duration,
    pub(super) drain_grace: Duration,
}

/// Settings of the node's cluster membership.
#[derive(Debug, Clone)]
pub(super) struct Gossip {
    pub(super) seeds: Vec<String>,
    pub(super) interval: Duration,
    pub(super) failure_timeout: Duration,
    pub(super) keep_majority: bool,
    pub(super) join_timeout: Duration,
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
    /// The defaults (see each setting).
    pub(super) fn new() -> Self {
        NodeBuilder {
            id: None,
            config: Config {
                request_timeout: Duration::from_secs(5),
                mailbox_capacity: None,
                migration_timeout: Duration::from_secs(10),
                forwarder_idle: Duration::from_secs(30),
                calls_on_caller_task: true,
                metrics_interval: Duration::from_secs(1),
                record_metrics: None,
                shutdown_grace: Duration::from_secs(2),
                drain_grace: Duration::from_secs(30),
            },
            cluster: None,
            listen: None,
            trusted: Vec::new(),
            tcp: TcpConfig::default(),
            gossip: Gossip {
                seeds: Vec::new(),
                interval: Duration::from_millis(100),
                failure_timeout: Duration::from_secs(2),
                keep_majority: true,
                join_timeout: Duration::from_secs(10),
            },
        }
    }

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

    /// How long [`Node::shutdown`] waits for actors still inside a handler
    /// before it aborts them (their callers are told they are down).
    /// Default: 2 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// How long the drain of [`Node::shutdown_on_signal`] may take before
    /// the node shuts down anyway (the actors not yet moved stop with it).
    /// Default: 30 s.
    pub fn drain_grace(mut self, grace: Duration) -> Self {
        self.config.drain_grace = grace;
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
    ///
    /// With seeds, [`start`](NodeBuilder::start) returns once the node has
    /// joined: it sees the cluster's members and every one of them sees it,
    /// so any member can route to it and count it from then on (names it
    /// holds still take a few gossip rounds to show: see
    /// [`Node::lookup_within`]). It fails if that has not happened within
    /// the [`join_timeout`](NodeBuilder::join_timeout).
    pub fn join(mut self, addr: impl Into<String>) -> Self {
        self.gossip.seeds.push(addr.into());
        self
    }

    /// How long [`start`](NodeBuilder::start) waits to have joined the
    /// cluster through its seeds before it gives up (and stops the node).
    /// Default: 10 s.
    pub fn join_timeout(mut self, timeout: Duration) -> Self {
        self.gossip.join_timeout = timeout;
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

    /// Split brain resolution (default on). When members become
    /// unreachable, the side of the cluster with more than half of the
    /// members seen in the last few failure timeouts keeps running (on a
    /// tie, the side with the lowest node id) and every node of the other
    /// side fences itself (see [`Node::is_fenced`]), as Akka's "keep
    /// majority" does: an actor never lives on one side while the other
    /// reports it down. The price: in a two-node cluster, the node with the
    /// higher id stops when the other one crashes, and a cluster that loses
    /// more than half of its members at once stops entirely. Off: every
    /// side of a partition keeps running, each reporting the other's actors
    /// down.
    pub fn keep_majority(mut self, enabled: bool) -> Self {
        self.gossip.keep_majority = enabled;
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
    /// through the mailbox (see the README's benchmarks) and keeps every
    /// promise: one message at a time, each sender's order, migrations at a
    /// message boundary.
    ///
    /// What differs is where the handler runs: at the call, on the caller's
    /// task and thread (it sees the caller's task-locals; a caller that
    /// holds a lock the handler takes would wait on itself), and to its
    /// end: the node's default request timeout does not cut it short. A
    /// call with an explicit timeout ([`Handle::with_timeout`]) is never
    /// run this way, so its wait ends by the timeout. Turn it off to run
    /// every handler on its actor's task; an `async` handler always does.
    pub fn calls_on_caller_task(mut self, enabled: bool) -> Self {
        self.config.calls_on_caller_task = enabled;
        self
    }

    /// How often the node publishes its sampled metrics (gauges such as
    /// mailbox depth and cluster members, and the counters it keeps itself)
    /// to the `metrics` recorder, if one is installed when the node starts
    /// (see [`mobility::metrics`](crate::metrics)). Default: 1 s.
    pub fn metrics_interval(mut self, every: Duration) -> Self {
        self.config.metrics_interval = every.max(Duration::from_millis(1));
        self
    }

    /// Whether the node records metrics (see
    /// [`mobility::metrics`](crate::metrics)). Default: if a `metrics`
    /// recorder is installed when the node starts. The check cannot see a
    /// recorder of a zero-sized type (one that keeps its state in statics):
    /// say `true` for such a recorder; `false` records nothing whatever is
    /// installed.
    pub fn record_metrics(mut self, enabled: bool) -> Self {
        self.config.record_metrics = Some(enabled);
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
            None => NodeId::new(&format!(
                "node-{:08x}",
                crate::proto::id::random_u64() as u32
            ))
            .map_err(|e| Error::Config(e.to_string()))?,
        };
        if self.config.request_timeout.is_zero()
            || self.config.drain_grace.is_zero()
            || self.config.migration_timeout.is_zero()
            || self.config.forwarder_idle.is_zero()
            || self.gossip.interval.is_zero()
            || self.gossip.failure_timeout <= self.gossip.interval
            || self.gossip.join_timeout.is_zero()
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
        let seeds = self.gossip.seeds.clone();
        let join_timeout = self.gossip.join_timeout;
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
                start_directory(
                    &id,
                    network.local_addr(),
                    cluster,
                    secret,
                    self.gossip,
                    registry,
                )
                .await?,
            ),
            _ => None,
        };
        let stall = directory.as_ref().map(Directory::stall_guard);
        tracing::debug!(node = %id, types = ?registry.tags(), "node started");
        let node = Node {
            shared: Arc::new_cyclic(|me| NodeShared {
                me: me.clone(),
                deadlines: crate::api::deadline::Deadlines::start(),
                network,
                directory,
                name_claims: Mutex::new(HashMap::new()),
                forwarded: AtomicU64::new(0),
                member_events: tokio::sync::broadcast::channel(256).0,
                events: tokio::sync::broadcast::channel(observe::EVENT_BUFFER).0,
                meters: meters::NodeMeters::new(&id, self.config.record_metrics),
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
                lost_peers: Mutex::new(HashMap::new()),
                any_failed: AtomicBool::new(false),
                live_cells: AtomicUsize::new(0),
                cell_tasks: Mutex::new(HashMap::new()),
                cells_done: tokio::sync::Notify::new(),
                shutdown_hooks: Default::default(),
            }),
        };
        if let Some(events) = events {
            tokio::spawn(crate::node::network::run_events(node.clone(), events));
        }
        if let Some(directory) = &node.shared.directory {
            let members = directory.subscribe();
            tokio::spawn(members::follow(Arc::downgrade(&node.shared), members));
        }
        node.start_metrics_sampler();
        if !seeds.is_empty() {
            if let Err(e) = node.wait_joined(&seeds, join_timeout).await {
                node.shutdown().await;
                return Err(e);
            }
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
    registry: &Registry,
) -> Result<Directory, Error> {
    let interval = gossip.interval;
    let mut config = MembershipConfig::new(id.clone(), cluster, secret, tcp_addr);
    config.seeds = gossip.seeds;
    config.gossip_interval = gossip.interval;
    config.failure_timeout = gossip.failure_timeout;
    config.keep_majority = gossip.keep_majority;
    let membership = Membership::start(config, Vec::new())
        .await
        .map_err(|e| Error::Config(format!("cannot start gossip on {tcp_addr} (UDP): {e}")))?;
    Ok(Directory::start(
        membership,
        tcp_addr.to_string(),
        super::versions::encode(&registry.type_versions()),
        interval,
        gossip.failure_timeout,
    )
    .await)
}
