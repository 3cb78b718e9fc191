//! The promises, checked as requests are handled and once everything has
//! settled.

use mobility_proto::handover::{Failure, Phase, Step};

use crate::versions::Kind;
use crate::world::{Answer, Request, Sim};
use crate::{Machine, Node, Refusal, NODES};

impl Sim {
    /// The invariants of handling: one linear history (never two copies,
    /// never a rollback), each request taken once, per-client order,
    /// nothing taken that its caller was told is down; the actor runs only
    /// on a node whose code is at least its state's version, its version
    /// never goes down, and it answers a handler its version lacks with an
    /// error.
    pub(crate) fn check_handle(&mut self, n: Node, place: u64, request: &Request, answer: Answer) {
        let expected = self.history.len() as u64;
        assert_eq!(
            place, expected,
            "node {n} handled at place {place}, but the actor's history has {expected} entries: two copies or a rollback"
        );
        assert!(
            self.handled.insert((request.client, request.k)),
            "request {}/{} handled twice",
            request.client,
            request.k
        );
        if let Some((_, _, last, _)) = self
            .history
            .iter()
            .rev()
            .find(|(_, c, _, _)| *c == request.client)
        {
            assert!(*last < request.k, "client {} out of order", request.client);
        }
        assert!(
            !self.told_down.contains(&(request.client, request.k)),
            "request {}/{} handled after its caller was told the actor is down",
            request.client,
            request.k
        );
        let node = &self.nodes[n as usize];
        let version = node.state.as_ref().map_or(0, |s| s.version);
        assert!(
            version <= node.version,
            "the actor at v{version} ran on n{n}, whose code is v{}",
            node.version
        );
        if let Some((_, _, _, before)) = self.history.last() {
            assert!(
                version >= *before,
                "the actor ran at v{version} after v{before}: a downgrade"
            );
        }
        assert_eq!(
            answer == Answer::Handled,
            request.kind.in_version(version),
            "request {}/{} ({:?}) answered {answer:?} by the actor at v{version}",
            request.client,
            request.k,
            request.kind
        );
        match (answer, request.kind) {
            (Answer::Handled, _) => {}
            (_, Kind::Retired) => self.tally.retired_answered += 1,
            _ => self.tally.added_answered += 1,
        }
        self.top_version = self.top_version.max(version);
        self.log(|| {
            format!(
                "n{n} takes {}/{} ({:?}) at place {place}, v{version}: {answer:?}",
                request.client, request.k, request.kind
            )
        });
        self.history
            .push((place, request.client, request.k, version));
    }

    /// The nodes that host the actor live and were not declared failed
    /// (a declared node may host a zombie copy until it learns, and it
    /// learns before it acts).
    fn live_copies(&self) -> impl Iterator<Item = Node> + '_ {
        (0..NODES as Node).filter(|n| {
            let node = &self.nodes[*n as usize];
            node.alive
                && !node.fenced
                && node.machine.as_ref().is_some_and(Machine::is_hosting)
                && !self.is_downed(*n)
        })
    }

    /// The promises after every step: at most one live copy; every copy
    /// held (live, frozen or prepared) is on a node whose code is at least
    /// its version; a live copy is never older than a version the actor
    /// already ran at. (One pass over the nodes: it runs after every step.)
    pub(crate) fn check_step(&mut self) {
        let mut host: Option<(usize, u8)> = None;
        for (n, node) in self.nodes.iter().enumerate() {
            if !node.alive || node.fenced {
                continue;
            }
            let hosting = node.machine.as_ref().is_some_and(Machine::is_hosting);
            let Some(state) = &node.state else {
                assert!(!hosting, "n{n} hosts the actor without its state");
                continue;
            };
            assert!(
                state.version <= node.version,
                "n{n} (v{}) holds the actor at v{}, newer than its code",
                node.version,
                state.version
            );
            if hosting && !self.is_downed(n as Node) {
                if let Some((first, _)) = host {
                    panic!("two live copies, at n{first} and n{n}");
                }
                host = Some((n, state.version));
            }
        }
        if let Some((n, version)) = host {
            assert!(
                version >= self.top_version,
                "the actor is live at v{version} on n{n}, after it ran at v{}: a downgrade",
                self.top_version
            );
            self.top_version = version;
        }
    }

    /// Destination `n` just refused the snapshot of `epoch` (newer version,
    /// failed upgrade): it holds nothing of it, and never will.
    pub(crate) fn check_refused_here(&self, n: Node, epoch: u64) {
        let node = &self.nodes[n as usize];
        assert!(
            node.state.is_none()
                && !matches!(node.machine.as_ref().map(Machine::phase),
                    Some(Phase::Prepared { epoch: e, .. } | Phase::Hosting { epoch: e }) if *e == epoch),
            "n{n} refused epoch {epoch} but holds a copy"
        );
    }

    /// The source's answer to migrate `index` just came. A refusal of a
    /// newer version names both versions truly, and leaves the actor at
    /// home, serving, as the one live copy, the destination holding
    /// nothing of the attempt; a failed upgrade likewise; a move that
    /// succeeded went to a node at least as new as the actor.
    pub(crate) fn check_answer(&mut self, index: usize) {
        let m = &self.migrates[index];
        let (source, dest, epoch) = (m.source, m.dest, m.epoch);
        match &m.answer {
            Some(Err((Step::Prepare, Failure::Refused(refusal)))) => {
                match *refusal {
                    Refusal::NewerVersion { ours, theirs } => assert!(
                        ours == m.sent && theirs == m.dest_version && ours > theirs,
                        "migrate n{source}->n{dest} of v{} to v{} refused as {refusal:?}",
                        m.sent,
                        m.dest_version
                    ),
                    Refusal::UpgradeFailed { from, to } => assert!(
                        from == m.sent && to == m.dest_version && from < to,
                        "migrate n{source}->n{dest} of v{} to v{} refused as {refusal:?}",
                        m.sent,
                        m.dest_version
                    ),
                    Refusal::Busy => return,
                }
                let home = &self.nodes[source as usize];
                assert!(
                    home.machine.as_ref().is_some_and(Machine::is_hosting)
                        && home.state.is_some()
                        && home.aside.is_empty()
                        && home.captured.is_empty(),
                    "migrate n{source}->n{dest} refused ({refusal:?}), but the actor is not serving at home"
                );
                let live: Vec<Node> = self.live_copies().collect();
                assert_eq!(
                    live,
                    [source],
                    "migrate n{source}->n{dest} refused ({refusal:?}): live copies at {live:?}"
                );
                assert!(
                    !self.activations.contains(&(dest, epoch)),
                    "migrate n{source}->n{dest} refused ({refusal:?}), yet activated"
                );
                self.check_refused_here(dest, epoch);
            }
            Some(Ok(_)) => assert!(
                m.sent <= m.dest_version,
                "the actor at v{} moved to n{dest}, whose code is v{}",
                m.sent,
                m.dest_version
            ),
            _ => {}
        }
    }

    /// The promises once everything settled.
    pub(crate) fn check_settled(&self) {
        let live_hosts: Vec<Node> = (0..NODES as Node)
            .filter(|n| {
                let node = &self.nodes[*n as usize];
                !node.fenced && node.machine.as_ref().is_some_and(Machine::is_hosting)
            })
            .collect();
        assert!(live_hosts.len() <= 1, "two live copies at {live_hosts:?}");
        if live_hosts.is_empty() {
            assert!(
                self.holders_failed > 0,
                "the actor is lost, though no node holding it crashed or was declared failed"
            );
        }
        if let Some(host) = live_hosts.first() {
            let node = &self.nodes[*host as usize];
            let version = node.state.as_ref().expect("a host holds the state").version;
            assert!(
                version == self.top_version && version <= node.version,
                "the actor ends at v{version} on n{host} (code v{}), after it ran at v{}",
                node.version,
                self.top_version
            );
        }
        // Every caller heard an answer (handled, no such handler in this
        // version, or down), unless a node was lost, with the frames in
        // flight to and from it (a caller then times out, claiming nothing).
        if self.downed.is_empty() {
            assert!(
                self.unanswered.is_empty(),
                "requests never answered, though no node was lost: {:?}",
                self.unanswered
            );
        }
        for m in &self.migrates {
            let activated = self.activations.contains(&(m.dest, m.epoch));
            assert!(
                !activated || m.sent <= m.dest_version,
                "the actor at v{} went live on n{} at v{}",
                m.sent,
                m.dest,
                m.dest_version
            );
            match &m.answer {
                Some(Ok(route)) => assert!(
                    activated && route.node.0 == m.dest,
                    "migrate {}->{} at epoch {} answered ok, but the destination never activated it",
                    m.source,
                    m.dest,
                    m.epoch
                ),
                // A fenced source knows nothing of the outcome, and says so.
                Some(Err((_, Failure::Fenced))) => {}
                Some(Err((Step::Prepare, failure))) => assert!(
                    !activated,
                    "migrate {}->{} at epoch {} answered {failure:?}, but the destination activated it",
                    m.source,
                    m.dest,
                    m.epoch
                ),
                Some(Err((Step::Commit, _))) => {}
                None => {
                    let source = &self.nodes[m.source as usize];
                    assert!(
                        source.fenced || source.incarnation > 0,
                        "migrate {}->{} at epoch {} never answered, its source alive",
                        m.source,
                        m.dest,
                        m.epoch
                    );
                }
            }
        }
        // Every node that is up agrees: where the actor lives, or that it
        // is down.
        for n in 0..NODES as Node {
            let node = &self.nodes[n as usize];
            if node.fenced {
                continue;
            }
            let seen = self.resolve(n);
            let truth = live_hosts.first().copied();
            assert_eq!(
                seen, truth,
                "node {n} sees the actor at {seen:?}, it is at {truth:?}"
            );
        }
    }

    /// Where node `n` would send a message for the actor: follows routes
    /// (and the directory past failed nodes) to a live host, or `None`.
    pub(crate) fn resolve(&self, n: Node) -> Option<Node> {
        let directory = || {
            self.directory
                .as_ref()
                .map(|d| d.node)
                .filter(|d| self.is_current(*d))
                .map(|d| d.0)
        };
        let mut at = n;
        for _ in 0..NODES * 2 {
            let node = &self.nodes[at as usize];
            let next = if node.fenced || self.is_downed(at) {
                directory()
            } else {
                match node.machine.as_ref() {
                    Some(machine) if machine.is_hosting() => return Some(at),
                    Some(machine) => match machine.route() {
                        Some(route) if self.is_current(route.node) => Some(route.node.0),
                        _ => directory(),
                    },
                    None => directory(),
                }
            };
            at = next?;
        }
        None
    }
}
