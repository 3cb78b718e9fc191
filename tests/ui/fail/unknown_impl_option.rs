use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

#[mobile(name = "counter")]
impl Counter {
    pub fn get(&self) -> u64 {
        self.count
    }
}

fn main() {}
