use mobility::prelude::*;

pub struct Job {
    pub id: u64,
}

#[mobile]
#[derive(Default)]
pub struct Queue {
    ids: Vec<u64>,
}

#[mobile]
impl Queue {
    pub fn push(&mut self, job: Job) {
        self.ids.push(job.id);
    }
}

fn main() {}
