//! Mobile event managers: handlers added and removed, broadcasts
//! (fire-and-forget and acknowledged), calls, failing handlers removed and
//! reported, and every handler's state kept across migrations; a handler
//! type the destination does not know refuses the migration.

mod common;

use common::{eventually_async, linked, node};
use mobility::events::{EventHandler, EventManager, HandlerInfo, RegisteredHandler};
use mobility::prelude::*;

#[mobile]
#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    Tick(u64),
    Fail(String),
    Panic,
}
mobility::event_manager!(Ev);

/// Sums ticks; answers its sum.
#[mobile]
#[derive(Debug, Default, PartialEq)]
pub struct Sum {
    total: u64,
    seen: Vec<u64>,
}

impl EventHandler<Ev> for Sum {
    type Call = ();
    type Reply = (u64, Vec<u64>);
    fn handle_event(&mut self, event: &Ev) -> Result<(), String> {
        if let Ev::Tick(n) = event {
            self.total += n;
            self.seen.push(*n);
        }
        Ok(())
    }
    fn handle_call(&mut self, (): ()) -> Result<Self::Reply, String> {
        Ok((self.total, self.seen.clone()))
    }
}
mobility::event_handler!(Sum, Ev);

/// Fails on `Fail(reason)` where reason is its name, panics on `Panic` if
/// told to, and fails a call asking for a negative number.
#[mobile]
#[derive(Debug, Default, PartialEq)]
pub struct Fragile {
    name: String,
    panics: bool,
    count: u64,
}

impl EventHandler<Ev> for Fragile {
    type Call = i64;
    type Reply = u64;
    fn handle_event(&mut self, event: &Ev) -> Result<(), String> {
        self.count += 1;
        match event {
            Ev::Fail(who) if *who == self.name => Err(format!("{who} failed on purpose")),
            Ev::Panic if self.panics => panic!("{} panicked", self.name),
            _ => Ok(()),
        }
    }
    fn handle_call(&mut self, n: i64) -> Result<u64, String> {
        u64::try_from(n)
            .map(|n| n + self.count)
            .map_err(|_| format!("negative: {n}"))
    }
}
mobility::event_handler!(Fragile, Ev, tag = "tests::events::Fragile");

/// A handler type that is never registered (no `event_handler!`): no node
/// can rebuild it, like a type another build lacks.
#[mobile]
#[derive(Debug, Default)]
pub struct Ghost {
    count: u64,
}

impl EventHandler<Ev> for Ghost {
    type Call = ();
    type Reply = u64;
    fn handle_event(&mut self, _: &Ev) -> Result<(), String> {
        self.count += 1;
        Ok(())
    }
    fn handle_call(&mut self, (): ()) -> Result<u64, String> {
        Ok(self.count)
    }
}

impl RegisteredHandler<Ev> for Ghost {
    const TAG: &'static str = "tests::events::Ghost";
}

fn fragile(name: &str, panics: bool) -> Fragile {
    Fragile {
        name: name.into(),
        panics,
        count: 0,
    }
}

fn ids(list: Vec<HandlerInfo>) -> Vec<String> {
    list.into_iter().map(|h| h.id).collect()
}

#[tokio::test]
async fn handlers_are_added_called_and_removed_with_their_state() {
    let a = node("ev-basic").await;
    let m = a.spawn(EventManager::<Ev>::new()).await.expect("spawn");
    m.add_handler("sum", Sum::default()).await.expect("add");
    m.add_handler("f", fragile("f", false)).await.expect("add");
    let dup = m.add_handler("sum", Sum::default()).await;
    assert!(matches!(dup, Err(Error::Refused { .. })), "{dup:?}");
    assert_eq!(ids(m.handlers().await.expect("list")), vec!["sum", "f"]);
    assert_eq!(
        m.handlers().await.expect("list")[1].tag,
        "tests::events::Fragile"
    );

    for n in 1..=3 {
        m.tell().notify(Ev::Tick(n)).expect("notify");
    }
    assert!(m.sync_notify(Ev::Tick(10)).await.expect("sync").is_empty());
    assert_eq!(
        m.call::<Sum>("sum", ()).await.expect("call"),
        (16, vec![1, 2, 3, 10])
    );
    assert_eq!(m.call::<Fragile>("f", 100).await.expect("call"), 104);
    // Wrong type or unknown id: refused, nothing removed.
    assert!(matches!(
        m.call::<Sum>("f", ()).await,
        Err(Error::Refused { .. })
    ));
    assert!(matches!(
        m.call::<Sum>("nope", ()).await,
        Err(Error::Refused { .. })
    ));

    let sum: Sum = m.remove_handler("sum").await.expect("remove");
    assert_eq!(sum.total, 16);
    assert!(matches!(
        m.remove_handler::<Sum>("sum").await,
        Err(Error::Refused { .. })
    ));
    assert_eq!(ids(m.handlers().await.expect("list")), vec!["f"]);
    a.shutdown().await;
}

#[tokio::test]
async fn a_failing_handler_is_removed_and_reported_and_the_others_go_on() {
    let a = node("ev-fail").await;
    let m = a
        .spawn(
            EventManager::<Ev>::new()
                .with_handler("x", fragile("x", false))
                .with_handler("sum", Sum::default())
                .with_handler("y", fragile("y", true)),
        )
        .await
        .expect("spawn");
    // x fails on its event: removed, reported; sum and y got it too.
    let failed = m.sync_notify(Ev::Fail("x".into())).await.expect("sync");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, "x");
    assert_eq!(failed[0].reason, "x failed on purpose");
    // y panics: removed, reported, the manager lives on.
    let failed = m.sync_notify(Ev::Panic).await.expect("sync");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, "y");
    assert!(
        failed[0].reason.contains("y panicked"),
        "{}",
        failed[0].reason
    );
    // A failure through fire-and-forget is reported in the list.
    m.add_handler("z", fragile("z", false)).await.expect("add");
    m.tell().notify(Ev::Fail("z".into())).expect("notify");
    m.tell().notify(Ev::Tick(5)).expect("notify");
    eventually_async("z removed", || async {
        m.failures().await.expect("failures").len() == 3
    })
    .await;
    let failures: Vec<String> = m
        .failures()
        .await
        .expect("failures")
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(failures, vec!["x", "y", "z"]);
    assert_eq!(ids(m.handlers().await.expect("list")), vec!["sum"]);
    assert_eq!(m.call::<Sum>("sum", ()).await.expect("call").0, 5);

    // A failing call removes its handler and says so.
    m.add_handler("w", fragile("w", false)).await.expect("add");
    match m.call::<Fragile>("w", -1).await {
        Err(Error::Refused { reason, .. }) => assert!(reason.contains("negative: -1"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(ids(m.handlers().await.expect("list")), vec!["sum"]);
    a.shutdown().await;
}

#[tokio::test]
async fn migrating_the_manager_migrates_every_handler_state() {
    let nodes = linked(&["ev-move-a", "ev-move-b", "ev-move-c"]).await;
    let m = nodes[0]
        .spawn(EventManager::<Ev>::new())
        .await
        .expect("spawn");
    m.add_handler("sum", Sum::default()).await.expect("add");
    m.add_handler("f", fragile("f", false)).await.expect("add");
    let mut expected = 0;
    for round in 0..6u64 {
        for n in 0..10 {
            m.tell().notify(Ev::Tick(round * 10 + n)).expect("notify");
            expected += round * 10 + n;
        }
        let dest = nodes[(round as usize + 1) % 3].id().clone();
        let report = m.migrate(dest.clone().into()).await.expect("migrate");
        assert_eq!(report.to, dest);
    }
    let (total, seen) = m.call::<Sum>("sum", ()).await.expect("call");
    assert_eq!(total, expected);
    assert_eq!(
        seen,
        (0..60).collect::<Vec<u64>>(),
        "in order, exactly once"
    );
    assert_eq!(m.call::<Fragile>("f", 0).await.expect("call"), 60);
    assert!(nodes[0].hosts(m.id()));
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn a_handler_type_unknown_at_the_destination_refuses_the_migration() {
    let nodes = linked(&["ev-ghost-a", "ev-ghost-b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let m = a
        .spawn(
            EventManager::<Ev>::new()
                .with_handler("sum", Sum::default())
                .with_handler("ghost", Ghost::default()),
        )
        .await
        .expect("spawn");
    m.sync_notify(Ev::Tick(1)).await.expect("sync");
    let err = a
        .migrate(&m, b.id())
        .await
        .expect_err("b cannot rebuild Ghost");
    let text = err.to_string();
    assert!(text.contains("tests::events::Ghost"), "{text}");
    assert!(text.contains("unknown event handler type"), "{text}");
    // The manager stays, every handler intact.
    assert!(a.hosts(m.id()));
    assert!(!b.hosts(m.id()));
    assert_eq!(m.call::<Ghost>("ghost", ()).await.expect("call"), 1);
    assert_eq!(m.call::<Sum>("sum", ()).await.expect("call").0, 1);
    // Adding a type no node knows is refused the same way.
    let err = m
        .add_handler("ghost2", Ghost::default())
        .await
        .expect_err("unknown");
    assert!(err.to_string().contains("tests::events::Ghost"), "{err}");
    // Without the ghost, it moves.
    m.remove_handler::<Ghost>("ghost").await.expect("remove");
    a.migrate(&m, b.id()).await.expect("migrate");
    assert_eq!(m.call::<Sum>("sum", ()).await.expect("call").0, 1);
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn handler_tags_are_listed_per_event_type() {
    let tags = mobility::events::handler_tags::<Ev>();
    assert!(tags.contains(&"tests::events::Fragile"), "{tags:?}");
    assert!(tags.iter().any(|t| t.ends_with("::Sum")), "{tags:?}");
    assert!(!tags.iter().any(|t| t.ends_with("Ghost")), "{tags:?}");
}
