//! A rolling upgrade across two OS processes built from two examples that
//! register the same actor tag in two versions (`upgrade_old`: version 1,
//! `upgrade_new`: version 2, which adds a field), linked over TCP:
//! version 1 migrates to the new build, is upgraded there before
//! `on_arrive` (the new field computed from the old state), keeps answering
//! the old build's handle, and the messages queued in its mailbox travel
//! with it and are handled by the new version, and a handler that version 2
//! dropped is a clear error to its caller; version 2 going to the old
//! build is refused with both versions named, and stays home, serving.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(60);

/// A running example whose stdout lines arrive on a channel.
struct Process {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Process {
    fn start(example: &str, args: &[&str]) -> Process {
        let mut child = Command::new(common::example_binary(example))
            .args(args)
            .env("MOBILITY_SECRET", "the secret of both builds")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`; returns it.
    fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} within {PATIENCE:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("write to the prompt");
        self.stdin.flush().expect("flush");
    }

    fn quit(mut self) {
        self.send("quit");
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "exited with {status}");
                return;
            }
            let _ = self.lines.recv_timeout(Duration::from_millis(50));
        }
        panic!("did not quit");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn addr_of(line: &str) -> String {
    line.rsplit(' ').next().expect("address").to_string()
}

#[test]
fn old_to_new_upgrades_and_new_to_old_is_refused() {
    let mut new = Process::start("upgrade_new", &["new", "--spawn"]);
    let new_addr = addr_of(&new.wait_for("listening on"));
    new.wait_for("spawned the counter: version 2 on new, count 100");
    let mut old = Process::start("upgrade_old", &["old", "--spawn"]);
    let old_addr = addr_of(&old.wait_for("listening on"));
    old.wait_for("spawned the counter: version 1 on old, count 5");

    // Old -> new, with messages waiting in the mailbox: the actor is busy,
    // the move is asked, ten increments queue up behind it and travel.
    old.send(&format!("migrate tcp://{new_addr} 10"));
    let report = old.wait_for("migrated:");
    let queued: u64 = report
        .split(" queued")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no queued count in {report:?}"));
    assert!(queued > 0, "messages travelled in the mailbox: {report}");
    // Upgraded before on_arrive: the new field is already computed there.
    new.wait_for("counter arrived on new: count 5, upgraded from version 1 at count 5");
    // The old build's handle reaches it; a handler of both versions works,
    // and every queued increment was handled once, by version 2.
    old.send("describe");
    let line = old.wait_for("describe");
    assert!(
        line.contains("version 2 on new, count 15, upgraded from version 1 at count 5"),
        "{line}"
    );

    // A handler the old build has and version 2 dropped: a clear error to
    // its caller, naming the handler and the version, and the actor lives on.
    old.send("retired");
    let line = old.wait_for("retired");
    assert!(
        line.contains("retired failed")
            && line.contains("version 2")
            && line.contains("no handler `retired`"),
        "{line}"
    );

    // New -> old: refused, both versions named; the actor stays and serves.
    new.send(&format!("migrate tcp://{old_addr}"));
    let refused = new.wait_for("migration failed");
    assert!(
        refused.contains("version 2") && refused.contains("version 1"),
        "names both versions: {refused}"
    );
    new.send("describe");
    let line = new.wait_for("describe");
    assert!(
        line.contains("version 2 on new, count 100, born in version 2"),
        "{line}"
    );

    old.quit();
    new.quit();
}
