//! Property test of the whole protocol: random schedules of spawns, sends
//! from several senders on several nodes, requests, migrations inside the
//! cluster and to another cluster, drains and injected faults, checked
//! against a model of the promises: every message handled exactly once and
//! in order per sender, every request answered, every actor always in
//! exactly one place, where the last successful migration (or drain) put
//! it.
//!
//! Failing schedules shrink to a small one; proptest keeps them in
//! `tests/schedules.proptest-regressions`, replayed first on every run.
//! `PROPTEST_CASES` sets how many schedules run (default 64; a schedule takes
//! about 0.4 s in a debug build).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use mobility::prelude::*;
use mobility::{Fault, FaultDirection, FaultStep, TcpConfig};
use proptest::prelude::*;

#[mobile]
#[derive(Default)]
pub struct Ledger {
    next: HashMap<u8, u64>,
    duplicates: u64,
    out_of_order: u64,
}

#[mobile]
impl Ledger {
    pub fn record(&mut self, sender: u8, seq: u64) -> u64 {
        let next = self.next.entry(sender).or_insert(0);
        if seq < *next {
            self.duplicates += 1;
        } else {
            if seq > *next {
                self.out_of_order += 1;
            }
            *next = seq + 1;
        }
        *next
    }

    pub fn tally(&self) -> (HashMap<u8, u64>, u64, u64) {
        (self.next.clone(), self.duplicates, self.out_of_order)
    }
}

/// Nodes: 0, 1, 2 form cluster "home"; 3 is a node of cluster "away".
const NODES: u8 = 4;
const SENDERS: u8 = 4;
const ACTORS: u8 = 2;

#[derive(Debug, Clone)]
enum Op {
    /// A second actor, on home node `on`.
    Spawn { on: u8 },
    /// `count` fire-and-forget messages from `sender` to actor `actor`.
    Tell { actor: u8, sender: u8, count: u8 },
    /// One request from `sender`, awaited.
    Request { actor: u8, sender: u8 },
    /// Migrate actor `actor` to node `to` (asked from node `from`).
    Migrate { actor: u8, from: u8, to: u8 },
    /// Home node `node` leaves gracefully, moving its actors away.
    Drain { node: u8 },
    /// Arm a fault on node `node` for the next frame of `step`.
    Fault {
        node: u8,
        step: FaultStep,
        outgoing: bool,
        fault: Fault,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let step = prop_oneof![
        Just(FaultStep::Deliver),
        Just(FaultStep::Prepare),
        Just(FaultStep::PrepareAck),
        Just(FaultStep::Commit),
        Just(FaultStep::Committed),
        Just(FaultStep::Moved),
    ];
    let fault = prop_oneof![
        Just(Fault::Cut),
        Just(Fault::Duplicate),
        (1u64..20).prop_map(|ms| Fault::Delay(Duration::from_millis(ms))),
        (1u64..50).prop_map(|ms| Fault::Stall(Duration::from_millis(ms))),
    ];
    prop_oneof![
        1 => (0u8..3).prop_map(|on| Op::Spawn { on }),
        4 => (0..ACTORS, 0..SENDERS, 1u8..20)
            .prop_map(|(actor, sender, count)| Op::Tell { actor, sender, count }),
        2 => (0..ACTORS, 0..SENDERS).prop_map(|(actor, sender)| Op::Request { actor, sender }),
        3 => (0..ACTORS, 0..NODES, 0..NODES)
            .prop_map(|(actor, from, to)| Op::Migrate { actor, from, to }),
        1 => (1u8..3).prop_map(|node| Op::Drain { node }),
        2 => (0..NODES, step, any::<bool>(), fault).prop_map(|(node, step, outgoing, fault)| {
            Op::Fault { node, step, outgoing, fault }
        }),
    ]
}

fn builder(id: &str, cluster: &str) -> mobility::NodeBuilder {
    Node::builder()
        .id(id)
        .cluster(cluster, format!("{cluster} secret"))
        .trust_cluster(
            if cluster == "home" { "away" } else { "home" },
            "federation",
        )
        .listen("127.0.0.1:0")
        .gossip_interval(Duration::from_millis(30))
        .migration_timeout(Duration::from_secs(3))
        .request_timeout(Duration::from_secs(15))
        .tcp_config(TcpConfig {
            reconnect_for: Duration::from_secs(10),
            ..TcpConfig::default()
        })
}

async fn run(schedule: Vec<Op>) -> Result<(), TestCaseError> {
    let a = builder("n0", "home").start().await.expect("n0");
    let seed = a.listen_addr().expect("addr").to_string();
    let b = builder("n1", "home").join(&seed).start().await.expect("n1");
    let c = builder("n2", "home").join(&seed).start().await.expect("n2");
    let x = builder("n3", "away").start().await.expect("n3");
    let nodes = [a, b, c, x];
    common::wait_for("full membership", || {
        nodes[..3].iter().all(|n| n.members().len() >= 3)
    })
    .await;
    // The model: the actors, where each lives, what each sender sent each
    // actor, which nodes are still up.
    let mut ledgers: Vec<Handle<Ledger>> =
        vec![nodes[0].spawn(Ledger::default()).await.expect("spawn")];
    let mut at: Vec<u8> = vec![0];
    let mut sent = [[0u64; SENDERS as usize]; ACTORS as usize];
    let mut up = [true; NODES as usize];
    // Sender i sends from home node i % 3, through its own handles there.
    let home_of = |sender: u8| usize::from(sender % 3);
    for op in schedule {
        match op {
            Op::Spawn { on } => {
                if ledgers.len() < usize::from(ACTORS) && up[usize::from(on)] {
                    let spawned = nodes[usize::from(on)]
                        .spawn(Ledger::default())
                        .await
                        .map_err(|e| TestCaseError::fail(format!("spawn: {e}")))?;
                    ledgers.push(spawned);
                    at.push(on);
                }
            }
            Op::Tell {
                actor,
                sender,
                count,
            } => {
                let (a, s) = (usize::from(actor), usize::from(sender));
                if a >= ledgers.len() || !up[home_of(sender)] {
                    continue;
                }
                let handle = nodes[home_of(sender)].bind(&ledgers[a]).expect("bind");
                for _ in 0..count {
                    handle
                        .tell()
                        .record(sender, sent[a][s])
                        .map_err(|e| TestCaseError::fail(format!("tell: {e}")))?;
                    sent[a][s] += 1;
                }
            }
            Op::Request { actor, sender } => {
                let (a, s) = (usize::from(actor), usize::from(sender));
                if a >= ledgers.len() || !up[home_of(sender)] {
                    continue;
                }
                let handle = nodes[home_of(sender)].bind(&ledgers[a]).expect("bind");
                let seq = sent[a][s];
                let next = handle
                    .record(sender, seq)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("request: {e}")))?;
                sent[a][s] += 1;
                // Everything this sender sent before was handled first.
                prop_assert_eq!(next, seq + 1, "sender {} in order", sender);
            }
            Op::Migrate { actor, from, to } => {
                let a = usize::from(actor);
                if a >= ledgers.len() || !up[usize::from(to)] {
                    continue;
                }
                // Across clusters by address; inside the cluster by id.
                let dest = if to == 3 || at[a] == 3 {
                    format!(
                        "tcp://{}",
                        nodes[usize::from(to)].listen_addr().expect("addr")
                    )
                    .parse()
                    .expect("dest")
                } else {
                    Destination::node(nodes[usize::from(to)].id().clone())
                };
                // Ask from a live home node (the away node only while it
                // hosts the actor).
                let asker = if (from == 3 && at[a] != 3) || !up[usize::from(from)] {
                    (0..3).find(|n| up[*n]).expect("a home node is up")
                } else {
                    usize::from(from)
                };
                let handle = nodes[asker].bind(&ledgers[a]).expect("bind");
                match handle.migrate(dest).await {
                    Ok(report) => {
                        prop_assert_eq!(report.to.as_str(), nodes[usize::from(to)].id().as_str());
                        at[a] = to;
                    }
                    Err(Error::Migration {
                        failure: MigrationFailure::AlreadyThere(_),
                        ..
                    }) => prop_assert_eq!(at[a], to),
                    Err(e) => return Err(TestCaseError::fail(format!("migrate to {to}: {e}"))),
                }
            }
            Op::Drain { node } => {
                let n = usize::from(node);
                // Keep two home nodes: the first never drains.
                if !up[n] || up.iter().take(3).filter(|u| **u).count() < 3 {
                    continue;
                }
                // Handles are given by live nodes: those this node gave are
                // handed to another home node before it goes (a node that
                // is gone gives nothing, and a handle taken from it could
                // not find an actor that left the cluster).
                let heir = (0..3)
                    .find(|i| *i != n && up[*i])
                    .expect("a home node stays");
                for ledger in &mut ledgers {
                    if ledger.node_id() == nodes[n].id() {
                        *ledger = nodes[heir].bind(ledger).expect("bind");
                    }
                }
                let report = nodes[n]
                    .drain()
                    .await
                    .map_err(|e| TestCaseError::fail(format!("drain of {n}: {e}")))?;
                up[n] = false;
                for moved in &report.moved {
                    let a = ledgers
                        .iter()
                        .position(|l| l.id() == moved.actor)
                        .expect("a known actor");
                    prop_assert_eq!(usize::from(at[a]), n, "drained from where it was");
                    at[a] = (0..NODES)
                        .find(|i| nodes[usize::from(*i)].id() == &moved.to)
                        .expect("a known node");
                }
                for (a, place) in at.iter().enumerate() {
                    prop_assert!(usize::from(*place) != n, "actor {} left node {}", a, n);
                }
            }
            Op::Fault {
                node,
                step,
                outgoing,
                fault,
            } => {
                let direction = if outgoing {
                    FaultDirection::Outgoing
                } else {
                    FaultDirection::Incoming
                };
                nodes[usize::from(node)].fault_inject(step, direction, None, fault, 1);
            }
        }
        // Every actor in exactly one place, where the model says.
        for (a, ledger) in ledgers.iter().enumerate() {
            let hosts: Vec<u8> = (0..NODES)
                .filter(|i| up[usize::from(*i)] && nodes[usize::from(*i)].hosts(ledger.id()))
                .collect();
            prop_assert_eq!(hosts, vec![at[a]], "actor {}: one copy", a);
        }
    }
    for node in &nodes {
        node.fault_clear();
    }
    // A request from every live sender comes after all it sent; a drained
    // node's senders sent theirs before it left.
    let asker = (0..3).find(|n| up[*n]).expect("a home node is up");
    for (a, ledger) in ledgers.iter().enumerate() {
        for sender in 0..SENDERS {
            let s = usize::from(sender);
            if !up[home_of(sender)] {
                continue;
            }
            nodes[home_of(sender)]
                .bind(ledger)
                .expect("bind")
                .record(sender, sent[a][s])
                .await
                .map_err(|e| TestCaseError::fail(format!("final request: {e}")))?;
            sent[a][s] += 1;
        }
        let (next, duplicates, out_of_order) = nodes[asker]
            .bind(ledger)
            .expect("bind")
            .tally()
            .await
            .map_err(|e| TestCaseError::fail(format!("tally: {e}")))?;
        prop_assert_eq!((duplicates, out_of_order), (0, 0), "actor {}", a);
        for sender in 0..SENDERS {
            prop_assert_eq!(
                next.get(&sender).copied().unwrap_or(0),
                sent[a][usize::from(sender)],
                "actor {}, sender {}: every message, once",
                a,
                sender
            );
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        if up[i] {
            node.shutdown().await;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_schedules_keep_every_promise(schedule in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run(schedule))?;
    }
}

/// Found by the random schedules (shrunk), and it fails the same way on the
/// commit before this wave: the second actor (spawned on n2) moves to node
/// n3 of the other cluster, then n2 drains; a sender's final request then
/// fails with "is down: its node n2 shut down" though the actor lives on
/// n3 (the sender still routed through n2's forwarder, and nothing told it
/// where the actor went). The wrong error after a drain is part of the
/// production issue; kept here until it is fixed.
#[test]
#[ignore = "fails: a request after a drain is refused with the drained node's shutdown though the actor lives in another cluster (runtime bug)"]
fn a_drain_after_a_move_to_another_cluster_keeps_the_senders() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let schedule = vec![
        Op::Spawn { on: 2 },
        Op::Migrate {
            actor: 1,
            from: 1,
            to: 3,
        },
        Op::Drain { node: 2 },
    ];
    if let Err(failure) = runtime.block_on(run(schedule)) {
        panic!("{failure}");
    }
}
