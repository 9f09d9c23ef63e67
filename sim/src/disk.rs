//! A simulated disk per server: writes complete in order after a latency, only
//! completed writes survive a crash, and recovery hands the node what survived.

use std::collections::VecDeque;

use paddock_core::node::Input;
use paddock_core::replication::{DurableState, Entry, HardState, SnapshotMeta};

/// A write the node asked for.
#[derive(Debug, Clone)]
pub enum DiskOp {
    /// Overwrite the hard state.
    HardState(HardState),
    /// Truncate after an index (if set) and append entries.
    Entries {
        /// Keep entries up to this index.
        truncate_after: Option<u64>,
        /// Entries to append.
        entries: Vec<Entry>,
    },
    /// Replace everything by a snapshot from the leader.
    Install {
        /// What it covers.
        meta: SnapshotMeta,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Store a snapshot the node took; drop the log it covers.
    Snapshot {
        /// What it covers.
        meta: SnapshotMeta,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

/// One server's disk.
#[derive(Debug, Default)]
pub struct SimDisk {
    durable: DurableState,
    pending: VecDeque<(u64, DiskOp)>,
    busy_until_ms: u64,
    /// Writes completed since the start.
    pub writes: u64,
}

impl SimDisk {
    /// Queues a write; returns when it completes (true time, ms).
    pub fn submit(&mut self, now_ms: u64, latency_ms: u64, op: DiskOp) -> Option<u64> {
        let at = self.busy_until_ms.max(now_ms) + latency_ms;
        self.busy_until_ms = at;
        self.pending.push_back((at, op));
        Some(at)
    }

    /// Completes every write due by `now_ms`, in order; returns what to tell the node.
    pub fn complete(&mut self, now_ms: u64) -> Vec<Input> {
        let mut inputs = Vec::new();
        while self.pending.front().is_some_and(|(at, _)| *at <= now_ms) {
            let Some((_, op)) = self.pending.pop_front() else {
                break;
            };
            self.writes += 1;
            if let Some(input) = self.apply(op) {
                inputs.push(input);
            }
        }
        inputs
    }

    fn apply(&mut self, op: DiskOp) -> Option<Input> {
        let d = &mut self.durable;
        match op {
            DiskOp::HardState(hard_state) => {
                d.hard_state = hard_state;
                Some(Input::HardStatePersisted { hard_state })
            }
            DiskOp::Entries {
                truncate_after,
                entries,
            } => {
                if let Some(keep) = truncate_after {
                    d.entries.retain(|e| e.index <= keep);
                }
                let last = entries.last().map(|e| (e.index, e.zxid));
                d.entries.extend(entries);
                last.map(|(index, zxid)| Input::Persisted { index, zxid })
            }
            DiskOp::Install { meta, bytes } => {
                d.snapshot = meta;
                d.snapshot_bytes = bytes;
                d.entries.clear();
                Some(Input::SnapshotInstalled { meta })
            }
            DiskOp::Snapshot { meta, bytes } => {
                if meta.index > d.snapshot.index {
                    d.snapshot = meta;
                    d.snapshot_bytes = bytes;
                    d.entries.retain(|e| e.index > meta.index);
                }
                Some(Input::SnapshotWritten { meta })
            }
        }
    }

    /// The process died: writes not yet completed are lost.
    pub fn crash(&mut self) {
        self.pending.clear();
        self.busy_until_ms = 0;
    }

    /// What a restarting node finds.
    pub fn recover(&self) -> DurableState {
        self.durable.clone()
    }
}
