//! The machine's words: where an actor lives, the frames nodes exchange, the
//! actions the machine asks of its shell, its phases, and why an attempt
//! failed.

use std::fmt::Debug;
use std::time::Duration;

/// Where an actor lives: a node and the epoch it has there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<N> {
    /// The node.
    pub node: N,
    /// The actor's epoch at that node.
    pub epoch: u64,
}

/// The protocol frames between a source and a destination. `F` is why a
/// destination refuses an actor; `R` what its prepare answer carries on
/// success (the runtime: restore time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<F, R> {
    /// Phase one (the snapshot travels with it, in the shell).
    Prepare {
        /// The attempt.
        epoch: u64,
    },
    /// The destination's answer to `Prepare`.
    PrepareAck {
        /// The attempt.
        epoch: u64,
        /// Restored and paused, or refused.
        result: Result<R, F>,
    },
    /// Phase two: activate.
    Commit {
        /// The attempt.
        epoch: u64,
    },
    /// The destination activated the actor.
    Committed {
        /// The attempt.
        epoch: u64,
    },
    /// Drop the prepared copy: the source keeps the actor.
    Abort {
        /// The attempt.
        epoch: u64,
    },
    /// The destination holds no copy of this attempt (dropped, or never
    /// had one) and will never activate it.
    Aborted {
        /// The attempt.
        epoch: u64,
    },
    /// From a destination holding a prepared copy: what was decided?
    Resolve {
        /// The attempt.
        epoch: u64,
    },
}

/// Why a migration failed, as the machine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure<F> {
    /// The destination refused the actor.
    Refused(F),
    /// No answer to the prepare in time.
    Timeout,
    /// The prepare could not be sent.
    LinkDown,
    /// The destination was declared failed.
    DestinationFailed,
    /// This node was declared failed by its cluster (fenced) before the
    /// outcome was known here: the actor lives on at the destination if the
    /// copy there was the latest, or is down. Claims nothing else.
    Fenced,
}

/// What `migrate` answers: where the actor lives now, or in which step it
/// failed and why.
pub type Outcome<N, F> = Result<Route<N>, (Step, Failure<F>)>;

/// In which step a migration failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Sending the snapshot, waiting for the destination's answer.
    Prepare,
    /// After the commit was sent (the actor is no longer here).
    Commit,
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<N, F, R> {
    /// Send `frame` to `to` (a failure to send is not reported back: every
    /// frame that matters is said again until confirmed).
    Send {
        /// The peer.
        to: N,
        /// The frame.
        frame: Frame<F, R>,
    },
    /// Source: the migration failed and the destination holds no copy:
    /// the frozen actor goes back to work (its captured queue first, then
    /// what arrived meanwhile).
    Resume,
    /// Source: committed. Drop the frozen copy; what arrived meanwhile and
    /// everything from now on goes to `route`.
    HandOver {
        /// Where the actor lives now.
        route: Route<N>,
    },
    /// Destination: the prepared copy goes live at `epoch` (announce it).
    Activate {
        /// The actor's epoch here.
        epoch: u64,
        /// The source.
        source: N,
    },
    /// Destination: drop the prepared copy; what arrived meanwhile goes on
    /// to `route` (the source, which resumes).
    DropPrepared {
        /// Where the actor lives.
        route: Route<N>,
    },
    /// This node was declared failed (fenced) while it held the actor
    /// (live, frozen or prepared): the actor is down; fail whatever waits
    /// on it.
    Down,
    /// Answer the caller of `migrate` (on the source).
    Answer(Outcome<N, F>),
}

/// The protocol state of one actor on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase<N> {
    /// The actor lives here, at `epoch`.
    Hosting {
        /// Its epoch.
        epoch: u64,
    },
    /// Source: snapshot sent to `dest`, frozen, waiting for the answer.
    Preparing {
        /// The destination.
        dest: N,
        /// The attempt.
        epoch: u64,
        /// The epoch the actor keeps if the attempt fails.
        home: u64,
        /// When to give up waiting and abort.
        deadline: Duration,
    },
    /// Source: decided to abort, frozen until `dest` confirms it holds no
    /// copy (or is declared failed).
    Aborting {
        /// The destination.
        dest: N,
        /// The attempt.
        epoch: u64,
        /// The epoch the actor keeps.
        home: u64,
        /// Why (for the answer).
        failure: FailureKind,
        /// When to say `Abort` again.
        retry: Duration,
    },
    /// Source: `Commit` sent; forwarding to `dest`, waiting for `Committed`.
    Committing {
        /// The destination.
        dest: N,
        /// The attempt.
        epoch: u64,
        /// When to say `Commit` again.
        retry: Duration,
    },
    /// The actor lives elsewhere; messages go on to `route`.
    Forwarding {
        /// Its last known location.
        route: Route<N>,
    },
    /// Destination: restored and paused until the source decides.
    Prepared {
        /// The source.
        source: N,
        /// The attempt.
        epoch: u64,
        /// Where messages go if the copy is dropped.
        previous: Route<N>,
        /// When to ask the source again.
        ask: Duration,
    },
    /// The actor ended here (stopped, panicked, or gone with a failure).
    Ended,
}

/// Why a source aborts (without the refusal reason, which is answered at
/// once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer in time.
    Timeout,
    /// The link to the destination was lost for good.
    LinkDown,
}

/// What the machine says about an arriving prepare, before the shell
/// restores anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Restore the snapshot, then call [`Handover::restored`].
    Restore,
    /// The same prepare again: the answer was said again; nothing to do.
    Repeated,
    /// Stale or conflicting: the shell answers the source with a refusal.
    Refused,
}

/// Timeouts the machine works with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a source waits for the prepare answer before aborting.
    pub prepare_timeout: Duration,
    /// How often an unconfirmed `Commit`, `Abort` or `Resolve` is said
    /// again.
    pub retry: Duration,
}
