//! Deterministic simulation of the migration protocol: several nodes, each
//! running the pure [`Handover`] machine for one actor, driven by a seeded
//! scheduler that delivers, delays, reorders and duplicates frames, stalls
//! nodes past failure detection, declares live nodes failed, crashes and
//! restarts nodes and partitions them, while clients send requests and
//! migrations start at random. The promises are checked after every step
//! and once everything has healed.
//!
//! Versions are mixed as in a rolling upgrade (`simulation/versions.rs`):
//! each node incarnation runs version 1 or 2 of the actor's code, nodes are
//! born at either, restart into the new one, or are drained and restarted
//! new; the actor's state carries its version, is upgraded on arrival at a
//! newer node (an upgrade may fail: refused), and is refused by an older
//! one (`Refusal::NewerVersion`: the actor stays home, serving). Version 1
//! has a handler version 2 removed, version 2 one that version 1 lacks: a
//! request of a handler the actor's version lacks is answered with an
//! error, in its turn. Half the schedules are uniform (all version 1, and
//! the scheduler draws exactly what it drew before versions existed).
//!
//! The promises (`simulation/checks.rs`): one linear history (never two
//! live copies, never a rollback); every request taken exactly once and in
//! order per client, none after its caller was told the actor is down;
//! every request answered when no node was lost; the actor lost only with
//! a node that held it; `migrate` answers what happened; every node agrees
//! where the actor lives once settled; its version never goes down, it
//! never runs or is held on a node whose code is older than its state, and
//! a refusal of a newer version (or a failed upgrade) leaves it at home,
//! serving, the one live copy, the destination holding nothing.
//!
//! The cluster's failure decisions are modelled as the runtime makes them:
//! a node declared failed is fenced, and learns it before it acts again
//! (a stalled node resumes into that check first); every other node hears
//! of it after some delay.
//!
//! The world (nodes, links, clients, the shell of each machine) is in
//! `simulation/world.rs`, the scheduler and its faults in
//! `simulation/scheduler.rs`.
//!
//! `MOBILITY_SIM_SCHEDULES=N` runs N schedules (default 100,000);
//! `MOBILITY_SIM_SEED=S` replays one (shrunk to its shortest failing
//! prefix, with a trace, if it fails).

#[path = "simulation/checks.rs"]
mod checks;
#[path = "simulation/scheduler.rs"]
mod scheduler;
#[path = "simulation/versions.rs"]
mod versions;
#[path = "simulation/world.rs"]
mod world;

use std::time::Duration;

use mobility_proto::handover::{Frame, Handover, Timing};

use crate::versions::{Version, Versions};
use crate::world::Sim;

type Node = u8;
/// A node incarnation: what the protocol talks to (a restarted node is a
/// new peer).
type Peer = (Node, u32);
type Machine = Handover<Peer, Refusal, ()>;
type ProtoFrame = Frame<Refusal, ()>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// Stale or conflicting prepare.
    Busy,
    /// The actor's state (`ours`, the version sent) is newer than the
    /// destination's code (`theirs`): as the runtime's
    /// `MigrationFailure::NewerVersion`.
    NewerVersion { ours: Version, theirs: Version },
    /// The upgrade of the state from `from` to `to` failed (the user's
    /// `From` panicked): refused like a failed restore.
    UpgradeFailed { from: Version, to: Version },
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
        sim.check_step();
    }
    sim.heal(faults);
    sim.check_settled();
}

fn fails(seed: u64, steps: usize, versions: Versions) -> bool {
    let mut sim = Sim::new(seed, false, versions);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_on(&mut sim, steps))).is_err()
}

/// Runs `seed` with `versions`; on a failure, finds the shortest schedule
/// of that seed that still fails (the shrink) and panics with its trace.
fn check(seed: u64, steps: usize, versions: Versions) -> Sim {
    let mut sim = Sim::new(seed, false, versions);
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_on(&mut sim, steps)));
    if outcome.is_ok() {
        return sim;
    }
    // Quiet while shrinking: every try panics.
    std::panic::set_hook(Box::new(|_| {}));
    let shortest = (0..=steps)
        .find(|s| fails(seed, *s, versions))
        .unwrap_or(steps);
    let mut sim = Sim::new(seed, true, versions);
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
    panic!("seed {seed} ({versions:?}) fails after {shortest} steps: {why}\ntrace:\n{trace}");
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
        check(seed, 400, Versions::of(seed));
        return;
    }
    let started = std::time::Instant::now();
    let count = schedules();
    let (mut handled, mut moves, mut fenced, mut mixed) = (0usize, 0usize, 0usize, 0usize);
    let mut tally = versions::VersionTally::default();
    for seed in 0..count {
        let sim = check(seed, 400, Versions::of(seed));
        handled += sim.history.len();
        moves += sim.activations.len() - 1;
        fenced += sim.nodes.iter().filter(|n| n.fenced).count();
        mixed += usize::from(sim.versions.mixed);
        tally.add(&sim.tally);
    }
    eprintln!(
        "{count} schedules ({mixed} of mixed versions) in {:?}: {handled} requests taken, {moves} moves, {fenced} nodes fenced; {} states upgraded on arrival, {} newer versions refused, {} upgrades failed (refused), {} requests of the retired handler and {} of the added one answered with an error, {} nodes restarted into the new version",
        started.elapsed(),
        tally.upgraded,
        tally.newer_refused,
        tally.upgrades_failed,
        tally.retired_answered,
        tally.added_answered,
        tally.nodes_upgraded
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
        // As they ran before versions existed, and as they run now.
        check(*seed, 400, Versions::UNIFORM);
        check(*seed, 400, Versions::of(*seed));
    }
    for seed in VERSION_REGRESSIONS {
        check(*seed, 400, Versions::of(*seed));
    }
}

const REGRESSIONS: &[u64] = &[1, 12, 57, 63, 91, 725, 737, 783, 1079, 4712];

/// Schedules of mixed versions that failed against deliberately broken
/// shells (no bug of the machine was found with versions mixed), kept as
/// witnesses that the version promises bite, with `Versions::of(seed)`:
/// - 8: a destination that takes a state newer than its code, or
///   "downgrades" it, or keeps the copy it refused;
/// - 0: an actor at the new version that drops a request of the retired
///   handler without an answer.
const VERSION_REGRESSIONS: &[u64] = &[0, 8];

/// Mixed versions are exercised: in the first 2,000 schedules, states are
/// upgraded on arrival, newer states refused, upgrades fail, both kinds of
/// missing handler are answered, and nodes restart into the new version (a
/// change to the scheduler that stopped any of these would make the promises
/// above vacuous).
#[test]
fn mixed_versions_are_exercised() {
    let mut tally = versions::VersionTally::default();
    let mut mixed = 0;
    for seed in 0..2_000 {
        let sim = check(seed, 400, Versions::of(seed));
        mixed += u32::from(sim.versions.mixed);
        tally.add(&sim.tally);
    }
    assert!(mixed > 500, "{mixed} mixed schedules of 2,000");
    assert!(
        tally.upgraded > 0
            && tally.newer_refused > 0
            && tally.upgrades_failed > 0
            && tally.retired_answered > 0
            && tally.added_answered > 0
            && tally.nodes_upgraded > 0,
        "{tally:?}"
    );
}
