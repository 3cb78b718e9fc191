//! One task per peer: it owns the session (`session.rs`) and the peer's
//! current authenticated socket (reading it and writing to it itself,
//! `connection.rs`), hands whole messages to the transport's handler,
//! and reconnects until `reconnect_for` runs out.
//!
//! Who creates sessions, and how a socket resumes one: `resume.rs`.

mod resume;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::connection::{read_frame, Conn, Inbound};
use super::establish::Established;
use super::frame::Wire;
use super::handshake::{Hello, Role};
use super::session::{Session, SessionId};
use super::transport::{advertised, lock, Inner, TransportEvent};
use crate::NodeId;

/// First delay before redialing a lost peer (doubled up to `MAX_BACKOFF`).
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Most dropped sessions a peer may list in its `Resume`.
const MAX_DROPPED_TOLD: usize = 64;
/// Frames handled before acks and queued messages get their turn.
const BATCH: usize = 256;
/// Longest a received chunk waits for a `Data` frame going back to carry
/// its ack before a standalone `Ack` is sent.
const ACK_DELAY: Duration = Duration::from_millis(2);
/// Chunks received without telling the peer before an `Ack` goes at once.
const ACK_EVERY: u64 = 32;
/// Chunks are sealed and queued on the socket only while fewer bytes than
/// this wait to be written: sealing the next chunk of a big message then
/// overlaps with the peer receiving and decrypting the previous one.
const SEND_WINDOW: usize = 1 << 20;

/// Largest chunk of a message on the wire, whatever the peer's
/// `max_frame`: a frame is handed up once the whole frame is in, so with
/// smaller frames the receiver works on one while the next is on its way,
/// and the sender seals one while the last is written (with version 2's
/// tags, a 64 MiB move took about a tenth less than with 8 MiB chunks).
const MAX_CHUNK: usize = 1 << 20;

/// What the transport tells a peer task.
#[derive(Debug)]
pub(crate) enum PeerCtrl {
    /// A new authenticated socket of this peer.
    Attach(Box<Established>),
    /// Answer once the session is up.
    Wait(oneshot::Sender<()>),
    /// Drop the current socket (test hook), with the reason to log.
    Cut(String),
    /// A redial finished.
    DialDone,
}

/// Starts the task of `peer`; returns its control channel.
pub(crate) fn spawn_peer(
    inner: Arc<Inner>,
    peer: NodeId,
    token: u64,
) -> mpsc::UnboundedSender<PeerCtrl> {
    let (ctrl_tx, ctrl) = mpsc::unbounded_channel();
    let now = Instant::now();
    let leader = inner.local.identity.node < peer;
    let task = PeerTask {
        inner,
        peer,
        token,
        leader,
        ctrl_tx: ctrl_tx.clone(),
        ctrl,
        info: None,
        session: None,
        session_incarnation: 0,
        announced: false,
        outgoing: None,
        conn: None,
        live: false,
        socket_id: [0; 16],
        told_dropped: Vec::new(),
        resume_by: now,
        last_rx: now,
        next_ping: now,
        ack_due: None,
        lost_since: None,
        next_dial: now,
        backoff: FIRST_BACKOFF,
        dialing: false,
    };
    tokio::spawn(task.run());
    ctrl_tx
}

/// What the last handshake told about the peer.
#[derive(Debug)]
struct PeerInfo {
    cluster: String,
    incarnation: u64,
    listen: Option<String>,
    max_frame: usize,
    max_message: usize,
}

impl PeerInfo {
    fn from_hello(hello: &Hello, listen: Option<String>) -> Self {
        PeerInfo {
            cluster: hello.cluster.clone(),
            incarnation: hello.incarnation,
            listen,
            max_frame: usize::try_from(hello.max_frame.min(u64::from(u32::MAX)))
                .unwrap_or(usize::MAX),
            max_message: usize::try_from(hello.max_message).unwrap_or(usize::MAX),
        }
    }
}

struct PeerTask {
    inner: Arc<Inner>,
    peer: NodeId,
    token: u64,
    /// Whether this node creates the sessions with the peer (it has the
    /// smaller node id; see the module's docs).
    leader: bool,
    ctrl_tx: mpsc::UnboundedSender<PeerCtrl>,
    ctrl: mpsc::UnboundedReceiver<PeerCtrl>,
    info: Option<PeerInfo>,
    session: Option<Session>,
    /// The peer's incarnation when the session started.
    session_incarnation: u64,
    /// Whether the runtime was told of the session (`PeerUp`): the leader
    /// tells it once the session first goes live.
    announced: bool,
    /// Messages the runtime queued for the session (`LinkSender`).
    outgoing: Option<mpsc::UnboundedReceiver<Bytes>>,
    conn: Option<Conn>,
    /// Whether `conn` finished the `Resume` exchange.
    live: bool,
    /// What the current socket's handshake gave (part of the id of a
    /// session created on it).
    socket_id: SessionId,
    /// The dropped sessions our `Resume` on the current socket listed.
    told_dropped: Vec<SessionId>,
    resume_by: Instant,
    last_rx: Instant,
    next_ping: Instant,
    /// When a standalone `Ack` goes if no `Data` frame carried it by then.
    ack_due: Option<Instant>,
    /// Since when no socket is live (while a session waits for one).
    lost_since: Option<Instant>,
    next_dial: Instant,
    backoff: Duration,
    dialing: bool,
}

impl PeerTask {
    async fn run(mut self) {
        // One timer for the task's whole life, moved only when a deadline
        // comes sooner than the one it is set to (or after it fired): a
        // deadline that moves later (each ack that rides on a `Data` frame
        // clears one) leaves it be, and it fires early for nothing at
        // worst. So a busy peer registers no timer per message.
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        loop {
            let deadline = self.deadline();
            if let Some(deadline) = deadline {
                if armed.is_none_or(|at| deadline < at) {
                    timer.as_mut().reset(deadline);
                    armed = Some(deadline);
                }
            }
            let (reader, writer) = match &mut self.conn {
                Some(conn) => {
                    let (reader, writer) = conn.halves();
                    (Some(reader), writer)
                }
                None => (None, None),
            };
            tokio::select! {
                biased;
                () = self.inner.shutdown.cancelled() => break,
                Some(msg) = self.ctrl.recv() => self.on_ctrl(msg),
                r = writable(writer) => {
                    if let Err(e) = r {
                        self.drop_conn(&format!("write failed: {e}"));
                    }
                }
                frame = next_frame(reader) => {
                    self.on_read(frame);
                    for _ in 0..BATCH {
                        let Some(conn) = &mut self.conn else { break };
                        match read_frame(conn.halves().0).now_or_never() {
                            Some(frame) => self.on_read(frame),
                            None => break,
                        }
                    }
                }
                msg = next_outgoing(&mut self.outgoing) => match msg {
                    Some(msg) => {
                        self.queue(msg);
                        for _ in 0..BATCH {
                            match self.outgoing.as_mut().map(|rx| rx.try_recv()) {
                                Some(Ok(msg)) => self.queue(msg),
                                _ => break,
                            }
                        }
                    }
                    // Every `LinkSender` is gone: nothing more will be queued.
                    None => self.outgoing = None,
                },
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    self.on_timer();
                }
            }
            self.pump();
            while self.session.is_none() && self.conn.is_none() {
                if self.try_exit() {
                    return;
                }
            }
        }
    }

    /// Leaves the peer table if no control message is pending.
    fn try_exit(&mut self) -> bool {
        let mut table = lock(&self.inner.peers);
        match self.ctrl.try_recv() {
            Ok(msg) => {
                drop(table);
                self.on_ctrl(msg);
                false
            }
            Err(_) => {
                if table.get(&self.peer).is_some_and(|e| e.token == self.token) {
                    table.remove(&self.peer);
                }
                true
            }
        }
    }

    /// The next instant a timer fires.
    fn deadline(&self) -> Option<Instant> {
        let config = self.inner.config();
        match &self.conn {
            Some(_) if self.live => {
                let idle = self.next_ping.min(self.last_rx + config.idle_timeout);
                Some(self.ack_due.map_or(idle, |ack| ack.min(idle)))
            }
            Some(_) => Some(self.resume_by),
            None => {
                let give_up = self.lost_since.map(|t| t + config.reconnect_for);
                let dial = (!self.dialing && self.can_dial()).then_some(self.next_dial);
                match (give_up, dial) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    fn can_dial(&self) -> bool {
        self.session.is_some()
            && self.info.as_ref().is_some_and(|i| i.listen.is_some())
            && !self.inner.is_blocked(&self.peer)
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        let config = self.inner.config().clone();
        if self.conn.is_some() {
            if !self.live {
                if now >= self.resume_by {
                    tracing::warn!(peer = %self.peer, "no Resume within the handshake timeout");
                    self.drop_conn("no Resume within the handshake timeout");
                }
            } else if now >= self.last_rx + config.idle_timeout {
                self.drop_conn(&format!("nothing received for {:?}", config.idle_timeout));
            } else {
                if self.ack_due.is_some_and(|due| now >= due) {
                    self.ack_due = None;
                    if let Some(ack) = self.session.as_mut().and_then(Session::take_ack) {
                        self.send(ack);
                    }
                }
                if now >= self.next_ping {
                    self.send(Wire::Ping);
                    self.next_ping = now + config.idle_timeout / 3;
                }
            }
            return;
        }
        if self
            .lost_since
            .is_some_and(|since| now >= since + config.reconnect_for)
        {
            self.lose_session(&format!("unreachable for {:?}", config.reconnect_for));
            return;
        }
        if !self.dialing && self.can_dial() && now >= self.next_dial {
            self.redial();
        }
    }

    fn redial(&mut self) {
        let Some(addr) = self.info.as_ref().and_then(|i| i.listen.clone()) else {
            return;
        };
        self.dialing = true;
        self.next_dial = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        let inner = Arc::clone(&self.inner);
        let peer = self.peer.clone();
        let done = self.ctrl_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.dial(&addr, Some(&peer), false).await {
                tracing::debug!(%peer, "redial failed: {e}");
            }
            let _ = done.send(PeerCtrl::DialDone);
        });
    }

    fn on_ctrl(&mut self, msg: PeerCtrl) {
        match msg {
            PeerCtrl::Attach(established) => self.attach(*established),
            PeerCtrl::Wait(waiter) => {
                if self.live {
                    let _ = waiter.send(());
                } else if self.session.is_some() || self.conn.is_some() {
                    self.inner.add_waiter(&self.peer, waiter);
                }
                // Else this task is about to end: dropping the waiter tells
                // `connect` to dial anew.
            }
            PeerCtrl::Cut(reason) => {
                if self.conn.is_some() {
                    self.drop_conn(&reason);
                }
            }
            PeerCtrl::DialDone => self.dialing = false,
        }
    }

    /// Takes a new socket, or refuses it if a better one is attached.
    fn attach(&mut self, established: Established) {
        let dialed_by_me = established.role == Role::Dialer;
        if let Some(conn) = &self.conn {
            // Both dialed at once: keep the socket dialed by the smaller id.
            // Otherwise the newer socket wins (its dialer gave up the old).
            let me_smaller = self.inner.local.identity.node < self.peer;
            if conn.dialed_by_me != dialed_by_me && dialed_by_me != me_smaller {
                tracing::debug!(peer = %self.peer, "crossing socket closed");
                if self.live {
                    // Whoever dialed it waits for the session: it is up.
                    self.inner.notify_up(&self.peer);
                }
                return;
            }
            self.drop_conn("replaced by a newer socket");
        }
        let listen =
            advertised(&established).or_else(|| self.info.as_mut().and_then(|i| i.listen.take()));
        let info = PeerInfo::from_hello(&established.hello, listen);
        if let Some(old) = &self.info {
            if old.incarnation != info.incarnation {
                tracing::info!(peer = %self.peer, "peer has a new incarnation");
            }
        }
        self.info = Some(info);
        self.socket_id = established.session_id;
        if self.leader {
            self.lead();
        }
        let config = self.inner.config();
        let conn = Conn::new(dialed_by_me, established.socket, config.max_frame);
        let now = Instant::now();
        self.resume_by = now + config.handshake_timeout;
        self.last_rx = now;
        self.next_ping = now + config.idle_timeout / 3;
        self.ack_due = None;
        self.live = false;
        self.conn = Some(conn);
        self.send_resume();
    }

    /// Drops the current socket; the session (if any) waits for another.
    fn drop_conn(&mut self, reason: &str) {
        if self.conn.take().is_some() {
            tracing::info!(peer = %self.peer, %reason, "socket dropped");
        }
        self.live = false;
        self.ack_due = None;
        if let Some(session) = &mut self.session {
            session.disconnect();
            let now = Instant::now();
            self.lost_since.get_or_insert(now);
            self.next_dial = now + self.first_backoff();
            self.backoff = self.first_backoff() * 2;
        }
    }

    /// The smaller node id redials first, so both rarely dial at once.
    fn first_backoff(&self) -> Duration {
        if self.inner.local.identity.node < self.peer {
            FIRST_BACKOFF
        } else {
            FIRST_BACKOFF * 5
        }
    }

    /// Ends the session and drops the socket: the runtime is told (if it
    /// knew of the session), queued messages are lost.
    fn lose_session(&mut self, reason: &str) {
        self.end_session(reason);
        self.lost_since = None;
        self.live = false;
        self.conn = None;
    }

    /// Ends the session (the socket stays): it is listed as dropped in the
    /// next `Resume`s, and the runtime is told if it knew of it.
    fn end_session(&mut self, reason: &str) {
        // The links close before the runtime hears of the loss.
        self.outgoing = None;
        if let Some(session) = self.session.take() {
            self.inner.record_dropped(&self.peer, session.id());
            if self.announced {
                tracing::warn!(peer = %self.peer, %reason, "peer lost");
                self.inner.emit(TransportEvent::PeerLost {
                    peer: self.peer.clone(),
                    reason: reason.to_owned(),
                });
            } else {
                tracing::debug!(peer = %self.peer, %reason, "session given up before going live");
            }
        }
        self.announced = false;
    }

    /// A frame read from the current socket, or why it is to be closed.
    fn on_read(&mut self, frame: Result<Wire, String>) {
        match frame {
            Ok(wire) => {
                self.last_rx = Instant::now();
                if let Err(reason) = self.on_frame(wire) {
                    tracing::warn!(peer = %self.peer, %reason, "protocol violation");
                    self.drop_conn(&reason);
                }
            }
            Err(reason) => {
                if reason.starts_with("bad frame") || reason.starts_with("read failed") {
                    tracing::warn!(peer = %self.peer, %reason, "closing socket");
                }
                self.drop_conn(&reason);
            }
        }
    }

    fn on_frame(&mut self, wire: Wire) -> Result<(), String> {
        match (wire, self.live) {
            (
                Wire::Resume {
                    session,
                    dropped,
                    upto,
                },
                false,
            ) if dropped.len() <= MAX_DROPPED_TOLD => self.on_resume(session, &dropped, upto),
            (Wire::Resume { .. }, false) => Err("Resume lists too many dropped sessions".into()),
            (Wire::Resume { .. }, true) => Err("second Resume".into()),
            (_, false) => Err("session frame before Resume".into()),
            (
                Wire::Data {
                    seq,
                    more,
                    ack,
                    bytes,
                },
                true,
            ) => {
                let Some(session) = &mut self.session else {
                    return Ok(());
                };
                if let Err(e) = session.on_ack(ack) {
                    let reason = format!("session broken by the peer: {e}");
                    self.lose_session(&reason);
                    return Err(reason);
                }
                match session.on_data(seq, more, bytes) {
                    Ok(Some(frame)) => {
                        self.inner.emit(TransportEvent::Frame {
                            peer: self.peer.clone(),
                            frame,
                        });
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(e) if !e.is_fatal() => Err(e.to_string()),
                    Err(e) => {
                        let reason = format!("session broken by the peer: {e}");
                        self.lose_session(&reason);
                        Err(reason)
                    }
                }
            }
            (Wire::Ack { upto }, true) => {
                let Some(session) = &mut self.session else {
                    return Ok(());
                };
                session.on_ack(upto).map_err(|e| {
                    let reason = format!("session broken by the peer: {e}");
                    self.lose_session(&reason);
                    reason
                })
            }
            (Wire::Ping, true) => {
                self.send(Wire::Pong);
                Ok(())
            }
            (Wire::Pong, true) => Ok(()),
        }
    }

    fn queue(&mut self, msg: Bytes) {
        if let Some(session) = &mut self.session {
            session.send(msg);
        }
    }

    /// Queues a frame on the current socket (written by `pump`).
    fn send(&mut self, wire: Wire) {
        if let Some(conn) = &mut self.conn {
            if let Err(reason) = conn.push(wire) {
                self.drop_conn(&reason);
            }
        }
    }

    /// Puts every chunk the session has to send on the socket (each
    /// carrying the ack of what arrived), sends or schedules a standalone
    /// ack for the rest, and writes what the socket takes.
    fn pump(&mut self) {
        // Messages the runtime queued meanwhile (the replies to the frames
        // just read, sent from this very task) go out in this write, not
        // one turn of the loop later.
        for _ in 0..BATCH {
            match self
                .outgoing
                .as_mut()
                .map(mpsc::UnboundedReceiver::try_recv)
            {
                Some(Ok(msg)) => self.queue(msg),
                _ => break,
            }
        }
        let Some(conn) = &mut self.conn else { return };
        let mut failed = None;
        if let (true, Some(session)) = (self.live, &mut self.session) {
            // Fill the window, write, and again while the socket takes it all.
            'fill: loop {
                let mut more = false;
                while conn.queued() < SEND_WINDOW {
                    let Some(wire) = session.poll_transmit() else {
                        break;
                    };
                    more = true;
                    if let Err(reason) = conn.push(wire) {
                        failed = Some(reason);
                        break 'fill;
                    }
                }
                if !more || !conn.has_output() {
                    break;
                }
                if let Err(reason) = conn.flush() {
                    failed = Some(reason);
                    break;
                }
                if conn.queued() >= SEND_WINDOW {
                    break;
                }
            }
            let backlog = session.ack_backlog();
            if backlog == 0 {
                self.ack_due = None;
            } else if backlog >= ACK_EVERY {
                self.ack_due = None;
                if let Some(ack) = session.take_ack() {
                    if let Err(reason) = conn.push(ack) {
                        failed = Some(reason);
                    }
                }
            } else if self.ack_due.is_none() {
                self.ack_due = Some(Instant::now() + ACK_DELAY);
            }
        }
        if failed.is_none() && conn.has_output() {
            failed = conn.flush().err();
        }
        if let Some(reason) = failed {
            tracing::info!(peer = %self.peer, %reason, "closing socket");
            self.drop_conn(&reason);
        }
    }
}

async fn writable(writer: Option<&OwnedWriteHalf>) -> std::io::Result<()> {
    match writer {
        Some(writer) => writer.writable().await,
        None => std::future::pending().await,
    }
}

async fn next_frame(reader: Option<&mut Inbound>) -> Result<Wire, String> {
    match reader {
        Some(reader) => read_frame(reader).await,
        None => std::future::pending().await,
    }
}

async fn next_outgoing(rx: &mut Option<mpsc::UnboundedReceiver<Bytes>>) -> Option<Bytes> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
