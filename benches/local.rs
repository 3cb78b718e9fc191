//! Local messaging through a `Handle`, each figure next to its raw baseline
//! (a tokio task owning a `u64`, fed by an unbounded mpsc channel, replying
//! through a oneshot) measured in the same group and the same runtime.
//!
//! Groups:
//! - `request_reply/{multi_thread,current_thread}`: one request awaited at a
//!   time; `handle` is `Handle::add(1).await` (a plain handler: it runs on
//!   the caller's task while the actor is idle), `handle_mailbox` the same
//!   through an `async` handler (always through the mailbox and the actor's
//!   task), `raw` the baseline. With
//!   `to_async` the caller is criterion's `block_on` thread, so on the
//!   multi-thread runtime every round trip wakes a parked OS thread;
//!   `multi_thread_in_task` runs the caller as a task on a worker instead.
//! - `tell/{multi_thread,current_thread}`: 1000 fire-and-forget sends and one
//!   request to flush them, against 1000 raw sends and one raw round trip.
//!
//! Target (from the issue): request/reply within 1.3x of the raw baseline.
//!
//! Run: `cargo bench --bench local`.

mod common;

use common::Counter;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mobility::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

/// Messages sent per iteration of the `tell` group.
const TELLS: u64 = 1000;

/// The baseline's message: an increment and where to reply, if anywhere
/// (`None` for fire-and-forget, as the handle's own tells carry no reply
/// channel either).
type RawRequest = (u64, Option<oneshot::Sender<u64>>);

fn spawn_raw(rt: &Runtime) -> mpsc::UnboundedSender<RawRequest> {
    let (tx, mut rx) = mpsc::unbounded_channel::<RawRequest>();
    rt.spawn(async move {
        let mut count = 0u64;
        while let Some((n, reply)) = rx.recv().await {
            count += n;
            if let Some(reply) = reply {
                let _ = reply.send(count);
            }
        }
    });
    tx
}

async fn raw_request(tx: &mpsc::UnboundedSender<RawRequest>, n: u64) -> u64 {
    let (reply, rx) = oneshot::channel();
    tx.send((n, Some(reply))).expect("raw actor runs");
    rx.await.expect("raw actor replies")
}

/// A node with one counter, and the raw baseline, both on `rt`.
fn setup(rt: &Runtime) -> (Node, Handle<Counter>, mpsc::UnboundedSender<RawRequest>) {
    let (node, handle) = rt.block_on(async {
        let node = Node::builder()
            .id("bench")
            .start()
            .await
            .expect("node starts");
        let handle = node.spawn(Counter::default()).await.expect("spawn");
        (node, handle)
    });
    let raw = spawn_raw(rt);
    (node, handle, raw)
}

fn runtimes() -> Vec<(&'static str, Runtime)> {
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("multi-thread runtime");
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current-thread runtime");
    vec![("multi_thread", multi), ("current_thread", current)]
}

/// The round trips compared in the `request_reply` group.
#[derive(Clone, Copy)]
enum Call {
    /// A plain handler (run on the caller's task while the actor is idle).
    Handle,
    /// The same handler written `async`: through the mailbox.
    HandleMailbox,
    /// The raw baseline.
    Raw,
}

impl Call {
    const ALL: [Call; 3] = [Call::Handle, Call::HandleMailbox, Call::Raw];

    fn name(self) -> &'static str {
        match self {
            Call::Handle => "handle",
            Call::HandleMailbox => "handle_mailbox",
            Call::Raw => "raw",
        }
    }

    async fn once(self, handle: &Handle<Counter>, raw: &mpsc::UnboundedSender<RawRequest>) {
        match self {
            Call::Handle => {
                handle.add(1).await.expect("add");
            }
            Call::HandleMailbox => {
                handle.add_queued(1).await.expect("add");
            }
            Call::Raw => {
                raw_request(raw, 1).await;
            }
        }
    }
}

fn request_reply(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_reply");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    for (flavor, rt) in runtimes() {
        let (node, handle, raw) = setup(&rt);
        for call in Call::ALL {
            group.bench_function(BenchmarkId::new(call.name(), flavor), |b| {
                b.to_async(&rt).iter(|| call.once(&handle, &raw))
            });
        }
        if flavor == "multi_thread" {
            // The same, with the caller on a worker thread too (a spawned
            // task) instead of criterion's `block_on` thread, so each round
            // trip is not a wake-up of a parked OS thread.
            for call in Call::ALL {
                let id = BenchmarkId::new(call.name(), "multi_thread_in_task");
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        let (handle, raw) = (handle.clone(), raw.clone());
                        rt.block_on(async move {
                            tokio::spawn(async move {
                                let started = std::time::Instant::now();
                                for _ in 0..iters {
                                    call.once(&handle, &raw).await;
                                }
                                started.elapsed()
                            })
                            .await
                            .expect("caller task")
                        })
                    })
                });
            }
        }
        drop(raw);
        rt.block_on(node.shutdown());
    }
    group.finish();
}

fn tell(c: &mut Criterion) {
    let mut group = c.benchmark_group("tell");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(TELLS));
    for (flavor, rt) in runtimes() {
        let (node, handle, raw) = setup(&rt);
        group.bench_function(BenchmarkId::new("handle", flavor), |b| {
            b.to_async(&rt).iter(|| async {
                for _ in 0..TELLS {
                    handle.tell().add(1).expect("tell");
                }
                handle.add(0).await.expect("flush")
            })
        });
        group.bench_function(BenchmarkId::new("raw", flavor), |b| {
            b.to_async(&rt).iter(|| async {
                for _ in 0..TELLS {
                    raw.send((1, None)).expect("raw actor runs");
                }
                raw_request(&raw, 0).await
            })
        });
        drop(raw);
        rt.block_on(node.shutdown());
    }
    group.finish();
}

criterion_group!(benches, request_reply, tell);
criterion_main!(benches);
