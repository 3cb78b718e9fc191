//! The cluster quick start across OS processes: three `cluster_node`
//! examples on loopback ports chosen by the OS, b and c joined through a,
//! driven through their prompts. Every node sees every member and finds the
//! greeter by name; `send_me` and `migrate` move it, and callers on every
//! node keep being answered; when the process hosting it is killed, the
//! others report the node failed and a call says the actor is gone instead
//! of hanging.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long any one step may take on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// A running `cluster_node` whose stdout lines arrive on a channel; killed
/// when dropped (also when the test fails).
struct NodeProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl NodeProcess {
    /// Starts node `name` of `cluster` on a port the OS chooses, with more
    /// `args`.
    fn start(cluster: &str, name: &str, args: &[&str]) -> NodeProcess {
        let mut child = Command::new(common::example_binary("cluster_node"))
            .args(["--name", name, "--port", "0", "--cluster", cluster])
            .args(args)
            .env("MOBILITY_SECRET", "the secret of the processes test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cluster_node");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        NodeProcess {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line, if one comes before `deadline`; panics if the process
    /// closed its output.
    fn next_line(&mut self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!(
                "node {} closed its output; it printed:\n{}",
                self.name,
                self.seen.join("\n")
            ),
        }
    }

    /// Waits for a line for which `matches` holds; returns it.
    fn wait_until(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.next_line(deadline) {
                Some(line) if matches(&line) => return line,
                Some(_) => {}
                None => panic!(
                    "node {}: no line {what} within {PATIENCE:?}; it printed:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for a line containing `text`; returns it.
    fn wait_for(&mut self, text: &str) -> String {
        self.wait_until(&format!("containing {text:?}"), |line| line.contains(text))
    }

    /// Types `command` at the node's prompt and returns its answer: the
    /// next line that starts with one of `answers`.
    fn ask(&mut self, command: &str, answers: &[&str]) -> String {
        self.send(command);
        self.wait_until(&format!("answering {command:?}"), |line| {
            answers.iter().any(|a| line.starts_with(a))
        })
    }

    /// Asks `command` again (a few times a second) until its answer
    /// satisfies `good`; returns that answer.
    fn ask_until(
        &mut self,
        command: &str,
        answers: &[&str],
        good: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let answer = self.ask(command, answers);
            if good(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "node {}: {command:?} never answered as hoped within {PATIENCE:?}; it printed:\n{}",
                self.name,
                self.seen.join("\n")
            );
            // Pace the retries, reading what comes meanwhile.
            let pause = Instant::now() + Duration::from_millis(100);
            while self.next_line(pause).is_some() {}
        }
    }

    fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("the node's prompt is open");
        writeln!(stdin, "{command}").expect("write to the node's prompt");
        stdin.flush().expect("flush");
    }

    /// Kills the process at once (no leave, no goodbye), as a crash would.
    fn kill(&mut self) {
        self.stdin = None;
        self.child.kill().expect("kill the node's process");
        self.child.wait().expect("reap the node's process");
    }

    /// Sends SIGTERM, as a service manager stopping it would.
    fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.name);
    }

    /// Waits for the process to exit on its own, successfully.
    fn wait_exit(mut self) {
        self.stdin = None;
        self.wait_success();
    }

    /// Types `quit` and waits for a clean exit.
    fn quit(mut self) {
        self.send("quit");
        self.wait_success();
    }

    fn wait_success(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "node {} exited with {status}", self.name);
                return;
            }
            let _ = self.lines.recv_timeout(Duration::from_millis(50));
        }
        panic!("node {} did not quit within {PATIENCE:?}", self.name);
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in "... others join with --join 127.0.0.1:PORT".
fn join_addr(line: &str) -> String {
    let addr = line.rsplit(' ').next().expect("an address").to_string();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "a bound loopback address in {line:?}"
    );
    addr
}

const CALL: &[&str] = &["call: ", "call failed: "];
const MEMBERS: &[&str] = &["members ("];

#[test]
fn a_three_process_cluster_moves_the_greeter_and_reports_a_killed_node() {
    scenario("three-processes", false);
}

/// The same, and then a call from b, the node the actor left for c.
#[test]
fn a_call_from_the_former_host_of_an_actor_on_a_killed_node_says_it_is_down() {
    scenario("former-host", true);
}

/// SIGTERM to the process hosting the greeter: it drains (the greeter moves
/// to the other member with its count), leaves, and exits 0; the other
/// node's client keeps being answered, never told the actor is down.
#[cfg(unix)]
#[test]
fn a_sigterm_drains_the_node_before_it_leaves() {
    let mut a = NodeProcess::start("sigterm", "a", &[]);
    let seed = join_addr(&a.wait_for("others join with --join "));
    a.wait_for("spawned the greeter");
    let mut b = NodeProcess::start("sigterm", "b", &["--join", &seed, "--client-ms", "100"]);
    b.wait_for("others join with --join ");
    b.ask_until("members", MEMBERS, |l| l == "members (2): a, b");
    b.wait_until("b's client answered by a", |l| {
        l.starts_with("client: greeting") && l.ends_with("answered by a")
    });

    a.terminate();
    let drained = a.wait_for("signal: ");
    assert!(
        drained.starts_with("signal: drained 1 actor(s)"),
        "{drained}"
    );
    a.wait_exit();
    b.wait_for("member left: a");
    b.wait_until("b's client answered by b", |l| {
        l.starts_with("client: greeting") && l.ends_with("answered by b")
    });
    let answer = b.ask("where", &["where"]);
    assert!(
        answer.starts_with("where: the greeter runs on b"),
        "{answer}"
    );
    // The client never saw the actor down across the move.
    assert!(
        !b.seen
            .iter()
            .any(|l| l.starts_with("client: ") && l.contains("failed")),
        "{:?}",
        b.seen
    );
    b.quit();
}

/// Three nodes of `cluster`; with `check_former_host`, b (which the actor
/// left for c) also calls it once c is killed.
fn scenario(cluster: &str, check_former_host: bool) {
    let mut a = NodeProcess::start(cluster, "a", &[]);
    let seed = join_addr(&a.wait_for("others join with --join "));
    a.wait_for("spawned the greeter");
    let mut b = NodeProcess::start(cluster, "b", &["--join", &seed, "--client-ms", "200"]);
    let mut c = NodeProcess::start(cluster, "c", &["--join", &seed]);
    b.wait_for("others join with --join ");
    c.wait_for("others join with --join ");

    // Every node sees the three members...
    for node in [&mut a, &mut b, &mut c] {
        node.ask_until("members", MEMBERS, |l| l == "members (3): a, b, c");
    }
    // ...and finds the greeter by name, on a.
    for node in [&mut a, &mut b, &mut c] {
        let answer = node.ask_until("call", CALL, |l| l.starts_with("call: "));
        assert!(answer.contains("answered by a"), "{answer}");
    }
    b.wait_for("client: greeting");

    // Bad input is refused with a reason, and the node goes on.
    assert!(a
        .ask("frobnicate", &["unknown command"])
        .contains("\"frobnicate\""));
    a.ask("send_me", &["send_me needs a destination"]);
    let answer = a.ask("send_me nowhere", &["unknown node"]);
    assert!(answer.contains("a, b, c"), "lists the members: {answer}");
    a.ask("migrate tcp://no-port", &["invalid destination"]);
    a.ask("members", &["members (3)"]);

    // The actor asks to move itself to b: callers on a and c are answered by b.
    let moved = a.ask("send_me b", &["send_me"]);
    assert_eq!(moved, "send_me: the greeter moved from a to b");
    b.wait_for("greeter: arrived here");
    for node in [&mut a, &mut c] {
        let answer = node.ask("call", CALL);
        assert!(answer.contains("answered by b"), "{}: {answer}", node.name);
    }
    b.wait_until("from b's client, answered by b", |l| {
        l.starts_with("client: greeting") && l.ends_with("answered by b")
    });

    // a, which does not host it, moves it on to c and gets the report.
    let report = a.ask("migrate c", &["migrated", "migration failed"]);
    assert!(report.starts_with("migrated: b -> c"), "{report}");
    assert!(
        report.contains("freeze") && report.contains("B of state"),
        "{report}"
    );
    c.wait_for("greeter: arrived here");
    let answer = a.ask("call", CALL);
    assert!(answer.contains("answered by c"), "{answer}");
    b.wait_until("from b's client, answered by c", |l| {
        l.starts_with("client: greeting") && l.ends_with("answered by c")
    });
    let answer = c.ask("where", &["where"]);
    assert!(
        answer.starts_with("where: the greeter runs on c"),
        "{answer}"
    );

    // The process hosting the actor dies: the others see the node fail, and
    // a call says the actor is gone (not a request timeout).
    c.kill();
    a.wait_for("member failed: c");
    b.wait_for("member failed: c");
    let answer = a.ask("call", CALL);
    assert!(
        answer.starts_with("call failed: ")
            && (answer.contains("is down") || answer.contains("no actor is named")),
        "{answer}"
    );
    if check_former_host {
        let answer = b.ask("call", CALL);
        assert!(
            answer.starts_with("call failed: ")
                && (answer.contains("is down") || answer.contains("no actor is named")),
            "{answer}"
        );
    }
    for node in [&mut a, &mut b] {
        node.ask_until("members", MEMBERS, |l| l == "members (2): a, b");
    }
    a.quit();
    b.quit();
}
