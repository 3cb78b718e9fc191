use mobility::prelude::*;

pub struct Snapshot {
    pub total: u64,
}

#[mobile]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

#[mobile]
impl Counter {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { total: self.count }
    }
}

async fn caller(counter: Handle<Counter>) -> Result<u64, Error> {
    Ok(counter.snapshot().await?.total)
}

fn main() {
    let _ = caller;
}
