//! The scale of the cluster directory: ten members in one process on
//! loopback (default gossip settings: every 100 ms, failure after about
//! 2 s), one of them hosting many named actors. Printed, each with what it
//! is compared to:
//!
//! - memory: the process's resident memory for the other nine members to
//!   know the actors, per remote actor per member (baseline: the same
//!   actors spawned on a node of no cluster, whose cost is subtracted, and
//!   the target of 64 B);
//! - time for a name spawned on one member to be found on every other
//!   (`Node::directory_entry`), and for a move to be seen on every other,
//!   each against one gossip interval;
//! - time for every member to declare a crashed member failed, against the
//!   configured failure timeout;
//! - gossip bytes per second summed over the members, at rest and while a
//!   member with 1,000 actors (`--drain N`) drains, against the same at
//!   rest before any actor existed; and how long that drain takes.
//!
//! These are limits, measured here and never in timed tests. Not criterion:
//! each figure is one scale experiment (medians of repeated short ones where
//! it can). Run: `cargo bench --bench directory` (100,000 actors; `--
//! --actors N` for another number).

mod common;

use std::time::{Duration, Instant};

use mobility::prelude::*;

const SECRET: &str = "directory scale benchmark";
const MEMBERS: usize = 10;
const GOSSIP: Duration = Duration::from_millis(100);
const FAILURE: Duration = Duration::from_secs(2);

#[mobile]
#[derive(Default)]
pub struct Idle {
    n: u64,
}

#[mobile]
impl Idle {
    pub fn get(&self) -> u64 {
        self.n
    }
}

async fn member(id: &str, seed: Option<String>) -> Node {
    let mut builder = Node::builder()
        .id(id)
        .cluster("scale", SECRET)
        .listen("127.0.0.1:0")
        .join_timeout(Duration::from_secs(120))
        .request_timeout(Duration::from_secs(120))
        .migration_timeout(Duration::from_secs(120));
    if let Some(seed) = seed {
        builder = builder.join(seed);
    }
    builder.start().await.expect("member starts")
}

/// Waits until `done` holds, polling every millisecond; the time it took.
async fn until(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{what}: not within 600 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn gossip_total(nodes: &[Node]) -> u64 {
    nodes.iter().map(|n| n.stats().gossip_bytes_sent).sum()
}

/// Gossip bytes per second sent by all `nodes` over `span`, while `work`
/// runs (or at rest).
async fn gossip_rate(nodes: &[Node], span: Duration) -> f64 {
    let before = gossip_total(nodes);
    tokio::time::sleep(span).await;
    (gossip_total(nodes) - before) as f64 / span.as_secs_f64()
}

async fn run(actors: usize, drained: usize) {
    println!(
        "directory scale: {MEMBERS} members in one process, gossip every {GOSSIP:?}, {actors} named actors on one member (load {})",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );

    // The actors' own cost on a node of no cluster, to subtract.
    let lone = Node::builder().id("lone").start().await.expect("lone node");
    let before = common::resident_bytes();
    for i in 0..actors {
        lone.spawn_named(format!("idle-{i}"), Idle::default())
            .await
            .expect("spawn");
    }
    let own_cost = common::resident_bytes().saturating_sub(before);
    // Kept alive to the end: memory it freed would be reused by the
    // cluster and hide the directory's cost.
    println!(
        "  {actors} named actors on a node of no cluster: {:.1} MB ({} B each)",
        own_cost as f64 / 1e6,
        own_cost / actors as u64
    );

    let mut nodes = vec![member("m0", None).await];
    let seed = nodes[0].listen_addr().expect("listens").to_string();
    for i in 1..MEMBERS {
        nodes.push(member(&format!("m{i}"), Some(seed.clone())).await);
    }
    let empty_rate = gossip_rate(&nodes, Duration::from_secs(5)).await;
    println!(
        "  gossip at rest, no actors: {:.1} kB/s over all members",
        empty_rate / 1e3
    );

    // Memory: the host spawns them; every other member learns them.
    let base = common::resident_bytes();
    let started = Instant::now();
    for i in 0..actors {
        nodes[0]
            .spawn_named(format!("idle-{i}"), Idle::default())
            .await
            .expect("spawn");
    }
    let spawned = started.elapsed();
    let last = format!("idle-{}", actors - 1);
    let converged = until("every member knows every name", || {
        nodes[1..]
            .iter()
            .all(|n| n.directory_entry(&last).is_some() && n.directory_entry("idle-0").is_some())
    })
    .await;
    let cluster_cost = common::resident_bytes().saturating_sub(base);
    let directory_cost = cluster_cost.saturating_sub(own_cost);
    let per_remote = directory_cost as f64 / (actors as f64 * (MEMBERS - 1) as f64);
    println!(
        "  spawned in {spawned:?}; every member knew them {converged:?} later; the cluster's memory grew {:.1} MB, {:.1} MB beyond the actors themselves: {per_remote:.0} B per remote actor per member (target 64 B)",
        cluster_cost as f64 / 1e6,
        directory_cost as f64 / 1e6,
    );
    let loaded_rate = gossip_rate(&nodes, Duration::from_secs(5)).await;
    println!(
        "  gossip at rest with {actors} actors: {:.1} kB/s over all members ({:.1}x the empty cluster's)",
        loaded_rate / 1e3,
        loaded_rate / empty_rate
    );

    // A new name, then a move, seen on every member.
    let mut named = Vec::new();
    let mut moved = Vec::new();
    for round in 0..10 {
        let name = format!("fresh-{round}");
        let started = Instant::now();
        let handle = nodes[3]
            .spawn_named(name.clone(), Idle::default())
            .await
            .expect("spawn");
        until("a new name everywhere", || {
            nodes.iter().all(|n| n.directory_entry(&name).is_some())
        })
        .await;
        named.push(started.elapsed());
        let started = Instant::now();
        nodes[3]
            .migrate(&handle, NodeId::new("m5").expect("id"))
            .await
            .expect("migrate");
        until("a move everywhere", || {
            nodes.iter().all(|n| {
                n.directory_entry(&name)
                    .is_some_and(|e| e.node.as_str() == "m5")
            })
        })
        .await;
        moved.push(started.elapsed());
    }
    println!(
        "  a new name seen on every member: median {:?} ({:.1} gossip intervals); a move: median {:?} ({:.1})",
        median(named.clone()),
        median(named).as_secs_f64() / GOSSIP.as_secs_f64(),
        median(moved.clone()),
        median(moved).as_secs_f64() / GOSSIP.as_secs_f64(),
    );

    // A drain from another member, gossip meanwhile.
    for i in 0..drained {
        nodes[7]
            .spawn_named(format!("drained-{i}"), Idle::default())
            .await
            .expect("spawn");
    }
    until("the drained actors everywhere", || {
        let last = format!("drained-{}", drained - 1);
        nodes.iter().all(|n| n.directory_entry(&last).is_some())
    })
    .await;
    let draining = nodes.remove(7);
    let before = gossip_total(&nodes) + draining.stats().gossip_bytes_sent;
    let started = Instant::now();
    let report = draining.drain().await.expect("drain");
    let took = started.elapsed();
    let after = gossip_total(&nodes);
    println!(
        "  drain of {} actors: {took:?}; gossip meanwhile {:.1} kB/s over all members ({:.1}x at rest)",
        report.moved.len(),
        after.saturating_sub(before) as f64 / took.as_secs_f64() / 1e3,
        after.saturating_sub(before) as f64 / took.as_secs_f64() / loaded_rate,
    );

    // Failure detection: one member crashes.
    let crashed = nodes.remove(nodes.len() - 1);
    let crashed_id = crashed.id().clone();
    crashed.fault_kill().await;
    let detected = until("every member declares the crash", || {
        nodes.iter().all(|n| !n.members().contains(&crashed_id))
    })
    .await;
    println!(
        "  a crashed member declared failed by every other in {detected:?} ({:.2}x the failure timeout of {FAILURE:?})",
        detected.as_secs_f64() / FAILURE.as_secs_f64(),
    );
    for node in nodes {
        node.shutdown().await;
    }
    lone.shutdown().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let actors = args
        .iter()
        .position(|a| a == "--actors")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(100_000);
    let drained = args
        .iter()
        .position(|a| a == "--drain")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        tokio::spawn(run(actors, drained))
            .await
            .expect("bench task")
    });
}
