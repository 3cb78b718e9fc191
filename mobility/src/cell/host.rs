//! What a cell needs from its node: the node's tables, links and directory,
//! as one trait the node implements. The cell never names the node's type.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::mailbox::host::Router;
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{ActorId, Destination, NodeId, Route};
use crate::proto::migration::MigrationFailure;
use crate::proto::observe::NodeEvent;
use crate::proto::wire::{PeerMsg, WireEnvelope};

/// A boxed future borrowing the node.
pub(crate) type NodeFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The node, as its cells see it.
pub(crate) type NodeRef = Arc<dyn CellHost>;

/// The node, as its cells see it.
pub(crate) trait CellHost: Router {
    // ---- links ------------------------------------------------------------

    /// Whether a session with `node` is up.
    fn has_peer(&self, node: &NodeId) -> bool;
    /// Whether `node` is a member of this node's cluster (migrations to it
    /// are arbitrated by the cluster's failure detector).
    fn is_cluster_node(&self, node: &NodeId) -> bool;
    /// Why `dest` would refuse an actor of type `tag` at `version`, as it
    /// announced the types it takes (`None`: it takes it, or did not say).
    fn version_refusal(&self, dest: &NodeId, tag: &str, version: u32) -> Option<MigrationFailure>;
    /// The node id a destination names, dialing it if needed.
    fn resolve<'a>(
        &'a self,
        dest: &'a Destination,
    ) -> NodeFuture<'a, Result<NodeId, MigrationFailure>>;
    /// Sends a message to `to`.
    fn send_peer(&self, to: &NodeId, msg: &PeerMsg) -> Result<(), Error>;
    /// Sends an encoded frame to `to`.
    fn send_frame(&self, to: &NodeId, frame: Vec<u8>) -> Result<(), Error>;
    /// Tells monitor `monitor` of node `to` that `actor` ended.
    fn send_down(&self, to: &NodeId, monitor: u64, actor: ActorId, reason: ExitReason);
    /// Answers a message from another node that will not be handled.
    fn reject(&self, envelope: &WireEnvelope, actor: ActorId, reason: ExitReason);
    /// Stamps a forwarded message (hops, the sender to correct); false if it
    /// went round too often and was answered instead.
    fn pass_through(&self, actor: ActorId, route: &Route, envelope: &mut WireEnvelope) -> bool;

    // ---- the protocol's bookkeeping ----------------------------------------

    /// Records whether this node owes `peer` a migration outcome for `actor`.
    fn owe_outcome(&self, peer: &NodeId, actor: ActorId, owed: bool);
    /// How long an idle forwarder lives on, if forwarders retire.
    fn forwarder_idle(&self) -> Option<Duration>;
    /// Retires this node's forwarder of `actor` if nothing still needs it.
    fn retire_forwarder(&self, actor: ActorId, route: &Route) -> bool;
    /// Whether this node may handle a message now: `None` while it
    /// validates its standing after a stall (then wait for
    /// [`CellHost::standing_settled`]), false once it is fenced.
    fn may_serve_now(&self) -> Option<bool>;
    /// Waits until this node knows whether it was declared failed: true if
    /// it was not.
    fn standing_settled(&self) -> NodeFuture<'_, bool>;

    // ---- the directory -----------------------------------------------------

    /// `actor` is active here since `epoch`.
    fn announce_hosting(&self, actor: ActorId, epoch: u64, name: Option<&str>, type_tag: &str);
    /// `actor` is no longer active here.
    fn announce_left(&self, actor: ActorId, name: Option<&str>);
    /// Claims `name` for `actor`: `Ok(true)` if newly claimed, `Ok(false)`
    /// if it had it already, `Err(owner)` if another actor has it.
    fn reserve_name(&self, name: &str, actor: ActorId) -> Result<bool, ActorId>;
    /// Gives up `name` if `actor` holds it here.
    fn release_name(&self, name: &str, actor: ActorId);
    /// Whether another actor holds `name` in the cluster.
    fn name_held_elsewhere(&self, name: &str, actor: ActorId) -> bool;

    // ---- the cell itself ----------------------------------------------------

    /// Whether idle actors are lent to callers (see `idle.rs`).
    fn calls_on_caller_task(&self) -> bool;
    /// The cell of `id` finished: forget its entry.
    fn cell_finished(&self, id: ActorId);
    /// Tells the node's observers what happened to this cell's actor.
    fn emit(&self, event: NodeEvent);
}
