//! The TCP transport: authenticated, reliable links between nodes of one
//! cluster or of clusters that trust each other.
//!
//! - `config`: limits, timers and the node's identity;
//! - `budget`: the budget of accepted sockets not yet authenticated;
//! - `refusals`: what was refused before authentication, counted and
//!   summarized in the log;
//! - `handshake`: the handshake's messages and MAC (pure), and the history
//!   of the wire protocol's versions;
//! - `establish`: runs the handshake on a socket, within its timeout;
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
mod peer;
mod refusals;
mod session;
mod transport;

#[cfg(test)]
mod session_tests;

pub use config::{Identity, Secret, TcpConfig};
pub use error::NetError;
pub use refusals::Refusals;
pub use transport::{EventHandler, Transport, TransportEvent};
