//! What a migration moves, what it reports, and how it can fail.
//!
//! A migration is a two-phase hand-over coordinated by the source:
//! 1. *capture*: at a message boundary the actor freezes; its state, queued
//!    messages, timers (remaining time and kind), postponed messages,
//!    deferred replies still owed, monitors, name and id are encoded;
//! 2. *prepare*: the snapshot goes to the destination, which rebuilds the
//!    actor from its type registry, runs `on_arrive` and keeps it paused;
//! 3. *commit*: the source becomes a forwarder and tells the destination to
//!    activate; or *abort*: the destination drops its copy and the source
//!    resumes with the state it never gave up.
//!
//! There is never a moment with two active copies: the destination activates
//! only on commit, and the source commits only after the destination is ready.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::proto::id::{ActorId, NodeId};
use crate::proto::wire::{Origin, ReplyAddr, WireEnvelope};
use mobility_proto::sequence::Tracker;

/// The steps of a migration, named in reports and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MigrationPhase {
    /// Checking the request (destination known, actor free to move).
    Validate,
    /// Freezing the actor and encoding its snapshot.
    Capture,
    /// Sending the snapshot and having it restored (paused) at the
    /// destination.
    Prepare,
    /// Activating the actor at the destination.
    Commit,
}

impl fmt::Display for MigrationPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MigrationPhase::Validate => "validate",
            MigrationPhase::Capture => "capture",
            MigrationPhase::Prepare => "prepare",
            MigrationPhase::Commit => "commit",
        })
    }
}

/// Why a migration failed. The actor stays where it was, state unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationFailure {
    /// The destination is this node's own address or id.
    #[error("the actor is already on node {0}")]
    AlreadyThere(NodeId),
    /// The destination is not reachable from the actor's node; the text
    /// says which destination and why.
    #[error("{0}")]
    Unreachable(String),
    /// The destination does not have the actor type compiled in.
    #[error("destination does not know actor type {tag:?} (it knows: {known:?})")]
    UnknownType {
        /// The type tag.
        tag: String,
        /// The tags the destination knows.
        known: Vec<String>,
    },
    /// The destination's build has another shape of the type.
    #[error("destination has another schema of actor type {tag:?} (ours {ours:016x}, theirs {theirs:016x})")]
    SchemaMismatch {
        /// The type tag.
        tag: String,
        /// The fingerprint sent.
        ours: u64,
        /// The destination's fingerprint.
        theirs: u64,
    },
    /// The actor arrives in a newer version of its type than the one the
    /// destination's build runs (an older build cannot take it).
    #[error("the actor is at version {ours} of actor type {tag:?}, newer than the destination's version {theirs}")]
    NewerVersion {
        /// The type tag.
        tag: String,
        /// The version sent.
        ours: u32,
        /// The destination's (current) version.
        theirs: u32,
    },
    /// The actor arrives in an older version of its type that the
    /// destination has no upgrade path from.
    #[error("the destination runs version {theirs} of actor type {tag:?} and has no upgrade from version {ours} (it accepts versions {accepted:?})")]
    NoUpgrade {
        /// The type tag.
        tag: String,
        /// The version sent.
        ours: u32,
        /// The destination's (current) version.
        theirs: u32,
        /// Every version the destination accepts, oldest first.
        accepted: Vec<u32>,
    },
    /// The destination accepts the actor's (older) version, but its build
    /// has another shape of that version's state.
    #[error("the destination has another schema of version {version} of actor type {tag:?} (ours {ours:016x}, theirs {theirs:016x})")]
    VersionSchemaMismatch {
        /// The type tag.
        tag: String,
        /// The version sent.
        version: u32,
        /// The fingerprint of the state sent.
        ours: u64,
        /// The destination's fingerprint of that version's state.
        theirs: u64,
    },
    /// The actor's name belongs to another actor at the destination.
    #[error("the name {0:?} is taken at the destination")]
    NameTaken(String),
    /// `on_arrive` returned an error at the destination.
    #[error("on_arrive failed at the destination: {0}")]
    ArriveFailed(String),
    /// The snapshot could not be encoded or decoded.
    #[error("snapshot codec error: {0}")]
    Codec(String),
    /// The destination is already holding this actor (another migration).
    #[error("the destination is busy with another migration of this actor")]
    Busy,
    /// The destination did not answer in time.
    #[error("no answer from the destination within {0:?}")]
    Timeout(Duration),
    /// The link to the destination went down.
    #[error("the link to the destination went down")]
    LinkDown,
    /// The actor stopped before it could move.
    #[error("the actor stopped before it could move")]
    Stopped,
    /// The destination is leaving its cluster (draining) and takes no actor.
    #[error("the destination is leaving its cluster")]
    Leaving,
    /// The destination was declared failed by the cluster during the
    /// migration. Before the commit the actor stays home; after it, the
    /// actor died with the destination.
    #[error("the destination {0} was declared failed")]
    DestinationFailed(NodeId),
    /// This node was declared failed by its cluster during the migration
    /// (it was stalled or cut off): it does not know the outcome. The actor
    /// lives on at the destination if the copy there was the latest, or is
    /// reported down.
    #[error("this node was declared failed by its cluster; the outcome is not known here")]
    Fenced,
}

/// What a successful migration did. Returned by `Node::migrate` and emitted
/// as a `tracing` event (target `mobility::migration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationReport {
    /// The actor.
    pub actor: ActorId,
    /// Its type tag.
    pub type_tag: String,
    /// The node it left.
    pub from: NodeId,
    /// The node it lives on now.
    pub to: NodeId,
    /// Its epoch after the move.
    pub epoch: u64,
    /// Size of the encoded state alone.
    pub state_bytes: u64,
    /// Size of the whole snapshot sent (state, queue, timers, ...).
    pub snapshot_bytes: u64,
    /// Messages that moved in the mailbox (queued or held for order).
    pub queued_messages: u64,
    /// Timers that moved.
    pub timers: u64,
    /// Messages that arrived during the freeze and were forwarded after it.
    pub forwarded_messages: u64,
    /// Time to freeze and encode the snapshot at the source.
    pub capture: Duration,
    /// Time from sending the snapshot to the destination's acceptance.
    pub prepare: Duration,
    /// Part of `prepare` the destination spent decoding and running
    /// `on_arrive`.
    pub restore: Duration,
    /// Time from sending the commit to its acknowledgement.
    pub commit: Duration,
    /// Time the actor handled no message: from freeze to activation at the
    /// destination (measured to the commit acknowledgement, an upper bound).
    pub freeze: Duration,
    /// From the freeze to the destination's first handled message, as the
    /// source learns it (an upper bound, like `freeze`); `None` if no
    /// message was waiting when the actor started there.
    pub first_message: Option<Duration>,
}

impl MigrationReport {
    /// Time the snapshot spent on the way and in the destination's queue:
    /// `prepare` without `restore`.
    pub fn transfer(&self) -> Duration {
        self.prepare.saturating_sub(self.restore)
    }
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {} epoch {}: freeze {:?} (capture {:?}, transfer {:?}, restore {:?}, commit {:?}), {} state bytes, {} snapshot bytes, {} queued, {} timers, {} forwarded",
            self.from,
            self.to,
            self.epoch,
            self.freeze,
            self.capture,
            self.transfer(),
            self.restore,
            self.commit,
            self.state_bytes,
            self.snapshot_bytes,
            self.queued_messages,
            self.timers,
            self.forwarded_messages
        )?;
        if let Some(first) = self.first_message {
            write!(f, ", first message handled after {first:?}")?;
        }
        Ok(())
    }
}

/// A message waiting in the actor's queue, in its portable form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum QueuedWire {
    /// A numbered message from some stream.
    Numbered(WireEnvelope),
    /// A timer that fired: the encoded message to itself, and its kind.
    Timer(#[serde(with = "serde_bytes")] Vec<u8>, TimerKind),
    /// A message handled once and postponed: the encoded message and where
    /// its reply goes (the caller keeps waiting).
    Replay {
        #[serde(with = "serde_bytes")]
        msg: Vec<u8>,
        reply: Option<ReplyAddr>,
    },
}

/// A pending timer with the time it had left at capture.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TimerSnapshot {
    pub(crate) id: u64,
    pub(crate) remaining: Duration,
    pub(crate) interval: Option<Duration>,
    #[serde(default)]
    pub(crate) kind: TimerKind,
    #[serde(with = "serde_bytes")]
    pub(crate) msg: Vec<u8>,
}

/// Everything that moves with an actor, generic over how the state is held
/// (`&A` to encode, `A` to decode).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot<S> {
    pub(crate) state: S,
    pub(crate) from: NodeId,
    pub(crate) name: Option<String>,
    pub(crate) queue: Vec<QueuedWire>,
    pub(crate) tracker: Tracker<Origin, WireEnvelope>,
    pub(crate) timers: Vec<TimerSnapshot>,
    pub(crate) next_timer: u64,
    pub(crate) monitors: Vec<(NodeId, u64)>,
    /// Messages a state machine postponed until its state changes, in order.
    #[serde(default)]
    pub(crate) postponed: Vec<QueuedWire>,
    /// Requests whose replies the actor deferred and still owes.
    #[serde(default)]
    pub(crate) owed: Vec<ReplyAddr>,
}

impl<S> Snapshot<S> {
    /// Every node this snapshot owes something to: callers of queued,
    /// held, postponed and deferred requests, and monitors.
    pub(crate) fn nodes_owed(&self) -> Vec<NodeId> {
        let queued = self
            .queue
            .iter()
            .chain(&self.postponed)
            .filter_map(|q| match q {
                QueuedWire::Numbered(envelope) => Some(&envelope.origin.node),
                QueuedWire::Replay { reply, .. } => reply.as_ref().map(|r| &r.node),
                QueuedWire::Timer(..) => None,
            });
        let held = self.tracker.held().map(|envelope| &envelope.origin.node);
        let owed = self.owed.iter().map(|r| &r.node);
        let monitors = self.monitors.iter().map(|(node, _)| node);
        let mut nodes: Vec<NodeId> = queued
            .chain(held)
            .chain(owed)
            .chain(monitors)
            .cloned()
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The same snapshot around its state turned into another (an older
    /// version's state upgraded), or `f`'s error.
    pub(crate) fn map_state<T, E>(
        self,
        f: impl FnOnce(S) -> Result<T, E>,
    ) -> Result<Snapshot<T>, E> {
        Ok(Snapshot {
            state: f(self.state)?,
            from: self.from,
            name: self.name,
            queue: self.queue,
            tracker: self.tracker,
            timers: self.timers,
            next_timer: self.next_timer,
            monitors: self.monitors,
            postponed: self.postponed,
            owed: self.owed,
        })
    }

    /// The same snapshot around another state (e.g. `()`, to measure what
    /// the state alone weighs).
    pub(crate) fn with_state<T>(self, state: T) -> Snapshot<T> {
        match self.map_state(|_| Ok::<T, std::convert::Infallible>(state)) {
            Ok(snapshot) => snapshot,
            Err(never) => match never {},
        }
    }
}

/// What kind of timer it is: decides what replaces or cancels it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum TimerKind {
    /// `send_after` / `send_interval`: only `cancel_timer` ends it.
    #[default]
    Plain,
    /// The state timeout: one at a time, cancelled by a state change.
    State,
    /// The event timeout: one at a time, cancelled by any handled message.
    Event,
    /// A named timer: one per name.
    Named(String),
}

impl TimerKind {
    /// Whether at most one timer of this kind may exist.
    pub(crate) fn is_unique(&self) -> bool {
        !matches!(self, TimerKind::Plain)
    }
}
