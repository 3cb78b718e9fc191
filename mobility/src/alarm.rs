//! A task's one wake-up timer, kept across waits.
//!
//! A cell waits for its channels and, at times, for a deadline (its next
//! actor timer, a migration's timeout, when an idle forwarder may retire).
//! Making a tokio timer for each wait costs an allocation-free but not free
//! timer-wheel insert and removal on every message; the alarm keeps one timer
//! and moves it only when the deadline changes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// One re-armable deadline; none armed means it never rings.
#[derive(Debug, Default)]
pub(crate) struct Alarm {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Alarm {
    /// Polls for `deadline` (`None`: no deadline, the timer is let go).
    pub(crate) fn poll_at(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>) -> Poll<()> {
        let Some(deadline) = deadline else {
            self.sleep = None;
            return Poll::Pending;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn rings_at_the_latest_deadline_and_never_without_one() {
        let mut alarm = Alarm::default();
        let start = Instant::now();
        // No deadline: pending, however long we wait.
        let waited = tokio::time::timeout(
            Duration::from_secs(60),
            std::future::poll_fn(|cx| alarm.poll_at(cx, None)),
        )
        .await;
        assert!(waited.is_err(), "an alarm without deadline rang");
        // A deadline moved later before it rings: rings at the later one.
        let first = Instant::now() + Duration::from_millis(10);
        assert!(
            std::future::poll_fn(|cx| Poll::Ready(alarm.poll_at(cx, Some(first))))
                .await
                .is_pending()
        );
        let later = first + Duration::from_millis(30);
        std::future::poll_fn(|cx| alarm.poll_at(cx, Some(later))).await;
        assert_eq!(Instant::now(), later);
        // And earlier again, after it rang once.
        let again = Instant::now() + Duration::from_millis(5);
        std::future::poll_fn(|cx| alarm.poll_at(cx, Some(again))).await;
        assert_eq!(Instant::now(), again);
        assert!(start.elapsed() >= Duration::from_secs(60));
    }
}
