use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub struct Node {
    visits: u64,
}

#[mobile]
impl Node {
    #[mobile(on_arrive)]
    fn count_visit(&mut self) {
        self.visits += 1;
    }

    #[mobile(on_arrive)]
    fn log_visit(&mut self) {}
}

fn main() {}
