//! Property tests of the storage formats: what is encoded scans back exactly; damage
//! (truncation, a bit flip, arbitrary bytes) never invents, changes or reorders a record
//! and never panics.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)] // tests index into bytes they built

use paddock_core::ids::{Epoch, NodeId, Zxid};
use paddock_core::limits::Limits;
use paddock_core::storage::{
    HardState, Record, SEGMENT_HEADER_BYTES, Tail, decode_snapshot, encode_batch,
    encode_segment_header, encode_snapshot, recover, scan_segment,
};
use proptest::prelude::*;

/// Owned records: strictly increasing nonzero zxids with small payloads.
type Owned = Vec<(u64, Vec<u8>)>;

fn records_strategy() -> impl Strategy<Value = Owned> {
    prop::collection::vec(
        (
            1u64..0x1_0000_0000,
            prop::collection::vec(any::<u8>(), 0..48),
        ),
        0..10,
    )
    .prop_map(|steps| {
        let mut zxid = 0u64;
        steps
            .into_iter()
            .map(|(step, payload)| {
                zxid += step;
                (zxid, payload)
            })
            .collect()
    })
}

fn borrowed(records: &[(u64, Vec<u8>)]) -> Vec<Record<'_>> {
    records
        .iter()
        .map(|(zxid, payload)| Record {
            zxid: Zxid(*zxid),
            payload,
        })
        .collect()
}

/// One segment holding `records`, its header's first zxid set to the first record's.
fn segment(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_segment_header(Zxid(records.first().map_or(1, |(zxid, _)| *zxid)), &mut out);
    encode_batch(&borrowed(records), &Limits::default(), &mut out).unwrap();
    out
}

/// Limits with a small record bound, so arbitrary length fields often pass the bound
/// check and reach the checksum.
fn small_limits() -> Limits {
    Limits {
        record_bytes_max: 64,
        ..Limits::default()
    }
}

proptest! {
    // Damage lands anywhere in the bytes, so run more cases than the default 256.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    // Encoding then scanning a segment returns exactly the records, with a clean tail.
    #[test]
    fn segment_round_trip(records in records_strategy()) {
        let bytes = segment(&records);
        let scanned = scan_segment(0, &bytes, Zxid::ZERO, &Limits::default()).unwrap();
        prop_assert_eq!(scanned.records, borrowed(&records));
        prop_assert_eq!(scanned.valid_bytes, bytes.len() as u64);
        prop_assert_eq!(scanned.tail, Tail::Clean);
    }

    // Records split over several segments and replayed after a snapshot come back as
    // exactly the records after the snapshot's zxid.
    #[test]
    fn recover_round_trip(
        records in records_strategy(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        snapshot_at in any::<prop::sample::Index>(),
    ) {
        let mut bounds: Vec<usize> = cuts.iter().map(|cut| cut.index(records.len() + 1)).collect();
        bounds.push(0);
        bounds.push(records.len());
        bounds.sort_unstable();
        let segments: Vec<Vec<u8>> =
            bounds.windows(2).map(|pair| segment(&records[pair[0]..pair[1]])).collect();
        let slices: Vec<&[u8]> = segments.iter().map(Vec::as_slice).collect();
        let snapshot_index = snapshot_at.index(records.len() + 1);
        let snapshot_zxid = if snapshot_index == 0 { 0 } else { records[snapshot_index - 1].0 };
        let mut snapshot = Vec::new();
        encode_snapshot(Zxid(snapshot_zxid), b"tree", &Limits::default(), &mut snapshot).unwrap();
        let recovered = recover(&[&snapshot], &slices, &Limits::default()).unwrap();
        prop_assert_eq!(recovered.records, borrowed(&records[snapshot_index..]));
        prop_assert_eq!(recovered.tail, Tail::Clean);
        let last = records.last().map_or(0, |(zxid, _)| *zxid);
        prop_assert_eq!(recovered.last_zxid, Zxid(last.max(snapshot_zxid)));
    }

    // Any truncation of a valid segment gives a prefix of its records, with a torn tail
    // exactly when bytes were cut mid-header or mid-record.
    #[test]
    fn truncation_gives_a_prefix(
        records in records_strategy(),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = segment(&records);
        let len = cut.index(bytes.len() + 1);
        let scanned = scan_segment(0, &bytes[..len], Zxid::ZERO, &Limits::default()).unwrap();
        let expected = borrowed(&records);
        prop_assert!(scanned.records.len() <= expected.len());
        prop_assert_eq!(&scanned.records[..], &expected[..scanned.records.len()]);
        prop_assert!(scanned.valid_bytes <= len as u64);
        let torn = Tail::Torn { segment: 0, offset: scanned.valid_bytes };
        // A segment without a whole header (even an empty one) is torn at 0: it cannot
        // be appended to until its header is rewritten.
        let headerless = len < SEGMENT_HEADER_BYTES;
        let clean = scanned.valid_bytes == len as u64 && !headerless;
        let expected_tail = if clean { Tail::Clean } else { torn };
        prop_assert_eq!(scanned.tail, expected_tail);
        // Bytes cut off can only remove records, never the ones wholly before the cut.
        let whole = records
            .iter()
            .scan(SEGMENT_HEADER_BYTES, |end, (_, payload)| {
                *end += 16 + payload.len();
                Some(*end)
            })
            .take_while(|end| *end <= len)
            .count();
        prop_assert_eq!(scanned.records.len(), if len < SEGMENT_HEADER_BYTES { 0 } else { whole });
    }

    // A single bit flip anywhere yields an error or a strict prefix of the records (an
    // empty segment can only become empty), never a different record.
    #[test]
    fn bit_flip_gives_error_or_strict_prefix(
        records in records_strategy(),
        bit in any::<prop::sample::Index>(),
    ) {
        let mut bytes = segment(&records);
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let expected = borrowed(&records);
        if let Ok(scanned) = scan_segment(0, &bytes, Zxid::ZERO, &Limits::default()) {
            prop_assert!(scanned.records.len() < expected.len() || expected.is_empty());
            prop_assert_eq!(&scanned.records[..], &expected[..scanned.records.len()]);
            let torn = matches!(scanned.tail, Tail::Torn { .. });
            prop_assert!(torn);
        }
    }

    // A bit flip before the last record (in the header or an earlier record) is never cut
    // as a torn tail: an intact record follows it, so the scan must refuse the segment.
    #[test]
    fn bit_flip_before_last_record_is_an_error(
        records in records_strategy().prop_filter("a record", |r| !r.is_empty()),
        bit in any::<prop::sample::Index>(),
    ) {
        let mut bytes = segment(&records);
        let last_len = 16 + records.last().map_or(0, |(_, payload)| payload.len());
        let last_start = bytes.len() - last_len;
        let bit = bit.index(last_start * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let result = scan_segment(0, &bytes, Zxid::ZERO, &Limits::default());
        prop_assert!(result.is_err(), "{:?}", result);
    }

    // A bit flip in any segment but the last stops recovery, since records follow it.
    #[test]
    fn bit_flip_before_last_segment_is_an_error(
        records in records_strategy().prop_filter("two records", |r| r.len() >= 2),
        bit in any::<prop::sample::Index>(),
    ) {
        let (first, second) = records.split_at(records.len() / 2);
        let mut damaged = segment(first);
        let bit = bit.index(damaged.len() * 8);
        damaged[bit / 8] ^= 1 << (bit % 8);
        let last = segment(second);
        let result = recover(&[], &[&damaged, &last], &Limits::default());
        prop_assert!(result.is_err(), "{:?}", result);
    }

    // Arbitrary bytes never panic any decoder; what a scan accepts is well-formed.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let limits = small_limits();
        if let Ok(scanned) = scan_segment(0, &bytes, Zxid::ZERO, &limits) {
            prop_assert!(scanned.valid_bytes <= bytes.len() as u64);
            prop_assert!(scanned.records.windows(2).all(|pair| pair[0].zxid < pair[1].zxid));
        }
        let _ = decode_snapshot(&bytes, &limits);
        let _ = HardState::decode(&bytes);
        let _ = recover(&[&bytes], &[&bytes, &bytes], &limits);
    }

    // Arbitrary bytes after a valid header reach the record parser and never panic.
    #[test]
    fn arbitrary_records_never_panic(tail in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = Vec::new();
        encode_segment_header(Zxid(1), &mut bytes);
        bytes.extend_from_slice(&tail);
        // The header is valid, so the scan never reports a headerless torn segment.
        if let Ok(scanned) = scan_segment(0, &bytes, Zxid::ZERO, &small_limits()) {
            prop_assert!(scanned.header.is_some());
            prop_assert!(scanned.valid_bytes >= SEGMENT_HEADER_BYTES as u64);
        }
    }

    // Snapshots round-trip, and any truncation or bit flip of one is refused.
    #[test]
    fn snapshot_damage_is_refused(
        zxid in any::<u64>(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
        damage in any::<prop::sample::Index>(),
    ) {
        let limits = Limits::default();
        let mut bytes = Vec::new();
        encode_snapshot(Zxid(zxid), &payload, &limits, &mut bytes).unwrap();
        let decoded = decode_snapshot(&bytes, &limits).unwrap();
        prop_assert_eq!(decoded.zxid, Zxid(zxid));
        prop_assert_eq!(decoded.payload, &payload[..]);
        prop_assert!(decode_snapshot(&bytes[..damage.index(bytes.len())], &limits).is_err());
        let bit = damage.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(decode_snapshot(&bytes, &limits).is_err());
    }

    // Hard states round-trip for any epoch and vote.
    #[test]
    fn hard_state_round_trip(epoch in any::<u32>(), vote in any::<Option<u64>>()) {
        let state = HardState { current_epoch: Epoch(epoch), voted_for: vote.map(NodeId) };
        prop_assert_eq!(HardState::decode(&state.encode()), Ok(state));
    }
}
