use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub enum Phase {
    #[default]
    Idle,
    Busy,
}

#[mobile]
pub struct Machine {
    #[mobile(state, skip)]
    phase: Phase,
    count: u64,
}

fn main() {}
