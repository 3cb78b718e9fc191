//! Everything after the handshake is Noise transport messages: someone on
//! the path who alters, forges, replays or drops one of a live connection
//! gets that connection closed by the receiver, nothing corrupted is
//! delivered, and the session resumes on a new socket (a new handshake),
//! exactly once and in order.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;

/// Frames each side sends before the encrypted stream (`Hello`, its
/// Noise handshake message), each a u32 length and its bytes.
const HANDSHAKE_FRAMES: usize = 2;
/// Which Noise transport message is attacked (0 carries the `Resume`,
/// data follows).
const AT: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Attack {
    /// One byte of the frame's payload is flipped.
    Flip,
    /// A made-up `Data` frame is slipped in before it.
    Inject,
    /// It is sent twice.
    Replay,
    /// It is not forwarded.
    Drop,
}

/// Which side of the proxy closed first.
#[derive(Debug, PartialEq, Eq)]
enum Closer {
    /// The dialer, through the proxy.
    Dialer,
    /// The listener the proxy forwards to.
    Listener,
}

fn numbered(i: u32, pad: usize) -> Bytes {
    let mut v = i.to_be_bytes().to_vec();
    v.resize(4 + pad, (i % 251) as u8);
    Bytes::from(v)
}

/// Why forwarding stopped.
enum End {
    /// The side read from closed.
    FromClosed,
    /// The side written to closed.
    ToClosed,
}

/// Forwards the handshake's frames from `from` to `to`, then the Noise
/// transport messages, attacking message `AT` if `attack` is given;
/// returns when either side closes.
async fn forward(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, attack: Option<Attack>) -> End {
    for k in 0.. {
        // A u32 length during the handshake, a u16 one after.
        let prefix = if k < HANDSHAKE_FRAMES { 4 } else { 2 };
        let mut len = [0u8; 4];
        if from.read_exact(&mut len[4 - prefix..]).await.is_err() {
            return End::FromClosed;
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        if from.read_exact(&mut body).await.is_err() {
            return End::FromClosed;
        }
        let out = match attack {
            Some(attack) if k == HANDSHAKE_FRAMES + AT => match attack {
                Attack::Flip => {
                    let middle = body.len() / 2;
                    body[middle] ^= 0x40;
                    vec![body]
                }
                Attack::Inject => {
                    // A made-up message: a `Data` frame in the clear,
                    // with a made-up tag.
                    let mut forged = 25u32.to_be_bytes().to_vec();
                    forged.push(1u8);
                    forged.extend_from_slice(&(k as u64).to_be_bytes());
                    forged.push(0);
                    forged.extend_from_slice(&0u64.to_be_bytes());
                    forged.extend_from_slice(b"forged!");
                    forged.extend_from_slice(&[0u8; 16]);
                    vec![forged, body]
                }
                Attack::Replay => vec![body.clone(), body],
                Attack::Drop => Vec::new(),
            },
            _ => vec![body],
        };
        for frame in out {
            let len = (frame.len() as u32).to_be_bytes();
            if to.write_all(&len[4 - prefix..]).await.is_err()
                || to.write_all(&frame).await.is_err()
            {
                return End::ToClosed;
            }
        }
    }
    unreachable!("frames are counted up from 0 forever")
}

/// A proxy that forwards one connection to `target`, attacking one frame
/// going toward the listener (`toward_listener`) or toward the dialer.
/// Tells which side closed the connection first, then closes both.
async fn attacking_proxy(
    target: SocketAddr,
    attack: Attack,
    toward_listener: bool,
) -> (SocketAddr, oneshot::Receiver<Closer>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("bound");
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = TcpStream::connect(target).await else {
            return;
        };
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        let up = toward_listener.then_some(attack);
        let down = (!toward_listener).then_some(attack);
        let mut to_listener = tokio::spawn(forward(cr, sw, up));
        let mut to_dialer = tokio::spawn(forward(sr, cw, down));
        let closer = tokio::select! {
            end = &mut to_listener => match end {
                Ok(End::ToClosed) => Closer::Listener,
                _ => Closer::Dialer,
            },
            end = &mut to_dialer => match end {
                Ok(End::ToClosed) => Closer::Dialer,
                _ => Closer::Listener,
            },
        };
        to_listener.abort();
        to_dialer.abort();
        let _ = tx.send(closer);
    });
    (addr, rx)
}

async fn attacked(attack: Attack, toward_listener: bool) {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let (b, mut eb) = start("node-b", "c", "s", config()).await;
    let (proxy, closer) = attacking_proxy(b.local_addr(), attack, toward_listener).await;
    connect(&a, proxy)
        .await
        .expect("a connects through the proxy");
    let to_b = peer_up(&mut ea, b.node()).await;
    let to_a = peer_up(&mut eb, a.node()).await;
    let (link, events, from) = if toward_listener {
        (to_b, &mut eb, a.node())
    } else {
        (to_a, &mut ea, b.node())
    };
    let n = 200u32;
    for i in 0..n {
        link.send(numbered(i, 1000)).expect("queued");
    }
    let got = frames(events, from, n as usize).await;
    let sent: Vec<Bytes> = (0..n).map(|i| numbered(i, 1000)).collect();
    assert!(
        got == sent,
        "{attack:?}: lost, doubled, reordered or altered"
    );
    let expected = if toward_listener {
        Closer::Listener
    } else {
        Closer::Dialer
    };
    let closed = timeout(DEADLINE, closer)
        .await
        .expect("the attacked connection is closed")
        .expect("the proxy reports");
    assert_eq!(closed, expected, "{attack:?}: the receiver closes it");
    // The session goes on over a new socket (the transports redial each
    // other directly), with no duplicate.
    link.send(Bytes::from_static(b"end")).expect("queued");
    assert_eq!(frames(events, from, 1).await[0], "end", "{attack:?}");
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_closes_the_connection_and_nothing_corrupt_arrives() {
    attacked(Attack::Flip, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_toward_the_dialer_is_caught_too() {
    attacked(Attack::Flip, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_frame_closes_the_connection() {
    attacked(Attack::Inject, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_frame_closes_the_connection() {
    attacked(Attack::Replay, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_frame_closes_the_connection() {
    attacked(Attack::Drop, false).await;
}
