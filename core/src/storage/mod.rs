//! `storage`: the durable byte formats (log segments, snapshots, hard state) as pure
//! encode/decode, the recovery scan that turns what a disk holds back into records, and
//! the storage engine over them ([`Store`], over the file interface [`Files`]).
//!
//! The server runs [`Store`] over real files, the simulator and tests over [`MemFiles`],
//! so the layout, the plumbing and recovery are one implementation (docs/storage.md);
//! the scan is also a function over byte slices that can be fuzzed ([`recover`]). Every integer
//! is little-endian. Every format carries a magic, a version and a CRC-32C:
//!
//! - log segment: a 20-byte header `[magic "PDKLOG"][u16 version][u64 first_zxid]
//!   [u32 crc32c of the 16 bytes before it]`, then records back to back, each
//!   `[u32 payload_len][u32 crc32c][u64 zxid][payload]` where the checksum covers the
//!   length bytes, the zxid bytes and the payload (covering the length too means a flipped
//!   length is caught by the checksum, not only by luck in the following bytes).
//!   `first_zxid` is a lower bound on the segment's zxids (the runtime names the file by
//!   it, as ZooKeeper does with `log.<zxid>`).
//! - snapshot: `[magic "PDKSNAP"][u16 version][u64 zxid][u64 payload_len][payload]
//!   [u32 crc32c of everything before it]`.
//! - hard state: 26 fixed bytes, see [`HardState`].
//!
//! Invariants: decoding never panics and never allocates from a length field it has not
//! bounded (`Limits::record_bytes_max`, `Limits::snapshot_bytes_max`); decoded records
//! borrow the input. Recovery never invents or reorders data: it returns a prefix of
//! what was written, cuts only a torn or corrupt *tail*, and refuses (with a
//! [`RecoveryError`]) a corrupt record that valid records follow, non-increasing zxids,
//! or a log with no usable snapshot, because a node that silently lost a record it had
//! acknowledged must not vote.
//!
//! What the runtime must do for these guarantees to hold: sync a segment before writing
//! the first byte of the next one (only the last segment may be torn); truncate to
//! [`Tail::Torn`]'s offset before appending; write snapshots and the hard state to a new
//! file, sync it and rename it over the old one (a torn hard state is refused, not
//! guessed). Known limit: damage confined to the last record of a synced log (a bit flip
//! in it, with nothing after it) cannot be told from a torn write, so it is cut like one;
//! the node then re-syncs that record from the leader, which is safe only if the record
//! was not needed for a quorum (the fault model all Zab/Raft systems assume).
//!
//! Payloads are opaque here: the replication layer puts bincode-encoded entries in log
//! records and the node puts its tree and sessions in snapshots. This module does not
//! touch files, does not decide when to snapshot or roll segments, and cannot detect a
//! gap in the log (zxid counters restart every epoch, so only strict increase is checked).

#![deny(clippy::indexing_slicing)]

mod files;
mod hard_state;
mod log;
mod recover;
mod snapshot;
mod store;

pub use files::{Dir, FileError, FileErrorKind, FileOp, Files, Injected, MemFiles};
pub use store::{ContentError, HARD_STATE_FILE, LOG_HEAD_FILE, LOG_LOSS_FILE, Opened, Store};
pub use store::{OpenStaged, StoreConfig, StoreError, TailCut};
pub use store::{SNAPSHOT_WRITE_CHUNK_BYTES, SnapshotFileWriter};
pub use store::{SnapshotPiece, read_snapshot_piece, snapshot_file_unframe};
pub use store::{read_newest_snapshot, segment_name, snapshot_name, write_file_atomic};
pub use store::{write_snapshot_file, write_snapshot_file_with};

pub use hard_state::{HARD_STATE_BYTES, HARD_STATE_MAGIC, HARD_STATE_VERSION};
pub use hard_state::{HardState, HardStateError};
pub use log::{RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, SEGMENT_MAGIC, SEGMENT_VERSION};
pub use log::{SegmentHeader, SegmentScan, encode_batch, encode_record, encode_segment_header};
pub use log::{record_encoded_bytes, scan_segment};
pub use recover::{LogScan, Recovered, RejectedSnapshot, recover};
pub use snapshot::{SNAPSHOT_HEADER_BYTES, SNAPSHOT_MAGIC, SNAPSHOT_TRAILER_BYTES};
pub use snapshot::{
    SNAPSHOT_VERSION, Snapshot, SnapshotError, decode_snapshot, encode_snapshot, snapshot_frame,
    snapshot_header,
};

use crate::ids::Zxid;

/// One log record: a transaction's zxid and its opaque payload, borrowed from the bytes it
/// was decoded from (or to be encoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The transaction's zxid; never zero, strictly increasing along the log.
    pub zxid: Zxid,
    /// The payload bytes (bincode of a replication entry); at most
    /// `Limits::record_bytes_max` long.
    pub payload: &'a [u8],
}

/// Where the valid part of the log ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Every byte of the log belongs to a valid header or record.
    Clean,
    /// The last segment ends in a torn or corrupt write that no valid record follows: the
    /// runtime must truncate that segment file to `offset` bytes before appending (at
    /// offset 0 the segment has no valid header: delete it or rewrite its header).
    Torn {
        /// Index of the segment in the slice given to recovery.
        segment: usize,
        /// Byte length of the segment's valid prefix.
        offset: u64,
    },
}

/// What is wrong with the bytes where a segment header or a record should be. These are
/// the defects a torn write leaves, so at the tail they are cut, elsewhere refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameDefect {
    /// The bytes end before the header or record does.
    #[error("incomplete: needs {needed_bytes} bytes, {available_bytes} available")]
    Incomplete {
        /// Bytes the header or record needs from its offset (header included).
        needed_bytes: u64,
        /// Bytes left from its offset to the end of the segment.
        available_bytes: u64,
    },
    /// A record's length field is above `Limits::record_bytes_max`.
    #[error("payload length {payload_bytes} exceeds record_bytes_max {record_bytes_max}")]
    LengthOverMax {
        /// The length field's value, in bytes.
        payload_bytes: u32,
        /// The configured maximum, in bytes.
        record_bytes_max: u32,
    },
    /// The stored CRC-32C does not match the bytes.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The checksum read from the bytes.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },
}

/// Why recovery refused a node's disk. Every variant means the node must not vote or
/// serve from this disk until an operator or a leader's snapshot repairs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// A segment header is damaged and valid records follow it, so this is not a torn
    /// tail.
    #[error(
        "segment {segment}: header corrupt ({defect}); a valid record follows at \
         {next_valid_offset}"
    )]
    SegmentHeaderCorrupt {
        /// Index of the segment.
        segment: usize,
        /// What is wrong with the header.
        defect: FrameDefect,
        /// Offset of the first record with a valid checksum after the header.
        next_valid_offset: u64,
    },
    /// A segment's checksummed header does not carry the log magic: not a Paddock log.
    #[error("segment {segment}: bad magic {found:?}")]
    SegmentMagic {
        /// Index of the segment.
        segment: usize,
        /// The six bytes found where "PDKLOG" should be.
        found: [u8; 6],
    },
    /// A segment's checksummed header carries a format version this build cannot read.
    #[error(
        "segment {segment}: log format version {found}, this build reads only version \
         {SEGMENT_VERSION}"
    )]
    SegmentVersion {
        /// Index of the segment.
        segment: usize,
        /// The version found.
        found: u16,
    },
    /// A record is damaged and a valid record follows it: data in the middle of the log
    /// is lost, which must never be skipped or cut silently.
    #[error(
        "segment {segment} offset {offset}: corrupt record ({defect}); a valid record follows \
         at {next_valid_offset}"
    )]
    CorruptRecord {
        /// Index of the segment.
        segment: usize,
        /// Byte offset of the damaged record in the segment.
        offset: u64,
        /// What is wrong with it.
        defect: FrameDefect,
        /// Byte offset of the next record with a valid checksum.
        next_valid_offset: u64,
    },
    /// A checksummed record's zxid does not exceed the one before it (in the same or an
    /// earlier segment); zero counts as not exceeding the start of the log.
    #[error("segment {segment} offset {offset}: zxid {found} does not follow {previous}")]
    ZxidNotIncreasing {
        /// Index of the segment.
        segment: usize,
        /// Byte offset of the record in the segment.
        offset: u64,
        /// The zxid of the record before it (zero at the start of the log).
        previous: Zxid,
        /// The record's zxid.
        found: Zxid,
    },
    /// A checksummed record's zxid is below its segment header's `first_zxid`.
    #[error(
        "segment {segment} offset {offset}: zxid {found} is below the segment's first zxid \
         {first_zxid}"
    )]
    ZxidBelowSegmentStart {
        /// Index of the segment.
        segment: usize,
        /// Byte offset of the record in the segment.
        offset: u64,
        /// The header's first zxid.
        first_zxid: Zxid,
        /// The record's zxid.
        found: Zxid,
    },
    /// A segment other than the last ends torn. The runtime syncs a segment before it
    /// starts the next, so this is damage, not a crash mid-write.
    #[error("segment {segment} is torn at offset {offset} but is not the last segment")]
    TornBeforeLastSegment {
        /// Index of the torn segment.
        segment: usize,
        /// Byte length of its valid prefix.
        offset: u64,
    },
    /// Snapshots were given but none decodes; replaying the log from zero could silently
    /// miss the transactions the snapshots covered.
    #[error("none of {tried} snapshots is valid; newest: {newest}")]
    NoValidSnapshot {
        /// How many snapshots were tried.
        tried: usize,
        /// Why the newest was refused.
        newest: SnapshotError,
    },
}

/// Why bytes could not be encoded. These mean the caller broke a rule it was meant to
/// check first (the leader checks limits before proposing), so no bytes are written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Records must have a nonzero zxid: zero means "before any transaction".
    #[error("record zxid is zero")]
    ZxidZero,
    /// Zxids in a batch must strictly increase.
    #[error("batch zxid {found} does not follow {previous}")]
    ZxidNotIncreasing {
        /// The zxid before it in the batch.
        previous: Zxid,
        /// The offending zxid.
        found: Zxid,
    },
    /// A payload is above `Limits::record_bytes_max`.
    #[error("record payload of {payload_bytes} bytes exceeds record_bytes_max {record_bytes_max}")]
    RecordTooLarge {
        /// The payload's length, in bytes.
        payload_bytes: u64,
        /// The configured maximum, in bytes.
        record_bytes_max: u32,
    },
    /// A batch has more records than `Limits::log_batch_records_max`.
    #[error("batch of {records} records exceeds log_batch_records_max {log_batch_records_max}")]
    BatchTooLarge {
        /// Records in the batch.
        records: u64,
        /// The configured maximum, in records.
        log_batch_records_max: u32,
    },
    /// A snapshot payload is above `Limits::snapshot_bytes_max`.
    #[error(
        "snapshot payload of {payload_bytes} bytes exceeds snapshot_bytes_max {snapshot_bytes_max}"
    )]
    SnapshotTooLarge {
        /// The payload's length, in bytes.
        payload_bytes: u64,
        /// The configured maximum, in bytes.
        snapshot_bytes_max: u64,
    },
    /// The node's state could not be encoded into a snapshot.
    #[error("snapshot payload does not encode: {0}")]
    SnapshotPayload(String),
}

/// Reads `N` bytes at `offset`, or `None` when the input ends first.
fn read_array<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    let end = offset.checked_add(N)?;
    bytes.get(offset..end)?.try_into().ok()
}

/// Reads a little-endian u16 at `offset`.
fn read_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    read_array(bytes, offset).map(u16::from_le_bytes)
}

/// Reads a little-endian u32 at `offset`.
fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    read_array(bytes, offset).map(u32::from_le_bytes)
}

/// Reads a little-endian u64 at `offset`.
fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    read_array(bytes, offset).map(u64::from_le_bytes)
}

/// A byte offset or length as the u64 the API reports. Lossless: no supported target
/// has a usize wider than 64 bits.
fn to_u64(value: usize) -> u64 {
    u64::try_from(value).expect("usize is at most 64 bits on every supported target")
}
