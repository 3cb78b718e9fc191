use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The unique name of a node, e.g. `node-a`. Cheap to clone.
///
/// Allowed characters: ASCII letters, digits, `-`, `_` and `.`; 1 to 64 of them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(Arc<str>);

/// Why a text is not a valid node id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node id {text:?}: use 1 to 64 ASCII letters, digits, '-', '_' or '.'")]
pub struct NodeIdError {
    /// The rejected text.
    pub text: String,
}

impl NodeId {
    /// Checks and wraps a node name.
    pub fn new(text: &str) -> Result<Self, NodeIdError> {
        let valid = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid {
            Ok(NodeId(Arc::from(text)))
        } else {
            Err(NodeIdError {
                text: text.to_owned(),
            })
        }
    }

    /// The node's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NodeId {
    type Err = NodeIdError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        NodeId::new(text)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        NodeId::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_and_rejects_garbage() {
        assert_eq!(
            NodeId::new("node-a.1_x").map(|n| n.to_string()),
            Ok("node-a.1_x".into())
        );
        assert!(NodeId::new("").is_err());
        assert!(NodeId::new("a b").is_err());
        assert!(NodeId::new(&"x".repeat(65)).is_err());
        let decoded: Result<NodeId, _> =
            crate::decode(&crate::encode(&"bad name").unwrap_or_default());
        assert!(decoded.is_err(), "a bad node id on the wire is refused");
    }
}
