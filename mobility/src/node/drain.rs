//! Graceful leave: every actor of the node moves to other members, spread
//! evenly and a few at a time; then the node leaves the cluster and stops.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::versions::{self, TypeVersions};
use super::Node;
use crate::mailbox::entry::{ErasedEntry, Route};
use crate::proto::error::Error;
use crate::proto::id::{ActorId, Destination, NodeId};
use crate::proto::migration::MigrationReport;
use crate::proto::wire::PeerMsg;

/// How many actors move at once during a drain.
const DRAIN_CONCURRENCY: usize = 4;

/// What [`Node::drain`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DrainReport {
    /// One report per actor moved, in the order they landed.
    pub moved: Vec<MigrationReport>,
    /// How long the drain took, leaving included.
    pub took: Duration,
}

impl Node {
    /// Leaves the cluster gracefully: moves every actor of this node to the
    /// other members (spread evenly by how many actors each hosts, at most
    /// 4 moves at once; an actor whose move fails is tried on the next
    /// member), waits for them to land, tells every linked node (of any
    /// cluster) where the actors it forwards for are, tells the cluster
    /// this node is leaving, lets the forwarders it leaves behind go quiet,
    /// then shuts the node down.
    ///
    /// In a cluster of mixed builds (a rolling upgrade), an actor goes only
    /// to members that announced they take its version
    /// ([`Node::type_versions`]): its own, or an older one they upgrade.
    ///
    /// If an actor cannot be placed, the node stays up and in the cluster
    /// with that actor still running here, and the error
    /// ([`Error::DrainIncomplete`]) says which actors and why; those that
    /// did move stay moved.
    pub async fn drain(&self) -> Result<DrainReport, Error> {
        self.check_running()?;
        let Some(directory) = &self.shared.directory else {
            return Err(Error::Config(
                "only a member of a cluster can drain to its cluster: give the builder .cluster(..) and .listen(..), or drain_to(a destination)".into(),
            ));
        };
        let mut load: Vec<(NodeId, usize)> = directory
            .load()
            .into_iter()
            .filter(|(node, _)| node != self.id())
            .collect();
        if load.is_empty() {
            return Err(Error::DrainIncomplete {
                node: self.id().clone(),
                moved: 0,
                failed: self
                    .hosted()
                    .into_iter()
                    .map(|a| (a, "no other member of the cluster to take it".to_owned()))
                    .collect(),
            });
        }
        // What each member announced it takes (a rolling upgrade may be in
        // progress): an actor goes only where its version is taken.
        let announced: HashMap<NodeId, Option<Vec<TypeVersions>>> = load
            .iter()
            .map(|(node, _)| (node.clone(), self.type_versions(node)))
            .collect();
        let registry = self.registry();
        self.drain_with(move |entry| {
            let tag = entry.type_tag();
            let version = registry.get(tag).map_or(0, |t| t.version());
            let mut refused = Vec::new();
            let order = placement(&mut load, |node| {
                match announced.get(node).and_then(Option::as_deref) {
                    // Said nothing (an older build): tried, it decides.
                    None => true,
                    Some(types) => match versions::refusal(types, tag, version) {
                        None => true,
                        Some(why) => {
                            refused.push(format!("{node}: {why}"));
                            false
                        }
                    },
                }
            });
            if order.is_empty() {
                return Err(format!(
                    "no member takes version {version} of {tag:?} ({})",
                    refused.join("; ")
                ));
            }
            Ok(order.into_iter().map(Destination::Node).collect())
        })
        .await
    }

    /// Leaves like [`drain`](Node::drain), but moves every actor of this
    /// node to one destination: a linked node, a member, or a node of
    /// another cluster (`tcp://host:port`). For a node outside any cluster
    /// too. Then it tells the nodes it is linked to where the actors went,
    /// leaves its cluster if it has one, and shuts down. If an actor cannot
    /// move, the node stays up with it ([`Error::DrainIncomplete`]).
    pub async fn drain_to(&self, to: impl Into<Destination>) -> Result<DrainReport, Error> {
        self.check_running()?;
        let to = to.into();
        self.drain_with(move |_| Ok(vec![to.clone()])).await
    }

    /// Moves every hosted actor to the first destination of `order` (asked
    /// once per actor: where to try it, or why it has nowhere to go) that
    /// takes it, a few at a time; then leaves.
    async fn drain_with(
        &self,
        mut order: impl FnMut(&dyn ErasedEntry) -> Result<Vec<Destination>, String>,
    ) -> Result<DrainReport, Error> {
        let started = Instant::now();
        self.shared.leaving.store(true, Ordering::Release);
        let actors: Vec<Arc<dyn ErasedEntry>> = self
            .all_entries()
            .into_iter()
            .filter(|e| e.is_hosting())
            .collect();
        let mut moved = Vec::new();
        let mut failed: Vec<(ActorId, String)> = Vec::new();
        let permits = Arc::new(Semaphore::new(DRAIN_CONCURRENCY));
        let mut moves = JoinSet::new();
        for entry in actors {
            let order = match order(&*entry) {
                Ok(order) => order,
                Err(why) => {
                    failed.push((entry.actor(), why));
                    continue;
                }
            };
            let permits = Arc::clone(&permits);
            moves.spawn(async move {
                let _permit = permits.acquire_owned().await;
                place(entry, order).await
            });
        }
        while let Some(outcome) = moves.join_next().await {
            match outcome {
                Ok(Ok(report)) => moved.push(report),
                Ok(Err((actor, why))) => failed.push((actor, why)),
                Err(e) => tracing::error!(node = %self.id(), error = %e, "a drain task failed"),
            }
        }
        if !failed.is_empty() {
            self.shared.leaving.store(false, Ordering::Release);
            return Err(Error::DrainIncomplete {
                node: self.id().clone(),
                moved: moved.len(),
                failed,
            });
        }
        self.hand_over_forwarders();
        if let Some(directory) = &self.shared.directory {
            directory.leave().await;
        }
        let quiet = self
            .shared
            .directory
            .as_ref()
            .map_or(Duration::from_millis(300), |d| d.gossip_interval() * 3);
        self.wait_forwarding_quiet(quiet).await;
        self.shutdown().await;
        Ok(DrainReport {
            moved,
            took: started.elapsed(),
        })
    }

    /// Tells every linked node and every member where the actors this node
    /// forwards for live now, before it goes: a node that still routes one of them through
    /// here (the source of a move to this node, a sender corrected toward
    /// it) goes straight there instead. Its own cluster's directory does
    /// not say this to nodes of other clusters, nor of actors that went to
    /// another cluster. Epochs fence it: a node with a newer route, or
    /// hosting the actor, ignores it. What was sent here before the news
    /// arrived is still forwarded while the forwarders go quiet.
    fn hand_over_forwarders(&self) {
        // Every linked node, and every member even if not linked yet (it is
        // dialed): a member may hold a handle routed through here that it
        // never used, toward an actor that went to another cluster, which
        // no directory of this cluster will name once this node is gone.
        let mut peers = self.shared.links.linked();
        for member in self.members() {
            if member != *self.id() && !peers.contains(&member) {
                peers.push(member);
            }
        }
        for entry in self.all_entries() {
            if entry.is_hosting() || entry.exit_reason().is_some() {
                continue;
            }
            let Route { node, epoch } = entry.current_route();
            if node == *self.id() {
                continue;
            }
            let addr = self.address_of(&node);
            for peer in peers.iter().filter(|peer| **peer != node) {
                let moved = PeerMsg::Moved {
                    actor: entry.actor(),
                    node: node.clone(),
                    epoch,
                    addr: addr.clone(),
                };
                if let Err(e) = self.send_peer(peer, &moved) {
                    tracing::debug!(node = %self.id(), %peer, error = %e, "a forwarder's route could not be handed over");
                }
            }
        }
    }

    /// Waits until this node has forwarded nothing for `quiet` (its senders
    /// have been corrected or rerouted), for at most the migration timeout.
    async fn wait_forwarding_quiet(&self, quiet: Duration) {
        let deadline = Instant::now() + self.shared.config.migration_timeout;
        let mut seen = self.shared.forwarded.load(Ordering::Relaxed);
        let mut since = Instant::now();
        while Instant::now() < deadline {
            tokio::time::sleep(quiet / 4).await;
            let now = self.shared.forwarded.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return;
            }
        }
        tracing::warn!(node = %self.id(), "still forwarding when the drain's time ran out");
    }
}

/// The members to try for one actor, among those `eligible`, least loaded
/// first; the first one is counted as taking it.
fn placement(
    load: &mut [(NodeId, usize)],
    mut eligible: impl FnMut(&NodeId) -> bool,
) -> Vec<NodeId> {
    load.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let mut order = load.iter_mut().filter(|(node, _)| eligible(node));
    let Some(first) = order.next() else {
        return Vec::new();
    };
    first.1 += 1;
    let mut nodes = vec![first.0.clone()];
    nodes.extend(order.map(|(node, _)| node.clone()));
    nodes
}

/// Moves one actor to the first destination of `order` that takes it.
async fn place(
    entry: Arc<dyn ErasedEntry>,
    order: Vec<Destination>,
) -> Result<MigrationReport, (ActorId, String)> {
    let actor = entry.actor();
    let mut why = Vec::new();
    for node in order {
        match Arc::clone(&entry).migrate(node.clone()).await {
            Ok(report) => return Ok(report),
            // Gone meanwhile (stopped): nothing left to place.
            Err(Error::ActorDown { .. }) if !entry.is_hosting() => {
                return Err((actor, "it stopped during the drain".into()))
            }
            Err(e) => why.push(format!("{node}: {e}")),
        }
    }
    Err((actor, why.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn placement_spreads_evenly_and_orders_fallbacks() {
        let id = |s: &str| NodeId::new(s).unwrap();
        let mut load = vec![(id("b"), 2), (id("c"), 0), (id("d"), 0)];
        let picks: Vec<NodeId> = (0..6)
            .map(|_| placement(&mut load, |_| true)[0].clone())
            .collect();
        let names: Vec<&str> = picks.iter().map(NodeId::as_str).collect();
        assert_eq!(names, ["c", "d", "c", "d", "b", "c"]);
        let order = placement(&mut load, |_| true);
        assert_eq!(order.len(), 3, "every member is a fallback");
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn placement_skips_members_that_do_not_take_the_actor() {
        let id = |s: &str| NodeId::new(s).unwrap();
        let mut load = vec![(id("old"), 0), (id("new1"), 3), (id("new2"), 5)];
        let order = placement(&mut load, |n| n.as_str() != "old");
        let names: Vec<&str> = order.iter().map(NodeId::as_str).collect();
        assert_eq!(names, ["new1", "new2"], "the old member is never tried");
        assert_eq!(load[0], (id("old"), 0), "nor counted");
        assert!(placement(&mut load, |_| false).is_empty());
    }
}
