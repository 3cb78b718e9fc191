//! kameo 0.22: a counter actor, and its libp2p remote (TCP + Noise + yamux,
//! one swarm per process: the server's in the server process) for the
//! remote figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kameo::prelude::*;
use libp2p::{noise, swarm::SwarmEvent, tcp, yamux, Multiaddr};
use serde::{Deserialize, Serialize};

const NAME: &str = "peers-counter";

/// Messages the swarm failed to send (`OutboundFailure`), and the first
/// failure's reason.
static FAILURES: AtomicU64 = AtomicU64::new(0);
static FIRST_FAILURE: Mutex<Option<String>> = Mutex::new(None);

#[derive(Actor, RemoteActor, Default)]
pub struct KCounter {
    count: u64,
}

/// Add `n` and reply with the count.
#[derive(Serialize, Deserialize)]
pub struct Add(pub u64);

#[remote_message]
impl Message<Add> for KCounter {
    type Reply = u64;

    async fn handle(&mut self, msg: Add, _ctx: &mut Context<Self, Self::Reply>) -> u64 {
        self.count += msg.0;
        self.count
    }
}

/// A counter with an unbounded mailbox (as the raw baseline's and ractor's).
pub fn spawn() -> ActorRef<KCounter> {
    KCounter::spawn_with_mailbox(KCounter::default(), kameo::mailbox::unbounded())
}

/// A counter as `spawn` makes it (kameo's default bounded mailbox).
pub fn spawn_default() -> ActorRef<KCounter> {
    KCounter::spawn(KCounter::default())
}

pub async fn call(a: &ActorRef<KCounter>, n: u64) -> u64 {
    a.ask(Add(n)).await.expect("kameo ask")
}

/// `n` tells, then one ask to flush.
pub async fn flood(a: &ActorRef<KCounter>, n: u64) -> u64 {
    for _ in 0..n {
        a.tell(Add(1)).await.expect("kameo tell");
    }
    call(a, 0).await
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Starts this process's swarm (TCP on loopback, Noise, yamux), dialing
/// `dial` if given; returns the address it listens on, `/p2p/<peer id>`
/// included.
async fn swarm(dial: Option<Multiaddr>) -> Result<String, Error> {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|key| {
            remote::Behaviour::new(
                key.public().to_peer_id(),
                remote::messaging::Config::default(),
            )
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    swarm.behaviour().try_init_global()?;
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    if let Some(addr) = dial {
        // The server's address, for the registry's Kademlia too.
        if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() {
            swarm.add_peer_address(peer, addr.clone());
        }
        swarm.dial(addr)?;
    }
    let peer = *swarm.local_peer_id();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    tokio::spawn(async move {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(format!("{address}/p2p/{peer}"));
                    }
                }
                SwarmEvent::Behaviour(remote::Event::Messaging(
                    remote::messaging::Event::OutboundFailure { error, .. },
                )) => {
                    FAILURES.fetch_add(1, Ordering::Relaxed);
                    FIRST_FAILURE
                        .lock()
                        .expect("lock")
                        .get_or_insert_with(|| error.to_string());
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    eprintln!("kameo swarm: dial failed: {error}");
                }
                other if std::env::var_os("PEERS_DEBUG").is_some() => {
                    eprintln!("kameo swarm: {other:?}");
                }
                _ => {}
            }
        }
    });
    Ok(rx.await?)
}

/// The server side (child process): the swarm and a counter registered by
/// name (registration retried in the background until the DHT takes it,
/// which may need the client connected). Returns the swarm's address.
pub async fn serve() -> Result<String, Error> {
    let addr = swarm(None).await?;
    let actor = spawn();
    tokio::spawn(async move {
        loop {
            match actor.register(NAME).await {
                Ok(()) => break,
                Err(e) => {
                    eprintln!("kameo register: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        // Keep the actor alive.
        std::future::pending::<()>().await;
    });
    Ok(addr)
}

/// The client side: this process's swarm, dialing the server's; the remote
/// counter once the registry finds it.
pub async fn remote(server: &str) -> Result<RemoteActorRef<KCounter>, Error> {
    swarm(Some(server.parse()?)).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match RemoteActorRef::<KCounter>::lookup(NAME).await {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => {}
            Err(e) => eprintln!("kameo lookup: {e}; retrying"),
        }
        if Instant::now() > deadline {
            return Err("the remote kameo actor was never found".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn remote_call(r: &RemoteActorRef<KCounter>, n: u64) -> Result<u64, String> {
    r.ask(&Add(n))
        .await
        .map_err(|e| format!("remote ask failed: {e}"))
}

/// `n` fire-and-forget tells (`send`: no delivery confirmation), then asks
/// until the count reaches `expected` (tells travel on streams of their
/// own: one ask does not flush them). An error if the swarm failed to send
/// some, or they were not all handled within 20 s.
pub async fn remote_flood(
    r: &RemoteActorRef<KCounter>,
    n: u64,
    expected: u64,
) -> Result<u64, String> {
    let failed_before = FAILURES.load(Ordering::Relaxed);
    for _ in 0..n {
        r.tell(&Add(1))
            .send()
            .map_err(|e| format!("remote tell failed: {e}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let count = remote_call(r, 0).await.map_err(|e| {
            let failed = FAILURES.load(Ordering::Relaxed) - failed_before;
            let first = FIRST_FAILURE
                .lock()
                .expect("lock")
                .clone()
                .unwrap_or_default();
            format!(
                "after {n} tells, the swarm failed to send {failed} ({first}), then the flush {e}"
            )
        })?;
        if count >= expected {
            return Ok(count);
        }
        let failed = FAILURES.load(Ordering::Relaxed) - failed_before;
        if Instant::now() > deadline || (failed > 0 && count + failed >= expected) {
            let first = FIRST_FAILURE
                .lock()
                .expect("lock")
                .clone()
                .unwrap_or_default();
            return Err(format!(
                "{} of {n} tells arrived; the swarm failed {failed}: {first}",
                n - (expected - count)
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
