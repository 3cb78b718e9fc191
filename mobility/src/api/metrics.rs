//! The metrics a node records through the [`metrics`](https://docs.rs/metrics)
//! facade: install a recorder (an exporter such as
//! `metrics-exporter-prometheus`) **before starting the node**, and they
//! appear there. Without a recorder nothing is recorded and nothing is
//! measured: no clock is read around handlers and no task samples the
//! gauges. (A node sees a recorder by its size, the facade's no-op one
//! being zero-sized; for a recorder of a zero-sized type, say
//! [`NodeBuilder::record_metrics(true)`](crate::NodeBuilder::record_metrics).)
//!
//! Every metric carries the label `node` (the node id); those about actors
//! also carry `actor_type` (the type tag). Handles are made once per node
//! and actor type, so recording a message allocates nothing.
//!
//! | name | kind | labels | meaning |
//! |---|---|---|---|
//! | `mobility_messages_handled_total` | counter | node, actor_type | messages (requests, casts, timers) handled |
//! | `mobility_handler_seconds` | histogram | node, actor_type | time inside a handler, per message |
//! | `mobility_mailbox_depth` | gauge | node, actor_type | messages waiting for the type's actors on the node, summed (sampled) |
//! | `mobility_actors` | gauge | node, actor_type | actors of the type active on the node (sampled) |
//! | `mobility_actors_spawned_total` | counter | node, actor_type | actors spawned on the node |
//! | `mobility_actors_stopped_total` | counter | node, actor_type, reason | actors that ended on the node; `reason`: `stopped`, `panicked`, `node_down` (shut down), `unreachable` (fenced), `link_lost` |
//! | `mobility_migrations_out_total` | counter | node, actor_type, outcome | migrations from the node; `outcome`: `success` or `failure` (the actor stayed) |
//! | `mobility_migrations_in_total` | counter | node, actor_type, outcome | arrivals on the node; `outcome`: `success` or `failure` (the node refused the actor) |
//! | `mobility_migration_freeze_seconds` | histogram | node, actor_type | freeze time of each migration from the node (`MigrationReport::freeze`) |
//! | `mobility_migration_bytes_total` | counter | node, actor_type | snapshot bytes of the migrations from the node |
//! | `mobility_forwarded_messages_total` | counter | node | messages the node forwarded toward an actor that had moved |
//! | `mobility_forwarders` | gauge | node | slots for actors that live elsewhere (sampled) |
//! | `mobility_link_bytes_sent_total` | counter | node | frame bytes the node sent to other nodes (before encryption) |
//! | `mobility_link_bytes_received_total` | counter | node | frame bytes the node received from other nodes (after decryption) |
//! | `mobility_link_refusals_total` | counter | node, reason | connections refused before authentication (`Transport::refusals`), per reason |
//! | `mobility_peers` | gauge | node | nodes linked to the node (sampled) |
//! | `mobility_cluster_members` | gauge | node | live members of the node's cluster, itself included (sampled) |
//!
//! *Sampled* metrics are read from the node every
//! [`NodeBuilder::metrics_interval`](crate::NodeBuilder::metrics_interval)
//! (1 s by default) by a task that runs only while a recorder is installed.
//! Counters that the node keeps itself (forwarded messages, link bytes,
//! refusals) are published at the same moments.

use ::metrics::{Counter, Histogram, Label};

use crate::proto::error::ExitReason;

/// Messages handled (counter; node, actor_type).
pub const MESSAGES_HANDLED: &str = "mobility_messages_handled_total";
/// Time inside a handler, in seconds (histogram; node, actor_type).
pub const HANDLER_SECONDS: &str = "mobility_handler_seconds";
/// Messages waiting, summed per type (gauge; node, actor_type).
pub const MAILBOX_DEPTH: &str = "mobility_mailbox_depth";
/// Actors active (gauge; node, actor_type).
pub const ACTORS: &str = "mobility_actors";
/// Actors spawned (counter; node, actor_type).
pub const ACTORS_SPAWNED: &str = "mobility_actors_spawned_total";
/// Actors ended (counter; node, actor_type, reason).
pub const ACTORS_STOPPED: &str = "mobility_actors_stopped_total";
/// Migrations from the node (counter; node, actor_type, outcome).
pub const MIGRATIONS_OUT: &str = "mobility_migrations_out_total";
/// Arrivals on the node (counter; node, actor_type, outcome).
pub const MIGRATIONS_IN: &str = "mobility_migrations_in_total";
/// Freeze time of migrations from the node (histogram; node, actor_type).
pub const MIGRATION_FREEZE_SECONDS: &str = "mobility_migration_freeze_seconds";
/// Snapshot bytes of migrations from the node (counter; node, actor_type).
pub const MIGRATION_BYTES: &str = "mobility_migration_bytes_total";
/// Messages forwarded toward a moved actor (counter; node).
pub const FORWARDED_MESSAGES: &str = "mobility_forwarded_messages_total";
/// Slots for actors elsewhere (gauge; node).
pub const FORWARDERS: &str = "mobility_forwarders";
/// Frame bytes sent to other nodes (counter; node).
pub const LINK_BYTES_SENT: &str = "mobility_link_bytes_sent_total";
/// Frame bytes received from other nodes (counter; node).
pub const LINK_BYTES_RECEIVED: &str = "mobility_link_bytes_received_total";
/// Connections refused before authentication (counter; node, reason).
pub const LINK_REFUSALS: &str = "mobility_link_refusals_total";
/// Linked nodes (gauge; node).
pub const PEERS: &str = "mobility_peers";
/// Live members of the cluster (gauge; node).
pub const CLUSTER_MEMBERS: &str = "mobility_cluster_members";

/// Whether a recorder is installed now (else the facade's no-op recorder
/// answers, which is zero-sized: a real recorder keeps some state).
pub(crate) fn recorder_installed() -> bool {
    ::metrics::with_recorder(|recorder| std::mem::size_of_val(recorder) != 0)
}

/// The `reason` label of an actor's end.
pub(crate) fn exit_label(reason: &ExitReason) -> &'static str {
    match reason {
        ExitReason::Stopped => "stopped",
        ExitReason::Panicked(_) => "panicked",
        ExitReason::NodeDown(_) => "node_down",
        ExitReason::Unreachable(_) => "unreachable",
        ExitReason::LinkLost(_) => "link_lost",
        ExitReason::NoSuchActor => "no_such_actor",
    }
}

/// The per-message handles of one actor type on one node, made once (see
/// the table above); no-op handles when no recorder was installed.
#[derive(Debug, Clone)]
pub(crate) struct TypeMeters {
    pub(crate) handled: Counter,
    pub(crate) handler_seconds: Histogram,
    /// Whether the node records (else the handles are no-ops).
    pub(crate) recording: bool,
    /// The labels, for the metrics of this type recorded less often.
    pub(crate) labels: [Label; 2],
}

impl TypeMeters {
    /// The handles of `type_tag` on node `node`, registered with the
    /// recorder installed now.
    pub(crate) fn register(node: &str, type_tag: &'static str) -> Self {
        let labels = [
            Label::new("node", node.to_owned()),
            Label::from_static_parts("actor_type", type_tag),
        ];
        TypeMeters {
            handled: ::metrics::counter!(MESSAGES_HANDLED, labels.iter()),
            handler_seconds: ::metrics::histogram!(HANDLER_SECONDS, labels.iter()),
            recording: true,
            labels,
        }
    }

    /// Handles that record nothing (no recorder).
    pub(crate) fn noop(node: &str, type_tag: &'static str) -> Self {
        TypeMeters {
            handled: Counter::noop(),
            handler_seconds: Histogram::noop(),
            recording: false,
            labels: [
                Label::new("node", node.to_owned()),
                Label::from_static_parts("actor_type", type_tag),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::metrics::{Gauge, Key, KeyName, Metadata, Recorder, SharedString, Unit};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// Counts what is registered with it.
    #[derive(Default)]
    struct Registering(AtomicU64);

    impl Recorder for Registering {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            self.0.fetch_add(1, Ordering::Relaxed);
            Counter::from_arc(Arc::new(AtomicU64::new(0)))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            self.0.fetch_add(1, Ordering::Relaxed);
            Histogram::noop()
        }
    }

    #[test]
    fn handlers_are_timed_only_with_a_recorder() {
        // No recorder in this test binary: the facade's no-op answers.
        assert!(!recorder_installed());
        let noop = TypeMeters::noop("n", "t");
        assert!(!noop.recording, "no clock read, no count");

        let recorder = Registering::default();
        ::metrics::with_local_recorder(&recorder, || {
            assert!(recorder_installed());
            let meters = TypeMeters::register("n", "t");
            assert!(meters.recording);
        });
        assert_eq!(
            recorder.0.load(Ordering::Relaxed),
            2,
            "messages handled and handler time, registered once"
        );
    }

    #[test]
    fn every_exit_reason_has_a_label() {
        let node = crate::proto::id::NodeId::new("n").expect("id");
        let labels = [
            exit_label(&ExitReason::Stopped),
            exit_label(&ExitReason::Panicked("x".into())),
            exit_label(&ExitReason::NodeDown(node.clone())),
            exit_label(&ExitReason::Unreachable(node.clone())),
            exit_label(&ExitReason::LinkLost(node)),
            exit_label(&ExitReason::NoSuchActor),
        ];
        let distinct: std::collections::HashSet<_> = labels.iter().collect();
        assert_eq!(distinct.len(), labels.len(), "{labels:?}");
    }
}
