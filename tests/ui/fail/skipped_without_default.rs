use mobility::prelude::*;

pub struct Socket {
    pub fd: i32,
}

#[mobile]
pub struct Client {
    peer: String,
    #[mobile(skip)]
    socket: Socket,
}

fn main() {}
