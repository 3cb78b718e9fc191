//! A node's metrics for Prometheus: two members of a cluster in this
//! process, actors under a steady load, one of them moving between the two
//! every half second, and every metric of `mobility::metrics` served at
//! `http://ADDR/metrics` by `metrics-exporter-prometheus`'s own listener.
//!
//! ```text
//! cargo run --example prometheus                              # OS-chosen port
//! cargo run --example prometheus -- --metrics 127.0.0.1:9464  # a fixed one
//! curl -s http://127.0.0.1:9464/metrics | grep mobility_
//! ```
//!
//! It prints `metrics on http://ADDR/metrics` once the exporter listens,
//! then runs until Ctrl-C (or for `--seconds N`). Options: `--actors N`
//! (default 4), `--every-ms N` (the pause between two rounds of calls,
//! default 5).

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use mobility::prelude::*;

/// A counter that can be asked to move itself.
#[mobile]
#[derive(Default)]
pub struct Meter {
    count: u64,
}

#[mobile]
impl Meter {
    pub fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }
}

struct Args {
    metrics: SocketAddr,
    seconds: Option<u64>,
    actors: usize,
    every: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        metrics: SocketAddr::from(([127, 0, 0, 1], 0)),
        seconds: None,
        actors: 4,
        every: Duration::from_millis(5),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--metrics" => {
                args.metrics = value()?.parse().map_err(|e| format!("--metrics: {e}"))?
            }
            "--seconds" => {
                args.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            "--actors" => args.actors = value()?.parse().map_err(|e| format!("--actors: {e}"))?,
            "--every-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--every-ms: {e}"))?;
                args.every = Duration::from_millis(ms);
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

/// Where the exporter listens. Port 0 asks the OS for a free port first:
/// the exporter binds the address itself and does not tell which port it
/// got (the port is free again between the two binds; on loopback nobody
/// else takes it in that moment).
fn metrics_addr(wanted: SocketAddr) -> std::io::Result<SocketAddr> {
    if wanted.port() != 0 {
        return Ok(wanted);
    }
    TcpListener::bind(wanted)?.local_addr()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    // The recorder first: a node decides at its start whether it records.
    let addr = metrics_addr(args.metrics)?;
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()?;

    let member = |id: &str| {
        Node::builder()
            .id(id)
            .cluster("prometheus-demo", "a demo secret (public!)")
            .listen("127.0.0.1:0")
            .gossip_interval(Duration::from_millis(100))
    };
    let a = member("a").start().await?;
    let mut joined = a.member_events();
    let seed = a.listen_addr().ok_or("node a does not listen")?.to_string();
    let b = member("b").join(&seed).start().await?;
    // Gossip takes a few rounds: b is a member once a has heard of it.
    while a.members().len() < 2 || b.members().len() < 2 {
        let _ = tokio::time::timeout(Duration::from_millis(100), joined.recv()).await;
    }

    let mut meters = Vec::new();
    for i in 0..args.actors {
        let node = if i % 2 == 0 { &a } else { &b };
        meters.push(
            node.spawn_named(format!("meter-{i}"), Meter::default())
                .await?,
        );
    }
    println!("metrics on http://{addr}/metrics");

    // The load: every actor called in turn, from node a (some of them live
    // on b: those calls cross the link).
    let load = {
        let meters = meters.clone();
        let every = args.every;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                for meter in &meters {
                    if let Err(e) = meter.add(1).await {
                        eprintln!("call failed: {e}");
                    }
                }
            }
        })
    };
    // One actor moves between the two nodes, from wherever it is.
    let mover = {
        let (a, b, meter) = (a.clone(), b.clone(), meters[0].clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(500));
            let mut to_b = true;
            loop {
                ticks.tick().await;
                let dest = if to_b { b.id() } else { a.id() };
                match a.migrate(&meter, dest).await {
                    Ok(report) => println!("moved to {} in {:?}", report.to, report.freeze),
                    Err(e) => eprintln!("move failed: {e}"),
                }
                to_b = !to_b;
            }
        })
    };

    match args.seconds {
        Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
        None => tokio::signal::ctrl_c().await?,
    }
    load.abort();
    mover.abort();
    b.shutdown().await;
    a.shutdown().await;
    Ok(())
}
