//! Deterministic simulation of the migration protocol: several nodes, each
//! running the pure [`Handover`] machine for one actor, driven by a seeded
//! scheduler that delivers, delays, reorders and duplicates frames, stalls
//! nodes past failure detection, declares live nodes failed, crashes and
//! restarts nodes and partitions them, while clients send requests and
//! migrations start at random. The promises are checked after every step
//! and once everything has healed.
//!
//! The cluster's failure decisions are modelled as the runtime makes them:
//! a node declared failed is fenced, and learns it before it acts again
//! (a stalled node resumes into that check first); every other node hears
//! of it after some delay.
//!
//! `MOBILITY_SIM_SCHEDULES=N` runs N schedules (default 100,000 in a
//! release build, fewer in a debug one); `MOBILITY_SIM_SEED=S` replays one.

#[path = "simulation/checks.rs"]
mod checks;
#[path = "simulation/scheduler.rs"]
mod scheduler;
#[path = "simulation/world.rs"]
mod world;

use std::time::Duration;

use mobility_proto::handover::{Frame, Handover, Timing};

use crate::world::Sim;

type Node = u8;
/// A node incarnation: what the protocol talks to (a restarted node is a
/// new peer).
type Peer = (Node, u32);
type Machine = Handover<Peer, Refusal, ()>;
type ProtoFrame = Frame<Refusal, ()>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    Busy,
}

const NODES: usize = 3;
const TIMING: Timing = Timing {
    prepare_timeout: Duration::from_millis(40),
    retry: Duration::from_millis(15),
};

/// SplitMix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

/// Which faults a schedule may inject.
#[derive(Debug, Clone, Copy)]
struct Faults {
    /// The nodes are of different clusters: no failure detector, no
    /// fencing; a crash is seen as the peer's restart.
    cross: bool,
    stalls: bool,
    suspicion: bool,
    crashes: bool,
    partitions: bool,
    duplicates: bool,
}

fn faults_of(rng: &mut Rng) -> Faults {
    let cross = rng.chance(250);
    Faults {
        cross,
        stalls: rng.chance(700),
        suspicion: !cross && rng.chance(500),
        crashes: rng.chance(300),
        partitions: rng.chance(500),
        duplicates: rng.chance(500),
    }
}

fn run_on(sim: &mut Sim, steps: usize) {
    let faults = faults_of(&mut sim.rng);
    sim.arbitrated = !faults.cross;
    for _ in 0..steps {
        sim.step(faults, false);
    }
    sim.heal(faults);
    sim.check_settled();
}

fn fails(seed: u64, steps: usize) -> bool {
    let mut sim = Sim::new(seed, false);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_on(&mut sim, steps))).is_err()
}

/// Runs `seed`; on a failure, finds the shortest schedule of that seed that
/// still fails (the shrink) and panics with its trace.
fn check(seed: u64, steps: usize) -> Sim {
    let mut sim = Sim::new(seed, false);
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_on(&mut sim, steps)));
    if outcome.is_ok() {
        return sim;
    }
    // Quiet while shrinking: every try panics.
    std::panic::set_hook(Box::new(|_| {}));
    let shortest = (0..=steps).find(|s| fails(seed, *s)).unwrap_or(steps);
    let mut sim = Sim::new(seed, true);
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_on(&mut sim, shortest)));
    let why = result
        .err()
        .and_then(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        })
        .unwrap_or_default();
    let trace = sim.trace.join("\n");
    let _ = std::panic::take_hook();
    panic!("seed {seed} fails after {shortest} steps: {why}\ntrace:\n{trace}");
}

fn schedules() -> u64 {
    std::env::var("MOBILITY_SIM_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

#[test]
fn every_schedule_keeps_the_promises() {
    if let Some(seed) = std::env::var("MOBILITY_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        check(seed, 400);
        return;
    }
    let started = std::time::Instant::now();
    let count = schedules();
    let (mut handled, mut moves, mut fenced) = (0usize, 0usize, 0usize);
    for seed in 0..count {
        let sim = check(seed, 400);
        handled += sim.history.len();
        moves += sim.activations.len() - 1;
        fenced += sim.nodes.iter().filter(|n| n.fenced).count();
    }
    eprintln!(
        "{count} schedules in {:?}: {handled} requests handled, {moves} moves, {fenced} nodes fenced",
        started.elapsed()
    );
}

/// Schedules that failed against drafts of the protocol (or of this
/// simulation's model of the runtime), kept as they are:
/// - 12: a migration to a member already declared failed, never resolved;
/// - 63: a fenced source answered "failed" for a move its destination
///   then completed (the answer must claim nothing);
/// - 725, 91: frames to an old incarnation reached its restart;
/// - 737: a restarted source, knowing nothing, answered `Resolve` with an
///   abort and the prepared copy was dropped;
/// - 783: a failure notice of an old incarnation taken for its restart's;
/// - 1079: a prepare from a source already declared failed was accepted;
/// - 4712: a source that resumed on its own after a timeout (the first
///   wave's behaviour) made two live copies.
#[test]
fn regressions() {
    for seed in REGRESSIONS {
        check(*seed, 400);
    }
}

const REGRESSIONS: &[u64] = &[1, 12, 57, 63, 91, 725, 737, 783, 1079, 4712];
