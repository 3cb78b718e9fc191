//! The local runtime on one node: spawn, names, request/reply and timeouts,
//! fire-and-forget, bounded mailboxes, stop, monitors, panics, timers, hooks,
//! handles inside messages.

mod common;

use std::time::Duration;

use common::{eventually, eventually_async, node};
use mobility::prelude::*;
use tokio::sync::Notify;

/// One gate per test (tests of a binary run in parallel).
static GATES: [Notify; 2] = [Notify::const_new(), Notify::const_new()];
/// Actors whose `on_stop` ran.
static STOPPED: std::sync::Mutex<Vec<ActorId>> = std::sync::Mutex::new(Vec::new());

#[mobile]
#[derive(Default)]
pub struct Counter {
    count: u64,
    log: Vec<String>,
    ticks: u32,
    #[mobile(skip)]
    interval: Option<TimerId>,
}

#[mobile]
impl Counter {
    pub fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }

    pub fn get(&self) -> u64 {
        self.count
    }

    pub fn log(&self) -> Vec<String> {
        self.log.clone()
    }

    pub fn checked_sub(&mut self, n: u64) -> Result<u64, String> {
        self.count = self
            .count
            .checked_sub(n)
            .ok_or_else(|| format!("{} - {n} < 0", self.count))?;
        Ok(self.count)
    }

    pub async fn wait_gate(&mut self, gate: usize) -> u64 {
        GATES[gate].notified().await;
        self.count
    }

    pub fn panic_now(&mut self) -> u64 {
        panic!("asked to panic at {}", self.count)
    }

    pub fn add_later(&mut self, n: u64, ms: u64, ctx: &mut Context<Self>) -> TimerId {
        ctx.send_after(Duration::from_millis(ms)).add(n)
    }

    pub fn cancel(&mut self, timer: TimerId, ctx: &mut Context<Self>) -> bool {
        ctx.cancel_timer(timer)
    }

    pub fn start_ticking(&mut self, ms: u64, ctx: &mut Context<Self>) {
        self.interval = Some(ctx.send_interval(Duration::from_millis(ms)).tick());
    }

    pub fn tick(&mut self, ctx: &mut Context<Self>) {
        self.ticks += 1;
        if self.ticks == 3 {
            if let Some(timer) = self.interval.take() {
                ctx.cancel_timer(timer);
            }
        }
    }

    pub fn ticks(&self) -> u32 {
        self.ticks
    }

    pub fn quit(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }

    pub fn me(&self, ctx: &mut Context<Self>) -> Handle<Counter> {
        ctx.handle().clone()
    }

    #[mobile(on_start)]
    fn started(&mut self) {
        self.log.push("start".into());
    }

    #[mobile(on_stop)]
    fn stopping(&mut self, ctx: &mut Context<Self>) {
        STOPPED.lock().expect("lock").push(ctx.id());
    }
}

/// Holds a handle to another actor in its state and calls it.
#[mobile]
pub struct Relay {
    target: Option<Handle<Counter>>,
}

#[mobile]
impl Relay {
    pub fn set(&mut self, target: Handle<Counter>) {
        self.target = Some(target);
    }

    pub async fn relay_add(&mut self, n: u64) -> Result<u64, Error> {
        match &self.target {
            Some(target) => target.add(n).await,
            None => Err(Error::Config("no target".into())),
        }
    }
}

#[mobile]
#[derive(Default)]
pub struct Other {
    x: u8,
}

#[mobile]
impl Other {
    pub fn x(&self) -> u8 {
        self.x
    }
}

#[tokio::test]
async fn request_reply_tell_and_result_handlers() {
    let node = node("solo").await;
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    assert_eq!(
        counter.log().await.expect("log"),
        vec!["start".to_string()],
        "on_start ran first"
    );
    assert_eq!(counter.add(2).await, Ok(2));
    counter.tell().add(3).expect("tell");
    assert_eq!(counter.get().await, Ok(5));
    assert_eq!(counter.checked_sub(1).await, Ok(Ok(4)));
    assert_eq!(
        counter.checked_sub(10).await,
        Ok(Err("4 - 10 < 0".to_string()))
    );
    let same = counter.me().await.expect("own handle");
    assert_eq!(same, counter);
}

#[tokio::test]
async fn names_are_unique_and_typed() {
    let node = node("solo").await;
    let counter = node
        .spawn_named("counter", Counter::default())
        .await
        .expect("spawn");
    let err = node
        .spawn_named("counter", Counter::default())
        .await
        .expect_err("taken");
    assert_eq!(
        err,
        Error::NameTaken {
            name: "counter".into(),
            owner: counter.id()
        }
    );
    assert_eq!(
        node.lookup::<Counter>("counter").await.expect("found").id(),
        counter.id()
    );
    match node.lookup::<Other>("counter").await {
        Err(Error::WrongType {
            expected, found, ..
        }) => {
            assert!(
                expected.ends_with("Other") && found.ends_with("Counter"),
                "{expected} / {found}"
            );
        }
        other => panic!("expected a wrong-type error, got {other:?}"),
    }
    assert!(matches!(
        node.lookup::<Counter>("nobody").await,
        Err(Error::NameNotFound { .. })
    ));
    counter.stop().await.expect("stop");
    eventually_async("the name is released", || async {
        node.lookup::<Counter>("counter").await.is_err()
    })
    .await;
    node.spawn_named("counter", Counter::default())
        .await
        .expect("name free again");
}

#[tokio::test]
async fn timeouts_default_and_per_call() {
    let node = Node::builder()
        .id("solo")
        .request_timeout(Duration::from_millis(200))
        .start()
        .await
        .expect("start");
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    let err = counter
        .wait_gate(0)
        .await
        .expect_err("gate closed: times out");
    assert_eq!(
        err,
        Error::Timeout {
            actor: counter.id(),
            after: Duration::from_millis(200)
        }
    );
    // The actor is still blocked on the gate; a per-call timeout applies too.
    let quick = counter.with_timeout(Duration::from_millis(50));
    assert!(
        matches!(quick.get().await, Err(Error::Timeout { after, .. }) if after == Duration::from_millis(50))
    );
    GATES[0].notify_one();
    // The timed-out request was still handled; everything after it too.
    assert_eq!(
        counter.with_timeout(Duration::from_secs(10)).add(1).await,
        Ok(1)
    );
}

#[tokio::test]
async fn bounded_mailbox_reports_full_instead_of_blocking() {
    let node = Node::builder()
        .id("solo")
        .mailbox_capacity(4)
        .start()
        .await
        .expect("start");
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    let blocked = {
        let counter = counter.clone();
        tokio::spawn(async move {
            counter
                .with_timeout(Duration::from_secs(30))
                .wait_gate(1)
                .await
        })
    };
    let mut accepted = 0u64;
    eventually(
        "the mailbox fills behind the blocked actor",
        || match counter.tell().add(1) {
            Ok(()) => {
                accepted += 1;
                false
            }
            Err(Error::MailboxFull { capacity: 4, .. }) => true,
            Err(other) => panic!("unexpected error: {other}"),
        },
    )
    .await;
    GATES[1].notify_one();
    blocked.await.expect("join").expect("gate opened");
    assert_eq!(
        counter.get().await,
        Ok(accepted),
        "every accepted message was handled"
    );
    counter.tell().add(1).expect("room again");
}

#[tokio::test]
async fn stop_monitor_and_death_is_visible() {
    let node = node("solo").await;
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    let monitor = counter.monitor();
    counter.quit().await.expect("quit");
    assert_eq!(monitor.await, ExitReason::Stopped);
    assert!(
        STOPPED.lock().expect("lock").contains(&counter.id()),
        "on_stop ran before monitors fired"
    );
    assert_eq!(
        counter.get().await,
        Err(Error::ActorDown {
            actor: counter.id(),
            reason: ExitReason::Stopped
        })
    );
    assert!(counter.tell().add(1).is_err());
    assert_eq!(
        counter.monitor().await,
        ExitReason::Stopped,
        "monitoring a dead actor resolves at once"
    );
    assert!(node.hosted().is_empty());
}

#[tokio::test]
async fn a_panic_ends_only_that_actor() {
    let node = node("solo").await;
    let bad = node.spawn(Counter::default()).await.expect("spawn");
    let good = node.spawn(Counter::default()).await.expect("spawn");
    bad.add(7).await.expect("add");
    let monitor = bad.monitor();
    let queued_behind = bad.tell().add(1);
    assert!(queued_behind.is_ok());
    let err = bad.panic_now().await.expect_err("panics");
    assert!(
        matches!(
            err,
            Error::ActorDown {
                reason: ExitReason::Panicked(_),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        monitor.await,
        ExitReason::Panicked("asked to panic at 8".into())
    );
    assert!(matches!(bad.get().await, Err(Error::ActorDown { .. })));
    assert_eq!(good.add(1).await, Ok(1), "the node and other actors go on");
}

#[tokio::test]
async fn timers_one_shot_interval_and_cancel() {
    let node = node("solo").await;
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    let cancelled = counter.add_later(100, 50).await.expect("arm");
    assert_eq!(counter.cancel(cancelled).await, Ok(true));
    counter.add_later(5, 20).await.expect("arm");
    eventually_async("the one-shot fired", || async {
        counter.get().await == Ok(5)
    })
    .await;
    counter.start_ticking(10).await.expect("interval");
    eventually_async("three ticks", || async { counter.ticks().await == Ok(3) }).await;
    // The tick handler cancelled the interval at 3: it stays at 3 while a
    // later one-shot (armed after, due after several periods) fires.
    counter.add_later(1, 60).await.expect("arm");
    eventually_async("the later one-shot fired", || async {
        counter.get().await == Ok(6)
    })
    .await;
    assert_eq!(counter.ticks().await, Ok(3));
    assert_eq!(
        counter.cancel(cancelled).await,
        Ok(false),
        "already cancelled"
    );
}

#[tokio::test]
async fn handles_travel_inside_messages_and_state() {
    let node = node("solo").await;
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    let relay = node.spawn(Relay { target: None }).await.expect("spawn");
    relay.set(counter.clone()).await.expect("set");
    assert_eq!(relay.relay_add(4).await, Ok(Ok(4)));
    assert_eq!(counter.get().await, Ok(4));
}

#[test]
fn a_handle_bound_outside_any_runtime_works() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (a, b, counter) = runtime.block_on(async {
        let nodes = common::linked(&["a", "b"]).await;
        let counter = nodes[0].spawn(Counter::default()).await.expect("spawn");
        (nodes[0].clone(), nodes[1].clone(), counter)
    });
    // A plain thread, no runtime context: binding must not panic.
    let bound = std::thread::spawn(move || b.bind(&counter).expect("bind"))
        .join()
        .expect("no panic outside a runtime");
    assert_eq!(runtime.block_on(bound.add(2)), Ok(2));
    runtime.block_on(a.shutdown());
}

#[tokio::test]
async fn calls_that_fail_at_once_do_not_hog_the_thread() {
    let node = node("a").await;
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    node.shutdown().await;
    // A tight loop of failing calls on a current-thread runtime: another
    // task must still get to run.
    let other = tokio::spawn(async { 7 });
    let mut failures = 0u32;
    while !other.is_finished() {
        assert!(counter.add(1).await.is_err());
        failures += 1;
        assert!(failures < 1_000_000, "the other task never ran");
    }
    assert_eq!(other.await.expect("ran"), 7);
}
