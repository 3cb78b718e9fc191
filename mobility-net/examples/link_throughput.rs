//! Throughput of one large message over an encrypted link on loopback,
//! against the raw socket copy of the same bytes, measured in the same run.
//!
//! ```text
//! cargo run --release -p mobility-net --example link_throughput [MiB] [rounds]
//! ```
//!
//! Raw: a tokio `TcpStream` writes the bytes after a u64 length; the other
//! end reads them into one buffer. Link: a `Transport` pair already
//! connected (its handshake is not timed), one message of the same size,
//! timed from `send` to the `Frame` event at the other end (chunked,
//! encrypted, decrypted and put back together). Rounds alternate.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mobility_net::{Identity, NodeId, Secret, TcpConfig, Transport, TransportEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn identity(name: &str) -> Identity {
    Identity {
        node: NodeId::new(name).expect("valid"),
        cluster: "bench".into(),
        secret: Secret::from("bench secret"),
        app_version: 0,
    }
}

async fn raw_copy(payload: &Bytes) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("bound");
    let receiver = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accepts");
        let _ = s.set_nodelay(true);
        let len = s.read_u64().await.expect("reads") as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await.expect("reads");
        buf
    });
    let mut s = TcpStream::connect(addr).await.expect("connects");
    let _ = s.set_nodelay(true);
    let started = Instant::now();
    s.write_u64(payload.len() as u64).await.expect("writes");
    s.write_all(payload).await.expect("writes");
    let got = receiver.await.expect("receives");
    let took = started.elapsed();
    assert_eq!(got.len(), payload.len());
    took
}

async fn link_send(
    to_b: &mobility_net::LinkSender,
    eb: &mut tokio::sync::mpsc::UnboundedReceiver<TransportEvent>,
    payload: &Bytes,
) -> Duration {
    let started = Instant::now();
    to_b.send(payload.clone()).expect("queued");
    loop {
        match eb.recv().await.expect("events") {
            TransportEvent::Frame { frame, .. } => {
                let took = started.elapsed();
                assert_eq!(frame.len(), payload.len());
                return took;
            }
            TransportEvent::PeerLost { reason, .. } => panic!("lost: {reason}"),
            TransportEvent::PeerUp { .. } => {}
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let len = mib << 20;
    let payload: Bytes = (0..len).map(|i| (i % 251) as u8).collect();
    let config = TcpConfig::default();
    let (a, _ea) = Transport::bind(identity("bench-a"), config.clone(), "127.0.0.1:0")
        .await
        .expect("binds");
    let (b, mut eb) = Transport::bind(identity("bench-b"), config, "127.0.0.1:0")
        .await
        .expect("binds");
    a.connect(&b.local_addr().to_string())
        .await
        .expect("connects");
    let mut ea = _ea;
    let to_b = loop {
        if let Some(TransportEvent::PeerUp { link, .. }) = ea.recv().await {
            break link;
        }
    };
    // Warm up both paths once.
    raw_copy(&payload).await;
    link_send(&to_b, &mut eb, &payload).await;
    let (mut raw, mut link) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw.push(raw_copy(&payload).await);
        link.push(link_send(&to_b, &mut eb, &payload).await);
    }
    for (name, times) in [("raw TCP copy", &raw), ("encrypted link", &link)] {
        let list: Vec<String> = times
            .iter()
            .map(|d| format!("{:.0}", mib_s(len, *d)))
            .collect();
        println!(
            "{name:>15}: median {:.1} ms ({:.0} MiB/s); every round MiB/s: {}",
            median(times.clone()).as_secs_f64() * 1e3,
            mib_s(len, median(times.clone())),
            list.join(", ")
        );
    }
    let ratios: Vec<f64> = raw
        .iter()
        .zip(&link)
        .map(|(r, l)| r.as_secs_f64() / l.as_secs_f64())
        .collect();
    println!(
        "link / raw throughput: {:.2} (medians); per round: {}",
        median(raw).as_secs_f64() / median(link).as_secs_f64(),
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    a.shutdown();
    b.shutdown();
}
