use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub struct Log {
    lines: Vec<String>,
}

#[mobile]
impl Log {
    pub fn push(&mut self, line: &str) {
        self.lines.push(line.to_owned());
    }
}

fn main() {}
