//! Deterministic simulation of the migration protocol: several nodes, each
//! running the pure [`Handover`] machine for one actor, driven by a seeded
//! scheduler that delivers, delays, reorders and duplicates frames, stalls
//! nodes past failure detection, declares live nodes failed, crashes and
//! restarts nodes and partitions them, while clients send requests and
//! migrations start at random. The promises are checked after every step
//! and once everything has healed.
//!
//! The cluster's failure decisions are modelled as the runtime makes them:
//! a node declared failed is fenced, and learns it before it acts again
//! (a stalled node resumes into that check first); every other node hears
//! of it after some delay.
//!
//! `MOBILITY_SIM_SCHEDULES=N` runs N schedules (default 100,000 in a
//! release build, fewer in a debug one); `MOBILITY_SIM_SEED=S` replays one.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::Duration;

use mobility_proto::handover::{
    Action, Admission, Failure, Frame, Handover, Outcome, Phase, Route, Step, Timing,
};

type Node = u8;
/// A node incarnation: what the protocol talks to (a restarted node is a
/// new peer).
type Peer = (Node, u32);
type Machine = Handover<Peer, Refusal, ()>;
type ProtoFrame = Frame<Refusal, ()>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    Busy,
}

const NODES: usize = 3;
const TIMING: Timing = Timing {
    prepare_timeout: Duration::from_millis(40),
    retry: Duration::from_millis(15),
};

/// The actor's state: how many messages it handled (its version) and the
/// last request number handled per client.
#[derive(Debug, Clone, Default)]
struct State {
    version: u64,
    last: BTreeMap<Node, u64>,
}

#[derive(Debug, Clone)]
struct Request {
    client: Node,
    k: u64,
    hops: u8,
}

/// A frame with the incarnations of its sender and receiver.
type InFlight = (u32, u32, Msg);

#[derive(Debug, Clone)]
enum Msg {
    Proto(ProtoFrame),
    /// A prepare carries the snapshot: the state and the queued requests.
    Prepare {
        epoch: u64,
        state: State,
        queue: Vec<Request>,
    },
    Req(Request),
    Reply {
        k: u64,
        handled: bool,
    },
}

impl Msg {
    fn is_control(&self) -> bool {
        matches!(self, Msg::Proto(_) | Msg::Prepare { .. })
    }
}

#[derive(Debug, Default)]
struct Client {
    next: u64,
    outstanding: Option<u64>,
    /// When the outstanding request was sent: after a while the caller
    /// gives up (a timeout claims nothing about whether it was handled).
    sent: Duration,
}

/// How long a caller waits for a reply.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(400);

#[derive(Debug)]
struct SimNode {
    incarnation: u32,
    alive: bool,
    stalled: bool,
    fenced: bool,
    machine: Option<Machine>,
    /// The actor's state while it is here (live, frozen or prepared).
    state: Option<State>,
    /// Requests waiting aside while a migration decides.
    aside: Vec<Request>,
    /// Source side: the captured queue of the attempt in progress.
    captured: Vec<Request>,
    /// Failure declarations this node has yet to hear of.
    notices: VecDeque<Peer>,
    /// Peers it heard were declared failed (until they restart): it
    /// migrates nothing to them.
    heard_failed: BTreeSet<Peer>,
    client: Client,
}

struct Migrate {
    source: Node,
    dest: Node,
    epoch: u64,
    answer: Option<Outcome<Peer, Refusal>>,
}

struct Sim {
    rng: Rng,
    now: Duration,
    nodes: Vec<SimNode>,
    /// Frames in flight per (from, to), each with the incarnations of both
    /// ends when sent: a session never outlives either incarnation.
    links: BTreeMap<(Node, Node), VecDeque<InFlight>>,
    partitioned: BTreeSet<(Node, Node)>,
    /// (node, incarnation) declared failed by the cluster.
    downed: HashSet<(Node, u32)>,
    /// Latest activation announced: the directory's view.
    directory: Option<Route<Peer>>,
    history: Vec<(u64, Node, u64)>,
    handled: HashSet<(Node, u64)>,
    told_down: HashSet<(Node, u64)>,
    activations: HashSet<(Node, u64)>,
    migrates: Vec<Migrate>,
    holders_failed: u32,
    trace: Vec<String>,
    tracing: bool,
    /// Whether peers are arbitrated by a shared failure detector.
    arbitrated: bool,
}

/// SplitMix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

/// Which faults a schedule may inject.
#[derive(Debug, Clone, Copy)]
struct Faults {
    /// The nodes are of different clusters: no failure detector, no
    /// fencing; a crash is seen as the peer's restart.
    cross: bool,
    stalls: bool,
    suspicion: bool,
    crashes: bool,
    partitions: bool,
    duplicates: bool,
}

impl Sim {
    fn new(seed: u64, tracing: bool) -> Self {
        let nodes = (0..NODES as Node)
            .map(|n| {
                let machine = if n == 0 {
                    Handover::hosting((n, 0), 0, TIMING)
                } else {
                    Handover::forwarding(
                        (n, 0),
                        Route {
                            node: (0, 0),
                            epoch: 0,
                        },
                        TIMING,
                    )
                };
                SimNode {
                    incarnation: 0,
                    alive: true,
                    stalled: false,
                    fenced: false,
                    machine: Some(machine),
                    state: (n == 0).then(State::default),
                    aside: Vec::new(),
                    captured: Vec::new(),
                    notices: VecDeque::new(),
                    heard_failed: BTreeSet::new(),
                    client: Client::default(),
                }
            })
            .collect();
        Sim {
            rng: Rng(seed),
            now: Duration::ZERO,
            nodes,
            links: BTreeMap::new(),
            partitioned: BTreeSet::new(),
            downed: HashSet::new(),
            directory: Some(Route {
                node: (0, 0),
                epoch: 0,
            }),
            history: Vec::new(),
            handled: HashSet::new(),
            told_down: HashSet::new(),
            activations: HashSet::from([(0, 0)]),
            migrates: Vec::new(),
            holders_failed: 0,
            trace: Vec::new(),
            tracing,
            arbitrated: true,
        }
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if self.tracing {
            let line = line();
            self.trace
                .push(format!("{:>5}ms {line}", self.now.as_millis()));
        }
    }

    fn peer(&self, n: Node) -> Peer {
        (n, self.nodes[n as usize].incarnation)
    }

    /// Whether `peer` is the live, undeclared incarnation of its node.
    fn is_current(&self, peer: Peer) -> bool {
        let node = &self.nodes[peer.0 as usize];
        node.incarnation == peer.1 && node.alive && !self.downed.contains(&peer)
    }

    fn is_downed(&self, n: Node) -> bool {
        self.downed
            .contains(&(n, self.nodes[n as usize].incarnation))
    }

    /// Whether node `n` may take a step now: alive, running, and (the
    /// lease) fenced at once if it was declared failed.
    fn can_act(&mut self, n: Node) -> bool {
        let node = &self.nodes[n as usize];
        if !node.alive || node.stalled || node.fenced {
            return false;
        }
        if self.is_downed(n) {
            self.fence(n);
            return false;
        }
        true
    }

    fn send(&mut self, from: Node, to: Node, msg: Msg) {
        let to = self.peer(to);
        self.send_to(from, to, msg);
    }

    /// Sends to one incarnation: lost if it is not the current one.
    fn send_to(&mut self, from: Node, to: Peer, msg: Msg) {
        let incarnations = (self.nodes[from as usize].incarnation, to.1);
        let to = to.0;
        if from == to {
            if incarnations.0 == incarnations.1 {
                let from = self.peer(from);
                self.receive(to, from, msg);
            }
            return;
        }
        self.links
            .entry((from, to))
            .or_default()
            .push_back((incarnations.0, incarnations.1, msg));
    }

    fn fence(&mut self, n: Node) {
        self.log(|| format!("n{n} learns it was declared failed: fenced"));
        let node = &mut self.nodes[n as usize];
        node.fenced = true;
        if let Some(mut machine) = node.machine.take() {
            machine.fenced();
            node.machine = Some(machine);
            self.perform(n);
        }
        let node = &mut self.nodes[n as usize];
        node.state = None;
        node.aside.clear();
        node.captured.clear();
        // Everything in flight from a fenced incarnation is refused.
        self.links.retain(|(from, to), _| *from != n && *to != n);
    }

    /// Performs the actions machine `n` queued.
    fn perform(&mut self, n: Node) {
        loop {
            let Some(action) = self.nodes[n as usize]
                .machine
                .as_mut()
                .and_then(Machine::poll_action)
            else {
                return;
            };
            self.log(|| format!("n{n} {action:?}"));
            match action {
                Action::Send { to, frame } => self.send_to(n, to, Msg::Proto(frame)),
                Action::Resume => {
                    let node = &mut self.nodes[n as usize];
                    let mut queue = std::mem::take(&mut node.captured);
                    queue.append(&mut node.aside);
                    for request in queue {
                        self.on_request(n, request);
                    }
                }
                Action::HandOver { route } => {
                    if self.directory.as_ref().is_some_and(|d| d.node.0 == n) {
                        self.directory = None;
                    }
                    let node = &mut self.nodes[n as usize];
                    node.state = None;
                    node.captured.clear();
                    let aside = std::mem::take(&mut node.aside);
                    for request in aside {
                        self.forward(n, &route, request);
                    }
                }
                Action::Activate { epoch, .. } => {
                    assert!(
                        self.nodes[n as usize].state.is_some(),
                        "activated without a state"
                    );
                    self.activations.insert((n, epoch));
                    self.directory = Some(Route {
                        node: self.peer(n),
                        epoch,
                    });
                    let aside = std::mem::take(&mut self.nodes[n as usize].aside);
                    for request in aside {
                        self.on_request(n, request);
                    }
                }
                Action::DropPrepared { route } => {
                    let node = &mut self.nodes[n as usize];
                    node.state = None;
                    let aside = std::mem::take(&mut node.aside);
                    for request in aside {
                        self.forward(n, &route, request);
                    }
                }
                Action::Down => {
                    let node = &mut self.nodes[n as usize];
                    node.state = None;
                    let aside = std::mem::take(&mut node.aside);
                    if !node.fenced {
                        for request in aside {
                            self.send(
                                n,
                                request.client,
                                Msg::Reply {
                                    k: request.k,
                                    handled: false,
                                },
                            );
                        }
                    }
                }
                Action::Answer(answer) => {
                    if let Some(m) = self
                        .migrates
                        .iter_mut()
                        .rev()
                        .find(|m| m.source == n && m.answer.is_none())
                    {
                        m.answer = Some(answer);
                    }
                }
            }
        }
    }

    fn forward(&mut self, n: Node, route: &Route<Peer>, mut request: Request) {
        let mut to = route.node.0;
        if !self.is_current(route.node) {
            // The directory may know better (a newer location).
            match self.directory.clone() {
                Some(newer) if newer.epoch > route.epoch && self.is_current(newer.node) => {
                    if let Some(m) = self.nodes[n as usize].machine.as_mut() {
                        m.moved(newer.clone());
                    }
                    to = newer.node.0;
                }
                _ => {
                    return self.send(
                        n,
                        request.client,
                        Msg::Reply {
                            k: request.k,
                            handled: false,
                        },
                    )
                }
            }
        }
        request.hops += 1;
        if request.hops > 16 || to == n {
            return self.send(
                n,
                request.client,
                Msg::Reply {
                    k: request.k,
                    handled: false,
                },
            );
        }
        self.send(n, to, Msg::Req(request));
    }

    fn on_request(&mut self, n: Node, request: Request) {
        let node = &mut self.nodes[n as usize];
        let Some(machine) = node.machine.as_ref() else {
            // Never seen here (or lost with a restart): the directory says.
            let route = self.directory.clone().unwrap_or(Route {
                node: self.peer(n),
                epoch: 0,
            });
            return self.forward(n, &route, request);
        };
        if machine.is_hosting() {
            let state = node.state.as_mut().expect("a hosting node holds the state");
            let last = state.last.get(&request.client).copied();
            if last.is_some_and(|last| request.k <= last) {
                return; // a duplicate, dropped
            }
            let version = state.version;
            state.version += 1;
            state.last.insert(request.client, request.k);
            self.check_handle(n, version, &request);
            self.send(
                n,
                request.client,
                Msg::Reply {
                    k: request.k,
                    handled: true,
                },
            );
        } else if machine.is_frozen() {
            node.aside.push(request);
        } else if let Some(route) = machine.route() {
            self.forward(n, &route, request);
        } else {
            self.send(
                n,
                request.client,
                Msg::Reply {
                    k: request.k,
                    handled: false,
                },
            );
        }
    }

    /// The invariants of handling: one linear history (never two copies,
    /// never a rollback), each request once, per-client order, nothing
    /// handled that its caller was told is down.
    fn check_handle(&mut self, n: Node, version: u64, request: &Request) {
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

    fn receive(&mut self, n: Node, from: Peer, msg: Msg) {
        let now = self.now;
        match msg {
            Msg::Req(request) => self.on_request(n, request),
            Msg::Reply { k, handled } => {
                let client = &mut self.nodes[n as usize].client;
                if client.outstanding == Some(k) {
                    client.outstanding = None;
                    if !handled {
                        self.told_down.insert((n, k));
                        assert!(
                            !self.handled.contains(&(n, k)),
                            "request {n}/{k} told down after it was handled"
                        );
                    }
                }
            }
            Msg::Prepare {
                epoch,
                state,
                queue,
            } => {
                let me = self.peer(n);
                let arbitrated = self.arbitrated;
                let machine = self.nodes[n as usize].machine.get_or_insert_with(|| {
                    Handover::forwarding(
                        me,
                        Route {
                            node: from,
                            epoch: 0,
                        },
                        TIMING,
                    )
                });
                match machine.admit_prepare(&from, epoch) {
                    Admission::Restore => {
                        machine.restored(&from, epoch, Ok(()), now, arbitrated);
                        if matches!(machine.phase(), Phase::Prepared { .. }) {
                            let node = &mut self.nodes[n as usize];
                            node.state = Some(state);
                            // The captured queue comes first.
                            let mut aside = queue;
                            aside.append(&mut node.aside);
                            node.aside = aside;
                        }
                    }
                    Admission::Repeated => {}
                    Admission::Refused => self.send_to(
                        n,
                        from,
                        Msg::Proto(Frame::PrepareAck {
                            epoch,
                            result: Err(Refusal::Busy),
                        }),
                    ),
                }
                self.perform(n);
            }
            Msg::Proto(frame) => {
                let me = self.peer(n);
                let machine = self.nodes[n as usize].machine.get_or_insert_with(|| {
                    Handover::forwarding(
                        me,
                        Route {
                            node: from,
                            epoch: 0,
                        },
                        TIMING,
                    )
                });
                machine.handle_frame(&from, frame, now);
                self.perform(n);
            }
        }
    }

    // ---- the scheduler -----------------------------------------------------

    fn step(&mut self, faults: Faults, healing: bool) -> bool {
        self.now += Duration::from_millis(1);
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

    fn deliver(&mut self, reorder: bool) -> bool {
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

    fn duplicate(&mut self) -> bool {
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

    fn timers(&mut self) -> bool {
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
    fn notices(&mut self) -> bool {
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

    fn client_send(&mut self) -> bool {
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
        self.on_request(
            n,
            Request {
                client: n,
                k,
                hops: 0,
            },
        );
        true
    }

    fn client_timeout(&mut self) -> bool {
        let now = self.now;
        let n = self.rng.below(NODES);
        let client = &mut self.nodes[n].client;
        if client.outstanding.is_some() && now - client.sent > REQUEST_TIMEOUT {
            client.outstanding = None;
            return true;
        }
        false
    }

    fn start_migration(&mut self) -> bool {
        let n = self.rng.below(NODES) as Node;
        let dest = self.rng.below(NODES) as Node;
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

    fn stall(&mut self) -> bool {
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

    fn unstall(&mut self) -> bool {
        let Some(n) = (0..NODES as Node).find(|n| self.nodes[*n as usize].stalled) else {
            return false;
        };
        self.log(|| format!("n{n} resumes"));
        self.nodes[n as usize].stalled = false;
        true
    }

    /// A false suspicion: a live node is declared failed.
    fn suspect(&mut self) -> bool {
        let n = self.rng.below(NODES) as Node;
        if !self.nodes[n as usize].alive || self.is_downed(n) {
            return false;
        }
        self.declare_failed(n);
        true
    }

    fn declare_failed(&mut self, n: Node) {
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
    fn holds_state(&self, n: Node) -> bool {
        let node = &self.nodes[n as usize];
        node.state.is_some()
            || (!self.arbitrated
                && node
                    .machine
                    .as_ref()
                    .is_some_and(|m| matches!(m.phase(), Phase::Committing { .. })))
    }

    fn crash(&mut self) -> bool {
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
    fn restart(&mut self, n: Node) {
        self.log(|| format!("n{n} restarts"));
        let node = &mut self.nodes[n as usize];
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

    fn restart_fenced(&mut self) -> bool {
        let Some(n) = (0..NODES as Node).find(|n| self.nodes[*n as usize].fenced) else {
            return false;
        };
        self.restart(n);
        true
    }

    fn partition(&mut self) -> bool {
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

    fn heal_partition(&mut self) -> bool {
        self.partitioned.pop_first().is_some()
    }

    /// Ends every fault and runs until nothing is left to do.
    fn heal(&mut self, faults: Faults) {
        self.partitioned.clear();
        for node in &mut self.nodes {
            node.stalled = false;
        }
        for _ in 0..20_000 {
            self.step(faults, true);
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

    fn quiet(&self) -> bool {
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

    /// The promises once everything settled.
    fn check_settled(&self) {
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
    fn resolve(&self, n: Node) -> Option<Node> {
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

fn faults_of(rng: &mut Rng) -> Faults {
    let cross = rng.chance(250);
    Faults {
        cross,
        stalls: rng.chance(700),
        suspicion: !cross && rng.chance(500),
        crashes: rng.chance(300),
        partitions: rng.chance(500),
        duplicates: rng.chance(500),
    }
}

fn run_on(sim: &mut Sim, steps: usize) {
    let faults = faults_of(&mut sim.rng);
    sim.arbitrated = !faults.cross;
    for _ in 0..steps {
        sim.step(faults, false);
    }
    sim.heal(faults);
    sim.check_settled();
}

fn fails(seed: u64, steps: usize) -> bool {
    let mut sim = Sim::new(seed, false);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_on(&mut sim, steps))).is_err()
}

/// Runs `seed`; on a failure, finds the shortest schedule of that seed that
/// still fails (the shrink) and panics with its trace.
fn check(seed: u64, steps: usize) -> Sim {
    let mut sim = Sim::new(seed, false);
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_on(&mut sim, steps)));
    if outcome.is_ok() {
        return sim;
    }
    // Quiet while shrinking: every try panics.
    std::panic::set_hook(Box::new(|_| {}));
    let shortest = (0..=steps).find(|s| fails(seed, *s)).unwrap_or(steps);
    let mut sim = Sim::new(seed, true);
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_on(&mut sim, shortest)));
    let why = result
        .err()
        .and_then(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        })
        .unwrap_or_default();
    let trace = sim.trace.join("\n");
    let _ = std::panic::take_hook();
    panic!("seed {seed} fails after {shortest} steps: {why}\ntrace:\n{trace}");
}

fn schedules() -> u64 {
    std::env::var("MOBILITY_SIM_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

#[test]
fn every_schedule_keeps_the_promises() {
    if let Some(seed) = std::env::var("MOBILITY_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        check(seed, 400);
        return;
    }
    let started = std::time::Instant::now();
    let count = schedules();
    let (mut handled, mut moves, mut fenced) = (0usize, 0usize, 0usize);
    for seed in 0..count {
        let sim = check(seed, 400);
        handled += sim.history.len();
        moves += sim.activations.len() - 1;
        fenced += sim.nodes.iter().filter(|n| n.fenced).count();
    }
    eprintln!(
        "{count} schedules in {:?}: {handled} requests handled, {moves} moves, {fenced} nodes fenced",
        started.elapsed()
    );
}

/// Schedules that failed against drafts of the protocol (or of this
/// simulation's model of the runtime), kept as they are:
/// - 12: a migration to a member already declared failed, never resolved;
/// - 63: a fenced source answered "failed" for a move its destination
///   then completed (the answer must claim nothing);
/// - 725, 91: frames to an old incarnation reached its restart;
/// - 737: a restarted source, knowing nothing, answered `Resolve` with an
///   abort and the prepared copy was dropped;
/// - 783: a failure notice of an old incarnation taken for its restart's;
/// - 1079: a prepare from a source already declared failed was accepted;
/// - 4712: a source that resumed on its own after a timeout (the first
///   wave's behaviour) made two live copies.
#[test]
fn regressions() {
    for seed in REGRESSIONS {
        check(*seed, 400);
    }
}

const REGRESSIONS: &[u64] = &[1, 12, 57, 63, 91, 725, 737, 783, 1079, 4712];
