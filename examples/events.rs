//! A mobile event manager (the seed's gen_event): one actor hosting two
//! event handlers, a counter of events and a bounded log, that keep their
//! state when the manager moves to another node. A third handler fails on
//! one event and is removed without harming the others.
//!
//! `cargo run --example events`

use std::collections::BTreeMap;

use mobility::events::{EventHandler, EventManager};
use mobility::prelude::*;

/// What happens in a small shop.
#[mobile]
#[derive(Debug, Clone)]
pub enum ShopEvent {
    Sold { item: String, cents: u64 },
    Refunded { item: String },
}
mobility::event_manager!(ShopEvent);

/// Counts events by kind.
#[mobile]
#[derive(Default)]
pub struct Counter {
    by_kind: BTreeMap<String, u64>,
}

impl EventHandler<ShopEvent> for Counter {
    type Call = ();
    type Reply = BTreeMap<String, u64>;
    fn handle_event(&mut self, event: &ShopEvent) -> Result<(), String> {
        let kind = match event {
            ShopEvent::Sold { .. } => "sold",
            ShopEvent::Refunded { .. } => "refunded",
        };
        *self.by_kind.entry(kind.to_owned()).or_default() += 1;
        Ok(())
    }
    fn handle_call(&mut self, (): ()) -> Result<Self::Reply, String> {
        Ok(self.by_kind.clone())
    }
}
mobility::event_handler!(Counter, ShopEvent);

/// Keeps the last `capacity` events, as text.
#[mobile]
pub struct BoundedLog {
    capacity: usize,
    lines: Vec<String>,
}

impl EventHandler<ShopEvent> for BoundedLog {
    /// How many of the last lines to return.
    type Call = usize;
    type Reply = Vec<String>;
    fn handle_event(&mut self, event: &ShopEvent) -> Result<(), String> {
        if self.lines.len() == self.capacity {
            self.lines.remove(0);
        }
        self.lines.push(format!("{event:?}"));
        Ok(())
    }
    fn handle_call(&mut self, last: usize) -> Result<Self::Reply, String> {
        Ok(self.lines[self.lines.len().saturating_sub(last)..].to_vec())
    }
}
mobility::event_handler!(BoundedLog, ShopEvent);

/// Refuses refunds: fails on the first one (and is removed).
#[mobile]
#[derive(Default)]
pub struct NoRefunds {
    seen: u64,
}

impl EventHandler<ShopEvent> for NoRefunds {
    type Call = ();
    type Reply = u64;
    fn handle_event(&mut self, event: &ShopEvent) -> Result<(), String> {
        self.seen += 1;
        match event {
            ShopEvent::Refunded { item } => Err(format!("a refund of {item}!")),
            ShopEvent::Sold { .. } => Ok(()),
        }
    }
    fn handle_call(&mut self, (): ()) -> Result<u64, String> {
        Ok(self.seen)
    }
}
mobility::event_handler!(NoRefunds, ShopEvent);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Node::builder().id("node-a").start().await?;
    let b = Node::builder().id("node-b").start().await?;
    a.connect_in_process(&b)?;

    let shop = a.spawn(EventManager::<ShopEvent>::new()).await?;
    shop.add_handler("counter", Counter::default()).await?;
    shop.add_handler(
        "log",
        BoundedLog {
            capacity: 3,
            lines: Vec::new(),
        },
    )
    .await?;
    shop.add_handler("no-refunds", NoRefunds::default()).await?;

    for (item, cents) in [("tea", 350), ("cake", 420), ("tea", 350)] {
        shop.tell().notify(ShopEvent::Sold {
            item: item.into(),
            cents,
        })?; // fire-and-forget
    }
    let failed = shop
        .sync_notify(ShopEvent::Refunded {
            item: "cake".into(),
        })
        .await?; // acknowledged: every handler has seen it
    for failure in &failed {
        println!("removed: {failure}");
    }

    let report = a.migrate(&shop, b.id()).await?;
    println!(
        "manager moved {} -> {} with {} handlers ({} bytes of state, freeze {:?})",
        report.from,
        report.to,
        shop.handlers().await?.len(),
        report.state_bytes,
        report.freeze
    );

    shop.tell().notify(ShopEvent::Sold {
        item: "scone".into(),
        cents: 280,
    })?;
    println!(
        "counter on {}: {:?}",
        shop.location(),
        shop.call::<Counter>("counter", ()).await?
    );
    println!("last 3 log lines:");
    for line in shop.call::<BoundedLog>("log", 3).await? {
        println!("  {line}");
    }
    let handlers: Vec<String> = shop.handlers().await?.into_iter().map(|h| h.id).collect();
    println!(
        "handlers now: {handlers:?}; failures kept: {}",
        shop.failures().await?.len()
    );
    Ok(())
}
