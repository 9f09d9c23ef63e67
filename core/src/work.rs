//! Work accounting: units of work a step did, counted where the work happens, so the
//! simulator can judge efficiency the way it judges safety (docs/consensus.md, Work
//! budget).
//!
//! Three counters, pure tallies (no clock):
//! - **visited:** znodes and sessions the data structures looked at (a lookup, an
//!   insert or a removal is one; a scan is one per item it passes);
//! - **touched:** what the operations themselves name: a request's node and its parent,
//!   the children it lists, the descendants it counts, the ephemerals a closing session
//!   deletes, the watchers an event goes to. A client operation's visits must stay within
//!   a small multiple of what it touched, never grow with the tree or the sessions;
//! - **background:** visits made by housekeeping (session table rebuilds on a leader
//!   change, the reaper's scan, status counts, digests), judged per simulated second.
//!
//! The tally is per thread: a node's step runs on one thread from start to end, and the
//! caller that wants the figures ([`take`]) reads them after the step on that thread.
//! Nothing in core reads them back, so they cannot change what a node does.

use std::cell::Cell;

/// The units of work counted since the last [`take`] on this thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Znodes and sessions visited by client operations and replication.
    pub visited: u64,
    /// What those operations touched by definition.
    pub touched: u64,
    /// Visits made by housekeeping.
    pub background: u64,
}

thread_local! {
    static TALLY: Cell<Work> = const {
        Cell::new(Work {
            visited: 0,
            touched: 0,
            background: 0,
        })
    };
    static IN_BACKGROUND: Cell<bool> = const { Cell::new(false) };
}

/// Counts `n` visits (as background inside [`background`]).
pub(crate) fn visit(n: u64) {
    let background = IN_BACKGROUND.with(Cell::get);
    TALLY.with(|tally| {
        let mut work = tally.get();
        if background {
            work.background = work.background.saturating_add(n);
        } else {
            work.visited = work.visited.saturating_add(n);
        }
        tally.set(work);
    });
}

/// Counts `n` units an operation touched by definition (not inside [`background`]:
/// housekeeping earns no allowance).
pub(crate) fn touch(n: u64) {
    if IN_BACKGROUND.with(Cell::get) {
        return;
    }
    TALLY.with(|tally| {
        let mut work = tally.get();
        work.touched = work.touched.saturating_add(n);
        tally.set(work);
    });
}

/// Runs `f` with its visits counted as background work.
pub(crate) fn background<T>(f: impl FnOnce() -> T) -> T {
    let was = IN_BACKGROUND.with(|flag| flag.replace(true));
    let result = f();
    IN_BACKGROUND.with(|flag| flag.set(was));
    result
}

/// Runs `f` without counting its work: for assertions that re-check state
/// (`NodeConfig::check_invariants`), which are the tests' cost, not the server's.
pub fn uncounted<T>(f: impl FnOnce() -> T) -> T {
    let before = TALLY.with(Cell::get);
    let result = f();
    TALLY.with(|tally| tally.set(before));
    result
}

/// The work counted on this thread since the last call, and a fresh tally.
pub fn take() -> Work {
    TALLY.with(|tally| tally.replace(Work::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_inside_background_are_counted_apart() {
        let _ = take();
        visit(3);
        touch(2);
        background(|| {
            visit(5);
            touch(7);
        });
        visit(1);
        uncounted(|| {
            visit(100);
            touch(100);
        });
        assert_eq!(
            take(),
            Work {
                visited: 4,
                touched: 2,
                background: 5
            }
        );
        assert_eq!(take(), Work::default());
    }
}
