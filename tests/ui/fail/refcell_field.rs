use mobility::prelude::*;
use std::cell::RefCell;

#[mobile]
pub struct Cache {
    entries: RefCell<Vec<String>>,
}

#[mobile]
impl Cache {
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}

fn main() {}
