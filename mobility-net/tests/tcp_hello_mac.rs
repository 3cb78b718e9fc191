//! Everything a `Hello` announces is covered by the Noise handshake (both
//! `Hello`s are its prologue):
//! someone on the path who rewrites the listen address (to redirect
//! redials), the frame or message limits (to force tiny chunks), or the
//! runtime's version, in either direction, makes the handshake fail; the
//! same proxy passing the bytes through untouched lets it succeed.

mod common;

use std::net::SocketAddr;

use common::*;
use mobility_net::tcp::handshake::Hello;
use mobility_net::NetError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Which way the tampered `Hello` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// The dialer's, to the listener.
    FromDialer,
    /// The listener's, to the dialer.
    FromListener,
}

/// Rewrites one field of a `Hello`.
type Tamper = fn(&mut Hello);

/// Copies `from` to `to`, rewriting the first frame (a `Hello`) with
/// `tamper` if given, then everything else as is.
async fn forward(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, tamper: Option<Tamper>) {
    if let Some(tamper) = tamper {
        let mut len = [0u8; 4];
        if from.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        if from.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut hello: Hello = mobility_net::decode(&body).expect("the first frame is a hello");
        tamper(&mut hello);
        let body = mobility_net::encode(&hello).expect("encodes");
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        if to.write_all(&frame).await.is_err() {
            return;
        }
    }
    let _ = tokio::io::copy(&mut from, &mut to).await;
}

/// A proxy in front of `target` for one connection, tampering the `Hello`
/// going `way`.
async fn proxy(target: SocketAddr, way: Way, tamper: Option<Tamper>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = TcpStream::connect(target).await else {
            return;
        };
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        let (up, down) = match way {
            Way::FromDialer => (tamper, None),
            Way::FromListener => (None, tamper),
        };
        tokio::spawn(forward(sr, cw, down));
        forward(cr, sw, up).await;
    });
    addr
}

fn tamperings() -> Vec<(&'static str, Tamper)> {
    vec![
        ("listen redirected", |h| {
            h.listen = Some("127.0.0.1:9".into());
        }),
        ("listen removed", |h| h.listen = None),
        ("max_frame shrunk", |h| {
            h.max_frame = mobility_net::TcpConfig::MIN_FRAME as u64;
        }),
        ("max_message shrunk", |h| h.max_message = 1),
        ("max_message grown", |h| h.max_message = u64::MAX),
        ("incarnation changed", |h| h.incarnation ^= 1),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_tampered_on_the_path_fails_the_handshake() {
    let (a, mut ea) = start("node-a", "c", "s", config()).await;
    let (b, _eb) = start("node-b", "c", "s", config()).await;
    for way in [Way::FromDialer, Way::FromListener] {
        for (what, tamper) in tamperings() {
            let before = a.refusals().bad_handshake;
            let through = proxy(a.local_addr(), way, Some(tamper)).await;
            let err = connect(&b, through)
                .await
                .expect_err(&format!("{what} ({way:?}) went unnoticed"));
            match &err {
                NetError::Handshake { reason, .. } => {
                    // The two sides hash different prologues: the
                    // listener cannot verify the dialer's Noise message,
                    // says so and closes.
                    assert!(
                        reason.contains("refused the connection: authentication failed"),
                        "{what}: {err}"
                    );
                }
                other => panic!("{what} ({way:?}): {other}"),
            }
            // The listener counts a failed handshake (the dialer hung up).
            let deadline = tokio::time::Instant::now() + DEADLINE;
            let mut looks = tokio::time::interval(std::time::Duration::from_millis(10));
            while a.refusals().bad_handshake == before {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what} ({way:?}): no refusal counted"
                );
                looks.tick().await;
            }
        }
    }
    assert_no_event_about(&mut ea, b.node());
    // The same proxy, tampering nothing, lets the handshake through.
    let through = proxy(a.local_addr(), Way::FromDialer, None).await;
    let id = connect(&b, through).await.expect("untampered");
    assert_eq!(&id, a.node());
    let _ = peer_up(&mut ea, b.node()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_runtime_version_fails_the_handshake() {
    // a's runtime speaks version 4, b's version 3. A proxy makes a's
    // hello say 3 to b and b's say 4 to a: each side's version check
    // passes, but the MACs cover the real versions, so the handshake fails
    // (without that, two runtimes that cannot understand each other would
    // link up).
    let mut four = identity("node-a", "c", "s");
    four.app_version = 4;
    let (a, _ea) = mobility_net::Transport::bind(four, config(), "127.0.0.1:0")
        .await
        .expect("binds");
    let mut three = identity("node-b", "c", "s");
    three.app_version = 3;
    let (b, _eb) = mobility_net::Transport::bind(three, config(), "127.0.0.1:0")
        .await
        .expect("binds");
    let through = proxy_both(
        a.local_addr(),
        |h| h.app_version = 3,
        |h| {
            h.app_version = 4;
        },
    )
    .await;
    let err = connect(&b, through).await.expect_err("tampered versions");
    assert!(
        err.to_string().contains("authentication failed")
            || err.to_string().contains("closed during the handshake"),
        "{err}"
    );
    assert!(!err.to_string().contains("runtime speaks"), "{err}");
}

/// A proxy tampering the listener's hello with `down` and the dialer's
/// with `up`.
async fn proxy_both(target: SocketAddr, down: Tamper, up: Tamper) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = TcpStream::connect(target).await else {
            return;
        };
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        tokio::spawn(forward(sr, cw, Some(down)));
        forward(cr, sw, Some(up)).await;
    });
    addr
}
