//! The seed's quick start across OS processes: two `tcp_node` examples on
//! loopback ports chosen by the OS; the first spawns the pinger, `send_me`
//! moves it to the second (another cluster), and the pings keep being
//! answered there.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(60);

/// A running `tcp_node` whose stdout lines arrive on a channel.
struct NodeProcess {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl NodeProcess {
    fn start(args: &[&str]) -> NodeProcess {
        let mut child = Command::new(common::example_binary("tcp_node"))
            .args(args)
            .env("MOBILITY_SECRET", "a secret both clusters share")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tcp_node");
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
        NodeProcess {
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
        writeln!(self.stdin, "{command}").expect("write to the node's prompt");
        self.stdin.flush().expect("flush");
    }

    fn quit(mut self) {
        self.send("quit");
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "node exited with {status}");
                return;
            }
            let _ = self.lines.recv_timeout(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("node did not quit");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn listen_addr(line: &str) -> String {
    line.rsplit(' ').next().expect("address").to_string()
}

#[test]
fn send_me_moves_the_pinger_to_a_node_of_another_cluster() {
    let mut b = NodeProcess::start(&["--port", "0", "--name", "node-b", "--cluster", "west"]);
    let b_addr = listen_addr(&b.wait_for("listening on"));
    let mut a = NodeProcess::start(&[
        "--port",
        "0",
        "--name",
        "node-a",
        "--cluster",
        "east",
        "--spawn",
        "--ping-ms",
        "100",
    ]);
    a.wait_for("listening on");
    a.wait_for("handled on node-a");

    a.send(&format!("send_me tcp://{b_addr}"));
    b.wait_for("pinger arrived with");
    a.wait_for("handled on node-b");
    b.wait_for("from node-a");
    // And it keeps counting there.
    let before: u64 = count_of(&a.wait_for("handled on node-b"));
    let after: u64 = count_of(&a.wait_for("handled on node-b"));
    assert!(after > before, "the count goes on: {before} then {after}");
    a.send("status");
    a.wait_for("pinger lives on node-b");
    a.quit();
    b.quit();
}

fn count_of(line: &str) -> u64 {
    // "pong: ping #12 handled on node-b"
    line.split('#')
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

/// A type the `tcp_node` example does not have compiled in.
#[mobility::mobile]
#[derive(Default)]
pub struct OnlyInTests {
    value: u64,
}

#[mobility::mobile]
impl OnlyInTests {
    pub fn value(&self) -> u64 {
        self.value
    }
}

#[tokio::test]
async fn a_node_without_the_type_refuses_it_and_the_actor_stays() {
    let mut remote =
        NodeProcess::start(&["--port", "0", "--name", "node-r", "--cluster", "remote"]);
    let remote_addr = listen_addr(&remote.wait_for("listening on"));
    let node = mobility::Node::builder()
        .id("local")
        .cluster("local", "a secret both clusters share")
        .trust_cluster("*", "a secret both clusters share")
        .listen("127.0.0.1:0")
        .start()
        .await
        .expect("local node");
    let actor = node.spawn(OnlyInTests { value: 42 }).await.expect("spawn");
    let dest: mobility::Destination = format!("tcp://{remote_addr}").parse().expect("dest");
    let err = node.migrate(&actor, dest).await.expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("OnlyInTests") && text.contains("Pinger"),
        "names the type and what is known: {text}"
    );
    assert!(node.hosts(actor.id()));
    assert_eq!(actor.value().await, Ok(42));
    remote.quit();
}
