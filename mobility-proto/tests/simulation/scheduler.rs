//! The scheduler: each step delivers, delays, reorders or duplicates a frame,
//! fires timers, spreads failure notices, sends requests, starts migrations,
//! or injects a fault; and the healing that follows a schedule.

use std::collections::VecDeque;
use std::time::Duration;

use mobility_proto::handover::Phase;

use crate::world::{Client, InFlight, Migrate, Msg, Request, Sim, REQUEST_TIMEOUT};
use crate::{Faults, Node, NODES};

impl Sim {
    pub(crate) fn step(&mut self, faults: Faults, healing: bool) -> bool {
        self.now += Duration::from_millis(1);
        // A rolling upgrade's own step (mixed schedules only: a uniform
        // schedule draws what it always drew).
        if self.versions.mixed && !healing && self.rng.chance(10) {
            return self.roll();
        }
        let roll = self.rng.below(100);
        match roll {
            0..=44 => self.deliver(false),
            45..=49 if faults.duplicates && !healing => self.duplicate(),
            50..=54 if !healing => self.deliver(true),
            55..=69 => self.timers(),
            70..=79 => self.notices(),
            80..=89 if !healing => self.client_send(),
            80..=89 => self.client_timeout(),
            90..=93 if !healing => self.start_migration(),
            94 if faults.stalls && !healing => self.stall(),
            95 if faults.stalls => self.unstall(),
            96 if faults.suspicion && !healing => self.suspect(),
            97 if faults.crashes && !healing => self.crash(),
            98 if faults.partitions && !healing => self.partition(),
            99 if faults.partitions => self.heal_partition(),
            94..=99 => self.restart_fenced(),
            _ => false,
        }
    }

    pub(crate) fn deliver(&mut self, reorder: bool) -> bool {
        let ready: Vec<(Node, Node)> = self
            .links
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, _)| *k)
            .filter(|(from, to)| !self.partitioned.contains(&(*from.min(to), *from.max(to))))
            .filter(|(_, to)| {
                let node = &self.nodes[*to as usize];
                node.alive && !node.stalled
            })
            .collect();
        if ready.is_empty() {
            return false;
        }
        let (from, to) = ready[self.rng.below(ready.len())];
        if !self.can_act(to) {
            return true;
        }
        let queue = self.links.get_mut(&(from, to)).expect("a ready link");
        // Control frames may overtake one another (they are said again
        // across reconnects); requests keep their order.
        let index = if reorder {
            let controls: Vec<usize> = (0..queue.len())
                .filter(|i| queue[*i].2.is_control())
                .collect();
            if controls.is_empty() {
                return false;
            }
            controls[(self.rng.next() % controls.len() as u64) as usize]
        } else {
            0
        };
        let Some((from_inc, to_inc, msg)) = queue.remove(index) else {
            return false;
        };
        if (from_inc, to_inc)
            != (
                self.nodes[from as usize].incarnation,
                self.nodes[to as usize].incarnation,
            )
        {
            // A session of an earlier incarnation: gone with it.
            return true;
        }
        if self.nodes[to as usize]
            .heard_failed
            .contains(&(from, from_inc))
        {
            // Links with a member declared failed are closed for good.
            return true;
        }
        self.log(|| format!("n{from} -> n{to}: {msg:?}"));
        self.receive(to, (from, from_inc), msg);
        true
    }

    pub(crate) fn duplicate(&mut self) -> bool {
        let keys: Vec<(Node, Node)> = self.links.keys().copied().collect();
        if keys.is_empty() {
            return false;
        }
        let key = keys[self.rng.below(keys.len())];
        let queue = &self.links[&key];
        let controls: Vec<InFlight> = queue.iter().filter(|m| m.2.is_control()).cloned().collect();
        if controls.is_empty() {
            return false;
        }
        let msg = controls[self.rng.below(controls.len())].clone();
        self.links.get_mut(&key).expect("a link").push_back(msg);
        true
    }

    pub(crate) fn timers(&mut self) -> bool {
        let n = self.rng.below(NODES) as Node;
        if !self.can_act(n) {
            return false;
        }
        let now = self.now;
        let Some(machine) = self.nodes[n as usize].machine.as_mut() else {
            return false;
        };
        if machine.poll_timeout().is_some_and(|t| t <= now) {
            machine.handle_timeout(now);
            self.perform(n);
            return true;
        }
        false
    }

    /// A node hears of a failure declaration (its membership caught up).
    pub(crate) fn notices(&mut self) -> bool {
        let n = self.rng.below(NODES) as Node;
        if !self.can_act(n) {
            return false;
        }
        let Some(peer) = self.nodes[n as usize].notices.pop_front() else {
            return false;
        };
        self.log(|| format!("n{n} hears n{}/{} was declared failed", peer.0, peer.1));
        self.nodes[n as usize].heard_failed.insert(peer);
        if let Some(machine) = self.nodes[n as usize].machine.as_mut() {
            machine.peer_failed(&peer);
            self.perform(n);
        }
        true
    }

    pub(crate) fn client_send(&mut self) -> bool {
        let n = self.rng.below(NODES) as Node;
        if !self.can_act(n) {
            return false;
        }
        let now = self.now;
        let client = &mut self.nodes[n as usize].client;
        if client.outstanding.is_some() {
            if now - client.sent > REQUEST_TIMEOUT {
                client.outstanding = None;
            }
            return false;
        }
        client.sent = now;
        let k = client.next;
        client.next += 1;
        client.outstanding = Some(k);
        self.unanswered.insert((n, k));
        let kind = self.request_kind(n);
        self.on_request(
            n,
            Request {
                client: n,
                k,
                hops: 0,
                kind,
            },
        );
        true
    }

    pub(crate) fn client_timeout(&mut self) -> bool {
        let now = self.now;
        let n = self.rng.below(NODES);
        let client = &mut self.nodes[n].client;
        if client.outstanding.is_some() && now - client.sent > REQUEST_TIMEOUT {
            client.outstanding = None;
            return true;
        }
        false
    }

    pub(crate) fn start_migration(&mut self) -> bool {
        let n = self.rng.below(NODES) as Node;
        let dest = self.rng.below(NODES) as Node;
        self.migrate(n, dest)
    }

    /// Node `n` begins moving the actor to `dest`, if it hosts it.
    pub(crate) fn migrate(&mut self, n: Node, dest: Node) -> bool {
        let dest_version = self.nodes[dest as usize].version;
        let dest = self.peer(dest);
        if !self.can_act(n) || self.nodes[n as usize].heard_failed.contains(&dest) {
            return false;
        }
        let now = self.now;
        let node = &mut self.nodes[n as usize];
        let Some(machine) = node.machine.as_mut() else {
            return false;
        };
        let Some(epoch) = machine.begin(dest, now, self.arbitrated) else {
            return false;
        };
        // Freeze: the queue is captured with the state.
        node.captured = std::mem::take(&mut node.aside);
        let state = node.state.clone().expect("a hosting node holds the state");
        let queue = node.captured.clone();
        self.migrates.push(Migrate {
            source: n,
            dest: dest.0,
            epoch,
            sent: state.version,
            dest_version,
            answer: None,
        });
        self.log(|| format!("n{n} migrates to n{}/{} (epoch {epoch})", dest.0, dest.1));
        self.send_to(
            n,
            dest,
            Msg::Prepare {
                epoch,
                state,
                queue,
            },
        );
        true
    }

    pub(crate) fn stall(&mut self) -> bool {
        let n = self.rng.below(NODES) as Node;
        if !self.nodes[n as usize].alive || self.nodes[n as usize].stalled {
            return false;
        }
        self.log(|| format!("n{n} stalls"));
        self.nodes[n as usize].stalled = true;
        // A stall longer than failure detection: declared failed, sometimes.
        if self.arbitrated && self.rng.chance(600) {
            self.declare_failed(n);
        }
        true
    }

    pub(crate) fn unstall(&mut self) -> bool {
        let Some(n) = (0..NODES as Node).find(|n| self.nodes[*n as usize].stalled) else {
            return false;
        };
        self.log(|| format!("n{n} resumes"));
        self.nodes[n as usize].stalled = false;
        true
    }

    /// A false suspicion: a live node is declared failed.
    pub(crate) fn suspect(&mut self) -> bool {
        let n = self.rng.below(NODES) as Node;
        if !self.nodes[n as usize].alive || self.is_downed(n) {
            return false;
        }
        self.declare_failed(n);
        true
    }

    pub(crate) fn declare_failed(&mut self, n: Node) {
        let incarnation = self.nodes[n as usize].incarnation;
        if !self.downed.insert((n, incarnation)) {
            return;
        }
        self.log(|| format!("n{n} (incarnation {incarnation}) declared failed"));
        if self.holds_state(n) {
            self.holders_failed += 1;
        }
        if self
            .directory
            .as_ref()
            .is_some_and(|d| d.node == (n, incarnation))
        {
            self.directory = None;
        }
        for other in 0..NODES {
            if other != n as usize {
                self.nodes[other].notices.push_back((n, incarnation));
            }
        }
    }

    /// Whether the actor dies if node `n` does: it holds the state, or,
    /// without an arbiter, a commit it sent is not confirmed yet (the
    /// destination cannot tell it from a source that resumed on its own,
    /// and drops its copy when the source is gone).
    pub(crate) fn holds_state(&self, n: Node) -> bool {
        let node = &self.nodes[n as usize];
        node.state.is_some()
            || (!self.arbitrated
                && node
                    .machine
                    .as_ref()
                    .is_some_and(|m| matches!(m.phase(), Phase::Committing { .. })))
    }

    pub(crate) fn crash(&mut self) -> bool {
        let n = self.rng.below(NODES) as Node;
        if !self.nodes[n as usize].alive {
            return false;
        }
        self.log(|| format!("n{n} crashes"));
        self.declare_failed(n);
        let node = &mut self.nodes[n as usize];
        node.alive = false;
        node.machine = None;
        node.state = None;
        node.aside.clear();
        node.captured.clear();
        self.links.retain(|(from, to), _| *from != n && *to != n);
        self.restart(n);
        true
    }

    /// Restarts node `n` (crashed, or fenced) as a new incarnation that
    /// knows nothing; the others see it join.
    pub(crate) fn restart(&mut self, n: Node) {
        let version = self.restart_version(n);
        self.log(|| format!("n{n} restarts at v{version}"));
        let node = &mut self.nodes[n as usize];
        node.version = version;
        node.machine = None;
        node.state = None;
        node.aside.clear();
        node.captured.clear();
        node.incarnation += 1;
        node.alive = true;
        node.stalled = false;
        node.fenced = false;
        node.client = Client {
            next: node.client.next + 1000,
            outstanding: None,
            sent: Duration::ZERO,
        };
        node.notices.clear();
        // Joining, it learns which members were declared failed.
        node.heard_failed = self.downed.iter().copied().collect();
    }

    pub(crate) fn restart_fenced(&mut self) -> bool {
        let Some(n) = (0..NODES as Node).find(|n| self.nodes[*n as usize].fenced) else {
            return false;
        };
        self.restart(n);
        true
    }

    pub(crate) fn partition(&mut self) -> bool {
        let a = self.rng.below(NODES) as Node;
        let b = self.rng.below(NODES) as Node;
        if a == b {
            return false;
        }
        self.partitioned.insert((a.min(b), a.max(b)));
        // A long partition ends in a failure declaration of one side.
        if self.arbitrated && self.rng.chance(300) {
            let side = if self.rng.chance(500) { a } else { b };
            self.declare_failed(side);
        }
        true
    }

    pub(crate) fn heal_partition(&mut self) -> bool {
        self.partitioned.pop_first().is_some()
    }

    /// Ends every fault and runs until nothing is left to do.
    pub(crate) fn heal(&mut self, faults: Faults) {
        self.partitioned.clear();
        for node in &mut self.nodes {
            node.stalled = false;
        }
        for _ in 0..20_000 {
            self.step(faults, true);
            self.check_step();
            // Fenced nodes and clients that learn: everything settles.
            for n in 0..NODES as Node {
                self.can_act(n);
            }
            if self.quiet() {
                return;
            }
        }
        panic!("the cluster did not settle after every fault healed");
    }

    pub(crate) fn quiet(&self) -> bool {
        self.links.values().all(VecDeque::is_empty)
            && self.nodes.iter().all(|n| {
                n.fenced
                    || (n.notices.is_empty()
                        && n.client.outstanding.is_none()
                        && n.machine
                            .as_ref()
                            .is_none_or(|m| m.poll_timeout().is_none()))
            })
    }
}
