//! A live web page of a node (cargo feature `dashboard`): the cluster's
//! members, which member hosts each named actor, this node's actors with
//! their mailbox depths, and the migrations this node took part in as they
//! happen, with their freeze times.
//!
//! ```no_run
//! # async fn f(node: mobility::Node) -> Result<(), mobility::Error> {
//! let dashboard = node.serve_dashboard("127.0.0.1:8080").await?;
//! println!("open {}", dashboard.url());
//! // ... it serves until `dashboard` is dropped.
//! # Ok(()) }
//! ```
//!
//! Two routes:
//!
//! - `/`: the page, one HTML file with plain JavaScript that asks for
//!   `/api/state` every 300 ms (one request at a time) and redraws.
//! - `/api/state`: what the page shows, as JSON:
//!
//! ```text
//! { "node": "node-a", "listen": "127.0.0.1:1805", "now_ms": <unix ms>,
//!   "members": ["node-a", ...], "peers": ["node-b", "node-x", ...],
//!   "stats": { "hosted", "forwarders", "forwarded_messages" },
//!   "named":  [{ "name", "actor", "type_tag", "node" }, ...],
//!   "actors": [{ "id", "type_tag", "rust_type", "name", "mailbox_depth",
//!                "messages_handled", "epoch" }, ...],
//!   "events": [{ "seq", "at_ms", "kind", "actor", "type_tag", "name",
//!                "from", "to", "freeze_us", "detail" }, ...],  // oldest first
//!   "events_missed": 0 }
//! ```
//!
//! `kind` is one of `spawned`, `arrived`, `departed` (with `freeze_us`),
//! `migration_failed`, `stopped` and `member`.
//!
//! A browser costs the actors nothing: an answer reads the node's tables
//! for a moment ([`Node::actors`], [`Node::directory_snapshot`]); events
//! are taken from [`Node::observe`] by one task into a log of the last
//! 200, and if that task ever falls behind it loses the oldest and counts
//! them (`events_missed`) rather than hold anything up.

mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::node::Node;
use crate::proto::error::Error;

use state::EventLog;

/// The page, served as is.
const PAGE: &str = include_str!("page.html");

/// A dashboard being served ([`Node::serve_dashboard`]). It serves until
/// it is dropped.
#[must_use = "the dashboard stops serving when dropped"]
#[derive(Debug)]
pub struct Dashboard {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    collector: JoinHandle<()>,
}

impl Dashboard {
    /// The address it listens on (with the port the OS chose for `:0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address, `http://ip:port/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may have ended already: nothing to stop then.
            let _ = stop.send(());
        }
        self.collector.abort();
    }
}

/// What the handlers share.
struct Shared {
    node: Node,
    log: Arc<Mutex<EventLog>>,
}

impl Node {
    /// Serves this node's dashboard on `addr` (`"127.0.0.1:0"` picks a free
    /// port; [`Dashboard::addr`] tells which): a live web page at `/` and
    /// its data as JSON at `/api/state` (see the [`dashboard`](crate::dashboard)
    /// module). It serves until the returned [`Dashboard`] is dropped.
    ///
    /// Needs the cargo feature `dashboard`. Fails with [`Error::Config`]
    /// naming the address if it cannot listen there (taken, not local,
    /// not allowed). Call it inside a tokio runtime.
    pub async fn serve_dashboard(&self, addr: &str) -> Result<Dashboard, Error> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Config(format!("the dashboard cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Config(format!("the dashboard cannot listen on {addr}: {e}")))?;

        // Subscribe before serving: the page shows every event from now on.
        let log = Arc::new(Mutex::new(EventLog::new(self.id().clone())));
        let collector = tokio::spawn(state::collect(self.observe(), Arc::clone(&log)));

        let shared = Arc::new(Shared {
            node: self.clone(),
            log,
        });
        let app = Router::new()
            .route("/", get(page))
            .route("/api/state", get(api_state))
            .with_state(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            // A dropped sender means the same as a sent stop.
            let _ = stopped.await;
        });
        let node = self.id().clone();
        tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::warn!(%node, %local, "the dashboard stopped: {e}");
            }
        });
        tracing::info!(node = %self.id(), "dashboard on http://{local}/");
        Ok(Dashboard {
            addr: local,
            stop: Some(stop),
            collector,
        })
    }
}

/// Never cached: the page and its data change all the time.
const NO_STORE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-store");

async fn page() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), NO_STORE],
        PAGE,
    )
}

async fn api_state(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let snapshot = state::Snapshot::take(&shared.node, &shared.log);
    (
        [(header::CONTENT_TYPE, "application/json"), NO_STORE],
        snapshot.to_json(),
    )
}
