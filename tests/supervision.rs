//! Supervision: children restarted by strategy, policy and intensity;
//! escalation up a tree of supervisors; and what supervision means for
//! actors that move: a child on another node is watched there, its
//! migration is no death, and a child whose node is killed is restarted
//! once, on a live node, under its name; one whose node stalls past the
//! failure timeout is restarted, and the fenced old one never answers again.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{linked, poll_until, wait_for, PATIENCE};
use mobility::prelude::*;
use mobility::supervisor::{
    ChildExit, ChildSpec, Restart, Strategy, Supervisor, SupervisorExit, SupervisorHandle,
};

#[mobile]
#[derive(Default)]
pub struct Worker {
    count: u64,
}

#[mobile]
impl Worker {
    pub fn bump(&mut self) -> u64 {
        self.count += 1;
        self.count
    }

    pub fn crash(&mut self) {
        panic!("worker crashed on purpose");
    }

    pub fn where_am_i(&self, ctx: &mut Context<Self>) -> String {
        ctx.node().id().to_string()
    }

    /// `bump`, counting the runs on the node that the stall test freezes.
    pub fn bump_counted(&mut self, ctx: &mut Context<Self>) -> u64 {
        if ctx.node().id().as_str() == STALLED {
            HANDLED_ON_STALLED.fetch_add(1, Ordering::SeqCst);
        }
        self.bump()
    }
}

/// A child that says when it stops, in `STOPS`, for the order test.
#[mobile]
#[derive(Clone)]
pub struct Ordered {
    label: String,
}

#[mobile]
impl Ordered {
    pub fn label(&self) -> String {
        self.label.clone()
    }

    #[mobile(on_stop)]
    fn stopping(&mut self) {
        STOPS.lock().expect("stops").push(self.label.clone());
    }
}

static STOPS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The node the stall test freezes, and how many handler runs it made.
const STALLED: &str = "stall-c";
static HANDLED_ON_STALLED: AtomicU64 = AtomicU64::new(0);

/// The current incarnation of `id` once it is not `old` (a restart has
/// happened) and answers.
async fn restarted(sup: &SupervisorHandle, id: &str, old: ActorId) -> Handle<Worker> {
    poll_until(&format!("child {id} restarted"), || async {
        match sup.child::<Worker>(id) {
            Some(h) if h.id() != old => Ok(h),
            Some(_) => Err("still the old incarnation".to_owned()),
            None => Err("not running".to_owned()),
        }
    })
    .await
}

fn current(sup: &SupervisorHandle, id: &str) -> Handle<Worker> {
    sup.child::<Worker>(id)
        .unwrap_or_else(|| panic!("child {id} runs"))
}

fn restarts(sup: &SupervisorHandle, id: &str) -> u32 {
    sup.children()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("child {id} is in the supervisor"))
        .restarts
}

/// Makes `worker` panic and waits until its monitor reports it.
async fn crash(worker: &Handle<Worker>) {
    let down = worker.monitor();
    assert!(worker.crash().await.is_err(), "a panic is an error");
    let reason = tokio::time::timeout(PATIENCE, down)
        .await
        .expect("the crash is reported");
    assert!(matches!(reason, ExitReason::Panicked(_)), "{reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicked_child_is_restarted_fresh_and_found_again_under_its_name() {
    let nodes = linked(&["sup-name-a"]).await;
    let a = &nodes[0];
    let sup = Supervisor::builder(a)
        .intensity(3, Duration::from_secs(60))
        .child(ChildSpec::new("worker", Worker::default).named("worker"))
        .start()
        .await
        .expect("supervisor starts");
    let first = a.lookup::<Worker>("worker").await.expect("named");
    assert_eq!(first.id(), current(&sup, "worker").id());
    assert_eq!(first.bump().await, Ok(1));
    assert_eq!(first.bump().await, Ok(2));

    crash(&first).await;
    let second = restarted(&sup, "worker", first.id()).await;
    // Built again by the factory: fresh state, the same name.
    assert_eq!(second.bump().await, Ok(1));
    let found = a.lookup::<Worker>("worker").await.expect("named again");
    assert_eq!(found.id(), second.id());
    assert_eq!(restarts(&sup, "worker"), 1);
    // The old handle stays dead: a new incarnation is another actor.
    assert!(matches!(first.bump().await, Err(Error::ActorDown { .. })));

    sup.stop().await;
    assert_eq!(sup.exit_reason(), Some(SupervisorExit::Stopped));
    assert!(sup.child::<Worker>("worker").is_none());
    a.shutdown().await;
}

/// Three workers under `strategy`; the middle one crashes. Returns the
/// actor ids before and after.
async fn crash_the_middle_one(strategy: Strategy, node: &str) -> (Vec<ActorId>, Vec<ActorId>) {
    let nodes = linked(&[node]).await;
    let a = &nodes[0];
    let sup = Supervisor::builder(a)
        .strategy(strategy)
        .intensity(3, Duration::from_secs(60))
        .child(ChildSpec::new("first", Worker::default))
        .child(ChildSpec::new("second", Worker::default))
        .child(ChildSpec::new("third", Worker::default))
        .start()
        .await
        .expect("supervisor starts");
    let ids = ["first", "second", "third"];
    let before: Vec<ActorId> = ids.iter().map(|id| current(&sup, id).id()).collect();
    crash(&current(&sup, "second")).await;
    restarted(&sup, "second", before[1]).await;
    // The supervisor restarts the whole plan before it looks at anything
    // else: once the crashed child is back, so are its siblings.
    wait_for("every child runs", || {
        sup.children().iter().all(|c| c.running)
    })
    .await;
    let after: Vec<ActorId> = ids.iter().map(|id| current(&sup, id).id()).collect();
    for id in ids {
        assert_eq!(current(&sup, id).bump().await, Ok(1), "{id} answers");
    }
    sup.stop().await;
    a.shutdown().await;
    (before, after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_one_restarts_only_the_child_that_crashed() {
    let (before, after) = crash_the_middle_one(Strategy::OneForOne, "sup-one-a").await;
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1], before[1]);
    assert_eq!(after[2], before[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_all_restarts_every_sibling() {
    let (before, after) = crash_the_middle_one(Strategy::OneForAll, "sup-all-a").await;
    for i in 0..3 {
        assert_ne!(after[i], before[i], "child {i} was restarted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_for_one_restarts_the_crashed_child_and_the_later_ones_only() {
    let (before, after) = crash_the_middle_one(Strategy::RestForOne, "sup-rest-a").await;
    assert_eq!(after[0], before[0], "the earlier child is untouched");
    assert_ne!(after[1], before[1]);
    assert_ne!(after[2], before[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_stop_in_reverse_start_order_on_a_restart_of_all_and_on_stop() {
    let nodes = linked(&["sup-order-a"]).await;
    let a = &nodes[0];
    let spec = |label: &str| {
        ChildSpec::from_value(
            label,
            Ordered {
                label: label.to_owned(),
            },
        )
    };
    let sup = Supervisor::builder(a)
        .strategy(Strategy::OneForAll)
        .intensity(3, Duration::from_secs(60))
        .child(spec("first"))
        .child(spec("second"))
        .child(spec("third"))
        .start()
        .await
        .expect("supervisor starts");
    let first = sup.child::<Ordered>("first").expect("runs");
    // A normal stop of a permanent child is restarted too, and under
    // one-for-all the siblings go first, the last started first.
    first.stop().await.expect("stops");
    wait_for("all restarted", || {
        sup.children().iter().all(|c| c.running && c.restarts == 1)
    })
    .await;
    assert_eq!(*STOPS.lock().expect("stops"), ["first", "third", "second"]);
    STOPS.lock().expect("stops").clear();
    let second = sup.child::<Ordered>("second").expect("runs");
    assert_eq!(second.label().await.as_deref(), Ok("second"));

    sup.stop().await;
    assert_eq!(*STOPS.lock().expect("stops"), ["third", "second", "first"]);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_children_restart_only_after_a_failure_and_temporary_ones_never() {
    let nodes = linked(&["sup-policy-a"]).await;
    let a = &nodes[0];
    let sup = Supervisor::builder(a)
        .intensity(5, Duration::from_secs(60))
        .child(ChildSpec::new("transient", Worker::default).restart(Restart::Transient))
        .child(ChildSpec::new("temporary", Worker::default).restart(Restart::Temporary))
        .child(ChildSpec::new("permanent", Worker::default))
        .start()
        .await
        .expect("supervisor starts");

    // Transient: a panic is abnormal, so it comes back...
    let transient = current(&sup, "transient");
    crash(&transient).await;
    let transient = restarted(&sup, "transient", transient.id()).await;
    // ...a stop is normal, so it stays down (but stays in the supervisor).
    transient.stop().await.expect("stops");
    wait_for("the transient child is down", || {
        sup.child::<Worker>("transient").is_none()
    })
    .await;

    // Temporary: never restarted, and gone from the supervisor.
    crash(&current(&sup, "temporary")).await;
    wait_for("the temporary child is gone", || {
        sup.children().iter().all(|c| c.id != "temporary")
    })
    .await;

    // Permanent: restarted even after a normal stop. Its restart comes
    // after the two ends above (one loop, in order): then nothing else
    // was restarted.
    let permanent = current(&sup, "permanent");
    permanent.stop().await.expect("stops");
    restarted(&sup, "permanent", permanent.id()).await;
    let children = sup.children();
    let transient_info = children.iter().find(|c| c.id == "transient").expect("kept");
    assert!(!transient_info.running, "{children:?}");
    assert_eq!(transient_info.restarts, 1, "{children:?}");
    assert_eq!(restarts(&sup, "permanent"), 1);
    assert_eq!(children.len(), 2, "{children:?}");
    sup.stop().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceeding_the_intensity_escalates_and_stops_every_child() {
    let nodes = linked(&["sup-intensity-a"]).await;
    let a = &nodes[0];
    let sup = Supervisor::builder(a)
        .intensity(2, Duration::from_secs(60))
        .child(ChildSpec::new("steady", Worker::default))
        .child(ChildSpec::new("flaky", Worker::default))
        .start()
        .await
        .expect("supervisor starts");
    let steady = current(&sup, "steady");
    let steady_down = steady.monitor();
    let ended = sup.monitor();

    // Two restarts are allowed within the period; the third crash is one
    // too many.
    let mut flaky = current(&sup, "flaky");
    for _ in 0..2 {
        crash(&flaky).await;
        flaky = restarted(&sup, "flaky", flaky.id()).await;
    }
    crash(&flaky).await;
    let exit = tokio::time::timeout(PATIENCE, ended)
        .await
        .expect("the supervisor ends");
    match &exit {
        SupervisorExit::Escalated {
            child,
            reason,
            intensity,
            ..
        } => {
            assert_eq!(child, "flaky");
            assert!(
                matches!(**reason, ChildExit::Actor(ExitReason::Panicked(_))),
                "{reason:?}"
            );
            assert_eq!(*intensity, 2);
        }
        other => panic!("expected an escalation, got {other:?}"),
    }
    // The sibling was stopped by the supervisor, not left running.
    assert_eq!(
        tokio::time::timeout(PATIENCE, steady_down)
            .await
            .expect("the sibling ends"),
        ExitReason::Stopped
    );
    assert!(sup.children().iter().all(|c| !c.running));
    assert_eq!(sup.exit_reason(), Some(exit));
    assert!(a.hosted().is_empty(), "no child is left on the node");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalating_child_supervisor_is_restarted_by_its_parent() {
    let nodes = linked(&["sup-tree-a"]).await;
    let a = &nodes[0];
    let root = Supervisor::builder(a)
        .strategy(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(60))
        .child(ChildSpec::new("logger", Worker::default))
        .child(ChildSpec::supervisor("workers", |node| {
            // Gives up at the first failure: escalates to the root.
            Supervisor::builder(node)
                .intensity(0, Duration::from_secs(60))
                .child(ChildSpec::new("worker", Worker::default).named("tree-worker"))
        }))
        .start()
        .await
        .expect("the tree starts");
    let logger = current(&root, "logger").id();
    let workers = root
        .supervisor("workers")
        .expect("the child supervisor runs");
    let workers_ended = workers.monitor();
    let worker = current(&workers, "worker");

    crash(&worker).await;
    let exit = tokio::time::timeout(PATIENCE, workers_ended)
        .await
        .expect("the child supervisor ends");
    assert!(
        matches!(&exit, SupervisorExit::Escalated { child, .. } if child == "worker"),
        "{exit:?}"
    );
    // The root restarts the subtree: a new supervisor with a new worker,
    // under the same name; the sibling is untouched (one-for-one).
    let again = poll_until("the subtree restarted", || async {
        root.supervisor("workers")
            .filter(|s| s.exit_reason().is_none())
            .and_then(|s| s.child::<Worker>("worker"))
            .ok_or_else(|| "not yet".to_owned())
    })
    .await;
    assert_ne!(again.id(), worker.id());
    assert_eq!(again.bump().await, Ok(1));
    assert_eq!(
        a.lookup::<Worker>("tree-worker").await.map(|h| h.id()),
        Ok(again.id())
    );
    assert_eq!(current(&root, "logger").id(), logger);
    assert_eq!(restarts(&root, "workers"), 1);

    // Stopping the root stops the whole tree.
    root.stop().await;
    assert_eq!(
        root.supervisor("workers").map(|s| s.exit_reason()),
        None,
        "no subtree runs"
    );
    assert!(a.hosted().is_empty());
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_on_another_node_is_watched_there_and_its_migrations_are_no_death() {
    let nodes = linked(&["sup-move-a", "sup-move-b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let sup = Supervisor::builder(a)
        .intensity(3, Duration::from_secs(60))
        .child(ChildSpec::new("worker", Worker::default).on(b.id().clone()))
        .start()
        .await
        .expect("supervisor starts");
    let worker = current(&sup, "worker");
    assert!(b.hosts(worker.id()), "placed on b");
    assert_eq!(worker.where_am_i().await.as_deref(), Ok("sup-move-b"));
    let original = worker.id();
    let watched = worker.monitor();

    // Moves are not deaths: no restart, the same actor, its state kept.
    assert_eq!(worker.bump().await, Ok(1));
    for to in [a, b, a, b] {
        a.migrate(&worker, to.id().clone()).await.expect("moves");
        assert_eq!(worker.where_am_i().await.as_deref(), Ok(to.id().as_str()));
    }
    assert_eq!(worker.bump().await, Ok(2), "the state moved with it");
    let info = sup.children();
    assert_eq!(info[0].actor, Some(original), "{info:?}");
    assert_eq!(info[0].restarts, 0, "{info:?}");

    // A panic on b reaches the supervisor on a (the monitor followed the
    // actor through four moves): restarted once, placed on b again.
    assert!(worker.crash().await.is_err());
    assert!(matches!(
        tokio::time::timeout(PATIENCE, watched)
            .await
            .expect("reported"),
        ExitReason::Panicked(_)
    ));
    let again = restarted(&sup, "worker", original).await;
    wait_for("the new incarnation is placed on b", || b.hosts(again.id())).await;
    assert_eq!(again.bump().await, Ok(1));
    assert_eq!(restarts(&sup, "worker"), 1);
    sup.stop().await;
    assert!(
        !b.hosts(again.id()),
        "stopping the supervisor stopped it on b"
    );
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_whose_child_cannot_start_does_not_start_and_stops_the_others() {
    let nodes = linked(&["sup-start-a"]).await;
    let a = &nodes[0];
    let squatter = a
        .spawn_named("taken", Worker::default())
        .await
        .expect("spawn");
    let refused = Supervisor::builder(a)
        .child(ChildSpec::new("first", Worker::default))
        .child(ChildSpec::new("second", Worker::default).named("taken"))
        .start()
        .await
        .expect_err("the name is taken");
    assert_eq!(refused.child, "second");
    assert!(
        matches!(&refused.error, Error::NameTaken { owner, .. } if *owner == squatter.id()),
        "{refused}"
    );
    // The first child was started, then stopped again: only the squatter
    // is left.
    wait_for("the first child is stopped", || {
        a.hosted() == vec![squatter.id()]
    })
    .await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_ends_when_its_node_shuts_down_and_its_children_go_with_it() {
    let nodes = linked(&["sup-down-a", "sup-down-b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let sup = Supervisor::builder(a)
        .child(ChildSpec::new("here", Worker::default))
        .child(ChildSpec::new("there", Worker::default).on(b.id().clone()))
        .start()
        .await
        .expect("supervisor starts");
    let there = current(&sup, "there");
    assert!(b.hosts(there.id()));
    let there_id = there.id();
    let ended = sup.monitor();
    a.shutdown().await;
    assert_eq!(
        tokio::time::timeout(PATIENCE, ended)
            .await
            .expect("the supervisor ends"),
        SupervisorExit::NodeDown(a.id().clone())
    );
    // The child on b went down with its supervisor (OTP: children die with
    // it), and nothing was restarted anywhere.
    wait_for("the child on b is gone", || !b.hosts(there_id)).await;
    assert!(b.hosted().is_empty());
    b.shutdown().await;
}

// ---- a cluster over loopback TCP: a node killed ---------------------------

const SECRET: &str = "supervision secret";

fn builder(id: &str) -> mobility::NodeBuilder {
    Node::builder()
        .id(id)
        .cluster("supervision", SECRET)
        .listen("127.0.0.1:0")
        .gossip_interval(Duration::from_millis(50))
        .failure_timeout(Duration::from_millis(1500))
        .request_timeout(Duration::from_secs(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_whose_node_is_killed_is_restarted_once_on_a_live_node_under_its_name() {
    let a = builder("a").start().await.expect("a");
    let seed = a.listen_addr().expect("listens").to_string();
    let b = builder("b").join(&seed).start().await.expect("b");
    let c = builder("c").join(&seed).start().await.expect("c");
    for node in [&a, &b, &c] {
        wait_for("every member sees the others", || node.members().len() == 3).await;
    }
    // The worker goes to c while c is a member; once c is gone, it stays
    // on the supervisor's node.
    let c_id = c.id().clone();
    let sup = Supervisor::builder(&a)
        .intensity(3, Duration::from_secs(60))
        .child(
            ChildSpec::new("worker", Worker::default)
                .named("worker")
                .placed_by(move |node| node.members().into_iter().find(|m| *m == c_id)),
        )
        .start()
        .await
        .expect("supervisor starts");
    let worker = current(&sup, "worker");
    assert!(c.hosts(worker.id()), "placed on c");
    let seen_from_b = poll_until("the worker's name on b", || async {
        b.lookup::<Worker>("worker")
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(seen_from_b.id(), worker.id());
    assert_eq!(worker.bump().await, Ok(1));
    let watched = worker.monitor();
    let mut events = a.member_events();

    c.fault_kill().await;

    // The cluster declares c failed (so c is fenced: the old worker never
    // answers again) and only then reports the worker down.
    assert_eq!(
        tokio::time::timeout(PATIENCE, watched)
            .await
            .expect("reported"),
        ExitReason::Unreachable(c.id().clone())
    );
    tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(MemberEvent::Failed(node)) if node == *c.id() => return,
                Ok(_) => continue,
                Err(e) => panic!("member events: {e}"),
            }
        }
    })
    .await
    .expect("c declared failed");
    let again = restarted(&sup, "worker", worker.id()).await;
    assert!(a.hosts(again.id()), "restarted on a, c being gone");
    assert_eq!(again.bump().await, Ok(1));
    // Found under its name from every live member, as the one new actor.
    for node in [&a, &b] {
        let found = poll_until("the restarted worker's name", || async {
            match node.lookup::<Worker>("worker").await {
                Ok(h) if h.id() == again.id() => Ok(h),
                Ok(h) => Err(format!("still the old {}", h.id())),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        assert_eq!(found.bump().await.map(|n| n >= 2), Ok(true));
    }
    assert!(matches!(worker.bump().await, Err(Error::ActorDown { .. })));
    // Exactly once: one restart, one live worker in the cluster.
    assert_eq!(restarts(&sup, "worker"), 1);
    assert_eq!(a.hosted(), vec![again.id()]);
    assert!(b.hosted().is_empty());
    sup.stop().await;
    for node in [&a, &b] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_whose_node_stalls_is_restarted_and_the_fenced_one_never_answers_again() {
    let a = builder("stall-a").start().await.expect("a");
    let seed = a.listen_addr().expect("listens").to_string();
    let b = builder("stall-b").join(&seed).start().await.expect("b");
    // Node c on a runtime of its own, on one thread, which a message on
    // `stall` blocks (all of c stops at once, as under SIGSTOP).
    let (stall, mut stalls) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let (ready, c_ready) = tokio::sync::oneshot::channel::<Node>();
    let (end, ended) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let c = builder(STALLED).join(&seed).start().await.expect("c joins");
            let staller = tokio::spawn(async move {
                while let Some(pause) = stalls.recv().await {
                    // The fault under test: c's whole thread stops.
                    std::thread::sleep(pause);
                }
            });
            let _ = ready.send(c.clone());
            let _ = ended.await;
            staller.abort();
            c.shutdown().await;
        });
    });
    let c = c_ready.await.expect("c is up");
    for node in [&a, &b] {
        wait_for("every member sees the others", || node.members().len() == 3).await;
    }
    let c_id = c.id().clone();
    let place_on_c = c_id.clone();
    let sup = Supervisor::builder(&a)
        .intensity(3, Duration::from_secs(60))
        .child(
            ChildSpec::new("worker", Worker::default)
                .named("stalled-worker")
                .placed_by(move |node| node.members().into_iter().find(|m| *m == place_on_c)),
        )
        .start()
        .await
        .expect("supervisor starts");
    let worker = current(&sup, "worker");
    assert!(c.hosts(worker.id()), "placed on c");
    assert_eq!(worker.bump_counted().await, Ok(1));
    assert_eq!(HANDLED_ON_STALLED.load(Ordering::SeqCst), 1);

    // c stalls for 5 s, far past the failure timeout (1.5 s): the cluster
    // declares it failed, the worker is reported unreachable, and the
    // supervisor starts a new one on a while the old one is frozen, alive.
    stall.send(Duration::from_secs(5)).expect("stall c");
    let again = restarted(&sup, "worker", worker.id()).await;
    assert!(a.hosts(again.id()));
    let handled_when_restarted = HANDLED_ON_STALLED.load(Ordering::SeqCst);
    assert_eq!(again.bump_counted().await, Ok(1));

    // Back, c learns it was declared failed and is fenced: the old
    // incarnation never answers again, from anywhere; the name is the new
    // one's everywhere. One restart, one live worker.
    wait_for("c fenced", || c.is_fenced()).await;
    for node in [&a, &b] {
        let old = node.bind(&worker).expect("bind");
        match tokio::time::timeout(PATIENCE, old.bump_counted()).await {
            Ok(Err(Error::ActorDown { reason, .. })) => {
                assert_eq!(reason, ExitReason::Unreachable(c_id.clone()))
            }
            other => panic!("{}: the fenced worker answered {other:?}", node.id()),
        }
        let found = poll_until("the new worker under the name", || async {
            match node.lookup::<Worker>("stalled-worker").await {
                Ok(h) if h.id() == again.id() => Ok(h),
                Ok(h) => Err(format!("the old {}", h.id())),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        assert!(found.bump_counted().await.is_ok());
    }
    assert_eq!(
        HANDLED_ON_STALLED.load(Ordering::SeqCst),
        handled_when_restarted,
        "the fenced worker handled nothing after its restart"
    );
    assert_eq!(restarts(&sup, "worker"), 1);
    assert_eq!(a.hosted(), vec![again.id()]);
    assert!(b.hosted().is_empty());
    assert!(c.hosted().is_empty());

    sup.stop().await;
    let _ = end.send(());
    tokio::task::spawn_blocking(move || thread.join().expect("c's thread"))
        .await
        .expect("join");
    for node in [&a, &b] {
        node.shutdown().await;
    }
}
