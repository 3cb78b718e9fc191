//! Inside one cluster: migration freeze time for small state, directory
//! lookups, and the first message of a sender whose route went stale
//! (forwarded once through the actor's old node) against a direct one. Each
//! figure is measured next to its baseline in the same run and the same
//! runtime (one multi-thread tokio runtime, 2 workers).
//!
//! Three members `a`, `b`, `c` of one cluster on loopback, joined by gossip
//! through `a` (gossip every 50 ms, so membership converges in well under a
//! second; links are dialed on first use). Two nodes `p`, `q` of no cluster,
//! linked in process (no TCP transport), give the in-process baseline.
//!
//! Each group first runs a fixed number of operations, interleaved with its
//! baselines (in blocks of 100, or pairwise in `cluster_forwarding`, so that
//! load drift on the shared machine hits all alike), and prints to stdout
//! the distribution of each figure (median, p99, max) and the ratios of
//! medians; criterion then times the same
//! operations (means with confidence intervals). Every operation runs in a
//! task on a worker thread, not on criterion's `block_on` thread.
//!
//! Groups:
//! - `cluster_migration_small`: a small actor (the `Small` of
//!   `benches/remote.rs`) moves `a` -> `b` and back with
//!   `Destination::node`, each move asked of the node hosting it. The
//!   printed figure is the report's `freeze` (with its phases: capture,
//!   prepare of which restore, commit) and the wall time of `Node::migrate`;
//!   baselines: the same moves between `p` and `q` (in-process link), and a
//!   request/reply round trip from `a` to a counter on `b` over the same TCP
//!   link (and from `p` to `q` in process). Criterion times the `migrate`
//!   calls (`migrate_tcp`, `migrate_in_process`), their freeze
//!   (`freeze_tcp`: the sum of the reports' `freeze`), and the round trips.
//!   Target: freeze under 200 us (median).
//! - `cluster_lookup`: `Node::lookup` of a counter named on `b`, from `c`
//!   (`lookup_directory`: read from the gossip state) and from `b`
//!   (`lookup_local`: the node's own name table); for scale, a request/reply
//!   round trip from `c` to the counter.
//! - `cluster_forwarding`: a counter alternates between `a` and `b` (moved
//!   by the node hosting it); `c` holds a handle and does not take part in
//!   the move, so its route goes stale each time. `first_forwarded` is `c`'s
//!   first request after the move (it goes to the old node, which forwards it
//!   and tells `c` where the actor is now), `second_direct` the next request
//!   once `c`'s route is corrected. Only the requests are timed, not the
//!   migration nor the wait for the correction; every iteration checks that
//!   the old node forwarded exactly the first one. The printed loop also
//!   times a third request (direct again), to show what the second one
//!   still pays for the move having just happened.
//!
//! Run: `cargo bench --bench cluster`.

mod common;

use common::{micros, ratio, small, Counter, Samples, Small};
use std::future::Future;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mobility::prelude::*;
use tokio::runtime::Runtime;

const SECRET: &str = "benchmark cluster secret";

/// Operations per figure in the printed distributions.
const OPS: usize = 1000;

/// Block size of the interleaving of figures and baselines.
const BLOCK: usize = 100;

/// Iterations of the forwarding loop before anything is recorded (links are
/// dialed on first use, routes learned).
const WARM: usize = 50;

/// The phases of a series of migrations.
#[derive(Default)]
struct Phases {
    freeze: Samples,
    capture: Samples,
    prepare: Samples,
    restore: Samples,
    commit: Samples,
    migrate: Samples,
    snapshot_bytes: u64,
}

impl Phases {
    fn record(&mut self, report: &MigrationReport, wall: Duration) {
        self.freeze.push(report.freeze);
        self.capture.push(report.capture);
        self.prepare.push(report.prepare);
        self.restore.push(report.restore);
        self.commit.push(report.commit);
        self.migrate.push(wall);
        self.snapshot_bytes = report.snapshot_bytes;
    }

    fn print_phases(&mut self, label: &str) {
        println!(
            "  {label}: medians: freeze {} = capture {} + prepare {} (of which restore {}) + commit {}; snapshot {} B",
            micros(self.freeze.median()),
            micros(self.capture.median()),
            micros(self.prepare.median()),
            micros(self.restore.median()),
            micros(self.commit.median()),
            self.snapshot_bytes,
        );
    }
}

// ---------------------------------------------------------------------------
// The nodes.

fn member(id: &str, seed: Option<&str>) -> mobility::NodeBuilder {
    let builder = Node::builder()
        .id(id)
        .cluster("bench", SECRET)
        .listen("127.0.0.1:0")
        .gossip_interval(Duration::from_millis(50))
        .request_timeout(Duration::from_secs(60))
        .migration_timeout(Duration::from_secs(60));
    match seed {
        Some(seed) => builder.join(seed),
        None => builder,
    }
}

/// Polls `check` (yielding in between) until it holds; panics after `patience`.
async fn wait_for(what: &str, patience: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::task::yield_now().await;
    }
}

/// Looks `name` up on `node` until the directory has it.
async fn lookup_eventually<A: Actor>(node: &Node, name: &str) -> Handle<A> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match node.lookup::<A>(name).await {
            Ok(handle) => return handle,
            Err(Error::NameNotFound { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("lookup of {name} on {}: {e}", node.id()),
        }
    }
}

/// The nodes, and the runtime they run on (dropped last).
struct Setup {
    a: Node,
    b: Node,
    c: Node,
    p: Node,
    q: Node,
    rt: Runtime,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("multi-thread runtime");
    let (a, b, c, p, q) = rt.block_on(async {
        let started = Instant::now();
        let a = member("a", None).start().await.expect("a starts");
        let seed = a.listen_addr().expect("a listens").to_string();
        let b = member("b", Some(&seed)).start().await.expect("b joins");
        let c = member("c", Some(&seed)).start().await.expect("c joins");
        for node in [&a, &b, &c] {
            wait_for(
                "every member sees every other",
                Duration::from_secs(10),
                || node.members().len() == 3,
            )
            .await;
        }
        println!("cluster of 3 converged in {:?}", started.elapsed());
        let in_process = |id: &str| {
            Node::builder()
                .id(id)
                .request_timeout(Duration::from_secs(60))
                .migration_timeout(Duration::from_secs(60))
                .start()
        };
        let p = in_process("p").await.expect("p starts");
        let q = in_process("q").await.expect("q starts");
        p.connect_in_process(&q).expect("link p - q");
        (a, b, c, p, q)
    });
    Setup { a, b, c, p, q, rt }
}

/// Runs `f` as a task on a worker thread and waits for it.
fn on_worker<T, F>(rt: &Runtime, f: F) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    rt.block_on(async { tokio::spawn(f).await.expect("task") })
}

/// Moves `handle`'s actor to whichever of `x`, `y` it is not on, asked of
/// the node hosting it; the report and the wall time of the call.
async fn move_once<A: Actor>(
    x: &Node,
    y: &Node,
    handle: &Handle<A>,
) -> (MigrationReport, Duration) {
    let (from, to) = if x.hosts(handle.id()) { (x, y) } else { (y, x) };
    let started = Instant::now();
    let report = from
        .migrate(handle, Destination::node(to.id().clone()))
        .await
        .expect("migrates");
    let wall = started.elapsed();
    assert_eq!(&report.to, to.id());
    (report, wall)
}

async fn round_trip(handle: &Handle<Counter>) -> Duration {
    let started = Instant::now();
    handle.add(1).await.expect("add");
    started.elapsed()
}

// ---------------------------------------------------------------------------
// Group 1: migration freeze time.

fn migration(c: &mut Criterion, s: &Setup) {
    let rt = &s.rt;
    let (a, b, p, q) = (s.a.clone(), s.b.clone(), s.p.clone(), s.q.clone());
    let (mover_tcp, mover_mem, rr_tcp, rr_mem) = rt.block_on(async {
        let mover_tcp = a.spawn(small()).await.expect("spawn on a");
        let mover_mem = p.spawn(small()).await.expect("spawn on p");
        let on_b = b.spawn(Counter::default()).await.expect("spawn on b");
        let rr_tcp = a.bind(&on_b).expect("bind at a");
        let on_q = q.spawn(Counter::default()).await.expect("spawn on q");
        let rr_mem = p.bind(&on_q).expect("bind at p");
        assert_eq!(rr_tcp.add(0).await, Ok(0), "a -> b link up");
        assert_eq!(rr_mem.add(0).await, Ok(0));
        (mover_tcp, mover_mem, rr_tcp, rr_mem)
    });

    // The printed distributions.
    let (mut tcp, mut mem, mut rtt_tcp, mut rtt_mem) = on_worker(rt, {
        let (a, b, p, q) = (a.clone(), b.clone(), p.clone(), q.clone());
        let (mover_tcp, mover_mem) = (mover_tcp.clone(), mover_mem.clone());
        let (rr_tcp, rr_mem) = (rr_tcp.clone(), rr_mem.clone());
        async move {
            // Warm up: the a <-> b link both ways, code paths, allocators.
            for _ in 0..WARM {
                move_once(&a, &b, &mover_tcp).await;
                move_once(&p, &q, &mover_mem).await;
            }
            let mut tcp = Phases::default();
            let mut mem = Phases::default();
            let (mut rtt_tcp, mut rtt_mem) = (Samples::default(), Samples::default());
            for _ in 0..OPS / BLOCK {
                for _ in 0..BLOCK {
                    let (report, wall) = move_once(&a, &b, &mover_tcp).await;
                    tcp.record(&report, wall);
                }
                for _ in 0..BLOCK {
                    let (report, wall) = move_once(&p, &q, &mover_mem).await;
                    mem.record(&report, wall);
                }
                for _ in 0..BLOCK {
                    rtt_tcp.push(round_trip(&rr_tcp).await);
                }
                for _ in 0..BLOCK {
                    rtt_mem.push(round_trip(&rr_mem).await);
                }
            }
            (tcp, mem, rtt_tcp, rtt_mem)
        }
    });
    println!("\ncluster_migration_small: {OPS} of each, interleaved in blocks of {BLOCK}");
    println!(
        "{}",
        tcp.freeze.line("freeze, in cluster over TCP (a <-> b)")
    );
    println!("{}", mem.freeze.line("freeze, in-process link (p <-> q)"));
    println!("{}", tcp.migrate.line("migrate call, in cluster over TCP"));
    println!("{}", mem.migrate.line("migrate call, in-process link"));
    println!("{}", rtt_tcp.line("request/reply a -> b, same TCP link"));
    println!("{}", rtt_mem.line("request/reply p -> q, in-process link"));
    let freeze = tcp.freeze.median();
    println!(
        "  ratios of medians: freeze TCP / in-process {:.2}x; freeze TCP / request-reply TCP {:.2}x; \
         migrate TCP / in-process {:.2}x; request-reply TCP / in-process {:.2}x",
        ratio(freeze, mem.freeze.median()),
        ratio(freeze, rtt_tcp.median()),
        ratio(tcp.migrate.median(), mem.migrate.median()),
        ratio(rtt_tcp.median(), rtt_mem.median()),
    );
    println!(
        "  target: freeze median under 200 us: {} ({})",
        if freeze < Duration::from_micros(200) {
            "met"
        } else {
            "missed"
        },
        micros(freeze),
    );
    tcp.print_phases("in cluster over TCP");
    mem.print_phases("in-process link");
    println!();

    let mut group = c.benchmark_group("cluster_migration_small");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.sample_size(30);
    let moves = |x: &Node, y: &Node, handle: &Handle<Small>, freeze_only: bool| {
        let (x, y, handle) = (x.clone(), y.clone(), handle.clone());
        move |iters: u64| {
            let (x, y, handle) = (x.clone(), y.clone(), handle.clone());
            async move {
                tokio::spawn(async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (report, wall) = move_once(&x, &y, &handle).await;
                        total += if freeze_only { report.freeze } else { wall };
                    }
                    total
                })
                .await
                .expect("task")
            }
        }
    };
    let trips = |handle: &Handle<Counter>| {
        let handle = handle.clone();
        move |iters: u64| {
            let handle = handle.clone();
            async move {
                tokio::spawn(async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        handle.add(1).await.expect("add");
                    }
                    started.elapsed()
                })
                .await
                .expect("task")
            }
        }
    };
    group.bench_function("migrate_tcp", |bencher| {
        bencher
            .to_async(rt)
            .iter_custom(moves(&a, &b, &mover_tcp, false))
    });
    group.bench_function("freeze_tcp", |bencher| {
        bencher
            .to_async(rt)
            .iter_custom(moves(&a, &b, &mover_tcp, true))
    });
    group.bench_function("migrate_in_process", |bencher| {
        bencher
            .to_async(rt)
            .iter_custom(moves(&p, &q, &mover_mem, false))
    });
    group.bench_function("request_reply_tcp", |bencher| {
        bencher.to_async(rt).iter_custom(trips(&rr_tcp))
    });
    group.bench_function("request_reply_in_process", |bencher| {
        bencher.to_async(rt).iter_custom(trips(&rr_mem))
    });
    group.finish();

    rt.block_on(async {
        assert_eq!(mover_tcp.count().await, Ok(42), "state intact");
        assert_eq!(mover_mem.count().await, Ok(42), "state intact");
        mover_tcp.stop().await.expect("stop");
        mover_mem.stop().await.expect("stop");
        rr_tcp.stop().await.expect("stop");
        rr_mem.stop().await.expect("stop");
    });
}

// ---------------------------------------------------------------------------
// Group 2: lookups.

const LOOKED_UP: &str = "looked-up";

fn lookup(c: &mut Criterion, s: &Setup) {
    let rt = &s.rt;
    let (b, cn) = (s.b.clone(), s.c.clone());
    let (on_b, from_c) = rt.block_on(async {
        let on_b = b
            .spawn_named(LOOKED_UP, Counter::default())
            .await
            .expect("spawn named on b");
        let from_c = lookup_eventually::<Counter>(&cn, LOOKED_UP).await;
        assert_eq!(from_c.id(), on_b.id());
        assert_eq!(from_c.location(), *b.id(), "the directory says b");
        assert_eq!(from_c.add(0).await, Ok(0), "c -> b link up");
        (on_b, from_c)
    });

    let (mut directory, mut local, mut rtt) = on_worker(rt, {
        let (b, cn, from_c) = (b.clone(), cn.clone(), from_c.clone());
        async move {
            let (mut directory, mut local, mut rtt) =
                (Samples::default(), Samples::default(), Samples::default());
            for _ in 0..OPS / BLOCK {
                for _ in 0..BLOCK {
                    let started = Instant::now();
                    let found = cn.lookup::<Counter>(LOOKED_UP).await.expect("found");
                    directory.push(started.elapsed());
                    assert_eq!(found.location(), *b.id());
                }
                for _ in 0..BLOCK {
                    let started = Instant::now();
                    let found = b.lookup::<Counter>(LOOKED_UP).await.expect("found");
                    local.push(started.elapsed());
                    assert_eq!(found.location(), *b.id());
                }
                for _ in 0..BLOCK {
                    rtt.push(round_trip(&from_c).await);
                }
            }
            (directory, local, rtt)
        }
    });
    println!("\ncluster_lookup: {OPS} of each, interleaved in blocks of {BLOCK}");
    println!("{}", directory.line("lookup on c (directory, actor on b)"));
    println!("{}", local.line("lookup on b (local table, actor on b)"));
    println!("{}", rtt.line("request/reply c -> b over TCP"));
    println!(
        "  ratios of medians: directory / local {:.2}x; request-reply / directory lookup {:.1}x\n",
        ratio(directory.median(), local.median()),
        ratio(rtt.median(), directory.median()),
    );

    let mut group = c.benchmark_group("cluster_lookup");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.sample_size(30);
    let lookups = |node: &Node| {
        let node = node.clone();
        move |iters: u64| {
            let node = node.clone();
            async move {
                tokio::spawn(async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let found = node.lookup::<Counter>(LOOKED_UP).await.expect("found");
                        std::hint::black_box(found);
                    }
                    started.elapsed()
                })
                .await
                .expect("task")
            }
        }
    };
    group.bench_function("lookup_directory", |bencher| {
        bencher.to_async(rt).iter_custom(lookups(&cn))
    });
    group.bench_function("lookup_local", |bencher| {
        bencher.to_async(rt).iter_custom(lookups(&b))
    });
    group.bench_function("request_reply_tcp", |bencher| {
        bencher.to_async(rt).iter_custom(|iters| {
            let from_c = from_c.clone();
            async move {
                tokio::spawn(async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        from_c.add(1).await.expect("add");
                    }
                    started.elapsed()
                })
                .await
                .expect("task")
            }
        })
    });
    group.finish();

    rt.block_on(async {
        drop(from_c);
        on_b.stop().await.expect("stop");
    });
}

// ---------------------------------------------------------------------------
// Group 3: the first forwarded message against a direct one.

/// The actor moves between `x` and `y`, `from_c` (on a node that takes no
/// part) goes stale; the latency of its first request (forwarded once) and
/// of its second (direct, after the correction).
#[derive(Clone)]
struct Hops {
    x: Node,
    y: Node,
    mover: Handle<Counter>,
    from_c: Handle<Counter>,
}

impl Hops {
    async fn once(&self) -> (Duration, Duration) {
        let (from, to) = if self.x.hosts(self.mover.id()) {
            (&self.x, &self.y)
        } else {
            (&self.y, &self.x)
        };
        from.migrate(&self.mover, Destination::node(to.id().clone()))
            .await
            .expect("migrates");
        assert_eq!(self.from_c.location(), *from.id(), "c's route is stale");
        let before = from.stats().forwarded_messages;

        let started = Instant::now();
        self.from_c.add(1).await.expect("first request");
        let first = started.elapsed();

        let to_id = to.id().clone();
        wait_for("c's route corrected", Duration::from_secs(10), || {
            self.from_c.location() == to_id
        })
        .await;

        let started = Instant::now();
        self.from_c.add(1).await.expect("second request");
        let second = started.elapsed();

        assert_eq!(
            from.stats().forwarded_messages,
            before + 1,
            "the old node forwarded the first request only"
        );
        (first, second)
    }

    /// `once`, then a third request (direct, as the second): whether the
    /// second still pays for the move.
    async fn once_and_third(&self) -> (Duration, Duration, Duration) {
        let (first, second) = self.once().await;
        let started = Instant::now();
        self.from_c.add(1).await.expect("third request");
        (first, second, started.elapsed())
    }
}

fn forwarding(c: &mut Criterion, s: &Setup) {
    let rt = &s.rt;
    let hops = rt.block_on(async {
        let mover =
            s.a.spawn_named("hops", Counter::default())
                .await
                .expect("spawn named on a");
        let from_c = lookup_eventually::<Counter>(&s.c, "hops").await;
        assert_eq!(from_c.id(), mover.id());
        assert_eq!(from_c.add(0).await, Ok(0), "c -> a link up");
        Hops {
            x: s.a.clone(),
            y: s.b.clone(),
            mover,
            from_c,
        }
    });

    let (mut first, mut second, mut third) = on_worker(rt, {
        let hops = hops.clone();
        async move {
            for _ in 0..WARM {
                hops.once().await;
            }
            let (mut first, mut second, mut third) =
                (Samples::default(), Samples::default(), Samples::default());
            for _ in 0..OPS {
                let (f, s, t) = hops.once_and_third().await;
                first.push(f);
                second.push(s);
                third.push(t);
            }
            (first, second, third)
        }
    });
    println!("\ncluster_forwarding: {OPS} moves a <-> b, each followed by two requests from c");
    println!(
        "{}",
        first.line("first request, stale route (forwarded once)")
    );
    println!(
        "{}",
        second.line("second request, corrected route (direct)")
    );
    println!("{}", third.line("third request (direct)"));
    println!(
        "  ratios of medians: forwarded / direct (second) {:.2}x (+{}); forwarded / third {:.2}x; \
         second / third {:.2}x\n",
        ratio(first.median(), second.median()),
        micros(first.median().saturating_sub(second.median())),
        ratio(first.median(), third.median()),
        ratio(second.median(), third.median()),
    );

    let mut group = c.benchmark_group("cluster_forwarding");
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    group.sample_size(20);
    let timed = |take_first: bool| {
        let hops = hops.clone();
        move |iters: u64| {
            let hops = hops.clone();
            async move {
                tokio::spawn(async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (first, second) = hops.once().await;
                        total += if take_first { first } else { second };
                    }
                    total
                })
                .await
                .expect("task")
            }
        }
    };
    group.bench_function("first_forwarded", |bencher| {
        bencher.to_async(rt).iter_custom(timed(true))
    });
    group.bench_function("second_direct", |bencher| {
        bencher.to_async(rt).iter_custom(timed(false))
    });
    group.finish();

    rt.block_on(async {
        hops.mover.stop().await.expect("stop");
    });
}

fn cluster(c: &mut Criterion) {
    let started = Instant::now();
    let s = setup();
    migration(c, &s);
    lookup(c, &s);
    forwarding(c, &s);
    s.rt.block_on(async {
        for node in [&s.a, &s.b, &s.c, &s.p, &s.q] {
            node.shutdown().await;
        }
    });
    println!("whole run: {:.1} s", started.elapsed().as_secs_f64());
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = cluster
}
criterion_main!(benches);
