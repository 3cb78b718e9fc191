//! An actor's pending timers: messages to itself, due at a time, maybe
//! repeating. Kept encoded so they move with the actor and can repeat without
//! requiring the message type to be `Clone`.
//!
//! Besides plain timers, a state machine has three kinds that replace their
//! predecessor when re-armed: its state timeout (cancelled by a state change),
//! its event timeout (cancelled by any message) and named timers.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

pub(crate) use crate::proto::migration::TimerKind;
use crate::proto::migration::TimerSnapshot;

/// The longest delay or period a migrated timer keeps (about 30 years).
const MAX_MIGRATED: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

#[derive(Debug)]
struct Timer {
    deadline: Instant,
    interval: Option<Duration>,
    kind: TimerKind,
    msg: Vec<u8>,
}

/// The pending timers of one actor.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    next_id: u64,
    items: HashMap<u64, Timer>,
    by_deadline: BTreeSet<(Instant, u64)>,
    /// The timer of each unique kind (state, event, each name).
    unique: HashMap<TimerKind, u64>,
}

impl Timers {
    /// Arms a plain timer; returns its id.
    #[cfg(test)]
    pub(crate) fn add(&mut self, after: Duration, interval: Option<Duration>, msg: Vec<u8>) -> u64 {
        self.add_kind(after, interval, TimerKind::Plain, msg)
    }

    /// Arms a timer of a kind; one of a unique kind replaces its predecessor.
    pub(crate) fn add_kind(
        &mut self,
        after: Duration,
        interval: Option<Duration>,
        kind: TimerKind,
        msg: Vec<u8>,
    ) -> u64 {
        self.cancel_kind(&kind);
        let id = self.next_id;
        self.next_id += 1;
        self.insert(id, Instant::now() + after, interval, kind, msg);
        id
    }

    fn insert(
        &mut self,
        id: u64,
        deadline: Instant,
        interval: Option<Duration>,
        kind: TimerKind,
        msg: Vec<u8>,
    ) {
        self.by_deadline.insert((deadline, id));
        if kind.is_unique() {
            self.unique.insert(kind.clone(), id);
        }
        self.items.insert(
            id,
            Timer {
                deadline,
                interval,
                kind,
                msg,
            },
        );
    }

    /// Cancels the timer of a unique kind; false if there is none (or the
    /// kind is `Plain`).
    pub(crate) fn cancel_kind(&mut self, kind: &TimerKind) -> bool {
        // Checked first: every handled message cancels the event timeout,
        // and most actors never arm one.
        if !kind.is_unique() || self.unique.is_empty() {
            return false;
        }
        match self.unique.get(kind).copied() {
            Some(id) => self.cancel(id),
            None => false,
        }
    }

    /// Cancels a timer; false if it already fired (one-shot) or never was.
    pub(crate) fn cancel(&mut self, id: u64) -> bool {
        match self.items.remove(&id) {
            Some(timer) => {
                self.by_deadline.remove(&(timer.deadline, id));
                if timer.kind.is_unique() {
                    self.unique.remove(&timer.kind);
                }
                true
            }
            None => false,
        }
    }

    /// Counts the timers armed so far: a change means one was armed.
    pub(crate) fn armed(&self) -> u64 {
        self.next_id
    }

    /// When the next timer is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(deadline, _)| *deadline)
    }

    /// Messages of the timers due at `now`, in deadline order, with their
    /// kind; repeating timers are re-armed from their previous deadline (no
    /// drift).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Vec<(Vec<u8>, TimerKind)> {
        let mut due = Vec::new();
        while let Some(&(deadline, id)) = self.by_deadline.first() {
            if deadline > now {
                break;
            }
            self.by_deadline.pop_first();
            let Some(timer) = self.items.remove(&id) else {
                continue;
            };
            if timer.kind.is_unique() {
                self.unique.remove(&timer.kind);
            }
            match timer.interval {
                Some(every) => {
                    // Skip missed periods rather than firing a burst.
                    let mut next = timer.deadline + every;
                    while next <= now {
                        next += every;
                    }
                    due.push((timer.msg.clone(), timer.kind.clone()));
                    self.insert(id, next, Some(every), timer.kind, timer.msg);
                }
                None => due.push((timer.msg, timer.kind)),
            }
        }
        due
    }

    /// The timers with the time each has left, for a migration.
    pub(crate) fn snapshot(&self, now: Instant) -> (Vec<TimerSnapshot>, u64) {
        let timers = self
            .by_deadline
            .iter()
            .filter_map(|(_, id)| {
                self.items.get(id).map(|timer| TimerSnapshot {
                    id: *id,
                    remaining: timer.deadline.saturating_duration_since(now),
                    interval: timer.interval,
                    kind: timer.kind.clone(),
                    msg: timer.msg.clone(),
                })
            })
            .collect();
        (timers, self.next_id)
    }

    /// Re-arms migrated timers relative to `now`. The times come from a
    /// peer: each is held to what `Context` can arm (a period of at least
    /// 1 ms, else the first `pop_due` re-arms it forever; at most
    /// [`MAX_MIGRATED`], else the deadline overflows the clock).
    pub(crate) fn restore(snapshots: Vec<TimerSnapshot>, next_id: u64, now: Instant) -> Self {
        let mut timers = Timers {
            next_id,
            ..Timers::default()
        };
        for t in snapshots {
            let remaining = t.remaining.min(MAX_MIGRATED);
            let interval = t
                .interval
                .map(|every| every.clamp(Duration::from_millis(1), MAX_MIGRATED));
            timers.insert(t.id, now + remaining, interval, t.kind, t.msg);
        }
        timers
    }

    /// Number of pending timers.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(due: Vec<(Vec<u8>, TimerKind)>) -> Vec<Vec<u8>> {
        due.into_iter().map(|(msg, _)| msg).collect()
    }

    /// Seen while writing the `snapshot` fuzz target (inputs made from its
    /// seeds, kept as regressions in `fuzz/corpus/snapshot`): a
    /// snapshot from a peer with a zero period made the first `pop_due`
    /// loop forever, and one with a delay of `u64::MAX` seconds overflowed
    /// the clock (a panic).
    #[test]
    fn migrated_times_are_held_to_what_can_be_armed() {
        let timer = |remaining: Duration, interval: Option<Duration>| TimerSnapshot {
            id: 0,
            remaining,
            interval,
            kind: TimerKind::Plain,
            msg: vec![1],
        };
        let now = Instant::now();
        let mut zero = Timers::restore(vec![timer(Duration::ZERO, Some(Duration::ZERO))], 1, now);
        assert_eq!(zero.pop_due(now).len(), 1);
        assert_eq!(zero.next_deadline(), Some(now + Duration::from_millis(1)));
        let mut huge = Timers::restore(vec![timer(Duration::MAX, Some(Duration::MAX))], 1, now);
        assert!(huge.pop_due(now).is_empty());
        assert_eq!(huge.next_deadline(), Some(now + MAX_MIGRATED));
        let mut every = Timers::restore(vec![timer(Duration::ZERO, Some(Duration::MAX))], 1, now);
        assert_eq!(every.pop_due(now).len(), 1, "re-armed without overflow");
    }

    #[tokio::test(start_paused = true)]
    async fn unique_kinds_replace_and_move_with_their_kind() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let first = timers.add_kind(Duration::from_secs(5), None, TimerKind::State, vec![1]);
        let second = timers.add_kind(Duration::from_secs(3), None, TimerKind::State, vec![2]);
        assert_ne!(first, second);
        assert_eq!(timers.len(), 1, "re-arming the state timeout replaces it");
        let named = TimerKind::Named("a".into());
        timers.add_kind(Duration::from_secs(1), None, named.clone(), vec![3]);
        timers.add_kind(Duration::from_secs(2), None, named.clone(), vec![4]);
        timers.add_kind(Duration::from_secs(2), None, TimerKind::Event, vec![5]);
        assert_eq!(timers.len(), 3);
        assert!(timers.cancel_kind(&TimerKind::Event));
        assert!(!timers.cancel_kind(&TimerKind::Event));
        let (snap, next) = timers.snapshot(start + Duration::from_secs(1));
        let mut moved = Timers::restore(snap, next, start);
        assert!(moved.cancel_kind(&named), "the name survives the move");
        assert_eq!(
            moved.pop_due(start + Duration::from_secs(2)),
            vec![(vec![2], TimerKind::State)]
        );
        assert!(
            !moved.cancel_kind(&TimerKind::State),
            "a fired timeout is gone"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_shot_interval_cancel_and_move() {
        let mut timers = Timers::default();
        let once = timers.add(Duration::from_secs(2), None, vec![1]);
        let _every = timers.add(
            Duration::from_secs(1),
            Some(Duration::from_secs(1)),
            vec![2],
        );
        let cancelled = timers.add(Duration::from_secs(1), None, vec![3]);
        assert!(timers.cancel(cancelled));
        assert!(!timers.cancel(cancelled));
        let start = Instant::now();
        assert_eq!(msgs(timers.pop_due(start)), Vec::<Vec<u8>>::new());
        assert_eq!(
            msgs(timers.pop_due(start + Duration::from_secs(1))),
            vec![vec![2]]
        );
        assert_eq!(
            msgs(timers.pop_due(start + Duration::from_secs(2))),
            vec![vec![1], vec![2]]
        );
        assert!(!timers.cancel(once), "fired one-shot is gone");
        // Move with 0.5 s left on the interval timer.
        let (snap, next) = timers.snapshot(start + Duration::from_millis(2500));
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].remaining, Duration::from_millis(500));
        let later = start + Duration::from_secs(100);
        let mut moved = Timers::restore(snap, next, later);
        assert_eq!(
            moved.next_deadline(),
            Some(later + Duration::from_millis(500))
        );
        assert_eq!(
            msgs(moved.pop_due(later + Duration::from_millis(500))),
            vec![vec![2]]
        );
        assert_ne!(
            moved.add(Duration::ZERO, None, vec![]),
            0,
            "ids keep counting after a move"
        );
    }
}
