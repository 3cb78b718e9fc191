//! Peer links: an ordered, reliable stream of frames between two nodes.
//!
//! A link is a sender half (cloneable, never blocks) and a receiver half read
//! by one task. `memory_pair` makes the in-process link two nodes of one
//! process use; the TCP link gives the same halves.

use bytes::Bytes;
use tokio::sync::mpsc;

/// The peer is gone: the frame was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("link closed")]
pub struct LinkClosed;

/// Sending half of a link. Frames arrive in the order they were sent.
#[derive(Debug, Clone)]
pub struct LinkSender {
    tx: mpsc::UnboundedSender<Bytes>,
}

/// Receiving half of a link.
#[derive(Debug)]
pub struct LinkReceiver {
    rx: mpsc::UnboundedReceiver<Bytes>,
}

impl LinkSender {
    /// Queues a frame for the peer.
    pub fn send(&self, frame: Bytes) -> Result<(), LinkClosed> {
        self.tx.send(frame).map_err(|_| LinkClosed)
    }

    /// Whether the peer's receiving half is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
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
    (LinkSender { tx }, LinkReceiver { rx })
}
