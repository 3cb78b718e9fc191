//! The TCP transport: authenticated, encrypted, reliable links between
//! nodes of one cluster or of clusters that trust each other.
//!
//! Every link is a Noise handshake (`Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`,
//! through the `snow` crate) keyed by the cluster's secret and bound to
//! both nodes' `Hello`s, then ChaCha20-Poly1305 on every byte, under keys
//! from fresh X25519 key pairs: forward secrecy, no certificates, nothing
//! to configure but the secret (why Noise: see `noise`).
//!
//! - `config`: limits, timers and the node's identity;
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
mod config;
mod connection;
mod error;
mod establish;
mod frame;
pub mod handshake;
pub mod noise;
mod peer;
mod record;
mod refusals;
mod session;
mod transport;

#[cfg(test)]
mod session_tests;

pub use config::{Identity, Secret, TcpConfig};
pub use error::NetError;
pub use refusals::Refusals;
pub use transport::{EventHandler, Transport, TransportEvent};
