//! What can go wrong when binding, dialing or authenticating.

use super::handshake::RefusalReason;

/// An operation of the TCP transport failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// This node's identity settings do not hold together (a certificate
    /// for another node, cluster or key, not signed by the cluster's
    /// authority, expired...).
    #[error("the identity of {node} is not usable: {reason}")]
    Identity {
        /// This node's id.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// The peer's address could not be reached.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address dialed.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The socket was reached but the handshake failed (version, cluster,
    /// authentication, timeout...).
    #[error("handshake with {addr} failed: {reason}")]
    Handshake {
        /// The address of the other side.
        addr: String,
        /// Why.
        reason: String,
    },
    /// This node's own limit: `max_connections` links (authenticated
    /// sockets and dials in progress) are already open, so it dials no
    /// more. Unauthenticated inbound sockets never count here.
    #[error("this node has too many links open ({max}, its TcpConfig::max_connections)")]
    TooManyConnections {
        /// This node's limit.
        max: usize,
    },
    /// The node at `addr` refused the connection for one of its own
    /// limits (it said which, before authenticating): it is busy, not
    /// broken, and may take the connection later. `Transport::connect`
    /// tries again until its handshake timeout before returning this.
    #[error("{addr} is busy: that node refused the connection for its own limit ({limit})")]
    Busy {
        /// The address dialed.
        addr: String,
        /// The limit that node named.
        limit: String,
    },
    /// The node at `addr` refused this node before any key was used, for
    /// the reason it named: it does not trust this node's cluster, or
    /// refuses its node id. (Refused after the Noise handshake, for a
    /// wrong secret or certificate, is [`NetError::Handshake`].)
    #[error("{addr} refused the connection: {reason}")]
    Refused {
        /// The address dialed.
        addr: String,
        /// Why, as that node said.
        reason: RefusalReason,
    },
    /// The peer was authenticated but its session could not be set up.
    #[error("session with {peer} failed: {reason}")]
    Session {
        /// The peer's node id.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The transport was shut down.
    #[error("the transport is shut down")]
    Shutdown,
}
