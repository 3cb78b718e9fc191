//! Node identities: each node's static X25519 key ([`NodeKey`], the
//! Noise `s` of its links), the Ed25519 key of a cluster authority
//! ([`ClusterAuthority`]) and the [`Certificate`] by which the authority
//! binds a node id of its cluster to a static key.
//!
//! A certificate is a few bytes in a fixed layout (big-endian), signed
//! with Ed25519 (`ed25519-dalek`, strict verification):
//!
//! ```text
//! "MOBC" | version (1) | authority's public key (32) | node's static key (32)
//!        | not_after (u64, seconds since the Unix epoch, 0 = never)
//!        | cluster length (1) | cluster | node id length (1) | node id
//!        | signature (64) over CERT_LABEL and every byte before it
//! ```
//!
//! Decoding checks the layout and nothing else; [`Certificate::verify`]
//! checks the signature by an authority and the expiry. Keys and
//! certificates have a text form (`mobility-...:` and hex) for files and
//! environment variables.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::Secret;
use super::handshake::MAX_CLUSTER_LEN;
use crate::NodeId;

/// The first bytes of a certificate.
const CERT_MAGIC: [u8; 4] = *b"MOBC";

/// The version of the certificate layout.
const CERT_VERSION: u8 = 1;

/// Domain separation of certificate signatures.
const CERT_LABEL: &[u8] = b"mobility-certificate-v1";

/// Domain separation of an authority derived from a shared secret.
const DERIVED_AUTHORITY_LABEL: &[u8] = b"mobility-derived-cluster-authority-v1";

/// Fixed part of a certificate: magic, version, two keys, `not_after`,
/// the two length bytes and the signature.
const FIXED_LEN: usize = 4 + 1 + 32 + 32 + 8 + 1 + 1 + SIGNATURE_LEN;
const SIGNATURE_LEN: usize = 64;

/// Largest certificate (longest cluster id and node id).
pub(crate) const MAX_CERTIFICATE: usize = FIXED_LEN + MAX_CLUSTER_LEN + 64;

/// Text prefixes.
const NODE_KEY_TEXT: &str = "mobility-node-key-v1:";
const AUTHORITY_SECRET_TEXT: &str = "mobility-authority-secret-v1:";
const AUTHORITY_KEY_TEXT: &str = "mobility-authority-v1:";
const CERT_TEXT: &str = "mobility-cert-v1:";

/// Something about a key or a certificate is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A text is not the key or certificate it should be.
    #[error("not a valid {what}: {reason}")]
    Malformed {
        /// What was expected.
        what: &'static str,
        /// Why it is not one.
        reason: String,
    },
    /// The signature of a certificate does not verify under the authority.
    #[error(
        "the certificate of {node} (cluster {cluster:?}) is not signed by authority {authority}"
    )]
    Signature {
        /// The node the certificate names.
        node: NodeId,
        /// The cluster it names.
        cluster: String,
        /// The authority it was checked against.
        authority: AuthorityKey,
    },
    /// The certificate has expired.
    #[error("the certificate of {node} expired {ago:?} ago")]
    Expired {
        /// The node the certificate names.
        node: NodeId,
        /// How long ago.
        ago: Duration,
    },
    /// A certificate does not match what it is used for.
    #[error("{0}")]
    Mismatch(String),
    /// A setting (environment variable or file) is missing or unreadable.
    #[error("{0}")]
    Config(String),
    /// No randomness could be drawn from the OS.
    #[error("no randomness: {0}")]
    Random(String),
}

fn malformed(what: &'static str, reason: impl Into<String>) -> IdentityError {
    IdentityError::Malformed {
        what,
        reason: reason.into(),
    }
}

fn random32() -> Result<[u8; 32], IdentityError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| IdentityError::Random(e.to_string()))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    if text.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", text.len()));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(format!("{:?} is not a hex digit", char::from(c))),
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The bytes of `text` after `prefix`, hex-decoded.
fn from_text(text: &str, prefix: &str, what: &'static str) -> Result<Vec<u8>, IdentityError> {
    let text = text.trim();
    let body = text
        .strip_prefix(prefix)
        .ok_or_else(|| malformed(what, format!("it does not start with {prefix:?}")))?;
    unhex(body).map_err(|e| malformed(what, e))
}

fn key32(bytes: &[u8], what: &'static str) -> Result<[u8; 32], IdentityError> {
    bytes
        .try_into()
        .map_err(|_| malformed(what, format!("{} bytes, 32 expected", bytes.len())))
}

/// A node's static X25519 key pair: the Noise static key of its links,
/// bound to its node id by its [`Certificate`]. `Debug` never prints the
/// private half.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeKey {
    private: Arc<[u8; 32]>,
    public: [u8; 32],
}

impl NodeKey {
    /// A fresh random key pair.
    pub fn generate() -> Result<NodeKey, IdentityError> {
        Ok(NodeKey::from_bytes(random32()?))
    }

    /// The key pair of this private key (X25519, clamped as usual).
    pub fn from_bytes(private: [u8; 32]) -> NodeKey {
        let public = curve25519_dalek::MontgomeryPoint::mul_base_clamped(private).to_bytes();
        NodeKey {
            private: Arc::new(private),
            public,
        }
    }

    /// The public half, as certified.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    pub(crate) fn private(&self) -> &[u8; 32] {
        &self.private
    }

    /// The text form (`mobility-node-key-v1:` and the private key in hex):
    /// keep it as secret as the key.
    pub fn to_text(&self) -> String {
        format!("{NODE_KEY_TEXT}{}", hex(&self.private[..]))
    }

    /// Reads the text form.
    pub fn from_text(text: &str) -> Result<NodeKey, IdentityError> {
        let bytes = from_text(text, NODE_KEY_TEXT, "node key")?;
        Ok(NodeKey::from_bytes(key32(&bytes, "node key")?))
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NodeKey(public {}, private <redacted>)",
            hex(&self.public)
        )
    }
}

/// The public key of a cluster authority: certificates it signed prove
/// node ids of its cluster (or of whoever holds it).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthorityKey([u8; 32]);

impl AuthorityKey {
    /// The key of these 32 bytes (refused if not a valid Ed25519 point).
    pub fn from_bytes(bytes: [u8; 32]) -> Result<AuthorityKey, IdentityError> {
        VerifyingKey::from_bytes(&bytes)
            .map(|_| AuthorityKey(bytes))
            .map_err(|e| malformed("authority key", e.to_string()))
    }

    /// Its 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    fn verifying_key(&self) -> Result<VerifyingKey, IdentityError> {
        VerifyingKey::from_bytes(&self.0).map_err(|e| malformed("authority key", e.to_string()))
    }

    /// The text form (`mobility-authority-v1:` and the key in hex).
    pub fn to_text(&self) -> String {
        format!("{AUTHORITY_KEY_TEXT}{}", hex(&self.0))
    }

    /// Reads the text form.
    pub fn from_text(text: &str) -> Result<AuthorityKey, IdentityError> {
        let bytes = from_text(text, AUTHORITY_KEY_TEXT, "authority key")?;
        AuthorityKey::from_bytes(key32(&bytes, "authority key")?)
    }
}

impl fmt::Display for AuthorityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl fmt::Debug for AuthorityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorityKey({})", hex(&self.0))
    }
}

/// A cluster authority: the Ed25519 key that signs the certificates of
/// its cluster's nodes. Keep it off the nodes in production (mint each
/// node's certificate with it, give nodes only its [`AuthorityKey`]).
/// `Debug` never prints it.
#[derive(Clone)]
pub struct ClusterAuthority(SigningKey);

impl ClusterAuthority {
    /// A fresh random authority.
    pub fn generate() -> Result<ClusterAuthority, IdentityError> {
        Ok(ClusterAuthority(SigningKey::from_bytes(&random32()?)))
    }

    /// The authority every holder of `secret` derives alike (HMAC-SHA256
    /// of the secret over a label, as the Ed25519 seed). This is what a
    /// node configured with a secret alone uses: then *any holder of the
    /// secret can mint an identity for any node id*, so identities are
    /// only as strong as the shared secret.
    pub fn from_secret(secret: &Secret) -> ClusterAuthority {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose()) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(DERIVED_AUTHORITY_LABEL);
        let seed: [u8; 32] = mac.finalize().into_bytes().into();
        ClusterAuthority(SigningKey::from_bytes(&seed))
    }

    /// Its public key, for the nodes that check its certificates.
    pub fn public(&self) -> AuthorityKey {
        AuthorityKey(self.0.verifying_key().to_bytes())
    }

    /// Signs a certificate binding `node` of `cluster` to the static key
    /// `static_key`, valid until `not_after` (for ever if `None`).
    pub fn certify(
        &self,
        node: &NodeId,
        cluster: &str,
        static_key: [u8; 32],
        not_after: Option<SystemTime>,
    ) -> Result<Certificate, IdentityError> {
        if cluster.is_empty() || cluster.len() > MAX_CLUSTER_LEN {
            return Err(malformed(
                "certificate",
                format!(
                    "cluster id of {} bytes (1 to {MAX_CLUSTER_LEN})",
                    cluster.len()
                ),
            ));
        }
        let not_after = match not_after {
            None => 0,
            Some(at) => at
                .duration_since(UNIX_EPOCH)
                .map_err(|_| malformed("certificate", "expiry before 1970"))?
                .as_secs()
                .max(1),
        };
        let mut bytes = Vec::with_capacity(FIXED_LEN + cluster.len() + node.as_str().len());
        bytes.extend_from_slice(&CERT_MAGIC);
        bytes.push(CERT_VERSION);
        bytes.extend_from_slice(self.0.verifying_key().as_bytes());
        bytes.extend_from_slice(&static_key);
        bytes.extend_from_slice(&not_after.to_be_bytes());
        // Both lengths were checked: a cluster id of at most 128 bytes, a
        // node id of at most 64.
        bytes.push(cluster.len() as u8);
        bytes.extend_from_slice(cluster.as_bytes());
        bytes.push(node.as_str().len() as u8);
        bytes.extend_from_slice(node.as_str().as_bytes());
        let signature = self.0.sign(&signed_message(&bytes));
        bytes.extend_from_slice(&signature.to_bytes());
        Certificate::decode(&bytes)
    }

    /// The text form (`mobility-authority-secret-v1:` and the Ed25519 seed
    /// in hex): whoever holds it can mint identities.
    pub fn to_text(&self) -> String {
        format!("{AUTHORITY_SECRET_TEXT}{}", hex(self.0.as_bytes()))
    }

    /// Reads the text form.
    pub fn from_text(text: &str) -> Result<ClusterAuthority, IdentityError> {
        let bytes = from_text(text, AUTHORITY_SECRET_TEXT, "cluster authority")?;
        Ok(ClusterAuthority(SigningKey::from_bytes(&key32(
            &bytes,
            "cluster authority",
        )?)))
    }
}

impl fmt::Debug for ClusterAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClusterAuthority({:?}, private <redacted>)",
            self.public()
        )
    }
}

/// What the signature covers: a label, then the certificate's bytes
/// before the signature.
fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(CERT_LABEL.len() + body.len());
    message.extend_from_slice(CERT_LABEL);
    message.extend_from_slice(body);
    message
}

/// A cluster authority's statement that `node` of `cluster` owns the
/// static key `static_key` (until `not_after`). Its bytes are sent inside
/// the encrypted Noise handshake; see the module docs for the layout.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    bytes: Arc<[u8]>,
    authority: [u8; 32],
    static_key: [u8; 32],
    not_after: Option<u64>,
    cluster: String,
    node: NodeId,
}

impl Certificate {
    /// Reads a certificate's bytes, checking their layout only (not the
    /// signature: see [`Certificate::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Certificate, IdentityError> {
        const WHAT: &str = "certificate";
        if bytes.len() < FIXED_LEN || bytes.len() > MAX_CERTIFICATE {
            return Err(malformed(WHAT, format!("{} bytes", bytes.len())));
        }
        if bytes[..4] != CERT_MAGIC {
            return Err(malformed(WHAT, "bad magic"));
        }
        if bytes[4] != CERT_VERSION {
            return Err(malformed(
                WHAT,
                format!(
                    "layout version {} (this build reads {CERT_VERSION})",
                    bytes[4]
                ),
            ));
        }
        let mut at = 5;
        let mut take = |n: usize| -> Result<&[u8], IdentityError> {
            let end = at + n;
            let body_end = bytes.len() - SIGNATURE_LEN;
            if end > body_end {
                return Err(malformed(WHAT, "truncated"));
            }
            let piece = &bytes[at..end];
            at = end;
            Ok(piece)
        };
        let authority = key32(take(32)?, WHAT)?;
        let static_key = key32(take(32)?, WHAT)?;
        let mut not_after = [0u8; 8];
        not_after.copy_from_slice(take(8)?);
        let not_after = match u64::from_be_bytes(not_after) {
            0 => None,
            secs => Some(secs),
        };
        let cluster_len = usize::from(take(1)?[0]);
        let cluster = std::str::from_utf8(take(cluster_len)?)
            .map_err(|_| malformed(WHAT, "cluster id not UTF-8"))?
            .to_owned();
        if cluster.is_empty() || cluster.len() > MAX_CLUSTER_LEN {
            return Err(malformed(WHAT, "empty or too long cluster id"));
        }
        let node_len = usize::from(take(1)?[0]);
        let node = std::str::from_utf8(take(node_len)?)
            .ok()
            .and_then(|text| NodeId::new(text).ok())
            .ok_or_else(|| malformed(WHAT, "invalid node id"))?;
        if at != bytes.len() - SIGNATURE_LEN {
            return Err(malformed(WHAT, "trailing bytes"));
        }
        Ok(Certificate {
            bytes: Arc::from(bytes),
            authority,
            static_key,
            not_after,
            cluster,
            node,
        })
    }

    /// Checks that `authority` signed it and that it has not expired at
    /// `now`.
    pub fn verify(&self, authority: &AuthorityKey, now: SystemTime) -> Result<(), IdentityError> {
        let signature_error = || IdentityError::Signature {
            node: self.node.clone(),
            cluster: self.cluster.clone(),
            authority: *authority,
        };
        if self.authority != authority.to_bytes() {
            return Err(signature_error());
        }
        let (body, signature) = self.bytes.split_at(self.bytes.len() - SIGNATURE_LEN);
        let signature = ed25519_dalek::Signature::from_slice(signature)
            .map_err(|e| malformed("certificate", e.to_string()))?;
        authority
            .verifying_key()?
            .verify_strict(&signed_message(body), &signature)
            .map_err(|_| signature_error())?;
        if let Some(expiry) = self.not_after() {
            if let Ok(ago) = now.duration_since(expiry) {
                return Err(IdentityError::Expired {
                    node: self.node.clone(),
                    ago,
                });
            }
        }
        Ok(())
    }

    /// The node id it certifies.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The cluster it certifies the node in.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The node's static key.
    pub fn static_key(&self) -> [u8; 32] {
        self.static_key
    }

    /// Until when it is valid (`None`: for ever, or past the last time
    /// the system clock can hold, which no clock reaches either).
    pub fn not_after(&self) -> Option<SystemTime> {
        self.not_after
            .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
    }

    /// The public key of the authority that claims to have signed it (a
    /// claim until [`Certificate::verify`] checks it).
    pub fn issuer(&self) -> Result<AuthorityKey, IdentityError> {
        AuthorityKey::from_bytes(self.authority)
    }

    /// Its bytes, as sent in the handshake.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The text form (`mobility-cert-v1:` and its bytes in hex).
    pub fn to_text(&self) -> String {
        format!("{CERT_TEXT}{}", hex(&self.bytes))
    }

    /// Reads the text form.
    pub fn from_text(text: &str) -> Result<Certificate, IdentityError> {
        Certificate::decode(&from_text(text, CERT_TEXT, "certificate")?)
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("node", &self.node)
            .field("cluster", &self.cluster)
            .field("static_key", &hex(&self.static_key))
            .field("not_after", &self.not_after)
            .field("authority", &hex(&self.authority))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeId {
        NodeId::new(name).expect("valid")
    }

    #[test]
    fn a_certificate_round_trips_and_verifies() {
        let authority = ClusterAuthority::generate().expect("random");
        let key = NodeKey::generate().expect("random");
        let cert = authority
            .certify(&node("node-a"), "prod", key.public(), None)
            .expect("signs");
        assert_eq!(cert.node(), &node("node-a"));
        assert_eq!(cert.cluster(), "prod");
        assert_eq!(cert.static_key(), key.public());
        assert_eq!(cert.not_after(), None);
        assert_eq!(cert.issuer(), Ok(authority.public()));
        cert.verify(&authority.public(), SystemTime::now())
            .expect("verifies");
        let again = Certificate::from_text(&cert.to_text()).expect("reads");
        assert_eq!(again, cert);
        let decoded = Certificate::decode(cert.as_bytes()).expect("decodes");
        assert_eq!(decoded, cert);
    }

    #[test]
    fn another_authority_or_a_flipped_byte_does_not_verify() {
        let authority = ClusterAuthority::generate().expect("random");
        let other = ClusterAuthority::generate().expect("random");
        let cert = authority
            .certify(&node("node-a"), "prod", [7; 32], None)
            .expect("signs");
        let now = SystemTime::now();
        assert!(matches!(
            cert.verify(&other.public(), now),
            Err(IdentityError::Signature { .. })
        ));
        // Every byte of the certificate matters: flipped, it either does
        // not decode or does not verify.
        for i in 0..cert.as_bytes().len() {
            let mut bytes = cert.as_bytes().to_vec();
            bytes[i] ^= 0x01;
            if let Ok(tampered) = Certificate::decode(&bytes) {
                assert!(
                    tampered.verify(&authority.public(), now).is_err(),
                    "byte {i} flipped still verifies"
                );
            }
        }
    }

    /// Found by the `cert` fuzz target (`fuzz/corpus/cert/regression-*`):
    /// the expiry of a decoded certificate, `u64::MAX` seconds, overflowed
    /// the clock in `not_after` (a panic on bytes from the network).
    #[test]
    fn an_expiry_past_the_clock_s_range_is_never() {
        let authority = ClusterAuthority::generate().expect("random");
        let cert = authority
            .certify(&node("node-a"), "prod", [7; 32], None)
            .expect("signs");
        let mut bytes = cert.as_bytes().to_vec();
        bytes[69..77].copy_from_slice(&u64::MAX.to_be_bytes());
        let unsigned = Certificate::decode(&bytes).expect("decodes");
        assert_eq!(unsigned.not_after(), None);
        assert!(matches!(
            unsigned.verify(&authority.public(), SystemTime::now()),
            Err(IdentityError::Signature { .. })
        ));
        // Signed so by the authority: it verifies, and never expires.
        let body_end = bytes.len() - SIGNATURE_LEN;
        let signature = authority.0.sign(&signed_message(&bytes[..body_end]));
        bytes[body_end..].copy_from_slice(&signature.to_bytes());
        let signed = Certificate::decode(&bytes).expect("decodes");
        assert_eq!(signed.not_after(), None);
        signed
            .verify(&authority.public(), SystemTime::now())
            .expect("verifies");
    }

    #[test]
    fn a_re_signed_field_does_not_pass_as_the_authority() {
        // Someone rewrites the node id and signs with their own key but
        // leaves the real authority's key in the certificate.
        let authority = ClusterAuthority::generate().expect("random");
        let forger = ClusterAuthority::generate().expect("random");
        let forged = forger
            .certify(&node("node-b"), "prod", [7; 32], None)
            .expect("signs");
        let mut bytes = forged.as_bytes().to_vec();
        bytes[5..37].copy_from_slice(&authority.public().to_bytes());
        let forged = Certificate::decode(&bytes).expect("decodes");
        assert!(matches!(
            forged.verify(&authority.public(), SystemTime::now()),
            Err(IdentityError::Signature { .. })
        ));
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let authority = ClusterAuthority::generate().expect("random");
        let soon = SystemTime::now() + Duration::from_secs(60);
        let cert = authority
            .certify(&node("node-a"), "prod", [7; 32], Some(soon))
            .expect("signs");
        cert.verify(&authority.public(), SystemTime::now())
            .expect("valid now");
        let later = soon + Duration::from_secs(1);
        let err = cert
            .verify(&authority.public(), later)
            .expect_err("expired");
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[test]
    fn bad_layouts_are_refused() {
        let authority = ClusterAuthority::generate().expect("random");
        let cert = authority
            .certify(&node("node-a"), "prod", [7; 32], None)
            .expect("signs");
        let bytes = cert.as_bytes();
        assert!(Certificate::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Certificate::decode(&longer).is_err());
        assert!(Certificate::decode(b"").is_err());
        assert!(Certificate::decode(&[0u8; 400]).is_err());
        assert!(Certificate::decode(&vec![0u8; 10_000]).is_err());
        let mut bad_node = bytes.to_vec();
        let node_at = bytes.len() - SIGNATURE_LEN - "node-a".len();
        bad_node[node_at] = b' ';
        assert!(Certificate::decode(&bad_node).is_err());
        assert!(
            authority.certify(&node("n"), "", [0; 32], None).is_err(),
            "an empty cluster id"
        );
        assert!(authority
            .certify(&node("n"), &"c".repeat(MAX_CLUSTER_LEN + 1), [0; 32], None)
            .is_err());
        // The longest ids fit.
        let long = authority
            .certify(
                &node(&"n".repeat(64)),
                &"c".repeat(MAX_CLUSTER_LEN),
                [0; 32],
                None,
            )
            .expect("signs");
        assert_eq!(long.as_bytes().len(), MAX_CERTIFICATE);
    }

    #[test]
    fn text_forms_round_trip_and_name_what_is_wrong() {
        let key = NodeKey::generate().expect("random");
        assert_eq!(NodeKey::from_text(&key.to_text()), Ok(key.clone()));
        let authority = ClusterAuthority::generate().expect("random");
        let again = ClusterAuthority::from_text(&authority.to_text()).expect("reads");
        assert_eq!(again.public(), authority.public());
        let public = authority.public();
        assert_eq!(AuthorityKey::from_text(&public.to_text()), Ok(public));
        // One kind is not read as another.
        let err = NodeKey::from_text(&public.to_text()).expect_err("not a node key");
        assert!(err.to_string().contains("node key"), "{err}");
        let err = AuthorityKey::from_text("mobility-authority-v1:zz").expect_err("bad hex");
        assert!(err.to_string().contains("hex"), "{err}");
        // Debug hides private halves.
        assert!(!format!("{key:?}").contains(&key.to_text()[NODE_KEY_TEXT.len()..]));
        assert!(
            !format!("{authority:?}").contains(&authority.to_text()[AUTHORITY_SECRET_TEXT.len()..])
        );
    }

    #[test]
    fn an_authority_from_a_secret_is_the_same_for_every_holder() {
        let a = ClusterAuthority::from_secret(&Secret::from("s"));
        let b = ClusterAuthority::from_secret(&Secret::from("s"));
        let c = ClusterAuthority::from_secret(&Secret::from("t"));
        assert_eq!(a.public(), b.public());
        assert_ne!(a.public(), c.public());
    }

    #[test]
    fn the_public_key_is_the_x25519_one() {
        // RFC 7748, section 6.1: Alice's key pair.
        let private =
            unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").expect("hex");
        let public =
            unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a").expect("hex");
        let key = NodeKey::from_bytes(private.try_into().expect("32 bytes"));
        assert_eq!(key.public().to_vec(), public);
    }
}
