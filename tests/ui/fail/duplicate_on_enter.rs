use mobility::prelude::*;

#[mobile]
pub enum Door {
    Locked,
    Open,
}

#[mobile]
impl Door {
    pub fn open(&mut self) {
        *self = Door::Open;
    }

    #[mobile(on_enter)]
    fn entered(&mut self) {}

    #[mobile(on_enter)]
    fn entered_again(&mut self) {}
}

fn main() {}
