//! Fault injection for tests: make a node's links misbehave on purpose at a
//! chosen step of the protocol (a prepare in flight, its answer, a commit, a
//! forwarded message...), or kill the node outright. Not a public API.
//!
//! A fault is armed for frames of one kind, in one direction, optionally
//! only with one peer, for a number of frames. While nothing is armed the
//! cost is one atomic load per frame.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::Node;
use crate::proto::id::NodeId;
use crate::proto::wire::PeerMsg;
use crate::sync::{lock, write};

/// The kind of frame a fault strikes: a step of the protocol.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// A message for an actor (also one forwarded by an old location).
    Deliver,
    /// A reply to a request.
    Reply,
    /// Phase one of a migration: the state in transfer.
    Prepare,
    /// The destination's answer to a prepare.
    PrepareAck,
    /// Phase two: the commit.
    Commit,
    /// The destination's acknowledgement of the commit.
    Committed,
    /// An abort of a prepared actor.
    Abort,
    /// A route correction.
    Moved,
    /// Any frame.
    Any,
}

/// Which way the frame goes, seen from the node the fault is armed on.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Frames this node sends.
    Outgoing,
    /// Frames this node receives.
    Incoming,
}

/// What happens to the frame.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The socket to the peer is dropped just before; the session resumes
    /// on a new one (the frame goes after the reconnection).
    Cut,
    /// No socket to or from the peer is allowed for this long (both
    /// directions); the frame waits in the session. Past the transport's
    /// `reconnect_for` the peer is reported lost.
    Partition(Duration),
    /// This frame and every later one toward the peer wait this long, in
    /// order (a one-way partition that heals).
    Stall(Duration),
    /// This frame alone waits this long: later frames overtake it.
    Delay(Duration),
    /// The frame is handled (or sent) twice.
    Duplicate,
    /// The frame is lost.
    Drop,
    /// The node dies here, abruptly (no goodbye to anyone); the frame is
    /// lost with it.
    Kill,
}

/// One armed fault.
#[derive(Debug, Clone)]
pub(super) struct Armed {
    step: Step,
    direction: Direction,
    peer: Option<NodeId>,
    fault: Fault,
    remaining: usize,
}

/// The faults of a node and the frames a stall holds back, per peer.
#[derive(Debug, Default)]
pub(super) struct Faults {
    armed: std::sync::atomic::AtomicBool,
    plan: std::sync::Mutex<Vec<Armed>>,
    stalled: std::sync::Mutex<std::collections::HashMap<NodeId, Vec<Vec<u8>>>>,
    /// Something is armed or stalled: frames must be looked at.
    engaged: std::sync::atomic::AtomicBool,
    /// Faults that struck so far.
    struck: std::sync::atomic::AtomicU64,
}

fn step_of(msg: &PeerMsg) -> Step {
    match msg {
        PeerMsg::Deliver { .. } => Step::Deliver,
        PeerMsg::Reply { .. } => Step::Reply,
        PeerMsg::Prepare { .. } => Step::Prepare,
        PeerMsg::PrepareAck { .. } => Step::PrepareAck,
        PeerMsg::Commit { .. } => Step::Commit,
        PeerMsg::Committed { .. } => Step::Committed,
        PeerMsg::Abort { .. } | PeerMsg::Aborted { .. } => Step::Abort,
        PeerMsg::Moved { .. } => Step::Moved,
        _ => Step::Any,
    }
}

impl Faults {
    /// Whether frames must be looked at: a fault is armed or a stall holds
    /// frames back.
    fn settle(&self) {
        let engaged = self.armed.load(Ordering::Acquire) || !lock(&self.stalled).is_empty();
        self.engaged.store(engaged, Ordering::Release);
    }

    /// The fault that strikes this frame, if any (and counts it down).
    fn strike(&self, direction: Direction, peer: &NodeId, frame: &[u8]) -> Option<Fault> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let step = crate::proto::wire::header_of(frame)
            .map(|msg| step_of(&msg))
            .ok()?;
        let mut plan = lock(&self.plan);
        let armed = plan.iter_mut().find(|a| {
            a.remaining > 0
                && a.direction == direction
                && (a.step == step || a.step == Step::Any)
                && a.peer.as_ref().is_none_or(|p| p == peer)
        })?;
        armed.remaining -= 1;
        let fault = armed.fault;
        plan.retain(|a| a.remaining > 0);
        if plan.is_empty() {
            self.armed.store(false, Ordering::Release);
        }
        drop(plan);
        self.settle();
        self.struck.fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }
}

impl Node {
    /// Test hook: arms `fault` for the next `times` frames of kind `step`
    /// going `direction`, with `peer` only if given.
    #[doc(hidden)]
    pub fn fault_inject(
        &self,
        step: Step,
        direction: Direction,
        peer: Option<&NodeId>,
        fault: Fault,
        times: usize,
    ) {
        let faults = &self.shared.faults;
        lock(&faults.plan).push(Armed {
            step,
            direction,
            peer: peer.cloned(),
            fault,
            remaining: times,
        });
        faults.armed.store(times > 0, Ordering::Release);
        faults.settle();
    }

    /// Test hook: disarms every fault not yet struck.
    #[doc(hidden)]
    pub fn fault_clear(&self) {
        let faults = &self.shared.faults;
        lock(&faults.plan).clear();
        faults.armed.store(false, Ordering::Release);
        faults.settle();
    }

    /// Test hook: how many injected faults have struck.
    #[doc(hidden)]
    pub fn faults_struck(&self) -> u64 {
        self.shared.faults.struck.load(Ordering::Relaxed)
    }

    /// Test hook: the node dies now, as if its process were killed: its
    /// sockets close, it stops gossiping, its actors vanish without running
    /// a hook or telling anyone; peers learn of it only by its silence.
    #[doc(hidden)]
    pub async fn fault_kill(&self) {
        if self.shared.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(node = %self.id(), "killed (fault injection)");
        if let Some(network) = &self.shared.network {
            network.shutdown();
        }
        self.shared.links.clear();
        let cells: Vec<tokio::task::AbortHandle> = lock(&self.shared.cell_tasks)
            .drain()
            .map(|(_, task)| task)
            .collect();
        for cell in cells {
            cell.abort();
        }
        if let Some(directory) = &self.shared.directory {
            directory.shutdown().await;
        }
        write(&self.shared.entries).clear();
        lock(&self.shared.pending).clear();
        lock(&self.shared.monitors).clear();
    }

    /// An outgoing frame, through the armed faults: `Some` to send it now.
    /// With nothing armed and nothing stalled, the frame passes untouched
    /// (one atomic load each).
    pub(super) fn fault_outgoing(&self, to: &NodeId, frame: Vec<u8>) -> Option<Vec<u8>> {
        let faults = &self.shared.faults;
        if !faults.engaged.load(Ordering::Acquire) {
            return Some(frame);
        }
        // Frames behind a stall keep their order.
        if let Some(held) = lock(&faults.stalled).get_mut(to) {
            held.push(frame);
            return None;
        }
        let Some(fault) = faults.strike(Direction::Outgoing, to, &frame) else {
            return Some(frame);
        };
        tracing::info!(node = %self.id(), peer = %to, ?fault, "fault injected on a frame sent");
        match fault {
            Fault::Cut => {
                self.fault_cut(to);
                Some(frame)
            }
            Fault::Partition(heal) => {
                self.partition_for(to, heal);
                Some(frame)
            }
            Fault::Stall(heal) => {
                lock(&faults.stalled).insert(to.clone(), vec![frame]);
                faults.settle();
                let node = self.clone();
                let peer = to.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(heal).await;
                    let held = lock(&node.shared.faults.stalled)
                        .remove(&peer)
                        .unwrap_or_default();
                    node.shared.faults.settle();
                    for frame in held {
                        node.send_unfaulted(&peer, frame);
                    }
                });
                None
            }
            Fault::Delay(by) => {
                let node = self.clone();
                let peer = to.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(by).await;
                    node.send_unfaulted(&peer, frame);
                });
                None
            }
            Fault::Duplicate => {
                self.send_unfaulted(to, frame.clone());
                Some(frame)
            }
            Fault::Drop => None,
            Fault::Kill => {
                let node = self.clone();
                tokio::spawn(async move { node.fault_kill().await });
                None
            }
        }
    }

    /// No socket to or from `peer` for `heal`, then reconnections resume.
    fn partition_for(&self, peer: &NodeId, heal: Duration) {
        self.fault_block(peer, true);
        let node = self.clone();
        let peer = peer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(heal).await;
            node.fault_block(&peer, false);
        });
    }

    /// An incoming frame, through the armed faults: how many times to
    /// handle it now (0, 1 or 2).
    pub(super) fn fault_incoming(&self, from: &NodeId, frame: &Bytes) -> usize {
        let Some(fault) = self.shared.faults.strike(Direction::Incoming, from, frame) else {
            return 1;
        };
        tracing::info!(node = %self.id(), peer = %from, ?fault, "fault injected on a frame received");
        match fault {
            Fault::Cut => {
                self.fault_cut(from);
                1
            }
            Fault::Partition(heal) => {
                self.partition_for(from, heal);
                1
            }
            Fault::Stall(by) | Fault::Delay(by) => {
                let node = self.clone();
                let peer = from.clone();
                let frame = frame.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(by).await;
                    node.handle_frame(&peer, &frame);
                });
                0
            }
            Fault::Duplicate => 2,
            Fault::Drop => 0,
            Fault::Kill => {
                let node = self.clone();
                tokio::spawn(async move { node.fault_kill().await });
                0
            }
        }
    }

    fn send_unfaulted(&self, to: &NodeId, frame: Vec<u8>) {
        let from = self.id().clone();
        if let Err(e) = self.route_frame(to, frame, &from, crate::proto::wire::RELAY_HOPS) {
            tracing::warn!(node = %self.id(), peer = %to, error = %e, "a held-back frame could not be sent");
        }
    }
}
