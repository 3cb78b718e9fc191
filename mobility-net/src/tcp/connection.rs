//! One authenticated socket, driven by its peer task (no task of its own):
//! frames come in through a length-delimited reader, frames going out are
//! queued in memory and written without blocking; the peer task waits for
//! the socket to be writable only when the kernel's buffer is full.
//!
//! Every frame carries a tag (see the version history in `handshake.rs`):
//! a truncated HMAC-SHA256 under its direction's key over its number on
//! the socket and its payload. A frame whose tag does not verify is never
//! decoded: the socket is closed with the reason.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use super::establish::FrameKeys;
use super::frame::{decode_wire, encode_wire, Wire};
use super::handshake::TAG_LEN;

/// Chunks up to this size are copied next to their header (one segment,
/// one write); bigger ones are written from their own memory.
const COPY_MAX: usize = 16 * 1024;
/// Most segments given to one vectored write.
const MAX_SLICES: usize = 64;

/// The two halves of an authenticated socket, as the handshake leaves them.
#[derive(Debug)]
pub(crate) struct Socket {
    /// Frames in (the codec's limit is raised to `max_frame` on attach).
    pub(crate) reader: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    /// Bytes out.
    pub(crate) writer: OwnedWriteHalf,
    /// Counts against `max_connections` while the socket lives.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// The tags of one direction of a socket.
struct FrameMac {
    /// Keyed once; cloned for each frame.
    keyed: blake3::Hasher,
    /// The number of the next frame in this direction.
    next: u64,
}

impl std::fmt::Debug for FrameMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameMac")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl FrameMac {
    fn new(key: &[u8; 32]) -> Self {
        FrameMac {
            keyed: blake3::Hasher::new_keyed(key),
            next: 0,
        }
    }

    /// The MAC of the next frame, its number already fed in.
    fn next_frame(&mut self) -> blake3::Hasher {
        let mut mac = self.keyed.clone();
        mac.update(&self.next.to_be_bytes());
        self.next += 1;
        mac
    }
}

/// The receiving side of a socket: frames and the check of their tags.
#[derive(Debug)]
pub(crate) struct Inbound {
    reader: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    check: FrameMac,
}

/// A socket attached to a peer task. Dropping it closes the socket.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Whether this node dialed it.
    pub(crate) dialed_by_me: bool,
    inbound: Inbound,
    writer: OwnedWriteHalf,
    seal: FrameMac,
    /// Segments ready to be written, oldest first.
    out: VecDeque<Bytes>,
    /// Bytes being gathered after `out` (small frames, headers).
    buf: BytesMut,
    /// Bytes in `out` and `buf`.
    queued: usize,
    /// Scratch space for headers.
    head: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    /// Takes over `socket`, whose frames are tagged with `keys`; frames
    /// bigger than `max_frame` close it.
    pub(crate) fn new(
        dialed_by_me: bool,
        socket: Socket,
        max_frame: usize,
        keys: &FrameKeys,
    ) -> Conn {
        let Socket {
            mut reader,
            writer,
            permit,
        } = socket;
        reader.decoder_mut().set_max_frame_length(max_frame);
        Conn {
            dialed_by_me,
            inbound: Inbound {
                reader,
                check: FrameMac::new(&keys.recv),
            },
            writer,
            seal: FrameMac::new(&keys.send),
            out: VecDeque::new(),
            buf: BytesMut::new(),
            queued: 0,
            head: Vec::new(),
            _permit: permit,
        }
    }

    /// Queues a frame; it goes out with the next [`Conn::flush`].
    pub(crate) fn push(&mut self, wire: Wire) -> Result<(), String> {
        let tail = encode_wire(wire, &mut self.head).map_err(|e| format!("encode failed: {e}"))?;
        let tail = tail.unwrap_or_default();
        let len = u32::try_from(self.head.len() + tail.len() + TAG_LEN)
            .map_err(|_| "frame longer than 4 GiB".to_owned())?;
        let mut mac = self.seal.next_frame();
        mac.update(&self.head);
        mac.update(&tail);
        let tag = *mac.finalize().as_bytes();
        self.buf.reserve(4 + self.head.len() + TAG_LEN);
        self.buf.put_u32(len);
        self.buf.put_slice(&self.head);
        if tail.len() <= COPY_MAX {
            self.buf.put_slice(&tail);
        } else {
            self.out.push_back(self.buf.split().freeze());
            self.out.push_back(tail);
        }
        self.buf.put_slice(&tag[..TAG_LEN]);
        self.queued += 4 + len as usize;
        Ok(())
    }

    /// Whether bytes wait to be written.
    pub(crate) fn has_output(&self) -> bool {
        self.queued > 0
    }

    /// How many bytes wait to be written.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Writes what the socket takes without waiting.
    pub(crate) fn flush(&mut self) -> Result<(), String> {
        if !self.buf.is_empty() {
            self.out.push_back(self.buf.split().freeze());
        }
        while !self.out.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut n = 0;
            for (slot, segment) in slices.iter_mut().zip(&self.out) {
                *slot = IoSlice::new(segment);
                n += 1;
            }
            match self.writer.try_write_vectored(&slices[..n]) {
                Ok(0) => return Err("write failed: the socket takes no more bytes".into()),
                Ok(written) => self.advance(written),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write failed: {e}")),
            }
        }
        Ok(())
    }

    fn advance(&mut self, mut written: usize) {
        self.queued -= written;
        while written > 0 {
            let Some(front) = self.out.front_mut() else {
                return;
            };
            if written < front.len() {
                front.advance(written);
                return;
            }
            written -= front.len();
            self.out.pop_front();
        }
    }

    /// The halves the peer task waits on: the reader, and the writer if
    /// bytes wait for room in the socket.
    pub(crate) fn halves(&mut self) -> (&mut Inbound, Option<&OwnedWriteHalf>) {
        let waiting = !self.out.is_empty();
        (&mut self.inbound, waiting.then_some(&self.writer))
    }
}

/// The next frame of a socket, its tag verified before anything of it is
/// decoded: `Err` is the reason to close the socket.
pub(crate) async fn read_frame(inbound: &mut Inbound) -> Result<Wire, String> {
    let mut frame = match inbound.reader.next().await {
        Some(Ok(frame)) => frame,
        Some(Err(e)) => return Err(format!("read failed: {e}")),
        None => return Err("closed by the peer".to_owned()),
    };
    let number = inbound.check.next;
    if frame.len() < TAG_LEN {
        return Err(format!("bad frame: frame {number} is shorter than a tag"));
    }
    let tag = frame.split_off(frame.len() - TAG_LEN);
    let mut mac = inbound.check.next_frame();
    mac.update(&frame);
    if !same_tag(&mac.finalize().as_bytes()[..TAG_LEN], &tag) {
        return Err(format!(
            "bad frame: the tag of frame {number} does not verify \
             (altered, forged, replayed, reordered or after a dropped frame)"
        ));
    }
    decode_wire(&frame.freeze()).map_err(|e| format!("bad frame: {e}"))
}

/// Compares two tags in constant time (no early exit on the first
/// difference, so timing tells an attacker nothing).
fn same_tag(ours: &[u8], theirs: &[u8]) -> bool {
    ours.len() == theirs.len()
        && ours
            .iter()
            .zip(theirs)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
