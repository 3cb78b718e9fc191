//! What can go wrong when binding, dialing or authenticating.

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
    /// `max_connections` sockets are already open.
    #[error("too many connections ({max} open)")]
    TooManyConnections {
        /// The configured limit.
        max: usize,
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
