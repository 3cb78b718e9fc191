use mobility::prelude::*;

#[mobile]
pub struct Slot<T> {
    value: Option<T>,
}

fn main() {}
