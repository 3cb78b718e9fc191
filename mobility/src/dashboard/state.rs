//! What the dashboard shows, as the JSON of `/api/state`: a snapshot of the
//! node taken per request, and a bounded log of its recent events.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::node::Node;
use crate::proto::id::NodeId;
use crate::proto::observe::NodeEvent;
use crate::sync::lock;
use mobility_net::membership::MemberEvent;

/// How many recent events the page can show.
pub(super) const EVENT_LOG: usize = 200;

/// The last [`EVENT_LOG`] events, oldest first.
#[derive(Debug)]
pub(super) struct EventLog {
    /// The node whose events these are.
    here: NodeId,
    events: VecDeque<EventRow>,
    next_seq: u64,
    /// Events the collector lost by falling behind the node.
    missed: u64,
}

impl EventLog {
    /// A log of the events of node `here`.
    pub(super) fn new(here: NodeId) -> Self {
        EventLog {
            here,
            events: VecDeque::new(),
            next_seq: 0,
            missed: 0,
        }
    }

    fn push(&mut self, event: &NodeEvent) {
        if self.events.len() == EVENT_LOG {
            self.events.pop_front();
        }
        let row = EventRow::from_event(self.next_seq, &self.here, event);
        self.events.push_back(row);
        self.next_seq += 1;
    }
}

/// Takes the node's events into `log` until the node's event channel
/// closes (the dashboard aborts it when dropped). It never makes the node
/// wait: a broadcast sender does not, and a receiver that falls behind is
/// told how many it lost.
pub(super) async fn collect(mut events: broadcast::Receiver<NodeEvent>, log: Arc<Mutex<EventLog>>) {
    loop {
        match events.recv().await {
            Ok(event) => lock(&log).push(&event),
            Err(RecvError::Lagged(missed)) => lock(&log).missed += missed,
            Err(RecvError::Closed) => return,
        }
    }
}

/// One event as the page shows it.
#[derive(Debug, Clone, Serialize)]
struct EventRow {
    seq: u64,
    /// When the dashboard saw it, in milliseconds since the Unix epoch.
    at_ms: u64,
    /// `spawned`, `arrived`, `departed`, `migration_failed`, `stopped`,
    /// `member` (or `other` for kinds added later).
    kind: &'static str,
    actor: Option<String>,
    type_tag: Option<String>,
    name: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// The freeze time of a departure, in microseconds.
    freeze_us: Option<u64>,
    /// The rest, in words.
    detail: String,
}

impl EventRow {
    fn from_event(seq: u64, here: &NodeId, event: &NodeEvent) -> Self {
        let mut row = EventRow {
            seq,
            at_ms: unix_ms(),
            kind: "other",
            actor: event.actor().map(|id| id.to_string()),
            type_tag: None,
            name: None,
            from: None,
            to: None,
            freeze_us: None,
            detail: String::new(),
        };
        match event {
            NodeEvent::Spawned { type_tag, name, .. } => {
                row.kind = "spawned";
                row.to = Some(here.to_string());
                row.type_tag = Some(type_tag.to_string());
                row.name.clone_from(name);
            }
            NodeEvent::Arrived {
                type_tag,
                name,
                from,
                epoch,
                ..
            } => {
                row.kind = "arrived";
                row.type_tag = Some(type_tag.to_string());
                row.name.clone_from(name);
                row.from = Some(from.to_string());
                row.to = Some(here.to_string());
                row.detail = format!("epoch {epoch}");
            }
            NodeEvent::Departed { report } => {
                row.kind = "departed";
                row.type_tag = Some(report.type_tag.clone());
                row.from = Some(report.from.to_string());
                row.to = Some(report.to.to_string());
                row.freeze_us = Some(u64::try_from(report.freeze.as_micros()).unwrap_or(u64::MAX));
                row.detail = format!(
                    "epoch {}, {} B state, {} queued, {} forwarded",
                    report.epoch,
                    report.state_bytes,
                    report.queued_messages,
                    report.forwarded_messages
                );
            }
            NodeEvent::MigrationFailed {
                type_tag,
                to,
                error,
                ..
            } => {
                row.kind = "migration_failed";
                row.type_tag = Some(type_tag.to_string());
                row.to = Some(to.to_string());
                row.detail = error.to_string();
            }
            NodeEvent::Stopped {
                type_tag,
                name,
                reason,
                ..
            } => {
                row.kind = "stopped";
                row.type_tag = Some(type_tag.to_string());
                row.name.clone_from(name);
                row.detail = reason.to_string();
            }
            NodeEvent::Member(change) => {
                row.kind = "member";
                row.detail = match change {
                    MemberEvent::Joined(node) => format!("{node} joined"),
                    MemberEvent::Left(node) => format!("{node} left"),
                    MemberEvent::Failed(node) => format!("{node} failed"),
                    MemberEvent::Fenced => "this node was declared failed (fenced)".to_owned(),
                };
            }
            // Kinds added later: shown as they debug-print.
            #[allow(unreachable_patterns)]
            other => row.detail = format!("{other:?}"),
        }
        row
    }
}

/// The node as `/api/state` tells it.
#[derive(Debug, Serialize)]
pub(super) struct Snapshot {
    node: String,
    listen: Option<String>,
    now_ms: u64,
    members: Vec<String>,
    /// The nodes it has a link to, of its cluster or of others.
    peers: Vec<String>,
    stats: Stats,
    named: Vec<Named>,
    actors: Vec<Hosted>,
    events: Vec<EventRow>,
    events_missed: u64,
}

#[derive(Debug, Serialize)]
struct Stats {
    hosted: usize,
    forwarders: usize,
    forwarded_messages: u64,
}

/// A named actor of the cluster and the member hosting it.
#[derive(Debug, Serialize)]
struct Named {
    name: String,
    actor: String,
    type_tag: String,
    node: String,
    /// The version of its type the hosting member runs, as it announced.
    version: Option<u32>,
}

/// An actor active on this node.
#[derive(Debug, Serialize)]
struct Hosted {
    id: String,
    type_tag: &'static str,
    rust_type: &'static str,
    name: Option<String>,
    mailbox_depth: usize,
    messages_handled: u64,
    epoch: u64,
    /// The version of its type it runs (this build's).
    version: u32,
}

impl Snapshot {
    /// Reads the node now (each read holds the node's tables for a moment).
    pub(super) fn take(node: &Node, log: &Mutex<EventLog>) -> Self {
        let stats = node.stats();
        let (events, events_missed) = {
            let log = lock(log);
            (log.events.iter().cloned().collect(), log.missed)
        };
        Snapshot {
            node: node.id().to_string(),
            listen: node.listen_addr().map(|a| a.to_string()),
            now_ms: unix_ms(),
            members: node.members().iter().map(ToString::to_string).collect(),
            peers: node.peers().iter().map(ToString::to_string).collect(),
            stats: Stats {
                hosted: stats.hosted,
                forwarders: stats.forwarders,
                forwarded_messages: stats.forwarded_messages,
            },
            named: node
                .directory_snapshot()
                .into_iter()
                .map(|named| Named {
                    name: named.name,
                    actor: named.actor.to_string(),
                    type_tag: named.type_tag,
                    node: named.node.to_string(),
                    version: named.version,
                })
                .collect(),
            actors: node
                .actors()
                .into_iter()
                .map(|actor| Hosted {
                    id: actor.id.to_string(),
                    type_tag: actor.type_tag,
                    rust_type: actor.rust_type,
                    name: actor.name,
                    mailbox_depth: actor.mailbox_depth,
                    messages_handled: actor.messages_handled,
                    epoch: actor.epoch,
                    version: actor.version,
                })
                .collect(),
            events,
            events_missed,
        }
    }

    pub(super) fn to_json(&self) -> String {
        // Strings, numbers and options only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::error::ExitReason;
    use crate::proto::id::ActorId;

    fn stopped() -> NodeEvent {
        NodeEvent::Stopped {
            actor: ActorId::fresh(),
            type_tag: "t",
            name: None,
            reason: ExitReason::Stopped,
        }
    }

    #[test]
    fn the_log_keeps_the_last_events_only() {
        let mut log = EventLog::new(NodeId::new("here").expect("a valid id"));
        for _ in 0..EVENT_LOG + 5 {
            log.push(&stopped());
        }
        assert_eq!(log.events.len(), EVENT_LOG);
        assert_eq!(log.events.front().map(|e| e.seq), Some(5));
        assert_eq!(log.events.back().map(|e| e.kind), Some("stopped"));
    }

    #[tokio::test]
    async fn a_collector_that_falls_behind_counts_what_it_lost() {
        let (tx, rx) = broadcast::channel(4);
        for _ in 0..10 {
            tx.send(stopped()).expect("a receiver");
        }
        drop(tx);
        let log = Arc::new(Mutex::new(EventLog::new(
            NodeId::new("here").expect("a valid id"),
        )));
        collect(rx, Arc::clone(&log)).await;
        let log = lock(&log);
        assert_eq!(log.missed, 6);
        assert_eq!(log.events.len(), 4);
    }
}
