use std::rc::Rc;

use mobility::prelude::*;

/// A state machine whose Open state holds a non-migratable value.
#[mobile]
pub enum Door {
    Locked,
    Open { since: Rc<u64> },
}

fn main() {}
