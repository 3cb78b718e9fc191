//! The main job: two nodes in one process, a counter actor migrating between
//! them while senders on both nodes keep sending numbered messages and
//! requests. Every move's report is printed, then the tally: everything sent
//! was handled exactly once and in order, nothing was lost.
//!
//! Run with `cargo run --example demo` (add `RUST_LOG=mobility=debug` to see
//! the runtime's events).

use std::collections::HashMap;
use std::time::Duration;

use mobility::prelude::*;
use tokio::sync::watch;

/// Counts numbered messages per sender and notices any that come twice or
/// out of order.
#[mobile]
#[derive(Default)]
pub struct Tally {
    next: HashMap<String, u64>,
    handled: u64,
    duplicates: u64,
    out_of_order: u64,
    moves_seen: u32,
}

/// What the tally saw.
#[mobile]
#[derive(Debug, Clone, Copy)]
pub struct Totals {
    handled: u64,
    duplicates: u64,
    out_of_order: u64,
    moves_seen: u32,
}

#[mobile]
impl Tally {
    /// One numbered message from `sender` (sent fire-and-forget).
    pub fn record(&mut self, sender: String, n: u64) {
        self.check(sender, n);
    }

    /// One numbered request from `sender`; returns how many it has handled.
    pub fn record_and_count(&mut self, sender: String, n: u64) -> u64 {
        self.check(sender, n);
        self.handled
    }

    /// The totals so far.
    pub fn totals(&self) -> Totals {
        Totals {
            handled: self.handled,
            duplicates: self.duplicates,
            out_of_order: self.out_of_order,
            moves_seen: self.moves_seen,
        }
    }

    fn check(&mut self, sender: String, n: u64) {
        let next = self.next.entry(sender).or_insert(0);
        if n < *next {
            self.duplicates += 1;
        } else {
            if n > *next {
                self.out_of_order += 1;
            }
            self.handled += 1;
            *next = n + 1;
        }
    }

    #[mobile(on_arrive)]
    fn arrived(&mut self) {
        self.moves_seen += 1;
    }
}

/// Sends numbered messages (three tells, then a request) until told to stop;
/// returns how many it sent.
async fn sender(
    name: String,
    tally: Handle<Tally>,
    mut stop: watch::Receiver<bool>,
) -> Result<u64, Error> {
    let mut n = 0;
    while !*stop.borrow_and_update() {
        for _ in 0..3 {
            tally.tell().record(name.clone(), n)?;
            n += 1;
        }
        tally.record_and_count(name.clone(), n).await?;
        n += 1;
        if n % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    Ok(n)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();

    let a = Node::builder().id("node-a").start().await?;
    let b = Node::builder().id("node-b").start().await?;
    a.connect_in_process(&b)?;
    println!("started {} and {}, linked in process", a.id(), b.id());

    let tally = a.spawn_named("tally", Tally::default()).await?;
    println!("spawned actor {} on {} as \"tally\"", tally.id(), a.id());

    // Two senders on each node; those on node-b send through node-b.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut senders = Vec::new();
    for (i, node) in [&a, &b, &a, &b].into_iter().enumerate() {
        let handle = node.bind(&tally)?;
        let name = format!("{}/sender-{i}", node.id());
        senders.push(tokio::spawn(sender(name, handle, stop_rx.clone())));
    }

    println!("\nmigrating under load:");
    let mut freezes = Vec::new();
    for round in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let dest = if round % 2 == 0 { b.id() } else { a.id() };
        let report = a.migrate(&tally, dest).await?;
        println!(
            "  move {:>2}: {} -> {}  freeze {:>8.3?}  (capture {:.3?}, prepare {:.3?}, commit {:.3?})  {} B state, {} queued msgs moved, {} forwarded",
            round + 1,
            report.from,
            report.to,
            report.freeze,
            report.capture,
            report.prepare,
            report.commit,
            report.state_bytes,
            report.queued_messages,
            report.forwarded_messages
        );
        freezes.push(report.freeze);
    }

    stop_tx.send(true)?;
    let mut sent = 0;
    for task in senders {
        sent += task.await??;
    }
    let totals = tally.totals().await?;
    freezes.sort();
    println!(
        "\nactor now on {}; lookup by name from node-b finds it: {}",
        tally.location(),
        {
            let found = b.lookup::<Tally>("tally")?;
            found.id() == tally.id()
        }
    );
    println!(
        "freeze time: median {:.3?}, max {:.3?}",
        freezes[freezes.len() / 2],
        freezes[freezes.len() - 1]
    );
    println!(
        "\ntally: sent {sent}, handled {} (exactly once: {} duplicates), out of order {}, lost {}",
        totals.handled,
        totals.duplicates,
        totals.out_of_order,
        sent - totals.handled
    );
    println!("the actor itself counted {} arrivals", totals.moves_seen);

    let ok = totals.handled == sent && totals.duplicates == 0 && totals.out_of_order == 0;
    a.shutdown().await;
    b.shutdown().await;
    if !ok {
        return Err("a message was lost, duplicated or reordered".into());
    }
    println!("nothing lost.");
    Ok(())
}
