use std::cell::RefCell;

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
    scratch: RefCell<Vec<u8>>,
}

fn main() {}
