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
