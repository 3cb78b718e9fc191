use mobility::prelude::*;

#[mobile(previous_of = Counter, version = 1)]
pub struct CounterV1 {
    count: u32,
}

/// Another declaration of version 1.
#[mobile(previous_of = Counter, version = 1)]
pub struct CounterOne {
    count: u32,
}

impl From<CounterV1> for Counter {
    fn from(old: CounterV1) -> Self {
        Counter { count: old.count.into() }
    }
}

impl From<CounterOne> for Counter {
    fn from(old: CounterOne) -> Self {
        Counter { count: old.count.into() }
    }
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
