//! The node's side of the metrics (named and documented in
//! `api::metrics`): per actor type handles made once, events turned into
//! counters, and a sampler task for the gauges and the node's own counters.
//!
//! Everything here is decided once, at the node's start: without a
//! recorder then (or with `NodeBuilder::record_metrics(false)`), the
//! handles are no-ops, frame bytes are not counted and no sampler runs.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ::metrics::Label;

use super::*;
use crate::api::metrics::{self as names, exit_label, recorder_installed, TypeMeters};
use crate::proto::observe::NodeEvent;

/// What a node records.
pub(crate) struct NodeMeters {
    /// A recorder was installed when the node started.
    recording: bool,
    node: String,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    /// The handles of each actor type seen on this node.
    types: Mutex<HashMap<&'static str, Arc<TypeMeters>>>,
}

impl NodeMeters {
    /// `forced`: what the builder said, if anything (see
    /// `NodeBuilder::record_metrics`).
    pub(super) fn new(node: &NodeId, forced: Option<bool>) -> Self {
        NodeMeters {
            recording: forced.unwrap_or_else(recorder_installed),
            node: node.to_string(),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            types: Mutex::new(HashMap::new()),
        }
    }

    /// The handles of `type_tag` on this node (made on first use).
    pub(super) fn of_type(&self, type_tag: &'static str) -> Arc<TypeMeters> {
        lock(&self.types)
            .entry(type_tag)
            .or_insert_with(|| {
                Arc::new(if self.recording {
                    TypeMeters::register(&self.node, type_tag)
                } else {
                    TypeMeters::noop(&self.node, type_tag)
                })
            })
            .clone()
    }

    /// A frame of `bytes` left for another node.
    pub(super) fn sent(&self, bytes: usize) {
        if self.recording {
            self.bytes_sent.fetch_add(bytes as u64, Relaxed);
        }
    }

    /// A frame of `bytes` came from another node.
    pub(super) fn received(&self, bytes: usize) {
        if self.recording {
            self.bytes_received.fetch_add(bytes as u64, Relaxed);
        }
    }

    fn node_label(&self) -> Vec<Label> {
        vec![Label::new("node", self.node.clone())]
    }

    /// The labels of `type_tag` (a type this binary does not know is
    /// `unknown`: a peer's tag never makes a new series here).
    fn type_labels(&self, type_tag: &str, registry: &Registry) -> Vec<Label> {
        let tag = registry.get(type_tag).map_or("unknown", |ty| ty.tag());
        self.of_type(tag).labels.to_vec()
    }

    /// Counts what `event` tells (lifecycle events are rare: the labels
    /// are made for each).
    pub(super) fn record(&self, event: &NodeEvent, registry: &Registry) {
        if !self.recording {
            return;
        }
        let with = |mut labels: Vec<Label>, key: &'static str, value: &'static str| {
            labels.push(Label::from_static_parts(key, value));
            labels
        };
        match event {
            NodeEvent::Spawned { type_tag, .. } => {
                let labels = self.type_labels(type_tag, registry);
                ::metrics::counter!(names::ACTORS_SPAWNED, labels).increment(1);
            }
            NodeEvent::Stopped {
                type_tag, reason, ..
            } => {
                let labels = with(
                    self.type_labels(type_tag, registry),
                    "reason",
                    exit_label(reason),
                );
                ::metrics::counter!(names::ACTORS_STOPPED, labels).increment(1);
            }
            NodeEvent::Departed { report } => {
                let labels = self.type_labels(&report.type_tag, registry);
                let out = with(labels.clone(), "outcome", "success");
                ::metrics::counter!(names::MIGRATIONS_OUT, out).increment(1);
                ::metrics::histogram!(names::MIGRATION_FREEZE_SECONDS, labels.clone())
                    .record(report.freeze);
                ::metrics::counter!(names::MIGRATION_BYTES, labels)
                    .increment(report.snapshot_bytes);
            }
            NodeEvent::MigrationFailed { type_tag, .. } => {
                let labels = with(self.type_labels(type_tag, registry), "outcome", "failure");
                ::metrics::counter!(names::MIGRATIONS_OUT, labels).increment(1);
            }
            NodeEvent::Arrived { type_tag, .. } => {
                let labels = with(self.type_labels(type_tag, registry), "outcome", "success");
                ::metrics::counter!(names::MIGRATIONS_IN, labels).increment(1);
            }
            NodeEvent::ArrivalRefused { type_tag, .. } => {
                let labels = with(self.type_labels(type_tag, registry), "outcome", "failure");
                ::metrics::counter!(names::MIGRATIONS_IN, labels).increment(1);
            }
            NodeEvent::Member(_) => {}
        }
    }
}

impl Node {
    /// Starts the task that samples the gauges every `metrics_interval`,
    /// if a recorder is installed. It ends with the node.
    pub(super) fn start_metrics_sampler(&self) {
        if !self.shared.meters.recording {
            return;
        }
        let node = self.downgrade();
        let every = self.shared.config.metrics_interval;
        self.spawn_task(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match node.upgrade() {
                    Some(node) if !node.shared.stopped.load(Ordering::Acquire) => {
                        node.sample_metrics()
                    }
                    _ => return,
                }
            }
        });
    }

    /// Publishes the gauges and the node's own counters once.
    pub(super) fn sample_metrics(&self) {
        let meters = &self.shared.meters;
        // Per type: actors and waiting messages (zero for a type whose
        // last actor left, so its gauges do not stay up).
        let mut per_type: HashMap<&'static str, (usize, usize)> = lock(&meters.types)
            .keys()
            .map(|tag| (*tag, (0, 0)))
            .collect();
        for actor in self.actors() {
            let sums = per_type.entry(actor.type_tag).or_default();
            sums.0 += 1;
            sums.1 += actor.mailbox_depth;
        }
        for (tag, (actors, depth)) in per_type {
            let labels = meters.of_type(tag).labels.to_vec();
            ::metrics::gauge!(names::ACTORS, labels.clone()).set(actors as f64);
            ::metrics::gauge!(names::MAILBOX_DEPTH, labels).set(depth as f64);
        }

        let node = meters.node_label();
        let stats = self.stats();
        ::metrics::counter!(names::FORWARDED_MESSAGES, node.clone())
            .absolute(stats.forwarded_messages);
        ::metrics::gauge!(names::FORWARDERS, node.clone()).set(stats.forwarders as f64);
        ::metrics::counter!(names::LINK_BYTES_SENT, node.clone())
            .absolute(meters.bytes_sent.load(Relaxed));
        ::metrics::counter!(names::LINK_BYTES_RECEIVED, node.clone())
            .absolute(meters.bytes_received.load(Relaxed));
        ::metrics::gauge!(names::PEERS, node.clone()).set(self.peers().len() as f64);
        ::metrics::gauge!(names::CLUSTER_MEMBERS, node.clone()).set(self.members().len() as f64);
        if let Some(network) = &self.shared.network {
            let refusals = network.transport().refusals();
            let per_reason = [
                ("unauthenticated_full", refusals.unauthenticated_full),
                ("per_address", refusals.per_address),
                ("evicted", refusals.evicted),
                ("handshake_timeout", refusals.handshake_timeout),
                ("bad_handshake", refusals.bad_handshake),
                ("bad_identity", refusals.bad_identity),
                ("links_full", refusals.links_full),
                ("accept_failed", refusals.accept_failed),
            ];
            for (reason, count) in per_reason {
                let mut labels = node.clone();
                labels.push(Label::from_static_parts("reason", reason));
                ::metrics::counter!(names::LINK_REFUSALS, labels).absolute(count);
            }
        }
    }
}
