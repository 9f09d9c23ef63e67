//! `paddock import-zookeeper`: an Apache ZooKeeper server's data directory (its
//! `version-2/` snapshots and transaction logs) rebuilt as ZooKeeper's own restart
//! rebuilds it, and written as a Paddock data directory (docs/migration.md).
//!
//! The files are found and read here; decoding, replay and the conversion are core's
//! (`paddock_core::zk_files`). ZooKeeper's recovery is followed: the newest snapshot that
//! decodes with every seal intact (older ones are tried in turn, as ZooKeeper tries up to
//! 100), then every log from the one that holds the snapshot's zxid on, each txn after
//! that zxid replayed in order; a record cut short at a log's end is a write ZooKeeper
//! never finished and is dropped, a record whose checksum fails is an error.

use std::fs;
use std::io::Read;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use paddock_core::ids::Zxid;
use paddock_core::replication::SnapshotMeta;
use paddock_core::zk_files::{self, ImportSummary, LogEnd, ZkFileError, ZkState};

use crate::backup::{self, BackupError};

/// The most snapshots tried, newest first (ZooKeeper's `findNValidSnapshots(100)`).
const SNAPSHOTS_TRIED_MAX: usize = 100;

/// The largest decompressed snapshot read, in bytes (a forged compressed file could
/// otherwise expand without bound): Paddock's own largest snapshot.
const SNAPSHOT_BYTES_MAX: u64 = paddock_core::limits::SNAPSHOT_BYTES_MAX_DEFAULT;

/// The header snappy-java's `SnappyOutputStream` writes (magic, version 1, compatible 1).
const SNAPPY_JAVA_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A directory or file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// ZooKeeper's directory holds neither a snapshot nor a log.
    #[error("{0} holds no ZooKeeper snapshot or transaction log (looked in it and its version-2/)")]
    NoData(PathBuf),
    /// No snapshot decoded (each one's error is logged).
    #[error("none of the {count} snapshots in {dir} is intact (the last one: {last})")]
    NoValidSnapshot {
        /// The directory.
        dir: PathBuf,
        /// How many were tried.
        count: usize,
        /// The newest one's error.
        last: String,
    },
    /// A file is damaged or not ZooKeeper's.
    #[error("{path}: {source}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: ZkFileError,
    },
    /// The logs do not continue the snapshot: the txns after its zxid are missing.
    #[error(
        "the transaction logs start after zxid {first:#x}, but the snapshot covers only up to \
         {snapshot:#x}: the txns between are missing"
    )]
    Gap {
        /// The snapshot's zxid.
        snapshot: i64,
        /// The first zxid the logs hold after it.
        first: i64,
    },
    /// The target is not empty, or writing it failed.
    #[error("{0}")]
    Install(#[from] BackupError),
}

/// What `import` read and wrote.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The snapshot used (none when ZooKeeper never took one).
    pub snapshot: Option<PathBuf>,
    /// The logs replayed, in order.
    pub logs: Vec<PathBuf>,
    /// Logs whose last record was torn (dropped).
    pub torn_logs: Vec<PathBuf>,
    /// What the replay found and did (filled in by [`import`]).
    pub summary: ImportSummary,
}

/// `dir/version-2` when it exists, else `dir` (either may be given).
fn version2(dir: &Path) -> PathBuf {
    let inner = dir.join("version-2");
    if inner.is_dir() {
        inner
    } else {
        dir.to_owned()
    }
}

/// The files in `dir` named `prefix` + a hex zxid (+ a compression suffix for
/// snapshots), with their zxid, sorted by it.
fn numbered(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, ImportError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ImportError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let hex = rest.split('.').next().unwrap_or_default();
        if let Ok(zxid) = u64::from_str_radix(hex, 16) {
            found.push((zxid as i64, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn read(path: &Path) -> Result<Vec<u8>, ImportError> {
    fs::read(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A snapshot file's bytes, decompressed by its suffix (`.gz`, `.snappy`) as ZooKeeper's
/// `SnapStream` names them, at most [`SNAPSHOT_BYTES_MAX`].
pub(crate) fn snapshot_bytes(path: &Path) -> Result<Vec<u8>, String> {
    let raw = fs::read(path).map_err(|e| e.to_string())?;
    let name = path.to_string_lossy();
    let limit = SNAPSHOT_BYTES_MAX;
    if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("gzip: {e}"))?;
        if out.len() as u64 > limit {
            return Err(format!("decompresses to more than {limit} bytes"));
        }
        Ok(out)
    } else if name.ends_with(".snappy") {
        snappy_java(&raw, limit)
    } else {
        Ok(raw)
    }
}

/// snappy-java's stream: its 16-byte header, then blocks `[int length][raw snappy]`.
fn snappy_java(raw: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let body = raw
        .strip_prefix(&SNAPPY_JAVA_MAGIC)
        .and_then(|rest| rest.get(8..))
        .ok_or("not a snappy-java stream")?;
    let mut out = Vec::new();
    let mut at = body;
    let mut decoder = snap::raw::Decoder::new();
    while !at.is_empty() {
        let (len, rest) = at
            .split_first_chunk::<4>()
            .ok_or("snappy block length cut short")?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|e| e.to_string())?;
        let block = rest.get(..len).ok_or("snappy block cut short")?;
        let size = snap::raw::decompress_len(block).map_err(|e| format!("snappy: {e}"))?;
        if (out.len() + size) as u64 > limit {
            return Err(format!("decompresses to more than {limit} bytes"));
        }
        let start = out.len();
        out.resize(start + size, 0);
        decoder
            .decompress(block, &mut out[start..])
            .map_err(|e| format!("snappy: {e}"))?;
        at = &rest[len..];
    }
    Ok(out)
}

/// Rebuilds ZooKeeper's state from `data_dir` (snapshots) and `log_dir` (logs; the same
/// directory when ZooKeeper had no dataLogDir).
pub fn rebuild(data_dir: &Path, log_dir: &Path) -> Result<(ZkState, Imported), ImportError> {
    let snap_dir = version2(data_dir);
    let log_dir = version2(log_dir);
    let snapshots = numbered(&snap_dir, "snapshot.")?;
    let logs = numbered(&log_dir, "log.")?;
    if snapshots.is_empty() && logs.is_empty() {
        return Err(ImportError::NoData(data_dir.to_owned()));
    }
    let mut state = None;
    let mut last_error = String::new();
    for (zxid, path) in snapshots.iter().rev().take(SNAPSHOTS_TRIED_MAX) {
        let decoded = snapshot_bytes(path).and_then(|bytes| {
            let snapshot = zk_files::decode_snapshot(&bytes).map_err(|e| e.to_string())?;
            ZkState::from_snapshot(snapshot, *zxid).map_err(|e| e.to_string())
        });
        match decoded {
            Ok(decoded) => {
                state = Some((decoded, path.clone()));
                break;
            }
            Err(e) => {
                tracing::warn!(snapshot = %path.display(), "skipped, damaged: {e}");
                last_error = e;
            }
        }
    }
    let (mut state, snapshot) = match state {
        Some((state, path)) => (state, Some(path)),
        None if snapshots.is_empty() => (ZkState::empty(), None),
        None => {
            return Err(ImportError::NoValidSnapshot {
                dir: snap_dir,
                count: snapshots.len().min(SNAPSHOTS_TRIED_MAX),
                last: last_error,
            });
        }
    };
    // The logs from the newest one starting at or before the snapshot's zxid on
    // (FileTxnLog.getLogFiles).
    let snapshot_zxid = state.last_zxid();
    let start = logs
        .iter()
        .filter(|(zxid, _)| *zxid <= snapshot_zxid)
        .map(|(zxid, _)| *zxid)
        .max()
        .unwrap_or(0);
    let mut imported = Imported {
        snapshot,
        logs: Vec::new(),
        torn_logs: Vec::new(),
        summary: ImportSummary::default(),
    };
    let mut continued = false;
    for (_, path) in logs.iter().filter(|(zxid, _)| *zxid >= start) {
        let bytes = read(path)?;
        let log = zk_files::decode_log(&bytes).map_err(|source| ImportError::Damaged {
            path: path.clone(),
            source,
        })?;
        for record in &log.records {
            let before = state.last_zxid();
            if state.replay(record) && !continued {
                // The first txn replayed must follow the snapshot's: the next of its
                // epoch, or the first (counter 1) of a later one.
                continued = true;
                let zxid = record.header.zxid;
                let follows =
                    zxid == before + 1 || (zxid >> 32 > before >> 32 && zxid & 0xFFFF_FFFF == 1);
                if before != 0 && !follows {
                    return Err(ImportError::Gap {
                        snapshot: before,
                        first: zxid,
                    });
                }
            }
        }
        if let LogEnd::Torn { offset } = log.end {
            tracing::warn!(
                log = %path.display(),
                offset,
                "the last record is torn (a write the server never finished): dropped"
            );
            imported.torn_logs.push(path.clone());
        }
        imported.logs.push(path.clone());
    }
    Ok((state, imported))
}

/// Imports ZooKeeper's data into an empty Paddock data directory (`to`, with its log
/// directory `to_log`): the snapshot of the rebuilt state at index 1 and ZooKeeper's last
/// zxid, and a hard state at that zxid's epoch (so the next leader's zxids are above
/// every imported one). The result is read back before returning.
pub fn import(
    from: &Path,
    from_log: &Path,
    to: &Path,
    to_log: &Path,
    tick_ms: NonZeroU64,
) -> Result<Imported, ImportError> {
    drop(backup::ensure_empty(to, to_log)?);
    let (state, mut imported) = rebuild(from, from_log)?;
    let (snapshot, summary) =
        state
            .into_node_snapshot(tick_ms)
            .map_err(|source| ImportError::Damaged {
                path: from.to_owned(),
                source,
            })?;
    imported.summary = summary;
    let meta = SnapshotMeta {
        index: 1,
        zxid: Zxid::from_wire(imported.summary.last_zxid),
    };
    backup::install_fresh(to, to_log, meta, &snapshot)?;
    Ok(imported)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn snappy_java_streams_decode_and_forgeries_fail() {
        let payload: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        let mut stream = SNAPPY_JAVA_MAGIC.to_vec();
        stream.extend_from_slice(&1i32.to_be_bytes());
        stream.extend_from_slice(&1i32.to_be_bytes());
        for chunk in payload.chunks(32 * 1024) {
            let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            stream.extend_from_slice(&(block.len() as u32).to_be_bytes());
            stream.extend_from_slice(&block);
        }
        assert_eq!(snappy_java(&stream, u64::MAX).unwrap(), payload);
        assert!(snappy_java(&stream, 1000).is_err());
        assert!(snappy_java(&stream[..stream.len() - 1], u64::MAX).is_err());
        assert!(snappy_java(&stream[1..], u64::MAX).is_err());
    }
}
