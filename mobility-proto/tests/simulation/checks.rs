//! The promises, checked as requests are handled and once everything has
//! settled.

use mobility_proto::handover::{Failure, Step};

use crate::world::{Request, Sim};
use crate::{Machine, Node, NODES};

impl Sim {
    /// The invariants of handling: one linear history (never two copies,
    /// never a rollback), each request once, per-client order, nothing
    /// handled that its caller was told is down.
    pub(crate) fn check_handle(&mut self, n: Node, version: u64, request: &Request) {
        let expected = self.history.len() as u64;
        assert_eq!(
            version, expected,
            "node {n} handled at version {version}, but the actor's history has {expected} entries: two copies or a rollback"
        );
        assert!(
            self.handled.insert((request.client, request.k)),
            "request {}/{} handled twice",
            request.client,
            request.k
        );
        if let Some((_, _, last)) = self
            .history
            .iter()
            .rev()
            .find(|(_, c, _)| *c == request.client)
        {
            assert!(*last < request.k, "client {} out of order", request.client);
        }
        assert!(
            !self.told_down.contains(&(request.client, request.k)),
            "request {}/{} handled after its caller was told the actor is down",
            request.client,
            request.k
        );
        self.log(|| {
            format!(
                "n{n} handles {}/{} at v{version}",
                request.client, request.k
            )
        });
        self.history.push((version, request.client, request.k));
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
        for m in &self.migrates {
            let activated = self.activations.contains(&(m.dest, m.epoch));
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
