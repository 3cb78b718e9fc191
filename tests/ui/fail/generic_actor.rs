use mobility::prelude::*;

#[mobile]
pub struct Store<T: Migratable> {
    items: Vec<T>,
}

#[mobile]
impl<T: Migratable> Store<T> {
    pub fn len(&self) -> usize {
        self.items.len()
    }
}

fn main() {}
