//! Watching a node: the actors it hosts ([`Node::actors`]), what happens to
//! them as it happens ([`Node::observe`]), and which member of the cluster
//! hosts which named actor ([`Node::directory_snapshot`]).
//!
//! Reading costs the actors nothing: `actors` takes the node's table for a
//! moment and reads each actor's relaxed counters; events go out on a
//! broadcast channel whose sender never waits.

use super::*;
use crate::proto::observe::NodeEvent;

/// How many events a subscriber may fall behind before it loses the oldest.
pub(super) const EVENT_BUFFER: usize = 1024;

/// An actor hosted by a node, as [`Node::actors`] saw it.
#[derive(Clone)]
pub struct ActorInfo {
    /// The actor's id (the same on every node, across every move).
    pub id: ActorId,
    /// Its type tag, as `#[mobile]` registered it.
    pub type_tag: &'static str,
    /// Its Rust type (`std::any::type_name`).
    pub rust_type: &'static str,
    /// Its name in the cluster, if it has one.
    pub name: Option<String>,
    /// Messages waiting for it now: in its mailbox, and taken in but not
    /// handled yet (the one being handled not included).
    pub mailbox_depth: usize,
    /// Messages (requests, casts, timers) it handled on this node.
    pub messages_handled: u64,
    /// Its epoch: how many times it migrated.
    pub epoch: u64,
    /// The version of its type it runs: this build's (its state was
    /// upgraded on arrival if it came from an older one).
    pub version: u32,
    entry: Arc<dyn ErasedEntry>,
}

impl ActorInfo {
    /// A handle to the actor, of its type `A`; [`Error::WrongType`] for
    /// another type. The handle sends from the node that listed the actor,
    /// and follows it wherever it goes.
    pub fn handle<A: Actor>(&self) -> Result<Handle<A>, Error> {
        let id = self.id;
        Node::downcast::<A>(self.entry.clone(), || format!("actor {id}"))
            .map(|entry| Handle::from_mailbox(entry))
    }
}

impl fmt::Debug for ActorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorInfo")
            .field("id", &self.id)
            .field("type_tag", &self.type_tag)
            .field("rust_type", &self.rust_type)
            .field("name", &self.name)
            .field("mailbox_depth", &self.mailbox_depth)
            .field("messages_handled", &self.messages_handled)
            .field("epoch", &self.epoch)
            .field("version", &self.version)
            .finish()
    }
}

/// A named actor as the cluster's directory knows it
/// ([`Node::directory_snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamedActor {
    /// The name, unique in the cluster.
    pub name: String,
    /// The actor holding it.
    pub actor: ActorId,
    /// The actor's type tag.
    pub type_tag: String,
    /// The member hosting it now.
    pub node: NodeId,
    /// The version of its type that member runs, as it announced
    /// ([`Node::type_versions`]); during a rolling upgrade, names of one
    /// type may be served by different versions. A [`Node::lookup`] finds
    /// the actor whatever its version: a handler both versions have works
    /// across them, and one the serving version lacks answers
    /// [`Error::UnknownHandler`].
    pub version: Option<u32>,
}

impl Node {
    /// The actors active on this node now, sorted by id, each with its
    /// type, name, mailbox depth and messages handled, and a way to a
    /// [`Handle`] ([`ActorInfo::handle`]).
    pub fn actors(&self) -> Vec<ActorInfo> {
        let hosted: Vec<Arc<dyn ErasedEntry>> = read(&self.shared.entries)
            .values()
            .filter(|e| e.is_hosting())
            .cloned()
            .collect();
        let mut names: HashMap<ActorId, String> = lock(&self.shared.names)
            .iter()
            .map(|(name, id)| (*id, name.clone()))
            .collect();
        let registry = self.registry();
        let mut actors: Vec<ActorInfo> = hosted
            .into_iter()
            .map(|entry| {
                let id = entry.actor();
                let activity = entry.activity();
                ActorInfo {
                    id,
                    type_tag: entry.type_tag(),
                    rust_type: entry.rust_type(),
                    name: names.remove(&id),
                    mailbox_depth: activity.depth(),
                    messages_handled: activity.handled(),
                    epoch: entry.current_route().epoch,
                    version: registry.get(entry.type_tag()).map_or(0, |t| t.version()),
                    entry,
                }
            })
            .collect();
        actors.sort_by_key(|a| a.id);
        actors
    }

    /// Events as they happen on this node: actors spawned, arrived,
    /// departed (with their [`MigrationReport`]), failing to move, stopped
    /// (with their [`ExitReason`]), and membership changes.
    ///
    /// A subscriber sees what happens after it subscribed. Nothing waits
    /// for it: one that falls more than 1,024 events behind loses the
    /// oldest, and its next `recv` returns
    /// [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged)
    /// with how many it missed (then [`Node::actors`] tells the present).
    pub fn observe(&self) -> tokio::sync::broadcast::Receiver<NodeEvent> {
        self.shared.events.subscribe()
    }

    /// The named actors of this node's cluster and the member hosting each,
    /// sorted by name, as this node's copy of the directory has them now
    /// (it lags the truth by about a gossip round). A node without a
    /// cluster lists its own named actors.
    pub fn directory_snapshot(&self) -> Vec<NamedActor> {
        if let Some(directory) = &self.shared.directory {
            // Each member's announcement decoded once, not once per name.
            let mut announced: HashMap<NodeId, Option<Vec<crate::node::TypeVersions>>> =
                HashMap::new();
            return directory
                .names()
                .into_iter()
                .map(|(name, entry)| NamedActor {
                    version: announced
                        .entry(entry.node.clone())
                        .or_insert_with(|| self.type_versions(&entry.node))
                        .as_deref()
                        .and_then(|types| types.iter().find(|t| t.tag == entry.type_tag))
                        .map(|t| t.runs),
                    name,
                    actor: entry.actor,
                    type_tag: entry.type_tag,
                    node: entry.node,
                })
                .collect();
        }
        let mut named: Vec<NamedActor> = self
            .actors()
            .into_iter()
            .filter_map(|actor| {
                Some(NamedActor {
                    name: actor.name?,
                    actor: actor.id,
                    type_tag: actor.type_tag.to_owned(),
                    node: self.id().clone(),
                    version: Some(actor.version),
                })
            })
            .collect();
        named.sort_by(|a, b| a.name.cmp(&b.name));
        named
    }

    /// The named actor `name` as this node's copy of the directory has it
    /// now (what [`directory_snapshot`](Node::directory_snapshot) lists for
    /// that name, without listing the others): which actor holds it and
    /// which member hosts it.
    pub fn directory_entry(&self, name: &str) -> Option<NamedActor> {
        let Some(directory) = &self.shared.directory else {
            return self
                .directory_snapshot()
                .into_iter()
                .find(|n| n.name == name);
        };
        let found = directory.find_name(name)?;
        let node = directory
            .locate(found.actor)
            .map_or(found.node, |(node, _)| node);
        Some(NamedActor {
            version: self.version_on(&node, &found.type_tag),
            name: name.to_owned(),
            actor: found.actor,
            type_tag: found.type_tag,
            node,
        })
    }

    /// Tells the observers (if any) what happened.
    pub(crate) fn emit(&self, event: NodeEvent) {
        self.shared.meters.record(&event, self.registry());
        // No subscriber: an error, and nothing to do.
        let _ = self.shared.events.send(event);
    }
}
