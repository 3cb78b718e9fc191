//! The Noise handshake that authenticates a link and keys its encryption;
//! pure, no I/O (the socket side is in `establish.rs`, the encrypted
//! frames in `record.rs`).
//!
//! # Why Noise, and which pattern
//!
//! Links use the [Noise protocol framework](https://noiseprotocol.org)
//! through the `snow` crate, with [`PARAMS`]
//! (`Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`):
//!
//! - **forward secrecy**: each side draws a fresh X25519 key pair for every
//!   socket (`e`), and the keys of the socket come from their
//!   Diffie-Hellman (`ee`); a secret learned later decrypts no recorded
//!   traffic;
//! - **mutual authentication by the cluster's secret**: the pre-shared key
//!   ([`psk`], derived from the secret of the peer's cluster, or of the
//!   trusted other cluster for a cross-cluster link) is mixed in before
//!   the first message (`psk0`), so the first message of each side only
//!   verifies for someone who knows it;
//! - **bound to everything announced**: the prologue ([`prologue`]) is both
//!   `Hello`s byte for byte as they were sent; if anyone on the path
//!   changed one byte of either, the two sides hash different prologues
//!   and the dialer's first message does not verify;
//! - **fresh**: the prologue holds both sides' fresh nonces and each
//!   side's ephemeral key is new, so a recorded handshake replayed to a
//!   listener, or a listener's messages reflected back at it, get nowhere;
//! - **small and certificate-free**: nothing but the cluster's secret to
//!   configure; TLS with mutual certificates (rustls) would need a
//!   certificate authority per cluster and a way to bind certificates to
//!   node ids.
//!
//! The dialer is the Noise initiator: it writes `-> psk, e` (which only
//! verifies for a holder of the key who saw both `Hello`s, fresh) and the
//! listener answers `<- e, ee` only then, so a stranger learns nothing
//! keyed by the secret from a listener (no offline guessing of the secret
//! from what a listener answers to anyone).
//!
//! What NN does not give: per-node keys. Every member of a cluster knows
//! its secret, so one member can claim another's node id. Closing that
//! needs a static key per node (`XXpsk3`, or `KK` with keys known in
//! advance) and a way to learn which key owns which node id (keys
//! published and signed in membership, or pinned in configuration).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::Secret;
use super::handshake::HandshakeError;

/// The Noise protocol of every link.
pub const PARAMS: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";

/// Largest Noise message (the Noise specification's limit).
pub const MAX_MESSAGE: usize = 65_535;

/// Bytes the AEAD adds to each transport message (its tag).
pub const TAG_LEN: usize = 16;

/// Largest plaintext of one transport message.
pub const MAX_PIECE: usize = MAX_MESSAGE - TAG_LEN;

/// Largest handshake message of [`PARAMS`] (an ephemeral key and an empty
/// payload's tag are 48 bytes), with room to spare.
pub const MAX_HANDSHAKE_MESSAGE: usize = 256;

/// Domain separation of the pre-shared key.
const PSK_LABEL: &[u8] = b"mobility-noise-psk-v6";

/// Domain separation of the prologue.
const PROLOGUE_LABEL: &[u8] = b"mobility-noise-prologue-v6";

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

fn builder<'a>(psk: &'a [u8; 32], prologue: &'a [u8]) -> Result<snow::Builder<'a>, HandshakeError> {
    let params: snow::params::NoiseParams = PARAMS.parse().map_err(|e| noise_error(&e))?;
    snow::Builder::new(params)
        .psk(0, psk)
        .and_then(|b| b.prologue(prologue))
        .map_err(|e| noise_error(&e))
}

/// The dialer's (initiator's) side of the Noise handshake of a socket
/// whose `Hello`s were these bytes, keyed by the secret of the listener's
/// cluster.
pub fn dialer(
    secret: &Secret,
    dialer_hello: &[u8],
    listener_hello: &[u8],
) -> Result<snow::HandshakeState, HandshakeError> {
    let psk = psk(secret);
    let prologue = prologue(dialer_hello, listener_hello);
    builder(&psk, &prologue)?
        .build_initiator()
        .map_err(|e| noise_error(&e))
}

/// The listener's (responder's) side of the Noise handshake, keyed by the
/// secret of the dialer's cluster.
pub fn listener(
    secret: &Secret,
    dialer_hello: &[u8],
    listener_hello: &[u8],
) -> Result<snow::HandshakeState, HandshakeError> {
    let psk = psk(secret);
    let prologue = prologue(dialer_hello, listener_hello);
    builder(&psk, &prologue)?
        .build_responder()
        .map_err(|e| noise_error(&e))
}

/// This side's next handshake message (empty payload).
pub fn write(state: &mut snow::HandshakeState) -> Result<Vec<u8>, HandshakeError> {
    let mut message = vec![0u8; MAX_HANDSHAKE_MESSAGE];
    let len = state
        .write_message(&[], &mut message)
        .map_err(|e| noise_error(&e))?;
    message.truncate(len);
    Ok(message)
}

/// Reads the peer's next handshake message: an error means the peer does
/// not know the key, or the handshake was replayed, reflected or tampered.
pub fn read(state: &mut snow::HandshakeState, message: &[u8]) -> Result<(), HandshakeError> {
    if message.len() > MAX_HANDSHAKE_MESSAGE {
        return Err(HandshakeError::Authentication(format!(
            "handshake message of {} bytes",
            message.len()
        )));
    }
    let mut payload = [0u8; MAX_HANDSHAKE_MESSAGE];
    match state.read_message(message, &mut payload) {
        Ok(0) => Ok(()),
        Ok(n) => Err(HandshakeError::Authentication(format!(
            "unexpected payload of {n} bytes"
        ))),
        Err(e) => Err(HandshakeError::Authentication(e.to_string())),
    }
}

/// The keys of the socket, once both handshake messages went through.
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

    /// Runs the whole handshake in memory: the dialer's view of both
    /// `Hello`s and secret against the listener's.
    fn run(
        dialer_view: (&Secret, &[u8], &[u8]),
        listener_view: (&Secret, &[u8], &[u8]),
    ) -> Result<(snow::StatelessTransportState, snow::StatelessTransportState), HandshakeError>
    {
        let mut d = dialer(dialer_view.0, dialer_view.1, dialer_view.2)?;
        let mut l = listener(listener_view.0, listener_view.1, listener_view.2)?;
        read(&mut l, &write(&mut d)?)?;
        read(&mut d, &write(&mut l)?)?;
        Ok((finish(d)?, finish(l)?))
    }

    #[test]
    fn the_same_view_gives_the_same_keys() {
        let s = Secret::from("s");
        let (d, l) =
            run((&s, b"hello-d", b"hello-l"), (&s, b"hello-d", b"hello-l")).expect("handshake");
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
        let s = Secret::from("s");
        let t = Secret::from("t");
        let (d, l) = (&b"hello-d"[..], &b"hello-l"[..]);
        for (what, dialer_view, listener_view) in [
            ("secret", (&s, d, l), (&t, d, l)),
            ("dialer's hello", (&s, d, l), (&s, &b"hello-D"[..], l)),
            ("listener's hello", (&s, d, l), (&s, d, &b"hello-L"[..])),
            ("hellos swapped", (&s, d, l), (&s, l, d)),
        ] {
            assert!(
                matches!(
                    run(dialer_view, listener_view),
                    Err(HandshakeError::Authentication(_))
                ),
                "{what}"
            );
        }
    }

    #[test]
    fn a_replayed_first_message_fails_against_a_fresh_listener_hello() {
        let s = Secret::from("s");
        let mut d = dialer(&s, b"hello-d", b"hello-l1").expect("builds");
        let first = write(&mut d).expect("writes");
        let mut l = listener(&s, b"hello-d", b"hello-l1").expect("builds");
        read(&mut l, &first).expect("the genuine one verifies");
        let mut fresh = listener(&s, b"hello-d", b"hello-l2").expect("builds");
        assert!(read(&mut fresh, &first).is_err());
    }

    #[test]
    fn the_prologue_length_prefixes_each_hello() {
        assert_ne!(prologue(b"ab", b"c"), prologue(b"a", b"bc"));
    }
}
