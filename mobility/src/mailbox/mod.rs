//! A node's mailbox slot per actor (`entry`), what travels in it, the
//! cell's control queue (`control`), the
//! senders that number their messages themselves (`direct`), the idle actor
//! lent to callers (`idle`), what observers are told of it (`activity`).

pub(crate) mod activity;
pub(crate) mod control;
pub(crate) mod direct;
pub(crate) mod entry;
pub(crate) mod envelope;
pub(crate) mod host;
pub(crate) mod idle;
