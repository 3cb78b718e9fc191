//! The node's TCP side: its transport (listener, authenticated sessions to
//! peers), the events it reports, and the addresses of nodes it can dial.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;

use mobility_net::tcp::{Identity, Secret, TcpConfig, Transport, TransportEvent};
use tokio::sync::mpsc;

use crate::error::Error;
use crate::id::NodeId;
use crate::node::Node;

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
}

impl Network {
    /// Binds the listener; the events are handled by [`run_events`].
    pub(crate) async fn start(
        node: &NodeId,
        settings: NetSettings,
    ) -> Result<(Network, mpsc::UnboundedReceiver<TransportEvent>), Error> {
        let identity = Identity {
            node: node.clone(),
            cluster: settings.cluster,
            secret: settings.secret,
        };
        let (transport, events) = Transport::bind(identity, settings.config, &settings.listen)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", settings.listen)))?;
        for (cluster, secret) in settings.trusted {
            transport.trust_cluster(&cluster, secret);
        }
        let network = Network {
            transport,
            addresses: RwLock::new(HashMap::new()),
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
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }
}

/// Feeds the transport's events to the node until the transport stops.
pub(crate) async fn run_events(node: Node, mut events: mpsc::UnboundedReceiver<TransportEvent>) {
    while let Some(event) = events.recv().await {
        match event {
            TransportEvent::PeerUp {
                peer,
                cluster,
                link,
            } => {
                tracing::info!(node = %node.id(), %peer, %cluster, "peer connected");
                node.add_link(peer, link);
            }
            TransportEvent::Frame { peer, frame } => node.on_frame(&peer, &frame),
            TransportEvent::PeerLost { peer, reason } => node.peer_lost(&peer, &reason),
        }
    }
}
