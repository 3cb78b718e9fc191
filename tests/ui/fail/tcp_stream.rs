use mobility::prelude::*;

#[mobile]
pub struct Client {
    peer: String,
    stream: std::net::TcpStream,
}

fn main() {}
