//! The authenticated UDP transport under chitchat.
//!
//! chitchat's own `UdpTransport` sends its messages as they are: anybody who
//! can reach the gossip port could join the cluster or rewrite its state.
//! This transport seals every datagram with a keyed BLAKE3 tag under a key
//! derived from the cluster secret and the cluster id:
//!
//! ```text
//! [MAGIC][VERSION][timestamp: u64 BE, ms since the UNIX epoch][chitchat payload][tag: 32 bytes]
//! ```
//!
//! The tag covers everything before it. On receipt, nothing is deserialized
//! before the tag is checked; a datagram with a wrong magic or version, a bad
//! tag, a timestamp more than [`MAX_CLOCK_SKEW`] away from the local clock, or
//! a payload chitchat cannot decode is dropped, logged at `debug` and counted.
//!
//! Replays: a captured datagram replayed within the skew window is accepted
//! again. That does no harm: chitchat's messages are idempotent (digests and
//! deltas carry versioned state and heartbeats, which only ever move
//! forward, so applying an old message again changes nothing, and a replayed
//! SYN only makes the receiver send its own, authenticated, state back).
//! Outside the window a replay is refused.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chitchat::transport::{Socket, Transport};
use chitchat::{ChitchatMessage, Deserializable, Serializable};

use crate::Secret;

/// First byte of every gossip datagram.
const MAGIC: u8 = 0x6d; // 'm'
/// Second byte: the version of this datagram format (and of its key
/// derivation).
const VERSION: u8 = 1;
/// The context string of the key derivation.
const KEY_CONTEXT: &str = "mobility gossip v1";
/// Magic, version and timestamp.
const HEADER_LEN: usize = 2 + 8;
/// A full BLAKE3 output: comparing `blake3::Hash`es is constant-time.
const TAG_LEN: usize = blake3::OUT_LEN;
/// Bytes a sealed datagram adds to chitchat's payload.
pub(super) const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// The largest UDP payload over IPv4 (chitchat's `MAX_UDP_DATAGRAM_PAYLOAD_SIZE`).
pub(super) const MAX_DATAGRAM: usize = 65_507;
/// The largest chitchat payload that still fits in one sealed datagram.
pub(super) const MAX_PAYLOAD: usize = MAX_DATAGRAM - OVERHEAD;
/// How far a datagram's timestamp may be from the local clock, either way.
pub(super) const MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);
/// The receive buffer: larger than any valid datagram (IPv6 allows 65,527
/// bytes of payload), so an oversized one is seen whole and refused rather
/// than silently truncated.
const RECV_BUFFER: usize = 65_536;

/// The key that seals gossip datagrams of one cluster.
#[derive(Clone)]
pub(super) struct GossipKey([u8; 32]);

impl GossipKey {
    /// Derives the key from the cluster secret and the cluster id. The
    /// secret's length is part of the input, so that no two (secret, cluster)
    /// pairs give the same key material by concatenation.
    pub(super) fn derive(secret: &Secret, cluster: &str) -> Self {
        let secret = secret.expose();
        let mut material = Vec::with_capacity(8 + secret.len() + cluster.len());
        material.extend_from_slice(&(secret.len() as u64).to_le_bytes());
        material.extend_from_slice(secret);
        material.extend_from_slice(cluster.as_bytes());
        GossipKey(blake3::derive_key(KEY_CONTEXT, &material))
    }

    fn tag(&self, sealed_part: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.0, sealed_part)
    }
}

impl std::fmt::Debug for GossipKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GossipKey(<redacted>)")
    }
}

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Shorter than a header and a tag.
    Truncated,
    /// Not our magic byte or not our version.
    Version,
    /// The tag does not match: wrong secret, wrong cluster or altered bytes.
    Tag,
    /// The timestamp is more than [`MAX_CLOCK_SKEW`] away from now.
    Stale,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Truncated => "truncated datagram",
            Refusal::Version => "unknown magic or version",
            Refusal::Tag => "bad authentication tag",
            Refusal::Stale => "timestamp outside the accepted window",
        })
    }
}

/// Milliseconds since the UNIX epoch (0 if the clock is before it).
pub(super) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Writes the header of a datagram into `out` (cleared first); the caller
/// appends the payload, then calls [`finish_seal`].
fn start_seal(timestamp_ms: u64, out: &mut Vec<u8>) {
    out.clear();
    out.push(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
}

/// Appends the tag over everything already in `out`.
fn finish_seal(key: &GossipKey, out: &mut Vec<u8>) {
    let tag = key.tag(out);
    out.extend_from_slice(tag.as_bytes());
}

/// Seals `payload` into `out` (cleared first).
#[cfg(test)]
pub(super) fn seal(key: &GossipKey, timestamp_ms: u64, payload: &[u8], out: &mut Vec<u8>) {
    start_seal(timestamp_ms, out);
    out.extend_from_slice(payload);
    finish_seal(key, out);
}

/// Checks a datagram and returns its payload. The tag is checked before
/// anything else is read past the version.
pub(super) fn open<'a>(
    key: &GossipKey,
    now_ms: u64,
    datagram: &'a [u8],
) -> Result<&'a [u8], Refusal> {
    if datagram.len() < OVERHEAD {
        return Err(Refusal::Truncated);
    }
    if datagram[0] != MAGIC || datagram[1] != VERSION {
        return Err(Refusal::Version);
    }
    let (sealed_part, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Refusal::Truncated)?;
    // `blake3::Hash`'s equality is constant-time.
    if key.tag(sealed_part) != blake3::Hash::from(tag) {
        return Err(Refusal::Tag);
    }
    let mut timestamp = [0u8; 8];
    timestamp.copy_from_slice(&sealed_part[2..HEADER_LEN]);
    let timestamp_ms = u64::from_be_bytes(timestamp);
    let max_skew = u64::try_from(MAX_CLOCK_SKEW.as_millis()).unwrap_or(u64::MAX);
    if now_ms.abs_diff(timestamp_ms) > max_skew {
        return Err(Refusal::Stale);
    }
    Ok(&sealed_part[HEADER_LEN..])
}

/// Counters shared by the transport and its [`Membership`](super::Membership).
#[derive(Debug, Default)]
pub(super) struct TransportStats {
    /// Datagrams dropped on receipt.
    rejected: AtomicU64,
    /// Per destination: how many messages carrying a delta (SYN-ACK, ACK)
    /// were sent there. `leave` waits on it to know its "leaving" status has
    /// gone out to its peers.
    deltas_sent: Mutex<HashMap<SocketAddr, u64>>,
}

impl TransportStats {
    pub(super) fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    fn reject(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Delta-carrying messages sent to `addr` so far.
    pub(super) fn deltas_sent_to(&self, addr: SocketAddr) -> u64 {
        let sent = self
            .deltas_sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        sent.get(&addr).copied().unwrap_or(0)
    }

    fn delta_sent(&self, addr: SocketAddr) {
        let mut sent = self
            .deltas_sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *sent.entry(addr).or_insert(0) += 1;
    }
}

/// A chitchat [`Transport`] that hands chitchat one already-bound socket,
/// wrapped in [`AuthUdpSocket`]. (Binding before chitchat starts lets
/// [`Membership::start`](super::Membership::start) report a bind failure as
/// what it is.)
pub(super) struct AuthUdpTransport {
    socket: Mutex<Option<tokio::net::UdpSocket>>,
    key: GossipKey,
    stats: Arc<TransportStats>,
}

impl AuthUdpTransport {
    pub(super) fn new(
        socket: tokio::net::UdpSocket,
        key: GossipKey,
        stats: Arc<TransportStats>,
    ) -> Self {
        AuthUdpTransport {
            socket: Mutex::new(Some(socket)),
            key,
            stats,
        }
    }
}

#[async_trait]
impl Transport for AuthUdpTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = self
            .socket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(socket) = socket else {
            anyhow::bail!("the gossip socket for {listen_addr} was already opened");
        };
        Ok(Box::new(AuthUdpSocket::new(
            socket,
            self.key.clone(),
            Arc::clone(&self.stats),
        )))
    }
}

/// One gossip socket: seals what chitchat sends, opens and checks what it
/// receives.
pub(super) struct AuthUdpSocket {
    socket: tokio::net::UdpSocket,
    key: GossipKey,
    stats: Arc<TransportStats>,
    send_buf: Vec<u8>,
    recv_buf: Box<[u8]>,
}

impl AuthUdpSocket {
    pub(super) fn new(
        socket: tokio::net::UdpSocket,
        key: GossipKey,
        stats: Arc<TransportStats>,
    ) -> Self {
        AuthUdpSocket {
            socket,
            key,
            stats,
            send_buf: Vec::with_capacity(MAX_DATAGRAM),
            recv_buf: vec![0u8; RECV_BUFFER].into_boxed_slice(),
        }
    }

    /// Receives one datagram; `None` if it was refused.
    async fn receive_one(&mut self) -> anyhow::Result<Option<(SocketAddr, ChitchatMessage)>> {
        let (len, from) = match self.socket.recv_from(&mut self.recv_buf).await {
            Ok(received) => received,
            Err(err) if is_transient(&err) => {
                tracing::debug!(error = %err, "transient gossip recv error");
                return Ok(None);
            }
            Err(err) => return Err(anyhow::Error::new(err).context("gossip socket recv failed")),
        };
        let datagram = &self.recv_buf[..len];
        if len > MAX_DATAGRAM {
            self.stats.reject();
            tracing::debug!(%from, len, "gossip datagram refused: oversized");
            return Ok(None);
        }
        let payload = match open(&self.key, now_millis(), datagram) {
            Ok(payload) => payload,
            Err(refusal) => {
                self.stats.reject();
                tracing::debug!(%from, len, reason = %refusal, "gossip datagram refused");
                return Ok(None);
            }
        };
        let mut cursor = payload;
        match ChitchatMessage::deserialize(&mut cursor) {
            Ok(message) => Ok(Some((from, message))),
            Err(err) => {
                self.stats.reject();
                tracing::debug!(%from, len, error = %err, "gossip datagram refused: undecodable payload");
                Ok(None)
            }
        }
    }
}

/// Errors after which the socket still works.
fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::OutOfMemory
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[async_trait]
impl Socket for AuthUdpSocket {
    async fn send(&mut self, to: SocketAddr, message: ChitchatMessage) -> anyhow::Result<()> {
        let carries_delta = matches!(
            message,
            ChitchatMessage::SynAck { .. } | ChitchatMessage::Ack { .. }
        );
        start_seal(now_millis(), &mut self.send_buf);
        message.serialize(&mut self.send_buf);
        let payload_len = self.send_buf.len() - HEADER_LEN;
        if payload_len > MAX_PAYLOAD {
            // chitchat sizes its deltas for a bare UDP datagram and knows
            // nothing of our header and tag; such a message cannot be sent.
            tracing::warn!(
                %to,
                payload_len,
                max = MAX_PAYLOAD,
                "gossip message too large for a sealed datagram: dropped"
            );
            return Ok(());
        }
        finish_seal(&self.key, &mut self.send_buf);
        match self.socket.send_to(&self.send_buf, to).await {
            Ok(_) => {
                if carries_delta {
                    self.stats.delta_sent(to);
                }
                Ok(())
            }
            Err(err) if is_transient(&err) => {
                tracing::debug!(%to, error = %err, "transient gossip send error");
                Ok(())
            }
            Err(err) => Err(anyhow::Error::new(err).context(format!("gossip send to {to} failed"))),
        }
    }

    /// Cancel-safe: the only await point is `recv_from`.
    async fn recv(&mut self) -> anyhow::Result<(SocketAddr, ChitchatMessage)> {
        loop {
            if let Some(received) = self.receive_one().await? {
                return Ok(received);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn key() -> GossipKey {
        GossipKey::derive(&Secret::from("s3cret"), "cluster-a")
    }

    fn sealed(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        seal(&key(), NOW, payload, &mut out);
        out
    }

    #[test]
    fn round_trip() {
        let datagram = sealed(b"hello gossip");
        assert_eq!(datagram.len(), OVERHEAD + 12);
        assert_eq!(open(&key(), NOW, &datagram), Ok(&b"hello gossip"[..]));
        let empty = sealed(b"");
        assert_eq!(open(&key(), NOW, &empty), Ok(&b""[..]));
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        let datagram = sealed(b"payload bytes");
        for index in 0..datagram.len() {
            for bit in 0..8 {
                let mut tampered = datagram.clone();
                tampered[index] ^= 1 << bit;
                let expected = if index < 2 {
                    Refusal::Version
                } else {
                    Refusal::Tag
                };
                assert_eq!(
                    open(&key(), NOW, &tampered),
                    Err(expected),
                    "byte {index} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn each_part_tampered_is_refused() {
        let datagram = sealed(b"payload bytes");
        // Magic, version.
        let mut bad = datagram.clone();
        bad[0] = b'x';
        assert_eq!(open(&key(), NOW, &bad), Err(Refusal::Version));
        let mut bad = datagram.clone();
        bad[1] = VERSION + 1;
        assert_eq!(open(&key(), NOW, &bad), Err(Refusal::Version));
        // Timestamp rewritten to a fresh one: the tag no longer matches.
        let mut bad = datagram.clone();
        bad[2..10].copy_from_slice(&(NOW + 1).to_be_bytes());
        assert_eq!(open(&key(), NOW, &bad), Err(Refusal::Tag));
        // Payload.
        let mut bad = datagram.clone();
        bad[HEADER_LEN] ^= 0xff;
        assert_eq!(open(&key(), NOW, &bad), Err(Refusal::Tag));
        // Tag.
        let mut bad = datagram.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x01;
        assert_eq!(open(&key(), NOW, &bad), Err(Refusal::Tag));
        // A byte appended or a payload byte removed.
        let mut bad = datagram.clone();
        bad.push(0);
        assert_eq!(open(&key(), NOW, &bad), Err(Refusal::Tag));
        let mut bad = datagram;
        bad.remove(HEADER_LEN);
        assert_eq!(open(&key(), NOW, &bad), Err(Refusal::Tag));
    }

    #[test]
    fn wrong_secret_or_cluster_is_refused() {
        let datagram = sealed(b"payload");
        let wrong_secret = GossipKey::derive(&Secret::from("other"), "cluster-a");
        assert_eq!(open(&wrong_secret, NOW, &datagram), Err(Refusal::Tag));
        let wrong_cluster = GossipKey::derive(&Secret::from("s3cret"), "cluster-b");
        assert_eq!(open(&wrong_cluster, NOW, &datagram), Err(Refusal::Tag));
        // Moving bytes between the secret and the cluster id changes the key.
        let shifted = GossipKey::derive(&Secret::from("s3cretc"), "luster-a");
        assert_eq!(open(&shifted, NOW, &datagram), Err(Refusal::Tag));
    }

    #[test]
    fn stale_or_future_timestamps_are_refused() {
        let skew = u64::try_from(MAX_CLOCK_SKEW.as_millis()).unwrap();
        let datagram = sealed(b"payload");
        assert!(open(&key(), NOW + skew, &datagram).is_ok());
        assert!(open(&key(), NOW - skew, &datagram).is_ok());
        assert_eq!(open(&key(), NOW + skew + 1, &datagram), Err(Refusal::Stale));
        assert_eq!(open(&key(), NOW - skew - 1, &datagram), Err(Refusal::Stale));
        assert_eq!(open(&key(), 0, &datagram), Err(Refusal::Stale));
        assert_eq!(open(&key(), u64::MAX, &datagram), Err(Refusal::Stale));
    }

    #[test]
    fn truncated_datagrams_are_refused() {
        let datagram = sealed(b"payload");
        for len in 0..OVERHEAD {
            assert_eq!(
                open(&key(), NOW, &datagram[..len]),
                Err(Refusal::Truncated),
                "len {len}"
            );
        }
        for len in OVERHEAD..datagram.len() {
            assert_eq!(
                open(&key(), NOW, &datagram[..len]),
                Err(Refusal::Tag),
                "len {len}"
            );
        }
    }

    fn syn(cluster_id: String) -> ChitchatMessage {
        ChitchatMessage::Syn {
            cluster_id,
            digest: Default::default(),
        }
    }

    async fn socket_pair() -> (AuthUdpSocket, AuthUdpSocket, Arc<TransportStats>) {
        let a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let stats_b = Arc::new(TransportStats::default());
        (
            AuthUdpSocket::new(a, key(), Arc::new(TransportStats::default())),
            AuthUdpSocket::new(b, key(), Arc::clone(&stats_b)),
            stats_b,
        )
    }

    #[tokio::test]
    async fn socket_drops_bad_datagrams_and_delivers_good_ones() {
        let (mut a, mut b, stats_b) = socket_pair().await;
        let a_addr = a.socket.local_addr().unwrap();
        let b_addr = b.socket.local_addr().unwrap();
        let raw = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();

        // Garbage, a bare chitchat message, a sealed non-chitchat payload,
        // a datagram sealed for another cluster.
        raw.send_to(b"junk", b_addr).await.unwrap();
        let mut bare = Vec::new();
        syn("cluster-a".into()).serialize(&mut bare);
        raw.send_to(&bare, b_addr).await.unwrap();
        let mut sealed_junk = Vec::new();
        seal(&key(), now_millis(), b"not chitchat", &mut sealed_junk);
        raw.send_to(&sealed_junk, b_addr).await.unwrap();
        let mut other_cluster = Vec::new();
        let other_key = GossipKey::derive(&Secret::from("s3cret"), "cluster-b");
        seal(&other_key, now_millis(), &bare, &mut other_cluster);
        raw.send_to(&other_cluster, b_addr).await.unwrap();

        a.send(b_addr, syn("cluster-a".into())).await.unwrap();
        let (from, message) = tokio::time::timeout(Duration::from_secs(10), b.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, a_addr);
        assert_eq!(message, syn("cluster-a".into()));
        assert_eq!(stats_b.rejected(), 4);
    }

    #[tokio::test]
    async fn oversized_messages_are_dropped_not_sent() {
        let (mut a, mut b, stats_b) = socket_pair().await;
        let b_addr = b.socket.local_addr().unwrap();
        // Fits chitchat's limit, not ours once sealed.
        a.send(b_addr, syn("x".repeat(MAX_PAYLOAD))).await.unwrap();
        a.send(b_addr, syn("small".into())).await.unwrap();
        let (_, message) = tokio::time::timeout(Duration::from_secs(10), b.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(message, syn("small".into()));
        assert_eq!(stats_b.rejected(), 0);
    }

    #[tokio::test]
    async fn deltas_sent_are_counted_per_destination() {
        let (mut a, b, _) = socket_pair().await;
        let b_addr = b.socket.local_addr().unwrap();
        a.send(b_addr, ChitchatMessage::BadCluster).await.unwrap();
        assert_eq!(a.stats.deltas_sent_to(b_addr), 0);
        a.send(
            b_addr,
            ChitchatMessage::Ack {
                delta: Default::default(),
            },
        )
        .await
        .unwrap();
        assert_eq!(a.stats.deltas_sent_to(b_addr), 1);
    }
}
