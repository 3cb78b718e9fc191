//! An example run as an OS process, driven through its prompt: its stdout
//! lines arrive on a channel (read by a thread, so it never blocks on a
//! full pipe), and every wait has a deadline. Killed when dropped, also
//! when the test fails.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one step may take on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A running example.
pub struct ExampleProcess {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl ExampleProcess {
    /// Starts example `name` with `args`, `MOBILITY_SECRET` set to `secret`.
    pub fn start(name: &str, secret: &str, args: &[&str]) -> ExampleProcess {
        let mut child = Command::new(super::example_binary(name))
            .args(args)
            .env("MOBILITY_SECRET", secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
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
        ExampleProcess {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`; returns it.
    pub fn wait_for(&mut self, text: &str) -> String {
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

    /// Types `command` at its prompt.
    pub fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("write to the prompt");
        self.stdin.flush().expect("flush");
    }

    /// Types `quit` and waits for a clean exit.
    pub fn quit(mut self) {
        self.send("quit");
        self.wait_success();
    }

    /// Waits for the process to exit on its own, successfully.
    pub fn wait_success(mut self) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "exited with {status}");
                return;
            }
            // Drains its output meanwhile; the deadline bounds the wait.
            let _ = self.lines.recv_timeout(Duration::from_millis(50));
        }
        panic!("did not quit within {PATIENCE:?}");
    }
}

impl Drop for ExampleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
