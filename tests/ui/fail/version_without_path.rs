use mobility::prelude::*;

/// Version 1, with no way to become version 2.
#[mobile(previous_of = Counter, version = 1)]
pub struct CounterV1 {
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
