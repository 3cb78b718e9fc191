//! Handling one message: decoding, the handler (caught if it panics),
//! postponing and state changes of state machines, and the actor's end.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;

use futures_util::FutureExt;

use super::hosted::Hosted;
use super::queued::{reject_addr, Queued};
use super::{panic_message, Cell, Mode, MAX_ENTERS};
use crate::api::actor::Actor;
use crate::api::reply::ReplyTo;
use crate::mailbox::entry::LocalBody;
use crate::mailbox::envelope::Item;
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::ActorId;
use crate::proto::migration::QueuedWire;
use crate::proto::observe::NodeEvent;
use crate::proto::wire::WireBody;

/// The error for a message this build cannot decode: a handler that this
/// version of the actor type does not have (the caller runs another build)
/// is named as such; anything else is the codec's error.
pub(crate) fn undecodable<A: Actor>(actor: ActorId, error: Error) -> Error {
    let Error::Codec(text) = &error else {
        return error;
    };
    // serde's words for an enum variant the type does not have.
    let handler = text
        .split("unknown variant `")
        .nth(1)
        .and_then(|rest| rest.split('`').next());
    match handler {
        Some(handler) => Error::UnknownHandler {
            actor,
            type_tag: A::TYPE_TAG.to_owned(),
            version: A::VERSION,
            handler: snake_case(handler),
        },
        None => error,
    }
}

/// `SendMe` -> `send_me`: a handler's name from its message variant.
fn snake_case(variant: &str) -> String {
    let mut name = String::with_capacity(variant.len() + 4);
    for (i, c) in variant.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.extend(c.to_lowercase());
    }
    name
}

impl<A: Actor> Cell<A> {
    pub(super) async fn handle(&mut self, item: Queued<A>) {
        // Nothing is handled by a node that may have been declared failed
        // while it was stalled (the cluster may have told this message's
        // caller, or anyone, that the actor is down): it waits to know.
        if !match self.node.may_serve_now() {
            Some(serving) => serving,
            None => self.node.standing_settled().await,
        } {
            let reason = ExitReason::Unreachable(self.node.id().clone());
            item.reject(&self.node, self.id(), &reason);
            return;
        }
        let Mode::Hosting(hosted) = &mut self.mode else {
            return;
        };
        let actor = hosted.ctx.id();
        // The message as bytes when it came so (kept if it may be postponed).
        let mut raw: Option<Vec<u8>> = None;
        let (body, reply) = match item {
            Queued::Timer(bytes, _) => {
                match crate::api::codec::decode_on::<A::Msg>(Some(self.node.clone()), &bytes) {
                    Ok(msg) => {
                        raw = Some(bytes);
                        (LocalBody::User(msg), ReplyTo::nobody(actor))
                    }
                    Err(error) => {
                        // A timer set by an older version for a handler this
                        // one dropped: nobody waits on it, so it is dropped
                        // with a warning that names the handler.
                        let error = undecodable::<A>(actor, error);
                        tracing::warn!(%actor, %error, "a timer's message was dropped");
                        return;
                    }
                }
            }
            Queued::Replay { msg: bytes, reply } => {
                match crate::api::codec::decode_on::<A::Msg>(Some(self.node.clone()), &bytes) {
                    Ok(msg) => {
                        raw = Some(bytes);
                        (LocalBody::User(msg), reply)
                    }
                    Err(error) => {
                        tracing::error!(%actor, %error, "a postponed message did not decode");
                        reply.fail(undecodable::<A>(actor, error));
                        return;
                    }
                }
            }
            Queued::Numbered(numbered) => match numbered.item {
                Item::Local { body, reply } => (body, ReplyTo::local(actor, reply)),
                Item::Wire { body, reply } => {
                    let reply = ReplyTo::remote(
                        actor,
                        self.node.clone(),
                        numbered.origin.node.clone(),
                        reply,
                    );
                    let body = match body {
                        WireBody::User(bytes) => {
                            match crate::api::codec::decode_on::<A::Msg>(
                                Some(self.node.clone()),
                                &bytes,
                            ) {
                                Ok(msg) => {
                                    raw = Some(bytes);
                                    LocalBody::User(msg)
                                }
                                Err(error) => {
                                    tracing::warn!(%actor, %error, "a message did not decode; refused");
                                    reply.fail(undecodable::<A>(actor, error));
                                    return;
                                }
                            }
                        }
                        WireBody::Stop => LocalBody::Stop,
                        WireBody::Monitor(id) => {
                            hosted.monitors.push((numbered.origin.node, id));
                            return;
                        }
                        WireBody::Migrate(dest) => LocalBody::Migrate(Box::new(dest)),
                        WireBody::Noop => return,
                    };
                    (body, reply)
                }
            },
        };
        match body {
            LocalBody::User(msg) => {
                let before = hosted.state.state_key();
                hosted.cancel_event_timeout();
                // A state machine keeps the message while it is handled, in
                // case the handler postpones it.
                let kept = match before {
                    Some(_) if A::may_postpone(&msg) => {
                        raw.or_else(|| mobility_net::encode(&msg).ok())
                    }
                    _ => None,
                };
                hosted.ctx.postpone_requested = false;
                // A plain handler runs without making the dispatch future.
                let started = self.entry.activity.handler_starts();
                let ran = match hosted.run_plain(msg, reply) {
                    Ok(Err((msg, reply))) => {
                        AssertUnwindSafe(hosted.state.dispatch(msg, &mut hosted.ctx, reply))
                            .catch_unwind()
                            .await
                    }
                    Ok(Ok(())) => Ok(()),
                    Err(panic) => Err(panic),
                };
                self.entry.activity.handler_ran(started);
                if let Err(panic) = ran {
                    let reason = ExitReason::Panicked(panic_message(&*panic));
                    tracing::error!(%actor, %reason, "handler panicked; the actor is down");
                    let Mode::Hosting(hosted) = std::mem::replace(&mut self.mode, Mode::Stopped)
                    else {
                        return;
                    };
                    Box::pin(self.exit(hosted, reason, None)).await;
                    return;
                }
                let Mode::Hosting(hosted) = &mut self.mode else {
                    return;
                };
                if std::mem::take(&mut hosted.ctx.postpone_requested) {
                    let reply = hosted.ctx.postponed_reply.take();
                    match kept {
                        Some(msg) => hosted.postponed.push(QueuedWire::Replay {
                            msg,
                            reply: reply.and_then(|r| r.into_addr(&*self.node)),
                        }),
                        None => {
                            tracing::error!(%actor, "a message could not be kept to postpone it; refused");
                            if let Some(reply) = reply {
                                reply.fail(Error::Codec(
                                    "the postponed message could not be encoded".into(),
                                ));
                            }
                        }
                    }
                }
                if before.is_some() && hosted.state.state_key() != before {
                    Box::pin(self.enter_state(false)).await;
                }
                self.after_handler().await;
            }
            LocalBody::Monitor(id) => hosted.monitors.push((self.node.id().clone(), id)),
            LocalBody::Stop => {
                let Mode::Hosting(hosted) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
                    return;
                };
                Box::pin(self.exit(hosted, ExitReason::Stopped, Some(reply))).await;
            }
            LocalBody::Migrate(dest) => Box::pin(self.start_migration(*dest, reply)).await,
        }
    }

    /// A state machine entered a state (`initial`: its first, at start):
    /// leave the old one unless initial, run `on_enter`, and follow further
    /// changes `on_enter` makes.
    pub(super) async fn enter_state(&mut self, initial: bool) {
        let Mode::Hosting(hosted) = &mut self.mode else {
            return;
        };
        let actor = hosted.ctx.id();
        if !initial {
            hosted.leave_state(&self.node);
        }
        for _ in 0..MAX_ENTERS {
            let key = hosted.state.state_key();
            let entered = AssertUnwindSafe(hosted.state.on_enter(&mut hosted.ctx))
                .catch_unwind()
                .await;
            if let Err(panic) = entered {
                let reason = ExitReason::Panicked(panic_message(&*panic));
                tracing::error!(%actor, %reason, "on_enter panicked; the actor is down");
                let Mode::Hosting(hosted) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
                    return;
                };
                Box::pin(self.exit(hosted, reason, None)).await;
                return;
            }
            hosted.ctx.postpone_requested = false;
            if hosted.state.state_key() == key {
                return;
            }
            hosted.leave_state(&self.node);
        }
        tracing::warn!(%actor, "on_enter changed the state {MAX_ENTERS} times in a row; not following further");
    }

    /// Carries out what the handler asked of its context.
    pub(super) async fn after_handler(&mut self) {
        let Mode::Hosting(hosted) = &mut self.mode else {
            return;
        };
        if hosted.ctx.stop_requested {
            let Mode::Hosting(hosted) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
                return;
            };
            Box::pin(self.exit(hosted, ExitReason::Stopped, None)).await;
        } else if let Some(dest) = hosted.ctx.migrate_requested.take() {
            let actor = hosted.ctx.id();
            Box::pin(self.start_migration(dest, ReplyTo::nobody(actor))).await;
        }
    }

    /// Ends the actor: hooks, monitors, name, and every waiting message.
    pub(super) async fn exit(
        &mut self,
        mut hosted: Box<Hosted<A>>,
        reason: ExitReason,
        stop_reply: Option<ReplyTo>,
    ) {
        let actor = self.id();
        if !matches!(reason, ExitReason::Panicked(_)) {
            let stopped = AssertUnwindSafe(hosted.state.on_stop(&mut hosted.ctx))
                .catch_unwind()
                .await;
            if let Err(panic) = stopped {
                tracing::error!(%actor, panic = %panic_message(&*panic), "on_stop panicked");
            }
        }
        self.handover.ended();
        let _ = self.entry.exit.set(reason.clone());
        self.entry.hosting.store(false, Ordering::Release);
        if let Some(name) = &hosted.name {
            self.node.release_name(name, actor);
        }
        self.node.announce_left(actor, hosted.name.as_deref());
        for (node, monitor) in hosted.monitors.drain(..) {
            self.node.send_down(&node, monitor, actor, reason.clone());
        }
        let queue: Vec<Queued<A>> = hosted.queue.drain(..).collect();
        let held = hosted
            .tracker
            .take_held()
            .into_iter()
            .map(|(_, _, item)| item);
        for item in queue.into_iter().chain(held) {
            item.reject(&self.node, actor, &reason);
        }
        for wire in std::mem::take(&mut hosted.postponed) {
            if let QueuedWire::Replay { reply, .. } = wire {
                reject_addr(&self.node, reply, actor, &reason);
            }
        }
        for addr in std::mem::take(&mut hosted.ctx.owed) {
            reject_addr(&self.node, Some(addr), actor, &reason);
        }
        if let Some(reply) = hosted.ctx.take_reply() {
            reply.fail(Error::ActorDown {
                actor,
                reason: reason.clone(),
            });
        }
        // Observers hear of the end before whoever asked for it.
        self.node.emit(NodeEvent::Stopped {
            actor,
            type_tag: A::TYPE_TAG,
            name: hosted.name.take(),
            reason: reason.clone(),
        });
        if let Some(reply) = stop_reply {
            reply.send(());
        }
        tracing::debug!(%actor, node = %self.node.id(), %reason, "actor ended");
        self.mode = Mode::Stopped;
    }
}
