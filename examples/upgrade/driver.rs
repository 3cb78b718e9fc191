//! The prompt shared by `upgrade_old` and `upgrade_new` (driven by hand, by
//! `rolling_upgrade` and by `tests/upgrade_processes.rs`): one node on a
//! loopback port chosen by the OS, on the secret in `MOBILITY_SECRET`.
//!
//! `NAME [--spawn]`: a node alone in its own cluster, trusting the other
//! clusters that prove the same secret; `--spawn` starts one counter.
//! Commands: `migrate tcp://HOST:PORT [N]` (with `N`: the actor is held
//! busy, the move is asked, and `N` increments queue up behind it, to travel
//! in its mailbox), `describe` (through the same handle, wherever the
//! counter lives), `retired` (a handler that only version 1 has).
//!
//! `NAME --cluster [--join HOST:PORT]`: a member of the cluster `rolling`.
//! Commands: `spawn N PREFIX` (counters named `PREFIX-0` ..), `load NAME..`
//! (sends each counter numbered messages until `tally`), `label NAME` (a
//! handler only version 2 has, called by name), `tally` (stops the
//! load and checks what every counter handled), `drain` (moves this node's
//! actors to the members that take their version, then leaves and exits).
//!
//! Both: `quit`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mobility::prelude::*;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::ledger::{Ledger, Stats};

/// A call in flight.
pub type Reply<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// What the driver needs of the counter of one build.
pub trait Demo: Actor + Sized {
    /// The version this build runs.
    const BUILD: u32;
    /// A fresh counter.
    fn fresh() -> Self;
    /// Asks the counter to describe itself.
    fn describe(handle: &Handle<Self>) -> Reply<String>;
    /// Holds the actor busy for a moment (fire-and-forget).
    fn pause(handle: &Handle<Self>) -> Result<(), Error>;
    /// Adds one (fire-and-forget).
    fn add_one(handle: &Handle<Self>) -> Result<(), Error>;
    /// Sends message `seq` of the load (fire-and-forget).
    fn record(handle: &Handle<Self>, seq: u64) -> Result<(), Error>;
    /// Asks what the counter saw of the load.
    fn stats(handle: &Handle<Self>) -> Reply<Stats>;
    /// Calls the handler that version 2 added (`None` in a build without it).
    fn label(handle: &Handle<Self>) -> Option<Reply<String>> {
        let _ = handle;
        None
    }
    /// Calls the handler that version 2 removed (`None` in a build without it).
    fn retired(handle: &Handle<Self>) -> Option<Reply<String>> {
        let _ = handle;
        None
    }
}

/// The load sent by this node: numbered messages to each counter in turn.
struct Load<A: Actor> {
    counters: Vec<(String, Handle<A>)>,
    sent: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<u64>>,
}

pub async fn run<A: Demo>() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .ok_or("usage: NODE_NAME [--spawn] [--cluster [--join HOST:PORT]]")?;
    let (mut spawn, mut cluster, mut join) = (false, false, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--spawn" => spawn = true,
            "--cluster" => cluster = true,
            "--join" => join = Some(args.next().ok_or("--join needs HOST:PORT")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let secret = std::env::var("MOBILITY_SECRET").map_err(|_| "set MOBILITY_SECRET")?;
    let mut builder = Node::builder().id(&name).listen("127.0.0.1:0");
    builder = if cluster {
        builder.cluster("rolling", &secret)
    } else {
        builder
            .cluster(format!("cluster-{name}"), &secret)
            .trust_cluster("*", &secret)
    };
    if let Some(seed) = &join {
        builder = builder.join(seed);
    }
    let node = builder.start().await?;
    let addr = node.listen_addr().ok_or("the node does not listen")?;
    println!(
        "{name} runs version {} of the counter, listening on {addr}",
        A::BUILD
    );
    let counter = if spawn {
        let counter = node.spawn(A::fresh()).await?;
        println!("spawned the counter: {}", A::describe(&counter).await?);
        Some(counter)
    } else {
        None
    };
    let mut load: Option<Load<A>> = None;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["quit"] => break,
            ["spawn", n, prefix] => {
                let n: usize = n.parse()?;
                for i in 0..n {
                    node.spawn_named(format!("{prefix}-{i}"), A::fresh())
                        .await?;
                }
                println!("spawned {n} counters");
            }
            ["load", names @ ..] => {
                let mut counters = Vec::new();
                for name in names {
                    let handle = node
                        .lookup_within::<A>(name, Duration::from_secs(30))
                        .await?;
                    counters.push(((*name).to_owned(), handle));
                }
                load = Some(start_load(counters));
                println!("load running");
            }
            ["label", name] => {
                let handle = node
                    .lookup_within::<A>(name, Duration::from_secs(30))
                    .await?;
                match A::label(&handle) {
                    Some(call) => match call.await {
                        Ok(text) => println!("label: {text}"),
                        Err(e) => println!("label failed: {e}"),
                    },
                    None => println!("this build has no label handler"),
                }
            }
            ["tally"] => match load.take() {
                Some(load) => tally(load).await,
                None => println!("tally: no load was started here"),
            },
            ["drain"] => match node.drain().await {
                Ok(report) => {
                    let mut to: BTreeMap<String, usize> = BTreeMap::new();
                    for moved in &report.moved {
                        *to.entry(moved.to.to_string()).or_default() += 1;
                    }
                    let to: Vec<String> = to.iter().map(|(n, k)| format!("{k} to {n}")).collect();
                    println!(
                        "drained: moved {} actors in {} ms ({})",
                        report.moved.len(),
                        report.took.as_millis(),
                        to.join(", ")
                    );
                    return Ok(());
                }
                Err(e) => println!("drain incomplete: {e}"),
            },
            words => match &counter {
                Some(counter) => one_counter(&node, counter, words).await?,
                None => println!("commands: spawn N PREFIX | load NAME.. | tally | drain | quit"),
            },
        }
    }
    node.shutdown().await;
    Ok(())
}

/// Sends numbered messages to each counter in turn, a round every
/// millisecond, until stopped; reports progress every second.
fn start_load<A: Demo>(counters: Vec<(String, Handle<A>)>) -> Load<A> {
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<Handle<A>> = counters.iter().map(|(_, h)| h.clone()).collect();
    let task = tokio::spawn({
        let (sent, refused, stop) = (sent.clone(), refused.clone(), stop.clone());
        async move {
            let mut next = vec![0u64; handles.len()];
            let mut report = tokio::time::interval(Duration::from_secs(1));
            let mut pace = tokio::time::interval(Duration::from_millis(1));
            pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Acquire) {
                tokio::select! {
                    _ = report.tick() => {
                        println!("load: sent {}", sent.load(Ordering::Relaxed));
                    }
                    _ = pace.tick() => {
                        for (handle, seq) in handles.iter().zip(next.iter_mut()) {
                            match A::record(handle, *seq) {
                                Ok(()) => {
                                    *seq += 1;
                                    sent.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    refused.fetch_add(1, Ordering::Relaxed);
                                    println!("load: a send was refused: {e}");
                                }
                            }
                        }
                    }
                }
            }
            next
        }
    });
    Load {
        counters,
        sent,
        refused,
        stop,
        task,
    }
}

/// Stops the load and asks every counter what it handled (each answer
/// comes after every message this node sent it before).
async fn tally<A: Demo>(load: Load<A>) {
    load.stop.store(true, Ordering::Release);
    let sent_each = match load.task.await {
        Ok(sent) => sent,
        Err(e) => return println!("tally: the load task failed: {e}"),
    };
    let mut total = Ledger::default();
    let (mut lost, mut unanswered) = (0u64, 0usize);
    let mut placed: BTreeMap<(u32, String), usize> = BTreeMap::new();
    for ((name, handle), sent) in load.counters.iter().zip(sent_each) {
        match A::stats(handle).await {
            Ok((ledger, version, node)) => {
                println!(
                    "counter {name}: version {version} on {node}, sent {sent}, handled {}",
                    ledger.handled
                );
                total.handled += ledger.handled;
                total.duplicates += ledger.duplicates;
                total.out_of_order += ledger.out_of_order;
                lost += sent.saturating_sub(ledger.handled);
                *placed.entry((version, node)).or_default() += 1;
            }
            Err(e) => {
                unanswered += 1;
                lost += sent;
                println!("counter {name}: no answer: {e}");
            }
        }
    }
    let placed: Vec<String> = placed
        .iter()
        .map(|((version, node), n)| format!("{n} at version {version} on {node}"))
        .collect();
    println!("placed: {}", placed.join(", "));
    println!(
        "tally: sent {}, handled exactly once {}, duplicated {}, out of order {}, lost {}, refused {}, unanswered {unanswered}",
        load.sent.load(Ordering::Relaxed),
        total.handled,
        total.duplicates,
        total.out_of_order,
        lost,
        load.refused.load(Ordering::Relaxed),
    );
}

/// The commands about the one counter of a node started with `--spawn`.
async fn one_counter<A: Demo>(
    node: &Node,
    counter: &Handle<A>,
    words: &[&str],
) -> Result<(), Box<dyn std::error::Error>> {
    match words {
        ["retired"] => match A::retired(counter) {
            Some(call) => match call.await {
                Ok(text) => println!("retired: {text}"),
                Err(e) => println!("retired failed: {e}"),
            },
            None => println!("this build has no retired handler"),
        },
        ["describe"] => match A::describe(counter).await {
            Ok(text) => println!("describe: {text}"),
            Err(e) => println!("describe failed: {e}"),
        },
        ["migrate", dest, rest @ ..] => {
            let dest: Destination = dest.parse()?;
            let queued: u64 = rest.first().map_or(Ok(0), |n| n.parse())?;
            if queued > 0 {
                A::pause(counter)?;
            }
            let mut moving = Box::pin(node.migrate(counter, dest));
            // One poll asks for the move (it waits for the pause to end);
            // what is sent next queues up behind it and travels.
            let early = tokio::time::timeout(Duration::ZERO, &mut moving).await;
            for _ in 0..queued {
                A::add_one(counter)?;
            }
            let outcome = match early {
                Ok(outcome) => outcome,
                Err(_) => moving.await,
            };
            match outcome {
                Ok(report) => println!("migrated: {report}"),
                Err(e) => println!("migration failed: {e}"),
            }
        }
        _ => println!("commands: migrate DEST [N] | describe | retired | quit"),
    }
    Ok(())
}
