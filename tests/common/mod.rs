//! Helpers shared by the integration tests: nodes, and waiting for a
//! condition with a deadline (never a fixed sleep).
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use mobility::Node;

/// How long any condition may take on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A started node with the given id.
pub async fn node(id: &str) -> Node {
    Node::builder().id(id).start().await.expect("node starts")
}

/// Nodes linked with each other (in process, every pair).
pub async fn linked(ids: &[&str]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for id in ids {
        nodes.push(node(id).await);
    }
    for i in 0..nodes.len() {
        for j in i + 1..nodes.len() {
            nodes[i].connect_in_process(&nodes[j]).expect("link");
        }
    }
    nodes
}

/// Waits until `check` holds, failing the test after `PATIENCE`.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// Waits until the async `check` holds, failing the test after `PATIENCE`.
pub async fn eventually_async<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// How often the polling waits look again.
const POLL: Duration = Duration::from_millis(10);

/// A steady rate for a load generator or a schedule (a tick every `every`;
/// late ticks are not bunched up): pacing, not a wait for anything.
#[allow(dead_code)] // not every test binary paces
pub fn pace(every: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// Polls `check` until it holds, failing the test after `PATIENCE` (for
/// conditions that gossip or timers make true).
pub async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    poll_until(what, || {
        let held = check();
        async move {
            if held {
                Ok(())
            } else {
                Err("not yet".to_owned())
            }
        }
    })
    .await
}

/// Polls the async `attempt` until it gives a value, failing the test after
/// `PATIENCE` with `what` and the reason of the last miss. (An attempt that
/// must not be retried panics itself.) The one polling loop of the tests.
pub async fn poll_until<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut ticks = tokio::time::interval(POLL);
    loop {
        ticks.tick().await;
        match attempt().await {
            Ok(value) => return value,
            Err(miss) => assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for: {what} (last: {miss})"
            ),
        }
    }
}

pub mod process;

pub mod ledger {
    //! An actor that checks numbered messages: per sender, what came twice
    //! or early, and how many were handled.

    use std::collections::HashMap;

    use mobility::prelude::*;

    #[mobile]
    #[derive(Default)]
    pub struct Ledger {
        next: HashMap<String, u64>,
        handled: u64,
        duplicates: u64,
        out_of_order: u64,
    }

    /// What a ledger saw.
    #[mobile]
    #[derive(Debug, Clone, PartialEq)]
    pub struct Tally {
        pub handled: u64,
        pub duplicates: u64,
        pub out_of_order: u64,
        /// Per sender, the number after the last one handled.
        pub next: HashMap<String, u64>,
    }

    #[mobile]
    impl Ledger {
        /// Message `seq` of `sender`; returns how many were handled.
        pub fn record(&mut self, sender: String, seq: u64) -> u64 {
            let next = self.next.entry(sender).or_insert(0);
            if seq < *next {
                self.duplicates += 1;
            } else {
                if seq > *next {
                    self.out_of_order += 1;
                }
                *next = seq + 1;
                self.handled += 1;
            }
            self.handled
        }

        pub fn tally(&self) -> Tally {
            Tally {
                handled: self.handled,
                duplicates: self.duplicates,
                out_of_order: self.out_of_order,
                next: self.next.clone(),
            }
        }
    }
}

/// The example `name`, built (up to date) by cargo on first use, for tests
/// that run it as an OS process; built even when the test runs alone (a
/// stale binary would speak an older protocol).
pub fn example_binary(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, std::path::PathBuf)>> =
        std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, path)) = built.iter().find(|(n, _)| n == name) {
        return path.clone();
    }
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let mut build = std::process::Command::new(env!("CARGO"));
    build.args(["build", "--example", name]);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build");
    assert!(status.success(), "building the {name} example failed");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    built.push((name.to_owned(), path.clone()));
    path
}
