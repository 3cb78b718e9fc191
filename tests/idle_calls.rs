//! Requests to an idle actor run on the caller's own task (plain `fn`
//! handlers only), and nothing else about a call changes: order with the
//! caller's earlier messages, panics, stops, moves, deferred replies.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{eventually_async, linked, node};
use mobility::prelude::*;
use mobility::{Fault, FaultDirection, FaultStep};
use tokio::sync::Notify;

tokio::task_local! {
    /// Set by a test around its calls: seen by a handler only if it runs
    /// on the caller's task.
    static CALLER: u32;
}

static GATE: Notify = Notify::const_new();

/// Notes numbered messages per sender and counts any out of order.
#[mobile]
#[derive(Default)]
pub struct Ledger {
    next: HashMap<u32, u64>,
    out_of_order: u64,
    waiting: Vec<DeferredReply<u64>>,
}

#[mobile]
impl Ledger {
    /// Message `n` of `sender`; returns `n` and whether it ran on the
    /// caller's task.
    pub fn note(&mut self, sender: u32, n: u64) -> (u64, bool) {
        let next = self.next.entry(sender).or_default();
        if *next != n {
            self.out_of_order += 1;
        }
        *next = n + 1;
        (n, CALLER.try_with(|_| ()).is_ok())
    }

    pub fn report(&self) -> (HashMap<u32, u64>, u64) {
        (self.next.clone(), self.out_of_order)
    }

    /// Which caller's task the handler ran on, if any.
    pub fn whose_task(&self) -> Option<u32> {
        CALLER.try_with(|caller| *caller).ok()
    }

    /// The same from an `async` handler: always through the mailbox.
    pub async fn whose_task_async(&self) -> Option<u32> {
        CALLER.try_with(|caller| *caller).ok()
    }

    pub async fn hold(&self) {
        GATE.notified().await;
    }

    pub fn boom(&mut self) -> u64 {
        let caller = CALLER.try_with(|caller| *caller).ok();
        panic!("boom on the task of {caller:?}")
    }

    pub fn quit(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }

    pub fn go(&mut self, to: NodeId, ctx: &mut Context<Self>) {
        ctx.migrate_to(to);
    }

    pub fn wait(&mut self, ctx: &mut Context<Self>) -> Reply<u64> {
        self.waiting.push(ctx.defer_reply());
        Reply::Later
    }

    pub fn release(&mut self, value: u64, ctx: &mut Context<Self>) -> usize {
        let waiting = std::mem::take(&mut self.waiting);
        let released = waiting.len();
        for reply in waiting {
            reply.send(ctx, value);
        }
        released
    }
}

#[tokio::test]
async fn a_plain_handler_runs_on_the_callers_task_only_while_the_actor_is_idle() {
    let node = node("solo").await;
    let ledger = node.spawn(Ledger::default()).await.expect("spawn");
    // Whatever the cell is doing right after the spawn, it ends up idle.
    eventually_async("the idle actor runs a plain handler here", || {
        CALLER.scope(7, async { ledger.whose_task().await == Ok(Some(7)) })
    })
    .await;
    assert_eq!(
        CALLER.scope(7, ledger.whose_task_async()).await,
        Ok(None),
        "an async handler runs on the actor's own task"
    );

    // A busy actor: the call waits in the mailbox and runs on its task.
    ledger.tell().hold().expect("tell");
    let queued = CALLER
        .scope(8, async {
            // Made (and queued behind the hold) before the gate opens.
            let call = ledger.whose_task();
            GATE.notify_one();
            call.await
        })
        .await;
    assert_eq!(queued, Ok(None));
    node.shutdown().await;
}

/// Senders on several worker threads mix fire-and-forget and requests:
/// some requests run on the caller's task, some wait in the mailbox, and
/// every sender's messages are still handled once each, in its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_tells_and_requests_keep_each_senders_order() {
    const SENDERS: u32 = 4;
    const MESSAGES: u64 = 5_000;
    let node = node("solo").await;
    let ledger = node.spawn(Ledger::default()).await.expect("spawn");
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(CALLER.scope(sender, async move {
            let mut here = 0u64;
            for n in 0..MESSAGES {
                // A pattern per sender so that runs of tells, runs of
                // requests and every switch between them all occur.
                if (n * u64::from(sender + 1)) % 7 < 3 {
                    ledger.tell().note(sender, n).expect("tell");
                } else {
                    let (handled, on_this_task) = ledger.note(sender, n).await.expect("note");
                    assert_eq!(handled, n);
                    here += u64::from(on_this_task);
                }
            }
            here
        })));
    }
    let mut on_callers_tasks = 0;
    for task in tasks {
        on_callers_tasks += task.await.expect("sender");
    }
    // Both paths were taken (each request after a tell takes the mailbox).
    assert!(on_callers_tasks > 0, "no request ran on its caller's task");
    let (next, out_of_order) = ledger.report().await.expect("report");
    assert_eq!(out_of_order, 0, "a sender's messages were reordered");
    for sender in 0..SENDERS {
        assert_eq!(next.get(&sender), Some(&MESSAGES), "sender {sender}");
    }
    node.shutdown().await;
}

#[tokio::test]
async fn a_panic_on_the_callers_task_ends_only_that_actor() {
    let node = node("solo").await;
    let bad = node.spawn(Ledger::default()).await.expect("spawn");
    let good = node.spawn(Ledger::default()).await.expect("spawn");
    let monitor = bad.monitor();
    eventually_async("the actor is idle", || {
        CALLER.scope(1, async { bad.whose_task().await == Ok(Some(1)) })
    })
    .await;
    let err = CALLER
        .scope(1, async { bad.boom().await.expect_err("panics") })
        .await;
    let reason = ExitReason::Panicked("boom on the task of Some(1)".into());
    assert_eq!(
        err,
        Error::ActorDown {
            actor: bad.id(),
            reason: reason.clone()
        }
    );
    assert_eq!(monitor.await, reason);
    assert!(matches!(bad.note(0, 0).await, Err(Error::ActorDown { .. })));
    assert!(good.note(0, 0).await.is_ok(), "the node and others go on");
    node.shutdown().await;
}

#[tokio::test]
async fn a_stop_or_a_move_asked_on_the_callers_task_is_carried_out() {
    let nodes = linked(&["a", "b"]).await;
    let ledger = nodes[0].spawn(Ledger::default()).await.expect("spawn");
    eventually_async("the actor is idle", || {
        CALLER.scope(1, async { ledger.whose_task().await == Ok(Some(1)) })
    })
    .await;
    ledger.note(0, 0).await.expect("note");
    CALLER
        .scope(1, ledger.go(nodes[1].id().clone()))
        .await
        .expect("asked to move");
    eventually_async("the actor moved to b", || async {
        ledger.location() == *nodes[1].id() && ledger.note(0, 1).await.is_ok_and(|(n, _)| n == 1)
    })
    .await;
    let (next, out_of_order) = ledger.report().await.expect("report");
    assert_eq!((next.get(&0), out_of_order), (Some(&2), 0));

    // On b, through a handle of b: idle there too, and asked to stop.
    let there = nodes[1].bind(&ledger).expect("bind");
    eventually_async("the actor is idle on b", || {
        CALLER.scope(2, async { there.whose_task().await == Ok(Some(2)) })
    })
    .await;
    let monitor = there.monitor();
    CALLER.scope(2, there.quit()).await.expect("quit");
    assert_eq!(monitor.await, ExitReason::Stopped);
    assert_eq!(
        there.note(0, 2).await,
        Err(Error::ActorDown {
            actor: ledger.id(),
            reason: ExitReason::Stopped
        })
    );
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn a_reply_deferred_on_the_callers_task_is_answered_later() {
    let node = node("solo").await;
    // No explicit timeout: a call with one is never run on the caller's task.
    let ledger = node.spawn(Ledger::default()).await.expect("spawn");
    eventually_async("the actor is idle", || {
        CALLER.scope(1, async { ledger.whose_task().await == Ok(Some(1)) })
    })
    .await;
    let waiter = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.wait().await }
    });
    eventually_async("the waiting call was taken, then released", || async {
        ledger.release(42).await == Ok(1)
    })
    .await;
    assert_eq!(waiter.await.expect("join"), Ok(42));

    // A deferred reply that never comes ends the wait at the caller's
    // timeout.
    let quick = ledger.with_timeout(Duration::from_millis(50));
    assert_eq!(
        quick.wait().await,
        Err(Error::Timeout {
            actor: ledger.id(),
            after: Duration::from_millis(50)
        })
    );
    assert_eq!(
        ledger.release(7).await,
        Ok(1),
        "the late reply goes nowhere"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_node_can_keep_every_handler_on_its_actors_task() {
    let node = Node::builder()
        .id("solo")
        .calls_on_caller_task(false)
        .start()
        .await
        .expect("start");
    let ledger = node.spawn(Ledger::default()).await.expect("spawn");
    // The pattern that runs on the caller's task on a default node (see the
    // first test): here every call goes through the mailbox.
    for _ in 0..100 {
        assert_eq!(
            CALLER.scope(3, async { ledger.whose_task().await }).await,
            Ok(None)
        );
    }
    node.shutdown().await;
}

/// After a move here, messages this node's sender sent during the freeze
/// come back from the old location after the commit: a later request of
/// that sender must wait for them, not run ahead on its own task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waits_for_its_senders_messages_still_on_their_way_after_a_move() {
    let nodes = linked(&["a", "b", "c"]).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let at_b = b.spawn(Ledger::default()).await.expect("spawn");
    let from_a = a.bind(&at_b).expect("bind");
    // A long freeze at b (the prepare reaches a late), and what b forwards
    // to a after the commit comes later still.
    a.fault_inject(
        FaultStep::Prepare,
        FaultDirection::Incoming,
        None,
        Fault::Delay(Duration::from_millis(100)),
        1,
    );
    a.fault_inject(
        FaultStep::Deliver,
        FaultDirection::Incoming,
        Some(b.id()),
        Fault::Stall(Duration::from_millis(400)),
        1,
    );
    let migration = tokio::spawn({
        let (b, at_b, to) = (b.clone(), at_b.clone(), a.id().clone());
        async move { b.migrate(&at_b, to).await }
    });
    // a's sender tells all through the move: some reach b while it is
    // frozen, and b forwards those back to a.
    let mut sent = 0u64;
    let mut ticks = common::pace(Duration::from_millis(1));
    while !migration.is_finished() {
        from_a.tell().note(0, sent).expect("tell");
        sent += 1;
        ticks.tick().await;
    }
    let report = migration.await.expect("join").expect("moved to a");
    assert!(
        report.forwarded_messages > 0,
        "some of a's messages arrived during the freeze"
    );
    // Another sender's message is handled at a first (the arrival's first
    // message), so the actor is idle at a while a's are still stalled.
    let from_c = c.bind(&from_a).expect("bind");
    assert_eq!(from_c.note(1, 0).await.expect("note").0, 0);
    let (n, _) = from_a.note(0, sent).await.expect("note");
    assert_eq!(n, sent);
    let (next, out_of_order) = from_a.report().await.expect("report");
    assert_eq!(out_of_order, 0, "a's request overtook its own messages");
    assert_eq!(next.get(&0), Some(&(sent + 1)));
    for node in &nodes {
        node.shutdown().await;
    }
}

/// Takes `ms` of wall time on whatever thread runs it.
#[mobile]
#[derive(Default)]
pub struct Slow {
    handled: u64,
}

#[mobile]
impl Slow {
    pub fn take(&mut self, ms: u64) -> u64 {
        // The handler's own work, the thing under test (a plain handler
        // that blocks its thread): not a wait for anything.
        std::thread::sleep(Duration::from_millis(ms));
        self.handled += 1;
        self.handled
    }

    pub fn handled(&self) -> u64 {
        self.handled
    }

    pub fn whose_task(&self) -> Option<u32> {
        CALLER.try_with(|caller| *caller).ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_a_timeout_returns_by_it_even_from_a_plain_handler() {
    let node = node("a").await;
    let slow = node.spawn(Slow::default()).await.expect("spawn");
    // Idle: plain calls without a timeout now run on the caller's task.
    eventually_async("the actor is idle", || {
        CALLER.scope(1, async { slow.whose_task().await == Ok(Some(1)) })
    })
    .await;
    let started = std::time::Instant::now();
    let answer = slow
        .with_timeout(Duration::from_millis(100))
        .take(1_500)
        .await;
    let waited = started.elapsed();
    assert!(
        matches!(answer, Err(Error::Timeout { after, .. }) if after == Duration::from_millis(100)),
        "{answer:?}"
    );
    // Well before the handler's 1.5 s: the wait was cut at the timeout.
    assert!(waited < Duration::from_millis(1_000), "waited {waited:?}");
    // The timed-out request stayed queued and was handled after all.
    eventually_async("the timed-out request handled", || async {
        slow.handled().await == Ok(1)
    })
    .await;
    // Without an explicit timeout the same handler runs on the caller's
    // task again once the actor is idle, to its end.
    eventually_async("the actor is idle again", || {
        CALLER.scope(1, async { slow.whose_task().await == Ok(Some(1)) })
    })
    .await;
    assert_eq!(slow.take(10).await, Ok(2));
}
