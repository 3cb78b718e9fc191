//! Mixed-version clusters: each member announces, in its gossip state, the
//! version of every actor type it runs and the older versions it upgrades,
//! so a drain places an actor only on members that take its version, a
//! migration toward a member that would refuse it fails before anything is
//! frozen, and the directory says which version serves a name.
//!
//! The announcement is a hint read before acting; the destination's own
//! check at prepare ([`Registry::accept`](super::registry::Registry)) stays
//! the authority (it also compares the state's fingerprint).

use crate::proto::id::NodeId;
use crate::proto::migration::MigrationFailure;

use super::registry::Registry;
use super::Node;

/// The gossip key of the announcement: entries separated by spaces (a tag
/// has no whitespace), each `<tag>=<runs>/<accepted,...>`.
pub(crate) const TYPES_KEY: &str = "types";

/// One actor type as a node runs it ([`Node::type_versions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TypeVersions {
    /// The type tag.
    pub tag: String,
    /// The version this node's build runs (every actor of the type here
    /// runs it).
    pub runs: u32,
    /// The versions it takes in: its own and the older ones it upgrades,
    /// ascending.
    pub accepts: Vec<u32>,
}

impl TypeVersions {
    /// Whether an actor of this type at `version` can move to this node.
    pub fn accepts(&self, version: u32) -> bool {
        self.accepts.contains(&version)
    }
}

/// The announcement of this build's registry.
pub(crate) fn encode(types: &[TypeVersions]) -> String {
    let mut out = String::new();
    for t in types {
        if !out.is_empty() {
            out.push(' ');
        }
        let accepts: Vec<String> = t.accepts.iter().map(u32::to_string).collect();
        out.push_str(&format!("{}={}/{}", t.tag, t.runs, accepts.join(",")));
    }
    out
}

/// A member's announcement; an entry that does not parse is skipped (a
/// newer build may say more).
pub(crate) fn decode(announced: &str) -> Vec<TypeVersions> {
    announced
        .split_whitespace()
        .filter_map(|entry| {
            let (tag, versions) = entry.rsplit_once('=')?;
            let (runs, accepts) = versions.split_once('/')?;
            let runs = runs.parse().ok()?;
            let mut accepts: Vec<u32> = accepts
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            accepts.sort_unstable();
            (!tag.is_empty()).then(|| TypeVersions {
                tag: tag.to_owned(),
                runs,
                accepts,
            })
        })
        .collect()
}

/// What a node announcing `types` would answer an actor of type `tag` at
/// `version` arriving: `None` if it takes it.
pub(crate) fn refusal(types: &[TypeVersions], tag: &str, version: u32) -> Option<MigrationFailure> {
    let Some(ty) = types.iter().find(|t| t.tag == tag) else {
        return Some(MigrationFailure::UnknownType {
            tag: tag.to_owned(),
            known: types.iter().map(|t| t.tag.clone()).collect(),
        });
    };
    if ty.accepts(version) {
        None
    } else if version > ty.runs {
        Some(MigrationFailure::NewerVersion {
            tag: tag.to_owned(),
            ours: version,
            theirs: ty.runs,
        })
    } else {
        Some(MigrationFailure::NoUpgrade {
            tag: tag.to_owned(),
            ours: version,
            theirs: ty.runs,
            accepted: ty.accepts.clone(),
        })
    }
}

impl Registry {
    /// Every type of this build, sorted by tag, with the versions it takes.
    pub(crate) fn type_versions(&self) -> Vec<TypeVersions> {
        let mut types: Vec<TypeVersions> = self
            .tags()
            .into_iter()
            .filter_map(|tag| {
                let runs = self.get(&tag)?.version();
                let mut accepts = self.older_versions(&tag);
                accepts.push(runs);
                accepts.sort_unstable();
                Some(TypeVersions { tag, runs, accepts })
            })
            .collect();
        types.sort_by(|a, b| a.tag.cmp(&b.tag));
        types
    }
}

impl Node {
    /// The actor types `node` runs, with the version of each and the older
    /// versions it upgrades: this node's own build, or what a member of its
    /// cluster announced in gossip (`None` for a node that is not a live
    /// member or announced nothing, such as a node of another cluster).
    ///
    /// In a cluster where builds differ (during a rolling upgrade),
    /// [`drain`](Node::drain) places each actor only on members that take
    /// its version, and [`migrate`](Node::migrate) toward a member that
    /// would refuse it fails at once, the actor still serving here.
    pub fn type_versions(&self, node: &NodeId) -> Option<Vec<TypeVersions>> {
        if node == self.id() {
            return Some(self.registry().type_versions());
        }
        let announced = self.shared.directory.as_ref()?.value_of(node, TYPES_KEY)?;
        Some(decode(&announced))
    }

    /// Why `dest` would refuse an actor of type `tag` at `version`, as it
    /// announced its types (`None`: it takes it, or did not say).
    pub(crate) fn version_refusal(
        &self,
        dest: &NodeId,
        tag: &str,
        version: u32,
    ) -> Option<MigrationFailure> {
        if dest == self.id() {
            return None;
        }
        refusal(&self.type_versions(dest)?, tag, version)
    }

    /// The version of type `tag` that the member hosting an actor runs, as
    /// announced (for the directory's view of a name).
    pub(crate) fn version_on(&self, node: &NodeId, tag: &str) -> Option<u32> {
        self.type_versions(node)?
            .into_iter()
            .find(|t| t.tag == tag)
            .map(|t| t.runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(tag: &str, runs: u32, accepts: &[u32]) -> TypeVersions {
        TypeVersions {
            tag: tag.into(),
            runs,
            accepts: accepts.to_vec(),
        }
    }

    #[test]
    fn the_announcement_round_trips_and_skips_what_it_cannot_read() {
        let types = vec![ty("shop.parcel", 3, &[1, 2, 3]), ty("a=b", 1, &[1])];
        let text = encode(&types);
        assert_eq!(text, "shop.parcel=3/1,2,3 a=b=1/1");
        assert_eq!(decode(&text), types);
        let noisy = format!("{text} garbage =1/1 x=y/1 z=2/ w=4/4,5");
        let mut expected = types;
        expected.push(ty("w", 4, &[4, 5]));
        assert_eq!(decode(&noisy), expected);
    }

    #[test]
    fn refusals_say_what_the_destination_would() {
        let types = vec![ty("counter", 2, &[1, 2])];
        assert_eq!(refusal(&types, "counter", 1), None);
        assert_eq!(refusal(&types, "counter", 2), None);
        assert!(matches!(
            refusal(&types, "counter", 3),
            Some(MigrationFailure::NewerVersion {
                ours: 3,
                theirs: 2,
                ..
            })
        ));
        let old_only = vec![ty("counter", 3, &[2, 3])];
        assert!(matches!(
            refusal(&old_only, "counter", 1),
            Some(MigrationFailure::NoUpgrade {
                ours: 1,
                theirs: 3,
                ..
            })
        ));
        assert!(matches!(
            refusal(&types, "other", 1),
            Some(MigrationFailure::UnknownType { .. })
        ));
    }
}
