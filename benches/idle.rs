//! Idle actors: spawn time and resident memory per actor, each next to its
//! raw baseline (a tokio task holding the receiver of an unbounded mpsc
//! channel, its sender kept by the spawner, as a handle is).
//!
//! - `spawn_idle`: `node.spawn(Counter)` against `tokio::spawn` of the raw
//!   task, the spawner itself a spawned task on a 2-worker runtime (as in
//!   real programs). The spawned actors are stopped outside the timing.
//! - Before the group, resident memory per idle actor for `IDLE_ACTORS`
//!   actors of each kind, each measured in its own child process (this
//!   executable re-run with `MOBILITY_IDLE_CHILD`), from `/proc/self/statm`
//!   before and after, printed to stderr.
//!
//! Target (from the issue): spawn within 2x raw; 3 KiB per idle actor.
//!
//! Run: `cargo bench --bench idle` (`IDLE_ACTORS=1000000` for the million).

mod common;

use std::time::{Duration, Instant};

use common::Counter;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mobility::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// Set in a child process: which kind of actor it measures.
const CHILD: &str = "MOBILITY_IDLE_CHILD";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("multi-thread runtime")
}

async fn node() -> Node {
    Node::builder()
        .id("bench")
        .start()
        .await
        .expect("node starts")
}

/// A raw idle actor: a task waiting on its mailbox.
fn spawn_raw() -> mpsc::UnboundedSender<u64> {
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    tokio::spawn(async move {
        let mut count = 0u64;
        while let Some(n) = rx.recv().await {
            count += n;
        }
        count
    });
    tx
}

/// In a child: spawns `count` idle actors of `kind` from a spawned task
/// and prints resident bytes per actor.
fn child(kind: &str, count: usize) {
    let rt = runtime();
    let node = rt.block_on(node());
    let mobility = kind == "mobility";
    let (before, after, took) = rt.block_on(async move {
        tokio::spawn(async move {
            let mut handles = Vec::with_capacity(count);
            let mut raws = Vec::with_capacity(count);
            // Let the node settle before the first reading.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let before = common::resident_bytes();
            let started = Instant::now();
            for _ in 0..count {
                if mobility {
                    handles.push(node.spawn(Counter::default()).await.expect("spawn"));
                } else {
                    raws.push(spawn_raw());
                }
            }
            let took = started.elapsed();
            // Every task has run to its first wait.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = common::resident_bytes();
            std::mem::forget((handles, raws, node));
            (before, after, took)
        })
        .await
        .expect("spawner task")
    });
    let per = (after - before) as f64 / count as f64;
    eprintln!(
        "idle_memory/{kind}: {count} actors, {per:.0} B per actor (resident {:.1} MiB -> {:.1} MiB), spawned in {:.2?} ({:.2} us each)",
        before as f64 / (1 << 20) as f64,
        after as f64 / (1 << 20) as f64,
        took,
        took.as_secs_f64() * 1e6 / count as f64,
    );
    std::process::exit(0);
}

/// Runs each kind in its own child process.
fn idle_memory() {
    let count: usize = std::env::var("IDLE_ACTORS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let exe = std::env::current_exe().expect("bench executable");
    for kind in ["raw", "mobility"] {
        let status = std::process::Command::new(&exe)
            .env(CHILD, kind)
            .env("IDLE_ACTORS", count.to_string())
            .status()
            .expect("child runs");
        assert!(status.success(), "{kind} child failed");
    }
}

fn spawn_idle(c: &mut Criterion) {
    if let Ok(kind) = std::env::var(CHILD) {
        let count = std::env::var("IDLE_ACTORS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        child(&kind, count);
    }
    idle_memory();
    let mut group = c.benchmark_group("spawn_idle");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    let rt = runtime();
    let node = rt.block_on(node());
    group.bench_function(BenchmarkId::new("handle", "multi_thread_in_task"), |b| {
        b.iter_custom(|iters| {
            let node = node.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let mut handles = Vec::with_capacity(iters as usize);
                    let started = Instant::now();
                    for _ in 0..iters {
                        handles.push(node.spawn(Counter::default()).await.expect("spawn"));
                    }
                    let took = started.elapsed();
                    for handle in handles {
                        handle.stop().await.expect("stop");
                    }
                    took
                })
                .await
                .expect("spawner task")
            })
        })
    });
    group.bench_function(BenchmarkId::new("raw", "multi_thread_in_task"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                tokio::spawn(async move {
                    let mut raws = Vec::with_capacity(iters as usize);
                    let started = Instant::now();
                    for _ in 0..iters {
                        raws.push(spawn_raw());
                    }
                    let took = started.elapsed();
                    drop(raws);
                    tokio::task::yield_now().await;
                    took
                })
                .await
                .expect("spawner task")
            })
        })
    });
    rt.block_on(node.shutdown());
    group.finish();
}

criterion_group!(benches, spawn_idle);
criterion_main!(benches);
