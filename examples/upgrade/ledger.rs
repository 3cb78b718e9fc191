//! The load's bookkeeping, kept in the counter's state in both builds (one
//! client sends numbered messages; the counter checks each arrives once and
//! in order, wherever it lives and whichever version handles it).

use serde::{Deserialize, Serialize};

/// What a counter saw of the load.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ledger {
    /// The next sequence number expected.
    pub next: u64,
    /// Messages handled (each sequence number counted once).
    pub handled: u64,
    /// Messages seen again.
    pub duplicates: u64,
    /// Messages that skipped ahead of one not seen yet.
    pub out_of_order: u64,
}

impl Ledger {
    /// Records message `seq`.
    pub fn record(&mut self, seq: u64) {
        if seq < self.next {
            self.duplicates += 1;
            return;
        }
        if seq > self.next {
            self.out_of_order += 1;
        }
        self.next = seq + 1;
        self.handled += 1;
    }
}

/// A counter's answer to `stats`: its ledger, the version that runs it and
/// the node it runs on.
pub type Stats = (Ledger, u32, String);
