//! Every transition of the machine, one test per rule.

use super::*;

type M = Handover<u8, &'static str, ()>;
const T: Timing = Timing {
    prepare_timeout: Duration::from_millis(100),
    retry: Duration::from_millis(10),
};
const NOW: Duration = Duration::from_millis(1000);

fn actions(m: &mut M) -> Vec<Action<u8, &'static str, ()>> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn send(to: u8, frame: Frame<&'static str, ()>) -> Action<u8, &'static str, ()> {
    Action::Send { to, frame }
}

/// A source that sent its prepare for epoch 1 to node 2.
fn preparing() -> M {
    let mut m = M::hosting(1, 0, T);
    assert_eq!(m.begin(2, NOW, true), Some(1));
    assert!(m.is_frozen());
    m
}

/// A destination (node 2) holding a prepared copy of epoch 1 from 1.
fn prepared() -> M {
    let mut m = M::forwarding(2, Route { node: 1, epoch: 0 }, T);
    assert_eq!(m.admit_prepare(&1, 1), Admission::Restore);
    m.restored(&1, 1, Ok(()), NOW, true);
    assert_eq!(
        actions(&mut m),
        [send(
            1,
            Frame::PrepareAck {
                epoch: 1,
                result: Ok(())
            }
        )]
    );
    m
}

#[test]
fn begin_needs_a_live_actor_and_another_node() {
    let mut m = M::hosting(1, 0, T);
    assert_eq!(m.begin(1, NOW, true), None);
    assert_eq!(m.begin(2, NOW, true), Some(1));
    assert_eq!(m.begin(3, NOW, true), None, "already migrating");
    let mut f = M::forwarding(1, Route { node: 2, epoch: 4 }, T);
    assert_eq!(f.begin(3, NOW, true), None);
}

#[test]
fn a_prepare_not_sent_resumes_at_once() {
    let mut m = preparing();
    m.prepare_not_sent(Failure::LinkDown);
    assert_eq!(
        actions(&mut m),
        [
            Action::Resume,
            Action::Answer(Err((Step::Prepare, Failure::LinkDown)))
        ]
    );
    assert_eq!(m.phase(), &Phase::Hosting { epoch: 0 });
}

#[test]
fn an_accepted_prepare_commits_and_hands_over() {
    let mut m = preparing();
    m.handle_frame(
        &2,
        Frame::PrepareAck {
            epoch: 1,
            result: Ok(()),
        },
        NOW,
    );
    let route = Route { node: 2, epoch: 1 };
    assert_eq!(
        actions(&mut m),
        [
            send(2, Frame::Commit { epoch: 1 }),
            Action::HandOver {
                route: route.clone()
            }
        ]
    );
    assert_eq!(m.route(), Some(route.clone()));
    m.handle_frame(&2, Frame::Committed { epoch: 1 }, NOW);
    assert_eq!(actions(&mut m), [Action::Answer(Ok(route.clone()))]);
    assert_eq!(m.phase(), &Phase::Forwarding { route });
}

#[test]
fn answers_of_another_attempt_or_node_are_ignored() {
    let mut m = preparing();
    m.handle_frame(
        &2,
        Frame::PrepareAck {
            epoch: 7,
            result: Ok(()),
        },
        NOW,
    );
    m.handle_frame(
        &3,
        Frame::PrepareAck {
            epoch: 1,
            result: Ok(()),
        },
        NOW,
    );
    m.handle_frame(&2, Frame::Aborted { epoch: 1 }, NOW);
    assert!(actions(&mut m).is_empty());
    assert!(matches!(m.phase(), Phase::Preparing { .. }));
}

#[test]
fn a_refusal_resumes() {
    let mut m = preparing();
    m.handle_frame(
        &2,
        Frame::PrepareAck {
            epoch: 1,
            result: Err("busy"),
        },
        NOW,
    );
    assert_eq!(
        actions(&mut m),
        [
            Action::Resume,
            Action::Answer(Err((Step::Prepare, Failure::Refused("busy"))))
        ]
    );
}

#[test]
fn a_timeout_aborts_and_stays_frozen_until_the_destination_confirms() {
    let mut m = preparing();
    m.handle_timeout(NOW + T.prepare_timeout - Duration::from_millis(1));
    assert!(actions(&mut m).is_empty());
    let later = NOW + T.prepare_timeout;
    m.handle_timeout(later);
    assert_eq!(actions(&mut m), [send(2, Frame::Abort { epoch: 1 })]);
    assert!(m.is_frozen());
    // Said again until confirmed; a late acceptance changes nothing.
    m.handle_timeout(later + T.retry);
    assert_eq!(actions(&mut m), [send(2, Frame::Abort { epoch: 1 })]);
    m.handle_frame(
        &2,
        Frame::PrepareAck {
            epoch: 1,
            result: Ok(()),
        },
        later,
    );
    m.peer_up(&2);
    assert_eq!(actions(&mut m), [send(2, Frame::Abort { epoch: 1 })]);
    m.handle_frame(&2, Frame::Aborted { epoch: 1 }, later);
    assert_eq!(
        actions(&mut m),
        [
            Action::Resume,
            Action::Answer(Err((Step::Prepare, Failure::Timeout)))
        ]
    );
    // The next attempt has a new epoch.
    assert_eq!(m.begin(3, later, true), Some(2));
}

#[test]
fn a_lost_link_aborts_and_a_failed_destination_resumes() {
    let mut m = preparing();
    m.peer_lost(&2, NOW);
    assert_eq!(actions(&mut m), [send(2, Frame::Abort { epoch: 1 })]);
    m.peer_failed(&3);
    assert!(actions(&mut m).is_empty());
    m.peer_failed(&2);
    assert_eq!(
        actions(&mut m),
        [
            Action::Resume,
            Action::Answer(Err((Step::Prepare, Failure::DestinationFailed)))
        ]
    );
}

#[test]
fn a_commit_is_said_again_until_confirmed_and_never_undone() {
    let mut m = preparing();
    m.handle_frame(
        &2,
        Frame::PrepareAck {
            epoch: 1,
            result: Ok(()),
        },
        NOW,
    );
    actions(&mut m);
    m.handle_timeout(NOW + T.retry);
    m.peer_up(&2);
    assert_eq!(
        actions(&mut m),
        [
            send(2, Frame::Commit { epoch: 1 }),
            send(2, Frame::Commit { epoch: 1 })
        ]
    );
    m.peer_lost(&2, NOW);
    assert!(actions(&mut m).is_empty());
    m.peer_failed(&2);
    assert_eq!(
        actions(&mut m),
        [Action::Answer(Err((
            Step::Commit,
            Failure::DestinationFailed
        )))]
    );
    assert!(!m.is_hosting() && !m.is_frozen());
}

#[test]
fn resolve_is_answered_by_the_attempts_source_only() {
    let mut m = preparing();
    m.handle_frame(&2, Frame::Resolve { epoch: 1 }, NOW);
    assert!(actions(&mut m).is_empty(), "still deciding");
    m.handle_frame(
        &2,
        Frame::PrepareAck {
            epoch: 1,
            result: Ok(()),
        },
        NOW,
    );
    actions(&mut m);
    m.handle_frame(&2, Frame::Resolve { epoch: 1 }, NOW);
    assert_eq!(actions(&mut m), [send(2, Frame::Commit { epoch: 1 })]);
    // A node that never began that attempt knows nothing: silent.
    let mut other = M::forwarding(1, Route { node: 2, epoch: 1 }, T);
    other.handle_frame(&2, Frame::Resolve { epoch: 1 }, NOW);
    assert!(actions(&mut other).is_empty());
    // An aborted attempt is answered with the abort.
    let mut aborted = preparing();
    aborted.handle_frame(
        &2,
        Frame::PrepareAck {
            epoch: 1,
            result: Err("no"),
        },
        NOW,
    );
    actions(&mut aborted);
    aborted.handle_frame(&2, Frame::Resolve { epoch: 1 }, NOW);
    assert_eq!(actions(&mut aborted), [send(2, Frame::Abort { epoch: 1 })]);
}

#[test]
fn a_destination_admits_only_newer_attempts() {
    let mut m = M::forwarding(2, Route { node: 1, epoch: 3 }, T);
    assert_eq!(m.admit_prepare(&1, 3), Admission::Refused);
    assert_eq!(m.admit_prepare(&1, 4), Admission::Restore);
    let mut p = prepared();
    assert_eq!(p.admit_prepare(&1, 1), Admission::Repeated);
    assert_eq!(p.admit_prepare(&3, 2), Admission::Refused);
    let mut h = M::hosting(2, 5, T);
    assert_eq!(h.admit_prepare(&1, 6), Admission::Refused);
}

#[test]
fn a_failed_restore_is_refused_and_closes_the_epoch() {
    let mut m = M::forwarding(2, Route { node: 1, epoch: 0 }, T);
    m.restored(&1, 1, Err("on_arrive failed"), NOW, true);
    assert_eq!(
        actions(&mut m),
        [send(
            1,
            Frame::PrepareAck {
                epoch: 1,
                result: Err("on_arrive failed")
            }
        )]
    );
    assert_eq!(m.admit_prepare(&1, 1), Admission::Refused);
}

#[test]
fn a_commit_activates_once_and_is_confirmed_again() {
    let mut m = prepared();
    m.handle_frame(&3, Frame::Commit { epoch: 1 }, NOW);
    m.handle_frame(&1, Frame::Commit { epoch: 2 }, NOW);
    assert!(actions(&mut m).is_empty());
    m.handle_frame(&1, Frame::Commit { epoch: 1 }, NOW);
    assert_eq!(
        actions(&mut m),
        [
            Action::Activate {
                epoch: 1,
                source: 1
            },
            send(1, Frame::Committed { epoch: 1 })
        ]
    );
    m.handle_frame(&1, Frame::Commit { epoch: 1 }, NOW);
    assert_eq!(actions(&mut m), [send(1, Frame::Committed { epoch: 1 })]);
    assert_eq!(m.hosted_epoch(), Some(1));
}

#[test]
fn an_abort_drops_the_copy_and_is_always_confirmed() {
    let mut m = prepared();
    m.handle_frame(&1, Frame::Abort { epoch: 1 }, NOW);
    assert_eq!(
        actions(&mut m),
        [
            Action::DropPrepared {
                route: Route { node: 1, epoch: 0 }
            },
            send(1, Frame::Aborted { epoch: 1 })
        ]
    );
    // Again, or before any prepare: confirmed, and the epoch closed.
    m.handle_frame(&1, Frame::Abort { epoch: 1 }, NOW);
    assert_eq!(actions(&mut m), [send(1, Frame::Aborted { epoch: 1 })]);
    assert_eq!(m.admit_prepare(&1, 1), Admission::Refused);
}

#[test]
fn an_undecided_destination_asks_and_activates_once_its_source_is_fenced() {
    let mut m = prepared();
    m.handle_timeout(NOW + T.retry);
    m.peer_up(&1);
    assert_eq!(
        actions(&mut m),
        [
            send(1, Frame::Resolve { epoch: 1 }),
            send(1, Frame::Resolve { epoch: 1 })
        ]
    );
    // A lost link decides nothing.
    m.peer_lost(&1, NOW);
    assert!(actions(&mut m).is_empty() && m.is_frozen());
    m.peer_failed(&1);
    assert_eq!(
        actions(&mut m),
        [Action::Activate {
            epoch: 1,
            source: 1
        }]
    );
    assert!(m.is_hosting());
}

#[test]
fn a_fenced_node_ends_what_it_holds_and_claims_nothing() {
    let mut m = preparing();
    m.fenced();
    assert_eq!(
        actions(&mut m),
        [
            Action::Answer(Err((Step::Prepare, Failure::Fenced))),
            Action::Down
        ]
    );
    let mut h = M::hosting(1, 0, T);
    h.fenced();
    assert_eq!(actions(&mut h), [Action::Down]);
    let mut f = M::forwarding(1, Route { node: 2, epoch: 1 }, T);
    f.fenced();
    assert!(actions(&mut f).is_empty());
    assert_eq!(f.phase(), &Phase::Ended);
    assert_eq!(f.admit_prepare(&2, 2), Admission::Refused);
}

#[test]
fn a_forwarder_follows_only_newer_routes() {
    let mut m = M::forwarding(1, Route { node: 2, epoch: 3 }, T);
    m.moved(Route { node: 3, epoch: 2 });
    assert_eq!(m.route(), Some(Route { node: 2, epoch: 3 }));
    m.moved(Route { node: 3, epoch: 4 });
    assert_eq!(m.route(), Some(Route { node: 3, epoch: 4 }));
    m.moved(Route { node: 1, epoch: 5 });
    assert_eq!(m.route(), Some(Route { node: 3, epoch: 4 }));
}

#[test]
fn without_an_arbiter_a_source_resumes_at_once_and_its_destination_waits_for_a_commit() {
    let mut m = M::hosting(1, 0, T);
    assert_eq!(m.begin(2, NOW, false), Some(1));
    m.peer_lost(&2, NOW);
    assert_eq!(
        actions(&mut m),
        [
            send(2, Frame::Abort { epoch: 1 }),
            Action::Resume,
            Action::Answer(Err((Step::Prepare, Failure::LinkDown)))
        ]
    );
    assert!(m.is_hosting());
    // The abort is owed until confirmed.
    m.peer_up(&2);
    m.handle_timeout(NOW + T.retry);
    assert_eq!(
        actions(&mut m),
        [
            send(2, Frame::Abort { epoch: 1 }),
            send(2, Frame::Abort { epoch: 1 })
        ]
    );
    m.handle_frame(&2, Frame::Aborted { epoch: 1 }, NOW);
    assert_eq!(m.poll_timeout(), None);

    let mut d = M::forwarding(2, Route { node: 1, epoch: 0 }, T);
    d.restored(&1, 1, Ok(()), NOW, false);
    actions(&mut d);
    d.peer_lost(&1, NOW);
    assert!(actions(&mut d).is_empty() && d.is_frozen());
    d.peer_failed(&1);
    assert_eq!(
        actions(&mut d),
        [Action::DropPrepared {
            route: Route { node: 1, epoch: 0 }
        }]
    );
}

#[test]
fn a_destination_that_went_live_on_a_false_suspicion_tells_its_aborting_source() {
    let mut d = prepared();
    d.peer_failed(&1);
    assert_eq!(
        actions(&mut d),
        [Action::Activate {
            epoch: 1,
            source: 1
        }]
    );
    d.handle_frame(&1, Frame::Abort { epoch: 1 }, NOW);
    assert_eq!(actions(&mut d), [send(1, Frame::Committed { epoch: 1 })]);
    let mut m = preparing();
    m.handle_timeout(NOW + T.prepare_timeout);
    actions(&mut m);
    m.handle_frame(&2, Frame::Committed { epoch: 1 }, NOW);
    let route = Route { node: 2, epoch: 1 };
    assert_eq!(
        actions(&mut m),
        [
            Action::HandOver {
                route: route.clone()
            },
            Action::Answer(Ok(route))
        ]
    );
}
