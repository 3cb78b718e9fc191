//! The bodies of the fuzz targets (`fuzz_targets/*.rs` call them), so that
//! `tests/replay.rs` can run every corpus on stable `cargo test` too.
//!
//! Each target feeds bytes to a decoder as a node does, through the
//! `fuzzing` modules of `mobility-net` and `mobility`, and checks more than
//! "no panic" where it is cheap: what decodes encodes back to the same
//! value, nothing verifies without the key, frames come out as sent.
//!
//! Several targets take a list of pieces: [`pieces`] reads it as
//! `[u16 big-endian length][bytes]...`, the last piece taking what is left.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mobility::prelude::*;
use mobility_net::fuzzing as net;
use mobility_net::tcp::handshake;
use mobility_net::tcp::noise;
use mobility_net::tcp::{Certificate, ClusterAuthority, NodeKey};
use mobility_net::{Identity, NodeId, Secret};

/// The runtime protocol version of `mobility` (the `app_version` its
/// nodes put in their `Hello`), so recorded `Hello`s are taken.
pub const APP_VERSION: u32 = mobility::fuzzing::PROTOCOL_VERSION;

/// Cluster and secret of the seeds, and the clock certificates are checked at.
pub const CLUSTER: &str = "fuzz";
/// See [`CLUSTER`].
pub const SECRET: &str = "fuzz-secret";
/// The time (ms since the epoch) the `cert` target checks expiries at.
pub const NOW_MS: u64 = 1_800_000_000_000;

/// The largest single allocation a target may make: more is taken for an
/// unbounded allocation driven by the input (libFuzzer's own
/// `-malloc_limit_mb` needs a sanitizer's hooks, and the targets are built
/// without one). The decoders' own limits are far below it (frames of
/// 4 KiB before authentication, 64 KiB records and messages here).
pub const MAX_ALLOCATION: usize = 256 << 20;

/// The system allocator, aborting (a crash libFuzzer saves) on any
/// allocation over [`MAX_ALLOCATION`].
struct Limited;

fn check_size(size: usize) {
    if size > MAX_ALLOCATION {
        use std::io::Write;
        let _ = std::io::stderr()
            .write_all(b"allocation over MAX_ALLOCATION (fuzz/src/lib.rs): unbounded?\n");
        std::process::abort();
    }
}

// SAFETY: every call goes to `System` with the caller's arguments, after a
// check that only aborts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Limited = Limited;

/// Splits `data` into pieces: `[u16 big-endian length][bytes]...`; a
/// length past the end takes what is left.
pub fn pieces(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let len = len.min(rest.len());
        out.push(&rest[..len]);
        data = &rest[len..];
    }
    out
}

/// Joins pieces in the format [`pieces`] reads.
pub fn join(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        let len = u16::try_from(piece.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&piece[..usize::from(len)]);
    }
    out
}

fn own() -> &'static Identity {
    static OWN: OnceLock<Identity> = OnceLock::new();
    OWN.get_or_init(|| Identity {
        node: NodeId::new("fuzz-listener").expect("valid node id"),
        cluster: CLUSTER.into(),
        secret: Secret::from(SECRET),
        app_version: APP_VERSION,
    })
}

/// Handshake, before authentication: the byte stream a dialer sends (or a
/// listener answers), cut into frames as the handshake's reader does, each
/// frame read as a `Hello` (or a `Refusal`); and as the listener's
/// verdict a dialer waits for after its last handshake message. A `Hello`
/// that is taken encodes to bytes that are taken as the same `Hello`; a
/// verdict is taken only if the listener sealed it.
pub fn hello(data: &[u8]) {
    let (cut, stream) = match data.split_first() {
        Some((&cut, stream)) => (usize::from(cut), stream),
        None => return,
    };
    // The whole input as one frame, too (the frame reader is one target,
    // the hello another: both get the whole input).
    check_hello(stream);
    if let Ok(frames) = net::handshake_frames(stream, cut) {
        for frame in frames {
            assert!(frame.len() <= handshake::HANDSHAKE_MAX_FRAME);
            check_hello(&frame);
        }
    }
    // The same bytes as what a dialer reads for the listener's verdict:
    // only the listener's own empty message takes the socket.
    let genuine = net::seal_verdict().expect("seals");
    if let Ok(Some(net::Verdict::Taken)) = net::handshake_verdict(stream, cut) {
        assert!(
            stream.starts_with(&genuine),
            "a verdict not sealed by the listener was taken"
        );
    }
    if let Ok(Some(net::Verdict::Refused(Some(handshake::RefusalReason::Busy(limit))))) =
        net::handshake_verdict(stream, cut)
    {
        assert!(limit.len() <= 256, "a refusal's limit is bounded");
    }
}

fn check_hello(bytes: &[u8]) {
    if let Ok(hello) = handshake::read_hello(bytes, own()) {
        let again = mobility_net::encode(&hello).expect("a hello encodes");
        assert_eq!(
            handshake::read_hello(&again, own()).as_ref(),
            Ok(&hello),
            "a hello taken once is taken again"
        );
    }
}

/// The static keys of the in-memory Noise handshakes: the dialer's and the
/// listener's.
fn static_keys() -> &'static (NodeKey, NodeKey) {
    static KEYS: OnceLock<(NodeKey, NodeKey)> = OnceLock::new();
    KEYS.get_or_init(|| (NodeKey::from_bytes([1; 32]), NodeKey::from_bytes([2; 32])))
}

/// The largest payload (a certificate) a handshake message carries: the
/// listener's message is its ephemeral key, its encrypted static key and
/// the encrypted payload.
const MAX_NOISE_PAYLOAD: usize = noise::MAX_HANDSHAKE_MESSAGE - (32 + (32 + 16) + 16);

/// The three Noise handshake messages (`XXpsk3`), before authentication.
/// The first byte picks who reads what; the rest is pieces, the first two
/// the dialer's and the listener's `Hello` (the prologue, as sent).
/// 0: a listener reads the third piece as the dialer's first message
/// (`e`: anyone can write one) and, if it verifies, answers, then reads the
/// fourth as the dialer's last (`s, se, psk`): bound to the listener's
/// fresh ephemeral key, no message made before verifies (a recorded
/// handshake replayed gets nowhere). 1: a dialer that sent its first
/// reads the third piece as the listener's answer (`e, ee, s, es`): bound
/// to the dialer's fresh ephemeral key, nothing made before verifies.
/// 2: a whole handshake in memory whose certificates are the third and
/// fourth pieces: with the same view each side gets the other's
/// certificate as sent and proves its static key; with a tampered `Hello`
/// or another pre-shared key it fails.
pub fn noise(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let psk = noise::psk(&Secret::from(SECRET));
    let (kd, kl) = static_keys();
    let parts = pieces(rest);
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let (d, l) = (part(0), part(1));
    match mode % 3 {
        0 => {
            let mut listener = noise::listener(&psk, kl, d, l).expect("builds");
            if noise::read(&mut listener, part(2)).is_err() {
                return;
            }
            noise::write(&mut listener, b"listener certificate").expect("writes");
            assert!(
                noise::read(&mut listener, part(3)).is_err(),
                "a last message not made for this listener's fresh key verified"
            );
        }
        1 => {
            let mut dialer = noise::dialer(&psk, kd, d, l).expect("builds");
            noise::write(&mut dialer, &[]).expect("writes");
            assert!(
                noise::read(&mut dialer, part(2)).is_err(),
                "an answer not made for this dialer's fresh key verified"
            );
        }
        _ => {
            let (dc, lc) = (part(2), part(3));
            let (dc, lc) = (
                &dc[..dc.len().min(MAX_NOISE_PAYLOAD)],
                &lc[..lc.len().min(MAX_NOISE_PAYLOAD)],
            );
            // Whether the handshake verifies; when it does, each side
            // got the other's certificate as sent and its static key.
            let run = |lpsk: &[u8; 32], lv: (&[u8], &[u8])| -> bool {
                let mut dialer = noise::dialer(&psk, kd, d, l).expect("builds");
                let mut listener = noise::listener(lpsk, kl, lv.0, lv.1).expect("builds");
                let first = noise::write(&mut dialer, &[]).expect("writes");
                match noise::read(&mut listener, &first) {
                    Ok(payload) => assert!(payload.is_empty()),
                    Err(_) => return false,
                }
                let second = noise::write(&mut listener, lc).expect("writes");
                match noise::read(&mut dialer, &second) {
                    Ok(payload) => assert_eq!(payload, lc, "the listener's certificate as sent"),
                    Err(_) => return false,
                }
                assert_eq!(noise::remote_static(&dialer), Some(kl.public()));
                let third = noise::write(&mut dialer, dc).expect("writes");
                match noise::read(&mut listener, &third) {
                    Ok(payload) => assert_eq!(payload, dc, "the dialer's certificate as sent"),
                    Err(_) => return false,
                }
                assert_eq!(noise::remote_static(&listener), Some(kd.public()));
                noise::finish(dialer).is_ok() && noise::finish(listener).is_ok()
            };
            assert!(run(&psk, (d, l)), "the same view verifies");
            let mut tampered = d.to_vec();
            match tampered.first_mut() {
                Some(b) => *b ^= 1,
                None => tampered.push(0),
            }
            assert!(!run(&psk, (&tampered, l)), "a tampered hello verifies");
            assert!(
                !run(&noise::PUBLIC_PSK, (d, l)),
                "another pre-shared key verifies"
            );
        }
    }
}

/// What a reference reader makes of a plaintext stream: frames of a u32
/// big-endian length and a payload, until an oversized frame (`Err`) or
/// the end (a cut frame waits).
fn reference_frames(plain: &[u8], max_frame: usize) -> Result<Vec<&[u8]>, ()> {
    let mut frames = Vec::new();
    let mut rest = plain;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > max_frame {
            return Err(());
        }
        if rest.len() < 4 + len {
            break;
        }
        frames.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    Ok(frames)
}

/// The encrypted records of an established socket. The first byte picks
/// the mode, the second how many bytes arrive at a time. 0: the rest is
/// what an attacker without the keys sends: no frame ever comes out. 1: the
/// rest's pieces are sealed as a node seals them, then opened: exactly the
/// frames of the plaintext come out, in order, or the same refusal of an
/// oversized frame. 2: as 1 with one sealed byte flipped (the third byte
/// picks it): what comes out is a prefix of the frames sent.
pub fn records(data: &[u8]) {
    let [mode, cut, at, rest @ ..] = data else {
        return;
    };
    let cut = usize::from(*cut) * 97 + 1;
    let max_frame = 4096;
    match mode % 3 {
        0 => {
            if let Ok(frames) = net::open_records(rest, cut, max_frame) {
                assert!(frames.is_empty(), "a frame came out without the keys");
            }
        }
        mode => {
            let plain = pieces(rest);
            let mut sealed = net::seal_records(&plain).expect("seals");
            let joined: Vec<u8> = plain.concat();
            let expected = reference_frames(&joined, max_frame);
            if mode == 2 && !sealed.is_empty() {
                let at = usize::from(*at) * sealed.len() / 256;
                sealed[at] ^= 0x20;
            }
            let opened = net::open_records(&sealed, cut, max_frame);
            match (mode, expected, opened) {
                (1, Ok(expected), Ok(got)) => {
                    let got: Vec<&[u8]> = got.iter().map(|f| &f[..]).collect();
                    assert_eq!(got, expected, "frames out as sent");
                }
                (1, Err(()), Err(_)) => {}
                (1, expected, opened) => {
                    panic!("reference {expected:?}, opener {opened:?}")
                }
                (_, Ok(expected), Ok(got)) => {
                    assert!(got.len() <= expected.len());
                    for (g, e) in got.iter().zip(&expected) {
                        assert_eq!(&g[..], *e, "a flipped byte changed a frame");
                    }
                }
                _ => {}
            }
        }
    }
}

/// Session frames after authentication: each piece is decoded as a
/// socket's reader does (what decodes encodes back to the same frame), then
/// all are fed to a session as a peer task does; whatever it hands up is a
/// whole message of at most its `max_message`. The first byte: how many
/// chunks the session has sent (so acks have something to acknowledge).
pub fn session_frames(data: &[u8]) {
    let Some((&sent, rest)) = data.split_first() else {
        return;
    };
    let frames = pieces(rest);
    for frame in &frames {
        if let Ok(decoded) = net::SessionFrame::decode(frame) {
            let again = decoded.encode().expect("encodes");
            assert_eq!(
                net::SessionFrame::decode(&again).as_ref(),
                Ok(&decoded),
                "decode(encode(x)) == x"
            );
        }
    }
    let max_message = 1 << 16;
    if let Ok(messages) = net::session_receive(&frames, usize::from(sent % 64), max_message) {
        for message in messages {
            assert!(message.len() <= max_message);
        }
    }
}

/// A frame from a peer, after authentication: header (`PeerMsg`, compact
/// or serde form) and tail. What decodes encodes back to a frame that
/// decodes to the same header.
pub fn peer_msg(data: &[u8]) {
    check_frame(data);
}

fn check_frame(frame: &[u8]) {
    if let Ok((header, tail)) = mobility::fuzzing::open_frame(frame) {
        let mut again = header.frame().expect("a decoded header encodes");
        again.extend_from_slice(&tail);
        let (back, back_tail) =
            mobility::fuzzing::open_frame(&again).expect("an encoded header decodes");
        assert_eq!(format!("{back:?}"), format!("{header:?}"));
        assert_eq!(back_tail, tail);
    }
}

/// The compact form of the call frames (`Deliver` of a handler call, a
/// successful `Reply`): the input is a header, made an array if it is not
/// one, framed and decoded as a link does; what decodes round-trips.
pub fn compact(data: &[u8]) {
    let mut header = data.to_vec();
    if let Some(first) = header.first_mut() {
        // Major type 4 (array), keeping the length bits.
        *first = 0x80 | (*first & 0x1f);
    }
    let mut frame = u32::try_from(header.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(&header);
    check_frame(&frame);
}

/// The actor type whose snapshots the `snapshot` target decodes: a bit of
/// every shape a state has (strings, maps, sequences, options, enums,
/// bytes, floats).
#[mobile]
#[derive(Debug, Default)]
pub struct Probe {
    /// A name.
    pub name: String,
    /// Counts by key (a `BTreeMap`: its encoding does not depend on a
    /// hasher, so encodings can be compared).
    pub counts: BTreeMap<String, u64>,
    /// A log of events.
    pub log: Vec<Event>,
    /// Something optional.
    pub last: Option<(u32, i64)>,
    /// Raw bytes.
    pub blob: Vec<u8>,
    /// A float.
    pub ratio: f64,
}

/// An entry of [`Probe::log`].
#[mobile]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A value was recorded.
    Recorded(String, u64),
    /// Reset.
    Reset,
    /// Moved, at this step.
    Moved {
        /// The step.
        step: u32,
    },
}

#[mobile]
impl Probe {
    /// Records `n` under `key`.
    pub fn record(&mut self, key: String, n: u64) {
        *self.counts.entry(key.clone()).or_insert(0) += n;
        self.log.push(Event::Recorded(key, n));
        self.last = Some((self.log.len() as u32, n as i64));
    }

    /// The count under `key`.
    pub fn count(&self, key: String) -> u64 {
        self.counts.get(&key).copied().unwrap_or(0)
    }

    /// Arms a timer that records `key` after `ms` milliseconds, and one
    /// that does every `ms`.
    pub fn later(&mut self, key: String, ms: u64, ctx: &mut Context<Self>) {
        let after = std::time::Duration::from_millis(ms);
        ctx.send_after(after).record(key.clone(), 1);
        ctx.send_interval(after).record(key, 2);
    }
}

/// A migrating actor's snapshot (the tail of a `Prepare`), decoded and
/// taken in as a destination does; what decodes encodes back to a
/// snapshot that decodes to the same.
pub fn snapshot(data: &[u8]) {
    if let Ok(arrived) = mobility::fuzzing::arrive::<Probe>(data) {
        let again = arrived.encode().expect("a decoded snapshot encodes");
        let back = mobility::fuzzing::arrive::<Probe>(&again).expect("an encoded snapshot decodes");
        // NaN is not equal to itself: compare the encodings instead.
        assert_eq!(
            back.encode().expect("encodes"),
            again,
            "decode(encode(x)) == x"
        );
    }
}

fn gossip_key() -> &'static net::GossipKeyOf {
    static KEY: OnceLock<net::GossipKeyOf> = OnceLock::new();
    KEY.get_or_init(|| net::GossipKeyOf::new(SECRET, CLUSTER))
}

/// A gossip datagram as it arrives, before authentication: what opens is
/// exactly what a holder of the key sealed, byte for byte (the seeds are
/// real datagrams sealed with the key; a forgery never opens), and it
/// opens under no other cluster's key; its payload, unless it is a probe,
/// goes to chitchat's decoder.
pub fn gossip_datagram(data: &[u8]) {
    let Ok((header, payload)) = net::gossip_open(gossip_key(), data) else {
        return;
    };
    let nonce = net::gossip_nonce(data).expect("an opened datagram has a nonce");
    assert_eq!(
        net::gossip_seal(gossip_key(), &nonce, &header, &payload),
        data,
        "a datagram not sealed with the key was opened"
    );
    let other = net::GossipKeyOf::new(SECRET, "another-cluster");
    assert!(
        net::gossip_open(&other, data).is_err(),
        "a datagram opened under another cluster's key"
    );
    if let Ok((again, message)) = net::gossip_receive(gossip_key(), data) {
        assert_eq!(again, header);
        assert_eq!(message.is_none(), header.is_probe());
    }
}

/// A gossip payload after authentication: sealed as a member seals it, then
/// received; a `Syn` (or `BadCluster`) that chitchat decodes serializes
/// back to a payload that decodes to the same message. (A received delta
/// is applied, never sent on as it is: chitchat's `Delta` keeps the length
/// it was read from and asserts it when serialized, so messages carrying
/// one are not serialized here.)
pub fn gossip_payload(data: &[u8]) {
    use net::{ChitchatMessage, Deserializable, Serializable};
    let sender = "127.0.0.1:7001".parse().expect("an address");
    let via = "127.0.0.1:7002".parse().expect("an address");
    let header = net::GossipHeader::gossip(sender, via, 1, 9);
    let datagram = net::gossip_seal(gossip_key(), &[5; 24], &header, data);
    let Ok((opened, message)) = net::gossip_receive(gossip_key(), &datagram) else {
        return;
    };
    assert_eq!(opened, header, "the header comes out as sealed");
    let message = message.expect("a gossip datagram carries a message");
    if matches!(
        message,
        ChitchatMessage::SynAck { .. } | ChitchatMessage::Ack { .. }
    ) {
        return;
    }
    let mut again = Vec::new();
    message.serialize(&mut again);
    let mut cursor = &again[..];
    let back = ChitchatMessage::deserialize(&mut cursor).expect("re-serialized decodes");
    assert_eq!(back, message, "decode(encode(x)) == x");
}

/// The authority of the `cert` target: the one every node of [`CLUSTER`]
/// derives from [`SECRET`] when it has no configured authority.
fn authority() -> &'static ClusterAuthority {
    static AUTHORITY: OnceLock<ClusterAuthority> = OnceLock::new();
    AUTHORITY.get_or_init(|| ClusterAuthority::from_secret(&Secret::from(SECRET)))
}

/// The clock of the `cert` target: [`NOW_MS`].
fn cert_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(NOW_MS)
}

/// Node certificates, before authentication (the payloads of the second
/// and third Noise messages). The first byte picks the mode.
/// 0: the rest is a certificate as it arrives. What decodes keeps its bytes
/// and decodes again to the same (also through its text form); if it
/// verifies under [`authority`], it is byte for byte what the authority
/// signs for its fields (Ed25519 signs deterministically and is verified
/// strictly: nothing else passes). 1: the rest is pieces: a node id, a
/// cluster id, an expiry (u64 big-endian seconds) and a static key, which
/// [`authority`] certifies; the certificate decodes to itself and
/// verifies; then the fifth piece tampers with it (`[u16 big-endian
/// offset][xor]...`): a certificate changed in any byte never verifies.
pub fn cert(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Ok(cert) = Certificate::decode(rest) else {
            return;
        };
        assert_eq!(cert.as_bytes(), rest, "a certificate keeps its bytes");
        assert_eq!(Certificate::decode(cert.as_bytes()).as_ref(), Ok(&cert));
        assert_eq!(Certificate::from_text(&cert.to_text()).as_ref(), Ok(&cert));
        // Its accessors, as a node logging a peer's certificate reads them.
        let _ = (cert.not_after(), cert.issuer(), format!("{cert:?}"));
        if cert.verify(&authority().public(), cert_now()).is_ok() {
            let signed = authority()
                .certify(
                    cert.node(),
                    cert.cluster(),
                    cert.static_key(),
                    cert.not_after(),
                )
                .expect("the fields of a certificate certify");
            assert_eq!(
                signed.as_bytes(),
                rest,
                "a certificate the authority did not sign verified"
            );
        }
        return;
    }
    let parts = pieces(rest);
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let node = std::str::from_utf8(part(0))
        .ok()
        .and_then(|text| NodeId::new(text).ok())
        .unwrap_or_else(|| NodeId::new("fuzz-node").expect("valid node id"));
    let Ok(cluster) = std::str::from_utf8(part(1)) else {
        return;
    };
    let not_after = match <[u8; 8]>::try_from(part(2)) {
        Ok(secs) => match UNIX_EPOCH.checked_add(Duration::from_secs(u64::from_be_bytes(secs))) {
            Some(at) => Some(at),
            None => return,
        },
        Err(_) => None,
    };
    let static_key = <[u8; 32]>::try_from(part(3)).unwrap_or([3; 32]);
    let Ok(cert) = authority().certify(&node, cluster, static_key, not_after) else {
        return;
    };
    assert_eq!(Certificate::decode(cert.as_bytes()).as_ref(), Ok(&cert));
    assert_eq!(cert.node(), &node);
    assert_eq!(cert.cluster(), cluster);
    assert_eq!(cert.static_key(), static_key);
    if not_after.is_none_or(|at| at > cert_now()) {
        cert.verify(&authority().public(), cert_now())
            .expect("what the authority signs verifies");
    }
    let mut tampered = cert.as_bytes().to_vec();
    for change in part(4).chunks_exact(3) {
        let at = usize::from(u16::from_be_bytes([change[0], change[1]])) % tampered.len();
        tampered[at] ^= change[2];
    }
    if tampered != cert.as_bytes() {
        if let Ok(changed) = Certificate::decode(&tampered) {
            assert!(
                changed.verify(&authority().public(), cert_now()).is_err(),
                "a tampered certificate verified"
            );
        }
    }
}

/// What the replay window must do, kept the simplest way: every counter
/// accepted, the first and the newest. A counter is taken once if it is
/// not below the first, and not [`net::REPLAY_WINDOW`] or more behind the
/// newest.
#[derive(Debug)]
struct ModelWindow {
    floor: u64,
    highest: u64,
    seen: BTreeSet<u64>,
}

impl ModelWindow {
    fn new(counter: u64) -> Self {
        ModelWindow {
            floor: counter,
            highest: counter,
            seen: BTreeSet::from([counter]),
        }
    }

    fn accept(&mut self, counter: u64) -> bool {
        let fresh = counter >= self.floor
            && !self.seen.contains(&counter)
            && (counter > self.highest || self.highest - counter < net::REPLAY_WINDOW);
        if fresh {
            self.seen.insert(counter);
            self.highest = self.highest.max(counter);
        }
        fresh
    }
}

/// The gossip replay windows (`check_and_mark`, and a sender's state
/// across its restarts), against [`ModelWindow`]: same verdict for every
/// datagram. The first 8 bytes are the first counter (big-endian); then
/// each datagram is 3 bytes, `[how][u16 big-endian v]`: by `how & 7`, the
/// counter is the newest plus v, the newest minus v, v, the newest plus 64
/// v (across words of the ring), the first minus v, or u64::MAX minus v;
/// by `how >> 4 & 3`, its incarnation is the current one, the next (a
/// restart) or the previous (for the sender's state; the window alone
/// takes every counter as of one incarnation).
pub fn replay(data: &[u8]) {
    let Some((first, ops)) = data.split_first_chunk::<8>() else {
        return;
    };
    let first = u64::from_be_bytes(*first);
    let mut window = net::ReplayWindow::new(first);
    let mut model = ModelWindow::new(first);
    let mut state = net::ReplayState::new(1, first);
    let (mut incarnation, mut state_model) = (1u64, ModelWindow::new(first));
    for op in ops.chunks_exact(3) {
        let v = u64::from(u16::from_be_bytes([op[1], op[2]]));
        let counter = match op[0] & 7 {
            0 => model.highest.saturating_add(v),
            1 => model.highest.saturating_sub(v),
            2 => v,
            3 => model.highest.saturating_add(v * 64),
            4 => model.floor.saturating_sub(v),
            _ => u64::MAX - v,
        };
        assert_eq!(
            window.check_and_mark(counter).is_ok(),
            model.accept(counter),
            "window verdict on counter {counter} ({model:?})"
        );
        let claimed = match op[0] >> 4 & 3 {
            2 => incarnation + 1,
            3 => incarnation.saturating_sub(1),
            _ => incarnation,
        };
        let expected = match claimed.cmp(&incarnation) {
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Greater => {
                incarnation = claimed;
                state_model = ModelWindow::new(counter);
                true
            }
            std::cmp::Ordering::Equal => state_model.accept(counter),
        };
        assert_eq!(
            state.accept(claimed, counter).is_ok(),
            expected,
            "sender verdict on ({claimed}, {counter})"
        );
    }
}
