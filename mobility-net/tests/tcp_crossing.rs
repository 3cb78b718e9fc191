//! Nodes that dial each other many times at once (sockets crossing in both
//! directions, and several in the same direction finishing their
//! handshakes in a different order at each end) settle on one session per
//! pair: no `PeerLost`, one `PeerUp` per side, and every frame delivered
//! exactly once and in order, while sockets are also cut under the flow.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{config, identity, DEADLINE};
use mobility_net::{EventHandler, LinkSender, NodeId, TcpConfig, Transport, TransportEvent};
use tokio::time::Instant;

/// Nodes of each round: every pair dials both ways.
const NODES: usize = 3;
/// Callers of `connect` per node and peer, all at once.
const CALLERS: usize = 8;
/// Rounds, each with new transports (so the first dials all race).
const ROUNDS: usize = 12;
/// Bursts of concurrent connects (and cuts) per round.
const WAVES: usize = 4;

/// What one node saw and sent, per peer.
#[derive(Default)]
struct Seen {
    /// The link of the session with each peer.
    links: HashMap<NodeId, LinkSender>,
    /// `PeerUp`s per peer (one expected).
    ups: HashMap<NodeId, usize>,
    /// Next number to send to each peer.
    sent: HashMap<NodeId, u64>,
    /// Next number expected from each peer.
    received: HashMap<NodeId, u64>,
    /// What went wrong.
    errors: Vec<String>,
}

impl Seen {
    /// Sends the next `n` numbered frames to `peer`, if its link is up.
    fn send(&mut self, peer: &NodeId, n: u64) {
        let Some(link) = self.links.get(peer) else {
            return;
        };
        let next = self.sent.entry(peer.clone()).or_insert(0);
        for _ in 0..n {
            let mut frame = next.to_be_bytes().to_vec();
            // Sizes vary a little: 8 to 135 bytes.
            frame.resize(8 + (*next % 128) as usize, 0x5a);
            if link.send(Bytes::from(frame)).is_err() {
                self.errors.push(format!("link to {peer} closed"));
                return;
            }
            *next += 1;
        }
    }
}

struct Node {
    transport: Transport,
    seen: Arc<Mutex<Seen>>,
}

/// Rung after every transport event of a round's nodes: what `drained`
/// waits on between its looks.
type Changed = Arc<tokio::sync::Notify>;

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn start(name: String, config: TcpConfig, changed: Changed) -> Node {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let me = name.clone();
    let state = Arc::clone(&seen);
    // Frames go out from within the handler as soon as a session is up, as
    // the runtime does: the session is used at once.
    let handler: EventHandler = Arc::new(move |event| {
        let mut seen = lock(&state);
        match event {
            TransportEvent::PeerUp { peer, link, .. } => {
                let ups = seen.ups.entry(peer.clone()).or_insert(0);
                *ups += 1;
                if *ups > 1 {
                    let msg = format!("{me}: PeerUp #{ups} of {peer}");
                    seen.errors.push(msg);
                }
                seen.links.insert(peer.clone(), link);
                seen.send(&peer, 16);
            }
            TransportEvent::Frame { peer, frame } => {
                let got = u64::from_be_bytes(frame[..8].try_into().expect("8 bytes"));
                let expected = seen.received.insert(peer.clone(), got + 1).unwrap_or(0);
                if got != expected {
                    let msg = format!("{me}: frame {got} from {peer}, {expected} expected");
                    seen.errors.push(msg);
                }
                // Answer now and then, from the handler too.
                if got % 7 == 0 {
                    seen.send(&peer, 1);
                }
            }
            TransportEvent::PeerLost { peer, reason } => {
                let msg = format!("{me}: PeerLost of {peer}: {reason}");
                seen.errors.push(msg);
            }
        }
        drop(seen);
        // A stored permit if nobody waits yet: no change is missed.
        changed.notify_one();
    });
    let transport = Transport::bind_with(identity(&name, "c", "s"), config, "127.0.0.1:0", handler)
        .await
        .expect("binds");
    Node { transport, seen }
}

/// Spellings of a node's loopback address that the resolver maps to
/// 127.0.0.1 (the transport keys known addresses by text, so each new
/// spelling makes `connect` dial instead of waiting on the session).
async fn spellings(addr: SocketAddr) -> Vec<String> {
    let mut out = vec![addr.to_string()];
    for host in ["127.1", "127.0.1", "2130706433", "0x7f000001", "0177.1"] {
        let text = format!("{host}:{}", addr.port());
        let same = match tokio::net::lookup_host(text.as_str()).await {
            Ok(mut found) => found.any(|a| a == addr),
            Err(_) => false,
        };
        if same {
            out.push(text);
        }
    }
    out
}

/// A small deterministic generator, so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Every node calls `connect` to every other, `CALLERS` times at once.
async fn connect_all(nodes: &[Node], addrs: &[Vec<String>], wave: usize) {
    let mut tasks = Vec::new();
    for (i, from) in nodes.iter().enumerate() {
        for (j, to) in nodes.iter().enumerate() {
            if i == j {
                continue;
            }
            let spelling = &addrs[j][wave % addrs[j].len()];
            for _ in 0..CALLERS {
                let t = from.transport.clone();
                let addr = spelling.clone();
                let expected = to.transport.node().clone();
                tasks.push(tokio::spawn(async move {
                    match tokio::time::timeout(DEADLINE, t.connect(&addr)).await {
                        Ok(Ok(id)) if id == expected => Ok(()),
                        Ok(Ok(id)) => Err(format!("{addr} is {id}, {expected} expected")),
                        Ok(Err(e)) => Err(format!("connect to {addr}: {e}")),
                        Err(_) => Err(format!("connect to {addr} hangs")),
                    }
                }));
            }
        }
    }
    for task in tasks {
        if let Err(e) = task.await.expect("connect task") {
            panic!("{e}");
        }
    }
}

/// Sends `n` frames on every link of every node.
fn send_all(nodes: &[Node], n: u64) {
    for node in nodes {
        let mut seen = lock(&node.seen);
        let peers: Vec<NodeId> = seen.links.keys().cloned().collect();
        for peer in peers {
            seen.send(&peer, n);
        }
    }
}

fn errors(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .flat_map(|n| lock(&n.seen).errors.clone())
        .collect()
}

/// Waits until every frame sent was received, looking again after each
/// transport event; fails on any error.
async fn drained(nodes: &[Node], changed: &Changed, round: usize) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let errors = errors(nodes);
        assert!(errors.is_empty(), "round {round}: {errors:#?}");
        let mut missing = Vec::new();
        for from in nodes {
            let sent = lock(&from.seen).sent.clone();
            for to in nodes {
                let id = to.transport.node();
                if id == from.transport.node() {
                    continue;
                }
                let want = sent.get(id).copied().unwrap_or(0);
                let from_id = from.transport.node();
                let got = lock(&to.seen).received.get(from_id).copied().unwrap_or(0);
                if got != want {
                    missing.push(format!("{from_id} -> {id}: {got} of {want}"));
                }
            }
        }
        if missing.is_empty() {
            return;
        }
        let next = tokio::time::timeout_at(deadline, changed.notified()).await;
        assert!(next.is_ok(), "round {round}: frames missing: {missing:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crossing_connects_keep_one_session_and_every_frame() {
    let config = TcpConfig {
        // Long enough that only a protocol decision, not a timer, can
        // end a session here.
        reconnect_for: Duration::from_secs(20),
        ..config()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..ROUNDS {
        let changed = Changed::default();
        let mut nodes = Vec::new();
        for k in 0..NODES {
            let name = format!("node-{round}-{k}");
            nodes.push(start(name, config.clone(), changed.clone()).await);
        }
        let mut addrs = Vec::new();
        for node in &nodes {
            addrs.push(spellings(node.transport.local_addr()).await);
        }
        // Frames flow all along, from another task.
        let flowing = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let pump = {
            let seens: Vec<_> = nodes.iter().map(|n| Arc::clone(&n.seen)).collect();
            let flowing = Arc::clone(&flowing);
            tokio::spawn(async move {
                // Load at a steady rate (pacing, not a wait for anything).
                let mut pace = tokio::time::interval(Duration::from_micros(300));
                pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while flowing.load(std::sync::atomic::Ordering::Relaxed) {
                    for seen in &seens {
                        let mut seen = lock(seen);
                        let peers: Vec<NodeId> = seen.links.keys().cloned().collect();
                        for peer in peers {
                            seen.send(&peer, 4);
                        }
                    }
                    pace.tick().await;
                }
            })
        };
        for wave in 0..WAVES {
            // Cuts land while the connects of the wave dial or wait.
            let mut cuts = Vec::new();
            for _ in 0..NODES * NODES {
                let i = (rng.next() as usize) % NODES;
                let j = (rng.next() as usize) % NODES;
                if i != j && rng.next() % 3 == 0 {
                    cuts.push((i, j));
                }
            }
            // A random delay places the cuts among the connects: this
            // timing is what the test varies, not a wait for a condition.
            let delay = Duration::from_micros(rng.next() % 2_000);
            let cutters: Vec<(Transport, NodeId)> = cuts
                .iter()
                .map(|&(i, j)| {
                    (
                        nodes[i].transport.clone(),
                        nodes[j].transport.node().clone(),
                    )
                })
                .collect();
            let cutting = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                for (t, peer) in cutters {
                    t.fault_cut(&peer);
                }
            });
            connect_all(&nodes, &addrs, wave).await;
            cutting.await.expect("cuts");
            send_all(&nodes, 32);
            // A random gap before the next wave (the schedule under test).
            tokio::time::sleep(Duration::from_millis(rng.next() % 5)).await;
        }
        flowing.store(false, std::sync::atomic::Ordering::Relaxed);
        pump.await.expect("pump");
        send_all(&nodes, 64);
        drained(&nodes, &changed, round).await;
        for node in &nodes {
            let seen = lock(&node.seen);
            assert_eq!(
                seen.links.len(),
                NODES - 1,
                "round {round}: a peer never came up"
            );
        }
        for node in &nodes {
            node.transport.shutdown();
        }
    }
}

/// The follower (the larger node id) gives the session up while the leader
/// still holds it: on the next socket the leader learns it from the
/// follower's `Resume`, reports it lost and starts the next session on the
/// same socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_follower_dropped_is_replaced_on_the_next_socket() {
    use common::{connect, frames, next_event, peer_up, start};
    let patient = TcpConfig {
        reconnect_for: Duration::from_secs(20),
        ..config()
    };
    let quick = TcpConfig {
        reconnect_for: Duration::from_millis(300),
        ..config()
    };
    let (a, mut ea) = start("node-a", "c", "s", patient).await;
    let (b, mut eb) = start("node-b", "c", "s", quick).await;
    connect(&b, a.local_addr()).await.expect("connects");
    let to_b = peer_up(&mut ea, b.node()).await;
    let to_a = peer_up(&mut eb, a.node()).await;
    to_b.send(Bytes::from_static(b"first")).expect("queued");
    assert_eq!(frames(&mut eb, a.node(), 1).await[0], "first");
    b.fault_block(a.node(), true);
    let reason = common::peer_lost(&mut eb, a.node()).await;
    assert!(reason.contains("unreachable"), "{reason}");
    b.fault_block(a.node(), false);
    connect(&b, a.local_addr()).await.expect("connects again");
    match next_event(&mut ea).await {
        TransportEvent::PeerLost { peer, reason } => {
            assert_eq!(&peer, b.node());
            assert_eq!(reason, "the peer dropped the session");
        }
        other => panic!("PeerLost expected, got {other:?}"),
    }
    let to_b = peer_up(&mut ea, b.node()).await;
    let to_a = {
        drop(to_a);
        peer_up(&mut eb, a.node()).await
    };
    to_b.send(Bytes::from_static(b"to b")).expect("queued");
    to_a.send(Bytes::from_static(b"to a")).expect("queued");
    assert_eq!(frames(&mut eb, a.node(), 1).await[0], "to b");
    assert_eq!(frames(&mut ea, b.node(), 1).await[0], "to a");
    a.shutdown();
    b.shutdown();
}

/// The leader (the smaller node id) restarts: the follower reports the old
/// session lost and takes up the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leader_is_a_new_session() {
    use common::{connect, frames, next_event, peer_up, start};
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let (b, mut eb) = start("node-b", "c", "s", config()).await;
    connect(&a, b.local_addr()).await.expect("connects");
    let _to_b = peer_up(&mut ea, b.node()).await;
    let _to_a = peer_up(&mut eb, a.node()).await;
    a.shutdown();
    let (a2, mut ea2) = start("node-a", "c", "s", config()).await;
    connect(&a2, b.local_addr()).await.expect("connects");
    match next_event(&mut eb).await {
        TransportEvent::PeerLost { peer, reason } => {
            assert_eq!(&peer, a2.node());
            assert_eq!(reason, "the peer restarted");
        }
        other => panic!("PeerLost expected, got {other:?}"),
    }
    let to_a = peer_up(&mut eb, a2.node()).await;
    let to_b = peer_up(&mut ea2, b.node()).await;
    to_b.send(Bytes::from_static(b"to b")).expect("queued");
    to_a.send(Bytes::from_static(b"to a")).expect("queued");
    assert_eq!(frames(&mut eb, a2.node(), 1).await[0], "to b");
    assert_eq!(frames(&mut ea2, b.node(), 1).await[0], "to a");
    a2.shutdown();
    b.shutdown();
}
