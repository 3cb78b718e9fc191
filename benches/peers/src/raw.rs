//! The raw baselines: a tokio task reading an unbounded mpsc channel
//! (replies through a oneshot), and framed CBOR over a loopback TCP stream
//! (u32 big-endian length prefix, `ciborium`, `TCP_NODELAY`), as in
//! `benches/remote.rs`.

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// A message to the raw local actor: add `n`, and reply with the sum if asked.
pub struct Add(pub u64, pub Option<oneshot::Sender<u64>>);

/// The raw local actor's address.
#[derive(Clone)]
pub struct Local(mpsc::UnboundedSender<Add>);

/// Spawns the raw local actor on the current runtime.
pub fn spawn_local() -> Local {
    let (tx, mut rx) = mpsc::unbounded_channel::<Add>();
    tokio::spawn(async move {
        let mut count = 0u64;
        while let Some(Add(n, reply)) = rx.recv().await {
            count += n;
            if let Some(reply) = reply {
                let _ = reply.send(count);
            }
        }
    });
    Local(tx)
}

impl Local {
    pub async fn call(&self, n: u64) -> u64 {
        let (tx, rx) = oneshot::channel();
        self.0.send(Add(n, Some(tx))).expect("raw actor");
        rx.await.expect("raw reply")
    }

    pub fn tell(&self, n: u64) {
        self.0.send(Add(n, None)).expect("raw actor");
    }
}

/// An idle raw "actor" for the spawn and memory figure: a task waiting on
/// its mpsc receiver.
pub fn spawn_idle() -> mpsc::UnboundedSender<Add> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Add>();
    tokio::spawn(async move {
        let mut count = 0u64;
        while let Some(Add(n, _)) = rx.recv().await {
            count += n;
        }
        count
    });
    tx
}

// ---------------------------------------------------------------------------
// Remote: framed CBOR over TCP.

/// A raw message: a number, and what the server does with it ("tell": count
/// it; anything else: reply with the count so far and the same text).
type RawMsg = (u64, String);

fn frame_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    ciborium::into_writer(value, &mut *out).expect("encodes");
    let len = u32::try_from(out.len() - start - 4).expect("frame under 4 GiB");
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

async fn read_frame<R: AsyncReadExt + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> Option<()> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).await.ok()?;
    buf.clear();
    buf.resize(u32::from_be_bytes(len) as usize, 0);
    reader.read_exact(buf).await.ok()?;
    Some(())
}

/// The server (in the child process): accepts connections and serves each:
/// decodes every frame, counts tells, answers everything else. Returns the
/// address it listens on.
pub async fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).expect("nodelay");
            tokio::spawn(async move {
                let (read, write) = stream.into_split();
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
        }
    });
    addr
}

/// The client's halves of a connection to the raw server.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    buf: Vec<u8>,
    frame: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect raw");
        stream.set_nodelay(true).expect("nodelay");
        let (read, write) = stream.into_split();
        Client {
            reader: BufReader::new(read),
            writer: BufWriter::new(write),
            buf: Vec::new(),
            frame: Vec::new(),
        }
    }

    /// Queues one frame in the `BufWriter` (no flush).
    pub async fn send(&mut self, msg: &RawMsg) {
        self.frame.clear();
        frame_into(msg, &mut self.frame);
        self.writer.write_all(&self.frame).await.expect("write");
    }

    /// Sends a request, flushes, and waits for the decoded reply.
    pub async fn request(&mut self, n: u64) -> u64 {
        self.send(&(n, "ping".to_owned())).await;
        self.writer.flush().await.expect("flush");
        read_frame(&mut self.reader, &mut self.buf)
            .await
            .expect("reply");
        let (count, _text): RawMsg = ciborium::from_reader(self.buf.as_slice()).expect("decodes");
        count
    }

    /// `n` tells through the `BufWriter`, then one request (which flushes).
    pub async fn flood(&mut self, n: u64) -> u64 {
        let tell = (1, "tell".to_owned());
        for _ in 0..n {
            self.send(&tell).await;
        }
        self.request(0).await
    }
}
