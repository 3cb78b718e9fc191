//! Framing (a u32 big-endian length, then the payload) with its limits, and
//! the frames a session sends once both sides are authenticated: `Data`
//! with a fixed binary header and its chunk's bytes raw, so big messages are
//! neither copied into nor out of an encoding; the others in CBOR. Once
//! both sides are authenticated the frames travel inside the socket's
//! encrypted stream (`record.rs`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::CodecError;

/// Bytes of a `Data` frame beyond its chunk (its header, with room to
/// spare); a chunk is at most the peer's `max_frame` minus this.
pub(crate) const DATA_OVERHEAD: usize = 64;

/// First byte of a session frame: the rest is a CBOR [`Control`].
const KIND_CONTROL: u8 = 0;
/// First byte of a session frame: `Data`, then seq (u64 big-endian), a
/// `more` byte (0 or 1), the piggybacked ack (u64 big-endian) and the
/// chunk's bytes, raw (no copy either way).
const KIND_DATA: u8 = 1;
/// Length of the header of a `Data` frame.
const DATA_HEADER: usize = 1 + 8 + 1 + 8;

/// A session frame (after authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wire {
    /// First frame of each side on a new socket: the session it holds with
    /// the other (if any; the leader always names one) and the last chunk
    /// it received in that session. The leader sends a second one, naming
    /// a new session, if the follower's lists the first as dropped.
    Resume {
        /// Id of the session the sender holds with the receiver.
        session: Option<[u8; 16]>,
        /// The last sessions with the receiver the sender reported lost.
        dropped: Vec<[u8; 16]>,
        /// Last sequence number the sender received in that session.
        upto: u64,
    },
    /// One chunk of a message, with the sender's cumulative ack.
    Data {
        /// Sequence number of the chunk (1, 2, ...).
        seq: u64,
        /// Whether more chunks of the same message follow.
        more: bool,
        /// Every chunk up to `ack` was received by the sender (piggybacked
        /// `Ack`).
        ack: u64,
        /// The chunk.
        bytes: Bytes,
    },
    /// Every chunk up to `upto` was received.
    Ack {
        /// Last sequence number received.
        upto: u64,
    },
    /// Are you there?
    Ping,
    /// Yes.
    Pong,
}

/// The session frames other than `Data`, as they are encoded (CBOR).
#[derive(Serialize, Deserialize)]
enum Control {
    Resume {
        session: Option<[u8; 16]>,
        dropped: Vec<[u8; 16]>,
        upto: u64,
    },
    Ack {
        upto: u64,
    },
    Ping,
    Pong,
}

/// Encodes a session frame: its header goes into `out` (cleared first);
/// the chunk of a `Data` frame is returned to be written after it as is.
pub(crate) fn encode_wire(wire: Wire, out: &mut Vec<u8>) -> Result<Option<Bytes>, CodecError> {
    out.clear();
    let control = match wire {
        Wire::Data {
            seq,
            more,
            ack,
            bytes,
        } => {
            out.push(KIND_DATA);
            out.extend_from_slice(&seq.to_be_bytes());
            out.push(u8::from(more));
            out.extend_from_slice(&ack.to_be_bytes());
            return Ok(Some(bytes));
        }
        Wire::Resume {
            session,
            dropped,
            upto,
        } => Control::Resume {
            session,
            dropped,
            upto,
        },
        Wire::Ack { upto } => Control::Ack { upto },
        Wire::Ping => Control::Ping,
        Wire::Pong => Control::Pong,
    };
    out.push(KIND_CONTROL);
    crate::encode_into(&control, out)?;
    Ok(None)
}

/// Decodes a session frame; the chunk of a `Data` frame shares `frame`'s
/// memory.
pub(crate) fn decode_wire(frame: &Bytes) -> Result<Wire, CodecError> {
    let bad = |reason: &str| CodecError::Decode {
        what: "session frame",
        reason: reason.to_owned(),
    };
    match frame.first() {
        Some(&KIND_DATA) => {
            if frame.len() < DATA_HEADER {
                return Err(bad("data header cut short"));
            }
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&frame[1..9]);
            let more = match frame[9] {
                0 => false,
                1 => true,
                _ => return Err(bad("bad `more` byte")),
            };
            let mut ack = [0u8; 8];
            ack.copy_from_slice(&frame[10..18]);
            Ok(Wire::Data {
                seq: u64::from_be_bytes(seq),
                more,
                ack: u64::from_be_bytes(ack),
                bytes: frame.slice(DATA_HEADER..),
            })
        }
        Some(&KIND_CONTROL) => Ok(match crate::decode::<Control>(&frame[1..])? {
            Control::Resume {
                session,
                dropped,
                upto,
            } => Wire::Resume {
                session,
                dropped,
                upto,
            },
            Control::Ack { upto } => Wire::Ack { upto },
            Control::Ping => Wire::Ping,
            Control::Pong => Wire::Pong,
        }),
        Some(_) => Err(bad("unknown kind")),
        None => Err(bad("empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(wire: Wire) -> (usize, Wire) {
        let mut head = Vec::new();
        let tail = encode_wire(wire, &mut head).expect("encodes");
        let mut frame = head;
        frame.extend_from_slice(tail.as_deref().unwrap_or_default());
        (
            frame.len(),
            decode_wire(&Bytes::from(frame)).expect("decodes"),
        )
    }

    #[test]
    fn frames_round_trip() {
        let data = Wire::Data {
            seq: u64::MAX,
            more: true,
            ack: 42,
            bytes: Bytes::from(vec![7u8; 100_000]),
        };
        let (len, back) = round_trip(data.clone());
        assert!(len <= 100_000 + DATA_OVERHEAD, "{len}");
        assert_eq!(back, data);
        for wire in [
            Wire::Resume {
                session: Some([3; 16]),
                dropped: vec![[4; 16]],
                upto: 9,
            },
            Wire::Ack { upto: 1 },
            Wire::Ping,
            Wire::Pong,
        ] {
            assert_eq!(round_trip(wire.clone()).1, wire);
        }
    }

    #[test]
    fn bad_frames_are_errors() {
        for bad in [
            &b""[..],
            b"\x01\x00",
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x01\x07\x00\x00\x00\x00\x00\x00\x00\x00",
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x01\x01\x00\x00",
            b"\x09",
            b"\x00\xff",
        ] {
            assert!(
                decode_wire(&Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
    }
}
