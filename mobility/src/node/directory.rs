//! The cluster directory: which node hosts which actor (and at which epoch)
//! and which actor holds which name, read from the members' gossip state.
//!
//! Each node publishes only what it hosts, in its own gossip keys:
//! - `addr`: where it listens for TCP links;
//! - `types`: the version of each actor type it runs and accepts;
//! - `a:<actor id>` = `<epoch>`: an actor active here;
//! - `n:<name>` = `<actor id> <type tag>`: a name held by an actor here.
//!
//! A failed node's keys leave with it. During a move both the old and the
//! new host may be seen for a moment; the higher epoch wins, and the old
//! node forwards meanwhile.
//!
//! Names are claimed through one coordinator (the live member with the
//! smallest id, not leaving), which sees every claim in order: of two nodes
//! claiming a name at once, exactly one gets it, the other is told who has
//! it. Should two coordinators ever grant one name (members that disagree
//! on who is alive, just after a join), every node resolves the name to the
//! same winner: the smaller actor id.

use crate::sync::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mobility_net::membership::{Member, MemberEvent, Membership};
use tokio::sync::{broadcast, mpsc};

use crate::proto::id::{ActorId, NodeId};

const ADDR_KEY: &str = "addr";

/// How long a granted claim holds a name before it shows in gossip.
const CLAIM_HOLD: Duration = Duration::from_secs(10);

fn actor_key(actor: ActorId) -> String {
    format!("a:{actor}")
}

fn name_key(name: &str) -> String {
    format!("n:{name}")
}

/// A name as the directory sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameEntry {
    pub(crate) actor: ActorId,
    pub(crate) type_tag: String,
    pub(crate) node: NodeId,
}

/// A change to this node's own keys, applied in order by one task.
enum Publish {
    Set(String, String),
    Delete(String),
    /// The name is in our own state now: a claim granted here for it has
    /// done its job.
    Settle(String, ActorId),
}

/// A claim this node granted as coordinator, until gossip shows it.
struct Claim {
    actor: ActorId,
    node: NodeId,
    at: Instant,
}

impl Claim {
    /// Whether the claim still stands: it lapses once gossip shows the
    /// name or the actor (gossip is the truth from then on, also when the
    /// actor later ends), or its claimant is gone, or it never showed up in
    /// time.
    fn holds(&self, name: &str, membership: &Membership) -> bool {
        // A host publishes an actor's name before the actor itself, so an
        // actor seen anywhere had its name seen too (even if it moved on).
        self.at.elapsed() < CLAIM_HOLD
            && membership.value(&self.node, ADDR_KEY).is_some()
            && membership.values_of(&actor_key(self.actor)).is_empty()
            && !membership
                .values_of(&name_key(name))
                .iter()
                .any(|(_, value)| value.starts_with(&format!("{} ", self.actor)))
    }
}

/// Drops the claims gossip has caught up with, every gossip interval, for
/// as long as the directory exists.
async fn sweep_claims(
    membership: Membership,
    claims: std::sync::Weak<Mutex<HashMap<String, Claim>>>,
    interval: Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(claims) = claims.upgrade() else {
            return;
        };
        lock(&claims).retain(|name, claim| claim.holds(name, &membership));
    }
}

pub(crate) struct Directory {
    /// How long a silent member takes to be declared failed.
    failure_timeout: Duration,
    membership: Membership,
    gossip_interval: Duration,
    publish: mpsc::UnboundedSender<Publish>,
    claims: Arc<Mutex<HashMap<String, Claim>>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("membership", &self.membership)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Publishes this node's TCP address and the actor types it runs
    /// (`types`, see `versions.rs`) and starts the ordered publisher.
    pub(crate) async fn start(
        membership: Membership,
        tcp_addr: String,
        types: String,
        gossip_interval: Duration,
        failure_timeout: Duration,
    ) -> Directory {
        membership.set(super::versions::TYPES_KEY, &types).await;
        membership.set(ADDR_KEY, &tcp_addr).await;
        let (publish, mut queue) = mpsc::unbounded_channel();
        let publisher = membership.clone();
        let claims: Arc<Mutex<HashMap<String, Claim>>> = Arc::new(Mutex::new(HashMap::new()));
        let settled = Arc::clone(&claims);
        tokio::spawn(async move {
            while let Some(change) = queue.recv().await {
                match change {
                    Publish::Set(key, value) => publisher.set(&key, &value).await,
                    Publish::Delete(key) => publisher.delete(&key).await,
                    Publish::Settle(name, actor) => {
                        let mut claims = lock(&settled);
                        if claims.get(&name).is_some_and(|c| c.actor == actor) {
                            claims.remove(&name);
                        }
                    }
                }
            }
        });
        tokio::spawn(sweep_claims(
            membership.clone(),
            Arc::downgrade(&claims),
            gossip_interval,
        ));
        Directory {
            membership,
            gossip_interval,
            failure_timeout,
            publish,
            claims,
        }
    }

    /// This node's stalls and standing with its cluster.
    pub(crate) fn stall_guard(&self) -> mobility_net::membership::StallGuard {
        self.membership.stall_guard()
    }

    /// Whether this node sees its cluster and every member sees it.
    pub(crate) fn joined(&self) -> bool {
        self.membership.joined()
    }

    pub(crate) fn gossip_interval(&self) -> Duration {
        self.gossip_interval
    }

    pub(crate) fn failure_timeout(&self) -> Duration {
        self.failure_timeout
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<MemberEvent> {
        self.membership.subscribe()
    }

    fn set(&self, key: String, value: String) {
        let _ = self.publish.send(Publish::Set(key, value));
    }

    fn delete(&self, key: String) {
        let _ = self.publish.send(Publish::Delete(key));
    }

    /// `actor` is active here since `epoch`, under `name` if it has one.
    pub(crate) fn hosting(&self, actor: ActorId, epoch: u64, name: Option<(&str, &str)>) {
        // The name first: whoever sees the actor here has seen its name.
        if let Some((name, type_tag)) = name {
            self.set(name_key(name), format!("{actor} {type_tag}"));
            let _ = self.publish.send(Publish::Settle(name.to_owned(), actor));
        }
        self.set(actor_key(actor), epoch.to_string());
    }

    /// `actor` is no longer active here (moved away or ended).
    pub(crate) fn left(&self, actor: ActorId, name: Option<&str>) {
        self.delete(actor_key(actor));
        if let Some(name) = name {
            self.delete(name_key(name));
        }
    }

    /// Whether every live member has declared `peer` failed.
    pub(crate) fn failure_acknowledged(&self, peer: &NodeId) -> bool {
        self.membership.failure_acknowledged(peer)
    }

    /// The live members, this node included.
    pub(crate) fn members(&self) -> Vec<Member> {
        self.membership.members()
    }

    /// Where a live member listens for TCP links.
    /// Where a live member that is not leaving listens: one that announced
    /// its leave is not dialed (its link is parked, see `members.rs`).
    pub(crate) fn address_of(&self, node: &NodeId) -> Option<String> {
        let addr = self.membership.value(node, ADDR_KEY)?;
        (!self.membership.is_leaving(node)).then_some(addr)
    }

    /// Bytes of gossip sent and received by this node.
    pub(crate) fn gossip_bytes(&self) -> (u64, u64) {
        self.membership.gossip_bytes()
    }

    /// What member `node` published under `key`.
    pub(crate) fn value_of(&self, node: &NodeId, key: &str) -> Option<String> {
        self.membership.value(node, key)
    }

    /// The live node hosting `actor`, with the epoch it hosts it at.
    pub(crate) fn locate(&self, actor: ActorId) -> Option<(NodeId, u64)> {
        self.membership
            .values_of(&actor_key(actor))
            .into_iter()
            .filter_map(|(node, epoch)| Some((node, epoch.parse::<u64>().ok()?)))
            .max_by_key(|(_, epoch)| *epoch)
    }

    /// The actor holding `name` in the cluster, if any.
    pub(crate) fn find_name(&self, name: &str) -> Option<NameEntry> {
        self.membership
            .values_of(&name_key(name))
            .into_iter()
            .filter_map(|(node, value)| {
                let (actor, type_tag) = value.split_once(' ')?;
                Some(NameEntry {
                    actor: ActorId::parse(actor)?,
                    type_tag: type_tag.to_owned(),
                    node,
                })
            })
            .min_by_key(|entry| entry.actor)
    }

    /// Every name the cluster's members publish, with its actor and the
    /// node hosting it now, sorted by name. A name seen twice (a move in
    /// progress, or two grants after a join) resolves as in `find_name`.
    pub(crate) fn names(&self) -> Vec<(String, NameEntry)> {
        let mut names: std::collections::BTreeMap<String, NameEntry> = Default::default();
        for member in self.members() {
            for (key, value) in &member.values {
                let Some(name) = key.strip_prefix("n:") else {
                    continue;
                };
                let Some((actor, type_tag)) = value.split_once(' ') else {
                    continue;
                };
                let Some(actor) = ActorId::parse(actor) else {
                    continue;
                };
                let seen = NameEntry {
                    actor,
                    type_tag: type_tag.to_owned(),
                    node: member.id.clone(),
                };
                names
                    .entry(name.to_owned())
                    .and_modify(|kept| {
                        if seen.actor < kept.actor {
                            *kept = seen.clone();
                        }
                    })
                    .or_insert(seen);
            }
        }
        names
            .into_iter()
            .map(|(name, mut entry)| {
                if let Some((node, _)) = self.locate(entry.actor) {
                    entry.node = node;
                }
                (name, entry)
            })
            .collect()
    }

    /// How many actors each live member that is not leaving hosts.
    pub(crate) fn load(&self) -> Vec<(NodeId, usize)> {
        self.members()
            .into_iter()
            .filter(|m| !m.leaving)
            .map(|m| {
                let hosted = m.values.keys().filter(|k| k.starts_with("a:")).count();
                (m.id, hosted)
            })
            .collect()
    }

    /// Who decides name claims now: the smallest live member not leaving.
    pub(crate) fn coordinator(&self) -> NodeId {
        self.membership
            .staying_ids()
            .into_iter()
            .next()
            .unwrap_or_else(|| self.membership.id().clone())
    }

    /// The live members not leaving, this node included (unless it is),
    /// sorted: ids only, nothing copied of what they publish.
    pub(crate) fn staying(&self) -> Vec<NodeId> {
        self.membership.staying_ids()
    }

    /// As coordinator: grants `name` to `actor` of node `node`, or says which
    /// actor holds it. `local` is the holder on this node, if any.
    pub(crate) fn decide_claim(
        &self,
        name: &str,
        actor: ActorId,
        node: &NodeId,
        local: Option<ActorId>,
    ) -> Result<(), ActorId> {
        if let Some(owner) = local.filter(|owner| *owner != actor) {
            return Err(owner);
        }
        if let Some(entry) = self.find_name(name) {
            if entry.actor != actor {
                return Err(entry.actor);
            }
        }
        let mut claims = lock(&self.claims);
        // Only this name's claim matters here (checking them all made each
        // claim cost as much as the claims pending: a burst of spawns was
        // quadratic); `sweep_claims` drops the lapsed ones every round.
        if let Some(claim) = claims.get(name) {
            if claim.actor != actor && claim.holds(name, &self.membership) {
                return Err(claim.actor);
            }
        }
        claims.insert(
            name.to_owned(),
            Claim {
                actor,
                node: node.clone(),
                at: Instant::now(),
            },
        );
        Ok(())
    }

    /// This node leaves the cluster gracefully.
    pub(crate) async fn leave(&self) {
        self.membership.leave().await;
    }

    pub(crate) async fn shutdown(&self) {
        self.membership.shutdown().await;
    }
}
