//! A node's mailbox slot per actor (`entry`), what travels in it, the
//! senders that number their messages themselves (`direct`), the idle actor
//! lent to callers (`idle`) and request deadlines (`deadline`).

pub(crate) mod deadline;
pub(crate) mod direct;
pub(crate) mod entry;
pub(crate) mod idle;
