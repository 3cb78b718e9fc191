//! Which side of a split keeps running. When members become unreachable,
//! each side of a partition sees the other fail; if both went on, an actor
//! could live on one side while the other reports it down. As Akka's
//! "keep majority" resolver does, the side with more than half of the
//! members seen recently keeps running, on a tie the side holding the
//! lowest node id, and the other side fences itself. Members that failed a
//! short while ago still count, so a side that loses its peers one at a
//! time cannot shrink its way to a majority.

use std::collections::BTreeSet;

use crate::NodeId;

/// Whether the members still live here (`after`, this node included) may
/// keep running, out of `before` (live before this change, this node
/// included) and `recently_failed` (declared failed a short while ago).
pub(super) fn keeps_running(
    before: &BTreeSet<NodeId>,
    recently_failed: &BTreeSet<NodeId>,
    after: &BTreeSet<NodeId>,
) -> bool {
    let base: BTreeSet<&NodeId> = before.iter().chain(recently_failed).collect();
    let (kept, of) = (after.len(), base.len());
    if kept * 2 != of {
        return kept * 2 > of;
    }
    base.first().is_some_and(|lowest| after.contains(*lowest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<NodeId> {
        ids.iter().map(|id| NodeId::new(id).expect("id")).collect()
    }

    #[test]
    fn the_majority_keeps_running_and_the_minority_does_not() {
        let before = set(&["a", "b", "c"]);
        assert!(keeps_running(&before, &set(&[]), &set(&["b", "c"])));
        assert!(!keeps_running(&before, &set(&[]), &set(&["a"])));
    }

    #[test]
    fn a_tie_keeps_the_side_of_the_lowest_id() {
        let before = set(&["a", "b", "c", "d"]);
        assert!(keeps_running(&before, &set(&[]), &set(&["a", "d"])));
        assert!(!keeps_running(&before, &set(&[]), &set(&["b", "c"])));
        let two = set(&["a", "b"]);
        assert!(keeps_running(&two, &set(&[]), &set(&["a"])));
        assert!(!keeps_running(&two, &set(&[]), &set(&["b"])));
    }

    #[test]
    fn members_lost_one_at_a_time_still_count() {
        // a lost b a moment ago, and now c: it is alone out of three.
        let before = set(&["a", "c"]);
        assert!(!keeps_running(&before, &set(&["b"]), &set(&["a"])));
    }
}
