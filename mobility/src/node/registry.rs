//! The actor types compiled into this binary, by type tag, so a destination
//! can rebuild an actor that arrives as bytes. No code ever travels.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Instant;

use crate::api::actor::{Actor, Mobile, Versioned};
use crate::api::Host;
use crate::api::Mailbox;
use crate::node::Node;
use crate::proto::error::Error;
use crate::proto::id::{ActorId, NodeId, Route};
use crate::proto::migration::{MigrationFailure, Snapshot};

/// A prepare request, as the destination's link hands it to the registry.
#[derive(Debug)]
pub(crate) struct PrepareArgs<'a> {
    pub(crate) from: NodeId,
    pub(crate) actor: ActorId,
    pub(crate) epoch: u64,
    pub(crate) snapshot: &'a [u8],
}

/// Decodes a snapshot of one version of an actor type into a snapshot of the
/// current actor (`Box<Snapshot<A>>`), upgrading its state if it is older.
type RestoreFn = fn(Option<Arc<dyn Host>>, &[u8]) -> Result<Box<dyn Any + Send>, MigrationFailure>;
/// Hands a restored `Box<Snapshot<A>>` to the actor's cell on this node.
type ArriveFn =
    fn(&Node, PrepareArgs<'_>, Box<dyn Any + Send>, Instant) -> Result<(), MigrationFailure>;
type MailboxFn = fn(&Node, ActorId, Route) -> Result<Box<dyn Any + Send>, Error>;

/// One registered actor type. Submitted by `#[mobile]` through `inventory`.
pub struct ActorType {
    tag: &'static str,
    schema: u64,
    version: u32,
    state_schema: u64,
    rust_name: &'static str,
    restore: RestoreFn,
    arrive: ArriveFn,
    mailbox: MailboxFn,
}

impl ActorType {
    /// The registration of actor type `A` (used by generated code).
    pub const fn of<A: Actor>(rust_name: &'static str) -> Self {
        ActorType {
            tag: A::TYPE_TAG,
            schema: A::SCHEMA,
            version: A::VERSION,
            state_schema: <A as Mobile>::FINGERPRINT,
            rust_name,
            restore: restore::<A>,
            arrive: arrive::<A>,
            mailbox: mailbox::<A>,
        }
    }

    pub(crate) fn tag(&self) -> &'static str {
        self.tag
    }

    /// The version of the type this build runs.
    pub(crate) fn version(&self) -> u32 {
        self.version
    }

    /// This node's mailbox for an actor of this type (see
    /// [`Host::mailbox_for`](crate::api::Host::mailbox_for)).
    pub(crate) fn mailbox(
        &self,
        node: &Node,
        actor: ActorId,
        route: Route,
    ) -> Result<Box<dyn Any + Send>, Error> {
        (self.mailbox)(node, actor, route)
    }
}

impl fmt::Debug for ActorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorType")
            .field("tag", &self.tag)
            .field("version", &self.version)
            .field("schema", &format_args!("{:016x}", self.schema))
            .field("state_schema", &format_args!("{:016x}", self.state_schema))
            .field("rust_name", &self.rust_name)
            .finish()
    }
}

inventory::collect!(ActorType);

/// An older version of an actor type that this build accepts and upgrades.
/// Submitted by `#[mobile(previous_of = Actor, version = N)]` through
/// `inventory`.
pub struct OlderVersion {
    tag: &'static str,
    version: u32,
    state_schema: u64,
    rust_name: &'static str,
    restore: RestoreFn,
}

impl OlderVersion {
    /// The registration of version `V` of actor type `A` (used by generated
    /// code).
    pub const fn of<A: Versioned<V>, const V: u32>(rust_name: &'static str) -> Self {
        OlderVersion {
            tag: A::TYPE_TAG,
            version: V,
            state_schema: <A::State as Mobile>::FINGERPRINT,
            rust_name,
            restore: restore_older::<A, V>,
        }
    }
}

impl fmt::Debug for OlderVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OlderVersion")
            .field("tag", &self.tag)
            .field("version", &self.version)
            .field("state_schema", &format_args!("{:016x}", self.state_schema))
            .field("rust_name", &self.rust_name)
            .finish()
    }
}

inventory::collect!(OlderVersion);

/// What a destination does with a snapshot it accepts: restore it (decode,
/// and upgrade an older version), then hand it to the actor's cell.
#[derive(Clone, Copy)]
pub(crate) struct Arrival {
    restore: RestoreFn,
    arrive: ArriveFn,
}

impl fmt::Debug for Arrival {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Arrival")
    }
}

impl Arrival {
    /// Decodes the snapshot (upgrading an older version's state) and hands
    /// the actor to its cell, which runs `on_arrive` and answers the source.
    pub(crate) fn prepare(
        &self,
        node: &Node,
        args: PrepareArgs<'_>,
    ) -> Result<(), MigrationFailure> {
        let started = Instant::now();
        let snapshot = (self.restore)(Some(node.host()), args.snapshot)?;
        (self.arrive)(node, args, snapshot, started)
    }

    /// The snapshot decoded and upgraded: a `Box<Snapshot<A>>` of the
    /// current actor `A`.
    #[cfg(test)]
    pub(crate) fn restore(&self, bytes: &[u8]) -> Result<Box<dyn Any + Send>, MigrationFailure> {
        (self.restore)(None, bytes)
    }
}

/// The mailbox of `A` on `node`, for a handle decoded there: the
/// `Arc<dyn Mailbox<A>>` the handle holds, boxed for the layer that cannot
/// name `A`'s entry.
fn mailbox<A: Actor>(
    node: &Node,
    actor: ActorId,
    route: Route,
) -> Result<Box<dyn Any + Send>, Error> {
    let entry = node.entry_for::<A>(actor, route.node, route.epoch)?;
    Ok(Box::new(entry as Arc<dyn Mailbox<A>>))
}

/// Decodes a snapshot of the current version of `A`.
fn restore<A: Actor>(
    host: Option<Arc<dyn Host>>,
    bytes: &[u8],
) -> Result<Box<dyn Any + Send>, MigrationFailure> {
    let snapshot: Snapshot<A> = crate::api::codec::decode_on(host, bytes)
        .map_err(|e| MigrationFailure::Codec(e.to_string()))?;
    Ok(Box::new(snapshot))
}

/// Decodes a snapshot of version `V` of `A` and upgrades its state to the
/// current version (before `on_arrive`, which runs in the cell). An upgrade
/// that panics refuses the actor, which stays at the source.
fn restore_older<A: Versioned<V>, const V: u32>(
    host: Option<Arc<dyn Host>>,
    bytes: &[u8],
) -> Result<Box<dyn Any + Send>, MigrationFailure> {
    let snapshot: Snapshot<A::State> = crate::api::codec::decode_on(host, bytes)
        .map_err(|e| MigrationFailure::Codec(e.to_string()))?;
    let snapshot: Snapshot<A> = snapshot.map_state(|old| {
        std::panic::catch_unwind(AssertUnwindSafe(|| A::upgrade(old))).map_err(|panic| {
            MigrationFailure::ArriveFailed(format!(
                "the upgrade from version {V} to version {} panicked: {}",
                A::VERSION,
                crate::cell::panic_message(&*panic)
            ))
        })
    })?;
    Ok(Box::new(snapshot))
}

/// Hands a restored snapshot of `A` to its cell on `node`.
fn arrive<A: Actor>(
    node: &Node,
    args: PrepareArgs<'_>,
    snapshot: Box<dyn Any + Send>,
    started: Instant,
) -> Result<(), MigrationFailure> {
    let snapshot = snapshot
        .downcast::<Snapshot<A>>()
        .map_err(|_| MigrationFailure::Codec("a snapshot of another actor type".into()))?;
    node.arrive::<A>(args.from, args.actor, args.epoch, snapshot, started)
}

/// The types of this binary, by tag, with the older versions each accepts.
#[derive(Debug)]
pub(crate) struct Registry {
    by_tag: HashMap<&'static str, &'static ActorType>,
    older: HashMap<&'static str, BTreeMap<u32, &'static OlderVersion>>,
}

impl Registry {
    /// The registry of this binary, built once; duplicate tags are an error.
    pub(crate) fn global() -> Result<&'static Registry, Error> {
        static REGISTRY: OnceLock<Result<Registry, Error>> = OnceLock::new();
        REGISTRY
            .get_or_init(|| {
                Registry::build(
                    inventory::iter::<ActorType>(),
                    inventory::iter::<OlderVersion>(),
                )
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    pub(crate) fn build<'a>(
        types: impl IntoIterator<Item = &'a ActorType>,
        older_versions: impl IntoIterator<Item = &'a OlderVersion>,
    ) -> Result<Registry, Error>
    where
        'a: 'static,
    {
        let mut by_tag: HashMap<&'static str, &'static ActorType> = HashMap::new();
        let mut duplicates: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for ty in types {
            if let Some(first) = by_tag.insert(ty.tag, ty) {
                let names = duplicates
                    .entry(ty.tag)
                    .or_insert_with(|| vec![first.rust_name.to_owned()]);
                names.push(ty.rust_name.to_owned());
            }
        }
        // One declaration per version is checked at compile time (one impl of
        // `Versioned<N>` per actor); two here means two types share a tag.
        let mut older: HashMap<&'static str, BTreeMap<u32, &'static OlderVersion>> = HashMap::new();
        for version in older_versions {
            let versions = older.entry(version.tag).or_default();
            if let Some(first) = versions.insert(version.version, version) {
                let names = duplicates
                    .entry(version.tag)
                    .or_insert_with(|| vec![first.rust_name.to_owned()]);
                names.push(version.rust_name.to_owned());
            }
        }
        match duplicates.into_iter().next() {
            Some((tag, types)) => Err(Error::DuplicateTypeTag {
                tag: tag.to_owned(),
                types,
            }),
            None => Ok(Registry { by_tag, older }),
        }
    }

    pub(crate) fn get(&self, tag: &str) -> Option<&'static ActorType> {
        self.by_tag.get(tag).copied()
    }

    /// Whether this node takes an actor of type `tag` arriving in `version`
    /// with these fingerprints (of its state and messages, and of its state
    /// alone), and how. Its own version must match the whole schema; an
    /// older one it declares must match that version's state (each queued
    /// message is then decoded, or refused, by its handler's name); a newer
    /// one is refused.
    pub(crate) fn accept(
        &self,
        tag: &str,
        version: u32,
        schema: u64,
        state_schema: u64,
    ) -> Result<Arrival, MigrationFailure> {
        let Some(ty) = self.get(tag) else {
            return Err(MigrationFailure::UnknownType {
                tag: tag.to_owned(),
                known: self.tags(),
            });
        };
        let arrive = ty.arrive;
        match version.cmp(&ty.version) {
            std::cmp::Ordering::Equal if schema == ty.schema => Ok(Arrival {
                restore: ty.restore,
                arrive,
            }),
            std::cmp::Ordering::Equal => Err(MigrationFailure::SchemaMismatch {
                tag: tag.to_owned(),
                ours: schema,
                theirs: ty.schema,
            }),
            std::cmp::Ordering::Greater => Err(MigrationFailure::NewerVersion {
                tag: tag.to_owned(),
                ours: version,
                theirs: ty.version,
            }),
            std::cmp::Ordering::Less => {
                let versions = self.older.get(tag);
                match versions.and_then(|v| v.get(&version)) {
                    Some(older) if older.state_schema == state_schema => Ok(Arrival {
                        restore: older.restore,
                        arrive,
                    }),
                    Some(older) => Err(MigrationFailure::VersionSchemaMismatch {
                        tag: tag.to_owned(),
                        version,
                        ours: state_schema,
                        theirs: older.state_schema,
                    }),
                    None => Err(MigrationFailure::NoUpgrade {
                        tag: tag.to_owned(),
                        ours: version,
                        theirs: ty.version,
                        accepted: versions
                            .into_iter()
                            .flat_map(|v| v.keys().copied())
                            .chain([ty.version])
                            .collect(),
                    }),
                }
            }
        }
    }

    /// The older versions of type `tag` this build upgrades, ascending.
    pub(crate) fn older_versions(&self, tag: &str) -> Vec<u32> {
        self.older
            .get(tag)
            .map(|v| v.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Every known tag, sorted (for error messages).
    pub(crate) fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self.by_tag.keys().map(|t| (*t).to_owned()).collect();
        tags.sort();
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(tag: &'static str, rust_name: &'static str) -> ActorType {
        ActorType {
            tag,
            schema: 0,
            version: 1,
            state_schema: 0,
            rust_name,
            restore: |_, _| Err(MigrationFailure::Busy),
            arrive: |_, _, _, _| Err(MigrationFailure::Busy),
            mailbox: |_, _, _| Err(Error::Detached),
        }
    }

    #[test]
    fn duplicate_tags_are_reported_with_both_types() {
        static TYPES: OnceLock<Vec<ActorType>> = OnceLock::new();
        let types = TYPES.get_or_init(|| vec![fake("a", "A"), fake("b", "B"), fake("a", "OtherA")]);
        match Registry::build(types.iter(), []) {
            Err(Error::DuplicateTypeTag { tag, types }) => {
                assert_eq!(tag, "a");
                assert_eq!(types, vec!["A".to_string(), "OtherA".to_string()]);
            }
            other => panic!("expected a duplicate tag error, got {other:?}"),
        }
        let ok = Registry::build(types[..2].iter(), []).expect("no duplicates");
        assert_eq!(ok.tags(), vec!["a".to_string(), "b".to_string()]);
    }
}
