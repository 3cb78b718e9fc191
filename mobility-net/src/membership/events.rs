//! Turning chitchat's successive sets of live nodes into [`MemberEvent`]s
//! (pure, so it is tested without sockets).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::NodeId;

/// A change in the set of live members, as seen by one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// The member appeared live: once per incarnation (node id and start
    /// generation). A restarted member is `Joined` again (after a `Failed`
    /// for its previous incarnation if that one had not left), and so is a
    /// member that comes back after having been declared `Failed`.
    Joined(NodeId),
    /// The member announced a graceful leave ([`leave`]); no `Failed`
    /// follows when it then goes silent.
    ///
    /// [`leave`]: super::Membership::leave
    Left(NodeId),
    /// The member went silent (failure detector) without announcing a leave,
    /// or was replaced by a newer incarnation of itself. Final for that
    /// incarnation: if it was only stalled or cut off and comes back, it
    /// is not a member again (it learns it was declared failed and fences
    /// itself); only a new incarnation (a restart) joins.
    Failed(NodeId),
    /// This node learned that its cluster declared it failed (it was
    /// stalled or cut off for longer than the failure timeout): it is no
    /// longer a member and must stop serving (the runtime fences itself).
    Fenced,
}

/// One live member as seen by a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its node id.
    pub id: NodeId,
    /// Its UDP gossip address.
    pub gossip_addr: SocketAddr,
    /// Its published key-value state (the reserved `status` and `seen`
    /// keys excepted).
    pub values: BTreeMap<String, String>,
    /// Whether it announced a graceful leave.
    pub leaving: bool,
    /// The live peers it sees, as it last published them (sorted).
    pub sees: Vec<NodeId>,
}

/// One live peer in a snapshot of chitchat's live nodes.
#[derive(Debug, Clone)]
pub(super) struct Observed {
    /// The peer's start generation.
    pub(super) generation: u64,
    /// What it publishes (shared: a snapshot's members are copied out of
    /// chitchat once, then only their `Arc`s are passed around).
    pub(super) member: Arc<Member>,
}

/// What is known of the latest incarnation of a node id.
#[derive(Debug, Clone)]
struct Incarnation {
    generation: u64,
    live: bool,
    left: bool,
    /// Declared failed: this incarnation is never live again.
    failed: bool,
    /// As last seen live (kept while failures are held).
    member: Option<Arc<Member>>,
}

/// Remembers, per node id, its latest incarnation and whether it is live and
/// has left; turns each new snapshot into events.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    incarnations: HashMap<NodeId, Incarnation>,
    /// Incarnations declared failed since last taken: `(id, generation)`.
    failed: Vec<(NodeId, u64)>,
}

impl Tracker {
    /// Takes the live peers of a new snapshot (self excluded); returns the
    /// events since the previous one and the live members (latest
    /// incarnation of each id; members that announced a leave included, with
    /// `leaving` set).
    #[cfg(test)]
    pub(super) fn update(
        &mut self,
        observed: Vec<Observed>,
    ) -> (Vec<MemberEvent>, BTreeMap<NodeId, Arc<Member>>) {
        self.update_holding(observed, false)
    }

    /// The incarnations declared failed since the last call.
    pub(super) fn take_failed(&mut self) -> Vec<(NodeId, u64)> {
        std::mem::take(&mut self.failed)
    }

    /// As [`Tracker::update`]; with `hold`, a member missing from the
    /// snapshot is not declared failed yet and stays live as last seen
    /// (this node was just stalled: its failure detector's view is stale).
    pub(super) fn update_holding(
        &mut self,
        observed: Vec<Observed>,
        hold: bool,
    ) -> (Vec<MemberEvent>, BTreeMap<NodeId, Arc<Member>>) {
        // Latest live incarnation of each id.
        let mut latest: BTreeMap<NodeId, Observed> = BTreeMap::new();
        for peer in observed {
            match latest.get(&peer.member.id) {
                Some(known) if known.generation >= peer.generation => {}
                _ => {
                    latest.insert(peer.member.id.clone(), peer);
                }
            }
        }

        let mut events = Vec::new();
        let mut live = BTreeMap::new();
        for (id, peer) in latest {
            let leaving = peer.member.leaving;
            let fresh = Incarnation {
                generation: peer.generation,
                live: true,
                left: leaving,
                failed: false,
                member: Some(peer.member.clone()),
            };
            match self.incarnations.get_mut(&id) {
                None => {
                    self.incarnations.insert(id.clone(), fresh);
                    if !leaving {
                        events.push(MemberEvent::Joined(id.clone()));
                    }
                }
                // An older incarnation still gossiped about while the newer
                // one is live: ignored.
                Some(known) if peer.generation < known.generation && known.live => continue,
                // Declared failed: it stays so, however alive it looks.
                Some(known) if peer.generation <= known.generation && known.failed => continue,
                // A new incarnation (or, if the known one is gone, an older
                // one that is live after all: clocks may go backwards).
                Some(known) if peer.generation != known.generation => {
                    if known.live && !known.left {
                        events.push(MemberEvent::Failed(id.clone()));
                        self.failed.push((id.clone(), known.generation));
                    }
                    *known = fresh;
                    if !leaving {
                        events.push(MemberEvent::Joined(id.clone()));
                    }
                }
                Some(known) => {
                    known.member = Some(peer.member.clone());
                    if !known.live {
                        known.live = true;
                        if leaving {
                            known.left = true;
                        } else if !known.left {
                            events.push(MemberEvent::Joined(id.clone()));
                        }
                    } else if leaving && !known.left {
                        known.left = true;
                        events.push(MemberEvent::Left(id.clone()));
                    }
                }
            }
            live.insert(id, peer.member);
        }

        for (id, known) in &mut self.incarnations {
            if known.live && !live.contains_key(id) {
                if hold {
                    if let Some(member) = &known.member {
                        live.insert(id.clone(), Arc::clone(member));
                    }
                    continue;
                }
                known.live = false;
                if !known.left {
                    known.failed = true;
                    events.push(MemberEvent::Failed(id.clone()));
                    self.failed.push((id.clone(), known.generation));
                }
            }
        }
        (events, live)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use MemberEvent::{Failed, Joined, Left};

    fn id(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    fn peer(name: &str, generation: u64, leaving: bool) -> Observed {
        Observed {
            generation,
            member: Arc::new(Member {
                id: id(name),
                gossip_addr: SocketAddr::from(([127, 0, 0, 1], 7000)),
                values: BTreeMap::new(),
                leaving,
                sees: Vec::new(),
            }),
        }
    }

    #[test]
    fn join_once_then_fail() {
        let mut tracker = Tracker::default();
        let (events, live) = tracker.update(vec![peer("a", 1, false), peer("b", 1, false)]);
        assert_eq!(events, vec![Joined(id("a")), Joined(id("b"))]);
        assert_eq!(live.len(), 2);
        // A value change: same snapshot of ids, no event.
        let (events, _) = tracker.update(vec![peer("a", 1, false), peer("b", 1, false)]);
        assert!(events.is_empty());
        let (events, live) = tracker.update(vec![peer("a", 1, false)]);
        assert_eq!(events, vec![Failed(id("b"))]);
        assert_eq!(live.keys().cloned().collect::<Vec<_>>(), vec![id("a")]);
        let (events, _) = tracker.update(vec![peer("a", 1, false)]);
        assert!(events.is_empty());
    }

    #[test]
    fn leave_then_silence_is_left_only() {
        let mut tracker = Tracker::default();
        tracker.update(vec![peer("a", 1, false)]);
        let (events, live) = tracker.update(vec![peer("a", 1, true)]);
        assert_eq!(events, vec![Left(id("a"))]);
        assert!(live[&id("a")].leaving);
        let (events, _) = tracker.update(vec![peer("a", 1, true)]);
        assert!(events.is_empty());
        let (events, live) = tracker.update(vec![]);
        assert!(events.is_empty());
        assert!(live.is_empty());
    }

    #[test]
    fn first_seen_leaving_is_silent() {
        let mut tracker = Tracker::default();
        let (events, live) = tracker.update(vec![peer("a", 1, true)]);
        assert!(events.is_empty());
        assert_eq!(live.len(), 1);
        let (events, _) = tracker.update(vec![]);
        assert!(events.is_empty());
    }

    #[test]
    fn restart_is_failed_then_joined() {
        let mut tracker = Tracker::default();
        tracker.update(vec![peer("a", 1, false)]);
        let (events, live) = tracker.update(vec![peer("a", 1, false), peer("a", 2, false)]);
        assert_eq!(events, vec![Failed(id("a")), Joined(id("a"))]);
        assert_eq!(live.len(), 1);
        // The old incarnation vanishing later says nothing.
        let (events, _) = tracker.update(vec![peer("a", 2, false)]);
        assert!(events.is_empty());
        // Only the old incarnation left in a snapshot: it is ignored, and the
        // new one is gone.
        let (events, live) = tracker.update(vec![peer("a", 1, false)]);
        assert_eq!(events, vec![Failed(id("a"))]);
        assert!(live.is_empty());
        // Still gossiped about with the newer one gone: it was replaced
        // (declared failed) and stays so.
        let (events, live) = tracker.update(vec![peer("a", 1, false)]);
        assert!(events.is_empty());
        assert!(live.is_empty());
    }

    #[test]
    fn restart_after_leave_is_joined_only() {
        let mut tracker = Tracker::default();
        tracker.update(vec![peer("a", 1, false)]);
        tracker.update(vec![peer("a", 1, true)]);
        let (events, _) = tracker.update(vec![peer("a", 2, false)]);
        assert_eq!(events, vec![Joined(id("a"))]);
    }

    #[test]
    fn back_after_failure_stays_failed() {
        let mut tracker = Tracker::default();
        tracker.update(vec![peer("a", 1, false)]);
        tracker.update(vec![]);
        let (events, live) = tracker.update(vec![peer("a", 1, false)]);
        assert!(events.is_empty() && live.is_empty());
        // Back only to leave: nothing more to say either.
        let (events, _) = tracker.update(vec![peer("a", 1, true)]);
        assert!(events.is_empty());
        let (events, _) = tracker.update(vec![]);
        assert!(events.is_empty());
    }

    #[test]
    fn a_failed_incarnation_that_comes_back_stays_failed_and_its_restart_joins() {
        let mut tracker = Tracker::default();
        tracker.update(vec![peer("a", 1, false), peer("b", 1, false)]);
        let (events, _) = tracker.update(vec![peer("a", 1, false)]);
        assert_eq!(events, vec![Failed(id("b"))]);
        assert_eq!(tracker.take_failed(), vec![(id("b"), 1)]);
        // b was only stalled: it gossips again, but is not a member.
        let (events, live) = tracker.update(vec![peer("a", 1, false), peer("b", 1, false)]);
        assert!(events.is_empty(), "{events:?}");
        assert!(!live.contains_key(&id("b")));
        // A restart of b is a new node.
        let (events, live) = tracker.update(vec![peer("a", 1, false), peer("b", 2, false)]);
        assert_eq!(events, vec![Joined(id("b"))]);
        assert!(live.contains_key(&id("b")));
        assert!(tracker.take_failed().is_empty());
    }

    #[test]
    fn holding_keeps_missing_members_live_until_released() {
        let mut tracker = Tracker::default();
        tracker.update(vec![peer("a", 1, false), peer("b", 1, false)]);
        // This node was stalled: its detector's view of a is stale.
        let (events, live) = tracker.update_holding(vec![peer("b", 1, false)], true);
        assert!(events.is_empty());
        assert!(live.contains_key(&id("a")));
        // a was alive after all.
        let (events, _) = tracker.update(vec![peer("a", 1, false), peer("b", 1, false)]);
        assert!(events.is_empty());
        // Still missing once the hold ends: failed.
        let (events, _) = tracker.update(vec![peer("b", 1, false)]);
        assert_eq!(events, vec![Failed(id("a"))]);
    }
}
