//! `paddock export-zookeeper`: a stopped Paddock server's data directory written as a
//! snapshot Apache ZooKeeper 3.8 loads (`version-2/snapshot.<zxid>`), to roll a migration
//! back (docs/migration.md).
//!
//! The state exported is the data directory's: its newest snapshot and every log entry
//! after it applied (`NodeSnapshot::apply_logged`). On a standalone server every logged
//! entry was committed; on an ensemble member the last few may not have been (writes in
//! flight when it stopped, which no client saw succeed), so export from the member whose
//! log is longest after a clean stop of the whole ensemble.

use std::fs;
use std::path::{Path, PathBuf};

use paddock_core::limits::Limits;
use paddock_core::node::NodeSnapshot;
use paddock_core::tree::TreeConfig;
use paddock_core::zk_files;

use crate::storage::{self, StorageError};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The Paddock data directory could not be read.
    #[error("{0}")]
    Read(#[from] StorageError),
    /// It holds no data (no snapshot and no log entries).
    #[error("{0} holds no Paddock data")]
    Empty(PathBuf),
    /// Its state does not decode or its log does not apply.
    #[error("{dir}: {reason}")]
    Damaged {
        /// The data directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The target already holds ZooKeeper data.
    #[error(
        "{0} already holds ZooKeeper data (a snapshot or log in version-2/): export into an empty directory"
    )]
    TargetNotEmpty(PathBuf),
    /// Writing the snapshot failed.
    #[error("{path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What `export` wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The snapshot file.
    pub snapshot: PathBuf,
    /// Its zxid (the last one applied).
    pub zxid: i64,
    /// Znodes written.
    pub znodes: u64,
    /// Sessions written.
    pub sessions: u64,
}

/// The state of a stopped server's data directory (`data_dir`, `log_dir`): its newest
/// snapshot with every log entry after it applied, and the last zxid.
pub fn state_of(data_dir: &Path, log_dir: &Path) -> Result<(NodeSnapshot, i64), ExportError> {
    let (store, durable) = storage::open(data_dir, log_dir, Limits::default(), 1)?;
    drop(store);
    let damaged = |reason: String| ExportError::Damaged {
        dir: data_dir.to_owned(),
        reason,
    };
    let mut state = if durable.snapshot.index > 0 {
        NodeSnapshot::decode(&durable.snapshot_bytes).map_err(|e| damaged(e.reason))?
    } else if durable.entries.is_empty() {
        return Err(ExportError::Empty(data_dir.to_owned()));
    } else {
        NodeSnapshot {
            tree: paddock_core::tree::DataTree::new(TreeConfig::default()),
            sessions: paddock_core::session::SessionTable::new(
                std::num::NonZeroU64::new(2000).expect("non-zero"),
            ),
        }
    };
    state.apply_logged(&durable.entries).map_err(damaged)?;
    let zxid = durable
        .entries
        .last()
        .map_or(durable.snapshot.zxid, |entry| entry.zxid);
    Ok((state, zxid.as_wire()))
}

/// Writes the state of the Paddock data directory `from` (log directory `from_log`) as
/// `to/version-2/snapshot.<zxid>`, a file ZooKeeper 3.8 loads as its dataDir's.
pub fn export(from: &Path, from_log: &Path, to: &Path) -> Result<Exported, ExportError> {
    let version2 = to.join("version-2");
    if let Ok(entries) = fs::read_dir(&version2) {
        let taken = entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("snapshot.") || name.starts_with("log.")
        });
        if taken {
            return Err(ExportError::TargetNotEmpty(to.to_owned()));
        }
    }
    let (state, zxid) = state_of(from, from_log)?;
    let sessions: Vec<(i64, i32)> = state
        .sessions
        .iter()
        .map(|s| (s.id.0, i32::try_from(s.timeout_ms).unwrap_or(i32::MAX)))
        .collect();
    let bytes = zk_files::encode_snapshot(sessions.iter().copied(), state.tree.persisted());
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Write { path, source }
    };
    fs::create_dir_all(&version2).map_err(write_error(&version2))?;
    let snapshot = version2.join(format!("snapshot.{zxid:x}"));
    let tmp = version2.join(format!(".snapshot.{zxid:x}.tmp"));
    fs::write(&tmp, &bytes).map_err(write_error(&tmp))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(write_error(&tmp))?;
    fs::rename(&tmp, &snapshot).map_err(write_error(&snapshot))?;
    Ok(Exported {
        snapshot,
        zxid,
        znodes: state.tree.node_count() as u64,
        sessions: sessions.len() as u64,
    })
}
