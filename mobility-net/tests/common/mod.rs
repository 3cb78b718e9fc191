//! Helpers of the TCP transport tests: transports on loopback ports chosen by
//! the OS, event waits with deadlines, raw sockets for bad inputs.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use mobility_net::tcp::handshake::{self, Hello};
use mobility_net::tcp::{noise, Certificate, ClusterAuthority, NodeKey};
use mobility_net::{Identity, LinkSender, NodeId, Secret, TcpConfig, Transport, TransportEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{timeout, Instant};

/// How long any single wait of a test may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub type Events = UnboundedReceiver<TransportEvent>;

pub fn node(name: &str) -> NodeId {
    NodeId::new(name).expect("valid node id")
}

pub fn identity(name: &str, cluster: &str, secret: &str) -> Identity {
    Identity {
        node: node(name),
        cluster: cluster.into(),
        secret: Secret::from(secret),
        app_version: 0,
    }
}

/// Short timers so failure paths are quick.
pub fn config() -> TcpConfig {
    TcpConfig {
        handshake_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(3),
        reconnect_for: Duration::from_secs(3),
        ..TcpConfig::default()
    }
}

pub async fn start(
    name: &str,
    cluster: &str,
    secret: &str,
    config: TcpConfig,
) -> (Transport, Events) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Transport::bind(identity(name, cluster, secret), config, "127.0.0.1:0")
        .await
        .expect("binds")
}

/// The next event, or a panic after `DEADLINE`.
pub async fn next_event(events: &mut Events) -> TransportEvent {
    match timeout(DEADLINE, events.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("event channel closed"),
        Err(_) => panic!("no event within {DEADLINE:?}"),
    }
}

/// Waits for `PeerUp` of `peer` (other events are skipped) and returns its link.
pub async fn peer_up(events: &mut Events, peer: &NodeId) -> LinkSender {
    loop {
        if let TransportEvent::PeerUp { peer: p, link, .. } = next_event(events).await {
            if &p == peer {
                return link;
            }
        }
    }
}

/// Waits for `PeerLost` of `peer`; returns the reason.
pub async fn peer_lost(events: &mut Events, peer: &NodeId) -> String {
    loop {
        if let TransportEvent::PeerLost { peer: p, reason } = next_event(events).await {
            if &p == peer {
                return reason;
            }
        }
    }
}

/// The next `n` frames from `peer` (other peers' frames are skipped; a
/// `PeerLost` of `peer` fails the test).
pub async fn frames(events: &mut Events, peer: &NodeId, n: usize) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match next_event(events).await {
            TransportEvent::Frame { peer: p, frame } if &p == peer => out.push(frame),
            TransportEvent::PeerLost { peer: p, reason } if &p == peer => {
                panic!("peer lost after {} frames: {reason}", out.len())
            }
            _ => {}
        }
    }
    out
}

/// `t.connect(addr)`, failing the test after `DEADLINE`.
pub async fn connect(
    t: &Transport,
    addr: std::net::SocketAddr,
) -> Result<NodeId, mobility_net::NetError> {
    match timeout(DEADLINE, t.connect(&addr.to_string())).await {
        Ok(result) => result,
        Err(_) => panic!("connect to {addr} not done within {DEADLINE:?}"),
    }
}

/// Two transports of cluster `c`, connected: (a, a's events, b's link at a),
/// (b, b's events, a's link at b).
pub async fn pair(
    config: TcpConfig,
) -> (
    (Transport, Events, LinkSender),
    (Transport, Events, LinkSender),
) {
    let (a, mut ea) = start("node-a", "c", "s", config.clone()).await;
    let (b, mut eb) = start("node-b", "c", "s", config).await;
    let id = connect(&a, b.local_addr()).await.expect("a connects to b");
    assert_eq!(id, node("node-b"));
    let to_b = peer_up(&mut ea, &node("node-b")).await;
    let to_a = peer_up(&mut eb, &node("node-a")).await;
    ((a, ea, to_b), (b, eb, to_a))
}

/// Asserts `t` still serves: a new good peer connects to it and a message
/// goes each way.
pub async fn assert_serves(t: &Transport, events: &mut Events, cluster: &str, secret: &str) {
    let name = format!("probe-{}", rand_suffix());
    let (p, mut ep) = start(&name, cluster, secret, config()).await;
    let started = Instant::now();
    // The listener may still hold slots of sockets being closed: poll until
    // it takes the probe, or fail after `DEADLINE`.
    let mut attempts = tokio::time::interval(Duration::from_millis(50));
    let id = loop {
        attempts.tick().await;
        match connect(&p, t.local_addr()).await {
            Ok(id) => break id,
            Err(e) if started.elapsed() < DEADLINE => {
                eprintln!("probe connect failed, retrying: {e}");
            }
            Err(e) => panic!("the transport no longer serves: {e}"),
        }
    };
    assert_eq!(&id, t.node());
    let to_t = peer_up(&mut ep, &id).await;
    let to_p = peer_up(events, &node(&name)).await;
    to_t.send(Bytes::from_static(b"ping")).expect("queued");
    to_p.send(Bytes::from_static(b"pong")).expect("queued");
    assert_eq!(
        frames(events, &node(&name), 1).await,
        vec![Bytes::from_static(b"ping")]
    );
    assert_eq!(
        frames(&mut ep, &id, 1).await,
        vec![Bytes::from_static(b"pong")]
    );
    p.shutdown();
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Writes one length-prefixed frame.
pub async fn write_frame(stream: &mut TcpStream, payload: &[u8]) {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    stream.write_all(&bytes).await.expect("writes");
}

/// Reads one length-prefixed frame; `None` if the socket closed.
pub async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    timeout(DEADLINE, stream.read_exact(&mut len))
        .await
        .ok()?
        .ok()?;
    let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
    timeout(DEADLINE, stream.read_exact(&mut payload))
        .await
        .ok()?
        .ok()?;
    Some(payload)
}

/// Asserts the other side closes `stream` within `within` (whatever it
/// sends before is drained).
pub async fn assert_closed(stream: &mut TcpStream, within: Duration) {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("socket still open after {within:?}"),
        }
    }
}

/// A `Hello` of a made-up node.
pub fn hello(name: &str, cluster: &str) -> Hello {
    handshake::make_hello(
        &identity(name, cluster, "unused"),
        7,
        None,
        &TcpConfig::default(),
    )
    .expect("randomness")
}

/// Opens a raw socket to `t`.
pub async fn raw(t: &Transport) -> TcpStream {
    TcpStream::connect(t.local_addr()).await.expect("connects")
}

/// Runs the dialer's side of the handshake by hand on a raw socket, as node
/// `name` of `cluster` knowing `secret`; returns the socket (authenticated
/// if the secret is right) and the listener's `Hello`.
pub async fn raw_handshake(
    t: &Transport,
    name: &str,
    cluster: &str,
    secret: &str,
) -> (TcpStream, Hello) {
    let (stream, theirs, _) = raw_handshake_keyed(t, name, cluster, secret).await;
    (stream, theirs)
}

/// The encrypted side of a raw dialer, after its handshake: seals what it
/// sends next the way the transport does (protocol version 7).
pub struct RawSession {
    keys: snow::StatelessTransportState,
    nonce: u64,
}

impl RawSession {
    /// The bytes on the wire of `plain`, bytes of the plaintext stream,
    /// as Noise transport messages (a u16 length, then each message).
    pub fn seal_raw(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in plain.chunks(noise::MAX_PIECE) {
            let mut message = vec![0u8; piece.len() + noise::TAG_LEN];
            let n = self
                .keys
                .write_message(self.nonce, piece, &mut message)
                .expect("seals");
            self.nonce += 1;
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&message[..n]);
        }
        out
    }

    /// The bytes on the wire of one frame carrying `payload`.
    pub fn seal_frame(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut plain = (payload.len() as u32).to_be_bytes().to_vec();
        plain.extend_from_slice(payload);
        self.seal_raw(&plain)
    }
}

/// `raw_handshake`, also returning the keys of what the raw side sends
/// next (see [`RawSession`]). The raw side shows a certificate of the
/// authority derived from `secret`, as a node configured with that
/// secret alone does.
pub async fn raw_handshake_keyed(
    t: &Transport,
    name: &str,
    cluster: &str,
    secret: &str,
) -> (TcpStream, Hello, RawSession) {
    let secret = Secret::from(secret);
    let key = NodeKey::generate().expect("random");
    let certificate = ClusterAuthority::from_secret(&secret)
        .certify(&node(name), cluster, key.public(), None)
        .expect("certifies");
    let dialed = raw_dial(
        t,
        &hello(name, cluster),
        &noise::psk(&secret),
        &key,
        certificate.as_bytes(),
    )
    .await;
    let (stream, hello, session, _) = dialed.expect("the listener takes the raw dialer");
    (stream, hello, session)
}

/// Runs the dialer's side of the handshake by hand on a raw socket to
/// `t`: sends `hello`, then the Noise messages with `psk` and `key`,
/// showing `certificate` (any bytes). Returns the socket, the listener's
/// `Hello`, the keys of what the raw side sends next and the listener's
/// certificate once the last message is sent; or the step at which the
/// listener closed the socket (or the refusal it sent instead of its `Hello`).
pub async fn raw_dial(
    t: &Transport,
    hello: &Hello,
    psk: &[u8; 32],
    key: &NodeKey,
    certificate: &[u8],
) -> Result<(TcpStream, Hello, RawSession, Certificate), String> {
    let mut stream = raw(t).await;
    let mine = mobility_net::encode(hello).expect("encodes");
    write_frame(&mut stream, &mine).await;
    let theirs = read_frame(&mut stream)
        .await
        .ok_or("closed instead of its hello")?;
    if let Some(reason) = handshake::read_refusal(&theirs) {
        return Err(format!("refused at its hello: {reason}"));
    }
    let their_hello: Hello = mobility_net::decode(&theirs).expect("a hello");
    let mut state = noise::dialer(psk, key, &mine, &theirs).expect("builds");
    write_frame(&mut stream, &noise::write(&mut state, &[]).expect("writes")).await;
    let answer = read_frame(&mut stream)
        .await
        .ok_or("closed instead of its handshake message")?;
    let theirs = noise::read(&mut state, &answer).map_err(|e| e.to_string())?;
    let their_certificate = Certificate::decode(&theirs).map_err(|e| e.to_string())?;
    write_frame(
        &mut stream,
        &noise::write(&mut state, certificate).expect("writes"),
    )
    .await;
    let keys = noise::finish(state).expect("done");
    Ok((
        stream,
        their_hello,
        RawSession { keys, nonce: 0 },
        their_certificate,
    ))
}

/// Asserts no event about `peer` is queued.
pub fn assert_no_event_about(events: &mut Events, peer: &NodeId) {
    while let Ok(event) = events.try_recv() {
        let about = match &event {
            TransportEvent::PeerUp { peer, .. }
            | TransportEvent::Frame { peer, .. }
            | TransportEvent::PeerLost { peer, .. } => peer,
        };
        assert_ne!(about, peer, "unexpected {event:?}");
    }
}

// ---- logs and waits of the tests that read what was logged ----------------

/// Everything logged by this test binary.
pub fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

pub struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        logs().lock().expect("no panic").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the logs of this binary to [`logs`] (before `start` installs its
/// own subscriber, which then does nothing).
pub fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_ansi(false)
        .with_writer(|| Capture)
        .try_init();
}

/// Waits until `what` holds, or fails the test after `DEADLINE`.
pub async fn until(what: &str, mut holds: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    let mut looks = tokio::time::interval(Duration::from_millis(10));
    while !holds() {
        assert!(Instant::now() < deadline, "not within {DEADLINE:?}: {what}");
        looks.tick().await;
    }
}
