//! The metrics a node records through the `metrics` facade: messages
//! handled and handler time per node and actor type, mailbox depth while
//! an actor is blocked, migrations (out and in, success and failure) with
//! their freeze time and bytes, spawned and stopped actors, link bytes and
//! peers. The recorder is a `metrics-util` registry installed in this
//! process.

mod common;

use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use common::{poll_until, wait_for};
use metrics::{Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use mobility::metrics as names;
use mobility::prelude::*;

static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

#[mobile]
#[derive(Default)]
pub struct Gate {
    pings: u64,
}

#[mobile]
impl Gate {
    pub async fn hold(&mut self) {
        GATE.acquire().await.expect("the gate stays open").forget();
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
}

/// A recorder that keeps every series in a `metrics-util` registry and is
/// read without draining it (the tests of this binary run at once, each
/// with its own node ids).
#[derive(Debug)]
struct Kept(Registry<Key, AtomicStorage>);

impl Recorder for Kept {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        self.0
            .get_or_create_counter(key, |c| metrics::Counter::from_arc(c.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        self.0
            .get_or_create_gauge(key, |g| metrics::Gauge::from_arc(g.clone()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        self.0
            .get_or_create_histogram(key, |h| metrics::Histogram::from_arc(h.clone()))
    }
}

fn recorder() -> &'static Kept {
    static RECORDER: OnceLock<&'static Kept> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let kept: &'static Kept = Box::leak(Box::new(Kept(Registry::atomic())));
        metrics::set_global_recorder(kept).expect("the only recorder of this process");
        kept
    })
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new((*k).to_owned(), (*v).to_owned()))
        .collect();
    Key::from_parts(name.to_owned(), labels)
}

fn counted(name: &str, labels: &[(&str, &str)]) -> u64 {
    recorder()
        .0
        .get_counter(&key(name, labels))
        .map_or(0, |c| c.load(Ordering::Relaxed))
}

fn gauge(name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    recorder()
        .0
        .get_gauge(&key(name, labels))
        .map(|g| f64::from_bits(g.load(Ordering::Relaxed)))
}

fn histogram(name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    recorder()
        .0
        .get_histogram(&key(name, labels))
        .map_or_else(Vec::new, |h| h.data())
}

async fn node(id: &str) -> Node {
    recorder();
    Node::builder()
        .id(id)
        .metrics_interval(Duration::from_millis(10))
        .start()
        .await
        .expect("node starts")
}

#[tokio::test]
async fn messages_handler_time_and_mailbox_depth_per_node_and_type() {
    let node = node("m1").await;
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    let labels = [("node", "m1"), ("actor_type", <Counter as Actor>::TYPE_TAG)];
    for n in 0..10 {
        counter.add(n).await.expect("a call on the caller's task");
    }
    for n in 0..5 {
        counter.tell().add(n).expect("a cast through the mailbox");
    }
    assert_eq!(counter.add(0).await, Ok(55));
    assert_eq!(counted(names::MESSAGES_HANDLED, &labels), 16);
    let times = histogram(names::HANDLER_SECONDS, &labels);
    assert_eq!(times.len(), 16, "one handler time per message");
    assert!(times.iter().all(|t| *t >= 0.0 && *t < 5.0), "{times:?}");
    assert_eq!(counted(names::ACTORS_SPAWNED, &labels), 1, "spawned on m1");

    // Blocked in a handler with three messages behind it: the sampled
    // gauge of its type shows them.
    let gate = node.spawn(Gate::default()).await.expect("spawn");
    let gate_labels = [("node", "m1"), ("actor_type", <Gate as Actor>::TYPE_TAG)];
    gate.tell().hold().expect("tell");
    for _ in 0..3 {
        gate.tell().ping().expect("tell");
    }
    wait_for("a mailbox depth of 3 for Gate on m1", || {
        gauge(names::MAILBOX_DEPTH, &gate_labels) == Some(3.0)
    })
    .await;
    assert_eq!(gauge(names::ACTORS, &gate_labels), Some(1.0));
    GATE.add_permits(1);
    assert_eq!(gate.ping().await, Ok(4));
    wait_for("the depth back to 0", || {
        gauge(names::MAILBOX_DEPTH, &gate_labels) == Some(0.0)
    })
    .await;

    gate.stop().await.expect("stop");
    let stopped = [
        ("node", "m1"),
        ("actor_type", <Gate as Actor>::TYPE_TAG),
        ("reason", "stopped"),
    ];
    assert_eq!(counted(names::ACTORS_STOPPED, &stopped), 1);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_moves_the_metrics_of_both_nodes() {
    let (a, b) = (node("g1").await, node("g2").await);
    a.connect_in_process(&b).expect("link");
    let tag = <Counter as Actor>::TYPE_TAG;
    let counter = a.spawn(Counter::default()).await.expect("spawn");
    counter.add(1).await.expect("add");

    let report = a.migrate(&counter, b.id()).await.expect("migrate");
    let out = [("node", "g1"), ("actor_type", tag), ("outcome", "success")];
    assert_eq!(counted(names::MIGRATIONS_OUT, &out), 1);
    let into = [("node", "g2"), ("actor_type", tag), ("outcome", "success")];
    poll_until("the arrival counted on g2", || async {
        match counted(names::MIGRATIONS_IN, &into) {
            1 => Ok(()),
            n => Err(format!("{n}")),
        }
    })
    .await;
    let labels = [("node", "g1"), ("actor_type", tag)];
    assert_eq!(
        histogram(names::MIGRATION_FREEZE_SECONDS, &labels),
        vec![report.freeze.as_secs_f64()],
        "the report's freeze time"
    );
    assert_eq!(
        counted(names::MIGRATION_BYTES, &labels),
        report.snapshot_bytes
    );

    // A move that cannot happen counts as a failure on the actor's node.
    let nowhere: NodeId = "nowhere".parse().expect("id");
    assert!(b.migrate(&counter, nowhere).await.is_err());
    let failed = [("node", "g2"), ("actor_type", tag), ("outcome", "failure")];
    assert_eq!(counted(names::MIGRATIONS_OUT, &failed), 1);

    // Handled where it lives now; the sampled gauges follow it.
    assert_eq!(counter.add(1).await, Ok(2));
    let on_b = [("node", "g2"), ("actor_type", tag)];
    assert_eq!(counted(names::MESSAGES_HANDLED, &on_b), 1);
    wait_for("the actor counted on g2 and gone from g1", || {
        gauge(names::ACTORS, &on_b) == Some(1.0)
            && gauge(names::ACTORS, &[("node", "g1"), ("actor_type", tag)]) == Some(0.0)
    })
    .await;
    wait_for("link bytes both ways and a peer", || {
        let sent = counted(names::LINK_BYTES_SENT, &[("node", "g1")]);
        let received = counted(names::LINK_BYTES_RECEIVED, &[("node", "g2")]);
        sent > report.snapshot_bytes
            && received > report.snapshot_bytes
            && gauge(names::PEERS, &[("node", "g1")]) == Some(1.0)
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_node_told_not_to_record_records_nothing() {
    recorder();
    let node = Node::builder()
        .id("quiet")
        .metrics_interval(Duration::from_millis(10))
        .record_metrics(false)
        .start()
        .await
        .expect("node starts");
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    for n in 0..5 {
        counter.add(n).await.expect("add");
    }
    // A node that records samples every 10 ms: a few periods later, a
    // quiet one has still published nothing (the same path as a node
    // started without any recorder).
    let loud = self::node("loud").await;
    wait_for("the recording node to sample its peers gauge", || {
        gauge(names::PEERS, &[("node", "loud")]).is_some()
    })
    .await;
    let labels = [
        ("node", "quiet"),
        ("actor_type", <Counter as Actor>::TYPE_TAG),
    ];
    assert_eq!(counted(names::MESSAGES_HANDLED, &labels), 0);
    assert!(histogram(names::HANDLER_SECONDS, &labels).is_empty());
    assert_eq!(counted(names::ACTORS_SPAWNED, &labels), 0);
    assert_eq!(gauge(names::PEERS, &[("node", "quiet")]), None);
    node.shutdown().await;
    loud.shutdown().await;
}
