//! The actor types compiled into this binary, by type tag, so a destination
//! can rebuild an actor that arrives as bytes. No code ever travels.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Instant;

use crate::api::actor::Actor;
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

type PrepareFn = fn(&Node, PrepareArgs<'_>) -> Result<(), MigrationFailure>;
type MailboxFn = fn(&Node, ActorId, Route) -> Result<Box<dyn Any + Send>, Error>;

/// One registered actor type. Submitted by `#[mobile]` through `inventory`.
pub struct ActorType {
    tag: &'static str,
    schema: u64,
    rust_name: &'static str,
    prepare: PrepareFn,
    mailbox: MailboxFn,
}

impl ActorType {
    /// The registration of actor type `A` (used by generated code).
    pub const fn of<A: Actor>(rust_name: &'static str) -> Self {
        ActorType {
            tag: A::TYPE_TAG,
            schema: A::SCHEMA,
            rust_name,
            prepare: prepare::<A>,
            mailbox: mailbox::<A>,
        }
    }

    pub(crate) fn tag(&self) -> &'static str {
        self.tag
    }

    pub(crate) fn schema(&self) -> u64 {
        self.schema
    }

    pub(crate) fn prepare(
        &self,
        node: &Node,
        args: PrepareArgs<'_>,
    ) -> Result<(), MigrationFailure> {
        (self.prepare)(node, args)
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
            .field("schema", &format_args!("{:016x}", self.schema))
            .field("rust_name", &self.rust_name)
            .finish()
    }
}

inventory::collect!(ActorType);

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

/// Decodes a snapshot of `A` and hands it to the actor's cell on this node.
fn prepare<A: Actor>(node: &Node, args: PrepareArgs<'_>) -> Result<(), MigrationFailure> {
    let started = Instant::now();
    let snapshot: Snapshot<A> = crate::api::codec::decode_on(Some(node.host()), args.snapshot)
        .map_err(|e| MigrationFailure::Codec(e.to_string()))?;
    node.arrive::<A>(
        args.from,
        args.actor,
        args.epoch,
        Box::new(snapshot),
        started,
    )
}

/// The types of this binary, by tag.
#[derive(Debug)]
pub(crate) struct Registry {
    by_tag: HashMap<&'static str, &'static ActorType>,
}

impl Registry {
    /// The registry of this binary, built once; duplicate tags are an error.
    pub(crate) fn global() -> Result<&'static Registry, Error> {
        static REGISTRY: OnceLock<Result<Registry, Error>> = OnceLock::new();
        REGISTRY
            .get_or_init(|| Registry::build(inventory::iter::<ActorType>()))
            .as_ref()
            .map_err(Clone::clone)
    }

    pub(crate) fn build<'a>(
        types: impl IntoIterator<Item = &'a ActorType>,
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
        match duplicates.into_iter().next() {
            Some((tag, types)) => Err(Error::DuplicateTypeTag {
                tag: tag.to_owned(),
                types,
            }),
            None => Ok(Registry { by_tag }),
        }
    }

    pub(crate) fn get(&self, tag: &str) -> Option<&'static ActorType> {
        self.by_tag.get(tag).copied()
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
            rust_name,
            prepare: |_, _| Err(MigrationFailure::Busy),
            mailbox: |_, _, _| Err(Error::Detached),
        }
    }

    #[test]
    fn duplicate_tags_are_reported_with_both_types() {
        static TYPES: OnceLock<Vec<ActorType>> = OnceLock::new();
        let types = TYPES.get_or_init(|| vec![fake("a", "A"), fake("b", "B"), fake("a", "OtherA")]);
        match Registry::build(types.iter()) {
            Err(Error::DuplicateTypeTag { tag, types }) => {
                assert_eq!(tag, "a");
                assert_eq!(types, vec!["A".to_string(), "OtherA".to_string()]);
            }
            other => panic!("expected a duplicate tag error, got {other:?}"),
        }
        let ok = Registry::build(types[..2].iter()).expect("no duplicates");
        assert_eq!(ok.tags(), vec!["a".to_string(), "b".to_string()]);
    }
}
