//! Exactly once and in order, per stream: the pure core that numbers nothing
//! and decides everything, so property tests can drive it without sockets.
//!
//! Every message toward an actor carries its stream (`Origin`) and a number
//! given by the cell of that stream. Wherever the actor is, its tracker hands
//! out a message only when every lower number of the same stream has been
//! handed out, and drops any number it has seen. Messages that took a longer
//! route (through an old location) therefore cannot be overtaken by those
//! that went direct, and a retransmitted one is never handled twice.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use serde::{Deserialize, Serialize};

/// What the tracker did with a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted<T> {
    /// It (and any held ones it unblocked) went to the ready queue, in order;
    /// the number is how many.
    Ready(usize),
    /// Held until the lower numbers arrive.
    Held,
    /// Already handed out once: dropped.
    Duplicate(T),
}

/// Per-stream next expected number and out-of-order messages held back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "S: Serialize + Eq + Hash, T: Serialize",
    deserialize = "S: Deserialize<'de> + Eq + Hash, T: Deserialize<'de>"
))]
pub struct Tracker<S, T> {
    expected: HashMap<S, u64, StreamHash>,
    held: HashMap<S, BTreeMap<u64, T>, StreamHash>,
}

/// Streams are named by this node and by authenticated peers only, so a
/// fast unkeyed hash (FxHash's mixing) is enough; this map is on every
/// message's path.
pub type StreamHash = BuildHasherDefault<StreamHasher>;

/// See [`StreamHash`].
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamHasher(u64);

impl StreamHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for StreamHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl<S: Clone + Eq + Hash, T> Default for Tracker<S, T> {
    fn default() -> Self {
        Tracker {
            expected: HashMap::default(),
            held: HashMap::default(),
        }
    }
}

impl<S: Clone + Eq + Hash, T> Tracker<S, T> {
    /// Takes message `seq` of `stream`; whatever is now next in order is
    /// pushed to `ready`.
    pub fn accept(
        &mut self,
        stream: &S,
        seq: u64,
        item: T,
        ready: &mut VecDeque<T>,
    ) -> Accepted<T> {
        // The common case, one lookup: the next number of a known stream
        // with nothing held back anywhere.
        if self.held.is_empty() {
            if let Some(slot) = self.expected.get_mut(stream) {
                if *slot == seq {
                    *slot += 1;
                    ready.push_back(item);
                    return Accepted::Ready(1);
                }
            }
        }
        let expected = self.expected.get(stream).copied().unwrap_or(0);
        if seq < expected {
            return Accepted::Duplicate(item);
        }
        if seq > expected {
            let held = self.held.entry(stream.clone()).or_default();
            if held.contains_key(&seq) {
                return Accepted::Duplicate(item);
            }
            held.insert(seq, item);
            return Accepted::Held;
        }
        ready.push_back(item);
        let mut next = expected + 1;
        if self.held.is_empty() {
            match self.expected.get_mut(stream) {
                Some(slot) => *slot = next,
                None => {
                    self.expected.insert(stream.clone(), next);
                }
            }
            return Accepted::Ready(1);
        }
        if let Some(held) = self.held.get_mut(stream) {
            while let Some(item) = held.remove(&next) {
                ready.push_back(item);
                next += 1;
            }
            if held.is_empty() {
                self.held.remove(stream);
            }
        }
        match self.expected.get_mut(stream) {
            Some(slot) => *slot = next,
            None => {
                self.expected.insert(stream.clone(), next);
            }
        }
        Accepted::Ready((next - expected) as usize)
    }

    /// The next number `stream` will hand out (0 for an unknown stream).
    pub fn next_expected(&self, stream: &S) -> u64 {
        self.expected.get(stream).copied().unwrap_or(0)
    }

    /// Takes every held message out (for a migration that carries them as
    /// plain messages); the expected numbers are kept.
    pub fn take_held(&mut self) -> Vec<(S, u64, T)> {
        let mut out = Vec::new();
        for (stream, held) in self.held.drain() {
            out.extend(
                held.into_iter()
                    .map(|(seq, item)| (stream.clone(), seq, item)),
            );
        }
        out
    }

    /// The messages held back, in no particular order.
    pub fn held(&self) -> impl Iterator<Item = &T> {
        self.held.values().flat_map(BTreeMap::values)
    }

    /// A tracker with the same expected numbers and nothing held.
    pub fn clone_expected<U>(&self) -> Tracker<S, U> {
        Tracker {
            expected: self.expected.clone(),
            held: HashMap::default(),
        }
    }

    /// Number of messages held back.
    #[cfg(test)]
    pub fn held_len(&self) -> usize {
        self.held.values().map(BTreeMap::len).sum()
    }

    /// Maps the held messages (e.g. to their wire form).
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Tracker<S, U> {
        Tracker {
            expected: self.expected,
            held: self
                .held
                .into_iter()
                .map(|(s, held)| (s, held.into_iter().map(|(k, v)| (k, f(v))).collect()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn in_order_passes_straight_through() {
        let mut t: Tracker<u8, u64> = Tracker::default();
        let mut ready = VecDeque::new();
        for i in 0..5 {
            assert_eq!(t.accept(&1, i, i, &mut ready), Accepted::Ready(1));
        }
        assert_eq!(ready, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn gap_holds_then_releases_in_order_and_drops_duplicates() {
        let mut t: Tracker<u8, u64> = Tracker::default();
        let mut ready = VecDeque::new();
        assert_eq!(t.accept(&1, 2, 2, &mut ready), Accepted::Held);
        assert_eq!(t.accept(&1, 1, 1, &mut ready), Accepted::Held);
        assert_eq!(t.accept(&1, 2, 2, &mut ready), Accepted::Duplicate(2));
        assert_eq!(t.accept(&1, 0, 0, &mut ready), Accepted::Ready(3));
        assert_eq!(t.accept(&1, 1, 1, &mut ready), Accepted::Duplicate(1));
        assert_eq!(ready, [0, 1, 2]);
        assert_eq!(t.held_len(), 0);
    }

    proptest! {
        /// Any interleaving of several streams, each delivered in any order
        /// with any duplicates, comes out exactly once and in order per stream.
        #[test]
        fn any_arrival_order_is_delivered_exactly_once_in_order(
            arrivals in proptest::collection::vec((0u8..3, 0u64..40), 0..300)
        ) {
            let mut t: Tracker<u8, (u8, u64)> = Tracker::default();
            let mut out: HashMap<u8, Vec<u64>> = HashMap::new();
            let mut seen: HashMap<u8, std::collections::BTreeSet<u64>> = HashMap::new();
            let mut ready = VecDeque::new();
            for (stream, seq) in arrivals {
                seen.entry(stream).or_default().insert(seq);
                t.accept(&stream, seq, (stream, seq), &mut ready);
                for (s, n) in ready.drain(..) {
                    out.entry(s).or_default().push(n);
                }
            }
            for (stream, numbers) in &seen {
                // Handed out: exactly the gap-free prefix 0..k of what arrived.
                let prefix: Vec<u64> = (0..).take_while(|n| numbers.contains(n)).collect();
                prop_assert_eq!(out.get(stream).cloned().unwrap_or_default(), prefix.clone());
                let held = numbers.len() - prefix.len();
                prop_assert_eq!(
                    t.held.get(stream).map(BTreeMap::len).unwrap_or(0), held
                );
            }
        }

        /// Moving the tracker (serializing it, as a migration does) in the
        /// middle of a stream changes nothing.
        #[test]
        fn tracker_survives_a_move(split in 0usize..60, order in Just(()).prop_perturb(|_, mut rng| {
            let mut v: Vec<u64> = (0..60).collect();
            for i in (1..v.len()).rev() { v.swap(i, (rng.next_u32() as usize) % (i + 1)); }
            v
        })) {
            let mut t: Tracker<u8, u64> = Tracker::default();
            let mut out = VecDeque::new();
            for (i, seq) in order.iter().enumerate() {
                if i == split {
                    let mut bytes = Vec::new();
                    ciborium::into_writer(&t, &mut bytes).expect("encode");
                    t = ciborium::from_reader(bytes.as_slice()).expect("decode");
                }
                t.accept(&0, *seq, *seq, &mut out);
            }
            prop_assert_eq!(Vec::from(out), (0..60).collect::<Vec<u64>>());
        }
    }
}
