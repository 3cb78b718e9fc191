use mobility::events::EventHandler;
use mobility::prelude::*;

#[mobile]
pub enum Ev {
    Tick,
}
mobility::event_manager!(Ev);

/// An event handler holding a file: it cannot migrate with its manager.
#[mobile]
pub struct Logger {
    out: std::fs::File,
}

impl EventHandler<Ev> for Logger {
    type Call = ();
    type Reply = ();
    fn handle_event(&mut self, _: &Ev) -> Result<(), String> {
        Ok(())
    }
    fn handle_call(&mut self, (): ()) -> Result<(), String> {
        Ok(())
    }
}
mobility::event_handler!(Logger, Ev);

fn main() {}
