//! Draining a node. Each figure is
//! measured next to its baseline in the same run and the same runtime (one
//! multi-thread tokio runtime, 2 workers).
//!
//! Groups:
//! - `drain_10000` (and `drain_100000`, run only with `DRAIN_BENCH_LARGE=1`:
//!   it takes minutes): each iteration builds a fresh cluster of three
//!   members on loopback (`b` the seed, `c`, and the source `s`; default
//!   gossip interval, 100 ms), spawns N small actors (`Small`, five fields)
//!   on `s`, and times `s.drain()`, which moves every one of them to `b`
//!   and `c` over TCP (a full prepare/commit handover each), waits for them
//!   to land, hands over the forwarders, leaves the cluster, lets the
//!   forwarders go quiet (3 gossip intervals, a fixed 300 ms of the figure)
//!   and stops `s`. The baseline, timed in the same iteration on the same
//!   cluster, is `spawn_on_destination`: spawning the same N actors on `b`,
//!   the work of creating them where they land, without moving anything.
//!   Their difference is what the moves themselves cost. The printed lines
//!   also give the drain's `took` split into the moves and the leave.
//!
//! Idle actors, up to 1,000,000 on one node: `benches/idle.rs`.
//!
//! Run: `cargo bench --bench drain`; `DRAIN_BENCH_ONCE=N` runs one round
//! of a drain of N actors and prints it (for profiles and quick figures).

mod common;

use common::{small, Small};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use mobility::prelude::*;
use tokio::runtime::Runtime;

const SECRET: &str = "benchmark cluster secret";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("multi-thread runtime")
}

fn member(id: &str, seed: Option<&str>) -> mobility::NodeBuilder {
    let builder = Node::builder()
        .id(id)
        .cluster("drain", SECRET)
        .listen("127.0.0.1:0")
        .request_timeout(Duration::from_secs(120))
        .migration_timeout(Duration::from_secs(120));
    match seed {
        Some(seed) => builder.join(seed),
        None => builder,
    }
}

async fn wait_for(what: &str, patience: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One iteration: (drain, spawn baseline, report's took split).
struct Round {
    drain: Duration,
    spawn: Duration,
}

async fn round(n: usize) -> Round {
    let b = member("b", None).start().await.expect("b starts");
    let seed = b.listen_addr().expect("b listens").to_string();
    let c = member("c", Some(&seed)).start().await.expect("c joins");
    let s = member("s", Some(&seed)).start().await.expect("s joins");
    for node in [&b, &c, &s] {
        wait_for(
            "every member sees every other",
            Duration::from_secs(20),
            || node.members().len() == 3,
        )
        .await;
    }
    let mut handles: Vec<Handle<Small>> = Vec::with_capacity(n);
    for _ in 0..n {
        handles.push(s.spawn(small()).await.expect("spawn on s"));
    }
    // Let the directory show them everywhere before the drain.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Baseline: the same number of actors created on a destination.
    let started = Instant::now();
    let mut made: Vec<Handle<Small>> = Vec::with_capacity(n);
    for _ in 0..n {
        made.push(b.spawn(small()).await.expect("spawn on b"));
    }
    let spawn = started.elapsed();
    for h in made {
        h.stop().await.expect("stop");
    }

    let started = Instant::now();
    let report = s.drain().await.expect("drain");
    let drain = started.elapsed();
    assert_eq!(report.moved.len(), n, "every actor moved");
    // Nothing lost, never two copies: every actor lives on exactly one
    // destination.
    for h in &handles {
        assert!(b.hosts(h.id()) ^ c.hosts(h.id()), "one home for each actor");
    }
    eprintln!(
        "  drain of {n}: {:?} (report took {:?}); spawn of {n} on a destination: {:?}; ratio {:.2}",
        drain,
        report.took,
        spawn,
        drain.as_secs_f64() / spawn.as_secs_f64()
    );
    drop(handles);
    c.shutdown().await;
    b.shutdown().await;
    Round { drain, spawn }
}

fn drain_group(c: &mut Criterion, rt: &Runtime, n: usize) {
    let mut group = c.benchmark_group(format!("drain_{n}"));
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    // One round gives both figures: run the rounds once, report each.
    let mut rounds = Vec::new();
    group.bench_function("drain", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let r = rt.block_on(async { tokio::spawn(round(n)).await.expect("round") });
                total += r.drain;
                rounds.push(r.spawn);
            }
            total
        })
    });
    let mut spawns = rounds.into_iter();
    group.bench_function("spawn_on_destination", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += match spawns.next() {
                    Some(d) => d,
                    None => {
                        rt.block_on(async { tokio::spawn(round(n)).await.expect("round").spawn })
                    }
                };
            }
            total
        })
    });
    group.finish();
}

fn main() {
    let rt = runtime();
    // `DRAIN_BENCH_ONCE=N`: one round of a drain of N actors, printed, no
    // criterion (for profiles and quick before/after figures).
    if let Some(n) = std::env::var("DRAIN_BENCH_ONCE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        rt.block_on(async { tokio::spawn(round(n)).await.expect("round") });
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    drain_group(&mut c, &rt, 10_000);
    if std::env::var("DRAIN_BENCH_LARGE").is_ok_and(|v| v == "1") {
        drain_group(&mut c, &rt, 100_000);
    }
    drop(rt);
    c.final_summary();
}
