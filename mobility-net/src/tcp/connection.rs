//! One authenticated socket, driven by its peer task (no task of its own):
//! frames come in through the reader's codec, which decrypts them
//! (`record.rs`); frames going out are sealed into one buffer in memory
//! and written without blocking; the peer task waits for the socket to be
//! writable only when the kernel's buffer is full.
//!
//! Every byte after the handshake is encrypted and authenticated by the
//! socket's Noise keys (see the version history in `handshake.rs`): a
//! message that does not decrypt is never decoded, the socket is closed
//! with the reason.

use std::io;

use bytes::BufMut;
use futures_util::StreamExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::codec::FramedRead;

use super::frame::{decode_wire, encode_wire, Wire};
use super::record::{OpenError, Opener, Sealer};

/// Chunks up to this size are gathered with the frames around them and
/// sealed together; bigger ones are sealed straight from their own memory.
const COPY_MAX: usize = 16 * 1024;

/// The two halves of an authenticated socket, as the handshake leaves them.
#[derive(Debug)]
pub(crate) struct Socket {
    /// Frames in, decrypted (the codec's limit is set to `max_frame` on
    /// attach).
    pub(crate) reader: FramedRead<OwnedReadHalf, Opener>,
    /// Bytes out.
    pub(crate) writer: OwnedWriteHalf,
    /// Seals what goes out.
    pub(crate) sealer: Sealer,
    /// Counts against `max_connections` while the socket lives.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// The receiving side of a socket.
#[derive(Debug)]
pub(crate) struct Inbound {
    reader: FramedRead<OwnedReadHalf, Opener>,
}

/// A socket attached to a peer task. Dropping it closes the socket.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Whether this node dialed it.
    pub(crate) dialed_by_me: bool,
    inbound: Inbound,
    writer: OwnedWriteHalf,
    sealer: Sealer,
    /// Scratch space for headers.
    head: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    /// Takes over `socket`; frames bigger than `max_frame` close it.
    pub(crate) fn new(dialed_by_me: bool, socket: Socket, max_frame: usize) -> Conn {
        let Socket {
            mut reader,
            writer,
            sealer,
            permit,
        } = socket;
        reader.decoder_mut().set_max_frame(max_frame);
        Conn {
            dialed_by_me,
            inbound: Inbound { reader },
            writer,
            sealer,
            head: Vec::new(),
            _permit: permit,
        }
    }

    /// Queues a frame; it goes out with the next [`Conn::flush`].
    pub(crate) fn push(&mut self, wire: Wire) -> Result<(), String> {
        let tail = encode_wire(wire, &mut self.head).map_err(|e| format!("encode failed: {e}"))?;
        let tail = tail.unwrap_or_default();
        let len = u32::try_from(self.head.len() + tail.len())
            .map_err(|_| "frame longer than 4 GiB".to_owned())?;
        let gathered = self.sealer.gather();
        gathered.put_u32(len);
        gathered.put_slice(&self.head);
        if tail.len() <= COPY_MAX {
            gathered.put_slice(&tail);
            Ok(())
        } else {
            self.sealer.seal_gathered()?;
            self.sealer.seal(&tail)
        }
    }

    /// Whether bytes wait to be written.
    pub(crate) fn has_output(&self) -> bool {
        self.sealer.queued() > 0
    }

    /// How many bytes wait to be written.
    pub(crate) fn queued(&self) -> usize {
        self.sealer.queued()
    }

    /// Writes what the socket takes without waiting.
    pub(crate) fn flush(&mut self) -> Result<(), String> {
        self.sealer.seal_gathered()?;
        while self.sealer.has_sealed() {
            match self.writer.try_write(self.sealer.sealed()) {
                Ok(0) => return Err("write failed: the socket takes no more bytes".into()),
                Ok(written) => self.sealer.advance(written),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write failed: {e}")),
            }
        }
        Ok(())
    }

    /// The halves the peer task waits on: the reader, and the writer if
    /// bytes wait for room in the socket.
    pub(crate) fn halves(&mut self) -> (&mut Inbound, Option<&OwnedWriteHalf>) {
        let waiting = self.sealer.has_sealed();
        (&mut self.inbound, waiting.then_some(&self.writer))
    }
}

/// The next frame of a socket, decrypted and authenticated before
/// anything of it is decoded: `Err` is the reason to close the socket.
pub(crate) async fn read_frame(inbound: &mut Inbound) -> Result<Wire, String> {
    let frame = match inbound.reader.next().await {
        Some(Ok(frame)) => frame,
        Some(Err(OpenError::Bad(reason))) => return Err(format!("bad frame: {reason}")),
        Some(Err(OpenError::Io(e))) => return Err(format!("read failed: {e}")),
        None => return Err("closed by the peer".to_owned()),
    };
    decode_wire(&frame.freeze()).map_err(|e| format!("bad frame: {e}"))
}
