//! [`Persist`]: the one type for every write a node asks the runtime to make durable, and
//! how it is performed on the storage engine.

use super::{Input, NodeSnapshot};
use crate::replication::{Entry, HardState, SnapshotMeta};
use crate::storage::{Files, Store, StoreError};

/// A write the node asks for (`Output::Persist`). Once it is durable the runtime feeds
/// the node [`Persist::completion`]; writes complete in the order they were asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persist {
    /// Make the hard state durable; completes with `Input::HardStatePersisted`.
    HardState(HardState),
    /// Drop durable log entries after `truncate_after` (when set), append `entries`;
    /// completes with `Input::Persisted` for the last one (nothing when there is none).
    Entries {
        /// Keep entries up to this index.
        truncate_after: Option<u64>,
        /// Entries to append.
        entries: Vec<Entry>,
    },
    /// The leader sent a snapshot and the node now runs on it: make it durable and drop
    /// the whole log; completes with `Input::SnapshotInstalled`.
    InstallSnapshot {
        /// What it covers.
        meta: SnapshotMeta,
        /// The snapshot bytes (a [`NodeSnapshot`] in bincode).
        bytes: Vec<u8>,
    },
    /// The node took a snapshot: encode it into its file ([`NodeSnapshot::encode_into`]
    /// with `storage::write_snapshot_file_with`, which the runtime may do on another
    /// thread: the state is an O(1) copy that nothing changes) and make the file durable;
    /// completes with `Input::SnapshotWritten`.
    WriteSnapshot {
        /// What it covers.
        meta: SnapshotMeta,
        /// The state as of `meta`.
        state: Box<NodeSnapshot>,
    },
    /// A node that started with a lost log has been re-synced by a leader: forget the
    /// loss (`Store::log_resynced`), so a restart no longer keeps it from voting. Nothing
    /// is reported back.
    LogResynced,
}

impl Persist {
    /// What to tell the node once this write is durable.
    pub fn completion(&self) -> Option<Input> {
        match self {
            Persist::HardState(hard_state) => Some(Input::HardStatePersisted {
                hard_state: *hard_state,
            }),
            Persist::Entries { entries, .. } => entries.last().map(|last| Input::Persisted {
                index: last.index,
                zxid: last.zxid,
            }),
            Persist::InstallSnapshot { meta, .. } => Some(Input::SnapshotInstalled { meta: *meta }),
            Persist::WriteSnapshot { meta, .. } => Some(Input::SnapshotWritten { meta: *meta }),
            Persist::LogResynced => None,
        }
    }

    /// Performs the write on `store` (encoding a snapshot on the caller's thread) and
    /// returns its [`Persist::completion`], which is true only once `store.sync()` has
    /// returned: appended entries are buffered until then (group commit).
    pub fn perform<F: Files>(self, store: &mut Store<F>) -> Result<Option<Input>, StoreError> {
        let completion = self.completion();
        match self {
            Persist::HardState(hard_state) => store.write_hard_state(hard_state)?,
            Persist::Entries {
                truncate_after,
                entries,
            } => store.append(truncate_after, &entries)?,
            Persist::InstallSnapshot { meta, bytes } => store.install_snapshot(meta, &bytes)?,
            Persist::WriteSnapshot { meta, state } => {
                store.write_snapshot_with(meta, |file| state.encode_into(file))?;
            }
            Persist::LogResynced => store.log_resynced()?,
        }
        Ok(completion)
    }
}
