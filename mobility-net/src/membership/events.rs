//! Turning chitchat's successive sets of live nodes into [`MemberEvent`]s
//! (pure, so it is tested without sockets).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

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
    /// or was replaced by a newer incarnation of itself.
    Failed(NodeId),
}

/// One live member as seen by a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its node id.
    pub id: NodeId,
    /// Its UDP gossip address.
    pub gossip_addr: SocketAddr,
    /// Its published key-value state (the reserved `status` key excepted).
    pub values: BTreeMap<String, String>,
    /// Whether it announced a graceful leave.
    pub leaving: bool,
}

/// One live peer in a snapshot of chitchat's live nodes.
#[derive(Debug, Clone)]
pub(super) struct Observed {
    /// The peer's start generation.
    pub(super) generation: u64,
    /// What it publishes.
    pub(super) member: Member,
}

/// What is known of the latest incarnation of a node id.
#[derive(Debug, Clone, Copy)]
struct Incarnation {
    generation: u64,
    live: bool,
    left: bool,
}

/// Remembers, per node id, its latest incarnation and whether it is live and
/// has left; turns each new snapshot into events.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    incarnations: HashMap<NodeId, Incarnation>,
}

impl Tracker {
    /// Takes the live peers of a new snapshot (self excluded); returns the
    /// events since the previous one and the live members (latest
    /// incarnation of each id; members that announced a leave included, with
    /// `leaving` set).
    pub(super) fn update(
        &mut self,
        observed: Vec<Observed>,
    ) -> (Vec<MemberEvent>, BTreeMap<NodeId, Member>) {
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
                // A new incarnation (or, if the known one is gone, an older
                // one that is live after all: clocks may go backwards).
                Some(known) if peer.generation != known.generation => {
                    if known.live && !known.left {
                        events.push(MemberEvent::Failed(id.clone()));
                    }
                    *known = fresh;
                    if !leaving {
                        events.push(MemberEvent::Joined(id.clone()));
                    }
                }
                Some(known) => {
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
                known.live = false;
                if !known.left {
                    events.push(MemberEvent::Failed(id.clone()));
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
            member: Member {
                id: id(name),
                gossip_addr: SocketAddr::from(([127, 0, 0, 1], 7000)),
                values: BTreeMap::new(),
                leaving,
            },
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
        // Still live with the newer one gone: it counts again.
        let (events, live) = tracker.update(vec![peer("a", 1, false)]);
        assert_eq!(events, vec![Joined(id("a"))]);
        assert_eq!(live.len(), 1);
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
    fn back_after_failure_is_joined_again() {
        let mut tracker = Tracker::default();
        tracker.update(vec![peer("a", 1, false)]);
        tracker.update(vec![]);
        let (events, _) = tracker.update(vec![peer("a", 1, false)]);
        assert_eq!(events, vec![Joined(id("a"))]);
        // Back only to leave: nothing more to say.
        tracker.update(vec![]);
        let (events, _) = tracker.update(vec![peer("a", 1, true)]);
        assert!(events.is_empty());
        let (events, _) = tracker.update(vec![]);
        assert!(events.is_empty());
    }
}
