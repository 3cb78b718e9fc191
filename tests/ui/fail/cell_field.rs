use mobility::prelude::*;

#[mobile]
pub struct Hits {
    hits: std::cell::Cell<u64>,
}

fn main() {}
