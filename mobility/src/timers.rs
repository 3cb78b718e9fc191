//! An actor's pending timers: messages to itself, due at a time, maybe
//! repeating. Kept encoded so they move with the actor and can repeat without
//! requiring the message type to be `Clone`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use crate::migration::TimerSnapshot;

#[derive(Debug)]
struct Timer {
    deadline: Instant,
    interval: Option<Duration>,
    msg: Vec<u8>,
}

/// The pending timers of one actor.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    next_id: u64,
    items: HashMap<u64, Timer>,
    by_deadline: BTreeSet<(Instant, u64)>,
}

impl Timers {
    /// Arms a timer; returns its id.
    pub(crate) fn add(&mut self, after: Duration, interval: Option<Duration>, msg: Vec<u8>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.insert(id, Instant::now() + after, interval, msg);
        id
    }

    fn insert(&mut self, id: u64, deadline: Instant, interval: Option<Duration>, msg: Vec<u8>) {
        self.by_deadline.insert((deadline, id));
        self.items.insert(
            id,
            Timer {
                deadline,
                interval,
                msg,
            },
        );
    }

    /// Cancels a timer; false if it already fired (one-shot) or never was.
    pub(crate) fn cancel(&mut self, id: u64) -> bool {
        match self.items.remove(&id) {
            Some(timer) => {
                self.by_deadline.remove(&(timer.deadline, id));
                true
            }
            None => false,
        }
    }

    /// When the next timer is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(deadline, _)| *deadline)
    }

    /// Messages of the timers due at `now`, in deadline order; repeating
    /// timers are re-armed from their previous deadline (no drift).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut due = Vec::new();
        while let Some(&(deadline, id)) = self.by_deadline.first() {
            if deadline > now {
                break;
            }
            self.by_deadline.pop_first();
            let Some(timer) = self.items.remove(&id) else {
                continue;
            };
            match timer.interval {
                Some(every) => {
                    // Skip missed periods rather than firing a burst.
                    let mut next = timer.deadline + every;
                    while next <= now {
                        next += every;
                    }
                    due.push(timer.msg.clone());
                    self.insert(id, next, Some(every), timer.msg);
                }
                None => due.push(timer.msg),
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
                    msg: timer.msg.clone(),
                })
            })
            .collect();
        (timers, self.next_id)
    }

    /// Re-arms migrated timers relative to `now`.
    pub(crate) fn restore(snapshots: Vec<TimerSnapshot>, next_id: u64, now: Instant) -> Self {
        let mut timers = Timers {
            next_id,
            ..Timers::default()
        };
        for t in snapshots {
            timers.insert(t.id, now + t.remaining, t.interval, t.msg);
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
        assert_eq!(timers.pop_due(start), Vec::<Vec<u8>>::new());
        assert_eq!(
            timers.pop_due(start + Duration::from_secs(1)),
            vec![vec![2]]
        );
        assert_eq!(
            timers.pop_due(start + Duration::from_secs(2)),
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
            moved.pop_due(later + Duration::from_millis(500)),
            vec![vec![2]]
        );
        assert_ne!(
            moved.add(Duration::ZERO, None, vec![]),
            0,
            "ids keep counting after a move"
        );
    }
}
