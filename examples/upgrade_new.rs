//! A rolling upgrade, the new build: version 2 of the actor type
//! `upgrade-demo.counter`, which adds a field. It accepts version 1 (see
//! `upgrade_old`) and upgrades it before `on_arrive`; its own version 2
//! cannot go to a node of the old build, which refuses it.

#[path = "upgrade/driver.rs"]
mod driver;
#[path = "upgrade/ledger.rs"]
mod ledger;

use std::time::Duration;

use mobility::prelude::*;

/// The state of version 1, as `upgrade_old` sends it.
#[mobile(previous_of = Counter, version = 1)]
pub struct CounterV1 {
    count: u64,
    ledger: ledger::Ledger,
}

/// The upgrade: version 2 adds `origin`, computed from the old state.
impl From<CounterV1> for Counter {
    fn from(old: CounterV1) -> Self {
        Counter {
            count: old.count,
            origin: format!("upgraded from version 1 at count {}", old.count),
            ledger: old.ledger,
        }
    }
}

/// Version 2: a count and where it comes from.
#[mobile]
pub struct Counter {
    count: u64,
    origin: String,
    ledger: ledger::Ledger,
}

#[mobile(tag = "upgrade-demo.counter", version = 2)]
impl Counter {
    /// Adds `n` (a handler of both versions).
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
        (self.ledger, 2, ctx.node().id().to_string())
    }

    /// Holds the actor for `ms` milliseconds (so messages queue up).
    pub async fn pause(&mut self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Where it comes from (a handler version 1 does not have).
    pub fn label(&self) -> String {
        self.origin.clone()
    }

    /// What it is and where.
    pub fn describe(&self, ctx: &mut Context<Self>) -> String {
        format!(
            "version 2 on {}, count {}, {}",
            ctx.node().id(),
            self.count,
            self.origin
        )
    }

    #[mobile(on_arrive)]
    fn arrived(&mut self, ctx: &mut Context<Self>) {
        println!(
            "counter arrived on {}: count {}, {}",
            ctx.node().id(),
            self.count,
            self.origin
        );
    }
}

impl driver::Demo for Counter {
    const BUILD: u32 = 2;
    fn fresh() -> Self {
        Counter {
            count: 100,
            origin: "born in version 2".into(),
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
    fn label(handle: &Handle<Self>) -> Option<driver::Reply<String>> {
        let handle = handle.clone();
        Some(Box::pin(async move { handle.label().await }))
    }
    fn stats(handle: &Handle<Self>) -> driver::Reply<ledger::Stats> {
        let handle = handle.clone();
        Box::pin(async move { handle.stats().await })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    driver::run::<Counter>().await
}
