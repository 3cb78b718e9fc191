//! Nodes of different clusters over authenticated TCP links on loopback:
//! remote handles, monitors, cross-cluster migration with a proxy left at the
//! source, name rules, chains, refusals, bad peers and cut links.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, eventually_async};
use mobility::prelude::*;
use mobility::TcpConfig;

const SECRET: &str = "shared by the federation";

#[mobile]
#[derive(Default)]
pub struct Account {
    balance: i64,
    seen: Vec<u64>,
    payload: Vec<u8>,
}

#[mobile]
impl Account {
    pub fn deposit(&mut self, n: u64) -> i64 {
        self.seen.push(n);
        self.balance += n as i64;
        self.balance
    }

    pub fn balance(&self) -> i64 {
        self.balance
    }

    pub fn seen(&self) -> Vec<u64> {
        self.seen.clone()
    }

    pub fn load(&mut self, bytes: usize) -> usize {
        self.payload = (0..bytes).map(|i| (i % 253) as u8).collect();
        self.payload.len()
    }

    pub fn payload_sum(&self) -> u64 {
        self.payload.iter().map(|b| u64::from(*b)).sum()
    }

    pub fn where_am_i(&self, ctx: &mut Context<Self>) -> String {
        ctx.node().id().to_string()
    }

    pub fn crash(&mut self) {
        panic!("crash on request");
    }

    /// Keeps a handle it was given and deposits through it.
    pub async fn forward_to(&mut self, other: Handle<Account>, n: u64) -> Result<i64, Error> {
        other.deposit(n).await
    }
}

async fn tcp_node(name: &str, cluster: &str) -> Node {
    tcp_node_with(name, cluster, TcpConfig::default()).await
}

async fn tcp_node_with(name: &str, cluster: &str, config: TcpConfig) -> Node {
    Node::builder()
        .id(name)
        .cluster(cluster, SECRET)
        .trust_cluster("*", SECRET)
        .listen("127.0.0.1:0")
        .tcp_config(config)
        .request_timeout(Duration::from_secs(20))
        .start()
        .await
        .expect("node starts")
}

fn addr(node: &Node) -> String {
    node.listen_addr().expect("listens").to_string()
}

fn tcp(node: &Node) -> Destination {
    format!("tcp://{}", addr(node))
        .parse()
        .expect("destination")
}

#[tokio::test]
async fn remote_handles_work_like_local_ones() {
    let a = tcp_node("a", "east").await;
    let b = tcp_node("b", "west").await;
    assert_eq!(a.connect(&addr(&b)).await.expect("connect"), *b.id());
    let account = b.spawn(Account::default()).await.expect("spawn on b");
    let remote = a.bind(&account).expect("bind at a");
    assert_eq!(remote.deposit(5).await, Ok(5), "request/reply over TCP");
    remote.tell().deposit(6).expect("tell over TCP");
    assert_eq!(remote.balance().await, Ok(11));
    assert_eq!(remote.where_am_i().await, Ok("b".to_string()));
    // A handle inside a message arrives usable on the other side.
    let local = a.spawn(Account::default()).await.expect("spawn on a");
    assert_eq!(remote.forward_to(local.clone(), 7).await, Ok(Ok(7)));
    assert_eq!(local.balance().await, Ok(7));
    // Monitors across the link.
    let monitor = remote.monitor();
    assert!(remote.crash().await.is_err());
    assert_eq!(
        monitor.await,
        ExitReason::Panicked("crash on request".into())
    );
}

#[tokio::test]
async fn migration_to_another_cluster_leaves_a_working_proxy() {
    let a = tcp_node("a", "east").await;
    let a2 = tcp_node("a2", "east").await;
    let b = tcp_node("b", "west").await;
    a2.connect(&addr(&a)).await.expect("a2 -> a");
    let account = a
        .spawn_named("account", Account::default())
        .await
        .expect("spawn");
    let from_a2 = a2.bind(&account).expect("bind");
    account.deposit(1).await.expect("deposit");

    let report = a
        .migrate(&account, tcp(&b))
        .await
        .expect("migrate over TCP");
    assert_eq!((report.from.as_str(), report.to.as_str()), ("a", "b"));
    assert!(b.hosts(account.id()) && !a.hosts(account.id()));

    // Every handle and name of the source cluster keeps working.
    assert_eq!(account.deposit(2).await, Ok(3));
    assert_eq!(from_a2.deposit(3).await, Ok(6));
    assert_eq!(
        a.lookup::<Account>("account")
            .await
            .expect("name at a")
            .balance()
            .await,
        Ok(6)
    );
    // The destination cluster finds it by name.
    assert_eq!(
        b.lookup::<Account>("account")
            .await
            .expect("name at b")
            .id(),
        account.id()
    );
    assert_eq!(account.seen().await, Ok(vec![1, 2, 3]));

    // Moving back replaces the proxy by the actor.
    a.migrate(&account, a.id()).await.expect("back home");
    assert!(a.hosts(account.id()) && !b.hosts(account.id()));
    assert_eq!(
        b.lookup::<Account>("account")
            .await
            .expect("b forwards")
            .deposit(4)
            .await,
        Ok(10)
    );
}

#[tokio::test]
async fn a_chain_does_not_keep_traffic_going_through_the_middle() {
    let a = tcp_node("a", "one").await;
    let b = tcp_node("b", "two").await;
    let c = tcp_node("c", "three").await;
    let account = a.spawn(Account::default()).await.expect("spawn");
    a.migrate(&account, tcp(&b)).await.expect("a -> b");
    // b moves it on to c: a's handle still points at b.
    b.migrate(&account, tcp(&c)).await.expect("b -> c");
    assert_eq!(account.location(), *b.id());
    assert_eq!(account.deposit(1).await, Ok(1), "forwarded once through b");
    eventually("a learns the new location and dials c", || {
        account.location() == *c.id()
    })
    .await;
    assert!(a.peers().contains(c.id()), "a has a direct link to c now");
    assert_eq!(account.deposit(2).await, Ok(3), "straight to c");
    assert_eq!(account.seen().await, Ok(vec![1, 2]));
}

#[tokio::test]
async fn a_taken_name_at_the_destination_refuses_the_move() {
    let a = tcp_node("a", "east").await;
    let b = tcp_node("b", "west").await;
    let account = a
        .spawn_named("shared-name", Account::default())
        .await
        .expect("spawn");
    account.deposit(9).await.expect("deposit");
    let squatter = b
        .spawn_named("shared-name", Account::default())
        .await
        .expect("squat");
    let err = a.migrate(&account, tcp(&b)).await.expect_err("name taken");
    assert!(
        matches!(&err, Error::Migration { failure: MigrationFailure::NameTaken(name), .. } if name == "shared-name"),
        "{err}"
    );
    assert!(a.hosts(account.id()) && !b.hosts(account.id()));
    assert_eq!(account.balance().await, Ok(9));
    assert_eq!(
        b.lookup::<Account>("shared-name")
            .await
            .expect("still the squatter")
            .id(),
        squatter.id()
    );
}

#[tokio::test]
async fn unreachable_and_unauthenticated_destinations_fail_cleanly() {
    let a = tcp_node("a", "east").await;
    let account = a.spawn(Account::default()).await.expect("spawn");
    account.deposit(4).await.expect("deposit");
    // Nobody listens there (a port we bound and released).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let dest: Destination = format!("tcp://{closed}").parse().expect("parse");
    let err = a.migrate(&account, dest).await.expect_err("unreachable");
    assert!(
        matches!(
            &err,
            Error::Migration {
                phase: MigrationPhase::Validate,
                ..
            }
        ),
        "{err}"
    );
    // A node that does not know our secret.
    let stranger = Node::builder()
        .id("stranger")
        .cluster("elsewhere", "another secret")
        .listen("127.0.0.1:0")
        .start()
        .await
        .expect("stranger");
    // It trusts no cluster of a's name, says so at a's hello, and the
    // move fails at once with that reason (not after a timeout).
    let started = std::time::Instant::now();
    let err = a
        .migrate(&account, tcp(&stranger))
        .await
        .expect_err("not authenticated");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused after {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            &err,
            Error::Migration {
                failure: MigrationFailure::Unreachable(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cluster not trusted"), "{err}");
    assert!(stranger.hosted().is_empty(), "nothing got in");
    assert!(a.hosts(account.id()));
    assert_eq!(account.balance().await, Ok(4));
}

#[tokio::test]
async fn bad_bytes_close_that_connection_and_nothing_else() {
    let a = tcp_node("a", "east").await;
    let b = tcp_node("b", "west").await;
    let account = a.spawn(Account::default()).await.expect("spawn");
    account.deposit(1).await.expect("deposit");
    let target = a.listen_addr().expect("addr");
    let garbage: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0xff; 64],
        u32::MAX.to_be_bytes().to_vec(), // an oversized length prefix
        vec![0, 0, 0, 200, 1, 2, 3],     // a truncated frame
    ];
    for bytes in garbage {
        let mut stream = std::net::TcpStream::connect(target).expect("connect");
        let _ = stream.write_all(&bytes);
        drop(stream);
    }
    // A silent peer holds a socket open without a word.
    let _silent = std::net::TcpStream::connect(target).expect("connect");
    // The node still serves its actor and still accepts a good peer.
    assert_eq!(account.deposit(1).await, Ok(2));
    a.migrate(&account, tcp(&b))
        .await
        .expect("a good peer still works");
    assert_eq!(account.balance().await, Ok(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_during_a_migration_resumes_without_loss() {
    let a = tcp_node("a", "east").await;
    let b = tcp_node("b", "west").await;
    let account = a.spawn(Account::default()).await.expect("spawn");
    account.load(24 * 1024 * 1024).await.expect("load");
    let sum = account.payload_sum().await.expect("sum");
    a.connect(&addr(&b)).await.expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let account = account.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                account.tell().deposit(n).expect("tell");
                n += 1;
                tokio::task::yield_now().await;
            }
            n
        })
    };
    let migration = {
        let a = a.clone();
        let account = account.clone();
        let dest = tcp(&b);
        tokio::spawn(async move { a.migrate(&account, dest).await })
    };
    // Cut the socket while the 24 MiB snapshot is on its way, twice.
    for _ in 0..2 {
        a.fault_cut(b.id());
        tokio::task::yield_now().await;
    }
    let report = migration
        .await
        .expect("join")
        .expect("the session resumed and the migration finished");
    assert_eq!(report.to, *b.id());
    stop.store(true, Ordering::Relaxed);
    let sent = sender.await.expect("sender");
    eventually_async("every deposit arrived", || async {
        account.seen().await.is_ok_and(|s| s.len() as u64 == sent)
    })
    .await;
    assert_eq!(
        account.seen().await,
        Ok((0..sent).collect::<Vec<_>>()),
        "exactly once, in order"
    );
    assert_eq!(account.payload_sum().await, Ok(sum), "state intact");
    assert!(
        b.hosts(account.id()) && !a.hosts(account.id()),
        "exactly one copy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_lost_during_prepare_leaves_the_actor_home() {
    let config = TcpConfig {
        reconnect_for: Duration::from_millis(300),
        ..TcpConfig::default()
    };
    let a = tcp_node_with("a", "east", config.clone()).await;
    let b = tcp_node_with("b", "west", config).await;
    let account = a.spawn(Account::default()).await.expect("spawn");
    account.load(24 * 1024 * 1024).await.expect("load");
    let sum = account.payload_sum().await.expect("sum");
    a.connect(&addr(&b)).await.expect("connect");
    let migration = {
        let a = a.clone();
        let account = account.clone();
        let dest = tcp(&b);
        tokio::spawn(async move { a.migrate(&account, dest).await })
    };
    a.fault_block(b.id(), true);
    let err = migration
        .await
        .expect("join")
        .expect_err("the destination became unreachable");
    assert!(matches!(&err, Error::Migration { .. }), "{err}");
    assert!(a.hosts(account.id()), "the actor is home");
    assert_eq!(account.payload_sum().await, Ok(sum), "state unchanged");
    assert_eq!(account.deposit(1).await, Ok(1), "and serving");
    a.fault_block(b.id(), false);
    eventually("b holds no copy", || !b.hosts(account.id())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_is_reported_to_monitors_and_callers() {
    let config = TcpConfig {
        reconnect_for: Duration::from_millis(300),
        ..TcpConfig::default()
    };
    let a = tcp_node_with("a", "east", config.clone()).await;
    let b = tcp_node_with("b", "west", config).await;
    let account = b.spawn(Account::default()).await.expect("spawn");
    a.connect(&addr(&b)).await.expect("connect");
    let remote = a.bind(&account).expect("bind");
    assert_eq!(remote.deposit(1).await, Ok(1));
    let monitor = remote.monitor();
    a.fault_block(b.id(), true);
    assert_eq!(monitor.await, ExitReason::LinkLost(b.id().clone()));
    let err = remote.balance().await.expect_err("b is unreachable");
    assert!(
        matches!(
            err,
            Error::ActorDown {
                reason: ExitReason::LinkLost(_),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_under_a_flapping_link_keep_exactly_one_copy() {
    let a = tcp_node("a", "east").await;
    let b = tcp_node("b", "west").await;
    let account = a.spawn(Account::default()).await.expect("spawn");
    a.connect(&addr(&b)).await.expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    // Cut the socket between a and b every few milliseconds, from both sides.
    let flapper = {
        let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
        tokio::spawn(async move {
            let mut cuts = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if cuts % 2 == 0 {
                    a.fault_cut(b.id());
                } else {
                    b.fault_cut(a.id());
                }
                cuts += 1;
                for _ in 0..200 {
                    tokio::task::yield_now().await;
                }
            }
            cuts
        })
    };
    let mut deposited = Vec::new();
    let mut moved = 0;
    for round in 0..30u64 {
        account.tell().deposit(round).expect("tell");
        deposited.push(round);
        let (from, to) = if b.hosts(account.id()) {
            (&b, &a)
        } else {
            (&a, &b)
        };
        match a.migrate(&account, tcp(to)).await {
            Ok(report) => {
                assert_eq!(report.to, *to.id());
                moved += 1;
            }
            // A failed migration must say why and leave the actor where it was.
            Err(Error::Migration { .. }) => {
                assert!(from.hosts(account.id()), "round {round}: stayed home")
            }
            Err(other) => panic!("round {round}: unexpected error {other}"),
        }
        let copies = [&a, &b].iter().filter(|n| n.hosts(account.id())).count();
        assert_eq!(copies, 1, "round {round}: exactly one live copy");
    }
    stop.store(true, Ordering::Relaxed);
    let cuts = flapper.await.expect("flapper");
    assert!(cuts > 0 && moved > 0, "{cuts} cuts, {moved} moves");
    assert_eq!(
        account.seen().await,
        Ok(deposited),
        "every deposit exactly once, in order"
    );
}
