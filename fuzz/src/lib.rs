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
use std::collections::BTreeMap;
use std::sync::OnceLock;

use mobility::prelude::*;
use mobility_net::fuzzing as net;
use mobility_net::tcp::handshake;
use mobility_net::tcp::noise;
use mobility_net::{Identity, NodeId, Secret};

/// The runtime protocol version of `mobility` (the `app_version` its
/// nodes put in their `Hello`), so recorded `Hello`s are taken.
pub const APP_VERSION: u32 = 4;

/// Cluster, secret and gossip clock of the seeds.
pub const CLUSTER: &str = "fuzz";
/// See [`CLUSTER`].
pub const SECRET: &str = "fuzz-secret";
/// The time (ms since the epoch) the gossip targets receive at.
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
/// frame read as a `Hello` (or a `Refusal`). A `Hello` that is taken
/// encodes to bytes that are taken as the same `Hello`.
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

/// The two Noise handshake messages, before authentication: the first byte
/// picks who reads the input. 0: a listener reads it as the dialer's first
/// message; 1: a dialer that sent its first reads it as the listener's
/// answer. Without the secret nothing verifies. 2: a whole handshake in
/// memory whose `Hello`s are the input's two pieces: it verifies with the
/// same view and secret, not with a tampered one.
pub fn noise(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let secret = Secret::from(SECRET);
    let (d, l) = (&b"dialer hello"[..], &b"listener hello"[..]);
    match mode % 3 {
        0 => {
            let mut listener = noise::listener(&secret, d, l).expect("builds");
            assert!(
                noise::read(&mut listener, rest).is_err(),
                "a first message forged without the secret verified"
            );
        }
        1 => {
            let mut dialer = noise::dialer(&secret, d, l).expect("builds");
            let _first = noise::write(&mut dialer).expect("writes");
            assert!(
                noise::read(&mut dialer, rest).is_err(),
                "an answer forged without the secret verified"
            );
        }
        _ => {
            let hellos = pieces(rest);
            let (d, l) = match hellos.as_slice() {
                [d, l, ..] => (*d, *l),
                [d] => (*d, &b""[..]),
                [] => (&b""[..], &b""[..]),
            };
            let run = |dv: (&[u8], &[u8]), lv: (&[u8], &[u8])| -> bool {
                let mut dialer = noise::dialer(&secret, dv.0, dv.1).expect("builds");
                let mut listener = noise::listener(&secret, lv.0, lv.1).expect("builds");
                let first = noise::write(&mut dialer).expect("writes");
                if noise::read(&mut listener, &first).is_err() {
                    return false;
                }
                let second = noise::write(&mut listener).expect("writes");
                noise::read(&mut dialer, &second).is_ok()
                    && noise::finish(dialer).is_ok()
                    && noise::finish(listener).is_ok()
            };
            assert!(run((d, l), (d, l)), "the same view verifies");
            let mut tampered = d.to_vec();
            match tampered.first_mut() {
                Some(b) => *b ^= 1,
                None => tampered.push(0),
            }
            assert!(!run((d, l), (&tampered, l)), "a tampered hello verifies");
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

/// A gossip datagram as it arrives, before authentication (at the
/// target's clock, and at the datagram's own timestamp): what is taken is
/// exactly what a holder of the key sealed, byte for byte (the seeds are
/// real datagrams sealed with the key; a forgery is never taken).
pub fn gossip_datagram(data: &[u8]) {
    let stamped = data
        .get(2..10)
        .map(|t| u64::from_be_bytes(t.try_into().expect("8 bytes")));
    for now in [Some(NOW_MS), stamped].into_iter().flatten() {
        if net::gossip_receive(gossip_key(), now, data).is_ok() {
            let payload = net::gossip_open(gossip_key(), now, data).expect("opens");
            let stamp = stamped.expect("a taken datagram has a timestamp");
            assert_eq!(
                net::gossip_seal(gossip_key(), stamp, payload),
                data,
                "a datagram not sealed with the key was taken"
            );
        }
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
    let datagram = net::gossip_seal(gossip_key(), NOW_MS, data);
    if let Ok(message) = net::gossip_receive(gossip_key(), NOW_MS, &datagram) {
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
}
