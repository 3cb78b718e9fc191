//! The seed's quick start, outside the cluster: two nodes of two clusters on
//! TCP. In two terminals:
//!
//! ```text
//! cargo run --example tcp_node -- --port 1805 --spawn
//! cargo run --example tcp_node -- --port 1806
//! ```
//!
//! The first node starts the `pinger` actor and pings it every second. Type
//! `send_me tcp://localhost:1806` at its prompt: the actor moves to the other
//! node (another cluster), and the pings keep being answered — now over TCP,
//! through the same handle. Other commands: `migrate DEST` (prints the
//! migration report), `status`, `quit`.
//!
//! Both nodes must share a secret: `--secret S` or `MOBILITY_SECRET=S`. Each
//! node is its own cluster (`--cluster`, default `cluster-PORT`) and trusts
//! the other clusters that prove the same secret; node identities then
//! derive from the secret (a warning says so).
//!
//! With per-node identities (README, "Node identities"), the node reads its
//! key, certificate and cluster authority from `MOBILITY_NODE_KEY`,
//! `MOBILITY_NODE_CERT` and `MOBILITY_CLUSTER_AUTHORITY` (or the same names
//! with `_FILE`, holding a path), and trusts only the other clusters listed
//! in `MOBILITY_TRUSTED_CLUSTERS` (`cluster=authority-key`, comma
//! separated). Mint them with `cargo run --example mint_identity`.

use std::time::Duration;

use mobility::prelude::*;
use mobility::TcpConfig;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Counts the pings it handles, wherever it runs.
#[mobile]
#[derive(Default)]
pub struct Pinger {
    pings: u64,
}

#[mobile]
impl Pinger {
    /// Handles one ping; returns the count and the node that handled it.
    pub fn ping(&mut self, from: String, ctx: &mut Context<Self>) -> (u64, String) {
        self.pings += 1;
        println!("[{}] ping #{} from {from}", ctx.node().id(), self.pings);
        (self.pings, ctx.node().id().to_string())
    }

    /// Moves itself to `to` (the seed's `send_me`).
    pub fn send_me(&mut self, to: Destination, ctx: &mut Context<Self>) {
        println!("[{}] pinger leaving for {to}", ctx.node().id());
        ctx.migrate_to(to);
    }

    /// How many pings it has handled.
    pub fn pings(&self) -> u64 {
        self.pings
    }

    #[mobile(on_arrive)]
    fn arrived(&mut self, ctx: &mut Context<Self>) {
        println!(
            "[{}] pinger arrived with {} pings",
            ctx.node().id(),
            self.pings
        );
    }
}

struct Args {
    port: u16,
    name: Option<String>,
    cluster: Option<String>,
    secret: String,
    spawn: bool,
    ping_every: Duration,
}

fn usage() -> String {
    "usage: tcp_node --port PORT [--spawn] [--name NODE] [--cluster ID] [--secret S] [--ping-ms MS]\n\
     (the secret may also come from MOBILITY_SECRET)"
        .to_string()
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        port: 1805,
        name: None,
        cluster: None,
        secret: std::env::var("MOBILITY_SECRET").unwrap_or_default(),
        spawn: false,
        ping_every: Duration::from_secs(1),
    };
    while let Some(flag) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .ok_or_else(|| format!("{flag} needs {what}\n{}", usage()))
        };
        match flag.as_str() {
            "--port" => {
                parsed.port = value("a port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--name" => parsed.name = Some(value("a node id")?),
            "--cluster" => parsed.cluster = Some(value("a cluster id")?),
            "--secret" => parsed.secret = value("a secret")?,
            "--ping-ms" => {
                let ms: u64 = value("milliseconds")?
                    .parse()
                    .map_err(|e| format!("--ping-ms: {e}"))?;
                parsed.ping_every = Duration::from_millis(ms.max(1));
            }
            "--spawn" => parsed.spawn = true,
            "--help" | "-h" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if parsed.secret.is_empty() {
        return Err(format!(
            "give a shared secret with --secret or MOBILITY_SECRET\n{}",
            usage()
        ));
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let name = args.name.unwrap_or_else(|| format!("node-{}", args.port));
    let cluster = args
        .cluster
        .unwrap_or_else(|| format!("cluster-{}", args.port));
    let tcp = TcpConfig::default().with_identity_from_env()?;
    let identity = match &tcp.credentials {
        Some(credentials) => format!(
            "its own key, certified by {}",
            credentials.certificate.issuer()?
        ),
        None => "derived from the shared secret".to_owned(),
    };
    let mut builder = Node::builder()
        .id(&name)
        .cluster(&cluster, &args.secret)
        .listen(format!("127.0.0.1:{}", args.port));
    if tcp.credentials.is_none() {
        // Zero configuration: every cluster that proves the same secret.
        builder = builder.trust_cluster("*", &args.secret);
    }
    let node = builder.tcp_config(tcp).start().await?;
    println!("identity of {name}: {identity}");
    let addr = node.listen_addr().ok_or("the node does not listen")?;
    println!("node {} of {cluster} listening on {addr}", node.id());

    let pinger = if args.spawn {
        let pinger = node.spawn_named("pinger", Pinger::default()).await?;
        println!(
            "spawned pinger {}; type `send_me tcp://HOST:PORT` to move it",
            pinger.id()
        );
        let client = pinger.clone();
        let me = node.id().to_string();
        let every = args.ping_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match client.ping(me.clone()).await {
                    Ok((count, at)) => println!("pong: ping #{count} handled on {at}"),
                    Err(e) => println!("ping failed: {e}"),
                }
            }
        });
        Some(pinger)
    } else {
        None
    };

    // Ctrl-C or SIGTERM: this node is in no cluster, so its actors stop
    // with it (type `drain DEST` first to keep them).
    tokio::spawn({
        let node = node.clone();
        async move {
            let _ = node.shutdown_on_signal().await;
            println!("signal: node {} stopped", node.id());
            std::process::exit(0);
        }
    });

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (None, _) => {}
            (Some("quit"), _) => break,
            (Some("status"), _) => {
                println!(
                    "node {} hosts {} actor(s); peers: {:?}",
                    node.id(),
                    node.hosted().len(),
                    node.peers()
                );
                if let Some(pinger) = &pinger {
                    println!(
                        "pinger lives on {} with {:?} pings",
                        pinger.location(),
                        pinger.pings().await
                    );
                }
            }
            (Some("drain"), Some(dest)) => {
                let dest: Destination = match dest.parse() {
                    Ok(dest) => dest,
                    Err(e) => {
                        println!("{e}");
                        continue;
                    }
                };
                match node.drain_to(dest).await {
                    Ok(report) => {
                        println!(
                            "drained: {} actor(s) moved in {:.1?}; node {} stopped",
                            report.moved.len(),
                            report.took,
                            node.id()
                        );
                        return Ok(());
                    }
                    Err(e) => println!("drain failed: {e}"),
                }
            }
            (Some(command @ ("send_me" | "migrate")), Some(dest)) => {
                let Some(pinger) = &pinger else {
                    println!("no pinger was spawned on this node");
                    continue;
                };
                let dest: Destination = match dest.parse() {
                    Ok(dest) => dest,
                    Err(e) => {
                        println!("{e}");
                        continue;
                    }
                };
                if command == "send_me" {
                    match pinger.send_me(dest).await {
                        Ok(()) => println!("asked the pinger to move"),
                        Err(e) => println!("send_me failed: {e}"),
                    }
                } else {
                    match node.migrate(pinger, dest).await {
                        Ok(report) => println!("migrated: {report}"),
                        Err(e) => println!("migration failed: {e}"),
                    }
                }
            }
            _ => println!("commands: send_me DEST | migrate DEST | drain DEST | status | quit"),
        }
    }
    node.shutdown().await;
    Ok(())
}
