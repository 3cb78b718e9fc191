//! Property test of the whole protocol: random schedules of sends from
//! several senders on several nodes, requests, migrations inside the
//! cluster and to another cluster, and injected faults, checked against a
//! model of the promises: every message handled exactly once and in order
//! per sender, every request answered, the actor always in exactly one
//! place, where the last successful migration put it.
//!
//! Failing schedules shrink to a small one; proptest keeps them in
//! `tests/schedules.proptest-regressions`, replayed first on every run.
//! `PROPTEST_CASES` sets how many schedules run (default 10).

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

#[derive(Debug, Clone)]
enum Op {
    /// `count` fire-and-forget messages from `sender`.
    Tell { sender: u8, count: u8 },
    /// One request from `sender`, awaited.
    Request { sender: u8 },
    /// Migrate the actor to node `to` (asked from node `from`).
    Migrate { from: u8, to: u8 },
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
        4 => (0..SENDERS, 1u8..20).prop_map(|(sender, count)| Op::Tell { sender, count }),
        2 => (0..SENDERS).prop_map(|sender| Op::Request { sender }),
        3 => (0..NODES, 0..NODES).prop_map(|(from, to)| Op::Migrate { from, to }),
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
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    while nodes[..3].iter().any(|n| n.members().len() < 3) {
        assert!(tokio::time::Instant::now() < deadline, "membership");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let away: Destination = format!("tcp://{}", nodes[3].listen_addr().expect("addr"))
        .parse()
        .expect("dest");
    let ledger = nodes[0].spawn(Ledger::default()).await.expect("spawn");
    // Sender i sends from home node i % 3 (its own handle there).
    let handles: Vec<Handle<Ledger>> = (0..SENDERS)
        .map(|i| nodes[usize::from(i % 3)].bind(&ledger).expect("bind"))
        .collect();
    let mut sent = [0u64; SENDERS as usize];
    let mut at = 0u8; // the model: where the actor lives
    for op in schedule {
        match op {
            Op::Tell { sender, count } => {
                for _ in 0..count {
                    let seq = sent[usize::from(sender)];
                    handles[usize::from(sender)]
                        .tell()
                        .record(sender, seq)
                        .map_err(|e| TestCaseError::fail(format!("tell: {e}")))?;
                    sent[usize::from(sender)] += 1;
                }
            }
            Op::Request { sender } => {
                let seq = sent[usize::from(sender)];
                let next = handles[usize::from(sender)]
                    .record(sender, seq)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("request: {e}")))?;
                sent[usize::from(sender)] += 1;
                // Everything this sender sent before was handled first.
                prop_assert_eq!(next, seq + 1, "sender {} in order", sender);
            }
            Op::Migrate { from, to } => {
                // Across clusters by address; inside the cluster by id.
                let dest = if to == 3 {
                    away.clone()
                } else if at == 3 {
                    format!(
                        "tcp://{}",
                        nodes[usize::from(to)].listen_addr().expect("addr")
                    )
                    .parse()
                    .expect("dest")
                } else {
                    Destination::node(nodes[usize::from(to)].id().clone())
                };
                // Ask from a node that has a handle (any home node does; the
                // away node only once the actor went there).
                let asker = if from == 3 && at != 3 { 0 } else { from };
                let handle = nodes[usize::from(asker)].bind(&ledger).expect("bind");
                match handle.migrate(dest).await {
                    Ok(report) => {
                        prop_assert_eq!(report.to.as_str(), nodes[usize::from(to)].id().as_str());
                        at = to;
                    }
                    Err(Error::Migration {
                        failure: MigrationFailure::AlreadyThere(_),
                        ..
                    }) => prop_assert_eq!(at, to),
                    Err(e) => return Err(TestCaseError::fail(format!("migrate to {to}: {e}"))),
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
        // Exactly one live copy, where the model says.
        let hosts: Vec<u8> = (0..NODES)
            .filter(|i| nodes[usize::from(*i)].hosts(ledger.id()))
            .collect();
        prop_assert_eq!(hosts, vec![at], "one copy, at node {}", at);
    }
    for node in &nodes {
        node.fault_clear();
    }
    // A request from every sender comes after all it sent.
    for (i, handle) in handles.iter().enumerate() {
        let seq = sent[i];
        handle
            .record(i as u8, seq)
            .await
            .map_err(|e| TestCaseError::fail(format!("final request: {e}")))?;
        sent[i] += 1;
    }
    let (next, duplicates, out_of_order) = ledger
        .tally()
        .await
        .map_err(|e| TestCaseError::fail(format!("tally: {e}")))?;
    prop_assert_eq!((duplicates, out_of_order), (0, 0));
    for sender in 0..SENDERS {
        prop_assert_eq!(
            next.get(&sender).copied().unwrap_or(0),
            sent[usize::from(sender)],
            "sender {}: every message, once",
            sender
        );
    }
    for node in &nodes {
        node.shutdown().await;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10),
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
