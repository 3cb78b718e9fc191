// The registration of a generic actor's instantiations, misused.
use mobility::prelude::*;

// Generic, but no instantiation listed.
#[mobile]
#[derive(Default)]
pub struct Store<T: Migratable> {
    items: Vec<T>,
}

#[mobile]
impl<T: Migratable> Store<T> {
    pub fn size(&self) -> usize {
        self.items.len()
    }
}

// One tag for all, a type that is not this actor, a parameter instead of a
// concrete type, a type listed twice, a tag taken twice.
#[mobile]
#[derive(Default)]
pub struct Cache<T: Migratable> {
    items: Vec<T>,
}

#[mobile(
    tag = "cache",
    instances(Vec<u8>, Cache<T>, Cache<u8> = "bytes", Cache<u8>, Cache<u16> = "bytes")
)]
impl<T: Migratable> Cache<T> {
    pub fn size(&self) -> usize {
        self.items.len()
    }
}

// Not generic: nothing to list.
#[mobile]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

#[mobile(instances(Counter))]
impl Counter {
    pub fn get(&self) -> u64 {
        self.count
    }
}

fn main() {}
