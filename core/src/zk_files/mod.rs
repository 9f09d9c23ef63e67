//! Apache ZooKeeper's own files: its snapshots (`version-2/snapshot.<zxid>`) and
//! transaction logs (`version-2/log.<zxid>`), read to import a ZooKeeper server's data
//! and written to hand data back to ZooKeeper (docs/migration.md).
//!
//! Pure decoding and encoding: bytes in, records out. The caller lists the files,
//! decompresses a `.gz` or `.snappy` snapshot and picks the newest valid snapshot and the
//! logs after it ([`ZkState`] then replays them as ZooKeeper's own restart does).
//!
//! Everything read is untrusted: every length is checked against the bytes left before
//! anything is allocated (the jute [`Reader`](crate::wire::jute::Reader)), every checksum
//! (Adler-32, as ZooKeeper's) is verified, and every failure is a [`ZkFileError`] naming
//! the offset, never a panic.
//!
//! Layouts (all integers big-endian, jute encoding):
//! - snapshot: file header (`int magic "ZKSN"`, `int version` = 2, `long dbid`); the
//!   sessions (`int count`, then `long id, int timeout` each); the ACL cache (`int count`,
//!   then `long key, vector<ACL>` each; key -1 means OPEN_ACL_UNSAFE and is never listed);
//!   the znodes in depth-first order (`ustring path`, the root as `""`, then
//!   `buffer data, long aclKey`, `StatPersisted`), ended by the path `"/"`; a seal
//!   (`long adler32` of every byte before it, `ustring "/"`). ZooKeeper 3.6+ appends the
//!   tree digest (`long zxid, int digestVersion, long digest`) and another seal; 3.9 may
//!   append `long lastProcessedZxid` and a seal.
//! - transaction log: file header (`"ZKLG"`, 2, `long dbid`), then records
//!   `long adler32, buffer entry, byte 'B'` back to back; the file is padded with zeros
//!   past its last record (a record of length 0 ends it). An entry is a `TxnHeader`
//!   (`long clientId, int cxid, long zxid, long time, int type`) followed by the txn of
//!   that type and, from 3.6, a digest ZooKeeper ignores here too.

#![deny(clippy::indexing_slicing)]

mod snapshot;
mod state;
mod txnlog;

pub use snapshot::{ZkSnapshot, decode_snapshot, encode_snapshot};
pub use state::{ImportSummary, ZkState, zookeeper_password};
pub use txnlog::{
    LogEnd, ZkLog, ZkLogRecord, ZkTxn, ZkTxnHeader, decode_log, decode_txn_entry,
    encode_log_records,
};

use crate::wire::DecodeError;

/// `"ZKSN"` as a big-endian int: the first field of every snapshot.
pub const SNAPSHOT_MAGIC: i32 = 0x5A4B_534E;
/// `"ZKLG"` as a big-endian int: the first field of every transaction log.
pub const LOG_MAGIC: i32 = 0x5A4B_4C47;
/// The file format version ZooKeeper 3.4 to 3.9 write.
pub const FILE_VERSION: i32 = 2;

/// Why ZooKeeper's bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZkFileError {
    /// A field could not be decoded (truncated, or a length beyond the bytes left).
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// The file does not start with the magic of its kind.
    #[error("not a ZooKeeper {kind}: magic {found:#010x}, expected {expected:#010x}")]
    Magic {
        /// `snapshot` or `transaction log`.
        kind: &'static str,
        /// The magic found.
        found: i32,
        /// The magic of that kind.
        expected: i32,
    },
    /// A checksum does not match the bytes it covers.
    #[error("{what} at offset {offset}: checksum {stored:#x} stored, {computed:#x} computed")]
    Checksum {
        /// What the checksum covers (`snapshot seal`, `log record`).
        what: &'static str,
        /// Where the checksum is.
        offset: usize,
        /// The checksum stored.
        stored: i64,
        /// The checksum of the bytes.
        computed: i64,
    },
    /// Structurally valid bytes that make no sense (an unknown ACL key, an unknown txn
    /// type, a seal without its `"/"`).
    #[error("{0}")]
    Invalid(String),
}

/// Adler-32 of `bytes`, as ZooKeeper's `java.util.zip.Adler32` gives it (a long).
fn adler32(bytes: &[u8]) -> i64 {
    let mut adler = adler2::Adler32::new();
    adler.write_slice(bytes);
    i64::from(adler.checksum())
}
