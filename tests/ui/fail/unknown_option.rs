use mobility::prelude::*;

#[mobile]
pub struct Counter {
    #[mobile(transient)]
    count: u64,
}

fn main() {}
