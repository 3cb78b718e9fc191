//! Remote messaging and cross-cluster migration over authenticated TCP links
//! on loopback, each figure next to its raw baseline measured in the same
//! group and the same runtime (one multi-thread tokio runtime, 2 workers).
//!
//! Two nodes of different clusters, `a` ("east") and `b` ("west"), trust each
//! other and link over TCP on 127.0.0.1. The raw baselines use a plain tokio
//! `TcpStream` pair on loopback (`TCP_NODELAY`, as the transport sets it)
//! with the same framing as the wire: a u32 big-endian length prefix, then a
//! CBOR payload (`ciborium`).
//!
//! Groups:
//! - `remote_request_reply`: `handle` is `Handle::add(1).await` from `a` to
//!   a counter on `b`; `raw_tcp` one round trip of a framed CBOR
//!   `(u64, String)` to an echoing task, decoded on each side. Both callers
//!   run as a task on a worker thread, one round trip at a time.
//!   `handle_in_process_link` is the same call between two nodes linked in
//!   process (no TCP transport): the gap to `handle` is what the transport
//!   adds, the gap to `raw_tcp` what the runtime adds.
//!   `raw_noise` is `raw_tcp` encrypted as the links are (`raw_noise.rs`):
//!   the same framed CBOR, each frame sealed as one Noise transport message
//!   (the links' pattern and cipher, `Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s`
//!   through `snow`, keys from a handshake run once in memory), opened and
//!   decoded on each side. The gap from `raw_tcp` to `raw_noise` is what
//!   encryption costs; the gap from `raw_noise` to `handle` is what
//!   mobility's own layers cost (session, record layer, runtime).
//!   Target: `handle` within 1.5x of `raw_tcp`.
//! - `remote_tell`: 1000 fire-and-forget messages and one request to flush,
//!   against 1000 framed writes through a `BufWriter` (flushed at the end)
//!   and one framed reply (`handle_in_process_link` as above).
//!   Throughput in messages.
//! - `cross_cluster_migration_small`: a small actor moves `a` -> `b` and
//!   back over TCP, one direction per iteration. `migrate` is the wall time
//!   of `Node::migrate`, `freeze` the report's freeze time for the same
//!   migrations, `raw_2pc` a minimal two-phase hand-over by hand (the state
//!   encoded and sent, decoded and acknowledged, then a commit round trip);
//!   both callers are criterion's `block_on` thread.
//!   Target: freeze under 1 ms. The median phases are printed to stderr.
//! - `cross_cluster_migration_64mib`: an actor holding 64 MiB of `Vec<u8>`
//!   moves `a` -> `b` and back; `raw_tcp_cbor` encodes the same-shaped plain
//!   serde struct with `ciborium` (bytes as a CBOR byte string), writes the
//!   frame to a loopback socket, and a task reads, decodes and acknowledges.
//!   `raw_noise_cbor` is the same encrypted as the links are (the frame
//!   sealed in Noise transport messages of at most 64 KiB, 1 MiB at a time,
//!   opened and decoded by the receiver as they come).
//!   Target: at least 0.6 of `raw_tcp_cbor`'s throughput.
//!
//! Run: `cargo bench --bench remote`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
mod common;
mod raw_noise;

use common::{small, tcp, Blob, Counter, PlainBlob, Small};
use mobility::prelude::*;
use raw_noise::NoiseEnd;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const SECRET: &str = "shared by the federation";

/// Messages sent per iteration of the `remote_tell` group.
const TELLS: u64 = 1000;

/// State size of the `cross_cluster_migration_64mib` group.
const BIG: usize = 64 * 1024 * 1024;

/// The raw baseline's copy of `Small`, plain serde.
#[derive(Serialize, Deserialize)]
struct PlainSmall {
    count: u64,
    name: String,
    tags: Vec<u64>,
    ratio: f64,
}

fn plain_small() -> PlainSmall {
    PlainSmall {
        count: 42,
        name: "a small actor".to_owned(),
        tags: vec![1, 2, 3, 5, 8],
        ratio: 0.5,
    }
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The nodes.

async fn tcp_node(name: &str, cluster: &str) -> Node {
    Node::builder()
        .id(name)
        .cluster(cluster, SECRET)
        .trust_cluster("*", SECRET)
        .listen("127.0.0.1:0")
        .request_timeout(Duration::from_secs(60))
        .migration_timeout(Duration::from_secs(60))
        .start()
        .await
        .expect("node starts")
}

struct Nodes {
    a: Node,
    b: Node,
}

fn nodes(rt: &Runtime) -> Nodes {
    rt.block_on(async {
        let a = tcp_node("a", "east").await;
        let b = tcp_node("b", "west").await;
        let addr = b.listen_addr().expect("b listens").to_string();
        assert_eq!(a.connect(&addr).await.expect("a -> b"), *b.id());
        Nodes { a, b }
    })
}

// ---------------------------------------------------------------------------
// The raw baseline: framed CBOR over a loopback TcpStream.

/// A raw message: a number, and what the server does with it ("tell": count
/// it; anything else: reply with the count so far and the same text).
type RawMsg = (u64, String);

/// Appends one frame (u32 BE length + CBOR of `value`) to `out`.
fn frame_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    ciborium::into_writer(value, &mut *out).expect("encodes");
    let len = u32::try_from(out.len() - start - 4).expect("frame under 4 GiB");
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Reads one frame's payload into `buf`; `None` at end of stream.
async fn read_frame<R: AsyncReadExt + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> Option<()> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).await.ok()?;
    buf.clear();
    buf.resize(u32::from_be_bytes(len) as usize, 0);
    reader.read_exact(buf).await.ok()?;
    Some(())
}

/// A connected loopback pair: the client's halves; the server runs as a task.
struct RawClient {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    buf: Vec<u8>,
    frame: Vec<u8>,
}

async fn loopback_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let client = client.expect("connect");
    let (server, _) = server.expect("accept");
    client.set_nodelay(true).expect("nodelay");
    server.set_nodelay(true).expect("nodelay");
    (client, server)
}

/// Starts the raw messaging server (on the current runtime): decodes every
/// frame as a `RawMsg`, counts tells, answers everything else.
async fn raw_messaging() -> RawClient {
    let (client, server) = loopback_pair().await;
    tokio::spawn(async move {
        let (read, write) = server.into_split();
        let mut reader = BufReader::new(read);
        let mut writer = BufWriter::new(write);
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        let mut count = 0u64;
        while read_frame(&mut reader, &mut buf).await.is_some() {
            let (n, text): RawMsg = ciborium::from_reader(buf.as_slice()).expect("decodes");
            count += n;
            if text != "tell" {
                out.clear();
                frame_into(&(count, text), &mut out);
                writer.write_all(&out).await.expect("write");
                writer.flush().await.expect("flush");
            }
        }
    });
    let (read, write) = client.into_split();
    RawClient {
        reader: BufReader::new(read),
        writer: BufWriter::new(write),
        buf: Vec::new(),
        frame: Vec::new(),
    }
}

impl RawClient {
    /// Queues one frame in the `BufWriter` (no flush).
    async fn send(&mut self, msg: &RawMsg) {
        self.frame.clear();
        frame_into(msg, &mut self.frame);
        self.writer.write_all(&self.frame).await.expect("write");
    }

    /// Sends a request, flushes, and waits for the decoded reply.
    async fn request(&mut self, n: u64) -> u64 {
        self.send(&(n, "ping".to_owned())).await;
        self.writer.flush().await.expect("flush");
        read_frame(&mut self.reader, &mut self.buf)
            .await
            .expect("reply");
        let (count, _text): RawMsg = ciborium::from_reader(self.buf.as_slice()).expect("decodes");
        count
    }
}

/// The raw baseline encrypted: a client whose frames go sealed in Noise
/// transport messages (`raw_noise.rs`).
struct NoiseClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    end: NoiseEnd,
    frame: Vec<u8>,
}

/// Starts the raw Noise messaging server (on the current runtime): opens
/// and decodes every frame as a `RawMsg`, answers each one sealed.
async fn raw_noise_messaging() -> NoiseClient {
    let (client, server) = loopback_pair().await;
    let (client_end, mut server_end) = raw_noise::pair();
    tokio::spawn(async move {
        let (read, mut writer) = server.into_split();
        let mut reader = BufReader::new(read);
        let mut out = Vec::new();
        let mut count = 0u64;
        while let Some(range) = server_end.read_frame(&mut reader).await {
            let (n, text): RawMsg =
                ciborium::from_reader(server_end.plain(range)).expect("decodes");
            count += n;
            out.clear();
            frame_into(&(count, text), &mut out);
            server_end.seal(&out);
            server_end.write(&mut writer).await;
        }
    });
    let (read, writer) = client.into_split();
    NoiseClient {
        reader: BufReader::new(read),
        writer,
        end: client_end,
        frame: Vec::new(),
    }
}

impl NoiseClient {
    /// Sends a request sealed in one message and waits for the opened,
    /// decoded reply.
    async fn request(&mut self, n: u64) -> u64 {
        self.frame.clear();
        frame_into(&(n, "ping".to_owned()), &mut self.frame);
        self.end.seal(&self.frame);
        self.end.write(&mut self.writer).await;
        let range = self.end.read_frame(&mut self.reader).await.expect("reply");
        let (count, _text): RawMsg = ciborium::from_reader(self.end.plain(range)).expect("decodes");
        count
    }
}

/// Runs `iters` times `$body` (with `$state` bound mutably as `$s`) in a task
/// spawned on a worker thread and evaluates to `($state, elapsed)`, so that
/// the caller is not criterion's `block_on` thread (which would add an
/// OS-thread wake-up to every round trip).
macro_rules! in_task {
    ($state:expr, $iters:expr, |$s:ident| $body:block) => {{
        #[allow(unused_mut)]
        let mut $s = $state;
        let iters = $iters;
        tokio::spawn(async move {
            let started = Instant::now();
            for _ in 0..iters {
                $body
            }
            let elapsed = started.elapsed();
            ($s, elapsed)
        })
        .await
        .expect("caller task")
    }};
}

// ---------------------------------------------------------------------------
// Groups.

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("multi-thread runtime")
}

fn messaging(c: &mut Criterion) {
    let rt = runtime();
    let Nodes { a, b } = nodes(&rt);
    let remote: Handle<Counter> = rt.block_on(async {
        let on_b = b.spawn(Counter::default()).await.expect("spawn on b");
        let remote = a.bind(&on_b).expect("bind at a");
        assert_eq!(remote.add(1).await, Ok(1));
        remote
    });
    // The same runtime path over an in-process link (no TCP transport): what
    // the transport adds is the difference between `handle` and this.
    let (node_c, node_d, in_process): (Node, Node, Handle<Counter>) = rt.block_on(async {
        let c = Node::builder().id("c").start().await.expect("c starts");
        let d = Node::builder().id("d").start().await.expect("d starts");
        c.connect_in_process(&d).expect("link");
        let on_d = d.spawn(Counter::default()).await.expect("spawn on d");
        let in_process = c.bind(&on_d).expect("bind at c");
        assert_eq!(in_process.add(1).await, Ok(1));
        (c, d, in_process)
    });
    let raw = Mutex::new(Some(rt.block_on(raw_messaging())));
    let raw_noise = Mutex::new(Some(rt.block_on(raw_noise_messaging())));

    let mut group = c.benchmark_group("remote_request_reply");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    group.bench_function("handle", |bencher| {
        bencher.to_async(&rt).iter_custom(|iters| {
            let remote = remote.clone();
            async move {
                let (_, elapsed) = in_task!(remote, iters, |h| {
                    h.add(1).await.expect("add");
                });
                elapsed
            }
        })
    });
    group.bench_function("handle_in_process_link", |bencher| {
        bencher.to_async(&rt).iter_custom(|iters| {
            let remote = in_process.clone();
            async move {
                let (_, elapsed) = in_task!(remote, iters, |h| {
                    h.add(1).await.expect("add");
                });
                elapsed
            }
        })
    });
    group.bench_function("raw_tcp", |bencher| {
        bencher.to_async(&rt).iter_custom(|iters| {
            let client = raw.lock().expect("raw").take().expect("raw client");
            let raw = &raw;
            async move {
                let (client, elapsed) = in_task!(client, iters, |c| {
                    c.request(1).await;
                });
                *raw.lock().expect("raw") = Some(client);
                elapsed
            }
        })
    });
    group.bench_function("raw_noise", |bencher| {
        bencher.to_async(&rt).iter_custom(|iters| {
            let client = raw_noise.lock().expect("raw").take().expect("raw client");
            let raw_noise = &raw_noise;
            async move {
                let (client, elapsed) = in_task!(client, iters, |c| {
                    c.request(1).await;
                });
                *raw_noise.lock().expect("raw") = Some(client);
                elapsed
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("remote_tell");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(TELLS));
    group.bench_function("handle", |bencher| {
        bencher.to_async(&rt).iter_custom(|iters| {
            let remote = remote.clone();
            async move {
                let (_, elapsed) = in_task!(remote, iters, |h| {
                    for _ in 0..TELLS {
                        h.tell().add(1).expect("tell");
                    }
                    h.add(0).await.expect("flush");
                });
                elapsed
            }
        })
    });
    group.bench_function("handle_in_process_link", |bencher| {
        bencher.to_async(&rt).iter_custom(|iters| {
            let remote = in_process.clone();
            async move {
                let (_, elapsed) = in_task!(remote, iters, |h| {
                    for _ in 0..TELLS {
                        h.tell().add(1).expect("tell");
                    }
                    h.add(0).await.expect("flush");
                });
                elapsed
            }
        })
    });
    group.bench_function("raw_tcp", |bencher| {
        bencher.to_async(&rt).iter_custom(|iters| {
            let client = raw.lock().expect("raw").take().expect("raw client");
            let raw = &raw;
            async move {
                let (client, elapsed) = in_task!(client, iters, |c| {
                    let tell = (1, "tell".to_owned());
                    for _ in 0..TELLS {
                        c.send(&tell).await;
                    }
                    c.request(0).await;
                });
                *raw.lock().expect("raw") = Some(client);
                elapsed
            }
        })
    });
    group.finish();

    drop(raw);
    drop(raw_noise);
    rt.block_on(async {
        a.shutdown().await;
        b.shutdown().await;
        node_c.shutdown().await;
        node_d.shutdown().await;
    });
}

/// The phases of the migrations measured in one group.
#[derive(Default)]
struct Phases {
    capture: Vec<Duration>,
    prepare: Vec<Duration>,
    restore: Vec<Duration>,
    commit: Vec<Duration>,
    freeze: Vec<Duration>,
    total: Vec<Duration>,
    state_bytes: u64,
    snapshot_bytes: u64,
}

impl Phases {
    fn record(&mut self, report: &MigrationReport, total: Duration) {
        self.capture.push(report.capture);
        self.prepare.push(report.prepare);
        self.restore.push(report.restore);
        self.commit.push(report.commit);
        self.freeze.push(report.freeze);
        self.total.push(total);
        self.state_bytes = report.state_bytes;
        self.snapshot_bytes = report.snapshot_bytes;
    }

    fn print(&mut self, group: &str) {
        eprintln!(
            "{group}: medians of {} migrations: migrate {:?}, freeze {:?} = capture {:?} + \
             prepare {:?} (of which restore {:?}) + commit {:?}; state {} B, snapshot {} B",
            self.freeze.len(),
            median(&mut self.total),
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

/// Migrates `handle` to whichever of `a`, `b` it is not on, `iters` times,
/// over TCP; returns the wall time and the sum of the reports' freeze times.
async fn migrate_alternating<A: Actor>(
    nodes: &Nodes,
    dests: &(Destination, Destination),
    handle: &Handle<A>,
    iters: u64,
    phases: &Mutex<Phases>,
) -> (Duration, Duration) {
    let (mut wall, mut freeze) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..iters {
        let dest = if nodes.a.hosts(handle.id()) {
            dests.1.clone()
        } else {
            dests.0.clone()
        };
        let started = Instant::now();
        let report = nodes.a.migrate(handle, dest).await.expect("migrates");
        let elapsed = started.elapsed();
        wall += elapsed;
        freeze += report.freeze;
        phases.lock().expect("phases").record(&report, elapsed);
    }
    (wall, freeze)
}

/// Starts the raw hand-over server: reads a framed CBOR `T`, decodes it,
/// acknowledges with one byte; then, for a two-phase hand-over, reads the
/// one-byte commit and acknowledges it.
async fn raw_receiver<T>(two_phase: bool) -> TcpStream
where
    T: for<'de> Deserialize<'de> + Send + 'static,
{
    let (client, server) = loopback_pair().await;
    tokio::spawn(async move {
        let mut server = server;
        let mut buf = Vec::new();
        while read_frame(&mut server, &mut buf).await.is_some() {
            let value: T = ciborium::from_reader(buf.as_slice()).expect("decodes");
            server.write_all(&[1]).await.expect("ack");
            if two_phase {
                let mut commit = [0u8; 1];
                server.read_exact(&mut commit).await.expect("commit");
                server.write_all(&[2]).await.expect("committed");
            }
            drop(value);
        }
    });
    client
}

/// Encodes `value` as one frame, writes it, and waits for the acknowledgement
/// (and, for a two-phase hand-over, sends the commit and waits for its
/// acknowledgement too).
/// Times sending `plain` over a raw framed TCP stream (answered by an ack,
/// and a second round trip if `two_phase`): the baseline of a migration.
fn bench_raw_sends<T>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    plain: &T,
    two_phase: bool,
) where
    T: Serialize + for<'de> Deserialize<'de> + Send + Sync + 'static,
{
    let client = Mutex::new(Some(rt.block_on(raw_receiver::<T>(two_phase))));
    group.bench_function(name, |bencher| {
        bencher.to_async(rt).iter_custom(|iters| {
            let mut stream = client.lock().expect("raw").take().expect("raw client");
            let client = &client;
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    raw_send(&mut stream, plain, two_phase).await;
                }
                let elapsed = started.elapsed();
                *client.lock().expect("raw") = Some(stream);
                elapsed
            }
        })
    });
}

async fn raw_send<T: Serialize>(client: &mut TcpStream, value: &T, two_phase: bool) {
    let mut frame = Vec::new();
    frame_into(value, &mut frame);
    client.write_all(&frame).await.expect("write");
    let mut ack = [0u8; 1];
    client.read_exact(&mut ack).await.expect("ack");
    if two_phase {
        client.write_all(&[0]).await.expect("commit");
        client.read_exact(&mut ack).await.expect("committed");
    }
}

/// Plaintext sealed and written per step by the raw Noise sender of large
/// state: encryption and transfer overlap as they do on the links.
const NOISE_STEP: usize = 1 << 20;

/// Times sending `plain` over a raw Noise stream (`raw_noise.rs`): the
/// frame sealed and written 1 MiB at a time, opened and decoded by a task,
/// answered by a sealed one-byte ack. The encrypted baseline of a large
/// migration.
fn bench_raw_noise_sends<T>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    plain: &T,
) where
    T: Serialize + for<'de> Deserialize<'de> + Send + Sync + 'static,
{
    let client = Mutex::new(Some(rt.block_on(async {
        let (client, server) = loopback_pair().await;
        let (client_end, mut server_end) = raw_noise::pair();
        tokio::spawn(async move {
            let (read, mut writer) = server.into_split();
            let mut reader = BufReader::new(read);
            while let Some(range) = server_end.read_frame(&mut reader).await {
                let value: T = ciborium::from_reader(server_end.plain(range)).expect("decodes");
                drop(value);
                server_end.seal(&[0, 0, 0, 1, 1]);
                server_end.write(&mut writer).await;
            }
        });
        let (read, writer) = client.into_split();
        (BufReader::new(read), writer, client_end)
    })));
    group.bench_function(name, |bencher| {
        bencher.to_async(rt).iter_custom(|iters| {
            let (mut reader, mut writer, mut end) =
                client.lock().expect("raw").take().expect("raw client");
            let client = &client;
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    let mut frame = Vec::new();
                    frame_into(plain, &mut frame);
                    for step in frame.chunks(NOISE_STEP) {
                        end.seal(step);
                        end.write(&mut writer).await;
                    }
                    end.read_frame(&mut reader).await.expect("ack");
                }
                let elapsed = started.elapsed();
                *client.lock().expect("raw") = Some((reader, writer, end));
                elapsed
            }
        })
    });
}

fn migration_small(c: &mut Criterion) {
    let rt = runtime();
    let nodes = nodes(&rt);
    let dests = (tcp(&nodes.a), tcp(&nodes.b));
    let handle: Handle<Small> = rt.block_on(async {
        let h = nodes.a.spawn(small()).await.expect("spawn");
        assert_eq!(h.count().await, Ok(42));
        h
    });

    let mut group = c.benchmark_group("cross_cluster_migration_small");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(30);
    let phases = Mutex::new(Phases::default());
    group.bench_function("migrate", |bencher| {
        bencher.to_async(&rt).iter_custom(|iters| {
            let (nodes, dests, handle, phases) = (&nodes, &dests, &handle, &phases);
            async move {
                migrate_alternating(nodes, dests, handle, iters, phases)
                    .await
                    .0
            }
        })
    });
    group.bench_function("freeze", |bencher| {
        bencher.to_async(&rt).iter_custom(|iters| {
            let (nodes, dests, handle, phases) = (&nodes, &dests, &handle, &phases);
            async move {
                migrate_alternating(nodes, dests, handle, iters, phases)
                    .await
                    .1
            }
        })
    });
    let plain = plain_small();
    bench_raw_sends(&mut group, &rt, "raw_2pc", &plain, true);
    group.finish();
    phases
        .lock()
        .expect("phases")
        .print("cross_cluster_migration_small");

    rt.block_on(async {
        assert_eq!(handle.count().await, Ok(42), "state intact");
        handle.stop().await.expect("stop");
        nodes.a.shutdown().await;
        nodes.b.shutdown().await;
    });
}

fn migration_64mib(c: &mut Criterion) {
    let rt = runtime();
    let nodes = nodes(&rt);
    let dests = (tcp(&nodes.a), tcp(&nodes.b));
    let data = payload(BIG);
    let handle: Handle<Blob> = rt.block_on(async {
        let h = nodes
            .a
            .spawn(Blob::new(data.clone(), 7))
            .await
            .expect("spawn");
        assert_eq!(h.size().await, Ok(BIG as u64 + 7));
        h
    });

    let mut group = c.benchmark_group("cross_cluster_migration_64mib");
    group.throughput(Throughput::Bytes(BIG as u64));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    let phases = Mutex::new(Phases::default());
    group.bench_function("migrate", |bencher| {
        bencher.to_async(&rt).iter_custom(|iters| {
            let (nodes, dests, handle, phases) = (&nodes, &dests, &handle, &phases);
            async move {
                migrate_alternating(nodes, dests, handle, iters, phases)
                    .await
                    .0
            }
        })
    });
    phases
        .lock()
        .expect("phases")
        .print("cross_cluster_migration_64mib");
    rt.block_on(async {
        assert_eq!(handle.size().await, Ok(BIG as u64 + 7), "state intact");
        handle.stop().await.expect("stop");
    });

    let plain = PlainBlob { data, id: 7 };
    bench_raw_sends(&mut group, &rt, "raw_tcp_cbor", &plain, false);
    bench_raw_noise_sends(&mut group, &rt, "raw_noise_cbor", &plain);
    group.finish();

    rt.block_on(async {
        nodes.a.shutdown().await;
        nodes.b.shutdown().await;
    });
}

criterion_group!(benches, messaging, migration_small, migration_64mib);
criterion_main!(benches);
