//! One answer per situation, from every node alike: a name whose actor
//! ended is unknown everywhere; a node that shut down is told apart from a
//! lost link; a migration to an unknown node says so in one sentence; and a
//! node outside any cluster can drain to one destination.

mod common;

use std::time::Duration;

use common::{eventually, eventually_async, linked};
use mobility::prelude::*;

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

fn member(id: &str) -> mobility::NodeBuilder {
    Node::builder()
        .id(id)
        .cluster("errors", "errors secret")
        .listen("127.0.0.1:0")
        .gossip_interval(Duration::from_millis(50))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_whose_actor_ended_is_unknown_on_every_member() {
    let a = member("a").start().await.expect("a");
    let seed = a.listen_addr().expect("listens").to_string();
    let b = member("b").join(&seed).start().await.expect("b");
    let greeter = a
        .spawn_named("greeter", Greeter::default())
        .await
        .expect("spawn");
    b.lookup_within::<Greeter>("greeter", Duration::from_secs(20))
        .await
        .expect("b finds it");
    greeter.stop().await.expect("stop");

    let unknown = Error::NameNotFound {
        name: "greeter".into(),
    };
    // On its own node, and on b once the gossip says so.
    eventually_async("a no longer finds the name", || async {
        a.lookup::<Greeter>("greeter").await.err() == Some(unknown.clone())
    })
    .await;
    eventually_async("b no longer finds the name", || async {
        b.lookup::<Greeter>("greeter").await.err() == Some(unknown.clone())
    })
    .await;
    // A handle kept from before says the actor is down, and why.
    assert!(matches!(
        greeter.greet().await,
        Err(Error::ActorDown {
            reason: ExitReason::Stopped,
            ..
        })
    ));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_shut_down_is_not_reported_as_a_lost_link() {
    let nodes = linked(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let greeter = b.spawn(Greeter::default()).await.expect("spawn");
    let remote = a.bind(&greeter).expect("bind");
    assert_eq!(remote.greet().await, Ok(1));
    let monitor = remote.monitor();
    b.shutdown().await;
    let shut_down = ExitReason::NodeDown(b.id().clone());
    assert_eq!(monitor.await, shut_down);
    eventually("a forgets the link to b", || a.peers().is_empty()).await;
    // Later calls give the same reason as the monitor did.
    let error = remote.greet().await.expect_err("b is gone");
    assert_eq!(
        error,
        Error::ActorDown {
            actor: greeter.id(),
            reason: shut_down
        }
    );
    assert_eq!(
        error.to_string(),
        format!("actor {} is down: its node b shut down", greeter.id())
    );
}

#[tokio::test]
async fn a_migration_to_an_unknown_node_says_so_once() {
    let nodes = linked(&["a"]).await;
    let greeter = nodes[0].spawn(Greeter::default()).await.expect("spawn");
    let error = nodes[0]
        .migrate(&greeter, NodeId::new("nosuchnode").expect("id"))
        .await
        .expect_err("unknown");
    let text = error.to_string();
    assert!(
        text.ends_with(
            "destination nosuchnode is unknown to node a: neither a member of its cluster nor linked to it"
        ),
        "{text}"
    );
    assert!(!text.contains("is not reachable"), "{text}");
    assert_eq!(greeter.greet().await, Ok(1), "the actor stays, unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outside_any_cluster_drains_to_one_destination() {
    let nodes = linked(&["a", "b", "c"]).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let mut greeters = Vec::new();
    for _ in 0..5 {
        let greeter = a.spawn(Greeter::default()).await.expect("spawn");
        assert_eq!(greeter.greet().await, Ok(1));
        greeters.push(c.bind(&greeter).expect("bind"));
    }
    let report = a.drain_to(b.id()).await.expect("drains");
    assert_eq!(report.moved.len(), 5);
    assert!(a.hosted().is_empty());
    assert_eq!(
        a.spawn(Greeter::default()).await.err(),
        Some(Error::NodeStopped(a.id().clone()))
    );
    for greeter in &greeters {
        assert!(b.hosts(greeter.id()));
        assert_eq!(greeter.greet().await, Ok(2), "state moved, handle kept");
    }
    // A drain that cannot place its actors leaves the node up, with them.
    let greeter = b.spawn(Greeter::default()).await.expect("spawn");
    let error = b
        .drain_to(NodeId::new("nowhere").expect("id"))
        .await
        .expect_err("nowhere to go");
    assert!(
        matches!(error, Error::DrainIncomplete { moved: 0, .. }),
        "{error}"
    );
    assert_eq!(greeter.greet().await, Ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_shuts_down_leaves_and_its_actors_are_reported_shut_down() {
    let a = member("a").start().await.expect("a");
    let seed = a.listen_addr().expect("listens").to_string();
    let b = member("b").join(&seed).start().await.expect("b");
    let greeter = b
        .spawn_named("greeter", Greeter::default())
        .await
        .expect("spawn");
    let remote = a
        .lookup_within::<Greeter>("greeter", Duration::from_secs(20))
        .await
        .expect("a finds it");
    assert_eq!(remote.greet().await, Ok(1));
    let monitor = remote.monitor();
    // Registered on b before b goes: a call through the same route after it.
    assert_eq!(remote.greet().await, Ok(2));
    let mut events = a.member_events();
    b.shutdown().await;
    drop(greeter);

    let shut_down = ExitReason::NodeDown(b.id().clone());
    let event = tokio::time::timeout(common::PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(MemberEvent::Joined(_)) => continue,
                Ok(event) => return event,
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("b's leave reported");
    assert_eq!(event, MemberEvent::Left(b.id().clone()), "left, not failed");
    assert_eq!(
        tokio::time::timeout(common::PATIENCE, monitor).await,
        Ok(shut_down.clone())
    );
    assert_eq!(
        remote.greet().await,
        Err(Error::ActorDown {
            actor: remote.id(),
            reason: shut_down
        })
    );
    a.shutdown().await;
}
