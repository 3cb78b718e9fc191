//! Clusters of three or more nodes in one process, joined by gossip:
//! membership, the cluster-wide directory, migration inside the cluster with
//! forwarding and path correction, concurrent name claims, a failed node,
//! forwarder retirement, and a drain under load.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::ledger::{Ledger, Tally};
use common::{poll_until, wait_for, PATIENCE};
use mobility::prelude::*;
use mobility::NodeStats;

const SECRET: &str = "cluster secret";

/// Opened (a permit added) by the test that keeps `Counter::hold` waiting.
static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

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

    pub fn where_am_i(&self, ctx: &mut Context<Self>) -> String {
        ctx.node().id().to_string()
    }

    /// A handler that holds the actor busy until the test opens `GATE`.
    pub async fn hold(&self) {
        GATE.acquire().await.expect("the gate stays open").forget();
    }
}

fn builder(id: &str) -> mobility::NodeBuilder {
    Node::builder()
        .id(id)
        .cluster("test-cluster", SECRET)
        .listen("127.0.0.1:0")
        .gossip_interval(Duration::from_millis(50))
        .failure_timeout(Duration::from_millis(1500))
        .request_timeout(Duration::from_secs(20))
}

/// Nodes joined into one cluster through the first, each seeing all.
async fn cluster(ids: &[&str]) -> Vec<Node> {
    let first = builder(ids[0]).start().await.expect("seed starts");
    let seed = first.listen_addr().expect("listens").to_string();
    let mut nodes = vec![first];
    for id in &ids[1..] {
        nodes.push(builder(id).join(&seed).start().await.expect("joins"));
    }
    for node in &nodes {
        wait_for("every member sees every other", || {
            node.members().len() == ids.len()
        })
        .await;
    }
    nodes
}

/// Looks `name` up on `node` until the directory has it.
async fn lookup_eventually<A: Actor>(node: &Node, name: &str) -> Handle<A> {
    poll_until(
        &format!("{name} in the directory of {}", node.id()),
        || async {
            match node.lookup::<A>(name).await {
                Ok(handle) => Ok(handle),
                Err(e @ Error::NameNotFound { .. }) => Err(e.to_string()),
                Err(e) => panic!("lookup of {name} on {}: {e}", node.id()),
            }
        },
    )
    .await
}

/// How many messages each ledger handled so far.
async fn handled_by(ledgers: &[Handle<Ledger>]) -> Vec<u64> {
    let mut handled = Vec::new();
    for ledger in ledgers {
        handled.push(ledger.tally().await.expect("tally").handled);
    }
    handled
}

/// Waits until each ledger handled at least its number of `targets`.
async fn handled_at_least(ledgers: &[Handle<Ledger>], targets: Vec<u64>) {
    poll_until("the load to progress", || async {
        let handled = handled_by(ledgers).await;
        if handled.iter().zip(&targets).all(|(n, target)| n >= target) {
            Ok(())
        } else {
            Err(format!("handled {handled:?} of {targets:?}"))
        }
    })
    .await
}

fn forwarded(node: &Node) -> u64 {
    let NodeStats {
        forwarded_messages, ..
    } = node.stats();
    forwarded_messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_find_a_named_actor_from_every_node() {
    let nodes = cluster(&["a", "b", "c"]).await;
    let mut events = nodes[0].member_events();
    let counter = nodes[1]
        .spawn_named("counter", Counter::default())
        .await
        .expect("spawn");
    counter.add(1).await.expect("local call");
    for (i, node) in nodes.iter().enumerate() {
        let found = lookup_eventually::<Counter>(node, "counter").await;
        assert_eq!(found.id(), counter.id(), "same actor from {}", node.id());
        assert_eq!(
            found.add(1).await,
            Ok(i as u64 + 2),
            "answered via {}",
            node.id()
        );
        assert_eq!(found.where_am_i().await.as_deref(), Ok("b"));
    }
    // The wrong type is an error, not a panic, on every node.
    match nodes[2].lookup::<Ledger>("counter").await {
        Err(Error::WrongType {
            expected, found, ..
        }) => {
            assert!(expected.contains("Ledger") && found.contains("Counter"))
        }
        other => panic!("expected a wrong type error, got {other:?}"),
    }
    // A name taken anywhere in the cluster is taken everywhere.
    match nodes[2].spawn_named("counter", Counter::default()).await {
        Err(Error::NameTaken { owner, .. }) => assert_eq!(owner, counter.id()),
        other => panic!("expected name taken, got {other:?}"),
    }
    // The name goes when its actor stops.
    counter.stop().await.expect("stop");
    for node in &nodes {
        poll_until(&format!("the name to leave {}", node.id()), || async {
            match node.lookup::<Counter>("counter").await {
                Ok(_) => Err("still found".to_owned()),
                Err(_) => Ok(()),
            }
        })
        .await;
    }
    assert!(events.try_recv().is_err(), "no membership change meanwhile");
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_is_forwarded_once_then_goes_direct() {
    let nodes = cluster(&["a", "b", "c", "d"]).await;
    let (a, b, c, d) = (&nodes[0], &nodes[1], &nodes[2], &nodes[3]);
    let counter = a
        .spawn_named("hops", Counter::default())
        .await
        .expect("spawn");
    let from_d = lookup_eventually::<Counter>(d, "hops").await;
    assert_eq!(from_d.add(1).await, Ok(1));

    // A chain of moves inside the cluster: a -> b -> c -> a.
    let mut expected = 1;
    for (from, to) in [(a, b), (b, c), (c, a)] {
        let before = forwarded(from);
        let report = counter
            .migrate(Destination::node(to.id().clone()))
            .await
            .expect("in-cluster migration");
        assert_eq!((&report.from, &report.to), (from.id(), to.id()));
        assert!(to.hosts(counter.id()) && !from.hosts(counter.id()));
        // d's handle still points at the old node: one forwarded hop...
        expected += 1;
        assert_eq!(from_d.add(1).await, Ok(expected));
        assert_eq!(forwarded(from), before + 1, "one hop through {}", from.id());
        // ...and then d goes straight to the actor.
        wait_for("d's route corrected", || from_d.location() == *to.id()).await;
        for _ in 0..5 {
            expected += 1;
            assert_eq!(from_d.add(1).await, Ok(expected));
        }
        assert_eq!(forwarded(from), before + 1, "no further hop once corrected");
        assert_eq!(from_d.where_am_i().await.as_deref(), Ok(to.id().as_str()));
    }
    // Every node's lookup converges to the new location.
    for node in &nodes {
        poll_until(
            &format!("{} to see the new location", node.id()),
            || async {
                let found = node.lookup::<Counter>("hops").await.expect("found");
                if found.location() == *a.id() {
                    Ok(())
                } else {
                    Err(format!("still sees {}", found.location()))
                }
            },
        )
        .await;
    }
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_claiming_one_name_at_once_end_with_one_owner() {
    let nodes = cluster(&["a", "b", "c"]).await;
    for round in 0..10 {
        let name = format!("only-one-{round}");
        // The claims come from the two nodes that are not the coordinator,
        // and from the coordinator itself, at the same moment.
        let (first, second, third) = tokio::join!(
            nodes[1].spawn_named(name.clone(), Counter::default()),
            nodes[2].spawn_named(name.clone(), Counter::default()),
            nodes[0].spawn_named(name.clone(), Counter::default()),
        );
        let outcomes = [first, second, third];
        let winners: Vec<&Handle<Counter>> =
            outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one owner");
        let winner = winners[0].id();
        for outcome in &outcomes {
            if let Err(e) = outcome {
                match e {
                    Error::NameTaken { owner, name: taken } => {
                        assert_eq!((*owner, taken), (winner, &name), "told who has it")
                    }
                    other => panic!("round {round}: unexpected {other}"),
                }
            }
        }
        for node in &nodes {
            let found = lookup_eventually::<Counter>(node, &name).await;
            assert_eq!(found.id(), winner, "{} agrees on the owner", node.id());
        }
    }
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_forwarder_retires_and_a_late_sender_still_gets_through() {
    let nodes = {
        let first = builder("a")
            .forwarder_idle(Duration::from_millis(200))
            .start()
            .await
            .expect("a");
        let seed = first.listen_addr().expect("addr").to_string();
        let mut nodes = vec![first];
        for id in ["b", "c"] {
            let node = builder(id)
                .forwarder_idle(Duration::from_millis(200))
                .join(&seed)
                .start()
                .await
                .expect("joins");
            nodes.push(node);
        }
        for node in &nodes {
            wait_for("full membership", || node.members().len() == 3).await;
        }
        nodes
    };
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let id = a
        .spawn_named("late", Counter::default())
        .await
        .expect("spawn")
        .id();
    // Only c holds a handle; a keeps none.
    let from_c = lookup_eventually::<Counter>(c, "late").await;
    assert_eq!(from_c.id(), id);
    assert_eq!(from_c.add(1).await, Ok(1));
    c.migrate(&from_c, Destination::node(b.id().clone()))
        .await
        .expect("moved to b");
    assert!(b.hosts(id));
    wait_for("a's forwarder retired", || a.stats().forwarders == 0).await;
    assert_eq!(a.stats().hosted, 0);

    // c never sent since the move, so it still routes through a: a has no
    // slot for the actor any more and forwards through the directory.
    assert_eq!(from_c.location(), *a.id(), "c's route is stale");
    let before = forwarded(a);
    assert_eq!(from_c.add(1).await, Ok(2), "the late sender got through");
    assert_eq!(forwarded(a), before + 1);
    wait_for("c corrected", || from_c.location() == *b.id()).await;
    assert_eq!(from_c.add(1).await, Ok(3));
    assert_eq!(forwarded(a), before + 1, "direct after the correction");
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_node_takes_its_entries_and_its_actors_are_reported_down() {
    let nodes = cluster(&["a", "b"]).await;
    let seed = nodes[0].listen_addr().expect("addr").to_string();
    // Node c runs on a runtime of its own, which the test drops: its tasks
    // and sockets vanish at once, as when a process is killed.
    let (tx, rx) = std::sync::mpsc::channel();
    let (kill, killed) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let c = builder("c").join(&seed).start().await.expect("c joins");
            let victim = c
                .spawn_named("victim", Counter::default())
                .await
                .expect("spawn on c");
            tx.send(victim.id()).expect("send id");
            let _ = killed.await;
            drop(c);
        });
        drop(runtime);
    });
    let victim_id = tokio::task::spawn_blocking(move || rx.recv().expect("id"))
        .await
        .expect("join");
    let (a, b) = (&nodes[0], &nodes[1]);
    let victim = lookup_eventually::<Counter>(a, "victim").await;
    assert_eq!(victim.id(), victim_id);
    assert_eq!(victim.add(1).await, Ok(1));
    let monitor = victim.monitor();
    let mut events = b.member_events();
    kill.send(()).expect("kill c");
    tokio::task::spawn_blocking(move || thread.join().expect("thread"))
        .await
        .expect("join");

    // Monitors fire, the entries go, calls fail as down.
    let reason = tokio::time::timeout(PATIENCE, monitor)
        .await
        .expect("monitor fired in time");
    // Declared failed by the cluster: unreachable, not "shut down".
    assert_eq!(
        reason,
        ExitReason::Unreachable(NodeId::new("c").expect("id"))
    );
    let event = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(MemberEvent::Failed(node)) => return node,
                Ok(_) => continue,
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("failure reported");
    assert_eq!(event.as_str(), "c");
    for node in [a, b] {
        wait_for("c left the member list", || node.members().len() == 2).await;
        match node.lookup::<Counter>("victim").await {
            Err(Error::NameNotFound { .. }) => {}
            other => panic!("the dead node's name is still there: {other:?}"),
        }
    }
    match victim.add(1).await {
        Err(Error::ActorDown { reason, .. }) => {
            assert_eq!(
                reason,
                ExitReason::Unreachable(NodeId::new("c").expect("id"))
            )
        }
        other => panic!("expected the actor down, got {other:?}"),
    }
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_a_node_under_load_moves_every_actor_and_loses_nothing() {
    let nodes = cluster(&["a", "b", "c"]).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let mut ledgers = Vec::new();
    for i in 0..6 {
        let ledger = b
            .spawn_named(format!("ledger-{i}"), Ledger::default())
            .await
            .expect("spawn");
        ledgers.push(ledger.id());
    }
    // Senders on a and c send numbered messages to every ledger throughout.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for node in [a, c] {
        for i in 0..6 {
            let handle = lookup_eventually::<Ledger>(node, &format!("ledger-{i}")).await;
            let stop = stop.clone();
            let sender = format!("{}-{i}", node.id());
            senders.push(tokio::spawn(async move {
                let mut seq = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if seq % 10 == 9 {
                        if let Err(e) = handle.record(sender.clone(), seq).await {
                            panic!("request {seq} of {sender} not answered: {e}");
                        }
                    } else {
                        handle.tell().record(sender.clone(), seq).expect("sent");
                    }
                    seq += 1;
                    tokio::task::yield_now().await;
                }
                (sender, seq, handle)
            }));
        }
    }
    // Under load before the drain...
    let watched: Vec<Handle<Ledger>> = {
        let mut watched = Vec::new();
        for i in 0..6 {
            watched.push(lookup_eventually::<Ledger>(a, &format!("ledger-{i}")).await);
        }
        watched
    };
    let before = handled_by(&watched).await;
    handled_at_least(&watched, before.iter().map(|n| n + 100).collect()).await;
    let report = b.drain().await.expect("drain");
    assert_eq!(report.moved.len(), 6, "every actor moved");
    let to_a = report.moved.iter().filter(|r| r.to == *a.id()).count();
    assert_eq!((to_a, 6 - to_a), (3, 3), "spread evenly");
    assert!(b.spawn(Counter::default()).await.is_err(), "b is shut down");
    // ...and after it.
    let after = handled_by(&watched).await;
    handled_at_least(&watched, after.iter().map(|n| n + 100).collect()).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent: HashMap<String, u64> = HashMap::new();
    let mut handles = Vec::new();
    for sender in senders {
        let (name, count, handle) = sender.await.expect("sender");
        sent.insert(name, count);
        handles.push(handle);
    }
    let mut total_handled = 0;
    for (i, _) in ledgers.iter().enumerate() {
        let handle = lookup_eventually::<Ledger>(a, &format!("ledger-{i}")).await;
        let Tally {
            handled,
            duplicates,
            out_of_order,
            next,
        } = handle.tally().await.expect("tally");
        assert_eq!((duplicates, out_of_order), (0, 0), "ledger-{i}");
        for (sender, n) in &next {
            assert_eq!(Some(n), sent.get(sender), "ledger-{i} got all of {sender}");
        }
        total_handled += handled;
    }
    let total_sent: u64 = sent.values().sum();
    assert_eq!(total_handled, total_sent, "lost = 0");
    wait_for("b left the cluster", || a.members().len() == 2).await;
    drop(handles);
    for node in [a, c] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_that_cannot_place_an_actor_says_which_and_keeps_it() {
    let alone = builder("alone").start().await.expect("node");
    let counter = alone
        .spawn_named("stays", Counter::default())
        .await
        .expect("spawn");
    match alone.drain().await {
        Err(Error::DrainIncomplete { moved, failed, .. }) => {
            assert_eq!(moved, 0);
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0].0, counter.id(), "names the actor");
            assert!(failed[0].1.contains("no other member"), "{}", failed[0].1);
        }
        other => panic!("expected an incomplete drain, got {other:?}"),
    }
    assert_eq!(counter.add(1).await, Ok(1), "the actor still runs here");
    assert_eq!(alone.members().len(), 1, "still a member");
    alone.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_freed_elsewhere_can_be_taken_again_where_it_began() {
    let nodes = cluster(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let first = a
        .spawn_named("reused", Counter::default())
        .await
        .expect("spawn");
    a.migrate(&first, Destination::node(b.id().clone()))
        .await
        .expect("moved");
    first.stop().await.expect("stopped on b");
    // The directory forgets the name once b's change has gossiped.
    let second = poll_until("the name to be freed", || async {
        match a.spawn_named("reused", Counter::default()).await {
            Ok(handle) => Ok(handle),
            Err(e @ Error::NameTaken { owner, .. }) if owner == first.id() => Err(e.to_string()),
            Err(e) => panic!("unexpected {e}"),
        }
    })
    .await;
    assert_ne!(second.id(), first.id());
    // b's lookups converge to the new owner (gossip may show the old one's
    // entries a moment longer).
    let found = poll_until("b to see the new owner", || async {
        let found = lookup_eventually::<Counter>(b, "reused").await;
        if found.id() == second.id() {
            Ok(found)
        } else {
            Err(format!("still sees {}", found.id()))
        }
    })
    .await;
    assert_eq!(found.add(5).await, Ok(5), "the new actor, from empty state");
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_says_when_the_first_message_was_handled_after_the_move() {
    let nodes = cluster(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let counter = a.spawn(Counter::default()).await.expect("spawn");
    // Nothing waits when the actor starts at b: no first message to report.
    let idle = counter
        .migrate(Destination::node(b.id().clone()))
        .await
        .expect("idle move");
    assert_eq!(idle.first_message, None);

    // The actor is busy; the move is asked, then more messages queue
    // behind it: they move with it and the first is handled at a. All go
    // through b's own mailbox, so they are queued there, in this order,
    // before the gate lets `hold` end.
    let at_b = b.bind(&counter).expect("bind at b");
    at_b.tell().hold().expect("sent");
    let mut moving = Box::pin(at_b.migrate(Destination::node(a.id().clone())));
    // One poll sends the request; the move waits for `hold` to end.
    assert!(tokio::time::timeout(Duration::ZERO, &mut moving)
        .await
        .is_err());
    for _ in 0..10 {
        at_b.tell().add(1).expect("sent");
    }
    GATE.add_permits(1);
    let report = moving.await.expect("busy move");
    assert!(report.queued_messages > 0, "{report}");
    let first = report.first_message.expect("a first message was handled");
    assert!(first >= report.freeze, "{report}");
    assert_eq!(counter.add(0).await, Ok(10));
    for node in &nodes {
        node.shutdown().await;
    }
}

/// The secret shared with the nodes of cluster "away".
const FEDERATION: &str = "federation secret";

/// A node of another cluster moved an actor here and the actor moved on
/// inside the cluster: that node still routes it through here, and hears
/// of a drain from no directory. The drain tells it where the actor went,
/// so what it sends afterwards does not go to a node that is gone (found
/// by the schedule property test: those messages were lost with the
/// session to the drained node, and the actor waited for them forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_tells_other_clusters_where_the_actors_it_forwards_for_went() {
    let a = builder("a")
        .trust_cluster("away", FEDERATION)
        .start()
        .await
        .expect("a starts");
    let seed = a.listen_addr().expect("listens").to_string();
    let b = builder("b")
        .trust_cluster("away", FEDERATION)
        .join(&seed)
        .start()
        .await
        .expect("b joins");
    wait_for("a and b see each other", || {
        a.members().len() == 2 && b.members().len() == 2
    })
    .await;
    let x = Node::builder()
        .id("x")
        .cluster("away", "away secret")
        .trust_cluster("test-cluster", FEDERATION)
        .listen("127.0.0.1:0")
        .request_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("x starts");
    // x -> b across clusters, then b -> a inside the cluster: x's
    // forwarder points at b, which nothing corrects without traffic.
    let ledger = x.spawn(Ledger::default()).await.expect("spawn");
    let to_b: Destination = format!("tcp://{}", b.listen_addr().expect("listens"))
        .parse()
        .expect("destination");
    ledger.migrate(to_b).await.expect("x -> b");
    b.bind(&ledger)
        .expect("bind")
        .migrate(Destination::node(a.id().clone()))
        .await
        .expect("b -> a");
    let report = b.drain().await.expect("drain");
    assert!(report.moved.is_empty(), "nothing was hosted on b");
    // Sent from x after b is gone: every one arrives, in order.
    for seq in 0..20 {
        ledger.tell().record("x".into(), seq).expect("sent");
    }
    let handled = tokio::time::timeout(PATIENCE, ledger.record("x".into(), 20))
        .await
        .expect("answered in time")
        .expect("answered");
    assert_eq!(handled, 21, "every message, once");
    let Tally {
        duplicates,
        out_of_order,
        ..
    } = ledger.tally().await.expect("tally");
    assert_eq!((duplicates, out_of_order), (0, 0));
    assert!(a.hosts(ledger.id()), "the actor is still at a");
    for node in [&a, &x] {
        node.shutdown().await;
    }
}
