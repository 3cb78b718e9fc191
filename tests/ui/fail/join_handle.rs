use mobility::prelude::*;

#[mobile]
pub struct Supervisor {
    worker: tokio::task::JoinHandle<()>,
}

fn main() {}
