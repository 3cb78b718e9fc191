//! Entry points for the fuzz targets of `fuzz/` (not a public API: it may
//! change in any release). Each one is a thin wrapper around a decoder that
//! bytes from the network reach, so that the targets call the very code a
//! node runs; when those internals change, only this file follows.
//!
//! Before authentication: the handshake's framing and `Hello`
//! ([`handshake_frames`], and `tcp::handshake::read_hello`), the
//! listener's verdict ([`handshake_verdict`]), the Noise
//! handshake messages (`tcp::noise`) and the certificates inside them
//! (`tcp::Certificate::decode`), the encrypted records ([`open_records`])
//! and gossip datagrams ([`gossip_receive`]). After it: session frames
//! ([`SessionFrame`], [`session_receive`]), chitchat's payloads (sealed
//! here, [`gossip_seal`]) and the gossip replay windows
//! ([`ReplayWindow`], [`ReplayState`]).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

pub use chitchat::{ChitchatMessage, Deserializable, Serializable};

use crate::membership::auth_udp::replay::{self, SenderState, Window};
use crate::membership::auth_udp::seal::{self, GossipKey, Header, Kind, MAX_DATAGRAM, NONCE_LEN};
use crate::tcp::establish::{HandshakeCodec, Piece};
use crate::tcp::frame::{self, Wire};
use crate::tcp::handshake::{read_refusal, RefusalReason};
use crate::tcp::noise;
use crate::tcp::record::{is_empty_message, Keys, OpenError, Opener, Sealer};
use crate::tcp::session::Session;
use crate::tcp::NodeKey;
use crate::Secret;

/// Cuts `stream` into frames as the handshake's reader does (u32
/// big-endian length, at most `HANDSHAKE_MAX_FRAME`), feeding it `cut`
/// bytes at a time (at least 1); an error ends the stream.
pub fn handshake_frames(stream: &[u8], cut: usize) -> Result<Vec<BytesMut>, String> {
    let mut codec = HandshakeCodec::default();
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    for piece in stream.chunks(cut.max(1)) {
        src.extend_from_slice(piece);
        while let Some(piece) = codec.decode(&mut src).map_err(|e| e.to_string())? {
            match piece {
                Piece::Frame(frame) => frames.push(frame),
                Piece::Message(_) => return Err("a Noise message during the handshake".into()),
            }
        }
    }
    Ok(frames)
}

/// What a dialer waiting for the listener's verdict reads first.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The listener's empty Noise message (sealed with the keys of
    /// [`seal_verdict`]): it takes the socket.
    Taken,
    /// A Noise message that is not that one.
    Forged,
    /// A frame: the refusal it is, if it is one.
    Refused(Option<RefusalReason>),
}

/// Reads `stream`, fed `cut` bytes at a time (at least 1), as a dialer
/// waiting for the listener's verdict does; `None` if it ends first.
pub fn handshake_verdict(stream: &[u8], cut: usize) -> Result<Option<Verdict>, String> {
    let mut codec = HandshakeCodec { verdict: true };
    let mut src = BytesMut::new();
    for piece in stream.chunks(cut.max(1)) {
        src.extend_from_slice(piece);
        match codec.decode(&mut src).map_err(|e| e.to_string())? {
            Some(Piece::Message(message)) if is_empty_message(&keys().0, 0, &message) => {
                return Ok(Some(Verdict::Taken))
            }
            Some(Piece::Message(_)) => return Ok(Some(Verdict::Forged)),
            Some(Piece::Frame(frame)) => return Ok(Some(Verdict::Refused(read_refusal(&frame)))),
            None => {}
        }
    }
    Ok(None)
}

/// The listener's verdict that it takes the socket, as it sends it (with
/// the listener's keys of the in-memory handshake).
pub fn seal_verdict() -> Result<Vec<u8>, String> {
    let mut sealer = Sealer::new(Arc::clone(&keys().1));
    sealer.seal_empty()?;
    Ok(sealer.sealed().to_vec())
}

/// The keys of one socket, the dialer's (which seals) and the
/// listener's (which opens), from a Noise handshake run once in memory
/// (its three messages, fixed static keys, empty payloads).
fn keys() -> &'static (Keys, Keys) {
    static KEYS: OnceLock<(Keys, Keys)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let psk = noise::psk(&Secret::from("fuzz"));
        let (kd, kl) = (NodeKey::from_bytes([1; 32]), NodeKey::from_bytes([2; 32]));
        let run = || -> Result<(Keys, Keys), crate::tcp::handshake::HandshakeError> {
            let mut d = noise::dialer(&psk, &kd, b"dialer", b"listener")?;
            let mut l = noise::listener(&psk, &kl, b"dialer", b"listener")?;
            noise::read(&mut l, &noise::write(&mut d, &[])?)?;
            noise::read(&mut d, &noise::write(&mut l, &[])?)?;
            noise::read(&mut l, &noise::write(&mut d, &[])?)?;
            Ok((Arc::new(noise::finish(d)?), Arc::new(noise::finish(l)?)))
        };
        match run() {
            Ok(keys) => keys,
            Err(e) => panic!("in-memory handshake: {e}"),
        }
    })
}

/// Seals `pieces` as the sending side of a socket does: each piece in
/// Noise transport messages of at most `MAX_PIECE` bytes, numbered from 0.
pub fn seal_records(pieces: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut sealer = Sealer::new(Arc::clone(&keys().0));
    for piece in pieces {
        sealer.seal(piece)?;
    }
    Ok(sealer.sealed().to_vec())
}

/// Opens `stream` as the receiving side of a socket does (the same keys as
/// [`seal_records`], messages numbered from 0), `cut` bytes at a time, and
/// cuts the plaintext into frames of at most `max_frame` bytes; an error
/// ends the stream.
pub fn open_records(stream: &[u8], cut: usize, max_frame: usize) -> Result<Vec<BytesMut>, String> {
    let mut opener = Opener::new(Arc::clone(&keys().1), max_frame);
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    for piece in stream.chunks(cut.max(1)) {
        src.extend_from_slice(piece);
        loop {
            match opener.decode(&mut src) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(OpenError::Bad(reason)) => return Err(reason),
                Err(OpenError::Io(e)) => return Err(e.to_string()),
            }
        }
    }
    Ok(frames)
}

/// A session frame (`Resume`, `Data`, `Ack`, `Ping`, `Pong`) as decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFrame(Wire);

impl SessionFrame {
    /// Decodes a session frame as a socket's reader does.
    pub fn decode(frame: &[u8]) -> Result<Self, String> {
        frame::decode_wire(&Bytes::copy_from_slice(frame))
            .map(SessionFrame)
            .map_err(|e| e.to_string())
    }

    /// Encodes it as a socket's writer does (header and chunk joined).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let tail = frame::encode_wire(self.0.clone(), &mut out).map_err(|e| e.to_string())?;
        out.extend_from_slice(tail.as_deref().unwrap_or_default());
        Ok(out)
    }

    /// A `Data` frame.
    pub fn data(seq: u64, more: bool, ack: u64, bytes: &[u8]) -> Self {
        SessionFrame(Wire::Data {
            seq,
            more,
            ack,
            bytes: Bytes::copy_from_slice(bytes),
        })
    }

    /// A `Resume` frame.
    pub fn resume(session: Option<[u8; 16]>, dropped: Vec<[u8; 16]>, upto: u64) -> Self {
        SessionFrame(Wire::Resume {
            session,
            dropped,
            upto,
        })
    }

    /// An `Ack`, a `Ping` (0) or a `Pong` (1).
    pub fn control(which: u8, upto: u64) -> Self {
        SessionFrame(match which {
            0 => Wire::Ping,
            1 => Wire::Pong,
            _ => Wire::Ack { upto },
        })
    }
}

/// Feeds the session frames of one socket to a session (which queued
/// `sent` chunks of its own) as a peer task does: a `Resume` first and only
/// first, then `Data`, `Ack`, `Ping`, `Pong`. Returns the messages they
/// complete; an error closes the socket.
pub fn session_receive(
    frames: &[&[u8]],
    sent: usize,
    max_message: usize,
) -> Result<Vec<Bytes>, String> {
    let mut session = Session::new([0; 16], 16, max_message);
    for _ in 0..sent {
        session.send(Bytes::from_static(b"0123456789abcdef"));
    }
    let mut messages = Vec::new();
    let mut resumed = false;
    for frame in frames {
        let wire = frame::decode_wire(&Bytes::copy_from_slice(frame)).map_err(|e| e.to_string())?;
        match (wire, resumed) {
            (Wire::Resume { upto, .. }, false) => {
                session.connect(upto).map_err(|e| e.to_string())?;
                resumed = true;
            }
            (Wire::Resume { .. }, true) => return Err("second Resume".into()),
            (_, false) => return Err("session frame before Resume".into()),
            (
                Wire::Data {
                    seq,
                    more,
                    ack,
                    bytes,
                },
                true,
            ) => {
                session.on_ack(ack).map_err(|e| e.to_string())?;
                if let Some(message) = session
                    .on_data(seq, more, bytes)
                    .map_err(|e| e.to_string())?
                {
                    messages.push(message);
                }
            }
            (Wire::Ack { upto }, true) => session.on_ack(upto).map_err(|e| e.to_string())?,
            (Wire::Ping | Wire::Pong, true) => {}
        }
        while session.poll_transmit().is_some() {}
        let _ = session.take_ack();
    }
    Ok(messages)
}

/// The key of gossip datagrams of `cluster` under `secret`.
#[derive(Debug, Clone)]
pub struct GossipKeyOf(GossipKey);

impl GossipKeyOf {
    /// Derives it as a node does.
    pub fn new(secret: &str, cluster: &str) -> Self {
        GossipKeyOf(GossipKey::derive(&Secret::from(secret), cluster))
    }
}

/// The encrypted header of a gossip datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GossipHeader(Header);

impl GossipHeader {
    /// The header of a gossip datagram (a chitchat message follows) from
    /// `sender` to `via`.
    pub fn gossip(sender: SocketAddr, via: SocketAddr, counter: u64, echo: u64) -> Self {
        GossipHeader(Header {
            kind: Kind::Gossip,
            sender,
            via,
            incarnation: 1,
            counter,
            token: 7,
            echo,
        })
    }

    /// Whether it is a probe (nothing follows).
    pub fn is_probe(&self) -> bool {
        self.0.kind == Kind::Probe
    }

    /// The address its sender advertises.
    pub fn sender(&self) -> SocketAddr {
        self.0.sender
    }

    /// Its sender's incarnation and its counter, which the receiver's
    /// replay state takes once.
    pub fn numbered(&self) -> (u64, u64) {
        (self.0.incarnation, self.0.counter)
    }
}

/// The nonce of a datagram (in clear after the magic and version bytes),
/// if it is long enough to have one.
pub fn gossip_nonce(datagram: &[u8]) -> Option<[u8; NONCE_LEN]> {
    datagram.get(2..2 + NONCE_LEN)?.try_into().ok()
}

/// Seals `payload` under `header` with `nonce`, as a gossip socket does.
pub fn gossip_seal(
    key: &GossipKeyOf,
    nonce: &[u8; NONCE_LEN],
    header: &GossipHeader,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    seal::seal(&key.0, nonce, &header.0, payload, &mut out);
    out
}

/// Checks and decrypts a received datagram as the gossip socket does
/// (oversized refused, then the AEAD check, then the header): its header
/// and its payload.
pub fn gossip_open(key: &GossipKeyOf, datagram: &[u8]) -> Result<(GossipHeader, Vec<u8>), String> {
    if datagram.len() > MAX_DATAGRAM {
        return Err("oversized".into());
    }
    let mut buffer = datagram.to_vec();
    let (header, payload) = seal::open(&key.0, &mut buffer).map_err(|e| e.to_string())?;
    Ok((GossipHeader(header), payload.to_vec()))
}

/// A received datagram as the gossip socket takes it (before its replay
/// checks): opened, then, unless it is a probe, its payload decoded by
/// chitchat (`Err`: dropped, with the reason).
pub fn gossip_receive(
    key: &GossipKeyOf,
    datagram: &[u8],
) -> Result<(GossipHeader, Option<ChitchatMessage>), String> {
    let (header, payload) = gossip_open(key, datagram)?;
    if header.is_probe() {
        return Ok((header, None));
    }
    let message = ChitchatMessage::deserialize(&mut &payload[..]).map_err(|e| e.to_string())?;
    Ok((header, Some(message)))
}

/// How many counters behind the newest one a replay window still takes.
pub const REPLAY_WINDOW: u64 = replay::WINDOW;

/// The replay state a gossip receiver keeps for one sender address: its
/// newest incarnation and the window of counters seen from it.
#[derive(Debug, Clone)]
pub struct ReplayState(SenderState);

impl ReplayState {
    /// The state after a first datagram numbered `counter` of `incarnation`.
    pub fn new(incarnation: u64, counter: u64) -> Self {
        ReplayState(SenderState::new(incarnation, counter))
    }

    /// Takes a datagram numbered `counter` of `incarnation` once (`Err`: a
    /// replay, with the reason).
    pub fn accept(&mut self, incarnation: u64, counter: u64) -> Result<(), String> {
        self.0
            .accept(incarnation, counter)
            .map_err(|e| e.to_string())
    }
}

/// One incarnation's window of counters.
#[derive(Debug, Clone)]
pub struct ReplayWindow(Window);

impl ReplayWindow {
    /// The window after a first counter `counter`.
    pub fn new(counter: u64) -> Self {
        ReplayWindow(Window::new(counter))
    }

    /// Takes `counter` once (`Err`: a replay, with the reason).
    pub fn check_and_mark(&mut self, counter: u64) -> Result<(), String> {
        self.0.check_and_mark(counter).map_err(|e| e.to_string())
    }
}
