//! State hand-over between nodes of one process: what moves, what is kept,
//! what is refused, and exactly-once in-order delivery under load across a
//! thousand round trips.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, eventually_async, linked};
use mobility::prelude::*;
use tokio::sync::Notify;

static GATES: [Notify; 2] = [Notify::const_new(), Notify::const_new()];
/// Set when a handler is waiting at the gate of the same index.
static AT_GATE: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// Checks per-sender order; remembers everything it needs to prove
/// exactly-once.
#[mobile]
#[derive(Default)]
pub struct Tally {
    next: HashMap<String, u64>,
    handled: u64,
    errors: Vec<String>,
    arrivals: u32,
    #[mobile(skip)]
    rebuilt: Option<String>,
    fail_arrival: bool,
    fired: Vec<u64>,
}

#[mobile]
impl Tally {
    pub fn record(&mut self, sender: String, n: u64) -> u64 {
        let next = self.next.entry(sender.clone()).or_insert(0);
        if n != *next {
            self.errors
                .push(format!("{sender}: got {n}, expected {next}"));
        }
        *next = n + 1;
        self.handled += 1;
        self.handled
    }

    pub fn handled(&self) -> u64 {
        self.handled
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors.clone()
    }

    pub fn next_of(&self, sender: String) -> u64 {
        self.next.get(&sender).copied().unwrap_or(0)
    }

    pub fn arrivals(&self) -> u32 {
        self.arrivals
    }

    pub fn rebuilt(&self) -> Option<String> {
        self.rebuilt.clone()
    }

    pub fn set_fail_arrival(&mut self, fail: bool) {
        self.fail_arrival = fail;
    }

    pub async fn wait_gate(&mut self, gate: usize) -> u64 {
        AT_GATE[gate].store(true, Ordering::SeqCst);
        GATES[gate].notified().await;
        self.handled
    }

    pub fn fire_in(&mut self, ms: u64, tag: u64, ctx: &mut Context<Self>) {
        ctx.send_after(Duration::from_millis(ms)).fired(tag);
    }

    pub fn fire_every(&mut self, ms: u64, tag: u64, ctx: &mut Context<Self>) {
        ctx.send_interval(Duration::from_millis(ms)).fired(tag);
    }

    pub fn fired(&mut self, tag: u64) {
        self.fired.push(tag);
    }

    pub fn fired_list(&self) -> Vec<u64> {
        self.fired.clone()
    }

    pub fn send_me(&mut self, to: NodeId, ctx: &mut Context<Self>) {
        ctx.migrate_to(to);
    }

    pub fn panic_now(&mut self) {
        panic!("panic after a move");
    }

    #[mobile(on_arrive)]
    fn arrive(&mut self, ctx: &mut Context<Self>) -> Result<(), String> {
        if self.fail_arrival {
            return Err("this tally refuses to arrive".into());
        }
        self.arrivals += 1;
        self.rebuilt = Some(format!("rebuilt on {}", ctx.node().id()));
        Ok(())
    }
}

/// Holds a handle in its state.
#[mobile]
pub struct Relay {
    target: Handle<Tally>,
}

#[mobile]
impl Relay {
    pub async fn relay(&mut self, sender: String, n: u64) -> Result<u64, Error> {
        self.target.record(sender, n).await
    }
}

/// Large state, to see it travel as bytes.
#[mobile]
pub struct Blob {
    data: Vec<u8>,
}

#[mobile]
impl Blob {
    pub fn checksum(&self) -> (usize, u64) {
        (
            self.data.len(),
            self.data.iter().map(|b| u64::from(*b)).sum(),
        )
    }
}

/// A running numbered sender: its name, how many it sent, and the next
/// number the actor expected from it at the end.
type Sender = tokio::task::JoinHandle<(String, u64, u64)>;

/// A sender of numbered messages through `handle` until `stop`: one
/// request, then two fire-and-forget, each numbered in turn. Ends with a
/// request on its own stream (after its tells): the next number the actor
/// expects from it, which must equal the count sent.
fn numbered_sender(handle: Handle<Tally>, name: String, stop: Arc<AtomicBool>) -> Sender {
    tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let handled = handle
                .record(name.clone(), n)
                .await
                .expect("request answered");
            assert!(handled > n, "a reply from the actor");
            handle.tell().record(name.clone(), n + 1).expect("tell");
            handle.tell().record(name.clone(), n + 2).expect("tell");
            n += 3;
        }
        let arrived = handle.next_of(name.clone()).await.expect("barrier");
        (name, n, arrived)
    })
}

/// A numbered sender on each of `nodes` (a node may come more than once),
/// and the flag that stops them.
fn start_senders(tally: &Handle<Tally>, nodes: &[&Node]) -> (Arc<AtomicBool>, Vec<Sender>) {
    let stop = Arc::new(AtomicBool::new(false));
    let senders = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let handle = node.bind(tally).expect("bind");
            numbered_sender(handle, format!("{}-{i}", node.id()), stop.clone())
        })
        .collect();
    (stop, senders)
}

/// Stops the senders and checks that each message was handled exactly
/// once and in its sender's order; `arrivals` moves were made.
async fn check_senders(
    tally: &Handle<Tally>,
    stop: &AtomicBool,
    senders: Vec<Sender>,
    arrivals: u32,
) {
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for sender in senders {
        let (name, sent, arrived) = sender.await.expect("sender ran to the end");
        assert!(sent > 0, "{name} sent during the migrations");
        assert_eq!(arrived, sent, "{name}: everything arrived, in order");
        total += sent;
    }
    assert_eq!(
        tally.handled().await,
        Ok(total),
        "each message handled exactly once"
    );
    assert_eq!(tally.errors().await, Ok(vec![]), "no message out of order");
    assert_eq!(tally.arrivals().await, Ok(arrivals));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_round_trips_under_load_lose_nothing() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let tally = a.spawn(Tally::default()).await.expect("spawn");
    let (stop, senders) = start_senders(&tally, &[a, b, a]);
    for i in 0..1000 {
        let dest = if i % 2 == 0 { b.id() } else { a.id() };
        let report = a
            .migrate(&tally, dest)
            .await
            .unwrap_or_else(|e| panic!("move {i}: {e}"));
        assert_eq!(report.epoch, i + 1);
    }
    check_senders(&tally, &stop, senders, 1000).await;
}

/// Handles on a node that never hosted the actor send straight to where it
/// lives; they keep every message, in order, while it moves between two
/// other nodes, and when it then comes to their node (under load) and goes
/// on moving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_senders_keep_order_while_the_actor_moves_elsewhere_then_comes_to_them() {
    let nodes = linked(&["a", "b", "c"]).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let tally = a.spawn(Tally::default()).await.expect("spawn");
    let (stop, senders) = start_senders(&tally, &[b, b, a]);
    let mut moves = 0;
    let mut move_to = |dest: &Node| {
        moves += 1;
        let (tally, dest) = (tally.clone(), dest.id().clone());
        async move {
            a.migrate(&tally, dest)
                .await
                .unwrap_or_else(|e| panic!("move {moves}: {e}"))
        }
    };
    for i in 0..200 {
        move_to(if i % 2 == 0 { c } else { a }).await;
    }
    // To the senders' node, and on.
    for dest in [b, c, b, a] {
        move_to(dest).await;
    }
    check_senders(&tally, &stop, senders, moves).await;
}

/// Polls a future once, so that what it sends first is sent now.
async fn start<F: std::future::Future + Unpin>(fut: &mut F) {
    tokio::select! {
        biased;
        _ = fut => panic!("finished before it could be observed"),
        () = std::future::ready(()) => {}
    }
}

#[tokio::test]
async fn the_queued_mailbox_and_calls_in_flight_move_with_the_actor() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let tally = a.spawn(Tally::default()).await.expect("spawn");
    let blocked = {
        let tally = tally.clone();
        tokio::spawn(async move { tally.wait_gate(0).await })
    };
    eventually("the actor waits at the gate", || {
        AT_GATE[0].load(Ordering::SeqCst)
    })
    .await;
    // Queue the migration, then 100 tells and 20 requests behind it.
    let mut migration = Box::pin(a.migrate(&tally, b.id()));
    start(&mut migration).await;
    for n in 0..100 {
        tally.tell().record("tells".into(), n).expect("tell");
    }
    let requests: Vec<_> = (0..20)
        .map(|n| {
            let tally = tally.clone();
            tokio::spawn(async move { tally.record("calls".into(), n).await })
        })
        .collect();
    eventually("the requests are queued", || {
        requests.iter().all(|r| !r.is_finished())
    })
    .await;
    GATES[0].notify_one();
    blocked.await.expect("join").expect("gate");
    let report = migration.await.expect("migrated");
    assert!(report.queued_messages >= 100, "the mailbox moved: {report}");
    for request in requests {
        request
            .await
            .expect("join")
            .expect("a call in flight got its reply");
    }
    assert!(b.hosts(tally.id()));
    assert_eq!(tally.next_of("tells".into()).await, Ok(100));
    assert_eq!(tally.next_of("calls".into()).await, Ok(20));
    assert_eq!(tally.errors().await, Ok(vec![]));
}

#[tokio::test]
async fn timers_keep_their_remaining_time() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let tally = a.spawn(Tally::default()).await.expect("spawn");
    let armed = tokio::time::Instant::now();
    tally.fire_in(400, 1).await.expect("one-shot");
    tally.fire_every(50, 2).await.expect("interval");
    let report = a.migrate(&tally, b.id()).await.expect("migrate");
    assert_eq!(report.timers, 2);
    eventually_async("the interval fires at b", || async {
        tally
            .fired_list()
            .await
            .is_ok_and(|f| f.iter().filter(|t| **t == 2).count() >= 3)
    })
    .await;
    eventually_async("the one-shot fires at b", || async {
        tally.fired_list().await.is_ok_and(|f| f.contains(&1))
    })
    .await;
    let elapsed = armed.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400),
        "not early: {elapsed:?}"
    );
    assert!(b.hosts(tally.id()));
}

#[tokio::test]
async fn name_id_and_skipped_fields_after_a_move() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let tally = a
        .spawn_named("tally", Tally::default())
        .await
        .expect("spawn");
    tally.record("x".into(), 0).await.expect("record");
    assert_eq!(tally.rebuilt().await, Ok(None));
    a.migrate(&tally, b.id()).await.expect("migrate");
    let at_b = b.lookup::<Tally>("tally").await.expect("the name moved");
    assert_eq!(at_b.id(), tally.id(), "same actor id");
    assert_eq!(
        at_b.rebuilt().await,
        Ok(Some("rebuilt on b".into())),
        "skip field: Default, then on_arrive"
    );
    assert_eq!(
        a.lookup::<Tally>("tally")
            .await
            .expect("still resolves at a")
            .id(),
        tally.id()
    );
    assert_eq!(at_b.next_of("x".into()).await, Ok(1), "state moved");
    assert_eq!(tally.location(), *b.id());
}

#[tokio::test]
async fn a_failed_arrival_keeps_the_actor_home_unchanged() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let tally = a
        .spawn_named("tally", Tally::default())
        .await
        .expect("spawn");
    tally.record("x".into(), 0).await.expect("record");
    tally.set_fail_arrival(true).await.expect("set");
    let err = a.migrate(&tally, b.id()).await.expect_err("refused");
    match &err {
        Error::Migration {
            phase,
            failure: MigrationFailure::ArriveFailed(why),
            ..
        } => {
            assert_eq!(*phase, MigrationPhase::Prepare);
            assert!(why.contains("refuses to arrive"), "{why}");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        a.hosts(tally.id()) && !b.hosts(tally.id()),
        "exactly one live copy, at home"
    );
    assert!(
        b.lookup::<Tally>("tally").await.is_err(),
        "the name was not left behind"
    );
    assert_eq!(
        tally.record("x".into(), 1).await,
        Ok(2),
        "state unchanged, still serving"
    );
    tally.set_fail_arrival(false).await.expect("set");
    a.migrate(&tally, b.id()).await.expect("now it moves");
    assert_eq!(tally.errors().await, Ok(vec![]));
}

#[tokio::test]
async fn the_actor_can_ask_to_move_itself() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let tally = a.spawn(Tally::default()).await.expect("spawn");
    tally.send_me(b.id().clone()).await.expect("send_me");
    eventually("it moved to b", || b.hosts(tally.id())).await;
    assert!(!a.hosts(tally.id()));
    assert_eq!(tally.arrivals().await, Ok(1));
}

#[tokio::test]
async fn monitors_follow_the_actor() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let tally = a.spawn(Tally::default()).await.expect("spawn");
    let from_a = tally.monitor();
    let from_b = b.bind(&tally).expect("bind").monitor();
    a.migrate(&tally, b.id()).await.expect("to b");
    a.migrate(&tally, a.id()).await.expect("back to a");
    a.migrate(&tally, b.id()).await.expect("to b again");
    assert!(tally.panic_now().await.is_err());
    assert_eq!(
        from_a.await,
        ExitReason::Panicked("panic after a move".into())
    );
    assert_eq!(
        from_b.await,
        ExitReason::Panicked("panic after a move".into())
    );
    assert!(matches!(
        tally.handled().await,
        Err(Error::ActorDown { .. })
    ));
}

#[tokio::test]
async fn handles_in_state_rebind_at_the_destination() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let tally = a.spawn(Tally::default()).await.expect("spawn");
    let relay = a
        .spawn(Relay {
            target: tally.clone(),
        })
        .await
        .expect("spawn");
    assert_eq!(relay.relay("r".into(), 0).await, Ok(Ok(1)));
    a.migrate(&relay, b.id()).await.expect("relay to b");
    assert_eq!(
        relay.relay("r".into(), 1).await,
        Ok(Ok(2)),
        "from b to the tally on a"
    );
    a.migrate(&tally, b.id()).await.expect("tally to b");
    a.migrate(&relay, a.id()).await.expect("relay back to a");
    assert_eq!(
        relay.relay("r".into(), 2).await,
        Ok(Ok(3)),
        "from a to the tally on b"
    );
    assert_eq!(tally.errors().await, Ok(vec![]));
}

#[tokio::test]
async fn migrate_from_any_node_and_errors_are_clear() {
    let nodes = linked(&["a", "b", "c"]).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let tally = a.spawn(Tally::default()).await.expect("spawn");
    let report = c.migrate(&tally, b.id()).await.expect("asked from c");
    assert_eq!((report.from.as_str(), report.to.as_str()), ("a", "b"));
    let report = b.migrate(&tally, c.id()).await.expect("asked from b");
    assert_eq!((report.from.as_str(), report.to.as_str()), ("b", "c"));
    assert_eq!(
        tally.record("x".into(), 0).await,
        Ok(1),
        "a -> b -> c, old handle still works"
    );

    let err = a.migrate(&tally, c.id()).await.expect_err("already there");
    assert!(
        matches!(
            &err,
            Error::Migration {
                failure: MigrationFailure::AlreadyThere(_),
                ..
            }
        ),
        "{err}"
    );
    let tcp: Destination = "tcp://127.0.0.1:1".parse().expect("parse");
    let err = a.migrate(&tally, tcp).await.expect_err("no TCP yet");
    assert!(
        err.to_string().contains("cannot reach 127.0.0.1:1"),
        "{err}"
    );
    assert!(c.hosts(tally.id()));
    assert!("tcp://nowhere".parse::<Destination>().is_err());
}

#[tokio::test]
async fn large_state_travels_as_bytes() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let expected = (data.len(), data.iter().map(|b| u64::from(*b)).sum::<u64>());
    let blob = a.spawn(Blob { data }).await.expect("spawn");
    let report = a.migrate(&blob, b.id()).await.expect("migrate");
    assert!(
        report.state_bytes >= 8 * 1024 * 1024 && report.state_bytes < 8 * 1024 * 1024 + 64,
        "{report}"
    );
    assert!(report.freeze >= report.capture);
    assert_eq!(blob.checksum().await, Ok(expected));
}

#[tokio::test]
async fn a_node_that_goes_away_is_reported_to_callers_and_monitors() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let tally = a.spawn(Tally::default()).await.expect("spawn");
    a.migrate(&tally, b.id()).await.expect("to b");
    let monitor = tally.monitor();
    // A request that will never be answered: b shuts down under it.
    let blocked = {
        let tally = tally.clone();
        tokio::spawn(async move {
            tally
                .with_timeout(Duration::from_secs(60))
                .wait_gate(1)
                .await
        })
    };
    eventually("the actor waits at the gate on b", || {
        AT_GATE[1].load(Ordering::SeqCst)
    })
    .await;
    b.shutdown().await;
    assert_eq!(monitor.await, ExitReason::NodeDown(b.id().clone()));
    let err = blocked.await.expect("join").expect_err("no answer");
    assert!(matches!(err, Error::ActorDown { .. }), "{err}");
    eventually("a forgets the link to b", || a.peers().is_empty()).await;
    let err = tally.handled().await.expect_err("b is gone");
    assert!(
        matches!(
            err,
            Error::ActorDown {
                reason: ExitReason::NodeDown(_),
                ..
            }
        ),
        "{err}"
    );
}
