//! The simulated disk stores real storage-format bytes: what completed survives a crash,
//! a torn append recovers to a prefix, a flipped bit mid-log keeps the server down.
#![allow(clippy::unwrap_used)]

use paddock_core::ids::{Epoch, NodeId, Zxid};
use paddock_core::limits::Limits;
use std::num::NonZeroU64;

use paddock_core::node::{Input, NodeSnapshot, Persist};
use paddock_core::replication::{Entry, HardState, SnapshotMeta};
use paddock_core::session::SessionTable;
use paddock_core::tree::{DataTree, TreeConfig};
use paddock_sim::decide::Decisions;
use paddock_sim::disk::{DiskError, SimDisk};

fn entry(index: u64) -> Entry {
    Entry {
        index,
        zxid: Zxid((1 << 32) | index),
        payload: vec![index as u8; 40],
    }
}

fn entries(from: u64, to: u64) -> Vec<Entry> {
    (from..=to).map(entry).collect()
}

/// An empty disk, opened as a starting server opens it.
fn fresh() -> SimDisk {
    let mut disk = SimDisk::new(Limits::default());
    disk.recover().unwrap();
    disk
}

/// Writes `ops` and lets them complete.
fn write(disk: &mut SimDisk, ops: Vec<Persist>) -> Vec<Input> {
    for op in ops {
        disk.submit(0, 1, op);
    }
    disk.complete(u64::MAX, None).unwrap()
}

fn append(from: u64, to: u64) -> Persist {
    Persist::Entries {
        truncate_after: None,
        entries: entries(from, to),
    }
}

// Completed writes come back from the bytes: hard state, entries across several
// segments, and a truncation that dropped a suffix.
#[test]
fn completed_writes_recover() {
    let mut disk = fresh();
    let hard_state = HardState {
        epoch: Epoch(3),
        voted_for: Some(NodeId(2)),
    };
    let inputs = write(
        &mut disk,
        vec![
            Persist::HardState(hard_state),
            append(1, 100),
            append(101, 150),
            Persist::Entries {
                truncate_after: Some(120),
                entries: Vec::new(),
            },
        ],
    );
    assert_eq!(inputs.len(), 3);
    let state = disk.recover().unwrap();
    assert_eq!(state.hard_state, hard_state);
    assert_eq!(state.entries, entries(1, 120));
}

// Writes still waiting for their fsync are lost at a crash.
#[test]
fn crash_loses_pending_writes() {
    let mut disk = fresh();
    write(&mut disk, vec![append(1, 10)]);
    disk.submit(5, 3, append(11, 20));
    assert_eq!(disk.crash(None), None);
    assert_eq!(disk.recover().unwrap().entries, entries(1, 10));
}

// A torn append recovers to a prefix of what was written, for many tear points and
// whether the torn append continues a segment or starts a new one (its header torn
// too): whole records stay, the torn record goes, and later appends continue the log.
// (Records here are 64 bytes; a segment rolls at 16 KiB, after record 256.)
#[test]
fn torn_write_recovers_a_prefix() {
    for synced in [255, 256] {
        for per_mille in [5, 20, 100, 333, 500, 800, 999] {
            let mut disk = fresh();
            write(&mut disk, vec![append(1, synced)]);
            disk.submit(0, 1, append(synced + 1, 300));
            assert!(disk.crash(Some(per_mille)).unwrap() > 0);
            let recovered = disk.recover().unwrap().entries;
            let len = recovered.len() as u64;
            assert!(len >= synced && len < 300, "{synced} {per_mille}: {len}");
            assert_eq!(recovered, entries(1, len));
            write(&mut disk, vec![append(len + 1, 320)]);
            assert_eq!(disk.recover().unwrap().entries, entries(1, 320));
        }
    }
}

// A bit flipped in a record that is not the last makes recovery refuse the disk, for
// many random flips.
#[test]
fn mid_log_bit_flip_is_refused() {
    for seed in 0..50 {
        let mut rng = Decisions::seeded(seed);
        let mut disk = fresh();
        write(&mut disk, vec![append(1, 5), append(6, 90)]);
        let (index, _) = disk.flip_bit(&mut rng).unwrap();
        assert!(index < 90, "the last record was flipped");
        assert!(
            matches!(disk.recover(), Err(DiskError::Recovery { .. })),
            "seed {seed}: flip at index {index} went unnoticed"
        );
    }
}

// A disk with a single record has nothing to flip (the last record is never flipped).
#[test]
fn last_record_is_never_flipped() {
    let mut disk = fresh();
    write(&mut disk, vec![append(1, 1)]);
    assert_eq!(disk.flip_bit(&mut Decisions::seeded(1)), None);
    assert_eq!(disk.recover().unwrap().entries, entries(1, 1));
}

fn state() -> NodeSnapshot {
    NodeSnapshot {
        tree: DataTree::new(TreeConfig::default()),
        sessions: SessionTable::new(NonZeroU64::MIN),
    }
}

// A snapshot keeps its index, drops the segments it covers, and the log after it
// recovers; an installed snapshot replaces the whole log.
#[test]
fn snapshots_recover_with_their_index() {
    let mut disk = fresh();
    let meta = SnapshotMeta {
        index: 70,
        zxid: entry(70).zxid,
    };
    write(
        &mut disk,
        vec![
            append(1, 100),
            Persist::WriteSnapshot {
                meta,
                state: Box::new(state()),
            },
        ],
    );
    let state = disk.recover().unwrap();
    assert_eq!(state.snapshot, meta);
    assert_eq!(state.snapshot_bytes, self::state().encode());
    assert_eq!(state.entries, entries(71, 100));
    let installed = SnapshotMeta {
        index: 200,
        zxid: entry(200).zxid,
    };
    write(
        &mut disk,
        vec![Persist::InstallSnapshot {
            meta: installed,
            bytes: b"newer".to_vec(),
        }],
    );
    let state = disk.recover().unwrap();
    assert_eq!(state.snapshot, installed);
    assert!(state.entries.is_empty());
}

// A failed fsync fails the batch (the server stops); the restarted process reads the
// lost bytes back from the page cache and recovery makes them durable, so a later
// power loss keeps them. A failed write or a full disk fails the batch and changes
// nothing on disk.
#[test]
fn disk_errors_stop_the_server_and_lose_nothing_it_restarts_with() {
    use paddock_core::storage::{FileErrorKind, Injected};
    let mut disk = fresh();
    write(&mut disk, vec![append(1, 10)]);
    disk.submit(0, 1, append(11, 20));
    assert!(disk.complete(u64::MAX, Some(Injected::Sync)).is_err());
    disk.stop();
    assert_eq!(disk.recover().unwrap().entries, entries(1, 20));
    disk.crash(None);
    assert_eq!(disk.recover().unwrap().entries, entries(1, 20));
    for kind in [FileErrorKind::NoSpace, FileErrorKind::Io("EIO".into())] {
        disk.submit(0, 1, append(21, 30));
        assert!(
            disk.complete(u64::MAX, Some(Injected::Write(kind)))
                .is_err()
        );
        disk.stop();
        assert_eq!(disk.recover().unwrap().entries, entries(1, 20));
    }
}

// A crash that also loses the newest segment: recovery finds it (the log may lack what
// the server acknowledged), and keeps finding it at later restarts until the node is
// re-synced.
#[test]
fn lost_newest_segment_is_found_at_recovery() {
    let mut disk = fresh();
    write(&mut disk, vec![append(1, 400)]);
    disk.crash(None);
    assert!(disk.lose_newest_segment().is_some());
    let state = disk.recover().unwrap();
    assert!(state.log_lost);
    assert!(state.entries.len() < 400);
    assert!(disk.damaged());
    disk.stop();
    assert!(disk.recover().unwrap().log_lost);
    write(&mut disk, vec![Persist::LogResynced]);
    disk.stop();
    assert!(!disk.recover().unwrap().log_lost);
}
