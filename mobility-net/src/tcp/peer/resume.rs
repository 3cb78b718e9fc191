//! How a new socket resumes the session with a peer (its `Resume`
//! frames), for the peer task (`mod.rs`).
//!
//! # Who creates sessions
//!
//! Of two nodes, only the one with the smaller node id (the *leader*)
//! creates sessions; the other (the *follower*) takes up the one the
//! leader names. The leader holds a session on every socket it takes (it
//! creates one when it has none, or when the follower restarted) and names
//! it in its `Resume`; it gives it up only when unreachable for
//! `reconnect_for`, when the follower restarted or broke the protocol, or
//! when the follower's `Resume` lists it as dropped (then it creates the
//! next one and sends a second `Resume` on the same socket). The follower
//! goes on with the session named if it holds it, takes it up if it is
//! newer than the one it holds (its id's generation only grows), and never
//! creates one.
//!
//! Both ends of a pair may take the same sockets in different orders
//! (several dialed at once finish their handshakes in another order at
//! each end) and so read a `Resume` the other wrote on a socket it then
//! gave up for another, on which the session went on: a `Resume` may be
//! stale. None of these decisions may then lose anything: a stale
//! `Resume` of the leader names a session no newer than the follower's
//! (the follower drops the socket), a stale one of the follower makes the
//! leader resend what is not acknowledged on a socket nobody reads, and
//! one that resumes from before what was since acknowledged drops the
//! socket, not the session.

use tokio::sync::mpsc;

use super::super::frame::{Wire, DATA_OVERHEAD};
use super::super::session::{generation, new_session_id, Session, SessionId};
use super::super::transport::TransportEvent;
use super::{PeerTask, FIRST_BACKOFF, MAX_CHUNK};
use crate::LinkSender;

impl PeerTask {
    /// The leader holds a session on every socket it takes: it creates
    /// one if it holds none, or if the peer restarted.
    pub(super) fn lead(&mut self) {
        let incarnation = self.info.as_ref().map_or(0, |i| i.incarnation);
        if self.session.is_some() && self.session_incarnation != incarnation {
            self.lose_session("the peer restarted");
        }
        if self.session.is_none() {
            let id = new_session_id(self.inner.next_id(), &self.socket_id);
            self.create_session(id);
        }
    }

    /// Sends our `Resume` on the current socket.
    pub(super) fn send_resume(&mut self) {
        let dropped = self.inner.dropped(&self.peer);
        self.told_dropped.clone_from(&dropped);
        let resume = match &mut self.session {
            Some(session) => session.resume_frame(dropped),
            None => Wire::Resume {
                session: None,
                dropped,
                upto: 0,
            },
        };
        self.send(resume);
    }

    /// The peer's `Resume`: go on with the session both hold, take up the
    /// leader's, or wait for the leader's next `Resume`.
    pub(super) fn on_resume(
        &mut self,
        theirs: Option<SessionId>,
        dropped: &[SessionId],
        upto: u64,
    ) -> Result<(), String> {
        let resumed = if self.leader {
            self.resume_as_leader(theirs, dropped, upto)?
        } else {
            self.resume_as_follower(theirs, upto)?
        };
        if resumed {
            self.live = true;
            self.lost_since = None;
            self.backoff = FIRST_BACKOFF;
            self.announce();
            self.inner.notify_up(&self.peer);
        }
        Ok(())
    }

    /// The follower's `Resume`, read by the leader: whether the socket is
    /// live.
    fn resume_as_leader(
        &mut self,
        theirs: Option<SessionId>,
        dropped: &[SessionId],
        upto: u64,
    ) -> Result<bool, String> {
        let ours = self.session.as_ref().map(Session::id);
        if let Some(id) = ours.filter(|id| Some(*id) == theirs) {
            tracing::debug!(peer = %self.peer, session = ?&id[..8], upto, "session resumed");
            return self.connect(upto);
        }
        if ours.is_some_and(|id| dropped.contains(&id)) {
            // The follower gave it up (and told the runtime): it is lost
            // here too. The next one starts on this socket.
            self.end_session("the peer dropped the session");
        }
        if self.session.is_none() {
            let id = new_session_id(self.inner.next_id(), &self.socket_id);
            self.create_session(id);
            self.send_resume();
        }
        // The follower did not hold our session when it wrote its
        // `Resume`: reading ours, it takes it up from nothing (or it gave
        // up this socket already, and nothing sent on it matters).
        if let Some(session) = &mut self.session {
            tracing::debug!(peer = %self.peer, session = ?&session.id()[..8], "session taken up by the peer");
            session.connect_unacked();
        }
        Ok(true)
    }

    /// The leader's `Resume`, read by the follower: whether the socket is
    /// live.
    fn resume_as_follower(&mut self, theirs: Option<SessionId>, upto: u64) -> Result<bool, String> {
        let Some(theirs) = theirs else {
            return Err("the leader's Resume names no session".into());
        };
        let incarnation = self.info.as_ref().map_or(0, |i| i.incarnation);
        let same_peer = self.session_incarnation == incarnation;
        let ours = self.session.as_ref().map(Session::id);
        if ours == Some(theirs) {
            tracing::debug!(peer = %self.peer, session = ?&theirs[..8], upto, "session resumed");
            return self.connect(upto);
        }
        if self.told_dropped.contains(&theirs) {
            // Once it reads our `Resume`, the leader gives it up too and
            // names the next one.
            tracing::debug!(peer = %self.peer, "the peer resumes a session given up here");
            return Ok(false);
        }
        if let Some(ours) = ours {
            if same_peer && generation(&theirs) < generation(&ours) {
                // Written before the leader created ours: the leader gave
                // this socket up for the one where we took ours up.
                self.drop_conn("stale Resume (an older session)");
                return Ok(false);
            }
            self.end_session(if same_peer {
                "the peer dropped the session"
            } else {
                "the peer restarted"
            });
        }
        tracing::debug!(peer = %self.peer, session = ?&theirs[..8], "taking up the leader's session");
        self.create_session(theirs);
        self.connect(upto)
    }

    /// Resumes the session held by both from `upto`, what the peer
    /// received: whether the socket is live.
    fn connect(&mut self, upto: u64) -> Result<bool, String> {
        let Some(session) = &mut self.session else {
            return Ok(false);
        };
        match session.connect(upto) {
            Ok(()) => Ok(true),
            Err(e) if !e.is_fatal() => {
                self.drop_conn(&e.to_string());
                Ok(false)
            }
            Err(e) => {
                let reason = format!("session broken by the peer: {e}");
                self.lose_session(&reason);
                Err(reason)
            }
        }
    }

    /// A new session with the peer (the runtime hears of it when it goes
    /// live, see `announce`).
    fn create_session(&mut self, id: SessionId) {
        let Some(info) = &self.info else { return };
        let chunk = info
            .max_frame
            .saturating_sub(DATA_OVERHEAD)
            .clamp(1, MAX_CHUNK);
        self.session = Some(Session::new(id, chunk, self.inner.config().max_message));
        self.session_incarnation = info.incarnation;
        self.announced = false;
    }

    /// Tells the runtime of the session, once: `PeerUp` with its link.
    fn announce(&mut self) {
        if self.announced || self.session.is_none() {
            return;
        }
        let Some(info) = &self.info else { return };
        let (tx, rx) = mpsc::unbounded_channel();
        let link = LinkSender::tcp(tx, info.max_message);
        tracing::info!(peer = %self.peer, cluster = %info.cluster, "peer up");
        let up = TransportEvent::PeerUp {
            peer: self.peer.clone(),
            cluster: info.cluster.clone(),
            link,
        };
        self.announced = true;
        self.outgoing = Some(rx);
        self.inner.emit(up);
    }
}
