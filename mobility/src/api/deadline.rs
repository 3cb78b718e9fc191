//! Coarse deadlines for request timeouts: one ticking task per node instead
//! of a timer per request.
//!
//! A tokio timer per request costs a clock read, a timer-wheel insert and
//! removal, and keeps the time driver busy: about a quarter of a local round
//! trip. Here a request reads the current tick (an atomic load) and leaves
//! its waker in the bell of the tick its deadline falls in (one uncontended
//! lock, and one more to take it out when the request ends); the ticker rings
//! each tick's bell as it passes. Timeouts fire within one tick (5 ms) after
//! they are due.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

/// The resolution of request timeouts.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Bells in the ring: a deadline further away than this many ticks is rung
/// more than once (it checks the tick each time and waits again).
const BELLS: usize = 1024;

/// The clock and the bells of one node.
pub(crate) struct Deadlines {
    origin: Instant,
    now: AtomicU64,
    bells: Box<[Bell]>,
}

/// The wakers of the sleeps whose deadline falls on this bell's ticks. A
/// sleep owns its slot from its first wait until it ends.
#[derive(Default)]
struct Bell {
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Bell {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        // The slots stay consistent whatever panicked while holding them.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ring(&self) {
        for waker in self.lock().wakers.iter().flatten() {
            waker.wake_by_ref();
        }
    }
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
            bells: (0..BELLS).map(|_| Bell::default()).collect(),
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
    pub(crate) fn sleep(&self, timeout: Duration) -> Sleep<'_> {
        Sleep {
            due: self.due(timeout),
            deadlines: self,
            slot: None,
        }
    }

    fn passed(&self, due: u64) -> bool {
        self.now.load(Ordering::Acquire) >= due
    }
}

/// A wait for a tick; see [`Deadlines::sleep`].
pub(crate) struct Sleep<'a> {
    deadlines: &'a Deadlines,
    due: u64,
    slot: Option<usize>,
}

impl Sleep<'_> {
    fn bell(&self) -> &Bell {
        &self.deadlines.bells[(self.due % BELLS as u64) as usize]
    }
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.deadlines.passed(self.due) {
            return Poll::Ready(());
        }
        {
            let mut slots = self.bell().lock();
            match self.slot {
                Some(slot) => match &mut slots.wakers[slot] {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    entry => *entry = Some(cx.waker().clone()),
                },
                None => {
                    let waker = Some(cx.waker().clone());
                    let slot = match slots.free.pop() {
                        Some(slot) => {
                            slots.wakers[slot] = waker;
                            slot
                        }
                        None => {
                            slots.wakers.push(waker);
                            slots.wakers.len() - 1
                        }
                    };
                    drop(slots);
                    self.slot = Some(slot);
                }
            }
        }
        // Look again after listening: a ring between the first look and
        // the registration is not missed (the ticker moves the clock before
        // it takes the bell's lock).
        if self.deadlines.passed(self.due) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let mut slots = self.bell().lock();
            slots.wakers[slot] = None;
            slots.free.push(slot);
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
            deadlines.bells[(t % BELLS as u64) as usize].ring();
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

    #[tokio::test(start_paused = true)]
    async fn every_sleep_on_a_bell_fires_and_ended_ones_give_back_their_slot() {
        let deadlines = Deadlines::start();
        let timeout = Duration::from_millis(100);
        // Requests answered before their deadline: each registers and leaves.
        for _ in 0..1000 {
            let sleep = deadlines.sleep(timeout);
            tokio::pin!(sleep);
            tokio::select! {
                biased;
                () = &mut sleep => panic!("fired at once"),
                () = std::future::ready(()) => {}
            }
        }
        let due = deadlines.due(timeout);
        let slots = deadlines.bells[(due % BELLS as u64) as usize]
            .lock()
            .wakers
            .len();
        assert!(slots <= 1, "ended sleeps kept {slots} slots");
        // Many waiting at once on the same tick: all wake.
        let waits = (0..50).map(|_| deadlines.sleep(timeout));
        let start = Instant::now();
        futures_util::future::join_all(waits).await;
        assert!(start.elapsed() >= timeout);
    }
}
