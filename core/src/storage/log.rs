//! Log segments: the header, record encoding, and the scan of one segment's bytes.
//!
//! The scan decides between a torn tail and mid-log corruption by looking past the first
//! bad byte for any record with a valid checksum and a zxid above the last good one: a
//! torn write leaves nothing valid behind it, while a damaged record in the middle has its
//! successors intact. That look costs one zxid comparison per remaining byte, plus a
//! checksum for each offset whose length field fits `record_bytes_max` and the remaining
//! bytes; a zero-filled (preallocated) tail costs only the comparisons. Megabytes of
//! random garbage are the worst case (tens of seconds for a 64 MiB segment of it). A
//! payload that itself contains an encoded record could make a torn tail look like
//! mid-log corruption; that errs on the safe side (the node refuses to vote rather than
//! cutting a record).

use super::{EncodeError, FrameDefect, Record, RecoveryError, Tail};
use super::{read_array, read_u16, read_u32, read_u64, to_u64};
use crate::ids::Zxid;
use crate::limits::Limits;

/// The first six bytes of every log segment.
pub const SEGMENT_MAGIC: [u8; 6] = *b"PDKLOG";

/// The segment format version this build writes and reads.
pub const SEGMENT_VERSION: u16 = 2;

/// Bytes of a segment header: magic, version, first zxid, checksum.
pub const SEGMENT_HEADER_BYTES: usize = 6 + 2 + 8 + 4;

/// Bytes of a record before its payload: length, checksum, zxid.
pub const RECORD_HEADER_BYTES: usize = 4 + 4 + 8;

const _: () = assert!(SEGMENT_HEADER_BYTES == 20);
const _: () = assert!(RECORD_HEADER_BYTES == 16);

/// Offsets of the fields inside a segment header.
const HEADER_VERSION_AT: usize = 6;
const HEADER_FIRST_ZXID_AT: usize = 8;
const HEADER_CRC_AT: usize = 16;

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The format version (always [`SEGMENT_VERSION`] once decoded).
    pub version: u16,
    /// Lower bound on every zxid in the segment; the runtime names the file by it.
    pub first_zxid: Zxid,
}

/// What one segment's bytes hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan<'a> {
    /// The header, or `None` when the segment ends (torn) before a valid header.
    pub header: Option<SegmentHeader>,
    /// The valid records, in order.
    pub records: Vec<Record<'a>>,
    /// Byte length of the valid prefix (header and records).
    pub valid_bytes: u64,
    /// `Torn` when bytes after `valid_bytes` must be cut.
    pub tail: Tail,
}

/// Bytes one record with a payload of `payload_bytes` takes in a segment.
pub fn record_encoded_bytes(payload_bytes: u32) -> u64 {
    to_u64(RECORD_HEADER_BYTES) + u64::from(payload_bytes)
}

/// Appends a segment header to `out`. `first_zxid` must not exceed the zxid of any
/// record the segment will hold.
pub fn encode_segment_header(first_zxid: Zxid, out: &mut Vec<u8>) {
    let mut header = Vec::with_capacity(SEGMENT_HEADER_BYTES);
    header.extend_from_slice(&SEGMENT_MAGIC);
    header.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header.extend_from_slice(&first_zxid.0.to_le_bytes());
    let crc = crc32c::crc32c(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(header.len(), SEGMENT_HEADER_BYTES, "segment header layout");
    out.extend_from_slice(&header);
}

/// Appends one record to `out`; on error `out` is unchanged.
pub fn encode_record(
    record: &Record<'_>,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if record.zxid == Zxid::ZERO {
        return Err(EncodeError::ZxidZero);
    }
    let payload_bytes = u32::try_from(record.payload.len())
        .ok()
        .filter(|len| *len <= limits.record_bytes_max)
        .ok_or(EncodeError::RecordTooLarge {
            payload_bytes: to_u64(record.payload.len()),
            record_bytes_max: limits.record_bytes_max,
        })?;
    let len_bytes = payload_bytes.to_le_bytes();
    let zxid_bytes = record.zxid.0.to_le_bytes();
    let crc = record_checksum(len_bytes, zxid_bytes, record.payload);
    let start = out.len();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&zxid_bytes);
    out.extend_from_slice(record.payload);
    // Pair the encoder with the decoder: what we hand to the disk must read back as-is.
    debug_assert_eq!(
        frame_at(out, start, limits.record_bytes_max).map(|frame| frame.record),
        Ok(*record),
        "encoded record does not decode to itself"
    );
    Ok(())
}

/// Appends a batch of records (one `Persist`) to `out`. Zxids must strictly increase and
/// the batch must hold at most `Limits::log_batch_records_max` records; on error `out` is
/// unchanged.
pub fn encode_batch(
    records: &[Record<'_>],
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if to_u64(records.len()) > u64::from(limits.log_batch_records_max) {
        return Err(EncodeError::BatchTooLarge {
            records: to_u64(records.len()),
            log_batch_records_max: limits.log_batch_records_max,
        });
    }
    for pair in records.windows(2) {
        if let [previous, next] = pair
            && next.zxid <= previous.zxid
        {
            return Err(EncodeError::ZxidNotIncreasing {
                previous: previous.zxid,
                found: next.zxid,
            });
        }
    }
    let start = out.len();
    for record in records {
        if let Err(error) = encode_record(record, limits, out) {
            out.truncate(start);
            return Err(error);
        }
    }
    Ok(())
}

/// Scans one segment's bytes. `segment` is its index (for errors and `Tail`); `after` is
/// the zxid its first record must exceed (the last zxid of the segments before it, or
/// zero). Returns the valid records and where they end; a torn tail is reported, not
/// refused, since only the caller knows whether this is the last segment.
pub fn scan_segment<'a>(
    segment: usize,
    bytes: &'a [u8],
    after: Zxid,
    limits: &Limits,
) -> Result<SegmentScan<'a>, RecoveryError> {
    let header = match scan_segment_header(segment, bytes, after, limits)? {
        Some(header) => header,
        None => {
            return Ok(SegmentScan {
                header: None,
                records: Vec::new(),
                valid_bytes: 0,
                tail: Tail::Torn { segment, offset: 0 },
            });
        }
    };
    let mut records = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut previous = after;
    while offset < bytes.len() {
        let frame = match frame_at(bytes, offset, limits.record_bytes_max) {
            Ok(frame) => frame,
            Err(defect) => {
                return match valid_frame_after(bytes, offset + 1, previous, limits.record_bytes_max)
                {
                    Some(next_valid) => Err(RecoveryError::CorruptRecord {
                        segment,
                        offset: to_u64(offset),
                        defect,
                        next_valid_offset: to_u64(next_valid),
                    }),
                    None => Ok(SegmentScan {
                        header: Some(header),
                        records,
                        valid_bytes: to_u64(offset),
                        tail: Tail::Torn {
                            segment,
                            offset: to_u64(offset),
                        },
                    }),
                };
            }
        };
        scan_segment_check_zxid(segment, offset, header, previous, frame.record.zxid)?;
        previous = frame.record.zxid;
        records.push(frame.record);
        offset = frame.end;
    }
    Ok(SegmentScan {
        header: Some(header),
        records,
        valid_bytes: to_u64(offset),
        tail: Tail::Clean,
    })
}

/// Decodes the header of a segment. `Ok(None)` means the header is torn and nothing valid
/// follows it (the whole segment is a torn tail).
fn scan_segment_header(
    segment: usize,
    bytes: &[u8],
    after: Zxid,
    limits: &Limits,
) -> Result<Option<SegmentHeader>, RecoveryError> {
    let defect = match decode_segment_header_frame(bytes) {
        Ok(header) => {
            let found: [u8; 6] =
                read_array(bytes, 0).expect("a decoded header frame has its 16 checksummed bytes");
            if found != SEGMENT_MAGIC {
                return Err(RecoveryError::SegmentMagic { segment, found });
            }
            if header.version != SEGMENT_VERSION {
                return Err(RecoveryError::SegmentVersion {
                    segment,
                    found: header.version,
                });
            }
            return Ok(Some(header));
        }
        Err(defect) => defect,
    };
    match valid_frame_after(bytes, 1, after, limits.record_bytes_max) {
        Some(next_valid) => Err(RecoveryError::SegmentHeaderCorrupt {
            segment,
            defect,
            next_valid_offset: to_u64(next_valid),
        }),
        None => Ok(None),
    }
}

/// Reads a header's fields and checks its checksum (not its magic or version).
fn decode_segment_header_frame(bytes: &[u8]) -> Result<SegmentHeader, FrameDefect> {
    let incomplete = FrameDefect::Incomplete {
        needed_bytes: to_u64(SEGMENT_HEADER_BYTES),
        available_bytes: to_u64(bytes.len()),
    };
    let covered = bytes.get(..HEADER_CRC_AT).ok_or(incomplete)?;
    let stored = read_u32(bytes, HEADER_CRC_AT).ok_or(incomplete)?;
    let computed = crc32c::crc32c(covered);
    if stored != computed {
        return Err(FrameDefect::Checksum { stored, computed });
    }
    let version = read_u16(bytes, HEADER_VERSION_AT).ok_or(incomplete)?;
    let first_zxid = Zxid(read_u64(bytes, HEADER_FIRST_ZXID_AT).ok_or(incomplete)?);
    Ok(SegmentHeader {
        version,
        first_zxid,
    })
}

/// Refuses a checksummed record whose zxid breaks the log's order.
fn scan_segment_check_zxid(
    segment: usize,
    offset: usize,
    header: SegmentHeader,
    previous: Zxid,
    found: Zxid,
) -> Result<(), RecoveryError> {
    let offset = to_u64(offset);
    if found <= previous {
        return Err(RecoveryError::ZxidNotIncreasing {
            segment,
            offset,
            previous,
            found,
        });
    }
    if found < header.first_zxid {
        return Err(RecoveryError::ZxidBelowSegmentStart {
            segment,
            offset,
            first_zxid: header.first_zxid,
            found,
        });
    }
    Ok(())
}

/// A record whose framing and checksum are valid, and the offset just past it.
struct Frame<'a> {
    record: Record<'a>,
    end: usize,
}

/// Decodes the record at `offset`, checking its length bound and checksum.
fn frame_at(bytes: &[u8], offset: usize, record_bytes_max: u32) -> Result<Frame<'_>, FrameDefect> {
    let available_bytes = to_u64(bytes.len().saturating_sub(offset));
    let incomplete = |needed_bytes| FrameDefect::Incomplete {
        needed_bytes,
        available_bytes,
    };
    let header_incomplete = incomplete(to_u64(RECORD_HEADER_BYTES));
    let len_bytes: [u8; 4] = read_array(bytes, offset).ok_or(header_incomplete)?;
    let stored = read_u32(bytes, offset + 4).ok_or(header_incomplete)?;
    let zxid_bytes: [u8; 8] = read_array(bytes, offset + 8).ok_or(header_incomplete)?;
    let payload_bytes = u32::from_le_bytes(len_bytes);
    if payload_bytes > record_bytes_max {
        return Err(FrameDefect::LengthOverMax {
            payload_bytes,
            record_bytes_max,
        });
    }
    let payload_start = offset + RECORD_HEADER_BYTES;
    let payload = usize::try_from(payload_bytes)
        .ok()
        .and_then(|len| payload_start.checked_add(len))
        .and_then(|end| bytes.get(payload_start..end))
        .ok_or(incomplete(record_encoded_bytes(payload_bytes)))?;
    let computed = record_checksum(len_bytes, zxid_bytes, payload);
    if stored != computed {
        return Err(FrameDefect::Checksum { stored, computed });
    }
    let record = Record {
        zxid: Zxid(u64::from_le_bytes(zxid_bytes)),
        payload,
    };
    Ok(Frame {
        record,
        end: payload_start + payload.len(),
    })
}

/// The first offset at or after `from` where a record with a valid checksum and a zxid
/// above `after` starts: a record that could have been written after the damaged one.
/// Checking the zxid first skips the checksum at most offsets of a zero-filled tail.
fn valid_frame_after(
    bytes: &[u8],
    from: usize,
    after: Zxid,
    record_bytes_max: u32,
) -> Option<usize> {
    let last_start = bytes.len().checked_sub(RECORD_HEADER_BYTES)?;
    (from..=last_start).find(|offset| {
        read_u64(bytes, offset + 8).is_some_and(|zxid| zxid > after.0)
            && frame_at(bytes, *offset, record_bytes_max).is_ok()
    })
}

/// The record checksum: CRC-32C over the length bytes, the zxid bytes and the payload.
fn record_checksum(len_bytes: [u8; 4], zxid_bytes: [u8; 8], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&len_bytes);
    let crc = crc32c::crc32c_append(crc, &zxid_bytes);
    crc32c::crc32c_append(crc, payload)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests damage bytes at known offsets
mod tests {
    use super::*;

    /// A segment starting at `first_zxid` holding one record per `(zxid, payload)`.
    fn segment(first_zxid: u64, records: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_segment_header(Zxid(first_zxid), &mut out);
        let records: Vec<Record<'_>> = records
            .iter()
            .map(|(zxid, payload)| Record {
                zxid: Zxid(*zxid),
                payload,
            })
            .collect();
        encode_batch(&records, &Limits::default(), &mut out).expect("valid batch");
        out
    }

    fn scan(bytes: &[u8]) -> Result<SegmentScan<'_>, RecoveryError> {
        scan_segment(0, bytes, Zxid::ZERO, &Limits::default())
    }

    /// Byte offset of the `index`th record in a segment built by `segment`.
    fn offset_of(payload_lens: &[usize], index: usize) -> usize {
        SEGMENT_HEADER_BYTES
            + payload_lens[..index]
                .iter()
                .map(|len| 16 + len)
                .sum::<usize>()
    }

    // A written segment scans back to exactly its records, with a clean tail.
    #[test]
    fn round_trip() {
        let bytes = segment(1, &[(1, b"a"), (2, b""), (0x1_0000_0001, b"ccc")]);
        let scanned = scan(&bytes).expect("valid segment");
        assert_eq!(
            scanned.header,
            Some(SegmentHeader {
                version: SEGMENT_VERSION,
                first_zxid: Zxid(1)
            })
        );
        let zxids: Vec<u64> = scanned.records.iter().map(|record| record.zxid.0).collect();
        assert_eq!(zxids, vec![1, 2, 0x1_0000_0001]);
        assert_eq!(scanned.records[2].payload, b"ccc");
        assert_eq!(scanned.valid_bytes, bytes.len() as u64);
        assert_eq!(scanned.tail, Tail::Clean);
        assert_eq!(record_encoded_bytes(3), 19);
    }

    // An incomplete last record is a torn tail, cut at its start.
    #[test]
    fn incomplete_last_record_is_torn() {
        let bytes = segment(1, &[(1, b"aa"), (2, b"bbbb")]);
        let cut_at = offset_of(&[2, 4], 1);
        for len in cut_at + 1..bytes.len() {
            let scanned = scan(&bytes[..len]).expect("torn tail is not an error");
            assert_eq!(scanned.records.len(), 1);
            assert_eq!(
                scanned.tail,
                Tail::Torn {
                    segment: 0,
                    offset: cut_at as u64
                }
            );
            assert_eq!(scanned.valid_bytes, cut_at as u64);
        }
    }

    // A bad checksum on the last record is a torn tail too (a partial write of garbage).
    #[test]
    fn bad_checksum_on_last_record_is_torn() {
        let mut bytes = segment(1, &[(1, b"aa"), (2, b"bbbb")]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x80;
        let scanned = scan(&bytes).expect("torn tail is not an error");
        assert_eq!(scanned.records.len(), 1);
        assert_eq!(
            scanned.tail,
            Tail::Torn {
                segment: 0,
                offset: offset_of(&[2, 4], 1) as u64
            }
        );
    }

    // A damaged record that valid records follow is refused, naming where the damage is
    // and where the next valid record starts.
    #[test]
    fn corrupt_middle_record_is_an_error() {
        let mut bytes = segment(1, &[(1, b"aa"), (2, b"bbbb"), (3, b"c")]);
        let damaged = offset_of(&[2, 4, 1], 1);
        bytes[damaged + 16] ^= 1;
        let error = scan(&bytes).expect_err("mid-log damage");
        assert!(
            matches!(
                error,
                RecoveryError::CorruptRecord {
                    segment: 0,
                    offset,
                    defect: FrameDefect::Checksum { .. },
                    next_valid_offset,
                } if offset == damaged as u64
                    && next_valid_offset == offset_of(&[2, 4, 1], 2) as u64
            ),
            "{error:?}"
        );
    }

    // After a damaged record, only a checksummed record with a higher zxid counts as
    // "valid data follows"; a stale one (a zxid already seen) is garbage to cut.
    #[test]
    fn stale_record_after_damage_is_torn() {
        let mut bytes = segment(1, &[(1, b"aa"), (2, b"bbbb")]);
        let damaged = offset_of(&[2, 4], 1);
        bytes[damaged + 16] ^= 1;
        let mut stale = Vec::new();
        encode_record(
            &Record {
                zxid: Zxid(1),
                payload: b"old",
            },
            &Limits::default(),
            &mut stale,
        )
        .expect("valid record");
        bytes.extend_from_slice(&stale);
        let scanned = scan(&bytes).expect("torn tail");
        assert_eq!(
            scanned.tail,
            Tail::Torn {
                segment: 0,
                offset: damaged as u64
            }
        );
        let fresh = segment(1, &[(3, b"new")]);
        bytes.extend_from_slice(&fresh[SEGMENT_HEADER_BYTES..]);
        assert!(matches!(
            scan(&bytes),
            Err(RecoveryError::CorruptRecord { .. })
        ));
    }

    // A length field above record_bytes_max is corruption, not an allocation: at the
    // tail it is cut, in the middle it is refused.
    #[test]
    fn length_over_max() {
        let limits = Limits {
            record_bytes_max: 8,
            ..Limits::default()
        };
        let mut tail = segment(1, &[(1, b"aa")]);
        tail.extend_from_slice(&u32::MAX.to_le_bytes());
        tail.extend_from_slice(&[0; 12]);
        let scanned = scan_segment(0, &tail, Zxid::ZERO, &limits).expect("torn tail");
        assert_eq!(
            scanned.tail,
            Tail::Torn {
                segment: 0,
                offset: offset_of(&[2], 1) as u64
            }
        );

        let mut middle = segment(1, &[(1, b"aa"), (2, b"bb")]);
        middle[SEGMENT_HEADER_BYTES..SEGMENT_HEADER_BYTES + 4].copy_from_slice(&9u32.to_le_bytes());
        let error = scan_segment(0, &middle, Zxid::ZERO, &limits).expect_err("mid-log damage");
        assert_eq!(
            error,
            RecoveryError::CorruptRecord {
                segment: 0,
                offset: SEGMENT_HEADER_BYTES as u64,
                defect: FrameDefect::LengthOverMax {
                    payload_bytes: 9,
                    record_bytes_max: 8
                },
                next_valid_offset: offset_of(&[2, 2], 1) as u64,
            }
        );
    }

    // Zxids must strictly increase within a segment and from the zxid before it, and zero
    // is never a valid record zxid.
    #[test]
    fn zxid_order_is_enforced() {
        let mut bytes = segment(1, &[(5, b"a")]);
        let mut second = Vec::new();
        encode_record(
            &Record {
                zxid: Zxid(5),
                payload: b"b",
            },
            &Limits::default(),
            &mut second,
        )
        .expect("valid record");
        bytes.extend_from_slice(&second);
        assert_eq!(
            scan(&bytes),
            Err(RecoveryError::ZxidNotIncreasing {
                segment: 0,
                offset: offset_of(&[1], 1) as u64,
                previous: Zxid(5),
                found: Zxid(5),
            })
        );
        let later = segment(1, &[(5, b"a")]);
        assert!(matches!(
            scan_segment(3, &later, Zxid(7), &Limits::default()),
            Err(RecoveryError::ZxidNotIncreasing {
                segment: 3,
                previous: Zxid(7),
                ..
            })
        ));
    }

    // A record below its segment's first zxid is refused.
    #[test]
    fn zxid_below_segment_start() {
        let bytes = segment(10, &[(9, b"a")]);
        assert_eq!(
            scan(&bytes),
            Err(RecoveryError::ZxidBelowSegmentStart {
                segment: 0,
                offset: SEGMENT_HEADER_BYTES as u64,
                first_zxid: Zxid(10),
                found: Zxid(9),
            })
        );
    }

    // A torn header with nothing valid after it makes the whole segment a torn tail; a
    // damaged header with records after it is refused.
    #[test]
    fn header_damage() {
        let bytes = segment(1, &[(1, b"a")]);
        for len in 0..SEGMENT_HEADER_BYTES {
            let scanned = scan(&bytes[..len]).expect("torn header");
            assert_eq!(scanned.header, None);
            assert_eq!(
                scanned.tail,
                Tail::Torn {
                    segment: 0,
                    offset: 0
                }
            );
        }
        let mut damaged = bytes.clone();
        damaged[10] ^= 4;
        assert!(matches!(
            scan(&damaged),
            Err(RecoveryError::SegmentHeaderCorrupt {
                defect: FrameDefect::Checksum { .. },
                next_valid_offset: 20,
                ..
            })
        ));
    }

    // A checksummed header with a foreign magic or a newer version is refused outright.
    #[test]
    fn header_magic_and_version() {
        let reseal = |bytes: &mut Vec<u8>| {
            let crc = crc32c::crc32c(&bytes[..HEADER_CRC_AT]);
            bytes[HEADER_CRC_AT..SEGMENT_HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
        };
        let mut magic = segment(1, &[]);
        magic[0] = b'Z';
        reseal(&mut magic);
        assert_eq!(
            scan(&magic),
            Err(RecoveryError::SegmentMagic {
                segment: 0,
                found: *b"ZDKLOG"
            })
        );
        let mut version = segment(1, &[]);
        for other in [SEGMENT_VERSION - 1, SEGMENT_VERSION + 1] {
            version[HEADER_VERSION_AT..HEADER_VERSION_AT + 2].copy_from_slice(&other.to_le_bytes());
            reseal(&mut version);
            assert_eq!(
                scan(&version),
                Err(RecoveryError::SegmentVersion {
                    segment: 0,
                    found: other
                })
            );
        }
    }

    // Encoding refuses zero zxids, oversized payloads and batches, and out-of-order
    // batches, and leaves the output untouched when it does.
    #[test]
    fn encode_errors() {
        let limits = Limits {
            record_bytes_max: 4,
            log_batch_records_max: 2,
            ..Limits::default()
        };
        let mut out = vec![0xee];
        let zero = Record {
            zxid: Zxid::ZERO,
            payload: b"",
        };
        assert_eq!(
            encode_record(&zero, &limits, &mut out),
            Err(EncodeError::ZxidZero)
        );
        let big = Record {
            zxid: Zxid(1),
            payload: b"12345",
        };
        assert_eq!(
            encode_record(&big, &limits, &mut out),
            Err(EncodeError::RecordTooLarge {
                payload_bytes: 5,
                record_bytes_max: 4
            })
        );
        let ok = |zxid| Record {
            zxid: Zxid(zxid),
            payload: b"x",
        };
        assert_eq!(
            encode_batch(&[ok(1), ok(2), ok(3)], &limits, &mut out),
            Err(EncodeError::BatchTooLarge {
                records: 3,
                log_batch_records_max: 2
            })
        );
        assert_eq!(
            encode_batch(&[ok(2), ok(2)], &limits, &mut out),
            Err(EncodeError::ZxidNotIncreasing {
                previous: Zxid(2),
                found: Zxid(2)
            })
        );
        assert_eq!(
            encode_batch(
                &[
                    ok(2),
                    Record {
                        zxid: Zxid(3),
                        ..big
                    }
                ],
                &limits,
                &mut out
            ),
            Err(EncodeError::RecordTooLarge {
                payload_bytes: 5,
                record_bytes_max: 4
            })
        );
        assert_eq!(out, vec![0xee]);
    }
}
