//! A rolling upgrade across two OS processes built from two examples that
//! register the same actor tag in two versions (`upgrade_old`: version 1,
//! `upgrade_new`: version 2, which adds a field), linked over TCP:
//! version 1 migrates to the new build, is upgraded there before
//! `on_arrive` (the new field computed from the old state), keeps answering
//! the old build's handle, and the messages queued in its mailbox travel
//! with it and are handled by the new version, and a handler that version 2
//! dropped is a clear error to its caller; version 2 going to the old
//! build is refused with both versions named, and stays home, serving.

mod common;

use common::process::ExampleProcess;

/// One of the two builds, on the secret both share.
fn build(example: &str, args: &[&str]) -> ExampleProcess {
    ExampleProcess::start(example, "the secret of both builds", args)
}

fn addr_of(line: &str) -> String {
    line.rsplit(' ').next().expect("address").to_string()
}

#[test]
fn old_to_new_upgrades_and_new_to_old_is_refused() {
    let mut new = build("upgrade_new", &["new", "--spawn"]);
    let new_addr = addr_of(&new.wait_for("listening on"));
    new.wait_for("spawned the counter: version 2 on new, count 100");
    let mut old = build("upgrade_old", &["old", "--spawn"]);
    let old_addr = addr_of(&old.wait_for("listening on"));
    old.wait_for("spawned the counter: version 1 on old, count 5");

    // Old -> new, with messages waiting in the mailbox: the actor is busy,
    // the move is asked, ten increments queue up behind it and travel.
    old.send(&format!("migrate tcp://{new_addr} 10"));
    let report = old.wait_for("migrated:");
    let queued: u64 = report
        .split(" queued")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no queued count in {report:?}"));
    assert!(queued > 0, "messages travelled in the mailbox: {report}");
    // Upgraded before on_arrive: the new field is already computed there.
    new.wait_for("counter arrived on new: count 5, upgraded from version 1 at count 5");
    // The old build's handle reaches it; a handler of both versions works,
    // and every queued increment was handled once, by version 2.
    old.send("describe");
    let line = old.wait_for("describe");
    assert!(
        line.contains("version 2 on new, count 15, upgraded from version 1 at count 5"),
        "{line}"
    );

    // A handler the old build has and version 2 dropped: a clear error to
    // its caller, naming the handler and the version, and the actor lives on.
    old.send("retired");
    let line = old.wait_for("retired");
    assert!(
        line.contains("retired failed")
            && line.contains("version 2")
            && line.contains("no handler `retired`"),
        "{line}"
    );

    // New -> old: refused, both versions named; the actor stays and serves.
    new.send(&format!("migrate tcp://{old_addr}"));
    let refused = new.wait_for("migration failed");
    assert!(
        refused.contains("version 2") && refused.contains("version 1"),
        "names both versions: {refused}"
    );
    new.send("describe");
    let line = new.wait_for("describe");
    assert!(
        line.contains("version 2 on new, count 100, born in version 2"),
        "{line}"
    );

    old.quit();
    new.quit();
}

/// A member of the cluster `rolling` (see `examples/upgrade/driver.rs`).
fn member(example: &str, name: &str, join: Option<&str>, spawn: bool) -> ExampleProcess {
    let mut args = vec![name, "--cluster"];
    if let Some(seed) = join {
        args.extend(["--join", seed]);
    }
    if spawn {
        args.push("--spawn");
    }
    build(example, &args)
}

#[test]
fn a_member_of_the_new_build_never_sends_its_actors_to_an_old_one() {
    let mut old = member("upgrade_old", "old", None, false);
    let seed = addr_of(&old.wait_for("listening on"));
    let mut new = member("upgrade_new", "new", Some(&seed), true);
    new.wait_for("spawned the counter: version 2 on new");
    new.send("spawn 2 named");
    new.wait_for("spawned 2 counters");

    // The old member announced it runs version 1: a move of version 2 there
    // fails before anything is frozen, naming both versions.
    new.send("migrate old");
    let refused = new.wait_for("migration failed");
    assert!(
        refused.contains("version 2") && refused.contains("version 1"),
        "{refused}"
    );
    assert!(
        refused.contains("validate"),
        "refused before the freeze: {refused}"
    );

    // Draining with only an old member left: nothing can go, and the drain
    // says why for each actor; the node stays up and serving.
    new.send("drain");
    let incomplete = new.wait_for("drain incomplete");
    assert!(
        incomplete.contains("no member takes version 2")
            && incomplete.contains("old: ")
            && incomplete.contains("version 1"),
        "{incomplete}"
    );
    // A handler only version 2 has, called from the new build on an actor
    // that still runs version 1: a clear error naming both.
    old.send("spawn 1 oldie");
    old.wait_for("spawned 1 counters");
    new.send("label oldie-0");
    let line = new.wait_for("label");
    assert!(
        line.contains("label failed")
            && line.contains("version 1")
            && line.contains("no handler `label`"),
        "{line}"
    );
    old.send("load named-0 named-1");
    old.wait_for("load running");
    old.wait_for("load: sent");
    old.send("tally");
    let placed = old.wait_for("placed:");
    assert!(placed.contains("2 at version 2 on new"), "{placed}");
    let tally = old.wait_for("tally:");
    assert!(
        tally.contains("duplicated 0, out of order 0, lost 0, refused 0, unanswered 0"),
        "{tally}"
    );
    new.send("describe");
    let line = new.wait_for("describe");
    assert!(line.contains("version 2 on new, count 100"), "{line}");

    // With a member of the new build, the same drain completes, every actor
    // to it.
    let mut newer = member("upgrade_new", "newer", Some(&seed), false);
    newer.wait_for("listening on");
    new.send("drain");
    let drained = new.wait_for("drained:");
    assert!(
        drained.contains("moved 3 actors") && drained.contains("(3 to newer)"),
        "{drained}"
    );
    old.quit();
    newer.quit();
}

#[test]
fn a_rolling_upgrade_under_load_loses_nothing() {
    let mut conductor = build("rolling_upgrade", &[]);
    conductor.wait_for("draining old1");
    conductor.wait_for("draining new1");
    conductor.wait_for("draining old3");
    let placed = conductor.wait_for("placed:");
    assert!(
        !placed.contains("version 1") && !placed.contains(" on old"),
        "{placed}"
    );
    let tally = conductor.wait_for("tally:");
    assert!(
        tally.contains("duplicated 0, out of order 0, lost 0, refused 0, unanswered 0"),
        "{tally}"
    );
    conductor.wait_for("every counter runs version 2 on a new node");
    conductor.wait_success();
}
