use mobility::prelude::*;

#[mobile]
pub struct Consumer {
    inbox: Vec<tokio::sync::mpsc::UnboundedReceiver<String>>,
}

fn main() {}
