//! Cluster membership: who is in the cluster, what each member publishes,
//! and who joined, left or failed.
//!
//! Built on the [`chitchat`] gossip engine (scuttlebutt reconciliation and a
//! phi-accrual failure detector), whose UDP datagrams go through an
//! authenticated transport (`auth_udp`): each one carries a timestamp and a
//! keyed BLAKE3 tag under a key derived from the cluster secret and the
//! cluster name, and nothing is decoded before the tag is checked.
//!
//! - `config`: [`MembershipConfig`] and its mapping onto chitchat's failure
//!   detector;
//! - `auth_udp`: the sealed datagram format and chitchat's transport;
//! - `events`: [`Member`], [`MemberEvent`] and the pure logic that turns
//!   successive sets of live nodes into events;
//! - `handle`: [`Membership`], the running instance.

mod auth_udp;
mod config;
mod events;
mod handle;
mod quorum;
mod stall;

pub use config::MembershipConfig;
pub use events::{Member, MemberEvent};
pub use handle::Membership;
pub use stall::{StallGuard, Standing};
