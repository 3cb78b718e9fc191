//! Versions of the actor's code, as a rolling upgrade mixes them: each node
//! incarnation runs one version; the actor's state carries the version it
//! was last upgraded to. As the runtime's registry does (`Registry::accept`),
//! a destination refuses a state newer than its code
//! ([`Refusal::NewerVersion`], the actor stays home), and upgrades an older
//! one before the actor runs there; an upgrade that fails (the user's
//! `From` panics) is refused too ([`Refusal::UpgradeFailed`]). A request of
//! a handler the actor's current version does not have is answered with an
//! error, never silence.
//!
//! A schedule is uniform (every node at the old version, no request of a
//! version-specific handler: the schedules of the first waves, unchanged,
//! drawing nothing more from the scheduler's generator) or mixed: nodes born
//! at either version, restarts into the new one, and the rolling upgrade's
//! own step (drain a node of the old version, then restart it new).

use crate::world::{Answer, Sim, State};
use crate::{Node, Refusal, Rng, NODES};

/// A version of the actor's code.
pub(crate) type Version = u8;
/// The version being rolled out of the cluster.
pub(crate) const OLD: Version = 1;
/// The version being rolled in.
pub(crate) const NEW: Version = 2;

/// Which handler a request calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A handler both versions have.
    Both,
    /// A handler only the old version has (the new one removed it).
    Retired,
    /// A handler only the new version has.
    Added,
}

impl Kind {
    /// Whether the code of `version` has this handler.
    pub(crate) fn in_version(self, version: Version) -> bool {
        match self {
            Kind::Both => true,
            Kind::Retired => version < NEW,
            Kind::Added => version >= NEW,
        }
    }

    /// The answer of an actor at `version` that handles this request.
    pub(crate) fn answer(self, version: Version) -> Answer {
        if self.in_version(version) {
            Answer::Handled
        } else {
            Answer::NoHandler { version }
        }
    }
}

/// How a schedule mixes versions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Versions {
    /// Whether versions are mixed at all.
    pub(crate) mixed: bool,
    /// Each node's version at the start (the actor is spawned on node 0 at
    /// its version).
    pub(crate) born: [Version; NODES],
    /// A node that restarts (after a crash or a fence) comes back at the
    /// new version, sometimes: a rolling upgrade in progress.
    pub(crate) rolling: bool,
    /// How often (per mille) an upgrade of the state fails.
    pub(crate) failing_upgrades: u64,
}

impl Versions {
    /// Every node at the old version.
    pub(crate) const UNIFORM: Versions = Versions {
        mixed: false,
        born: [OLD; NODES],
        rolling: false,
        failing_upgrades: 0,
    };

    /// The versions of schedule `seed`, from a generator of their own (the
    /// scheduler's draws of a uniform schedule stay what they were).
    pub(crate) fn of(seed: u64) -> Versions {
        let mut rng = Rng(seed ^ 0x7665_7273_696f_6e73);
        if !rng.chance(500) {
            return Versions::UNIFORM;
        }
        let mut born = [OLD; NODES];
        for version in &mut born {
            if rng.chance(400) {
                *version = NEW;
            }
        }
        Versions {
            mixed: true,
            born,
            rolling: rng.chance(600),
            failing_upgrades: if rng.chance(300) { 400 } else { 0 },
        }
    }
}

/// What the mixed versions did in a schedule.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct VersionTally {
    /// Prepares refused because the actor's state was newer.
    pub(crate) newer_refused: u64,
    /// Prepares refused because the upgrade failed.
    pub(crate) upgrades_failed: u64,
    /// States upgraded on arrival.
    pub(crate) upgraded: u64,
    /// Requests of a handler the new version removed, answered with an
    /// error by the actor at the new version.
    pub(crate) retired_answered: u64,
    /// Requests of a handler the old version lacks, answered with an error
    /// by the actor at the old version.
    pub(crate) added_answered: u64,
    /// Nodes restarted into the new version.
    pub(crate) nodes_upgraded: u64,
}

impl VersionTally {
    /// Adds another schedule's tally.
    pub(crate) fn add(&mut self, other: &VersionTally) {
        self.newer_refused += other.newer_refused;
        self.upgrades_failed += other.upgrades_failed;
        self.upgraded += other.upgraded;
        self.retired_answered += other.retired_answered;
        self.added_answered += other.added_answered;
        self.nodes_upgraded += other.nodes_upgraded;
    }
}

impl Sim {
    /// Destination `n`'s shell restores a snapshot: refuses a newer state,
    /// upgrades an older one (which may fail).
    pub(crate) fn arrive(&mut self, n: Node, state: &mut State) -> Result<(), Refusal> {
        let ours = self.nodes[n as usize].version;
        if state.version > ours {
            self.tally.newer_refused += 1;
            self.log(|| format!("n{n} (v{ours}) refuses the actor at v{}", state.version));
            return Err(Refusal::NewerVersion {
                ours: state.version,
                theirs: ours,
            });
        }
        if state.version < ours {
            if self.rng.chance(self.versions.failing_upgrades) {
                self.tally.upgrades_failed += 1;
                self.log(|| format!("n{n}: the upgrade v{} -> v{ours} panics", state.version));
                return Err(Refusal::UpgradeFailed {
                    from: state.version,
                    to: ours,
                });
            }
            self.tally.upgraded += 1;
            self.log(|| format!("n{n} upgrades the actor v{} -> v{ours}", state.version));
            state.version = ours;
        }
        Ok(())
    }

    /// The kind of request node `n`'s client sends: its code's handlers.
    pub(crate) fn request_kind(&mut self, n: Node) -> Kind {
        if !self.versions.mixed || self.rng.below(4) != 0 {
            return Kind::Both;
        }
        if self.nodes[n as usize].version < NEW {
            Kind::Retired
        } else {
            Kind::Added
        }
    }

    /// The version a restarting node `n` comes back with: never older;
    /// sometimes the new one while a rolling upgrade is in progress.
    pub(crate) fn restart_version(&mut self, n: Node) -> Version {
        let version = self.nodes[n as usize].version;
        if self.versions.rolling && version < NEW && self.rng.chance(500) {
            self.tally.nodes_upgraded += 1;
            return NEW;
        }
        version
    }

    /// The rolling upgrade's step: a node of the old version is drained
    /// (the actor, if it is there, moves to a node of the new version) and,
    /// once it holds nothing and owes nothing, restarts at the new version.
    pub(crate) fn roll(&mut self) -> bool {
        let n = self.rng.below(NODES) as Node;
        if self.nodes[n as usize].version >= NEW || !self.can_act(n) {
            return false;
        }
        let node = &self.nodes[n as usize];
        if node.state.is_some() {
            if !node.machine.as_ref().is_some_and(|m| m.is_hosting()) {
                return false;
            }
            let newer: Vec<Node> = (0..NODES as Node)
                .filter(|d| *d != n && self.nodes[*d as usize].version >= NEW)
                .collect();
            if newer.is_empty() {
                return false;
            }
            let dest = newer[self.rng.below(newer.len())];
            self.log(|| format!("n{n} drains for its upgrade"));
            return self.migrate(n, dest);
        }
        let busy = node
            .machine
            .as_ref()
            .is_some_and(|m| m.owes().is_some() || m.poll_timeout().is_some())
            || node.client.outstanding.is_some()
            || !node.aside.is_empty()
            || self
                .links
                .iter()
                .any(|((from, to), q)| (*from == n || *to == n) && !q.is_empty());
        if busy {
            return false;
        }
        self.log(|| format!("n{n} leaves to upgrade"));
        self.restart(n);
        if self.nodes[n as usize].version < NEW {
            self.nodes[n as usize].version = NEW;
            self.tally.nodes_upgraded += 1;
        }
        self.log(|| format!("n{n} runs v{NEW}"));
        true
    }
}
