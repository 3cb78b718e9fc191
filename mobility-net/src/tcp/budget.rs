//! The budget of accepted sockets not yet authenticated: how many at once,
//! how many from one address, and who gives way when it is full. It is
//! apart from the links' semaphore (`max_connections`), which only
//! authenticated sockets and this node's own dials take, so no number of
//! idle or slow strangers can keep the node from dialing or keeping its
//! links.
//!
//! When the budget is full, a newcomer takes the place of one socket
//! already in it, chosen in this order: from the address holding the most
//! sockets; then one that sent no valid `Hello` yet (a peer that means it
//! sends its `Hello` at once, so idle and trickling sockets go first);
//! then the oldest. The newcomer wins only against an address holding
//! more than its own, or as many if the socket it replaces is still
//! silent; otherwise it is closed at once.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::refusals::Reason;
use super::transport::lock;

/// Where an accepted socket comes from, as the per-address limit counts
/// it: its IPv4 address (also when mapped into IPv6), or the /64 prefix of
/// its IPv6 address (one host commonly holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Source(IpAddr);

impl Source {
    pub(crate) fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Source(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Accepted sockets still in their handshake.
#[derive(Debug)]
pub(crate) struct Unauthenticated {
    max: usize,
    per_source: usize,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    entries: Vec<Entry>,
    counts: HashMap<Source, usize>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    source: Source,
    hello: Arc<AtomicBool>,
    evict: CancellationToken,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let at = self.entries.iter().position(|e| e.id == id)?;
        let entry = self.entries.swap_remove(at);
        if let Some(count) = self.counts.get_mut(&entry.source) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&entry.source);
            }
        }
        Some(entry)
    }

    fn count(&self, source: &Source) -> usize {
        self.counts.get(source).copied().unwrap_or(0)
    }

    /// The socket that gives way first (see the module's docs), with the
    /// count of its address.
    fn victim(&self) -> Option<(usize, &Entry)> {
        self.entries
            .iter()
            .map(|e| (self.count(&e.source), e))
            .max_by_key(|(count, e)| (*count, !e.hello.load(Ordering::Relaxed), u64::MAX - e.id))
    }
}

/// What `admit` decided about a newcomer.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// The newcomer's place, given back when dropped.
    pub(crate) slot: PendingSlot,
    /// The address of the socket closed to make room, if one was.
    pub(crate) evicted: Option<Source>,
}

impl Unauthenticated {
    pub(crate) fn new(max: usize, per_source: usize) -> Arc<Self> {
        Arc::new(Unauthenticated {
            max,
            per_source,
            table: Mutex::new(Table::default()),
        })
    }

    /// A place for a socket from `source`, or why there is none.
    pub(crate) fn admit(self: &Arc<Self>, source: Source) -> Result<Admitted, Reason> {
        let mut table = lock(&self.table);
        let own = table.count(&source);
        if own >= self.per_source {
            return Err(Reason::PerAddress);
        }
        let mut evicted = None;
        if table.entries.len() >= self.max {
            let (count, victim) = table.victim().ok_or(Reason::UnauthenticatedFull)?;
            let silent = !victim.hello.load(Ordering::Relaxed);
            if count < own || (count == own && !silent) {
                return Err(Reason::UnauthenticatedFull);
            }
            let id = victim.id;
            if let Some(victim) = table.remove(id) {
                victim.evict.cancel();
                evicted = Some(victim.source);
            }
        }
        let id = table.next;
        table.next += 1;
        let hello = Arc::new(AtomicBool::new(false));
        let evict = CancellationToken::new();
        table.entries.push(Entry {
            id,
            source,
            hello: Arc::clone(&hello),
            evict: evict.clone(),
        });
        *table.counts.entry(source).or_default() += 1;
        Ok(Admitted {
            slot: PendingSlot {
                budget: Arc::clone(self),
                id,
                hello,
                evict,
            },
            evicted,
        })
    }

    /// Sockets in the budget now.
    pub(crate) fn len(&self) -> usize {
        lock(&self.table).entries.len()
    }
}

/// The place of one accepted socket in the budget, until it authenticates,
/// fails or is evicted.
#[derive(Debug)]
pub(crate) struct PendingSlot {
    budget: Arc<Unauthenticated>,
    id: u64,
    hello: Arc<AtomicBool>,
    evict: CancellationToken,
}

impl PendingSlot {
    /// The socket sent a valid `Hello` of a known cluster: it gives way
    /// after the silent ones.
    pub(crate) fn hello_read(&self) {
        self.hello.store(true, Ordering::Relaxed);
    }

    /// Resolves when a newcomer took this socket's place.
    pub(crate) fn evicted(&self) -> WaitForCancellationFuture<'_> {
        self.evict.cancelled()
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        lock(&self.budget.table).remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> Source {
        Source::of(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn per_address_limit_and_release() {
        let budget = Unauthenticated::new(10, 2);
        let a = budget.admit(v4(1)).expect("first");
        let _b = budget.admit(v4(1)).expect("second");
        assert_eq!(budget.admit(v4(1)).err(), Some(Reason::PerAddress));
        let _c = budget.admit(v4(2)).expect("another address");
        drop(a);
        assert_eq!(budget.len(), 2);
        let _d = budget.admit(v4(1)).expect("a place was given back");
    }

    #[test]
    fn when_full_the_busiest_address_gives_way_silent_first() {
        let budget = Unauthenticated::new(4, 8);
        let busy1 = budget.admit(v4(1)).expect("admitted").slot;
        let busy2 = budget.admit(v4(1)).expect("admitted").slot;
        let other = budget.admit(v4(2)).expect("admitted").slot;
        let third = budget.admit(v4(3)).expect("admitted").slot;
        busy1.hello_read();
        // Full: 10.0.0.1 holds the most; its silent one goes, not the oldest.
        let new = budget.admit(v4(4)).expect("takes a place");
        assert_eq!(new.evicted, Some(v4(1)));
        assert!(busy2.evict.is_cancelled());
        assert!(!busy1.evict.is_cancelled());
        // Now every address holds one: the oldest silent one goes.
        let newer = budget.admit(v4(5)).expect("takes a place");
        assert!(other.evict.is_cancelled(), "{newer:?}");
        assert!(!third.evict.is_cancelled());
        assert_eq!(budget.len(), 4);
        // All that remain sent a hello: a newcomer from an address that
        // holds as many as the busiest is refused...
        third.hello_read();
        new.slot.hello_read();
        newer.slot.hello_read();
        assert_eq!(budget.admit(v4(3)).err(), Some(Reason::UnauthenticatedFull));
        // ...one from a new address takes the place of the oldest.
        let fresh = budget.admit(v4(6)).expect("takes a place");
        assert_eq!(fresh.evicted, Some(v4(1)));
        assert!(busy1.evict.is_cancelled());
        drop(busy2);
        assert_eq!(budget.len(), 4, "an evicted slot was already given back");
    }

    #[test]
    fn ipv6_counts_per_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("valid");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("valid");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("valid");
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        assert_eq!(Source::of(a).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("valid");
        assert_eq!(Source::of(mapped).to_string(), "127.0.0.1");
    }
}
