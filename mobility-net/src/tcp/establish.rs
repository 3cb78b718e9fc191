//! Runs the handshake on a new socket, as dialer or listener, within the
//! handshake timeout: the two `Hello`s, then the Noise handshake over them
//! (`noise.rs`) in which each side shows its certificate and the other
//! checks it (`credentials.rs`); nothing but `Hello`s, Noise handshake
//! messages and certificates is read before it succeeds, and every later
//! byte is encrypted.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use super::config::{Identity, TcpConfig};
use super::connection::Socket;
use super::credentials::{check_peer, LocalKeys, Terms, Trust};
use super::frame::codec;
use super::handshake::{
    make_hello, read_hello, session_id, HandshakeError, Hello, Refusal, Role, HANDSHAKE_MAX_FRAME,
};
use super::noise;
use super::record::{Keys, Opener, Sealer};
use super::session::SessionId;
use crate::NodeId;

/// What this node shows of itself in handshakes.
#[derive(Debug)]
pub(crate) struct Local {
    pub(crate) identity: Identity,
    /// Its static key, certificate and cluster authority.
    pub(crate) keys: LocalKeys,
    pub(crate) incarnation: u64,
    pub(crate) listen: Option<String>,
    pub(crate) config: TcpConfig,
}

/// The transport's current rules: which clusters are trusted, which peers
/// are refused.
pub(crate) trait Policy {
    /// How another cluster is trusted, if it is.
    fn trust_for(&self, cluster: &str) -> Option<Trust>;
    /// Why a connection with `peer` is refused, if it is.
    fn refuses(&self, peer: &NodeId) -> Option<String>;
    /// The cluster `peer` authenticated as before, if it did: a node id
    /// stays with the cluster it first linked from, so a trusted other
    /// cluster's authority cannot take over the id of a node already
    /// known.
    fn cluster_of(&self, peer: &NodeId) -> Option<String>;
    /// Which of this node's limits keeps it from taking one more link
    /// now, if one does (checked by the listener before it answers).
    fn busy(&self) -> Option<String>;
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

/// What the handshake settles besides the socket.
struct Settled {
    hello: Hello,
    session_id: SessionId,
    keys: Keys,
}

/// The socket during the handshake: frames of at most
/// `HANDSHAKE_MAX_FRAME` in, bytes out.
struct Pipe {
    reader: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    writer: OwnedWriteHalf,
}

/// A socket whose handshake succeeded, not yet counted as a link: it
/// becomes one (`established`) once it holds a permit of the links'
/// budget.
#[derive(Debug)]
pub(crate) struct Handshaken {
    reader: FramedRead<OwnedReadHalf, Opener>,
    writer: OwnedWriteHalf,
    sealer: Sealer,
    pub(crate) hello: Hello,
    role: Role,
    session_id: SessionId,
    pub(crate) peer_addr: SocketAddr,
}

impl Handshaken {
    /// The authenticated socket, counted against the links' budget by
    /// `permit` for as long as it lives.
    pub(crate) fn established(self, permit: OwnedSemaphorePermit) -> Established {
        Established {
            socket: Socket {
                reader: self.reader,
                writer: self.writer,
                sealer: self.sealer,
                permit,
            },
            hello: self.hello,
            role: self.role,
            session_id: self.session_id,
            peer_addr: self.peer_addr,
        }
    }
}

/// The bytes of a [`Refusal`] frame naming `reason`.
pub(crate) fn refusal_frame(reason: &str) -> Vec<u8> {
    let payload = crate::encode(&Refusal::new(reason)).unwrap_or_default();
    let len = u32::try_from(payload.len()).unwrap_or(0);
    let mut bytes = len.to_be_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    bytes
}

/// Why a handshake did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// It was not done within the handshake timeout.
    Timeout(Duration),
    /// The listener refused the connection for one of its own limits
    /// (named): it may take it later. (On the listener: it said so.)
    Busy(String),
    /// It failed, for this reason.
    Failed(String),
    /// The peer's certificate was refused (it may know the secret, but
    /// not prove the identity it claims), for this reason.
    Identity(String),
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Failure::Failed(reason)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout(timeout) => write!(f, "handshake not done within {timeout:?}"),
            Failure::Busy(limit) => write!(f, "{}", HandshakeError::Refused(limit.clone())),
            Failure::Failed(reason) | Failure::Identity(reason) => f.write_str(reason),
        }
    }
}

/// Runs the handshake of `role` on `stream`, within the handshake
/// timeout. `on_hello` is called once the listener has read a valid
/// `Hello` of a cluster it trusts.
pub(crate) async fn handshake(
    stream: TcpStream,
    role: Role,
    local: &Local,
    policy: &(impl Policy + ?Sized),
    on_hello: impl FnOnce(),
) -> Result<Handshaken, Failure> {
    let peer_addr = stream
        .peer_addr()
        .map_err(|e| Failure::Failed(format!("no peer address: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let mut pipe = Pipe {
        reader: FramedRead::new(read, codec(HANDSHAKE_MAX_FRAME)),
        writer: write,
    };
    let timeout = local.config.handshake_timeout;
    let steps = run(&mut pipe, role, local, policy, on_hello);
    match tokio::time::timeout(timeout, steps).await {
        Ok(Ok(settled)) => Ok(Handshaken {
            // What the peer sent after its last handshake message (the
            // listener's first frames) stays in the reader's buffer.
            reader: pipe
                .reader
                .map_decoder(|_| Opener::new(Arc::clone(&settled.keys), local.config.max_frame)),
            writer: pipe.writer,
            sealer: Sealer::new(settled.keys),
            hello: settled.hello,
            role,
            session_id: settled.session_id,
            peer_addr,
        }),
        Ok(Err(failure)) => Err(failure),
        Err(_) => Err(Failure::Timeout(timeout)),
    }
}

async fn run(
    socket: &mut Pipe,
    role: Role,
    local: &Local,
    policy: &(impl Policy + ?Sized),
    on_hello: impl FnOnce(),
) -> Result<Settled, Failure> {
    let own = make_hello(
        &local.identity,
        local.incarnation,
        local.listen.clone(),
        &local.config,
    )
    .map_err(|e| e.to_string())?;
    let own_bytes = encode(&own)?;
    let key = &local.keys.key;
    match role {
        Role::Dialer => {
            send(socket, &[own_bytes.as_slice()]).await?;
            let their_bytes = receive(socket).await?;
            let theirs = read_hello(&their_bytes, &local.identity).map_err(|e| match e {
                HandshakeError::Refused(limit) => Failure::Busy(limit),
                e => Failure::Failed(e.to_string()),
            })?;
            admit(&theirs, policy)?;
            let terms = terms(local, policy, &theirs)?;
            let mut state =
                noise::dialer(&terms.psk, key, &own_bytes, &their_bytes).map_err(|e| text(&e))?;
            send(
                socket,
                &[noise::write(&mut state, &[])
                    .map_err(|e| text(&e))?
                    .as_slice()],
            )
            .await?;
            let answer = receive(socket).await?;
            let certificate = noise::read(&mut state, &answer).map_err(|e| text(&e))?;
            // The listener's identity is checked before this node proves
            // anything keyed by the secret.
            verify(&certificate, &terms, &theirs, &state)?;
            let last =
                noise::write(&mut state, terms.certificate.as_bytes()).map_err(|e| text(&e))?;
            send(socket, &[last.as_slice()]).await?;
            Ok(Settled {
                keys: Arc::new(noise::finish(state).map_err(|e| text(&e))?),
                session_id: session_id(&own, &theirs),
                hello: theirs,
            })
        }
        Role::Listener => {
            let their_bytes = receive(socket).await?;
            let theirs = match read_hello(&their_bytes, &local.identity) {
                Ok(theirs) => theirs,
                Err(e @ (HandshakeError::Version { .. } | HandshakeError::AppVersion { .. })) => {
                    // Ours before closing, so the dialer can name the
                    // mismatch too (a hello is no secret: any dialer gets it).
                    let _ = send(socket, &[own_bytes.as_slice()]).await;
                    return Err(Failure::Failed(e.to_string()));
                }
                Err(e) => return Err(Failure::Failed(e.to_string())),
            };
            admit(&theirs, policy)?;
            let terms = terms(local, policy, &theirs)?;
            if let Some(limit) = policy.busy() {
                let _ = send(socket, &[encode(&Refusal::new(limit.clone()))?.as_slice()]).await;
                return Err(Failure::Busy(limit));
            }
            on_hello();
            let mut state =
                noise::listener(&terms.psk, key, &their_bytes, &own_bytes).map_err(|e| text(&e))?;
            send(socket, &[own_bytes.as_slice()]).await?;
            let first = receive(socket).await?;
            let empty = noise::read(&mut state, &first).map_err(|e| text(&e))?;
            if !empty.is_empty() {
                return Err(Failure::Failed(format!(
                    "unexpected payload of {} bytes in the first handshake message",
                    empty.len()
                )));
            }
            let second =
                noise::write(&mut state, terms.certificate.as_bytes()).map_err(|e| text(&e))?;
            send(socket, &[second.as_slice()]).await?;
            let last = receive(socket).await?;
            let certificate = noise::read(&mut state, &last).map_err(|e| text(&e))?;
            verify(&certificate, &terms, &theirs, &state)?;
            Ok(Settled {
                keys: Arc::new(noise::finish(state).map_err(|e| text(&e))?),
                session_id: session_id(&theirs, &own),
                hello: theirs,
            })
        }
    }
}

/// Checks the certificate the peer of `theirs` showed, against the
/// static key it proved in `state`.
fn verify(
    certificate: &[u8],
    terms: &Terms,
    theirs: &Hello,
    state: &snow::HandshakeState,
) -> Result<(), Failure> {
    check_peer(
        certificate,
        terms,
        &theirs.node,
        &theirs.cluster,
        noise::remote_static(state),
    )
    .map(drop)
    .map_err(|e| Failure::Identity(HandshakeError::Identity(e.to_string()).to_string()))
}

fn text(e: &HandshakeError) -> Failure {
    Failure::Failed(e.to_string())
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    crate::encode(value).map_err(|e| e.to_string())
}

async fn send(socket: &mut Pipe, frames: &[&[u8]]) -> Result<(), String> {
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

async fn receive(socket: &mut Pipe) -> Result<bytes::BytesMut, String> {
    match socket.reader.next().await {
        Some(Ok(frame)) => Ok(frame),
        Some(Err(e)) => Err(format!("bad handshake frame: {e}")),
        None => Err("closed during the handshake".to_owned()),
    }
}

/// Whether the policy lets the peer of this `Hello` in.
fn admit(hello: &Hello, policy: &(impl Policy + ?Sized)) -> Result<(), Failure> {
    if let Some(why) = policy.refuses(&hello.node) {
        return Err(Failure::Failed(format!("{} refused: {why}", hello.node)));
    }
    match policy.cluster_of(&hello.node) {
        Some(cluster) if cluster != hello.cluster => Err(Failure::Identity(
            HandshakeError::Identity(format!(
                "{} linked before as a node of cluster {cluster:?}, now claims cluster {:?}",
                hello.node, hello.cluster
            ))
            .to_string(),
        )),
        _ => Ok(()),
    }
}

/// The terms of the handshake with the peer of `theirs`: those of this
/// node's cluster, or of the other cluster if it is trusted.
fn terms(local: &Local, policy: &(impl Policy + ?Sized), theirs: &Hello) -> Result<Terms, Failure> {
    if theirs.cluster == local.identity.cluster {
        return Ok(Terms::own(&local.identity, &local.keys));
    }
    match policy.trust_for(&theirs.cluster) {
        Some(trust) => Ok(Terms::trusted(&trust, &local.keys)),
        None => Err(Failure::Failed(
            HandshakeError::UnknownCluster(theirs.cluster.clone()).to_string(),
        )),
    }
}
