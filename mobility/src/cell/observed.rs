//! What a cell tells its node's observers beyond the actor's lifecycle
//! (spawned, arrived, departed and stopped are told where they happen).

use super::Cell;
use crate::api::actor::Actor;
use crate::api::reply::ReplyTo;
use crate::proto::error::Error;
use crate::proto::id::{Destination, NodeId};
use crate::proto::migration::{MigrationFailure, MigrationPhase, MigrationReport};
use crate::proto::observe::NodeEvent;

impl<A: Actor> Cell<A> {
    /// Answers whoever asked for a migration to `to` that it failed at
    /// `phase`, and tells the observers. The actor stays here.
    pub(super) fn migration_failed(
        &self,
        reply: ReplyTo,
        to: Destination,
        phase: MigrationPhase,
        failure: MigrationFailure,
    ) {
        let actor = self.id();
        let error = Error::Migration {
            actor,
            phase,
            failure,
        };
        self.node.emit(NodeEvent::MigrationFailed {
            actor,
            type_tag: A::TYPE_TAG,
            to,
            error: error.clone(),
        });
        reply.send(Err::<MigrationReport, _>(error));
    }

    /// This node refused the actor `from` tried to move here: tells the
    /// observers (the machine answers the source).
    pub(super) fn arrival_refused(&self, from: &NodeId, failure: &MigrationFailure) {
        self.node.emit(NodeEvent::ArrivalRefused {
            actor: self.id(),
            type_tag: A::TYPE_TAG.to_owned(),
            from: from.clone(),
            failure: failure.clone(),
        });
    }
}
