//! Stopping a node: at once (`shutdown`), fenced by its cluster, or on a
//! signal (Ctrl-C, SIGTERM) after draining its actors elsewhere.

use super::*;
use crate::node::drain::DrainReport;

impl Node {
    /// Stops every actor of this node (their `on_stop` hooks run and their
    /// monitors fire with [`ExitReason::NodeDown`]) and drops its links.
    /// An actor still inside a handler after the
    /// [`shutdown_grace`](crate::NodeBuilder::shutdown_grace) (2 s by
    /// default) is aborted: its callers are told it is down. To keep the
    /// actors, [`drain`](Node::drain) (or [`drain_to`](Node::drain_to))
    /// instead. Supervisors of this node stop their children first,
    /// wherever those are.
    pub async fn shutdown(&self) {
        if !self.shared.stopped.load(Ordering::Acquire) {
            self.run_shutdown_hooks().await;
        }
        self.stop(|| NetControl::Shutdown).await;
    }

    /// Whether this node's cluster declared it failed (it was stalled or
    /// cut off for longer than the failure timeout). A fenced node has
    /// stopped: its actors were reported down (`Unreachable`) and never
    /// answer again, here or anywhere. It cannot rejoin: start a new node
    /// (a new incarnation), as a restarted process does.
    pub fn is_fenced(&self) -> bool {
        self.shared.fenced.load(Ordering::Acquire)
    }

    /// This node learned it was declared failed: everything it holds is
    /// down, and it stops (without a graceful leave: it is no member).
    pub(crate) async fn fence(&self) {
        if self.shared.fenced.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::error!(node = %self.id(), "declared failed by the cluster: this node is fenced and stops");
        self.stop(|| NetControl::Fenced).await;
    }

    pub(super) async fn stop(&self, control: fn() -> NetControl) {
        if self.shared.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let entries: Vec<Arc<dyn ErasedEntry>> =
            read(&self.shared.entries).values().cloned().collect();
        for entry in &entries {
            entry.control(control());
        }
        let all_done = async {
            loop {
                let done = self.shared.cells_done.notified();
                if self.shared.live_cells.load(Ordering::Acquire) == 0 {
                    break;
                }
                done.await;
            }
        };
        if tokio::time::timeout(self.shared.config.shutdown_grace, all_done)
            .await
            .is_err()
        {
            let busy: Vec<(ActorId, tokio::task::AbortHandle)> =
                lock(&self.shared.cell_tasks).drain().collect();
            for (actor, task) in busy {
                tracing::warn!(node = %self.id(), %actor, "actor still busy at shutdown: aborted");
                task.abort();
            }
        }
        if let Some(directory) = &self.shared.directory {
            if self.is_fenced() {
                directory.shutdown().await;
            } else {
                // A graceful stop: the members report it left (its actors
                // shut down with it), not failed.
                directory.leave().await;
            }
        }
        if let Some(network) = &self.shared.network {
            network.shutdown();
        }
        self.shared.links.clear();
        write(&self.shared.entries).clear();
        lock(&self.shared.pending).clear();
        lock(&self.shared.monitors).clear();
        tracing::debug!(node = %self.id(), "node shut down");
    }

    /// Waits for Ctrl-C (SIGINT) or, on Unix, SIGTERM, then leaves as a
    /// service should: a member of a cluster [drains](Node::drain) (its
    /// actors move to the other members), then shuts down; a node outside
    /// any cluster shuts down (its actors stop: [`drain_to`](Node::drain_to)
    /// keeps them). The drain may take the
    /// [`drain_grace`](crate::NodeBuilder::drain_grace) (30 s by default);
    /// past it, or on a second signal, or if an actor cannot be placed, the
    /// node shuts down anyway and the error says which actors stopped with
    /// it. The node is shut down when this returns, whatever it returns.
    ///
    /// ```no_run
    /// # async fn f(node: mobility::Node) {
    /// // ... start the node, spawn actors ...
    /// match node.shutdown_on_signal().await {
    ///     Ok(report) => println!("drained {} actors", report.moved.len()),
    ///     Err(e) => eprintln!("stopped: {e}"),
    /// }
    /// # }
    /// ```
    pub async fn shutdown_on_signal(&self) -> Result<DrainReport, Error> {
        signal().await;
        tracing::info!(node = %self.id(), "signal: leaving");
        if self.shared.directory.is_none() {
            self.shutdown().await;
            return Ok(DrainReport::default());
        }
        let grace = self.shared.config.drain_grace;
        let cut_short = |why: String| Error::DrainIncomplete {
            node: self.id().clone(),
            moved: 0,
            failed: self
                .hosted()
                .into_iter()
                .map(|a| (a, why.clone()))
                .collect(),
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(grace, self.drain()) => outcome.unwrap_or_else(|_| {
                Err(cut_short(format!("the drain's grace of {grace:?} ran out")))
            }),
            () = signal() => Err(cut_short("a second signal cut the drain short".into())),
        };
        if let Err(e) = &outcome {
            let staying = self.hosted();
            tracing::error!(node = %self.id(), error = %e, stopping = ?staying, "the drain did not complete: the actors still here stop with the node");
            self.shutdown().await;
        }
        outcome
    }
}

/// Resolves on the next Ctrl-C or (on Unix) SIGTERM.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    // Without a handler to install, Ctrl-C alone (an error there means no
    // signal can come: wait forever rather than stop at once).
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
