//! An actor at version 3 that accepts versions 1 and 2 through a chain of
//! `From`s; an enum state; a version-1 actor (no `version`) next to it.
use mobility::prelude::*;

#[mobile(previous_of = Counter, version = 1)]
pub enum CounterV1 {
    Empty,
    Counted(u32),
}

impl From<CounterV1> for CounterV2 {
    fn from(old: CounterV1) -> Self {
        match old {
            CounterV1::Empty => CounterV2 { count: 0 },
            CounterV1::Counted(n) => CounterV2 { count: n.into() },
        }
    }
}

#[mobile(previous_of = Counter, version = 2)]
pub struct CounterV2 {
    count: u64,
}

impl From<CounterV2> for Counter {
    fn from(old: CounterV2) -> Self {
        Counter {
            count: old.count,
            label: format!("was {}", old.count),
        }
    }
}

#[mobile]
pub struct Counter {
    count: u64,
    label: String,
}

#[mobile(tag = "counter", version = 3)]
impl Counter {
    pub fn get(&self) -> u64 {
        self.count
    }
}

#[mobile]
#[derive(Default)]
pub struct Plain {
    n: u64,
}

#[mobile]
impl Plain {
    pub fn n(&self) -> u64 {
        self.n
    }
}

fn main() {
    assert_eq!(<Counter as mobility::Actor>::VERSION, 3);
    assert_eq!(<Plain as mobility::Actor>::VERSION, 1);
    let upgraded = <Counter as mobility::Versioned<1>>::upgrade(CounterV1::Counted(4));
    assert_eq!((upgraded.count, upgraded.label.as_str()), (4, "was 4"));
}
