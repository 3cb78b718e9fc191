//! The handshake's messages and its proof of identity; pure, no I/O.
//!
//! Each side sends a [`Hello`], then an [`Auth`] whose MAC binds the proof to
//! both nonces, both node ids, both clusters, both incarnations, the protocol
//! version and the role of the sender (see [`compute_mac`]). Nothing else is
//! decoded before both MACs are verified. The same inputs, under another
//! label, give each direction of the socket its own key (see
//! [`frame_key`]) for the tag every later frame carries.
//!
//! # Wire protocol versions
//!
//! Every connection starts with a `Hello` carrying `magic` and `version`;
//! they are read (with every other field ignored) before the rest of the
//! `Hello` is decoded, so a node can always tell a peer why it is refused.
//! The history of [`PROTOCOL_VERSION`], newest last:
//!
//! - **1**: frames are a u32 big-endian length and a payload (at most
//!   [`HANDSHAKE_MAX_FRAME`] bytes until both MACs are verified, then the
//!   receiver's `max_frame`). The dialer sends `Hello`; the listener answers
//!   `Hello` then `Auth`; the dialer verifies and answers `Auth`. Then each
//!   side sends `Resume` (the session it holds with the other, the last
//!   chunk it received, the sessions it dropped), and the session frames
//!   `Data`, `Ack`, `Ping`, `Pong` follow (see `session.rs`). A session
//!   frame's first byte is its kind: 1 = `Data` with a binary header (seq
//!   u64 big-endian, `more` byte) and the chunk's raw bytes; 0 = the other
//!   frames in CBOR. `Hello` and `Auth` are CBOR.
//! - **2**: integrity and piggybacked acks. Every frame after the
//!   handshake (from `Resume` on) ends with a 16-byte tag: keyed BLAKE3
//!   (fast enough to tag a 64 MiB migration at memory speed; the keys are
//!   derived with HMAC-SHA256 from the authenticated handshake), keyed by
//!   the key of its direction ([`frame_key`]), over the frame's
//!   number on the socket in that direction (u64 big-endian, from 0) and
//!   its payload, truncated to its first 16 bytes; the length prefix
//!   counts the tag. A frame whose tag does not verify (altered, forged,
//!   replayed, reordered or dropped in between) closes the socket; the
//!   session resumes on a new one. The `Data` header gains the sender's
//!   cumulative ack (u64 big-endian, after the `more` byte), so a
//!   standalone `Ack` goes only when nothing flows back for a short while.
//! - **3**: one side creates sessions. Of the two nodes, the one with the
//!   smaller node id (the leader) creates every session; its `Resume`
//!   always names one, whose 16-byte id starts with a generation (u64
//!   big-endian) that only grows while the leader runs. The other takes up
//!   the session named if it is newer than the one it holds and not one it
//!   dropped, and never creates one; if the follower's `Resume` lists the
//!   leader's session as dropped, the leader names the next one in a
//!   second `Resume` on the same socket. (Before, each side created a
//!   session from the socket's handshake when it had none, so a `Resume`
//!   read late, from a socket the other side had already given up, could
//!   leave the two sides on different sessions.)
//! - **4**: `Hello` carries `app_version`, the version of the protocol the
//!   runtime above speaks over the link ([`Identity::app_version`]); a peer
//!   whose runtime speaks another is refused with both versions named.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::{Identity, Secret, TcpConfig};
use crate::NodeId;

/// The first bytes of every `Hello`.
pub const MAGIC: [u8; 4] = *b"MOBY";

/// The wire protocol version this build speaks (history in the module docs).
pub const PROTOCOL_VERSION: u16 = 4;

/// Largest frame accepted before the peer is authenticated.
pub const HANDSHAKE_MAX_FRAME: usize = 4096;

/// Longest cluster id accepted.
pub const MAX_CLUSTER_LEN: usize = 128;

/// Longest listen address accepted.
const MAX_LISTEN_LEN: usize = 256;

/// Domain separation of the authentication MAC.
const AUTH_LABEL: &[u8] = b"mobility-auth-v1";

/// Domain separation of the keys of the frames' tags.
const FRAME_KEY_LABEL: &[u8] = b"mobility-frame-key-v2";

/// Bytes of the tag at the end of every frame after the handshake.
pub const TAG_LEN: usize = 16;

/// Domain separation of session ids.
const SESSION_LABEL: &[u8] = b"mobility-session-v1";

/// The first message of each side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The version of what the sender's runtime speaks over the link.
    pub app_version: u32,
    /// The node id the sender claims (proved by its `Auth`).
    pub node: NodeId,
    /// The cluster the sender claims; it selects the secret.
    pub cluster: String,
    /// Fresh random bytes, new for every connection.
    pub nonce: [u8; 32],
    /// Random number drawn when the sender's transport started: a new one
    /// means the sender restarted and its sessions are gone.
    pub incarnation: u64,
    /// Where the sender listens, so the other side can dial back.
    pub listen: Option<String>,
    /// Largest frame the sender accepts.
    pub max_frame: u64,
    /// Largest message the sender accepts.
    pub max_message: u64,
}

/// The second message of each side: proof that it knows the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// HMAC-SHA256 computed by [`compute_mac`].
    pub mac: [u8; 32],
}

/// Which end of the socket a side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that dialed.
    Dialer,
    /// The side that accepted.
    Listener,
}

impl Role {
    fn byte(self) -> u8 {
        match self {
            Role::Dialer => 0,
            Role::Listener => 1,
        }
    }
}

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The bytes are not a `Hello` of this protocol.
    #[error("not a mobility handshake (bad magic or undecodable hello: {0})")]
    NotMobility(String),
    /// The peer speaks another version.
    #[error("unsupported protocol version {theirs} (this node speaks {PROTOCOL_VERSION})")]
    Version {
        /// The peer's version.
        theirs: u16,
    },
    /// The peer's runtime speaks another protocol over the link.
    #[error("the peer's runtime speaks protocol version {theirs}, this node's {ours}")]
    AppVersion {
        /// The peer's runtime protocol version.
        theirs: u32,
        /// Ours.
        ours: u32,
    },
    /// A field of the `Hello` is out of range.
    #[error("invalid hello: {0}")]
    InvalidHello(String),
    /// The peer's cluster is neither ours nor trusted.
    #[error("unknown cluster {0:?}")]
    UnknownCluster(String),
    /// The peer claims our own node id.
    #[error("peer claims this node's own id {0}")]
    SelfConnection(NodeId),
    /// The `Auth` could not be decoded.
    #[error("undecodable auth: {0}")]
    BadAuth(String),
    /// The MAC does not verify: wrong secret, replay or reflection.
    #[error("authentication failed (wrong secret, replayed or reflected handshake)")]
    BadMac,
    /// No randomness could be drawn from the OS.
    #[error("no randomness: {0}")]
    Random(String),
}

/// Fresh random bytes from the OS.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], HandshakeError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| HandshakeError::Random(e.to_string()))?;
    Ok(bytes)
}

/// This side's `Hello` for one new connection (a fresh nonce each time).
pub fn make_hello(
    identity: &Identity,
    incarnation: u64,
    listen: Option<String>,
    config: &TcpConfig,
) -> Result<Hello, HandshakeError> {
    Ok(Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        app_version: identity.app_version,
        node: identity.node.clone(),
        cluster: identity.cluster.clone(),
        nonce: random_bytes()?,
        incarnation,
        listen,
        max_frame: config.max_frame as u64,
        max_message: config.max_message as u64,
    })
}

/// Only the fields every version keeps; the rest is ignored when decoding.
#[derive(Deserialize)]
struct HelloHead {
    magic: [u8; 4],
    version: u16,
}

/// Decodes and checks the peer's `Hello`: magic and version first, then
/// the rest, then the ranges of its fields, against this node's `own`
/// identity (its id is refused, its runtime's protocol required).
pub fn read_hello(bytes: &[u8], own: &Identity) -> Result<Hello, HandshakeError> {
    let head: HelloHead =
        crate::decode(bytes).map_err(|e| HandshakeError::NotMobility(e.to_string()))?;
    if head.magic != MAGIC {
        return Err(HandshakeError::NotMobility("bad magic".into()));
    }
    if head.version != PROTOCOL_VERSION {
        return Err(HandshakeError::Version {
            theirs: head.version,
        });
    }
    let hello: Hello =
        crate::decode(bytes).map_err(|e| HandshakeError::InvalidHello(e.to_string()))?;
    if hello.app_version != own.app_version {
        return Err(HandshakeError::AppVersion {
            theirs: hello.app_version,
            ours: own.app_version,
        });
    }
    if hello.cluster.is_empty() || hello.cluster.len() > MAX_CLUSTER_LEN {
        return Err(HandshakeError::InvalidHello(format!(
            "cluster id of {} bytes (1 to {MAX_CLUSTER_LEN} allowed)",
            hello.cluster.len()
        )));
    }
    if hello
        .listen
        .as_ref()
        .is_some_and(|l| l.len() > MAX_LISTEN_LEN)
    {
        return Err(HandshakeError::InvalidHello(
            "listen address too long".into(),
        ));
    }
    if hello.max_frame < TcpConfig::MIN_FRAME as u64 || hello.max_message == 0 {
        return Err(HandshakeError::InvalidHello(format!(
            "max_frame {} / max_message {} too small",
            hello.max_frame, hello.max_message
        )));
    }
    if hello.node == own.node {
        return Err(HandshakeError::SelfConnection(hello.node));
    }
    Ok(hello)
}

/// The secret both sides must use with a peer of `peer_cluster`: our own if
/// it is our cluster, else the one given for it to `trusted`.
pub fn select_secret(
    identity: &Identity,
    peer_cluster: &str,
    trusted: impl FnOnce(&str) -> Option<Secret>,
) -> Result<Secret, HandshakeError> {
    if peer_cluster == identity.cluster {
        Ok(identity.secret.clone())
    } else {
        trusted(peer_cluster).ok_or_else(|| HandshakeError::UnknownCluster(peer_cluster.into()))
    }
}

fn put(mac: &mut Hmac<Sha256>, field: &[u8]) {
    mac.update(&(field.len() as u64).to_be_bytes());
    mac.update(field);
}

/// HMAC-SHA256 keyed by `key` (any length).
pub(crate) fn hmac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length: this cannot fail.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

fn keyed(
    label: &[u8],
    secret: &Secret,
    sender: Role,
    dialer: &Hello,
    listener: &Hello,
) -> Hmac<Sha256> {
    let mut mac = hmac(secret.expose());
    put(&mut mac, label);
    mac.update(&PROTOCOL_VERSION.to_be_bytes());
    mac.update(&[sender.byte()]);
    put(&mut mac, &dialer.nonce);
    put(&mut mac, &listener.nonce);
    put(&mut mac, dialer.node.as_str().as_bytes());
    put(&mut mac, listener.node.as_str().as_bytes());
    put(&mut mac, dialer.cluster.as_bytes());
    put(&mut mac, listener.cluster.as_bytes());
    mac.update(&dialer.incarnation.to_be_bytes());
    mac.update(&listener.incarnation.to_be_bytes());
    mac
}

/// The MAC the side in role `sender` sends: HMAC-SHA256 keyed by `secret`
/// over a label, the version, the sender's role byte (0 dialer, 1
/// listener), then both nonces, node ids and clusters (each
/// length-prefixed) and both incarnations, dialer's first.
pub fn compute_mac(secret: &Secret, sender: Role, dialer: &Hello, listener: &Hello) -> [u8; 32] {
    keyed(AUTH_LABEL, secret, sender, dialer, listener)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks, in constant time, the MAC the side in role `sender` sent.
pub fn verify_mac(
    secret: &Secret,
    sender: Role,
    dialer: &Hello,
    listener: &Hello,
    auth: &[u8],
) -> Result<(), HandshakeError> {
    let decoded: Auth = crate::decode(auth).map_err(|e| HandshakeError::BadAuth(e.to_string()))?;
    keyed(AUTH_LABEL, secret, sender, dialer, listener)
        .verify_slice(&decoded.mac)
        .map_err(|_| HandshakeError::BadMac)
}

/// The key of the tags of the frames the side in role `sender` sends on
/// this socket: HMAC-SHA256 keyed by `secret` over the same fields as
/// [`compute_mac`] under another label. Never sent; new for every socket
/// (both nonces are fresh), one per direction.
pub fn frame_key(secret: &Secret, sender: Role, dialer: &Hello, listener: &Hello) -> [u8; 32] {
    keyed(FRAME_KEY_LABEL, secret, sender, dialer, listener)
        .finalize()
        .into_bytes()
        .into()
}

/// The id a session gets when this handshake creates it; both sides derive
/// the same one.
pub fn session_id(dialer: &Hello, listener: &Hello) -> [u8; 16] {
    let mut hash = Sha256::new();
    hash.update(SESSION_LABEL);
    hash.update(dialer.nonce);
    hash.update(listener.nonce);
    let digest = hash.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(node: &str, cluster: &str, secret: &str) -> Identity {
        Identity {
            node: NodeId::new(node).unwrap_or_else(|e| panic!("{e}")),
            cluster: cluster.into(),
            secret: Secret::from(secret),
            app_version: 7,
        }
    }

    fn hellos() -> (Hello, Hello) {
        let config = TcpConfig::default();
        let d = make_hello(&identity("a", "c", "s"), 1, None, &config).expect("random");
        let l = make_hello(&identity("b", "c", "s"), 2, None, &config).expect("random");
        (d, l)
    }

    #[test]
    fn macs_verify_and_bind_role_and_secret() {
        let (d, l) = hellos();
        let s = Secret::from("s");
        let mac = compute_mac(&s, Role::Dialer, &d, &l);
        let auth = crate::encode(&Auth { mac }).expect("encodes");
        assert_eq!(verify_mac(&s, Role::Dialer, &d, &l, &auth), Ok(()));
        assert_eq!(
            verify_mac(&s, Role::Listener, &d, &l, &auth),
            Err(HandshakeError::BadMac),
            "reflection"
        );
        assert_eq!(
            verify_mac(&Secret::from("t"), Role::Dialer, &d, &l, &auth),
            Err(HandshakeError::BadMac),
            "wrong secret"
        );
        let (d2, _) = hellos();
        let mut replay = d2;
        replay.nonce = d.nonce;
        assert_eq!(verify_mac(&s, Role::Dialer, &replay, &l, &auth), Ok(()));
        let (_, l2) = hellos();
        assert_eq!(
            verify_mac(&s, Role::Dialer, &d, &l2, &auth),
            Err(HandshakeError::BadMac),
            "replay against a fresh listener nonce"
        );
    }

    #[test]
    fn frame_keys_differ_per_direction_socket_and_secret() {
        let (d, l) = hellos();
        let s = Secret::from("s");
        let to_listener = frame_key(&s, Role::Dialer, &d, &l);
        let to_dialer = frame_key(&s, Role::Listener, &d, &l);
        assert_ne!(to_listener, to_dialer);
        assert_ne!(to_listener, compute_mac(&s, Role::Dialer, &d, &l));
        assert_ne!(
            to_listener,
            frame_key(&Secret::from("t"), Role::Dialer, &d, &l)
        );
        let (d2, _) = hellos();
        assert_ne!(to_listener, frame_key(&s, Role::Dialer, &d2, &l));
    }

    #[test]
    fn hello_checks() {
        let (d, _) = hellos();
        let own = identity("b", "c", "s");
        let bytes = crate::encode(&d).expect("encodes");
        assert_eq!(read_hello(&bytes, &own), Ok(d.clone()));
        assert!(matches!(
            read_hello(&bytes, &identity("a", "c", "s")),
            Err(HandshakeError::SelfConnection(_))
        ));
        let mut other_runtime = d.clone();
        other_runtime.app_version = 8;
        let bytes = crate::encode(&other_runtime).expect("encodes");
        let refused = read_hello(&bytes, &own);
        assert_eq!(
            refused,
            Err(HandshakeError::AppVersion { theirs: 8, ours: 7 })
        );
        let text = refused.expect_err("refused").to_string();
        assert!(text.contains("version 8") && text.contains("7"), "{text}");
        for theirs in [1, PROTOCOL_VERSION + 1] {
            let mut other = d.clone();
            other.version = theirs;
            let bytes = crate::encode(&other).expect("encodes");
            assert_eq!(
                read_hello(&bytes, &own),
                Err(HandshakeError::Version { theirs })
            );
        }
        let mut bad = d;
        bad.magic = *b"HTTP";
        let bytes = crate::encode(&bad).expect("encodes");
        assert!(matches!(
            read_hello(&bytes, &own),
            Err(HandshakeError::NotMobility(_))
        ));
        assert!(matches!(
            read_hello(b"GET / HTTP/1.1", &own),
            Err(HandshakeError::NotMobility(_))
        ));
    }
}
