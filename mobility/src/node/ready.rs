//! Waiting until the cluster is ready for what comes next: a joining node
//! until every member sees it, a lookup until the name shows up.
//!
//! Both poll a condition the gossip makes true, once per gossip interval,
//! and give up at a deadline with an error that says what was awaited.

use super::*;

impl Node {
    /// Waits until this node sees its cluster and every member sees it
    /// (see [`NodeBuilder::join`]), at most `within`.
    pub(super) async fn wait_joined(
        &self,
        seeds: &[String],
        within: Duration,
    ) -> Result<(), Error> {
        let Some(directory) = &self.shared.directory else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + within;
        while !directory.joined() {
            if tokio::time::Instant::now() >= deadline {
                let seen = self.members().len().saturating_sub(1);
                let reason = if seen == 0 {
                    format!(
                        "no member of the cluster answered within {within:?} (is a seed up, with the same cluster id and secret?)"
                    )
                } else {
                    format!(
                        "{seen} members answered, but not all of them saw node {} within {within:?}",
                        self.id()
                    )
                };
                return Err(Error::Unreachable {
                    addr: seeds.join(", "),
                    reason,
                });
            }
            tokio::time::sleep_until(
                deadline.min(tokio::time::Instant::now() + directory.gossip_interval()),
            )
            .await;
        }
        tracing::debug!(node = %self.id(), members = ?self.members(), "joined the cluster");
        Ok(())
    }

    /// [`lookup`](Node::lookup), waiting up to `within` for the name to
    /// show up: a name claimed on another member takes a few gossip rounds
    /// to reach this one, and an actor may be spawned after the lookup
    /// began. Fails at once with any other error than
    /// [`Error::NameNotFound`] (a name held by another type of actor, say),
    /// and with `NameNotFound` if the name has not shown up by then.
    pub async fn lookup_within<A: Actor>(
        &self,
        name: &str,
        within: Duration,
    ) -> Result<Handle<A>, Error> {
        let deadline = tokio::time::Instant::now() + within;
        let every = self
            .shared
            .directory
            .as_ref()
            .map_or(Duration::from_millis(10), |d| d.gossip_interval());
        loop {
            match self.lookup::<A>(name).await {
                Err(Error::NameNotFound { .. }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + every))
                        .await;
                }
                found => return found,
            }
        }
    }
}
