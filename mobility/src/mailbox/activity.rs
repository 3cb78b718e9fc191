//! What a slot counts for observers (`Node::actors`): how many messages
//! wait for the actor and how many it handled here.
//!
//! Every count is a relaxed atomic: observers read a moment's picture, and
//! nothing on a message's path waits for them. The counters sit on a cache
//! line of their own, so that the writes of senders and of the cell do not
//! slow down the readers of the entry's other fields.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// An actor's counts on one node.
#[repr(align(64))]
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Envelopes put in the mailbox and not yet taken out by the cell.
    in_mailbox: AtomicUsize,
    /// Messages the cell has taken in and not handled yet, as it last said.
    in_cell: AtomicUsize,
    /// Messages (requests, casts, timers) handled on this node.
    handled: AtomicU64,
}

impl Activity {
    /// An envelope is about to go into the mailbox (counted first, so that
    /// the cell taking it out never sees the count below zero).
    pub(crate) fn putting(&self) {
        self.in_mailbox.fetch_add(1, Relaxed);
    }

    /// An envelope counted by `putting` did not go in, or the cell took it
    /// out.
    pub(crate) fn taken(&self) {
        self.in_mailbox.fetch_sub(1, Relaxed);
    }

    /// The cell holds `queued` messages ready to handle.
    pub(crate) fn set_in_cell(&self, queued: usize) {
        self.in_cell.store(queued, Relaxed);
    }

    /// One handler ran. Only the actor's current owner (its cell, or the
    /// caller it is lent to) counts, one at a time, and ownership passes
    /// through the idle slot's sequentially consistent word: a plain load
    /// and store are enough, no read-modify-write.
    pub(crate) fn count_handled(&self) {
        self.handled
            .store(self.handled.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Messages waiting for the actor now: in the mailbox and in the cell.
    pub(crate) fn depth(&self) -> usize {
        self.in_mailbox
            .load(Relaxed)
            .saturating_add(self.in_cell.load(Relaxed))
    }

    /// Messages handled on this node so far.
    pub(crate) fn handled(&self) -> u64 {
        self.handled.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_the_mailbox_and_the_cells_queue() {
        let activity = Activity::default();
        activity.putting();
        activity.putting();
        activity.set_in_cell(3);
        assert_eq!(activity.depth(), 5);
        activity.taken();
        activity.set_in_cell(0);
        assert_eq!(activity.depth(), 1);
        activity.count_handled();
        activity.count_handled();
        assert_eq!(activity.handled(), 2);
    }
}
