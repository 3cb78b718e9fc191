//! The node's links to other nodes: the direct ones, the relays for nodes
//! reached through another, and the frames waiting while a link to a known
//! address is dialed on first use.

use crate::sync::{lock, read, write};
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use bytes::Bytes;
use mobility_net::LinkSender;

use crate::proto::id::NodeId;

/// How a frame can leave toward a node, as the link table sees it now.
pub(crate) enum Path {
    /// A direct link.
    Direct(LinkSender),
    /// No direct link; a linked node carries frames there over this link.
    Relay(LinkSender),
    /// No way there yet.
    None,
}

/// Where a frame went when no link existed.
pub(crate) enum Queued {
    /// The link came up meanwhile: sent.
    Sent,
    /// Waiting behind a dial already under way.
    Waiting,
    /// Waiting; the caller must start the dial.
    DialNeeded,
}

#[derive(Default)]
pub(crate) struct Links {
    direct: RwLock<HashMap<NodeId, LinkSender>>,
    /// For nodes without a direct link: the linked node that traffic from
    /// them came through, which can carry frames back.
    relays: RwLock<HashMap<NodeId, NodeId>>,
    /// Frames for nodes being dialed, in the order they were sent.
    dialing: Mutex<HashMap<NodeId, Vec<Bytes>>>,
    /// Links to members declared failed or gone: not used, but kept (a
    /// session ends once its last sender is dropped) in case the member
    /// turns out alive and is seen again.
    parked: Mutex<HashMap<NodeId, LinkSender>>,
}

impl Links {
    pub(crate) fn has_direct(&self, node: &NodeId) -> bool {
        read(&self.direct).contains_key(node)
    }

    pub(crate) fn direct(&self, node: &NodeId) -> Option<LinkSender> {
        read(&self.direct).get(node).cloned()
    }

    /// The linked nodes, sorted.
    pub(crate) fn linked(&self) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = read(&self.direct).keys().cloned().collect();
        peers.sort();
        peers
    }

    pub(crate) fn path(&self, to: &NodeId) -> Path {
        if let Some(link) = self.direct(to) {
            return Path::Direct(link);
        }
        let Some(hop) = read(&self.relays).get(to).cloned() else {
            return Path::None;
        };
        match self.direct(&hop) {
            Some(link) if hop != *to => Path::Relay(link),
            _ => Path::None,
        }
    }

    /// Remembers that `origin` can be reached through linked node `via`.
    pub(crate) fn learn_relay(&self, origin: &NodeId, via: &NodeId) {
        if origin == via || self.has_direct(origin) {
            return;
        }
        if read(&self.relays).get(origin) != Some(via) {
            write(&self.relays).insert(origin.clone(), via.clone());
        }
    }

    /// A link to `peer` is up (new, or replacing one). Frames that waited
    /// for it go first, before any sender can see the link.
    pub(crate) fn add(&self, peer: NodeId, link: LinkSender) {
        let mut dialing = lock(&self.dialing);
        for frame in dialing.remove(&peer).unwrap_or_default() {
            let _ = link.send(frame);
        }
        lock(&self.parked).remove(&peer);
        write(&self.direct).insert(peer, link);
    }

    /// Stops using the link to `peer` (declared failed or gone) but keeps
    /// its session open; relays to it or through it are forgotten.
    pub(crate) fn park(&self, peer: &NodeId) {
        if let Some(link) = write(&self.direct).remove(peer) {
            lock(&self.parked).insert(peer.clone(), link);
        }
        write(&self.relays).retain(|to, via| to != peer && via != peer);
    }

    /// `peer` is seen alive again: its parked link is used again.
    pub(crate) fn unpark(&self, peer: &NodeId) {
        let parked = lock(&self.parked).remove(peer);
        if let Some(link) = parked {
            self.add(peer.clone(), link);
        }
    }

    /// Drops the link to `peer`; whether there was one.
    pub(crate) fn remove(&self, peer: &NodeId) -> bool {
        write(&self.relays).retain(|to, via| to != peer && via != peer);
        let parked = lock(&self.parked).remove(peer).is_some();
        write(&self.direct).remove(peer).is_some() || parked
    }

    /// Keeps `frame` until the link to `to` is up. Checked again under the
    /// lock `add` flushes with, so a frame is never stranded.
    pub(crate) fn queue(&self, to: &NodeId, frame: Bytes) -> Queued {
        let mut dialing = lock(&self.dialing);
        if let Some(link) = self.direct(to) {
            return match link.send(frame) {
                Ok(()) => Queued::Sent,
                // A closed link: wait for its replacement like the others.
                Err(_) => Queued::Waiting,
            };
        }
        match dialing.get_mut(to) {
            Some(waiting) => {
                waiting.push(frame);
                Queued::Waiting
            }
            None => {
                dialing.insert(to.clone(), vec![frame]);
                Queued::DialNeeded
            }
        }
    }

    /// The dial to `to` failed: the frames that waited for it.
    pub(crate) fn dial_failed(&self, to: &NodeId) -> Vec<Bytes> {
        lock(&self.dialing).remove(to).unwrap_or_default()
    }

    pub(crate) fn clear(&self) {
        write(&self.direct).clear();
        write(&self.relays).clear();
        lock(&self.dialing).clear();
        lock(&self.parked).clear();
    }
}
