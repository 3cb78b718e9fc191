//! Runs the handshake on a new socket, as dialer or listener, within the
//! handshake timeout; nothing but `Hello` and `Auth` is read before both
//! MACs are verified.

use std::net::SocketAddr;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::codec::FramedRead;

use super::config::{Identity, Secret, TcpConfig};
use super::connection::Socket;
use super::frame::codec;
use super::handshake::{
    compute_mac, frame_key, make_hello, read_hello, select_secret, session_id, verify_mac, Auth,
    HandshakeError, Hello, Role, HANDSHAKE_MAX_FRAME,
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
    /// The keys of the tags of the frames that follow.
    pub(crate) keys: FrameKeys,
    /// The peer's address.
    pub(crate) peer_addr: SocketAddr,
}

/// The keys of a socket's frame tags, one per direction.
pub(crate) struct FrameKeys {
    /// For the frames this side sends.
    pub(crate) send: [u8; 32],
    /// For the frames the peer sends.
    pub(crate) recv: [u8; 32],
}

impl std::fmt::Debug for FrameKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameKeys(<redacted>)")
    }
}

/// What the handshake settles besides the socket.
struct Settled {
    hello: Hello,
    session_id: SessionId,
    keys: FrameKeys,
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
        writer: write,
        permit,
    };
    let timeout = local.config.handshake_timeout;
    let steps = run(&mut socket, role, local, policy);
    match tokio::time::timeout(timeout, steps).await {
        Ok(Ok(settled)) => Ok(Established {
            socket,
            hello: settled.hello,
            role,
            session_id: settled.session_id,
            keys: settled.keys,
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
) -> Result<Settled, String> {
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
            let bytes = receive(socket).await?;
            let theirs = read_hello(&bytes, &local.identity).map_err(|e| e.to_string())?;
            admit(&theirs, policy)?;
            let secret = secret(local, policy, &theirs)?;
            let auth = receive(socket).await?;
            verify_mac(&secret, Role::Listener, &own, &theirs, &auth).map_err(|e| e.to_string())?;
            let mac = compute_mac(&secret, Role::Dialer, &own, &theirs);
            send(socket, &[encode(&Auth { mac })?]).await?;
            Ok(Settled {
                keys: FrameKeys {
                    send: frame_key(&secret, Role::Dialer, &own, &theirs),
                    recv: frame_key(&secret, Role::Listener, &own, &theirs),
                },
                session_id: session_id(&own, &theirs),
                hello: theirs,
            })
        }
        Role::Listener => {
            let bytes = receive(socket).await?;
            let theirs = match read_hello(&bytes, &local.identity) {
                Ok(theirs) => theirs,
                Err(e @ (HandshakeError::Version { .. } | HandshakeError::AppVersion { .. })) => {
                    // Ours before closing, so the dialer can name the
                    // mismatch too (a hello is no secret: any dialer gets it).
                    let _ = send(socket, &[encode(&own)?]).await;
                    return Err(e.to_string());
                }
                Err(e) => return Err(e.to_string()),
            };
            admit(&theirs, policy)?;
            let secret = secret(local, policy, &theirs)?;
            let mac = compute_mac(&secret, Role::Listener, &theirs, &own);
            send(socket, &[encode(&own)?, encode(&Auth { mac })?]).await?;
            let auth = receive(socket).await?;
            verify_mac(&secret, Role::Dialer, &theirs, &own, &auth).map_err(|e| e.to_string())?;
            Ok(Settled {
                keys: FrameKeys {
                    send: frame_key(&secret, Role::Listener, &theirs, &own),
                    recv: frame_key(&secret, Role::Dialer, &theirs, &own),
                },
                session_id: session_id(&theirs, &own),
                hello: theirs,
            })
        }
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    crate::encode(value).map_err(|e| e.to_string())
}

async fn send(socket: &mut Socket, frames: &[Vec<u8>]) -> Result<(), String> {
    let mut bytes = Vec::new();
    for frame in frames {
        let len = u32::try_from(frame.len()).map_err(|_| "handshake frame too long".to_owned())?;
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(frame);
    }
    socket
        .writer
        .write_all(&bytes)
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

/// Whether the policy lets the peer of this `Hello` in.
fn admit(hello: &Hello, policy: &(impl Policy + ?Sized)) -> Result<(), String> {
    match policy.refuses(&hello.node) {
        Some(why) => Err(format!("{} refused: {why}", hello.node)),
        None => Ok(()),
    }
}

fn secret(
    local: &Local,
    policy: &(impl Policy + ?Sized),
    theirs: &Hello,
) -> Result<Secret, String> {
    select_secret(&local.identity, &theirs.cluster, |c| policy.secret_for(c))
        .map_err(|e| e.to_string())
}
