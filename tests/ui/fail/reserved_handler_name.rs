// A handler whose name a `Handle` already answers to could never be called.
use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub struct Account {
    id: u64,
    open: bool,
}

#[mobile]
impl Account {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn stop(&mut self) {
        self.open = false;
    }

    pub fn clone(&self) -> Account {
        Account { id: self.id, open: self.open }
    }

    // Not a handler: fine.
    #[mobile(skip)]
    pub fn tell(&self) -> bool {
        self.open
    }
}

fn main() {}
