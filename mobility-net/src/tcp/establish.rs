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

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::codec::{Decoder, FramedRead};

use super::config::{Identity, TcpConfig};
use super::connection::Socket;
use super::credentials::{check_peer, LocalKeys, Terms, Trust};
use super::handshake::{
    make_hello, read_hello, read_refusal, session_id, HandshakeError, Hello, Refusal,
    RefusalReason, Role, HANDSHAKE_MAX_FRAME,
};
use super::noise;
use super::record::{is_empty_message, Keys, Opener, Sealer};
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
    /// Noise messages from the peer the handshake already opened (the
    /// listener's verdict, on the dialer).
    opened: u64,
}

/// The socket during the handshake: frames of at most
/// `HANDSHAKE_MAX_FRAME` in, bytes out.
struct Pipe {
    reader: FramedRead<OwnedReadHalf, HandshakeCodec>,
    writer: OwnedWriteHalf,
}

/// What the handshake reads: frames (a u32 big-endian length, at most
/// `HANDSHAKE_MAX_FRAME` bytes); and, once the dialer waits for the
/// listener's verdict, either such a frame (a `Refusal`: the first two
/// bytes of its length are zero) or one Noise transport message (a u16
/// length, never zero: a message is at least its tag).
#[derive(Debug, Default)]
pub(crate) struct HandshakeCodec {
    /// Whether the dialer waits for the listener's verdict.
    pub(crate) verdict: bool,
}

/// One piece read by the handshake.
#[derive(Debug)]
pub(crate) enum Piece {
    Frame(BytesMut),
    /// A Noise transport message, without its length.
    Message(BytesMut),
}

impl Decoder for HandshakeCodec {
    type Item = Piece;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Piece>, Self::Error> {
        if self.verdict && src.len() >= 2 && src[..2] != [0, 0] {
            let len = usize::from(u16::from_be_bytes([src[0], src[1]]));
            if src.len() < 2 + len {
                src.reserve(2 + len - src.len());
                return Ok(None);
            }
            src.advance(2);
            return Ok(Some(Piece::Message(src.split_to(len))));
        }
        let Some(head) = src.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > HANDSHAKE_MAX_FRAME {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("frame of {len} bytes (at most {HANDSHAKE_MAX_FRAME} in a handshake)"),
            ));
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(Piece::Frame(src.split_to(len))))
    }
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
    /// `permit` for as long as it lives. A listener first tells the
    /// dialer it takes the socket (an empty Noise message, which the
    /// dialer waits for).
    pub(crate) async fn established(
        mut self,
        permit: OwnedSemaphorePermit,
    ) -> Result<Established, String> {
        if self.role == Role::Listener {
            self.sealer.seal_empty()?;
            self.writer
                .write_all(self.sealer.sealed())
                .await
                .map_err(|e| format!("write failed: {e}"))?;
            let written = self.sealer.sealed().len();
            self.sealer.advance(written);
        }
        Ok(Established {
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
        })
    }

    /// A listener refuses the socket after all (`reason` tells the dialer
    /// why) and closes it.
    pub(crate) async fn refuse(mut self, reason: RefusalReason) {
        let _ = self.writer.write_all(&refusal_frame(reason)).await;
    }
}

/// The bytes of a [`Refusal`] frame for `reason`.
pub(crate) fn refusal_frame(reason: RefusalReason) -> Vec<u8> {
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
    /// The listener refused the connection for this reason (it said so;
    /// on the dialer only).
    Refused(RefusalReason),
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
            Failure::Busy(limit) => write!(
                f,
                "{}",
                HandshakeError::Refused(RefusalReason::Busy(limit.clone()))
            ),
            Failure::Refused(reason) => write!(f, "{}", HandshakeError::Refused(reason.clone())),
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
        reader: FramedRead::new(read, HandshakeCodec::default()),
        writer: write,
    };
    let timeout = local.config.handshake_timeout;
    let steps = run(&mut pipe, role, local, policy, on_hello);
    match tokio::time::timeout(timeout, steps).await {
        Ok(Ok(settled)) => Ok(Handshaken {
            // What the peer sent after its last handshake message (the
            // listener's first frames) stays in the reader's buffer.
            reader: pipe.reader.map_decoder(|_| {
                Opener::new(Arc::clone(&settled.keys), local.config.max_frame)
                    .starting_at(settled.opened)
            }),
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
    match role {
        Role::Dialer => dial(socket, local, policy, &own, &own_bytes).await,
        Role::Listener => listen(socket, local, policy, on_hello, &own, &own_bytes).await,
    }
}

/// The dialer's side: `Hello`s, the three Noise messages, the verdict.
async fn dial(
    socket: &mut Pipe,
    local: &Local,
    policy: &(impl Policy + ?Sized),
    own: &Hello,
    own_bytes: &[u8],
) -> Result<Settled, Failure> {
    send(socket, &[own_bytes]).await?;
    let their_bytes = receive(socket).await?;
    let theirs = read_hello(&their_bytes, &local.identity).map_err(|e| match e {
        HandshakeError::Refused(RefusalReason::Busy(limit)) => Failure::Busy(limit),
        HandshakeError::Refused(reason) => Failure::Refused(reason),
        e => Failure::Failed(e.to_string()),
    })?;
    admit(&theirs, policy)?;
    let terms = terms(local, policy, &theirs)?;
    let key = &local.keys.key;
    let mut state =
        noise::dialer(&terms.psk, key, own_bytes, &their_bytes).map_err(|e| text(&e))?;
    let first = noise::write(&mut state, &[]).map_err(|e| text(&e))?;
    send(socket, &[first.as_slice()]).await?;
    let answer = receive(socket).await?;
    // A listener that could not verify our first message says so.
    if let Some(reason) = read_refusal(&answer) {
        return Err(Failure::Refused(reason));
    }
    let certificate = noise::read(&mut state, &answer).map_err(|e| text(&e))?;
    // The listener's identity is checked before this node proves
    // anything keyed by the secret.
    verify(&certificate, &terms, &theirs, &state)?;
    let last = noise::write(&mut state, terms.certificate.as_bytes()).map_err(|e| text(&e))?;
    send(socket, &[last.as_slice()]).await?;
    let keys: Keys = Arc::new(noise::finish(state).map_err(|e| text(&e))?);
    verdict(socket, &keys).await?;
    Ok(Settled {
        keys,
        session_id: session_id(own, &theirs),
        hello: theirs,
        opened: 1,
    })
}

/// The listener's answer to the dialer's last message: an empty Noise
/// message (nonce 0) if it takes the socket, else a `Refusal` frame.
async fn verdict(socket: &mut Pipe, keys: &Keys) -> Result<(), Failure> {
    socket.reader.decoder_mut().verdict = true;
    let piece = next_piece(socket).await;
    socket.reader.decoder_mut().verdict = false;
    match piece? {
        Piece::Message(message) if is_empty_message(keys, 0, &message) => Ok(()),
        Piece::Message(_) => Err(Failure::Failed(
            "the listener's verdict does not verify (altered or forged)".into(),
        )),
        Piece::Frame(frame) => match read_refusal(&frame) {
            Some(RefusalReason::Busy(limit)) => Err(Failure::Busy(limit)),
            Some(reason) => Err(Failure::Refused(reason)),
            None => Err(Failure::Failed(
                "the listener sent a frame that is neither its verdict nor a refusal".into(),
            )),
        },
    }
}

/// The listener's side: `Hello`s, the three Noise messages; a refusal
/// (for what is not secret) before closing. Its verdict goes once the
/// socket has a place among the links (`Handshaken::established`).
async fn listen(
    socket: &mut Pipe,
    local: &Local,
    policy: &(impl Policy + ?Sized),
    on_hello: impl FnOnce(),
    own: &Hello,
    own_bytes: &[u8],
) -> Result<Settled, Failure> {
    let their_bytes = receive(socket).await?;
    let theirs = match read_hello(&their_bytes, &local.identity) {
        Ok(theirs) => theirs,
        Err(e @ (HandshakeError::Version { .. } | HandshakeError::AppVersion { .. })) => {
            // Ours before closing, so the dialer can name the
            // mismatch too (a hello is no secret: any dialer gets it).
            let _ = send(socket, &[own_bytes]).await;
            return Err(Failure::Failed(e.to_string()));
        }
        Err(e) => return Err(Failure::Failed(e.to_string())),
    };
    // Who is refused by node id or cluster learns only that, as it would
    // from a socket closed before any key is used.
    if let Err(failure) = admit(&theirs, policy) {
        return Err(refuse(socket, RefusalReason::IdentityRefused, failure).await);
    }
    let terms = match terms(local, policy, &theirs) {
        Ok(terms) => terms,
        Err(failure) => {
            return Err(refuse(socket, RefusalReason::ClusterNotTrusted, failure).await);
        }
    };
    if let Some(limit) = policy.busy() {
        let reason = RefusalReason::Busy(limit.clone());
        return Err(refuse(socket, reason, Failure::Busy(limit)).await);
    }
    on_hello();
    let key = &local.keys.key;
    let mut state =
        noise::listener(&terms.psk, key, &their_bytes, own_bytes).map_err(|e| text(&e))?;
    send(socket, &[own_bytes]).await?;
    let first = receive(socket).await?;
    let empty = match noise::read(&mut state, &first) {
        Ok(empty) => empty,
        Err(e) => return Err(refuse(socket, RefusalReason::HandshakeFailed, text(&e)).await),
    };
    if !empty.is_empty() {
        return Err(Failure::Failed(format!(
            "unexpected payload of {} bytes in the first handshake message",
            empty.len()
        )));
    }
    let second = noise::write(&mut state, terms.certificate.as_bytes()).map_err(|e| text(&e))?;
    send(socket, &[second.as_slice()]).await?;
    let last = receive(socket).await?;
    // A wrong secret and a refused certificate get the same answer, at
    // the same point: the answer never tells whether the secret was right.
    let checked = noise::read(&mut state, &last)
        .map_err(|e| text(&e))
        .and_then(|certificate| verify(&certificate, &terms, &theirs, &state));
    if let Err(failure) = checked {
        return Err(refuse(socket, RefusalReason::HandshakeFailed, failure).await);
    }
    Ok(Settled {
        keys: Arc::new(noise::finish(state).map_err(|e| text(&e))?),
        session_id: session_id(&theirs, own),
        hello: theirs,
        opened: 0,
    })
}

/// Tells the dialer why it is refused (best effort); returns `failure`,
/// the listener's own account.
async fn refuse(socket: &mut Pipe, reason: RefusalReason, failure: Failure) -> Failure {
    let _ = socket.writer.write_all(&refusal_frame(reason)).await;
    failure
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

async fn receive(socket: &mut Pipe) -> Result<BytesMut, String> {
    match next_piece(socket).await? {
        Piece::Frame(frame) => Ok(frame),
        Piece::Message(_) => Err("a Noise message during the handshake".to_owned()),
    }
}

async fn next_piece(socket: &mut Pipe) -> Result<Piece, String> {
    match socket.reader.next().await {
        Some(Ok(piece)) => Ok(piece),
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
