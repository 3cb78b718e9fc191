//! Settings of the TCP transport and the identity a node proves to its peers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::cert::AuthorityKey;
use super::credentials::{Credentials, TrustedCluster};
use crate::NodeId;

/// Limits, timers and node identity of the TCP transport. `Default` gives
/// values fit for a cluster on a LAN, with identities derived from the
/// cluster's secret; every field can be changed before `Transport::bind`
/// (the identity also from the environment:
/// [`TcpConfig::with_identity_from_env`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Largest frame accepted after authentication, in bytes (default 8 MiB).
    /// A bigger message is cut into chunks by the session.
    pub max_frame: usize,
    /// Largest message accepted once its chunks are put back together, in
    /// bytes (default 1 GiB).
    pub max_message: usize,
    /// Time a new socket has to complete the handshake (default 5 s): an
    /// accepted socket that has not authenticated by then is closed,
    /// whether it sent nothing, a little, or a whole `Hello`.
    pub handshake_timeout: Duration,
    /// Most links open at once (default 256): authenticated sockets,
    /// inbound and outbound, and this node's own dials still in their
    /// handshake. Accepted sockets not yet authenticated never count here
    /// (see `max_unauthenticated`), so they cannot keep this node from
    /// dialing or from keeping its links.
    pub max_connections: usize,
    /// Most accepted sockets still in their handshake at once (default
    /// 64). When they are all taken, a newcomer takes the place of the
    /// oldest one that sent no valid `Hello` yet from the address holding
    /// the most, or is closed at once.
    pub max_unauthenticated: usize,
    /// Most accepted sockets still in their handshake at once from one
    /// address (default 8): an IPv4 address, or an IPv6 /64 prefix.
    pub max_unauthenticated_per_address: usize,
    /// A socket on which nothing arrives for this long is dropped and the
    /// session reconnects (default 30 s). A ping goes out every third of it.
    pub idle_timeout: Duration,
    /// How long to keep trying to reach a lost peer before reporting it lost
    /// (default 30 s).
    pub reconnect_for: Duration,
    /// This node's static key and the certificate binding its node id to
    /// it, signed by its cluster's authority (default `None`: a key is
    /// generated at start and certified by an authority derived from the
    /// cluster's secret, so any holder of the secret can mint identities).
    pub credentials: Option<Credentials>,
    /// Who may join this node's cluster: peers claiming its cluster must
    /// show a certificate signed by this authority (default `None`: the
    /// issuer of `credentials`' certificate, or without credentials the
    /// authority derived from the cluster's secret).
    pub cluster_authority: Option<AuthorityKey>,
    /// Other clusters trusted for links across clusters (migrations), by
    /// their authority's key (default none). Trust by a shared secret
    /// instead is `Transport::trust_cluster`.
    pub trusted_clusters: Vec<TrustedCluster>,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_frame: 8 << 20,
            max_message: 1 << 30,
            handshake_timeout: Duration::from_secs(5),
            max_connections: 256,
            max_unauthenticated: 64,
            max_unauthenticated_per_address: 8,
            idle_timeout: Duration::from_secs(30),
            reconnect_for: Duration::from_secs(30),
            credentials: None,
            cluster_authority: None,
            trusted_clusters: Vec::new(),
        }
    }
}

impl TcpConfig {
    /// Smallest `max_frame` the transport accepts (and asks of its peers).
    pub const MIN_FRAME: usize = 4096;

    /// The same settings with each value clamped into the range the
    /// transport can work with.
    pub(crate) fn sanitized(mut self) -> Self {
        self.max_frame = self.max_frame.clamp(Self::MIN_FRAME, u32::MAX as usize);
        self.max_message = self.max_message.max(1);
        self.max_connections = self.max_connections.max(1);
        self.max_unauthenticated = self.max_unauthenticated.max(1);
        self.max_unauthenticated_per_address = self.max_unauthenticated_per_address.max(1);
        self.handshake_timeout = self.handshake_timeout.max(Duration::from_millis(1));
        self.idle_timeout = self.idle_timeout.max(Duration::from_millis(30));
        self
    }
}

/// A shared secret: the Noise handshake's pre-shared key comes from it
/// (and, without a configured authority, node identities). `Debug` never
/// prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    /// Wraps the bytes of a secret.
    pub fn new(bytes: impl AsRef<[u8]>) -> Self {
        Secret(Arc::from(bytes.as_ref()))
    }

    /// The key bytes.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Secret::new(text)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Secret::new(text)
    }
}

impl From<&[u8]> for Secret {
    fn from(bytes: &[u8]) -> Self {
        Secret::new(bytes)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Who this node is: its id, its cluster and the cluster's secret.
#[derive(Debug, Clone)]
pub struct Identity {
    /// This node's id, unique among every node it talks to.
    pub node: NodeId,
    /// The id of this node's cluster.
    pub cluster: String,
    /// The secret shared by every node of the cluster: the pre-shared key
    /// of its links' Noise handshakes, and without a configured cluster
    /// authority (`TcpConfig::cluster_authority`) the seed of the
    /// authority that certifies its nodes.
    pub secret: Secret,
    /// The version of the protocol this node's runtime speaks over its
    /// links: a peer whose runtime speaks another is refused at the
    /// handshake, with both versions named (0 for the transport alone).
    pub app_version: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let text = format!("{:?}", Secret::from("hunter2"));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
