//! What the node does when membership changes: a failed member's actors
//! are reported down, a leaving member's traffic goes where the directory
//! says its actors went.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use mobility_net::membership::MemberEvent;
use tokio::sync::broadcast;

use super::{Node, NodeShared};
use crate::cell::NetControl;
use crate::mailbox::entry::ErasedEntry;
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{ActorId, NodeId};
use crate::sync::{lock, read};

/// Follows the membership's events for as long as the node exists.
pub(crate) async fn follow(node: Weak<NodeShared>, mut events: broadcast::Receiver<MemberEvent>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "membership events missed");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(shared) = node.upgrade() else { return };
        let node = Node::from_shared(shared);
        if node
            .shared
            .stopped
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        node.on_member_event(&event);
        let _ = node.shared.member_events.send(event);
    }
}

impl Node {
    fn on_member_event(&self, event: &MemberEvent) {
        match event {
            MemberEvent::Joined(peer) => {
                tracing::info!(node = %self.id(), %peer, "member joined");
                self.set_member_failed(peer, false);
                self.shared.links.unpark(peer);
            }
            MemberEvent::Left(peer) => {
                tracing::info!(node = %self.id(), %peer, "member left");
                // Its link is not used again: what went through it goes
                // where the directory says, or is answered as undeliverable.
                self.shared.links.park(peer);
                self.reroute_from(peer, false);
            }
            MemberEvent::Fenced => {
                let node = self.clone();
                tokio::spawn(async move { node.fence().await });
            }
            MemberEvent::Failed(peer) => {
                tracing::warn!(node = %self.id(), %peer, "member failed");
                self.set_member_failed(peer, true);
                self.shared.links.park(peer);
                let moved = self.reroute_from(peer, true);
                self.fail_waiting_on(peer, &moved, &ExitReason::Unreachable(peer.clone()));
                for entry in self.all_entries() {
                    entry.control(NetControl::PeerLost(peer.clone()));
                    entry.control(NetControl::MemberFailed(peer.clone()));
                }
                self.sweep_after_failure(peer.clone());
            }
        }
    }

    /// Points every slot routed to `peer` at where the directory says its
    /// actor lives now; the actors so found. After a failure the slots
    /// start new streams: what the dead node held of the old ones is lost.
    fn reroute_from(&self, peer: &NodeId, failed: bool) -> HashSet<ActorId> {
        let mut moved = HashSet::new();
        for entry in self.all_entries() {
            if entry.is_hosting() || entry.current_route().node != *peer {
                continue;
            }
            let actor = entry.actor();
            if let Some((node, epoch)) = self.locate(actor).filter(|(n, _)| n != peer) {
                entry.control(if failed {
                    NetControl::Restream { node, epoch }
                } else {
                    NetControl::Moved { node, epoch }
                });
                moved.insert(actor);
            }
        }
        moved
    }

    /// A request that went through a live member toward an actor on the
    /// failed node (a forwarder passed it on) waits on no slot routed to
    /// the failed node. Once the directory has settled, whatever waits on
    /// an actor no member hosts any more is failed too.
    fn sweep_after_failure(&self, peer: NodeId) {
        let Some(settle) = self
            .shared
            .directory
            .as_ref()
            .map(|d| d.gossip_interval() * 4)
        else {
            return;
        };
        let node = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(settle).await;
            let gone: HashSet<ActorId> = node
                .all_entries()
                .iter()
                .filter(|e| !e.is_hosting() && e.exit_reason().is_none())
                .map(|e| e.actor())
                .filter(|actor| node.locate(*actor).is_none())
                .filter(|actor| {
                    // In this cluster (it was seen here), not one elsewhere.
                    node.entry(actor).is_some_and(|e| {
                        let last = e.current_route().node;
                        node.is_cluster_node(&last) || last == peer
                    })
                })
                .collect();
            if !gone.is_empty() {
                node.fail_waiting_for(&gone, &ExitReason::Unreachable(peer));
            }
        });
    }

    pub(super) fn all_entries(&self) -> Vec<Arc<dyn ErasedEntry>> {
        read(&self.shared.entries).values().cloned().collect()
    }

    /// Fails the replies and monitors that wait on actors last seen on
    /// `peer` (gone for good) with `reason`, but for
    /// monitors of actors found alive elsewhere (`alive`).
    pub(super) fn fail_waiting_on(
        &self,
        peer: &NodeId,
        alive: &HashSet<ActorId>,
        reason: &ExitReason,
    ) {
        let behind: HashSet<ActorId> = self
            .all_entries()
            .iter()
            .filter(|e| !e.is_hosting() && e.current_route().node == *peer)
            .map(|e| e.actor())
            .chain(alive.iter().copied())
            .collect();
        let dead: HashSet<ActorId> = behind.difference(alive).copied().collect();
        self.fail_replies(&behind, reason);
        self.fail_monitors(&dead, reason);
    }

    /// Fails whatever waits on `actors` (replies and monitors).
    fn fail_waiting_for(&self, actors: &HashSet<ActorId>, reason: &ExitReason) {
        self.fail_replies(actors, reason);
        self.fail_monitors(actors, reason);
    }

    fn fail_replies(&self, behind: &HashSet<ActorId>, reason: &ExitReason) {
        let failed: Vec<(ActorId, crate::api::reply::ReplySender)> = {
            let mut pending = lock(&self.shared.pending);
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, w)| behind.contains(&w.actor))
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| pending.remove(&id).map(|w| (w.actor, w.sender)))
                .collect()
        };
        for (actor, sender) in failed {
            let _ = sender.send(Err(Error::ActorDown {
                actor,
                reason: reason.clone(),
            }));
        }
    }

    fn fail_monitors(&self, dead: &HashSet<ActorId>, reason: &ExitReason) {
        let fired: Vec<tokio::sync::oneshot::Sender<ExitReason>> = {
            let mut monitors = lock(&self.shared.monitors);
            let ids: Vec<u64> = monitors
                .iter()
                .filter(|(_, w)| dead.contains(&w.actor))
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| monitors.remove(&id).map(|w| w.sender))
                .collect()
        };
        for sender in fired {
            let _ = sender.send(reason.clone());
        }
    }
}
