//! A rolling upgrade, the old build: version 1 of the actor type
//! `upgrade-demo.counter`. Its counter migrates to a node running
//! `upgrade_new` (version 2), which upgrades it on arrival; the other way is
//! refused and the counter stays. Run both with the same `MOBILITY_SECRET`:
//!
//! ```text
//! cargo run --example upgrade_new -- new
//! cargo run --example upgrade_old -- old --spawn     # then: migrate tcp://ADDR-OF-NEW
//! ```

#[path = "upgrade/driver.rs"]
mod driver;

use std::time::Duration;

use mobility::prelude::*;

/// Version 1: a count.
#[mobile]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

#[mobile(tag = "upgrade-demo.counter")]
impl Counter {
    /// Adds `n`.
    pub fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }

    /// Holds the actor for `ms` milliseconds (so messages queue up).
    pub async fn pause(&mut self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// What it is and where.
    pub fn describe(&self, ctx: &mut Context<Self>) -> String {
        format!("version 1 on {}, count {}", ctx.node().id(), self.count)
    }
}

impl driver::Demo for Counter {
    const BUILD: u32 = 1;
    fn fresh() -> Self {
        Counter { count: 5 }
    }
    fn describe(
        handle: &Handle<Self>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, Error>> + Send>> {
        let handle = handle.clone();
        Box::pin(async move { handle.describe().await })
    }
    fn pause(handle: &Handle<Self>) -> Result<(), Error> {
        handle.tell().pause(300)
    }
    fn add_one(handle: &Handle<Self>) -> Result<(), Error> {
        handle.tell().add(1)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    driver::run::<Counter>().await
}
