//! What the node does when membership changes: a failed member's actors
//! are reported down, a leaving member's traffic goes where the directory
//! says its actors went.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use mobility_net::membership::MemberEvent;
use tokio::sync::broadcast;

use super::{Node, NodeShared};
use crate::api::reply::ReplySender;
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
        node.emit(crate::proto::observe::NodeEvent::Member(event.clone()));
        let _ = node.shared.member_events.send(event);
    }
}

impl Node {
    fn on_member_event(&self, event: &MemberEvent) {
        match event {
            MemberEvent::Joined(peer) => {
                tracing::info!(node = %self.id(), %peer, "member joined");
                self.set_member_failed(peer, false);
                lock(&self.shared.lost_peers).remove(peer);
                self.shared.links.unpark(peer);
            }
            MemberEvent::Left(peer) => {
                tracing::info!(node = %self.id(), %peer, "member left");
                // It shut down (after a drain or not): what is still sent
                // toward it is answered so.
                self.remember_lost(peer, ExitReason::NodeDown(peer.clone()));
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
                // The requests this node sent toward the failed member, taken
                // before any slot turns to a new route: whatever the member
                // held of them is lost with it.
                let toward = self.routed_to(peer);
                let waiting = self.take_replies(&toward);
                let moved = self.reroute_from(peer, true);
                for entry in self.all_entries() {
                    entry.control(NetControl::PeerLost(peer.clone()));
                    entry.control(NetControl::MemberFailed(peer.clone()));
                }
                self.settle_after_failure(peer.clone(), toward, &moved, waiting);
            }
        }
    }

    /// The actors whose slots here route to `peer` (it holds them, or
    /// forwards toward them).
    fn routed_to(&self, peer: &NodeId) -> HashSet<ActorId> {
        self.all_entries()
            .iter()
            .filter(|e| !e.is_hosting() && e.current_route().node == *peer)
            .map(|e| e.actor())
            .collect()
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

    /// Decides, once the cluster has settled on `peer`'s failure, what
    /// became of the actors this node reached through it, and answers the
    /// requests `peer` held (`waiting`):
    ///
    /// - an actor that lives on (it had moved, or a destination holding a
    ///   prepared copy from `peer` activated it when `peer` was declared
    ///   failed): its requests held by `peer` are [`Error::Lost`] (they may
    ///   or may not have been handled), and the slot follows it;
    /// - an actor no member hosts: it was on `peer`, which is fenced, so it
    ///   is down ([`ExitReason::Unreachable`]) for its callers and monitors.
    ///
    /// Settled means every live member has declared `peer` failed (none acts
    /// on it any more: a destination has decided), then a few gossip rounds
    /// for their announcements to arrive; at most twice the failure timeout,
    /// for a member that never does. Requests that went through a live
    /// member toward an actor on `peer` are decided the same way then.
    fn settle_after_failure(
        &self,
        peer: NodeId,
        toward: HashSet<ActorId>,
        moved: &HashSet<ActorId>,
        waiting: Vec<(ActorId, ReplySender)>,
    ) {
        if self.shared.directory.is_none() {
            return;
        }
        // Those already found elsewhere are lost now, not in a while.
        let (now, later): (Vec<_>, Vec<_>) = waiting
            .into_iter()
            .partition(|(actor, _)| moved.contains(actor));
        answer(now, |actor| Error::Lost {
            actor,
            node: peer.clone(),
        });
        let node = self.clone();
        tokio::spawn(async move {
            let Some(directory) = node.shared.directory.as_ref() else {
                return;
            };
            let gossip = directory.gossip_interval();
            let patience = directory.failure_timeout() * 2;
            let started = tokio::time::Instant::now();
            while !directory.failure_acknowledged(&peer) && started.elapsed() < patience {
                tokio::time::sleep(gossip).await;
            }
            tokio::time::sleep(gossip * 3).await;
            if node
                .shared
                .stopped
                .load(std::sync::atomic::Ordering::Acquire)
            {
                return;
            }
            node.decide_after_failure(&peer, &toward, later);
        });
    }

    fn decide_after_failure(
        &self,
        peer: &NodeId,
        toward: &HashSet<ActorId>,
        mut waiting: Vec<(ActorId, ReplySender)>,
    ) {
        let (mut alive, mut dead) = (HashSet::new(), HashSet::new());
        for entry in self.all_entries() {
            if entry.is_hosting() || entry.exit_reason().is_some() {
                continue;
            }
            let actor = entry.actor();
            let last = entry.current_route().node;
            let located = self.locate(actor).filter(|(n, _)| n != peer);
            // Through a live member toward an actor no member hosts now:
            // it was on `peer` too.
            let through = last != *peer && self.is_cluster_node(&last) && located.is_none();
            if !(toward.contains(&actor) || last == *peer || through) {
                continue;
            }
            match located {
                Some((node, epoch)) => {
                    if last == *peer {
                        entry.control(NetControl::Restream { node, epoch });
                    }
                    alive.insert(actor);
                }
                None => {
                    dead.insert(actor);
                }
            }
        }
        let down = ExitReason::Unreachable(peer.clone());
        waiting.extend(self.take_replies(&dead));
        answer(waiting, |actor| {
            if dead.contains(&actor) {
                Error::ActorDown {
                    actor,
                    reason: down.clone(),
                }
            } else {
                Error::Lost {
                    actor,
                    node: peer.clone(),
                }
            }
        });
        self.fail_monitors(&dead, &down);
        if !alive.is_empty() || !dead.is_empty() {
            tracing::info!(
                node = %self.id(),
                %peer,
                alive = alive.len(),
                down = dead.len(),
                "settled what the failed member held"
            );
        }
    }

    pub(super) fn all_entries(&self) -> Vec<Arc<dyn ErasedEntry>> {
        read(&self.shared.entries).values().cloned().collect()
    }

    /// Fails the replies and monitors that wait on actors last seen on
    /// `peer`, a link lost for good (not a member: no directory to ask).
    pub(super) fn fail_waiting_on(&self, peer: &NodeId, reason: &ExitReason) {
        let behind = self.routed_to(peer);
        answer(self.take_replies(&behind), |actor| Error::ActorDown {
            actor,
            reason: reason.clone(),
        });
        self.fail_monitors(&behind, reason);
    }

    /// Takes the replies waiting on `actors` out of the node's table.
    fn take_replies(&self, actors: &HashSet<ActorId>) -> Vec<(ActorId, ReplySender)> {
        if actors.is_empty() {
            return Vec::new();
        }
        let mut pending = lock(&self.shared.pending);
        let ids: Vec<u64> = pending
            .iter()
            .filter(|(_, w)| actors.contains(&w.actor))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| pending.remove(&id).map(|w| (w.actor, w.sender)))
            .collect()
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

/// Answers each waiting caller with the error made for its actor.
fn answer(waiting: Vec<(ActorId, ReplySender)>, error: impl Fn(ActorId) -> Error) {
    for (actor, sender) in waiting {
        let _ = sender.send(Err(error(actor)));
    }
}
