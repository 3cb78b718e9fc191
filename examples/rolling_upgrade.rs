//! A rolling upgrade under load, with real OS processes:
//!
//! ```text
//! cargo run --example rolling_upgrade
//! ```
//!
//! It builds the two builds of the counter (`upgrade_old`: version 1,
//! `upgrade_new`: version 2, which adds a field computed from the old
//! state), then runs them as separate processes of one cluster on loopback:
//!
//! 1. three nodes of the old build, each spawning four named counters;
//! 2. a client node of the new build, sending every counter numbered
//!    messages, a round every millisecond, until the end;
//! 3. two nodes of the new build join; the old nodes are drained one by
//!    one (their counters move to members that take version 1: the old
//!    nodes left, which run it, or new ones, which upgrade it on arrival);
//!    in between, a new node is drained too, while old ones are still up:
//!    its counters, upgraded to version 2, go only to new nodes;
//! 4. the client stops and asks each counter what it handled.
//!
//! It prints the tally (sent, handled exactly once, duplicated, out of
//! order, lost) and where each counter ended, and exits non-zero unless
//! every counter runs version 2 on a new node and nothing was lost,
//! duplicated or reordered.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one step may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(90);
/// Counters spawned by each old node.
const PER_NODE: usize = 4;
const SECRET: &str = "rolling upgrade demo secret";

/// One node's process, driven through its prompt.
struct Proc {
    name: String,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// The line where it said where it listens.
    listening: String,
}

impl Proc {
    fn start(binary: &PathBuf, name: &str, join: Option<&str>) -> Result<Proc, String> {
        let mut command = Command::new(binary);
        command.args([name, "--cluster"]);
        if let Some(seed) = join {
            command.args(["--join", seed]);
        }
        let mut child = command
            .env("MOBILITY_SECRET", SECRET)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut proc = Proc {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            listening: String::new(),
        };
        proc.listening = proc.wait_for("listening on")?;
        Ok(proc)
    }

    fn send(&mut self, command: &str) -> Result<(), String> {
        writeln!(self.stdin, "{command}").map_err(|e| format!("{}: {e}", self.name))
    }

    /// Waits for a line containing `text` (showing the interesting lines
    /// met on the way); returns it.
    fn wait_for(&mut self, text: &str) -> Result<String, String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .map_err(|_| format!("{} did not say {text:?} within {PATIENCE:?}", self.name))?;
            if !line.starts_with("load: sent") && !line.starts_with("counter arrived") {
                println!("  [{}] {line}", self.name);
            }
            if line.contains(text) {
                return Ok(line);
            }
        }
    }

    /// Waits for the process to exit on its own; its status must be 0.
    fn wait_exit(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("{} exited with {status}", self.name)),
                Ok(None) if Instant::now() < deadline => {
                    // Nothing to wait on but the process: poll its status.
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => return Err(format!("{} did not exit", self.name)),
                Err(e) => return Err(format!("{}: {e}", self.name)),
            }
        }
    }

    /// Drains the node: its counters move, it leaves and exits.
    fn drain(&mut self) -> Result<(), String> {
        println!("draining {}", self.name);
        self.send("drain")?;
        self.wait_for("drained:")?;
        self.wait_exit()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds the two builds of the counter, in this example's profile, and
/// returns their paths.
fn build() -> Result<(PathBuf, PathBuf), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let examples = exe.parent().ok_or("no examples directory")?.to_path_buf();
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args([
        "build",
        "--quiet",
        "--example",
        "upgrade_old",
        "--example",
        "upgrade_new",
    ]);
    if examples.parent().is_some_and(|p| p.ends_with("release")) {
        cargo.arg("--release");
    }
    println!("building the two builds of the counter (upgrade_old, upgrade_new)");
    let status = cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err("building upgrade_old and upgrade_new failed".into());
    }
    let path = |name: &str| examples.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    Ok((path("upgrade_old"), path("upgrade_new")))
}

fn run() -> Result<(), String> {
    let (old_build, new_build) = build()?;

    println!("starting three nodes of the old build (version 1)");
    let mut old1 = Proc::start(&old_build, "old1", None)?;
    let seed = listen_addr(&old1)?;
    let mut old2 = Proc::start(&old_build, "old2", Some(&seed))?;
    let mut old3 = Proc::start(&old_build, "old3", Some(&seed))?;
    let mut names = Vec::new();
    for old in [&mut old1, &mut old2, &mut old3] {
        old.send(&format!("spawn {PER_NODE} counter-{}", old.name))?;
        old.wait_for("spawned")?;
        names.extend((0..PER_NODE).map(|i| format!("counter-{}-{i}", old.name)));
    }

    println!("starting the client (new build), loading every counter");
    let mut client = Proc::start(&new_build, "client", Some(&seed))?;
    client.send(&format!("load {}", names.join(" ")))?;
    client.wait_for("load running")?;
    client.wait_for("load: sent")?;

    // The old nodes go away: later nodes join through the client.
    let seed = listen_addr(&client)?;
    println!("starting two nodes of the new build (version 2)");
    let mut new1 = Proc::start(&new_build, "new1", Some(&seed))?;
    let new2 = Proc::start(&new_build, "new2", Some(&seed))?;

    old1.drain()?;
    client.wait_for("load: sent")?;
    // A new node leaves while old ones still run: what it hosts runs
    // version 2 now, which only new nodes take.
    new1.drain()?;
    println!("starting a third node of the new build");
    let new3 = Proc::start(&new_build, "new3", Some(&seed))?;
    old2.drain()?;
    client.wait_for("load: sent")?;
    old3.drain()?;
    client.wait_for("load: sent")?;

    println!("stopping the load; asking every counter what it handled");
    client.send("tally")?;
    let placed = client.wait_for("placed:")?;
    let tally = client.wait_for("tally:")?;
    check(&tally, &placed, names.len())?;
    println!("every counter runs version 2 on a new node; nothing lost, duplicated or reordered");
    drop((new2, new3, client));
    Ok(())
}

/// The address a node printed it listens on.
fn listen_addr(proc: &Proc) -> Result<String, String> {
    proc.listening
        .rsplit(' ')
        .next()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} printed no address", proc.name))
}

/// The tally must show every message handled exactly once and every
/// counter on a node of the new build, at version 2.
fn check(tally: &str, placed: &str, counters: usize) -> Result<(), String> {
    let number = |label: &str| -> Result<u64, String> {
        tally
            .split(&format!("{label} "))
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("no {label:?} in {tally:?}"))
    };
    let sent = number("sent")?;
    let handled = number("handled exactly once")?;
    for label in [
        "duplicated",
        "out of order",
        "lost",
        "refused",
        "unanswered",
    ] {
        if number(label)? != 0 {
            return Err(format!("{label} is not 0: {tally}"));
        }
    }
    if sent == 0 || sent != handled {
        return Err(format!("sent and handled differ: {tally}"));
    }
    let on_new: usize = placed
        .trim_start_matches("placed: ")
        .split(", ")
        .filter(|p| p.contains("at version 2 on new") || p.contains("at version 2 on client"))
        .filter_map(|p| p.split(' ').next()?.parse::<usize>().ok())
        .sum();
    if on_new != counters {
        return Err(format!(
            "not every counter runs version 2 on a new node: {placed}"
        ));
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("rolling upgrade failed: {e}");
        std::process::exit(1);
    }
}
