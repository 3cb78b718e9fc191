//! The main job: a cluster of two nodes (`home`: node-a, node-b) and a node
//! of another cluster (`away`: node-c), all on loopback TCP in one process.
//! A tally actor moves inside the cluster and out to the other cluster and
//! back, again and again, while senders on node-a and node-b keep sending
//! numbered messages and requests. Every move's report is printed, then the
//! tally: everything sent was handled exactly once and in order, nothing was
//! lost.
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

    const HOME: &str = "a secret of cluster home";
    const FEDERATION: &str = "a secret home and away share";
    let node = |id: &'static str, cluster: &'static str, secret: &'static str| {
        Node::builder()
            .id(id)
            .cluster(cluster, secret)
            .trust_cluster(if cluster == "home" { "away" } else { "home" }, FEDERATION)
            .listen("127.0.0.1:0")
            .start()
    };
    let a = node("node-a", "home", HOME).await?;
    let b = node("node-b", "home", HOME).await?;
    let c = node("node-c", "away", "a secret of cluster away").await?;
    let addr = |n: &Node| {
        n.listen_addr()
            .map(|a| a.to_string())
            .ok_or("not listening")
    };
    a.connect(&addr(&b)?).await?;
    println!(
        "cluster home: {} on {}, {} on {}; cluster away: {} on {}",
        a.id(),
        addr(&a)?,
        b.id(),
        addr(&b)?,
        c.id(),
        addr(&c)?
    );
    let to_c: Destination = format!("tcp://{}", addr(&c)?).parse()?;

    let tally = a.spawn_named("tally", Tally::default()).await?;
    println!("spawned actor {} on {} as \"tally\"", tally.id(), a.id());

    // Two senders on each node of cluster home; those on node-b send through node-b.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut senders = Vec::new();
    for (i, node) in [&a, &b, &a, &b].into_iter().enumerate() {
        let handle = node.bind(&tally)?;
        let name = format!("{}/sender-{i}", node.id());
        senders.push(tokio::spawn(sender(name, handle, stop_rx.clone())));
    }

    println!("\nmigrating under load (inside the cluster, out to the other cluster, back):");
    let mut freezes = Vec::new();
    for round in 0..12 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let dest: Destination = match round % 3 {
            0 => b.id().into(),
            1 => to_c.clone(),
            _ => a.id().into(),
        };
        let report = a.migrate(&tally, dest).await?;
        let kind = if report.to == *c.id() || report.from == *c.id() {
            "across clusters"
        } else {
            "in cluster"
        };
        println!(
            "  move {:>2}: {} -> {} ({kind:>15})  freeze {:>9.3?}  (capture {:.3?}, prepare {:.3?}, commit {:.3?})  {} B state, {} queued, {} forwarded",
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
            let found = b.lookup::<Tally>("tally").await?;
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
    c.shutdown().await;
    if !ok {
        return Err("a message was lost, duplicated or reordered".into());
    }
    println!("nothing lost.");
    Ok(())
}
