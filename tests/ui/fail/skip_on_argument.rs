use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

#[mobile]
impl Counter {
    pub fn add(&mut self, n: u64, #[mobile(skip)] verbose: bool) {
        let _ = verbose;
        self.count += n;
    }
}

fn main() {}
