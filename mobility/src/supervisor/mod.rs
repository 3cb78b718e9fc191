//! Supervision, as OTP has it: a supervisor starts children from their
//! specifications, watches them, and restarts them by a strategy when they
//! end, within a restart intensity; past it, it stops its children and
//! ends, so that its own parent (a supervisor of supervisors) or whoever
//! waits on it can act.
//!
//! ```
//! use std::time::Duration;
//! use mobility::prelude::*;
//! use mobility::supervisor::{ChildSpec, Strategy, Supervisor};
//!
//! #[mobile]
//! #[derive(Default)]
//! pub struct Cart { items: Vec<String> }
//!
//! #[mobile]
//! impl Cart {
//!     pub fn add(&mut self, item: String) -> usize {
//!         assert!(item != "bomb", "the cart exploded");
//!         self.items.push(item);
//!         self.items.len()
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::builder().id("doc-supervisor").start().await?;
//! let supervisor = Supervisor::builder(&node)
//!     .strategy(Strategy::OneForOne)
//!     .intensity(3, Duration::from_secs(5))
//!     .child(ChildSpec::new("cart", Cart::default).named("cart"))
//!     .start()
//!     .await?;
//!
//! let cart = node.lookup::<Cart>("cart").await?;
//! assert_eq!(cart.add("apple".into()).await?, 1);
//! let crashed = cart.monitor();
//! assert!(cart.add("bomb".into()).await.is_err());         // the handler panics
//! assert!(matches!(crashed.await, ExitReason::Panicked(_)));
//!
//! // Restarted from `Cart::default`, under the same name.
//! let restarted = supervisor.child::<Cart>("cart").expect("running");
//! assert_ne!(restarted.id(), cart.id());
//! assert_eq!(node.lookup::<Cart>("cart").await?.id(), restarted.id());
//! assert_eq!(restarted.add("pear".into()).await?, 1);
//!
//! supervisor.stop().await;                                  // children first
//! # node.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What is restarted, and when
//!
//! - **Strategy** ([`Strategy`]): one-for-one restarts the child that ended;
//!   one-for-all stops the others (reverse start order) and restarts all;
//!   rest-for-one does that for the child and those started after it.
//! - **Restart policy** per child ([`Restart`]): permanent children are
//!   always restarted, transient ones only after an abnormal end (anything
//!   but [`ExitReason::Stopped`]), temporary
//!   ones never (and leave the supervisor).
//! - **Intensity**: more than `max` restarts within `period` and the
//!   supervisor stops every child and ends with
//!   [`SupervisorExit::Escalated`]. A child that fails to start again
//!   counts as one more failure of it.
//! - **A new incarnation is a new actor**: built again by the spec's
//!   factory (not from the state of the one that ended, which may be what
//!   failed), with a new actor id. Handles to the old one answer
//!   `ActorDown`; [`SupervisorHandle::child`] and, for a named child,
//!   [`Node::lookup`](crate::Node::lookup) give the current one.
//!
//! # Children that move, and nodes that fail
//!
//! A supervisor watches each child with [`Handle::monitor`](crate::Handle::monitor).
//! A monitor belongs to the actor, not to a place: it is registered in the
//! actor's cell, moves in its snapshot with every migration, and fires
//! wherever the actor ends, reported back to the supervisor's node. So:
//!
//! - **A child that migrates is not a death.** Its monitor does not fire,
//!   nothing is restarted; the supervisor's handle follows it.
//! - **A child on another node** (placed with [`ChildSpec::on`] or
//!   [`ChildSpec::placed_by`], or moved there later by anyone) is watched
//!   the same way: a panic there reaches the supervisor as `Panicked`.
//! - **A child whose node fails** is reported `Unreachable(node)` once the
//!   cluster has declared that node failed, `NodeDown(node)` when the node
//!   shut down, `LinkLost(node)` when a link outside any cluster (a node of
//!   another cluster) was lost for good. The supervisor restarts it where
//!   the spec places it; if that node is the dead one (or any node the
//!   migration cannot reach), the new incarnation stays on the
//!   supervisor's node. Restarting after `Unreachable` never makes two
//!   live copies: the node was declared failed, and a node declared failed
//!   is fenced (it learns it, stops, and its actors never answer again,
//!   see "When a node is declared failed" in the README), so the failed
//!   one cannot come back; and the new incarnation is another actor, built
//!   from the spec, so no state is ever held twice. `NodeDown` is as final
//!   (the node's actors stopped first). `LinkLost` is not: nothing declares
//!   a node of another cluster failed, so the old incarnation may still
//!   run behind the lost link, out of reach from here. The supervisor
//!   restarts it anyway, as OTP does after `noconnection` (the service
//!   stays up, here), and the two may then both run, each on its side;
//!   keep supervised children inside the supervisor's cluster, where
//!   failure is declared and fenced, when that must never happen.
//! - A named child's restart waits (up to 10 s) for its old incarnation's
//!   name to be released by the directory, then claims it again.
//!
//! # The supervisor itself stays on its node
//!
//! A supervisor is a task pinned to the node that started it, not a mobile
//! actor: its specs hold factory closures (code, which never travels), and
//! its job is to outlive what it watches, not to move with them. It lives
//! as long as its node, or until [`SupervisorHandle::stop`] or an
//! escalation; dropping its handles does not stop it.
//!
//! When its node shuts down ([`Node::shutdown`](crate::Node::shutdown),
//! or the end of a [`Node::drain`](crate::Node::drain)), the supervisor
//! stops every child first, wherever it lives (the node runs its
//! supervisors' stops before it takes its links and actors down), then
//! ends with [`SupervisorExit::NodeDown`]: as in OTP, children die with
//! their supervisor, and none outlives it unsupervised. (A drain moves
//! the children away with every other actor, then this stops them: run
//! the supervisor of a service that must stay up on a node that stays.)
//! When its node is fenced or crashes, nothing more can be said to the
//! others: its children on its node end with it, and children on other
//! nodes run on, unsupervised. Supervise on the supervisor's own node the
//! children that must never outlive it.

mod policy;
mod run;
mod spec;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::api::actor::Actor;
use crate::api::handle::Handle;
use crate::node::Node;
use crate::proto::error::{Error, ExitReason};
use crate::proto::id::{ActorId, NodeId};

pub use policy::{Restart, Strategy};
pub use spec::ChildSpec;

use run::{Command, Run};

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChildExit {
    /// An actor child ended, for this reason.
    #[error("{0}")]
    Actor(ExitReason),
    /// A child supervisor ended, for this reason.
    #[error("supervisor {0}")]
    Supervisor(SupervisorExit),
    /// A new incarnation could not be started.
    #[error("could not start: {0}")]
    StartFailed(Error),
}

impl ChildExit {
    /// Whether the end was normal: the child was asked to stop. Transient
    /// children are restarted only after an end that is not.
    pub fn is_normal(&self) -> bool {
        matches!(
            self,
            ChildExit::Actor(ExitReason::Stopped) | ChildExit::Supervisor(SupervisorExit::Stopped)
        )
    }
}

/// Why a supervisor ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorExit {
    /// It was asked to stop ([`SupervisorHandle::stop`]).
    #[error("stopped")]
    Stopped,
    /// Its node shut down, was fenced or died.
    #[error("its node {0} went down")]
    NodeDown(NodeId),
    /// A child failed more often than the intensity allows: the supervisor
    /// stopped its other children and gave up.
    #[error(
        "escalated: child {child:?} ended ({reason}), one failure more than the {intensity} restarts allowed within {period:?}"
    )]
    Escalated {
        /// The child whose failure was one too many.
        child: String,
        /// How it ended that time.
        reason: Box<ChildExit>,
        /// The intensity: restarts allowed within `period`.
        intensity: u32,
        /// The period.
        period: Duration,
    },
}

/// A supervisor could not start: one of its children could not (the
/// children started before it were stopped again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("child {child:?} of the supervisor failed to start: {error}")]
pub struct StartError {
    /// The child's id.
    pub child: String,
    /// Why.
    pub error: Error,
}

/// One child, as [`SupervisorHandle::children`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    /// The child's id in its spec.
    pub id: String,
    /// The current incarnation's actor id (`None` for a child supervisor,
    /// or while the child is not running).
    pub actor: Option<ActorId>,
    /// Whether an incarnation runs now.
    pub running: bool,
    /// How many times the child was restarted.
    pub restarts: u32,
}

/// Starts supervisors: [`Supervisor::builder`].
#[derive(Debug)]
pub struct Supervisor;

impl Supervisor {
    /// A supervisor to run on `node`: one-for-one, at most 1 restart in
    /// 5 s (OTP's defaults), no children yet.
    pub fn builder(node: &Node) -> SupervisorBuilder {
        SupervisorBuilder {
            node: node.clone(),
            strategy: Strategy::OneForOne,
            intensity: (1, Duration::from_secs(5)),
            children: Vec::new(),
        }
    }
}

/// Configures and starts a supervisor. See [`Supervisor::builder`].
#[derive(Debug)]
pub struct SupervisorBuilder {
    node: Node,
    strategy: Strategy,
    intensity: (u32, Duration),
    children: Vec<ChildSpec>,
}

impl SupervisorBuilder {
    /// Which children a failure restarts.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// At most `max` restarts within `period`; one more and the supervisor
    /// escalates.
    pub fn intensity(mut self, max: u32, period: Duration) -> Self {
        self.intensity = (max, period);
        self
    }

    /// Adds a child, started after those added before (and stopped before
    /// them). Child ids must be unique.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// Starts every child in order, then supervises them. Fails if a child
    /// id is used twice or a child cannot start (those started are stopped).
    pub async fn start(self) -> Result<SupervisorHandle, StartError> {
        for (i, spec) in self.children.iter().enumerate() {
            if self.children[..i].iter().any(|other| other.id == spec.id) {
                return Err(StartError {
                    child: spec.id.clone(),
                    error: Error::Config(format!("two children have the id {:?}", spec.id)),
                });
            }
        }
        let (commands, received) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            node: self.node.id().clone(),
            children: Mutex::new(
                self.children
                    .iter()
                    .map(|spec| Slot {
                        id: spec.id.clone(),
                        handle: None,
                        actor: None,
                        restarts: 0,
                        removed: false,
                    })
                    .collect(),
            ),
            started: watch::channel(0).0,
            exit: watch::channel(None).0,
            commands,
        });
        let node = self.node.clone();
        let mut run = Run::new(
            self.node,
            self.strategy,
            self.intensity,
            self.children,
            shared.clone(),
        );
        run.start_all().await?;
        run.watch_shutdown();
        node.spawn_task(run.run(received));
        Ok(SupervisorHandle { shared })
    }
}

/// A running supervisor: its children, a way to stop it and to wait for
/// its end. Cheap to clone; dropping it does not stop the supervisor.
#[derive(Clone)]
pub struct SupervisorHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for SupervisorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorHandle")
            .field("node", &self.shared.node)
            .field("children", &self.children())
            .field("exit", &self.exit_reason())
            .finish()
    }
}

impl SupervisorHandle {
    /// The current incarnation of actor child `id`, if it runs and is an
    /// `A`.
    pub fn child<A: Actor>(&self, id: &str) -> Option<Handle<A>> {
        self.shared.handle(id)?.downcast_ref::<Handle<A>>().cloned()
    }

    /// Waits up to `within` for actor child `id` to run as another
    /// incarnation than `previous` (a restart after it ended), and returns
    /// it; `None` if none came in time (or the supervisor ended).
    pub async fn next_incarnation<A: Actor>(
        &self,
        id: &str,
        previous: ActorId,
        within: Duration,
    ) -> Option<Handle<A>> {
        let mut started = self.shared.started.subscribe();
        let wait = async {
            loop {
                if let Some(child) = self.child::<A>(id).filter(|c| c.id() != previous) {
                    return Some(child);
                }
                if self.exit_reason().is_some() || started.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(within, wait).await.ok().flatten()
    }

    /// The current incarnation of child supervisor `id`, if it runs.
    pub fn supervisor(&self, id: &str) -> Option<SupervisorHandle> {
        self.shared
            .handle(id)?
            .downcast_ref::<SupervisorHandle>()
            .cloned()
    }

    /// Every child still in the supervisor (temporary children that ended
    /// are gone), in start order.
    pub fn children(&self) -> Vec<ChildInfo> {
        crate::sync::lock(&self.shared.children)
            .iter()
            .filter(|slot| !slot.removed)
            .map(|slot| ChildInfo {
                id: slot.id.clone(),
                actor: slot.actor,
                running: slot.handle.is_some(),
                restarts: slot.restarts,
            })
            .collect()
    }

    /// The node the supervisor runs on.
    pub fn node_id(&self) -> &NodeId {
        &self.shared.node
    }

    /// Stops every child (reverse start order), then the supervisor; waits
    /// for both. Does nothing more if the supervisor already ended.
    pub async fn stop(&self) {
        let (done, stopped) = oneshot::channel();
        if self.shared.commands.send(Command::Stop(done)).is_ok() {
            let _ = stopped.await;
        }
        self.monitor().await;
    }

    /// Resolves with the reason the supervisor ends (at once if it has).
    pub fn monitor(&self) -> impl Future<Output = SupervisorExit> + Send + 'static {
        let mut exit = self.shared.exit.subscribe();
        async move {
            match exit.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone().unwrap_or(SupervisorExit::Stopped),
                // The sender lives in `shared`, which `exit` outlives only
                // if the supervisor is gone without a word: say so.
                Err(_) => SupervisorExit::Stopped,
            }
        }
    }

    /// How the supervisor ended, if it has.
    pub fn exit_reason(&self) -> Option<SupervisorExit> {
        self.shared.exit.borrow().clone()
    }
}

/// What the loop and the handles share: the children as seen from outside,
/// the end, the way in.
pub(crate) struct Shared {
    node: NodeId,
    children: Mutex<Vec<Slot>>,
    /// Bumped whenever a child starts: what `next_incarnation` waits on.
    started: watch::Sender<u64>,
    exit: watch::Sender<Option<SupervisorExit>>,
    commands: mpsc::UnboundedSender<Command>,
}

struct Slot {
    id: String,
    handle: Option<Arc<dyn Any + Send + Sync>>,
    actor: Option<ActorId>,
    restarts: u32,
    removed: bool,
}

impl Shared {
    fn handle(&self, id: &str) -> Option<Arc<dyn Any + Send + Sync>> {
        crate::sync::lock(&self.children)
            .iter()
            .find(|slot| slot.id == id)
            .and_then(|slot| slot.handle.clone())
    }

    /// Child `i` runs as `handle`; a restart is counted in the same step,
    /// so whoever sees the new incarnation sees its restart counted too.
    fn set_running(
        &self,
        i: usize,
        handle: Arc<dyn Any + Send + Sync>,
        actor: Option<ActorId>,
        restart: bool,
    ) {
        {
            let mut children = crate::sync::lock(&self.children);
            children[i].handle = Some(handle);
            children[i].actor = actor;
            if restart {
                children[i].restarts += 1;
            }
        }
        self.started.send_modify(|n| *n += 1);
    }

    fn set_stopped(&self, i: usize) {
        let mut children = crate::sync::lock(&self.children);
        children[i].handle = None;
        children[i].actor = None;
    }

    fn set_removed(&self, i: usize) {
        crate::sync::lock(&self.children)[i].removed = true;
    }

    fn finish(&self, exit: SupervisorExit) {
        self.exit.send_replace(Some(exit));
    }
}
