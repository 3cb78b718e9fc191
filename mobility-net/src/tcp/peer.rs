//! One task per peer: it owns the session (`session.rs`), attaches the
//! peer's authenticated sockets one at a time, performs the session's
//! actions on them, and reconnects until `reconnect_for` runs out.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::connection::{Conn, ConnEvent};
use super::establish::Established;
use super::frame::{Wire, DATA_OVERHEAD};
use super::handshake::{Hello, Role};
use super::session::{Session, SessionId};
use super::transport::{advertised, lock, Inner, TransportEvent};
use crate::{LinkSender, NodeId};

/// First delay before redialing a lost peer (doubled up to `MAX_BACKOFF`).
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Most dropped sessions a peer may list in its `Resume`.
const MAX_DROPPED_TOLD: usize = 64;
/// Frames handled before acks and queued messages get their turn.
const BATCH: usize = 256;

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
    let (conn_tx, conn_rx) = mpsc::unbounded_channel();
    let now = Instant::now();
    let task = PeerTask {
        inner,
        peer,
        token,
        ctrl_tx: ctrl_tx.clone(),
        ctrl,
        conn_tx,
        conn_rx,
        info: None,
        session: None,
        session_incarnation: 0,
        outgoing: None,
        conn: None,
        live: false,
        pending_session: [0; 16],
        resume_by: now,
        last_rx: now,
        next_ping: now,
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
    ctrl_tx: mpsc::UnboundedSender<PeerCtrl>,
    ctrl: mpsc::UnboundedReceiver<PeerCtrl>,
    conn_tx: mpsc::UnboundedSender<ConnEvent>,
    conn_rx: mpsc::UnboundedReceiver<ConnEvent>,
    info: Option<PeerInfo>,
    session: Option<Session>,
    /// The peer's incarnation when the session started.
    session_incarnation: u64,
    /// Messages the runtime queued for the session (`LinkSender`).
    outgoing: Option<mpsc::UnboundedReceiver<Bytes>>,
    conn: Option<Conn>,
    /// Whether `conn` finished the `Resume` exchange.
    live: bool,
    /// The session id the current socket's handshake gives a new session.
    pending_session: SessionId,
    resume_by: Instant,
    last_rx: Instant,
    next_ping: Instant,
    /// Since when no socket is live (while a session waits for one).
    lost_since: Option<Instant>,
    next_dial: Instant,
    backoff: Duration,
    dialing: bool,
}

impl PeerTask {
    async fn run(mut self) {
        loop {
            let deadline = self.deadline();
            tokio::select! {
                biased;
                () = self.inner.shutdown.cancelled() => break,
                Some(msg) = self.ctrl.recv() => self.on_ctrl(msg),
                Some(event) = self.conn_rx.recv() => {
                    self.on_conn_event(event);
                    for _ in 0..BATCH {
                        match self.conn_rx.try_recv() {
                            Ok(event) => self.on_conn_event(event),
                            Err(_) => break,
                        }
                    }
                    self.flush_ack();
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
                () = sleep_until(deadline) => self.on_timer(),
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
            Some(_) if self.live => Some(self.next_ping.min(self.last_rx + config.idle_timeout)),
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
            } else if now >= self.next_ping {
                self.send(Wire::Ping);
                self.next_ping = now + config.idle_timeout / 3;
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
        let config = self.inner.config();
        let id = self.inner.next_id();
        let conn = Conn::spawn(
            id,
            dialed_by_me,
            established.socket,
            config.max_frame,
            self.conn_tx.clone(),
        );
        let now = Instant::now();
        self.pending_session = established.session_id;
        self.resume_by = now + config.handshake_timeout;
        self.last_rx = now;
        self.next_ping = now + config.idle_timeout / 3;
        self.live = false;
        let dropped = self.inner.dropped(&self.peer);
        let resume = match &mut self.session {
            Some(session) => session.resume_frame(dropped),
            None => Wire::Resume {
                session: None,
                dropped,
                upto: 0,
            },
        };
        conn.send(resume);
        self.conn = Some(conn);
    }

    /// Drops the current socket; the session (if any) waits for another.
    fn drop_conn(&mut self, reason: &str) {
        if self.conn.take().is_some() {
            tracing::info!(peer = %self.peer, %reason, "socket dropped");
        }
        self.live = false;
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

    /// Ends the session: the runtime is told, queued messages are lost.
    fn lose_session(&mut self, reason: &str) {
        // The links close before the runtime hears of the loss.
        self.outgoing = None;
        if let Some(session) = self.session.take() {
            self.inner.record_dropped(&self.peer, session.id());
            tracing::warn!(peer = %self.peer, %reason, "peer lost");
            let _ = self.inner.events.send(TransportEvent::PeerLost {
                peer: self.peer.clone(),
                reason: reason.to_owned(),
            });
        }
        self.lost_since = None;
        self.live = false;
        self.conn = None;
    }

    fn on_conn_event(&mut self, event: ConnEvent) {
        let current = self.conn.as_ref().map(|c| c.id);
        match event {
            ConnEvent::Closed(id, reason) if Some(id) == current => {
                if reason.starts_with("bad frame") || reason.starts_with("read failed") {
                    tracing::warn!(peer = %self.peer, %reason, "closing socket");
                }
                self.drop_conn(&reason);
            }
            ConnEvent::Frame(id, wire) if Some(id) == current => {
                self.last_rx = Instant::now();
                if let Err(reason) = self.on_frame(wire) {
                    tracing::warn!(peer = %self.peer, %reason, "protocol violation");
                    self.drop_conn(&reason);
                }
            }
            // Late news from a socket already dropped.
            _ => {}
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
            (Wire::Data { seq, more, bytes }, true) => {
                let Some(session) = &mut self.session else {
                    return Ok(());
                };
                match session.on_data(seq, more, bytes) {
                    Ok(Some(frame)) => {
                        let _ = self.inner.events.send(TransportEvent::Frame {
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

    /// The peer's `Resume`: go on with the session both hold, or start anew.
    fn on_resume(
        &mut self,
        theirs: Option<SessionId>,
        dropped: &[SessionId],
        upto: u64,
    ) -> Result<(), String> {
        let incarnation = self.info.as_ref().map_or(0, |i| i.incarnation);
        let pending = self.pending_session;
        let same_peer = self.session_incarnation == incarnation;
        match &mut self.session {
            Some(session) if Some(session.id()) == theirs => {
                if let Err(e) = session.connect(upto) {
                    let reason = format!("session broken by the peer: {e}");
                    self.lose_session(&reason);
                    return Err(reason);
                }
            }
            // Both sides started a session at once and the peer never got
            // ours: ours becomes the one it starts now, nothing is lost.
            Some(session)
                if same_peer && session.is_fresh() && !dropped.contains(&session.id()) =>
            {
                session.rekey(pending);
                let _ = session.connect(0);
            }
            Some(_) => {
                let reason = if same_peer {
                    "the peer dropped the session"
                } else {
                    "the peer restarted"
                };
                self.lose_session(reason);
                self.start_session();
            }
            None => self.start_session(),
        }
        self.live = true;
        self.lost_since = None;
        self.backoff = FIRST_BACKOFF;
        self.inner.notify_up(&self.peer);
        Ok(())
    }

    fn start_session(&mut self) {
        let Some(info) = &self.info else { return };
        let chunk = info.max_frame.saturating_sub(DATA_OVERHEAD).max(1);
        let mut session =
            Session::new(self.pending_session, chunk, self.inner.config().max_message);
        // Both sides start the new session from nothing.
        let _ = session.connect(0);
        let (tx, rx) = mpsc::unbounded_channel();
        let link = LinkSender::tcp(tx, info.max_message);
        tracing::info!(peer = %self.peer, cluster = %info.cluster, "peer up");
        let _ = self.inner.events.send(TransportEvent::PeerUp {
            peer: self.peer.clone(),
            cluster: info.cluster.clone(),
            link,
        });
        self.session = Some(session);
        self.session_incarnation = info.incarnation;
        self.outgoing = Some(rx);
    }

    fn queue(&mut self, msg: Bytes) {
        if let Some(session) = &mut self.session {
            session.send(msg);
        }
    }

    fn send(&self, wire: Wire) {
        if let Some(conn) = &self.conn {
            conn.send(wire);
        }
    }

    /// Puts every chunk the session has to send on the socket.
    fn pump(&mut self) {
        if !self.live {
            return;
        }
        let (Some(conn), Some(session)) = (&self.conn, &mut self.session) else {
            return;
        };
        while let Some(wire) = session.poll_transmit() {
            conn.send(wire);
        }
    }

    fn flush_ack(&mut self) {
        if let (Some(conn), Some(session)) = (&self.conn, &mut self.session) {
            if let Some(ack) = session.take_ack() {
                conn.send(ack);
            }
        }
    }
}

async fn next_outgoing(rx: &mut Option<mpsc::UnboundedReceiver<Bytes>>) -> Option<Bytes> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
