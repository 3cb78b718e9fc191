//! Coarse deadlines for request timeouts: one ticking task per node instead
//! of a timer per request.
//!
//! A tokio timer per request costs a clock read, a timer-wheel insert and
//! removal, and keeps the time driver busy: about a quarter of a local round
//! trip. Here a request reads the current tick (an atomic load) and waits on
//! the bell of the tick its deadline falls in; the ticker rings each tick's
//! bell as it passes. Timeouts fire within one tick (5 ms) after they are
//! due.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The resolution of request timeouts.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Bells in the ring: a deadline further away than this many ticks waits
/// on its bell more than once (it checks the tick each time it rings).
const BELLS: usize = 1024;

/// The clock and the bells of one node.
pub(crate) struct Deadlines {
    origin: Instant,
    now: AtomicU64,
    bells: Box<[Notify]>,
}

impl std::fmt::Debug for Deadlines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadlines")
            .field("tick", &self.now.load(Ordering::Relaxed))
            .finish()
    }
}

impl Deadlines {
    /// A clock and its ticker task (which ends when the clock is dropped).
    pub(crate) fn start() -> Arc<Deadlines> {
        let deadlines = Arc::new(Deadlines {
            origin: Instant::now(),
            now: AtomicU64::new(0),
            bells: (0..BELLS).map(|_| Notify::new()).collect(),
        });
        tokio::spawn(tick(Arc::downgrade(&deadlines)));
        deadlines
    }

    /// The tick by which `timeout` from now has passed.
    fn due(&self, timeout: Duration) -> u64 {
        let ticks = timeout.as_nanos().div_ceil(TICK.as_nanos()) as u64;
        self.now.load(Ordering::Acquire) + ticks.max(1) + 1
    }

    /// Waits until `timeout` has passed (at one tick's resolution).
    pub(crate) async fn sleep(&self, timeout: Duration) {
        let due = self.due(timeout);
        loop {
            let bell = &self.bells[(due % BELLS as u64) as usize];
            let rung = bell.notified();
            tokio::pin!(rung);
            // Listen before looking, so a ring between the two is not missed.
            rung.as_mut().enable();
            if self.now.load(Ordering::Acquire) >= due {
                return;
            }
            rung.await;
        }
    }
}

/// Advances the clock and rings every bell whose tick has come.
async fn tick(deadlines: Weak<Deadlines>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(deadlines) = deadlines.upgrade() else {
            return;
        };
        let elapsed = deadlines.origin.elapsed().as_nanos() / TICK.as_nanos();
        let now = elapsed as u64;
        let before = deadlines.now.swap(now, Ordering::AcqRel);
        // After a long stall, every bell rings once rather than each missed tick.
        let from = before.max(now.saturating_sub(BELLS as u64)) + 1;
        for t in from..=now {
            deadlines.bells[(t % BELLS as u64) as usize].notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleeps_fire_on_time_at_tick_resolution_and_long_ones_wrap() {
        let deadlines = Deadlines::start();
        for timeout in [
            Duration::from_millis(1),
            Duration::from_millis(50),
            TICK * (BELLS as u32 + 7),
        ] {
            let start = Instant::now();
            deadlines.sleep(timeout).await;
            let took = start.elapsed();
            assert!(took >= timeout, "{timeout:?} fired early: {took:?}");
            assert!(
                took <= timeout + TICK * 3,
                "{timeout:?} fired late: {took:?}"
            );
        }
    }
}
