use std::rc::Rc;

use mobility::prelude::*;

#[mobile]
pub enum Door {
    Locked,
    Open,
}

#[mobile]
impl Door {
    pub fn when_open(&mut self, ctx: &mut Context<Self>) -> Reply<Rc<String>> {
        let _ = ctx;
        Reply::Later
    }
}

fn main() {}
