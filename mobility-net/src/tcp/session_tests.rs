//! Property test of the session state machine: random interleavings of
//! sends, deliveries, acks, lost frames, duplicated frames, cut sockets and
//! reconnects; every message must arrive exactly once, in order. Acks go
//! both standalone and piggybacked on `Data` frames (lost, doubled and
//! replayed with them).

use std::collections::VecDeque;

use bytes::Bytes;
use proptest::prelude::*;

use super::frame::Wire;
use super::session::{generation, new_session_id, Session};

#[derive(Debug, Clone, Copy)]
enum Op {
    /// A side queues a message of this many bytes.
    Send(bool, usize),
    /// Up to this many frames in flight towards a side are delivered.
    Deliver(bool, usize),
    /// A side sends its ack.
    Ack(bool),
    /// The frame at this index (modulo) in flight towards a side is lost.
    Lose(bool, usize),
    /// The frame at this index (modulo) in flight towards a side is doubled.
    Duplicate(bool, usize),
    /// The socket is cut: everything in flight is lost.
    Cut,
    /// A new socket: both sides resume.
    Reconnect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0usize..40).prop_map(|(s, n)| Op::Send(s, n)),
        4 => (any::<bool>(), 1usize..8).prop_map(|(s, n)| Op::Deliver(s, n)),
        2 => any::<bool>().prop_map(Op::Ack),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(s, i)| Op::Lose(s, i)),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(s, i)| Op::Duplicate(s, i)),
        1 => Just(Op::Cut),
        2 => Just(Op::Reconnect),
    ]
}

/// One side: its session, what it sent, what it got, what flies to it.
struct Side {
    session: Session,
    sent: Vec<Bytes>,
    got: Vec<Bytes>,
    inbox: VecDeque<Wire>,
}

struct World {
    sides: [Side; 2],
    connected: bool,
    counter: u32,
}

impl World {
    fn new(chunk: usize) -> Self {
        let side = || Side {
            session: Session::new([1; 16], chunk, 1 << 20),
            sent: Vec::new(),
            got: Vec::new(),
            inbox: VecDeque::new(),
        };
        let mut world = World {
            sides: [side(), side()],
            connected: false,
            counter: 0,
        };
        world.reconnect();
        world
    }

    fn pump(&mut self, from: usize) {
        if !self.connected {
            return;
        }
        while let Some(wire) = self.sides[from].session.poll_transmit() {
            self.sides[1 - from].inbox.push_back(wire);
        }
    }

    fn cut(&mut self) {
        self.connected = false;
        for side in &mut self.sides {
            side.inbox.clear();
            side.session.disconnect();
        }
    }

    fn reconnect(&mut self) {
        self.cut();
        let upto = |side: &mut Side| match side.session.resume_frame(Vec::new()) {
            Wire::Resume { upto, .. } => upto,
            other => panic!("not a resume: {other:?}"),
        };
        let (a, b) = (upto(&mut self.sides[0]), upto(&mut self.sides[1]));
        self.sides[0].session.connect(b).expect("valid resume");
        self.sides[1].session.connect(a).expect("valid resume");
        self.connected = true;
        self.pump(0);
        self.pump(1);
    }

    fn deliver(&mut self, to: usize, n: usize) {
        for _ in 0..n {
            let Some(wire) = self.sides[to].inbox.pop_front() else {
                return;
            };
            let side = &mut self.sides[to];
            match wire {
                Wire::Data {
                    seq,
                    more,
                    ack,
                    bytes,
                } => {
                    // The peer task applies the piggybacked ack first.
                    side.session.on_ack(ack).expect("valid piggybacked ack");
                    match side.session.on_data(seq, more, bytes) {
                        Ok(Some(msg)) => side.got.push(msg),
                        Ok(None) => {}
                        Err(e) => {
                            assert!(!e.is_fatal(), "{e}");
                            // The shell drops the socket.
                            self.cut();
                            return;
                        }
                    }
                }
                Wire::Ack { upto } => side.session.on_ack(upto).expect("valid ack"),
                other => panic!("unexpected {other:?}"),
            }
            self.check();
        }
        self.pump(1 - to);
    }

    fn ack(&mut self, from: usize) {
        if let Some(ack) = self.sides[from].session.take_ack() {
            if self.connected {
                self.sides[1 - from].inbox.push_back(ack);
            }
        }
    }

    fn send(&mut self, from: usize, len: usize) {
        self.counter += 1;
        let mut msg = self.counter.to_be_bytes().to_vec();
        msg.resize(4 + len, self.counter as u8);
        let msg = Bytes::from(msg);
        self.sides[from].sent.push(msg.clone());
        self.sides[from].session.send(msg);
        self.pump(from);
    }

    /// What arrived is always a prefix of what was sent.
    fn check(&self) {
        for (me, other) in [(0, 1), (1, 0)] {
            let got = &self.sides[me].got;
            let sent = &self.sides[other].sent;
            assert!(got.len() <= sent.len(), "more arrived than sent");
            assert_eq!(got[..], sent[..got.len()], "duplicate, loss or reorder");
        }
    }

    fn apply(&mut self, op: Op) {
        let side = |s: bool| usize::from(s);
        match op {
            Op::Send(s, n) => self.send(side(s), n),
            Op::Deliver(s, n) => self.deliver(side(s), n),
            Op::Ack(s) => self.ack(side(s)),
            Op::Lose(s, i) => {
                let inbox = &mut self.sides[side(s)].inbox;
                if !inbox.is_empty() {
                    let at = i % inbox.len();
                    inbox.remove(at);
                }
            }
            Op::Duplicate(s, i) => {
                let inbox = &mut self.sides[side(s)].inbox;
                if !inbox.is_empty() {
                    let at = i % inbox.len();
                    if let Some(copy) = inbox.get(at).cloned() {
                        inbox.insert(at + 1, copy);
                    }
                }
            }
            Op::Cut => self.cut(),
            Op::Reconnect => self.reconnect(),
        }
    }

    /// A last socket that stays up until everything is delivered and acked.
    fn settle(&mut self) {
        self.reconnect();
        for _ in 0..10_000 {
            if self.sides.iter().all(|s| s.inbox.is_empty()) {
                self.ack(0);
                self.ack(1);
                if self.sides.iter().all(|s| s.inbox.is_empty()) {
                    break;
                }
            }
            self.deliver(0, usize::MAX);
            self.deliver(1, usize::MAX);
        }
        assert!(self.connected, "a healthy socket needs no cut");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn exactly_once_in_order(chunk in 1usize..12, ops in proptest::collection::vec(op(), 0..200)) {
        let mut world = World::new(chunk);
        for op in ops {
            world.apply(op);
        }
        world.settle();
        for (me, other) in [(0, 1), (1, 0)] {
            prop_assert_eq!(&world.sides[me].got, &world.sides[other].sent);
            prop_assert_eq!(world.sides[other].session.unacked(), 0);
        }
    }
}

#[test]
fn a_gap_is_refused_and_resuming_fills_it() {
    let mut a = Session::new([0; 16], 4, 100);
    let mut b = Session::new([0; 16], 4, 100);
    a.connect(0).expect("fresh");
    b.connect(0).expect("fresh");
    a.send(Bytes::from_static(b"0123456789"));
    let frames: Vec<Wire> = std::iter::from_fn(|| a.poll_transmit()).collect();
    assert_eq!(frames.len(), 3, "10 bytes in chunks of 4");
    let Wire::Data {
        seq, more, bytes, ..
    } = frames[1].clone()
    else {
        panic!("data")
    };
    assert!(
        b.on_data(seq, more, bytes).is_err(),
        "chunk 2 before chunk 1"
    );
}

#[test]
fn an_oversized_message_is_fatal() {
    let mut a = Session::new([0; 16], 4, 1 << 20);
    let mut b = Session::new([0; 16], 4, 6);
    a.connect(0).expect("fresh");
    b.connect(0).expect("fresh");
    a.send(Bytes::from_static(b"0123456789"));
    let mut result = Ok(None);
    while let Some(Wire::Data {
        seq, more, bytes, ..
    }) = a.poll_transmit()
    {
        result = b.on_data(seq, more, bytes);
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(e) if e.is_fatal()));
}

#[test]
fn a_resume_outside_what_was_sent_is_refused() {
    let mut a = Session::new([0; 16], 4, 100);
    a.send(Bytes::from_static(b"abc"));
    assert!(
        matches!(a.connect(2), Err(e) if e.is_fatal()),
        "only chunk 1 exists"
    );
    assert!(a.connect(1).is_ok());
    assert!(a.on_ack(5).is_err(), "ack beyond");
    a.disconnect();
    // Behind what was acked: a `Resume` written before a later socket went
    // on with the session, read late; the socket goes, not the session.
    assert!(
        matches!(a.connect(0), Err(e) if !e.is_fatal()),
        "behind what was acked"
    );
    assert!(a.connect(1).is_ok());
}

#[test]
fn a_peer_taking_the_session_up_gets_every_unacked_chunk() {
    let mut a = Session::new([0; 16], 4, 100);
    let mut b = Session::new([0; 16], 4, 100);
    a.send(Bytes::from_static(b"one"));
    a.send(Bytes::from_static(b"two"));
    a.connect_unacked();
    b.connect(0).expect("fresh");
    assert_eq!(transfer(&mut a, &mut b), vec!["one", "two"]);
    // Sent on a socket nobody read: everything not acked goes again.
    a.disconnect();
    a.connect_unacked();
    let again = transfer(&mut a, &mut b);
    assert!(again.is_empty(), "duplicates ignored: {again:?}");
    a.send(Bytes::from_static(b"three"));
    assert_eq!(transfer(&mut a, &mut b), vec!["three"]);
}

#[test]
fn session_ids_carry_their_generation() {
    let handshake = [7u8; 16];
    let first = new_session_id(1, &handshake);
    let later = new_session_id(1 << 40, &[9u8; 16]);
    assert_eq!(generation(&first), 1);
    assert_eq!(generation(&later), 1 << 40);
    assert_ne!(first, new_session_id(2, &handshake));
    assert_eq!(&first[8..], &handshake[..8]);
}

/// Delivers every frame `from` has to send to `to`, applying piggybacked
/// acks; returns the messages completed.
fn transfer(from: &mut Session, to: &mut Session) -> Vec<Bytes> {
    let mut got = Vec::new();
    while let Some(wire) = from.poll_transmit() {
        let Wire::Data {
            seq,
            more,
            ack,
            bytes,
        } = wire
        else {
            panic!("data expected")
        };
        to.on_ack(ack).expect("valid ack");
        if let Some(msg) = to.on_data(seq, more, bytes).expect("in order") {
            got.push(msg);
        }
    }
    got
}

#[test]
fn request_reply_traffic_needs_no_standalone_ack() {
    let mut a = Session::new([0; 16], 64, 1 << 20);
    let mut b = Session::new([0; 16], 64, 1 << 20);
    a.connect(0).expect("fresh");
    b.connect(0).expect("fresh");
    for i in 0..100u32 {
        let request = Bytes::from(i.to_be_bytes().to_vec());
        a.send(request.clone());
        assert_eq!(transfer(&mut a, &mut b), vec![request]);
        assert_eq!(b.ack_backlog(), 1);
        let reply = Bytes::from((i + 1).to_be_bytes().to_vec());
        b.send(reply.clone());
        assert_eq!(transfer(&mut b, &mut a), vec![reply]);
        // The reply carried b's ack: a holds nothing, b only its reply.
        assert_eq!(b.ack_backlog(), 0);
        assert_eq!(a.unacked(), 0);
        assert_eq!(b.unacked(), 1);
        assert_eq!(a.ack_backlog(), 1);
    }
    assert!(
        a.take_ack().is_some(),
        "a standalone ack settles the last reply"
    );
    assert!(a.take_ack().is_none());
}

#[test]
fn a_stale_piggybacked_ack_changes_nothing() {
    let mut a = Session::new([0; 16], 4, 100);
    let mut b = Session::new([0; 16], 4, 100);
    a.connect(0).expect("fresh");
    b.connect(0).expect("fresh");
    a.send(Bytes::from_static(b"one"));
    a.send(Bytes::from_static(b"two"));
    transfer(&mut a, &mut b);
    b.send(Bytes::from_static(b"r1"));
    let first = b.poll_transmit().expect("data");
    b.send(Bytes::from_static(b"r2"));
    let second = b.poll_transmit().expect("data");
    for wire in [second, first] {
        let Wire::Data { ack, .. } = wire else {
            panic!("data")
        };
        a.on_ack(ack).expect("an old ack is fine");
    }
    assert_eq!(a.unacked(), 0);
}
