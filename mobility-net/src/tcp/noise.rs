//! The Noise handshake that authenticates a link and keys its encryption;
//! pure, no I/O (the socket side is in `establish.rs`, the encrypted
//! frames in `record.rs`, the certificates in `cert.rs`).
//!
//! # Why Noise, and which pattern
//!
//! Links use the [Noise protocol framework](https://noiseprotocol.org)
//! through the `snow` crate, with [`PARAMS`]
//! (`Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s`):
//!
//! ```text
//! -> e
//! <- e, ee, s, es      payload: the listener's certificate
//! -> s, se, psk        payload: the dialer's certificate
//! ```
//!
//! - **per-node identities**: each node has its own static X25519 key
//!   (`s`), and a certificate of its cluster's authority binds its node
//!   id to that key (`cert.rs`). Each side sends its certificate
//!   encrypted in the handshake; the other checks that the authority it
//!   trusts for that cluster signed it, that it names the node id and
//!   cluster of the sender's `Hello`, and that its key is the static key
//!   the sender just proved (`es`/`se`). A member that knows the cluster's
//!   secret but not another node's private key cannot speak as that node;
//! - **forward secrecy**: each side draws a fresh X25519 key pair for every
//!   socket (`e`), and the keys of the socket depend on their
//!   Diffie-Hellman (`ee`); a static key or secret learned later decrypts
//!   no recorded traffic;
//! - **the cluster's secret too**: the pre-shared key ([`psk`], derived
//!   from the secret of the peer's cluster, or of the trusted other
//!   cluster) is mixed in at the end (`psk3`); a link needs both a valid
//!   certificate with its private key and the secret. (Across clusters
//!   trusted by their authority's key alone no secret is shared, and the
//!   key is the public [`PUBLIC_PSK`]: the certificates authenticate.);
//! - **bound to everything announced**: the prologue ([`prologue`]) is both
//!   `Hello`s byte for byte as they were sent; if anyone on the path
//!   changed one byte of either, the two sides hash different prologues
//!   and the first message's (empty, authenticated) payload does not
//!   verify at the listener;
//! - **fresh**: the prologue holds both sides' fresh nonces and each
//!   side's ephemeral key is new, so a recorded handshake replayed to a
//!   listener, or a listener's messages reflected back at it, get nowhere.
//!
//! Why `XX` and `psk3`: the dialer reaches a node by its address and does
//! not know its static key in advance (`IK` or `KK` would need it), and
//! `XX` hides both static keys and certificates from anyone passive. With
//! the pre-shared key last, nothing a listener answers lets anyone test
//! guesses of the secret offline (its message does not depend on it), and
//! the dialer sends the one message that does only to a listener whose
//! certificate it has checked. The price: a listener answers its
//! certificate (node id, cluster, public key, all in its `Hello` or
//! public anyway) to anyone, and the handshake takes three messages.
//!
//! Why not TLS: mutual TLS (rustls) would need X.509 certificates and a
//! way to bind them to node ids; Noise with a 100-byte certificate is
//! smaller, and the one handshake covers the `Hello`s too.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::cert::{NodeKey, MAX_CERTIFICATE};
use super::config::Secret;
use super::handshake::HandshakeError;

/// The Noise protocol of every link.
pub const PARAMS: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";

/// Largest Noise message (the Noise specification's limit).
pub const MAX_MESSAGE: usize = 65_535;

/// Bytes the AEAD adds to each transport message (its tag).
pub const TAG_LEN: usize = 16;

/// Largest plaintext of one transport message.
pub const MAX_PIECE: usize = MAX_MESSAGE - TAG_LEN;

/// Largest handshake message of [`PARAMS`]: the listener's (an ephemeral
/// key, its encrypted static key and its encrypted certificate).
pub const MAX_HANDSHAKE_MESSAGE: usize = 32 + (32 + TAG_LEN) + MAX_CERTIFICATE + TAG_LEN;

/// Domain separation of the pre-shared key.
const PSK_LABEL: &[u8] = b"mobility-noise-psk-v7";

/// Domain separation of the prologue.
const PROLOGUE_LABEL: &[u8] = b"mobility-noise-prologue-v7";

/// The pre-shared key of links between clusters that trust each other by
/// their authorities' keys alone: public, the certificates authenticate.
pub const PUBLIC_PSK: [u8; 32] = *b"mobility-no-shared-secret-v7\0\0\0\0";

/// The pre-shared key of the Noise handshake: HMAC-SHA256 keyed by the
/// cluster's `secret` (any length) over a label.
pub fn psk(secret: &Secret) -> [u8; 32] {
    // HMAC accepts keys of any length: this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose()) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(PSK_LABEL);
    mac.finalize().into_bytes().into()
}

/// The prologue of the Noise handshake: a label, then the dialer's `Hello`
/// and the listener's, each as the bytes sent on the wire, each after its
/// length (u32 big-endian).
pub fn prologue(dialer_hello: &[u8], listener_hello: &[u8]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(PROLOGUE_LABEL.len() + 8 + dialer_hello.len() + listener_hello.len());
    out.extend_from_slice(PROLOGUE_LABEL);
    for hello in [dialer_hello, listener_hello] {
        // A `Hello` is a frame of at most `HANDSHAKE_MAX_FRAME` bytes.
        out.extend_from_slice(&(hello.len() as u32).to_be_bytes());
        out.extend_from_slice(hello);
    }
    out
}

fn noise_error(e: &snow::Error) -> HandshakeError {
    HandshakeError::Noise(e.to_string())
}

fn builder<'a>(
    psk: &'a [u8; 32],
    key: &'a NodeKey,
    prologue: &'a [u8],
) -> Result<snow::Builder<'a>, HandshakeError> {
    let params: snow::params::NoiseParams = PARAMS.parse().map_err(|e| noise_error(&e))?;
    snow::Builder::new(params)
        .psk(3, psk)
        .and_then(|b| b.local_private_key(key.private()))
        .and_then(|b| b.prologue(prologue))
        .map_err(|e| noise_error(&e))
}

/// The dialer's (initiator's) side of the Noise handshake of a socket
/// whose `Hello`s were these bytes, with the pre-shared key of the
/// listener's cluster and this node's static key.
pub fn dialer(
    psk: &[u8; 32],
    key: &NodeKey,
    dialer_hello: &[u8],
    listener_hello: &[u8],
) -> Result<snow::HandshakeState, HandshakeError> {
    let prologue = prologue(dialer_hello, listener_hello);
    builder(psk, key, &prologue)?
        .build_initiator()
        .map_err(|e| noise_error(&e))
}

/// The listener's (responder's) side of the Noise handshake, with the
/// pre-shared key of the dialer's cluster.
pub fn listener(
    psk: &[u8; 32],
    key: &NodeKey,
    dialer_hello: &[u8],
    listener_hello: &[u8],
) -> Result<snow::HandshakeState, HandshakeError> {
    let prologue = prologue(dialer_hello, listener_hello);
    builder(psk, key, &prologue)?
        .build_responder()
        .map_err(|e| noise_error(&e))
}

/// This side's next handshake message, carrying `payload` (encrypted
/// once a key is set: the certificates are).
pub fn write(state: &mut snow::HandshakeState, payload: &[u8]) -> Result<Vec<u8>, HandshakeError> {
    let mut message = vec![0u8; MAX_HANDSHAKE_MESSAGE];
    let len = state
        .write_message(payload, &mut message)
        .map_err(|e| noise_error(&e))?;
    message.truncate(len);
    Ok(message)
}

/// Reads the peer's next handshake message and returns its payload: an
/// error means the peer does not know the key, or the handshake was
/// replayed, reflected or tampered.
pub fn read(state: &mut snow::HandshakeState, message: &[u8]) -> Result<Vec<u8>, HandshakeError> {
    if message.len() > MAX_HANDSHAKE_MESSAGE {
        return Err(HandshakeError::Authentication(format!(
            "handshake message of {} bytes",
            message.len()
        )));
    }
    let mut payload = vec![0u8; MAX_HANDSHAKE_MESSAGE];
    match state.read_message(message, &mut payload) {
        Ok(n) => {
            payload.truncate(n);
            Ok(payload)
        }
        Err(e) => Err(HandshakeError::Authentication(e.to_string())),
    }
}

/// The static key the peer proved in the handshake so far, if it sent it.
pub fn remote_static(state: &snow::HandshakeState) -> Option<[u8; 32]> {
    state.get_remote_static().and_then(|k| k.try_into().ok())
}

/// The keys of the socket, once the three handshake messages went through.
pub fn finish(
    state: snow::HandshakeState,
) -> Result<snow::StatelessTransportState, HandshakeError> {
    state
        .into_stateless_transport_mode()
        .map_err(|e| noise_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One side's view: pre-shared key, static key, both `Hello`s.
    type View<'a> = (&'a [u8; 32], &'a NodeKey, &'a [u8], &'a [u8]);

    /// Runs the whole handshake in memory, with "cert-l" and "cert-d" as
    /// payloads; returns the keys and what each side learned of the
    /// other's static key.
    #[allow(clippy::type_complexity)]
    fn run(
        d: View<'_>,
        l: View<'_>,
    ) -> Result<
        (
            snow::StatelessTransportState,
            snow::StatelessTransportState,
            Option<[u8; 32]>,
            Option<[u8; 32]>,
        ),
        HandshakeError,
    > {
        let mut dialer = dialer(d.0, d.1, d.2, d.3)?;
        let mut listener = listener(l.0, l.1, l.2, l.3)?;
        assert!(read(&mut listener, &write(&mut dialer, &[])?)?.is_empty());
        let second = write(&mut listener, b"cert-l")?;
        assert!(!second.windows(6).any(|w| w == b"cert-l"), "encrypted");
        assert_eq!(read(&mut dialer, &second)?, b"cert-l");
        let third = write(&mut dialer, b"cert-d")?;
        assert!(!third.windows(6).any(|w| w == b"cert-d"), "encrypted");
        assert_eq!(read(&mut listener, &third)?, b"cert-d");
        let (ld, dl) = (remote_static(&dialer), remote_static(&listener));
        Ok((finish(dialer)?, finish(listener)?, ld, dl))
    }

    fn key() -> NodeKey {
        NodeKey::generate().expect("random")
    }

    #[test]
    fn the_same_view_gives_the_same_keys_and_proves_the_static_keys() {
        let psk = psk(&Secret::from("s"));
        let (kd, kl) = (key(), key());
        let (d, l, seen_by_d, seen_by_l) = run(
            (&psk, &kd, b"hello-d", b"hello-l"),
            (&psk, &kl, b"hello-d", b"hello-l"),
        )
        .expect("handshake");
        assert_eq!(seen_by_d, Some(kl.public()));
        assert_eq!(seen_by_l, Some(kd.public()));
        let mut sealed = [0u8; 64];
        let n = d
            .write_message(0, b"secret words", &mut sealed)
            .expect("seals");
        assert!(!sealed[..n].windows(6).any(|w| w == b"secret"));
        let mut opened = [0u8; 64];
        let m = l.read_message(0, &sealed[..n], &mut opened).expect("opens");
        assert_eq!(&opened[..m], b"secret words");
        // Another nonce (a replayed or reordered message) does not open.
        assert!(l.read_message(1, &sealed[..n], &mut opened).is_err());
        // Nor does a flipped byte.
        sealed[3] ^= 1;
        assert!(l.read_message(0, &sealed[..n], &mut opened).is_err());
    }

    #[test]
    fn another_secret_or_prologue_fails() {
        let s = psk(&Secret::from("s"));
        let t = psk(&Secret::from("t"));
        let (kd, kl) = (key(), key());
        let (d, l) = (&b"hello-d"[..], &b"hello-l"[..]);
        for (what, dv, lv) in [
            ("secret", (&s, &kd, d, l), (&t, &kl, d, l)),
            ("public key", (&s, &kd, d, l), (&PUBLIC_PSK, &kl, d, l)),
            (
                "dialer's hello",
                (&s, &kd, d, l),
                (&s, &kl, &b"hello-D"[..], l),
            ),
            (
                "listener's hello",
                (&s, &kd, d, l),
                (&s, &kl, d, &b"hello-L"[..]),
            ),
            ("hellos swapped", (&s, &kd, d, l), (&s, &kl, l, d)),
        ] {
            assert!(
                matches!(run(dv, lv), Err(HandshakeError::Authentication(_))),
                "{what}"
            );
        }
    }

    #[test]
    fn a_tampered_prologue_fails_at_the_first_message() {
        // The listener learns nothing keyed and sends nothing: the
        // dialer's first message, whose empty payload is authenticated
        // under the prologue, already fails.
        let s = psk(&Secret::from("s"));
        let mut d = dialer(&s, &key(), b"hello-d", b"hello-l").expect("builds");
        let mut l = listener(&s, &key(), b"hello-d", b"hello-X").expect("builds");
        assert!(read(&mut l, &write(&mut d, &[]).expect("writes")).is_err());
    }

    #[test]
    fn a_replayed_first_message_fails_against_a_fresh_listener_hello() {
        let s = psk(&Secret::from("s"));
        let mut d = dialer(&s, &key(), b"hello-d", b"hello-l1").expect("builds");
        let first = write(&mut d, &[]).expect("writes");
        let mut l = listener(&s, &key(), b"hello-d", b"hello-l1").expect("builds");
        read(&mut l, &first).expect("the genuine one verifies");
        let mut fresh = listener(&s, &key(), b"hello-d", b"hello-l2").expect("builds");
        assert!(read(&mut fresh, &first).is_err());
    }

    #[test]
    fn the_largest_listener_message_fits() {
        let s = psk(&Secret::from("s"));
        let mut d = dialer(&s, &key(), b"d", b"l").expect("builds");
        let mut l = listener(&s, &key(), b"d", b"l").expect("builds");
        read(&mut l, &write(&mut d, &[]).expect("writes")).expect("reads");
        let second = write(&mut l, &[7u8; MAX_CERTIFICATE]).expect("fits");
        assert_eq!(second.len(), MAX_HANDSHAKE_MESSAGE);
        assert_eq!(read(&mut d, &second).expect("reads").len(), MAX_CERTIFICATE);
    }

    #[test]
    fn the_prologue_length_prefixes_each_hello() {
        assert_ne!(prologue(b"ab", b"c"), prologue(b"a", b"bc"));
    }
}
