use mobility::prelude::*;
use tokio::sync::mpsc;

#[mobile]
pub struct Producer {
    out: mpsc::Sender<u64>,
}

#[mobile]
impl Producer {
    pub async fn push(&mut self, n: u64) {
        let _ = self.out.send(n).await;
    }
}

fn main() {}
