//! What a node proves in its handshakes and whom it believes: its
//! [`Credentials`] (static key and certificate), the authority whose
//! certificates let a node join its cluster, and the other clusters it
//! trusts ([`TrustedCluster`]); read from the environment or files
//! ([`TcpConfig::with_identity_from_env`]), minted with [`mint`].
//!
//! With none of them configured (a secret alone), a node generates its
//! static key when it starts and certifies it with an authority derived
//! from the cluster's secret ([`ClusterAuthority::from_secret`]): links
//! still bind each node id to a key for the lifetime of a process, but
//! any holder of the secret can mint an identity for any node id.

use std::sync::Once;
use std::time::{Duration, SystemTime};

use super::cert::{AuthorityKey, Certificate, ClusterAuthority, IdentityError, NodeKey};
use super::config::{Identity, Secret, TcpConfig};
use super::noise;
use crate::NodeId;

/// This node's static key pair and the certificate binding its node id
/// to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The node's static key pair.
    pub key: NodeKey,
    /// Its certificate, signed by its cluster's authority.
    pub certificate: Certificate,
}

/// Another cluster whose nodes this node links with (migrations in and
/// out), identified by the key of that cluster's authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedCluster {
    /// The other cluster's id.
    pub cluster: String,
    /// The public key of its authority: its nodes' certificates must be
    /// signed by it.
    pub authority: AuthorityKey,
}

/// Environment variable of this node's static key (text form of
/// [`NodeKey`]); with the suffix `_FILE`, a file holding it.
pub const ENV_NODE_KEY: &str = "MOBILITY_NODE_KEY";
/// Environment variable of this node's certificate (text form of
/// [`Certificate`]), or `..._FILE`.
pub const ENV_NODE_CERT: &str = "MOBILITY_NODE_CERT";
/// Environment variable of the public key of this node's cluster
/// authority (text form of [`AuthorityKey`]), or `..._FILE`: who may join
/// the cluster.
pub const ENV_CLUSTER_AUTHORITY: &str = "MOBILITY_CLUSTER_AUTHORITY";
/// Environment variable of the other clusters trusted, as
/// `cluster=authority-key` pairs separated by commas, spaces or newlines,
/// or `..._FILE`.
pub const ENV_TRUSTED_CLUSTERS: &str = "MOBILITY_TRUSTED_CLUSTERS";

/// Mints the identity of `node` of `cluster`: a fresh static key and its
/// certificate signed by `authority`, valid for `valid_for` (for ever if
/// `None`).
pub fn mint(
    authority: &ClusterAuthority,
    node: &NodeId,
    cluster: &str,
    valid_for: Option<Duration>,
) -> Result<Credentials, IdentityError> {
    let key = NodeKey::generate()?;
    let not_after = valid_for.map(|d| SystemTime::now() + d);
    let certificate = authority.certify(node, cluster, key.public(), not_after)?;
    Ok(Credentials { key, certificate })
}

/// Reads `MOBILITY_TRUSTED_CLUSTERS`'s format: `cluster=key` pairs.
pub fn parse_trusted_clusters(text: &str) -> Result<Vec<TrustedCluster>, IdentityError> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (cluster, key) = entry.split_once('=').ok_or_else(|| {
                IdentityError::Config(format!(
                    "{ENV_TRUSTED_CLUSTERS}: {entry:?} is not cluster=authority-key"
                ))
            })?;
            let authority = AuthorityKey::from_text(key).map_err(|e| {
                IdentityError::Config(format!("{ENV_TRUSTED_CLUSTERS}: cluster {cluster}: {e}"))
            })?;
            Ok(TrustedCluster {
                cluster: cluster.to_owned(),
                authority,
            })
        })
        .collect()
}

/// The value of `var`, or the content of the file named by `var_FILE`
/// (`None` if neither is set).
fn setting(
    var: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, IdentityError> {
    let file_var = format!("{var}_FILE");
    match (get(var), get(&file_var)) {
        (Some(_), Some(_)) => Err(IdentityError::Config(format!(
            "both {var} and {file_var} are set: give one"
        ))),
        (Some(value), None) => Ok(Some(value)),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| IdentityError::Config(format!("{file_var}: cannot read {path}: {e}"))),
        (None, None) => Ok(None),
    }
}

impl TcpConfig {
    /// This node's key and certificate (see [`TcpConfig::credentials`]).
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Who may join this node's cluster (see
    /// [`TcpConfig::cluster_authority`]).
    pub fn with_cluster_authority(mut self, authority: AuthorityKey) -> Self {
        self.cluster_authority = Some(authority);
        self
    }

    /// Trusts the nodes of `cluster` whose certificates `authority`
    /// signed, for links across clusters.
    pub fn with_trusted_cluster(
        mut self,
        cluster: impl Into<String>,
        authority: AuthorityKey,
    ) -> Self {
        self.trusted_clusters.push(TrustedCluster {
            cluster: cluster.into(),
            authority,
        });
        self
    }

    /// The same settings with the identity read from the environment:
    /// `MOBILITY_NODE_KEY`, `MOBILITY_NODE_CERT`,
    /// `MOBILITY_CLUSTER_AUTHORITY` and `MOBILITY_TRUSTED_CLUSTERS`, each
    /// given as a value or as a file (`MOBILITY_NODE_KEY_FILE=/path`...).
    /// Those not set leave the settings as they are; a key without a
    /// certificate (or the reverse) is an error, as is a value that does
    /// not read, each naming its variable.
    pub fn with_identity_from_env(self) -> Result<Self, IdentityError> {
        self.with_identity_from(&|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
    }

    /// [`TcpConfig::with_identity_from_env`] with the variables read by
    /// `get` instead of from the environment.
    pub fn with_identity_from(
        mut self,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, IdentityError> {
        let named = |var: &str, e: IdentityError| IdentityError::Config(format!("{var}: {e}"));
        let key = setting(ENV_NODE_KEY, get)?
            .map(|text| NodeKey::from_text(&text).map_err(|e| named(ENV_NODE_KEY, e)))
            .transpose()?;
        let cert = setting(ENV_NODE_CERT, get)?
            .map(|text| Certificate::from_text(&text).map_err(|e| named(ENV_NODE_CERT, e)))
            .transpose()?;
        match (key, cert) {
            (Some(key), Some(certificate)) => {
                self.credentials = Some(Credentials { key, certificate });
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(IdentityError::Config(format!(
                "{ENV_NODE_KEY} is set but not {ENV_NODE_CERT}: a node key needs its certificate"
            )))
            }
            (None, Some(_)) => {
                return Err(IdentityError::Config(format!(
                "{ENV_NODE_CERT} is set but not {ENV_NODE_KEY}: a certificate needs its node key"
            )))
            }
        }
        if let Some(text) = setting(ENV_CLUSTER_AUTHORITY, get)? {
            self.cluster_authority =
                Some(AuthorityKey::from_text(&text).map_err(|e| named(ENV_CLUSTER_AUTHORITY, e))?);
        }
        if let Some(text) = setting(ENV_TRUSTED_CLUSTERS, get)? {
            self.trusted_clusters.extend(parse_trusted_clusters(&text)?);
        }
        Ok(self)
    }
}

/// The identity a transport runs with, settled when it binds.
#[derive(Debug, Clone)]
pub(crate) struct LocalKeys {
    /// This node's static key pair.
    pub(crate) key: NodeKey,
    /// Its certificate for links within its cluster and with clusters
    /// trusted by their authority's key.
    pub(crate) certificate: Certificate,
    /// Who may join the cluster: the authority whose certificates are
    /// accepted from nodes claiming this node's cluster.
    pub(crate) authority: AuthorityKey,
    /// Whether that authority is the one derived from the cluster's secret.
    pub(crate) derived: bool,
}

static DERIVED_WARNING: Once = Once::new();

/// Settles this node's identity: checks the configured credentials
/// against `identity`, or generates a key and certifies it with the
/// authority derived from the secret (logging once per process that
/// identities are then only as strong as the secret).
pub(crate) fn settle(identity: &Identity, config: &TcpConfig) -> Result<LocalKeys, IdentityError> {
    let Some(credentials) = &config.credentials else {
        let derived = ClusterAuthority::from_secret(&identity.secret);
        if let Some(configured) = config.cluster_authority.filter(|a| *a != derived.public()) {
            return Err(IdentityError::Config(format!(
                "a cluster authority is configured ({configured}) but this node has no \
                 certificate: mint one (mobility_net::tcp::mint) and give it with its key \
                 ({ENV_NODE_KEY}, {ENV_NODE_CERT})"
            )));
        }
        DERIVED_WARNING.call_once(|| {
            tracing::warn!(
                node = %identity.node,
                cluster = %identity.cluster,
                "node identities derive from the cluster's shared secret: any holder of the \
                 secret can speak as any node id; configure a cluster authority and node \
                 certificates for per-node identities (README, \"Node identities\")"
            );
        });
        let key = NodeKey::generate()?;
        let certificate = derived.certify(&identity.node, &identity.cluster, key.public(), None)?;
        return Ok(LocalKeys {
            key,
            certificate,
            authority: derived.public(),
            derived: true,
        });
    };
    let certificate = &credentials.certificate;
    let authority = match config.cluster_authority {
        Some(authority) => authority,
        None => certificate.issuer()?,
    };
    certificate.verify(&authority, SystemTime::now())?;
    if certificate.node() != &identity.node {
        return Err(IdentityError::Mismatch(format!(
            "this node is {} but its certificate is for {}",
            identity.node,
            certificate.node()
        )));
    }
    if certificate.cluster() != identity.cluster {
        return Err(IdentityError::Mismatch(format!(
            "this node is of cluster {:?} but its certificate is for cluster {:?}",
            identity.cluster,
            certificate.cluster()
        )));
    }
    if certificate.static_key() != credentials.key.public() {
        return Err(IdentityError::Mismatch(format!(
            "the certificate of {} certifies another static key than the node key given",
            identity.node
        )));
    }
    Ok(LocalKeys {
        key: credentials.key.clone(),
        certificate: certificate.clone(),
        authority,
        derived: authority == ClusterAuthority::from_secret(&identity.secret).public(),
    })
}

/// How this node trusts another cluster.
#[derive(Debug, Clone)]
pub(crate) enum Trust {
    /// By a secret both clusters' nodes know (the Noise pre-shared key):
    /// certificates come from the authority derived from it, so any holder
    /// of the secret can mint them.
    Secret {
        psk: [u8; 32],
        authority: AuthorityKey,
        /// This node's certificate under that authority.
        certificate: Certificate,
    },
    /// By the key of its authority; no secret is shared.
    Authority(AuthorityKey),
}

impl Trust {
    /// Trust by `secret`, with this node's certificate minted under the
    /// authority derived from it.
    pub(crate) fn by_secret(
        secret: &Secret,
        identity: &Identity,
        keys: &LocalKeys,
    ) -> Result<Trust, IdentityError> {
        let authority = ClusterAuthority::from_secret(secret);
        let certificate =
            authority.certify(&identity.node, &identity.cluster, keys.key.public(), None)?;
        Ok(Trust::Secret {
            psk: noise::psk(secret),
            authority: authority.public(),
            certificate,
        })
    }
}

/// The terms of one handshake, once the peer's cluster is known: the
/// Noise pre-shared key, the authority the peer's certificate must come
/// from, and the certificate this node shows.
#[derive(Debug, Clone)]
pub(crate) struct Terms {
    pub(crate) psk: [u8; 32],
    pub(crate) authority: AuthorityKey,
    pub(crate) certificate: Certificate,
    /// Whether the authority is derived from a shared secret.
    pub(crate) derived: bool,
}

impl Terms {
    /// The terms with a peer of this node's own cluster.
    pub(crate) fn own(identity: &Identity, keys: &LocalKeys) -> Terms {
        Terms {
            psk: noise::psk(&identity.secret),
            authority: keys.authority,
            certificate: keys.certificate.clone(),
            derived: keys.derived,
        }
    }

    /// The terms with a peer of a cluster trusted by `trust`.
    pub(crate) fn trusted(trust: &Trust, keys: &LocalKeys) -> Terms {
        match trust {
            Trust::Secret {
                psk,
                authority,
                certificate,
            } => Terms {
                psk: *psk,
                authority: *authority,
                certificate: certificate.clone(),
                derived: true,
            },
            Trust::Authority(authority) => Terms {
                psk: noise::PUBLIC_PSK,
                authority: *authority,
                certificate: keys.certificate.clone(),
                derived: false,
            },
        }
    }
}

/// Checks the certificate a peer showed in the handshake: signed by the
/// authority of `terms`, not expired, for the node id and cluster of its
/// `Hello`, and for the static key it proved in the Noise handshake.
pub(crate) fn check_peer(
    bytes: &[u8],
    terms: &Terms,
    hello_node: &NodeId,
    hello_cluster: &str,
    remote_static: Option<[u8; 32]>,
) -> Result<Certificate, IdentityError> {
    let certificate = Certificate::decode(bytes)?;
    certificate
        .verify(&terms.authority, SystemTime::now())
        .map_err(|e| match e {
            IdentityError::Signature { .. } if terms.derived => IdentityError::Mismatch(format!(
                "{e} (derived from the shared secret here: the peer has another secret, \
                 or identities from another authority)"
            )),
            e => e,
        })?;
    if certificate.node() != hello_node {
        return Err(IdentityError::Mismatch(format!(
            "a peer claiming node id {hello_node} showed the certificate of {}",
            certificate.node()
        )));
    }
    if certificate.cluster() != hello_cluster {
        return Err(IdentityError::Mismatch(format!(
            "{hello_node} claims cluster {hello_cluster:?} but its certificate is for cluster {:?}",
            certificate.cluster()
        )));
    }
    if remote_static != Some(certificate.static_key()) {
        return Err(IdentityError::Mismatch(format!(
            "{hello_node} does not hold the static key its certificate names \
             (a copied certificate?)"
        )));
    }
    Ok(certificate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn node(name: &str) -> NodeId {
        NodeId::new(name).expect("valid")
    }

    fn identity(name: &str) -> Identity {
        Identity {
            node: node(name),
            cluster: "prod".into(),
            secret: Secret::from("s"),
            app_version: 0,
        }
    }

    fn vars(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        move |var| map.get(var).cloned()
    }

    #[test]
    fn settings_read_from_variables_and_files() {
        let authority = ClusterAuthority::generate().expect("random");
        let other = ClusterAuthority::generate().expect("random");
        let minted = mint(&authority, &node("a"), "prod", None).expect("mints");
        let dir = std::env::temp_dir().join(format!("mobility-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let key_file = dir.join("node.key");
        std::fs::write(&key_file, minted.key.to_text()).expect("writes");
        let get = vars(&[
            (
                "MOBILITY_NODE_KEY_FILE",
                key_file.to_string_lossy().into_owned(),
            ),
            ("MOBILITY_NODE_CERT", minted.certificate.to_text()),
            ("MOBILITY_CLUSTER_AUTHORITY", authority.public().to_text()),
            (
                "MOBILITY_TRUSTED_CLUSTERS",
                format!("away={},\n", other.public().to_text()),
            ),
        ]);
        let config = TcpConfig::default()
            .with_identity_from(&get)
            .expect("reads");
        assert_eq!(config.credentials, Some(minted));
        assert_eq!(config.cluster_authority, Some(authority.public()));
        assert_eq!(
            config.trusted_clusters,
            vec![TrustedCluster {
                cluster: "away".into(),
                authority: other.public()
            }]
        );
        let keys = settle(&identity("a"), &config).expect("consistent");
        assert_eq!(keys.authority, authority.public());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_settings_name_their_variable() {
        let authority = ClusterAuthority::generate().expect("random");
        let minted = mint(&authority, &node("a"), "prod", None).expect("mints");
        for (pairs, expected) in [
            (
                vec![("MOBILITY_NODE_KEY", minted.key.to_text())],
                "MOBILITY_NODE_CERT",
            ),
            (
                vec![("MOBILITY_NODE_CERT", minted.certificate.to_text())],
                "MOBILITY_NODE_KEY",
            ),
            (
                vec![("MOBILITY_CLUSTER_AUTHORITY", "nonsense".into())],
                "MOBILITY_CLUSTER_AUTHORITY",
            ),
            (
                vec![("MOBILITY_TRUSTED_CLUSTERS", "away".into())],
                "MOBILITY_TRUSTED_CLUSTERS",
            ),
            (
                vec![("MOBILITY_NODE_KEY_FILE", "/nonexistent/key".into())],
                "MOBILITY_NODE_KEY_FILE",
            ),
        ] {
            let err = TcpConfig::default()
                .with_identity_from(&vars(&pairs))
                .expect_err("refused");
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn settling_checks_the_credentials_against_the_node() {
        let authority = ClusterAuthority::generate().expect("random");
        let minted = mint(&authority, &node("a"), "prod", None).expect("mints");
        let config = TcpConfig::default().with_credentials(minted.clone());
        // The authority defaults to the certificate's issuer.
        let keys = settle(&identity("a"), &config).expect("consistent");
        assert_eq!(keys.authority, authority.public());
        let err = settle(&identity("b"), &config).expect_err("another node");
        assert!(err.to_string().contains("certificate is for a"), "{err}");
        let other = ClusterAuthority::generate().expect("random");
        let err = settle(
            &identity("a"),
            &config.with_cluster_authority(other.public()),
        )
        .expect_err("another authority");
        assert!(matches!(err, IdentityError::Signature { .. }), "{err}");
        let mut swapped = minted;
        swapped.key = NodeKey::generate().expect("random");
        let err = settle(
            &identity("a"),
            &TcpConfig::default().with_credentials(swapped),
        )
        .expect_err("another key");
        assert!(err.to_string().contains("static key"), "{err}");
        // An authority but no certificate: nothing to prove with.
        let err = settle(
            &identity("a"),
            &TcpConfig::default().with_cluster_authority(authority.public()),
        )
        .expect_err("no certificate");
        assert!(err.to_string().contains("no certificate"), "{err}");
        // A secret alone: an identity under the derived authority.
        let keys = settle(&identity("a"), &TcpConfig::default()).expect("derived");
        assert_eq!(
            keys.authority,
            ClusterAuthority::from_secret(&Secret::from("s")).public()
        );
        keys.certificate
            .verify(&keys.authority, SystemTime::now())
            .expect("verifies");
    }

    #[test]
    fn a_peer_certificate_must_match_its_hello_and_its_key() {
        let authority = ClusterAuthority::generate().expect("random");
        let minted = mint(&authority, &node("a"), "prod", None).expect("mints");
        let keys = settle(
            &identity("b"),
            &TcpConfig::default()
                .with_credentials(mint(&authority, &node("b"), "prod", None).expect("mints")),
        )
        .expect("consistent");
        let terms = Terms::own(&identity("b"), &keys);
        let bytes = minted.certificate.as_bytes();
        let key = Some(minted.key.public());
        check_peer(bytes, &terms, &node("a"), "prod", key).expect("valid");
        for (what, result) in [
            ("node", check_peer(bytes, &terms, &node("x"), "prod", key)),
            (
                "cluster",
                check_peer(bytes, &terms, &node("a"), "other", key),
            ),
            (
                "key",
                check_peer(bytes, &terms, &node("a"), "prod", Some([1; 32])),
            ),
            (
                "no key",
                check_peer(bytes, &terms, &node("a"), "prod", None),
            ),
            (
                "garbage",
                check_peer(b"junk", &terms, &node("a"), "prod", key),
            ),
        ] {
            assert!(result.is_err(), "{what} accepted");
        }
    }
}
