//! Watching a node: `Node::actors` (type, name, mailbox depth, messages
//! handled, a handle from the listing), `Node::observe` (events for spawn,
//! migration on both nodes, failed migration, stop, panic, membership; a
//! subscriber that never reads slows nobody) and
//! `Node::directory_snapshot`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{linked, node, poll_until, wait_for, PATIENCE};
use mobility::prelude::*;
use mobility::{ActorInfo, NodeEvent};
use tokio::sync::broadcast;

/// Opened (a permit added) by the test that keeps `Gate::hold` waiting.
static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);
/// Set while `Gate::hold` waits at the gate.
static HOLDING: AtomicBool = AtomicBool::new(false);

#[mobile]
#[derive(Default)]
pub struct Gate {
    pings: u64,
}

#[mobile]
impl Gate {
    /// Keeps the actor busy until the test opens `GATE`.
    pub async fn hold(&mut self) {
        HOLDING.store(true, Ordering::SeqCst);
        GATE.acquire().await.expect("the gate stays open").forget();
        HOLDING.store(false, Ordering::SeqCst);
    }

    pub fn ping(&mut self) -> u64 {
        self.pings += 1;
        self.pings
    }
}

#[mobile]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

#[mobile]
impl Counter {
    pub fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }

    pub fn boom(&mut self) -> u64 {
        panic!("boom on purpose")
    }
}

fn info_of(node: &Node, id: ActorId) -> Option<ActorInfo> {
    node.actors().into_iter().find(|a| a.id == id)
}

/// The next event on `events` that `wanted` keeps (others are skipped),
/// failing the test after `PATIENCE`.
async fn next_event<T>(
    events: &mut broadcast::Receiver<NodeEvent>,
    what: &str,
    mut wanted: impl FnMut(&NodeEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) => {
                if let Some(found) = wanted(&event) {
                    return found;
                }
            }
            Ok(Err(e)) => panic!("waiting for {what}: {e}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

#[tokio::test]
async fn actors_are_listed_with_type_name_depth_and_messages_handled() {
    let node = node("a").await;
    let gate = node
        .spawn_named("gate", Gate::default())
        .await
        .expect("spawn");
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    for n in 1..=3 {
        assert_eq!(counter.add(n).await, Ok((1..=n).sum()));
    }

    let listed = node.actors();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let c = info_of(&node, counter.id()).expect("counter listed");
    assert_eq!(c.type_tag, <Counter as Actor>::TYPE_TAG);
    assert!(c.rust_type.ends_with("::Counter"), "{}", c.rust_type);
    assert_eq!(c.name, None);
    assert_eq!(c.messages_handled, 3);
    assert_eq!(c.mailbox_depth, 0);
    assert_eq!(c.epoch, 0);
    let g = info_of(&node, gate.id()).expect("gate listed");
    assert_eq!(g.type_tag, <Gate as Actor>::TYPE_TAG);
    assert_eq!(g.name.as_deref(), Some("gate"));
    assert_eq!(g.messages_handled, 0);

    // Blocked in a handler, with three more messages behind it.
    gate.tell().hold().expect("tell");
    wait_for("the gate to hold its actor", || {
        HOLDING.load(Ordering::SeqCst)
    })
    .await;
    for _ in 0..3 {
        gate.tell().ping().expect("tell");
    }
    let g = info_of(&node, gate.id()).expect("gate listed");
    assert_eq!(g.mailbox_depth, 3, "three pings wait behind hold: {g:?}");
    assert_eq!(g.messages_handled, 0, "hold is still running");

    GATE.add_permits(1);
    assert_eq!(
        gate.ping().await,
        Ok(4),
        "the three queued pings came first"
    );
    let g = info_of(&node, gate.id()).expect("gate listed");
    assert_eq!(g.mailbox_depth, 0, "{g:?}");
    assert_eq!(g.messages_handled, 5, "hold and four pings: {g:?}");

    counter.stop().await.expect("stop");
    wait_for("the stopped counter to leave the listing", || {
        info_of(&node, counter.id()).is_none()
    })
    .await;
    node.shutdown().await;
}

#[tokio::test]
async fn a_handle_from_the_listing_works_and_another_type_is_refused() {
    let node = node("a").await;
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    counter.add(5).await.expect("add");
    let info = info_of(&node, counter.id()).expect("listed");

    let handle = info.handle::<Counter>().expect("a handle of its type");
    assert_eq!(handle.id(), counter.id());
    assert_eq!(handle.add(1).await, Ok(6), "the same actor answers");
    match info.handle::<Gate>() {
        Err(Error::WrongType {
            expected, found, ..
        }) => {
            assert_eq!(expected, <Gate as Actor>::TYPE_TAG);
            assert_eq!(found, <Counter as Actor>::TYPE_TAG);
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tell_spawn_migration_on_both_nodes_failure_stop_and_panic() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (mut on_a, mut on_b) = (a.observe(), b.observe());

    let counter = a
        .spawn_named("counted", Counter::default())
        .await
        .expect("spawn");
    let id = counter.id();
    let name = next_event(&mut on_a, "Spawned on a", |e| match e {
        NodeEvent::Spawned {
            actor,
            type_tag,
            name,
        } if *actor == id => {
            assert_eq!(*type_tag, <Counter as Actor>::TYPE_TAG);
            Some(name.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(name.as_deref(), Some("counted"));
    counter.add(2).await.expect("add");

    let returned = a.migrate(&counter, b.id()).await.expect("migrate");
    let departed = next_event(&mut on_a, "Departed on a", |e| match e {
        NodeEvent::Departed { report } if report.actor == id => Some(report.clone()),
        _ => None,
    })
    .await;
    assert_eq!(departed, returned, "the event carries migrate's report");
    assert_eq!(departed.to, *b.id());
    assert!(departed.state_bytes > 0 && departed.freeze > Duration::ZERO);
    let (from, epoch) = next_event(&mut on_b, "Arrived on b", |e| match e {
        NodeEvent::Arrived {
            actor, from, epoch, ..
        } if *actor == id => Some((from.clone(), *epoch)),
        _ => None,
    })
    .await;
    assert_eq!((from, epoch), (a.id().clone(), 1));
    assert_eq!(info_of(b, id).map(|i| i.epoch), Some(1));
    assert!(info_of(a, id).is_none(), "listed where it lives only");

    // A move that cannot happen: told on the actor's node, which keeps it.
    let nowhere: NodeId = "nowhere".parse().expect("node id");
    let refused = b.migrate(&counter, nowhere.clone()).await;
    assert!(refused.is_err());
    let (to, error) = next_event(&mut on_b, "MigrationFailed on b", |e| match e {
        NodeEvent::MigrationFailed {
            actor, to, error, ..
        } if *actor == id => Some((to.clone(), error.clone())),
        _ => None,
    })
    .await;
    assert_eq!(to, Destination::from(nowhere));
    assert_eq!(Err(error), refused);

    counter.stop().await.expect("stop");
    let reason = next_event(&mut on_b, "Stopped on b", |e| match e {
        NodeEvent::Stopped { actor, reason, .. } if *actor == id => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, ExitReason::Stopped);

    let doomed = b.spawn(Counter::default()).await.expect("spawn");
    assert!(doomed.boom().await.is_err());
    let reason = next_event(&mut on_b, "a panic on b", |e| match e {
        NodeEvent::Stopped { actor, reason, .. } if *actor == doomed.id() => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(&reason, ExitReason::Panicked(why) if why.contains("boom on purpose")),
        "{reason:?}"
    );
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn a_subscriber_that_never_reads_slows_nobody_and_is_told_it_lagged() {
    let node = node("a").await;
    let mut idle = node.observe();
    // Twice the buffer in events (spawned and stopped each).
    for _ in 0..1024 {
        let counter = node.spawn(Counter::default()).await.expect("spawn");
        counter.add(1).await.expect("add");
        counter.stop().await.expect("stop");
    }
    match idle.recv().await {
        Err(broadcast::error::RecvError::Lagged(missed)) => assert!(missed >= 1024, "{missed}"),
        other => panic!("expected Lagged, got {other:?}"),
    }
    node.shutdown().await;
}

const SECRET: &str = "observe secret";

fn member(id: &str) -> mobility::NodeBuilder {
    Node::builder()
        .id(id)
        .cluster("observe-cluster", SECRET)
        .listen("127.0.0.1:0")
        .gossip_interval(Duration::from_millis(50))
        .failure_timeout(Duration::from_millis(1500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_snapshot_follows_a_named_actor_and_members_are_told() {
    let a = member("a").start().await.expect("a starts");
    let mut on_a = a.observe();
    let seed = a.listen_addr().expect("listens").to_string();
    let b = member("b").join(&seed).start().await.expect("b joins");
    next_event(&mut on_a, "b joining, seen by a", |e| match e {
        NodeEvent::Member(MemberEvent::Joined(peer)) if peer == b.id() => Some(()),
        _ => None,
    })
    .await;

    let counter = b
        .spawn_named("roamer", Counter::default())
        .await
        .expect("spawn");
    let hosted_by = |node: &Node| {
        node.directory_snapshot()
            .into_iter()
            .find(|n| n.name == "roamer")
            .map(|n| (n.actor, n.type_tag, n.node))
    };
    let tag = <Counter as Actor>::TYPE_TAG.to_owned();
    wait_for("a's directory to show roamer on b", || {
        hosted_by(&a) == Some((counter.id(), tag.clone(), b.id().clone()))
    })
    .await;

    b.migrate(&counter, a.id()).await.expect("migrate");
    poll_until("both directories to show roamer on a", || async {
        let seen = [hosted_by(&a), hosted_by(&b)];
        let want = Some((counter.id(), tag.clone(), a.id().clone()));
        if seen.iter().all(|s| *s == want) {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;
    b.shutdown().await;
    a.shutdown().await;
}
