use mobility::prelude::*;

#[mobile]
pub fn handler(n: u64) -> u64 {
    n
}

fn main() {
    let _ = handler(1);
}
