//! Peer links: an ordered, reliable stream of frames between two nodes.
//!
//! A link is a sender half (cloneable, never blocks) and a receiver half read
//! by one task. `memory_pair` makes the in-process link two nodes of one
//! process use; a TCP peer's sender comes with `TransportEvent::PeerUp` and
//! its frames with `TransportEvent::Frame`.

use bytes::Bytes;
use tokio::sync::mpsc;

/// The peer is gone: the frame was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("link closed")]
pub struct LinkClosed;

/// Sending half of a link. Frames arrive in the order they were sent.
#[derive(Debug, Clone)]
pub struct LinkSender {
    inner: SenderKind,
}

#[derive(Debug, Clone)]
enum SenderKind {
    /// The in-process channel of `memory_pair`.
    Memory(mpsc::UnboundedSender<Bytes>),
    /// The outgoing queue of a TCP peer session.
    Tcp {
        tx: mpsc::UnboundedSender<Bytes>,
        max_message: usize,
    },
}

/// Receiving half of a link.
#[derive(Debug)]
pub struct LinkReceiver {
    rx: mpsc::UnboundedReceiver<Bytes>,
}

impl LinkSender {
    /// The sender of a TCP session: frames queued on `tx` are delivered by
    /// the session exactly once, in order; `max_message` is the peer's limit.
    pub(crate) fn tcp(tx: mpsc::UnboundedSender<Bytes>, max_message: usize) -> Self {
        LinkSender {
            inner: SenderKind::Tcp { tx, max_message },
        }
    }

    /// Queues a frame for the peer; never blocks.
    ///
    /// Over TCP the frame is delivered exactly once, in order, across
    /// reconnects, or the peer is reported lost
    /// (`TransportEvent::PeerLost`). It fails if the session is gone, or if
    /// the frame is bigger than the peer's `max_message` (logged).
    pub fn send(&self, frame: Bytes) -> Result<(), LinkClosed> {
        match &self.inner {
            SenderKind::Memory(tx) => tx.send(frame).map_err(|_| LinkClosed),
            SenderKind::Tcp { tx, max_message } => {
                if frame.len() > *max_message {
                    tracing::error!(
                        len = frame.len(),
                        max = max_message,
                        "frame refused: bigger than the peer's max_message"
                    );
                    return Err(LinkClosed);
                }
                tx.send(frame).map_err(|_| LinkClosed)
            }
        }
    }

    /// Whether the peer's receiving half (or the TCP session) is gone.
    pub fn is_closed(&self) -> bool {
        match &self.inner {
            SenderKind::Memory(tx) | SenderKind::Tcp { tx, .. } => tx.is_closed(),
        }
    }
}

impl LinkReceiver {
    /// The next frame, or `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }
}

/// An in-process link: frames sent on the returned sender arrive on the
/// returned receiver. Two of these make a duplex link between two nodes.
pub fn memory_pair() -> (LinkSender, LinkReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        LinkSender {
            inner: SenderKind::Memory(tx),
        },
        LinkReceiver { rx },
    )
}
