// The error type of a `Result` reply must travel back too, deferred or not.
use mobility::prelude::*;

#[derive(Debug)]
pub struct CartError {
    pub reason: String,
}

#[mobile]
#[derive(Default)]
pub struct Cart {
    total: u64,
}

#[mobile]
impl Cart {
    pub fn checkout(&mut self) -> Result<u64, CartError> {
        Ok(self.total)
    }

    pub fn checkout_later(&mut self, ctx: &mut Context<Self>) -> Reply<Result<u64, CartError>> {
        let _ = ctx;
        Reply::Later
    }
}

fn main() {}
