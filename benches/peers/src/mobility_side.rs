//! mobility: a counter actor with a plain handler (lent: it runs on the
//! caller's task while the actor is idle) and the same as an `async`
//! handler (always through the mailbox, on the actor's task).

use std::time::Duration;

use mobility::prelude::*;

const SECRET: &str = "peers benchmark secret";

#[mobile]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

#[mobile]
impl Counter {
    pub fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }

    pub async fn add_queued(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }
}

/// A local node (no listener) on the current runtime.
pub async fn local_node(id: &str) -> Node {
    Node::builder()
        .id(id)
        .start()
        .await
        .expect("mobility node starts")
}

pub async fn spawn(node: &Node) -> Handle<Counter> {
    node.spawn(Counter::default())
        .await
        .expect("mobility spawn")
}

pub async fn call(h: &Handle<Counter>, n: u64) -> u64 {
    h.add(n).await.expect("mobility add")
}

pub async fn call_queued(h: &Handle<Counter>, n: u64) -> u64 {
    h.add_queued(n).await.expect("mobility add_queued")
}

/// `n` fire-and-forget messages, then one request to flush.
pub async fn flood(h: &Handle<Counter>, n: u64) -> u64 {
    for _ in 0..n {
        h.tell().add(1).expect("mobility tell");
    }
    h.add(0).await.expect("mobility flush")
}

async fn tcp_node(id: &str, cluster: &str) -> Node {
    Node::builder()
        .id(id)
        .cluster(cluster, SECRET)
        .trust_cluster("*", SECRET)
        .listen("127.0.0.1:0")
        .request_timeout(Duration::from_secs(60))
        .migration_timeout(Duration::from_secs(60))
        .start()
        .await
        .expect("mobility tcp node starts")
}

/// The server side (child process): a node of cluster `west` listening on
/// loopback; returns its `tcp://` destination. Actors arrive by migration.
pub async fn serve() -> (Node, String) {
    let node = tcp_node("peers-b", "west").await;
    let dest = format!("tcp://{}", node.listen_addr().expect("listens"));
    (node, dest)
}

/// The client side: a node of cluster `east` that spawns a counter and
/// migrates it to the server at `dest`; the handle then calls it there.
pub async fn remote(dest: &str) -> (Node, Handle<Counter>) {
    let node = tcp_node("peers-a", "east").await;
    let h = spawn(&node).await;
    let dest: Destination = dest.parse().expect("destination");
    node.migrate(&h, dest)
        .await
        .expect("migrates to the server");
    assert!(
        !node.hosts(h.id()),
        "the counter runs in the server process"
    );
    (node, h)
}
