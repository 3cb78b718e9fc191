//! Connections refused or closed before they were authenticated: counted
//! per reason (readable with `Transport::refusals`) and logged as one
//! summary line at most every [`SUMMARY_EVERY`], never one line each: a
//! flood of strangers must not flood the log too.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::budget::Source;
use super::transport::lock;
use crate::NodeId;

/// Longest time between two summary lines while refusals go on.
pub(crate) const SUMMARY_EVERY: Duration = Duration::from_secs(5);

/// Most distinct addresses remembered per summary (more are still counted
/// as refusals, and the summary says "at least").
const MAX_SOURCES: usize = 4096;

/// How many connections a transport refused or closed before they were
/// authenticated, per reason, since it started (see
/// [`Transport::refusals`](super::Transport::refusals)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusals {
    /// Accepted sockets closed at once because the unauthenticated budget
    /// (`TcpConfig::max_unauthenticated`) was full.
    pub unauthenticated_full: u64,
    /// Accepted sockets closed at once because their address already held
    /// `TcpConfig::max_unauthenticated_per_address` sockets.
    pub per_address: u64,
    /// Sockets still in their handshake closed to make room for a newcomer
    /// from a less busy address.
    pub evicted: u64,
    /// Accepted sockets that did not authenticate within
    /// `TcpConfig::handshake_timeout`.
    pub handshake_timeout: u64,
    /// Accepted sockets whose handshake failed: bad bytes, wrong version,
    /// unknown cluster, wrong MAC, closed early...
    pub bad_handshake: u64,
    /// Accepted sockets whose peer knew the key of the handshake but whose
    /// certificate was refused: signed by an authority not trusted for its
    /// cluster, expired, or for another node id, cluster or static key
    /// than it claimed (a member speaking as another node).
    pub bad_identity: u64,
    /// Accepted sockets that authenticated while `TcpConfig::max_connections`
    /// links were open.
    pub links_full: u64,
    /// Failed calls to `accept` (out of file descriptors and the like).
    pub accept_failed: u64,
}

impl Refusals {
    /// Every refusal, whatever the reason.
    pub fn total(&self) -> u64 {
        self.unauthenticated_full
            + self.per_address
            + self.evicted
            + self.handshake_timeout
            + self.bad_handshake
            + self.bad_identity
            + self.links_full
            + self.accept_failed
    }
}

/// Why a connection was refused (one counter each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    UnauthenticatedFull,
    PerAddress,
    Evicted,
    HandshakeTimeout,
    BadHandshake,
    BadIdentity,
    LinksFull,
    AcceptFailed,
}

const REASONS: usize = 8;

impl Reason {
    const ALL: [Reason; REASONS] = [
        Reason::UnauthenticatedFull,
        Reason::PerAddress,
        Reason::Evicted,
        Reason::HandshakeTimeout,
        Reason::BadHandshake,
        Reason::BadIdentity,
        Reason::LinksFull,
        Reason::AcceptFailed,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// How the summary line names it.
    fn label(self) -> &'static str {
        match self {
            Reason::UnauthenticatedFull => "unauthenticated budget full",
            Reason::PerAddress => "over the per-address limit",
            Reason::Evicted => "evicted for a newcomer",
            Reason::HandshakeTimeout => "handshake timeout",
            Reason::BadHandshake => "bad handshake",
            Reason::BadIdentity => "identity refused",
            Reason::LinksFull => "too many links",
            Reason::AcceptFailed => "accept failed",
        }
    }
}

/// The counters and the summary of refusals not yet logged.
#[derive(Debug)]
pub(crate) struct RefusalLog {
    node: NodeId,
    counts: [AtomicU64; REASONS],
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    /// When the last summary was logged.
    logged: Option<Instant>,
    counts: [u64; REASONS],
    sources: HashSet<Source>,
    /// The reason of the last refusal, in words.
    last: String,
}

impl RefusalLog {
    pub(crate) fn new(node: NodeId) -> Self {
        RefusalLog {
            node,
            counts: Default::default(),
            window: Mutex::new(Window::default()),
        }
    }

    /// Counts one refusal of a connection from `from`, described by
    /// `detail`; logs the summary if the last one is old enough.
    pub(crate) fn record(&self, reason: Reason, from: Option<Source>, detail: &str) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
        tracing::trace!(node = %self.node, from = ?from.map(|s| s.to_string()), reason = reason.label(), %detail, "connection refused");
        let mut window = lock(&self.window);
        window.counts[reason.index()] += 1;
        if let Some(from) = from {
            if window.sources.len() < MAX_SOURCES {
                window.sources.insert(from);
            }
        }
        window.last.clear();
        window.last.push_str(detail);
        self.maybe_log(&mut window, Instant::now());
    }

    /// Logs the summary of what was refused since the last one, if any
    /// and if the last one is old enough (called on a timer too, so the
    /// end of a burst is told).
    pub(crate) fn flush(&self) {
        let mut window = lock(&self.window);
        self.maybe_log(&mut window, Instant::now());
    }

    fn maybe_log(&self, window: &mut Window, now: Instant) {
        let total: u64 = window.counts.iter().sum();
        if total == 0 || window.logged.is_some_and(|at| now < at + SUMMARY_EVERY) {
            return;
        }
        let mut reasons = String::new();
        for reason in Reason::ALL {
            let n = window.counts[reason.index()];
            if n > 0 {
                let sep = if reasons.is_empty() { "" } else { ", " };
                let _ = write!(reasons, "{sep}{n} {}", reason.label());
            }
        }
        let addresses = window.sources.len();
        let at_least = if addresses >= MAX_SOURCES {
            "at least "
        } else {
            ""
        };
        let since = window
            .logged
            .map_or_else(|| "start".to_owned(), |at| format!("{:?} ago", now - at));
        tracing::warn!(
            node = %self.node,
            refused = total,
            addresses = %format_args!("{at_least}{addresses}"),
            %reasons,
            last = %window.last,
            "connections refused before authentication (summary since {since})"
        );
        window.logged = Some(now);
        window.counts = [0; REASONS];
        window.sources.clear();
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> Refusals {
        let n = |r: Reason| self.counts[r.index()].load(Ordering::Relaxed);
        Refusals {
            unauthenticated_full: n(Reason::UnauthenticatedFull),
            per_address: n(Reason::PerAddress),
            evicted: n(Reason::Evicted),
            handshake_timeout: n(Reason::HandshakeTimeout),
            bad_handshake: n(Reason::BadHandshake),
            bad_identity: n(Reason::BadIdentity),
            links_full: n(Reason::LinksFull),
            accept_failed: n(Reason::AcceptFailed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_reason_and_summarizes_at_most_once_per_period() {
        let log = RefusalLog::new(NodeId::new("n").expect("valid"));
        let ip = |a: [u8; 4]| Some(Source::of(std::net::IpAddr::from(a)));
        log.record(Reason::PerAddress, ip([10, 0, 0, 1]), "first");
        {
            let window = lock(&log.window);
            assert!(window.logged.is_some(), "the first refusal is told at once");
            assert_eq!(window.counts, [0; REASONS]);
        }
        for i in 0..100u8 {
            log.record(Reason::HandshakeTimeout, ip([10, 0, 1, i]), "slow");
        }
        log.record(Reason::BadHandshake, None, "bad");
        log.flush();
        {
            let window = lock(&log.window);
            assert_eq!(
                window.counts.iter().sum::<u64>(),
                101,
                "held until the period ends"
            );
            assert_eq!(window.sources.len(), 100);
        }
        let counts = log.snapshot();
        assert_eq!(counts.per_address, 1);
        assert_eq!(counts.handshake_timeout, 100);
        assert_eq!(counts.bad_handshake, 1);
        assert_eq!(counts.total(), 102);
    }
}
