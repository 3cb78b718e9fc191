//! The runtime driven by a hand-written `Actor` impl (what `#[mobile]`
//! generates), so the runtime is tested independently of the macro.

use std::time::Duration;

use mobility::__private::{Calls, HandleCore, MessageSink};
use mobility::{Actor, Context, Error, ExitReason, MigrationFailure, Mobile, Node, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    count: u64,
    last: Option<u64>,
    #[serde(skip)]
    arrivals: u32,
}

#[derive(Debug, Serialize, Deserialize)]
enum CounterMsg {
    Add { n: u64 },
    Numbered { n: u64 },
    Get {},
    Boom {},
    Later { ms: u64, n: u64 },
}

struct CounterCalls {
    core: HandleCore<Counter>,
}

impl Calls<Counter> for CounterCalls {
    fn from_core(core: HandleCore<Counter>) -> Self {
        CounterCalls { core }
    }
    fn core(&self) -> &HandleCore<Counter> {
        &self.core
    }
}

impl CounterCalls {
    async fn add(&self, n: u64) -> Result<u64, Error> {
        self.core.request(CounterMsg::Add { n }).await
    }
    async fn numbered(&self, n: u64) -> Result<Result<u64, String>, Error> {
        self.core.request(CounterMsg::Numbered { n }).await
    }
    async fn get(&self) -> Result<u64, Error> {
        self.core.request(CounterMsg::Get {}).await
    }
    async fn boom(&self) -> Result<(), Error> {
        self.core.request(CounterMsg::Boom {}).await
    }
    async fn later(&self, ms: u64, n: u64) -> Result<(), Error> {
        self.core.request(CounterMsg::Later { ms, n }).await
    }
}

struct CounterTell<S> {
    sink: S,
}

impl<S: MessageSink<Counter>> CounterTell<S> {
    fn add(self, n: u64) -> S::Output {
        self.sink.put(CounterMsg::Add { n })
    }
}

impl Mobile for Counter {
    const FINGERPRINT: u64 = mobility::__private::fingerprint_str("count:u64;last:Option<u64>");
}

impl Actor for Counter {
    type Msg = CounterMsg;
    type Calls = CounterCalls;
    type Tell<S: MessageSink<Self>> = CounterTell<S>;
    const TYPE_TAG: &'static str = "handwritten::Counter";
    const SCHEMA: u64 = <Self as Mobile>::FINGERPRINT;

    fn tell_with<S: MessageSink<Self>>(sink: S) -> CounterTell<S> {
        CounterTell { sink }
    }

    async fn dispatch(&mut self, msg: CounterMsg, ctx: &mut Context<Self>, reply: ReplyTo) {
        match msg {
            CounterMsg::Add { n } => {
                self.count += n;
                reply.send(self.count)
            }
            CounterMsg::Numbered { n } => {
                let expected = self.last.map_or(0, |l| l + 1);
                self.last = Some(n);
                self.count += 1;
                reply.send(if n == expected {
                    Ok(n)
                } else {
                    Err(format!("got {n}, expected {expected}"))
                })
            }
            CounterMsg::Get {} => reply.send(self.count),
            CounterMsg::Boom {} => panic!("boom"),
            CounterMsg::Later { ms, n } => {
                ctx.send_after(Duration::from_millis(ms)).add(n);
                reply.send(())
            }
        }
    }

    async fn on_arrive(&mut self, _ctx: &mut Context<Self>) -> Result<(), String> {
        self.arrivals += 1;
        if self.count == 666 {
            return Err("refusing the number of the beast".into());
        }
        Ok(())
    }
}

mobility::__private::inventory::submit! { mobility::__private::ActorType::of::<Counter>("Counter") }

async fn two_nodes() -> (Node, Node) {
    let a = Node::builder().id("a").start().await.expect("a starts");
    let b = Node::builder().id("b").start().await.expect("b starts");
    a.connect_in_process(&b).expect("link");
    (a, b)
}

#[tokio::test]
async fn request_reply_and_tell() {
    let node = Node::builder().id("solo").start().await.expect("start");
    let counter = node.spawn(Counter::default()).await.expect("spawn");
    assert_eq!(counter.add(2).await, Ok(2));
    counter.tell().add(3).expect("tell");
    assert_eq!(counter.get().await, Ok(5));
}

#[tokio::test]
async fn migrate_and_back_keeps_state_and_handle() {
    let (a, b) = two_nodes().await;
    let counter = a
        .spawn_named("counter", Counter::default())
        .await
        .expect("spawn");
    counter.add(5).await.expect("add");
    let report = a.migrate(&counter, b.id()).await.expect("migrate to b");
    assert_eq!(
        (report.from.as_str(), report.to.as_str(), report.epoch),
        ("a", "b", 1)
    );
    assert!(b.hosts(counter.id()) && !a.hosts(counter.id()));
    assert_eq!(
        counter.add(1).await,
        Ok(6),
        "the old handle works through a's forwarder"
    );
    let on_b = b
        .lookup::<Counter>("counter")
        .await
        .expect("name registered at b");
    assert_eq!(on_b.get().await, Ok(6));
    a.migrate(&counter, a.id()).await.expect("back to a");
    assert!(a.hosts(counter.id()) && !b.hosts(counter.id()));
    assert_eq!(on_b.add(1).await, Ok(7));
}

#[tokio::test]
async fn failed_arrival_leaves_the_actor_home() {
    let (a, b) = two_nodes().await;
    let counter = a.spawn(Counter::default()).await.expect("spawn");
    counter.add(666).await.expect("add");
    let err = a
        .migrate(&counter, b.id())
        .await
        .expect_err("on_arrive refuses");
    assert!(err.to_string().contains("number of the beast"), "{err}");
    assert!(a.hosts(counter.id()) && !b.hosts(counter.id()));
    assert_eq!(counter.add(1).await, Ok(667));
}

#[tokio::test]
async fn panic_ends_only_that_actor() {
    let node = Node::builder().id("solo").start().await.expect("start");
    let bad = node.spawn(Counter::default()).await.expect("spawn");
    let good = node.spawn(Counter::default()).await.expect("spawn");
    let monitor = bad.monitor();
    assert!(matches!(bad.boom().await, Err(Error::ActorDown { .. })));
    assert_eq!(monitor.await, ExitReason::Panicked("boom".into()));
    assert!(matches!(
        bad.get().await,
        Err(Error::ActorDown {
            reason: ExitReason::Panicked(_),
            ..
        })
    ));
    assert_eq!(good.add(1).await, Ok(1));
}

#[tokio::test]
async fn timers_move_with_the_actor() {
    let (a, b) = two_nodes().await;
    let counter = a.spawn(Counter::default()).await.expect("spawn");
    counter.later(300, 10).await.expect("arm");
    a.migrate(&counter, b.id()).await.expect("migrate");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while counter.get().await != Ok(10) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timer never fired at b"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_round_trips_under_load() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (a, b) = two_nodes().await;
    let counter = a.spawn(Counter::default()).await.expect("spawn");
    let sender = counter.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = stop.clone();
    let load = tokio::spawn(async move {
        let mut n = 0u64;
        while !stop_flag.load(Ordering::Relaxed) {
            match sender.numbered(n).await {
                Ok(Ok(got)) => assert_eq!(got, n),
                Ok(Err(order)) => panic!("order broken: {order}"),
                Err(e) => panic!("request {n} failed: {e}"),
            }
            n += 1;
        }
        n
    });
    for i in 0..1000 {
        let dest = if counter.location() == *a.id() {
            b.id()
        } else {
            a.id()
        };
        match a.migrate(&counter, dest).await {
            Ok(_) => {}
            // The counter refuses to arrive anywhere at exactly 666, which
            // the load passes through: a refused move leaves it where it was.
            Err(Error::Migration {
                failure: MigrationFailure::ArriveFailed(why),
                ..
            }) if why.contains("beast") => {}
            Err(e) => panic!("move {i}: {e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent = load.await.expect("sender finished cleanly");
    assert_eq!(
        counter.get().await,
        Ok(sent),
        "every request handled exactly once"
    );
    assert!(
        sent > 100,
        "the sender ran during the migrations ({sent} requests)"
    );
}

/// A type this binary never registers: no destination can rebuild it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Unregistered {
    value: u64,
}

/// Shares `Counter`'s tag but not its schema: a build that disagrees.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CounterV2 {
    count: u64,
    extra: String,
}

macro_rules! plain_actor {
    ($ty:ident, $calls:ident, $tag:expr, $schema:expr) => {
        struct $calls {
            core: HandleCore<$ty>,
        }
        impl Calls<$ty> for $calls {
            fn from_core(core: HandleCore<$ty>) -> Self {
                $calls { core }
            }
            fn core(&self) -> &HandleCore<$ty> {
                &self.core
            }
        }
        impl $calls {
            async fn get(&self) -> Result<u64, Error> {
                self.core.request(()).await
            }
        }
        impl Mobile for $ty {
            const FINGERPRINT: u64 = $schema;
        }
        impl Actor for $ty {
            type Msg = ();
            type Calls = $calls;
            type Tell<S: MessageSink<Self>> = S;
            const TYPE_TAG: &'static str = $tag;
            const SCHEMA: u64 = $schema;
            fn tell_with<S: MessageSink<Self>>(sink: S) -> S {
                sink
            }
            async fn dispatch(&mut self, _: (), _: &mut Context<Self>, reply: ReplyTo) {
                reply.send(1u64)
            }
        }
    };
}

plain_actor!(
    Unregistered,
    UnregisteredCalls,
    "handwritten::Unregistered",
    1
);
plain_actor!(CounterV2, CounterV2Calls, "handwritten::Counter", 2);

#[tokio::test]
async fn unknown_type_is_refused_and_the_actor_stays() {
    let (a, b) = two_nodes().await;
    let actor = a.spawn(Unregistered { value: 7 }).await.expect("spawn");
    let err = a
        .migrate(&actor, b.id())
        .await
        .expect_err("b cannot rebuild it");
    let text = err.to_string();
    assert!(
        text.contains("does not know actor type \"handwritten::Unregistered\""),
        "{text}"
    );
    assert!(
        text.contains("handwritten::Counter"),
        "lists the known types: {text}"
    );
    assert!(a.hosts(actor.id()) && !b.hosts(actor.id()));
    assert_eq!(actor.get().await, Ok(1));
}

#[tokio::test]
async fn schema_mismatch_is_refused_and_the_actor_stays() {
    let (a, b) = two_nodes().await;
    let actor = a.spawn(CounterV2::default()).await.expect("spawn");
    let err = a.migrate(&actor, b.id()).await.expect_err("schemas differ");
    assert!(
        matches!(
            &err,
            Error::Migration { failure: mobility::migration::MigrationFailure::SchemaMismatch { tag, .. }, .. }
                if tag == "handwritten::Counter"
        ),
        "{err}"
    );
    assert!(a.hosts(actor.id()) && !b.hosts(actor.id()));
    assert_eq!(actor.get().await, Ok(1));
}

#[tokio::test]
async fn migrating_to_an_unlinked_node_fails_cleanly() {
    let a = Node::builder().id("a").start().await.expect("a");
    let counter = a.spawn(Counter::default()).await.expect("spawn");
    counter.add(3).await.expect("add");
    let err = a
        .migrate(&counter, "nowhere".parse::<mobility::NodeId>().expect("id"))
        .await;
    assert!(
        matches!(
            &err,
            Err(Error::Migration {
                phase: mobility::MigrationPhase::Validate,
                ..
            })
        ),
        "{err:?}"
    );
    let err = a
        .migrate(&counter, a.id())
        .await
        .expect_err("already there");
    assert!(err.to_string().contains("already on node a"), "{err}");
    assert_eq!(counter.get().await, Ok(3));
}
