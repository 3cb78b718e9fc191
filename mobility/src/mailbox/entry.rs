//! A node's slot for one actor: the mailbox every handle on this node sends
//! into, whether the actor lives here or elsewhere.
//!
//! One cell task reads the mailbox for the node's lifetime: it hosts the actor
//! while it is here, and forwards to wherever it is otherwise. Local senders
//! therefore keep one FIFO channel across every move.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::api::actor::Actor;
use crate::api::deadline::Deadlines;
pub(crate) use crate::api::host::LocalBody;
use crate::api::host::{Host, Mailbox};
use crate::api::reply::{ReplyResult, ReplySender, ReplyTo};
use crate::mailbox::activity::Activity;
use crate::mailbox::control::ControlQueue;
use crate::mailbox::direct::DirectSend;
use crate::mailbox::envelope::{Control, Envelope, NetControl};
use crate::mailbox::host::{Lent, Router};
use crate::mailbox::idle::IdleSlot;
use crate::proto::error::{Error, ExitReason};
pub(crate) use crate::proto::id::Route;
use crate::proto::id::{ActorId, NodeId};
use crate::proto::wire::WireEnvelope;

/// A node's mailbox slot for actor `id` of type `A`.
pub(crate) struct Entry<A: Actor> {
    pub(crate) id: ActorId,
    pub(crate) node_id: NodeId,
    pub(crate) timeout: Duration,
    pub(crate) capacity: Option<usize>,
    pub(crate) queued: AtomicUsize,
    pub(crate) exit: OnceLock<ExitReason>,
    pub(crate) route: Mutex<Route>,
    /// Whether the actor is active on this node right now.
    pub(crate) hosting: AtomicBool,
    pub(crate) tx: mpsc::UnboundedSender<Envelope<A>>,
    pub(crate) control: ControlQueue<Control<A>>,
    pub(crate) node: Weak<dyn Router>,
    /// The node's clock for request timeouts.
    pub(crate) deadlines: Arc<Deadlines>,
    /// Local senders' numbering while they send straight to the actor's
    /// node; `None` while the cell numbers (see `direct.rs`).
    pub(crate) direct: Mutex<Option<DirectSend>>,
    /// Whether `direct` may be `Some` (read without the lock).
    pub(crate) direct_on: AtomicBool,
    /// The node's view of its own stalls: an actor is not lent while the
    /// node may have been declared failed (see `StallGuard`).
    pub(crate) stall: Option<mobility_net::membership::StallGuard>,
    /// The actor, while it is idle here and lent to callers (see `idle.rs`).
    pub(crate) idle: IdleSlot<Box<dyn Lent<A>>>,
    /// What observers are told of the actor here (see `activity.rs`).
    pub(crate) activity: Activity,
}

impl<A: Actor> Entry<A> {
    /// Queues a message from a handle of this node. `counted` messages obey
    /// the mailbox bound; system messages do not.
    pub(crate) fn send_local(
        &self,
        body: LocalBody<A::Msg>,
        reply: Option<ReplySender>,
        counted: bool,
    ) -> Result<(), Error> {
        if self.sends_directly() {
            return self.send_direct(body, reply);
        }
        let counted = counted && self.capacity.is_some();
        if counted {
            let capacity = self.capacity.unwrap_or(usize::MAX);
            if self.queued.fetch_add(1, Ordering::AcqRel) >= capacity {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                return Err(Error::MailboxFull {
                    actor: self.id,
                    capacity,
                });
            }
        }
        self.put(Envelope::Local {
            body,
            reply,
            counted,
        })
        .map_err(|_| self.down_error())
    }

    /// Runs a request on the caller's task if the actor is idle here and
    /// its handler is a plain `fn` (see `idle.rs`): the reply is then
    /// already in the returned channel (unless the handler deferred it).
    /// Gives the message back otherwise, for the mailbox.
    pub(crate) fn call_now(&self, msg: A::Msg) -> Result<oneshot::Receiver<ReplyResult>, A::Msg> {
        if !A::runs_now(&msg) || self.stall.as_ref().is_some_and(|s| !s.serving_now()) {
            return Err(msg);
        }
        let Some(mut lent) = self.idle.borrow() else {
            return Err(msg);
        };
        let (tx, rx) = oneshot::channel();
        let started = self.activity.handler_starts();
        match lent
            .value()
            .handle_now(msg, ReplyTo::local(self.id, Some(tx)))
        {
            Ok(call_cell) => {
                // While `lent` is held this caller owns the actor (see
                // `activity.rs`).
                self.activity.handler_ran(started);
                if call_cell {
                    lent.call_cell();
                }
                Ok(rx)
            }
            Err((msg, _)) => Err(msg),
        }
    }

    /// Puts `envelope` in the mailbox. Every message goes in through here:
    /// a lent actor must not be borrowed past it (see `idle.rs`).
    pub(crate) fn put(
        &self,
        envelope: Envelope<A>,
    ) -> Result<(), mpsc::error::SendError<Envelope<A>>> {
        self.activity.putting();
        if let Err(refused) = self.tx.send(envelope) {
            self.activity.taken();
            return Err(refused);
        }
        self.idle.mailbox_used();
        Ok(())
    }

    /// The error a sender gets once the mailbox is closed.
    pub(crate) fn down_error(&self) -> Error {
        let reason = self
            .exit
            .get()
            .cloned()
            .unwrap_or_else(|| ExitReason::NodeDown(self.node_id.clone()));
        Error::ActorDown {
            actor: self.id,
            reason,
        }
    }

    /// The node this entry belongs to, if it still runs.
    pub(crate) fn node(&self) -> Option<Arc<dyn Router>> {
        self.node.upgrade()
    }

    pub(crate) fn route(&self) -> Route {
        self.route
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub(crate) fn set_route(&self, route: Route) {
        match self.route.lock() {
            Ok(mut r) => *r = route,
            Err(p) => *p.into_inner() = route,
        }
    }
}

/// The untyped face of an entry, for the node's tables and its links.
pub(crate) trait ErasedEntry: Send + Sync {
    fn type_tag(&self) -> &'static str;
    /// The actor's Rust type, as `std::any::type_name` says it.
    fn rust_type(&self) -> &'static str;
    /// What observers are told of the actor here.
    fn activity(&self) -> &Activity;
    fn deliver(&self, envelope: WireEnvelope) -> Result<(), WireEnvelope>;
    fn control(&self, control: NetControl);
    fn exit_reason(&self) -> Option<ExitReason>;
    fn is_hosting(&self) -> bool;
    fn actor(&self) -> ActorId;
    /// Where this node believes the actor lives, and since which epoch.
    fn current_route(&self) -> Route;
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
    /// Migrates the actor (as `Handle::migrate`), whatever its type.
    fn migrate(self: Arc<Self>, dest: crate::proto::id::Destination) -> MigrateFuture;
}

/// The outcome of a type-erased migration.
pub(crate) type MigrateFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<
                    crate::proto::migration::MigrationReport,
                    crate::proto::error::Error,
                >,
            > + Send,
    >,
>;

impl<A: Actor> ErasedEntry for Entry<A> {
    fn type_tag(&self) -> &'static str {
        A::TYPE_TAG
    }

    fn rust_type(&self) -> &'static str {
        std::any::type_name::<A>()
    }

    fn activity(&self) -> &Activity {
        &self.activity
    }

    fn deliver(&self, envelope: WireEnvelope) -> Result<(), WireEnvelope> {
        match self.put(Envelope::Wire(Box::new(envelope))) {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendError(Envelope::Wire(envelope))) => Err(*envelope),
            // We sent a `Wire` envelope, so that is what comes back.
            Err(mpsc::error::SendError(Envelope::Local { .. })) => Ok(()),
        }
    }

    fn control(&self, control: NetControl) {
        let _ = self.control.send(Control::Net(control));
    }

    fn exit_reason(&self) -> Option<ExitReason> {
        self.exit.get().cloned()
    }

    fn is_hosting(&self) -> bool {
        self.hosting.load(Ordering::Acquire)
    }

    fn actor(&self) -> ActorId {
        self.id
    }

    fn current_route(&self) -> Route {
        self.route()
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }

    fn migrate(self: Arc<Self>, dest: crate::proto::id::Destination) -> MigrateFuture {
        Box::pin(async move {
            crate::api::handle::Handle::from_mailbox(self)
                .migrate(dest)
                .await
        })
    }
}

impl<A: Actor> Mailbox<A> for Entry<A> {
    fn id(&self) -> ActorId {
        self.id
    }

    fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    fn route(&self) -> Route {
        Entry::route(self)
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    fn call_now(&self, msg: A::Msg) -> Result<oneshot::Receiver<ReplyResult>, A::Msg> {
        Entry::call_now(self, msg)
    }

    fn send_local(
        &self,
        body: LocalBody<A::Msg>,
        reply: Option<ReplySender>,
        counted: bool,
    ) -> Result<(), Error> {
        Entry::send_local(self, body, reply, counted)
    }

    fn down_error(&self) -> Error {
        Entry::down_error(self)
    }

    fn exit_reason(&self) -> Option<ExitReason> {
        self.exit.get().cloned()
    }

    fn host(&self) -> Option<Arc<dyn Host>> {
        self.node.upgrade().map(|node| node as Arc<dyn Host>)
    }
}
