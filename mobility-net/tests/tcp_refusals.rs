//! Bad input closes that connection (with a logged reason) and nothing else:
//! after each case the transport still takes a good peer and exchanges a
//! message with it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use mobility_net::tcp::handshake::Hello;
use mobility_net::tcp::RefusalReason;
use mobility_net::{NetError, TcpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const QUICK: Duration = Duration::from_secs(1);

/// A refusal the listener names reaches the dialer well within this (the
/// handshake timeout of these tests is 2 s).
const FAST: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_refused_both_ways() {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let (m, mut em) = start("mallory", "c", "not-s", config()).await;
    let err = connect(&m, a.local_addr()).await.expect_err("refused");
    assert!(matches!(err, NetError::Handshake { .. }), "{err}");
    let err = connect(&a, m.local_addr()).await.expect_err("refused");
    assert!(matches!(err, NetError::Handshake { .. }), "{err}");
    assert_no_event_about(&mut ea, m.node());
    assert_no_event_about(&mut em, a.node());
    assert_serves(&a, &mut ea, "c", "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_cluster_is_refused_both_ways() {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let (x, _ex) = start("node-x", "other", "s", config()).await;
    // x trusts a's cluster, a does not trust x's: a says so at x's
    // hello, and x fails at once with that reason.
    x.trust_cluster("c", "s".into());
    let started = Instant::now();
    let err = connect(&x, a.local_addr()).await.expect_err("refused");
    assert!(
        started.elapsed() < FAST,
        "refused after {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            NetError::Refused {
                reason: RefusalReason::ClusterNotTrusted,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cluster not trusted"), "{err}");
    let err = connect(&a, x.local_addr()).await.expect_err("refused");
    assert!(err.to_string().contains("unknown cluster"), "{err}");
    assert_no_event_about(&mut ea, x.node());
    assert_serves(&a, &mut ea, "c", "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_version_and_bad_magic_are_refused() {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let mut future = hello("node-f", "c");
    future.version = 99;
    let mut s = raw(&a).await;
    write_frame(&mut s, &mobility_net::encode(&future).expect("encodes")).await;
    assert_closed(&mut s, QUICK).await;
    let mut bad = hello("node-f", "c");
    bad.magic = *b"EVIL";
    let mut s = raw(&a).await;
    write_frame(&mut s, &mobility_net::encode(&bad).expect("encodes")).await;
    assert_closed(&mut s, QUICK).await;
    assert_serves(&a, &mut ea, "c", "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_runtime_speaks_another_protocol_is_refused_both_ways() {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let mut newer = identity("node-n", "c", "s");
    newer.app_version = 1;
    let (n, _en) = mobility_net::Transport::bind(newer, config(), "127.0.0.1:0")
        .await
        .expect("binds");
    // The dialer reads the listener's hello first and names both versions.
    let err = connect(&n, a.local_addr()).await.expect_err("refused");
    assert!(
        err.to_string()
            .contains("runtime speaks protocol version 0, this node's 1"),
        "{err}"
    );
    let err = connect(&a, n.local_addr()).await.expect_err("refused");
    assert!(
        err.to_string()
            .contains("runtime speaks protocol version 1, this node's 0"),
        "{err}"
    );
    assert_no_event_about(&mut ea, n.node());
    assert_serves(&a, &mut ea, "c", "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_are_refused() {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    // Not even a frame: the "length" is far over the handshake limit.
    let mut s = raw(&a).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("writes");
    assert_closed(&mut s, QUICK).await;
    // A frame of garbage.
    let mut s = raw(&a).await;
    write_frame(&mut s, &[0xff, 0x00, 0x13, 0x37, 0x42]).await;
    assert_closed(&mut s, QUICK).await;
    // A frame of valid CBOR that is not a hello.
    let mut s = raw(&a).await;
    write_frame(
        &mut s,
        &mobility_net::encode(&("hi", 3u8)).expect("encodes"),
    )
    .await;
    assert_closed(&mut s, QUICK).await;
    // A good hello, then garbage as the Noise handshake message.
    let mut s = raw(&a).await;
    write_frame(
        &mut s,
        &mobility_net::encode(&hello("node-g", "c")).expect("encodes"),
    )
    .await;
    read_frame(&mut s).await.expect("hello");
    write_frame(&mut s, b"\x00\x01garbage").await;
    assert_closed(&mut s, QUICK).await;
    assert_serves(&a, &mut ea, "c", "s").await;
}

/// A proxy that forwards one connection to `target` and records what the
/// client sent.
async fn recording_proxy(
    target: std::net::SocketAddr,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("bound");
    let record = Arc::new(Mutex::new(Vec::new()));
    let rec = Arc::clone(&record);
    tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = TcpStream::connect(target).await else {
            return;
        };
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
        });
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = cr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            rec.lock().expect("no panic").extend_from_slice(&buf[..n]);
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    (addr, record)
}

/// Splits the first `n` length-prefixed frames off `bytes`.
fn first_frames(bytes: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while out.len() < n {
        let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        out.push(rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_handshake_is_refused() {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let (b, mut eb) = start("node-b", "c", "s", config()).await;
    let (proxy, record) = recording_proxy(a.local_addr()).await;
    connect(&b, proxy)
        .await
        .expect("b connects through the proxy");
    let to_a = peer_up(&mut eb, a.node()).await;
    let _ = peer_up(&mut ea, b.node()).await;
    let recorded = record.lock().expect("no panic").clone();
    let frames = first_frames(&recorded, 2);
    let _: Hello = mobility_net::decode(&frames[0]).expect("the dialer's hello");
    assert_eq!(
        frames[1].len(),
        48,
        "the dialer's Noise message: e and a tag"
    );
    // Replayed as is: the listener's fresh nonce (in the prologue) makes
    // the old Noise message fail.
    let mut s = raw(&a).await;
    write_frame(&mut s, &frames[0]).await;
    write_frame(&mut s, &frames[1]).await;
    assert_closed(&mut s, QUICK).await;
    // Replayed in step with the listener's answer: refused too.
    let mut s = raw(&a).await;
    write_frame(&mut s, &frames[0]).await;
    read_frame(&mut s).await.expect("hello");
    write_frame(&mut s, &frames[1]).await;
    assert_closed(&mut s, QUICK).await;
    // The genuine session is untouched.
    to_a.send(Bytes::from_static(b"still here"))
        .expect("queued");
    assert_eq!(frames_of(&mut ea, &b).await, "still here");
    assert_no_event_about(&mut ea, b.node());
    assert_serves(&a, &mut ea, "c", "s").await;
}

async fn frames_of(events: &mut Events, t: &mobility_net::Transport) -> Bytes {
    frames(events, t.node(), 1).await.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflected_handshake_is_refused() {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    // The listener's own hello sent back to it as the Noise message.
    let mut s = raw(&a).await;
    write_frame(
        &mut s,
        &mobility_net::encode(&hello("mallory", "c")).expect("encodes"),
    )
    .await;
    let their_hello = read_frame(&mut s).await.expect("hello");
    write_frame(&mut s, &their_hello).await;
    assert_closed(&mut s, QUICK).await;
    // The listener's own hello sent back to it as a hello.
    let mut s = raw(&a).await;
    write_frame(&mut s, &their_hello).await;
    assert_closed(&mut s, QUICK).await;
    // A Noise message written for another listener's hello.
    let (b, _eb) = start("node-b", "c", "s", config()).await;
    let mut s = raw(&a).await;
    let mine = mobility_net::encode(&hello("mallory", "c")).expect("encodes");
    write_frame(&mut s, &mine).await;
    let _ = read_frame(&mut s).await.expect("hello");
    let mut other = raw(&b).await;
    write_frame(&mut other, &mine).await;
    let other_hello = read_frame(&mut other).await.expect("hello");
    let key = mobility_net::tcp::NodeKey::generate().expect("random");
    let psk = mobility_net::tcp::noise::psk(&"s".into());
    let mut state =
        mobility_net::tcp::noise::dialer(&psk, &key, &mine, &other_hello).expect("builds");
    let first = mobility_net::tcp::noise::write(&mut state, &[]).expect("writes");
    write_frame(&mut s, &first).await;
    assert_closed(&mut s, QUICK).await;
    assert_no_event_about(&mut ea, &node("mallory"));
    assert_serves(&a, &mut ea, "c", "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_length_prefix_closes_before_the_body() {
    let config = TcpConfig {
        max_frame: 64 * 1024,
        ..config()
    };
    let (a, mut ea) = start("node-a", "c", "s", config).await;
    // Before authentication the limit is 4 KiB.
    let mut s = raw(&a).await;
    s.write_all(&(5000u32).to_be_bytes()).await.expect("writes");
    assert_closed(&mut s, QUICK).await;
    let mut s = raw(&a).await;
    s.write_all(&u32::MAX.to_be_bytes()).await.expect("writes");
    assert_closed(&mut s, QUICK).await;
    // After authentication, `max_frame` (the length is read as soon as its
    // Noise message is decrypted, before the body comes).
    let (mut s, _, mut keys) = raw_handshake_keyed(&a, "node-o", "c", "s").await;
    s.write_all(&keys.seal_raw(&(64 * 1024u32 + 1).to_be_bytes()))
        .await
        .expect("writes");
    assert_closed(&mut s, QUICK).await;
    assert_serves(&a, &mut ea, "c", "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_frame_then_close_is_handled() {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let mut s = raw(&a).await;
    s.write_all(&100u32.to_be_bytes()).await.expect("writes");
    s.write_all(&[1u8; 10]).await.expect("writes");
    s.shutdown().await.expect("half-closes");
    assert_closed(&mut s, QUICK).await;
    // The same after authentication: a frame cut short inside the
    // encrypted stream, and a Noise message cut short.
    let (mut s, _, mut keys) = raw_handshake_keyed(&a, "node-t", "c", "s").await;
    let mut plain = 100u32.to_be_bytes().to_vec();
    plain.extend_from_slice(&[1u8; 10]);
    s.write_all(&keys.seal_raw(&plain)).await.expect("writes");
    s.shutdown().await.expect("half-closes");
    assert_closed(&mut s, QUICK).await;
    let (mut s, _, mut keys) = raw_handshake_keyed(&a, "node-t2", "c", "s").await;
    let sealed = keys.seal_frame(&[1u8; 100]);
    s.write_all(&sealed[..50]).await.expect("writes");
    s.shutdown().await.expect("half-closes");
    assert_closed(&mut s, QUICK).await;
    // Garbage after authentication: bytes that do not decrypt, then a
    // frame that decrypts but is no session frame.
    let (mut s, _) = raw_handshake(&a, "node-u", "c", "s").await;
    write_frame(&mut s, &[0xff; 40]).await;
    assert_closed(&mut s, QUICK).await;
    let (mut s, _, mut keys) = raw_handshake_keyed(&a, "node-v", "c", "s").await;
    s.write_all(&keys.seal_frame(b"\xff\xff\xff"))
        .await
        .expect("writes");
    assert_closed(&mut s, QUICK).await;
    assert_serves(&a, &mut ea, "c", "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_closed_after_the_handshake_timeout() {
    let config = TcpConfig {
        handshake_timeout: Duration::from_millis(300),
        ..config()
    };
    let (a, mut ea) = start("node-a", "c", "s", config).await;
    let started = Instant::now();
    let mut s = raw(&a).await;
    assert_closed(&mut s, Duration::from_secs(5)).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );
    // Silent after its hello, too.
    let mut s = raw(&a).await;
    write_frame(
        &mut s,
        &mobility_net::encode(&hello("node-s", "c")).expect("encodes"),
    )
    .await;
    assert_closed(&mut s, Duration::from_secs(5)).await;
    // Authenticated but never sends `Resume`: the socket is dropped too.
    let (mut s, _) = raw_handshake(&a, "node-r", "c", "s").await;
    assert_closed(&mut s, Duration::from_secs(5)).await;
    assert_serves(&a, &mut ea, "c", "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_links_limit_is_named_as_this_nodes_own_and_strangers_do_not_count() {
    let small = TcpConfig {
        max_connections: 1,
        ..config()
    };
    let (a, mut ea) = start("node-a", "c", "s", small).await;
    // Sockets that never authenticate take no place among the links: a
    // still dials.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(raw(&a).await);
    }
    let (b, mut eb) = start("node-b", "c", "s", config()).await;
    connect(&a, b.local_addr()).await.expect("a dials b");
    let _to_b = peer_up(&mut ea, b.node()).await;
    let _to_a = peer_up(&mut eb, a.node()).await;
    // Its one link is taken: dialing out again fails, naming a's own limit.
    let (c, _ec) = start("node-c", "c", "s", config()).await;
    let err = connect(&a, c.local_addr()).await.expect_err("full");
    assert!(
        matches!(err, NetError::TooManyConnections { max: 1 }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("this node has too many links open (1"),
        "{err}"
    );
    // Dialing in, c is told a is busy: c's error names a's limit, not c's.
    let err = connect(&c, a.local_addr()).await.expect_err("a is full");
    match &err {
        NetError::Busy { addr, limit } => {
            assert_eq!(addr, &a.local_addr().to_string());
            assert_eq!(limit, "too many links open (1)");
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains("is busy: that node refused"),
        "{err}"
    );
    let refused = a.refusals();
    assert!(refused.links_full >= 1, "{refused:?}");
    assert_eq!(
        refused.unauthenticated_full + refused.per_address,
        0,
        "{refused:?}"
    );
    drop(held);
    b.shutdown();
    assert_serves(&a, &mut ea, "c", "s").await;
}

/// The CBOR shape of the `Resume` frame (kind byte 0), written by hand.
#[derive(serde::Serialize)]
enum Control {
    Resume {
        session: Option<[u8; 16]>,
        dropped: Vec<[u8; 16]>,
        upto: u64,
    },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_peer_is_dropped_then_reported_lost() {
    let config = TcpConfig {
        idle_timeout: Duration::from_millis(300),
        reconnect_for: Duration::from_millis(300),
        ..config()
    };
    let (a, mut ea) = start("node-a", "c", "s", config).await;
    let (mut s, _, mut keys) = raw_handshake_keyed(&a, "node-i", "c", "s").await;
    let mut resume = vec![0u8];
    resume.extend(
        mobility_net::encode(&Control::Resume {
            session: None,
            dropped: Vec::new(),
            upto: 0,
        })
        .expect("encodes"),
    );
    s.write_all(&keys.seal_frame(&resume))
        .await
        .expect("writes");
    let _link = peer_up(&mut ea, &node("node-i")).await;
    // It answers no ping: dropped after the idle timeout.
    let started = Instant::now();
    assert_closed(&mut s, Duration::from_secs(5)).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    // It does not come back (its listen address is unknown): lost.
    let reason = peer_lost(&mut ea, &node("node-i")).await;
    assert!(reason.contains("unreachable"), "{reason}");
    assert_serves(&a, &mut ea, "c", "s").await;
}
