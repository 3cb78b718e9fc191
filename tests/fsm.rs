//! Mobile state machines: handlers that depend on the state, enter actions,
//! state / event / named timeouts, postponed messages and deferred replies,
//! on one node and across migrations; and a property test of a state machine
//! against a model.

mod common;

use std::time::{Duration, Instant};

use common::{eventually_async, linked, node, wait_for};
use mobility::prelude::*;
use proptest::prelude::*;

/// How late a timer may fire on a loaded 2-core machine.
const LATE: Duration = Duration::from_millis(2000);

/// Every timer that fired, by actor, as the machines report it: read by the
/// tests without sending the actor a message (which would cancel an event
/// timeout), so a test waits for a timer instead of sleeping.
static TIMEOUTS: std::sync::Mutex<Vec<(ActorId, String)>> = std::sync::Mutex::new(Vec::new());

/// The timers of `actor` that fired so far, in order.
fn timeouts_of(actor: ActorId) -> Vec<String> {
    TIMEOUTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(id, _)| *id == actor)
        .map(|(_, what)| what.clone())
        .collect()
}

/// Waits (polling, without messaging the actor) until timer `what` of
/// `actor` fired, failing after `LATE` past `within`.
async fn timeout_fired(actor: ActorId, what: &str, within: Duration) {
    let fired = tokio::time::timeout(
        within + LATE,
        wait_for(&format!("timer {what}"), || {
            timeouts_of(actor).iter().any(|w| w == what)
        }),
    )
    .await;
    assert!(fired.is_ok(), "timer {what} never fired");
}

/// A timer armed after one was cancelled fires; by then the cancelled one
/// would have too, and it must not have.
async fn assert_cancelled_never_fired(m: &Handle<Machine>) {
    m.arm_named("witness".into(), 1300).await.expect("arm");
    timeout_fired(m.id(), "witness", Duration::from_millis(1300)).await;
    assert_eq!(
        timeouts_of(m.id()),
        ["witness"],
        "the cancelled one never fired"
    );
}

/// A machine whose state is an enum: idle, or busy with a job.
#[mobile]
#[derive(Debug, Default)]
pub enum Worker {
    #[default]
    Idle,
    Busy {
        job: u64,
        log: Vec<String>,
    },
    Done {
        log: Vec<String>,
    },
}

/// A struct state machine: the state is the field marked `#[mobile(state)]`.
#[mobile]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Busy,
}

#[mobile]
pub struct Machine {
    #[mobile(state)]
    phase: Phase,
    /// Everything handled and entered, in order.
    log: Vec<String>,
    /// Where and when (ms since arming) timers fired.
    fired: Vec<(String, String)>,
    waiting: Vec<DeferredReply<String>>,
    /// State timeout armed by `on_enter` when entering Busy (0: none).
    busy_timeout_ms: u64,
}

impl Machine {
    fn new(busy_timeout_ms: u64) -> Self {
        Machine {
            phase: Phase::Idle,
            log: Vec::new(),
            fired: Vec::new(),
            waiting: Vec::new(),
            busy_timeout_ms,
        }
    }
}

#[mobile]
impl Machine {
    /// Idle: start working. Busy: postponed until idle again.
    pub fn start(&mut self, job: u64, ctx: &mut Context<Self>) -> Reply<String> {
        match self.phase {
            Phase::Idle => {
                self.log.push(format!("start {job}"));
                self.phase = Phase::Busy;
                Reply::Now(format!("started {job}"))
            }
            Phase::Busy => {
                self.log.push(format!("postpone {job}"));
                ctx.postpone();
                Reply::Later
            }
        }
    }

    pub fn finish(&mut self) -> bool {
        let was_busy = self.phase == Phase::Busy;
        if was_busy {
            self.log.push("finish".into());
            self.phase = Phase::Idle;
        }
        was_busy
    }

    pub fn note(&mut self, n: u64) {
        self.log.push(format!("note {n}"));
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn log(&self) -> Vec<String> {
        self.log.clone()
    }

    pub fn fired(&self) -> Vec<(String, String)> {
        self.fired.clone()
    }

    /// Answers when the machine is next idle after being busy.
    pub fn when_idle(&mut self, ctx: &mut Context<Self>) -> Reply<String> {
        if self.phase == Phase::Idle {
            return Reply::Now("idle already".into());
        }
        self.waiting.push(ctx.defer_reply());
        Reply::Later
    }

    pub fn waiters(&self, ctx: &mut Context<Self>) -> (usize, usize) {
        (self.waiting.len(), ctx.owed_replies())
    }

    /// Forgets to defer: the caller must be told, not left waiting.
    pub fn forgetful(&mut self) -> Reply<u64> {
        Reply::Later
    }

    /// Refuses the waiting callers.
    pub fn refuse_waiters(&mut self, ctx: &mut Context<Self>) {
        for waiter in std::mem::take(&mut self.waiting) {
            waiter.fail(ctx, "no longer waiting");
        }
    }

    pub fn arm_state_timeout(&mut self, ms: u64, ctx: &mut Context<Self>) {
        ctx.set_state_timeout(Duration::from_millis(ms))
            .timeout("state".into());
    }

    pub fn arm_event_timeout(&mut self, ms: u64, ctx: &mut Context<Self>) {
        ctx.set_event_timeout(Duration::from_millis(ms))
            .timeout("event".into());
    }

    pub fn arm_named(&mut self, name: String, ms: u64, ctx: &mut Context<Self>) {
        ctx.start_timer(name.clone(), Duration::from_millis(ms))
            .timeout(name);
    }

    pub fn cancel_named(&mut self, name: String, ctx: &mut Context<Self>) -> bool {
        ctx.cancel_timer_named(&name)
    }

    pub fn timers(&self, ctx: &mut Context<Self>) -> usize {
        ctx.pending_timers()
    }

    pub fn timeout(&mut self, what: String, ctx: &mut Context<Self>) {
        if what == "busy" {
            self.phase = Phase::Idle;
        }
        TIMEOUTS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((ctx.id(), what.clone()));
        self.fired.push((what, ctx.node().id().to_string()));
    }

    pub fn send_me(&mut self, to: NodeId, ctx: &mut Context<Self>) {
        ctx.migrate_to(to);
    }

    #[mobile(on_enter)]
    fn entered(&mut self, ctx: &mut Context<Self>) {
        self.log.push(format!("enter {:?}", self.phase));
        match self.phase {
            Phase::Busy if self.busy_timeout_ms > 0 => {
                ctx.set_state_timeout(Duration::from_millis(self.busy_timeout_ms))
                    .timeout("busy".into());
            }
            Phase::Idle => {
                let here = ctx.node().id().to_string();
                for waiter in std::mem::take(&mut self.waiting) {
                    waiter.send(ctx, format!("idle on {here}"));
                }
            }
            Phase::Busy => {}
        }
    }
}

#[mobile]
impl Worker {
    pub fn begin(&mut self, job: u64, ctx: &mut Context<Self>) -> Reply<u64> {
        match self {
            Worker::Idle => {
                *self = Worker::Busy {
                    job,
                    log: vec![format!("begin {job}")],
                };
                Reply::Now(job)
            }
            Worker::Busy { .. } => {
                ctx.postpone();
                Reply::Later
            }
            Worker::Done { .. } => Reply::Now(0),
        }
    }

    pub fn done(&mut self) -> Vec<String> {
        if let Worker::Busy { job, log } = self {
            let mut log = std::mem::take(log);
            log.push(format!("done {job}"));
            *self = Worker::Done { log: log.clone() };
            return log;
        }
        Vec::new()
    }

    pub fn describe(&self) -> String {
        match self {
            Worker::Idle => "idle".into(),
            Worker::Busy { job, .. } => format!("busy {job}"),
            Worker::Done { log } => format!("done {}", log.len()),
        }
    }
}

#[tokio::test]
async fn enum_actor_is_a_state_machine_and_postpones_until_its_variant_changes() {
    let a = node("fsm-enum").await;
    let worker = a.spawn(Worker::default()).await.expect("spawn");
    assert_eq!(worker.begin(1).await.expect("begin"), 1);
    // Busy: this request is postponed; its caller waits.
    let second = {
        let worker = worker.clone();
        tokio::spawn(async move { worker.begin(2).await })
    };
    eventually_async("the second begin is handled (postponed)", || async {
        worker.describe().await.expect("describe") == "busy 1"
    })
    .await;
    assert!(!second.is_finished());
    // The variant changes to Done: the postponed begin comes back (and
    // answers 0 in Done).
    assert_eq!(
        worker.done().await.expect("done"),
        vec!["begin 1", "done 1"]
    );
    assert_eq!(second.await.expect("join").expect("postponed reply"), 0);
    assert_eq!(worker.describe().await.expect("describe"), "done 2");
    a.shutdown().await;
}

#[tokio::test]
async fn enter_actions_run_at_start_and_on_every_change_only() {
    let a = node("fsm-enter").await;
    let m = a.spawn(Machine::new(0)).await.expect("spawn");
    m.note(1).await.expect("note");
    assert_eq!(m.start(7).await.expect("start"), "started 7");
    m.note(2).await.expect("note");
    assert!(m.finish().await.expect("finish"));
    assert!(!m.finish().await.expect("finish while idle: no change"));
    assert_eq!(
        m.log().await.expect("log"),
        vec![
            "enter Idle",
            "note 1",
            "start 7",
            "enter Busy",
            "note 2",
            "finish",
            "enter Idle"
        ]
    );
    a.shutdown().await;
}

#[tokio::test]
async fn postponed_messages_come_back_in_order_before_newer_ones() {
    let a = node("fsm-postpone").await;
    let m = a.spawn(Machine::new(0)).await.expect("spawn");
    m.start(1).await.expect("start");
    // Three starts are postponed (fire-and-forget), then a note is handled.
    for job in 2..=4 {
        m.tell().start(job).expect("tell");
    }
    m.tell().note(99).expect("tell");
    // The finish changes the state: start 2 comes back first and makes the
    // machine busy again, so 3 and 4 are postponed once more, and so on.
    m.tell().finish().expect("tell");
    m.tell().note(100).expect("tell");
    for _ in 0..3 {
        m.tell().finish().expect("tell");
    }
    eventually_async("everything handled", || async {
        m.log().await.expect("log").len() >= 24
    })
    .await;
    assert_eq!(
        m.log().await.expect("log"),
        [
            "enter Idle",
            "start 1",
            "enter Busy",
            "postpone 2",
            "postpone 3",
            "postpone 4",
            "note 99",
            "finish",
            "enter Idle",
            "start 2",
            "enter Busy",
            "postpone 3",
            "postpone 4",
            "note 100",
            "finish",
            "enter Idle",
            "start 3",
            "enter Busy",
            "postpone 4",
            "finish",
            "enter Idle",
            "start 4",
            "enter Busy",
            "finish",
            "enter Idle",
        ]
    );
    a.shutdown().await;
}

#[tokio::test]
async fn a_postponed_request_keeps_its_caller_waiting_until_the_state_changes() {
    let a = node("fsm-postpone-call").await;
    let m = a.spawn(Machine::new(0)).await.expect("spawn");
    m.start(1).await.expect("start");
    let call = {
        let m = m.clone();
        tokio::spawn(async move { m.start(2).await })
    };
    eventually_async("the call is postponed", || async {
        m.log()
            .await
            .expect("log")
            .contains(&"postpone 2".to_string())
    })
    .await;
    assert!(!call.is_finished(), "a postponed request is not answered");
    m.finish().await.expect("finish");
    assert_eq!(call.await.expect("join").expect("reply"), "started 2");
    assert_eq!(m.phase().await.expect("phase"), Phase::Busy);
    a.shutdown().await;
}

#[tokio::test]
async fn state_timeout_fires_and_a_state_change_cancels_it() {
    let a = node("fsm-state-timeout").await;
    // on_enter arms a 300 ms state timeout on entering Busy.
    let m = a.spawn(Machine::new(300)).await.expect("spawn");
    let started = Instant::now();
    m.start(1).await.expect("start");
    eventually_async("the busy timeout fires", || async {
        m.phase().await.expect("phase") == Phase::Idle
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(m.fired().await.expect("fired").len(), 1);

    // Busy, and finished before the timeout: it must never fire.
    let m = a.spawn(Machine::new(1000)).await.expect("spawn");
    m.start(2).await.expect("start");
    assert_eq!(m.timers().await.expect("timers"), 1);
    assert!(m.finish().await.expect("finish"));
    assert_eq!(
        m.timers().await.expect("timers"),
        0,
        "cancelled by the change"
    );
    assert_cancelled_never_fired(&m).await;

    // Re-arming replaces: only the second fires.
    m.arm_state_timeout(10_000).await.expect("arm");
    m.arm_state_timeout(50).await.expect("re-arm");
    eventually_async("the re-armed state timeout fires", || async {
        m.fired().await.expect("fired").len() == 2
    })
    .await;
    assert_eq!(timeouts_of(m.id()), ["witness", "state"]);
    assert_eq!(m.timers().await.expect("timers"), 0);
    a.shutdown().await;
}

#[tokio::test]
async fn event_timeout_fires_when_idle_and_any_message_cancels_it() {
    let a = node("fsm-event-timeout").await;
    let m = a.spawn(Machine::new(0)).await.expect("spawn");
    m.arm_event_timeout(1000).await.expect("arm");
    m.note(1).await.expect("any message cancels it");
    assert_eq!(m.timers().await.expect("timers"), 0);
    assert_cancelled_never_fired(&m).await;

    m.arm_event_timeout(100).await.expect("arm");
    let armed = Instant::now();
    // No message meanwhile (a message would cancel it): it fires.
    timeout_fired(m.id(), "event", Duration::from_millis(100)).await;
    assert!(armed.elapsed() >= Duration::from_millis(100), "not early");
    let fired = m.fired().await.expect("fired");
    let whats: Vec<&str> = fired.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(whats, ["witness", "event"], "fired once");
    a.shutdown().await;
}

#[tokio::test]
async fn named_timers_replace_by_name_cancel_by_name_and_survive_state_changes() {
    let a = node("fsm-named").await;
    let m = a.spawn(Machine::new(0)).await.expect("spawn");
    m.arm_named("a".into(), 10_000).await.expect("arm");
    m.arm_named("a".into(), 10_000).await.expect("re-arm a");
    m.arm_named("b".into(), 10_000).await.expect("arm b");
    assert_eq!(
        m.timers().await.expect("timers"),
        2,
        "a replaced, not added"
    );
    m.start(1)
        .await
        .expect("a state change does not cancel named timers");
    m.finish().await.expect("finish");
    assert_eq!(m.timers().await.expect("timers"), 2);
    m.arm_named("a".into(), 100).await.expect("re-arm a, short");
    eventually_async("timer a fires", || async {
        m.fired()
            .await
            .expect("fired")
            .iter()
            .any(|(w, _)| w == "a")
    })
    .await;
    assert!(m.cancel_named("b".into()).await.expect("cancel"));
    assert!(!m.cancel_named("b".into()).await.expect("cancel twice"));
    assert_eq!(m.timers().await.expect("timers"), 0);
    assert_eq!(m.fired().await.expect("fired").len(), 1);
    a.shutdown().await;
}

#[tokio::test]
async fn state_timeout_fires_on_time_on_the_new_node() {
    let nodes = linked(&["fsm-time-a", "fsm-time-b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let m = a.spawn(Machine::new(2000)).await.expect("spawn");
    let armed = Instant::now();
    m.start(1).await.expect("start: arms a 2 s state timeout");
    // The scenario: the move happens 0.8 s into the 2 s state timeout, when
    // a named timer says so.
    m.arm_named("move now".into(), 800).await.expect("arm");
    timeout_fired(m.id(), "move now", Duration::from_millis(800)).await;
    let report = a.migrate(&m, b.id()).await.expect("migrate");
    assert_eq!(report.timers, 1, "the state timeout moved");
    assert!(b.hosts(m.id()));
    // Not early: still busy before the deadline.
    let phase = m.phase().await.expect("phase");
    if armed.elapsed() < Duration::from_millis(1900) {
        assert_eq!(phase, Phase::Busy);
    }
    eventually_async("the moved timeout fires", || async {
        m.phase().await.expect("phase") == Phase::Idle
    })
    .await;
    let after = armed.elapsed();
    assert!(
        after >= Duration::from_millis(2000),
        "fired early: {after:?}"
    );
    assert!(
        after <= Duration::from_millis(2000) + LATE,
        "fired late: {after:?}"
    );
    let fired = m.fired().await.expect("fired");
    assert_eq!(
        fired,
        vec![
            ("move now".to_string(), a.id().to_string()),
            ("busy".to_string(), b.id().to_string())
        ]
    );
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn named_and_event_timers_move_with_their_remaining_time() {
    let nodes = linked(&["fsm-kinds-a", "fsm-kinds-b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let m = a.spawn(Machine::new(0)).await.expect("spawn");
    let armed = Instant::now();
    m.arm_named("n".into(), 1500).await.expect("arm");
    m.arm_event_timeout(1200).await.expect("arm");
    a.migrate(&m, b.id()).await.expect("migrate");
    // No message after the move (one would cancel the event timeout).
    timeout_fired(m.id(), "event", Duration::from_millis(1200)).await;
    timeout_fired(m.id(), "n", Duration::from_millis(1500)).await;
    let fired = m.fired().await.expect("fired");
    let whats: Vec<&str> = fired.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        whats,
        vec!["event", "n"],
        "{:?} after arming",
        armed.elapsed()
    );
    assert!(fired.iter().all(|(_, on)| *on == b.id().to_string()));
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn postponed_messages_move_and_come_back_in_order_on_the_new_node() {
    let nodes = linked(&["fsm-pmove-a", "fsm-pmove-b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let m = a.spawn(Machine::new(0)).await.expect("spawn");
    m.start(1).await.expect("start");
    // A postponed request from a local caller, and postponed tells.
    let call = {
        let m = m.clone();
        tokio::spawn(async move { m.start(2).await })
    };
    eventually_async("the call postponed", || async {
        m.log()
            .await
            .expect("log")
            .contains(&"postpone 2".to_string())
    })
    .await;
    for job in 3..=4 {
        m.tell().start(job).expect("tell");
    }
    a.migrate(&m, b.id()).await.expect("migrate");
    assert!(b.hosts(m.id()));
    assert!(!call.is_finished());
    for _ in 0..4 {
        assert!(m.finish().await.expect("finish"));
    }
    assert_eq!(
        call.await.expect("join").expect("postponed reply"),
        "started 2"
    );
    let log: Vec<String> = m
        .log()
        .await
        .expect("log")
        .into_iter()
        .filter(|l| l.starts_with("start"))
        .collect();
    assert_eq!(log, vec!["start 1", "start 2", "start 3", "start 4"]);
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn deferred_replies_are_answered_after_a_move_to_local_and_remote_callers() {
    let nodes = linked(&["fsm-defer-a", "fsm-defer-b", "fsm-defer-c"]).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let m = a.spawn(Machine::new(0)).await.expect("spawn");
    assert_eq!(m.when_idle().await.expect("now"), "idle already");
    m.start(1).await.expect("start");
    // One caller on the actor's node, one on another node.
    let local = {
        let m = m.clone();
        tokio::spawn(async move { m.when_idle().await })
    };
    let on_c = c.bind(&m).expect("bind on c");
    let remote = tokio::spawn(async move { on_c.when_idle().await });
    eventually_async("both replies deferred", || async {
        m.waiters().await.expect("waiters") == (2, 2)
    })
    .await;
    a.migrate(&m, b.id()).await.expect("migrate");
    assert_eq!(
        m.waiters().await.expect("waiters"),
        (2, 2),
        "owed replies move"
    );
    m.finish().await.expect("finish on b answers them");
    let expected = format!("idle on {}", b.id());
    assert_eq!(local.await.expect("join").expect("local reply"), expected);
    assert_eq!(remote.await.expect("join").expect("remote reply"), expected);
    assert_eq!(m.waiters().await.expect("waiters"), (0, 0));
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn deferred_replies_can_be_refused_and_are_failed_if_the_actor_ends() {
    let a = node("fsm-defer-end").await;
    let m = a.spawn(Machine::new(0)).await.expect("spawn");
    m.start(1).await.expect("start");
    let waiting = |m: &Handle<Machine>| {
        let m = m.clone();
        tokio::spawn(async move { m.when_idle().await })
    };
    let refused = waiting(&m);
    eventually_async("deferred", || async {
        m.waiters().await.expect("waiters").1 == 1
    })
    .await;
    m.refuse_waiters().await.expect("refuse");
    match refused.await.expect("join") {
        Err(Error::Refused { reason, .. }) => assert_eq!(reason, "no longer waiting"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(m.forgetful().await, Err(Error::Refused { .. })));

    let orphan = waiting(&m);
    eventually_async("deferred", || async {
        m.waiters().await.expect("waiters").1 == 1
    })
    .await;
    m.stop().await.expect("stop");
    match orphan.await.expect("join") {
        Err(Error::ActorDown { reason, .. }) => assert_eq!(reason, ExitReason::Stopped),
        other => panic!("expected the actor down, got {other:?}"),
    }
    a.shutdown().await;
}

#[tokio::test]
async fn the_machine_moves_itself_while_busy_and_keeps_everything() {
    let nodes = linked(&["fsm-self-a", "fsm-self-b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let m = a.spawn(Machine::new(0)).await.expect("spawn");
    m.start(1).await.expect("start");
    m.tell().start(2).expect("postponed");
    m.send_me(b.id().clone()).await.expect("send_me");
    eventually_async("moved", || async { b.hosts(m.id()) }).await;
    assert!(m.finish().await.expect("finish"));
    assert_eq!(
        m.phase().await.expect("phase"),
        Phase::Busy,
        "start 2 came back"
    );
    for n in &nodes {
        n.shutdown().await;
    }
}

// ---- property test: the machine against a model ----------------------------

#[derive(Debug, Clone)]
enum Op {
    Start(u64),
    Finish,
    Note(u64),
    Migrate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..100).prop_map(Op::Start),
        3 => Just(Op::Finish),
        2 => (0u64..100).prop_map(Op::Note),
        1 => Just(Op::Migrate),
    ]
}

/// What the machine's log must be after `ops`, by gen_statem's rules: a
/// postponed message comes back, before newer ones, after the next state
/// change; the enter action runs at start and on every change.
fn model(ops: &[Op]) -> Vec<String> {
    let mut busy = false;
    let mut log = vec!["enter Idle".to_string()];
    let mut queue: std::collections::VecDeque<Op> = ops
        .iter()
        .filter(|o| !matches!(o, Op::Migrate))
        .cloned()
        .collect();
    let mut postponed: Vec<Op> = Vec::new();
    while let Some(op) = queue.pop_front() {
        let before = busy;
        match op {
            Op::Start(job) if !busy => {
                log.push(format!("start {job}"));
                busy = true;
            }
            Op::Start(job) => {
                log.push(format!("postpone {job}"));
                postponed.push(Op::Start(job));
            }
            Op::Finish if busy => {
                log.push("finish".into());
                busy = false;
            }
            Op::Finish => {}
            Op::Note(n) => log.push(format!("note {n}")),
            Op::Migrate => {}
        }
        if before != busy {
            for op in postponed.drain(..).rev() {
                queue.push_front(op);
            }
            log.push(format!("enter {}", if busy { "Busy" } else { "Idle" }));
        }
    }
    log
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_state_machine_matches_its_model(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let log = runtime.block_on(async {
            let nodes = linked(&["fsm-prop-a", "fsm-prop-b"]).await;
            let m = nodes[0].spawn(Machine::new(0)).await.expect("spawn");
            let mut here = 0;
            for op in &ops {
                match op {
                    Op::Start(job) => m.tell().start(*job).expect("tell"),
                    Op::Finish => m.tell().finish().expect("tell"),
                    Op::Note(n) => m.tell().note(*n).expect("tell"),
                    Op::Migrate => {
                        here = 1 - here;
                        m.migrate(nodes[here].id().clone().into()).await.expect("migrate");
                    }
                }
            }
            // A last note, then wait until it shows: everything before it
            // has been handled or is postponed.
            m.tell().note(1000).expect("tell");
            eventually_async("the last note", || async {
                m.log().await.expect("log").contains(&"note 1000".to_string())
            })
            .await;
            let log = m.log().await.expect("log");
            for n in &nodes {
                n.shutdown().await;
            }
            log
        });
        let mut expected_ops = ops.clone();
        expected_ops.push(Op::Note(1000));
        prop_assert_eq!(log, model(&expected_ops));
    }
}
