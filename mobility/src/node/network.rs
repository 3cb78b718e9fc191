//! The node's TCP side: its transport (listener, authenticated sessions to
//! peers), the events it reports, and the addresses of nodes it can dial.

use crate::sync::lock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use mobility_net::tcp::{EventHandler, Identity, Secret, TcpConfig, Transport, TransportEvent};

use crate::node::{Node, WeakNode};
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::NodeId;

/// TCP settings of a node, as given to its builder.
#[derive(Debug, Clone)]
pub(crate) struct NetSettings {
    pub(crate) listen: String,
    pub(crate) cluster: String,
    pub(crate) secret: Secret,
    pub(crate) trusted: Vec<(String, Secret)>,
    pub(crate) config: TcpConfig,
}

/// A running transport and what the node knows about where peers listen.
#[derive(Debug)]
pub(crate) struct Network {
    transport: Transport,
    addresses: RwLock<HashMap<NodeId, String>>,
    events: Arc<Events>,
}

/// Where the transport's events go: straight into the node, on the peer's
/// task (no channel, no task in between), once the node exists; until
/// then (the listener is up before the node is built) they wait here, in
/// order.
#[derive(Default)]
pub(crate) struct Events {
    /// Set once `waiting` is drained and `node` set: events go straight in.
    ready: AtomicBool,
    /// Weak: the node owns the transport, which owns this.
    node: std::sync::OnceLock<WeakNode>,
    waiting: Mutex<Vec<TransportEvent>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Events {
    fn handle(&self, event: TransportEvent) {
        if !self.ready.load(Ordering::Acquire) {
            let mut waiting = lock(&self.waiting);
            // Checked again under the lock `attach` drains it with.
            if !self.ready.load(Ordering::Acquire) {
                waiting.push(event);
                return;
            }
        }
        if let Some(node) = self.node.get().and_then(WeakNode::upgrade) {
            deliver(&node, event);
        }
    }

    /// The node exists: hands it what waited, then every event as it comes.
    fn attach(&self, node: &Node) {
        let mut waiting = lock(&self.waiting);
        let _ = self.node.set(node.downgrade());
        for event in waiting.drain(..) {
            deliver(node, event);
        }
        self.ready.store(true, Ordering::Release);
    }
}

fn deliver(node: &Node, event: TransportEvent) {
    match event {
        TransportEvent::PeerUp {
            peer,
            cluster,
            link,
        } => {
            tracing::info!(node = %node.id(), %peer, %cluster, "peer connected");
            node.add_link(&peer, link);
        }
        TransportEvent::Frame { peer, frame } => node.on_frame(&peer, &frame),
        TransportEvent::PeerLost { peer, reason } => {
            let down = ExitReason::LinkLost(peer.clone());
            node.peer_lost(&peer, &reason, down)
        }
    }
}

impl Network {
    /// Binds the listener; the events reach the node once [`run_events`]
    /// gives it.
    pub(crate) async fn start(
        node: &NodeId,
        settings: NetSettings,
    ) -> Result<(Network, Arc<Events>), Error> {
        let identity = Identity {
            node: node.clone(),
            cluster: settings.cluster,
            secret: settings.secret,
            app_version: crate::proto::wire::PROTOCOL_VERSION,
        };
        let events = Arc::new(Events::default());
        let sink = Arc::clone(&events);
        let handler: EventHandler = Arc::new(move |event| sink.handle(event));
        let transport = Transport::bind_with(identity, settings.config, &settings.listen, handler)
            .await
            // The transport's errors name what failed (the address, or the identity).
            .map_err(|e| Error::Config(e.to_string()))?;
        for (cluster, secret) in settings.trusted {
            transport.trust_cluster(&cluster, secret);
        }
        let network = Network {
            transport,
            addresses: RwLock::new(HashMap::new()),
            events: Arc::clone(&events),
        };
        Ok((network, events))
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    /// Connects to a node by address (reusing a session if there is one) and
    /// remembers where it listens.
    pub(crate) async fn connect(&self, addr: &str) -> Result<NodeId, Error> {
        let peer = self
            .transport
            .connect(addr)
            .await
            .map_err(|e| Error::Unreachable {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })?;
        self.remember(&peer, addr);
        Ok(peer)
    }

    pub(crate) fn remember(&self, peer: &NodeId, addr: &str) {
        if let Ok(mut addresses) = self.addresses.write() {
            addresses.insert(peer.clone(), addr.to_owned());
        }
    }

    /// Where `peer` can be dialed, if known.
    pub(crate) fn address_of(&self, peer: &NodeId) -> Option<String> {
        self.addresses
            .read()
            .ok()
            .and_then(|a| a.get(peer).cloned())
    }

    pub(crate) fn shutdown(&self) {
        self.transport.shutdown();
        // The node is no longer needed by the transport's tasks.
        lock(&self.events.waiting).clear();
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }
}

/// Gives the node to the transport's event handler: from now on events go
/// straight from the peer tasks into the node.
pub(crate) async fn run_events(node: Node, events: Arc<Events>) {
    events.attach(&node);
}
