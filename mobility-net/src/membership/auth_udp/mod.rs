//! The encrypted UDP transport under chitchat, with replay protection.
//!
//! chitchat's own `UdpTransport` sends its messages as they are: anybody who
//! can reach the gossip port could read the cluster's state (actor names,
//! addresses, the directory), join the cluster or rewrite that state. This
//! transport encrypts and authenticates every datagram with
//! XChaCha20-Poly1305 under a key derived from the cluster secret and the
//! cluster id (layout in `seal`): only a magic byte, a version byte and a
//! nonce are in clear, and nothing is deserialized before the AEAD check.
//!
//! # Replays
//!
//! No clock is read. Every datagram carries, encrypted:
//! - the sender's gossip address, its *incarnation* (its start generation,
//!   which grows across its restarts) and a *counter* that grows with every
//!   datagram it sends;
//! - the sender's *token*, a random 64-bit value drawn at start, and the
//!   *echo*: the receiver's token as the sender last learned it.
//!
//! A receiver accepts a datagram only if
//! 1. its echo is the receiver's current token: the datagram was written
//!    after its sender heard from this very run of the receiver, so nothing
//!    recorded before the receiver (re)started can pass; and
//! 2. its (incarnation, counter) is new for that sender: the receiver keeps,
//!    per sender address, the newest incarnation and a window of the last
//!    960 counters (RFC 6479's bitmap, as WireGuard keeps it). A counter seen
//!    already, older than the window, or older than the first counter
//!    accepted from that incarnation is a replay; so is anything of an older
//!    incarnation once a newer one was accepted (the sender restarted).
//!
//! Replays are dropped without any answer, counted and logged at `debug`.
//!
//! The echo is how a receiver without a window (just started, or meeting a
//! sender for the first time) stays safe: it accepts nothing it cannot prove
//! fresh. A datagram that authenticates but echoes another token (0 when the
//! sender does not know the receiver yet, or the token of the receiver's
//! previous run) is not delivered; instead the receiver sends a *probe*,
//! carrying its token, to the gossip address written inside the datagram
//! (never to the address it came from), at most once per 100 ms per address.
//! The genuine sender learns the token and its next gossip round gets
//! through. Someone replaying recorded datagrams therefore never gets a
//! datagram back; at most the genuine sender gets probes, which it accepts
//! only if they echo its own current token and are new by the same window
//! rules, and which are never answered.
//!
//! Memory is bounded: only datagrams that passed the AEAD check create
//! state, for at most 1024 sender addresses (and 1024 remembered tokens),
//! least recently used out first. Dropping a sender's window would let its
//! past datagrams in again, so the receiver then draws a new token: every
//! peer's echo goes stale at once and each is probed again (a rare
//! disruption of one gossip round, in clusters of more than 1024 nodes).
//!
//! Limits: the key is shared by the cluster, so a member can write
//! datagrams in the name of any address. Incarnations are start times, so a
//! node whose clock stepped back across its own restart by more than its
//! downtime is refused by peers that remember its previous run, until they
//! restart (the clocks of different nodes need not agree).
//!
//! - `seal`: the key, the datagram layout, sealing and opening;
//! - `replay`: the windows, the bounded tables, the probe rate limit.

pub(crate) mod replay;
pub(crate) mod seal;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use chitchat::transport::{Socket, Transport};
use chitchat::{ChitchatMessage, Deserializable, Serializable};

use replay::{Accepted, Bounded, ProbeLimiter, Replay, Senders, MAX_SENDERS};
pub(super) use seal::GossipKey;
use seal::{Header, Kind, MAX_DATAGRAM, MAX_PAYLOAD, SALT_LEN};

/// The receive buffer: larger than any valid datagram (IPv6 allows 65,527
/// bytes of payload), so an oversized one is seen whole and refused rather
/// than silently truncated.
const RECV_BUFFER: usize = 65_536;

/// Who this socket speaks as.
#[derive(Debug, Clone, Copy)]
pub(super) struct Identity {
    /// The gossip address this node advertises.
    pub(super) addr: SocketAddr,
    /// This run's start generation: larger after every restart.
    pub(super) incarnation: u64,
}

/// Counters shared by the transport and its [`Membership`](super::Membership).
#[derive(Debug, Default)]
pub(super) struct TransportStats {
    /// Datagrams dropped on receipt as malformed, unauthenticated,
    /// oversized, undecodable or replayed.
    rejected: AtomicU64,
    /// Of those, the replays.
    replayed: AtomicU64,
    /// Authenticated datagrams not delivered because they did not echo this
    /// run's token (not counted in `rejected`: every first contact has one).
    unverified: AtomicU64,
    /// Probes sent.
    probes_sent: AtomicU64,
    /// Bytes of datagrams sent and received (UDP payloads, as sealed).
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    /// Per destination: how many messages carrying a delta (SYN-ACK, ACK)
    /// were sent there. `leave` waits on it to know its "leaving" status has
    /// gone out to its peers.
    deltas_sent: Mutex<HashMap<SocketAddr, u64>>,
}

impl TransportStats {
    pub(super) fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    pub(super) fn replayed(&self) -> u64 {
        self.replayed.load(Ordering::Relaxed)
    }

    pub(super) fn unverified(&self) -> u64 {
        self.unverified.load(Ordering::Relaxed)
    }

    pub(super) fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    pub(super) fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    fn probes_sent(&self) -> u64 {
        self.probes_sent.load(Ordering::Relaxed)
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
    identity: Identity,
    stats: Arc<TransportStats>,
}

impl AuthUdpTransport {
    pub(super) fn new(
        socket: tokio::net::UdpSocket,
        key: GossipKey,
        identity: Identity,
        stats: Arc<TransportStats>,
    ) -> Self {
        AuthUdpTransport {
            socket: Mutex::new(Some(socket)),
            key,
            identity,
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
            self.identity,
            Arc::clone(&self.stats),
        )?))
    }
}

/// Random bytes from the OS.
fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|err| anyhow::anyhow!("no randomness for the gossip socket: {err}"))?;
    Ok(bytes)
}

/// A random token; never 0 (the echo of a sender that knows no token).
fn new_token() -> anyhow::Result<u64> {
    loop {
        let token = u64::from_le_bytes(random()?);
        if token != 0 {
            return Ok(token);
        }
    }
}

/// One gossip socket: seals what chitchat sends, opens and checks what it
/// receives.
pub(super) struct AuthUdpSocket {
    socket: tokio::net::UdpSocket,
    key: GossipKey,
    identity: Identity,
    stats: Arc<TransportStats>,
    /// The first part of every nonce of this socket.
    salt: [u8; SALT_LEN],
    /// The last datagram counter used (the first datagram is 1).
    counter: u64,
    /// This run's token, which every accepted datagram echoes.
    token: u64,
    /// Replay state per sender address.
    senders: Senders,
    /// The token of each peer, by every address it was seen at or reached by.
    tokens: Bounded<SocketAddr, u64>,
    probes: ProbeLimiter,
    send_buf: Vec<u8>,
    recv_buf: Box<[u8]>,
}

impl AuthUdpSocket {
    pub(super) fn new(
        socket: tokio::net::UdpSocket,
        key: GossipKey,
        identity: Identity,
        stats: Arc<TransportStats>,
    ) -> anyhow::Result<Self> {
        Ok(AuthUdpSocket {
            socket,
            key,
            identity,
            stats,
            salt: random()?,
            counter: 0,
            token: new_token()?,
            senders: Senders::new(MAX_SENDERS),
            tokens: Bounded::new(MAX_SENDERS),
            probes: ProbeLimiter::new(MAX_SENDERS),
            send_buf: Vec::with_capacity(MAX_DATAGRAM),
            recv_buf: vec![0u8; RECV_BUFFER].into_boxed_slice(),
        })
    }

    /// The header of the next datagram.
    fn next_header(&mut self, kind: Kind, via: SocketAddr, echo: u64) -> Header {
        self.counter += 1;
        Header {
            kind,
            sender: self.identity.addr,
            via,
            incarnation: self.identity.incarnation,
            counter: self.counter,
            token: self.token,
            echo,
        }
    }

    /// Tells the sender of `refused` (at the address it advertises, not the
    /// one the datagram came from) this run's token. Never waits: a probe
    /// that cannot go out at once is dropped.
    fn probe(&mut self, refused: &Header) {
        if !self.probes.allow(refused.sender, Instant::now()) {
            return;
        }
        let header = self.next_header(Kind::Probe, refused.via, refused.token);
        seal::start_seal(
            &seal::nonce(&self.salt, header.counter),
            &header,
            &mut self.send_buf,
        );
        seal::finish_seal(&self.key, &mut self.send_buf);
        match self.socket.try_send_to(&self.send_buf, refused.sender) {
            Ok(sent) => {
                self.stats.probes_sent.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .bytes_sent
                    .fetch_add(sent as u64, Ordering::Relaxed);
            }
            Err(err) => {
                tracing::debug!(to = %refused.sender, error = %err, "gossip probe not sent")
            }
        }
    }

    /// Seals `message` for `to` into `send_buf`; `None` (with a warning) if
    /// it does not fit in a datagram.
    fn seal_message(&mut self, to: SocketAddr, message: &ChitchatMessage) -> Option<()> {
        let echo = self.tokens.get(&to).copied().unwrap_or(0);
        let header = self.next_header(Kind::Gossip, to, echo);
        seal::start_seal(
            &seal::nonce(&self.salt, header.counter),
            &header,
            &mut self.send_buf,
        );
        let header_end = self.send_buf.len();
        message.serialize(&mut self.send_buf);
        let payload_len = self.send_buf.len() - header_end;
        if payload_len > MAX_PAYLOAD {
            // chitchat sizes its deltas for a bare UDP datagram and knows
            // nothing of our header and tag; such a message cannot be sent.
            tracing::warn!(
                %to,
                payload_len,
                max = MAX_PAYLOAD,
                "gossip message too large for a sealed datagram: dropped"
            );
            return None;
        }
        seal::finish_seal(&self.key, &mut self.send_buf);
        Some(())
    }

    /// Records a refused datagram.
    fn refuse(&self, from: SocketAddr, len: usize, reason: &dyn std::fmt::Display) {
        self.stats.reject();
        tracing::debug!(%from, len, %reason, "gossip datagram refused");
    }

    /// Receives one datagram; `None` if it was refused (or was a probe).
    async fn receive_one(&mut self) -> anyhow::Result<Option<(SocketAddr, ChitchatMessage)>> {
        let (len, from) = match self.socket.recv_from(&mut self.recv_buf).await {
            Ok(received) => received,
            Err(err) if is_transient(&err) => {
                tracing::debug!(error = %err, "transient gossip recv error");
                return Ok(None);
            }
            Err(err) => return Err(anyhow::Error::new(err).context("gossip socket recv failed")),
        };
        self.stats
            .bytes_received
            .fetch_add(len as u64, Ordering::Relaxed);
        if len > MAX_DATAGRAM {
            self.refuse(from, len, &"oversized");
            return Ok(None);
        }
        let (header, payload_range) = match seal::open(&self.key, &mut self.recv_buf[..len]) {
            Ok((header, payload)) => (header, payload.len()),
            Err(refusal) => {
                self.refuse(from, len, &refusal);
                return Ok(None);
            }
        };
        if header.echo != self.token {
            self.stats.unverified.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                %from,
                sender = %header.sender,
                kind = ?header.kind,
                "gossip datagram not delivered: it does not echo this run's token (probing its sender)"
            );
            // A probe never answers a probe: no loops.
            if header.kind == Kind::Gossip && header.sender != self.identity.addr {
                self.probe(&header);
            }
            return Ok(None);
        }
        let verdict = if header.sender == self.identity.addr {
            Err(Replay::Reflected)
        } else {
            self.senders
                .accept(header.sender, header.incarnation, header.counter)
        };
        match verdict {
            Err(replay) => {
                self.stats.replayed.fetch_add(1, Ordering::Relaxed);
                self.refuse(from, len, &replay);
                return Ok(None);
            }
            Ok(Accepted::Evicted) => {
                // A forgotten sender's past datagrams echo the old token.
                self.token = new_token()?;
                tracing::debug!(
                    senders = self.senders.len(),
                    "gossip replay state full: least recently heard sender dropped, new token"
                );
            }
            Ok(Accepted::Fresh) => {}
        }
        self.tokens.insert(header.sender, header.token);
        self.tokens.insert(from, header.token);
        if header.kind == Kind::Probe {
            // The address this peer was reached by (a seed's, a proxy's).
            self.tokens.insert(header.via, header.token);
            return Ok(None);
        }
        let start = len - seal::TAG_LEN - payload_range;
        let mut cursor = &self.recv_buf[start..start + payload_range];
        match ChitchatMessage::deserialize(&mut cursor) {
            Ok(message) => Ok(Some((from, message))),
            Err(err) => {
                self.refuse(from, len, &format_args!("undecodable payload: {err}"));
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
        if self.seal_message(to, &message).is_none() {
            return Ok(());
        }
        match self.socket.send_to(&self.send_buf, to).await {
            Ok(sent) => {
                self.stats
                    .bytes_sent
                    .fetch_add(sent as u64, Ordering::Relaxed);
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

    /// Cancel-safe: the only await point is `recv_from` (probes are sent
    /// without waiting).
    async fn recv(&mut self) -> anyhow::Result<(SocketAddr, ChitchatMessage)> {
        loop {
            if let Some(received) = self.receive_one().await? {
                return Ok(received);
            }
        }
    }
}

#[cfg(test)]
mod tests;
