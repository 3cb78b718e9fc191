//! Entry points for the fuzz targets of `fuzz/` (not a public API: it may
//! change in any release). Thin wrappers around the decoders that frames
//! from an authenticated peer reach: the frame header (`PeerMsg`, in its
//! compact or serde form) and a migrating actor's snapshot, decoded and
//! taken in as a destination does.

use crate::api::actor::Actor;
use crate::api::codec::decode_on;
use crate::api::timers::Timers;
use crate::proto::migration::{QueuedWire, Snapshot};
use crate::proto::wire::{self, PeerMsg, WireBody};

/// The runtime protocol version nodes put in their `Hello` (`app_version`).
pub const PROTOCOL_VERSION: u32 = wire::PROTOCOL_VERSION;

/// A frame's header as decoded.
#[derive(Debug)]
pub struct PeerFrame(PeerMsg);

impl PeerFrame {
    /// Encodes it as a node sends it (compact form when it has one), with
    /// no tail.
    pub fn frame(&self) -> Result<Vec<u8>, String> {
        wire::frame_of(&self.0).map_err(|e| e.to_string())
    }
}

/// Splits a frame from a peer into its header and its tail, as a node's
/// link reader does.
pub fn open_frame(frame: &[u8]) -> Result<(PeerFrame, Vec<u8>), String> {
    let frame = bytes::Bytes::copy_from_slice(frame);
    let (header, tail) = wire::open_frame(&frame).map_err(|e| e.to_string())?;
    Ok((PeerFrame(header), tail.to_vec()))
}

/// A migrating actor's snapshot as a destination took it in.
#[derive(Debug)]
pub struct Arrived<A>(Snapshot<A>);

impl<A: Actor> Arrived<A> {
    /// Encodes it again as a source does.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        mobility_net::encode(&self.0).map_err(|e| e.to_string())
    }

    /// The actor's state.
    pub fn state(&self) -> &A {
        &self.0.state
    }
}

/// Decodes the snapshot of an `A` (the tail of a `Prepare` frame) and takes
/// it in as a destination does before the actor runs: the nodes it owes
/// something to, its timers rearmed (and those due fired), its queued
/// messages decoded as they are when handled.
pub fn arrive<A: Actor>(bytes: &[u8]) -> Result<Arrived<A>, String> {
    let snapshot: Snapshot<A> = decode_on(None, bytes).map_err(|e| e.to_string())?;
    let _ = snapshot.nodes_owed();
    let now = tokio::time::Instant::now();
    let mut timers = Timers::restore(snapshot.timers.clone(), snapshot.next_timer, now);
    let _ = timers.pop_due(now);
    for queued in snapshot.queue.iter().chain(&snapshot.postponed) {
        let msg = match queued {
            QueuedWire::Numbered(envelope) => match &envelope.body {
                WireBody::User(msg) => msg,
                _ => continue,
            },
            QueuedWire::Timer(msg, _) | QueuedWire::Replay { msg, .. } => msg,
        };
        let _ = decode_on::<A::Msg>(None, msg);
    }
    Ok(Arrived(snapshot))
}
