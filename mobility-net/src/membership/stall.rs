//! Knowing that this node itself was stalled (a `SIGSTOP`, a long GC-like
//! pause, a VM frozen): while it did not run, the cluster may have declared
//! it failed, and its own failure detector's view of the others is stale.
//!
//! A ticker stamps the time every few milliseconds; whoever reads the clock
//! and finds the last stamp too old knows the node did not run meanwhile,
//! even before the ticker itself runs again. After such a stall the node
//! *validates*: for one failure timeout it declares no member failed (its
//! view is stale) and it handles no message from another node (the cluster
//! may have told that message's caller the actor is down); if meanwhile it
//! learns it was declared failed, it is fenced for good.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Where a node stands with its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Running normally.
    Serving,
    /// Just back from a stall: checking whether it was declared failed.
    Validating,
    /// Declared failed by its cluster: it must serve nothing more.
    Fenced,
}

/// Shared view of this node's stalls and standing (cheap to clone).
#[derive(Debug, Clone)]
pub struct StallGuard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The clock's reading when the guard was made, in milliseconds.
    origin: u64,
    /// Milliseconds since `origin` at the ticker's last stamp.
    last_tick: AtomicU64,
    /// Until when a validation lasts (milliseconds since `origin`).
    validating_until: AtomicU64,
    /// A gap longer than this between stamps is a stall.
    stall_after: Duration,
    /// `stall_after` in milliseconds.
    stall_after_ms: u64,
    /// How long a validation lasts.
    validation: Duration,
    standing: watch::Sender<Standing>,
    /// `standing` for readers on a message's path: one atomic load instead
    /// of the channel's lock. Written under the channel's lock.
    fast: AtomicU8,
}

impl StallGuard {
    /// A guard for a node whose failure timeout is `failure_timeout`: a gap
    /// of a quarter of it is a stall (others may soon suspect this node,
    /// and its own detector's view is stale); a validation lasts one
    /// failure timeout.
    pub(crate) fn new(failure_timeout: Duration) -> Self {
        let (standing, _) = watch::channel(Standing::Serving);
        let stall_after = (failure_timeout / 4).max(Duration::from_millis(50));
        StallGuard {
            inner: Arc::new(Inner {
                origin: monotonic_ms(),
                last_tick: AtomicU64::new(0),
                validating_until: AtomicU64::new(0),
                stall_after,
                stall_after_ms: u64::try_from(stall_after.as_millis()).unwrap_or(u64::MAX),
                validation: failure_timeout,
                standing,
                fast: AtomicU8::new(Standing::Serving as u8),
            }),
        }
    }

    /// How often the ticker should stamp.
    pub(crate) fn tick_every(&self) -> Duration {
        (self.inner.stall_after / 5).max(Duration::from_millis(5))
    }

    fn now_ms(&self) -> u64 {
        monotonic_ms().saturating_sub(self.inner.origin)
    }

    /// Looks at the clock: a stall since the last stamp starts (or extends)
    /// a validation. Returns the standing. Cheap enough for every message:
    /// a coarse clock read and two atomic loads.
    pub fn check(&self) -> Standing {
        let now = self.now_ms();
        let last = self.inner.last_tick.load(Ordering::Acquire);
        if now.saturating_sub(last) > self.inner.stall_after_ms {
            self.begin_validation(now);
        }
        self.standing()
    }

    /// Whether this node may serve anyone now (see [`StallGuard::check`]).
    pub fn serving_now(&self) -> bool {
        self.check() == Standing::Serving
    }

    fn begin_validation(&self, now: u64) {
        let until = now + u64::try_from(self.inner.validation.as_millis()).unwrap_or(u64::MAX);
        self.inner
            .validating_until
            .fetch_max(until, Ordering::AcqRel);
        self.inner.standing.send_if_modified(|standing| {
            if *standing == Standing::Serving {
                tracing::warn!(
                    validation = ?self.inner.validation,
                    "this node was stalled: it serves no other node until it knows it was not declared failed"
                );
                *standing = Standing::Validating;
                self.inner.fast.store(Standing::Validating as u8, Ordering::Release);
                true
            } else {
                false
            }
        });
    }

    /// The ticker's stamp; ends a validation that has run its time. Returns
    /// true if a validation ended now.
    pub(crate) fn tick(&self) -> bool {
        self.check();
        let now = self.now_ms();
        self.inner.last_tick.store(now, Ordering::Release);
        if now < self.inner.validating_until.load(Ordering::Acquire) {
            return false;
        }
        self.inner.standing.send_if_modified(|standing| {
            if *standing == Standing::Validating {
                tracing::info!("not declared failed: this node serves again");
                *standing = Standing::Serving;
                self.inner
                    .fast
                    .store(Standing::Serving as u8, Ordering::Release);
                true
            } else {
                false
            }
        })
    }

    /// The standing as last decided (without looking at the clock).
    pub fn standing(&self) -> Standing {
        match self.inner.fast.load(Ordering::Acquire) {
            s if s == Standing::Serving as u8 => Standing::Serving,
            s if s == Standing::Validating as u8 => Standing::Validating,
            _ => Standing::Fenced,
        }
    }

    /// This node was declared failed: fenced for good.
    pub(crate) fn fence(&self) {
        self.inner.standing.send_modify(|standing| {
            *standing = Standing::Fenced;
            self.inner
                .fast
                .store(Standing::Fenced as u8, Ordering::Release);
        });
    }

    /// Waits until the node serves again (`true`) or is fenced (`false`).
    pub async fn settled(&self) -> bool {
        let mut standing = self.inner.standing.subscribe();
        let settled = match standing.wait_for(|s| *s != Standing::Validating).await {
            Ok(s) => *s == Standing::Serving,
            Err(_) => false,
        };
        settled
    }
}

/// Milliseconds on a monotonic clock: on Linux the kernel's coarse clock
/// (read from the vDSO in a few nanoseconds, with a resolution of a few
/// milliseconds: ample for stalls of 50 ms and more), `Instant` elsewhere.
#[cfg(target_os = "linux")]
fn monotonic_ms() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(nanos / 1_000_000)
}

#[cfg(not(target_os = "linux"))]
fn monotonic_ms() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(std::time::Instant::now);
    u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn a_gap_between_stamps_is_a_stall_and_validation_ends_after_its_time() {
        let guard = StallGuard::new(Duration::from_millis(200));
        guard.tick();
        assert_eq!(guard.check(), Standing::Serving);
        // The node does not run for longer than a quarter of the timeout.
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(guard.check(), Standing::Validating);
        assert!(!guard.tick(), "a validation lasts a failure timeout");
        let settled = tokio::spawn({
            let guard = guard.clone();
            async move { guard.settled().await }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while !guard.tick() {
            assert!(Instant::now() < deadline, "validation never ended");
            tokio::time::sleep(guard.tick_every()).await;
        }
        assert!(settled.await.expect("join"));
        assert_eq!(guard.standing(), Standing::Serving);
    }

    #[tokio::test]
    async fn a_fenced_node_stays_fenced() {
        let guard = StallGuard::new(Duration::from_millis(200));
        guard.tick();
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(guard.check(), Standing::Validating);
        guard.fence();
        assert!(!guard.settled().await);
        std::thread::sleep(Duration::from_millis(250));
        guard.tick();
        assert_eq!(guard.standing(), Standing::Fenced);
    }
}
