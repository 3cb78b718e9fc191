//! The encrypted byte stream of an established socket, each direction its
//! own: a sequence of Noise transport messages (a u16 big-endian length,
//! then the message: at most [`MAX_PIECE`] bytes of plaintext sealed by
//! ChaCha20-Poly1305 with a 16-byte tag), numbered from 0 by the Noise
//! nonce. Their plaintexts, joined, are the session frames (a u32
//! big-endian length and a payload, `frame.rs`).
//!
//! [`Sealer`] encrypts into one reused buffer, straight from where the
//! bytes are (a big chunk is never copied before it is encrypted; small
//! frames are gathered and sealed together). [`Opener`] is the reader's
//! codec: it decrypts each message as it is complete into the plaintext
//! stream and cuts frames off it (a `Data` chunk then shares that memory);
//! a message that does not decrypt is an error, and nothing of it is used.

use std::io;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use snow::StatelessTransportState;
use tokio_util::codec::Decoder;

use super::noise::{MAX_MESSAGE, MAX_PIECE, TAG_LEN};

/// Bytes of the length before each Noise message.
const LEN_PREFIX: usize = 2;

/// The keys of a socket, shared by its two directions.
pub(crate) type Keys = Arc<StatelessTransportState>;

/// The sending direction: plaintext in, sealed messages out.
pub(crate) struct Sealer {
    keys: Keys,
    /// The nonce of the next message.
    nonce: u64,
    /// Small frames gathered, sealed together before the next big chunk
    /// and before writing.
    plain: Vec<u8>,
    /// Sealed bytes; those in `start..end` wait to be written. Its length
    /// only grows (to the most ever queued), so it is zeroed once.
    out: Vec<u8>,
    start: usize,
    end: usize,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("nonce", &self.nonce)
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

impl Sealer {
    pub(crate) fn new(keys: Keys) -> Self {
        Sealer {
            keys,
            nonce: 0,
            plain: Vec::new(),
            out: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// Where small frames are gathered before being sealed.
    pub(crate) fn gather(&mut self) -> &mut Vec<u8> {
        &mut self.plain
    }

    /// Seals what was gathered.
    pub(crate) fn seal_gathered(&mut self) -> Result<(), String> {
        if self.plain.is_empty() {
            return Ok(());
        }
        let plain = std::mem::take(&mut self.plain);
        let sealed = self.seal(&plain);
        self.plain = plain;
        self.plain.clear();
        sealed
    }

    /// Seals `bytes` in messages of at most [`MAX_PIECE`] bytes of
    /// plaintext, after what was sealed before (gathered bytes must be
    /// sealed first).
    pub(crate) fn seal(&mut self, bytes: &[u8]) -> Result<(), String> {
        let pieces = bytes.len().div_ceil(MAX_PIECE);
        self.make_room(bytes.len() + pieces * (LEN_PREFIX + TAG_LEN));
        for piece in bytes.chunks(MAX_PIECE) {
            self.seal_piece(piece)?;
        }
        Ok(())
    }

    /// Seals an empty message: the listener's word that it takes the
    /// socket, before any frame (`establish.rs`).
    pub(crate) fn seal_empty(&mut self) -> Result<(), String> {
        self.make_room(LEN_PREFIX + TAG_LEN);
        self.seal_piece(&[])
    }

    /// Seals one message after `end` (room was made for it).
    fn seal_piece(&mut self, piece: &[u8]) -> Result<(), String> {
        let at = self.end + LEN_PREFIX;
        let room = &mut self.out[at..at + piece.len() + TAG_LEN];
        let len = self
            .keys
            .write_message(self.nonce, piece, room)
            .map_err(|e| format!("encryption failed: {e}"))?;
        self.nonce += 1;
        // At most `MAX_MESSAGE` bytes.
        self.out[self.end..at].copy_from_slice(&(len as u16).to_be_bytes());
        self.end = at + len;
        Ok(())
    }

    /// Makes room for `more` sealed bytes after `end`.
    fn make_room(&mut self, more: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.start >= self.end - self.start {
            // More written than left: move what is left to the front.
            self.out.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.out.len() < self.end + more {
            self.out.resize(self.end + more, 0);
        }
    }

    /// The sealed bytes waiting to be written.
    pub(crate) fn sealed(&self) -> &[u8] {
        &self.out[self.start..self.end]
    }

    /// `n` sealed bytes were written.
    pub(crate) fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Whether sealed bytes wait to be written.
    pub(crate) fn has_sealed(&self) -> bool {
        self.start < self.end
    }

    /// Bytes gathered or sealed, not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.end - self.start + self.plain.len()
    }
}

/// Why the receiving direction failed.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Reading the socket failed.
    Io(io::Error),
    /// The bytes are bad: the socket must be closed for this reason.
    Bad(String),
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// The receiving direction: the reader's codec, sealed messages in,
/// frames out.
pub(crate) struct Opener {
    keys: Keys,
    /// The nonce of the next message.
    nonce: u64,
    /// Plaintext decrypted, not yet cut into frames.
    plain: BytesMut,
    /// Largest frame accepted.
    max_frame: usize,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("nonce", &self.nonce)
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

impl Opener {
    pub(crate) fn new(keys: Keys, max_frame: usize) -> Self {
        Opener {
            keys,
            nonce: 0,
            plain: BytesMut::new(),
            max_frame,
        }
    }

    /// The same, reading from the message numbered `nonce` on (those
    /// before were read by the handshake).
    pub(crate) fn starting_at(mut self, nonce: u64) -> Self {
        self.nonce = nonce;
        self
    }

    /// Sets the largest frame accepted.
    pub(crate) fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// The next whole frame of the plaintext, if it is in.
    fn next_frame(&mut self) -> Result<Option<BytesMut>, OpenError> {
        let Some(head) = self.plain.get(..4) else {
            return Ok(None);
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(head);
        let len = u32::from_be_bytes(len) as usize;
        if len > self.max_frame {
            return Err(OpenError::Bad(format!(
                "frame of {len} bytes (at most {} accepted)",
                self.max_frame
            )));
        }
        if self.plain.len() < 4 + len {
            // Room for the whole frame at once, not in doublings.
            self.plain.reserve(4 + len - self.plain.len());
            return Ok(None);
        }
        let mut frame = self.plain.split_to(4 + len);
        frame.advance(4);
        Ok(Some(frame))
    }
}

/// Opens `message` (a Noise message without its length), expected to be
/// the empty one numbered `nonce`: whether it is.
pub(crate) fn is_empty_message(keys: &Keys, nonce: u64, message: &[u8]) -> bool {
    let mut room = [0u8; TAG_LEN];
    message.len() == TAG_LEN && matches!(keys.read_message(nonce, message, &mut room), Ok(0))
}

impl Decoder for Opener {
    type Item = BytesMut;
    type Error = OpenError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, OpenError> {
        loop {
            if let Some(frame) = self.next_frame()? {
                return Ok(Some(frame));
            }
            let Some(head) = src.get(..LEN_PREFIX) else {
                return Ok(None);
            };
            let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
            if len < TAG_LEN {
                return Err(OpenError::Bad(format!(
                    "Noise message {} of {len} bytes (shorter than its tag)",
                    self.nonce
                )));
            }
            if src.len() < LEN_PREFIX + len {
                src.reserve(LEN_PREFIX + MAX_MESSAGE - src.len());
                return Ok(None);
            }
            let message = &src[LEN_PREFIX..LEN_PREFIX + len];
            let at = self.plain.len();
            // Room for the tag too: the cipher then opens the message in
            // place there, with no buffer of its own.
            self.plain.resize(at + len, 0);
            match self
                .keys
                .read_message(self.nonce, message, &mut self.plain[at..])
            {
                Ok(opened) => self.plain.truncate(at + opened),
                Err(e) => {
                    self.plain.truncate(at);
                    return Err(OpenError::Bad(format!(
                        "Noise message {} does not decrypt ({e}: altered, forged, \
                         replayed, reordered or after a dropped one)",
                        self.nonce
                    )));
                }
            }
            self.nonce += 1;
            src.advance(LEN_PREFIX + len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cert::NodeKey;
    use super::super::config::Secret;
    use super::super::noise;
    use super::*;

    fn keys() -> (Keys, Keys) {
        let s = noise::psk(&Secret::from("s"));
        let key = || NodeKey::generate().expect("random");
        let mut d = noise::dialer(&s, &key(), b"d", b"l").expect("builds");
        let mut l = noise::listener(&s, &key(), b"d", b"l").expect("builds");
        noise::read(&mut l, &noise::write(&mut d, &[]).expect("writes")).expect("reads");
        noise::read(&mut d, &noise::write(&mut l, &[]).expect("writes")).expect("reads");
        noise::read(&mut l, &noise::write(&mut d, &[]).expect("writes")).expect("reads");
        (
            Arc::new(noise::finish(d).expect("done")),
            Arc::new(noise::finish(l).expect("done")),
        )
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn frames_of_every_size_go_through_in_any_cuts() {
        let (d, l) = keys();
        let mut sealer = Sealer::new(d);
        let payloads: Vec<Vec<u8>> = [0usize, 1, 100, MAX_PIECE - 4, MAX_PIECE, 300_000]
            .iter()
            .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
            .collect();
        for p in &payloads {
            if p.len() < 1000 {
                sealer.gather().extend_from_slice(&framed(p));
            } else {
                sealer.seal_gathered().expect("seals");
                sealer.seal(&(p.len() as u32).to_be_bytes()).expect("seals");
                sealer.seal(p).expect("seals");
            }
        }
        sealer.seal_gathered().expect("seals");
        let wire = sealer.sealed().to_vec();
        let marker = &payloads[5][1000..1064];
        assert!(!wire.windows(marker.len()).any(|w| w == marker));
        for cut in [1usize, 7, 4096, 65_537, wire.len()] {
            let mut opener = Opener::new(Arc::clone(&l), 1 << 20);
            let mut src = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(cut) {
                src.extend_from_slice(piece);
                while let Some(frame) = opener.decode(&mut src).expect("opens") {
                    got.push(frame.to_vec());
                }
            }
            assert_eq!(got, payloads, "cut in pieces of {cut}");
            assert!(src.is_empty());
        }
    }

    #[test]
    fn a_flipped_byte_or_an_oversized_frame_is_an_error() {
        let (d, l) = keys();
        let mut sealer = Sealer::new(Arc::clone(&d));
        sealer.seal(&framed(b"hello")).expect("seals");
        let wire = sealer.sealed().to_vec();
        for at in [0, 1, 2, 5, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x10;
            let mut opener = Opener::new(Arc::clone(&l), 1 << 20);
            let mut src = BytesMut::from(&bad[..]);
            match opener.decode(&mut src) {
                Err(OpenError::Bad(_)) | Ok(None) => {}
                other => panic!("byte {at} flipped: {other:?}"),
            }
        }
        let mut sealer = Sealer::new(d);
        sealer.seal(&framed(&[0u8; 2000])).expect("seals");
        let mut opener = Opener::new(l, 1000);
        let mut src = BytesMut::from(sealer.sealed());
        assert!(matches!(opener.decode(&mut src), Err(OpenError::Bad(_))));
    }

    #[test]
    fn an_empty_message_opens_only_as_itself() {
        let (d, l) = keys();
        let mut sealer = Sealer::new(Arc::clone(&d));
        sealer.seal_empty().expect("seals");
        sealer.seal(&framed(b"after")).expect("seals");
        let wire = sealer.sealed().to_vec();
        assert_eq!(&wire[..LEN_PREFIX], &(TAG_LEN as u16).to_be_bytes());
        let empty = &wire[LEN_PREFIX..LEN_PREFIX + TAG_LEN];
        assert!(is_empty_message(&l, 0, empty));
        assert!(!is_empty_message(&l, 1, empty), "another nonce");
        assert!(!is_empty_message(&d, 0, empty), "the other direction's key");
        let mut flipped = empty.to_vec();
        flipped[3] ^= 1;
        assert!(!is_empty_message(&l, 0, &flipped));
        // The frames after it open from nonce 1.
        let mut opener = Opener::new(l, 1 << 20).starting_at(1);
        let mut src = BytesMut::from(&wire[LEN_PREFIX + TAG_LEN..]);
        let frame = opener.decode(&mut src).expect("opens").expect("a frame");
        assert_eq!(&frame[..], b"after");
    }

    #[test]
    fn the_sealed_buffer_is_reused() {
        let (d, _) = keys();
        let mut sealer = Sealer::new(d);
        sealer.seal(&[1u8; 100_000]).expect("seals");
        let first = sealer.sealed().len();
        sealer.advance(first);
        assert!(!sealer.has_sealed());
        sealer.seal(&[1u8; 100_000]).expect("seals");
        assert_eq!(sealer.out.len(), first, "no growth once written");
        sealer.advance(10);
        sealer.seal(&[1u8; 100]).expect("seals");
        assert_eq!(sealer.queued(), first - 10 + 100 + LEN_PREFIX + TAG_LEN);
    }
}
