//! A task's one wake-up timer, kept across waits.
//!
//! A cell waits for its channels and, at times, for a deadline (its next
//! actor timer, a migration's timeout, when an idle forwarder may retire).
//! Making a tokio timer for each wait costs an allocation-free but not free
//! timer-wheel insert and removal on every message; the alarm keeps one timer
//! and moves it only when the deadline comes sooner than the one it is set
//! to, or after it rang. A deadline that moves later (an idle forwarder's,
//! with each message it forwards) leaves it be: it rings early for nothing
//! at worst, and whoever waits looks at the clock when it rings.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// One re-armable deadline; none armed means it never rings.
#[derive(Debug, Default)]
pub(crate) struct Alarm {
    sleep: Option<Pin<Box<Sleep>>>,
    /// It rang since it was last set.
    rang: bool,
}

impl Alarm {
    /// Polls for `deadline` (`None`: no deadline, the timer is let go).
    pub(crate) fn poll_at(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>) -> Poll<()> {
        let Some(deadline) = deadline else {
            self.sleep = None;
            self.rang = false;
            return Poll::Pending;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if self.rang || deadline < sleep.deadline() {
            sleep.as_mut().reset(deadline);
        }
        let poll = sleep.as_mut().poll(cx);
        self.rang = poll.is_ready();
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn rings_by_the_soonest_deadline_and_never_without_one() {
        let mut alarm = Alarm::default();
        let start = Instant::now();
        // No deadline: pending, however long we wait.
        let waited = tokio::time::timeout(
            Duration::from_secs(60),
            std::future::poll_fn(|cx| alarm.poll_at(cx, None)),
        )
        .await;
        assert!(waited.is_err(), "an alarm without deadline rang");
        let pending = |alarm: &mut Alarm, at| {
            let waker = futures_util::task::noop_waker();
            alarm
                .poll_at(&mut Context::from_waker(&waker), Some(at))
                .is_pending()
        };
        // A deadline moved later before it rings: it rings at the earlier
        // one (early, for nothing), then at the later one.
        let first = Instant::now() + Duration::from_millis(10);
        assert!(pending(&mut alarm, first));
        let later = first + Duration::from_millis(30);
        std::future::poll_fn(|cx| alarm.poll_at(cx, Some(later))).await;
        assert_eq!(Instant::now(), first);
        std::future::poll_fn(|cx| alarm.poll_at(cx, Some(later))).await;
        assert_eq!(Instant::now(), later);
        // A deadline moved sooner: it rings at the sooner one.
        assert!(pending(&mut alarm, Instant::now() + Duration::from_secs(5)));
        let soon = Instant::now() + Duration::from_millis(5);
        std::future::poll_fn(|cx| alarm.poll_at(cx, Some(soon))).await;
        assert_eq!(Instant::now(), soon);
        assert!(start.elapsed() >= Duration::from_secs(60));
    }
}
