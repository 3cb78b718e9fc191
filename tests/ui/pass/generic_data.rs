use mobility::prelude::*;

/// Generic data is fine when its parameters carry the bound.
#[mobile]
#[derive(Debug, Default)]
pub struct Slot<T: Migratable> {
    value: Option<T>,
    history: Vec<T>,
}

#[mobile]
#[derive(Debug, Default)]
pub struct Pair<A, B>
where
    A: Migratable,
    B: Migratable + Default,
{
    left: A,
    right: B,
}

#[mobile]
#[derive(Default)]
pub struct Registry {
    numbers: Slot<u64>,
    names: Slot<String>,
    pair: Pair<u8, Vec<String>>,
}

#[mobile]
impl Registry {
    pub fn set(&mut self, n: u64) -> Option<u64> {
        self.numbers.history.push(n);
        self.numbers.value.replace(n)
    }
}

fn main() {
    let _ = Registry::default().names.value;
    let _ = Registry::default().pair.left;
    let _ = Registry::default().pair.right;
}
