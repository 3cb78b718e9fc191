//! The listener. Every accepted socket first takes a place in the budget
//! of unauthenticated sockets (`budget.rs`), or is closed at once; it has
//! `handshake_timeout` to authenticate; then it leaves that budget for a
//! place among the links (`max_connections`), or is closed if there is
//! none. Refusals are counted and summarized (`refusals.rs`), never
//! logged one line each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::budget::{Admitted, Source};
use super::establish::{handshake, refusal_frame, Failure};
use super::handshake::{RefusalReason, Role};
use super::refusals::{Reason, SUMMARY_EVERY};
use super::transport::Inner;

/// Pause after a failed `accept` (out of file descriptors and the like).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

pub(crate) async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = inner.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, addr)) => admit(&inner, stream, addr),
            Err(e) => {
                inner
                    .refusals
                    .record(Reason::AcceptFailed, None, &format!("accept failed: {e}"));
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    () = inner.shutdown.cancelled() => return,
                }
            }
        }
    }
}

/// Logs what was refused lately, if a burst ended since the last summary.
pub(crate) async fn summary_loop(inner: Arc<Inner>) {
    let mut ticks = tokio::time::interval(SUMMARY_EVERY / 5);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => inner.refusals.flush(),
            () = inner.shutdown.cancelled() => return,
        }
    }
}

/// Gives an accepted socket a place in the unauthenticated budget and
/// runs its handshake, or closes it at once.
fn admit(inner: &Arc<Inner>, stream: TcpStream, addr: SocketAddr) {
    let source = Source::of(addr.ip());
    let config = inner.config();
    let Admitted { slot, evicted } = match inner.unauthenticated.admit(source) {
        Ok(admitted) => admitted,
        Err(reason) => {
            let limit = match reason {
                Reason::PerAddress => format!(
                    "too many unauthenticated connections from {source} ({})",
                    config.max_unauthenticated_per_address
                ),
                _ => format!(
                    "too many unauthenticated connections ({})",
                    config.max_unauthenticated
                ),
            };
            refuse(&stream, &limit);
            inner
                .refusals
                .record(reason, Some(source), &format!("this node has {limit}"));
            return;
        }
    };
    if let Some(victim) = evicted {
        inner.refusals.record(
            Reason::Evicted,
            Some(victim),
            &format!(
                "this node has too many unauthenticated connections ({}): \
                 one from {victim} made room for one from {source}",
                config.max_unauthenticated
            ),
        );
    }
    let inner = Arc::clone(inner);
    tokio::spawn(async move {
        let result = tokio::select! {
            r = handshake(stream, Role::Listener, &inner.local, &*inner, || slot.hello_read()) => r,
            // Counted by the newcomer that took its place.
            () = slot.evicted() => return,
            () = inner.shutdown.cancelled() => return,
        };
        match result {
            Ok(handshaken) => match inner.link_permit() {
                Ok(permit) => {
                    drop(slot);
                    match handshaken.established(permit).await {
                        Ok(established) => inner.route(established),
                        Err(e) => tracing::debug!(%addr, "socket lost before its verdict: {e}"),
                    }
                }
                Err(e) => {
                    // The dialer, waiting for the verdict, is told it is
                    // busy and tries again. (Its `Hello` was answered
                    // because the links had room then: `Policy::busy`.)
                    let detail = format!("{}: {e}", handshaken.hello.node);
                    handshaken.refuse(RefusalReason::Busy(e.to_string())).await;
                    inner
                        .refusals
                        .record(Reason::LinksFull, Some(source), &detail);
                }
            },
            Err(failure @ Failure::Timeout(_)) => {
                let detail = format!("from {addr}: {failure}");
                inner
                    .refusals
                    .record(Reason::HandshakeTimeout, Some(source), &detail);
            }
            Err(Failure::Busy(limit)) => {
                let detail = format!("from {addr}: this node has {limit}");
                inner
                    .refusals
                    .record(Reason::LinksFull, Some(source), &detail);
            }
            Err(failure @ Failure::Identity(_)) => {
                let detail = format!("from {addr}: {failure}");
                inner
                    .refusals
                    .record(Reason::BadIdentity, Some(source), &detail);
            }
            // Only a dialer is told a refusal.
            Err(failure @ (Failure::Failed(_) | Failure::Refused(_))) => {
                let detail = format!("from {addr}: {failure}");
                inner
                    .refusals
                    .record(Reason::BadHandshake, Some(source), &detail);
            }
        }
    });
}

/// Tells a socket refused before its handshake why (best effort, without
/// waiting): what it already sent is read first, so closing it sends a
/// FIN rather than a reset that could discard the refusal.
fn refuse(stream: &TcpStream, limit: &str) {
    let mut scratch = [0u8; 4096];
    let _ = stream.try_read(&mut scratch);
    let _ = stream.try_write(&refusal_frame(RefusalReason::Busy(limit.to_owned())));
}
