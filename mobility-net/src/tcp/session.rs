//! Reliable delivery over a succession of sockets: a pure state machine (no
//! I/O, no clock) that the peer task drives.
//!
//! Each message is cut into chunks of at most `chunk` bytes; every chunk
//! gets the next sequence number (1, 2, ...). The sender keeps every chunk
//! until the peer acknowledges it; the receiver delivers a message when its
//! last chunk arrives and ignores sequence numbers it already has. When a
//! socket is replaced, each side tells the other the last chunk it received
//! (`Resume`) and the sender starts again right after it: every message is
//! delivered exactly once, in order, whatever the sockets do.
//!
//! Acks ride on `Data` frames going the other way (each carries the last
//! chunk its sender received); the peer task sends a standalone `Ack` only
//! when nothing goes back for a short while or too many chunks wait for
//! one ([`Session::ack_backlog`]).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::frame::Wire;

/// Identifies a session. Only one side of a pair of nodes creates sessions
/// (see `peer/resume.rs`): its id starts with the creator's generation, a
/// counter that only grows while the creator runs, so of two sessions of
/// the same creator the later has the larger generation; the rest comes
/// from the handshake of the socket it was created on.
pub(crate) type SessionId = [u8; 16];

/// The id of a session created with `generation` on the socket whose
/// handshake gave `handshake`.
pub(crate) fn new_session_id(generation: u64, handshake: &SessionId) -> SessionId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&generation.to_be_bytes());
    id[8..].copy_from_slice(&handshake[..8]);
    id
}

/// The generation of the session `id` (see [`new_session_id`]).
pub(crate) fn generation(id: &SessionId) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&id[..8]);
    u64::from_be_bytes(bytes)
}

/// The peer broke the session protocol: the session cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SessionError {
    /// A chunk arrived out of order.
    #[error("chunk {got} arrived, {expected} expected")]
    Gap {
        /// The sequence number expected.
        expected: u64,
        /// The one that came.
        got: u64,
    },
    /// An ack covers chunks never sent.
    #[error("ack up to {upto} but only {sent} chunks were sent")]
    AckBeyond {
        /// The acked sequence number.
        upto: u64,
        /// The last sequence number assigned.
        sent: u64,
    },
    /// The peer resumes from beyond the last chunk sent.
    #[error("resume from {upto} but only {sent} chunks were sent")]
    BadResume {
        /// What the peer claims to have received.
        upto: u64,
        /// The last sequence number assigned.
        sent: u64,
    },
    /// The peer resumes from before what it acknowledged: a `Resume` it
    /// wrote on a socket it gave up before a later one went on with the
    /// session (what it received only grows), read late.
    #[error("stale resume from {upto}, {acked} already acknowledged")]
    StaleResume {
        /// What the peer claimed to have received.
        upto: u64,
        /// What it acknowledged since.
        acked: u64,
    },
    /// A message grew beyond `max_message` while being reassembled.
    #[error("message of more than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
}

impl SessionError {
    /// Whether the session cannot go on. A gap only means the socket lost
    /// or mangled frames, a stale resume that the socket was given up by
    /// the peer: dropping it and resuming on a new one is enough.
    pub(crate) fn is_fatal(&self) -> bool {
        !matches!(
            self,
            SessionError::Gap { .. } | SessionError::StaleResume { .. }
        )
    }
}

#[derive(Debug)]
struct Chunk {
    seq: u64,
    more: bool,
    bytes: Bytes,
}

/// One side of a session.
#[derive(Debug)]
pub(crate) struct Session {
    id: SessionId,
    chunk: usize,
    max_message: usize,
    /// Sequence number of the next chunk queued.
    next_seq: u64,
    /// Chunks `acked + 1 ..= next_seq - 1`, oldest first.
    unacked: VecDeque<Chunk>,
    /// Last chunk the peer acknowledged.
    acked: u64,
    /// Next chunk to put on the current socket; `None` without a socket.
    next_send: Option<u64>,
    /// Last chunk received (all before it too).
    received: u64,
    /// Last `received` told to the peer.
    ack_sent: u64,
    /// Chunks of the message being reassembled.
    partial: Vec<Bytes>,
    partial_len: usize,
}

impl Session {
    /// A new session: chunks of at most `chunk` bytes go out, messages of at
    /// most `max_message` bytes come in.
    pub(crate) fn new(id: SessionId, chunk: usize, max_message: usize) -> Self {
        Session {
            id,
            chunk: chunk.max(1),
            max_message,
            next_seq: 1,
            unacked: VecDeque::new(),
            acked: 0,
            next_send: None,
            received: 0,
            ack_sent: 0,
            partial: Vec::new(),
            partial_len: 0,
        }
    }

    /// The session's id.
    pub(crate) fn id(&self) -> SessionId {
        self.id
    }

    /// Whether a socket is attached and resumed.
    pub(crate) fn is_live(&self) -> bool {
        self.next_send.is_some()
    }

    /// Chunks sent (or queued) and not yet acknowledged.
    #[cfg(test)]
    pub(crate) fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// Queues a message (cut into chunks); it goes out by `poll_transmit`.
    pub(crate) fn send(&mut self, msg: Bytes) {
        let mut rest = msg;
        loop {
            let bytes = rest.split_to(rest.len().min(self.chunk));
            let more = !rest.is_empty();
            self.unacked.push_back(Chunk {
                seq: self.next_seq,
                more,
                bytes,
            });
            self.next_seq += 1;
            if !more {
                break;
            }
        }
    }

    /// The `Resume` to send on a new socket; the peer learns `received`.
    pub(crate) fn resume_frame(&mut self, dropped: Vec<SessionId>) -> Wire {
        self.ack_sent = self.received;
        Wire::Resume {
            session: Some(self.id),
            dropped,
            upto: self.received,
        }
    }

    /// A new socket is resumed: the peer received every chunk up to
    /// `peer_upto`; send from the next one.
    pub(crate) fn connect(&mut self, peer_upto: u64) -> Result<(), SessionError> {
        let sent = self.next_seq - 1;
        if peer_upto > sent {
            return Err(SessionError::BadResume {
                upto: peer_upto,
                sent,
            });
        }
        if peer_upto < self.acked {
            return Err(SessionError::StaleResume {
                upto: peer_upto,
                acked: self.acked,
            });
        }
        self.release(peer_upto);
        self.next_send = Some(peer_upto + 1);
        Ok(())
    }

    /// A new socket is resumed by a peer that did not hold this session
    /// when it wrote its `Resume` (it takes the session up from ours): send
    /// every chunk not acknowledged, from the first.
    pub(crate) fn connect_unacked(&mut self) {
        self.next_send = Some(self.acked + 1);
    }

    /// The socket is gone: nothing goes out until the next `connect`.
    pub(crate) fn disconnect(&mut self) {
        self.next_send = None;
    }

    /// The next chunk to write on the socket, if any.
    pub(crate) fn poll_transmit(&mut self) -> Option<Wire> {
        let next = self.next_send?.max(self.acked + 1);
        let index = usize::try_from(next - self.acked - 1).ok()?;
        let chunk = self.unacked.get(index)?;
        self.next_send = Some(next + 1);
        self.ack_sent = self.received;
        Some(Wire::Data {
            seq: chunk.seq,
            more: chunk.more,
            ack: self.received,
            bytes: chunk.bytes.clone(),
        })
    }

    /// How many chunks arrived since the peer was last told (by a `Resume`,
    /// an `Ack` or the ack piggybacked on a `Data` frame).
    pub(crate) fn ack_backlog(&self) -> u64 {
        self.received - self.ack_sent
    }

    /// An ack to send, if chunks arrived since the last one the peer knows of.
    pub(crate) fn take_ack(&mut self) -> Option<Wire> {
        if self.is_live() && self.received > self.ack_sent {
            self.ack_sent = self.received;
            Some(Wire::Ack {
                upto: self.received,
            })
        } else {
            None
        }
    }

    /// The peer acknowledged every chunk up to `upto` (an `Ack`, or the ack
    /// of a `Data` frame: an old one, replayed by a new socket, is below
    /// what was already acknowledged and changes nothing).
    pub(crate) fn on_ack(&mut self, upto: u64) -> Result<(), SessionError> {
        let sent = self.next_seq - 1;
        if upto > sent {
            return Err(SessionError::AckBeyond { upto, sent });
        }
        self.release(upto);
        Ok(())
    }

    fn release(&mut self, upto: u64) {
        while self.acked < upto {
            self.unacked.pop_front();
            self.acked += 1;
        }
    }

    /// A chunk arrived: returns the message it completes, if any. A chunk
    /// already received is ignored.
    pub(crate) fn on_data(
        &mut self,
        seq: u64,
        more: bool,
        bytes: Bytes,
    ) -> Result<Option<Bytes>, SessionError> {
        if seq <= self.received {
            return Ok(None);
        }
        if seq != self.received + 1 {
            return Err(SessionError::Gap {
                expected: self.received + 1,
                got: seq,
            });
        }
        if self.partial_len.saturating_add(bytes.len()) > self.max_message {
            return Err(SessionError::TooLarge {
                max: self.max_message,
            });
        }
        self.received = seq;
        if more {
            self.partial_len += bytes.len();
            self.partial.push(bytes);
            return Ok(None);
        }
        if self.partial.is_empty() {
            return Ok(Some(bytes));
        }
        let mut whole = BytesMut::with_capacity(self.partial_len + bytes.len());
        for part in self.partial.drain(..) {
            whole.extend_from_slice(&part);
        }
        whole.extend_from_slice(&bytes);
        self.partial_len = 0;
        Ok(Some(whole.freeze()))
    }
}
