use mobility::prelude::*;

#[mobile]
pub enum Door {
    Locked {
        #[mobile(state)]
        tries: u32,
    },
    Open,
}

fn main() {}
