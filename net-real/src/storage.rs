//! `storage`: the files behind a node — log segments in `dataLogDir`, snapshots and the
//! hard state in `dataDir` — in the byte formats of `paddock_core::storage`.
//!
//! Layout: `log.<016x first zxid>` segments (each record's payload is one replication
//! `Entry` in bincode), `snapshot.<016x zxid>` files (payload: the entry index as a
//! little-endian u64, then the node's snapshot bytes), and `hardstate`.
//!
//! Invariants: appends go to the last segment only, and a segment is synced before the
//! first byte of the next one is written (recovery then only ever sees a torn *last*
//! segment); `sync` is the one place that calls `fdatasync` for appended records, so a
//! caller batches many appends behind one sync (group commit); snapshots and the hard
//! state are written to a temporary file, synced, renamed over the old name and the
//! directory synced, so a crash leaves either the old or the new file, never a mix. A
//! segment's name is the zxid of its first record, which lets purging decide from names
//! alone which segments a snapshot covers.
//!
//! What it does not do: decide when to write (the node does), or retry failed I/O (an
//! I/O error is returned and the runtime stops: a node that cannot persist must not ack).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use paddock_core::ids::Zxid;
use paddock_core::limits::Limits;
use paddock_core::replication::{DurableState, Entry, HardState, SnapshotMeta};
use paddock_core::storage::{self as format, RecoveryError, Tail};

/// Roll to a new segment once the current one reaches this size, in bytes (ZooKeeper
/// preallocates its logs in 64 MiB steps).
pub const SEGMENT_BYTES_ROLL: u64 = 64 * 1024 * 1024;

/// The current segment is kept up to this many bytes (its own length while it is
/// shorter; none before [`SEGMENT_PAD_BYTES_MIN`]) ahead of its records in written zeros
/// (as ZooKeeper pads its logs): a sync then rewrites blocks the file already has, so
/// `fdatasync` need not also commit a new file size (measured here: about 130 µs
/// instead of 180 µs per sync). Recovery cuts the zeros as a torn tail, and a segment is
/// trimmed to its records when it stops being the current one.
pub const SEGMENT_PAD_BYTES: u64 = 1024 * 1024;
/// A segment is padded once its records reach this many bytes.
pub const SEGMENT_PAD_BYTES_MIN: u64 = 64 * 1024;

/// File name of the hard state in `dataDir`.
const HARD_STATE_FILE: &str = "hardstate";

/// Why the disk could not be read back or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Recovery found damage it must not repair by itself.
    #[error("{dir}: refusing to start: {source}")]
    Recovery {
        /// The log directory.
        dir: PathBuf,
        /// What recovery found.
        source: RecoveryError,
    },
    /// The hard state file is damaged.
    #[error("{path}: refusing to start: damaged hard state: {reason}")]
    HardState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A record or snapshot payload does not decode, or the log has a gap.
    #[error("{path}: refusing to start: {reason}")]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An entry could not be encoded (it breaks a limit the node should have checked).
    #[error("cannot encode log record: {0}")]
    Encode(#[from] format::EncodeError),
    /// The snapshot thread could not write a snapshot file (its error, as text).
    #[error("cannot write a snapshot: {0}")]
    Snapshot(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One log segment on disk.
#[derive(Debug, Clone)]
struct Segment {
    first_zxid: Zxid,
    path: PathBuf,
}

/// Where one durable entry lives, so a truncation knows where to cut.
#[derive(Debug, Clone, Copy)]
struct EntryPosition {
    /// Position of its segment in `Storage::segments`.
    segment: usize,
    /// Byte offset of its record in the segment.
    offset_bytes: u64,
}

/// The open files of one node. See the module documentation.
#[derive(Debug)]
pub struct Storage {
    data_dir: PathBuf,
    log_dir: PathBuf,
    limits: Limits,
    snapshots_retained: usize,
    segments: Vec<Segment>,
    /// The last segment, open for appending, with its length in bytes.
    current: Option<(File, u64)>,
    /// Durable entries after the newest snapshot, by index.
    positions: BTreeMap<u64, EntryPosition>,
    /// Appended since the last sync.
    dirty: bool,
    /// Records appended to the current segment and not yet written to it: a batch of
    /// appends is written with one system call, at [`Storage::sync`] (which every path
    /// that closes, cuts or replaces the current segment calls first).
    unwritten: Vec<u8>,
    /// Bytes of the current segment's file, records and zero padding
    /// ([`SEGMENT_PAD_BYTES`]).
    allocated: u64,
}

fn segment_name(zxid: Zxid) -> String {
    format!("log.{:016x}", zxid.0)
}

fn snapshot_name(zxid: Zxid) -> String {
    format!("snapshot.{:016x}", zxid.0)
}

/// Writes snapshot files: what a thread other than the disk thread needs for it, so a
/// snapshot of hundreds of megabytes does not hold up the log writes behind it.
#[derive(Debug, Clone)]
pub struct SnapshotFiles {
    data_dir: PathBuf,
    limits: Limits,
}

impl SnapshotFiles {
    /// Writes a snapshot file and makes it durable (written aside, synced, renamed into
    /// place, directory synced). Until the storage is told
    /// ([`Storage::snapshot_written`]) nothing else changes.
    pub fn write(&self, meta: SnapshotMeta, bytes: &[u8]) -> Result<(), StorageError> {
        // The payload is the index then the node's bytes, framed and written in pieces:
        // no copy of a snapshot that may be hundreds of megabytes.
        let index = meta.index.to_le_bytes();
        let (header, trailer) = format::snapshot_frame(meta.zxid, &[&index, bytes], &self.limits)?;
        write_atomic(
            &self.data_dir,
            &snapshot_name(meta.zxid),
            &[&header, &index, bytes, &trailer],
        )
    }
}

impl SnapshotFiles {
    /// The newest snapshot file, read back and checked (checksum, index prefix), when it
    /// covers at least `meta`: what `Output::PeerSnapshot` sends. `Ok(None)` when the
    /// newest file is older than `meta` or there is none (the node then retries later).
    pub fn read_newest(
        &self,
        meta: SnapshotMeta,
    ) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        let Some((zxid, path)) = list_numbered(&self.data_dir, "snapshot.")?.pop() else {
            return Ok(None);
        };
        if zxid < meta.zxid.0 {
            return Ok(None);
        }
        let mut file = read_all(&path)?;
        let damaged = |reason: String| StorageError::Content {
            path: path.clone(),
            reason,
        };
        let snapshot = format::decode_snapshot(&file, &self.limits)
            .map_err(|error| damaged(error.to_string()))?;
        let (index, bytes) = snapshot_payload_split(snapshot.payload)
            .ok_or_else(|| damaged("snapshot payload shorter than its index".into()))?;
        let stored = SnapshotMeta {
            index,
            zxid: snapshot.zxid,
        };
        if stored.index < meta.index {
            return Ok(None);
        }
        // The node's bytes moved to the front of the file's buffer: no second copy.
        let start = bytes.as_ptr() as usize - file.as_ptr() as usize;
        let end = start + bytes.len();
        file.truncate(end);
        file.drain(..start);
        Ok(Some((stored, file)))
    }
}

/// [`write_atomic`] syncs a large file after every this many bytes written.
const ATOMIC_SYNC_BYTES: usize = 8 * 1024 * 1024;

/// Writes zeros over `from..to` of `file`.
fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64);
        file.write_all_at(&ZEROS[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

/// Removes the `*.tmp` files a write interrupted by a crash left in `dir` (a snapshot
/// of hundreds of megabytes, half written, would otherwise stay for good).
fn remove_leftover_temporaries(dir: &Path) -> Result<(), StorageError> {
    for item in fs::read_dir(dir).map_err(io_err(dir))? {
        let item = item.map_err(io_err(dir))?;
        let is_ours = item.file_name().to_str().is_some_and(|name| {
            name.ends_with(".tmp")
                && (name.starts_with("snapshot.") || name.starts_with(HARD_STATE_FILE))
        });
        if is_ours {
            let path = item.path();
            tracing::info!(file = %path.display(), "removing a file left half written");
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

/// Files in `dir` named `prefix` + 16 hex digits, sorted by that number.
fn list_numbered(dir: &Path, prefix: &str) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut found = Vec::new();
    for item in fs::read_dir(dir).map_err(io_err(dir))? {
        let item = item.map_err(io_err(dir))?;
        let name = item.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        if let (16, Ok(number)) = (hex.len(), u64::from_str_radix(hex, 16)) {
            found.push((number, item.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn read_all(path: &Path) -> Result<Vec<u8>, StorageError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_err(path))?;
    Ok(bytes)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Writes the concatenation of `parts` to `dir/name` atomically: temporary file, fsync,
/// rename, directory fsync. A large file is also synced every [`ATOMIC_SYNC_BYTES`] on
/// the way: a file system that commits its journal in order (ext4's data=ordered) would
/// otherwise make the log's next fdatasync wait for hundreds of megabytes of snapshot to
/// reach the disk.
fn write_atomic(dir: &Path, name: &str, parts: &[&[u8]]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut unsynced = 0;
    for part in parts {
        for piece in part.chunks(ATOMIC_SYNC_BYTES) {
            if unsynced >= ATOMIC_SYNC_BYTES {
                file.sync_data().map_err(io_err(&tmp))?;
                unsynced = 0;
            }
            file.write_all(piece).map_err(io_err(&tmp))?;
            unsynced += piece.len();
        }
    }
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)
}

fn hard_state_from_disk(data_dir: &Path) -> Result<HardState, StorageError> {
    let path = data_dir.join(HARD_STATE_FILE);
    if !path.exists() {
        return Ok(HardState::default());
    }
    let bytes = read_all(&path)?;
    let stored = format::HardState::decode(&bytes).map_err(|e| StorageError::HardState {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(HardState {
        epoch: stored.current_epoch,
        voted_for: stored.voted_for,
    })
}

/// Splits a snapshot payload into the entry index it covers and the node's bytes.
fn snapshot_payload_split(payload: &[u8]) -> Option<(u64, &[u8])> {
    let (index, rest) = payload.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*index), rest))
}

impl Storage {
    /// Opens (creating them if needed) `data_dir` and `log_dir` and recovers what they
    /// hold: the newest valid snapshot, the entries after it and the hard state. A torn
    /// log tail is cut; damage anywhere else is an error naming what was found.
    /// `snapshots_retained` (at least 1) bounds how many snapshots recovery reads and
    /// purging keeps.
    pub fn open(
        data_dir: &Path,
        log_dir: &Path,
        limits: Limits,
        snapshots_retained: usize,
    ) -> Result<(Storage, DurableState), StorageError> {
        fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
        fs::create_dir_all(log_dir).map_err(io_err(log_dir))?;
        let hard_state = hard_state_from_disk(data_dir)?;
        remove_leftover_temporaries(data_dir)?;
        let mut storage = Storage {
            data_dir: data_dir.to_owned(),
            log_dir: log_dir.to_owned(),
            limits,
            snapshots_retained: snapshots_retained.max(1),
            segments: Vec::new(),
            current: None,
            positions: BTreeMap::new(),
            dirty: false,
            unwritten: Vec::new(),
            allocated: 0,
        };
        let mut durable = storage.open_recover()?;
        durable.hard_state = hard_state;
        Ok((storage, durable))
    }

    fn open_recover(&mut self) -> Result<DurableState, StorageError> {
        let (snapshot_files, mut snapshot_bytes, snapshot_zxid) =
            self.open_snapshot_newest_valid()?;
        let segment_files = list_numbered(&self.log_dir, "log.")?;
        // Segments are named by their first zxid and the log only grows: every record of a
        // segment is older than the next segment's name, so the segments before the last
        // one named at or below the snapshot's zxid hold only what the snapshot covers.
        // They are not read (purging removes them).
        let skipped = segment_files
            .iter()
            .rposition(|(first_zxid, _)| snapshot_zxid.is_some_and(|zxid| *first_zxid <= zxid))
            .unwrap_or(0);
        let segment_bytes = segment_files
            .iter()
            .skip(skipped)
            .map(|(_, path)| read_all(path))
            .collect::<Result<Vec<_>, _>>()?;
        let snapshot_slices: Vec<&[u8]> = snapshot_bytes.iter().map(Vec::as_slice).collect();
        let segment_slices: Vec<&[u8]> = segment_bytes.iter().map(Vec::as_slice).collect();
        let recovered =
            format::recover(&snapshot_slices, &segment_slices, &self.limits).map_err(|source| {
                StorageError::Recovery {
                    dir: self.log_dir.clone(),
                    source,
                }
            })?;
        for rejected in &recovered.snapshots_rejected {
            if let Some((_, path)) = snapshot_files.get(rejected.index) {
                tracing::warn!(file = %path.display(), error = %rejected.error, "damaged snapshot skipped");
            }
        }
        let mut durable = DurableState::default();
        // Where the node's bytes sit in the chosen snapshot file's buffer: they are moved
        // out of it below, not copied (hundreds of megabytes at 10^6 znodes).
        let mut snapshot_taken: Option<(usize, usize, usize)> = None;
        if let Some((position, snapshot)) = recovered.snapshot {
            let path = snapshot_files
                .get(position)
                .map_or_else(PathBuf::new, |(_, p)| p.clone());
            let (index, bytes) =
                snapshot_payload_split(snapshot.payload).ok_or(StorageError::Content {
                    path,
                    reason: "snapshot payload shorter than its index".into(),
                })?;
            durable.snapshot = SnapshotMeta {
                index,
                zxid: snapshot.zxid,
            };
            let base = snapshot_slices
                .get(position)
                .map_or(0, |file| file.as_ptr() as usize);
            let start = (bytes.as_ptr() as usize).saturating_sub(base);
            snapshot_taken = Some((position, start, start + bytes.len()));
        }
        self.segments = segment_files
            .iter()
            .map(|(zxid, path)| Segment {
                first_zxid: Zxid(*zxid),
                path: path.clone(),
            })
            .collect();
        durable.entries = self.open_entries(&recovered.records, durable.snapshot, skipped)?;
        let tail = recovered.tail;
        drop(recovered);
        drop(snapshot_slices);
        if let Some((position, start, end)) = snapshot_taken {
            let mut file = snapshot_bytes.swap_remove(position);
            file.truncate(end);
            file.drain(..start);
            durable.snapshot_bytes = file;
        }
        if let Tail::Torn { segment, offset } = tail {
            // Zeros after the records are the padding of a segment that was being
            // written (SEGMENT_PAD_BYTES), not damage.
            let padding_only = segment_bytes.get(segment).is_some_and(|bytes| {
                bytes
                    .get(usize::try_from(offset).unwrap_or(usize::MAX)..)
                    .is_some_and(|rest| rest.iter().all(|b| *b == 0))
            });
            self.open_cut_tail(skipped + segment, offset, padding_only)?;
        }
        // Appends always start a fresh segment after a restart, so a segment that was
        // being written when the process died is never extended.
        Ok(durable)
    }

    /// The retained snapshot files (newest first), the bytes to recover from and the
    /// zxid of the newest snapshot that decodes. Files are read newest first, one at a
    /// time, and reading stops at the first that decodes: older snapshots are read only
    /// while newer ones are damaged (recovery gets the damaged ones too, to report them).
    #[allow(clippy::type_complexity)]
    fn open_snapshot_newest_valid(
        &self,
    ) -> Result<(Vec<(u64, PathBuf)>, Vec<Vec<u8>>, Option<u64>), StorageError> {
        let files: Vec<(u64, PathBuf)> = list_numbered(&self.data_dir, "snapshot.")?
            .into_iter()
            .rev()
            .take(self.snapshots_retained)
            .collect();
        let mut read = Vec::new();
        for (_, path) in &files {
            let bytes = read_all(path)?;
            let zxid = format::decode_snapshot(&bytes, &self.limits)
                .ok()
                .map(|snapshot| snapshot.zxid.0);
            read.push(bytes);
            if zxid.is_some() {
                return Ok((files, read, zxid));
            }
        }
        Ok((files, read, None))
    }

    /// Decodes recovered records into entries, checking they continue the snapshot, and
    /// remembers where each one lives.
    fn open_entries(
        &mut self,
        records: &[format::Record<'_>],
        snapshot: SnapshotMeta,
        segments_skipped: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let mut entries: Vec<Entry> = Vec::with_capacity(records.len());
        for record in records {
            let entry: Entry =
                bincode::serde::decode_from_slice(record.payload, bincode::config::standard())
                    .map(|(e, _)| e)
                    .map_err(|e| StorageError::Content {
                        path: self.log_dir.clone(),
                        reason: format!("record {:#x} does not decode: {e}", record.zxid.0),
                    })?;
            let expected = entries.last().map_or(snapshot.index + 1, |e| e.index + 1);
            if entry.index != expected || entry.zxid != record.zxid {
                return Err(StorageError::Content {
                    path: self.log_dir.clone(),
                    reason: format!(
                        "log entry {} (zxid {:#x}) where entry {expected} was expected",
                        entry.index, record.zxid.0
                    ),
                });
            }
            entries.push(entry);
        }
        self.positions_rebuild(&entries, segments_skipped)?;
        Ok(entries)
    }

    /// Finds each entry's segment and offset by scanning the segments again (cheap next
    /// to reading them, and it keeps `recover` free of runtime bookkeeping).
    fn positions_rebuild(
        &mut self,
        entries: &[Entry],
        segments_skipped: usize,
    ) -> Result<(), StorageError> {
        let wanted: BTreeMap<u64, u64> = entries.iter().map(|e| (e.zxid.0, e.index)).collect();
        let mut previous = Zxid::ZERO;
        for (position, segment) in self.segments.iter().enumerate().skip(segments_skipped) {
            let bytes = read_all(&segment.path)?;
            let scan = format::scan_segment(position, &bytes, previous, &self.limits).map_err(
                |source| StorageError::Recovery {
                    dir: self.log_dir.clone(),
                    source,
                },
            )?;
            let mut offset = format::SEGMENT_HEADER_BYTES as u64;
            for record in &scan.records {
                if let Some(index) = wanted.get(&record.zxid.0) {
                    self.positions.insert(
                        *index,
                        EntryPosition {
                            segment: position,
                            offset_bytes: offset,
                        },
                    );
                }
                offset += format::record_encoded_bytes(record.payload.len() as u32);
                previous = record.zxid;
            }
        }
        Ok(())
    }

    /// Cuts a torn last segment to its valid prefix (or removes it when not even its
    /// header survived); `padding_only` (nothing but zeros follows) is logged as trimming.
    fn open_cut_tail(
        &mut self,
        segment: usize,
        offset: u64,
        padding_only: bool,
    ) -> Result<(), StorageError> {
        let Some(torn) = self.segments.get(segment).cloned() else {
            return Ok(());
        };
        if padding_only {
            tracing::debug!(file = %torn.path.display(), valid_bytes = offset, "trimming log padding");
        } else {
            tracing::warn!(file = %torn.path.display(), valid_bytes = offset, "cutting torn log tail");
        }
        if offset < format::SEGMENT_HEADER_BYTES as u64 {
            fs::remove_file(&torn.path).map_err(io_err(&torn.path))?;
            self.segments.truncate(segment);
        } else {
            let file = OpenOptions::new()
                .write(true)
                .open(&torn.path)
                .map_err(io_err(&torn.path))?;
            file.set_len(offset).map_err(io_err(&torn.path))?;
            file.sync_all().map_err(io_err(&torn.path))?;
        }
        sync_dir(&self.log_dir)
    }

    /// Makes the hard state durable (atomically replaced).
    pub fn write_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        let stored = format::HardState {
            current_epoch: hard_state.epoch,
            voted_for: hard_state.voted_for,
        };
        write_atomic(&self.data_dir, HARD_STATE_FILE, &[&stored.encode()])
    }

    /// Drops entries after `truncate_after` (when set) and appends `entries`, without
    /// syncing: call [`Storage::sync`] before reporting them durable.
    pub fn append(
        &mut self,
        truncate_after: Option<u64>,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        if let Some(keep) = truncate_after {
            self.truncate_after(keep)?;
        }
        for entry in entries {
            self.append_one(entry)?;
        }
        Ok(())
    }

    fn append_one(&mut self, entry: &Entry) -> Result<(), StorageError> {
        let payload =
            bincode::serde::encode_to_vec(entry, bincode::config::standard()).map_err(|e| {
                StorageError::Content {
                    path: self.log_dir.clone(),
                    reason: format!("entry {} does not encode: {e}", entry.index),
                }
            })?;
        let needs_roll = self
            .current
            .as_ref()
            .is_none_or(|(_, len)| *len >= SEGMENT_BYTES_ROLL);
        if needs_roll {
            self.roll(entry.zxid)?;
        }
        let segment = self.segments.len() - 1;
        let before = self.unwritten.len();
        format::encode_record(
            &format::Record {
                zxid: entry.zxid,
                payload: &payload,
            },
            &self.limits,
            &mut self.unwritten,
        )?;
        let record_bytes = (self.unwritten.len() - before) as u64;
        let (_, len) = self.current.as_mut().expect("roll opened a segment");
        self.positions.insert(
            entry.index,
            EntryPosition {
                segment,
                offset_bytes: *len,
            },
        );
        *len += record_bytes;
        self.dirty = true;
        Ok(())
    }

    /// Starts a new segment whose first record has `first_zxid`, syncing the old one
    /// first so only the newest segment can ever be torn.
    fn roll(&mut self, first_zxid: Zxid) -> Result<(), StorageError> {
        self.close_current()?;
        let path = self.log_dir.join(segment_name(first_zxid));
        let mut header = Vec::with_capacity(format::SEGMENT_HEADER_BYTES);
        format::encode_segment_header(first_zxid, &mut header);
        let mut file = File::create(&path).map_err(io_err(&path))?;
        file.write_all(&header).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        sync_dir(&self.log_dir)?;
        self.segments.push(Segment { first_zxid, path });
        self.current = Some((file, header.len() as u64));
        self.allocated = header.len() as u64;
        Ok(())
    }

    /// Syncs the current segment and trims its zero padding: only the segment being
    /// written can end in zeros, so recovery never meets them anywhere else.
    fn close_current(&mut self) -> Result<(), StorageError> {
        self.sync()?;
        if let (Some((file, len)), Some(segment)) = (&self.current, self.segments.last())
            && self.allocated > *len
        {
            file.set_len(*len).map_err(io_err(&segment.path))?;
            file.sync_all().map_err(io_err(&segment.path))?;
        }
        self.current = None;
        self.allocated = 0;
        Ok(())
    }

    /// Cuts the log after entry `keep`: later segments are deleted, the segment holding
    /// the first dropped entry is cut at its record, and the next append starts a fresh
    /// segment (whose name, the first new zxid, then stays a true lower bound).
    fn truncate_after(&mut self, keep: u64) -> Result<(), StorageError> {
        let Some((_, first_dropped)) = self.positions.range(keep + 1..).next() else {
            return Ok(());
        };
        let first_dropped = *first_dropped;
        self.close_current()?;
        for segment in self.segments.drain(first_dropped.segment + 1..) {
            fs::remove_file(&segment.path).map_err(io_err(&segment.path))?;
        }
        let cut = self.segments[first_dropped.segment].clone();
        if first_dropped.offset_bytes <= format::SEGMENT_HEADER_BYTES as u64 {
            fs::remove_file(&cut.path).map_err(io_err(&cut.path))?;
            self.segments.pop();
        } else {
            let file = OpenOptions::new()
                .write(true)
                .open(&cut.path)
                .map_err(io_err(&cut.path))?;
            file.set_len(first_dropped.offset_bytes)
                .map_err(io_err(&cut.path))?;
            file.sync_all().map_err(io_err(&cut.path))?;
        }
        sync_dir(&self.log_dir)?;
        self.positions.split_off(&(keep + 1));
        Ok(())
    }

    /// One `fdatasync` for everything appended since the last call (group commit).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if !self.dirty {
            return Ok(());
        }
        if let (Some((file, len)), Some(segment)) = (&self.current, self.segments.last()) {
            let at = *len - self.unwritten.len() as u64;
            file.write_all_at(&self.unwritten, at)
                .map_err(io_err(&segment.path))?;
            self.unwritten.clear();
            // The padding starts once the segment holds SEGMENT_PAD_BYTES_MIN of records
            // and grows with it: a fresh server's first syncs (its election, its first
            // sessions) do not also write zeros.
            let pad = (*len).min(SEGMENT_PAD_BYTES);
            if *len >= SEGMENT_PAD_BYTES_MIN && self.allocated < *len + pad / 2 {
                let from = self.allocated.max(*len);
                let to = from + pad;
                write_zeros(file, from, to).map_err(io_err(&segment.path))?;
                self.allocated = to;
            }
            file.sync_data().map_err(io_err(&segment.path))?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Where and how this storage writes snapshot files, for a thread of their own.
    pub fn snapshot_files(&self) -> SnapshotFiles {
        SnapshotFiles {
            data_dir: self.data_dir.clone(),
            limits: self.limits.clone(),
        }
    }

    /// Makes a snapshot durable. With `install` (a snapshot from the leader) the whole log
    /// is dropped; otherwise the entries it covers stay until purged.
    pub fn write_snapshot(
        &mut self,
        meta: SnapshotMeta,
        bytes: &[u8],
        install: bool,
    ) -> Result<(), StorageError> {
        self.snapshot_files().write(meta, bytes)?;
        self.snapshot_written(meta, install)
    }

    /// Takes note of a snapshot whose file is durable ([`SnapshotFiles::write`]): with
    /// `install` the whole log is dropped; otherwise the entries it covers stay until
    /// purged, and later appends go to a new segment.
    pub fn snapshot_written(
        &mut self,
        meta: SnapshotMeta,
        install: bool,
    ) -> Result<(), StorageError> {
        if install {
            self.close_current()?;
            for segment in self.segments.drain(..) {
                fs::remove_file(&segment.path).map_err(io_err(&segment.path))?;
            }
            sync_dir(&self.log_dir)?;
            self.positions.clear();
            // A newer snapshot of a divergent past would win at recovery: drop it.
            for (zxid, path) in list_numbered(&self.data_dir, "snapshot.")? {
                if zxid > meta.zxid.0 {
                    fs::remove_file(&path).map_err(io_err(&path))?;
                }
            }
        } else {
            self.positions = self.positions.split_off(&(meta.index + 1));
            // Later appends go to a new segment, so the covered ones become purgeable.
            self.close_current()?;
        }
        Ok(())
    }

    /// Deletes all but the newest `snapshots_retained` snapshots and every segment whose
    /// records the oldest kept snapshot covers. Returns how many files went.
    pub fn purge(&mut self) -> Result<usize, StorageError> {
        let snapshots = list_numbered(&self.data_dir, "snapshot.")?;
        let drop_count = snapshots.len().saturating_sub(self.snapshots_retained);
        let mut removed = 0;
        for (_, path) in snapshots.iter().take(drop_count) {
            fs::remove_file(path).map_err(io_err(path))?;
            removed += 1;
        }
        let Some((oldest_kept_zxid, _)) = snapshots.get(drop_count) else {
            return Ok(removed);
        };
        // Segment i holds zxids below segment i+1's name: covered when that name is at
        // most one past the snapshot.
        let mut covered = 0;
        while covered + 1 < self.segments.len()
            && self.segments[covered + 1].first_zxid.0 <= oldest_kept_zxid.saturating_add(1)
        {
            covered += 1;
        }
        for segment in self.segments.drain(..covered) {
            fs::remove_file(&segment.path).map_err(io_err(&segment.path))?;
            removed += 1;
        }
        for position in self.positions.values_mut() {
            position.segment = position.segment.saturating_sub(covered);
        }
        sync_dir(&self.data_dir)?;
        sync_dir(&self.log_dir)?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use paddock_core::ids::NodeId;

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

    fn open(dir: &Path) -> (Storage, DurableState) {
        Storage::open(dir, &dir.join("log"), Limits::default(), 3).unwrap()
    }

    // Appended, synced entries and the hard state come back after a reopen.
    #[test]
    fn reopen_returns_what_was_synced() {
        let dir = temp_dir("reopen");
        let (mut s, d) = open(&dir);
        assert_eq!(d, DurableState::default());
        s.append(None, &[entry(1, 1, 0), entry(2, 1, 1)]).unwrap();
        s.sync().unwrap();
        let hard = HardState {
            epoch: paddock_core::ids::Epoch(1),
            voted_for: Some(NodeId(2)),
        };
        s.write_hard_state(hard).unwrap();
        drop(s);
        let (_, d) = open(&dir);
        assert_eq!(d.entries, vec![entry(1, 1, 0), entry(2, 1, 1)]);
        assert_eq!(d.hard_state, hard);
    }

    // A truncation drops the entries after the kept index, also across a reopen, and new
    // entries of a later epoch follow.
    #[test]
    fn truncate_then_append() {
        let dir = temp_dir("truncate");
        let (mut s, _) = open(&dir);
        s.append(None, &[entry(1, 1, 0), entry(2, 1, 1), entry(3, 1, 2)])
            .unwrap();
        s.append(Some(1), &[entry(2, 2, 0)]).unwrap();
        s.sync().unwrap();
        drop(s);
        let (_, d) = open(&dir);
        assert_eq!(d.entries, vec![entry(1, 1, 0), entry(2, 2, 0)]);
    }

    // A torn last record is cut at reopen; the records before it survive.
    #[test]
    fn torn_tail_is_cut() {
        let dir = temp_dir("torn");
        let (mut s, _) = open(&dir);
        s.append(None, &[entry(1, 1, 0), entry(2, 1, 1)]).unwrap();
        s.sync().unwrap();
        let path = s.segments[0].path.clone();
        // The records' length; the file is longer by its zero padding.
        let len = s.current.as_ref().unwrap().1;
        drop(s);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();
        let (_, d) = open(&dir);
        assert_eq!(d.entries, vec![entry(1, 1, 0)]);
        assert!(fs::metadata(&path).unwrap().len() < len - 3);
    }

    // A snapshot or hard state whose write was cut short by a crash leaves a `.tmp` file:
    // it is removed at the next start, and other files stay.
    #[test]
    fn leftover_temporaries_are_removed() {
        let dir = temp_dir("leftover");
        let (mut s, _) = open(&dir);
        s.append(None, &[entry(1, 1, 0)]).unwrap();
        s.sync().unwrap();
        drop(s);
        let half = dir.join("snapshot.0000000100000001.tmp");
        let other = dir.join("notes.tmp");
        fs::write(&half, b"half a snapshot").unwrap();
        fs::write(&other, b"not ours").unwrap();
        let (_, d) = open(&dir);
        assert!(!half.exists());
        assert!(other.exists());
        assert_eq!(d.entries, vec![entry(1, 1, 0)]);
    }

    // The segment being written is padded with zeros ahead of its records once they reach
    // SEGMENT_PAD_BYTES_MIN; a restart trims the padding and keeps every record, and a
    // segment that stops being the current one is trimmed at once.
    #[test]
    fn padding_is_trimmed_and_loses_nothing() {
        let big = |index: u64| Entry {
            index,
            zxid: Zxid(1 << 32 | index),
            payload: vec![index as u8; 40_000],
        };
        let dir = temp_dir("padding");
        let (mut s, _) = open(&dir);
        s.append(None, &[big(1)]).unwrap();
        s.sync().unwrap();
        let path = s.segments[0].path.clone();
        let len = s.current.as_ref().unwrap().1;
        assert_eq!(fs::metadata(&path).unwrap().len(), len, "not padded yet");
        s.append(None, &[big(2)]).unwrap();
        s.sync().unwrap();
        let len = s.current.as_ref().unwrap().1;
        assert!(len >= SEGMENT_PAD_BYTES_MIN);
        assert!(fs::metadata(&path).unwrap().len() >= len + len / 2);
        drop(s);
        let (mut s, d) = open(&dir);
        assert_eq!(d.entries, vec![big(1), big(2)]);
        assert_eq!(fs::metadata(&path).unwrap().len(), len);
        // After a restart appends go to a new segment, padded in turn until closed.
        s.append(None, &[big(3), big(4)]).unwrap();
        s.sync().unwrap();
        let second = s.segments.last().unwrap().path.clone();
        assert_ne!(second, path);
        let second_len = s.current.as_ref().unwrap().1;
        assert!(fs::metadata(&second).unwrap().len() > second_len);
        s.close_current().unwrap();
        assert_eq!(fs::metadata(&second).unwrap().len(), second_len);
        drop(s);
        let (_, d) = open(&dir);
        assert_eq!(d.entries.len(), 4);
    }

    // A corrupt record followed by valid ones refuses to start, naming the damage.
    #[test]
    fn mid_log_corruption_refuses() {
        let dir = temp_dir("corrupt");
        let (mut s, _) = open(&dir);
        s.append(None, &[entry(1, 1, 0), entry(2, 1, 1), entry(3, 1, 2)])
            .unwrap();
        s.sync().unwrap();
        let path = s.segments[0].path.clone();
        drop(s);
        let mut bytes = fs::read(&path).unwrap();
        let at = format::SEGMENT_HEADER_BYTES + format::RECORD_HEADER_BYTES + 2;
        bytes[at] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let err = Storage::open(&dir, &dir.join("log"), Limits::default(), 3).unwrap_err();
        assert!(err.to_string().contains("corrupt record"), "{err}");
    }

    // A snapshot replaces the log it covers; purge keeps the newest snapshots and deletes
    // covered segments; reopening starts from the snapshot and the entries after it.
    #[test]
    fn snapshot_and_purge() {
        let dir = temp_dir("snapshot");
        let (mut s, _) = Storage::open(&dir, &dir.join("log"), Limits::default(), 1).unwrap();
        s.append(None, &[entry(1, 1, 0), entry(2, 1, 1)]).unwrap();
        s.sync().unwrap();
        let meta = SnapshotMeta {
            index: 2,
            zxid: Zxid(1 << 32 | 1),
        };
        s.write_snapshot(meta, b"state", false).unwrap();
        s.append(None, &[entry(3, 1, 2)]).unwrap();
        s.sync().unwrap();
        assert_eq!(s.purge().unwrap(), 1);
        drop(s);
        let (_, d) = open(&dir);
        assert_eq!(d.snapshot, meta);
        assert_eq!(d.snapshot_bytes, b"state");
        assert_eq!(d.entries, vec![entry(3, 1, 2)]);
    }

    /// A log of four entries in three segments, with snapshots at entries 1 and 3.
    fn two_snapshots(name: &str) -> (PathBuf, Vec<PathBuf>, SnapshotMeta, SnapshotMeta) {
        let dir = temp_dir(name);
        let (mut s, _) = open(&dir);
        s.append(None, &[entry(1, 1, 1), entry(2, 1, 2)]).unwrap();
        s.sync().unwrap();
        let old = SnapshotMeta {
            index: 1,
            zxid: Zxid(1 << 32 | 1),
        };
        s.write_snapshot(old, b"old", false).unwrap();
        s.append(None, &[entry(3, 1, 3)]).unwrap();
        s.sync().unwrap();
        let new = SnapshotMeta {
            index: 3,
            zxid: Zxid(1 << 32 | 3),
        };
        s.write_snapshot(new, b"new", false).unwrap();
        s.append(None, &[entry(4, 1, 4)]).unwrap();
        s.sync().unwrap();
        let segments: Vec<PathBuf> = s.segments.iter().map(|seg| seg.path.clone()).collect();
        assert_eq!(segments.len(), 3, "one segment per snapshot interval");
        (dir, segments, old, new)
    }

    // What a leader sends a follower short of its log is read back from the newest
    // snapshot file: that one when it covers what the node asked for, nothing when it is
    // older, and an error (no bytes) when the file is damaged.
    #[test]
    fn snapshot_to_send_is_read_back_and_checked() {
        let (dir, _, old, new) = two_snapshots("send");
        let files = open(&dir).0.snapshot_files();
        assert_eq!(
            files.read_newest(old).unwrap(),
            Some((new, b"new".to_vec()))
        );
        assert_eq!(
            files.read_newest(new).unwrap(),
            Some((new, b"new".to_vec()))
        );
        let later = SnapshotMeta {
            index: 4,
            zxid: Zxid(1 << 32 | 4),
        };
        assert_eq!(files.read_newest(later).unwrap(), None);
        let path = dir.join(snapshot_name(new.zxid));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            files.read_newest(new),
            Err(StorageError::Content { .. })
        ));
    }

    fn damage_first_record(path: &Path) {
        let mut bytes = fs::read(path).unwrap();
        let at = format::SEGMENT_HEADER_BYTES + format::RECORD_HEADER_BYTES + 2;
        bytes[at] ^= 0xff;
        fs::write(path, bytes).unwrap();
    }

    // Recovery reads only what the snapshot does not cover: a damaged segment that the
    // newest snapshot covers (not yet purged) is never read and the server starts, while
    // damage in what an older snapshot must replay refuses.
    #[test]
    fn recovery_skips_segments_the_snapshot_covers() {
        let (dir, segments, _, new) = two_snapshots("skip");
        damage_first_record(&segments[0]);
        let (_, d) = open(&dir);
        assert_eq!(
            (d.snapshot, d.snapshot_bytes.as_slice()),
            (new, &b"new"[..])
        );
        assert_eq!(d.entries, vec![entry(4, 1, 4)]);
        damage_first_record(&segments[1]);
        assert!(Storage::open(&dir, &dir.join("log"), Limits::default(), 3).is_err());
    }

    // A damaged newest snapshot falls back to the older one, with the log after it.
    #[test]
    fn recovery_falls_back_to_an_older_snapshot() {
        let (dir, _, old, new) = two_snapshots("fallback");
        let newest = dir.join(snapshot_name(new.zxid));
        let mut bytes = fs::read(&newest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&newest, bytes).unwrap();
        let (_, d) = open(&dir);
        assert_eq!(
            (d.snapshot, d.snapshot_bytes.as_slice()),
            (old, &b"old"[..])
        );
        assert_eq!(
            d.entries,
            vec![entry(2, 1, 2), entry(3, 1, 3), entry(4, 1, 4)]
        );
    }
}
