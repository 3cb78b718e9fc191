//! The pure part of supervision: which children a failure restarts (the
//! strategy), whether a child is restarted at all (its restart policy), and
//! whether the supervisor may still restart (its intensity window). No
//! tokio, no clock: the supervisor's loop passes `now` in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Which children a child's failure restarts (OTP's `strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the child that ended.
    #[default]
    OneForOne,
    /// Every child: the others are stopped (in reverse start order), then
    /// all are started again in order. For children that depend on each
    /// other.
    OneForAll,
    /// The child that ended and every child started after it: those are
    /// stopped (in reverse order), then started again in order. For
    /// children that depend on the ones before them.
    RestForOne,
}

/// Whether a child is restarted when it ends (OTP's `restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Always restarted, whatever the reason it ended.
    #[default]
    Permanent,
    /// Restarted only when it ended abnormally: not after
    /// [`ExitReason::Stopped`](crate::ExitReason::Stopped) (or a child
    /// supervisor's [`SupervisorExit::Stopped`](super::SupervisorExit::Stopped)).
    Transient,
    /// Never restarted, not even when a sibling's failure makes the
    /// strategy stop it: once ended, it is gone from the supervisor.
    Temporary,
}

impl Restart {
    /// Whether a child with this policy is restarted after an end that was
    /// normal (`normal == true`) or not.
    pub(crate) fn restarts_after(self, normal: bool) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => !normal,
            Restart::Temporary => false,
        }
    }
}

/// At most `max` restarts in any `period` (OTP's `intensity` and `period`):
/// one more and the supervisor gives up and escalates.
#[derive(Debug, Clone)]
pub(crate) struct RestartWindow {
    max: u32,
    period: Duration,
    /// When the restarts still inside the period happened, oldest first.
    recent: VecDeque<Instant>,
}

impl RestartWindow {
    pub(crate) fn new(max: u32, period: Duration) -> Self {
        RestartWindow {
            max,
            period,
            recent: VecDeque::new(),
        }
    }

    /// Counts a restart at `now`; `false` if it is one too many for the
    /// period (the supervisor must escalate instead).
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.recent.front() {
            // A restart exactly `period` ago is outside the window.
            if now.saturating_duration_since(oldest) >= self.period {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        self.recent.push_back(now);
        self.recent.len() <= self.max as usize
    }

    /// Restarts counted inside the window (after the last `allow`).
    #[cfg(test)]
    pub(crate) fn recent(&self) -> u32 {
        u32::try_from(self.recent.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn period(&self) -> Duration {
        self.period
    }
}

/// What a failure of child `failed` (an index in start order, of `count`
/// children) makes the supervisor do: the siblings to stop (in that order:
/// reverse start order) and the children to start again (in start order).
/// `temporary` tells which children are never restarted: they are stopped
/// with the others but not started again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) stop: Vec<usize>,
    pub(crate) start: Vec<usize>,
}

pub(crate) fn plan(
    strategy: Strategy,
    failed: usize,
    count: usize,
    temporary: impl Fn(usize) -> bool,
) -> Plan {
    let affected: Vec<usize> = match strategy {
        Strategy::OneForOne => vec![failed],
        Strategy::OneForAll => (0..count).collect(),
        Strategy::RestForOne => (failed..count).collect(),
    };
    let stop = affected
        .iter()
        .rev()
        .copied()
        .filter(|&i| i != failed)
        .collect();
    let start = affected
        .into_iter()
        .filter(|&i| i == failed || !temporary(i))
        .collect();
    Plan { stop, start }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervision_window_allows_max_restarts_per_period_then_refuses() {
        let t0 = Instant::now();
        let mut window = RestartWindow::new(3, Duration::from_secs(5));
        assert!(window.allow(t0));
        assert!(window.allow(t0 + Duration::from_secs(1)));
        assert!(window.allow(t0 + Duration::from_secs(2)));
        // A fourth within 5 s of the first is one too many.
        assert!(!window.allow(t0 + Duration::from_secs(3)));
        assert_eq!(window.recent(), 4);
    }

    #[test]
    fn supervision_window_forgets_restarts_older_than_the_period() {
        let t0 = Instant::now();
        let mut window = RestartWindow::new(2, Duration::from_secs(5));
        assert!(window.allow(t0));
        assert!(window.allow(t0 + Duration::from_secs(4)));
        // The first is exactly 5 s old: out of the window.
        assert!(window.allow(t0 + Duration::from_secs(5)));
        assert_eq!(window.recent(), 2);
        // Restarts spread out never escalate.
        for s in (10..100).step_by(3) {
            assert!(window.allow(t0 + Duration::from_secs(s)), "at {s} s");
        }
    }

    #[test]
    fn supervision_window_of_zero_refuses_the_first_restart() {
        let mut window = RestartWindow::new(0, Duration::from_secs(1));
        assert!(!window.allow(Instant::now()));
    }

    #[test]
    fn supervision_restart_policies_follow_otp() {
        assert!(Restart::Permanent.restarts_after(true));
        assert!(Restart::Permanent.restarts_after(false));
        assert!(!Restart::Transient.restarts_after(true));
        assert!(Restart::Transient.restarts_after(false));
        assert!(!Restart::Temporary.restarts_after(true));
        assert!(!Restart::Temporary.restarts_after(false));
    }

    #[test]
    fn supervision_one_for_one_touches_only_the_failed_child() {
        let p = plan(Strategy::OneForOne, 1, 4, |_| false);
        assert_eq!(p.stop, Vec::<usize>::new());
        assert_eq!(p.start, vec![1]);
    }

    #[test]
    fn supervision_one_for_all_stops_the_others_in_reverse_and_restarts_all_in_order() {
        let p = plan(Strategy::OneForAll, 1, 4, |_| false);
        assert_eq!(p.stop, vec![3, 2, 0]);
        assert_eq!(p.start, vec![0, 1, 2, 3]);
    }

    #[test]
    fn supervision_rest_for_one_restarts_the_failed_child_and_later_ones_only() {
        let p = plan(Strategy::RestForOne, 1, 4, |_| false);
        assert_eq!(p.stop, vec![3, 2]);
        assert_eq!(p.start, vec![1, 2, 3]);
        let last = plan(Strategy::RestForOne, 3, 4, |_| false);
        assert_eq!(last.stop, Vec::<usize>::new());
        assert_eq!(last.start, vec![3]);
    }

    #[test]
    fn supervision_temporary_siblings_are_stopped_but_not_started_again() {
        let p = plan(Strategy::OneForAll, 0, 3, |i| i == 2);
        assert_eq!(p.stop, vec![2, 1]);
        assert_eq!(p.start, vec![0, 1]);
    }
}
