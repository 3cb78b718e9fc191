//! The pure core of mobility: the migration protocol of one actor on one
//! node ([`handover`]) and per-stream ordering ([`sequence`]), as state
//! machines that take events (with `now` passed in) and return actions.
//! Nothing here does I/O, reads a clock or knows tokio: the runtime's cells
//! drive these machines in production, and a seeded simulation drives many
//! of them, on several simulated nodes, through every interleaving and
//! fault in tests (`tests/simulation.rs`).

pub mod handover;
pub mod sequence;
