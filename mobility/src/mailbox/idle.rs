//! An idle actor lent to the callers on its node.
//!
//! A request normally crosses the mailbox to the cell's task and its reply
//! crosses back: two channels and two task switches, most of a local round
//! trip. While the cell has nothing to do, it lends the actor to its node's
//! callers instead: a caller whose handler is not `async` borrows the actor,
//! runs the handler on its own task (it finishes without waiting) and gives
//! the actor back. One actor still handles one message at a time.
//!
//! Order is kept by never lending past the mailbox: every message put in the
//! mailbox marks the slot `DIRTY` (after it is in), and nobody may borrow a
//! dirty slot. The cell lends only from a clean state, clears the mark only
//! just before it reads the whole mailbox, and takes the actor back
//! before it does anything else. So a caller's request never runs before a
//! message that same caller put in the mailbox earlier; a message another
//! caller was putting in at the same moment may go either side, as with
//! any two concurrent senders. (Messages already taken from the mailbox
//! but not yet handled are the cell's to watch: it lends only when every
//! one its node's senders sent is handled; see `Cell::lend_idle_actor`.)
//!
//! One atomic word holds the protocol; the value itself sits behind a mutex
//! that is never contended while the word says who owns it.

use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// The cell lent the value: callers may borrow it.
const LENT: u8 = 1;
/// A caller holds it.
const BORROWED: u8 = 2;
/// A message went into the mailbox since the cell last looked.
const DIRTY: u8 = 4;
/// The last borrower needs the cell (a stop or move asked, a panic, a
/// timer armed).
const ATTENTION: u8 = 8;
/// The cell wants the value back.
const WANTED: u8 = 16;
/// The cell is gone: a returned value is dropped.
const CLOSED: u8 = 32;

/// Where a cell lends its idle actor (`T`: the hosted actor). On a cache
/// line of its own: senders on other threads write its word, and must not
/// slow down readers of the entry's other fields.
#[repr(align(64))]
pub(crate) struct IdleSlot<T> {
    state: AtomicU8,
    slot: Mutex<Option<T>>,
    /// The cell's task, woken when a borrower needs it or gives back what
    /// the cell wants.
    cell: AtomicWaker,
}

impl<T> Default for IdleSlot<T> {
    fn default() -> Self {
        IdleSlot {
            state: AtomicU8::new(0),
            slot: Mutex::new(None),
            cell: AtomicWaker::new(),
        }
    }
}

impl<T> IdleSlot<T> {
    fn lock(&self) -> MutexGuard<'_, Option<T>> {
        // Whoever panicked while holding it left either the value or nothing.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called after a message went into the mailbox: no borrowing until the
    /// cell has looked at it.
    pub(crate) fn mailbox_used(&self) {
        // The mark stays until the cell clears it and then reads the
        // mailbox, which by then holds this message: skipping a second
        // write is safe.
        if self.state.load(SeqCst) & DIRTY == 0 {
            self.state.fetch_or(DIRTY, SeqCst);
        }
    }

    /// Borrows the value if it is lent and nothing is in the way; given
    /// back when the guard drops.
    pub(crate) fn borrow(&self) -> Option<Borrowed<'_, T>> {
        self.state
            .compare_exchange(LENT, LENT | BORROWED, SeqCst, SeqCst)
            .ok()?;
        let guard = self.lock();
        if guard.is_none() {
            // Unreachable while the protocol holds; stay safe anyway.
            drop(guard);
            self.give_back(false);
            return None;
        }
        Some(Borrowed {
            idle: self,
            guard: Some(guard),
            attention: false,
        })
    }

    fn give_back(&self, attention: bool) {
        if attention {
            self.state.fetch_or(ATTENTION, SeqCst);
        }
        let before = self.state.fetch_and(!BORROWED, SeqCst);
        if before & CLOSED != 0 {
            drop(self.lock().take());
        }
        if attention || before & WANTED != 0 {
            self.cell.wake();
        }
    }

    /// The cell is about to read the whole mailbox: clears the mark, and
    /// says whether there was one (if not, the mailbox holds nothing the
    /// cell has not seen).
    pub(crate) fn take_mark(&self) -> bool {
        if self.state.load(SeqCst) & DIRTY == 0 {
            return false;
        }
        self.state.fetch_and(!DIRTY, SeqCst);
        true
    }

    /// The cell lends `value` to callers. Refused (the value comes back) if
    /// the mailbox is marked: the cell must take the mark and read the
    /// mailbox first.
    pub(crate) fn lend(&self, value: T) -> Result<(), T> {
        let mut slot = self.lock();
        *slot = Some(value);
        match self.state.compare_exchange(0, LENT, SeqCst, SeqCst) {
            Ok(_) => Ok(()),
            Err(_) => Err(slot.take().expect("the value was just put in")),
        }
    }

    /// Ready when a borrower asked for the cell (registers the cell's task).
    pub(crate) fn poll_attention(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.cell.register(cx.waker());
        if self.state.load(SeqCst) & ATTENTION != 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// The cell takes the lent value back, waiting while a caller holds it;
    /// with whether a borrower asked for the cell.
    pub(crate) fn poll_take_back(&self, cx: &mut Context<'_>) -> Poll<(T, bool)> {
        loop {
            let state = self.state.load(SeqCst);
            if state & BORROWED != 0 {
                self.cell.register(cx.waker());
                // Also stops new borrowers: they need exactly `LENT`.
                if self.state.fetch_or(WANTED, SeqCst) & BORROWED != 0 {
                    return Poll::Pending;
                }
                continue;
            }
            let owned = state & DIRTY;
            if self
                .state
                .compare_exchange(state, owned, SeqCst, SeqCst)
                .is_ok()
            {
                let value = self.lock().take().expect("a lent value is in its slot");
                return Poll::Ready((value, state & ATTENTION != 0));
            }
        }
    }

    /// The cell is gone: drops the value now, or when its borrower gives it
    /// back (it holds the actor's handle, which holds this slot).
    pub(crate) fn close(&self) {
        let before = self.state.fetch_or(CLOSED, SeqCst);
        if before & BORROWED == 0 {
            drop(self.lock().take());
        }
    }
}

/// A borrowed idle actor; given back on drop (also when its handler
/// panicked).
pub(crate) struct Borrowed<'a, T> {
    idle: &'a IdleSlot<T>,
    guard: Option<MutexGuard<'a, Option<T>>>,
    attention: bool,
}

impl<T> Borrowed<'_, T> {
    /// The value.
    pub(crate) fn value(&mut self) -> &mut T {
        self.guard
            .as_mut()
            .and_then(|g| g.as_mut())
            .expect("a borrowed value is in its slot")
    }

    /// Wakes the cell when given back, and lends no more until it looked.
    pub(crate) fn call_cell(&mut self) {
        self.attention = true;
    }
}

impl<T> Drop for Borrowed<'_, T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.idle.give_back(self.attention);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Waker;

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn lent_value_is_borrowed_and_taken_back() {
        let idle = IdleSlot::default();
        assert!(idle.borrow().is_none(), "nothing lent yet");
        idle.lend(1u32).expect("clean slot lends");
        *idle.borrow().expect("lent").value() += 1;
        match idle.poll_take_back(&mut cx()) {
            Poll::Ready((value, attention)) => {
                assert_eq!(value, 2);
                assert!(!attention);
            }
            Poll::Pending => panic!("nobody holds it"),
        }
        assert!(idle.borrow().is_none(), "taken back");
    }

    #[test]
    fn a_used_mailbox_stops_borrowing_until_the_cell_looked() {
        let idle = IdleSlot::default();
        idle.lend(0u32).expect("lends");
        idle.mailbox_used();
        assert!(idle.borrow().is_none(), "dirty: the mailbox comes first");
        let Poll::Ready((value, _)) = idle.poll_take_back(&mut cx()) else {
            panic!("not borrowed")
        };
        // The mark outlives the take-back: no lending until the cell took it.
        let value = idle.lend(value).expect_err("must read the mailbox first");
        assert!(idle.take_mark());
        assert!(!idle.take_mark(), "taken once");
        idle.lend(value).expect("clean after the look");
        assert!(idle.borrow().is_some());
    }

    #[test]
    fn a_mark_made_before_lending_refuses_the_lend() {
        let idle = IdleSlot::default();
        idle.mailbox_used();
        assert_eq!(idle.lend(7u32), Err(7));
        assert!(idle.take_mark());
        assert!(idle.lend(7).is_ok());
    }

    #[test]
    fn a_borrower_calling_the_cell_wakes_it_and_stops_borrowing() {
        let idle = IdleSlot::default();
        idle.lend(0u32).expect("lends");
        assert!(idle.poll_attention(&mut cx()).is_pending());
        idle.borrow().expect("lent").call_cell();
        assert!(idle.poll_attention(&mut cx()).is_ready());
        assert!(idle.borrow().is_none(), "the cell must look first");
        let Poll::Ready((_, attention)) = idle.poll_take_back(&mut cx()) else {
            panic!("not borrowed")
        };
        assert!(attention);
        idle.lend(0).expect("attention cleared by the take-back");
    }

    #[test]
    fn take_back_waits_for_the_borrower_and_blocks_new_ones() {
        let idle = IdleSlot::default();
        idle.lend(5u32).expect("lends");
        let mut held = idle.borrow().expect("lent");
        assert!(idle.poll_take_back(&mut cx()).is_pending());
        assert!(idle.borrow().is_none(), "wanted back: no new borrower");
        *held.value() = 6;
        drop(held);
        let Poll::Ready((value, _)) = idle.poll_take_back(&mut cx()) else {
            panic!("given back")
        };
        assert_eq!(value, 6);
    }

    #[test]
    fn closing_drops_the_value_now_or_when_given_back() {
        let value = Arc::new(());
        let idle = IdleSlot::default();
        idle.lend(value.clone()).expect("lends");
        idle.close();
        assert_eq!(Arc::strong_count(&value), 1, "dropped at once");

        let idle = IdleSlot::default();
        idle.lend(value.clone()).expect("lends");
        let held = idle.borrow().expect("lent");
        idle.close();
        assert_eq!(Arc::strong_count(&value), 2, "still borrowed");
        drop(held);
        assert_eq!(Arc::strong_count(&value), 1, "dropped when given back");
    }

    /// Threads race senders that mark the mailbox and borrowers against a
    /// cell that lends and takes back: one owner at a time (no increment is
    /// lost), and a borrow right after a mark succeeds only if the cell lent
    /// again after that mark.
    #[test]
    fn one_owner_at_a_time_under_contention() {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
        let idle = Arc::new(IdleSlot::default());
        let stop = Arc::new(AtomicBool::new(false));
        let borrows = Arc::new(AtomicU64::new(0));
        // Lend attempts so far, counted before each attempt.
        let lends = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for _ in 0..3 {
            let (idle, stop, borrows, lends) =
                (idle.clone(), stop.clone(), borrows.clone(), lends.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    if let Some(mut held) = idle.borrow() {
                        *held.value() += 1;
                        borrows.fetch_add(1, Relaxed);
                    }
                    let before = lends.load(SeqCst);
                    idle.mailbox_used();
                    if idle.borrow().is_some() {
                        assert!(
                            lends.load(SeqCst) > before,
                            "borrowed past a mark without the cell lending again"
                        );
                    }
                }
            }));
        }
        let mut owned = Some(0u64);
        for _ in 0..20_000 {
            if let Some(value) = owned.take() {
                idle.take_mark();
                lends.fetch_add(1, SeqCst);
                owned = idle.lend(value).err();
            }
            if owned.is_none() {
                loop {
                    if let Poll::Ready((value, _)) = idle.poll_take_back(&mut cx()) {
                        owned = Some(value);
                        break;
                    }
                    std::thread::yield_now();
                }
            }
        }
        stop.store(true, Relaxed);
        for t in threads {
            t.join().expect("borrower thread");
        }
        assert_eq!(
            owned,
            Some(borrows.load(Relaxed)),
            "every borrow counted once"
        );
    }
}
