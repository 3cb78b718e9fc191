//! The TCP transport delivers every message exactly once and in order: both
//! ways, in volume, in chunks, across cut sockets; and reports lost peers.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use mobility_net::{Secret, TcpConfig};

fn numbered(i: u32, pad: usize) -> Bytes {
    let mut v = i.to_be_bytes().to_vec();
    v.resize(4 + pad, (i % 251) as u8);
    Bytes::from(v)
}

fn check_numbered(frames: &[Bytes], from: u32) {
    for (k, frame) in frames.iter().enumerate() {
        let i = u32::from_be_bytes(frame[..4].try_into().expect("4 bytes"));
        assert_eq!(i, from + k as u32, "frame {k} out of order or duplicated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_both_ways() {
    let ((a, mut ea, to_b), (b, mut eb, to_a)) = pair(config()).await;
    to_b.send(Bytes::from_static(b"hello b")).expect("queued");
    to_a.send(Bytes::from_static(b"hello a")).expect("queued");
    assert_eq!(frames(&mut eb, a.node(), 1).await[0], "hello b");
    assert_eq!(frames(&mut ea, b.node(), 1).await[0], "hello a");
    // An empty message is a message too.
    to_b.send(Bytes::new()).expect("queued");
    assert_eq!(frames(&mut eb, a.node(), 1).await[0], "");
    // Connecting again reuses the session: no new PeerUp, same link works.
    let id = connect(&b, a.local_addr()).await.expect("connects");
    assert_eq!(&id, a.node());
    let id = connect(&a, b.local_addr()).await.expect("connects");
    assert_eq!(&id, b.node());
    to_b.send(Bytes::from_static(b"again")).expect("queued");
    assert_eq!(frames(&mut eb, a.node(), 1).await[0], "again");
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_small_messages_exactly_once_in_order() {
    let ((a, _ea, to_b), (b, mut eb, to_a)) = pair(config()).await;
    let n = 10_000u32;
    let started = Instant::now();
    for i in 0..n {
        to_b.send(numbered(i, 60)).expect("queued");
    }
    let got = frames(&mut eb, a.node(), n as usize).await;
    let took = started.elapsed();
    check_numbered(&got, 0);
    eprintln!(
        "10,000 messages of 64 bytes: {took:?} ({:.0} messages/s)",
        f64::from(n) / took.as_secs_f64()
    );
    // Nothing more (no duplicate) arrives: a marker sent after comes next.
    to_b.send(Bytes::from_static(b"end")).expect("queued");
    assert_eq!(frames(&mut eb, a.node(), 1).await[0], "end");
    drop(to_a);
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forty_mib_message_arrives_in_chunks() {
    // The default 8 MiB frames: 5 chunks.
    let ((a, _ea, to_b), (b, mut eb, _to_a)) = pair(config()).await;
    let big: Vec<u8> = (0..40u32 << 20).map(|i| (i % 253) as u8).collect();
    let big = Bytes::from(big);
    let started = Instant::now();
    to_b.send(big.clone()).expect("queued");
    to_b.send(Bytes::from_static(b"after")).expect("queued");
    let got = frames(&mut eb, a.node(), 2).await;
    let took = started.elapsed();
    assert_eq!(got[0].len(), big.len());
    assert!(got[0] == big, "content differs");
    assert_eq!(got[1], "after");
    eprintln!(
        "40 MiB message: {took:?} ({:.0} MiB/s)",
        40.0 / took.as_secs_f64()
    );
    a.shutdown();
    b.shutdown();
}

async fn cut_mid_stream(cut_at_sender: bool) {
    let ((a, _ea, to_b), (b, mut eb, _to_a)) = pair(config()).await;
    let n = 5_000u32;
    for i in 0..n / 2 {
        to_b.send(numbered(i, 100)).expect("queued");
    }
    let mut got = frames(&mut eb, a.node(), 1_000).await;
    if cut_at_sender {
        a.fault_cut(b.node());
    } else {
        b.fault_cut(a.node());
    }
    for i in n / 2..n {
        to_b.send(numbered(i, 100)).expect("queued");
    }
    got.extend(frames(&mut eb, a.node(), 1_000).await);
    // A second cut, from the other side, while the rest streams.
    if cut_at_sender {
        b.fault_cut(a.node());
    } else {
        a.fault_cut(b.node());
    }
    got.extend(frames(&mut eb, a.node(), (n - 2_000) as usize).await);
    check_numbered(&got, 0);
    to_b.send(Bytes::from_static(b"end")).expect("queued");
    assert_eq!(
        frames(&mut eb, a.node(), 1).await[0],
        "end",
        "no duplicates"
    );
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_at_sender_mid_stream_resumes_exactly_once() {
    cut_mid_stream(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_at_receiver_mid_stream_resumes_exactly_once() {
    cut_mid_stream(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_peer_is_reported_lost_then_comes_back() {
    let config = TcpConfig {
        reconnect_for: Duration::from_millis(500),
        ..config()
    };
    let ((a, mut ea, to_b), (b, mut eb, to_a)) = pair(config).await;
    a.fault_block(b.node(), true);
    let started = Instant::now();
    let reason = peer_lost(&mut ea, b.node()).await;
    assert!(started.elapsed() >= Duration::from_millis(450), "{reason}");
    eprintln!("a lost b: {reason}");
    let reason = peer_lost(&mut eb, a.node()).await;
    eprintln!("b lost a: {reason}");
    assert!(
        to_b.send(Bytes::from_static(b"x")).is_err(),
        "old link closed"
    );
    assert!(to_a.is_closed(), "old link closed");
    // Unblocked, a new session starts.
    a.fault_block(b.node(), false);
    connect(&b, a.local_addr()).await.expect("connects");
    let to_a = peer_up(&mut eb, a.node()).await;
    let _to_b = peer_up(&mut ea, b.node()).await;
    to_a.send(Bytes::from_static(b"back")).expect("queued");
    assert_eq!(frames(&mut ea, b.node(), 1).await[0], "back");
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_a_new_session() {
    let ((a, mut ea, _to_b), (b, _eb, _to_a)) = pair(config()).await;
    let addr = b.local_addr().to_string();
    b.shutdown();
    // The same node id comes back on another port with a new incarnation.
    let (b2, mut eb2) = start("node-b", "c", "s", config()).await;
    drop(addr);
    connect(&a, b2.local_addr()).await.expect("connects");
    let reason = peer_lost(&mut ea, b2.node()).await;
    eprintln!("{reason}");
    let to_b = peer_up(&mut ea, b2.node()).await;
    let _ = peer_up(&mut eb2, a.node()).await;
    to_b.send(Bytes::from_static(b"new")).expect("queued");
    assert_eq!(frames(&mut eb2, a.node(), 1).await[0], "new");
    a.shutdown();
    b2.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_clusters_talk_both_ways() {
    let (a, mut ea) = start("node-a", "c1", "s1", config()).await;
    let (b, mut eb) = start("node-b", "c2", "s2", config()).await;
    let shared = Secret::from("between c1 and c2");
    a.trust_cluster("c2", shared.clone());
    b.trust_cluster("c1", shared);
    connect(&a, b.local_addr()).await.expect("connects");
    let to_b = peer_up(&mut ea, b.node()).await;
    let to_a = peer_up(&mut eb, a.node()).await;
    to_b.send(Bytes::from_static(b"x")).expect("queued");
    to_a.send(Bytes::from_static(b"y")).expect("queued");
    assert_eq!(frames(&mut eb, a.node(), 1).await[0], "x");
    assert_eq!(frames(&mut ea, b.node(), 1).await[0], "y");
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_connects_settle_on_one_session() {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let (b, mut eb) = start("node-b", "c", "s", config()).await;
    let (ra, rb) = tokio::join!(connect(&a, b.local_addr()), connect(&b, a.local_addr()));
    assert_eq!(&ra.expect("a connects"), b.node());
    assert_eq!(&rb.expect("b connects"), a.node());
    let to_b = peer_up(&mut ea, b.node()).await;
    let to_a = peer_up(&mut eb, a.node()).await;
    for i in 0..100 {
        to_b.send(numbered(i, 10)).expect("queued");
        to_a.send(numbered(i, 10)).expect("queued");
    }
    check_numbered(&frames(&mut eb, a.node(), 100).await, 0);
    check_numbered(&frames(&mut ea, b.node(), 100).await, 0);
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_peers_limit_is_refused_at_send() {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let small = TcpConfig {
        max_message: 1 << 20,
        ..config()
    };
    let (b, mut eb) = start("node-b", "c", "s", small).await;
    connect(&a, b.local_addr()).await.expect("connects");
    let to_b = peer_up(&mut ea, b.node()).await;
    assert!(to_b.send(Bytes::from(vec![0u8; (1 << 20) + 1])).is_err());
    to_b.send(Bytes::from(vec![1u8; 1 << 20]))
        .expect("at the limit");
    assert_eq!(frames(&mut eb, a.node(), 1).await[0].len(), 1 << 20);
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_shuts_down() {
    let quick = TcpConfig {
        reconnect_for: Duration::from_millis(300),
        ..config()
    };
    let ((a, _ea, _to_b), (b, mut eb, _to_a)) = pair(quick).await;
    let addr = a.local_addr();
    drop(a);
    // The listener is closed: nothing accepts on that port any more (or,
    // if the OS already gave it to someone else, no mobility node answers).
    let deadline = Instant::now() + DEADLINE;
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(_) => break,
            Ok(_) if Instant::now() > deadline => panic!("still listening"),
            Ok(_) => tokio::task::yield_now().await,
        }
    }
    let _ = peer_lost(&mut eb, &node("node-a")).await;
    b.shutdown();
}
