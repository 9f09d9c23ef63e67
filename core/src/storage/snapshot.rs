//! Snapshots: one checksummed envelope around an opaque payload (the node's tree and
//! session table) that covers every transaction up to its zxid.
//!
//! Decoding validates everything (magic, version, the payload bound, exact length, the
//! checksum) before returning the payload, so a truncated or damaged snapshot is an error
//! and the caller falls back to an older one. The runtime writes a snapshot to a temporary
//! file, syncs and renames it; this module only produces and checks the bytes.

use super::{EncodeError, read_array, read_u16, read_u32, read_u64, to_u64};
use crate::ids::Zxid;
use crate::limits::Limits;

/// The first seven bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 7] = *b"PDKSNAP";

/// The snapshot format version this build writes and reads.
pub const SNAPSHOT_VERSION: u16 = 1;

/// Bytes before the payload: magic, version, zxid, payload length.
pub const SNAPSHOT_HEADER_BYTES: usize = 7 + 2 + 8 + 8;

/// Bytes after the payload: the checksum.
pub const SNAPSHOT_TRAILER_BYTES: usize = 4;

const _: () = assert!(SNAPSHOT_HEADER_BYTES == 25);

/// Offsets of the header fields.
const VERSION_AT: usize = 7;
const ZXID_AT: usize = 9;
const PAYLOAD_LEN_AT: usize = 17;

/// A decoded snapshot, borrowing its payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot<'a> {
    /// The last transaction the snapshot covers; replay the log from the record after it.
    pub zxid: Zxid,
    /// The opaque payload (bincode of the tree and sessions).
    pub payload: &'a [u8],
}

/// Why bytes are not a valid snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes end before the header, payload or checksum does.
    #[error("truncated snapshot: needs {needed_bytes} bytes, has {available_bytes}")]
    Truncated {
        /// Bytes the snapshot needs (as far as its header could tell).
        needed_bytes: u64,
        /// Bytes given.
        available_bytes: u64,
    },
    /// The bytes do not start with "PDKSNAP".
    #[error("bad snapshot magic {found:?}")]
    Magic {
        /// The first seven bytes.
        found: [u8; 7],
    },
    /// A format version this build cannot read.
    #[error("unsupported snapshot version {found}")]
    Version {
        /// The version found.
        found: u16,
    },
    /// The payload length is above `Limits::snapshot_bytes_max`.
    #[error(
        "snapshot payload length {payload_bytes} exceeds snapshot_bytes_max {snapshot_bytes_max}"
    )]
    PayloadOverMax {
        /// The length field's value, in bytes.
        payload_bytes: u64,
        /// The configured maximum, in bytes.
        snapshot_bytes_max: u64,
    },
    /// Bytes follow the checksum.
    #[error("snapshot has {extra_bytes} bytes after its checksum")]
    TrailingBytes {
        /// How many.
        extra_bytes: u64,
    },
    /// The stored checksum does not match the bytes.
    #[error("snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The checksum read from the bytes.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },
}

/// Appends a snapshot of `payload` covering transactions up to `zxid` to `out`; on error
/// `out` is unchanged.
pub fn encode_snapshot(
    zxid: Zxid,
    payload: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let (header, trailer) = snapshot_frame(zxid, &[payload], limits)?;
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    out.extend_from_slice(&trailer);
    Ok(())
}

/// The header and trailer of the snapshot [`encode_snapshot`] makes of the concatenation
/// of `parts`: a file is header, parts, trailer, written without first copying the
/// (possibly large) parts into one buffer.
pub fn snapshot_frame(
    zxid: Zxid,
    parts: &[&[u8]],
    limits: &Limits,
) -> Result<([u8; SNAPSHOT_HEADER_BYTES], [u8; SNAPSHOT_TRAILER_BYTES]), EncodeError> {
    let payload_bytes = parts.iter().map(|part| to_u64(part.len())).sum::<u64>();
    let header = snapshot_header(zxid, payload_bytes, limits)?;
    let crc = parts.iter().fold(crc32c::crc32c(&header), |crc, part| {
        crc32c::crc32c_append(crc, part)
    });
    Ok((header, crc.to_le_bytes()))
}

/// The header of a snapshot covering transactions up to `zxid` whose payload is
/// `payload_bytes` long (refused above `Limits::snapshot_bytes_max`).
pub fn snapshot_header(
    zxid: Zxid,
    payload_bytes: u64,
    limits: &Limits,
) -> Result<[u8; SNAPSHOT_HEADER_BYTES], EncodeError> {
    if payload_bytes > limits.snapshot_bytes_max {
        return Err(EncodeError::SnapshotTooLarge {
            payload_bytes,
            snapshot_bytes_max: limits.snapshot_bytes_max,
        });
    }
    let mut header = [0; SNAPSHOT_HEADER_BYTES];
    let fields: [&[u8]; 4] = [
        &SNAPSHOT_MAGIC,
        &SNAPSHOT_VERSION.to_le_bytes(),
        &zxid.0.to_le_bytes(),
        &payload_bytes.to_le_bytes(),
    ];
    for (slot, byte) in header.iter_mut().zip(fields.iter().copied().flatten()) {
        *slot = *byte;
    }
    Ok(header)
}

/// Decodes and fully validates a snapshot.
pub fn decode_snapshot<'a>(
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<Snapshot<'a>, SnapshotError> {
    let available_bytes = to_u64(bytes.len());
    let truncated = |needed_bytes| SnapshotError::Truncated {
        needed_bytes,
        available_bytes,
    };
    let header_truncated = truncated(to_u64(SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES));
    let magic: [u8; 7] = read_array(bytes, 0).ok_or(header_truncated.clone())?;
    if magic != SNAPSHOT_MAGIC {
        return Err(SnapshotError::Magic { found: magic });
    }
    let version = read_u16(bytes, VERSION_AT).ok_or(header_truncated.clone())?;
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::Version { found: version });
    }
    let zxid = Zxid(read_u64(bytes, ZXID_AT).ok_or(header_truncated.clone())?);
    let payload_bytes = read_u64(bytes, PAYLOAD_LEN_AT).ok_or(header_truncated)?;
    if payload_bytes > limits.snapshot_bytes_max {
        return Err(SnapshotError::PayloadOverMax {
            payload_bytes,
            snapshot_bytes_max: limits.snapshot_bytes_max,
        });
    }
    let fixed_bytes = to_u64(SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES);
    let needed_bytes = payload_bytes.saturating_add(fixed_bytes);
    if available_bytes < needed_bytes {
        return Err(truncated(needed_bytes));
    }
    if available_bytes > needed_bytes {
        return Err(SnapshotError::TrailingBytes {
            extra_bytes: available_bytes - needed_bytes,
        });
    }
    // The length now equals the bytes we hold, so these conversions and slices succeed.
    let crc_at = bytes.len() - SNAPSHOT_TRAILER_BYTES;
    let covered = bytes.get(..crc_at).expect("crc_at is within the snapshot");
    let payload = covered
        .get(SNAPSHOT_HEADER_BYTES..)
        .expect("the header precedes the payload");
    let stored = read_u32(bytes, crc_at).expect("the trailer is the last four bytes");
    let computed = crc32c::crc32c(covered);
    if stored != computed {
        return Err(SnapshotError::Checksum { stored, computed });
    }
    Ok(Snapshot { zxid, payload })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests damage bytes at known offsets
mod tests {
    use super::*;

    fn encoded(zxid: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_snapshot(Zxid(zxid), payload, &Limits::default(), &mut out)
            .expect("payload is under the default limit");
        out
    }

    // A snapshot decodes back to the zxid and payload it was built from, empty or not.
    // A snapshot framed from pieces is byte for byte the one encoded from their
    // concatenation, and the limit counts all pieces.
    #[test]
    fn framing_pieces_matches_encoding_the_whole() {
        let limits = Limits::default();
        let (head, tail) = (&b"12345678"[..], &b"tree and sessions"[..]);
        let (header, trailer) = snapshot_frame(Zxid(7), &[head, tail], &limits).expect("small");
        let framed = [&header[..], head, tail, &trailer[..]].concat();
        assert_eq!(framed, encoded(7, &[head, tail].concat()));
        let small = Limits {
            snapshot_bytes_max: 20,
            ..Limits::default()
        };
        assert!(snapshot_frame(Zxid(7), &[head, tail], &small).is_err());
        assert!(snapshot_frame(Zxid(7), &[tail], &small).is_ok());
    }

    #[test]
    fn round_trip() {
        let limits = Limits::default();
        for payload in [&b""[..], b"tree and sessions"] {
            let bytes = encoded(0x5_0000_0007, payload);
            assert_eq!(bytes.len(), 29 + payload.len());
            let snapshot = decode_snapshot(&bytes, &limits);
            assert_eq!(
                snapshot,
                Ok(Snapshot {
                    zxid: Zxid(0x5_0000_0007),
                    payload
                })
            );
        }
    }

    // Each way a snapshot can be damaged gives its own error.
    #[test]
    fn each_defect_is_named() {
        let limits = Limits::default();
        let good = encoded(9, b"payload");
        assert_eq!(
            decode_snapshot(good.get(..10).expect("short prefix"), &limits),
            Err(SnapshotError::Truncated {
                needed_bytes: 29,
                available_bytes: 10
            })
        );
        let cut = good.get(..good.len() - 1).expect("all but one byte");
        assert_eq!(
            decode_snapshot(cut, &limits),
            Err(SnapshotError::Truncated {
                needed_bytes: 36,
                available_bytes: 35
            })
        );
        let mut bad_magic = good.clone();
        bad_magic[0] = b'Z';
        assert_eq!(
            decode_snapshot(&bad_magic, &limits),
            Err(SnapshotError::Magic { found: *b"ZDKSNAP" })
        );
        let mut bad_version = good.clone();
        bad_version[7] = 2;
        assert_eq!(
            decode_snapshot(&bad_version, &limits),
            Err(SnapshotError::Version { found: 2 })
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            decode_snapshot(&trailing, &limits),
            Err(SnapshotError::TrailingBytes { extra_bytes: 1 })
        );
        let mut flipped = good.clone();
        flipped[27] ^= 0x10;
        assert!(matches!(
            decode_snapshot(&flipped, &limits),
            Err(SnapshotError::Checksum { .. })
        ));
    }

    // A length field above the limit is refused before anything is read or allocated,
    // even when it is far larger than memory; the encoder refuses the same payload.
    #[test]
    fn payload_over_limit() {
        let limits = Limits {
            snapshot_bytes_max: 4,
            ..Limits::default()
        };
        let mut huge = encoded(1, b"");
        huge[17..25].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            decode_snapshot(&huge, &limits),
            Err(SnapshotError::PayloadOverMax {
                payload_bytes: u64::MAX,
                snapshot_bytes_max: 4
            })
        );
        let mut out = vec![7];
        assert_eq!(
            encode_snapshot(Zxid(1), b"12345", &limits, &mut out),
            Err(EncodeError::SnapshotTooLarge {
                payload_bytes: 5,
                snapshot_bytes_max: 4
            })
        );
        assert_eq!(out, vec![7]);
    }
}
