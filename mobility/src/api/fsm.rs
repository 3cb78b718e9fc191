//! Mobile state machines (what `gen_statem` offers), as ordinary `#[mobile]`
//! actors. This module is the guide; the API lives on [`Context`],
//! [`Reply`] and [`DeferredReply`].
//!
//! # The state
//!
//! An actor is a state machine when its type is an **enum** (the variant is
//! the state) or a **struct with one field marked `#[mobile(state)]`** (that
//! field's variant is the state; the other fields are the data). Handlers
//! look at the state and change it; the runtime compares the state before
//! and after each handler. When it changed:
//!
//! 1. the state timeout is cancelled (also one that fired and waits);
//! 2. the messages postponed in the old state come back, in their order,
//!    before any newer message;
//! 3. the `#[mobile(on_enter)]` hook runs (it also runs once at start; not
//!    after a migration: the actor stays in its state).
//!
//! Data inside a variant can change without a state change.
//!
//! # What a handler can do (through its `ctx: &mut Context<Self>`)
//!
//! | call | effect |
//! |---|---|
//! | [`ctx.postpone()`](Context::postpone) | set this message aside until the state changes; a request's caller keeps waiting |
//! | [`ctx.set_state_timeout(d).msg(..)`](Context::set_state_timeout) | one state timeout, cancelled by a state change, replaced when re-armed |
//! | [`ctx.set_event_timeout(d).msg(..)`](Context::set_event_timeout) | one event timeout, cancelled by any handled message |
//! | [`ctx.start_timer(name, d).msg(..)`](Context::start_timer) | a named timer, replaced by a timer of the same name; [`cancel_timer_named`](Context::cancel_timer_named) |
//! | [`ctx.defer_reply()`](Context::defer_reply) | take the reply of this request, to answer it from a later handler with [`DeferredReply::send`] |
//!
//! A handler that may answer later returns [`Reply<T>`]: `Reply::Now(value)`
//! or `Reply::Later` (after `defer_reply` or `postpone`). Its caller's method
//! returns the `T`.
//!
//! # What migrates
//!
//! The state and data (the actor's fields), the postponed messages in their
//! order, every pending timer with its kind and remaining time (a 10 s state
//! timeout armed 4 s before the move fires about 6 s after it, wherever the
//! actor is), and the deferred replies still owed: a `DeferredReply` kept in
//! the state answers its caller from any node, and if the actor ends first,
//! every caller still owed a reply is told the actor is down.
//!
//! # Example: a turnstile
//!
//! ```
//! use std::time::Duration;
//! use mobility::prelude::*;
//!
//! #[mobile]
//! #[derive(Debug, Clone, Copy, PartialEq, Eq)]
//! pub enum Gate {
//!     Locked,
//!     Unlocked,
//! }
//!
//! #[mobile]
//! pub struct Turnstile {
//!     #[mobile(state)]
//!     gate: Gate,
//!     passed: u64,
//! }
//!
//! #[mobile]
//! impl Turnstile {
//!     pub fn coin(&mut self) {
//!         self.gate = Gate::Unlocked;
//!     }
//!
//!     /// Locked: wait (postponed) until a coin unlocks the gate.
//!     pub fn push(&mut self, ctx: &mut Context<Self>) -> Reply<u64> {
//!         if self.gate == Gate::Locked {
//!             ctx.postpone();
//!             return Reply::Later;
//!         }
//!         self.passed += 1;
//!         self.gate = Gate::Locked;
//!         Reply::Now(self.passed)
//!     }
//!
//!     pub fn relock(&mut self) {
//!         self.gate = Gate::Locked;
//!     }
//!
//!     #[mobile(on_enter)]
//!     fn entered(&mut self, ctx: &mut Context<Self>) {
//!         if self.gate == Gate::Unlocked {
//!             // Relock if nobody passes within 5 s.
//!             ctx.set_state_timeout(Duration::from_secs(5)).relock();
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), mobility::Error> {
//! let node = Node::builder().id("doc-fsm").start().await?;
//! let gate = node.spawn(Turnstile { gate: Gate::Locked, passed: 0 }).await?;
//! let walker = { let gate = gate.clone(); tokio::spawn(async move { gate.push().await }) };
//! tokio::task::yield_now().await;
//! gate.coin().await?;                 // unlocks: the postponed push comes back
//! assert_eq!(walker.await.expect("join")?, 1);
//! # node.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! See also `examples/door.rs` (a code lock that migrates while open and
//! relocks on time on the other node).

#[allow(unused_imports)]
use crate::{Context, DeferredReply, Reply};
