//! `paddock backup` and `paddock restore`: a consistent snapshot of a server's state taken
//! while it runs, and a fresh data directory made from one (docs/migration.md, Backup).
//!
//! The backup reads the server's files without writing to them: it copies its snapshot,
//! hard state, `loghead` and log segments into memory and runs the server's own recovery
//! over the copy (`Store::open` over `MemFiles`), so a segment being appended is cut at its
//! last whole record and nothing on disk is touched. The state is the newest snapshot with
//! every entry after it applied: a point the server's log passed through. A copy that
//! raced the server (a segment purged or started between listing and reading) is taken
//! again. The file written is a Paddock snapshot file, as `snapshot.<zxid>` in a data
//! directory is, which `paddock inspect` reads and `paddock restore` installs.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use paddock_core::limits::Limits;
use paddock_core::node::NodeSnapshot;
use paddock_core::replication::{HardState, SnapshotMeta};
use paddock_core::storage::{self, Dir, MemFiles, Store, StoreConfig};
use paddock_core::tree::{DataTree, TreeConfig};

use crate::storage::StorageError;

/// Copies taken before a backup gives up on a server that keeps changing its files
/// under it.
const ATTEMPTS_MAX: u32 = 5;

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The data directory's files do not recover (damaged), or raced every attempt.
    #[error("{0}")]
    Recover(String),
    /// The data directory holds no data.
    #[error("{0} holds no Paddock data")]
    Empty(PathBuf),
    /// A backup file is not an intact Paddock snapshot.
    #[error("{path} is not an intact Paddock snapshot: {reason}")]
    BadBackup {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The restore target already holds Paddock data.
    #[error("{0} already holds Paddock data: use an empty directory")]
    TargetNotEmpty(PathBuf),
    /// Writing the data directory failed.
    #[error("{0}")]
    Write(#[from] StorageError),
}

/// What a backup wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackedUp {
    /// The log position and zxid the state is at.
    pub meta: SnapshotMeta,
    /// Znodes in it.
    pub znodes: u64,
    /// Sessions in it.
    pub sessions: u64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Copies the files of `dir` that `wanted` picks into `files` under `as_dir`; `false`
/// when one vanished between listing and reading (a race with the server).
fn copy_dir(
    files: &mut MemFiles,
    dir: &Path,
    as_dir: Dir,
    wanted: impl Fn(&str) -> bool,
) -> Result<bool, BackupError> {
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !wanted(&name) || name.ends_with(".tmp") || !entry.path().is_file() {
            continue;
        }
        match fs::read(entry.path()) {
            Ok(bytes) => files.insert(as_dir, &name, bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(BackupError::Io {
                    path: entry.path(),
                    source,
                });
            }
        }
    }
    Ok(true)
}

/// The state of a (running or stopped) server's data directory, from a copy of its
/// files: the newest snapshot with every logged entry after it applied, and where it is.
pub fn state_of(
    data_dir: &Path,
    log_dir: &Path,
) -> Result<(NodeSnapshot, SnapshotMeta), BackupError> {
    let mut last_problem = String::new();
    for attempt in 0..ATTEMPTS_MAX {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut files = MemFiles::new();
        let whole = copy_dir(&mut files, data_dir, Dir::Data, |n| !n.starts_with("log."))?
            && copy_dir(&mut files, log_dir, Dir::Log, |n| n.starts_with("log."))?;
        if !whole {
            last_problem = "a file vanished while it was copied".to_owned();
            continue;
        }
        let (_, opened) = match Store::open(files, StoreConfig::new(Limits::default())) {
            Ok(opened) => opened,
            Err(e) => {
                last_problem = e.to_string();
                continue;
            }
        };
        if let Some(why) = opened.log_lost {
            // The newest segment was started after the listing: copy again.
            last_problem = why;
            continue;
        }
        let durable = opened.durable;
        if durable.snapshot.index == 0 && durable.entries.is_empty() {
            return Err(BackupError::Empty(data_dir.to_owned()));
        }
        let mut state = if durable.snapshot.index > 0 {
            NodeSnapshot::decode(&durable.snapshot_bytes)
                .map_err(|e| BackupError::Recover(e.reason))?
        } else {
            NodeSnapshot {
                tree: DataTree::new(TreeConfig::default()),
                sessions: paddock_core::session::SessionTable::new(
                    std::num::NonZeroU64::new(2000).expect("non-zero"),
                ),
            }
        };
        state
            .apply_logged(&durable.entries)
            .map_err(BackupError::Recover)?;
        let meta = durable
            .entries
            .last()
            .map_or(durable.snapshot, |entry| SnapshotMeta {
                index: entry.index,
                zxid: entry.zxid,
            });
        return Ok((state, meta));
    }
    Err(BackupError::Recover(format!(
        "no consistent copy in {ATTEMPTS_MAX} attempts: {last_problem}"
    )))
}

/// Writes a backup of the server whose directories are `data_dir` and `log_dir` to
/// `out` (atomically: a temporary file synced and renamed).
pub fn backup(data_dir: &Path, log_dir: &Path, out: &Path) -> Result<BackedUp, BackupError> {
    let (state, meta) = state_of(data_dir, log_dir)?;
    let bytes = state.encode();
    let index = meta.index.to_le_bytes();
    let (header, trailer) =
        storage::snapshot_frame(meta.zxid, &[&index, &bytes], &Limits::default())
            .map_err(|e| BackupError::Recover(e.to_string()))?;
    let tmp = out.with_extension("tmp");
    let mut file = Vec::with_capacity(header.len() + index.len() + bytes.len() + trailer.len());
    file.extend_from_slice(&header);
    file.extend_from_slice(&index);
    file.extend_from_slice(&bytes);
    file.extend_from_slice(&trailer);
    fs::write(&tmp, &file).map_err(io_error(&tmp))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_error(&tmp))?;
    fs::rename(&tmp, out).map_err(io_error(out))?;
    Ok(BackedUp {
        meta,
        znodes: state.tree.node_count() as u64,
        sessions: state.sessions.len() as u64,
    })
}

/// Writes `state` at `meta` into an empty data directory (`to`, log directory `to_log`):
/// its snapshot, and a hard state at the zxid's epoch so the next leader's zxids follow.
/// The directory may be another server's (ZooKeeper's, beside its `version-2/`). Reads
/// the result back before returning.
pub fn install_fresh(
    to: &Path,
    to_log: &Path,
    meta: SnapshotMeta,
    state: &NodeSnapshot,
) -> Result<(), BackupError> {
    let limits = Limits::default();
    let mut store = ensure_empty(to, to_log)?;
    let bytes = state.encode();
    store
        .install_snapshot(meta, &bytes)
        .map_err(StorageError::Write)?;
    store
        .write_hard_state(HardState {
            epoch: meta.zxid.epoch(),
            voted_for: None,
        })
        .map_err(StorageError::Write)?;
    drop(store);
    let (_, durable) = crate::storage::open_beside_zookeeper(to, to_log, limits)?;
    let read_back = NodeSnapshot::decode(&durable.snapshot_bytes).map_err(|e| {
        BackupError::Recover(format!(
            "the written state does not read back: {}",
            e.reason
        ))
    })?;
    if durable.snapshot != meta || read_back != *state {
        return Err(BackupError::Recover(
            "the written data directory does not read back as written".to_owned(),
        ));
    }
    Ok(())
}

/// Opens an empty (or missing) data directory, refusing one that holds Paddock data.
pub fn ensure_empty(to: &Path, to_log: &Path) -> Result<crate::storage::Storage, BackupError> {
    let (store, durable) = crate::storage::open_beside_zookeeper(to, to_log, Limits::default())?;
    if durable.snapshot.index != 0
        || !durable.entries.is_empty()
        || durable.hard_state != HardState::default()
    {
        return Err(BackupError::TargetNotEmpty(to.to_owned()));
    }
    Ok(store)
}

/// Restores a backup file into an empty data directory. The state keeps the backup's log
/// position and zxid.
pub fn restore(file: &Path, to: &Path, to_log: &Path) -> Result<BackedUp, BackupError> {
    let bytes = fs::read(file).map_err(io_error(file))?;
    let bad = |reason: String| BackupError::BadBackup {
        path: file.to_owned(),
        reason,
    };
    let (meta, state) = storage::snapshot_file_unframe(bytes, Limits::default().snapshot_bytes_max)
        .ok_or_else(|| bad("its framing or checksum does not check".to_owned()))?;
    let state = NodeSnapshot::decode(&state).map_err(|e| bad(e.reason))?;
    install_fresh(to, to_log, meta, &state)?;
    Ok(BackedUp {
        meta,
        znodes: state.tree.node_count() as u64,
        sessions: state.sessions.len() as u64,
    })
}
