//! [`MembershipConfig`] and its mapping onto chitchat's settings.

use std::net::SocketAddr;
use std::time::Duration;

use chitchat::FailureDetectorConfig;

use crate::{NodeId, Secret};

/// How a node takes part in cluster membership.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// This node's id; two live members never share one.
    pub node: NodeId,
    /// The cluster's name: nodes of other clusters are not seen (and, since
    /// the name is part of the gossip key, cannot even be heard).
    pub cluster: String,
    /// The cluster secret: every gossip datagram is encrypted and
    /// authenticated with a key derived from it and the cluster name.
    /// Replays are refused by counters, not clocks: members' clocks need not
    /// agree.
    pub secret: Secret,
    /// The UDP address to bind and to advertise to peers: a concrete IP
    /// address and port (port 0 and unspecified IPs are refused).
    pub gossip_addr: SocketAddr,
    /// `host:port` gossip addresses of seed members (this node's own address
    /// may be among them). Host names are resolved at start and every minute.
    pub seeds: Vec<String>,
    /// How often this node gossips with a few peers (default 100 ms; at
    /// least 1 ms).
    pub gossip_interval: Duration,
    /// Roughly how long a silent member takes to be declared failed
    /// (default 2 s; at least two gossip intervals).
    pub failure_timeout: Duration,
    /// Split brain resolution (default on): when members become unreachable,
    /// the side with more than half of the members seen recently keeps
    /// running (on a tie, the side with the lowest node id) and the other
    /// fences itself, so an actor never lives on one side while the other
    /// reports it down. Off: every side keeps running.
    pub keep_majority: bool,
}

/// Samples in the failure detector's window. Kept small on purpose: with
/// chitchat's prior (the configured gossip interval, weight 5) dominating the
/// mean, the time to declare a silent member failed stays close to
/// `failure_timeout` whatever the rate at which its heartbeats are relayed.
const SAMPLING_WINDOW: usize = 4;
/// How many failure timeouts a dead member is remembered before its state is
/// dropped (and how long deleted keys keep their tombstones).
const GRACE_PERIOD_FACTOR: u32 = 30;

impl MembershipConfig {
    /// A configuration with no seeds, a 100 ms gossip interval and a 2 s
    /// failure timeout.
    pub fn new(
        node: NodeId,
        cluster: impl Into<String>,
        secret: Secret,
        gossip_addr: SocketAddr,
    ) -> Self {
        MembershipConfig {
            node,
            cluster: cluster.into(),
            secret,
            gossip_addr,
            seeds: Vec::new(),
            gossip_interval: Duration::from_millis(100),
            failure_timeout: Duration::from_secs(2),
            keep_majority: true,
        }
    }

    /// The gossip interval actually used.
    pub(super) fn effective_gossip_interval(&self) -> Duration {
        self.gossip_interval.max(Duration::from_millis(1))
    }

    /// The failure timeout actually used.
    pub(super) fn effective_failure_timeout(&self) -> Duration {
        self.failure_timeout
            .max(self.effective_gossip_interval().saturating_mul(2))
    }

    /// chitchat's phi-accrual detector declares a member dead when
    /// `phi = time since its last heartbeat / mean heartbeat interval`
    /// exceeds `phi_threshold`. The mean is smoothed towards
    /// `initial_interval` with a weight of 5 samples; the window holds
    /// [`SAMPLING_WINDOW`] samples, so the mean stays between about 0.6 and
    /// 1 gossip interval on a quiet network (heartbeats of a member arrive
    /// one to three times per interval, directly or relayed). With the
    /// threshold at `failure_timeout / gossip_interval`, a silent member is
    /// declared failed between about 0.6 and 1 `failure_timeout` after its
    /// last heartbeat, plus up to one gossip interval (liveness is computed
    /// once per round). Intervals longer than `failure_timeout` are not
    /// sampled (they are outages, not the normal rhythm).
    pub(super) fn failure_detector_config(&self) -> FailureDetectorConfig {
        let interval = self.effective_gossip_interval();
        let timeout = self.effective_failure_timeout();
        FailureDetectorConfig {
            phi_threshold: timeout.as_secs_f64() / interval.as_secs_f64(),
            sampling_window_size: SAMPLING_WINDOW,
            max_interval: timeout,
            initial_interval: interval,
            dead_node_grace_period: self.grace_period(),
        }
    }

    /// How long a dead member and deleted keys are remembered.
    pub(super) fn grace_period(&self) -> Duration {
        self.effective_failure_timeout()
            .saturating_mul(GRACE_PERIOD_FACTOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MembershipConfig {
        MembershipConfig::new(
            NodeId::new("n").unwrap_or_else(|_| panic!("valid id")),
            "c",
            Secret::from("s"),
            SocketAddr::from(([127, 0, 0, 1], 7000)),
        )
    }

    #[test]
    fn defaults_map_onto_the_failure_detector() {
        let detector = config().failure_detector_config();
        assert!((detector.phi_threshold - 20.0).abs() < 1e-9);
        assert_eq!(detector.initial_interval, Duration::from_millis(100));
        assert_eq!(detector.max_interval, Duration::from_secs(2));
        assert_eq!(detector.dead_node_grace_period, Duration::from_secs(60));
    }

    #[test]
    fn silly_values_are_clamped() {
        let mut config = config();
        config.gossip_interval = Duration::ZERO;
        config.failure_timeout = Duration::ZERO;
        assert_eq!(config.effective_gossip_interval(), Duration::from_millis(1));
        assert_eq!(config.effective_failure_timeout(), Duration::from_millis(2));
        let detector = config.failure_detector_config();
        assert!((detector.phi_threshold - 2.0).abs() < 1e-9);
    }
}
