//! The TCP transport: authenticated, encrypted, reliable links between
//! nodes of one cluster or of clusters that trust each other.
//!
//! Every link is a Noise handshake (`Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s`,
//! through the `snow` crate) with each node's own static key, keyed by
//! the cluster's secret too and bound to both nodes' `Hello`s, in which
//! each side shows a certificate of its cluster's authority binding its
//! node id to its static key; then ChaCha20-Poly1305 on every byte, under
//! keys from fresh X25519 key pairs: forward secrecy, per-node
//! identities, and with a secret alone nothing else to configure (why
//! Noise and this pattern: see `noise`).
//!
//! - `config`: limits, timers and the node's identity;
//! - `cert`: static keys, cluster authorities, certificates (pure);
//! - `credentials`: the identity a node proves and whom it trusts, read
//!   from the environment or files, and the checks of a peer's
//!   certificate;
//! - `budget`: the budget of accepted sockets not yet authenticated;
//! - `refusals`: what was refused before authentication, counted and
//!   summarized in the log;
//! - `handshake`: the handshake's cleartext messages (pure), and the
//!   history of the wire protocol's versions;
//! - `noise`: the Noise handshake that authenticates a link and keys its
//!   encryption (pure);
//! - `establish`: runs the handshake on a socket, within its timeout;
//! - `record`: the encrypted stream of an established socket (Noise
//!   transport messages of at most 64 KiB);
//! - `frame`: length-prefixed framing and the session frames;
//! - `session`: reliable delivery across sockets (pure state machine);
//! - `connection`: one socket's framing and non-blocking writes;
//! - `peer`: one task per peer, owning its session and its socket,
//!   reconnecting;
//! - `accept`: the listener;
//! - `transport`: connector, peer table.

mod accept;
mod budget;
mod cert;
mod config;
mod connection;
mod credentials;
mod error;
pub(crate) mod establish;
pub(crate) mod frame;
pub mod handshake;
pub mod noise;
mod peer;
pub(crate) mod record;
mod refusals;
pub(crate) mod session;
mod transport;

#[cfg(test)]
mod session_tests;

pub use cert::{AuthorityKey, Certificate, ClusterAuthority, IdentityError, NodeKey};
pub use config::{Identity, Secret, TcpConfig};
pub use credentials::{
    mint, parse_trusted_clusters, Credentials, TrustedCluster, ENV_CLUSTER_AUTHORITY,
    ENV_NODE_CERT, ENV_NODE_KEY, ENV_TRUSTED_CLUSTERS,
};
pub use error::NetError;
pub use handshake::RefusalReason;
pub use refusals::Refusals;
pub use transport::{EventHandler, Transport, TransportEvent};
