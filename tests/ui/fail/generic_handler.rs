use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub struct Store {
    items: Vec<String>,
}

#[mobile]
impl Store {
    pub fn put<T: ToString>(&mut self, item: T) {
        self.items.push(item.to_string());
    }
}

fn main() {}
