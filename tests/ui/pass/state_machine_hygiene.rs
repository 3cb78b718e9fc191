//! The state machine options expand without the implicit prelude.
#![no_implicit_prelude]

use ::mobility::prelude::*;

#[mobile]
pub enum Phase {
    Idle,
    Busy,
}

#[mobile]
pub struct Machine {
    #[mobile(state)]
    phase: Phase,
    waiting: ::std::vec::Vec<DeferredReply<u64>>,
}

#[mobile]
impl Machine {
    pub fn start(&mut self, ctx: &mut Context<Self>) -> Reply<u64> {
        match self.phase {
            Phase::Idle => {
                self.phase = Phase::Busy;
                Reply::Now(1)
            }
            Phase::Busy => {
                ctx.postpone();
                Reply::Later
            }
        }
    }

    pub fn wait(&mut self, ctx: &mut Context<Self>) -> Reply<u64> {
        self.waiting.push(ctx.defer_reply());
        Reply::Later
    }

    #[mobile(on_enter)]
    fn entered(&mut self, ctx: &mut Context<Self>) {
        let _ = ctx.set_state_timeout(::std::time::Duration::from_secs(1)).start();
    }
}

fn main() {
    let machine = Machine {
        phase: Phase::Idle,
        waiting: ::std::vec::Vec::new(),
    };
    ::std::assert!(<Machine as Mobile>::state_key(&machine).is_some());
}
