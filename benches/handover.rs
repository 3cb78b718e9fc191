//! State hand-over against state size: one migration of an actor holding a
//! `Vec<u8>` of 1 KiB .. 64 MiB between two in-process nodes, next to the raw
//! baseline measured in the same group: `ciborium` encode of the same
//! `Blob`-shaped plain serde struct (bytes as a CBOR byte string) into a
//! `Vec`, and decode back.
//!
//! Each measured iteration is one migration; the actor alternates A -> B,
//! B -> A, so every migration is timed. After each size, the medians of the
//! migration reports' phases are printed to stderr to show where time goes.
//!
//! Target (from the issue): hand-over within 1.5x of raw encode + decode for
//! large state.
//!
//! Run: `cargo bench --bench handover`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
mod common;

use common::{Blob, PlainBlob};
use mobility::prelude::*;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const SIZES: [usize; 5] = [KIB, 64 * KIB, MIB, 16 * MIB, 64 * MIB];

fn label(size: usize) -> String {
    if size >= MIB {
        format!("{}MiB", size / MIB)
    } else {
        format!("{}KiB", size / KIB)
    }
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

/// The phases of the migrations measured for one size.
#[derive(Default)]
struct Phases {
    capture: Vec<Duration>,
    prepare: Vec<Duration>,
    restore: Vec<Duration>,
    commit: Vec<Duration>,
    freeze: Vec<Duration>,
    state_bytes: u64,
    snapshot_bytes: u64,
}

impl Phases {
    fn record(&mut self, report: &MigrationReport) {
        self.capture.push(report.capture);
        self.prepare.push(report.prepare);
        self.restore.push(report.restore);
        self.commit.push(report.commit);
        self.freeze.push(report.freeze);
        self.state_bytes = report.state_bytes;
        self.snapshot_bytes = report.snapshot_bytes;
    }

    fn print(&mut self, size: usize) {
        fn median(v: &mut [Duration]) -> Duration {
            v.sort();
            v.get(v.len() / 2).copied().unwrap_or_default()
        }
        eprintln!(
            "handover/{}: medians of {} migrations: freeze {:?} = capture {:?} + prepare {:?} \
             (of which restore {:?}) + commit {:?}; state {} B, snapshot {} B",
            label(size),
            self.freeze.len(),
            median(&mut self.freeze),
            median(&mut self.capture),
            median(&mut self.prepare),
            median(&mut self.restore),
            median(&mut self.commit),
            self.state_bytes,
            self.snapshot_bytes,
        );
    }
}

fn handover(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (a, b) = rt.block_on(async {
        let a = Node::builder()
            .id("a")
            .migration_timeout(Duration::from_secs(60))
            .start()
            .await
            .expect("a starts");
        let b = Node::builder()
            .id("b")
            .migration_timeout(Duration::from_secs(60))
            .start()
            .await
            .expect("b starts");
        a.connect_in_process(&b).expect("link");
        (a, b)
    });

    let mut group = c.benchmark_group("handover");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        if size >= MIB {
            group.sample_size(10);
            group.sampling_mode(SamplingMode::Flat);
            group.warm_up_time(Duration::from_millis(500));
            group.measurement_time(Duration::from_secs(if size >= 16 * MIB { 4 } else { 2 }));
        } else {
            group.sample_size(30);
            group.sampling_mode(SamplingMode::Auto);
            group.warm_up_time(Duration::from_millis(500));
            group.measurement_time(Duration::from_secs(2));
        }

        let data = payload(size);
        let handle: Handle<Blob> = rt.block_on(async {
            let h = a.spawn(Blob::new(data.clone(), 7)).await.expect("spawn");
            assert_eq!(h.size().await, Ok(size as u64 + 7));
            h
        });
        let phases = Mutex::new(Phases::default());
        group.bench_function(BenchmarkId::new("migrate", label(size)), |bencher| {
            bencher.to_async(&rt).iter_custom(|iters| {
                let (handle, a, b, phases) = (&handle, &a, &b, &phases);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let dest = if handle.location() == *a.id() {
                            b.id()
                        } else {
                            a.id()
                        };
                        let started = Instant::now();
                        let report = a.migrate(handle, dest).await.expect("migrates");
                        total += started.elapsed();
                        phases.lock().expect("phases").record(&report);
                    }
                    total
                }
            })
        });
        phases.lock().expect("phases").print(size);
        rt.block_on(async {
            assert_eq!(handle.size().await, Ok(size as u64 + 7), "state intact");
            handle.stop().await.expect("stop");
        });

        let plain = PlainBlob { data, id: 7 };
        group.bench_function(BenchmarkId::new("raw_cbor", label(size)), |bencher| {
            bencher.iter(|| {
                let mut bytes = Vec::new();
                ciborium::into_writer(&plain, &mut bytes).expect("encodes");
                let back: PlainBlob = ciborium::from_reader(bytes.as_slice()).expect("decodes");
                back
            })
        });
    }
    group.finish();
    rt.block_on(async {
        a.shutdown().await;
        b.shutdown().await;
    });
}

criterion_group!(benches, handover);
criterion_main!(benches);
