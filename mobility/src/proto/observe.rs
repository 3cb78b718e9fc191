//! What a node tells its observers as it happens ([`Node::observe`]).
//!
//! [`Node::observe`]: crate::Node::observe

use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{ActorId, Destination, NodeId};
use crate::proto::migration::{MigrationFailure, MigrationReport};
use mobility_net::membership::MemberEvent;

/// Something that happened on one node, in the order the node saw it.
///
/// Each actor's events on a node come in order: `Spawned` or `Arrived`
/// first, then `Departed` or `Stopped` (with `MigrationFailed` in between
/// for moves that did not happen). The two nodes of a migration each tell
/// their side: the source `Departed`, the destination `Arrived`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// An actor was spawned here; its `on_start` hook has run.
    Spawned {
        /// The actor.
        actor: ActorId,
        /// Its type tag.
        type_tag: &'static str,
        /// Its name in the cluster, if it has one.
        name: Option<String>,
    },
    /// An actor arrived here by migration and is active.
    Arrived {
        /// The actor.
        actor: ActorId,
        /// Its type tag.
        type_tag: &'static str,
        /// Its name in the cluster, if it has one.
        name: Option<String>,
        /// The node it came from.
        from: NodeId,
        /// Its epoch here (bumped by every migration).
        epoch: u64,
    },
    /// An actor left this node by migration. The report is the one
    /// [`Node::migrate`](crate::Node::migrate) returns: destination, freeze
    /// time, bytes, messages moved and forwarded.
    Departed {
        /// How the migration went.
        report: MigrationReport,
    },
    /// A migration of an actor of this node failed: the actor runs on here,
    /// state unchanged.
    MigrationFailed {
        /// The actor.
        actor: ActorId,
        /// Its type tag.
        type_tag: &'static str,
        /// Where it was to go.
        to: Destination,
        /// What [`Node::migrate`](crate::Node::migrate) returned
        /// ([`Error::Migration`] with the phase and the failure).
        error: Error,
    },
    /// This node refused an actor another node tried to move here (unknown
    /// type or schema, name taken, `on_arrive` failed, node leaving...):
    /// the actor stays at its source.
    ArrivalRefused {
        /// The actor.
        actor: ActorId,
        /// Its type tag, as the source announced it (maybe unknown here).
        type_tag: String,
        /// The node it was to come from.
        from: NodeId,
        /// Why it was refused (what the source's `migrate` fails with).
        failure: MigrationFailure,
    },
    /// An actor ended here: stopped, panicked, or taken down with its node.
    Stopped {
        /// The actor.
        actor: ActorId,
        /// Its type tag.
        type_tag: &'static str,
        /// Its name in the cluster, if it had one.
        name: Option<String>,
        /// Why it ended (what its monitors are told).
        reason: ExitReason,
    },
    /// The cluster's membership changed (as [`Node::member_events`] tells,
    /// once the node has acted on it).
    ///
    /// [`Node::member_events`]: crate::Node::member_events
    Member(MemberEvent),
}

impl NodeEvent {
    /// The actor the event is about, if it is about one.
    pub fn actor(&self) -> Option<ActorId> {
        match self {
            NodeEvent::Spawned { actor, .. }
            | NodeEvent::Arrived { actor, .. }
            | NodeEvent::MigrationFailed { actor, .. }
            | NodeEvent::ArrivalRefused { actor, .. }
            | NodeEvent::Stopped { actor, .. } => Some(*actor),
            NodeEvent::Departed { report } => Some(report.actor),
            NodeEvent::Member(_) => None,
        }
    }
}
