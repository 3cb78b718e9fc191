//! What users and the `#[mobile]` macro see: the `Actor` trait, handles,
//! contexts, replies, timers and the codec seam. Below the mailbox and the
//! node: a handle reaches its node's mailbox through [`Mailbox`] and the node
//! through [`Host`], both implemented in the layers above.

pub mod actor;
pub mod checks;
pub(crate) mod codec;
pub mod context;
pub(crate) mod deadline;
pub mod fsm;
pub mod handle;
pub(crate) mod host;
pub mod metrics;
pub(crate) mod reply;
pub(crate) mod timers;
pub(crate) use host::{Host, Mailbox};
