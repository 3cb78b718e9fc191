use mobility::prelude::*;

#[derive(Default)]
pub struct Settings {
    pub verbose: bool,
}

#[mobile]
#[derive(Default)]
pub struct Service {
    requests: u64,
    settings: Settings,
}

#[mobile]
impl Service {
    pub fn requests(&self) -> u64 {
        self.requests
    }

    pub fn verbose(&self) -> bool {
        self.settings.verbose
    }
}

fn main() {}
