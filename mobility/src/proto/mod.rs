//! The bottom layer: what every other layer speaks in. Ids, errors, the
//! migration report and snapshot formats, the events a node tells its
//! observers, and the wire types; the protocol's
//! pure state machines live in the `mobility-proto` crate beneath it.
//! Nothing here knows about tokio tasks, nodes or actors' code.

pub(crate) mod error;
pub(crate) mod id;
pub mod migration;
pub(crate) mod observe;
pub(crate) mod wire;
