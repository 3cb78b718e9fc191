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
#[path = "upgrade/ledger.rs"]
mod ledger;

use std::time::Duration;

use mobility::prelude::*;

/// Version 1: a count, and what it saw of the load.
#[mobile]
#[derive(Default)]
pub struct Counter {
    count: u64,
    ledger: ledger::Ledger,
}

#[mobile(tag = "upgrade-demo.counter")]
impl Counter {
    /// Adds `n`.
    pub fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }

    /// Records message `seq` of the load (a handler of both versions).
    pub fn record(&mut self, seq: u64) {
        self.ledger.record(seq);
    }

    /// What it saw of the load, its version and where it runs.
    pub fn stats(&self, ctx: &mut Context<Self>) -> ledger::Stats {
        (self.ledger, 1, ctx.node().id().to_string())
    }

    /// Holds the actor for `ms` milliseconds (so messages queue up).
    pub async fn pause(&mut self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// A handler that version 2 no longer has.
    pub fn retired(&self) -> String {
        "only version 1 answers this".into()
    }

    /// What it is and where.
    pub fn describe(&self, ctx: &mut Context<Self>) -> String {
        format!("version 1 on {}, count {}", ctx.node().id(), self.count)
    }
}

impl driver::Demo for Counter {
    const BUILD: u32 = 1;
    fn fresh() -> Self {
        Counter {
            count: 5,
            ledger: ledger::Ledger::default(),
        }
    }
    fn describe(handle: &Handle<Self>) -> driver::Reply<String> {
        let handle = handle.clone();
        Box::pin(async move { handle.describe().await })
    }
    fn pause(handle: &Handle<Self>) -> Result<(), Error> {
        handle.tell().pause(300)
    }
    fn add_one(handle: &Handle<Self>) -> Result<(), Error> {
        handle.tell().add(1)
    }
    fn record(handle: &Handle<Self>, seq: u64) -> Result<(), Error> {
        handle.tell().record(seq)
    }
    fn stats(handle: &Handle<Self>) -> driver::Reply<ledger::Stats> {
        let handle = handle.clone();
        Box::pin(async move { handle.stats().await })
    }
    fn retired(handle: &Handle<Self>) -> Option<driver::Reply<String>> {
        let handle = handle.clone();
        Some(Box::pin(async move { handle.retired().await }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    driver::run::<Counter>().await
}
