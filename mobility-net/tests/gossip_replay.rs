//! Gossip on the wire, seen and replayed from outside: members on loopback,
//! a UDP proxy in front of one of them that records every datagram, and a
//! replayer that sends recorded datagrams again from its own socket. Waits
//! have deadlines; the only fixed wait is the listening for an answer that
//! must not come.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mobility_net::{Membership, MembershipConfig, NetError, NodeId, Secret};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long any single wait of a test may take.
const DEADLINE: Duration = Duration::from_secs(15);
/// How often a wait checks its condition.
const POLL: Duration = Duration::from_millis(10);
/// How long the replayer listens for an answer that must not come (a
/// member answers a datagram as soon as it has read it, and the waits
/// before listening make sure it has).
const SILENCE: Duration = Duration::from_millis(500);
const CLUSTER: &str = "replay-cluster";
const SECRET: &str = "the gossip secret";
/// Published as a key and in a value: an actor name as the directory would
/// carry it.
const MARKER: &str = "secret-marker-name";

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn node(name: &str) -> NodeId {
    NodeId::new(name).expect("valid node id")
}

/// A loopback UDP address whose port the OS just handed out.
fn free_addr() -> SocketAddr {
    let socket = StdUdpSocket::bind("127.0.0.1:0").expect("binds an ephemeral port");
    socket.local_addr().expect("has an address")
}

fn config(name: &str, addr: SocketAddr, seeds: &[SocketAddr]) -> MembershipConfig {
    let mut config = MembershipConfig::new(node(name), CLUSTER, Secret::from(SECRET), addr);
    config.seeds = seeds.iter().map(ToString::to_string).collect();
    config.gossip_interval = Duration::from_millis(50);
    config.failure_timeout = Duration::from_secs(2);
    config
}

/// Starts a member at `addr` publishing `values`.
async fn start_at(
    name: &str,
    addr: SocketAddr,
    seeds: &[SocketAddr],
    values: &[(&str, &str)],
) -> Result<Membership, NetError> {
    init_tracing();
    let values = values
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    Membership::start(config(name, addr, seeds), values).await
}

/// Starts a member on a fresh port (retrying if another process took the
/// port in between).
async fn start(name: &str, seeds: &[SocketAddr], values: &[(&str, &str)]) -> Membership {
    let mut attempts = 0;
    loop {
        match start_at(name, free_addr(), seeds, values).await {
            Ok(membership) => return membership,
            Err(NetError::Bind { .. }) if attempts < 5 => attempts += 1,
            Err(err) => panic!("{name} does not start: {err}"),
        }
    }
}

/// Polls `condition` until it holds, or panics after `DEADLINE`.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// `membership`'s view of `key` at member `name`.
fn value_at(membership: &Membership, name: &str, key: &str) -> Option<String> {
    membership.value(&node(name), key)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// From a client of the proxy to the member behind it.
    Up,
    /// From the member behind the proxy back to its client.
    Down,
}

/// Every datagram the proxy saw, in order.
type Log = Arc<Mutex<Vec<(Direction, Vec<u8>)>>>;

/// A UDP relay in front of one member (`upstream`): what a client sends to
/// the proxy goes to the member, what the member sends back goes to the
/// last client. Records every datagram; when told to withhold, records what
/// clients send without passing it on.
struct Proxy {
    addr: SocketAddr,
    log: Log,
    withhold: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = socket.local_addr().expect("proxy address");
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let withhold = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let log = Arc::clone(&log);
            let withhold = Arc::clone(&withhold);
            async move {
                let mut buf = vec![0u8; 65_536];
                let mut client: Option<SocketAddr> = None;
                loop {
                    let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                        continue;
                    };
                    let datagram = buf[..len].to_vec();
                    if from == upstream {
                        let Some(client) = client else { continue };
                        log.lock().expect("log").push((Direction::Down, datagram));
                        let _ = socket.send_to(&buf[..len], client).await;
                    } else {
                        client = Some(from);
                        log.lock().expect("log").push((Direction::Up, datagram));
                        if !withhold.load(Ordering::SeqCst) {
                            let _ = socket.send_to(&buf[..len], upstream).await;
                        }
                    }
                }
            }
        });
        Proxy {
            addr,
            log,
            withhold,
            task,
        }
    }

    fn recorded(&self, direction: Direction) -> Vec<Vec<u8>> {
        self.log
            .lock()
            .expect("log")
            .iter()
            .filter(|(d, _)| *d == direction)
            .map(|(_, datagram)| datagram.clone())
            .collect()
    }

    fn count(&self, direction: Direction) -> usize {
        self.log
            .lock()
            .expect("log")
            .iter()
            .filter(|(d, _)| *d == direction)
            .count()
    }

    fn withhold(&self) {
        self.withhold.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A socket that sends recorded datagrams and listens for answers.
async fn replayer() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("replayer binds")
}

/// Asserts that nothing arrives on `socket` for [`SILENCE`].
async fn assert_no_answer(socket: &UdpSocket) {
    let mut buf = vec![0u8; 65_536];
    let received = tokio::time::timeout(SILENCE, socket.recv_from(&mut buf)).await;
    if let Ok(received) = received {
        panic!("the replayer was answered: {received:?}");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_state_never_appears_in_clear_on_the_wire() {
    let key = format!("actor.{MARKER}");
    let b = start("b", &[], &[(&key, MARKER)]).await;
    let proxy = Proxy::start(b.gossip_addr()).await;
    // a knows b only through the proxy: its first exchanges, in which each
    // side sends the other its whole state, go through it.
    let a = start("a", &[proxy.addr], &[(&key, MARKER)]).await;
    wait_until("a and b see each other's marker", || {
        value_at(&a, "b", &key).as_deref() == Some(MARKER)
            && value_at(&b, "a", &key).as_deref() == Some(MARKER)
    })
    .await;
    // Both directions went through the proxy.
    wait_until("the proxy carried datagrams both ways", || {
        proxy.count(Direction::Up) >= 2 && proxy.count(Direction::Down) >= 1
    })
    .await;
    for direction in [Direction::Up, Direction::Down] {
        for datagram in proxy.recorded(direction) {
            for clear in [MARKER, CLUSTER] {
                assert!(
                    !contains(&datagram, clear.as_bytes()),
                    "{clear:?} is in clear in a {direction:?} datagram"
                );
            }
        }
    }
    // b knew nothing of a before a's first datagram through the proxy, so
    // its answer (which carries b's whole state, the marker as key and
    // value) went back through the proxy too.
    let largest_down = proxy
        .recorded(Direction::Down)
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0);
    assert!(largest_down > 2 * MARKER.len(), "{largest_down} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_gossip_datagram_gets_no_answer() {
    let b = start("b", &[], &[("role", "b")]).await;
    let proxy = Proxy::start(b.gossip_addr()).await;
    let a = start("a", &[proxy.addr], &[("role", "a")]).await;
    wait_until("a and b see each other", || {
        value_at(&a, "b", "role").as_deref() == Some("b")
            && value_at(&b, "a", "role").as_deref() == Some("a")
    })
    .await;
    // b answered a through the proxy: what a sent there was delivered.
    wait_until("b answered through the proxy", || {
        proxy.count(Direction::Down) >= 1
    })
    .await;
    let captured = proxy.recorded(Direction::Up);
    let count = u64::try_from(captured.len()).expect("count");
    let (rejected, replayed, unverified) = (
        b.rejected_datagrams(),
        b.replayed_datagrams(),
        b.unverified_datagrams(),
    );

    let replayer = replayer().await;
    for datagram in &captured {
        replayer
            .send_to(datagram, b.gossip_addr())
            .await
            .expect("replays");
    }
    // Each one is either a replay (it was delivered) or, like a's very first
    // datagram, could never be delivered (it did not echo b's token).
    wait_until("b refused every replay", || {
        (b.replayed_datagrams() - replayed) + (b.unverified_datagrams() - unverified) >= count
    })
    .await;
    let new_replays = b.replayed_datagrams() - replayed;
    assert!(new_replays >= 1, "no delivered datagram was replayed");
    assert_eq!(
        (b.replayed_datagrams() - replayed) + (b.unverified_datagrams() - unverified),
        count
    );
    // Replays count as rejected; nothing else was.
    assert_eq!(b.rejected_datagrams() - rejected, new_replays);
    assert_no_answer(&replayer).await;

    // And gossip goes on.
    a.set("after", "replays").await;
    wait_until("b still hears a", || {
        value_at(&b, "a", "after").as_deref() == Some("replays")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_senders_old_datagrams_get_no_answer() {
    let b = start("b", &[], &[("role", "b")]).await;
    let proxy = Proxy::start(b.gossip_addr()).await;
    let a = start("a", &[proxy.addr], &[("run", "1")]).await;
    let a_addr = a.gossip_addr();
    wait_until("b sees the first run of a", || {
        value_at(&b, "a", "run").as_deref() == Some("1")
    })
    .await;
    // From now on a's datagrams to the proxy are recorded, never delivered.
    proxy.withhold();
    let before = proxy.count(Direction::Up);
    wait_until("a sent more through the proxy", || {
        proxy.count(Direction::Up) >= before + 4
    })
    .await;
    let withheld: Vec<Vec<u8>> = proxy.recorded(Direction::Up).split_off(before);

    // The control: one of them, never seen by b, sent by the replayer while
    // a's first run is alive is fresh to b (a SYN: b answers it, to the
    // replayer's address).
    let replayer = replayer().await;
    let last = withheld.last().expect("withheld datagrams");
    replayer
        .send_to(last, b.gossip_addr())
        .await
        .expect("sends");
    let mut buf = vec![0u8; 65_536];
    tokio::time::timeout(DEADLINE, replayer.recv_from(&mut buf))
        .await
        .expect("b answers a datagram it had never seen")
        .expect("receives");

    // a restarts on the same address, without the proxy.
    a.shutdown().await;
    drop(a);
    let a2 = start_at("a", a_addr, &[b.gossip_addr()], &[("run", "2")])
        .await
        .expect("a restarts on its address");
    wait_until("b sees the second run of a", || {
        value_at(&b, "a", "run").as_deref() == Some("2")
    })
    .await;

    // The other withheld datagrams were never seen by b either, but their
    // incarnation is over.
    let (replayed, unverified) = (b.replayed_datagrams(), b.unverified_datagrams());
    let older = &withheld[..withheld.len() - 1];
    for datagram in older {
        replayer
            .send_to(datagram, b.gossip_addr())
            .await
            .expect("replays");
    }
    let count = u64::try_from(older.len()).expect("count");
    wait_until("b refused the old run's datagrams as replays", || {
        b.replayed_datagrams() - replayed >= count
    })
    .await;
    assert_eq!(b.replayed_datagrams() - replayed, count);
    assert_eq!(b.unverified_datagrams(), unverified);
    assert_no_answer(&replayer).await;
    assert_eq!(value_at(&b, "a", "run").as_deref(), Some("2"));
    drop(a2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_receiver_answers_nothing_recorded_before() {
    let b = start("b", &[], &[("run", "1")]).await;
    let b_addr = b.gossip_addr();
    let proxy = Proxy::start(b_addr).await;
    let a = start("a", &[proxy.addr], &[("role", "a")]).await;
    wait_until("a and b see each other", || {
        value_at(&a, "b", "run").as_deref() == Some("1")
            && value_at(&b, "a", "role").as_deref() == Some("a")
    })
    .await;
    wait_until("b answered through the proxy", || {
        proxy.count(Direction::Down) >= 1
    })
    .await;
    proxy.withhold();
    let captured = proxy.recorded(Direction::Up);

    // b restarts on the same address: no window, a new token.
    b.shutdown().await;
    drop(b);
    let b2 = start_at("b", b_addr, &[], &[("run", "2")])
        .await
        .expect("b restarts on its address");
    let replayer = replayer().await;
    for datagram in &captured {
        replayer.send_to(datagram, b_addr).await.expect("replays");
    }
    let count = u64::try_from(captured.len()).expect("count");
    wait_until("b's new run delivered none of them", || {
        b2.unverified_datagrams() >= count
    })
    .await;
    assert_eq!(b2.rejected_datagrams(), 0);
    assert_no_answer(&replayer).await;
    // b's probes went to a's own address: a and the new b find each other.
    wait_until("a sees the new run of b", || {
        value_at(&a, "b", "run").as_deref() == Some("2")
            && value_at(&b2, "a", "role").as_deref() == Some("a")
    })
    .await;
}
