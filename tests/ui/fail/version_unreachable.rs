use mobility::prelude::*;

/// Version 1 upgrades to version 2, which is declared nowhere: its upgrade
/// can never reach the current version 3.
#[mobile(previous_of = Counter, version = 1)]
pub struct CounterV1 {
    count: u32,
}

impl From<CounterV1> for Counter {
    fn from(old: CounterV1) -> Self {
        Counter { count: old.count.into() }
    }
}

#[mobile]
pub struct Counter {
    count: u64,
}

#[mobile(version = 3)]
impl Counter {
    pub fn get(&self) -> u64 {
        self.count
    }
}

fn main() {}
