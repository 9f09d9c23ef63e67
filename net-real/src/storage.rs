//! `storage`: real files under the storage engine. [`OsFiles`] implements
//! `paddock_core::storage::Files` over `dataDir` (snapshots, hard state) and `dataLogDir`
//! (log segments) with `fdatasync`; everything else — layout, records, snapshots,
//! recovery, purging — is core's `Store`, the same code the simulator runs over its
//! in-memory files. docs/storage.md describes the bytes.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paddock_core::limits::Limits;
use paddock_core::node::{NodeSnapshot, PayloadError, PeerMessage};
use paddock_core::replication::{DurableState, SnapshotMeta, SnapshotSend};
use paddock_core::storage::{
    Dir, FileError, FileErrorKind, FileOp, Files, Store, StoreConfig, StoreError,
    write_snapshot_file_with,
};

/// Open handles kept at most (the current segment and a snapshot being written are the
/// ones that matter); beyond it every handle is closed.
const OPEN_FILES_MAX: usize = 8;

/// Why the disk could not be read back or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage engine failed (an I/O error, or damage recovery must not repair).
    #[error("data directory {data_dir}, log directory {log_dir}: {source}")]
    Store {
        /// `dataDir`.
        data_dir: PathBuf,
        /// `dataLogDir`.
        log_dir: PathBuf,
        /// What failed.
        source: StoreError,
    },
    /// The directories hold Apache ZooKeeper's data (`version-2/` with snapshots or logs)
    /// and no Paddock data: starting would serve an empty tree beside it.
    #[error(
        "{zookeeper_dir} holds Apache ZooKeeper's data, and {data_dir} no Paddock data: \
         Paddock would start with an empty tree beside it; import it first with \
         `paddock import-zookeeper --from {data_dir} --to {data_dir}` (with the server \
         stopped), or point dataDir (and dataLogDir) at an empty directory to start a new \
         ensemble"
    )]
    ZooKeeperData {
        /// ZooKeeper's `version-2` directory found.
        zookeeper_dir: PathBuf,
        /// `dataDir`.
        data_dir: PathBuf,
    },
    /// A write failed while serving (the runtime stops).
    #[error("{0}")]
    Write(#[from] StoreError),
    /// The snapshot thread could not write a snapshot file (its error, as text).
    #[error("cannot write a snapshot: {0}")]
    Snapshot(String),
}

/// A node's two directories as `Files`. Cloning gives a handle on the same directories
/// with no open files (for another thread), and a pace of its own that starts at its
/// first write (each snapshot is written through a fresh clone).
#[derive(Debug)]
pub struct OsFiles {
    data_dir: PathBuf,
    log_dir: PathBuf,
    open: BTreeMap<(Dir, String), File>,
    /// Writes of a background thread (snapshots) paced: see [`WritePace`].
    pace: Option<WritePace>,
}

/// Bytes a paced writer writes and syncs at once.
const PACED_PIECE_BYTES: usize = 128 * 1024;

/// Pacing of a background writer that shares the disk with the log. A log sync is a
/// device cache flush, and it waits for every byte written before it: a snapshot written
/// at the disk's full speed, synced every 8 MiB, made each log sync of a loaded server
/// take ~10 ms instead of ~0.15 ms for as long as the snapshot was being written. Paced,
/// the snapshot's bytes go out at most `bytes_per_sec`, each piece written out (synced)
/// at once, so a log sync finds at most one piece ahead of it.
#[derive(Debug, Clone)]
pub struct WritePace {
    bytes_per_sec: u64,
    started: Option<Instant>,
    written: u64,
}

impl WritePace {
    /// At most `bytes_per_sec` (from the first write on).
    pub fn new(bytes_per_sec: u64) -> WritePace {
        WritePace {
            bytes_per_sec: bytes_per_sec.max(1),
            started: None,
            written: 0,
        }
    }

    /// Counts `bytes` written and waits until the rate allows the next write.
    fn wait_after(&mut self, bytes: usize) {
        let started = *self.started.get_or_insert_with(Instant::now);
        if let Some(ahead) = self.ahead_after(bytes, started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }

    /// Counts `bytes` written `elapsed` after the first write: how far ahead of the rate
    /// the writer now is, if it is.
    fn ahead_after(&mut self, bytes: usize, elapsed: Duration) -> Option<Duration> {
        self.written = self.written.saturating_add(bytes as u64);
        let due_us = u128::from(self.written) * 1_000_000 / u128::from(self.bytes_per_sec);
        let due = Duration::from_micros(u64::try_from(due_us).unwrap_or(u64::MAX));
        due.checked_sub(elapsed).filter(|ahead| !ahead.is_zero())
    }
}

impl Clone for OsFiles {
    fn clone(&self) -> OsFiles {
        OsFiles {
            pace: self
                .pace
                .as_ref()
                .map(|pace| WritePace::new(pace.bytes_per_sec)),
            ..OsFiles::at(&self.data_dir, &self.log_dir)
        }
    }
}

fn file_error(op: FileOp, dir: Dir, name: &str) -> impl Fn(io::Error) -> FileError + '_ {
    move |error| {
        let kind = match error.kind() {
            io::ErrorKind::NotFound => FileErrorKind::NotFound,
            io::ErrorKind::StorageFull => FileErrorKind::NoSpace,
            _ => FileErrorKind::Io(error.to_string()),
        };
        FileError::new(op, dir, name, kind)
    }
}

impl OsFiles {
    /// The directories, created if missing.
    pub fn new(data_dir: &Path, log_dir: &Path) -> Result<OsFiles, FileError> {
        fs::create_dir_all(data_dir).map_err(file_error(FileOp::Create, Dir::Data, ""))?;
        fs::create_dir_all(log_dir).map_err(file_error(FileOp::Create, Dir::Log, ""))?;
        Ok(OsFiles::at(data_dir, log_dir))
    }

    fn at(data_dir: &Path, log_dir: &Path) -> OsFiles {
        OsFiles {
            data_dir: data_dir.to_owned(),
            log_dir: log_dir.to_owned(),
            open: BTreeMap::new(),
            pace: None,
        }
    }

    fn dir(&self, dir: Dir) -> &Path {
        match dir {
            Dir::Data => &self.data_dir,
            Dir::Log => &self.log_dir,
        }
    }

    fn path(&self, dir: Dir, name: &str) -> PathBuf {
        self.dir(dir).join(name)
    }

    /// The open handle of `dir/name`, opening it for writing when needed.
    fn handle(&mut self, op: FileOp, dir: Dir, name: &str) -> Result<&File, FileError> {
        let key = (dir, name.to_owned());
        if !self.open.contains_key(&key) {
            if self.open.len() >= OPEN_FILES_MAX {
                self.open.clear();
            }
            let file = OpenOptions::new()
                .write(true)
                .open(self.path(dir, name))
                .map_err(file_error(op, dir, name))?;
            self.open.insert(key.clone(), file);
        }
        self.open
            .get(&key)
            .ok_or_else(|| FileError::new(op, dir, name, FileErrorKind::NotFound))
    }
}

impl Files for OsFiles {
    fn list(&mut self, dir: Dir) -> Result<Vec<String>, FileError> {
        let path = self.dir(dir).to_owned();
        let mut names = Vec::new();
        for item in fs::read_dir(&path).map_err(file_error(FileOp::List, dir, ""))? {
            let item = item.map_err(file_error(FileOp::List, dir, ""))?;
            if let Some(name) = item.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn read(&mut self, dir: Dir, name: &str) -> Result<Vec<u8>, FileError> {
        fs::read(self.path(dir, name)).map_err(file_error(FileOp::Read, dir, name))
    }

    fn read_at(
        &mut self,
        dir: Dir,
        name: &str,
        offset: u64,
        len: usize,
    ) -> Result<(Vec<u8>, u64), FileError> {
        let failed = file_error(FileOp::Read, dir, name);
        let file = File::open(self.path(dir, name)).map_err(&failed)?;
        let file_len = file.metadata().map_err(&failed)?.len();
        let wanted = file_len.saturating_sub(offset).min(len as u64);
        let mut bytes = vec![0; usize::try_from(wanted).unwrap_or(0)];
        file.read_exact_at(&mut bytes, offset).map_err(failed)?;
        Ok((bytes, file_len))
    }

    fn create(&mut self, dir: Dir, name: &str) -> Result<(), FileError> {
        let file =
            File::create(self.path(dir, name)).map_err(file_error(FileOp::Create, dir, name))?;
        if self.open.len() >= OPEN_FILES_MAX {
            self.open.clear();
        }
        self.open.insert((dir, name.to_owned()), file);
        Ok(())
    }

    fn write_at(
        &mut self,
        dir: Dir,
        name: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), FileError> {
        let paced = self.pace.is_some();
        let piece_bytes = if paced {
            PACED_PIECE_BYTES
        } else {
            bytes.len().max(1)
        };
        let mut at = offset;
        for piece in bytes.chunks(piece_bytes) {
            let file = self.handle(FileOp::Write, dir, name)?;
            file.write_all_at(piece, at)
                .map_err(file_error(FileOp::Write, dir, name))?;
            at += piece.len() as u64;
            if paced {
                file.sync_data()
                    .map_err(file_error(FileOp::Sync, dir, name))?;
            }
            if let Some(pace) = &mut self.pace {
                pace.wait_after(piece.len());
            }
        }
        Ok(())
    }

    fn set_len(&mut self, dir: Dir, name: &str, len: u64) -> Result<(), FileError> {
        self.handle(FileOp::SetLen, dir, name)?
            .set_len(len)
            .map_err(file_error(FileOp::SetLen, dir, name))
    }

    fn sync(&mut self, dir: Dir, name: &str) -> Result<(), FileError> {
        self.handle(FileOp::Sync, dir, name)?
            .sync_data()
            .map_err(file_error(FileOp::Sync, dir, name))
    }

    fn sync_dir(&mut self, dir: Dir) -> Result<(), FileError> {
        File::open(self.dir(dir))
            .and_then(|d| d.sync_all())
            .map_err(file_error(FileOp::SyncDir, dir, ""))
    }

    fn rename(&mut self, dir: Dir, from: &str, to: &str) -> Result<(), FileError> {
        self.open.remove(&(dir, from.to_owned()));
        self.open.remove(&(dir, to.to_owned()));
        fs::rename(self.path(dir, from), self.path(dir, to)).map_err(file_error(
            FileOp::Rename,
            dir,
            from,
        ))
    }

    fn remove(&mut self, dir: Dir, name: &str) -> Result<(), FileError> {
        self.open.remove(&(dir, name.to_owned()));
        fs::remove_file(self.path(dir, name)).map_err(file_error(FileOp::Remove, dir, name))
    }
}

/// The store of one node over real files.
pub type Storage = Store<OsFiles>;

/// Opens (creating them if needed) `data_dir` and `log_dir` and recovers what they hold,
/// logging what recovery skipped or repaired. `snapshots_retained` (at least 1) bounds
/// how many snapshots recovery reads and purging keeps.
pub fn open(
    data_dir: &Path,
    log_dir: &Path,
    limits: Limits,
    snapshots_retained: usize,
) -> Result<(Storage, DurableState), StorageError> {
    let (store, mut durable, snapshot) =
        open_with(data_dir, log_dir, limits, snapshots_retained, false, false)?;
    if let Snapshot::Bytes(bytes) = snapshot {
        durable.snapshot_bytes = bytes;
    }
    Ok((store, durable))
}

/// [`open`] for `paddock import-zookeeper`, which may write its Paddock data into
/// ZooKeeper's own data directory (beside its `version-2/`), where `open` refuses to start
/// while no Paddock data is there yet.
pub fn open_beside_zookeeper(
    data_dir: &Path,
    log_dir: &Path,
    limits: Limits,
) -> Result<(Storage, DurableState), StorageError> {
    let (store, mut durable, snapshot) = open_with(data_dir, log_dir, limits, 1, false, true)?;
    if let Snapshot::Bytes(bytes) = snapshot {
        durable.snapshot_bytes = bytes;
    }
    Ok((store, durable))
}

/// A snapshot decoded while the log was read ([`open_decoding`]).
pub type Decoded = Result<Option<NodeSnapshot>, PayloadError>;

/// [`open`], decoding the snapshot (for `Node::with_state`) on another thread while the
/// log is read and the newest segment rewritten: on 2 cores a restart of 10^6 znodes
/// overlaps the two instead of doing them in turn. `durable.snapshot_bytes` is empty.
pub fn open_decoding(
    data_dir: &Path,
    log_dir: &Path,
    limits: Limits,
    snapshots_retained: usize,
) -> Result<(Storage, DurableState, Decoded), StorageError> {
    let (store, durable, snapshot) =
        open_with(data_dir, log_dir, limits, snapshots_retained, true, false)?;
    let decoded = match snapshot {
        Snapshot::Decoded(decoded) => decoded,
        Snapshot::Bytes(_) => Ok(None),
    };
    Ok((store, durable, decoded))
}

/// The `version-2` directory of Apache ZooKeeper's data under `data_dir` or `log_dir`
/// (one holding a `snapshot.*` or `log.*` file), when neither holds any Paddock data (a
/// hard state, a snapshot or a log segment): what an operator who points Paddock at a
/// ZooKeeper server's directories would otherwise start empty beside. Unreadable
/// directories count as empty here; opening them reports the error.
fn zookeeper_data_only(data_dir: &Path, log_dir: &Path) -> Option<PathBuf> {
    fn has_file(dir: &Path, prefixes: &[&str]) -> bool {
        fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                prefixes.iter().any(|prefix| name.starts_with(prefix))
            })
        })
    }
    let zookeeper = [data_dir, log_dir]
        .into_iter()
        .map(|dir| dir.join("version-2"))
        .find(|dir| has_file(dir, &["snapshot.", "log."]))?;
    let paddock = has_file(data_dir, &["hardstate", "snapshot."]) || has_file(log_dir, &["log."]);
    (!paddock).then_some(zookeeper)
}

/// The snapshot [`open_with`] hands back.
enum Snapshot {
    /// Its bytes (empty when there is none).
    Bytes(Vec<u8>),
    /// Decoded (or why not).
    Decoded(Decoded),
}

fn decode_snapshot(meta: SnapshotMeta, bytes: &[u8]) -> Decoded {
    if meta.index == 0 {
        return Ok(None);
    }
    NodeSnapshot::decode(bytes).map(Some)
}

/// Opens the store in two stages ([`Store::open_staged`]); with `decode`, the snapshot
/// is decoded on a scoped thread while the second stage reads the log (in turn when no
/// thread can start).
fn open_with(
    data_dir: &Path,
    log_dir: &Path,
    limits: Limits,
    snapshots_retained: usize,
    decode: bool,
    beside_zookeeper: bool,
) -> Result<(Storage, DurableState, Snapshot), StorageError> {
    let failed = |source: StoreError| StorageError::Store {
        data_dir: data_dir.to_owned(),
        log_dir: log_dir.to_owned(),
        source,
    };
    if !beside_zookeeper && let Some(zookeeper_dir) = zookeeper_data_only(data_dir, log_dir) {
        return Err(StorageError::ZooKeeperData {
            zookeeper_dir,
            data_dir: data_dir.to_owned(),
        });
    }
    let files = OsFiles::new(data_dir, log_dir).map_err(|e| failed(e.into()))?;
    let config = StoreConfig {
        snapshots_retained: snapshots_retained.max(1),
        ..StoreConfig::new(limits)
    };
    let mut staged = Store::open_staged(files, config).map_err(failed)?;
    let meta = staged.snapshot();
    let bytes = staged.take_snapshot_bytes();
    let (finished, snapshot) = if decode {
        std::thread::scope(|scope| {
            let decoder = std::thread::Builder::new()
                .name("paddock-snapshot-load".to_owned())
                .spawn_scoped(scope, || decode_snapshot(meta, &bytes));
            let finished = staged.finish();
            let decoded = match decoder {
                Ok(thread) => thread.join().unwrap_or_else(|_| {
                    Err(PayloadError {
                        reason: "the snapshot decoder panicked".to_owned(),
                    })
                }),
                Err(_) => decode_snapshot(meta, &bytes),
            };
            (finished, Snapshot::Decoded(decoded))
        })
    } else {
        (staged.finish(), Snapshot::Bytes(bytes))
    };
    let (store, opened) = finished.map_err(failed)?;
    for name in &opened.temporaries_removed {
        tracing::info!(file = %data_dir.join(name).display(), "removed a file left half written");
    }
    for (name, error) in &opened.snapshots_rejected {
        tracing::warn!(file = %data_dir.join(name).display(), %error, "damaged snapshot skipped");
    }
    if let Some(cut) = &opened.tail_cut {
        let file = log_dir.join(&cut.segment);
        if cut.padding_only {
            tracing::debug!(file = %file.display(), valid_bytes = cut.valid_bytes, "trimmed log padding");
        } else {
            tracing::warn!(file = %file.display(), valid_bytes = cut.valid_bytes, "cut torn log tail");
        }
    }
    if let Some(reason) = &opened.log_lost {
        tracing::warn!(
            "{reason}; this server will neither vote nor lead until a leader has re-synced it"
        );
    }
    Ok((store, opened.durable, snapshot))
}

/// What a thread other than the disk thread needs to write and read snapshot files, so a
/// snapshot of hundreds of megabytes holds up neither the event loop nor the log writes.
#[derive(Debug, Clone)]
pub struct SnapshotFiles {
    files: OsFiles,
    limits: Limits,
}

impl SnapshotFiles {
    /// The snapshot files of `store`'s directories.
    /// Snapshots are written at most `write_bytes_per_sec` (0: at the disk's speed), see
    /// [`WritePace`].
    pub fn of(store: &Storage, write_bytes_per_sec: u64) -> SnapshotFiles {
        let mut files = store.files().clone();
        if write_bytes_per_sec > 0 {
            files.pace = Some(WritePace::new(write_bytes_per_sec));
        }
        SnapshotFiles {
            files,
            limits: store.config().limits.clone(),
        }
    }

    /// Writes a snapshot file of these bytes and makes it durable; nothing else changes
    /// until the store is told (`Store::snapshot_written`). The server writes its
    /// snapshots with [`SnapshotFiles::write_state`]; the tests write bytes.
    #[cfg(test)]
    pub fn write(&mut self, meta: SnapshotMeta, bytes: &[u8]) -> Result<(), StoreError> {
        paddock_core::storage::write_snapshot_file(&mut self.files, &self.limits, meta, bytes)
    }

    /// [`SnapshotFiles::write`] of the node's `state`, encoded into the file as it goes:
    /// no buffer of the whole snapshot (~200 bytes per znode) is held.
    pub fn write_state(
        &mut self,
        meta: SnapshotMeta,
        state: &NodeSnapshot,
    ) -> Result<(), StoreError> {
        write_snapshot_file_with(&mut self.files, &self.limits, meta, |file| {
            state.encode_into(file)
        })
    }

    /// The message carrying the piece of the newest snapshot file `send` asks for, when
    /// that file covers at least `send.meta` (a follower is sent one piece at a time).
    pub fn read_piece(&mut self, send: &SnapshotSend) -> Result<Option<PeerMessage>, StoreError> {
        PeerMessage::snapshot_piece_read(&mut self.files, send)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use paddock_core::ids::{Epoch, NodeId, Zxid};
    use paddock_core::replication::{Entry, HardState, Message, MessageBody};
    use paddock_core::storage::snapshot_file_unframe;
    use paddock_core::storage::{RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, snapshot_name};

    fn entry(index: u64, epoch: u64, counter: u64) -> Entry {
        Entry {
            index,
            zxid: Zxid(epoch << 32 | counter),
            payload: vec![index as u8; 10],
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("paddock-storage-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    // ZooKeeper's `version-2/` with a snapshot or a log, in dataDir or dataLogDir, and no
    // Paddock data refuses to open, naming it; beside Paddock's own data (a hard state, a
    // snapshot, a log segment), or holding neither (ZooKeeper's epoch files only), it is
    // left alone.
    #[test]
    fn zookeeper_data_without_paddock_data_is_refused() {
        let dir = temp_dir("zk");
        let log = dir.join("log");
        let zk = dir.join("version-2");
        fs::create_dir_all(&zk).unwrap();
        fs::write(zk.join("currentEpoch"), "1").unwrap();
        assert_eq!(
            zookeeper_data_only(&dir, &log),
            None,
            "no data in version-2"
        );
        fs::write(zk.join("snapshot.100000000"), b"ZKSN").unwrap();
        assert_eq!(zookeeper_data_only(&dir, &log), Some(zk.clone()));
        let err = reopen(&dir).unwrap_err();
        assert!(matches!(err, StorageError::ZooKeeperData { .. }), "{err}");
        assert!(!log.exists(), "nothing created beside it");
        // In dataLogDir instead.
        fs::remove_file(zk.join("snapshot.100000000")).unwrap();
        let log_zk = log.join("version-2");
        fs::create_dir_all(&log_zk).unwrap();
        fs::write(log_zk.join("log.100000001"), b"ZKLG").unwrap();
        assert_eq!(zookeeper_data_only(&dir, &log), Some(log_zk));
        // Paddock's own data beside it: each kind is enough.
        for (at, name) in [
            (&dir, "hardstate"),
            (&dir, "snapshot.0000000000000001"),
            (&log, "log.0000000000000001"),
        ] {
            fs::write(at.join(name), b"").unwrap();
            assert_eq!(zookeeper_data_only(&dir, &log), None, "{name}");
            fs::remove_file(at.join(name)).unwrap();
        }
        let _ = fs::remove_dir_all(&dir);
    }

    fn reopen(dir: &Path) -> Result<(Storage, DurableState), StorageError> {
        open(dir, &dir.join("log"), Limits::default(), 3)
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(dir.join("log"))
            .unwrap()
            .map(|item| item.unwrap().path())
            .collect();
        found.sort();
        found
    }

    // Appended, synced entries and the hard state come back after a reopen, from real
    // files in two directories.
    #[test]
    fn reopen_returns_what_was_synced() {
        let dir = temp_dir("reopen");
        let (mut s, d) = reopen(&dir).unwrap();
        assert_eq!(d, DurableState::default());
        s.append(None, &[entry(1, 1, 0), entry(2, 1, 1)]).unwrap();
        s.sync().unwrap();
        let hard = HardState {
            epoch: Epoch(1),
            voted_for: Some(NodeId(2)),
        };
        s.write_hard_state(hard).unwrap();
        drop(s);
        assert!(dir.join("hardstate").exists());
        assert_eq!(segments(&dir).len(), 1);
        let (_, d) = reopen(&dir).unwrap();
        assert_eq!(d.entries, vec![entry(1, 1, 0), entry(2, 1, 1)]);
        assert_eq!(d.hard_state, hard);
    }

    // The pace is the configured rate: a writer that is early by the bytes it wrote
    // waits the difference, one that is late does not wait.
    #[test]
    fn write_pace_keeps_the_rate() {
        let mut pace = WritePace::new(1 << 20);
        assert_eq!(
            pace.ahead_after(1 << 19, Duration::from_millis(100)),
            Some(Duration::from_millis(400))
        );
        assert_eq!(
            pace.ahead_after(1 << 19, Duration::from_millis(250)),
            Some(Duration::from_millis(750))
        );
        assert_eq!(pace.ahead_after(1 << 18, Duration::from_secs(2)), None);
        assert_eq!(
            pace.ahead_after(0, Duration::from_secs(1)),
            Some(Duration::from_millis(250))
        );
    }

    // A snapshot written paced (in synced pieces) is the same file as one written at
    // once, and recovery reads it.
    #[test]
    fn paced_snapshot_files_are_whole() {
        let dir = temp_dir("paced");
        let (s, _) = reopen(&dir).unwrap();
        let bytes: Vec<u8> = (0..(3 * PACED_PIECE_BYTES + 1234))
            .map(|i| (i % 253) as u8)
            .collect();
        let meta = SnapshotMeta {
            index: 0,
            zxid: Zxid(0),
        };
        let mut paced = SnapshotFiles::of(&s, 1 << 30);
        assert!(paced.files.pace.is_some());
        paced.write(meta, &bytes).unwrap();
        let name = paddock_core::storage::snapshot_name(meta.zxid);
        let paced_file = fs::read(dir.join(&name)).unwrap();
        let mut whole = SnapshotFiles::of(&s, 0);
        assert!(whole.files.pace.is_none());
        whole.write(meta, &bytes).unwrap();
        assert_eq!(fs::read(dir.join(&name)).unwrap(), paced_file);
        let (unframed_meta, unframed) =
            snapshot_file_unframe(paced_file, Limits::default().snapshot_bytes_max).unwrap();
        assert_eq!(unframed_meta, meta);
        assert_eq!(unframed, bytes);
        let _ = fs::remove_dir_all(&dir);
    }

    // A torn last record is cut at reopen (the file shortened); the records before it
    // survive.
    #[test]
    fn torn_tail_is_cut() {
        let dir = temp_dir("torn");
        let (mut s, _) = reopen(&dir).unwrap();
        s.append(None, &[entry(1, 1, 0), entry(2, 1, 1)]).unwrap();
        s.sync().unwrap();
        drop(s);
        let path = segments(&dir).remove(0);
        let len = fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();
        let (_, d) = reopen(&dir).unwrap();
        assert_eq!(d.entries, vec![entry(1, 1, 0)]);
        assert!(fs::metadata(&path).unwrap().len() < len - 3);
    }

    // The segment being written is padded with zeros on disk once its records reach the
    // padding minimum; a restart trims the padding and keeps every record.
    #[test]
    fn padding_is_trimmed_and_loses_nothing() {
        let big = |index: u64| Entry {
            index,
            zxid: Zxid(1 << 32 | index),
            payload: vec![index as u8; 40_000],
        };
        let dir = temp_dir("padding");
        let (mut s, _) = reopen(&dir).unwrap();
        s.append(None, &[big(1), big(2)]).unwrap();
        s.sync().unwrap();
        let path = segments(&dir).remove(0);
        let records = (SEGMENT_HEADER_BYTES + 2 * (RECORD_HEADER_BYTES + 8 + 40_000)) as u64;
        assert!(fs::metadata(&path).unwrap().len() >= records + records / 2);
        drop(s);
        let (_, d) = reopen(&dir).unwrap();
        assert_eq!(d.entries, vec![big(1), big(2)]);
        assert_eq!(fs::metadata(&path).unwrap().len(), records);
    }

    // A corrupt record followed by valid ones refuses to start, naming the file.
    #[test]
    fn mid_log_corruption_refuses() {
        let dir = temp_dir("corrupt");
        let (mut s, _) = reopen(&dir).unwrap();
        s.append(None, &[entry(1, 1, 0), entry(2, 1, 1), entry(3, 1, 2)])
            .unwrap();
        s.sync().unwrap();
        drop(s);
        let path = segments(&dir).remove(0);
        let mut bytes = fs::read(&path).unwrap();
        bytes[SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 2] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let err = reopen(&dir).err().unwrap().to_string();
        assert!(err.contains("corrupt record"), "{err}");
        assert!(err.contains("log/log."), "{err}");
    }

    // A half-written snapshot (a crash mid-write) is removed at the next start.
    #[test]
    fn leftover_temporaries_are_removed() {
        let dir = temp_dir("leftover");
        drop(reopen(&dir).unwrap());
        let half = dir.join("snapshot.0000000100000001.tmp");
        let other = dir.join("notes.tmp");
        fs::write(&half, b"half a snapshot").unwrap();
        fs::write(&other, b"not ours").unwrap();
        reopen(&dir).unwrap();
        assert!(!half.exists());
        assert!(other.exists());
    }

    // A snapshot written from another handle (the snapshot thread), then recorded, is
    // what recovery starts from; purging removes the segments it covers; the file reads
    // back for a follower, and a damaged one is not sent.
    #[test]
    fn snapshot_from_another_thread_and_purge() {
        let dir = temp_dir("snapshot");
        let (mut s, _) = open(&dir, &dir.join("log"), Limits::default(), 1).unwrap();
        s.append(None, &[entry(1, 1, 1), entry(2, 1, 2)]).unwrap();
        s.sync().unwrap();
        let meta = SnapshotMeta {
            index: 2,
            zxid: Zxid(1 << 32 | 2),
        };
        let mut files = SnapshotFiles::of(&s, 0);
        std::thread::scope(|scope| {
            scope.spawn(|| files.write(meta, b"state").unwrap());
        });
        s.snapshot_written(meta).unwrap();
        s.append(None, &[entry(3, 1, 3)]).unwrap();
        s.sync().unwrap();
        assert_eq!(segments(&dir).len(), 2);
        assert_eq!(s.purge().unwrap(), 1);
        assert_eq!(segments(&dir).len(), 1);
        drop(s);
        let (_, d) = reopen(&dir).unwrap();
        assert_eq!(d.snapshot, meta);
        assert_eq!(d.snapshot_bytes, b"state");
        assert_eq!(d.entries, vec![entry(3, 1, 3)]);
        // Read back in pieces of 7 bytes, the file is whole again and checks.
        let send = |meta, offset| SnapshotSend {
            to: NodeId(2),
            epoch: Epoch(1),
            meta,
            offset,
            bytes_max: 7,
        };
        let mut file = Vec::new();
        loop {
            let msg = files.read_piece(&send(meta, file.len() as u64)).unwrap();
            let Some(PeerMessage::Replication(Message {
                body:
                    MessageBody::Snapshot {
                        meta: read,
                        bytes,
                        total_bytes,
                        ..
                    },
                ..
            })) = msg
            else {
                panic!("not a snapshot piece: {msg:?}");
            };
            assert_eq!(read, meta);
            assert!(bytes.len() <= 7);
            file.extend_from_slice(&bytes);
            if file.len() as u64 == total_bytes {
                break;
            }
        }
        let limit = Limits::default().snapshot_bytes_max;
        assert_eq!(
            snapshot_file_unframe(file.clone(), limit),
            Some((meta, b"state".to_vec()))
        );
        let newer = SnapshotMeta {
            index: 3,
            zxid: Zxid(1 << 32 | 3),
        };
        assert_eq!(
            files.read_piece(&send(newer, 0)).unwrap(),
            None,
            "none that new"
        );
        // A damaged file still reads in pieces; the follower's check refuses it.
        let path = dir.join(snapshot_name(meta.zxid));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(snapshot_file_unframe(bytes, limit), None);
    }
}
