//! The main job, in one process on loopback TCP: a cluster `home` of three
//! nodes (node-a, node-b, node-c) that find each other by gossip (b and c
//! join through a), and a node of another cluster, `away` (node-x), that
//! trusts `home`.
//!
//! A tally actor, registered under the cluster-wide name `tally`, moves a
//! dozen times: inside the cluster (a -> b -> c), out to the other cluster
//! (`tcp://` node-x), and back into the cluster, again and again. Meanwhile
//! senders on every node of `home`, each holding a handle it got by looking
//! the name up on its own node, keep sending numbered messages
//! (fire-and-forget) and requests. Every move's report is printed (freeze
//! time and phases, bytes, messages moved and forwarded), then the tally:
//! everything sent was handled exactly once and in order, nothing lost, and
//! the freeze times. The process exits non-zero if anything was lost,
//! duplicated or reordered, or if a move, a sender or a lookup saw an error.
//!
//! Run with `cargo run --example demo` (add `RUST_LOG=mobility=debug` to see
//! the runtime's events).
//!
//! With `--dashboard` (or `--dashboard=ADDR` for node-a's page), each node
//! also serves its live web page (`Node::serve_dashboard`) and the demo
//! prints their addresses; the tally then keeps moving, a move a second,
//! until Ctrl-C, and the tally is printed as usual.

use std::collections::HashMap;
use std::time::{Duration, Instant};

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
/// returns how many it sent, and the error that stopped it early, if any.
async fn sender(
    name: String,
    tally: Handle<Tally>,
    mut stop: watch::Receiver<bool>,
) -> (u64, Option<Error>) {
    let mut n = 0;
    while !*stop.borrow_and_update() {
        for _ in 0..3 {
            if let Err(e) = tally.tell().record(name.clone(), n) {
                return (n, Some(e));
            }
            n += 1;
        }
        let request = tally.record_and_count(name.clone(), n).await;
        n += 1;
        if let Err(e) = request {
            return (n, Some(e));
        }
        if n % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    (n, None)
}

/// Waits until `check` holds, or fails after `within`.
async fn wait_until(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    while !check().await {
        if Instant::now() > deadline {
            return Err(format!("timed out after {within:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// `None` for a plain run; with `--dashboard`, where node-a's page listens.
fn dashboard_flag() -> Result<Option<String>, String> {
    let mut dashboard = None;
    for arg in std::env::args().skip(1) {
        match arg.strip_prefix("--dashboard") {
            Some("") => dashboard = Some("127.0.0.1:0".to_owned()),
            Some(addr) if addr.starts_with('=') => dashboard = Some(addr[1..].to_owned()),
            _ => {
                return Err(format!(
                    "unknown argument {arg:?}; usage: demo [--dashboard[=ADDR]]"
                ))
            }
        }
    }
    Ok(dashboard)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dashboard = dashboard_flag()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();

    const HOME: &str = "a secret of cluster home";
    const AWAY: &str = "a secret of cluster away";
    const FEDERATION: &str = "a secret home and away share";
    const PATIENCE: Duration = Duration::from_secs(20);
    let node = |id: &str, cluster: &str, secret: &str, seed: Option<&str>| {
        let mut builder = Node::builder()
            .id(id)
            .cluster(cluster, secret)
            .trust_cluster(if cluster == "home" { "away" } else { "home" }, FEDERATION)
            .listen("127.0.0.1:0")
            .gossip_interval(Duration::from_millis(50))
            .failure_timeout(Duration::from_secs(5))
            // Each step of a move may take 3 s before it is abandoned (the
            // actor then stays where it was): a failure shows in seconds.
            .migration_timeout(Duration::from_secs(3));
        if let Some(seed) = seed {
            builder = builder.join(seed);
        }
        builder.start()
    };
    let addr = |n: &Node| {
        n.listen_addr()
            .map(|a| a.to_string())
            .ok_or("not listening")
    };
    let a = node("node-a", "home", HOME, None).await?;
    let seed = addr(&a)?;
    let b = node("node-b", "home", HOME, Some(&seed)).await?;
    let c = node("node-c", "home", HOME, Some(&seed)).await?;
    let x = node("node-x", "away", AWAY, None).await?;
    let home = [&a, &b, &c];
    let started = Instant::now();
    for n in home {
        wait_until("the three members of home", PATIENCE, async || {
            n.members().len() == 3
        })
        .await?;
    }
    println!(
        "cluster home (gossip, joined through {}'s {seed}): {}, in {:.0?}",
        a.id(),
        home.iter()
            .map(|n| Ok(format!("{} on {}", n.id(), addr(n)?)))
            .collect::<Result<Vec<_>, &str>>()?
            .join(", "),
        started.elapsed()
    );
    println!("cluster away: {} on {}", x.id(), addr(&x)?);
    // Kept until the end: a dashboard serves until it is dropped.
    let mut dashboards = Vec::new();
    if let Some(listen) = &dashboard {
        println!("\nlive dashboards (each node shows its own actors and the cluster's names):");
        for (n, listen) in [
            (&a, listen.as_str()),
            (&b, "127.0.0.1:0"),
            (&c, "127.0.0.1:0"),
            (&x, "127.0.0.1:0"),
        ] {
            let page = n.serve_dashboard(listen).await?;
            println!("  {}: {}", n.id(), page.url());
            dashboards.push(page);
        }
    }

    let tally = a.spawn_named("tally", Tally::default()).await?;
    println!("spawned actor {} on {} as \"tally\"", tally.id(), a.id());

    // Two senders on each node of home, each with a handle found by name on
    // its own node.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut senders = Vec::new();
    for n in home {
        let mut found = None;
        wait_until("the name tally in the directory", PATIENCE, async || {
            found = n.lookup::<Tally>("tally").await.ok();
            found.is_some()
        })
        .await?;
        let handle = found.ok_or("lookup")?;
        for i in 0..2 {
            let name = format!("{}/sender-{i}", n.id());
            senders.push(tokio::spawn(sender(name, handle.clone(), stop_rx.clone())));
        }
    }
    println!(
        "{} senders (2 on each node of home) look tally up by name and send throughout",
        senders.len()
    );

    // a -> b -> c inside home, out to x (by address: x is not a member),
    // back to a by address, three times over (with a dashboard, until
    // Ctrl-C, slowly enough to watch).
    let tcp = |n: &Node| -> Result<Destination, Box<dyn std::error::Error>> {
        Ok(format!("tcp://{}", addr(n)?).parse()?)
    };
    let round: [Destination; 4] = [b.id().into(), c.id().into(), tcp(&x)?, tcp(&a)?];
    let route = round.into_iter().cycle();
    let (route, pause): (Box<dyn Iterator<Item = Destination>>, _) = match &dashboard {
        None => (Box::new(route.take(12)), Duration::from_millis(40)),
        Some(_) => (Box::new(route), Duration::from_secs(1)),
    };
    // Only with a dashboard: a plain run keeps Ctrl-C's default.
    let mut ctrl_c = dashboard
        .as_ref()
        .map(|_| Box::pin(tokio::signal::ctrl_c()));

    println!("\nmigrating under load (inside the cluster, out to the other cluster, back):");
    if dashboard.is_some() {
        println!("  (a move a second until Ctrl-C)");
    }
    let mut problems: Vec<String> = Vec::new();
    let mut freezes = Vec::new();
    for (i, dest) in route.enumerate() {
        if let Some(ctrl_c) = &mut ctrl_c {
            tokio::select! {
                _ = ctrl_c => {
                    println!("\nCtrl-C: the moves stop");
                    break;
                }
                () = tokio::time::sleep(pause) => {}
            }
        } else {
            tokio::time::sleep(pause).await;
        }
        let report = match a.migrate(&tally, dest.clone()).await {
            Ok(report) => report,
            Err(e) => {
                println!("  move {:>2}: to {dest} FAILED: {e}", i + 1);
                problems.push(format!("move {} to {dest} failed: {e}", i + 1));
                break;
            }
        };
        let kind = if report.to == *x.id() {
            "out of cluster"
        } else if report.from == *x.id() {
            "back into home"
        } else {
            "in cluster"
        };
        println!(
            "  move {:>2}: {} -> {} ({kind:>14})  freeze {:>9.3?}  (capture {:.3?}, prepare {:.3?} incl. restore {:.3?}, commit {:.3?}, first message handled {})  {} B state, {} B snapshot, {} queued, {} forwarded",
            i + 1,
            report.from,
            report.to,
            report.freeze,
            report.capture,
            report.prepare,
            report.restore,
            report.commit,
            report
                .first_message
                .map_or_else(|| "-".to_owned(), |d| format!("{d:.3?}")),
            report.state_bytes,
            report.snapshot_bytes,
            report.queued_messages,
            report.forwarded_messages
        );
        freezes.push(report.freeze);
    }

    stop_tx.send(true)?;
    let mut sent = 0;
    for task in senders {
        let (n, error) = task.await?;
        sent += n;
        if let Some(error) = error {
            problems.push(format!("a sender stopped on an error: {error}"));
        }
    }
    let mut found_everywhere = true;
    for n in home {
        match n.lookup::<Tally>("tally").await {
            Ok(found) => found_everywhere &= found.id() == tally.id(),
            Err(e) => {
                found_everywhere = false;
                problems.push(format!("lookup of tally on {} failed: {e}", n.id()));
            }
        }
    }
    println!(
        "\nactor now on {}; lookup by name from every node of home finds it: {found_everywhere}",
        tally.location()
    );
    println!(
        "messages forwarded by old locations: {}",
        [&a, &b, &c, &x]
            .iter()
            .map(|n| format!("{} {}", n.id(), n.stats().forwarded_messages))
            .collect::<Vec<_>>()
            .join(", ")
    );
    freezes.sort();
    if let (Some(median), Some(max)) = (freezes.get(freezes.len() / 2), freezes.last()) {
        println!(
            "freeze time over {} moves: median {median:.3?}, max {max:.3?}",
            freezes.len()
        );
    }
    match tally.totals().await {
        Ok(totals) => {
            let lost = sent.saturating_sub(totals.handled);
            println!(
                "\ntally: sent {sent}, handled exactly once {}, duplicates {}, out of order {}, lost {lost}",
                totals.handled, totals.duplicates, totals.out_of_order,
            );
            println!("the actor itself counted {} arrivals", totals.moves_seen);
            if lost > 0 || totals.handled != sent {
                problems.push(format!("{sent} sent but {} handled", totals.handled));
            }
            if totals.duplicates > 0 || totals.out_of_order > 0 {
                problems.push(format!(
                    "{} handled twice, {} out of order",
                    totals.duplicates, totals.out_of_order
                ));
            }
        }
        Err(e) => problems.push(format!("the tally did not answer: {e}")),
    }

    drop(dashboards);
    for n in [&a, &b, &c, &x] {
        n.shutdown().await;
    }
    if !problems.is_empty() {
        for problem in &problems {
            println!("FAILED: {problem}");
        }
        std::process::exit(1);
    }
    println!("nothing lost, nothing twice, nothing out of order.");
    Ok(())
}
