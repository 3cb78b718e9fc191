//! Mobile event managers (what `gen_event` offers): an actor hosting a
//! dynamic set of event handlers, each a user type registered by tag like
//! actors, that migrates with every handler's state.
//!
//! ```
//! use mobility::prelude::*;
//! use mobility::events::{EventHandler, EventManager};
//!
//! #[mobile]
//! #[derive(Debug, Clone)]
//! pub enum Alarm {
//!     Raised(String),
//!     Cleared(String),
//! }
//! mobility::event_manager!(Alarm);
//!
//! /// Counts the alarms raised.
//! #[mobile]
//! #[derive(Default)]
//! pub struct Raised {
//!     count: u64,
//! }
//!
//! impl EventHandler<Alarm> for Raised {
//!     type Call = ();
//!     type Reply = u64;
//!     fn handle_event(&mut self, event: &Alarm) -> Result<(), String> {
//!         if let Alarm::Raised(_) = event {
//!             self.count += 1;
//!         }
//!         Ok(())
//!     }
//!     fn handle_call(&mut self, _: ()) -> Result<u64, String> {
//!         Ok(self.count)
//!     }
//! }
//! mobility::event_handler!(Raised, Alarm);
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), mobility::Error> {
//! let node = Node::builder().id("doc-events").start().await?;
//! let alarms = node.spawn(EventManager::<Alarm>::new()).await?;
//! alarms.add_handler("raised", Raised::default()).await?;
//! alarms.tell().notify(Alarm::Raised("disk".into()))?;        // fire-and-forget
//! let failed = alarms.sync_notify(Alarm::Cleared("disk".into())).await?; // acknowledged
//! assert!(failed.is_empty());
//! assert_eq!(alarms.call::<Raised>("raised", ()).await?, 1);
//! # node.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! A handler whose `handle_event` or `handle_call` returns an error (or
//! panics) is removed; the failure is returned by `sync_notify` / `call`,
//! kept in [`EventManager`]'s list of failures, and logged. The other
//! handlers go on. Migrating the manager migrates every handler's state; a
//! destination that does not have a handler type compiled in refuses the
//! migration with an error naming it, and the manager stays where it was.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

use crate::api::actor::{fingerprint_str, mix_fingerprints, Actor, Migratable, Mobile};
use crate::api::context::Context;
use crate::api::handle::{Calls, HandleCore, MessageSink};
use crate::api::reply::ReplyTo;
use crate::proto::error::Error;

mod registry;
use registry::rebuild;
pub use registry::{handler_tags, HandlerType, OlderHandler};

/// An event type that managers can broadcast. Implemented by
/// [`event_manager!`](crate::event_manager), which also registers
/// `EventManager<E>` as an actor type.
pub trait Event: Migratable {
    /// Stable tag of the event type.
    const TAG: &'static str;
    /// Type tag of `EventManager<Self>` on the wire.
    const MANAGER_TAG: &'static str;
}

/// A handler hosted by an [`EventManager<E>`]: a `#[mobile]` type (so its
/// state can migrate), registered with [`event_handler!`](crate::event_handler).
pub trait EventHandler<E>: Mobile {
    /// What [`EventManagerCalls::call`] sends to this handler.
    type Call: Migratable;
    /// What this handler answers to a call.
    type Reply: Migratable;

    /// Handles one broadcast event. An error removes the handler (reported,
    /// the others go on).
    fn handle_event(&mut self, event: &E) -> Result<(), String>;

    /// Answers a call addressed to this handler. An error removes the
    /// handler and is returned to the caller.
    fn handle_call(&mut self, call: Self::Call) -> Result<Self::Reply, String>;
}

/// An event handler type registered for events `E` (implemented by
/// [`event_handler!`](crate::event_handler); only registered types can be
/// added to a manager, so every node with the same build can rebuild them).
#[doc(hidden)]
pub trait RegisteredHandler<E: Event>: EventHandler<E> {
    /// Stable tag of the handler type.
    const TAG: &'static str;
}

/// A handler behind the manager's uniform interface.
trait ErasedHandler<E>: Send {
    fn tag(&self) -> &'static str;
    fn fingerprint(&self) -> u64;
    fn handle_event(&mut self, event: &E) -> Result<(), String>;
    fn handle_call(&mut self, call: &[u8]) -> Result<Vec<u8>, String>;
    fn encode(&self) -> Result<Vec<u8>, String>;
}

impl<E: Event, H: RegisteredHandler<E>> ErasedHandler<E> for H {
    fn tag(&self) -> &'static str {
        H::TAG
    }
    fn fingerprint(&self) -> u64 {
        H::FINGERPRINT
    }
    fn handle_event(&mut self, event: &E) -> Result<(), String> {
        EventHandler::handle_event(self, event)
    }
    fn handle_call(&mut self, call: &[u8]) -> Result<Vec<u8>, String> {
        let call: H::Call = mobility_net::decode(call).map_err(|e| e.to_string())?;
        let reply = EventHandler::handle_call(self, call)?;
        mobility_net::encode(&reply).map_err(|e| e.to_string())
    }
    fn encode(&self) -> Result<Vec<u8>, String> {
        mobility_net::encode(self).map_err(|e| e.to_string())
    }
}

/// A handler as it travels: in a message that adds it, and in the
/// manager's state when it migrates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[doc(hidden)]
pub struct HandlerWire {
    id: String,
    tag: String,
    fingerprint: u64,
    state: ByteBuf,
}

/// A handler hosted by a manager, as [`EventManagerCalls::handlers`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerInfo {
    /// The id it was added under.
    pub id: String,
    /// Its type tag.
    pub tag: String,
}

/// A handler that failed and was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerFailure {
    /// The id it was added under.
    pub id: String,
    /// Its type tag.
    pub tag: String,
    /// Its error (or panic message).
    pub reason: String,
}

impl fmt::Display for HandlerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "handler {:?} ({}) failed: {}",
            self.id, self.tag, self.reason
        )
    }
}

/// How many failures a manager remembers (the oldest are forgotten).
const FAILURES_KEPT: usize = 64;

/// A mobile event manager for events `E`: spawn it like any actor
/// (`node.spawn(EventManager::<E>::new())`); its handle has the methods of
/// [`EventManagerCalls`] and, through `tell()`, [`EventManagerTell`].
///
/// Register the event type once with [`event_manager!`](crate::event_manager).
pub struct EventManager<E: Event> {
    handlers: Vec<(String, Box<dyn ErasedHandler<E>>)>,
    failures: Vec<HandlerFailure>,
}

impl<E: Event> EventManager<E> {
    /// A manager without handlers.
    pub fn new() -> Self {
        EventManager {
            handlers: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The manager with `handler` installed under `id` (replacing a handler
    /// with the same id), before it is spawned.
    pub fn with_handler<H: RegisteredHandler<E>>(
        mut self,
        id: impl Into<String>,
        handler: H,
    ) -> Self {
        let id = id.into();
        let boxed: Box<dyn ErasedHandler<E>> = Box::new(handler);
        match self.position(&id) {
            Some(i) => self.handlers[i].1 = boxed,
            None => self.handlers.push((id, boxed)),
        }
        self
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.handlers.iter().position(|(hid, _)| hid == id)
    }

    /// Removes the handler at `index` and records why.
    fn fail(&mut self, index: usize, reason: String) -> HandlerFailure {
        let (id, handler) = self.handlers.remove(index);
        let failure = HandlerFailure {
            id,
            tag: handler.tag().to_owned(),
            reason,
        };
        tracing::warn!(event = E::TAG, %failure, "event handler removed");
        if self.failures.len() == FAILURES_KEPT {
            self.failures.remove(0);
        }
        self.failures.push(failure.clone());
        failure
    }

    fn notify(&mut self, event: &E) -> Vec<HandlerFailure> {
        let mut failed = Vec::new();
        let mut i = 0;
        while i < self.handlers.len() {
            let handler = &mut self.handlers[i].1;
            let outcome =
                std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle_event(event)))
                    .unwrap_or_else(|panic| Err(format!("panicked: {}", panic_text(&*panic))));
            match outcome {
                Ok(()) => i += 1,
                Err(reason) => failed.push(self.fail(i, reason)),
            }
        }
        failed
    }

    fn add(&mut self, wire: &HandlerWire) -> Result<(), String> {
        if self.position(&wire.id).is_some() {
            return Err(format!(
                "a handler with id {:?} is already installed",
                wire.id
            ));
        }
        let handler = rebuild::<E>(wire)?;
        self.handlers.push((wire.id.clone(), handler));
        Ok(())
    }

    fn remove(&mut self, id: &str) -> Result<HandlerWire, String> {
        let index = self
            .position(id)
            .ok_or_else(|| format!("no handler with id {id:?}"))?;
        let (id, handler) = self.handlers.remove(index);
        Ok(HandlerWire {
            tag: handler.tag().to_owned(),
            fingerprint: handler.fingerprint(),
            state: ByteBuf::from(handler.encode()?),
            id,
        })
    }

    fn call(&mut self, id: &str, tag: &str, call: &[u8]) -> Result<ByteBuf, String> {
        let index = self
            .position(id)
            .ok_or_else(|| format!("no handler with id {id:?}"))?;
        let handler = &mut self.handlers[index].1;
        if handler.tag() != tag {
            return Err(format!(
                "handler {id:?} is a {:?}, not a {tag:?}",
                handler.tag()
            ));
        }
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle_call(call)))
            .unwrap_or_else(|panic| Err(format!("panicked: {}", panic_text(&*panic))));
        match outcome {
            Ok(reply) => Ok(ByteBuf::from(reply)),
            Err(reason) => Err(self.fail(index, reason).to_string()),
        }
    }
}

fn panic_text(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without message".to_owned()
    }
}

impl<E: Event> Default for EventManager<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Event> fmt::Debug for EventManager<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventManager")
            .field("event", &E::TAG)
            .field(
                "handlers",
                &self.handlers.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The manager's state as it travels.
#[derive(Serialize, Deserialize)]
struct ManagerWire {
    handlers: Vec<HandlerWire>,
    failures: Vec<HandlerFailure>,
}

impl<E: Event> Serialize for EventManager<E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut handlers = Vec::with_capacity(self.handlers.len());
        for (id, handler) in &self.handlers {
            handlers.push(HandlerWire {
                id: id.clone(),
                tag: handler.tag().to_owned(),
                fingerprint: handler.fingerprint(),
                state: ByteBuf::from(handler.encode().map_err(S::Error::custom)?),
            });
        }
        ManagerWire {
            handlers,
            failures: self.failures.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de, E: Event> Deserialize<'de> for EventManager<E> {
    /// Fails, naming the handler type, when this node cannot rebuild one of
    /// the handlers: the migration is then refused.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let wire = ManagerWire::deserialize(deserializer)?;
        let mut handlers = Vec::with_capacity(wire.handlers.len());
        for handler in &wire.handlers {
            handlers.push((
                handler.id.clone(),
                rebuild::<E>(handler).map_err(D::Error::custom)?,
            ));
        }
        Ok(EventManager {
            handlers,
            failures: wire.failures,
        })
    }
}

impl<E: Event> Mobile for EventManager<E> {
    const FINGERPRINT: u64 = mix_fingerprints(
        fingerprint_str(
            "mobility::EventManager{handlers:Vec<HandlerWire>;failures:Vec<HandlerFailure>;}",
        ),
        fingerprint_str(E::TAG),
    );
}

/// The messages of an [`EventManager`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "E: Event")]
#[doc(hidden)]
pub enum EventManagerMsg<E: Event> {
    Add(HandlerWire),
    Remove {
        id: String,
    },
    Notify(#[serde(bound = "E: Event")] E),
    Call {
        id: String,
        tag: String,
        call: ByteBuf,
    },
    Handlers,
    Failures,
}

/// The request/reply methods of an [`EventManager`] handle.
pub struct EventManagerCalls<E: Event> {
    core: HandleCore<EventManager<E>>,
}

impl<E: Event> fmt::Debug for EventManagerCalls<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventManagerCalls")
    }
}

impl<E: Event> Calls<EventManager<E>> for EventManagerCalls<E> {
    fn from_core(core: HandleCore<EventManager<E>>) -> Self {
        EventManagerCalls { core }
    }
    fn core(&self) -> &HandleCore<EventManager<E>> {
        &self.core
    }
}

impl<E: Event> EventManagerCalls<E> {
    fn refused(&self, reason: String) -> Error {
        Error::Refused {
            actor: self.core.entry.id(),
            reason,
        }
    }

    async fn ask<R: Migratable>(&self, msg: EventManagerMsg<E>) -> Result<R, Error> {
        self.core
            .request::<Result<R, String>>(msg)
            .await?
            .map_err(|r| self.refused(r))
    }

    /// Installs `handler` under `id` (an id can be used once at a time).
    pub async fn add_handler<H: RegisteredHandler<E>>(
        &self,
        id: impl Into<String>,
        handler: H,
    ) -> Result<(), Error> {
        let wire = HandlerWire {
            id: id.into(),
            tag: H::TAG.to_owned(),
            fingerprint: H::FINGERPRINT,
            state: ByteBuf::from(mobility_net::encode(&handler)?),
        };
        self.ask(EventManagerMsg::Add(wire)).await
    }

    /// Removes the handler `id` and returns it, with its state.
    pub async fn remove_handler<H: RegisteredHandler<E>>(&self, id: &str) -> Result<H, Error> {
        let wire: HandlerWire = self
            .ask(EventManagerMsg::Remove { id: id.to_owned() })
            .await?;
        if wire.tag != H::TAG {
            return Err(self.refused(format!(
                "handler {id:?} was a {:?}, not a {:?} (it is removed)",
                wire.tag,
                H::TAG
            )));
        }
        Ok(mobility_net::decode(&wire.state)?)
    }

    /// Broadcasts `event` to every handler and waits until all have handled
    /// it; returns the handlers that failed on it (they are removed).
    pub async fn sync_notify(&self, event: E) -> Result<Vec<HandlerFailure>, Error> {
        self.core.request(EventManagerMsg::Notify(event)).await
    }

    /// Calls the handler `id` (of type `H`) and returns its reply. A handler
    /// that fails the call is removed, and the error says so.
    pub async fn call<H: RegisteredHandler<E>>(
        &self,
        id: &str,
        call: H::Call,
    ) -> Result<H::Reply, Error> {
        let msg = EventManagerMsg::Call {
            id: id.to_owned(),
            tag: H::TAG.to_owned(),
            call: ByteBuf::from(mobility_net::encode(&call)?),
        };
        let bytes: ByteBuf = self.ask(msg).await?;
        Ok(mobility_net::decode(&bytes)?)
    }

    /// The installed handlers, in the order they receive events.
    pub async fn handlers(&self) -> Result<Vec<HandlerInfo>, Error> {
        self.core.request(EventManagerMsg::Handlers).await
    }

    /// The handlers that failed and were removed (the last 64).
    pub async fn failures(&self) -> Result<Vec<HandlerFailure>, Error> {
        self.core.request(EventManagerMsg::Failures).await
    }
}

/// The fire-and-forget methods of an [`EventManager`] handle
/// (`manager.tell().notify(event)?`).
pub struct EventManagerTell<E: Event, S> {
    sink: S,
    _event: PhantomData<fn(E)>,
}

impl<E: Event, S> fmt::Debug for EventManagerTell<E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventManagerTell")
    }
}

impl<E: Event, S: MessageSink<EventManager<E>>> EventManagerTell<E, S> {
    /// Broadcasts `event` to every handler without waiting.
    pub fn notify(self, event: E) -> S::Output {
        self.sink.put(EventManagerMsg::Notify(event))
    }
}

fn send<T: Migratable>(reply: ReplyTo, value: T) {
    reply.send(value);
}

impl<E: Event> Actor for EventManager<E> {
    type Msg = EventManagerMsg<E>;
    type Calls = EventManagerCalls<E>;
    type Tell<S: MessageSink<Self>> = EventManagerTell<E, S>;
    const TYPE_TAG: &'static str = E::MANAGER_TAG;
    const SCHEMA: u64 = mix_fingerprints(
        <Self as Mobile>::FINGERPRINT,
        fingerprint_str("add;remove;notify;call;handlers;failures;v1"),
    );

    fn tell_with<S: MessageSink<Self>>(sink: S) -> Self::Tell<S> {
        EventManagerTell {
            sink,
            _event: PhantomData,
        }
    }

    fn dispatch(
        &mut self,
        msg: Self::Msg,
        _ctx: &mut Context<Self>,
        reply: ReplyTo,
    ) -> impl Future<Output = ()> + Send {
        match msg {
            EventManagerMsg::Add(wire) => send(reply, self.add(&wire)),
            EventManagerMsg::Remove { id } => send(reply, self.remove(&id)),
            EventManagerMsg::Notify(event) => send(reply, self.notify(&event)),
            EventManagerMsg::Call { id, tag, call } => send(reply, self.call(&id, &tag, &call)),
            EventManagerMsg::Handlers => {
                let list: Vec<HandlerInfo> = self
                    .handlers
                    .iter()
                    .map(|(id, h)| HandlerInfo {
                        id: id.clone(),
                        tag: h.tag().to_owned(),
                    })
                    .collect();
                send(reply, list)
            }
            EventManagerMsg::Failures => send(reply, self.failures.clone()),
        }
        std::future::ready(())
    }

    fn may_postpone(_: &Self::Msg) -> bool {
        false
    }
}

/// Registers event type `E`: implements [`Event`] for it and registers
/// `EventManager<E>` as an actor type (so a manager of these events can
/// migrate to any node of the same build). Once per event type:
/// `mobility::event_manager!(MyEvent);` or, with a chosen tag,
/// `mobility::event_manager!(MyEvent, tag = "my-events");`.
#[macro_export]
macro_rules! event_manager {
    ($event:ty) => {
        impl $crate::events::Event for $event {
            const TAG: &'static str =
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!($event));
            const MANAGER_TAG: &'static str = ::core::concat!(
                "mobility::EventManager<",
                ::core::module_path!(),
                "::",
                ::core::stringify!($event),
                ">"
            );
        }
        $crate::__private::inventory::submit! {
            $crate::__private::ActorType::of::<$crate::events::EventManager<$event>>(
                ::core::concat!("EventManager<", ::core::stringify!($event), ">")
            )
        }
    };
    ($event:ty, tag = $tag:literal) => {
        impl $crate::events::Event for $event {
            const TAG: &'static str = $tag;
            const MANAGER_TAG: &'static str = ::core::concat!("mobility::EventManager<", $tag, ">");
        }
        $crate::__private::inventory::submit! {
            $crate::__private::ActorType::of::<$crate::events::EventManager<$event>>(
                ::core::concat!("EventManager<", ::core::stringify!($event), ">")
            )
        }
    };
}

/// Registers `Old`, an older state of handler type `H` for events `E`, so a
/// manager arriving from a build that still has `Old` as `H` keeps that
/// handler, upgraded with `impl From<Old> for H` before the manager runs:
/// `mobility::event_handler_upgrade!(Old => H, E);`. `Old` is a `#[mobile]`
/// type with the fields `H` had in the older build (its fingerprint is
/// matched against the arriving handler's). One per older shape; each
/// upgrades straight to the current `H`.
#[macro_export]
macro_rules! event_handler_upgrade {
    ($old:ty => $handler:ty, $event:ty) => {
        $crate::__private::inventory::submit! {
            $crate::events::OlderHandler::of::<$old, $handler, $event>(::core::stringify!($old))
        }
    };
}

/// Registers handler type `H` for events `E`: `mobility::event_handler!(H, E);`
/// (or `mobility::event_handler!(H, E, tag = "...")`). `H` must be a
/// `#[mobile]` type implementing [`EventHandler<E>`]; only registered types
/// can be added to a manager, and a node rebuilds a migrating manager's
/// handlers from this registration.
#[macro_export]
macro_rules! event_handler {
    ($handler:ty, $event:ty) => {
        impl $crate::events::RegisteredHandler<$event> for $handler {
            const TAG: &'static str =
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!($handler));
        }
        $crate::__private::inventory::submit! {
            $crate::events::HandlerType::of::<$handler, $event>(::core::stringify!($handler))
        }
    };
    ($handler:ty, $event:ty, tag = $tag:literal) => {
        impl $crate::events::RegisteredHandler<$event> for $handler {
            const TAG: &'static str = $tag;
        }
        $crate::__private::inventory::submit! {
            $crate::events::HandlerType::of::<$handler, $event>(::core::stringify!($handler))
        }
    };
}

#[cfg(test)]
mod upgrade_tests;
