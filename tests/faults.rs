//! Faults at every step of a migration inside a cluster: the prepare in
//! flight (state transfer), its answer, the commit and its acknowledgement,
//! messages forwarded by the old location; faults of every kind (cut socket,
//! partition, stall, delay, duplicate, lost frame) and nodes killed midway.
//!
//! Each case runs a client load from a third node throughout and checks:
//! exactly one live copy afterwards (none only if its node was killed), with
//! the state it must have; `migrate` succeeds or names what failed; no
//! message is handled twice or out of order; none is lost while the source
//! and destination are up; callers never hang past their timeout.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ledger::{Ledger, Tally};
use common::{poll_until, wait_for, PATIENCE};
use mobility::prelude::*;
use mobility::{Fault, FaultDirection, FaultStep, TcpConfig};

const SECRET: &str = "fault secret";
const MIGRATION_TIMEOUT: Duration = Duration::from_millis(1500);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn builder(id: &str) -> mobility::NodeBuilder {
    Node::builder()
        .id(id)
        .cluster("faults", SECRET)
        .listen("127.0.0.1:0")
        .gossip_interval(Duration::from_millis(50))
        .failure_timeout(Duration::from_millis(1500))
        .migration_timeout(MIGRATION_TIMEOUT)
        .request_timeout(REQUEST_TIMEOUT)
        .tcp_config(TcpConfig {
            reconnect_for: Duration::from_secs(1),
            ..TcpConfig::default()
        })
}

/// Cluster a, b, c; the ledger on a; c's handle found by name.
struct World {
    a: Node,
    b: Node,
    c: Node,
    ledger: Handle<Ledger>,
    from_c: Handle<Ledger>,
}

async fn world() -> World {
    let a = builder("a").start().await.expect("a");
    let seed = a.listen_addr().expect("addr").to_string();
    let b = builder("b").join(&seed).start().await.expect("b");
    let c = builder("c").join(&seed).start().await.expect("c");
    for node in [&a, &b, &c] {
        wait_for("full membership", || node.members().len() == 3).await;
    }
    let ledger = a
        .spawn_named("ledger", Ledger::default())
        .await
        .expect("spawn");
    let from_c = poll_until("the ledger's name at c", || async {
        c.lookup::<Ledger>("ledger")
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    World {
        a,
        b,
        c,
        ledger,
        from_c,
    }
}

/// What a client load saw.
struct Load {
    sent: u64,
    errors: Vec<Error>,
}

/// Sends numbered messages from `sender` (every fourth a request) until
/// told to stop, or until the actor is reported down.
fn start_load(
    handle: Handle<Ledger>,
    sender: &str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Load> {
    start_counted_load(handle, sender, stop, Arc::default())
}

/// `start_load`, also counting into `progress` every message it sends.
fn start_counted_load(
    handle: Handle<Ledger>,
    sender: &str,
    stop: Arc<AtomicBool>,
    progress: Arc<std::sync::atomic::AtomicU64>,
) -> tokio::task::JoinHandle<Load> {
    let sender = sender.to_owned();
    tokio::spawn(async move {
        let mut load = Load {
            sent: 0,
            errors: Vec::new(),
        };
        // Sixteen messages per tick: a steady load.
        let mut rate = common::pace(Duration::from_millis(1));
        while !stop.load(Ordering::Relaxed) {
            let seq = load.sent;
            let outcome = if seq % 4 == 3 {
                handle.record(sender.clone(), seq).await.map(|_| ())
            } else {
                handle.tell().record(sender.clone(), seq)
            };
            load.sent += 1;
            progress.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = outcome {
                let down = matches!(e, Error::ActorDown { .. });
                load.errors.push(e);
                if down {
                    break;
                }
            }
            if seq % 16 == 0 {
                rate.tick().await;
            }
        }
        load
    })
}

/// Where the actor is active, among `nodes`.
fn hosts(nodes: &[&Node], id: ActorId) -> Vec<NodeId> {
    nodes
        .iter()
        .filter(|n| n.hosts(id))
        .map(|n| n.id().clone())
        .collect()
}

/// Runs a migration a -> b under load with `fault` armed on `at` for
/// frames of kind `step` going `direction`; checks the promises for a fault
/// that leaves both nodes up. Returns the migration's outcome.
async fn migrate_through(
    step: FaultStep,
    direction: FaultDirection,
    at: &str,
    fault: Fault,
    times: usize,
) -> Result<MigrationReport, Error> {
    let w = world().await;
    let stop = Arc::new(AtomicBool::new(false));
    let from_c = start_load(w.from_c.clone(), "c", stop.clone());
    let from_a = start_load(w.ledger.clone(), "a", stop.clone());
    // Some load before the move.
    wait_for_handled(&w.ledger, 50).await;
    let node = match at {
        "a" => &w.a,
        "b" => &w.b,
        _ => &w.c,
    };
    node.fault_inject(step, direction, None, fault, times);
    let outcome =
        w.a.migrate(&w.ledger, Destination::node(w.b.id().clone()))
            .await;
    // Some load after it.
    let after = w
        .ledger
        .record("probe".into(), 0)
        .await
        .expect("the actor answers");
    wait_for_handled(&w.ledger, after + 50).await;
    stop.store(true, Ordering::Relaxed);
    let loads = [from_c.await.expect("load c"), from_a.await.expect("load a")];
    let nodes = [&w.a, &w.b, &w.c];
    // Exactly one live copy, where the outcome says.
    wait_for("one live copy", || hosts(&nodes, w.ledger.id()).len() == 1).await;
    let expected_home = if outcome.is_ok() { "b" } else { "a" };
    let what =
        format!("{step:?}/{direction:?}/{fault:?}: the copy where the outcome says ({outcome:?})");
    wait_for(&what, || {
        hosts(&nodes, w.ledger.id()) == [NodeId::new(expected_home).expect("id")]
    })
    .await;
    if let Err(e) = &outcome {
        assert!(
            matches!(e, Error::Migration { .. }),
            "{step:?}/{fault:?}: a failed migration says what failed: {e}"
        );
    }
    // Nothing handled twice or early; nothing lost (both nodes stayed up).
    // A request from each sender comes after all it sent.
    w.from_c.tally().await.expect("c's stream flushed");
    let Tally {
        handled,
        duplicates,
        out_of_order,
        ..
    } = w.ledger.tally().await.expect("tally");
    for load in &loads {
        assert!(
            load.errors.is_empty(),
            "{step:?}/{fault:?}: errors while both nodes were up: {:?}",
            load.errors
        );
    }
    let sent: u64 = loads.iter().map(|l| l.sent).sum::<u64>() + 1;
    assert_eq!(
        (handled, duplicates, out_of_order),
        (sent, 0, 0),
        "{step:?}/{fault:?}: handled exactly once, in order, none lost (outcome {outcome:?})"
    );
    assert!(
        node.faults_struck() > 0,
        "{step:?}/{fault:?}: the fault struck"
    );
    for node in nodes {
        node.shutdown().await;
    }
    outcome
}

async fn wait_for_handled(ledger: &Handle<Ledger>, at_least: u64) {
    poll_until("the load to progress", || async {
        let handled = ledger.tally().await.expect("tally").handled;
        if handled >= at_least {
            Ok(())
        } else {
            Err(format!("{handled} of {at_least} handled"))
        }
    })
    .await
}

use FaultDirection::{Incoming, Outgoing};

/// Faults that lose nothing for good: the migration must succeed through
/// each of them, at every step.
fn transient_faults() -> [Fault; 5] {
    [
        Fault::Cut,
        Fault::Partition(Duration::from_millis(300)),
        Fault::Stall(Duration::from_millis(300)),
        Fault::Delay(Duration::from_millis(50)),
        Fault::Duplicate,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_of_a_migration_survives_every_transient_fault() {
    // (step, direction, node): the state in transfer, its answer, the
    // commit and its acknowledgement, as each side sees them.
    let steps = [
        (FaultStep::Prepare, Outgoing, "a"),
        (FaultStep::Prepare, Incoming, "b"),
        (FaultStep::PrepareAck, Outgoing, "b"),
        (FaultStep::PrepareAck, Incoming, "a"),
        (FaultStep::Commit, Outgoing, "a"),
        (FaultStep::Commit, Incoming, "b"),
        (FaultStep::Committed, Outgoing, "b"),
        (FaultStep::Committed, Incoming, "a"),
    ];
    for (step, direction, at) in steps {
        for fault in transient_faults() {
            let report = migrate_through(step, direction, at, fault, 1)
                .await
                .unwrap_or_else(|e| panic!("{step:?} {direction:?} at {at}, {fault:?}: {e}"));
            assert_eq!(report.to.as_str(), "b");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_down_before_the_prepare_fails_the_migration_and_keeps_the_actor() {
    let w = world().await;
    // Partitioned before the move: the source cannot even reach the
    // destination, so nothing is captured.
    w.a.fault_block(w.b.id(), true);
    w.b.fault_block(w.a.id(), true);
    let outcome =
        w.a.migrate(&w.ledger, Destination::node(w.b.id().clone()))
            .await;
    match outcome {
        Err(Error::Migration { phase, .. }) => {
            assert!(
                matches!(phase, MigrationPhase::Validate | MigrationPhase::Prepare),
                "{phase}"
            )
        }
        other => panic!("expected a failed migration, got {other:?}"),
    }
    assert!(w.a.hosts(w.ledger.id()) && !w.b.hosts(w.ledger.id()));
    assert_eq!(w.from_c.record("c".into(), 0).await, Ok(1), "still serving");
    w.a.fault_block(w.b.id(), false);
    w.b.fault_block(w.a.id(), false);
    for node in [&w.a, &w.b, &w.c] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_prepare_or_answer_aborts_and_the_actor_stays_home() {
    for (step, direction) in [
        (FaultStep::Prepare, Outgoing),
        (FaultStep::PrepareAck, Incoming),
    ] {
        match migrate_through(step, direction, "a", Fault::Drop, 1).await {
            Err(Error::Migration { phase, failure, .. }) => {
                assert_eq!(phase, MigrationPhase::Prepare, "{step:?}");
                assert!(matches!(failure, MigrationFailure::Timeout(_)), "{failure}");
            }
            other => panic!("{step:?}: expected a timeout, got {other:?}"),
        }
    }
    // An answer that comes after the timeout is ignored: still one copy.
    let late = Fault::Delay(MIGRATION_TIMEOUT * 2);
    assert!(
        migrate_through(FaultStep::PrepareAck, Incoming, "a", late, 1)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_or_repeated_commit_or_acknowledgement_still_lands_once() {
    for (step, direction, fault) in [
        (FaultStep::Commit, Outgoing, Fault::Drop),
        (FaultStep::Commit, Outgoing, Fault::Cut),
        (FaultStep::Commit, Outgoing, Fault::Duplicate),
        (
            FaultStep::Commit,
            Outgoing,
            Fault::Stall(Duration::from_millis(300)),
        ),
        (FaultStep::Committed, Incoming, Fault::Drop),
        (FaultStep::Committed, Incoming, Fault::Duplicate),
    ] {
        let report = migrate_through(step, direction, "a", fault, 1)
            .await
            .unwrap_or_else(|e| panic!("{step:?}/{fault:?}: {e}"));
        assert_eq!(report.to.as_str(), "b");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_messages_survive_duplicates_delays_and_cuts() {
    for (at, fault, times) in [
        ("a", Fault::Duplicate, 30),
        ("a", Fault::Delay(Duration::from_millis(40)), 30),
        ("a", Fault::Cut, 3),
        ("a", Fault::Stall(Duration::from_millis(200)), 1),
        ("a", Fault::Partition(Duration::from_millis(200)), 1),
        ("b", Fault::Duplicate, 30),
    ] {
        let direction = if at == "a" { Outgoing } else { Incoming };
        migrate_through(FaultStep::Deliver, direction, at, fault, times)
            .await
            .unwrap_or_else(|e| panic!("{at}/{fault:?}: {e}"));
    }
    // A sender never corrected keeps going through the old node.
    migrate_through(FaultStep::Moved, Incoming, "c", Fault::Drop, 1000)
        .await
        .expect("uncorrected sender");
}

/// Kills `victim` at a step of a migration a -> b under load; returns the
/// world's survivors' view: where the actor lives, and the loads.
async fn kill_during_migration(
    step: FaultStep,
    direction: FaultDirection,
    victim: &str,
) -> (
    Vec<NodeId>,
    Result<MigrationReport, Error>,
    Vec<Load>,
    World,
) {
    let w = world().await;
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let from_c = start_counted_load(w.from_c.clone(), "c", stop.clone(), progress.clone());
    wait_for_handled(&w.from_c, 50).await;
    let node = if victim == "a" { &w.a } else { &w.b };
    node.fault_inject(step, direction, None, Fault::Kill, 1);
    let outcome = tokio::time::timeout(
        PATIENCE,
        w.a.migrate(&w.ledger, Destination::node(w.b.id().clone())),
    )
    .await
    .expect("migrate never hangs");
    // The survivors learn of the death by gossip.
    let dead = NodeId::new(victim).expect("id");
    wait_for("the death detected", || !w.c.members().contains(&dead)).await;
    // The load goes on past the death (or ends on it), then stops.
    let at_death = progress.load(Ordering::Relaxed);
    wait_for("the load past the death", || {
        from_c.is_finished() || progress.load(Ordering::Relaxed) >= at_death + 8
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let load = tokio::time::timeout(PATIENCE, from_c)
        .await
        .expect("callers never hang")
        .expect("load");
    let survivors: Vec<&Node> = [&w.a, &w.b, &w.c]
        .into_iter()
        .filter(|n| n.id() != &dead)
        .collect();
    let at = hosts(&survivors, w.ledger.id());
    (at, outcome, vec![load], w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_killed_before_the_commit_leaves_the_actor_home() {
    let (at, outcome, loads, w) = kill_during_migration(FaultStep::Prepare, Incoming, "b").await;
    assert!(outcome.is_err(), "the migration failed: {outcome:?}");
    assert_eq!(at, [NodeId::new("a").expect("id")], "one copy, at home");
    let Tally {
        handled,
        duplicates,
        out_of_order,
        ..
    } = w.from_c.tally().await.expect("still serving");
    assert_eq!((duplicates, out_of_order), (0, 0));
    let sent: u64 = loads.iter().map(|l| l.sent).sum();
    assert!(
        loads.iter().all(|l| l.errors.is_empty()),
        "source and client stayed up"
    );
    assert_eq!(handled, sent, "none lost");
    for node in [&w.a, &w.c] {
        node.shutdown().await;
    }
}

/// The source dies between the destination's "prepared" and its commit.
/// The destination holds the latest state (a source never resumes without
/// its destination's word), and once the source is declared failed it is
/// fenced: the prepared copy goes live, and the actor survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_killed_before_its_commit_leaves_the_actor_alive_at_the_destination() {
    let (_, _outcome, loads, w) = kill_during_migration(FaultStep::Commit, Outgoing, "a").await;
    // b goes live once it hears of the death (c may hear of it first).
    wait_for("the prepared copy live at b", || {
        hosts(&[&w.b, &w.c], w.ledger.id()) == [NodeId::new("b").expect("id")]
    })
    .await;
    // The actor lives on at b: no caller was told it was down.
    let errors: Vec<&Error> = loads.iter().flat_map(|l| &l.errors).collect();
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, Error::Lost { .. } | Error::Timeout { .. })),
        "{errors:?}"
    );
    // What c's senders sent is there once, never reordered (a message
    // handled after a later one would count as a duplicate), and they
    // reach it. What the dead source held after the freeze is lost with it:
    // skips, which the ledger counts as `out_of_order`.
    let Tally { duplicates, .. } = poll_until("c's senders to find the actor at b", || async {
        w.from_c.tally().await.map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(duplicates, 0);
    let found = poll_until("the name at b", || async {
        w.c.lookup::<Ledger>("ledger")
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(found.location().as_str(), "b");
    for node in [&w.b, &w.c] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_killed_after_its_commit_leaves_the_actor_at_the_destination() {
    let (at, _outcome, loads, w) = kill_during_migration(FaultStep::Committed, Incoming, "a").await;
    assert_eq!(at, [NodeId::new("b").expect("id")], "one copy, moved");
    // The actor lived on at b: no caller was told it was down (requests
    // the dead source held are `Lost`: they may or may not have been
    // handled).
    let errors: Vec<&Error> = loads.iter().flat_map(|l| &l.errors).collect();
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, Error::Lost { .. } | Error::Timeout { .. })),
        "{errors:?}"
    );
    // Senders that routed through the dead source find the actor again.
    let Tally { duplicates, .. } = poll_until("c's senders to find the actor again", || async {
        w.from_c.tally().await.map_err(|e| e.to_string())
    })
    .await;
    // Never twice, never reordered (a message handled after a later one
    // would count as a duplicate here). Messages the dead source held are
    // lost with it, which the ledger counts as skips (`out_of_order`): c's
    // load goes on through the failure, since the actor was never down.
    assert_eq!(duplicates, 0);
    assert!(
        w.from_c.tally().await.is_ok(),
        "the actor answers: it was never reported down"
    );
    let found = w.c.lookup::<Ledger>("ledger").await.expect("name at b");
    assert_eq!(found.location().as_str(), "b");
    for node in [&w.b, &w.c] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_killed_at_the_commit_is_reported_down_not_duplicated() {
    let (at, _outcome, loads, w) = kill_during_migration(FaultStep::Commit, Incoming, "b").await;
    assert!(at.len() <= 1, "at most one copy: {at:?}");
    if at.is_empty() {
        // The actor died with its new node: its callers are told so.
        let errors: Vec<&Error> = loads.iter().flat_map(|l| &l.errors).collect();
        assert!(
            errors.iter().all(|e| matches!(e, Error::ActorDown { .. })),
            "{errors:?}"
        );
        assert!(matches!(
            w.from_c.tally().await,
            Err(Error::ActorDown { .. })
        ));
    }
    for node in [&w.a, &w.c] {
        node.shutdown().await;
    }
}
