//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/<target>/`)
//! from real traffic between real nodes on loopback:
//!
//! - a TCP proxy between two nodes records the handshake (both `Hello`s,
//!   the three Noise messages) and the first encrypted records, as sent;
//! - two transports in the middle of a link (each speaking as the node the
//!   other side expects: with the cluster's secret alone, any member can
//!   certify any node id) relay and record every frame of a migration of
//!   a `Probe` and calls to it (compact `Deliver`s and `Reply`s, `Prepare`
//!   with the snapshot, `PrepareAck`, `Commit`, `Committed`, ...);
//! - a UDP relay between two nodes' gossip records their datagrams, and
//!   the counters of one sender's datagrams seed the replay window.
//!
//! The session frames (below the frames, inside the encrypted records) are
//! made from the recorded frames with the transport's own encoder; the
//! certificates (encrypted inside the handshake) are minted as a node
//! mints its own.
//!
//! Run from `fuzz/`: `cargo run --example seeds`. It replaces the seeds:
//! every file of `corpus/` is removed first, except the regression inputs
//! (`regression-*`) kept there by hand; corpora grown by fuzzing are not
//! committed.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mobility::prelude::*;
use mobility_fuzz::{join, Probe, APP_VERSION, CLUSTER, NOW_MS, SECRET};
use mobility_net::fuzzing as net;
use mobility_net::tcp::{ClusterAuthority, NodeKey, RefusalReason};
use mobility_net::{Identity, Secret, TcpConfig, Transport, TransportEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

type Recorded = Arc<Mutex<Vec<u8>>>;
/// Frames relayed, each with its direction.
type RecordedFrames = Arc<Mutex<Vec<(&'static str, Vec<u8>)>>>;

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    dir
}

/// Writes one seed, named by what it is.
fn seed(target: &str, name: &str, bytes: &[u8]) {
    std::fs::write(corpus(target).join(name), bytes).expect("seed written");
}

async fn node(id: &str) -> Node {
    Node::builder()
        .id(id)
        .cluster(CLUSTER, SECRET)
        .listen("127.0.0.1:0")
        .start()
        .await
        .expect("node starts")
}

/// Copies `from` to `to`, recording what passes.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    log: Recorded,
) {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                log.lock().expect("log").extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A TCP proxy to `target` for one connection: what the dialer sent and
/// what the listener answered.
async fn proxy(target: SocketAddr) -> (SocketAddr, Recorded, Recorded) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("addr");
    let (up, down) = (Recorded::default(), Recorded::default());
    let (u, d) = (Arc::clone(&up), Arc::clone(&down));
    tokio::spawn(async move {
        let Ok((inbound, _)) = listener.accept().await else {
            return;
        };
        let outbound = TcpStream::connect(target).await.expect("connects");
        let (ir, iw) = inbound.into_split();
        let (or, ow) = outbound.into_split();
        tokio::spawn(pipe(ir, ow, u));
        tokio::spawn(pipe(or, iw, d));
    });
    (addr, up, down)
}

/// The u32-length-prefixed frames at the start of a stream, and the rest.
fn frames(stream: &[u8], count: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut rest = stream;
    let mut out = Vec::new();
    while out.len() < count && rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() < 4 + len {
            break;
        }
        out.push(rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    (out, rest.to_vec())
}

/// The handshake of a real link, through a proxy.
async fn handshake_seeds() {
    let (a, b) = (node("node-a").await, node("node-b").await);
    let (addr, up, down) = proxy(b.listen_addr().expect("listens")).await;
    a.connect(&addr.to_string()).await.expect("connects");
    let probe = a.spawn(Probe::default()).await.expect("spawns");
    probe.record("x".into(), 1).await.expect("records");
    a.migrate(&probe, b.id()).await.expect("migrates");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let up = up.lock().expect("log").clone();
    let down = down.lock().expect("log").clone();
    // The dialer sends its `Hello` and two Noise messages (`e`, then
    // `s, se, psk`), the listener its `Hello` and one (`e, ee, s, es`).
    let (dialer, dialer_rest) = frames(&up, 3);
    let (listener, listener_rest) = frames(&down, 2);
    assert_eq!(
        dialer.len(),
        3,
        "dialer's hello and noise messages recorded"
    );
    assert_eq!(
        listener.len(),
        2,
        "listener's hello and noise message recorded"
    );
    for (cut, name, stream) in [
        (255u8, "dialer-stream", &up[..]),
        (7, "dialer-stream-cut", &up[..up.len().min(600)]),
        (255, "listener-stream", &down[..]),
    ] {
        let mut input = vec![cut];
        input.extend_from_slice(&stream[..stream.len().min(4096)]);
        seed("hello", name, &input);
    }
    let mut input = vec![255];
    input.extend_from_slice(&dialer[0]);
    seed("hello", "dialer-hello-unframed", &input);
    seed(
        "hello",
        "verdict-taken",
        &[&[255u8][..], &net::seal_verdict().expect("seals")].concat(),
    );
    for (name, reason) in [
        (
            "refusal",
            RefusalReason::Busy("too many links open (3)".into()),
        ),
        ("refusal-cluster", RefusalReason::ClusterNotTrusted),
        ("refusal-identity", RefusalReason::IdentityRefused),
        ("refusal-handshake", RefusalReason::HandshakeFailed),
    ] {
        seed(
            "hello",
            name,
            &[&[255u8][..], &net_refusal(reason)].concat(),
        );
    }
    // The handshake replayed to a fresh listener, and the answer to a
    // fresh dialer, each with the recorded `Hello`s as the prologue.
    seed(
        "noise",
        "replayed-to-listener",
        &[
            &[0u8][..],
            &join(&[&dialer[0], &listener[0], &dialer[1], &dialer[2]]),
        ]
        .concat(),
    );
    seed(
        "noise",
        "replayed-to-dialer",
        &[&[1u8][..], &join(&[&dialer[0], &listener[0], &listener[1]])].concat(),
    );
    let (cert_a, cert_b) = (node_certificate("node-a"), node_certificate("node-b"));
    seed(
        "noise",
        "hellos-and-certificates",
        &[
            &[2u8][..],
            &join(&[&dialer[0], &listener[0], &cert_a, &cert_b]),
        ]
        .concat(),
    );
    // The encrypted records as sent (to an opener without their keys).
    seed(
        "records",
        "dialer-records",
        &[
            &[0u8, 0, 0][..],
            &dialer_rest[..dialer_rest.len().min(8192)],
        ]
        .concat(),
    );
    seed(
        "records",
        "listener-records",
        &[
            &[0u8, 3, 0][..],
            &listener_rest[..listener_rest.len().min(8192)],
        ]
        .concat(),
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// The certificate a node of [`CLUSTER`] with only [`SECRET`] shows: its
/// static key certified by the authority derived from the secret (as
/// `Transport::bind` mints it; each node draws its own key).
fn node_certificate(node: &str) -> Vec<u8> {
    let authority = ClusterAuthority::from_secret(&Secret::from(SECRET));
    let key = NodeKey::generate().expect("random");
    authority
        .certify(
            &NodeId::new(node).expect("node id"),
            CLUSTER,
            key.public(),
            None,
        )
        .expect("certifies")
        .as_bytes()
        .to_vec()
}

/// Certificates as nodes show them (one minted with an expiry, as
/// `mobility_net::tcp::mint` does: a day after the target's clock), and
/// one certified from fields then tampered with.
fn cert_seeds() {
    seed(
        "cert",
        "node-a",
        &[&[0u8][..], &node_certificate("node-a")].concat(),
    );
    let authority = ClusterAuthority::from_secret(&Secret::from(SECRET));
    let minted = mobility_net::tcp::mint(
        &authority,
        &NodeId::new("node-b").expect("node id"),
        CLUSTER,
        Some(
            (UNIX_EPOCH + Duration::from_millis(NOW_MS) + Duration::from_secs(86_400))
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::from_secs(86_400)),
        ),
    )
    .expect("mints");
    seed(
        "cert",
        "minted-with-expiry",
        &[&[0u8][..], minted.certificate.as_bytes()].concat(),
    );
    let not_after = (NOW_MS / 1000 + 86_400).to_be_bytes();
    seed(
        "cert",
        "fields-tampered",
        &[
            &[1u8][..],
            &join(&[
                b"node-c",
                CLUSTER.as_bytes(),
                &not_after,
                &[9; 32],
                &[0, 40, 1, 0, 130, 0x80],
            ]),
        ]
        .concat(),
    );
}

/// A `Refusal` frame as a listener sends it, for `reason`.
fn net_refusal(reason: RefusalReason) -> Vec<u8> {
    let refusal = mobility_net::tcp::handshake::Refusal::new(reason);
    let payload = mobility_net::encode(&refusal).expect("encodes");
    [&(payload.len() as u32).to_be_bytes()[..], &payload].concat()
}

fn identity(node: &str) -> Identity {
    Identity {
        node: NodeId::new(node).expect("node id"),
        cluster: CLUSTER.into(),
        secret: Secret::from(SECRET),
        app_version: APP_VERSION,
    }
}

/// Every frame of a migration and of calls, from two transports relaying
/// between two nodes.
async fn frame_seeds() -> Vec<Vec<u8>> {
    let (a, b) = (node("node-a").await, node("node-b").await);
    // `toward_b` speaks as node-a to b; `toward_a` as node-b to a.
    let (toward_b, mut from_b) =
        Transport::bind(identity("node-a"), TcpConfig::default(), "127.0.0.1:0")
            .await
            .expect("binds");
    let (toward_a, mut from_a) =
        Transport::bind(identity("node-b"), TcpConfig::default(), "127.0.0.1:0")
            .await
            .expect("binds");
    toward_b
        .connect(&b.listen_addr().expect("listens").to_string())
        .await
        .expect("connects");
    let link_b = match from_b.recv().await {
        Some(TransportEvent::PeerUp { link, .. }) => link,
        other => panic!("{other:?}"),
    };
    a.connect(&toward_a.local_addr().to_string())
        .await
        .expect("connects");
    let link_a = match from_a.recv().await {
        Some(TransportEvent::PeerUp { link, .. }) => link,
        other => panic!("{other:?}"),
    };
    let recorded: RecordedFrames = Arc::default();
    let r = Arc::clone(&recorded);
    tokio::spawn(async move {
        while let Some(event) = from_a.recv().await {
            if let TransportEvent::Frame { frame, .. } = event {
                r.lock().expect("log").push(("a-to-b", frame.to_vec()));
                let _ = link_b.send(frame);
            }
        }
    });
    let r = Arc::clone(&recorded);
    tokio::spawn(async move {
        while let Some(event) = from_b.recv().await {
            if let TransportEvent::Frame { frame, .. } = event {
                r.lock().expect("log").push(("b-to-a", frame.to_vec()));
                let _ = link_a.send(frame);
            }
        }
    });
    let probe = a.spawn(Probe::default()).await.expect("spawns");
    for (i, key) in ["apples", "pears", "plums"].iter().enumerate() {
        probe
            .record((*key).into(), i as u64 + 1)
            .await
            .expect("records");
    }
    probe
        .later("timer".into(), 60_000)
        .await
        .expect("arms timers");
    let report = a.migrate(&probe, b.id()).await.expect("migrates");
    eprintln!("migrated: {report:?}");
    for i in 0..3 {
        let n = probe.count("apples".into()).await.expect("counts");
        probe.record("after".into(), n + i).await.expect("records");
    }
    probe.tell().record("told".into(), 9).expect("tells");
    a.migrate(&probe, a.id()).await.expect("migrates back");
    probe.count("after".into()).await.expect("counts");
    let named = b.spawn_named("probe-name", Probe::default()).await;
    drop(named);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let recorded = recorded.lock().expect("log").clone();
    let mut kinds = BTreeSet::new();
    let mut frames = Vec::new();
    for (i, (dir, frame)) in recorded.iter().enumerate() {
        let (header, tail) =
            mobility::fuzzing::open_frame(frame).expect("a recorded frame decodes");
        let text = format!("{header:?}");
        let kind: String = text
            .trim_start_matches("PeerFrame(")
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or("frame")
            .into();
        // A few of each kind (the corpus stays small).
        if kinds
            .iter()
            .filter(|k: &&String| k.starts_with(&format!("{kind}-")))
            .count()
            < 3
        {
            kinds.insert(format!("{kind}-{i}"));
            seed("peer_msg", &format!("{i:03}-{dir}-{kind}"), frame);
            let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
            let header_bytes = &frame[4..4 + len];
            if header_bytes.first().is_some_and(|b| b >> 5 == 4) {
                seed("compact", &format!("{i:03}-{dir}-{kind}"), header_bytes);
            }
            if kind == "Prepare" {
                seed("snapshot", &format!("{i:03}-{dir}-probe"), &tail);
            }
        }
        frames.push(frame.clone());
    }
    eprintln!("{} frames recorded: {kinds:?}", recorded.len());
    a.shutdown().await;
    b.shutdown().await;
    toward_a.shutdown();
    toward_b.shutdown();
    frames
}

/// Session frames carrying recorded frames, as a session sends them, and
/// the records they travel in.
fn session_seeds(frames: &[Vec<u8>]) {
    let small: Vec<&Vec<u8>> = frames.iter().filter(|f| f.len() < 2048).take(8).collect();
    let resume = net::SessionFrame::resume(Some([7; 16]), vec![[3; 16]], 0)
        .encode()
        .expect("encodes");
    let mut session = vec![resume.clone()];
    for (i, frame) in small.iter().enumerate() {
        let seq = i as u64 + 1;
        let cut = frame.len() / 2;
        // One frame in two chunks, the others whole.
        if i == 0 {
            session.push(
                net::SessionFrame::data(seq, true, 0, &frame[..cut])
                    .encode()
                    .expect("encodes"),
            );
            session.push(
                net::SessionFrame::data(seq + 1, false, 1, &frame[cut..])
                    .encode()
                    .expect("encodes"),
            );
        } else {
            session.push(
                net::SessionFrame::data(seq + 1, false, 2, frame)
                    .encode()
                    .expect("encodes"),
            );
        }
    }
    session.push(net::SessionFrame::control(2, 2).encode().expect("encodes"));
    session.push(net::SessionFrame::control(0, 0).encode().expect("encodes"));
    session.push(net::SessionFrame::control(1, 0).encode().expect("encodes"));
    let pieces: Vec<&[u8]> = session.iter().map(Vec::as_slice).collect();
    seed(
        "session_frames",
        "session",
        &[&[4u8][..], &join(&pieces)].concat(),
    );
    for (i, frame) in session.iter().enumerate() {
        seed(
            "session_frames",
            &format!("frame-{i}"),
            &[&[0u8][..], &join(&[frame])].concat(),
        );
    }
    // The records: the same session frames, each after its u32 length.
    let framed: Vec<Vec<u8>> = session
        .iter()
        .map(|f| [&(f.len() as u32).to_be_bytes()[..], f].concat())
        .collect();
    let framed: Vec<&[u8]> = framed.iter().map(Vec::as_slice).collect();
    seed(
        "records",
        "session-sealed",
        &[&[1u8, 0, 0][..], &join(&framed)].concat(),
    );
    seed(
        "records",
        "session-sealed-cut",
        &[&[1u8, 1, 0][..], &join(&framed)].concat(),
    );
    seed(
        "records",
        "session-flipped",
        &[&[2u8, 255, 128][..], &join(&framed)].concat(),
    );
}

/// Gossip datagrams between two nodes, through a UDP relay.
async fn gossip_seeds() {
    let a = node("gossip-a").await;
    let a_gossip = a.listen_addr().expect("listens");
    let relay = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("binds"));
    let relay_addr = relay.local_addr().expect("addr");
    let recorded: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let r = Arc::clone(&recorded);
    let udp = Arc::clone(&relay);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        let mut b_addr: Option<SocketAddr> = None;
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            r.lock().expect("log").push(buf[..n].to_vec());
            let to = if from == a_gossip {
                match b_addr {
                    Some(b) => b,
                    None => continue,
                }
            } else {
                b_addr = Some(from);
                a_gossip
            };
            let _ = udp.send_to(&buf[..n], to).await;
        }
    });
    let b = Node::builder()
        .id("gossip-b")
        .cluster(CLUSTER, SECRET)
        .listen("127.0.0.1:0")
        .join(relay_addr.to_string())
        .start()
        .await
        .expect("node starts");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let recorded = recorded.lock().expect("log").clone();
    eprintln!("{} datagrams recorded", recorded.len());
    let key = net::GossipKeyOf::new(SECRET, CLUSTER);
    let mut kinds = BTreeSet::new();
    let mut numbered: Vec<(SocketAddr, (u64, u64))> = Vec::new();
    for (i, datagram) in recorded.iter().enumerate() {
        let (header, message) =
            net::gossip_receive(&key, datagram).expect("a recorded datagram is taken");
        numbered.push((header.sender(), header.numbered()));
        let kind: String = match &message {
            Some(message) => format!("{message:?}")
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("message")
                .into(),
            None => "Probe".into(),
        };
        // The first of each kind, and a few more from the start.
        if !kinds.insert(kind.clone()) && i > 8 {
            continue;
        }
        seed("gossip_datagram", &format!("{i:03}-{kind}"), datagram);
        if message.is_some() {
            let (_, payload) = net::gossip_open(&key, datagram).expect("opens");
            seed("gossip_payload", &format!("{i:03}-{kind}"), &payload);
        }
    }
    replay_seeds(&numbered);
    a.shutdown().await;
    b.shutdown().await;
}

/// The replay window's seeds: the counters of one real sender's
/// datagrams as they arrived, then again (all replayed), in reverse, and
/// with a restart (the next incarnation) half way. The window starts at its
/// first counter; every other is given as is (`how` 2, a u16).
fn replay_seeds(numbered: &[(SocketAddr, (u64, u64))]) {
    let Some((sender, _)) = numbered.first() else {
        panic!("no datagram recorded");
    };
    let counters: Vec<u64> = numbered
        .iter()
        .filter(|(from, _)| from == sender)
        .map(|(_, (_, counter))| *counter)
        .collect();
    let ops = |how: u8, counters: &[u64]| -> Vec<u8> {
        let mut out = Vec::new();
        for counter in counters {
            let v = u16::try_from(*counter).expect("a small counter");
            out.push(how);
            out.extend_from_slice(&v.to_be_bytes());
        }
        out
    };
    let first = counters[0].to_be_bytes().to_vec();
    let rest = &counters[1..];
    seed(
        "replay",
        "as-received",
        &[&first[..], &ops(2, rest)].concat(),
    );
    seed(
        "replay",
        "replayed",
        &[&first[..], &ops(2, rest), &ops(2, &counters)].concat(),
    );
    let reversed: Vec<u64> = rest.iter().rev().copied().collect();
    seed(
        "replay",
        "reversed",
        &[&first[..], &ops(2, &reversed)].concat(),
    );
    let (before, after) = rest.split_at(rest.len() / 2);
    let mut restarted = ops(2, before);
    restarted.extend(ops(0x22, &after[..1.min(after.len())]));
    restarted.extend(ops(2, after));
    seed("replay", "restart", &[&first[..], &restarted].concat());
}

/// Removes the seeds of every target, keeping the regression inputs.
fn clear_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for dir in std::fs::read_dir(&root).expect("corpus directory") {
        let dir = dir.expect("entry").path();
        for file in std::fs::read_dir(&dir).expect("target's corpus") {
            let file = file.expect("entry").path();
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            if !name.starts_with("regression-") {
                std::fs::remove_file(&file).expect("old seed removed");
            }
        }
    }
}

#[tokio::main]
async fn main() {
    clear_seeds();
    handshake_seeds().await;
    cert_seeds();
    let frames = frame_seeds().await;
    session_seeds(&frames);
    gossip_seeds().await;
    eprintln!("seeds written under {}", corpus("").display());
}
