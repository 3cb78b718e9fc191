//! Cluster membership: who is in the cluster, what each member publishes,
//! and who joined, left or failed.
//!
//! Built on the [`chitchat`] gossip engine (scuttlebutt reconciliation and a
//! phi-accrual failure detector), whose UDP datagrams go through an
//! encrypted transport (`auth_udp`): each one is sealed with
//! XChaCha20-Poly1305 under a key derived from the cluster secret and the
//! cluster name, nothing is decoded before the AEAD check, and replays are
//! dropped unanswered (a per-sender incarnation and counter window, and an
//! echo of the receiver's per-run token; no clock is read).
//!
//! - `config`: [`MembershipConfig`] and its mapping onto chitchat's failure
//!   detector;
//! - `auth_udp`: the sealed datagram format, replay protection and
//!   chitchat's transport;
//! - `events`: [`Member`], [`MemberEvent`] and the pure logic that turns
//!   successive sets of live nodes into events;
//! - `handle`: [`Membership`], the running instance.

pub(crate) mod auth_udp;
mod config;
mod events;
mod handle;
mod quorum;
mod stall;

pub use config::MembershipConfig;
pub use events::{Member, MemberEvent};
pub use handle::Membership;
pub use stall::{StallGuard, Standing};
