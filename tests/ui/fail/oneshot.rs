use mobility::prelude::*;
use tokio::sync::oneshot;

#[mobile]
pub struct Waiter {
    done: Option<oneshot::Sender<()>>,
}

fn main() {}
