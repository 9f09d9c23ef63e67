//! Snapshot tests pinning the exact on-disk bytes of each format, so that any change to
//! the durable layout shows up as a reviewed diff (old disks must stay readable).
#![allow(clippy::unwrap_used)]

use paddock_core::ids::{Epoch, NodeId, Zxid};
use paddock_core::limits::Limits;
use paddock_core::storage::{
    HardState, Record, encode_record, encode_segment_header, encode_snapshot,
};

/// Hex, one line per field, each labelled, so the snapshot documents the layout.
fn fields(bytes: &[u8], layout: &[(&str, usize)]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    for (name, len) in layout {
        let (field, tail) = rest.split_at((*len).min(rest.len()));
        let hex: Vec<String> = field.iter().map(|byte| format!("{byte:02x}")).collect();
        out.push_str(&format!("{name:>12}: {}\n", hex.join(" ")));
        rest = tail;
    }
    assert!(
        rest.is_empty(),
        "layout does not cover {} trailing bytes",
        rest.len()
    );
    out
}

// The segment header: magic "PDKLOG", version 1, first zxid, CRC-32C.
#[test]
fn segment_header_bytes() {
    let mut bytes = Vec::new();
    encode_segment_header(Zxid(0x1_0000_0001), &mut bytes);
    insta::assert_snapshot!(fields(
        &bytes,
        &[
            ("magic", 6),
            ("version", 2),
            ("first_zxid", 8),
            ("crc32c", 4)
        ]
    ));
}

// One record: payload length, CRC-32C (over length, zxid, payload), zxid, payload.
#[test]
fn record_bytes() {
    let mut bytes = Vec::new();
    let record = Record {
        zxid: Zxid(0x1_0000_0001),
        payload: b"create /a",
    };
    encode_record(&record, &Limits::default(), &mut bytes).unwrap();
    insta::assert_snapshot!(fields(
        &bytes,
        &[
            ("payload_len", 4),
            ("crc32c", 4),
            ("zxid", 8),
            ("payload", 9)
        ]
    ));
}

// A snapshot: magic "PDKSNAP", version 1, zxid, payload length, payload, CRC-32C.
#[test]
fn snapshot_bytes() {
    let mut bytes = Vec::new();
    encode_snapshot(Zxid(0x2_0000_0005), b"tree", &Limits::default(), &mut bytes).unwrap();
    insta::assert_snapshot!(fields(
        &bytes,
        &[
            ("magic", 7),
            ("version", 2),
            ("zxid", 8),
            ("payload_len", 8),
            ("payload", 4),
            ("crc32c", 4)
        ]
    ));
}

// A hard state: magic "PDKHARD", version 1, epoch, vote flag, voted-for id, CRC-32C.
#[test]
fn hard_state_bytes() {
    let bytes = HardState {
        current_epoch: Epoch(3),
        voted_for: Some(NodeId(2)),
    }
    .encode();
    insta::assert_snapshot!(fields(
        &bytes,
        &[
            ("magic", 7),
            ("version", 2),
            ("epoch", 4),
            ("vote_flag", 1),
            ("voted_for", 8),
            ("crc32c", 4)
        ]
    ));
}
