use mobility::prelude::*;

#[mobile]
pub union Bits {
    int: u32,
    float: f32,
}

fn main() {}
