use mobility::prelude::*;

#[mobile]
pub enum Phase {
    Idle,
    Busy,
}

#[mobile]
pub struct Machine {
    #[mobile(state)]
    phase: Phase,
    #[mobile(state)]
    other: Phase,
}

fn main() {}
