//! A cell whose actor lives elsewhere: following newer locations, starting
//! a new stream after a failure, and retiring when nobody needs it.

use super::{Cell, Mode};
use crate::api::actor::Actor;
use crate::mailbox::entry::Route;
use crate::proto::id::NodeId;

impl<A: Actor> Cell<A> {
    /// A newer location for the actor this cell forwards to (an older one
    /// never overwrites a newer: epochs fence stale answers).
    pub(super) fn reroute(&mut self, newer: Route) {
        self.handover.moved(super::handover::to_proto(&newer));
        if let Mode::Forwarding(route) = &mut self.mode {
            if newer.epoch > route.epoch && newer.node != *self.node.id() {
                *route = newer;
                self.entry.set_route(route.clone());
            }
        }
    }

    /// The node this cell forwarded through died, maybe with messages of
    /// its stream: go to `node` from now on, in a new stream (the actor
    /// would otherwise wait forever for the lost numbers).
    pub(super) fn restream(&mut self, node: NodeId, epoch: u64) {
        if let Mode::Forwarding(route) = &self.mode {
            if epoch >= route.epoch && node != *self.node.id() {
                self.stream = crate::proto::wire::Origin::fresh(self.node.id());
                self.next_seq = 0;
                let route = Route { node, epoch };
                self.handover.moved(super::handover::to_proto(&route));
                // Stream and route change together for direct senders: no
                // new-stream message to the old route.
                self.entry.restream(&self.stream, route.clone());
                self.mode = Mode::Forwarding(route);
            }
        }
    }

    /// When an idle forwarder may retire, if it may at all: not while a
    /// migration's answer or outcome is still owed.
    pub(super) fn retire_at(&self) -> Option<tokio::time::Instant> {
        let settled = self.pending.is_none() && self.handover.poll_timeout().is_none();
        match (&self.mode, self.node.forwarder_idle()) {
            (Mode::Forwarding(_), Some(idle)) if settled => Some(self.last_forward + idle),
            _ => None,
        }
    }

    /// Numbers local messages again (from now on, for good) if local
    /// senders were sending directly: they queue in the mailbox again.
    pub(super) fn take_numbering(&mut self) {
        if let Some(direct) = self.entry.stop_direct() {
            self.stream = direct.stream;
            self.next_seq = direct.next_seq;
        }
    }

    /// Sends on whatever already waits in the mailbox, before the cell ends.
    pub(super) fn forward_pending(&mut self, route: &Route) {
        self.take_numbering();
        while let Ok(envelope) = self.rx.try_recv() {
            let numbered = self.number(envelope);
            self.forward(route, numbered);
        }
    }

    /// An idle forwarder with no handle left on this node leaves the node's
    /// table; what was already in its mailbox goes on to the actor.
    pub(super) fn try_retire(&mut self) {
        let Mode::Forwarding(route) = &self.mode else {
            return;
        };
        let route = route.clone();
        if !self.node.retire_forwarder(self.entry.id, &route) {
            // Still needed: look again after another idle period.
            self.last_forward = tokio::time::Instant::now();
            return;
        }
        self.forward_pending(&route);
        tracing::debug!(actor = %self.id(), node = %self.node.id(), "idle forwarder retired");
        self.mode = Mode::Stopped;
    }
}
