//! The simulated world: nodes, their links and clients, and how a node's
//! shell performs what its machine asks.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::Duration;

use mobility_proto::handover::{Action, Admission, Frame, Handover, Outcome, Phase, Route};

use crate::versions::{Kind, Version, VersionTally, Versions};
use crate::{Machine, Node, Peer, ProtoFrame, Refusal, Rng, NODES, TIMING};

/// The actor's state: how many messages it handled (its place in the
/// history), the last request number handled per client, and the version
/// of the code it was last upgraded to.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) count: u64,
    pub(crate) last: BTreeMap<Node, u64>,
    pub(crate) version: Version,
}

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) client: Node,
    pub(crate) k: u64,
    pub(crate) hops: u8,
    pub(crate) kind: Kind,
}

/// What a caller hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Its handler ran.
    Handled,
    /// The actor is down (or unreachable): claims nothing more.
    Down,
    /// The actor's version (this one) has no such handler: an error reply
    /// from the actor, in its turn.
    NoHandler { version: Version },
}

/// A frame with the incarnations of its sender and receiver.
pub(crate) type InFlight = (u32, u32, Msg);

#[derive(Debug, Clone)]
pub(crate) enum Msg {
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
        answer: Answer,
    },
}

impl Msg {
    pub(crate) fn is_control(&self) -> bool {
        matches!(self, Msg::Proto(_) | Msg::Prepare { .. })
    }
}

#[derive(Debug, Default)]
pub(crate) struct Client {
    pub(crate) next: u64,
    pub(crate) outstanding: Option<u64>,
    /// When the outstanding request was sent: after a while the caller
    /// gives up (a timeout claims nothing about whether it was handled).
    pub(crate) sent: Duration,
}

/// How long a caller waits for a reply.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_millis(400);

#[derive(Debug)]
pub(crate) struct SimNode {
    pub(crate) incarnation: u32,
    /// The version of the actor's code this incarnation runs.
    pub(crate) version: Version,
    pub(crate) alive: bool,
    pub(crate) stalled: bool,
    pub(crate) fenced: bool,
    pub(crate) machine: Option<Machine>,
    /// The actor's state while it is here (live, frozen or prepared).
    pub(crate) state: Option<State>,
    /// Requests waiting aside while a migration decides.
    pub(crate) aside: Vec<Request>,
    /// Source side: the captured queue of the attempt in progress.
    pub(crate) captured: Vec<Request>,
    /// Failure declarations this node has yet to hear of.
    pub(crate) notices: VecDeque<Peer>,
    /// Peers it heard were declared failed (until they restart): it
    /// migrates nothing to them.
    pub(crate) heard_failed: BTreeSet<Peer>,
    pub(crate) client: Client,
}

pub(crate) struct Migrate {
    pub(crate) source: Node,
    pub(crate) dest: Node,
    pub(crate) epoch: u64,
    /// The state's version sent, and the destination's when it began.
    pub(crate) sent: Version,
    pub(crate) dest_version: Version,
    pub(crate) answer: Option<Outcome<Peer, Refusal>>,
}

pub(crate) struct Sim {
    pub(crate) rng: Rng,
    pub(crate) now: Duration,
    pub(crate) nodes: Vec<SimNode>,
    /// Frames in flight per (from, to), each with the incarnations of both
    /// ends when sent: a session never outlives either incarnation.
    pub(crate) links: BTreeMap<(Node, Node), VecDeque<InFlight>>,
    pub(crate) partitioned: BTreeSet<(Node, Node)>,
    /// (node, incarnation) declared failed by the cluster.
    pub(crate) downed: BTreeSet<(Node, u32)>,
    /// Latest activation announced: the directory's view.
    pub(crate) directory: Option<Route<Peer>>,
    /// Every request the actor took, in order: its place, client, number,
    /// and the actor's version then.
    pub(crate) history: Vec<(u64, Node, u64, Version)>,
    /// Requests sent whose caller heard no reply yet.
    pub(crate) unanswered: HashSet<(Node, u64)>,
    /// The highest version the actor ran at.
    pub(crate) top_version: Version,
    pub(crate) versions: Versions,
    pub(crate) tally: VersionTally,
    pub(crate) handled: HashSet<(Node, u64)>,
    pub(crate) told_down: HashSet<(Node, u64)>,
    pub(crate) activations: HashSet<(Node, u64)>,
    pub(crate) migrates: Vec<Migrate>,
    pub(crate) holders_failed: u32,
    pub(crate) trace: Vec<String>,
    pub(crate) tracing: bool,
    /// Whether peers are arbitrated by a shared failure detector.
    pub(crate) arbitrated: bool,
}

impl Sim {
    pub(crate) fn new(seed: u64, tracing: bool, versions: Versions) -> Self {
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
                    version: versions.born[n as usize],
                    alive: true,
                    stalled: false,
                    fenced: false,
                    machine: Some(machine),
                    state: (n == 0).then(|| State {
                        count: 0,
                        last: BTreeMap::new(),
                        version: versions.born[0],
                    }),
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
            downed: BTreeSet::new(),
            directory: Some(Route {
                node: (0, 0),
                epoch: 0,
            }),
            history: Vec::new(),
            unanswered: HashSet::new(),
            top_version: versions.born[0],
            versions,
            tally: VersionTally::default(),
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

    pub(crate) fn log(&mut self, line: impl FnOnce() -> String) {
        if self.tracing {
            let line = line();
            self.trace
                .push(format!("{:>5}ms {line}", self.now.as_millis()));
        }
    }

    pub(crate) fn peer(&self, n: Node) -> Peer {
        (n, self.nodes[n as usize].incarnation)
    }

    /// Whether `peer` is the live, undeclared incarnation of its node.
    pub(crate) fn is_current(&self, peer: Peer) -> bool {
        let node = &self.nodes[peer.0 as usize];
        node.incarnation == peer.1 && node.alive && !self.downed.contains(&peer)
    }

    pub(crate) fn is_downed(&self, n: Node) -> bool {
        self.downed
            .contains(&(n, self.nodes[n as usize].incarnation))
    }

    /// Whether node `n` may take a step now: alive, running, and (the
    /// lease) fenced at once if it was declared failed.
    pub(crate) fn can_act(&mut self, n: Node) -> bool {
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

    pub(crate) fn send(&mut self, from: Node, to: Node, msg: Msg) {
        let to = self.peer(to);
        self.send_to(from, to, msg);
    }

    /// Sends to one incarnation: lost if it is not the current one.
    pub(crate) fn send_to(&mut self, from: Node, to: Peer, msg: Msg) {
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

    pub(crate) fn fence(&mut self, n: Node) {
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
    pub(crate) fn perform(&mut self, n: Node) {
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
                                    answer: Answer::Down,
                                },
                            );
                        }
                    }
                }
                Action::Answer(answer) => {
                    if let Some(index) = self
                        .migrates
                        .iter()
                        .rposition(|m| m.source == n && m.answer.is_none())
                    {
                        self.migrates[index].answer = Some(answer);
                        self.check_answer(index);
                    }
                }
            }
        }
    }

    pub(crate) fn forward(&mut self, n: Node, route: &Route<Peer>, mut request: Request) {
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
                            answer: Answer::Down,
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
                    answer: Answer::Down,
                },
            );
        }
        self.send(n, to, Msg::Req(request));
    }

    pub(crate) fn on_request(&mut self, n: Node, request: Request) {
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
            let place = state.count;
            state.count += 1;
            state.last.insert(request.client, request.k);
            // The actor's code answers: a handler its version lacks is an
            // error reply, never silence.
            let answer = request.kind.answer(state.version);
            self.check_handle(n, place, &request, answer);
            self.send(
                n,
                request.client,
                Msg::Reply {
                    k: request.k,
                    answer,
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
                    answer: Answer::Down,
                },
            );
        }
    }

    pub(crate) fn receive(&mut self, n: Node, from: Peer, msg: Msg) {
        let now = self.now;
        match msg {
            Msg::Req(request) => self.on_request(n, request),
            Msg::Reply { k, answer } => {
                self.unanswered.remove(&(n, k));
                let client = &mut self.nodes[n as usize].client;
                if client.outstanding == Some(k) {
                    client.outstanding = None;
                    if answer == Answer::Down {
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
                        let mut state = state;
                        let restored = self.arrive(n, &mut state);
                        let refused = restored.is_err();
                        let node = &mut self.nodes[n as usize];
                        let machine = node.machine.as_mut().expect("admitted above");
                        machine.restored(&from, epoch, restored, now, arbitrated);
                        if refused {
                            self.check_refused_here(n, epoch);
                        } else if matches!(machine.phase(), Phase::Prepared { .. }) {
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
}
