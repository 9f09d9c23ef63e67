//! `storage_recover`: node recovery (`paddock_core::storage::recover`) over damaged disks.
//!
//! The first input byte picks the variant. Even: the rest is cut into up to two snapshots,
//! up to four log segments and a hard-state file, all arbitrary bytes (a flag byte can
//! put a valid segment header in front of each segment, so the fuzzer reaches record
//! parsing). Recovery must return a valid state or an error, never panic; a valid state
//! must be consistent with the bytes it came from (see [`check_consistent`]).
//!
//! Odd: the damage variant. A real log ([`real_log`]: the proposals of a sequence of
//! tree operations, two epochs, cut into segments, with two snapshots) is damaged by
//! fuzzer-chosen edits, and recovery must give, if anything, the records of the original
//! log after the chosen snapshot, in order, cut short at most: nothing invented, nothing
//! reordered, nothing skipped. The edits are the faults the design's disk model contains
//! and a CRC-32C is meant to catch: truncation of the last segment or a snapshot at any
//! byte (a torn write), at most
//! [`BIT_FLIPS_MAX`] flipped bits (bit rot; CRC-32C detects every error of so few bits in
//! records this short), and ranges overwritten with one repeated byte (a zeroed or
//! garbage sector). Adversarial edits (inserting bytes with a recomputed checksum, or
//! cutting whole records out of the middle) are outside that model: a checksum is not a
//! signature and recovery cannot detect a gap (see `storage` module documentation).

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use paddock_core::ids::{Epoch, SessionId, Zxid};
use paddock_core::limits::Limits;
use paddock_core::node::{Proposal, ProposalBody};
use paddock_core::storage::{
    self, HardState, Record, Recovered, Tail, encode_batch, encode_segment_header, encode_snapshot,
    recover,
};
use paddock_core::tree::{CreateOp, CreateOpcode, DataTree, DeleteOp, Op, OpContext, SetDataOp};

/// The most bits one damage-variant input may flip.
pub const BIT_FLIPS_MAX: usize = 4;

/// The target body. See the module documentation.
pub fn run(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        arbitrary_disk(rest);
    } else {
        damaged_real_log(rest);
    }
}

fn arbitrary_disk(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let with_headers = input.arbitrary::<bool>().unwrap_or(false);
    let chunk = |input: &mut Unstructured<'_>| -> Vec<u8> {
        let len = input.arbitrary_len::<u8>().unwrap_or(0);
        input.bytes(len).map(<[u8]>::to_vec).unwrap_or_default()
    };
    let _ = HardState::decode(&chunk(&mut input));
    let snapshot_count = input.int_in_range(0..=2u8).unwrap_or(0);
    let snapshots: Vec<Vec<u8>> = (0..snapshot_count).map(|_| chunk(&mut input)).collect();
    let segment_count = input.int_in_range(0..=4u8).unwrap_or(0);
    let segments: Vec<Vec<u8>> = (0..segment_count)
        .map(|index| {
            let mut segment = Vec::new();
            if with_headers {
                encode_segment_header(Zxid(u64::from(index)), &mut segment);
            }
            segment.extend(chunk(&mut input));
            segment
        })
        .collect();
    let snapshot_refs: Vec<&[u8]> = snapshots.iter().map(Vec::as_slice).collect();
    let segment_refs: Vec<&[u8]> = segments.iter().map(Vec::as_slice).collect();
    if let Ok(recovered) = recover(&snapshot_refs, &segment_refs, &Limits::default()) {
        check_consistent(&recovered, &segment_refs);
    }
}

/// What any successful recovery must satisfy, whatever the bytes: one valid length per
/// segment, within it; a clean tail only when every byte was valid, a torn one only in
/// the last segment, where the valid part ends; records in zxid order after the
/// snapshot, within the size limit; `last_zxid` the last of them.
pub fn check_consistent(recovered: &Recovered<'_>, segments: &[&[u8]]) {
    assert_eq!(recovered.segments_valid_bytes.len(), segments.len());
    for (valid_bytes, segment) in recovered.segments_valid_bytes.iter().zip(segments) {
        assert!(
            *valid_bytes <= segment.len() as u64,
            "valid part beyond the segment"
        );
    }
    match recovered.tail {
        Tail::Clean => {
            for (valid_bytes, segment) in recovered.segments_valid_bytes.iter().zip(segments) {
                assert_eq!(
                    *valid_bytes,
                    segment.len() as u64,
                    "clean tail with bytes cut"
                );
            }
        }
        Tail::Torn { segment, offset } => {
            assert_eq!(
                segment + 1,
                segments.len(),
                "torn tail not in the last segment"
            );
            assert_eq!(Some(&offset), recovered.segments_valid_bytes.last());
        }
    }
    let snapshot_zxid = recovered.snapshot.map_or(Zxid::ZERO, |(_, s)| s.zxid);
    let mut previous = snapshot_zxid;
    for record in &recovered.records {
        assert!(
            record.zxid > previous,
            "records out of order or before the snapshot"
        );
        assert!(record.payload.len() <= Limits::default().record_bytes_max as usize);
        previous = record.zxid;
    }
    assert_eq!(
        recovered.last_zxid, previous,
        "last_zxid is not the last record's"
    );
}

/// A log written by real operations, as a disk would hold it.
#[derive(Debug)]
pub struct RealLog {
    /// Every record, in order: zxid and payload.
    pub records: Vec<(Zxid, Vec<u8>)>,
    /// The segments, oldest first; each starts with a header and ends on a record boundary.
    pub segments: Vec<Vec<u8>>,
    /// Two snapshots, newest first, with the zxid each covers.
    pub snapshots: Vec<(Zxid, Vec<u8>)>,
}

/// The real log of the damage variant, built once: proposals of creates, data changes and
/// deletes prepared by a real tree, a NEWLEADER entry per epoch, two epochs, three
/// segments, snapshots at two points.
pub fn real_log() -> &'static RealLog {
    static LOG: OnceLock<RealLog> = OnceLock::new();
    LOG.get_or_init(build_real_log)
}

fn build_real_log() -> RealLog {
    let mut tree = DataTree::new(Default::default());
    let mut records = Vec::new();
    for epoch in 1..=2u32 {
        records.push((Zxid::new(Epoch(epoch), 0), Vec::new()));
        for counter in 1..=6u32 {
            let zxid = Zxid::new(Epoch(epoch), counter);
            let txn = tree
                .prepare(&real_op(epoch, counter), &op_context(zxid))
                .expect("the scripted operations are valid");
            tree.apply(&txn);
            let proposal = Proposal {
                origin: None,
                body: ProposalBody::Txn(txn),
            };
            records.push((zxid, proposal.encode()));
        }
    }
    let limits = Limits::default();
    let mut segments = Vec::new();
    for part in [&records[..5], &records[5..9], &records[9..]] {
        let mut segment = Vec::new();
        let first_zxid = part.first().map_or(Zxid::ZERO, |(zxid, _)| *zxid);
        encode_segment_header(first_zxid, &mut segment);
        let batch: Vec<Record<'_>> = part
            .iter()
            .map(|(zxid, payload)| Record {
                zxid: *zxid,
                payload,
            })
            .collect();
        encode_batch(&batch, &limits, &mut segment).expect("a valid batch");
        segments.push(segment);
    }
    let snapshots = [7usize, 3]
        .iter()
        .map(|index| {
            let zxid = records[*index].0;
            let mut bytes = Vec::new();
            let payload = format!("state up to {zxid}");
            encode_snapshot(zxid, payload.as_bytes(), &limits, &mut bytes).expect("small");
            (zxid, bytes)
        })
        .collect();
    RealLog {
        records,
        segments,
        snapshots,
    }
}

fn real_op(epoch: u32, counter: u32) -> Op {
    let path = format!("/e{epoch}");
    match counter {
        1 => Op::Create(create(&path, 0)),
        2 => Op::Create(create(&format!("{path}/seq-"), 2)),
        3 => Op::SetData(SetDataOp {
            path: path.clone(),
            data: Some(vec![0xab; 40]),
            version: -1,
        }),
        4 => Op::Create(create(&format!("{path}/child"), 0)),
        5 => Op::Delete(DeleteOp {
            path: format!("{path}/child"),
            version: -1,
        }),
        _ => Op::SetData(SetDataOp {
            path,
            data: None,
            version: 1,
        }),
    }
}

fn create(path: &str, flags: i32) -> CreateOp {
    CreateOp {
        opcode: CreateOpcode::Create2,
        path: path.to_owned(),
        data: Some(path.as_bytes().to_vec()),
        acl: paddock_core::acl::Acl::open_unsafe(),
        flags,
    }
}

fn op_context(zxid: Zxid) -> OpContext {
    OpContext {
        zxid,
        time_ms: 1_700_000_000_000 + i64::from(zxid.counter()),
        session: SessionId(1),
        session_live: true,
        ids: Vec::new(),
    }
}

/// One edit of the damage variant; `file` picks a segment or snapshot by index modulo
/// their count, offsets are taken modulo the file's length.
#[derive(Debug, Arbitrary)]
pub enum Damage {
    /// Cut the file at this offset (a torn write).
    Truncate {
        /// Which file.
        file: u8,
        /// Where it ends now.
        at: u16,
    },
    /// Flip one bit.
    FlipBit {
        /// Which file.
        file: u8,
        /// Which byte.
        at: u16,
        /// Which bit of it (modulo 8).
        bit: u8,
    },
    /// Overwrite up to 64 bytes with one repeated byte.
    Overwrite {
        /// Which file.
        file: u8,
        /// Where the run starts.
        at: u16,
        /// How long it is (modulo 65).
        len: u8,
        /// The byte.
        byte: u8,
    },
}

fn damaged_real_log(data: &[u8]) {
    let log = real_log();
    let mut input = Unstructured::new(data);
    let snapshot_count = usize::from(input.int_in_range(0..=2u8).unwrap_or(0));
    let mut snapshots: Vec<Vec<u8>> = log.snapshots[2 - snapshot_count..]
        .iter()
        .map(|(_, bytes)| bytes.clone())
        .collect();
    let mut segments = log.segments.clone();
    let mut flips = 0;
    // An exhausted `Unstructured` keeps producing default values: stop when it is empty.
    while !input.is_empty() {
        let Ok(damage) = input.arbitrary::<Damage>() else {
            break;
        };
        if matches!(damage, Damage::FlipBit { .. }) {
            if flips == BIT_FLIPS_MAX {
                continue;
            }
            flips += 1;
        }
        apply_damage(&damage, &mut segments, &mut snapshots);
    }
    let snapshot_refs: Vec<&[u8]> = snapshots.iter().map(Vec::as_slice).collect();
    let segment_refs: Vec<&[u8]> = segments.iter().map(Vec::as_slice).collect();
    let Ok(recovered) = recover(&snapshot_refs, &segment_refs, &Limits::default()) else {
        return;
    };
    check_consistent(&recovered, &segment_refs);
    check_prefix(log, &recovered);
}

fn apply_damage(damage: &Damage, segments: &mut [Vec<u8>], snapshots: &mut [Vec<u8>]) {
    let file_index = match damage {
        Damage::Truncate { file, .. }
        | Damage::FlipBit { file, .. }
        | Damage::Overwrite { file, .. } => usize::from(*file),
    };
    let segments_len = segments.len();
    let files = segments_len + snapshots.len();
    let index = file_index % files;
    let file = if index < segments.len() {
        &mut segments[index]
    } else {
        &mut snapshots[index - segments.len()]
    };
    if file.is_empty() {
        return;
    }
    match *damage {
        // Only the last segment (or a snapshot) can be torn: the runtime syncs a segment
        // before it writes the next (see the `storage` module documentation). A
        // non-last segment cut exactly at a record boundary is indistinguishable from a
        // complete one, so recovery would silently skip its lost records; that is
        // outside the contract, and so outside this target.
        Damage::Truncate { .. } if index + 1 < segments_len => {}
        Damage::Truncate { at, .. } => file.truncate(usize::from(at) % file.len()),
        Damage::FlipBit { at, bit, .. } => {
            let at = usize::from(at) % file.len();
            file[at] ^= 1 << (bit % 8);
        }
        Damage::Overwrite { at, len, byte, .. } => {
            let start = usize::from(at) % file.len();
            let end = (start + usize::from(len % 65)).min(file.len());
            file[start..end].fill(byte);
        }
    }
}

/// Recovered records must be the original records after the chosen snapshot, in order,
/// possibly cut short; the chosen snapshot must be an original one, unchanged.
fn check_prefix(log: &RealLog, recovered: &Recovered<'_>) {
    let snapshot_zxid = match recovered.snapshot {
        None => Zxid::ZERO,
        Some((_, snapshot)) => {
            let original = log
                .snapshots
                .iter()
                .find(|(zxid, _)| *zxid == snapshot.zxid)
                .expect("the recovered snapshot is one that was written");
            let decoded = storage::decode_snapshot(&original.1, &Limits::default())
                .expect("originals decode");
            assert_eq!(
                decoded.payload, snapshot.payload,
                "snapshot payload changed"
            );
            snapshot.zxid
        }
    };
    let expected = log.records.iter().filter(|(zxid, _)| *zxid > snapshot_zxid);
    assert!(
        recovered.records.len() <= expected.clone().count(),
        "more records recovered than written"
    );
    for (got, (zxid, payload)) in recovered.records.iter().zip(expected) {
        assert_eq!(
            got.zxid, *zxid,
            "recovered records are not a prefix of the log"
        );
        assert_eq!(
            got.payload,
            payload.as_slice(),
            "record {zxid} payload changed"
        );
    }
}
