use mobility::prelude::*;

/// Declared as version 3 of an actor whose current version is 2.
#[mobile(previous_of = Counter, version = 3)]
pub struct CounterV3 {
    count: u32,
}

#[mobile]
pub struct Counter {
    count: u64,
}

#[mobile(version = 2)]
impl Counter {
    pub fn get(&self) -> u64 {
        self.count
    }
}

fn main() {}
