//! Runs the handshake on a new socket, as dialer or listener, within the
//! handshake timeout; nothing but `Hello` and `Auth` is read before both
//! MACs are verified.

use std::net::SocketAddr;

use futures_util::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::codec::FramedRead;

use super::config::{Identity, Secret, TcpConfig};
use super::connection::Socket;
use super::frame::{codec, write_frame};
use super::handshake::{
    compute_mac, make_hello, read_hello, select_secret, session_id, verify_mac, Auth, Hello, Role,
    HANDSHAKE_MAX_FRAME,
};
use super::session::SessionId;
use crate::NodeId;

/// What this node shows of itself in handshakes.
#[derive(Debug)]
pub(crate) struct Local {
    pub(crate) identity: Identity,
    pub(crate) incarnation: u64,
    pub(crate) listen: Option<String>,
    pub(crate) config: TcpConfig,
}

/// The transport's current rules: which clusters are trusted, which peers
/// are refused.
pub(crate) trait Policy {
    /// The secret of another cluster, if it is trusted.
    fn secret_for(&self, cluster: &str) -> Option<Secret>;
    /// Why a connection with `peer` is refused, if it is.
    fn refuses(&self, peer: &NodeId) -> Option<String>;
}

/// A socket whose peer proved who it is.
#[derive(Debug)]
pub(crate) struct Established {
    pub(crate) socket: Socket,
    /// The peer's `Hello`.
    pub(crate) hello: Hello,
    /// Our role on this socket.
    pub(crate) role: Role,
    /// The id a session created by this handshake gets.
    pub(crate) session_id: SessionId,
    /// The peer's address.
    pub(crate) peer_addr: SocketAddr,
}

/// Runs the handshake of `role` on `stream`; the error is the reason to log.
pub(crate) async fn handshake(
    stream: TcpStream,
    permit: OwnedSemaphorePermit,
    role: Role,
    local: &Local,
    policy: &(impl Policy + ?Sized),
) -> Result<Established, String> {
    let peer_addr = stream
        .peer_addr()
        .map_err(|e| format!("no peer address: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let mut socket = Socket {
        reader: FramedRead::new(read, codec(HANDSHAKE_MAX_FRAME)),
        writer: BufWriter::with_capacity(64 * 1024, write),
        permit,
    };
    let timeout = local.config.handshake_timeout;
    let steps = run(&mut socket, role, local, policy);
    match tokio::time::timeout(timeout, steps).await {
        Ok(Ok((hello, session_id))) => Ok(Established {
            socket,
            hello,
            role,
            session_id,
            peer_addr,
        }),
        Ok(Err(reason)) => Err(reason),
        Err(_) => Err(format!("handshake not done within {timeout:?}")),
    }
}

async fn run(
    socket: &mut Socket,
    role: Role,
    local: &Local,
    policy: &(impl Policy + ?Sized),
) -> Result<(Hello, SessionId), String> {
    let own = make_hello(
        &local.identity,
        local.incarnation,
        local.listen.clone(),
        &local.config,
    )
    .map_err(|e| e.to_string())?;
    match role {
        Role::Dialer => {
            send(socket, &[encode(&own)?]).await?;
            let theirs = read_peer_hello(socket, local, policy).await?;
            let secret = secret(local, policy, &theirs)?;
            let auth = receive(socket).await?;
            verify_mac(&secret, Role::Listener, &own, &theirs, &auth).map_err(|e| e.to_string())?;
            let mac = compute_mac(&secret, Role::Dialer, &own, &theirs);
            send(socket, &[encode(&Auth { mac })?]).await?;
            Ok((theirs.clone(), session_id(&own, &theirs)))
        }
        Role::Listener => {
            let theirs = read_peer_hello(socket, local, policy).await?;
            let secret = secret(local, policy, &theirs)?;
            let mac = compute_mac(&secret, Role::Listener, &theirs, &own);
            send(socket, &[encode(&own)?, encode(&Auth { mac })?]).await?;
            let auth = receive(socket).await?;
            verify_mac(&secret, Role::Dialer, &theirs, &own, &auth).map_err(|e| e.to_string())?;
            Ok((theirs.clone(), session_id(&theirs, &own)))
        }
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    crate::encode(value).map_err(|e| e.to_string())
}

async fn send(socket: &mut Socket, frames: &[Vec<u8>]) -> Result<(), String> {
    for frame in frames {
        write_frame(&mut socket.writer, frame, &[])
            .await
            .map_err(|e| format!("write failed: {e}"))?;
    }
    socket
        .writer
        .flush()
        .await
        .map_err(|e| format!("write failed: {e}"))
}

async fn receive(socket: &mut Socket) -> Result<bytes::BytesMut, String> {
    match socket.reader.next().await {
        Some(Ok(frame)) => Ok(frame),
        Some(Err(e)) => Err(format!("bad handshake frame: {e}")),
        None => Err("closed during the handshake".to_owned()),
    }
}

async fn read_peer_hello(
    socket: &mut Socket,
    local: &Local,
    policy: &(impl Policy + ?Sized),
) -> Result<Hello, String> {
    let bytes = receive(socket).await?;
    let hello = read_hello(&bytes, &local.identity.node).map_err(|e| e.to_string())?;
    if let Some(why) = policy.refuses(&hello.node) {
        return Err(format!("{} refused: {why}", hello.node));
    }
    Ok(hello)
}

fn secret(
    local: &Local,
    policy: &(impl Policy + ?Sized),
    theirs: &Hello,
) -> Result<Secret, String> {
    select_secret(&local.identity, &theirs.cluster, |c| policy.secret_for(c))
        .map_err(|e| e.to_string())
}
