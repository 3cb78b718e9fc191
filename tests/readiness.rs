//! Readiness: a node started with `join` returns once every member sees
//! it, a join with no live seed fails by its deadline, and a lookup can
//! wait for a name to show up.

use std::time::{Duration, Instant};

use mobility::prelude::*;

const SECRET: &str = "readiness secret";

#[mobile]
#[derive(Default)]
pub struct Greeter {
    n: u64,
}

#[mobile]
impl Greeter {
    pub fn greet(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
}

#[mobile]
#[derive(Default)]
pub struct Other {}

#[mobile]
impl Other {
    pub fn ping(&self) {}
}

fn builder(id: &str) -> mobility::NodeBuilder {
    Node::builder()
        .id(id)
        .cluster("readiness", SECRET)
        .listen("127.0.0.1:0")
        .gossip_interval(Duration::from_millis(50))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_with_join_returns_once_every_member_sees_the_new_node() {
    let a = builder("a").start().await.expect("a");
    let seed = a.listen_addr().expect("listens").to_string();
    let mut nodes = vec![a];
    for id in ["b", "c", "d"] {
        let node = builder(id).join(&seed).start().await.expect("joins");
        // No waiting here: start() returned, so every member sees it now.
        for member in nodes.iter().chain([&node]) {
            assert!(
                member.members().contains(node.id()),
                "{} does not see {} right after it joined: {:?}",
                member.id(),
                node.id(),
                member.members()
            );
        }
        nodes.push(node);
    }
    // And a member can send straight to the newest one: a migration to it
    // from the seed needs the seed to know its address.
    let d = &nodes[3];
    let greeter = nodes[0].spawn(Greeter::default()).await.expect("spawn");
    nodes[0]
        .migrate(&greeter, d.id())
        .await
        .expect("migrates to d");
    assert!(d.hosts(greeter.id()));
    assert_eq!(greeter.greet().await, Ok(1));
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_with_no_live_seed_fails_by_its_deadline() {
    // A port nobody gossips on: bound here and kept, so no one else gets it.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let seed = silent.local_addr().expect("addr").to_string();
    let started = Instant::now();
    let error = builder("lonely")
        .join(&seed)
        .join_timeout(Duration::from_millis(600))
        .start()
        .await
        .expect_err("no seed answers");
    let took = started.elapsed();
    match &error {
        Error::Unreachable { addr, reason } => {
            assert_eq!(addr, &seed);
            assert!(
                reason.contains("no member of the cluster answered"),
                "{reason}"
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(600),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "gave up late: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_within_waits_for_a_name_and_gives_up_at_its_deadline() {
    let a = builder("a").start().await.expect("a");
    let seed = a.listen_addr().expect("listens").to_string();
    let b = builder("b").join(&seed).start().await.expect("b");

    // Spawned after the lookup began, on another member.
    let waiting = {
        let b = b.clone();
        tokio::spawn(async move {
            b.lookup_within::<Greeter>("greeter", Duration::from_secs(20))
                .await
        })
    };
    let spawned = a
        .spawn_named("greeter", Greeter::default())
        .await
        .expect("spawn");
    let found = waiting.await.expect("task").expect("found in time");
    assert_eq!(found.id(), spawned.id());
    assert_eq!(found.greet().await, Ok(1));

    // Another type under that name: refused at once, not after the wait.
    let started = Instant::now();
    let wrong = b
        .lookup_within::<Other>("greeter", Duration::from_secs(20))
        .await
        .expect_err("wrong type");
    assert!(matches!(wrong, Error::WrongType { .. }), "{wrong:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A name nobody holds: NameNotFound, at the deadline and not before.
    let started = Instant::now();
    let missing = b
        .lookup_within::<Greeter>("nobody", Duration::from_millis(300))
        .await
        .expect_err("nobody");
    assert_eq!(
        missing,
        Error::NameNotFound {
            name: "nobody".into()
        }
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    a.shutdown().await;
    b.shutdown().await;
}
