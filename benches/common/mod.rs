//! What the benchmarks share: the actors (a blob that migrates and its plain
//! serde twin for the raw baselines, a counter, a small actor), and the
//! distributions of samples.
#![allow(dead_code)]

use mobility::prelude::*;
use serde::{Deserialize, Serialize};

/// The actor under test: a blob of state that moves.
#[mobile]
pub struct Blob {
    data: Vec<u8>,
    id: u64,
}

impl Blob {
    /// A blob of `data` with id `id`.
    pub fn new(data: Vec<u8>, id: u64) -> Self {
        Blob { data, id }
    }
}

#[mobile]
impl Blob {
    pub fn size(&self) -> u64 {
        self.data.len() as u64 + self.id
    }
}

/// The baselines' value: the same shape, plain serde (bytes as a CBOR byte
/// string).
#[derive(Serialize, Deserialize)]
pub struct PlainBlob {
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    pub id: u64,
}

/// The actor of the messaging benchmarks.
#[mobile]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

#[mobile]
impl Counter {
    pub fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }

    /// The same as an `async` handler: it always goes through the mailbox
    /// and runs on the actor's task (a plain one runs on the caller's task
    /// while the actor is idle).
    pub async fn add_queued(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }
}

/// A small actor that migrates: a few fields of common kinds.
#[mobile]
pub struct Small {
    count: u64,
    name: String,
    tags: Vec<u64>,
    ratio: f64,
}

#[mobile]
impl Small {
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }

    /// The same as an `async` handler: it always goes through the mailbox
    /// and runs on the actor's task (a plain one runs on the caller's task
    /// while the actor is idle).
    pub async fn add_queued(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }
}

/// A `Small` with count 42.
pub fn small() -> Small {
    Small {
        count: 42,
        name: "a small actor".to_owned(),
        tags: vec![1, 2, 3, 5, 8],
        ratio: 0.5,
    }
}

/// The `tcp://` destination of a listening node.
pub fn tcp(node: &Node) -> Destination {
    format!("tcp://{}", node.listen_addr().expect("listens"))
        .parse()
        .expect("destination")
}

// ---------------------------------------------------------------------------
// Distributions.

/// A duration in microseconds (milliseconds from 10 ms up).
pub fn micros(d: std::time::Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{us:.1} us")
    }
}

/// The value at quantile `q` of sorted `v`.
pub fn quantile(v: &[std::time::Duration], q: f64) -> std::time::Duration {
    if v.is_empty() {
        return std::time::Duration::ZERO;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// `ours / baseline`.
pub fn ratio(ours: std::time::Duration, baseline: std::time::Duration) -> f64 {
    ours.as_secs_f64() / baseline.as_secs_f64().max(1e-12)
}

/// Samples of one figure.
#[derive(Default)]
pub struct Samples(pub Vec<std::time::Duration>);

impl Samples {
    /// The samples of `v`, sorted.
    pub fn sorted(mut v: Vec<std::time::Duration>) -> Self {
        v.sort();
        Samples(v)
    }

    pub fn push(&mut self, d: std::time::Duration) {
        self.0.push(d);
    }

    /// Median, p99, max (of sorted samples).
    pub fn figures(&self) -> [std::time::Duration; 3] {
        [
            quantile(&self.0, 0.5),
            quantile(&self.0, 0.99),
            self.0.last().copied().unwrap_or_default(),
        ]
    }

    pub fn median(&mut self) -> std::time::Duration {
        self.0.sort();
        quantile(&self.0, 0.5)
    }

    /// One line: `label  median  p99  max  (n)`.
    pub fn line(&mut self, label: &str) -> String {
        self.0.sort();
        let [p50, p99, max] = self.figures();
        format!(
            "  {label:<44} median {:>10}  p99 {:>10}  max {:>10}  (n = {})",
            micros(p50),
            micros(p99),
            micros(max),
            self.0.len(),
        )
    }

    /// Median, p99, max and count as table cells (of sorted samples).
    pub fn cells(&self) -> String {
        let [p50, p99, max] = self.figures();
        format!(
            "{:>10} {:>10} {:>10} {:>8}",
            micros(p50),
            micros(p99),
            micros(max),
            self.0.len()
        )
    }
}

/// Resident bytes of this process (`/proc/self/statm`).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
