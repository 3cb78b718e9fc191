//! A cell's control queue: messages from the node's links and arriving
//! actors. They are rare, so unlike a channel (whose first block of 32
//! slots is allocated at creation) an idle actor's queue allocates nothing.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use crate::sync::lock;

/// One reader (the cell), any number of senders; FIFO.
pub(crate) struct ControlQueue<T> {
    inner: Mutex<Inner<T>>,
    cell: AtomicWaker,
}

struct Inner<T> {
    queue: VecDeque<T>,
    /// The cell is gone: sends are refused.
    closed: bool,
}

impl<T> ControlQueue<T> {
    pub(crate) fn new() -> Self {
        ControlQueue {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                closed: false,
            }),
            cell: AtomicWaker::new(),
        }
    }

    /// A queue no cell reads: every send is refused.
    pub(crate) fn closed() -> Self {
        let queue = Self::new();
        queue.close();
        queue
    }

    /// Queues `item` for the cell; gives it back if the cell is gone.
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        {
            let mut inner = lock(&self.inner);
            if inner.closed {
                return Err(item);
            }
            inner.queue.push_back(item);
        }
        self.cell.wake();
        Ok(())
    }

    pub(crate) fn try_recv(&self) -> Option<T> {
        lock(&self.inner).queue.pop_front()
    }

    /// The next item, or `Pending` with the cell's waker registered.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<T> {
        if let Some(item) = self.try_recv() {
            return Poll::Ready(item);
        }
        self.cell.register(cx.waker());
        // A send between the look and the registration woke nobody.
        match self.try_recv() {
            Some(item) => Poll::Ready(item),
            None => Poll::Pending,
        }
    }

    /// The cell ends: later sends are refused, and what is queued is
    /// dropped (as a channel's receiver drops its messages).
    pub(crate) fn close(&self) {
        let dropped = {
            let mut inner = lock(&self.inner);
            inner.closed = true;
            std::mem::take(&mut inner.queue)
        };
        drop(dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_until_closed() {
        let queue = ControlQueue::new();
        assert!(queue.send(1).is_ok());
        assert!(queue.send(2).is_ok());
        assert_eq!(queue.try_recv(), Some(1));
        queue.close();
        assert_eq!(queue.try_recv(), None, "queued items dropped");
        assert_eq!(queue.send(3), Err(3));
        assert_eq!(ControlQueue::closed().send(4), Err(4));
    }
}
