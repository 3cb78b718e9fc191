//! The handshake's cleartext messages, pure, no I/O: the [`Hello`] each
//! side sends first, the listener's [`Refusal`], their checks, and the
//! history of the wire protocol's versions.
//!
//! The dialer sends its `Hello`; the listener answers with its own; then
//! the two run a Noise handshake (`noise.rs`) whose prologue is both
//! `Hello`s as they were sent, byte for byte, with each node's static key
//! and the pre-shared key of the cluster's secret, and in which each side
//! shows the certificate binding its node id to its static key: every
//! field either side announces (nonce, node id, cluster, incarnation,
//! listen address, frame and message limits, both versions) is covered,
//! the node id is proved by a key only that node holds, and nothing but
//! handshake messages and certificates is decoded before the handshake
//! succeeds. Every later byte is encrypted.
//!
//! # Wire protocol versions
//!
//! Every connection starts with a `Hello` carrying `magic` and `version`;
//! they are read (with every other field ignored) before the rest of the
//! `Hello` is decoded, so a node can always tell a peer why it is refused.
//! The history of [`PROTOCOL_VERSION`], newest last:
//!
//! - **1**: frames are a u32 big-endian length and a payload (at most
//!   [`HANDSHAKE_MAX_FRAME`] bytes until the peer is authenticated, then the
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
//!   the key of its direction (`frame_key`), over the frame's
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
//! - **5**: the MAC (and the frame keys) cover every field of both
//!   `Hello`s: `listen`, `max_frame`, `max_message`, `app_version` and
//!   `magic` joined what was covered, so someone on the path can no
//!   longer redirect redials or force tiny chunks. A listener that
//!   refuses a connection before authenticating it (its own limits) may
//!   answer with a [`Refusal`] instead of its `Hello`, naming the limit,
//!   so the dialer does not blame itself or its own node.
//! - **6**: encryption with forward secrecy. After the two `Hello`s the
//!   dialer and the listener run `Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`
//!   (see [`super::noise`]): the prologue is both `Hello`s as sent (the
//!   dialer's first, each length-prefixed), the pre-shared key is derived
//!   from the secret of the peer's cluster, and the two Noise messages
//!   (dialer's, then listener's, empty payloads, each in a u32
//!   length-prefixed frame) replace the two `Auth` MACs. After them, each
//!   direction of the socket is a stream of Noise transport messages (a
//!   u16 big-endian length, then at most 65,535 bytes, ChaCha20-Poly1305
//!   under keys from ephemeral X25519 keys) whose plaintexts, joined,
//!   carry the frames of version 5 without their tags (a u32 length and a
//!   payload). A message that does not decrypt (altered, forged, replayed,
//!   reordered or after a dropped one) closes the socket; the session
//!   resumes on a new one, with a new handshake.
//! - **7**: per-node identities. The Noise handshake becomes
//!   `Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s` (see [`super::noise`]), three
//!   messages after the two `Hello`s: the dialer's `e` (empty payload),
//!   the listener's `e, ee, s, es` carrying its certificate, the dialer's
//!   `s, se, psk` carrying its own (each in a u32 length-prefixed frame).
//!   Each node has its own static X25519 key; a certificate of its
//!   cluster's authority (`cert.rs`: Ed25519 over a fixed layout) binds
//!   its node id and cluster to it. Each side checks the other's
//!   certificate (signed by the authority it trusts for the peer's
//!   cluster, not expired, same node id and cluster as the `Hello`, same
//!   key as the Noise static key) before anything after the handshake is
//!   read. The pre-shared key is still derived from the secret of the
//!   peer's cluster (or of the trusted other cluster), or is public
//!   between clusters trusted by their authorities' keys alone.
//! - **8**: a listener's verdict. A listener that refuses a connection
//!   says why in a [`Refusal`] frame (a u32 length and CBOR, as a `Hello`)
//!   before it closes the socket, naming one [`RefusalReason`] of a fixed
//!   few: one of its limits, a cluster it does not trust, a node id it
//!   refuses, or a failed handshake (after the dialer's last Noise
//!   message: one reason for a wrong secret and a refused certificate
//!   alike, so nobody can test a secret by the answer). A listener that
//!   takes the connection first sends an empty Noise transport message
//!   (nonce 0), and the dialer waits for one or the other before its
//!   handshake is done: an authentic empty message means taken (frames
//!   follow from nonce 1), a frame whose length's first two bytes are
//!   zero (a transport message is never shorter than its tag) is a
//!   refusal. A refusal proves nothing, so it is only reported; it can
//!   say no more than a closed socket would.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::{Identity, TcpConfig};
use crate::NodeId;

/// The first bytes of every `Hello`.
pub const MAGIC: [u8; 4] = *b"MOBY";

/// The wire protocol version this build speaks (history in the module docs).
pub const PROTOCOL_VERSION: u16 = 8;

/// Largest frame accepted before the peer is authenticated.
pub const HANDSHAKE_MAX_FRAME: usize = 4096;

/// Longest cluster id accepted.
pub const MAX_CLUSTER_LEN: usize = 128;

/// Longest listen address accepted.
const MAX_LISTEN_LEN: usize = 256;

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
    /// The node id the sender claims (proved by its certificate and its
    /// static key in the Noise handshake that covers this `Hello`).
    pub node: NodeId,
    /// The cluster the sender claims; it selects the secret and the
    /// authority its certificate must come from.
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

/// What a listener sends when it refuses a connection, before closing it:
/// instead of its `Hello` (its limits, an untrusted cluster, a refused node
/// id) or instead of its verdict after the Noise handshake (best effort:
/// the dialer may see the socket closed instead). It proves nothing, so
/// the dialer only reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u16,
    /// Why.
    pub refused: RefusalReason,
}

/// Why a listener refused a connection, as it tells the dialer: one of a
/// fixed few, none of which says anything a stranger could not learn
/// from whether the socket is answered or closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RefusalReason {
    /// One of the listener's own limits (named): it may take the
    /// connection later.
    #[error("busy (its own limit: {0})")]
    Busy(String),
    /// The listener trusts no cluster of the name the dialer's `Hello`
    /// gave.
    #[error("cluster not trusted (that node trusts no cluster of this node's name)")]
    ClusterNotTrusted,
    /// The listener refuses the node id the dialer's `Hello` claims (known
    /// there as a node of another cluster, or blocked), before any key.
    #[error("identity refused (that node refuses this node id)")]
    IdentityRefused,
    /// The dialer's last Noise message did not verify, or its certificate
    /// was refused: one reason for both, so that the answer never tells a
    /// right secret from a wrong one.
    #[error(
        "authentication failed (a wrong secret, a certificate that node does not accept, \
         or a tampered handshake)"
    )]
    HandshakeFailed,
}

/// Longest limit named in a `Busy` refusal.
const MAX_REFUSAL_LEN: usize = 256;

impl Refusal {
    /// A refusal for `reason`.
    pub fn new(reason: RefusalReason) -> Self {
        Refusal {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            refused: reason,
        }
    }
}

/// Reads the listener's [`Refusal`] frame, if `bytes` is one (the limit
/// a `Busy` one names cut to a bounded length).
pub fn read_refusal(bytes: &[u8]) -> Option<RefusalReason> {
    let refusal = crate::decode::<Refusal>(bytes).ok()?;
    if refusal.magic != MAGIC || refusal.version != PROTOCOL_VERSION {
        return None;
    }
    Some(match refusal.refused {
        RefusalReason::Busy(mut limit) => {
            if limit.len() > MAX_REFUSAL_LEN {
                let mut end = MAX_REFUSAL_LEN;
                while !limit.is_char_boundary(end) {
                    end -= 1;
                }
                limit.truncate(end);
            }
            RefusalReason::Busy(limit)
        }
        other => other,
    })
}

/// Which end of the socket a side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that dialed.
    Dialer,
    /// The side that accepted.
    Listener,
}

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The listener refused the connection (it said why in a
    /// [`Refusal`]).
    #[error("that node refused the connection: {0}")]
    Refused(RefusalReason),
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
    /// The peer's Noise handshake message does not verify: wrong
    /// secret, or a replayed, reflected or tampered handshake (either
    /// `Hello` altered on the path), or a static key it does not hold.
    #[error(
        "authentication failed (wrong secret, or a replayed, reflected or tampered handshake: {0})"
    )]
    Authentication(String),
    /// The peer's certificate was refused: not signed by the authority
    /// trusted for its cluster, expired, for another node id, cluster or
    /// static key than it proved.
    #[error("identity refused: {0}")]
    Identity(String),
    /// The Noise handshake could not be set up or written.
    #[error("noise handshake: {0}")]
    Noise(String),
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
    if let Some(reason) = read_refusal(bytes) {
        return Err(HandshakeError::Refused(reason));
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
    use super::super::config::Secret;
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

    /// Runs the Noise handshake in memory between a dialer that sent
    /// `d` and saw `l`, with secret `s`, and a listener that saw `dt` and
    /// sent `lt`, with secret `st` (`true` if every message verifies).
    fn noise_with(
        (s, d, l): (&Secret, &Hello, &Hello),
        (st, dt, lt): (&Secret, &Hello, &Hello),
    ) -> bool {
        use super::super::cert::NodeKey;
        use super::super::noise;
        let bytes = |h: &Hello| crate::encode(h).expect("encodes");
        let (kd, kl) = (
            NodeKey::generate().expect("random"),
            NodeKey::generate().expect("random"),
        );
        let mut dialer = noise::dialer(&noise::psk(s), &kd, &bytes(d), &bytes(l)).expect("builds");
        let mut listener =
            noise::listener(&noise::psk(st), &kl, &bytes(dt), &bytes(lt)).expect("builds");
        let first = noise::write(&mut dialer, &[]).expect("writes");
        if noise::read(&mut listener, &first).is_err() {
            return false;
        }
        let second = noise::write(&mut listener, &[]).expect("writes");
        if noise::read(&mut dialer, &second).is_err() {
            return false;
        }
        let third = noise::write(&mut dialer, &[]).expect("writes");
        noise::read(&mut listener, &third).is_ok()
    }

    fn noise_between(s: &Secret, (d, l): (&Hello, &Hello), (dt, lt): (&Hello, &Hello)) -> bool {
        noise_with((s, d, l), (s, dt, lt))
    }

    #[test]
    fn the_noise_handshake_binds_the_hellos_and_the_secret() {
        let (d, l) = hellos();
        let s = Secret::from("s");
        assert!(noise_between(&s, (&d, &l), (&d, &l)));
        assert!(!noise_between(&s, (&d, &l), (&l, &d)), "reflection");
        assert!(
            !noise_with((&s, &d, &l), (&Secret::from("t"), &d, &l)),
            "wrong secret"
        );
        let (_, l2) = hellos();
        assert!(
            !noise_between(&s, (&d, &l), (&d, &l2)),
            "replay against a fresh listener nonce"
        );
    }

    /// A named change of one announced field of a `Hello`.
    type Tampering = (&'static str, fn(&mut Hello));

    /// Every way to change one announced field of a `Hello`.
    fn tamperings() -> Vec<Tampering> {
        vec![
            ("magic", |h| h.magic = *b"MOBZ"),
            ("version", |h| h.version ^= 1),
            ("app_version", |h| h.app_version += 1),
            ("node", |h| h.node = NodeId::new("z").expect("valid")),
            ("cluster", |h| h.cluster.push('x')),
            ("nonce", |h| h.nonce[0] ^= 1),
            ("incarnation", |h| h.incarnation += 1),
            ("listen added", |h| h.listen = Some("10.0.0.66:1805".into())),
            ("max_frame", |h| h.max_frame = TcpConfig::MIN_FRAME as u64),
            ("max_message", |h| h.max_message = 1),
        ]
    }

    #[test]
    fn every_announced_field_is_covered_by_the_noise_handshake() {
        let (mut d, mut l) = hellos();
        d.listen = Some("127.0.0.1:1805".into());
        l.listen = Some("127.0.0.1:1806".into());
        let s = Secret::from("s");
        let mut cases: Vec<(String, Hello, Hello)> = Vec::new();
        for (field, tamper) in tamperings() {
            let mut dt = d.clone();
            tamper(&mut dt);
            assert_ne!(dt, d, "{field} changes the dialer's hello");
            cases.push((format!("dialer's {field}"), dt, l.clone()));
            let mut lt = l.clone();
            tamper(&mut lt);
            assert_ne!(lt, l, "{field} changes the listener's hello");
            cases.push((format!("listener's {field}"), d.clone(), lt));
        }
        let mut changed = d.clone();
        changed.listen = Some("127.0.0.1:1807".into());
        cases.push(("dialer's listen changed".into(), changed, l.clone()));
        let mut removed = d.clone();
        removed.listen = None;
        cases.push(("dialer's listen removed".into(), removed, l.clone()));
        for (what, dt, lt) in cases {
            // Someone on the path rewrote one `Hello` on its way: each side
            // hashes what it saw.
            assert!(
                !noise_between(&s, (&d, &l), (&dt, &lt)),
                "{what} tampered toward the listener, the handshake still verifies"
            );
            assert!(
                !noise_between(&s, (&dt, &lt), (&d, &l)),
                "{what} tampered toward the dialer, the handshake still verifies"
            );
        }
    }

    #[test]
    fn a_refusal_is_read_as_one() {
        let own = identity("b", "c", "s");
        let busy = RefusalReason::Busy("too many links open (3)".into());
        for reason in [
            busy,
            RefusalReason::ClusterNotTrusted,
            RefusalReason::IdentityRefused,
            RefusalReason::HandshakeFailed,
        ] {
            let bytes = crate::encode(&Refusal::new(reason.clone())).expect("encodes");
            assert_eq!(
                read_hello(&bytes, &own),
                Err(HandshakeError::Refused(reason))
            );
        }
        let long = RefusalReason::Busy("é".repeat(1000));
        let long = crate::encode(&Refusal::new(long)).expect("encodes");
        match read_hello(&long, &own) {
            Err(HandshakeError::Refused(RefusalReason::Busy(limit))) => {
                assert!(limit.len() <= MAX_REFUSAL_LEN);
            }
            other => panic!("{other:?}"),
        }
        // A hello is never taken for a refusal.
        let (d, _) = hellos();
        let bytes = crate::encode(&d).expect("encodes");
        assert_eq!(read_refusal(&bytes), None);
        assert_eq!(read_hello(&bytes, &own), Ok(d));
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
