//! A simulated disk per server that stores real bytes in Paddock's on-disk formats
//! (`paddock_core::storage`): a hard-state file, one snapshot file, and log segments of
//! checksummed records. Writes complete in order after a latency (the fsync); only
//! completed writes survive a crash, except that a crash may tear the in-flight log
//! append (a prefix of its bytes reaches the disk). Restart runs `storage::recover` over
//! the bytes, exactly as the real runtime does, and maps the result into the
//! `DurableState` a node starts from.
//!
//! Layout and invariants:
//! - Replication entries carry a log index that storage records do not, so each record's
//!   payload is `[u64 LE index][entry payload]`, and the snapshot payload is
//!   `[u64 LE index][snapshot bytes]`. Recovery checks that the indexes of the records
//!   after the snapshot follow it one by one (a gap refuses the disk).
//! - A new segment starts when the current one holds `SEGMENT_RECORDS_MAX` records, and
//!   only at the start of an append, so only the last segment can end torn (each append
//!   is synced before the next starts). A segment whose records a snapshot covers is
//!   deleted with the snapshot write; an installed snapshot deletes every segment.
//! - The in-memory table of record positions is what the runtime would keep in memory:
//!   it is rebuilt from the bytes at every recovery, never trusted across a crash.
//! - Hard state and snapshot files are replaced atomically (write a new file, sync,
//!   rename): a crash leaves the old or the new one, never a torn one.

use std::collections::VecDeque;

use crate::decide::Decisions;
use paddock_core::ids::Zxid;
use paddock_core::limits::Limits;
use paddock_core::node::Input;
use paddock_core::replication::{DurableState, Entry, HardState, SnapshotMeta};
use paddock_core::storage::{self, Record, RecoveryError, Tail};
use rand::RngExt;

/// Records per log segment before the next append starts a new one.
const SEGMENT_RECORDS_MAX: usize = 64;

/// Bytes of the index prefix in front of every record and snapshot payload.
const INDEX_PREFIX_BYTES: usize = 8;

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

/// Why a disk cannot be recovered; the server must not start from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    /// The hard-state file does not decode.
    #[error("hard state: {0}")]
    HardState(storage::HardStateError),
    /// The log or snapshot scan refused the disk (mid-log corruption and the like).
    #[error("recovery: {0}")]
    Recovery(RecoveryError),
    /// A record or snapshot payload is too short to hold its index prefix.
    #[error("payload at zxid {zxid} lacks its index prefix")]
    NoIndex {
        /// The record's zxid.
        zxid: Zxid,
    },
    /// The recovered records do not follow the snapshot index one by one.
    #[error("record at zxid {zxid} has index {found}, expected {expected}")]
    IndexGap {
        /// The record's zxid.
        zxid: Zxid,
        /// The index it carries.
        found: u64,
        /// The index that should come next.
        expected: u64,
    },
}

/// Where one record sits in a segment.
#[derive(Debug, Clone, Copy)]
struct RecordPos {
    index: u64,
    start: usize,
    end: usize,
}

/// One log segment file.
#[derive(Debug, Default)]
struct Segment {
    bytes: Vec<u8>,
    records: Vec<RecordPos>,
}

/// One server's disk.
#[derive(Debug, Default)]
pub struct SimDisk {
    limits: Limits,
    hard_state: Option<[u8; storage::HARD_STATE_BYTES]>,
    snapshot: Option<Vec<u8>>,
    snapshot_index: u64,
    segments: Vec<Segment>,
    pending: VecDeque<(u64, DiskOp)>,
    busy_until_ms: u64,
    /// Writes completed since the start.
    pub writes: u64,
    /// Bits flipped in this disk's records (the disk fault).
    pub bit_flips: u64,
}

impl SimDisk {
    /// An empty disk whose records obey `limits`.
    pub fn new(limits: Limits) -> SimDisk {
        SimDisk {
            limits,
            ..SimDisk::default()
        }
    }

    /// Queues a write; returns when it completes (true time, ms).
    pub fn submit(&mut self, now_ms: u64, latency_ms: u64, op: DiskOp) -> u64 {
        let at = self.busy_until_ms.max(now_ms) + latency_ms;
        self.busy_until_ms = at;
        self.pending.push_back((at, op));
        at
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
        match op {
            DiskOp::HardState(hard_state) => {
                let stored = storage::HardState {
                    current_epoch: hard_state.epoch,
                    voted_for: hard_state.voted_for,
                };
                self.hard_state = Some(stored.encode());
                Some(Input::HardStatePersisted { hard_state })
            }
            DiskOp::Entries {
                truncate_after,
                entries,
            } => {
                if let Some(keep) = truncate_after {
                    self.truncate_after(keep);
                }
                self.append(&entries, None);
                entries.last().map(|e| Input::Persisted {
                    index: e.index,
                    zxid: e.zxid,
                })
            }
            DiskOp::Install { meta, bytes } => {
                self.write_snapshot(meta, &bytes);
                self.segments.clear();
                Some(Input::SnapshotInstalled { meta })
            }
            DiskOp::Snapshot { meta, bytes } => {
                if meta.index > self.snapshot_index {
                    self.write_snapshot(meta, &bytes);
                    self.segments.retain(|segment| {
                        segment.records.last().is_some_and(|r| r.index > meta.index)
                    });
                }
                Some(Input::SnapshotWritten { meta })
            }
        }
    }

    /// The snapshot file's metadata and node bytes, read back as a runtime does for
    /// `Output::PeerSnapshot`: `None` when there is none or it does not decode.
    pub fn snapshot_read(&self) -> Option<(SnapshotMeta, Vec<u8>)> {
        let file = self.snapshot.as_deref()?;
        let snapshot = storage::decode_snapshot(file, &self.limits).ok()?;
        let (index, bytes) = split_index(snapshot.payload, snapshot.zxid).ok()?;
        let meta = SnapshotMeta {
            index,
            zxid: snapshot.zxid,
        };
        Some((meta, bytes.to_vec()))
    }

    fn write_snapshot(&mut self, meta: SnapshotMeta, bytes: &[u8]) {
        let mut payload = Vec::with_capacity(INDEX_PREFIX_BYTES + bytes.len());
        payload.extend_from_slice(&meta.index.to_le_bytes());
        payload.extend_from_slice(bytes);
        let mut file = Vec::new();
        storage::encode_snapshot(meta.zxid, &payload, &self.limits, &mut file)
            .expect("the node keeps its snapshots within snapshot_bytes_max");
        self.snapshot = Some(file);
        self.snapshot_index = meta.index;
    }

    /// Cuts every record after index `keep` (the runtime's ftruncate).
    fn truncate_after(&mut self, keep: u64) {
        self.segments
            .retain(|segment| segment.records.first().is_some_and(|r| r.index <= keep));
        if let Some(segment) = self.segments.last_mut() {
            segment.records.retain(|r| r.index <= keep);
            let end = segment
                .records
                .last()
                .map_or(storage::SEGMENT_HEADER_BYTES, |r| r.end);
            segment.bytes.truncate(end);
        }
    }

    /// Appends `entries` as records; with `torn_per_mille`, only that share of the bytes
    /// (rounded down) reaches the disk and the position table is left for recovery.
    fn append(&mut self, entries: &[Entry], torn_per_mille: Option<u64>) {
        let Some(first) = entries.first() else {
            return;
        };
        let roll = self
            .segments
            .last()
            .is_none_or(|s| s.records.len() >= SEGMENT_RECORDS_MAX);
        let mut bytes = Vec::new();
        if roll {
            storage::encode_segment_header(first.zxid, &mut bytes);
        }
        let mut positions = Vec::with_capacity(entries.len());
        let base = if roll {
            0
        } else {
            self.segments.last().map_or(0, |s| s.bytes.len())
        };
        for entry in entries {
            let start = base + bytes.len();
            let mut payload = Vec::with_capacity(INDEX_PREFIX_BYTES + entry.payload.len());
            payload.extend_from_slice(&entry.index.to_le_bytes());
            payload.extend_from_slice(&entry.payload);
            let record = Record {
                zxid: entry.zxid,
                payload: &payload,
            };
            storage::encode_record(&record, &self.limits, &mut bytes)
                .expect("entries are proposed within record_bytes_max, zxids nonzero");
            positions.push(RecordPos {
                index: entry.index,
                start,
                end: base + bytes.len(),
            });
        }
        if roll {
            self.segments.push(Segment::default());
        }
        let Some(segment) = self.segments.last_mut() else {
            return;
        };
        match torn_per_mille {
            None => {
                segment.bytes.extend_from_slice(&bytes);
                segment.records.extend(positions);
            }
            Some(share) => {
                let kept = bytes.len() * usize::try_from(share).unwrap_or(0) / 1000;
                segment
                    .bytes
                    .extend_from_slice(bytes.get(..kept).unwrap_or(&[]));
            }
        }
    }

    /// The process died: writes not yet completed are lost, except that with
    /// `torn_per_mille` a log append in flight tears: its truncation happens and that
    /// share of its bytes reaches the disk. Returns how many bytes were torn in, if any.
    pub fn crash(&mut self, torn_per_mille: Option<u64>) -> Option<u64> {
        let first = self.pending.pop_front();
        self.pending.clear();
        self.busy_until_ms = 0;
        let share = torn_per_mille?;
        let Some((
            _,
            DiskOp::Entries {
                truncate_after,
                entries,
            },
        )) = first
        else {
            return None;
        };
        if let Some(keep) = truncate_after {
            self.truncate_after(keep);
        }
        let before = self.log_bytes();
        self.append(&entries, Some(share));
        Some(self.log_bytes() - before).filter(|torn_bytes| *torn_bytes > 0)
    }

    fn log_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes.len() as u64).sum()
    }

    /// Flips one random bit of a synced record that another synced record follows (so
    /// recovery can tell the damage from a torn tail). Returns the record's index and
    /// the flipped bit's byte offset in its segment, or `None` with fewer than two
    /// records on disk.
    pub fn flip_bit(&mut self, rng: &mut Decisions) -> Option<(u64, usize)> {
        let total: usize = self.segments.iter().map(|s| s.records.len()).sum();
        if total < 2 {
            return None;
        }
        let mut pick = rng.random_range(0..total - 1);
        for segment in &mut self.segments {
            if let Some(pos) = segment.records.get(pick).copied() {
                let offset = rng.random_range(pos.start..pos.end);
                let bit = rng.random_range(0..8u8);
                let byte = segment.bytes.get_mut(offset)?;
                *byte ^= 1 << bit;
                self.bit_flips += 1;
                return Some((pos.index, offset));
            }
            pick -= segment.records.len();
        }
        None
    }

    /// What a restarting node finds: recovery over the bytes, the torn tail cut as the
    /// runtime must, and the position table rebuilt. An error means mid-log damage (or
    /// another defect): the server must not start.
    pub fn recover(&mut self) -> Result<DurableState, DiskError> {
        let hard_state = match &self.hard_state {
            None => HardState::default(),
            Some(bytes) => {
                let stored = storage::HardState::decode(bytes).map_err(DiskError::HardState)?;
                HardState {
                    epoch: stored.current_epoch,
                    voted_for: stored.voted_for,
                }
            }
        };
        let snapshots: Vec<&[u8]> = self.snapshot.iter().map(Vec::as_slice).collect();
        let segments: Vec<&[u8]> = self.segments.iter().map(|s| s.bytes.as_slice()).collect();
        let recovered =
            storage::recover(&snapshots, &segments, &self.limits).map_err(DiskError::Recovery)?;
        let (snapshot, snapshot_bytes) = match recovered.snapshot {
            None => (SnapshotMeta::default(), Vec::new()),
            Some((_, snap)) => {
                let (index, rest) = split_index(snap.payload, snap.zxid)?;
                (
                    SnapshotMeta {
                        index,
                        zxid: snap.zxid,
                    },
                    rest.to_vec(),
                )
            }
        };
        let mut entries = Vec::with_capacity(recovered.records.len());
        for record in &recovered.records {
            let (index, payload) = split_index(record.payload, record.zxid)?;
            let expected = entries.last().map_or(snapshot.index, |e: &Entry| e.index) + 1;
            if index != expected {
                return Err(DiskError::IndexGap {
                    zxid: record.zxid,
                    found: index,
                    expected,
                });
            }
            entries.push(Entry {
                index,
                zxid: record.zxid,
                payload: payload.to_vec(),
            });
        }
        let tail = recovered.tail;
        self.recover_cut_tail(tail);
        self.recover_positions();
        Ok(DurableState {
            hard_state,
            snapshot,
            snapshot_bytes,
            entries,
        })
    }

    /// Truncates the torn last segment to its valid prefix, or deletes it when not even
    /// its header is whole.
    fn recover_cut_tail(&mut self, tail: Tail) {
        let Tail::Torn { segment, offset } = tail else {
            return;
        };
        let keep = usize::try_from(offset).unwrap_or(usize::MAX);
        if keep < storage::SEGMENT_HEADER_BYTES {
            self.segments.truncate(segment);
        } else if let Some(s) = self.segments.get_mut(segment) {
            s.bytes.truncate(keep);
        }
    }

    /// Rebuilds the record position table from the (now valid) bytes.
    fn recover_positions(&mut self) {
        let mut previous = Zxid::ZERO;
        for (i, segment) in self.segments.iter_mut().enumerate() {
            let Ok(scan) = storage::scan_segment(i, &segment.bytes, previous, &self.limits) else {
                unreachable!("recovery accepted these bytes");
            };
            let mut start = storage::SEGMENT_HEADER_BYTES;
            segment.records.clear();
            for record in &scan.records {
                let end = start
                    + usize::try_from(storage::record_encoded_bytes(
                        u32::try_from(record.payload.len()).unwrap_or(u32::MAX),
                    ))
                    .unwrap_or(usize::MAX);
                let index = split_index(record.payload, record.zxid).map_or(0, |(i, _)| i);
                segment.records.push(RecordPos { index, start, end });
                start = end;
                previous = record.zxid;
            }
        }
    }
}

/// Splits the index prefix off a record or snapshot payload.
fn split_index(payload: &[u8], zxid: Zxid) -> Result<(u64, &[u8]), DiskError> {
    let (prefix, rest) = payload
        .split_first_chunk::<INDEX_PREFIX_BYTES>()
        .ok_or(DiskError::NoIndex { zxid })?;
    Ok((u64::from_le_bytes(*prefix), rest))
}
