//! A node stalled past failure detection, in one process: node c runs on a
//! runtime of its own, on one thread, which the test blocks for longer than
//! the failure timeout (everything of c stops at once, as under `SIGSTOP`;
//! the kernel keeps buffering what peers send it). The cluster declares c
//! failed and tells the callers of c's actor it is unreachable; when c runs
//! again it learns it was declared failed and is fenced. Checked: no request
//! reported failed is handled later, nothing at all is handled after the
//! cluster declared c failed (not even a call of c's own caller, run on
//! that caller's task), the actor never answers again from anywhere, and c
//! knows it is fenced.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{poll_until, wait_for, PATIENCE};
use mobility::prelude::*;

const SECRET: &str = "fencing secret";
/// The first request id of the caller on c itself.
const LOCAL: u64 = 1_000_000;

/// Every request id the actor handled, in order (the test's view of the
/// actor's side, which outlives c's runtime).
static HANDLED: Mutex<Vec<u64>> = Mutex::new(Vec::new());

#[mobile]
#[derive(Default)]
pub struct Recorder {
    count: u64,
}

#[mobile]
impl Recorder {
    pub fn record(&mut self, id: u64) -> u64 {
        HANDLED.lock().expect("handled").push(id);
        self.count += 1;
        self.count
    }
}

fn builder(id: &str) -> mobility::NodeBuilder {
    Node::builder()
        .id(id)
        .cluster("fencing", SECRET)
        .listen("127.0.0.1:0")
        .gossip_interval(Duration::from_millis(50))
        .failure_timeout(Duration::from_millis(1500))
        .request_timeout(Duration::from_secs(20))
}

/// What a caller on another node saw of each of its requests.
#[derive(Debug, Default)]
struct Seen {
    answered: Vec<u64>,
    /// Told the actor is down (must never be handled).
    failed: Vec<(u64, ExitReason)>,
    other: Vec<(u64, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stalled_past_failure_detection_is_fenced_and_its_actor_never_answers_again() {
    let a = builder("a").start().await.expect("a");
    let seed = a.listen_addr().expect("listens").to_string();
    let b = builder("b").join(&seed).start().await.expect("b");

    // Node c on its own one-thread runtime; a message on `stall` blocks
    // that thread (so all of c) for the given time.
    let (stall, mut stalls) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let (ready, c_ready) = tokio::sync::oneshot::channel::<(Node, ActorId)>();
    let (end, ended) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let c = builder("c").join(&seed).start().await.expect("c joins");
            let victim = c
                .spawn_named("victim", Recorder::default())
                .await
                .expect("spawn on c");
            // A caller on c itself: its requests run on its own task while
            // the actor is idle (plain handler). The stall blocks c's thread
            // from this task, and its next call is the first thing c does
            // when it runs again.
            let local = victim.clone();
            let caller = tokio::spawn(async move {
                // A call every 5 ms: the load's pace, not a wait.
                let mut pace = tokio::time::interval(Duration::from_millis(5));
                for id in LOCAL.. {
                    tokio::select! {
                        biased;
                        // The fault under test: c's whole thread stops.
                        Some(pause) = stalls.recv() => std::thread::sleep(pause),
                        _ = pace.tick() => {}
                    }
                    let _ = local.record(id).await;
                }
            });
            let _ = ready.send((c.clone(), victim.id()));
            let _ = ended.await;
            caller.abort();
            c.shutdown().await;
        });
    });
    let (c, victim_id) = c_ready.await.expect("c is up");
    for node in [&a, &b] {
        wait_for("every member sees c", || node.members().len() == 3).await;
    }
    let victim: Handle<Recorder> = poll_until("the victim's name on a", || async {
        a.lookup::<Recorder>("victim")
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(victim.id(), victim_id);

    // A caller on a, one request at a time, each with its own id.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (victim, stop) = (victim.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut id = 0;
            let mut pace = tokio::time::interval(Duration::from_millis(10));
            while !stop.load(Ordering::Relaxed) {
                pace.tick().await;
                id += 1;
                match victim.record(id).await {
                    Ok(_) => seen.answered.push(id),
                    Err(Error::ActorDown { reason, .. }) => seen.failed.push((id, reason)),
                    Err(other) => seen.other.push((id, other.to_string())),
                }
            }
            seen
        })
    };
    wait_for("the actor answers both callers", || {
        let handled = HANDLED.lock().expect("h");
        handled.len() >= 20 && handled.iter().any(|id| *id >= LOCAL)
    })
    .await;

    // c stalls for 4 s, far past the failure timeout (1.5 s).
    stall.send(Duration::from_secs(4)).expect("stall c");
    let c_id = NodeId::new("c").expect("id");
    for node in [&a, &b] {
        wait_for("c declared failed", || !node.members().contains(&c_id)).await;
    }
    // From here on nothing may be handled: c is stalled, and when it runs
    // again it was declared failed (callers were told it is down).
    let handled_when_declared = HANDLED.lock().expect("h").len();
    // Back, c learns it was declared failed, and is fenced.
    wait_for("c fenced", || c.is_fenced()).await;
    let handled_at_fence = HANDLED.lock().expect("h").len();

    // Callers keep being told it is down, from every node; it never answers.
    for node in [&a, &b] {
        let handle = node.bind(&victim).expect("bind");
        match tokio::time::timeout(PATIENCE, handle.record(u64::MAX)).await {
            Ok(Err(Error::ActorDown { .. })) => {}
            other => panic!("{}: the fenced actor answered {other:?}", node.id()),
        }
        match node.lookup::<Recorder>("victim").await {
            Err(Error::NameNotFound { .. }) => {}
            other => panic!("{}: the name outlived the fencing: {other:?}", node.id()),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let seen = tokio::time::timeout(PATIENCE, load)
        .await
        .expect("the caller never hangs")
        .expect("load");
    assert!(!seen.failed.is_empty(), "the caller was told: {seen:?}");
    for (_, reason) in &seen.failed {
        assert!(
            matches!(reason, ExitReason::Unreachable(n) if *n == c_id),
            "a declared failure says so: {reason}"
        );
    }
    let handled: HashSet<u64> = HANDLED.lock().expect("h").iter().copied().collect();
    let late: Vec<u64> = seen
        .failed
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| handled.contains(id))
        .collect();
    assert!(
        late.is_empty(),
        "requests reported failed and handled anyway: {late:?}"
    );
    assert!(
        !handled.contains(&u64::MAX),
        "nothing handled after fencing"
    );
    assert_eq!(
        HANDLED.lock().expect("h").len(),
        handled_at_fence,
        "the fenced actor handled nothing more"
    );
    let after: Vec<u64> = HANDLED.lock().expect("h")[handled_when_declared..].to_vec();
    assert!(
        after.is_empty(),
        "handled after c was declared failed (ids from {LOCAL} are c's own caller's): {after:?}"
    );
    println!(
        "answered {}, reported down {}, other {:?}",
        seen.answered.len(),
        seen.failed.len(),
        seen.other
    );

    let _ = end.send(());
    tokio::task::spawn_blocking(move || thread.join().expect("c's thread"))
        .await
        .expect("join");
    for node in [&a, &b] {
        node.shutdown().await;
    }
}
