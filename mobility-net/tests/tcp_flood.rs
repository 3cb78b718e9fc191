//! Strangers that connect and never authenticate (idle, or trickling bytes)
//! take places only in the budget of unauthenticated sockets: however many
//! they are, the node still dials out, keeps its links and takes a
//! legitimate peer; the excess is refused and counted, the idle ones are
//! closed at the handshake deadline, and the log gets a summary, not a
//! line per refusal.
//!
//! The attackers connect from other loopback addresses (127.0.0.10 and
//! up, which Linux routes to `lo`) than the legitimate peers (127.0.0.1),
//! as they would come from other hosts; so these tests run on Linux only.
//! They hold about 1,000 sockets (2,000 descriptors in this process, both
//! ends); with a lower limit of open files they scale down and say so.

#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use mobility_net::{Refusals, TcpConfig, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Every line logged by this test binary, from every test (each test
/// looks only at the lines naming its own nodes).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        // Debug and up: per-refusal lines are at trace level only.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("mobility_net=debug"))
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .try_init();
        logs
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("no panic").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The lines logged so far that contain every one of `words`.
fn lines_with(words: &[&str]) -> Vec<String> {
    let bytes = logs().lock().expect("no panic").clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|line| words.iter().all(|w| line.contains(w)))
        .map(str::to_owned)
        .collect()
}

/// The soft limit of open files of this process (Linux).
fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024)
}

/// Waits until `check` holds, looking again every few milliseconds, or
/// fails after `DEADLINE` saying `what`.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    let mut looks = tokio::time::interval(Duration::from_millis(10));
    while !check() {
        assert!(Instant::now() < deadline, "not within {DEADLINE:?}: {what}");
        looks.tick().await;
    }
}

/// A socket to `to` from the loopback address `from`.
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(to).await
}

/// How an attacking socket behaves once connected.
#[derive(Debug, Clone, Copy)]
enum Manner {
    /// Sends nothing.
    Idle,
    /// Sends a length prefix then garbage, one byte every `TRICKLE`.
    Slow,
}

const TRICKLE: Duration = Duration::from_millis(50);

/// What the attackers saw.
#[derive(Debug, Default)]
struct Seen {
    /// Sockets connected (as the attacker sees it: when the node's accept
    /// queue overflows, the kernel answers with a SYN cookie and drops
    /// the connection, so some of these never reach the node at all).
    opened: AtomicU64,
    /// Sockets the node closed.
    closed: AtomicU64,
}

/// One attacking socket from `from`, reopened `pause` after the node
/// closes it until `stop`; whatever it holds then it keeps until the node
/// closes it, or until `release`.
async fn attack(
    from: Ipv4Addr,
    to: SocketAddr,
    manner: Manner,
    pause: Duration,
    stop: CancellationToken,
    release: CancellationToken,
    seen: Arc<Seen>,
) {
    let mut buf = [0u8; 256];
    while !stop.is_cancelled() {
        if let Ok(mut s) = connect_from(from, to).await {
            seen.opened.fetch_add(1, Ordering::Relaxed);
            match manner {
                Manner::Idle => loop {
                    tokio::select! {
                        r = s.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
                        () = release.cancelled() => return,
                    }
                },
                Manner::Slow => {
                    let (mut read, mut write) = s.into_split();
                    let mut bytes = 4000u32.to_be_bytes().to_vec();
                    bytes.resize(4000, 0x42);
                    let mut bytes = bytes.into_iter();
                    let mut ticks = tokio::time::interval(TRICKLE);
                    loop {
                        tokio::select! {
                            r = read.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
                            () = release.cancelled() => return,
                            _ = ticks.tick() => {
                                let Some(byte) = bytes.next() else { break };
                                if write.write_all(&[byte]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            seen.closed.fetch_add(1, Ordering::Relaxed);
        }
        // Pacing of the attack (not a wait for anything).
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => return,
        }
    }
}

fn attacker(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, (10 + i / 200) as u8, (10 + i % 200) as u8)
}

/// A node under attack: short handshake deadline, default budgets.
fn target_config() -> TcpConfig {
    TcpConfig {
        handshake_timeout: Duration::from_secs(1),
        ..config()
    }
}

async fn exchange(
    from: &Transport,
    to_events: &mut Events,
    link: &mobility_net::LinkSender,
    n: u32,
) {
    for i in 0..n {
        link.send(Bytes::from(i.to_be_bytes().to_vec()))
            .expect("queued");
    }
    let got = frames(to_events, from.node(), n as usize).await;
    for (i, frame) in got.iter().enumerate() {
        assert_eq!(frame.as_ref(), (i as u32).to_be_bytes(), "frame {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_strangers_starve_neither_dials_nor_links_nor_peers() {
    logs();
    // Two descriptors per attacking socket (both ends are here), plus
    // room for the rest of the test.
    let limit = open_files_limit();
    let idle = 1024.min(limit.saturating_sub(256) / 2 * 15 / 16);
    let slow = idle / 16;
    if idle < 1024 {
        eprintln!("open files limited to {limit}: {idle} idle and {slow} slow sockets only");
    }
    let (a, mut ea) = start("flood-a", "c", "s", target_config()).await;
    let (b, mut eb) = start("flood-b", "c", "s", config()).await;
    let (c, mut ec) = start("flood-c", "c", "s", config()).await;
    let stop = CancellationToken::new();
    let release = CancellationToken::new();
    let seen = Arc::new(Seen::default());
    let started = Instant::now();
    // 8 sockets per address (the per-address limit), 128 addresses for
    // the idle ones, more for the slow ones.
    let mut attackers = Vec::new();
    for i in 0..idle + slow {
        let (manner, from) = if i < idle {
            (Manner::Idle, attacker(i / 8))
        } else {
            (Manner::Slow, attacker(1000 + (i - idle) / 8))
        };
        attackers.push(tokio::spawn(attack(
            from,
            a.local_addr(),
            manner,
            Duration::from_millis(500),
            stop.clone(),
            release.clone(),
            Arc::clone(&seen),
        )));
    }
    // The flood is on: every place of the budget is taken, over and over.
    until("the budget is full and refusals pile up", || {
        a.unauthenticated() >= 60 && a.refusals().total() >= idle as u64
    })
    .await;
    let under_attack = a.refusals();
    // a dials b and frames go both ways.
    connect(&a, b.local_addr())
        .await
        .expect("a dials b under attack");
    let to_b = peer_up(&mut ea, b.node()).await;
    let to_a = peer_up(&mut eb, a.node()).await;
    exchange(&a, &mut eb, &to_b, 200).await;
    exchange(&b, &mut ea, &to_a, 200).await;
    // A legitimate peer dials a and gets in (like a redialing peer, it
    // tries again if its socket is pushed out before its hello is read).
    let mut attempts = 0;
    let deadline = Instant::now() + DEADLINE;
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    loop {
        attempts += 1;
        match connect(&c, a.local_addr()).await {
            Ok(id) => {
                assert_eq!(&id, a.node());
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "c never got in: {e}");
                eprintln!("c's attempt {attempts} failed: {e}");
            }
        }
        pace.tick().await;
    }
    let to_c = peer_up(&mut ea, c.node()).await;
    let to_a_from_c = peer_up(&mut ec, a.node()).await;
    exchange(&a, &mut ec, &to_c, 50).await;
    exchange(&c, &mut ea, &to_a_from_c, 50).await;
    let during = started.elapsed();
    let refused = a.refusals();
    let opened = seen.opened.load(Ordering::Relaxed);
    eprintln!(
        "{idle} idle + {slow} slow attacking sockets, {opened} connections in {during:?}; \
         c got in at attempt {attempts}; refusals {refused:?}"
    );
    // The flood never touched the links: b and c each hold one.
    assert!(refused.total() > under_attack.total());
    assert_eq!(refused.links_full, 0, "{refused:?}");
    // Then the strangers stop reopening but hold what they have: the node
    // closes those at the handshake deadline, and its budget empties.
    let before = a.refusals().handshake_timeout;
    stop.cancel();
    until("the unauthenticated budget empties", || {
        a.unauthenticated() == 0
    })
    .await;
    release.cancel();
    for task in attackers {
        task.await.expect("attacker");
    }
    let closed = seen.closed.load(Ordering::Relaxed);
    let opened = seen.opened.load(Ordering::Relaxed);
    eprintln!(
        "{closed} of the {opened} attacking sockets were closed by the node \
         (the others never reached it: the accept queue overflowed)"
    );
    let refused: Refusals = a.refusals();
    assert!(
        refused.handshake_timeout >= before + 60,
        "the last strangers were closed at the deadline: {refused:?}"
    );
    // One summary line at most every 5 s (and the first at once), not a
    // line per refusal; flood-a's node field names it in each.
    let elapsed = started.elapsed();
    let summaries = lines_with(&["flood-a", "refused before authentication"]);
    let allowed = 2 + (elapsed.as_secs() / 5) as usize;
    eprintln!(
        "{} refusals, {} summary lines in {elapsed:?}",
        refused.total(),
        summaries.len()
    );
    assert!(!summaries.is_empty(), "no summary of refusals was logged");
    assert!(
        summaries.len() <= allowed,
        "{} summary lines in {elapsed:?}: {summaries:#?}",
        summaries.len()
    );
    let about_refusals = lines_with(&["flood-a", "refus"]).len();
    assert_eq!(
        about_refusals,
        summaries.len(),
        "other lines about refusals"
    );
    assert!(refused.total() as usize > 100 * allowed, "{refused:?}");
    // Links still work.
    exchange(&a, &mut eb, &to_b, 10).await;
    assert_serves(&a, &mut ea, "c", "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_limit_refuses_the_excess_and_silent_sockets_close_at_the_deadline() {
    logs();
    let (a, mut ea) = start("addr-a", "c", "s", target_config()).await;
    let from = Ipv4Addr::new(127, 0, 0, 2);
    let opened = Instant::now();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(connect_from(from, a.local_addr()).await.expect("connects"));
    }
    until("8 sockets wait for their handshake", || {
        a.unauthenticated() == 8
    })
    .await;
    // The 9th to 12th from that address are closed at once, counted.
    let mut excess = Vec::new();
    for _ in 0..4 {
        excess.push(connect_from(from, a.local_addr()).await.expect("connects"));
    }
    for s in &mut excess {
        assert_closed(s, Duration::from_millis(500)).await;
    }
    until("4 refusals over the per-address limit", || {
        a.refusals().per_address == 4
    })
    .await;
    assert_eq!(a.unauthenticated(), 8);
    // Meanwhile a dials out, and a peer from another address gets in.
    let (b, _eb) = start("addr-b", "c", "s", config()).await;
    connect(&a, b.local_addr()).await.expect("a dials b");
    let (c, _ec) = start("addr-c", "c", "s", config()).await;
    connect(&c, a.local_addr()).await.expect("c dials a");
    // The 8 held are closed at the handshake deadline (1 s), not before.
    for s in &mut held {
        assert_closed(s, Duration::from_secs(5)).await;
    }
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    until("8 handshake timeouts counted", || {
        a.refusals().handshake_timeout == 8
    })
    .await;
    let refused = a.refusals();
    assert_eq!(refused.per_address, 4, "{refused:?}");
    assert_eq!(
        refused.evicted + refused.unauthenticated_full,
        0,
        "{refused:?}"
    );
    assert_eq!(a.unauthenticated(), 0);
    assert_serves(&a, &mut ea, "c", "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dialer_is_told_which_limit_of_the_other_node_it_hit() {
    logs();
    let small = TcpConfig {
        max_unauthenticated_per_address: 2,
        ..target_config()
    };
    let (a, _ea) = start("told-a", "c", "s", small).await;
    let from = Ipv4Addr::new(127, 0, 0, 3);
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(connect_from(from, a.local_addr()).await.expect("connects"));
    }
    until("2 sockets wait", || a.unauthenticated() == 2).await;
    let mut s = connect_from(from, a.local_addr()).await.expect("connects");
    let refusal = read_frame(&mut s)
        .await
        .expect("a refusal before the close");
    let refusal: mobility_net::tcp::handshake::Refusal =
        mobility_net::decode(&refusal).expect("a refusal");
    assert_eq!(
        refusal.refused,
        mobility_net::tcp::RefusalReason::Busy(
            "too many unauthenticated connections from 127.0.0.3 (2)".into()
        )
    );
    assert_closed(&mut s, Duration::from_millis(500)).await;
}
