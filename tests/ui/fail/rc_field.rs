use mobility::prelude::*;
use std::rc::Rc;

#[mobile]
#[derive(Default)]
pub struct Counter {
    count: u64,
    shared: Rc<Vec<u8>>,
}

#[mobile]
impl Counter {
    pub fn get(&self) -> u64 {
        self.count + self.shared.len() as u64
    }
}

fn main() {}
