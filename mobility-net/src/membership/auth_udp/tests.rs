//! The socket with real UDP sockets on loopback.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::seal::{nonce, seal, OVERHEAD};
use super::*;
use crate::Secret;

const WAIT: Duration = Duration::from_secs(10);
/// How long a test listens for a datagram that must not come.
const SILENCE: Duration = Duration::from_millis(300);

fn key() -> GossipKey {
    GossipKey::derive(&Secret::from("s3cret"), "cluster-a")
}

fn syn(cluster_id: &str) -> ChitchatMessage {
    ChitchatMessage::Syn {
        cluster_id: cluster_id.to_owned(),
        digest: Default::default(),
    }
}

async fn socket(incarnation: u64) -> AuthUdpSocket {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    AuthUdpSocket::new(
        udp,
        key(),
        Identity { addr, incarnation },
        Arc::new(TransportStats::default()),
    )
    .unwrap()
}

fn addr_of(socket: &AuthUdpSocket) -> SocketAddr {
    socket.identity.addr
}

/// The next datagram `socket` receives, whatever became of it.
async fn receive(socket: &mut AuthUdpSocket) -> Option<(SocketAddr, ChitchatMessage)> {
    tokio::time::timeout(WAIT, socket.receive_one())
        .await
        .expect("a datagram arrives")
        .unwrap()
}

/// Makes `a` known to `b`: a's first message is not delivered (it cannot
/// echo b's token), b probes a, a learns b's token, and the next message
/// is delivered.
async fn introduce(a: &mut AuthUdpSocket, b: &mut AuthUdpSocket) {
    let b_addr = addr_of(b);
    a.send(b_addr, syn("cluster-a")).await.unwrap();
    assert!(receive(b).await.is_none());
    assert_eq!(b.stats.unverified(), 1);
    assert_eq!(b.stats.probes_sent(), 1);
    // The probe: accepted, not a message.
    assert!(receive(a).await.is_none());
    assert_eq!(a.tokens.get(&b_addr), Some(&b.token));
    a.send(b_addr, syn("cluster-a")).await.unwrap();
    let (from, message) = receive(b).await.unwrap();
    assert_eq!((from, message), (addr_of(a), syn("cluster-a")));
    assert_eq!(b.stats.rejected(), 0);
}

/// Asserts that nothing arrives on `socket` for a while.
async fn assert_silent(socket: &tokio::net::UdpSocket) {
    let mut buf = [0u8; 2048];
    let received = tokio::time::timeout(SILENCE, socket.recv_from(&mut buf)).await;
    assert!(received.is_err(), "something answered: {received:?}");
}

#[tokio::test]
async fn first_contact_goes_through_one_probe() {
    let mut a = socket(1).await;
    let mut b = socket(1).await;
    introduce(&mut a, &mut b).await;
    // And back: b learned a's token from the delivered message.
    b.send(addr_of(&a), syn("back")).await.unwrap();
    assert_eq!(receive(&mut a).await.unwrap().1, syn("back"));
    assert_eq!(a.stats.unverified(), 0);
}

#[tokio::test]
async fn a_replayed_datagram_gets_no_answer_and_is_counted() {
    let mut a = socket(1).await;
    let mut b = socket(1).await;
    introduce(&mut a, &mut b).await;
    a.send(addr_of(&b), syn("cluster-a")).await.unwrap();
    let captured = a.send_buf.clone();
    assert!(receive(&mut b).await.is_some());

    let replayer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..20 {
        replayer.send_to(&captured, addr_of(&b)).await.unwrap();
        assert!(receive(&mut b).await.is_none());
    }
    assert_eq!(b.stats.replayed(), 20);
    assert_eq!(b.stats.rejected(), 20);
    assert_eq!(b.stats.probes_sent(), 1);
    assert_silent(&replayer).await;
}

#[tokio::test]
async fn a_restarted_receiver_delivers_nothing_recorded_before() {
    let mut a = socket(1).await;
    let mut b = socket(1).await;
    introduce(&mut a, &mut b).await;
    a.send(addr_of(&b), syn("cluster-a")).await.unwrap();
    let captured = a.send_buf.clone();
    // b restarts on the same address: a new run, no window, a new token.
    let b_addr = addr_of(&b);
    drop(b);
    let udp = tokio::net::UdpSocket::bind(b_addr).await.unwrap();
    let mut b = AuthUdpSocket::new(
        udp,
        key(),
        Identity {
            addr: b_addr,
            incarnation: 2,
        },
        Arc::new(TransportStats::default()),
    )
    .unwrap();
    let replayer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    replayer.send_to(&captured, b_addr).await.unwrap();
    assert!(receive(&mut b).await.is_none());
    assert_eq!(b.stats.unverified(), 1);
    assert_silent(&replayer).await;
    // The probe went to a, which never sent that datagram to this run of b:
    // it echoes a's token, so a accepts it and learns b's new token.
    assert!(receive(&mut a).await.is_none());
    assert_eq!(a.tokens.get(&b_addr), Some(&b.token));
    a.send(b_addr, syn("again")).await.unwrap();
    assert_eq!(receive(&mut b).await.unwrap().1, syn("again"));
}

#[tokio::test]
async fn an_old_incarnation_is_refused_once_the_sender_restarted() {
    let mut a = socket(1).await;
    let mut b = socket(1).await;
    introduce(&mut a, &mut b).await;
    // Written by the first run for b, recorded, never delivered.
    let b_addr = addr_of(&b);
    a.seal_message(b_addr, &syn("old")).unwrap();
    let never_delivered = a.send_buf.clone();

    let a_addr = addr_of(&a);
    let a_token = a.token;
    drop(a);
    let udp = tokio::net::UdpSocket::bind(a_addr).await.unwrap();
    let mut a2 = AuthUdpSocket::new(
        udp,
        key(),
        Identity {
            addr: a_addr,
            incarnation: 2,
        },
        Arc::new(TransportStats::default()),
    )
    .unwrap();
    assert_ne!(a2.token, a_token);
    introduce_again(&mut a2, &mut b).await;

    let replayer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let before = b.stats.replayed();
    replayer.send_to(&never_delivered, b_addr).await.unwrap();
    assert!(receive(&mut b).await.is_none());
    assert_eq!(b.stats.replayed(), before + 1);
    assert_silent(&replayer).await;
}

/// Like [`introduce`], for a sender whose address b probed less than
/// [`replay::PROBE_EVERY`] ago: a's messages are not delivered until a probe
/// may go out again (as chitchat would, a sends every round).
async fn introduce_again(a: &mut AuthUdpSocket, b: &mut AuthUdpSocket) {
    let b_addr = addr_of(b);
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.tokens.get(&b_addr) != Some(&b.token) {
        assert!(tokio::time::Instant::now() < deadline, "b never probes a");
        a.send(b_addr, syn("new")).await.unwrap();
        assert!(receive(b).await.is_none());
        // The probe, if b sent one.
        if let Ok(received) = tokio::time::timeout(SILENCE, a.receive_one()).await {
            assert!(received.unwrap().is_none());
        }
    }
    a.send(b_addr, syn("new")).await.unwrap();
    assert_eq!(receive(b).await.unwrap().1, syn("new"));
}

#[tokio::test]
async fn the_payload_never_appears_on_the_wire() {
    let marker = "secret-marker-name";
    let mut a = socket(1).await;
    let sniffer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    a.send(sniffer.local_addr().unwrap(), syn(marker))
        .await
        .unwrap();
    let mut buf = vec![0u8; RECV_BUFFER];
    let (len, _) = tokio::time::timeout(WAIT, sniffer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let wire = &buf[..len];
    // What chitchat would have sent contains it; the wire does not.
    let mut plain = Vec::new();
    syn(marker).serialize(&mut plain);
    let contains = |bytes: &[u8]| bytes.windows(marker.len()).any(|w| w == marker.as_bytes());
    assert!(contains(&plain));
    assert_eq!(len, plain.len() + OVERHEAD);
    assert!(!contains(wire));
}

#[tokio::test]
async fn socket_drops_bad_datagrams_and_delivers_good_ones() {
    let mut a = socket(1).await;
    let mut b = socket(1).await;
    introduce(&mut a, &mut b).await;
    let b_addr = addr_of(&b);
    let raw = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();

    // Garbage, a bare chitchat message, a sealed non-chitchat payload that
    // echoes b's token, a datagram sealed for another cluster.
    raw.send_to(b"junk", b_addr).await.unwrap();
    let mut bare = Vec::new();
    syn("cluster-a").serialize(&mut bare);
    raw.send_to(&bare, b_addr).await.unwrap();
    let forged = Header {
        kind: Kind::Gossip,
        sender: raw.local_addr().unwrap(),
        via: b_addr,
        incarnation: 1,
        counter: 1,
        token: 5,
        echo: b.token,
    };
    let mut sealed_junk = Vec::new();
    seal(
        &key(),
        &nonce(&[9; SALT_LEN], 1),
        &forged,
        b"not chitchat",
        &mut sealed_junk,
    );
    raw.send_to(&sealed_junk, b_addr).await.unwrap();
    let mut other_cluster = Vec::new();
    let other_key = GossipKey::derive(&Secret::from("s3cret"), "cluster-b");
    seal(
        &other_key,
        &nonce(&[9; SALT_LEN], 2),
        &forged,
        &bare,
        &mut other_cluster,
    );
    raw.send_to(&other_cluster, b_addr).await.unwrap();

    a.send(b_addr, syn("cluster-a")).await.unwrap();
    let (from, message) = tokio::time::timeout(WAIT, b.recv()).await.unwrap().unwrap();
    assert_eq!((from, message), (addr_of(&a), syn("cluster-a")));
    assert_eq!(b.stats.rejected(), 4);
    assert_eq!(b.stats.replayed(), 0);
    assert_silent(&raw).await;
}

#[tokio::test]
async fn oversized_messages_are_dropped_not_sent() {
    let mut a = socket(1).await;
    let mut b = socket(1).await;
    introduce(&mut a, &mut b).await;
    let b_addr = addr_of(&b);
    // Fits chitchat's limit, not ours once sealed.
    a.send(b_addr, syn(&"x".repeat(MAX_PAYLOAD))).await.unwrap();
    a.send(b_addr, syn("small")).await.unwrap();
    let (_, message) = tokio::time::timeout(WAIT, b.recv()).await.unwrap().unwrap();
    assert_eq!(message, syn("small"));
    assert_eq!(b.stats.rejected(), 0);
}

#[tokio::test]
async fn deltas_sent_are_counted_per_destination() {
    let mut a = socket(1).await;
    let b = socket(1).await;
    let b_addr = addr_of(&b);
    a.send(b_addr, ChitchatMessage::BadCluster).await.unwrap();
    assert_eq!(a.stats.deltas_sent_to(b_addr), 0);
    a.send(
        b_addr,
        ChitchatMessage::Ack {
            delta: Default::default(),
        },
    )
    .await
    .unwrap();
    assert_eq!(a.stats.deltas_sent_to(b_addr), 1);
}

/// Datagrams longer than any IPv4 UDP payload can only arrive over IPv6.
#[tokio::test]
async fn oversized_datagrams_are_refused() {
    let Ok(udp) = tokio::net::UdpSocket::bind("[::1]:0").await else {
        eprintln!("no IPv6 loopback here: oversized datagrams cannot be sent");
        return;
    };
    let addr = udp.local_addr().unwrap();
    let mut b = AuthUdpSocket::new(
        udp,
        key(),
        Identity {
            addr,
            incarnation: 1,
        },
        Arc::new(TransportStats::default()),
    )
    .unwrap();
    let raw = tokio::net::UdpSocket::bind("[::1]:0").await.unwrap();
    raw.send_to(&vec![0u8; MAX_DATAGRAM + 1], addr)
        .await
        .unwrap();
    assert!(receive(&mut b).await.is_none());
    assert_eq!(b.stats.rejected(), 1);
    assert_silent(&raw).await;
}
