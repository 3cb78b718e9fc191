use mobility::prelude::*;

#[mobile]
#[derive(Default)]
pub struct Log {
    lines: Vec<String>,
}

#[mobile]
impl Log {
    pub fn push(&mut self, line: impl std::fmt::Display) {
        self.lines.push(line.to_string());
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }
}

async fn caller(log: Handle<Log>) -> Result<usize, Error> {
    log.push("hello").await?;
    log.len().await
}

fn main() {
    let _ = caller;
}
