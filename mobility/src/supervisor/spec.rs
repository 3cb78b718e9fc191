//! Child specifications: how to build a child again (a factory closure),
//! under which name, where to place it, whether to restart it, and how to
//! start one and watch it end.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::api::actor::Actor;
use crate::api::handle::Handle;
use crate::node::Node;
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{ActorId, NodeId};

use super::policy::Restart;
use super::{ChildExit, SupervisorBuilder, SupervisorHandle};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Picks the node a child should run on, given the supervisor's node (its
/// members, say); `None` keeps it on the supervisor's node.
type PlaceFn = dyn Fn(&Node) -> Option<NodeId> + Send + Sync;

/// Where a child runs.
#[derive(Clone, Default)]
pub(crate) enum Placement {
    /// On the supervisor's node.
    #[default]
    Local,
    /// On this node.
    On(NodeId),
    /// Where the closure says, asked at every start.
    By(Arc<PlaceFn>),
}

impl fmt::Debug for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Local => f.write_str("Local"),
            Placement::On(node) => write!(f, "On({node})"),
            Placement::By(_) => f.write_str("By(..)"),
        }
    }
}

/// How to start one incarnation of a child: type-erased, so a supervisor
/// holds children of any actor types (and supervisors) side by side.
pub(crate) trait Starter: Send + Sync {
    fn start(
        &self,
        node: Node,
        name: Option<String>,
        placement: Placement,
    ) -> BoxFuture<Result<Running, Error>>;
}

/// One started incarnation of a child.
pub(crate) struct Running {
    /// `Handle<A>` or `SupervisorHandle`, for [`SupervisorHandle::child`].
    pub(crate) handle: Arc<dyn Any + Send + Sync>,
    /// The actor's id (`None` for a supervisor child).
    pub(crate) actor: Option<ActorId>,
    /// Resolves with how this incarnation ended, wherever it lived then.
    pub(crate) exit: BoxFuture<ChildExit>,
    /// Stops this incarnation and waits for its end.
    pub(crate) stop: Arc<dyn Fn() -> BoxFuture<()> + Send + Sync>,
}

/// What a supervisor needs to know about one child: its id, how to build it
/// again (a factory, called at every start), its restart policy, an
/// optional cluster-wide name and where it runs.
///
/// ```
/// # use mobility::prelude::*;
/// # use mobility::supervisor::{ChildSpec, Restart};
/// # #[mobile] #[derive(Default)] pub struct Cart { items: Vec<String> }
/// # #[mobile] impl Cart { pub fn count(&self) -> usize { self.items.len() } }
/// let spec = ChildSpec::new("cart", Cart::default)
///     .named("cart")                 // found again by `lookup("cart")` after a restart
///     .restart(Restart::Transient);  // not restarted after a normal stop
/// # let _ = spec;
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: String,
    pub(crate) starter: Arc<dyn Starter>,
    pub(crate) restart: Restart,
    pub(crate) name: Option<String>,
    pub(crate) placement: Placement,
    pub(crate) shutdown: Duration,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("name", &self.name)
            .field("placement", &self.placement)
            .field("shutdown", &self.shutdown)
            .finish()
    }
}

impl ChildSpec {
    /// A permanent actor child with id `id` (unique among the supervisor's
    /// children), built by `factory` at every start: each incarnation
    /// begins from the factory's value, not from the state of the one that
    /// ended (which may be what made it fail).
    pub fn new<A: Actor>(
        id: impl Into<String>,
        factory: impl Fn() -> A + Send + Sync + 'static,
    ) -> Self {
        Self::with_starter(id, Arc::new(ActorStarter { factory }))
    }

    /// A permanent actor child that starts from a clone of `initial` every
    /// time.
    pub fn from_value<A: Actor + Clone + Sync>(id: impl Into<String>, initial: A) -> Self {
        Self::new(id, move || initial.clone())
    }

    /// A child that is itself a supervisor (a supervision tree): `build`
    /// makes its builder at every start, on the parent's node. Its end is
    /// normal only if it was stopped; an escalation is a failure the parent
    /// handles by its own strategy.
    pub fn supervisor(
        id: impl Into<String>,
        build: impl Fn(&Node) -> SupervisorBuilder + Send + Sync + 'static,
    ) -> Self {
        Self::with_starter(id, Arc::new(SupervisorStarter { build }))
    }

    fn with_starter(id: impl Into<String>, starter: Arc<dyn Starter>) -> Self {
        ChildSpec {
            id: id.into(),
            starter,
            restart: Restart::Permanent,
            name: None,
            placement: Placement::Local,
            shutdown: Duration::from_secs(5),
        }
    }

    /// The restart policy (default [`Restart::Permanent`]).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Starts every incarnation under this cluster-wide name
    /// ([`Node::spawn_named`]), so [`Node::lookup`] finds the current one
    /// from any member. Actor children only.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Runs every incarnation on `node`: started on the supervisor's node
    /// and migrated there. If that fails (the node is down, say), the
    /// child runs on the supervisor's node instead. Actor children only.
    pub fn on(mut self, node: NodeId) -> Self {
        self.placement = Placement::On(node);
        self
    }

    /// Asks `place` where to run each incarnation (`None`: the supervisor's
    /// node), e.g. the least loaded live member; placed as with
    /// [`on`](Self::on).
    pub fn placed_by(
        mut self,
        place: impl Fn(&Node) -> Option<NodeId> + Send + Sync + 'static,
    ) -> Self {
        self.placement = Placement::By(Arc::new(place));
        self
    }

    /// How long a stop of this child may take before the supervisor stops
    /// waiting for it (default 5 s, OTP's default `shutdown`).
    pub fn shutdown(mut self, timeout: Duration) -> Self {
        self.shutdown = timeout;
        self
    }

    /// The child's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

struct ActorStarter<F> {
    factory: F,
}

impl<A: Actor, F: Fn() -> A + Send + Sync + 'static> Starter for ActorStarter<F> {
    fn start(
        &self,
        node: Node,
        name: Option<String>,
        placement: Placement,
    ) -> BoxFuture<Result<Running, Error>> {
        let actor = (self.factory)();
        Box::pin(async move {
            let handle: Handle<A> = match name {
                Some(name) => node.spawn_named(name, actor).await?,
                None => node.spawn(actor).await?,
            };
            // Watch before moving: the monitor travels with the actor.
            let monitor = handle.monitor();
            place(&node, &handle, &placement).await;
            let stopping = handle.clone();
            Ok(Running {
                actor: Some(handle.id()),
                handle: Arc::new(handle),
                exit: Box::pin(async move { ChildExit::Actor(monitor.await) }),
                stop: Arc::new(move || {
                    let handle = stopping.clone();
                    Box::pin(async move {
                        // An actor already down is as stopped as can be.
                        let _ = handle.stop().await;
                    })
                }),
            })
        })
    }
}

/// Moves a just started child to where its spec places it. A failed move
/// leaves it running on the supervisor's node (a migration that fails
/// leaves the actor where it was): a child is better alive here than not.
async fn place<A: Actor>(node: &Node, handle: &Handle<A>, placement: &Placement) {
    let target = match placement {
        Placement::Local => None,
        Placement::On(target) => Some(target.clone()),
        Placement::By(place) => place(node),
    };
    let Some(target) = target.filter(|t| t != node.id()) else {
        return;
    };
    if let Err(error) = node.migrate(handle, target.clone()).await {
        tracing::warn!(node = %node.id(), actor = %handle.id(), %target, %error,
            "supervisor: child could not be placed there; it runs on the supervisor's node");
    }
}

struct SupervisorStarter<F> {
    build: F,
}

impl<F: Fn(&Node) -> SupervisorBuilder + Send + Sync + 'static> Starter for SupervisorStarter<F> {
    fn start(
        &self,
        node: Node,
        _name: Option<String>,
        _placement: Placement,
    ) -> BoxFuture<Result<Running, Error>> {
        let builder = (self.build)(&node);
        Box::pin(async move {
            let supervisor: SupervisorHandle = builder.start().await.map_err(|e| e.error)?;
            let (watched, stopping) = (supervisor.clone(), supervisor.clone());
            Ok(Running {
                actor: None,
                handle: Arc::new(supervisor),
                exit: Box::pin(async move { ChildExit::Supervisor(watched.monitor().await) }),
                stop: Arc::new(move || {
                    let supervisor = stopping.clone();
                    Box::pin(async move { supervisor.stop().await })
                }),
            })
        })
    }
}

/// Whether `reason` says that `node` itself went down (shut down or
/// fenced): a supervisor there cannot restart anything and ends too.
pub(crate) fn is_own_node_down(reason: &ChildExit, node: &NodeId) -> bool {
    match reason {
        ChildExit::Actor(ExitReason::NodeDown(n) | ExitReason::Unreachable(n)) => n == node,
        ChildExit::StartFailed(Error::NodeStopped(n)) => n == node,
        ChildExit::Supervisor(super::SupervisorExit::NodeDown(n)) => n == node,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::SupervisorExit;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("node id")
    }

    #[test]
    fn only_the_supervisors_own_node_going_down_ends_it() {
        let (own, other) = (node("a"), node("b"));
        for ends in [
            ChildExit::Actor(ExitReason::NodeDown(own.clone())),
            ChildExit::Actor(ExitReason::Unreachable(own.clone())),
            ChildExit::StartFailed(Error::NodeStopped(own.clone())),
            ChildExit::Supervisor(SupervisorExit::NodeDown(own.clone())),
        ] {
            assert!(is_own_node_down(&ends, &own), "{ends:?}");
            assert!(!is_own_node_down(&ends, &other), "{ends:?}");
        }
        // A child's node failing is the child's failure, to restart.
        let elsewhere = ChildExit::Actor(ExitReason::Unreachable(other));
        assert!(!is_own_node_down(&elsewhere, &own));
        assert!(!is_own_node_down(
            &ChildExit::Actor(ExitReason::Panicked("x".into())),
            &own
        ));
    }

    #[test]
    fn only_a_stop_is_a_normal_end() {
        assert!(ChildExit::Actor(ExitReason::Stopped).is_normal());
        assert!(ChildExit::Supervisor(SupervisorExit::Stopped).is_normal());
        assert!(!ChildExit::Actor(ExitReason::Panicked("x".into())).is_normal());
        assert!(!ChildExit::Actor(ExitReason::Unreachable(node("b"))).is_normal());
        assert!(!ChildExit::Supervisor(SupervisorExit::NodeDown(node("a"))).is_normal());
        assert!(!ChildExit::StartFailed(Error::Detached).is_normal());
    }
}
