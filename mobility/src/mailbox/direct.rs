//! Direct sending: a handle whose actor lives on another node sends its
//! messages straight onto the link to that node, instead of through the
//! forwarding cell's task. A remote call then costs one task hop less on
//! the caller's side.
//!
//! Order is what makes this delicate: local senders' messages form one
//! numbered stream, and a sender's messages must keep their order whoever
//! numbers them. So the numbering (`DirectSend`) moves between the cell and
//! the senders only under the entry's `direct` lock, and a sender numbers
//! and hands its message to the link under that same lock.
//!
//! - Direct sending is on from the moment an entry is made for an actor
//!   elsewhere (before any handle can see it), so no message of a local
//!   sender can be waiting in the mailbox when it starts.
//! - The cell turns it off for good when the actor may come here (a prepare
//!   arrives) and when the cell ends: it takes the numbering back under the
//!   lock, and from then on a sender that still saw it on finds `None`
//!   under the lock and queues in the mailbox, behind everything it sent
//!   directly. It is never turned on again for that entry: a sender that
//!   saw it off could still be about to queue a message, which a direct
//!   send would overtake.

use std::sync::atomic::Ordering;

use crate::api::actor::Actor;
use crate::api::reply::ReplySender;
use crate::mailbox::entry::{Entry, LocalBody, Route};
use crate::mailbox::envelope::{Control, Envelope, Item, NetControl, Numbered};
use crate::proto::error::Error;
use crate::proto::wire::Origin;
use crate::sync::lock;

/// The numbering of this node's stream toward the actor, held by local
/// senders while they send directly.
pub(crate) struct DirectSend {
    pub(crate) stream: Origin,
    pub(crate) next_seq: u64,
}

impl<A: Actor> Entry<A> {
    /// Whether local senders send directly now (a hint; the lock decides).
    pub(crate) fn sends_directly(&self) -> bool {
        self.direct_on.load(Ordering::Acquire)
    }

    /// Numbers `body` and sends it to where the actor lives, or queues it
    /// in the mailbox if the cell took the numbering back meanwhile.
    pub(crate) fn send_direct(
        &self,
        body: LocalBody<A::Msg>,
        reply: Option<ReplySender>,
    ) -> Result<(), Error> {
        let mut direct = lock(&self.direct);
        let Some(numbering) = direct.as_mut() else {
            // Still under the lock: nothing this sender sends next can
            // overtake this message.
            return self
                .put(Envelope::Local {
                    body,
                    reply,
                    counted: false,
                })
                .map_err(|_| self.down_error());
        };
        let Some(node) = self.node() else {
            return Err(self.down_error());
        };
        let mut route = self.route();
        if let Some(relocated) = node.relocated(self.id, &route) {
            numbering.stream = Origin::fresh(node.id());
            numbering.next_seq = 0;
            route = relocated;
            self.set_route(route.clone());
            self.reroute_cell(route.clone());
        }
        let numbered = Numbered::<A> {
            origin: numbering.stream.clone(),
            seq: numbering.next_seq,
            item: Item::Local { body, reply },
            hops: 0,
        };
        numbering.next_seq += 1;
        let envelope = numbered.into_wire(&*node, self.id);
        if let Some(newer) = node.deliver_to(self.id, A::TYPE_TAG.to_owned(), &route, envelope) {
            self.reroute_cell(newer);
        }
        Ok(())
    }

    /// Takes the numbering back from local senders for good: they queue in
    /// the mailbox from now on (see the module's docs).
    pub(crate) fn stop_direct(&self) -> Option<DirectSend> {
        let mut direct = lock(&self.direct);
        self.direct_on.store(false, Ordering::Release);
        direct.take()
    }

    /// Tells the cell of a newer route found while sending.
    fn reroute_cell(&self, route: Route) {
        let moved = NetControl::Moved {
            node: route.node,
            epoch: route.epoch,
        };
        let _ = self.control.send(Control::Net(moved));
    }

    /// A new stream (numbering from 0) toward a new route. Direct senders
    /// see both change at once: under their lock, no message of the new
    /// stream goes to the old route, nor one of the old stream to the new.
    pub(crate) fn restream(&self, stream: &Origin, route: Route) {
        let mut direct = lock(&self.direct);
        if let Some(numbering) = direct.as_mut() {
            numbering.stream = stream.clone();
            numbering.next_seq = 0;
        }
        self.set_route(route);
    }
}
