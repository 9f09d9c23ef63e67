//! What a node holds in memory that grows with load, and the bounds its configuration
//! sets on each: the simulator reads [`Node::memory`] after every step and fails a run
//! whose node exceeds one ([`MemoryUse::exceeded`]), so a leak that only slows or bloats
//! a server is caught like a safety bug.
//!
//! The bounds (docs/consensus.md §9, "Liveness and efficiency bounds", the Memory row):
//! - **Log behind the snapshot:** once a snapshot is durable, the log keeps at most the
//!   entries behind it that fit `snapshot_log_kept_bytes` (each costs its payload plus
//!   the size of an [`Entry`]), so at most `snapshot_log_kept_bytes / size_of::<Entry>()`.
//! - **Applied since the snapshot:** with no snapshot being written, fewer than
//!   `snapshot_every_entries` entries were applied since the last one (a step that
//!   reaches it starts the next snapshot).
//! - **Uncommitted proposals:** a leader's prepared but unapplied transactions stay
//!   within `proposals_uncommitted_max` plus what is committed and waiting to be applied.
//! - **Nodes held twice:** a leader's prepared tree shares its nodes with the applied
//!   tree again (is rebased) whenever nothing is pending, and otherwise within
//!   `REBASE_EVERY` applied transactions or 8 × the pending ones, whichever is more.
//! - **Sessions:** at most `sessions_max` live sessions.
//! - **Client queues:** each connection's unanswered requests within
//!   [`QUEUE_BYTES_MAX`](super::QUEUE_BYTES_MAX) bytes.
//! - **Watches:** each connection watches at most `watches_per_connection_max` paths.

use super::{Node, NodeConfig};
use crate::replication::Entry;

/// What one node holds, as counts. Cheap to read: O(connections).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// Log entries held (after the log's start, up to its last index).
    pub log_entries: u64,
    /// Of them, entries at or before the last durable snapshot.
    pub log_behind_snapshot: u64,
    /// Entries applied since the last durable snapshot.
    pub applied_since_snapshot: u64,
    /// A snapshot is being written.
    pub snapshot_pending: bool,
    /// Log entries not applied yet (uncommitted, or committed and waiting).
    pub unapplied: u64,
    /// Committed entries waiting to be applied.
    pub apply_queue: u64,
    /// On a leader, prepared transactions not yet applied.
    pub prepared: u64,
    /// On a leader, transactions applied since its prepared tree was last rebased on the
    /// applied one (the nodes they touched are held twice until then).
    pub prepared_unshared: u64,
    /// Writes forwarded to the leader and not acknowledged, or not sent yet.
    pub forwarded: u64,
    /// Open client connections.
    pub connections: u64,
    /// Live sessions.
    pub sessions: u64,
    /// The largest queue of unanswered requests of one connection, bytes.
    pub conn_queue_bytes_max: u64,
    /// The most paths one connection watches.
    pub conn_watched_paths_max: u64,
}

impl MemoryUse {
    /// The first bound of `config` this use exceeds, in words; `None` within every bound.
    pub fn exceeded(&self, config: &NodeConfig) -> Option<String> {
        let kept_max = config.snapshot_log_kept_bytes / std::mem::size_of::<Entry>() as u64;
        if self.log_behind_snapshot > kept_max {
            return Some(format!(
                "holds {} log entries behind its durable snapshot, above the {kept_max} that snapshot_log_kept_bytes = {} allows",
                self.log_behind_snapshot, config.snapshot_log_kept_bytes
            ));
        }
        if !self.snapshot_pending && self.applied_since_snapshot >= config.snapshot_every_entries {
            return Some(format!(
                "applied {} entries since its last snapshot and is not writing one (snapshot_every_entries = {})",
                self.applied_since_snapshot, config.snapshot_every_entries
            ));
        }
        let prepared_max = config.replication.proposals_uncommitted_max + self.apply_queue;
        if self.prepared > prepared_max {
            return Some(format!(
                "holds {} prepared transactions, above proposals_uncommitted_max = {} and the {} committed waiting",
                self.prepared, config.replication.proposals_uncommitted_max, self.apply_queue
            ));
        }
        // A rebase was due and did not happen: the rule the leader follows, `rebase_due`.
        let (unshared, pending) = (self.prepared_unshared, self.prepared);
        let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        if unshared > 0 && super::leader::rebase_due(as_usize(unshared), as_usize(pending)) {
            let unshared_max = (super::leader::REBASE_EVERY as u64).max(pending.saturating_mul(8));
            return Some(format!(
                "applied {unshared} transactions since its prepared tree was rebased, with {pending} pending (rebased when none is, else within {unshared_max})"
            ));
        }
        if self.sessions > u64::from(config.limits.sessions_max) {
            return Some(format!(
                "holds {} sessions, above sessions_max = {}",
                self.sessions, config.limits.sessions_max
            ));
        }
        if self.conn_queue_bytes_max > super::QUEUE_BYTES_MAX as u64 {
            return Some(format!(
                "queues {} bytes of requests on one connection, above {}",
                self.conn_queue_bytes_max,
                super::QUEUE_BYTES_MAX
            ));
        }
        if self.conn_watched_paths_max > u64::from(config.limits.watches_per_connection_max) {
            return Some(format!(
                "a connection watches {} paths, above watches_per_connection_max = {}",
                self.conn_watched_paths_max, config.limits.watches_per_connection_max
            ));
        }
        None
    }
}

impl Node {
    /// What this node holds now ([`MemoryUse`]).
    pub fn memory(&self) -> MemoryUse {
        let (log_start, log_last) = self.replica.log_span();
        let ((prepared, prepared_unshared), unacked) = match &self.role {
            super::Role::Leader(leader) => (leader.prepared_counts(), 0),
            super::Role::Follower(follower) => ((0, 0), follower.unacked_len()),
        };
        MemoryUse {
            log_entries: log_last - log_start,
            log_behind_snapshot: self.snapshot.index.min(log_last).saturating_sub(log_start),
            applied_since_snapshot: self.applied.index.saturating_sub(self.snapshot.index),
            snapshot_pending: self.snapshot.pending.is_some(),
            unapplied: log_last.saturating_sub(self.applied.index),
            apply_queue: self.apply_queue.len() as u64,
            prepared: prepared as u64,
            prepared_unshared: prepared_unshared as u64,
            forwarded: (unacked + self.route.unsent.len()) as u64,
            connections: self.conns.len() as u64,
            sessions: self.sessions.len() as u64,
            conn_queue_bytes_max: self
                .conns
                .values()
                .map(|conn| conn.queued_bytes() as u64)
                .max()
                .unwrap_or(0),
            conn_watched_paths_max: self.watches.paths_watched_max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;

    fn config() -> NodeConfig {
        let mut config = NodeConfig::new(NodeId(1), [NodeId(1)].into());
        config.snapshot_every_entries = 100;
        config.snapshot_log_kept_bytes = 10 * std::mem::size_of::<Entry>() as u64;
        config.replication.proposals_uncommitted_max = 50;
        config.limits.sessions_max = 7;
        config.limits.watches_per_connection_max = 5;
        config
    }

    // Each bound lets its limit through and names itself one past it.
    #[test]
    fn each_bound_holds_at_its_limit_and_breaks_past_it() {
        let config = config();
        let within = MemoryUse {
            log_behind_snapshot: 10,
            applied_since_snapshot: 99,
            prepared: 50 + 3,
            prepared_unshared: 4095,
            apply_queue: 3,
            sessions: 7,
            conn_queue_bytes_max: super::super::QUEUE_BYTES_MAX as u64,
            conn_watched_paths_max: 5,
            ..MemoryUse::default()
        };
        assert_eq!(within.exceeded(&config), None);
        let cases: [(MemoryUse, &str); 9] = [
            (
                MemoryUse {
                    log_behind_snapshot: 11,
                    ..within
                },
                "behind its durable snapshot",
            ),
            (
                MemoryUse {
                    applied_since_snapshot: 100,
                    ..within
                },
                "since its last snapshot",
            ),
            (
                MemoryUse {
                    prepared: 54,
                    ..within
                },
                "prepared transactions",
            ),
            (
                MemoryUse {
                    prepared_unshared: 4096,
                    ..within
                },
                "rebased",
            ),
            (
                MemoryUse {
                    prepared: 0,
                    prepared_unshared: 1,
                    ..within
                },
                "with 0 pending",
            ),
            (
                MemoryUse {
                    prepared: 600,
                    prepared_unshared: 4800,
                    apply_queue: 600,
                    ..within
                },
                "within 4800",
            ),
            (
                MemoryUse {
                    sessions: 8,
                    ..within
                },
                "sessions_max",
            ),
            (
                MemoryUse {
                    conn_queue_bytes_max: super::super::QUEUE_BYTES_MAX as u64 + 1,
                    ..within
                },
                "one connection",
            ),
            (
                MemoryUse {
                    conn_watched_paths_max: 6,
                    ..within
                },
                "watches_per_connection_max",
            ),
        ];
        for (used, words) in cases {
            let why = used.exceeded(&config).unwrap_or_default();
            assert!(why.contains(words), "{used:?}: {why:?}");
        }
        // With more than 512 pending, the bound is 8 applies per pending transaction.
        let many_pending = MemoryUse {
            prepared: 600,
            prepared_unshared: 4799,
            apply_queue: 600,
            ..within
        };
        assert_eq!(many_pending.exceeded(&config), None);
        // A snapshot being written lets the applied count run past the interval.
        let writing = MemoryUse {
            applied_since_snapshot: 150,
            snapshot_pending: true,
            ..within
        };
        assert_eq!(writing.exceeded(&config), None);
    }

    // A fresh node is within every bound.
    #[test]
    fn a_fresh_node_is_within_bounds() {
        let config = config();
        let node = Node::new(
            config.clone(),
            crate::replication::DurableState::default(),
            1,
        )
        .expect("a fresh node starts");
        let used = node.memory();
        assert_eq!(used.log_entries, 0);
        assert_eq!(used.exceeded(&config), None);
    }
}
