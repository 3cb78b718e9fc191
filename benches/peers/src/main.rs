//! mobility side by side with a raw tokio baseline, ractor and kameo, on the
//! same work, interleaved in one run: every round runs each system once (in
//! a rotated order), and each system's figure is divided by the raw
//! baseline's of the same round. The tables show, for each figure, the
//! median over rounds and the median and min-max of those paired ratios.
//!
//! - local request/reply, plain and `async` handlers, on a current-thread
//!   runtime and on a multi-thread runtime (2 workers); the caller a
//!   spawned task, one call at a time;
//! - local fire-and-forget: 1,000,000 messages, then one request to flush;
//! - spawn time and resident memory per idle actor: each system in a child
//!   process of its own (`mobility-peers --child spawn SYSTEM N`), RSS from
//!   /proc/self/statm before and after spawning N actors;
//! - remote request/reply and fire-and-forget (100,000 messages) over
//!   loopback TCP, each system's server in a child process of its own
//!   (`mobility-peers --child serve SYSTEM`), the client in this one.
//!
//! Run: `cargo run --release --manifest-path benches/peers/Cargo.toml`
//! (`-- --quick` for a short smoke run).

mod kameo_side;
mod mobility_side;
mod ractor_side;
mod raw;
mod report;

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use report::{order, Row, Unit, SYSTEMS};
use tokio::runtime::Runtime;

struct Config {
    local_rounds: usize,
    local_calls: u64,
    local_flood: u64,
    spawn_rounds: usize,
    spawn_actors: u64,
    remote_rounds: usize,
    remote_calls: u64,
    remote_flood: u64,
}

const FULL: Config = Config {
    local_rounds: 15,
    local_calls: 50_000,
    local_flood: 1_000_000,
    spawn_rounds: 5,
    spawn_actors: 100_000,
    remote_rounds: 10,
    remote_calls: 2_000,
    remote_flood: 100_000,
};

const QUICK: Config = Config {
    local_rounds: 3,
    local_calls: 10_000,
    local_flood: 1_000_000,
    spawn_rounds: 1,
    spawn_actors: 20_000,
    remote_rounds: 3,
    remote_calls: 500,
    remote_flood: 100_000,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2..]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let cfg = if quick { &QUICK } else { &FULL };
    let started = Instant::now();
    println!("# mobility vs raw tokio, ractor 0.16.5 (+ ractor_cluster), kameo 0.22.2 (+ remote)");
    println!(
        "{} run; {} cores; load before: {}",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );

    // `--only local|spawn|remote` runs one section.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let runs = |section: &str| only.is_none_or(|o| o == section);
    let mut tables = Vec::new();
    if runs("local") {
        tables.push(report::table(
            "Local, current-thread runtime",
            &local(cfg, false),
        ));
        tables.push(report::table(
            "Local, multi-thread runtime (2 workers)",
            &local(cfg, true),
        ));
    }
    if runs("spawn") {
        tables.push(report::table(
            &format!(
                "Spawn and memory, {} idle actors per child process",
                cfg.spawn_actors
            ),
            &spawn_memory(cfg),
        ));
    }
    if runs("remote") {
        tables.push(report::table(
            "Remote over loopback TCP, multi-thread runtime (2 workers), server in a child process",
            &remote(cfg),
        ));
    }
    for t in &tables {
        println!("{t}");
    }
    println!(
        "Cells: median over rounds; then the median of the per-round ratios to raw, and their min-max."
    );
    println!(
        "Took {:.0} s; load after: {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn runtime(multi: bool) -> Runtime {
    let mut b = if multi {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all().build().expect("runtime")
}

// ---------------------------------------------------------------------------
// Local figures.

struct Local {
    raw: raw::Local,
    mobility: mobility::prelude::Handle<mobility_side::Counter>,
    _node: mobility::prelude::Node,
    ractor: ractor::ActorRef<ractor_side::CounterMsg>,
    kameo: kameo::actor::ActorRef<kameo_side::KCounter>,
}

#[derive(Clone, Copy)]
enum Work {
    Plain,
    Async,
    Flood,
}

/// Runs `work` of system `sys` `n` times in a spawned task; nanoseconds per
/// operation.
async fn local_work(l: Arc<Local>, sys: usize, work: Work, n: u64) -> f64 {
    tokio::spawn(async move {
        let start = Instant::now();
        match (sys, work) {
            (0, Work::Plain | Work::Async) => {
                for _ in 0..n {
                    black_box(l.raw.call(1).await);
                }
            }
            (0, Work::Flood) => {
                for _ in 0..n {
                    l.raw.tell(1);
                }
                black_box(l.raw.call(0).await);
            }
            (1, Work::Plain) => {
                for _ in 0..n {
                    black_box(mobility_side::call(&l.mobility, 1).await);
                }
            }
            (1, Work::Async) => {
                for _ in 0..n {
                    black_box(mobility_side::call_queued(&l.mobility, 1).await);
                }
            }
            (1, Work::Flood) => {
                black_box(mobility_side::flood(&l.mobility, n).await);
            }
            (2, Work::Plain | Work::Async) => {
                for _ in 0..n {
                    black_box(ractor_side::call(&l.ractor, 1).await);
                }
            }
            (2, Work::Flood) => {
                black_box(ractor_side::flood(&l.ractor, n).await);
            }
            (3, Work::Plain | Work::Async) => {
                for _ in 0..n {
                    black_box(kameo_side::call(&l.kameo, 1).await);
                }
            }
            (3, Work::Flood) => {
                black_box(kameo_side::flood(&l.kameo, n).await);
            }
            _ => unreachable!(),
        }
        start.elapsed().as_nanos() as f64 / n as f64
    })
    .await
    .expect("caller task")
}

fn local(cfg: &Config, multi: bool) -> Vec<Row> {
    let rt = runtime(multi);
    let l = Arc::new(rt.block_on(async {
        let node = mobility_side::local_node(if multi { "local-mt" } else { "local-ct" }).await;
        Local {
            raw: raw::spawn_local(),
            mobility: mobility_side::spawn(&node).await,
            _node: node,
            ractor: ractor_side::spawn().await,
            kameo: kameo_side::spawn(),
        }
    }));
    let works = [
        (
            Work::Plain,
            "request/reply, plain `fn` handler (mobility: lent)",
            cfg.local_calls,
        ),
        (
            Work::Async,
            "request/reply, `async fn` handler (mobility: mailbox)",
            cfg.local_calls,
        ),
        (
            Work::Flood,
            "fire-and-forget, 1,000,000 messages + 1 request",
            cfg.local_flood,
        ),
    ];
    let mut rows: Vec<Row> = works
        .iter()
        .map(|(work, name, _)| {
            let unit = match work {
                Work::Flood => Unit::NanosRate,
                _ => Unit::Nanos,
            };
            Row::new(name, unit)
        })
        .collect();
    // Warm up.
    for sys in 0..4 {
        for (work, _, n) in works {
            rt.block_on(local_work(l.clone(), sys, work, n / 10));
        }
    }
    for round in 0..cfg.local_rounds {
        for (i, (work, _, n)) in works.iter().enumerate() {
            for sys in order(round) {
                let v = rt.block_on(local_work(l.clone(), sys, *work, *n));
                rows[i].push(sys, v);
            }
        }
        eprint!(".");
    }
    eprintln!(
        " local ({}) done",
        if multi {
            "multi-thread"
        } else {
            "current-thread"
        }
    );
    drop(l);
    rt.shutdown_timeout(Duration::from_secs(1));
    rows
}

// ---------------------------------------------------------------------------
// Spawn and memory, each in a child process.

fn spawn_memory(cfg: &Config) -> Vec<Row> {
    let mut time = Row::new("spawn an idle actor (time per actor)", Unit::Nanos);
    let mut memory = Row::new(
        "resident memory per idle actor (RSS after - before, / N)",
        Unit::Bytes,
    );
    for round in 0..cfg.spawn_rounds {
        for sys in order(round) {
            let out = Command::new(std::env::current_exe().expect("exe"))
                .args([
                    "--child",
                    "spawn",
                    SYSTEMS[sys],
                    &cfg.spawn_actors.to_string(),
                ])
                .stderr(Stdio::inherit())
                .output()
                .expect("spawn child");
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix("RESULT "))
                .unwrap_or_else(|| {
                    panic!("{} spawn child printed no result: {text}", SYSTEMS[sys])
                });
            let mut f = line
                .split_whitespace()
                .map(|x| x.parse::<f64>().expect("number"));
            time.push(sys, f.next().expect("time"));
            memory.push(sys, f.next().expect("memory"));
        }
        eprint!(".");
    }
    eprintln!(" spawn and memory done");
    vec![time, memory]
}

/// Reads this process's resident set size in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

fn child_spawn(sys: &str, n: u64) {
    let rt = runtime(true);
    let sys = sys.to_owned();
    let (ns, bytes) = rt.block_on(async move {
        tokio::spawn(async move {
            let node = mobility_side::local_node("spawn").await;
            // One actor first, so lazy statics and first allocations are in
            // the `before` figure.
            let mut raw = vec![raw::spawn_idle()];
            let mut mob = vec![mobility_side::spawn(&node).await];
            let mut rac = vec![ractor_side::spawn().await];
            let mut kam = vec![kameo_side::spawn_default()];
            tokio::time::sleep(Duration::from_millis(300)).await;
            let before = rss();
            let start = Instant::now();
            match sys.as_str() {
                "raw" => raw.extend((0..n).map(|_| raw::spawn_idle())),
                "mobility" => {
                    for _ in 0..n {
                        mob.push(mobility_side::spawn(&node).await);
                    }
                }
                "ractor" => {
                    for _ in 0..n {
                        rac.push(ractor_side::spawn().await);
                    }
                }
                "kameo" => {
                    kam.extend((0..n).map(|_| kameo_side::spawn_default()));
                    // kameo's spawn returns before the actor starts: wait
                    // until every one has.
                    for a in &kam {
                        a.wait_for_startup().await;
                    }
                }
                other => panic!("unknown system {other}"),
            }
            let elapsed = start.elapsed();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = rss();
            let result = (
                elapsed.as_nanos() as f64 / n as f64,
                after.saturating_sub(before) as f64 / n as f64,
            );
            black_box((&raw, &mob, &rac, &kam));
            result
        })
        .await
        .expect("spawn task")
    });
    println!("RESULT {ns:.1} {bytes:.1}");
    std::io::stdout().flush().expect("flush");
    std::process::exit(0);
}

// ---------------------------------------------------------------------------
// Remote figures: servers in child processes.

/// Serves system `sys` until stdin closes; prints `READY <address>` (or
/// `FAILED <reason>`).
fn child_serve(sys: &str) {
    let rt = runtime(true);
    let sys = sys.to_owned();
    rt.block_on(async move {
        let mut keep = Vec::<Box<dyn std::any::Any + Send>>::new();
        let line = match sys.as_str() {
            "raw" => format!("READY {}", raw::serve().await),
            "mobility" => {
                let (node, dest) = mobility_side::serve().await;
                keep.push(Box::new(node));
                format!("READY {dest}")
            }
            "ractor" => {
                let (actor, port) = ractor_side::serve().await;
                keep.push(Box::new(actor));
                format!("READY {port}")
            }
            "kameo" => match kameo_side::serve().await {
                Ok(addr) => format!("READY {addr}"),
                Err(e) => format!("FAILED {e}"),
            },
            other => panic!("unknown system {other}"),
        };
        println!("{line}");
        std::io::stdout().flush().expect("flush");
        tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            while std::io::stdin().read_line(&mut s).is_ok_and(|n| n > 0) {
                s.clear();
            }
        })
        .await
        .expect("stdin");
        drop(keep);
    });
    std::process::exit(0);
}

/// A server child: the process and what it said after `READY`.
fn start_server(sys: &str) -> (Child, Result<String, String>) {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["--child", "serve", sys])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("server child");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let said = loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("READY ") => break Ok(l[6..].to_owned()),
            Some(Ok(l)) if l.starts_with("FAILED ") => break Err(l[7..].to_owned()),
            Some(Ok(_)) => continue,
            _ => break Err("the server process ended".to_owned()),
        }
    };
    (child, said)
}

fn kameo(r: &Remote) -> Result<&kameo::actor::RemoteActorRef<kameo_side::KCounter>, String> {
    r.kameo
        .as_ref()
        .ok_or_else(|| "no remote kameo actor".to_owned())
}

struct Remote {
    raw: tokio::sync::Mutex<raw::Client>,
    mobility: mobility::prelude::Handle<mobility_side::Counter>,
    _node: mobility::prelude::Node,
    ractor: ractor::ActorRef<ractor_side::CounterMsg>,
    kameo: Option<kameo::actor::RemoteActorRef<kameo_side::KCounter>>,
}

/// Runs remote `work` (Plain: request/reply; Flood: fire-and-forget) of
/// `sys` `n` times in a spawned task; nanoseconds per operation, or why
/// the figure could not be taken.
async fn remote_work(r: Arc<Remote>, sys: usize, work: Work, n: u64) -> Result<f64, String> {
    tokio::spawn(async move {
        // The count before a flood, read outside the timing.
        let before = match (sys, work) {
            (0, Work::Flood) => r.raw.lock().await.request(0).await,
            (1, Work::Flood) => mobility_side::call(&r.mobility, 0).await,
            (2, Work::Flood) => ractor_side::call(&r.ractor, 0).await,
            (3, Work::Flood) => kameo_side::remote_call(kameo(&r)?, 0).await?,
            _ => 0,
        };
        let start = Instant::now();
        let count = match (sys, work) {
            (0, Work::Flood) => r.raw.lock().await.flood(n).await,
            (0, _) => {
                let mut c = r.raw.lock().await;
                for _ in 0..n {
                    black_box(c.request(1).await);
                }
                0
            }
            (1, Work::Flood) => mobility_side::flood(&r.mobility, n).await,
            (1, _) => {
                for _ in 0..n {
                    black_box(mobility_side::call(&r.mobility, 1).await);
                }
                0
            }
            (2, Work::Flood) => {
                let mut count = ractor_side::flood(&r.ractor, n).await;
                while count < before + n {
                    count = ractor_side::call(&r.ractor, 0).await;
                }
                count
            }
            (2, _) => {
                for _ in 0..n {
                    black_box(ractor_side::call(&r.ractor, 1).await);
                }
                0
            }
            (3, Work::Flood) => kameo_side::remote_flood(kameo(&r)?, n, before + n).await?,
            (3, _) => {
                let k = kameo(&r)?;
                for _ in 0..n {
                    black_box(kameo_side::remote_call(k, 1).await?);
                }
                0
            }
            _ => unreachable!(),
        };
        let elapsed = start.elapsed();
        if let Work::Flood = work {
            assert_eq!(
                count,
                before + n,
                "{}: every tell counted once",
                SYSTEMS[sys]
            );
        }
        Ok(elapsed.as_nanos() as f64 / n as f64)
    })
    .await
    .expect("caller task")
}

fn remote(cfg: &Config) -> Vec<Row> {
    let mut servers: Vec<(Child, Result<String, String>)> =
        SYSTEMS.iter().map(|s| start_server(s)).collect();
    let rt = runtime(true);
    let addr = |i: usize| servers[i].1.clone().expect("server ready");
    let (raw_addr, mob_addr, rac_port) = (addr(0), addr(1), addr(2));
    let kameo_addr = servers[3].1.clone();
    let (r, kameo_na) = rt.block_on(async {
        let (node, mobility) = mobility_side::remote(&mob_addr).await;
        let ractor = ractor_side::remote(rac_port.parse().expect("port")).await;
        let (kameo, kameo_na) = match kameo_addr {
            Ok(a) => match kameo_side::remote(&a).await {
                Ok(k) => (Some(k), None),
                Err(e) => (None, Some(format!("kameo remote: {e}"))),
            },
            Err(e) => (None, Some(format!("kameo server: {e}"))),
        };
        let r = Remote {
            raw: tokio::sync::Mutex::new(raw::Client::connect(&raw_addr).await),
            mobility,
            _node: node,
            ractor,
            kameo,
        };
        (Arc::new(r), kameo_na)
    });
    let mut rows = vec![
        Row::new("request/reply (one call at a time)", Unit::Nanos),
        Row::new(
            &format!("fire-and-forget, {} messages + flush", cfg.remote_flood),
            Unit::NanosRate,
        ),
    ];
    if let Some(reason) = &kameo_na {
        eprintln!("{reason}");
        rows[0].na(3, reason);
        rows[1].na(3, reason);
    }
    let works = [
        (Work::Plain, cfg.remote_calls),
        (Work::Flood, cfg.remote_flood),
    ];
    // Warm up (a figure that fails here is n/a from the start).
    for (sys, name) in SYSTEMS.iter().enumerate() {
        for (i, (work, n)) in works.iter().enumerate() {
            if rows[i].na[sys].is_none() {
                if let Err(e) = rt.block_on(remote_work(r.clone(), sys, *work, n / 10)) {
                    eprintln!("{name}: {e}");
                    rows[i].na(sys, &e);
                }
            }
        }
    }
    for round in 0..cfg.remote_rounds {
        for (i, (work, n)) in works.iter().enumerate() {
            for sys in order(round) {
                if rows[i].na[sys].is_some() {
                    continue;
                }
                match rt.block_on(remote_work(r.clone(), sys, *work, *n)) {
                    Ok(v) => rows[i].push(sys, v),
                    Err(e) => {
                        eprintln!("{}: {e}", SYSTEMS[sys]);
                        rows[i].na(sys, &e);
                    }
                }
            }
        }
        eprint!(".");
    }
    eprintln!(" remote done");
    drop(r);
    rt.shutdown_timeout(Duration::from_secs(1));
    for (child, _) in &mut servers {
        drop(child.stdin.take());
    }
    for (child, _) in &mut servers {
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    rows
}

fn child(args: &[String]) {
    match args {
        [what, sys, n] if what == "spawn" => child_spawn(sys, n.parse().expect("N")),
        [what, sys] if what == "serve" => child_serve(sys),
        _ => panic!("usage: mobility-peers --child spawn SYSTEM N | --child serve SYSTEM"),
    }
}
