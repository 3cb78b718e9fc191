//! Migrations under a steady client load: the freeze time of each move (the
//! report's `freeze`: median, p99, max), inside the cluster and to another
//! cluster, and the latency the clients see while the actor moves against
//! their latency under the same load without moves, measured in the same
//! run and the same runtime (one multi-thread tokio runtime, 2 workers).
//!
//! Nodes: `a`, `b`, `c` of the cluster "home" (joined by gossip through `a`,
//! every 50 ms) and `x` of the cluster "away", all on loopback TCP; the two
//! clusters trust each other (as in `tests/soak.rs`). A small actor (the
//! `Small` of `benches/cluster.rs`, with an `add`) starts on `a`.
//!
//! The load: `CLIENTS` tasks, two on each home node, each with its own
//! handle bound there, do request/reply in a closed loop for the whole run:
//! each awaits its reply, pauses `THINK` (1 ms, so about 900 requests a
//! second each; `UNDER_LOAD_THINK_US=0` for no pause), then sends the next.
//! Every request's start and end are recorded. Without the pause, a client
//! on the node hosting the actor (a local round trip, under 1 us) takes
//! nearly all requests and a worker thread, and the figures describe that
//! client and the starved rest rather than the moves.
//!
//! A driver on its own OS thread (so that moves start at any point of
//! tokio's 1 ms timer tick, not in step with the clients' pauses) moves the
//! actor, each move asked of the node hosting it (the `migrate` call ends
//! with the commit acknowledgement), and marks the measurement windows.
//! `ROUNDS` rounds, each of four phases in turn (so that load drift on the
//! shared machine hits all alike):
//! - A, the load alone: the actor rests `SEGMENT` on each of `a`, `b`, `c`
//!   (baseline of B) and `3 * SEGMENT` on `x` (with the home segments, the
//!   baseline of C, which spends half its time on each side). It is moved
//!   between segments, and each window opens `SETTLE` after the move.
//! - B, moves inside the cluster: `MOVES` moves `a -> b -> c -> a ...`
//!   (`Destination::node`), one every 10 to 20 ms.
//! - C, moves across: `MOVES` moves alternately out to `x` (`tcp://` its
//!   address) and back in to the next home node (`tcp://` that node's
//!   address), one every 10 to 20 ms.
//! - D, no load (the freeze's own baseline): the clients pause, and
//!   `QUIET_MOVES` moves of each kind as in B and C follow, then as many
//!   back to back (as in `benches/cluster.rs`: the worker threads have no
//!   time to park between moves).
//!
//! A request counts in a window if it starts and ends inside it; in B and C
//! it "overlaps a move" if it was in flight at any moment of a `migrate`
//! call (the call holds the freeze and is a little longer), else it is
//! "just after a move" if it started less than `AFTER` (2 ms) after one
//! ended (a client's first request after a move goes to the old node, which
//! forwards it). A second table leaves out the requests of clients on the
//! node the actor was on when they started, or was moving to while they
//! were in flight (local round trips).
//!
//! Printed: client latency per phase (median, p99, max, throughput), split
//! in B and C into requests that overlapped a move, those just after one,
//! and the rest; freeze times per kind of move, under load and without;
//! ratios against the baselines. At the end the actor's count is checked
//! against the replies the clients received (every request handled exactly
//! once). No criterion: the figures are distributions under load, which
//! its timing loop would not add to.
//!
//! Run: `cargo bench --bench under_load` (about 35 s).

mod common;

use common::{micros, ratio, small, tcp, Samples, Small};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mobility::prelude::*;
use tokio::runtime::Runtime;

const HOME_SECRET: &str = "benchmark home secret";
const AWAY_SECRET: &str = "benchmark away secret";
const FEDERATION: &str = "benchmark federation";

/// Client tasks of the load (`i % 3` gives the home node).
const CLIENTS: usize = 6;

/// A client's pause between a reply and its next request (default).
const THINK: Duration = Duration::from_millis(1);

/// Rounds of the three phases.
const ROUNDS: usize = 4;

/// Moves per phase and round (B and C).
const MOVES: usize = 125;

/// Moves of each kind per round with the clients paused (D).
const QUIET_MOVES: usize = 50;

/// How long the actor rests on each home node in phase A (on `x`: three
/// times that).
const SEGMENT: Duration = Duration::from_millis(400);

/// Time between a repositioning move and the window after it (stale routes
/// get corrected).
const SETTLE: Duration = Duration::from_millis(50);

/// Moves of each kind under load before anything is recorded.
const WARM: usize = 20;

/// A client gives up after this many failed requests.
const MAX_ERRORS: usize = 1000;

/// A request that starts within this time after a move ended (and did not
/// overlap the next) counts as "just after a move": the first request of a
/// client whose route went stale is forwarded by the old node.
const AFTER: Duration = Duration::from_millis(2);

/// `ours / baseline` for median, p99 and max.
fn ratios(ours: &Samples, baseline: &Samples) -> String {
    let (o, b) = (ours.figures(), baseline.figures());
    format!(
        "{:>9.2}x {:>9.2}x {:>9.2}x",
        ratio(o[0], b[0]),
        ratio(o[1], b[1]),
        ratio(o[2], b[2])
    )
}

// ---------------------------------------------------------------------------
// The nodes.

fn builder(id: &str, cluster: &str, secret: &str, trusted: &str) -> mobility::NodeBuilder {
    Node::builder()
        .id(id)
        .cluster(cluster, secret)
        .trust_cluster(trusted, FEDERATION)
        .listen("127.0.0.1:0")
        .gossip_interval(Duration::from_millis(50))
        .request_timeout(Duration::from_secs(10))
        .migration_timeout(Duration::from_secs(10))
}

fn start_nodes(rt: &Runtime) -> ([Node; 3], Node) {
    rt.block_on(async {
        let started = Instant::now();
        let a = builder("a", "home", HOME_SECRET, "away")
            .start()
            .await
            .expect("a starts");
        let seed = a.listen_addr().expect("a listens").to_string();
        let b = builder("b", "home", HOME_SECRET, "away")
            .join(&seed)
            .start()
            .await
            .expect("b joins");
        let c = builder("c", "home", HOME_SECRET, "away")
            .join(&seed)
            .start()
            .await
            .expect("c joins");
        let x = builder("x", "away", AWAY_SECRET, "home")
            .start()
            .await
            .expect("x starts");
        for node in [&a, &b, &c] {
            let deadline = Instant::now() + Duration::from_secs(10);
            while node.members().len() < 3 {
                assert!(Instant::now() < deadline, "membership");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        println!("cluster of 3 converged in {:?}", started.elapsed());
        ([a, b, c], x)
    })
}

/// Where the actor is: a home node (index) or `x`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Place {
    Home(usize),
    Away,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// A, actor on a home node.
    AloneHome,
    /// A, actor on `x`.
    AloneAway,
    /// B.
    InCluster,
    /// C.
    Cross,
    /// D: moves of both kinds with the clients paused.
    Quiet,
    /// D, the same moves back to back (as in `benches/cluster.rs`).
    QuietBackToBack,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    InCluster,
    Out,
    In,
}

/// One successful `migrate` call, times from the start of the run.
struct Move {
    phase: Option<Phase>,
    kind: Kind,
    to: Place,
    start: Duration,
    end: Duration,
    freeze: Duration,
    queued: u64,
    forwarded_after: u64,
}

/// A measurement window, times from the start of the run.
struct Window {
    phase: Phase,
    start: Duration,
    end: Duration,
    /// Messages the nodes forwarded (stale routes) during the window.
    forwarded: u64,
}

/// What the driver needs; it runs on its own thread.
struct Driver {
    rt: tokio::runtime::Handle,
    home: [Node; 3],
    x: Node,
    to_x: Destination,
    to_home: [Destination; 3],
    handle: Handle<Small>,
    t0: Instant,
    at: Place,
    /// Set while the clients pause (phase D).
    quiet: Arc<AtomicBool>,
    /// xorshift state of the pauses between moves.
    seed: u64,
    moves: Vec<Move>,
    windows: Vec<Window>,
    move_errors: Vec<String>,
}

impl Driver {
    fn node(&self, place: Place) -> &Node {
        match place {
            Place::Home(i) => &self.home[i],
            Place::Away => &self.x,
        }
    }

    fn since(&self) -> Duration {
        self.t0.elapsed()
    }

    fn forwarded(&self) -> u64 {
        self.home
            .iter()
            .chain([&self.x])
            .map(|n| n.stats().forwarded_messages)
            .sum()
    }

    /// Sleeps 10 to 20 ms (uniform, microsecond steps).
    fn pause(&mut self) {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        std::thread::sleep(Duration::from_micros(10_000 + self.seed % 10_000));
    }

    /// Moves the actor to `to`, asked of the node hosting it.
    fn step(&mut self, to: Place, phase: Option<Phase>) {
        let at = self.at;
        if at == to {
            return;
        }
        let (kind, dest) = match (at, to) {
            (Place::Home(_), Place::Home(i)) => (
                Kind::InCluster,
                Destination::node(self.home[i].id().clone()),
            ),
            (Place::Home(_), Place::Away) => (Kind::Out, self.to_x.clone()),
            (Place::Away, Place::Home(i)) => (Kind::In, self.to_home[i].clone()),
            (Place::Away, Place::Away) => unreachable!("same place"),
        };
        let (node, handle) = (self.node(at).clone(), self.handle.clone());
        let start = self.since();
        let outcome = self
            .rt
            .block_on(async move { node.migrate(&handle, dest).await });
        let end = self.since();
        match outcome {
            Ok(report) => {
                assert_eq!(&report.to, self.node(to).id(), "moved where asked");
                self.moves.push(Move {
                    phase,
                    kind,
                    to,
                    start,
                    end,
                    freeze: report.freeze,
                    queued: report.queued_messages,
                    forwarded_after: report.forwarded_messages,
                });
                self.at = to;
            }
            Err(e) => self.move_errors.push(format!(
                "{at:?} -> {to:?} at {:.3} s ({phase:?}), after {}: {e}",
                start.as_secs_f64(),
                micros(end - start),
            )),
        }
    }

    /// The load alone: the actor moved to `to` first, then left there.
    fn rest(&mut self, to: Place, len: Duration) {
        self.step(to, None);
        std::thread::sleep(SETTLE);
        let (start, fwd) = (self.since(), self.forwarded());
        std::thread::sleep(len);
        self.windows.push(Window {
            phase: if to == Place::Away {
                Phase::AloneAway
            } else {
                Phase::AloneHome
            },
            start,
            end: self.since(),
            forwarded: self.forwarded() - fwd,
        });
    }

    /// `moves` moves, one every 10 to 20 ms (back to back unless `spaced`);
    /// `next` picks the destination.
    fn moving(
        &mut self,
        phase: Phase,
        moves: usize,
        spaced: bool,
        mut next: impl FnMut(Place) -> Place,
    ) {
        std::thread::sleep(SETTLE);
        let (start, fwd) = (self.since(), self.forwarded());
        for _ in 0..moves {
            if spaced {
                self.pause();
            }
            let to = next(self.at);
            self.step(to, Some(phase));
        }
        self.pause();
        self.windows.push(Window {
            phase,
            start,
            end: self.since(),
            forwarded: self.forwarded() - fwd,
        });
    }

    fn run(&mut self) {
        // Warm up under load: links both ways, routes, code paths.
        for _ in 0..WARM {
            self.pause();
            let to = next_home(self.at);
            self.step(to, None);
        }
        let mut out_in = across();
        for _ in 0..WARM {
            self.pause();
            let to = out_in(self.at);
            self.step(to, None);
        }
        for round in 0..ROUNDS {
            for k in 0..3 {
                self.rest(Place::Home((round + k) % 3), SEGMENT);
            }
            self.rest(Place::Away, 3 * SEGMENT);

            self.step(Place::Home(round % 3), None);
            self.moving(Phase::InCluster, MOVES, true, next_home);

            self.moving(Phase::Cross, MOVES, true, across());
            // After an odd count (or a refused move) the actor is on x.
            self.step(Place::Home(0), None);

            self.quiet.store(true, Ordering::Relaxed);
            self.moving(Phase::Quiet, QUIET_MOVES, true, next_home);
            self.moving(Phase::Quiet, QUIET_MOVES, true, across());
            self.step(Place::Home(0), None);
            self.moving(Phase::QuietBackToBack, QUIET_MOVES, false, next_home);
            self.moving(Phase::QuietBackToBack, QUIET_MOVES, false, across());
            self.step(Place::Home(0), None);
            self.quiet.store(false, Ordering::Relaxed);
        }
    }
}

/// The next home node after `place` (`a -> b -> c -> a`).
fn next_home(place: Place) -> Place {
    match place {
        Place::Home(i) => Place::Home((i + 1) % 3),
        Place::Away => Place::Home(0),
    }
}

/// Alternately out to `x` and in to the home node after the last one left.
fn across() -> impl FnMut(Place) -> Place {
    let mut last = 0;
    move |at| match at {
        Place::Home(i) => {
            last = i;
            Place::Away
        }
        Place::Away => {
            last = (last + 1) % 3;
            Place::Home(last)
        }
    }
}

// ---------------------------------------------------------------------------
// The load.

/// One request: start and end from the start of the run, the client's home
/// node.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Request {
    start: Duration,
    end: Duration,
    node: usize,
}

/// Tells the clients to stop when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One client's requests and failures.
struct ClientLog {
    requests: Vec<Request>,
    errors: Vec<String>,
}

async fn client(
    node: usize,
    handle: Handle<Small>,
    think: Duration,
    t0: Instant,
    stop: Arc<AtomicBool>,
    quiet: Arc<AtomicBool>,
) -> ClientLog {
    let mut log = ClientLog {
        requests: Vec::with_capacity(1 << 16),
        errors: Vec::new(),
    };
    let name = format!("client on home node {node}");
    let mut last = 0;
    while !stop.load(Ordering::Relaxed) {
        if quiet.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        let start = Instant::now();
        let outcome = handle.add(1).await;
        let end = Instant::now();
        match outcome {
            Ok(count) => {
                log.requests.push(Request {
                    start: start - t0,
                    end: end - t0,
                    node,
                });
                if count <= last {
                    log.errors.push(format!(
                        "{name}: reply {count} after {last} at {:.3} s",
                        (start - t0).as_secs_f64()
                    ));
                }
                last = count;
            }
            Err(e) => {
                log.errors.push(format!(
                    "{name}: request at {:.3} s failed after {}: {e}",
                    (start - t0).as_secs_f64(),
                    micros(end - start)
                ));
                // A call on a node that shut down fails at once, without
                // yielding: without this the loop would hold its worker.
                if log.errors.len() >= MAX_ERRORS {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        if !think.is_zero() {
            tokio::time::sleep(think).await;
        }
    }
    log
}

// ---------------------------------------------------------------------------
// Analysis.

/// Latencies of the requests in some windows.
struct Split {
    all: Samples,
    overlapping: Samples,
    /// Started within `AFTER` after a move (not overlapping one).
    after: Samples,
    /// Neither.
    others: Samples,
    /// Total length of the windows.
    time: Duration,
}

/// The requests of `windows` (start and end inside one) that `keep`
/// accepts, split by whether they overlapped a move of `moves` (sorted by
/// start, disjoint).
fn split(
    requests: &[Request],
    windows: &[&Window],
    moves: &[Move],
    keep: impl Fn(&Request) -> bool,
) -> Split {
    let (mut all, mut over, mut after, mut rest) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut time = Duration::ZERO;
    for w in windows {
        time += w.end - w.start;
        let first = requests.partition_point(|r| r.start < w.start);
        for r in requests[first..].iter().take_while(|r| r.start < w.end) {
            if r.end > w.end || !keep(r) {
                continue;
            }
            let latency = r.end - r.start;
            all.push(latency);
            let m = moves.partition_point(|m| m.end <= r.start);
            if m < moves.len() && moves[m].start < r.end {
                over.push(latency);
            } else if m > 0 && r.start - moves[m - 1].end < AFTER {
                after.push(latency);
            } else {
                rest.push(latency);
            }
        }
    }
    Split {
        all: Samples::sorted(all),
        overlapping: Samples::sorted(over),
        after: Samples::sorted(after),
        others: Samples::sorted(rest),
        time,
    }
}

/// Whether `r` went to another node: the actor was on neither the client's
/// node when the request started nor, if a move was under way during it,
/// the move's destination (the actor runs there before the `migrate` call
/// returns).
fn remote(moves: &[Move], r: &Request) -> bool {
    let client = Place::Home(r.node);
    let next = moves.partition_point(|m| m.end <= r.start);
    let before = match next {
        0 => Place::Home(0),
        i => moves[i - 1].to,
    };
    let arriving = moves
        .get(next)
        .is_some_and(|m| m.start < r.end && m.to == client);
    before != client && !arriving
}

/// `part` as a percentage of `whole`.
fn share(part: &Samples, whole: &Samples) -> f64 {
    100.0 * part.0.len() as f64 / whole.0.len().max(1) as f64
}

fn per_s(s: &Samples, t: Duration) -> f64 {
    s.0.len() as f64 / t.as_secs_f64().max(1e-9)
}

/// Prints the latency rows and ratios of one selection of requests.
fn latency_table(title: &str, log: &Driver, requests: &[Request], keep: impl Fn(&Request) -> bool) {
    let windows = |phases: &[Phase]| -> Vec<&Window> {
        log.windows
            .iter()
            .filter(|w| phases.contains(&w.phase))
            .collect()
    };
    let forwarded = |phase: Phase| -> u64 { windows(&[phase]).iter().map(|w| w.forwarded).sum() };
    let moves = &log.moves;
    let a_home = split(requests, &windows(&[Phase::AloneHome]), moves, &keep);
    let a_away = split(requests, &windows(&[Phase::AloneAway]), moves, &keep);
    let a_all = split(
        requests,
        &windows(&[Phase::AloneHome, Phase::AloneAway]),
        moves,
        &keep,
    );
    let b = split(requests, &windows(&[Phase::InCluster]), moves, &keep);
    let c = split(requests, &windows(&[Phase::Cross]), moves, &keep);
    assert!(
        a_all.overlapping.0.is_empty(),
        "no move inside a phase A window"
    );

    println!("\n  {title:<44}     median        p99        max        n    req/s  forwarded");
    let row = |label: &str, s: &Samples, t: Duration, fwd: Option<u64>| {
        println!(
            "  {label:<44} {}  {:>7.0}  {:>9}",
            s.cells(),
            per_s(s, t),
            fwd.map(|f| f.to_string()).unwrap_or_default(),
        );
    };
    row(
        "A  load alone, actor on a home node",
        &a_home.all,
        a_home.time,
        Some(forwarded(Phase::AloneHome)),
    );
    row(
        "A  load alone, actor on x",
        &a_away.all,
        a_away.time,
        Some(forwarded(Phase::AloneAway)),
    );
    row(
        "A  load alone, both (baseline of C)",
        &a_all.all,
        a_all.time,
        None,
    );
    row(
        "B  moves in the cluster, whole phase",
        &b.all,
        b.time,
        Some(forwarded(Phase::InCluster)),
    );
    row(
        "B    requests overlapping a move",
        &b.overlapping,
        b.time,
        None,
    );
    row("B    the others", &b.others, b.time, None);
    row(
        "C  moves across clusters, whole phase",
        &c.all,
        c.time,
        Some(forwarded(Phase::Cross)),
    );
    row(
        "C    requests overlapping a move",
        &c.overlapping,
        c.time,
        None,
    );
    row("C    the others", &c.others, c.time, None);
    println!(
        "  (overlapping a move: {:.1}% of B's requests, {:.1}% of C's; just after one: {:.1}%, {:.1}%)",
        share(&b.overlapping, &b.all),
        share(&c.overlapping, &c.all),
        share(&b.after, &b.all),
        share(&c.after, &c.all),
    );
    println!("  ratios                                           median        p99        max");
    let rrow = |label: &str, ours: &Samples, base: &Samples| {
        println!("  {label:<44} {}", ratios(ours, base));
    };
    rrow("B whole phase / A (home)", &b.all, &a_home.all);
    rrow(
        "B overlapping a move / A (home)",
        &b.overlapping,
        &a_home.all,
    );
    rrow(
        "B started < 2 ms after a move / A (home)",
        &b.after,
        &a_home.all,
    );
    rrow("B the others / A (home)", &b.others, &a_home.all);
    rrow("C whole phase / A (both)", &c.all, &a_all.all);
    rrow(
        "C overlapping a move / A (both)",
        &c.overlapping,
        &a_all.all,
    );
    rrow(
        "C started < 2 ms after a move / A (both)",
        &c.after,
        &a_all.all,
    );
    rrow("C the others / A (both)", &c.others, &a_all.all);
}

fn freeze_table(log: &Driver) {
    let of = |phase: Phase, kinds: &[Kind]| -> Vec<&Move> {
        log.moves
            .iter()
            .filter(|m| m.phase == Some(phase) && kinds.contains(&m.kind))
            .collect()
    };
    let freeze = |ms: &[&Move]| Samples::sorted(ms.iter().map(|m| m.freeze).collect());
    let call = |ms: &[&Move]| Samples::sorted(ms.iter().map(|m| m.end - m.start).collect());
    let b = of(Phase::InCluster, &[Kind::InCluster]);
    let c = of(Phase::Cross, &[Kind::Out, Kind::In]);
    let out = of(Phase::Cross, &[Kind::Out]);
    let inn = of(Phase::Cross, &[Kind::In]);
    let d_in = of(Phase::Quiet, &[Kind::InCluster]);
    let d_across = of(Phase::Quiet, &[Kind::Out, Kind::In]);
    let (f_b, f_c, f_out, f_in) = (freeze(&b), freeze(&c), freeze(&out), freeze(&inn));
    let (f_d_in, f_d_across) = (freeze(&d_in), freeze(&d_across));
    let e_in = of(Phase::QuietBackToBack, &[Kind::InCluster]);
    let e_across = of(Phase::QuietBackToBack, &[Kind::Out, Kind::In]);
    let (f_e_in, f_e_across) = (freeze(&e_in), freeze(&e_across));

    println!(
        "\n  freeze (report's)                                median        p99        max        n  queued  fwd after"
    );
    let frow = |label: &str, s: &Samples, ms: &[&Move]| {
        let n = ms.len().max(1) as f64;
        let queued = ms.iter().map(|m| m.queued).sum::<u64>() as f64 / n;
        let after = ms.iter().map(|m| m.forwarded_after).sum::<u64>() as f64 / n;
        println!("  {label:<44} {}  {queued:>6.2}  {after:>9.2}", s.cells());
    };
    frow("B  in the cluster (a -> b -> c -> a)", &f_b, &b);
    frow("C  across, both directions", &f_c, &c);
    frow("C    out (home -> x)", &f_out, &out);
    frow("C    in (x -> home)", &f_in, &inn);
    frow("D  no load, in the cluster", &f_d_in, &d_in);
    frow(
        "D  no load, across, both directions",
        &f_d_across,
        &d_across,
    );
    frow("D  no load, back to back, in the cluster", &f_e_in, &e_in);
    frow("D  no load, back to back, across", &f_e_across, &e_across);
    println!("  (queued, fwd after: messages per move carried in the mailbox / arrived during the freeze)");
    println!("  migrate call (wall time, asked of the host, caller on another thread)");
    println!("  {:<44} {}", "B  in the cluster", call(&b).cells());
    println!("  {:<44} {}", "C  across", call(&c).cells());
    let moving = |ms: &[&Move], phase: Phase| {
        let busy: Duration = ms.iter().map(|m| m.end - m.start).sum();
        let time: Duration = log
            .windows
            .iter()
            .filter(|w| w.phase == phase)
            .map(|w| w.end - w.start)
            .sum();
        100.0 * busy.as_secs_f64() / time.as_secs_f64().max(1e-9)
    };
    println!(
        "  (a migrate call in progress {:.1}% of B's time, {:.1}% of C's)",
        moving(&b, Phase::InCluster),
        moving(&c, Phase::Cross),
    );
    println!("  ratios                                           median        p99        max");
    println!(
        "  {:<44} {}",
        "freeze C (across) / B (in cluster)",
        ratios(&f_c, &f_b)
    );
    println!("  {:<44} {}", "freeze C out / B", ratios(&f_out, &f_b));
    println!("  {:<44} {}", "freeze C in / B", ratios(&f_in, &f_b));
    println!(
        "  {:<44} {}",
        "freeze B / D in cluster (load / no load)",
        ratios(&f_b, &f_d_in)
    );
    println!(
        "  {:<44} {}",
        "freeze C / D across (load / no load)",
        ratios(&f_c, &f_d_across)
    );
    println!(
        "  {:<44} {}",
        "freeze D across / D in cluster",
        ratios(&f_d_across, &f_d_in)
    );
    println!(
        "  {:<44} {}",
        "freeze D in cluster, spaced / back to back",
        ratios(&f_d_in, &f_e_in)
    );
    println!(
        "  {:<44} {}",
        "freeze D across, spaced / back to back",
        ratios(&f_d_across, &f_e_across)
    );
}

fn main() {
    let started = Instant::now();
    let think = std::env::var("UNDER_LOAD_THINK_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_micros)
        .unwrap_or(THINK);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("multi-thread runtime");
    let (home, x) = start_nodes(&rt);
    let t0 = Instant::now();
    let handle = rt.block_on(async { home[0].spawn(small()).await.expect("spawn on a") });

    // The load, for the whole run; stopped also if anything below panics.
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(stop.clone());
    let quiet = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let node = i % 3;
            let bound = rt.block_on(async { home[node].bind(&handle).expect("bind") });
            rt.spawn(client(node, bound, think, t0, stop.clone(), quiet.clone()))
        })
        .collect();

    let mut driver = Driver {
        rt: rt.handle().clone(),
        to_x: tcp(&x),
        to_home: [tcp(&home[0]), tcp(&home[1]), tcp(&home[2])],
        home: home.clone(),
        x: x.clone(),
        handle: handle.clone(),
        t0,
        at: Place::Home(0),
        quiet,
        seed: 0x9e37_79b9_7f4a_7c15,
        moves: Vec::new(),
        windows: Vec::new(),
        move_errors: Vec::new(),
    };
    let driver = std::thread::spawn(move || {
        driver.run();
        driver
    })
    .join()
    .expect("driver");
    stop.store(true, Ordering::Relaxed);
    let mut requests = Vec::new();
    let mut errors = Vec::new();
    for task in clients {
        let client = rt.block_on(task).expect("client");
        requests.extend(client.requests);
        errors.extend(client.errors);
    }
    let served = requests.len() as u64;
    let count = rt.block_on(async { handle.add(0).await.expect("count") });
    requests.sort();
    let run = t0.elapsed();

    println!(
        "\nunder_load: {CLIENTS} clients (2 on each of a, b, c), closed loop, pause {} after each reply; \
         {ROUNDS} rounds of A (rest {} on each of a, b, c, {} on x), B ({MOVES} moves in the cluster), \
         C ({MOVES} moves across), D (no load, {QUIET_MOVES} moves of each kind, spaced and back to back), one move every 10-20 ms",
        micros(think),
        micros(SEGMENT),
        micros(3 * SEGMENT),
    );
    latency_table("client latency, all requests", &driver, &requests, |_| true);
    let moves = &driver.moves;
    latency_table(
        "client latency, remote requests only",
        &driver,
        &requests,
        |r| remote(moves, r),
    );
    freeze_table(&driver);

    println!(
        "\n  checks: {served} requests answered, actor count {count} ({}); {} failed or out-of-order \
         replies; {} refused moves ({} moves in all)",
        if count == served {
            "each handled exactly once"
        } else {
            "MISMATCH"
        },
        errors.len(),
        driver.move_errors.len(),
        moves.len(),
    );
    for e in errors.iter().take(10) {
        println!("    {e}");
    }
    for e in driver.move_errors.iter().take(10) {
        println!("    move refused: {e}");
    }

    rt.block_on(async {
        handle.stop().await.expect("stop");
        for node in home.iter().chain([&x]) {
            node.shutdown().await;
        }
    });
    println!(
        "\n  load ran {:.1} s; whole run: {:.1} s",
        run.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
