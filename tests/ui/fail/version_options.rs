use mobility::prelude::*;

#[mobile(previous_of = Counter)]
pub struct NoVersion {
    count: u64,
}

#[mobile(version = 1)]
pub struct NoActor {
    count: u64,
}

#[mobile(previous_of = Counter, version = 0)]
pub struct VersionZero {
    count: u64,
}

#[mobile]
pub struct Counter {
    count: u64,
}

#[mobile(version = 0)]
impl Counter {
    pub fn get(&self) -> u64 {
        self.count
    }
}

fn main() {}
