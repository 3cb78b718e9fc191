//! The compact form of the two frames on every remote call's path: a handler
//! call on its way to an actor (`Deliver` of a `WireBody::User`) and a
//! successful `Reply`.
//!
//! Each is one flat CBOR array of plain items (no field names, no nested
//! maps), written and read here by hand. Through serde, ciborium spends
//! more on these two headers than on the rest of a call's own work (a
//! `Deliver` took about 1.3 µs to decode); flat and by hand, a fraction of
//! that. Every other frame, and these two in their rare shapes (a system
//! message, an error reply), keep the serde form. The first byte tells the
//! two forms apart: a serde `PeerMsg` is always a map, a compact one an
//! array.
//!
//! - Deliver: `[0, actor_high, actor_low, type_tag, origin_node,
//!   origin_stream, seq, body, reply or null, hops]`
//! - Reply: `[1, request, value]`
//!
//! Only definite lengths and the shortest-or-longer integer heads of CBOR
//! are used; anything else is refused with the reason.

use mobility_net::{CodecError, NodeId};

use super::{Origin, PeerMsg, WireBody, WireEnvelope};
use crate::proto::id::ActorId;

const DELIVER: u64 = 0;
const REPLY: u64 = 1;
const DELIVER_ITEMS: u64 = 10;
const REPLY_ITEMS: u64 = 3;

const MAJOR_UINT: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const NULL: u8 = 0xf6;

/// Whether `header` is in the compact form (a CBOR array).
pub(super) fn is_compact(header: &[u8]) -> bool {
    header.first().is_some_and(|b| b >> 5 == MAJOR_ARRAY)
}

/// Writes `msg` in the compact form at the end of `out`, if it has one
/// (`false`: nothing written; use the serde form).
pub(super) fn encode(msg: &PeerMsg, out: &mut Vec<u8>) -> bool {
    match msg {
        PeerMsg::Deliver {
            actor,
            type_tag,
            envelope:
                WireEnvelope {
                    origin,
                    seq,
                    body: WireBody::User(body),
                    reply,
                    hops,
                },
        } => {
            out.reserve(48 + type_tag.len() + origin.node.as_str().len() + body.len());
            head(out, MAJOR_ARRAY, DELIVER_ITEMS);
            head(out, MAJOR_UINT, DELIVER);
            let actor = actor.as_u128();
            head(out, MAJOR_UINT, (actor >> 64) as u64);
            head(out, MAJOR_UINT, actor as u64);
            blob(out, MAJOR_TEXT, type_tag.as_bytes());
            blob(out, MAJOR_TEXT, origin.node.as_str().as_bytes());
            head(out, MAJOR_UINT, origin.stream);
            head(out, MAJOR_UINT, *seq);
            blob(out, MAJOR_BYTES, body);
            match reply {
                Some(request) => head(out, MAJOR_UINT, *request),
                None => out.push(NULL),
            }
            head(out, MAJOR_UINT, u64::from(*hops));
            true
        }
        PeerMsg::Reply {
            request,
            result: Ok(value),
        } => {
            out.reserve(24 + value.len());
            head(out, MAJOR_ARRAY, REPLY_ITEMS);
            head(out, MAJOR_UINT, REPLY);
            head(out, MAJOR_UINT, *request);
            blob(out, MAJOR_BYTES, value);
            true
        }
        _ => false,
    }
}

/// Reads a compact header (one that `is_compact`).
pub(super) fn decode(header: &[u8]) -> Result<PeerMsg, CodecError> {
    let mut reader = Reader { rest: header };
    let msg = reader.message().map_err(|reason| CodecError::Decode {
        what: "compact frame header",
        reason,
    })?;
    if !reader.rest.is_empty() {
        return Err(CodecError::Decode {
            what: "compact frame header",
            reason: format!("{} trailing bytes", reader.rest.len()),
        });
    }
    Ok(msg)
}

/// A CBOR head: major type and argument, in the shortest form.
fn head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    if value < 24 {
        out.push(major | value as u8);
    } else if let Ok(v) = u8::try_from(value) {
        out.extend_from_slice(&[major | 24, v]);
    } else if let Ok(v) = u16::try_from(value) {
        out.push(major | 25);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(value) {
        out.push(major | 26);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// A byte or text string: its head, then its bytes.
fn blob(out: &mut Vec<u8>, major: u8, bytes: &[u8]) {
    head(out, major, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn message(&mut self) -> Result<PeerMsg, String> {
        let items = self.expect(MAJOR_ARRAY, "an array")?;
        let kind = self.uint("the kind")?;
        match (kind, items) {
            (DELIVER, DELIVER_ITEMS) => {
                let high = self.uint("the actor")?;
                let low = self.uint("the actor")?;
                let actor = ActorId::from_u128((u128::from(high) << 64) | u128::from(low));
                let type_tag = self.text("the type tag")?.to_owned();
                let node = self.text("the origin node")?;
                let node = NodeId::new(node).map_err(|e| e.to_string())?;
                let stream = self.uint("the origin stream")?;
                let seq = self.uint("the sequence number")?;
                let body = self.bytes("the body")?.to_vec();
                let reply = if self.rest.first() == Some(&NULL) {
                    self.rest = &self.rest[1..];
                    None
                } else {
                    Some(self.uint("the reply")?)
                };
                let hops = self.uint("the hop count")?;
                let hops = u8::try_from(hops).map_err(|_| format!("hop count {hops} too big"))?;
                Ok(PeerMsg::Deliver {
                    actor,
                    type_tag,
                    envelope: WireEnvelope {
                        origin: Origin { node, stream },
                        seq,
                        body: WireBody::User(body),
                        reply,
                        hops,
                    },
                })
            }
            (REPLY, REPLY_ITEMS) => {
                let request = self.uint("the request")?;
                let value = self.bytes("the value")?.to_vec();
                Ok(PeerMsg::Reply {
                    request,
                    result: Ok(serde_bytes::ByteBuf::from(value)),
                })
            }
            (DELIVER | REPLY, _) => Err(format!("kind {kind} with {items} items")),
            _ => Err(format!("unknown kind {kind}")),
        }
    }

    /// The next head, which must be of `major` type: its argument.
    fn expect(&mut self, major: u8, what: &str) -> Result<u64, String> {
        let (&first, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| format!("ends before {what}"))?;
        if first >> 5 != major {
            return Err(format!("expected {what}, found byte {first:#04x}"));
        }
        let width = match first & 0x1f {
            info @ 0..=23 => {
                self.rest = rest;
                return Ok(u64::from(info));
            }
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            info => return Err(format!("{what}: unsupported length form {info}")),
        };
        let (arg, rest) = rest
            .split_at_checked(width)
            .ok_or_else(|| format!("ends inside {what}"))?;
        self.rest = rest;
        Ok(arg.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn uint(&mut self, what: &str) -> Result<u64, String> {
        self.expect(MAJOR_UINT, what)
    }

    fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        self.blob(MAJOR_BYTES, what)
    }

    fn text(&mut self, what: &str) -> Result<&'a str, String> {
        let bytes = self.blob(MAJOR_TEXT, what)?;
        std::str::from_utf8(bytes).map_err(|_| format!("{what} is not UTF-8"))
    }

    fn blob(&mut self, major: u8, what: &str) -> Result<&'a [u8], String> {
        let len = self.expect(major, what)?;
        let len = usize::try_from(len).map_err(|_| format!("{what} too long"))?;
        let (bytes, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or_else(|| format!("ends inside {what}"))?;
        self.rest = rest;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::error::Error;
    use proptest::prelude::*;

    fn deliver(
        actor: u128,
        node: &str,
        stream: u64,
        seq: u64,
        body: Vec<u8>,
        reply: Option<u64>,
        hops: u8,
    ) -> PeerMsg {
        PeerMsg::Deliver {
            actor: ActorId::from_u128(actor),
            type_tag: "tests::Counter".to_owned(),
            envelope: WireEnvelope {
                origin: Origin {
                    node: NodeId::new(node).expect("node id"),
                    stream,
                },
                seq,
                body: WireBody::User(body),
                reply,
                hops,
            },
        }
    }

    fn round_trip(msg: &PeerMsg) -> PeerMsg {
        let mut out = Vec::new();
        assert!(encode(msg, &mut out), "{msg:?} has a compact form");
        assert!(is_compact(&out));
        decode(&out).expect("decodes")
    }

    fn same(a: &PeerMsg, b: &PeerMsg) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    proptest! {
        #[test]
        fn deliveries_round_trip(
            actor in any::<u128>(),
            node in "[a-z0-9._-]{1,64}",
            stream in any::<u64>(),
            seq in any::<u64>(),
            body in proptest::collection::vec(any::<u8>(), 0..600),
            reply in proptest::option::of(any::<u64>()),
            hops in any::<u8>(),
        ) {
            let msg = deliver(actor, &node, stream, seq, body, reply, hops);
            prop_assert!(same(&round_trip(&msg), &msg));
        }

        #[test]
        fn replies_round_trip(request in any::<u64>(), value in proptest::collection::vec(any::<u8>(), 0..70_000)) {
            let msg = PeerMsg::Reply { request, result: Ok(serde_bytes::ByteBuf::from(value)) };
            prop_assert!(same(&round_trip(&msg), &msg));
        }

        /// Whatever the bytes, decoding answers (an error or a message)
        /// and never panics; a cut header is always refused.
        #[test]
        fn garbage_and_truncation_are_refused_without_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            seq in any::<u64>(),
            cut in 0usize..40,
        ) {
            let _ = decode(&bytes);
            let mut out = Vec::new();
            encode(&deliver(7, "node-a", 1, seq, vec![1, 2, 3], Some(9), 0), &mut out);
            let cut = cut.min(out.len() - 1);
            prop_assert!(decode(&out[..cut]).is_err());
        }
    }

    #[test]
    fn other_frames_keep_the_serde_form_which_is_never_an_array() {
        let actor = ActorId::fresh();
        let others = [
            PeerMsg::Reply {
                request: 3,
                result: Err(Error::Detached),
            },
            PeerMsg::Commit { actor, epoch: 2 },
            PeerMsg::Deliver {
                actor,
                type_tag: "t".into(),
                envelope: WireEnvelope {
                    origin: Origin {
                        node: NodeId::new("n").expect("node id"),
                        stream: 1,
                    },
                    seq: 0,
                    body: WireBody::Stop,
                    reply: None,
                    hops: 0,
                },
            },
        ];
        for msg in &others {
            let mut out = Vec::new();
            assert!(!encode(msg, &mut out), "{msg:?}");
            assert!(out.is_empty());
            let serde_form = mobility_net::encode(msg).expect("encodes");
            assert!(!is_compact(&serde_form), "{msg:?}");
        }
    }

    #[test]
    fn bad_headers_say_what_is_wrong() {
        let reason = |bytes: &[u8]| match decode(bytes) {
            Err(CodecError::Decode { reason, .. }) => reason,
            other => panic!("{bytes:?} gave {other:?}"),
        };
        assert!(reason(&[0x83, 0x07, 0x01, 0x40]).contains("unknown kind 7"));
        assert!(reason(&[0x82, 0x01, 0x01]).contains("kind 1 with 2 items"));
        assert!(reason(&[0x83, 0x01, 0x01, 0x41]).contains("ends inside the value"));
        assert!(reason(&[0x83, 0x01, 0x01, 0x40, 0x00]).contains("1 trailing bytes"));
        assert!(reason(&[0x83, 0x01, 0x01, 0x5f]).contains("unsupported length form"));
        let mut out = Vec::new();
        encode(&deliver(1, "n", 1, 1, vec![], None, 0), &mut out);
        // The origin node's text replaced by one that is no node id.
        let at = out
            .windows(2)
            .position(|w| w == [0x61, b'n'])
            .expect("node");
        out[at + 1] = b'/';
        assert!(reason(&out).contains("invalid node id"));
    }
}
