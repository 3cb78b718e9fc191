//! Identities: actors, nodes, and where an actor can be sent.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

pub use mobility_net::NodeId;

/// Globally unique id of an actor; it never changes, whatever the moves.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActorId(u128);

impl ActorId {
    /// A fresh id: 64 random bits of this process and a 64-bit counter.
    pub(crate) fn fresh() -> Self {
        ActorId((u128::from(process_salt()) << 64) | u128::from(next_counter()))
    }

    /// The id as a number.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// The id from its number (as `as_u128` gave it).
    pub(crate) fn from_u128(value: u128) -> Self {
        ActorId(value)
    }

    /// Reads the text `Display` gives back (`<hex>.<hex>`).
    pub(crate) fn parse(text: &str) -> Option<ActorId> {
        let (high, low) = text.split_once('.')?;
        let high = u64::from_str_radix(high, 16).ok()?;
        let low = u64::from_str_radix(low, 16).ok()?;
        Some(ActorId((u128::from(high) << 64) | u128::from(low)))
    }
}

/// A fresh random 64-bit value (stream ids, process salt).
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No OS randomness: fall back to the clock, still unique per process.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return now ^ u64::from(std::process::id()).rotate_left(32) ^ next_counter();
    }
    u64::from_le_bytes(bytes)
}

/// A 64-bit value unique in this process and unpredictable across
/// processes: the process salt and a counter, mixed by a bijection. As
/// unlikely to collide with another process's as `random_u64`, without its
/// system call (one per spawn otherwise).
pub(crate) fn unique_u64() -> u64 {
    // splitmix64: `salt + n * odd` and the finalizer are both bijections.
    let mut z = process_salt().wrapping_add(next_counter().wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn process_salt() -> u64 {
    static SALT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SALT.get_or_init(random_u64)
}

fn next_counter() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}.{:x}", (self.0 >> 64) as u64, self.0 as u64)
    }
}

impl fmt::Debug for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorId({self})")
    }
}

/// Where to send an actor: a node of this cluster by id, or a node of
/// another cluster by TCP address (`tcp://host:port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Destination {
    /// A node this node is linked to, by id.
    Node(NodeId),
    /// A node of another cluster, by address.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// TCP port.
        port: u16,
    },
}

impl Destination {
    /// A node by id.
    pub fn node(id: NodeId) -> Self {
        Destination::Node(id)
    }
}

impl From<NodeId> for Destination {
    fn from(id: NodeId) -> Self {
        Destination::Node(id)
    }
}

impl From<&NodeId> for Destination {
    fn from(id: &NodeId) -> Self {
        Destination::Node(id.clone())
    }
}

/// Why a text is not a destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid destination {text:?}: {reason} (expected a node id like `node-b` or `tcp://host:port`)")]
pub struct ParseDestinationError {
    /// The rejected text.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Destination {
    type Err = ParseDestinationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| ParseDestinationError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = text.strip_prefix("tcp://") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| fail("missing `:port`"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(fail("missing host"));
            }
            let port: u16 = port
                .parse()
                .map_err(|_| fail("port is not a number from 1 to 65535"))?;
            if port == 0 {
                return Err(fail("port 0 is not a destination"));
            }
            return Ok(Destination::Tcp {
                host: host.to_owned(),
                port,
            });
        }
        if text.contains("://") {
            return Err(fail("unknown scheme; only tcp:// is supported"));
        }
        NodeId::new(text)
            .map(Destination::Node)
            .map_err(|e| fail(&e.to_string()))
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Node(id) => write!(f, "{id}"),
            Destination::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            Destination::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_values_do_not_repeat() {
        let values: std::collections::HashSet<u64> = (0..10_000).map(|_| unique_u64()).collect();
        assert_eq!(values.len(), 10_000);
    }

    #[test]
    fn destinations_parse_and_print() {
        for text in [
            "node-b",
            "tcp://10.0.0.7:1806",
            "tcp://localhost:1",
            "tcp://[::1]:80",
        ] {
            let dest: Destination = text.parse().expect(text);
            assert_eq!(dest.to_string(), text);
        }
        for bad in [
            "",
            "tcp://host",
            "tcp://:80",
            "tcp://h:0",
            "tcp://h:99999",
            "udp://h:1",
            "a b",
        ] {
            assert!(
                bad.parse::<Destination>().is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn actor_ids_are_unique() {
        let a = ActorId::fresh();
        let b = ActorId::fresh();
        assert_ne!(a, b);
        assert_eq!(a.as_u128() >> 64, b.as_u128() >> 64, "same process salt");
    }
}

/// The node's current idea of where the actor lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) node: NodeId,
    pub(crate) epoch: u64,
}
