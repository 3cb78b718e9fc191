//! What a slot counts for observers (`Node::actors`): how many messages
//! wait for the actor and how many it handled here; and what it records
//! through the metrics facade per handled message (`api::metrics`).
//!
//! Every count is a relaxed atomic: observers read a moment's picture, and
//! nothing on a message's path waits for them. The counters sit on a cache
//! line of their own, so that the writes of senders and of the cell do not
//! slow down the readers of the entry's other fields.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use metrics::{Counter, Histogram};

use crate::api::metrics::TypeMeters;

/// An actor's counts on one node.
#[repr(align(64))]
#[derive(Debug)]
pub(crate) struct Activity {
    /// Envelopes put in the mailbox and not yet taken out by the cell.
    in_mailbox: AtomicUsize,
    /// Messages the cell has taken in and not handled yet, as it last said.
    in_cell: AtomicUsize,
    /// Messages (requests, casts, timers) handled on this node.
    handled: AtomicU64,
    /// The type's metrics on this node, copied from its `TypeMeters` (a
    /// copy records into the same series), if the node records: read on
    /// every message, so kept on this line rather than behind a pointer,
    /// and `None` rather than a no-op handle, so that not recording costs
    /// a test and no call.
    handled_metric: Option<Counter>,
    /// The handler time histogram, if handlers are timed (only with a
    /// recorder: two clock reads a message otherwise spent for nothing).
    handler_seconds: Option<Histogram>,
}

impl Activity {
    pub(crate) fn new(meters: &TypeMeters) -> Self {
        Activity {
            in_mailbox: AtomicUsize::new(0),
            in_cell: AtomicUsize::new(0),
            handled: AtomicU64::new(0),
            handled_metric: meters.recording.then(|| meters.handled.clone()),
            handler_seconds: meters.recording.then(|| meters.handler_seconds.clone()),
        }
    }

    // The methods below run on every message, from code generic in the
    // actor type (so compiled in the user's crate): `#[inline]` lets them
    // be inlined there.

    /// A handler is about to run: when, if handlers are timed.
    #[inline]
    pub(crate) fn handler_starts(&self) -> Option<Instant> {
        self.handler_seconds.as_ref().map(|_| Instant::now())
    }

    /// A handler begun at `started` ran: counted here and in the metrics.
    #[inline]
    pub(crate) fn handler_ran(&self, started: Option<Instant>) {
        self.count_handled();
        if let Some(handled) = &self.handled_metric {
            handled.increment(1);
        }
        if let (Some(histogram), Some(started)) = (&self.handler_seconds, started) {
            histogram.record(started.elapsed());
        }
    }

    /// An envelope is about to go into the mailbox (counted first, so that
    /// the cell taking it out never sees the count below zero).
    #[inline]
    pub(crate) fn putting(&self) {
        self.in_mailbox.fetch_add(1, Relaxed);
    }

    /// An envelope counted by `putting` did not go in, or the cell took it
    /// out.
    #[inline]
    pub(crate) fn taken(&self) {
        self.in_mailbox.fetch_sub(1, Relaxed);
    }

    /// The cell holds `queued` messages ready to handle.
    #[inline]
    pub(crate) fn set_in_cell(&self, queued: usize) {
        self.in_cell.store(queued, Relaxed);
    }

    /// One handler ran. Only the actor's current owner (its cell, or the
    /// caller it is lent to) counts, one at a time, and ownership passes
    /// through the idle slot's sequentially consistent word: a plain load
    /// and store are enough, no read-modify-write.
    #[inline]
    fn count_handled(&self) {
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
        let activity = Activity::new(&TypeMeters::noop("n", "t"));
        activity.putting();
        activity.putting();
        activity.set_in_cell(3);
        assert_eq!(activity.depth(), 5);
        activity.taken();
        activity.set_in_cell(0);
        assert_eq!(activity.depth(), 1);
        assert!(
            activity.handler_starts().is_none(),
            "not timed: no clock read"
        );
        activity.handler_ran(activity.handler_starts());
        activity.handler_ran(None);
        assert_eq!(activity.handled(), 2);
    }
}
