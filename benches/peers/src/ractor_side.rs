//! ractor 0.16 (with its `cluster` feature, which ractor_cluster turns on):
//! a counter actor, and two ractor_cluster node servers on loopback (one in
//! the server process) for the remote figures.

use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::{NodeServer, RactorClusterMessage};

const GROUP: &str = "peers-counter";
const COOKIE: &str = "peers benchmark cookie";

#[derive(RactorClusterMessage)]
pub enum CounterMsg {
    Add(u64),
    #[rpc]
    Call(u64, RpcReplyPort<u64>),
}

pub struct CounterActor;

impl Actor for CounterActor {
    type Msg = CounterMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        count: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CounterMsg::Add(n) => *count += n,
            CounterMsg::Call(n, reply) => {
                *count += n;
                let _ = reply.send(*count);
            }
        }
        Ok(())
    }
}

pub async fn spawn() -> ActorRef<CounterMsg> {
    let (actor, _join) = Actor::spawn(None, CounterActor, ())
        .await
        .expect("ractor spawn");
    actor
}

pub async fn call(a: &ActorRef<CounterMsg>, n: u64) -> u64 {
    ractor::call!(a, CounterMsg::Call, n).expect("ractor call")
}

/// `n` casts, then one call to flush (the reply carries the count, checked
/// by the caller).
pub async fn flood(a: &ActorRef<CounterMsg>, n: u64) -> u64 {
    for _ in 0..n {
        a.cast(CounterMsg::Add(1)).expect("ractor cast");
    }
    call(a, 0).await
}

/// A free TCP port on loopback (ractor_cluster takes a port, not a listener).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

async fn node_server(name: &str) -> (ActorRef<ractor_cluster::NodeServerMessage>, u16) {
    let port = free_port();
    let server = NodeServer::new(
        port,
        COOKIE.to_owned(),
        name.to_owned(),
        "127.0.0.1".to_owned(),
        None,
        None,
    );
    let (node, _join) = Actor::spawn(None, server, ())
        .await
        .expect("ractor node server");
    (node, port)
}

/// The server side (child process): a node server and a counter in the
/// process group; returns the node server's port.
pub async fn serve() -> (ActorRef<CounterMsg>, u16) {
    let (_node, port) = node_server("peers-b").await;
    let actor = spawn().await;
    ractor::pg::join(GROUP.to_owned(), vec![actor.get_cell()]);
    // Give the listener a moment to bind.
    tokio::time::sleep(Duration::from_millis(200)).await;
    (actor, port)
}

/// The client side: a node server that connects to the server's, and the
/// remote counter, once its process group reaches this node.
pub async fn remote(port: u16) -> ActorRef<CounterMsg> {
    let (node, _) = node_server("peers-a").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ractor_cluster::client_connect(&node, ("127.0.0.1", port)).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("ractor_cluster connect: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("ractor_cluster connect: {e}"),
        }
    }
    loop {
        let members = ractor::pg::get_members(&GROUP.to_owned());
        if let Some(cell) = members.into_iter().find(|c| !c.get_id().is_local()) {
            return ActorRef::from(cell);
        }
        assert!(
            Instant::now() < deadline,
            "the remote ractor actor never showed up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
