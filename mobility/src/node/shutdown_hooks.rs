//! Work that must run before a graceful shutdown takes the node's links and
//! actors down: a supervisor stops its children on other nodes while the
//! node can still reach them (OTP: children die with their supervisor).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use super::Node;
use crate::sync::lock;

type Hook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The hooks of a node, by id.
#[derive(Default)]
pub(super) struct ShutdownHooks(std::sync::Mutex<HashMap<u64, Hook>>);

impl Node {
    /// Runs `hook` when [`Node::shutdown`] (or the end of a drain) begins,
    /// before anything stops; all hooks run together and the shutdown waits
    /// for them. Not run when the node is fenced or killed. Returns an id
    /// for [`Node::forget_before_shutdown`].
    pub(crate) fn before_shutdown<F>(&self, hook: impl FnOnce() -> F + Send + 'static) -> u64
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let id = self.next_id();
        let hook: Hook = Box::new(move || Box::pin(hook()));
        lock(&self.shared.shutdown_hooks.0).insert(id, hook);
        id
    }

    /// Drops a hook that is no longer needed.
    pub(crate) fn forget_before_shutdown(&self, id: u64) {
        lock(&self.shared.shutdown_hooks.0).remove(&id);
    }

    pub(super) async fn run_shutdown_hooks(&self) {
        let hooks: Vec<Hook> = lock(&self.shared.shutdown_hooks.0)
            .drain()
            .map(|(_, hook)| hook)
            .collect();
        futures_util::future::join_all(hooks.into_iter().map(|hook| hook())).await;
    }
}
