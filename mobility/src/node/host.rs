//! The node as the layers below see it: `NodeShared` implements the narrow
//! traits of the api (`Host`), the mailbox (`Router`) and the cell
//! (`CellHost`). Most calls go to the `Node` methods of the same name; the
//! ones on a message's path read the shared state directly.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use mobility_net::membership::Standing;
use tokio::sync::oneshot;

use super::{Node, NodeShared};
use crate::api::actor::Actor;
use crate::api::context::Context;
use crate::api::reply::ReplySender;
use crate::api::Host;
use crate::cell::{CellHost, NodeFuture, NodeRef};
use crate::mailbox::host::Router;
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{ActorId, Destination, NodeId, Route};
use crate::proto::migration::MigrationFailure;
use crate::proto::wire::{PeerMsg, WireEnvelope};

impl NodeShared {
    /// The node itself. Every call through the traits below borrows an
    /// `Arc` of this node (a cell's, a context's, or an upgraded entry's),
    /// so the node is alive.
    fn node(&self) -> Node {
        Node::from_shared(
            self.me
                .upgrade()
                .expect("the node is called through a live reference"),
        )
    }
}

impl Node {
    /// This node, for the layers below it.
    pub(crate) fn host(&self) -> Arc<dyn Host> {
        self.shared.clone()
    }

    /// This node, for its cells.
    pub(crate) fn cell_host(&self) -> NodeRef {
        self.shared.clone()
    }
}

impl<A: Actor> Context<A> {
    /// The node the actor runs on now.
    pub fn node(&self) -> &Node {
        match self.node.downcast_ref::<Node>() {
            Some(node) => node,
            None => unreachable!("a context holds its node"),
        }
    }
}

impl Host for NodeShared {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn register_pending(&self, actor: ActorId, sender: ReplySender) -> u64 {
        self.node().register_pending(actor, sender)
    }

    fn send_reply(&self, origin: &NodeId, request: u64, result: Result<Vec<u8>, Error>) {
        self.node().send_reply(origin, request, result);
    }

    fn register_monitor(&self, actor: ActorId) -> (u64, oneshot::Receiver<ExitReason>) {
        self.node().register_monitor(actor)
    }

    fn forget_monitor(&self, id: u64) {
        self.node().forget_monitor(id);
    }

    fn migration_timeout(&self) -> Duration {
        self.config.migration_timeout
    }

    fn route_via(&self, node: NodeId, epoch: u64, via: &NodeId) -> Route {
        let (node, epoch) = self.node().route_via(node, epoch, via);
        Route { node, epoch }
    }

    fn mailbox_for(
        &self,
        actor: ActorId,
        type_tag: &'static str,
        route: Route,
    ) -> Result<Box<dyn Any + Send>, Error> {
        let Some(actor_type) = self.registry.get(type_tag) else {
            return Err(Error::Codec(format!(
                "a handle of actor type `{type_tag}`, which this binary does not register"
            )));
        };
        actor_type.mailbox(&self.node(), actor, route)
    }

    fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    fn node(&self) -> Box<dyn Any + Send + Sync> {
        Box::new(NodeShared::node(self))
    }
}

impl Router for NodeShared {
    fn relocated(&self, actor: ActorId, route: &Route) -> Option<Route> {
        self.node().relocated(actor, route)
    }

    fn deliver_to(
        &self,
        actor: ActorId,
        type_tag: String,
        route: &Route,
        envelope: WireEnvelope,
    ) -> Option<Route> {
        self.node().deliver_to(actor, type_tag, route, envelope)
    }
}

impl CellHost for NodeShared {
    fn has_peer(&self, node: &NodeId) -> bool {
        self.links.has_direct(node)
    }

    fn is_cluster_node(&self, node: &NodeId) -> bool {
        self.node().is_cluster_node(node)
    }

    fn version_refusal(&self, dest: &NodeId, tag: &str, version: u32) -> Option<MigrationFailure> {
        self.node().version_refusal(dest, tag, version)
    }

    fn resolve<'a>(
        &'a self,
        dest: &'a Destination,
    ) -> NodeFuture<'a, Result<NodeId, MigrationFailure>> {
        let node = self.node();
        Box::pin(async move { node.resolve(dest).await })
    }

    fn send_peer(&self, to: &NodeId, msg: &PeerMsg) -> Result<(), Error> {
        self.node().send_peer(to, msg)
    }

    fn send_frame(&self, to: &NodeId, frame: Vec<u8>) -> Result<(), Error> {
        self.node().send_frame(to, frame)
    }

    fn send_down(&self, to: &NodeId, monitor: u64, actor: ActorId, reason: ExitReason) {
        self.node().send_down(to, monitor, actor, reason);
    }

    fn reject(&self, envelope: &WireEnvelope, actor: ActorId, reason: ExitReason) {
        self.node().reject(envelope, actor, reason);
    }

    fn pass_through(&self, actor: ActorId, route: &Route, envelope: &mut WireEnvelope) -> bool {
        self.node().pass_through(actor, route, envelope)
    }

    fn owe_outcome(&self, peer: &NodeId, actor: ActorId, owed: bool) {
        self.node().owe_outcome(peer, actor, owed);
    }

    fn forwarder_idle(&self) -> Option<Duration> {
        self.directory.as_ref().map(|_| self.config.forwarder_idle)
    }

    fn retire_forwarder(&self, actor: ActorId, route: &Route) -> bool {
        self.node().retire_forwarder(actor, route)
    }

    fn may_serve_now(&self) -> Option<bool> {
        match self.stall.as_ref().map(|guard| guard.check()) {
            None | Some(Standing::Serving) => Some(true),
            Some(Standing::Fenced) => Some(false),
            Some(Standing::Validating) => None,
        }
    }

    fn standing_settled(&self) -> NodeFuture<'_, bool> {
        Box::pin(async move {
            match &self.stall {
                Some(guard) => guard.settled().await,
                None => true,
            }
        })
    }

    fn announce_hosting(&self, actor: ActorId, epoch: u64, name: Option<&str>, type_tag: &str) {
        self.node().announce_hosting(actor, epoch, name, type_tag);
    }

    fn announce_left(&self, actor: ActorId, name: Option<&str>) {
        self.node().announce_left(actor, name);
    }

    fn reserve_name(&self, name: &str, actor: ActorId) -> Result<bool, ActorId> {
        self.node().reserve_name(name, actor)
    }

    fn release_name(&self, name: &str, actor: ActorId) {
        self.node().release_name(name, actor);
    }

    fn name_held_elsewhere(&self, name: &str, actor: ActorId) -> bool {
        self.node().name_held_elsewhere(name, actor)
    }

    fn calls_on_caller_task(&self) -> bool {
        self.config.calls_on_caller_task
    }

    fn cell_finished(&self, id: ActorId) {
        self.node().cell_finished(id);
    }

    fn emit(&self, event: crate::proto::observe::NodeEvent) {
        self.node().emit(event);
    }
}
