//! Links are encrypted (protocol version 7, Noise): what a frame carries
//! never appears on the wire, a ciphertext altered on the way closes the
//! connection with a logged reason and delivers nothing, a wrong secret
//! gets no answer keyed by the right one, and a recorded session replayed
//! to the listener gets nowhere.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use mobility_net::tcp::{handshake, noise, ClusterAuthority, NodeKey, RefusalReason};
use mobility_net::{Secret, TransportEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const QUICK: Duration = Duration::from_secs(1);

/// Bytes that must never be seen on the wire.
const MARKER: &[u8] = b"PLAINTEXT-MARKER-d1c3a5e7";

type Record = Arc<Mutex<Vec<u8>>>;

/// Copies `from` to `to`, recording every byte.
async fn copy_recording(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    record: Record,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        record
            .lock()
            .expect("no panic")
            .extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// A proxy that forwards one connection to `target` and records both
/// directions: (its address, dialer to listener, listener to dialer).
async fn recording_proxy(target: SocketAddr) -> (SocketAddr, Record, Record) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("bound");
    let up = Record::default();
    let down = Record::default();
    let (up2, down2) = (Arc::clone(&up), Arc::clone(&down));
    tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = TcpStream::connect(target).await else {
            return;
        };
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        tokio::spawn(copy_recording(sr, cw, down2));
        copy_recording(cr, sw, up2).await;
    });
    (addr, up, down)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `MARKER` over and over, `len` bytes.
fn markers(len: usize) -> Bytes {
    MARKER.iter().copied().cycle().take(len).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_frame_carries_never_appears_on_the_wire() {
    // Every test installs the log capture before any node starts, so
    // no callsite is first seen without it.
    capture_logs();
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let (b, mut eb) = start("node-b", "c", "s", config()).await;
    let (proxy, up, down) = recording_proxy(b.local_addr()).await;
    connect(&a, proxy)
        .await
        .expect("a connects through the proxy");
    let to_b = peer_up(&mut ea, b.node()).await;
    let to_a = peer_up(&mut eb, a.node()).await;
    // A small message, and one of several chunks, each of many Noise
    // messages, both ways.
    let big = markers(3 << 20);
    for link in [&to_b, &to_a] {
        link.send(Bytes::from_static(MARKER)).expect("queued");
        link.send(big.clone()).expect("queued");
    }
    for (events, from) in [(&mut eb, a.node()), (&mut ea, b.node())] {
        let got = frames(events, from, 2).await;
        assert_eq!(got[0], MARKER);
        assert!(got[1] == big, "the big message arrives whole");
    }
    // Both got everything, so it all went through the proxy.
    let up = up.lock().expect("no panic").clone();
    let down = down.lock().expect("no panic").clone();
    assert!(
        up.len() > 3 << 20 && down.len() > 3 << 20,
        "{} {}",
        up.len(),
        down.len()
    );
    assert!(!contains(&up, MARKER), "plaintext toward the listener");
    assert!(!contains(&down, MARKER), "plaintext toward the dialer");
    // Not even a shorter piece of it.
    assert!(!contains(&up, &MARKER[..12]) && !contains(&down, &MARKER[..12]));
}

/// A `Data` frame as the session encodes it (kind 1, seq, `more`, ack,
/// the chunk).
fn data(seq: u64, chunk: &[u8]) -> Vec<u8> {
    let mut frame = vec![1u8];
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.push(0);
    frame.extend_from_slice(&0u64.to_be_bytes());
    frame.extend_from_slice(chunk);
    frame
}

/// The `Resume` of a follower that holds no session (kind 0, then CBOR).
fn empty_resume() -> Vec<u8> {
    #[derive(serde::Serialize)]
    enum Control {
        Resume {
            session: Option<[u8; 16]>,
            dropped: Vec<[u8; 16]>,
            upto: u64,
        },
    }
    let mut frame = vec![0u8];
    frame.extend(
        mobility_net::encode(&Control::Resume {
            session: None,
            dropped: Vec::new(),
            upto: 0,
        })
        .expect("encodes"),
    );
    frame
}

/// Fails the test if a frame of `peer` is queued.
fn assert_no_frame_of(events: &mut Events, peer: &mobility_net::NodeId) {
    while let Ok(event) = events.try_recv() {
        if let TransportEvent::Frame { peer: p, frame } = &event {
            assert_ne!(p, peer, "delivered: {frame:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_ciphertext_closes_the_connection_with_a_logged_reason_and_delivers_nothing() {
    capture_logs();
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let tamperer = node("node-tamperer");
    let (mut s, _, mut keys) = raw_handshake_keyed(&a, tamperer.as_str(), "c", "s").await;
    s.write_all(&keys.seal_frame(&empty_resume()))
        .await
        .expect("writes");
    let _link = peer_up(&mut ea, &tamperer).await;
    // A genuine frame is delivered...
    s.write_all(&keys.seal_frame(&data(1, b"genuine")))
        .await
        .expect("writes");
    assert_eq!(frames(&mut ea, &tamperer, 1).await, vec!["genuine"]);
    // ...the next one, one bit of its ciphertext flipped, is not.
    let mut sealed = keys.seal_frame(&data(2, MARKER));
    let last = sealed.len() - 1;
    sealed[last / 2] ^= 0x01;
    s.write_all(&sealed).await.expect("writes");
    assert_closed(&mut s, QUICK).await;
    assert_no_frame_of(&mut ea, &tamperer);
    until("the reason is logged", || {
        let logs = String::from_utf8_lossy(&logs().lock().expect("no panic")).into_owned();
        logs.lines().any(|line| {
            line.contains("node-tamperer")
                && line.contains("WARN")
                && line.contains("Noise message 2 does not decrypt")
        })
    })
    .await;
    // Nothing of it arrives later either, and the node still serves.
    assert_serves(&a, &mut ea, "c", "s").await;
    assert_no_frame_of(&mut ea, &tamperer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_gets_no_answer_keyed_by_the_right_one() {
    // Every test installs the log capture before any node starts, so
    // no callsite is first seen without it.
    capture_logs();
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let before = a.refusals().bad_handshake;
    // A raw dialer with the wrong secret: the listener's answer (its
    // certificate) does not depend on the secret at all, so it tells
    // nothing about it; the dialer's last message, keyed by it, fails.
    let wrong = Secret::from("not-s");
    let key = NodeKey::generate().expect("random");
    let certificate = ClusterAuthority::from_secret(&wrong)
        .certify(&node("mallory"), "c", key.public(), None)
        .expect("certifies");
    let (mut s, _, _, theirs) = raw_dial(
        &a,
        &hello("mallory", "c"),
        &noise::psk(&wrong),
        &key,
        certificate.as_bytes(),
    )
    .await
    .expect("the listener answers its certificate, keyed by no secret");
    assert_eq!(theirs.node(), a.node());
    // The listener refuses the last message, naming no more than a
    // failed handshake (in clear, keyed by nothing), and closes.
    let refusal = read_frame(&mut s).await.expect("a refusal");
    assert_eq!(
        handshake::read_refusal(&refusal),
        Some(RefusalReason::HandshakeFailed)
    );
    assert_eq!(read_frame(&mut s).await, None);
    until("the failed handshake is counted", || {
        a.refusals().bad_handshake > before
    })
    .await;
    // Between transports, both ways: with a secret alone, identities come
    // from an authority derived from it, so the dialer refuses the
    // listener's certificate before it sends anything keyed by its secret.
    let (m, mut em) = start("mallory", "c", "not-s", config()).await;
    for (from, to) in [(&m, &a), (&a, &m)] {
        let err = connect(from, to.local_addr()).await.expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("identity refused") && text.contains("another secret"),
            "{err}"
        );
    }
    assert_no_event_about(&mut ea, m.node());
    assert_no_event_about(&mut em, a.node());
    assert_serves(&a, &mut ea, "c", "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_session_replayed_to_the_listener_gets_nowhere() {
    // Every test installs the log capture before any node starts, so
    // no callsite is first seen without it.
    capture_logs();
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let (b, mut eb) = start("node-b", "c", "s", config()).await;
    let (proxy, up, _) = recording_proxy(a.local_addr()).await;
    connect(&b, proxy)
        .await
        .expect("b connects through the proxy");
    let to_a = peer_up(&mut eb, a.node()).await;
    let _ = peer_up(&mut ea, b.node()).await;
    for i in 0..10u8 {
        to_a.send(Bytes::from(vec![i; 1000])).expect("queued");
    }
    let got = frames(&mut ea, b.node(), 10).await;
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, f)| f[..] == [i as u8; 1000]));
    // Everything b sent on that socket, handshake and frames, replayed
    // to a on a new socket, all at once and in step.
    let recorded = up.lock().expect("no panic").clone();
    let before = a.refusals().bad_handshake;
    let mut s = raw(&a).await;
    s.write_all(&recorded).await.expect("writes");
    assert_closed(&mut s, QUICK).await;
    let hello_len = u32::from_be_bytes(recorded[..4].try_into().expect("4 bytes")) as usize;
    let mut s = raw(&a).await;
    s.write_all(&recorded[..4 + hello_len])
        .await
        .expect("writes");
    let _ = read_frame(&mut s).await.expect("a's fresh hello");
    // The rest fails at the Noise message, before any frame: at most a
    // refusal (the close may reset it away, with the replay unread), then
    // the socket closes.
    s.write_all(&recorded[4 + hello_len..])
        .await
        .expect("writes");
    while let Some(frame) = timeout(QUICK, read_frame(&mut s))
        .await
        .expect("closed quickly")
    {
        assert_eq!(
            handshake::read_refusal(&frame),
            Some(RefusalReason::HandshakeFailed)
        );
    }
    until("both replays are counted", || {
        a.refusals().bad_handshake >= before + 2
    })
    .await;
    // Nothing was delivered twice, and the genuine session goes on.
    assert_no_event_about(&mut ea, b.node());
    to_a.send(Bytes::from_static(b"after")).expect("queued");
    assert_eq!(frames(&mut ea, b.node(), 1).await, vec!["after"]);
}
