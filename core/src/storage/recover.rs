//! Recovery: from the bytes of a node's snapshots and log segments to the state it
//! restarts from: the newest valid snapshot, the log records after it, and where the log
//! must be truncated.
//!
//! Rules, in the order they apply: snapshots are tried newest first and damaged ones are
//! reported and skipped (the runtime deletes them), but if snapshots exist and none is
//! valid recovery fails, since the log alone may no longer reach back to the first
//! transaction. Every segment is scanned, including records the snapshot covers, so that
//! zxid order is checked over the whole log. Only the last segment may end torn.

use super::{Record, RecoveryError, SegmentScan, Snapshot, SnapshotError, Tail};
use super::{decode_snapshot, scan_segment};
use crate::ids::Zxid;
use crate::limits::Limits;

/// A snapshot recovery skipped because it did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedSnapshot {
    /// Its index in the newest-first slice given to [`recover`].
    pub index: usize,
    /// Why it was refused.
    pub error: SnapshotError,
}

/// What a node restarts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered<'a> {
    /// The newest valid snapshot and its index in the slice given, or `None` when no
    /// snapshot was given (a fresh node: start from the empty tree).
    pub snapshot: Option<(usize, Snapshot<'a>)>,
    /// Snapshots newer than the one used that were refused, newest first.
    pub snapshots_rejected: Vec<RejectedSnapshot>,
    /// The log records with zxid above the snapshot's, in zxid order: replay these.
    pub records: Vec<Record<'a>>,
    /// The last zxid the node holds: the last record's, else the snapshot's, else zero.
    pub last_zxid: Zxid,
    /// For each segment, the byte length of its valid prefix.
    pub segments_valid_bytes: Vec<u64>,
    /// Whether the last segment must be truncated before appending.
    pub tail: Tail,
}

/// Recovers a node's state from its snapshots (newest first) and its log segments (in
/// order, oldest first). Borrowed payloads point into the given bytes.
pub fn recover<'a>(
    snapshots: &[&'a [u8]],
    segments: &[&'a [u8]],
    limits: &Limits,
) -> Result<Recovered<'a>, RecoveryError> {
    let (snapshot, snapshots_rejected) = recover_snapshot(snapshots, limits)?;
    let snapshot_zxid = snapshot.map_or(Zxid::ZERO, |(_, snapshot)| snapshot.zxid);
    let mut records = Vec::new();
    let mut segments_valid_bytes = Vec::with_capacity(segments.len());
    let mut scan = LogScan::new();
    for bytes in segments {
        let segment = scan.segment(bytes, limits)?;
        records.extend(
            segment
                .records
                .into_iter()
                .filter(|record| record.zxid > snapshot_zxid),
        );
        segments_valid_bytes.push(segment.valid_bytes);
    }
    let tail = scan.tail();
    let last_zxid = records.last().map_or(snapshot_zxid, |record| record.zxid);
    // Decode-side check of what recovery hands to replay: strictly increasing, all newer
    // than the snapshot.
    assert!(
        records
            .windows(2)
            .all(|pair| matches!(pair, [a, b] if a.zxid < b.zxid)),
        "recovered records out of order"
    );
    assert!(
        records
            .first()
            .is_none_or(|first| first.zxid > snapshot_zxid),
        "record not after snapshot"
    );
    Ok(Recovered {
        snapshot,
        snapshots_rejected,
        records,
        last_zxid,
        segments_valid_bytes,
        tail,
    })
}

/// The scan of a log one segment at a time, oldest first, so that a runtime holds one
/// segment's bytes at once: the rules of [`recover`] (zxids strictly increase across
/// segments; only the last segment may end torn) without the whole log in memory.
#[derive(Debug, Clone)]
pub struct LogScan {
    previous: Zxid,
    segments: usize,
    tail: Tail,
}

impl Default for LogScan {
    fn default() -> LogScan {
        LogScan::new()
    }
}

impl LogScan {
    /// A scan before its first segment.
    pub fn new() -> LogScan {
        LogScan {
            previous: Zxid::ZERO,
            segments: 0,
            tail: Tail::Clean,
        }
    }

    /// Scans the next segment. Errors when an earlier segment ended torn, or as
    /// [`scan_segment`] does.
    pub fn segment<'a>(
        &mut self,
        bytes: &'a [u8],
        limits: &Limits,
    ) -> Result<SegmentScan<'a>, RecoveryError> {
        if let Tail::Torn { segment, offset } = self.tail {
            return Err(RecoveryError::TornBeforeLastSegment { segment, offset });
        }
        let scan = scan_segment(self.segments, bytes, self.previous, limits)?;
        if let Some(last) = scan.records.last() {
            self.previous = last.zxid;
        }
        self.segments += 1;
        self.tail = scan.tail;
        Ok(scan)
    }

    /// Where the valid log ends, as of the segments scanned so far.
    pub fn tail(&self) -> Tail {
        self.tail
    }
}

/// `recover`'s snapshot choice: the first (newest) that decodes, with the refused ones.
type SnapshotChoice<'a> = (Option<(usize, Snapshot<'a>)>, Vec<RejectedSnapshot>);

/// Picks the newest valid snapshot; fails when snapshots exist and none is valid.
fn recover_snapshot<'a>(
    snapshots: &[&'a [u8]],
    limits: &Limits,
) -> Result<SnapshotChoice<'a>, RecoveryError> {
    let mut rejected = Vec::new();
    for (index, bytes) in snapshots.iter().enumerate() {
        match decode_snapshot(bytes, limits) {
            Ok(snapshot) => return Ok((Some((index, snapshot)), rejected)),
            Err(error) => rejected.push(RejectedSnapshot { index, error }),
        }
    }
    match rejected.into_iter().next() {
        None => Ok((None, Vec::new())),
        Some(newest) => Err(RecoveryError::NoValidSnapshot {
            tried: snapshots.len(),
            newest: newest.error,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests damage bytes at known offsets
mod tests {
    use super::*;
    use crate::storage::{FrameDefect, encode_batch, encode_segment_header, encode_snapshot};

    fn segment(first_zxid: u64, zxids: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_segment_header(Zxid(first_zxid), &mut out);
        let records: Vec<Record<'_>> = zxids
            .iter()
            .map(|zxid| Record {
                zxid: Zxid(*zxid),
                payload: b"txn",
            })
            .collect();
        encode_batch(&records, &Limits::default(), &mut out).expect("valid batch");
        out
    }

    fn snapshot(zxid: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_snapshot(Zxid(zxid), b"tree", &Limits::default(), &mut out).expect("small");
        out
    }

    fn zxids(recovered: &Recovered<'_>) -> Vec<u64> {
        recovered
            .records
            .iter()
            .map(|record| record.zxid.0)
            .collect()
    }

    // A fresh node (no snapshot, no log) recovers to zxid zero with a clean tail.
    #[test]
    fn empty_disk() {
        let recovered = recover(&[], &[], &Limits::default()).expect("empty disk is valid");
        assert_eq!(recovered.snapshot, None);
        assert_eq!(recovered.last_zxid, Zxid::ZERO);
        assert_eq!(recovered.tail, Tail::Clean);
    }

    // The newest valid snapshot is used, newer damaged ones are reported, and only
    // records after it are replayed, across segments.
    #[test]
    fn snapshot_then_later_records() {
        let damaged = snapshot(9);
        let damaged = &damaged[..damaged.len() - 1];
        let good = snapshot(3);
        let older = snapshot(1);
        let first = segment(1, &[1, 2, 3]);
        let second = segment(4, &[4, 5]);
        let recovered = recover(
            &[damaged, &good, &older],
            &[&first, &second],
            &Limits::default(),
        )
        .expect("valid disk");
        assert_eq!(
            recovered.snapshot.map(|(index, s)| (index, s.zxid)),
            Some((1, Zxid(3)))
        );
        assert_eq!(recovered.snapshots_rejected.len(), 1);
        assert_eq!(recovered.snapshots_rejected[0].index, 0);
        assert_eq!(zxids(&recovered), vec![4, 5]);
        assert_eq!(recovered.last_zxid, Zxid(5));
        assert_eq!(
            recovered.segments_valid_bytes,
            vec![first.len() as u64, second.len() as u64]
        );
    }

    // A snapshot newer than the whole log leaves nothing to replay; last_zxid is its zxid.
    #[test]
    fn snapshot_ahead_of_log() {
        let good = snapshot(0x2_0000_0000);
        let log = segment(1, &[1, 2]);
        let recovered = recover(&[&good], &[&log], &Limits::default()).expect("valid disk");
        assert!(recovered.records.is_empty());
        assert_eq!(recovered.last_zxid, Zxid(0x2_0000_0000));
    }

    // Snapshots that all fail to decode stop recovery, naming the newest's defect.
    #[test]
    fn no_valid_snapshot() {
        let bad = b"PDKSNAP".to_vec();
        let error = recover(&[&bad, &bad], &[], &Limits::default()).expect_err("no snapshot");
        assert_eq!(
            error,
            RecoveryError::NoValidSnapshot {
                tried: 2,
                newest: SnapshotError::Truncated {
                    needed_bytes: 29,
                    available_bytes: 7
                },
            }
        );
    }

    // Zxids must keep increasing from one segment to the next.
    #[test]
    fn zxid_order_across_segments() {
        let first = segment(1, &[1, 2, 3]);
        let second = segment(3, &[3, 4]);
        let error = recover(&[], &[&first, &second], &Limits::default()).expect_err("overlap");
        assert_eq!(
            error,
            RecoveryError::ZxidNotIncreasing {
                segment: 1,
                offset: 20,
                previous: Zxid(3),
                found: Zxid(3),
            }
        );
    }

    // Only the last segment may be torn; a torn tail there is reported for truncation.
    #[test]
    fn torn_tail_only_in_last_segment() {
        let first = segment(1, &[1, 2]);
        let torn = &first[..first.len() - 2];
        let second = segment(3, &[3]);
        let ok = recover(
            &[],
            &[&first, &second[..second.len() - 1]],
            &Limits::default(),
        )
        .expect("torn last segment");
        assert_eq!(
            ok.tail,
            Tail::Torn {
                segment: 1,
                offset: 20
            }
        );
        assert_eq!(zxids(&ok), vec![1, 2]);
        let error = recover(&[], &[torn, &second], &Limits::default()).expect_err("torn middle");
        assert_eq!(
            error,
            RecoveryError::TornBeforeLastSegment {
                segment: 0,
                offset: 39
            }
        );
    }

    // A corrupt record in the middle of the log stops recovery instead of being skipped.
    #[test]
    fn corrupt_middle_record_stops_recovery() {
        let mut log = segment(1, &[1, 2, 3]);
        log[20 + 16] ^= 0x01;
        let error = recover(&[], &[&log], &Limits::default()).expect_err("mid-log damage");
        assert!(matches!(
            error,
            RecoveryError::CorruptRecord {
                segment: 0,
                offset: 20,
                defect: FrameDefect::Checksum { .. },
                next_valid_offset: 39,
            }
        ));
    }
}
