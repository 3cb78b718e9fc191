//! The sealed datagram: its key, its layout, sealing and opening.
//!
//! ```text
//! [MAGIC][VERSION][nonce: 24 bytes][ciphertext of (header, payload)][Poly1305 tag: 16 bytes]
//! ```
//!
//! XChaCha20-Poly1305 (the `chacha20poly1305` crate) under a key derived
//! from the cluster secret and the cluster id; the magic and version bytes
//! are its associated data. The nonce is a random 16-byte salt drawn once per
//! socket followed by the datagram counter (so it never repeats within a
//! socket, and two sockets share a salt with probability 2^-128). Only the
//! magic, the version and the nonce are in clear.
//!
//! The encrypted header (71 bytes, all integers big-endian):
//!
//! ```text
//! kind         u8     0: gossip (a chitchat message follows), 1: probe (nothing follows)
//! sender       addr   the sender's gossip address as it advertises it
//! via          addr   gossip: the address the sender sent this datagram to;
//!                     probe: the `via` of the datagram that caused the probe
//! incarnation  u64    the sender's incarnation (its start generation)
//! counter      u64    the sender's datagram counter (never repeats in an incarnation)
//! token        u64    the sender's current token (random, see the module doc)
//! echo         u64    the receiver's token as the sender last learned it (0: unknown)
//! ```
//!
//! An `addr` is 19 bytes: family (4 or 6), 16 bytes of IP (an IPv4 address in
//! the first 4, the rest zero), port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};

use crate::Secret;

/// First byte of every gossip datagram.
pub(super) const MAGIC: u8 = 0x6d; // 'm'
/// Second byte: the version of this datagram format (and of its key
/// derivation). Version 1 was a keyed BLAKE3 tag over a clear payload.
pub(super) const VERSION: u8 = 2;
/// The context string of the key derivation.
const KEY_CONTEXT: &str = "mobility gossip v2 xchacha20poly1305";
/// Bytes in clear before the ciphertext: magic, version and nonce.
const CLEAR_LEN: usize = 2 + NONCE_LEN;
/// XChaCha20's extended nonce.
pub(crate) const NONCE_LEN: usize = 24;
/// The random part of a nonce; the datagram counter follows.
pub(super) const SALT_LEN: usize = 16;
/// Poly1305's tag.
pub(super) const TAG_LEN: usize = 16;
/// An encoded socket address.
const ADDR_LEN: usize = 1 + 16 + 2;
/// The encrypted header.
pub(super) const HEADER_LEN: usize = 1 + 2 * ADDR_LEN + 4 * 8;
/// Bytes a sealed datagram adds to chitchat's payload.
pub(super) const OVERHEAD: usize = CLEAR_LEN + HEADER_LEN + TAG_LEN;
/// The largest UDP payload over IPv4 (chitchat's `MAX_UDP_DATAGRAM_PAYLOAD_SIZE`).
pub(crate) const MAX_DATAGRAM: usize = 65_507;
/// The largest chitchat payload that still fits in one sealed datagram.
pub(super) const MAX_PAYLOAD: usize = MAX_DATAGRAM - OVERHEAD;

/// The key that seals gossip datagrams of one cluster.
#[derive(Clone)]
pub(crate) struct GossipKey(XChaCha20Poly1305);

impl GossipKey {
    /// Derives the key from the cluster secret and the cluster id. The
    /// secret's length is part of the input, so that no two (secret, cluster)
    /// pairs give the same key material by concatenation.
    pub(crate) fn derive(secret: &Secret, cluster: &str) -> Self {
        let secret = secret.expose();
        let mut material = Vec::with_capacity(8 + secret.len() + cluster.len());
        material.extend_from_slice(&(secret.len() as u64).to_le_bytes());
        material.extend_from_slice(secret);
        material.extend_from_slice(cluster.as_bytes());
        let key = blake3::derive_key(KEY_CONTEXT, &material);
        GossipKey(XChaCha20Poly1305::new(&key.into()))
    }
}

impl std::fmt::Debug for GossipKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GossipKey(<redacted>)")
    }
}

/// What a datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A chitchat message.
    Gossip,
    /// "Here is my token": the answer to a datagram that did not echo it.
    Probe,
}

/// The encrypted header of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    pub(crate) sender: SocketAddr,
    pub(crate) via: SocketAddr,
    pub(crate) incarnation: u64,
    pub(crate) counter: u64,
    pub(crate) token: u64,
    pub(crate) echo: u64,
}

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Shorter than the clear part, a header and a tag.
    Truncated,
    /// Not our magic byte or not our version.
    Version,
    /// The AEAD check failed: wrong secret, wrong cluster or altered bytes.
    Tag,
    /// Authenticated, but the header is not one we write.
    Malformed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Truncated => "truncated datagram",
            Refusal::Version => "unknown magic or version",
            Refusal::Tag => "authentication failed",
            Refusal::Malformed => "malformed header",
        })
    }
}

fn put_addr(addr: SocketAddr, out: &mut Vec<u8>) {
    let mut ip = [0u8; 16];
    match addr.ip() {
        IpAddr::V4(v4) => {
            out.push(4);
            ip[..4].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            ip = v6.octets();
        }
    }
    out.extend_from_slice(&ip);
    out.extend_from_slice(&addr.port().to_be_bytes());
}

fn get_addr(bytes: &[u8; ADDR_LEN]) -> Option<SocketAddr> {
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&bytes[1..17]);
    let port = u16::from_be_bytes([bytes[17], bytes[18]]);
    let ip = match bytes[0] {
        4 => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
        6 => IpAddr::V6(Ipv6Addr::from(ip)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Reads big-endian u64s and addresses off a byte slice whose length was
/// checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.0[..N]);
        self.0 = &self.0[N..];
        out
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take())
    }
}

impl Header {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(match self.kind {
            Kind::Gossip => 0,
            Kind::Probe => 1,
        });
        put_addr(self.sender, out);
        put_addr(self.via, out);
        for value in [self.incarnation, self.counter, self.token, self.echo] {
            out.extend_from_slice(&value.to_be_bytes());
        }
    }

    /// `bytes` is at least [`HEADER_LEN`] long.
    fn read(bytes: &[u8]) -> Option<Header> {
        let mut reader = Reader(&bytes[..HEADER_LEN]);
        let kind = match reader.take::<1>()[0] {
            0 => Kind::Gossip,
            1 => Kind::Probe,
            _ => return None,
        };
        let sender = get_addr(&reader.take())?;
        let via = get_addr(&reader.take())?;
        Some(Header {
            kind,
            sender,
            via,
            incarnation: reader.u64(),
            counter: reader.u64(),
            token: reader.u64(),
            echo: reader.u64(),
        })
    }
}

/// The nonce of the datagram numbered `counter` of a socket salted `salt`.
pub(super) fn nonce(salt: &[u8; SALT_LEN], counter: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..SALT_LEN].copy_from_slice(salt);
    nonce[SALT_LEN..].copy_from_slice(&counter.to_be_bytes());
    nonce
}

/// Writes the clear part and the (not yet encrypted) header into `out`
/// (cleared first); the caller appends the payload, then calls
/// [`finish_seal`].
pub(super) fn start_seal(nonce: &[u8; NONCE_LEN], header: &Header, out: &mut Vec<u8>) {
    out.clear();
    out.push(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(nonce);
    header.write(out);
}

/// Encrypts everything after the clear part in place and appends the tag.
pub(super) fn finish_seal(key: &GossipKey, out: &mut Vec<u8>) {
    let (clear, plaintext) = out.split_at_mut(CLEAR_LEN);
    let nonce = XNonce::from_slice(&clear[2..]);
    // Fails only past 256 GiB of plaintext (XChaCha20's block counter).
    let tag = key
        .0
        .encrypt_in_place_detached(nonce, &clear[..2], plaintext)
        .unwrap_or_else(|_| unreachable!("a datagram is far below the cipher's limit"));
    out.extend_from_slice(&tag);
}

/// Seals `header` and `payload` into `out` (cleared first).
pub(crate) fn seal(
    key: &GossipKey,
    nonce: &[u8; NONCE_LEN],
    header: &Header,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    start_seal(nonce, header, out);
    out.extend_from_slice(payload);
    finish_seal(key, out);
}

/// Checks and decrypts a datagram in place; returns its header and payload.
/// Nothing past the version is read before the AEAD check.
pub(crate) fn open<'a>(
    key: &GossipKey,
    datagram: &'a mut [u8],
) -> Result<(Header, &'a [u8]), Refusal> {
    if datagram.len() < OVERHEAD {
        return Err(Refusal::Truncated);
    }
    if datagram[0] != MAGIC || datagram[1] != VERSION {
        return Err(Refusal::Version);
    }
    let (sealed, tag) = datagram.split_at_mut(datagram.len() - TAG_LEN);
    let (clear, ciphertext) = sealed.split_at_mut(CLEAR_LEN);
    let nonce = XNonce::from_slice(&clear[2..]);
    key.0
        .decrypt_in_place_detached(nonce, &clear[..2], ciphertext, Tag::from_slice(tag))
        .map_err(|_| Refusal::Tag)?;
    let plaintext: &'a [u8] = ciphertext;
    let header = Header::read(plaintext).ok_or(Refusal::Malformed)?;
    Ok((header, &plaintext[HEADER_LEN..]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key() -> GossipKey {
        GossipKey::derive(&Secret::from("s3cret"), "cluster-a")
    }

    fn header() -> Header {
        Header {
            kind: Kind::Gossip,
            sender: "127.0.0.1:7000".parse().unwrap(),
            via: "[::1]:7001".parse().unwrap(),
            incarnation: 17,
            counter: 42,
            token: 0x1234_5678_9abc_def0,
            echo: 99,
        }
    }

    fn sealed(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        seal(
            &key(),
            &nonce(&[7; SALT_LEN], 42),
            &header(),
            payload,
            &mut out,
        );
        out
    }

    #[test]
    fn round_trip() {
        let mut datagram = sealed(b"hello gossip");
        assert_eq!(datagram.len(), OVERHEAD + 12);
        let (h, payload) = open(&key(), &mut datagram).unwrap();
        assert_eq!((h, payload), (header(), &b"hello gossip"[..]));
        let mut empty = sealed(b"");
        assert_eq!(open(&key(), &mut empty).unwrap().1, b"");
        let mut probe = Vec::new();
        let probe_header = Header {
            kind: Kind::Probe,
            ..header()
        };
        seal(
            &key(),
            &nonce(&[1; SALT_LEN], 1),
            &probe_header,
            b"",
            &mut probe,
        );
        assert_eq!(open(&key(), &mut probe).unwrap().0, probe_header);
    }

    #[test]
    fn nothing_but_magic_version_and_nonce_is_in_clear() {
        let marker = b"secret-marker-name";
        let datagram = sealed(marker);
        assert!(!datagram.windows(marker.len()).any(|w| w == marker));
        // Nor the header's fields.
        assert!(!datagram
            .windows(8)
            .any(|w| w == 0x1234_5678_9abc_def0u64.to_be_bytes()));
        assert!(!datagram.windows(2).any(|w| w == 7000u16.to_be_bytes()));
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        let datagram = sealed(b"payload bytes");
        for index in 0..datagram.len() {
            for bit in 0..8 {
                let mut tampered = datagram.clone();
                tampered[index] ^= 1 << bit;
                let expected = if index < 2 {
                    Refusal::Version
                } else {
                    Refusal::Tag
                };
                assert_eq!(
                    open(&key(), &mut tampered).map(|_| ()),
                    Err(expected),
                    "byte {index} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn wrong_secret_or_cluster_is_refused() {
        let datagram = sealed(b"payload");
        for other in [
            GossipKey::derive(&Secret::from("other"), "cluster-a"),
            GossipKey::derive(&Secret::from("s3cret"), "cluster-b"),
            // Moving bytes between the secret and the cluster id changes the key.
            GossipKey::derive(&Secret::from("s3cretc"), "luster-a"),
        ] {
            let mut copy = datagram.clone();
            assert_eq!(open(&other, &mut copy).map(|_| ()), Err(Refusal::Tag));
        }
    }

    #[test]
    fn truncated_or_extended_datagrams_are_refused() {
        let datagram = sealed(b"payload");
        for len in 0..OVERHEAD {
            let mut short = datagram[..len].to_vec();
            assert_eq!(
                open(&key(), &mut short).map(|_| ()),
                Err(Refusal::Truncated),
                "len {len}"
            );
        }
        for len in OVERHEAD..datagram.len() {
            let mut short = datagram[..len].to_vec();
            assert_eq!(
                open(&key(), &mut short).map(|_| ()),
                Err(Refusal::Tag),
                "len {len}"
            );
        }
        let mut longer = datagram;
        longer.push(0);
        assert_eq!(open(&key(), &mut longer).map(|_| ()), Err(Refusal::Tag));
    }

    #[test]
    fn an_authenticated_but_malformed_header_is_refused() {
        let mut out = Vec::new();
        start_seal(&nonce(&[3; SALT_LEN], 5), &header(), &mut out);
        out[CLEAR_LEN] = 9; // an unknown kind
        finish_seal(&key(), &mut out);
        assert_eq!(open(&key(), &mut out).map(|_| ()), Err(Refusal::Malformed));
        let mut out = Vec::new();
        start_seal(&nonce(&[3; SALT_LEN], 6), &header(), &mut out);
        out[CLEAR_LEN + 1] = 5; // an unknown address family
        finish_seal(&key(), &mut out);
        assert_eq!(open(&key(), &mut out).map(|_| ()), Err(Refusal::Malformed));
    }
}
