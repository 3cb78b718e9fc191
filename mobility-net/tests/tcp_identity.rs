//! Per-node identities (protocol version 7), with real sockets on
//! loopback: a member that knows the cluster's secret but speaks as
//! another node is refused (as dialer and as listener), so is a
//! certificate of an authority not trusted for its cluster, a tampered or
//! expired certificate, and a node of a cluster not trusted, before any
//! frame after the handshake is decoded; nodes of two clusters that trust
//! each other's authority link up; each refusal is logged with a reason
//! naming what failed.

mod common;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::*;
use mobility_net::tcp::handshake::Hello;
use mobility_net::tcp::{
    mint, noise, AuthorityKey, Certificate, ClusterAuthority, Credentials, NodeKey, RefusalReason,
};
use mobility_net::{NetError, Secret, TcpConfig, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// A refusal the listener names reaches the dialer well within this (the
/// handshake timeout of these tests is 2 s; a dialer that only saw the
/// socket closed after the handshake waited twice that).
const FAST: Duration = Duration::from_millis(500);

/// Waits until a warning line holding every one of `words` is logged.
async fn logged(words: &[&str]) {
    until(&format!("a warning with {words:?} is logged"), || {
        let logs = String::from_utf8_lossy(&logs().lock().expect("no panic")).into_owned();
        logs.lines()
            .any(|line| line.contains("WARN") && words.iter().all(|w| line.contains(w)))
    })
    .await;
}

/// A cluster in production configuration: its authority and secret.
struct Cluster {
    name: &'static str,
    secret: &'static str,
    authority: ClusterAuthority,
}

impl Cluster {
    fn new(name: &'static str, secret: &'static str) -> Cluster {
        Cluster {
            name,
            secret,
            authority: ClusterAuthority::generate().expect("random"),
        }
    }

    fn key(&self) -> AuthorityKey {
        self.authority.public()
    }

    fn mint(&self, node_name: &str) -> Credentials {
        mint(&self.authority, &node(node_name), self.name, None).expect("mints")
    }

    /// The settings of its node `name`: its credentials and its cluster's
    /// authority.
    fn config(&self, name: &str) -> TcpConfig {
        config()
            .with_credentials(self.mint(name))
            .with_cluster_authority(self.key())
    }

    async fn start(&self, name: &str, config: TcpConfig) -> (Transport, Events) {
        start(name, self.name, self.secret, config).await
    }

    fn psk(&self) -> [u8; 32] {
        noise::psk(&Secret::from(self.secret))
    }
}

/// Dials `t` by hand as `hello` claims, with `key` and showing
/// `certificate`, then at once sends a sealed frame (which must never be
/// decoded); returns the listener's certificate if it answered.
async fn raw_member(
    t: &Transport,
    hello: &Hello,
    psk: &[u8; 32],
    key: &NodeKey,
    certificate: &[u8],
) -> Option<Certificate> {
    let (mut s, _, mut session, theirs) = raw_dial(t, hello, psk, key, certificate).await.ok()?;
    let _ = s.write_all(&session.seal_frame(&[0xff; 64])).await;
    assert_closed(&mut s, DEADLINE).await;
    Some(theirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_nodes_link_up_and_a_node_cannot_bind_with_anothers_certificate() {
    capture_logs();
    let prod = Cluster::new("prod", "s-prod-1");
    let (a, mut ea) = prod.start("prod1-a", prod.config("prod1-a")).await;
    let (b, mut eb) = prod.start("prod1-b", prod.config("prod1-b")).await;
    assert_eq!(
        connect(&a, b.local_addr()).await.expect("links"),
        node("prod1-b")
    );
    let to_b = peer_up(&mut ea, b.node()).await;
    let to_a = peer_up(&mut eb, a.node()).await;
    to_b.send(Bytes::from_static(b"hello b")).expect("queued");
    to_a.send(Bytes::from_static(b"hello a")).expect("queued");
    assert_eq!(frames(&mut eb, a.node(), 1).await, vec!["hello b"]);
    assert_eq!(frames(&mut ea, b.node(), 1).await, vec!["hello a"]);
    // Credentials of another node id do not even bind.
    let err = Transport::bind(
        identity("prod1-c", "prod", prod.secret),
        prod.config("prod1-a"),
        "127.0.0.1:0",
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, NetError::Identity { .. }), "{err}");
    assert!(
        err.to_string().contains("certificate is for prod1-a"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_speaking_as_another_node_is_refused() {
    capture_logs();
    let prod = Cluster::new("prod", "s-prod-2");
    let (a, mut ea) = prod.start("prod2-a", prod.config("prod2-a")).await;
    // x is a member: it knows the secret and holds its own key and a
    // valid certificate, for its own id.
    let x = prod.mint("prod2-x");
    let before = a.refusals();
    let answered = raw_member(
        &a,
        &hello("prod2-b", "prod"),
        &prod.psk(),
        &x.key,
        x.certificate.as_bytes(),
    )
    .await;
    assert!(answered.is_some(), "a answered its own certificate");
    until("the refusal is counted", || {
        a.refusals().bad_identity == before.bad_identity + 1
    })
    .await;
    logged(&[
        "node=prod2-a",
        "identity refused",
        "claiming node id prod2-b",
        "certificate of prod2-x",
    ])
    .await;
    // A copy of b's genuine certificate, without b's private key.
    let b = prod.mint("prod2-b");
    raw_member(
        &a,
        &hello("prod2-b", "prod"),
        &prod.psk(),
        &x.key,
        b.certificate.as_bytes(),
    )
    .await;
    until("the refusal is counted", || {
        a.refusals().bad_identity == before.bad_identity + 2
    })
    .await;
    assert_eq!(a.refusals().bad_handshake, before.bad_handshake);
    assert_no_event_about(&mut ea, &node("prod2-b"));
    assert_no_event_about(&mut ea, &node("prod2-x"));
    // The genuine b links up.
    let (b, _eb) = prod.start("prod2-b", prod.config("prod2-b")).await;
    assert_eq!(connect(&b, a.local_addr()).await.expect("links"), *a.node());
    let _ = peer_up(&mut ea, b.node()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_speaking_as_another_node_gets_nothing_keyed_by_the_secret() {
    capture_logs();
    let prod = Cluster::new("prod", "s-prod-3");
    let (a, _ea) = prod.start("prod3-a", prod.config("prod3-a")).await;
    let x = prod.mint("prod3-x");
    // x listens and answers as prod3-b, with its own key and certificate.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("bound");
    let psk = prod.psk();
    let fake = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accepts");
        let theirs = read_frame(&mut s).await.expect("the dialer's hello");
        let mine = mobility_net::encode(&hello("prod3-b", "prod")).expect("encodes");
        write_frame(&mut s, &mine).await;
        let mut state = noise::listener(&psk, &x.key, &theirs, &mine).expect("builds");
        let first = read_frame(&mut s).await.expect("the first message");
        noise::read(&mut state, &first).expect("verifies");
        let second = noise::write(&mut state, x.certificate.as_bytes()).expect("writes");
        write_frame(&mut s, &second).await;
        // The dialer's last message (keyed by the secret) never comes.
        read_frame(&mut s).await
    });
    let err = connect(&a, addr).await.expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("identity refused")
            && text.contains("claiming node id prod3-b")
            && text.contains("certificate of prod3-x"),
        "{err}"
    );
    assert_eq!(fake.await.expect("fake listener"), None);
    logged(&["outbound handshake failed", "certificate of prod3-x"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_an_untrusted_authority_is_refused() {
    capture_logs();
    let prod = Cluster::new("prod", "s-prod-4");
    // Someone who knows the secret sets up an authority of their own.
    let rogue = Cluster::new("prod", "s-prod-4");
    let (a, mut ea) = prod.start("prod4-a", prod.config("prod4-a")).await;
    let forged = rogue.mint("prod4-b");
    let before = a.refusals();
    raw_member(
        &a,
        &hello("prod4-b", "prod"),
        &prod.psk(),
        &forged.key,
        forged.certificate.as_bytes(),
    )
    .await;
    until("the refusal is counted", || {
        a.refusals().bad_identity == before.bad_identity + 1
    })
    .await;
    logged(&[
        "node=prod4-a",
        "identity refused",
        "not signed by authority",
    ])
    .await;
    assert_no_event_about(&mut ea, &node("prod4-b"));
    // A whole node of the rogue authority, both ways.
    let (r, mut er) = rogue.start("prod4-r", rogue.config("prod4-r")).await;
    for (from, to) in [(&r, &a), (&a, &r)] {
        let err = connect(from, to.local_addr()).await.expect_err("refused");
        assert!(err.to_string().contains("not signed by authority"), "{err}");
    }
    assert_no_event_about(&mut ea, r.node());
    assert_no_event_about(&mut er, a.node());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_expired_certificates_are_refused() {
    capture_logs();
    let prod = Cluster::new("prod", "s-prod-5");
    let x = prod.mint("prod5-x");
    let genuine = x.certificate.as_bytes().to_vec();
    let len = genuine.len();
    let node_at = len - 64 - "prod5-x".len();
    // Byte offsets of the layout (see `cert.rs`): authority 5..37, static
    // key 37..69, not_after 69..77, cluster length 77, cluster 78..82.
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("authority key", "prod5-x", flip(&genuine, 10)),
        ("static key", "prod5-x", flip(&genuine, 40)),
        ("not_after", "prod5-x", flip(&genuine, 76)),
        ("cluster", "prod5-x", flip(&genuine, 79)),
        // "prod5-x" becomes "prod5-y": the hello claims the new id.
        ("node id", "prod5-y", flip(&genuine, node_at + 6)),
        ("signature", "prod5-x", flip(&genuine, len - 1)),
        ("truncated", "prod5-x", genuine[..len - 1].to_vec()),
    ];
    for (field, claimed, bytes) in cases {
        // A fresh listener each time, so each refusal is logged at once.
        let name = format!("prod5-a-{}", field.replace(' ', "-"));
        let (a, mut ea) = prod.start(&name, prod.config(&name)).await;
        raw_member(&a, &hello(claimed, "prod"), &prod.psk(), &x.key, &bytes).await;
        until(&format!("{field}: the refusal is counted"), || {
            a.refusals().bad_identity == 1
        })
        .await;
        logged(&[&format!("node={name}"), "identity refused"]).await;
        assert_no_event_about(&mut ea, &node(claimed));
    }
    // Expired: genuine, but past its date.
    let expired = prod
        .authority
        .certify(
            &node("prod5-x"),
            "prod",
            x.key.public(),
            Some(SystemTime::now() - Duration::from_secs(5)),
        )
        .expect("signs");
    let (a, _ea) = prod.start("prod5-a", prod.config("prod5-a")).await;
    raw_member(
        &a,
        &hello("prod5-x", "prod"),
        &prod.psk(),
        &x.key,
        expired.as_bytes(),
    )
    .await;
    logged(&["node=prod5-a", "identity refused", "expired"]).await;
    // The untampered certificate goes through.
    let (mut s, _, _, _) = raw_dial(&a, &hello("prod5-x", "prod"), &prod.psk(), &x.key, &genuine)
        .await
        .expect("handshake");
    until("the genuine one is not refused", || {
        a.refusals().bad_identity == 1
    })
    .await;
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(300), s.read(&mut byte)).await;
    // Open (nothing to read yet) or the transport's first frame: not closed.
    assert!(!matches!(read, Ok(Ok(0))), "closed: {read:?}");
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x01;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_trusted_by_their_authority_link_up_and_others_do_not() {
    capture_logs();
    let home = Cluster::new("home", "s-home");
    let away = Cluster::new("away", "s-away");
    let other = Cluster::new("other", "s-other");
    // Trust in the settings on one side, set on the transport on the other.
    let (a, mut ea) = home
        .start(
            "home-a",
            home.config("home-a")
                .with_trusted_cluster("away", away.key()),
        )
        .await;
    let (b, mut eb) = away.start("away-b", away.config("away-b")).await;
    b.trust_cluster_authority("home", home.key());
    assert_eq!(connect(&a, b.local_addr()).await.expect("links"), *b.node());
    let to_b = peer_up(&mut ea, b.node()).await;
    let to_a = peer_up(&mut eb, a.node()).await;
    to_b.send(Bytes::from_static(b"migrating in"))
        .expect("queued");
    to_a.send(Bytes::from_static(b"welcome")).expect("queued");
    assert_eq!(frames(&mut eb, a.node(), 1).await, vec!["migrating in"]);
    assert_eq!(frames(&mut ea, b.node(), 1).await, vec!["welcome"]);
    // A node claiming the trusted cluster "away" with a certificate of
    // another authority (here, other's, renamed) is refused before any
    // frame after the handshake is decoded.
    let before = a.refusals();
    let impostor = mint(&other.authority, &node("away-i"), "away", None).expect("mints");
    raw_member(
        &a,
        &hello("away-i", "away"),
        &noise::PUBLIC_PSK,
        &impostor.key,
        impostor.certificate.as_bytes(),
    )
    .await;
    until("the refusal is counted", || {
        a.refusals().bad_identity == before.bad_identity + 1
    })
    .await;
    logged(&[
        "node=home-a",
        "identity refused",
        "away-i",
        "not signed by authority",
    ])
    .await;
    assert_eq!(a.refusals().bad_handshake, before.bad_handshake);
    assert_no_event_about(&mut ea, &node("away-i"));
    // A node of a cluster home does not trust is refused at its hello
    // (other trusts home, so it answers a's dial).
    let (o, mut eo) = other.start("other-o", other.config("other-o")).await;
    o.trust_cluster_authority("home", home.key());
    let err = connect(&o, a.local_addr()).await.expect_err("refused");
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
    let err = connect(&a, o.local_addr()).await.expect_err("refused");
    assert!(
        err.to_string().contains("unknown cluster \"other\""),
        "{err}"
    );
    until("the refusal is counted", || {
        a.refusals().bad_handshake == before.bad_handshake + 1
    })
    .await;
    assert_no_event_about(&mut ea, o.node());
    assert_no_event_about(&mut eo, a.node());
    // The genuine link still works.
    to_b.send(Bytes::from_static(b"still here"))
        .expect("queued");
    assert_eq!(frames(&mut eb, a.node(), 1).await, vec!["still here"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_alone_still_links_and_federates() {
    capture_logs();
    // No authority configured: identities derive from the secret, and a
    // cluster trusted by a shared secret works as before.
    let (a, mut ea) = start("zero-a", "c1", "s1", config()).await;
    let (b, mut eb) = start("zero-b", "c2", "s2", config()).await;
    let federation = Secret::from("shared by c1 and c2");
    a.trust_cluster("c2", federation.clone());
    b.trust_cluster("*", federation);
    connect(&a, b.local_addr()).await.expect("links");
    let to_b = peer_up(&mut ea, b.node()).await;
    let _ = peer_up(&mut eb, a.node()).await;
    to_b.send(Bytes::from_static(b"zero")).expect("queued");
    assert_eq!(frames(&mut eb, a.node(), 1).await, vec!["zero"]);
    logged(&["node identities derive from the cluster's shared secret"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_cluster_cannot_take_over_the_id_of_a_known_node() {
    capture_logs();
    let home = Cluster::new("home", "s-home-2");
    let away = Cluster::new("away", "s-away-2");
    let (a, mut ea) = home
        .start(
            "home2-a",
            home.config("home2-a")
                .with_trusted_cluster("away", away.key()),
        )
        .await;
    let (c, _ec) = home.start("home2-c", home.config("home2-c")).await;
    connect(&c, a.local_addr()).await.expect("links");
    let _ = peer_up(&mut ea, c.node()).await;
    // away's authority can certify any id, even one of home's nodes.
    let before = a.refusals();
    let claimed = away.mint("home2-c");
    let refused = raw_dial(
        &a,
        &hello("home2-c", "away"),
        &noise::PUBLIC_PSK,
        &claimed.key,
        claimed.certificate.as_bytes(),
    )
    .await
    .map(drop);
    // Refused at its hello, before any key is used: told so, and no more.
    assert!(
        matches!(&refused, Err(e) if e.contains("identity refused (that node refuses this node id)")),
        "{refused:?}"
    );
    until("the refusal is counted", || {
        a.refusals().bad_identity == before.bad_identity + 1
    })
    .await;
    logged(&[
        "node=home2-a",
        "identity refused",
        "home2-c linked before as a node of cluster \"home\"",
    ])
    .await;
    // The genuine session with c was not disturbed.
    while let Ok(event) = ea.try_recv() {
        assert!(
            !matches!(event, mobility_net::TransportEvent::PeerLost { .. }),
            "{event:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_a_valid_certificate_but_the_wrong_secret_is_refused() {
    capture_logs();
    let prod = Cluster::new("prod", "s-prod-6");
    let (a, mut ea) = prod.start("prod6-a", prod.config("prod6-a")).await;
    let before = a.refusals();
    // A certificate of the right authority, but not the cluster's secret.
    let (w, _ew) = start("prod6-w", "prod", "not the secret", prod.config("prod6-w")).await;
    // The listener says the handshake failed, at once, and no more: the
    // same answer as to a refused certificate (see the next test).
    let started = Instant::now();
    let err = connect(&w, a.local_addr()).await.expect_err("refused");
    assert!(
        started.elapsed() < FAST,
        "refused after {:?}",
        started.elapsed()
    );
    assert!(matches!(err, NetError::Handshake { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("refused the connection: authentication failed (a wrong secret"),
        "{err}"
    );
    until("the refusal is counted", || {
        a.refusals().bad_handshake > before.bad_handshake
    })
    .await;
    logged(&["node=prod6-a", "bad handshake", "authentication failed"]).await;
    assert_no_event_about(&mut ea, w.node());
}

/// What a raw dialer reads from the listener after its last handshake
/// message: a refusal's reason, or `None` for anything else.
async fn answer_to_last_message(
    t: &Transport,
    claimed: &str,
    psk: &[u8; 32],
    key: &NodeKey,
    certificate: &[u8],
) -> Option<RefusalReason> {
    let (mut s, _, _, _) = raw_dial(t, &hello(claimed, "prod"), psk, key, certificate)
        .await
        .ok()?;
    let frame = read_frame(&mut s).await?;
    mobility_net::tcp::handshake::read_refusal(&frame)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_and_a_refused_certificate_get_the_same_answer() {
    capture_logs();
    let prod = Cluster::new("prod", "s-prod-7");
    let (a, _ea) = prod.start("prod7-a", prod.config("prod7-a")).await;
    let x = prod.mint("prod7-x");
    let wrong_psk = noise::psk(&Secret::from("not the secret"));
    let genuine = x.certificate.as_bytes().to_vec();
    let wrong_secret = answer_to_last_message(&a, "prod7-x", &wrong_psk, &x.key, &genuine).await;
    let tampered = flip(&genuine, genuine.len() - 1);
    let bad_certificate =
        answer_to_last_message(&a, "prod7-x", &prod.psk(), &x.key, &tampered).await;
    // So a stranger cannot test guesses of the secret by the answer.
    assert_eq!(wrong_secret, Some(RefusalReason::HandshakeFailed));
    assert_eq!(bad_certificate, wrong_secret);
    until("both refusals are counted", || {
        let r = a.refusals();
        r.bad_handshake == 1 && r.bad_identity == 1
    })
    .await;
}
