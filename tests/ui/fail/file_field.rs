use mobility::prelude::*;
use std::fs::File;

#[mobile]
pub struct Logger {
    lines: u64,
    out: File,
}

#[mobile]
impl Logger {
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

fn main() {}
