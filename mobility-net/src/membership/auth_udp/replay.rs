//! Replay state: a sliding window of counters per sender (RFC 6479's bitmap
//! ring, as WireGuard keeps it), the tokens learned from peers, and the rate
//! limit of probes. Every table is bounded, and only datagrams that passed
//! the AEAD check ever add to them.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// 64-bit words in a window's ring.
const WORDS: usize = 16;
/// Counters this far behind the newest one seen are refused: the ring holds
/// `WORDS` words, one of which is always being filled.
pub(crate) const WINDOW: u64 = ((WORDS - 1) * 64) as u64;
/// Senders whose replay state is kept (and peer addresses whose token is
/// remembered). Each sender's state is about 150 bytes.
pub(super) const MAX_SENDERS: usize = 1024;
/// At most one probe per sender address this often.
pub(super) const PROBE_EVERY: Duration = Duration::from_millis(100);

/// Why a datagram that authenticated was taken for a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// This counter was already accepted.
    Duplicate,
    /// Older than the window, or older than the first counter accepted from
    /// this incarnation.
    TooOld,
    /// The sender has restarted since: this incarnation is over.
    OldIncarnation,
    /// Claims to come from this node itself (a datagram of ours reflected).
    Reflected,
}

impl std::fmt::Display for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Replay::Duplicate => "replay: counter already seen",
            Replay::TooOld => "replay: counter older than the window",
            Replay::OldIncarnation => "replay: from an incarnation the sender has left",
            Replay::Reflected => "replay: one of our own datagrams reflected",
        })
    }
}

/// The counters seen from one incarnation of one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    /// The first counter accepted: anything older is refused (it may have
    /// been sent, and answered, before this window existed).
    floor: u64,
    /// The newest counter accepted.
    highest: u64,
    /// Bit `c % 64` of word `(c / 64) % WORDS` is set if counter `c` (within
    /// the window) was accepted.
    ring: [u64; WORDS],
}

impl Window {
    /// A window whose first accepted counter is `counter`.
    pub(crate) fn new(counter: u64) -> Self {
        let mut window = Window {
            floor: counter,
            highest: counter,
            ring: [0; WORDS],
        };
        window.mark(counter);
        window
    }

    fn slot(counter: u64) -> (usize, u64) {
        // `WORDS` is a power of two below 2^32: the cast keeps the low bits.
        let word = ((counter / 64) % WORDS as u64) as usize;
        (word, 1u64 << (counter % 64))
    }

    fn mark(&mut self, counter: u64) {
        let (word, bit) = Self::slot(counter);
        self.ring[word] |= bit;
    }

    /// Accepts `counter` once: refuses it if it was seen, or is older than
    /// the window or the floor.
    pub(crate) fn check_and_mark(&mut self, counter: u64) -> Result<(), Replay> {
        if counter < self.floor {
            return Err(Replay::TooOld);
        }
        if counter > self.highest {
            // Clear the words the window slides over (at most all of them).
            let current = self.highest / 64;
            let target = counter / 64;
            let advance = (target - current).min(WORDS as u64);
            for step in 1..=advance {
                let word = ((current + step) % WORDS as u64) as usize;
                self.ring[word] = 0;
            }
            self.highest = counter;
            self.mark(counter);
            return Ok(());
        }
        if self.highest - counter >= WINDOW {
            return Err(Replay::TooOld);
        }
        let (word, bit) = Self::slot(counter);
        if self.ring[word] & bit != 0 {
            return Err(Replay::Duplicate);
        }
        self.ring[word] |= bit;
        Ok(())
    }
}

/// What a receiver knows of one sender: its newest incarnation and the
/// counters seen from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SenderState {
    incarnation: u64,
    window: Window,
}

impl SenderState {
    pub(crate) fn new(incarnation: u64, counter: u64) -> Self {
        SenderState {
            incarnation,
            window: Window::new(counter),
        }
    }

    /// Accepts a datagram numbered `counter` of `incarnation` once. A newer
    /// incarnation replaces the window (the sender restarted: nothing of the
    /// new incarnation was seen yet); an older one is refused for good.
    pub(crate) fn accept(&mut self, incarnation: u64, counter: u64) -> Result<(), Replay> {
        if incarnation < self.incarnation {
            return Err(Replay::OldIncarnation);
        }
        if incarnation > self.incarnation {
            *self = SenderState::new(incarnation, counter);
            return Ok(());
        }
        self.window.check_and_mark(counter)
    }
}

/// A map of at most `cap` entries; when full, a new key evicts the least
/// recently used entry.
#[derive(Debug)]
pub(super) struct Bounded<K, V> {
    map: HashMap<K, (V, u64)>,
    /// Increases on every use: the least recently used entry has the
    /// smallest stamp.
    clock: u64,
    cap: usize,
}

impl<K: Hash + Eq + Copy, V> Bounded<K, V> {
    pub(super) fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            clock: 0,
            cap: cap.max(1),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(value, _)| value)
    }

    /// The entry of `key`, marked used; `None` if absent.
    pub(super) fn touch(&mut self, key: &K) -> Option<&mut V> {
        self.clock += 1;
        let clock = self.clock;
        self.map.get_mut(key).map(|(value, used)| {
            *used = clock;
            value
        })
    }

    /// Inserts or replaces `key`'s entry; returns whether another entry was
    /// evicted to make room.
    pub(super) fn insert(&mut self, key: K, value: V) -> bool {
        self.clock += 1;
        let mut evicted = false;
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.map.remove(&oldest);
                evicted = true;
            }
        }
        self.map.insert(key, (value, self.clock));
        evicted
    }
}

/// The replay state of every sender, keyed by the gossip address it
/// advertises (inside the authenticated header).
#[derive(Debug)]
pub(super) struct Senders(Bounded<SocketAddr, SenderState>);

/// The outcome of a datagram that passed the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Accepted {
    /// Nothing else changed.
    Fresh,
    /// Another sender's state was dropped to make room: replays of that
    /// sender's datagrams can no longer be recognized, so the receiver must
    /// change its token (which every datagram must echo).
    Evicted,
}

impl Senders {
    pub(super) fn new(cap: usize) -> Self {
        Senders(Bounded::new(cap))
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Accepts (`incarnation`, `counter`) from `sender` once. A sender seen
    /// for the first time starts a window at this counter.
    pub(super) fn accept(
        &mut self,
        sender: SocketAddr,
        incarnation: u64,
        counter: u64,
    ) -> Result<Accepted, Replay> {
        if let Some(state) = self.0.touch(&sender) {
            return state.accept(incarnation, counter).map(|()| Accepted::Fresh);
        }
        let evicted = self
            .0
            .insert(sender, SenderState::new(incarnation, counter));
        Ok(if evicted {
            Accepted::Evicted
        } else {
            Accepted::Fresh
        })
    }
}

/// When a probe was last sent to each address; bounded, and refusing to
/// probe when full of recent entries.
#[derive(Debug)]
pub(super) struct ProbeLimiter {
    last: HashMap<SocketAddr, Instant>,
    cap: usize,
}

impl ProbeLimiter {
    pub(super) fn new(cap: usize) -> Self {
        ProbeLimiter {
            last: HashMap::new(),
            cap: cap.max(1),
        }
    }

    /// Whether a probe may go to `to` now (and if so, records it).
    pub(super) fn allow(&mut self, to: SocketAddr, now: Instant) -> bool {
        if let Some(last) = self.last.get(&to) {
            if now.saturating_duration_since(*last) < PROBE_EVERY {
                return false;
            }
        } else if self.last.len() >= self.cap {
            self.last
                .retain(|_, last| now.saturating_duration_since(*last) < PROBE_EVERY);
            if self.last.len() >= self.cap {
                return false;
            }
        }
        self.last.insert(to, now);
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn in_order_counters_are_accepted_once() {
        let mut window = Window::new(1);
        for counter in 2..5_000 {
            assert_eq!(window.check_and_mark(counter), Ok(()), "{counter}");
        }
        for counter in [1, 4_000, 4_999] {
            assert!(window.check_and_mark(counter).is_err(), "{counter}");
        }
    }

    #[test]
    fn out_of_order_within_the_window_is_accepted_once() {
        let mut window = Window::new(10);
        assert_eq!(window.check_and_mark(500), Ok(()));
        // Every skipped counter above the floor, backwards, then again.
        for counter in (11..500).rev() {
            assert_eq!(window.check_and_mark(counter), Ok(()), "{counter}");
        }
        for counter in 10..=500 {
            assert_eq!(
                window.check_and_mark(counter),
                Err(Replay::Duplicate),
                "{counter}"
            );
        }
        // Just inside the window after a jump, across the ring's wrap.
        assert_eq!(window.check_and_mark(500 + WINDOW), Ok(()));
        assert_eq!(window.check_and_mark(501), Ok(()));
        assert_eq!(window.check_and_mark(501), Err(Replay::Duplicate));
    }

    #[test]
    fn duplicates_are_refused() {
        let mut window = Window::new(7);
        assert_eq!(window.check_and_mark(7), Err(Replay::Duplicate));
        assert_eq!(window.check_and_mark(9), Ok(()));
        assert_eq!(window.check_and_mark(9), Err(Replay::Duplicate));
        assert_eq!(window.check_and_mark(8), Ok(()));
        assert_eq!(window.check_and_mark(8), Err(Replay::Duplicate));
    }

    #[test]
    fn too_old_is_refused() {
        let mut window = Window::new(100);
        // Below the first counter seen: it may have been answered before
        // this window existed.
        assert_eq!(window.check_and_mark(99), Err(Replay::TooOld));
        assert_eq!(window.check_and_mark(0), Err(Replay::TooOld));
        assert_eq!(window.check_and_mark(100 + 3 * WINDOW), Ok(()));
        // Exactly the window's width behind the newest: out.
        assert_eq!(window.check_and_mark(100 + 2 * WINDOW), Err(Replay::TooOld));
        assert_eq!(window.check_and_mark(101 + 2 * WINDOW), Ok(()));
        // A jump far past the ring clears it whole: old bits do not alias.
        let far = 100 + 3 * WINDOW + 64 * WORDS as u64 * 1_000;
        assert_eq!(window.check_and_mark(far), Ok(()));
        assert_eq!(window.check_and_mark(far - 1), Ok(()));
        assert_eq!(window.check_and_mark(far - WINDOW + 1), Ok(()));
        assert_eq!(window.check_and_mark(far - WINDOW), Err(Replay::TooOld));
        assert_eq!(window.check_and_mark(u64::MAX), Ok(()));
        assert_eq!(window.check_and_mark(u64::MAX), Err(Replay::Duplicate));
    }

    #[test]
    fn a_new_incarnation_replaces_the_window_and_ends_the_old_one() {
        let mut state = SenderState::new(1_000, 5);
        assert_eq!(state.accept(1_000, 6), Ok(()));
        // The sender restarted: its counter starts over.
        assert_eq!(state.accept(2_000, 1), Ok(()));
        assert_eq!(state.accept(2_000, 2), Ok(()));
        assert_eq!(state.accept(2_000, 1), Err(Replay::Duplicate));
        // The old incarnation, even with counters never seen.
        assert_eq!(state.accept(1_000, 7), Err(Replay::OldIncarnation));
        assert_eq!(state.accept(1_000, 1_000_000), Err(Replay::OldIncarnation));
        // The new one carries on.
        assert_eq!(state.accept(2_000, 3), Ok(()));
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn senders_are_bounded_and_eviction_is_reported() {
        let mut senders = Senders::new(3);
        for port in 1..=3 {
            assert_eq!(senders.accept(addr(port), 1, 1), Ok(Accepted::Fresh));
        }
        // Port 1 used again: port 2 is now the least recently used.
        assert_eq!(senders.accept(addr(1), 1, 2), Ok(Accepted::Fresh));
        assert_eq!(senders.accept(addr(4), 1, 1), Ok(Accepted::Evicted));
        assert_eq!(senders.len(), 3);
        assert_eq!(senders.accept(addr(1), 1, 2), Err(Replay::Duplicate));
        assert_eq!(senders.accept(addr(3), 1, 1), Err(Replay::Duplicate));
        // Port 2's state is gone: its replay would start a new window (hence
        // the receiver's token changes on eviction).
        assert_eq!(senders.accept(addr(2), 1, 1), Ok(Accepted::Evicted));
    }

    #[test]
    fn probes_are_rate_limited_per_address_and_bounded() {
        let mut probes = ProbeLimiter::new(2);
        let start = Instant::now();
        assert!(probes.allow(addr(1), start));
        assert!(!probes.allow(addr(1), start + PROBE_EVERY / 2));
        assert!(probes.allow(addr(1), start + PROBE_EVERY));
        assert!(probes.allow(addr(2), start));
        // Full of recent entries: no third address.
        assert!(!probes.allow(addr(3), start + PROBE_EVERY / 2));
        // Once they are old, they make room.
        assert!(probes.allow(addr(3), start + PROBE_EVERY * 3));
    }
}
