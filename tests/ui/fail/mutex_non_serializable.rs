use mobility::prelude::*;
use std::sync::Mutex;

pub struct Connection {
    pub id: u32,
}

#[mobile]
pub struct Pool {
    size: usize,
    conns: Mutex<Vec<Connection>>,
}

fn main() {}
