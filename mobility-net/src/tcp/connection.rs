//! One authenticated socket: a reader task that decodes session frames and a
//! writer task that batches them; the peer task owns both through [`Conn`].

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::task::AbortHandle;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use super::frame::{decode_wire, encode_wire, write_frame, Wire};

/// Tells the sockets of one peer apart.
pub(crate) type ConnId = u64;

/// What a socket reports to its peer task.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// A session frame arrived.
    Frame(ConnId, Wire),
    /// The socket is gone (the reason is logged by the peer task).
    Closed(ConnId, String),
}

/// The two halves of an authenticated socket, as the handshake leaves them.
#[derive(Debug)]
pub(crate) struct Socket {
    /// Frames in (the codec's limit is raised to `max_frame` on attach).
    pub(crate) reader: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    /// Bytes out.
    pub(crate) writer: BufWriter<OwnedWriteHalf>,
    /// Counts against `max_connections` while the socket lives.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// A running socket. Dropping it closes the socket.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Its id within the peer.
    pub(crate) id: ConnId,
    /// Whether this node dialed it.
    pub(crate) dialed_by_me: bool,
    out: mpsc::UnboundedSender<Wire>,
    tasks: [AbortHandle; 2],
}

impl Drop for Conn {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Conn {
    /// Starts the reader and writer of `socket`; frames bigger than
    /// `max_frame` close it.
    pub(crate) fn spawn(
        id: ConnId,
        dialed_by_me: bool,
        socket: Socket,
        max_frame: usize,
        events: mpsc::UnboundedSender<ConnEvent>,
    ) -> Conn {
        let Socket {
            mut reader,
            writer,
            permit,
        } = socket;
        reader.decoder_mut().set_max_frame_length(max_frame);
        let permit = Arc::new(permit);
        let (out, rx) = mpsc::unbounded_channel();
        let read = tokio::spawn(read_loop(id, reader, events.clone(), Arc::clone(&permit)));
        let write = tokio::spawn(write_loop(id, writer, rx, events, permit));
        Conn {
            id,
            dialed_by_me,
            out,
            tasks: [read.abort_handle(), write.abort_handle()],
        }
    }

    /// Queues a frame for the writer.
    pub(crate) fn send(&self, wire: Wire) {
        // If the writer is gone its `Closed` event is on its way.
        let _ = self.out.send(wire);
    }
}

async fn read_loop(
    id: ConnId,
    mut reader: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    events: mpsc::UnboundedSender<ConnEvent>,
    _permit: Arc<OwnedSemaphorePermit>,
) {
    let reason = loop {
        match reader.next().await {
            Some(Ok(bytes)) => match decode_wire(&bytes.freeze()) {
                Ok(wire) => {
                    if events.send(ConnEvent::Frame(id, wire)).is_err() {
                        return;
                    }
                }
                Err(e) => break format!("bad frame: {e}"),
            },
            Some(Err(e)) => break format!("read failed: {e}"),
            None => break "closed by the peer".to_owned(),
        }
    };
    let _ = events.send(ConnEvent::Closed(id, reason));
}

async fn write_loop(
    id: ConnId,
    mut writer: BufWriter<OwnedWriteHalf>,
    mut rx: mpsc::UnboundedReceiver<Wire>,
    events: mpsc::UnboundedSender<ConnEvent>,
    _permit: Arc<OwnedSemaphorePermit>,
) {
    let mut buf = Vec::new();
    let result: std::io::Result<()> = async {
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            // Write every frame queued, then flush once.
            while let Some(wire) = next {
                let tail = encode_wire(wire, &mut buf)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                write_frame(&mut writer, &buf, tail.as_deref().unwrap_or_default()).await?;
                next = rx.try_recv().ok();
            }
            writer.flush().await?;
        }
        writer.shutdown().await
    }
    .await;
    if let Err(e) = result {
        let _ = events.send(ConnEvent::Closed(id, format!("write failed: {e}")));
    }
}
