use mobility::prelude::*;

#[mobile]
pub struct Buffer {
    len: usize,
    data: *const u8,
}

fn main() {}
