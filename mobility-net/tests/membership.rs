//! Cluster membership over the authenticated gossip transport: members on
//! loopback ports chosen by the OS, waits with deadlines.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use mobility_net::{Member, MemberEvent, Membership, MembershipConfig, NetError, NodeId, Secret};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// How long any single wait of a test may take.
const DEADLINE: Duration = Duration::from_secs(10);
/// How often a wait checks its condition.
const POLL: Duration = Duration::from_millis(10);
const CLUSTER: &str = "test-cluster";
const SECRET: &str = "the cluster secret";

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn node(name: &str) -> NodeId {
    NodeId::new(name).expect("valid node id")
}

/// A loopback UDP address whose port the OS just handed out.
fn free_addr() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binds an ephemeral port");
    socket.local_addr().expect("has an address")
}

/// Timers of a test cluster.
#[derive(Clone, Copy)]
struct Timers {
    gossip_interval: Duration,
    failure_timeout: Duration,
}

/// Fast gossip; a failure timeout long enough that a loaded machine does
/// not see false failures.
const CALM: Timers = Timers {
    gossip_interval: Duration::from_millis(50),
    failure_timeout: Duration::from_secs(2),
};

/// Fast gossip and fast failure detection.
const QUICK: Timers = Timers {
    gossip_interval: Duration::from_millis(50),
    failure_timeout: Duration::from_millis(500),
};

fn config(
    name: &str,
    secret: &str,
    addr: SocketAddr,
    seeds: &[SocketAddr],
    timers: Timers,
) -> MembershipConfig {
    let mut config = MembershipConfig::new(node(name), CLUSTER, Secret::from(secret), addr);
    config.seeds = seeds.iter().map(ToString::to_string).collect();
    config.gossip_interval = timers.gossip_interval;
    config.failure_timeout = timers.failure_timeout;
    config
}

/// Starts a member on a fresh port (retrying if another process took the
/// port in between), publishing `role = name`.
async fn start_with(name: &str, secret: &str, seeds: &[SocketAddr], timers: Timers) -> Membership {
    init_tracing();
    let mut attempts = 0;
    loop {
        let config = config(name, secret, free_addr(), seeds, timers);
        match Membership::start(config, vec![("role".into(), name.into())]).await {
            Ok(membership) => return membership,
            Err(NetError::Bind { .. }) if attempts < 5 => attempts += 1,
            Err(err) => panic!("{name} does not start: {err}"),
        }
    }
}

async fn start(name: &str, seeds: &[SocketAddr], timers: Timers) -> Membership {
    start_with(name, SECRET, seeds, timers).await
}

/// Polls `condition` until it holds, or panics after `DEADLINE`.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// The next event equal to `wanted`, skipping others; panics after
/// `DEADLINE`. Returns the events skipped.
async fn wait_for_event(
    events: &mut broadcast::Receiver<MemberEvent>,
    wanted: &MemberEvent,
) -> Vec<MemberEvent> {
    let mut skipped = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) if event == *wanted => return skipped,
            Ok(Ok(event)) => skipped.push(event),
            Ok(Err(err)) => panic!("event stream broken while waiting for {wanted:?}: {err}"),
            Err(_) => panic!("timed out waiting for {wanted:?}; saw {skipped:?}"),
        }
    }
}

/// Events already delivered, without waiting.
fn drain(events: &mut broadcast::Receiver<MemberEvent>) -> Vec<MemberEvent> {
    let mut drained = Vec::new();
    while let Ok(event) = events.try_recv() {
        drained.push(event);
    }
    drained
}

fn ids(members: &[Member]) -> Vec<String> {
    members.iter().map(|member| member.id.to_string()).collect()
}

fn role_of(membership: &Membership, name: &str) -> Option<String> {
    membership
        .member(&node(name))
        .and_then(|member| member.values.get("role").cloned())
}

/// Whether `membership` sees exactly `names` live, each publishing
/// `role = its name`.
fn sees_all(membership: &Membership, names: &[&str]) -> bool {
    let members = membership.members();
    ids(&members) == names
        && members.iter().all(|member| {
            member.values.get("role") == Some(&member.id.to_string()) && !member.leaving
        })
}

/// Three members a, b, c; b and c join through a.
async fn trio(timers: Timers) -> (Membership, Membership, Membership) {
    let a = start("a", &[], timers).await;
    let b = start("b", &[a.gossip_addr()], timers).await;
    let c = start("c", &[a.gossip_addr()], timers).await;
    let all = ["a", "b", "c"];
    wait_until("a, b and c see each other", || {
        sees_all(&a, &all) && sees_all(&b, &all) && sees_all(&c, &all)
    })
    .await;
    (a, b, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_join_through_one_seed() {
    let a = start("a", &[], CALM).await;
    // Alone, a sees itself with its values.
    assert_eq!(ids(&a.members()), ["a"]);
    assert_eq!(role_of(&a, "a").as_deref(), Some("a"));
    let mut a_events = a.subscribe();

    let b = start("b", &[a.gossip_addr()], CALM).await;
    let c = start("c", &[a.gossip_addr()], CALM).await;
    let all = ["a", "b", "c"];
    wait_until("a, b and c see each other with their values", || {
        sees_all(&a, &all) && sees_all(&b, &all) && sees_all(&c, &all)
    })
    .await;

    // Joined exactly once each, and nothing else.
    let mut events = drain(&mut a_events);
    events.sort_by_key(|event| format!("{event:?}"));
    assert_eq!(
        events,
        [
            MemberEvent::Joined(node("b")),
            MemberEvent::Joined(node("c"))
        ]
    );
    let on_b = b.member(&node("c")).expect("b sees c");
    assert_eq!(on_b.gossip_addr, c.gossip_addr());
    assert_eq!(a.rejected_datagrams(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_and_deletions_propagate() {
    let (a, b, c) = trio(CALM).await;

    b.set("actors", "17").await;
    // On the writer at once.
    assert_eq!(
        b.member(&node("b"))
            .and_then(|m| m.values.get("actors").cloned()),
        Some("17".into())
    );
    let actors = |m: &Membership| {
        m.member(&node("b"))
            .and_then(|member| member.values.get("actors").cloned())
    };
    wait_until("a and c see b's new value", || {
        actors(&a).as_deref() == Some("17") && actors(&c).as_deref() == Some("17")
    })
    .await;

    b.set("actors", "18").await;
    wait_until("a and c see b's updated value", || {
        actors(&a).as_deref() == Some("18") && actors(&c).as_deref() == Some("18")
    })
    .await;

    b.delete("actors").await;
    assert_eq!(actors(&b), None);
    wait_until("a and c see the deletion", || {
        actors(&a).is_none() && actors(&c).is_none()
    })
    .await;
    // The rest of b's state is untouched.
    assert_eq!(role_of(&a, "b").as_deref(), Some("b"));

    // The reserved key cannot be written by users.
    b.set("status", "leaving").await;
    assert!(!b.member(&node("b")).expect("self").leaving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_leaves_is_left_not_failed() {
    let timers = Timers {
        gossip_interval: Duration::from_millis(50),
        failure_timeout: Duration::from_secs(1),
    };
    let (a, b, c) = trio(timers).await;
    let mut a_events = a.subscribe();
    let mut c_events = c.subscribe();

    b.leave().await;
    assert!(b.member(&node("b")).expect("self").leaving);
    assert_eq!(ids(&b.members()), ["b"]);
    b.leave().await; // idempotent

    wait_for_event(&mut a_events, &MemberEvent::Left(node("b"))).await;
    wait_for_event(&mut c_events, &MemberEvent::Left(node("b"))).await;
    wait_until("b disappears from a's and c's members", || {
        ids(&a.members()) == ["a", "c"] && ids(&c.members()) == ["a", "c"]
    })
    .await;
    // Events are sent before members() changes: a Failed would be there.
    assert_eq!(drain(&mut a_events), []);
    assert_eq!(drain(&mut c_events), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_shuts_down_is_failed() {
    let (a, b, c) = trio(QUICK).await;
    let mut a_events = a.subscribe();
    let mut b_events = b.subscribe();

    let stopped = Instant::now();
    c.shutdown().await;
    c.shutdown().await; // idempotent
    wait_for_event(&mut a_events, &MemberEvent::Failed(node("c"))).await;
    let on_a = stopped.elapsed();
    wait_for_event(&mut b_events, &MemberEvent::Failed(node("c"))).await;
    let on_b = stopped.elapsed();
    println!(
        "failure detected after {on_a:?} (a) and {on_b:?} (b), failure_timeout {:?}",
        QUICK.failure_timeout
    );
    wait_until("c disappears from a's and b's members", || {
        ids(&a.members()) == ["a", "b"] && ids(&b.members()) == ["a", "b"]
    })
    .await;
    assert!(
        on_a.max(on_b) < QUICK.failure_timeout * 6,
        "detection took {on_a:?} / {on_b:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_joins_again() {
    let a = start("a", &[], QUICK).await;
    let b = start("b", &[a.gossip_addr()], QUICK).await;
    wait_until("a and b see each other", || {
        sees_all(&a, &["a", "b"]) && sees_all(&b, &["a", "b"])
    })
    .await;
    let mut a_events = a.subscribe();

    // Same name, same address, new incarnation.
    b.shutdown().await;
    let restarted = config("b", SECRET, b.gossip_addr(), &[a.gossip_addr()], QUICK);
    let b2 = Membership::start(restarted, vec![("role".into(), "b".into())])
        .await
        .expect("b restarts on its address");
    // The old incarnation failed (it did not leave), the new one joined.
    wait_for_event(&mut a_events, &MemberEvent::Failed(node("b"))).await;
    wait_for_event(&mut a_events, &MemberEvent::Joined(node("b"))).await;
    wait_until("a and the new b see each other", || {
        sees_all(&a, &["a", "b"]) && sees_all(&b2, &["a", "b"])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_the_wrong_secret_never_appears() {
    let a = start("a", &[], CALM).await;
    let b = start("b", &[a.gossip_addr()], CALM).await;
    let intruder = start_with(
        "intruder",
        "not the secret",
        &[a.gossip_addr(), b.gossip_addr()],
        CALM,
    )
    .await;
    wait_until("a and b see each other", || {
        sees_all(&a, &["a", "b"]) && sees_all(&b, &["a", "b"])
    })
    .await;
    wait_until("a and b reject the intruder's gossip", || {
        a.rejected_datagrams() >= 10 && b.rejected_datagrams() >= 10
    })
    .await;
    assert_eq!(ids(&a.members()), ["a", "b"]);
    assert_eq!(ids(&b.members()), ["a", "b"]);
    assert_eq!(ids(&intruder.members()), ["intruder"]);
    // Nobody answered the intruder.
    assert_eq!(intruder.rejected_datagrams(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_cluster_with_the_same_secret_is_not_heard() {
    let a = start("a", &[], CALM).await;
    let mut other = config("other", SECRET, free_addr(), &[a.gossip_addr()], CALM);
    other.cluster = "another-cluster".into();
    let other = Membership::start(other, Vec::new()).await.expect("starts");
    wait_until("a rejects the other cluster's gossip", || {
        a.rejected_datagrams() >= 5
    })
    .await;
    assert_eq!(ids(&a.members()), ["a"]);
    assert_eq!(ids(&other.members()), ["other"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_rejected_and_the_member_keeps_working() {
    let a = start("a", &[], CALM).await;
    let b = start("b", &[a.gossip_addr()], CALM).await;
    wait_until("a and b see each other", || {
        sees_all(&a, &["a", "b"]) && sees_all(&b, &["a", "b"])
    })
    .await;

    let attacker = UdpSocket::bind("127.0.0.1:0").expect("binds");
    let mut right_header = vec![0x6d, 0x01];
    right_header.extend_from_slice(&[0u8; 8]);
    right_header.extend_from_slice(&[0xaa; 100]);
    let datagrams: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"junk".to_vec(),
        vec![0xff; 1000],
        vec![0u8; 60_000],
        right_header,
        // What chitchat itself would send: magic, version, a BadCluster.
        vec![0x53, 0xb0, 0x00, 0x03],
    ];
    let count = datagrams.len() as u64;
    for datagram in &datagrams {
        attacker.send_to(datagram, a.gossip_addr()).expect("sends");
    }
    wait_until("a rejects every garbage datagram", || {
        a.rejected_datagrams() >= count
    })
    .await;
    assert_eq!(a.rejected_datagrams(), count);

    b.set("after", "garbage").await;
    a.set("still", "alive").await;
    wait_until("state still flows both ways", || {
        a.member(&node("b"))
            .and_then(|m| m.values.get("after").cloned())
            .as_deref()
            == Some("garbage")
            && b.member(&node("a"))
                .and_then(|m| m.values.get("still").cloned())
                .as_deref()
                == Some("alive")
    })
    .await;
    assert_eq!(ids(&a.members()), ["a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_unusable_addresses() {
    init_tracing();
    let zero_port = config("a", SECRET, "127.0.0.1:0".parse().expect("addr"), &[], CALM);
    assert!(matches!(
        Membership::start(zero_port, Vec::new()).await,
        Err(NetError::Bind { .. })
    ));
    let unspecified = config(
        "a",
        SECRET,
        "0.0.0.0:7946".parse().expect("addr"),
        &[],
        CALM,
    );
    assert!(matches!(
        Membership::start(unspecified, Vec::new()).await,
        Err(NetError::Bind { .. })
    ));
    let taken = UdpSocket::bind("127.0.0.1:0").expect("binds");
    let in_use = config("a", SECRET, taken.local_addr().expect("addr"), &[], CALM);
    assert!(matches!(
        Membership::start(in_use, Vec::new()).await,
        Err(NetError::Bind { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_sorted_and_values_are_exposed_without_the_status_key() {
    let (a, _b, _c) = trio(CALM).await;
    let members = a.members();
    assert_eq!(ids(&members), ["a", "b", "c"]);
    for member in &members {
        let expected: BTreeMap<String, String> = [("role".to_string(), member.id.to_string())]
            .into_iter()
            .collect();
        assert_eq!(member.values, expected);
    }
}
