//! Rolling upgrades at the registry: a snapshot encoded by an older version
//! of an actor type is accepted, checked against the fingerprint of that
//! version's state and upgraded through the chain of `From`s into the
//! current actor; newer, unknown and mismatching versions are refused.
//! (One binary cannot register two versions of one tag as actors, so the
//! older versions' snapshots are encoded here from their declared states,
//! as an older build encodes them; `tests/upgrade_processes.rs` runs two
//! builds.)

use crate::api::actor::{Actor, Mobile};
use crate::node::registry::Registry;
use crate::proto::id::NodeId;
use crate::proto::migration::{MigrationFailure, Snapshot};

const TAG: &str = "upgrade-tests.counter";

/// Version 1: a `u32` count.
#[crate::mobile(previous_of = Counter, version = 1)]
pub(crate) struct CounterV1 {
    count: u32,
}

impl From<CounterV1> for CounterV2 {
    fn from(old: CounterV1) -> Self {
        CounterV2 {
            count: u64::from(old.count),
        }
    }
}

/// Version 2: a `u64` count.
#[crate::mobile(previous_of = Counter, version = 2)]
pub(crate) struct CounterV2 {
    count: u64,
}

impl From<CounterV2> for Counter {
    fn from(old: CounterV2) -> Self {
        Counter {
            count: old.count,
            doubled: old.count * 2,
        }
    }
}

/// Version 3 (current): adds a field computed by the upgrade.
#[crate::mobile]
pub(crate) struct Counter {
    count: u64,
    doubled: u64,
}

#[crate::mobile(tag = "upgrade-tests.counter", version = 3)]
impl Counter {
    pub(crate) fn get(&self) -> u64 {
        self.count
    }
}

/// An actor at version 2 that accepts no older one.
#[crate::mobile]
pub(crate) struct Plain {
    n: u64,
}

#[crate::mobile(tag = "upgrade-tests.plain", version = 2)]
impl Plain {
    pub(crate) fn n(&self) -> u64 {
        self.n
    }
}

/// Version 1 of an actor whose upgrade panics.
#[crate::mobile(previous_of = Panicky, version = 1)]
pub(crate) struct PanickyV1 {
    n: u64,
}

impl From<PanickyV1> for Panicky {
    fn from(_: PanickyV1) -> Self {
        panic!("cannot upgrade this one")
    }
}

#[crate::mobile]
pub(crate) struct Panicky {
    n: u64,
}

#[crate::mobile(tag = "upgrade-tests.panicky", version = 2)]
impl Panicky {
    pub(crate) fn n(&self) -> u64 {
        self.n
    }
}

/// A snapshot as a node running `state`'s version encodes it.
fn snapshot_of<S: serde::Serialize>(state: &S) -> Vec<u8> {
    let snapshot = Snapshot {
        state,
        from: NodeId::new("old-build").expect("node id"),
        name: Some("the-counter".to_owned()),
        queue: Vec::new(),
        tracker: Default::default(),
        timers: Vec::new(),
        next_timer: 7,
        monitors: Vec::new(),
        postponed: Vec::new(),
        owed: Vec::new(),
    };
    mobility_net::encode(&snapshot).expect("encode")
}

fn restored(
    version: u32,
    state_schema: u64,
    bytes: &[u8],
) -> Result<Snapshot<Counter>, MigrationFailure> {
    let registry = Registry::global().expect("registry");
    let arrival = registry.accept(TAG, version, 0, state_schema)?;
    let any = arrival.restore(bytes)?;
    Ok(*any
        .downcast::<Snapshot<Counter>>()
        .expect("a snapshot of the current actor"))
}

#[test]
fn an_older_version_is_upgraded_into_the_current_actor() {
    let bytes = snapshot_of(&CounterV2 { count: 21 });
    let snapshot = restored(2, CounterV2::FINGERPRINT, &bytes).expect("version 2 is accepted");
    assert_eq!(snapshot.state.count, 21);
    assert_eq!(
        snapshot.state.doubled, 42,
        "the field version 3 adds, computed by the upgrade"
    );
    assert_eq!(
        snapshot.name.as_deref(),
        Some("the-counter"),
        "the rest travels unchanged"
    );
    assert_eq!(snapshot.next_timer, 7);
}

#[test]
fn timers_postponed_messages_and_owed_replies_travel_through_the_upgrade() {
    use crate::proto::migration::{QueuedWire, TimerKind, TimerSnapshot};
    use crate::proto::wire::ReplyAddr;
    use std::time::Duration;
    let caller = NodeId::new("caller").expect("node id");
    let owed = ReplyAddr {
        node: caller.clone(),
        request: 9,
    };
    let snapshot = Snapshot {
        state: &CounterV2 { count: 3 },
        from: NodeId::new("old-build").expect("node id"),
        name: None,
        queue: vec![QueuedWire::Timer(vec![1, 2], TimerKind::State)],
        tracker: Default::default(),
        timers: vec![TimerSnapshot {
            id: 4,
            remaining: Duration::from_millis(250),
            interval: Some(Duration::from_secs(1)),
            kind: TimerKind::Plain,
            msg: vec![7, 7, 7],
        }],
        next_timer: 5,
        monitors: vec![(caller.clone(), 11)],
        postponed: vec![QueuedWire::Replay {
            msg: vec![3],
            reply: Some(owed.clone()),
        }],
        owed: vec![owed],
    };
    let bytes = mobility_net::encode(&snapshot).expect("encode");
    let restored = restored(2, CounterV2::FINGERPRINT, &bytes).expect("accepted");
    assert_eq!(restored.state.doubled, 6, "the state was upgraded");
    // The rest is the actor's life in flight, unchanged: each timer and
    // message is decoded by its handler's name when it comes due (a handler
    // this version dropped answers its caller `UnknownHandler`).
    assert_eq!(restored.timers.len(), 1);
    assert_eq!(restored.timers[0].remaining, Duration::from_millis(250));
    assert_eq!(restored.timers[0].msg, vec![7, 7, 7]);
    assert_eq!(restored.next_timer, 5);
    assert_eq!(restored.queue.len(), 1);
    assert_eq!(restored.postponed.len(), 1);
    assert_eq!(restored.owed.len(), 1);
    assert_eq!(restored.owed[0].request, 9);
    assert_eq!(restored.monitors, vec![(caller, 11)]);
}

#[test]
fn the_chain_runs_every_step_from_the_oldest_version() {
    let bytes = snapshot_of(&CounterV1 { count: 5 });
    let snapshot = restored(1, CounterV1::FINGERPRINT, &bytes).expect("version 1 is accepted");
    assert_eq!((snapshot.state.count, snapshot.state.doubled), (5, 10));
}

#[test]
fn the_current_version_is_checked_against_the_whole_schema() {
    let bytes = snapshot_of(&Counter {
        count: 3,
        doubled: 6,
    });
    let registry = Registry::global().expect("registry");
    let arrival = registry
        .accept(TAG, 3, Counter::SCHEMA, Counter::FINGERPRINT)
        .expect("its own version");
    let any = arrival.restore(&bytes).expect("decodes");
    let snapshot = any.downcast::<Snapshot<Counter>>().expect("counter");
    assert_eq!((snapshot.state.count, snapshot.state.doubled), (3, 6));
    assert!(matches!(
        registry.accept(TAG, 3, Counter::SCHEMA ^ 1, Counter::FINGERPRINT),
        Err(MigrationFailure::SchemaMismatch { .. })
    ));
}

#[test]
fn a_newer_version_is_refused_naming_both() {
    let registry = Registry::global().expect("registry");
    let failure = registry.accept(TAG, 4, 0, 0).expect_err("a newer version");
    assert_eq!(
        failure,
        MigrationFailure::NewerVersion {
            tag: TAG.to_owned(),
            ours: 4,
            theirs: 3
        }
    );
    let text = failure.to_string();
    assert!(
        text.contains("version 4") && text.contains("version 3"),
        "{text}"
    );
}

#[test]
fn an_older_state_of_another_shape_is_refused_not_misdecoded() {
    // Version 2 of another build: the same version number, another state.
    #[crate::mobile]
    struct OtherV2 {
        count: String,
    }
    let bytes = snapshot_of(&OtherV2 { count: "21".into() });
    let failure = restored(2, OtherV2::FINGERPRINT, &bytes)
        .map(|_| ())
        .expect_err("refused");
    assert_eq!(
        failure,
        MigrationFailure::VersionSchemaMismatch {
            tag: TAG.to_owned(),
            version: 2,
            ours: OtherV2::FINGERPRINT,
            theirs: CounterV2::FINGERPRINT,
        }
    );
}

#[test]
fn a_version_without_an_upgrade_is_refused_with_what_is_accepted() {
    let registry = Registry::global().expect("registry");
    let failure = registry
        .accept("upgrade-tests.plain", 1, 0, 0)
        .expect_err("no upgrade from 1");
    assert_eq!(
        failure,
        MigrationFailure::NoUpgrade {
            tag: "upgrade-tests.plain".to_owned(),
            ours: 1,
            theirs: 2,
            accepted: vec![2],
        }
    );
    assert_eq!(Plain::VERSION, 2);
    let accepted = match registry.accept(TAG, 0, 0, 0) {
        Err(MigrationFailure::NoUpgrade { accepted, .. }) => accepted,
        other => panic!("{other:?}"),
    };
    assert_eq!(accepted, vec![1, 2, 3]);
}

#[test]
fn an_upgrade_that_panics_refuses_the_actor() {
    let registry = Registry::global().expect("registry");
    let arrival = registry
        .accept("upgrade-tests.panicky", 1, 0, PanickyV1::FINGERPRINT)
        .expect("version 1 is declared");
    match arrival.restore(&snapshot_of(&PanickyV1 { n: 1 })) {
        Err(MigrationFailure::ArriveFailed(text)) => {
            assert!(
                text.contains("upgrade from version 1") && text.contains("cannot upgrade"),
                "{text}"
            )
        }
        Ok(_) => panic!("restored"),
        Err(other) => panic!("{other:?}"),
    }
}
