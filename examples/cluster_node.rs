//! A cluster in two (or more) terminals: nodes that join through gossip, an
//! actor found by name from every member, moving between them live.
//!
//! ```text
//! cargo run --example cluster_node -- --name a
//! cargo run --example cluster_node -- --name b --join 127.0.0.1:PORT --client
//! ```
//!
//! The first node prints the address the others join with (`--port 0`, the
//! default, lets the OS pick a free port; `--port 1805` fixes it). A node
//! started without `--join` (or with `--spawn`) starts the `greeter` actor:
//! every greeting it answers says which node answered and how many it has
//! answered in all. Commands at the prompt (one a line):
//!
//! - `call`: looks the greeter up by name from this node and greets it;
//! - `send_me NODE`: asks the greeter to move itself to `NODE` (a member's
//!   id, or `tcp://host:port` for a node of another cluster), then tells
//!   where it runs now;
//! - `migrate NODE`: moves it from outside and prints the migration report
//!   (freeze time, phases, bytes);
//! - `members`, `where` (where the greeter runs), `drain` (move every actor
//!   of this node to the other members, leave the cluster and exit), `quit`
//!   (stop this node: the actors it hosts stop with it), `help`.
//!
//! With `--client`, the node greets the actor every second (`--client-ms`)
//! through a handle it got by name: the answers keep coming, from wherever
//! the actor is, during and after every move. Membership events (joined,
//! left, failed) are printed as they come.
//!
//! Members share a cluster id (`--cluster`, default `demo`) and a secret
//! (`--secret S` or `MOBILITY_SECRET=S`; without one a public demo secret is
//! used, with a warning). Set `RUST_LOG=mobility=info` to see the runtime's
//! events on stderr.
//!
//! With per-node identities (README, "Node identities"), the node reads its
//! key, certificate and cluster authority from `MOBILITY_NODE_KEY`,
//! `MOBILITY_NODE_CERT` and `MOBILITY_CLUSTER_AUTHORITY` (or the same names
//! with `_FILE`, holding a path), and trusts only the other clusters listed
//! in `MOBILITY_TRUSTED_CLUSTERS`; without them, identities derive from the
//! secret. Mint them with `cargo run --example mint_identity`.

use std::net::IpAddr;
use std::time::Duration;

use mobility::prelude::*;
use mobility::TcpConfig;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::broadcast::error::RecvError;

/// The name the greeter is registered under, cluster-wide.
const GREETER: &str = "greeter";

/// The secret used when none is given: anyone who reads this file knows it.
const DEMO_SECRET: &str = "mobility cluster_node demo secret (public!)";

/// Answers greetings and says where it runs; counts them wherever it goes.
#[mobile]
#[derive(Default)]
pub struct Greeter {
    greetings: u64,
}

#[mobile]
impl Greeter {
    /// One greeting from node `from`: returns how many the greeter has
    /// answered in all and the node that answered this one.
    pub fn greet(&mut self, from: String, ctx: &mut Context<Self>) -> (u64, String) {
        self.greetings += 1;
        let here = ctx.node().id().to_string();
        println!("greeter: greeting #{} from {from}", self.greetings);
        (self.greetings, here)
    }

    /// The node the greeter runs on.
    pub fn where_am_i(&self, ctx: &mut Context<Self>) -> String {
        ctx.node().id().to_string()
    }

    /// The seed's `send_me`: the actor asks to move itself to `to` once this
    /// handler returns. Returns the node it leaves.
    pub fn send_me(&mut self, to: Destination, ctx: &mut Context<Self>) -> String {
        println!("greeter: leaving for {to}");
        ctx.migrate_to(to);
        ctx.node().id().to_string()
    }

    #[mobile(on_arrive)]
    fn arrived(&mut self) {
        println!(
            "greeter: arrived here with {} greetings answered",
            self.greetings
        );
    }
}

struct Args {
    name: String,
    host: IpAddr,
    port: u16,
    joins: Vec<String>,
    cluster: String,
    secret: Option<String>,
    spawn: bool,
    client: Option<Duration>,
}

fn usage() -> String {
    "usage: cluster_node --name NODE [--port PORT] [--host IP] [--join HOST:PORT]... \
     [--cluster ID] [--secret S] [--spawn] [--client] [--client-ms MS]\n\
     --name      this node's id (letters, digits, '-', '_', '.'), unique in the cluster\n\
     --port      TCP (and UDP gossip) port; 0, the default, lets the OS choose\n\
     --host      the IP address to listen on and to give the others (default 127.0.0.1)\n\
     --join      a member's address to join the cluster through (repeatable)\n\
     --cluster   the cluster id (default demo)\n\
     --secret    the secret the members share (or MOBILITY_SECRET; default: a public demo secret)\n\
     --spawn     start the greeter here (the default for a node started without --join)\n\
     --client    greet the actor every second from this node\n\
     --client-ms the client's period in milliseconds (implies --client)"
        .to_string()
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut name = None;
    let mut parsed = Args {
        name: String::new(),
        host: IpAddr::from([127, 0, 0, 1]),
        port: 0,
        joins: Vec::new(),
        cluster: "demo".to_string(),
        secret: std::env::var("MOBILITY_SECRET")
            .ok()
            .filter(|s| !s.is_empty()),
        spawn: false,
        client: None,
    };
    while let Some(flag) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .ok_or_else(|| format!("{flag} needs {what}\n{}", usage()))
        };
        match flag.as_str() {
            "--name" => name = Some(value("a node id")?),
            "--port" => {
                parsed.port = value("a port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--host" => {
                let host: IpAddr = value("an IP address")?
                    .parse()
                    .map_err(|e| format!("--host: {e}"))?;
                if host.is_unspecified() {
                    return Err(format!(
                        "--host {host}: give an address the other nodes can reach, not the unspecified one"
                    ));
                }
                parsed.host = host;
            }
            "--join" => parsed.joins.push(value("an address HOST:PORT")?),
            "--cluster" => parsed.cluster = value("a cluster id")?,
            "--secret" => parsed.secret = Some(value("a secret")?),
            "--spawn" => parsed.spawn = true,
            "--client" => {
                parsed.client.get_or_insert(Duration::from_secs(1));
            }
            "--client-ms" => {
                let ms: u64 = value("milliseconds")?
                    .parse()
                    .map_err(|e| format!("--client-ms: {e}"))?;
                parsed.client = Some(Duration::from_millis(ms.max(1)));
            }
            "--help" | "-h" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    parsed.name = name.ok_or_else(|| format!("--name is required\n{}", usage()))?;
    NodeId::new(&parsed.name).map_err(|e| format!("--name: {e}"))?;
    if parsed.joins.is_empty() {
        parsed.spawn = true;
    }
    Ok(parsed)
}

/// One line typed at the prompt.
#[derive(Debug)]
enum Command {
    Call,
    SendMe(Destination),
    Migrate(Destination),
    Members,
    Where,
    Drain,
    Quit,
    Help,
}

const COMMANDS: &str = concat!(
    "commands: call | send_me NODE | migrate NODE | members | where | drain | quit | help ",
    "(NODE: a member's id, or tcp://host:port for a node of another cluster)"
);

/// Parses one line; `Ok(None)` for an empty one.
fn parse_command(line: &str) -> Result<Option<Command>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&word, rest)) = words.split_first() else {
        return Ok(None);
    };
    let no_argument = |command: Command| {
        if rest.is_empty() {
            Ok(Some(command))
        } else {
            Err(format!(
                "{word} takes no argument (got {:?})",
                rest.join(" ")
            ))
        }
    };
    let destination = || match rest {
        [] => Err(format!(
            "{word} needs a destination: a member's id (see `members`) or tcp://host:port"
        )),
        [dest] => dest.parse::<Destination>().map_err(|e| e.to_string()),
        _ => Err(format!(
            "{word} takes one destination (got {:?})",
            rest.join(" ")
        )),
    };
    match word {
        "call" => no_argument(Command::Call),
        "send_me" => destination().map(|d| Some(Command::SendMe(d))),
        "migrate" => destination().map(|d| Some(Command::Migrate(d))),
        "members" => no_argument(Command::Members),
        "where" => no_argument(Command::Where),
        "drain" => no_argument(Command::Drain),
        "quit" | "exit" => no_argument(Command::Quit),
        "help" | "?" => Ok(Some(Command::Help)),
        other => Err(format!("unknown command {other:?}")),
    }
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
    let secret = match &args.secret {
        Some(secret) => secret.clone(),
        None => {
            eprintln!(
                "warning: no --secret or MOBILITY_SECRET given: using the public demo secret; \
                 anyone who has this example can join this cluster"
            );
            DEMO_SECRET.to_string()
        }
    };
    let tcp = TcpConfig::default().with_identity_from_env()?;
    let mut builder = Node::builder()
        .id(&args.name)
        .cluster(&args.cluster, &secret)
        .listen(std::net::SocketAddr::new(args.host, args.port).to_string());
    if tcp.credentials.is_none() {
        // Nodes of other clusters that prove the same secret may exchange
        // actors with this one (`send_me tcp://host:port`). With per-node
        // identities, only the clusters of MOBILITY_TRUSTED_CLUSTERS.
        builder = builder.trust_cluster("*", &secret);
    }
    builder = builder.tcp_config(tcp);
    for seed in &args.joins {
        builder = builder.join(seed);
    }
    let node = builder.start().await?;
    let addr = node.listen_addr().ok_or("the node does not listen")?;
    println!(
        "node {} of cluster {}: listening on {addr}; others join with --join {addr}",
        node.id(),
        args.cluster
    );

    tokio::spawn(print_member_events(node.clone()));
    if !args.joins.is_empty() {
        println!(
            "joining through {}: each member that appears is printed",
            args.joins.join(", ")
        );
    }

    if args.spawn {
        match node.spawn_named(GREETER, Greeter::default()).await {
            Ok(greeter) => println!(
                "spawned the {GREETER} ({}) on {}; type `call`, `send_me NODE` or `help`",
                greeter.id(),
                node.id()
            ),
            Err(e) => println!("could not spawn the {GREETER}: {e}"),
        }
    } else {
        println!("type `members`, `call`, `send_me NODE` or `help`");
    }

    if let Some(every) = args.client {
        tokio::spawn(client(node.clone(), every));
    }

    // Ctrl-C or SIGTERM: drain this node (its actors move to the other
    // members), leave the cluster, exit; a second signal cuts it short.
    tokio::spawn({
        let node = node.clone();
        async move {
            match node.shutdown_on_signal().await {
                Ok(report) => println!(
                    "signal: drained {} actor(s) in {:.1?}; node {} left the cluster",
                    report.moved.len(),
                    report.took,
                    node.id()
                ),
                Err(e) => println!("signal: node {} stopped: {e}", node.id()),
            }
            std::process::exit(0);
        }
    });

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => {
                println!("stdin closed: stopping node {}", node.id());
                break;
            }
            Err(e) => {
                println!("cannot read stdin ({e}): stopping node {}", node.id());
                break;
            }
        };
        let command = match parse_command(&line) {
            Ok(Some(command)) => command,
            Ok(None) => continue,
            Err(message) => {
                println!("{message}; {COMMANDS}");
                continue;
            }
        };
        match execute(&node, command).await {
            Flow::Continue => {}
            Flow::Stop => break,
            Flow::Drained => return Ok(()),
        }
    }
    node.shutdown().await;
    Ok(())
}

/// What the prompt does after a command.
enum Flow {
    Continue,
    /// Shut the node down and exit.
    Stop,
    /// The node has drained and shut down: exit.
    Drained,
}

/// Runs one command.
async fn execute(node: &Node, command: Command) -> Flow {
    match command {
        Command::Quit => {
            println!("stopping node {}", node.id());
            return Flow::Stop;
        }
        Command::Drain => {
            println!("draining node {}...", node.id());
            match node.drain().await {
                Ok(report) => {
                    for moved in &report.moved {
                        println!("  moved {} ({}): {moved}", moved.actor, moved.type_tag);
                    }
                    println!(
                        "drained: {} actor(s) moved in {:.1?}; node {} left the cluster",
                        report.moved.len(),
                        report.took,
                        node.id()
                    );
                    return Flow::Drained;
                }
                Err(e) => println!("drain failed: {e}"),
            }
        }
        Command::Help => println!("{COMMANDS}"),
        Command::Members => {
            let members = node.members();
            println!("members ({}): {}", members.len(), join(&members));
        }
        Command::Call => {
            let Some(greeter) = find(node, "call").await else {
                return Flow::Continue;
            };
            let route = greeter.location();
            match greeter.greet(node.id().to_string()).await {
                Ok((count, at)) => println!(
                    "call: greeting #{count} answered by {at} (this node's route pointed at {route})"
                ),
                Err(e) => println!("call failed: {e}"),
            }
        }
        Command::Where => {
            let Some(greeter) = find(node, "where").await else {
                return Flow::Continue;
            };
            let route = greeter.location();
            let stats = node.stats();
            match greeter.where_am_i().await {
                Ok(at) => println!(
                    "where: the {GREETER} runs on {at} (this node's route pointed at {route}); \
                     this node hosts {} actor(s) and keeps {} slot(s) for actors living elsewhere",
                    stats.hosted, stats.forwarders
                ),
                Err(e) => println!("where failed: {e}"),
            }
        }
        Command::SendMe(dest) => {
            if !known_destination(node, &dest) {
                return Flow::Continue;
            }
            let Some(greeter) = find(node, "send_me").await else {
                return Flow::Continue;
            };
            let left = match greeter.send_me(dest.clone()).await {
                Ok(left) => left,
                Err(e) => {
                    println!("send_me failed: {e}");
                    return Flow::Continue;
                }
            };
            // Messages from one sender are handled in order: this request is
            // handled once the move is over, wherever the actor then is.
            match greeter.where_am_i().await {
                Ok(at) if at == left => println!(
                    "send_me: the {GREETER} is still on {at}: the move to {dest} failed \
                     (the reason is logged on {at}'s stderr)"
                ),
                Ok(at) => println!("send_me: the {GREETER} moved from {left} to {at}"),
                Err(e) => {
                    println!("send_me: asked it to move, but where it is now is unknown: {e}")
                }
            }
        }
        Command::Migrate(dest) => {
            if !known_destination(node, &dest) {
                return Flow::Continue;
            }
            let Some(greeter) = find(node, "migrate").await else {
                return Flow::Continue;
            };
            match node.migrate(&greeter, dest).await {
                Ok(report) => println!(
                    "migrated: {} -> {} in a freeze of {:.3?} (capture {:.3?}, prepare {:.3?} incl. restore {:.3?}, commit {:.3?}); \
                     {} B of state, {} B snapshot, {} queued, {} forwarded; epoch {}",
                    report.from,
                    report.to,
                    report.freeze,
                    report.capture,
                    report.prepare,
                    report.restore,
                    report.commit,
                    report.state_bytes,
                    report.snapshot_bytes,
                    report.queued_messages,
                    report.forwarded_messages,
                    report.epoch
                ),
                Err(e) => println!("migration failed: {e}"),
            }
        }
    }
    Flow::Continue
}

/// Looks the greeter up by name from this node; prints why not if it fails.
async fn find(node: &Node, what: &str) -> Option<Handle<Greeter>> {
    match node.lookup::<Greeter>(GREETER).await {
        Ok(greeter) => Some(greeter),
        Err(e) => {
            println!("{what} failed: {e}");
            None
        }
    }
}

/// Whether `dest` is somewhere this node can send the greeter: a current
/// member of the cluster, or an address (checked when dialed).
fn known_destination(node: &Node, dest: &Destination) -> bool {
    match dest {
        Destination::Node(id) => {
            let members = node.members();
            if members.contains(id) {
                true
            } else {
                println!(
                    "unknown node \"{id}\": the members are {} (a node of another cluster is tcp://host:port)",
                    join(&members)
                );
                false
            }
        }
        Destination::Tcp { .. } => true,
    }
}

fn join(ids: &[NodeId]) -> String {
    ids.iter()
        .map(NodeId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the cluster's membership changes as this node sees them.
async fn print_member_events(node: Node) {
    let mut events = node.member_events();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                println!("member events: {missed} missed");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let (what, who) = match &event {
            MemberEvent::Joined(who) => ("joined", who),
            MemberEvent::Left(who) => ("left", who),
            MemberEvent::Failed(who) => ("failed", who),
            MemberEvent::Fenced => {
                // Declared failed while it was stalled or cut off: like a
                // downed Akka node, this process ends; a restart is a new
                // incarnation that may join again.
                println!("fenced: the cluster declared this node failed; exiting");
                std::process::exit(3);
            }
        };
        let members = node.members();
        println!(
            "member {what}: {who} (members now {}: {})",
            members.len(),
            join(&members)
        );
    }
}

/// Greets the actor every `every` through a handle found by name, and
/// prints each answer: who answered shows where the actor is.
async fn client(node: Node, every: Duration) {
    let me = node.id().to_string();
    let mut greeter: Option<Handle<Greeter>> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let handle = match &greeter {
            Some(handle) => handle.clone(),
            None => match node.lookup::<Greeter>(GREETER).await {
                Ok(handle) => {
                    greeter = Some(handle.clone());
                    handle
                }
                Err(Error::NodeStopped(_)) => return,
                Err(e) => {
                    println!("client: {e}");
                    continue;
                }
            },
        };
        match handle.greet(me.clone()).await {
            Ok((count, at)) => println!("client: greeting #{count} answered by {at}"),
            Err(Error::NodeStopped(_)) => return,
            Err(e) => {
                println!("client: failed: {e}");
                // Look the name up again next time (the actor may be down,
                // or its name gone with a failed node).
                greeter = None;
            }
        }
    }
}
