use mobility::prelude::*;

#[mobile]
pub struct Greeter<'a> {
    name: &'a str,
}

fn main() {}
