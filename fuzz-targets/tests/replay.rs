//! Replays every committed fuzz input — the seed corpora under `fuzz/corpus/<target>/` and
//! the crash reproducers under `fuzz/regressions/<target>/` — through the same target
//! functions cargo-fuzz runs, so that a normal `cargo test` (stable, no cargo-fuzz)
//! keeps every bug the fuzzers found fixed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use paddock_fuzz_targets::TARGETS;
use paddock_fuzz_targets::alloc_guard::PeakAllocator;

#[global_allocator]
static ALLOCATOR: PeakAllocator = PeakAllocator;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, kind: &str) -> usize {
    let (_, body) = TARGETS.iter().find(|(name, _)| *name == target).unwrap();
    let inputs = files(&fuzz_dir().join(kind).join(target));
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
    }
    inputs.len()
}

// Every target has a seed corpus, and every corpus and regression input passes.
macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let target = stringify!($name);
            let corpus = replay(target, "corpus");
            assert!(corpus > 0, "{target} has no seed corpus");
            replay(target, "regressions");
        }
    )*};
}

replay_tests!(
    wire_decode,
    wire_roundtrip,
    peer_decode,
    storage_recover,
    tree_ops,
    node_client_stream,
    zoo_cfg,
    sim_cluster,
    auth_parsers,
    zk_files,
);

// The table and the tests above name the same targets, so none is forgotten.
#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "wire_decode",
            "wire_roundtrip",
            "peer_decode",
            "storage_recover",
            "tree_ops",
            "node_client_stream",
            "zoo_cfg",
            "sim_cluster",
            "auth_parsers",
            "zk_files"
        ]
    );
}

// The allocation checks measure something: a large allocation is seen, so a decoder that
// trusted a length field would fail `wire_decode` and `peer_decode`.
#[test]
fn allocation_guard_sees_allocations() {
    let (vec, largest) =
        paddock_fuzz_targets::alloc_guard::measure(|| Vec::<u8>::with_capacity(1 << 20));
    assert!(largest >= 1 << 20, "largest {largest}");
    drop(vec);
}

// A peer message whose byte-vector length claims 60 MB with nothing behind it fails to
// decode after allocating at most 1 MiB (serde's cautious preallocation cap), far below
// both the claim and the 64 MiB bound `peer_decode` checks: the bound is not met only by
// luck of the corpus.
#[test]
fn peer_length_field_cannot_force_allocation() {
    use paddock_core::ids::{Epoch, Zxid};
    use paddock_core::node::PeerMessage;
    use paddock_core::replication::{Message, MessageBody, SnapshotMeta};
    let message = PeerMessage::Replication(Message {
        epoch: Epoch(1),
        body: MessageBody::Snapshot {
            meta: SnapshotMeta {
                index: 1,
                zxid: Zxid(1),
            },
            offset: 0,
            total_bytes: 0,
            bytes: Vec::new(),
        },
    });
    let mut bytes = message.encode();
    assert_eq!(
        bytes.pop(),
        Some(0),
        "the empty vector's length is the last byte"
    );
    bytes.push(0xfc); // bincode varint: a u32 follows
    bytes.extend_from_slice(&60_000_000u32.to_le_bytes());
    let (decoded, largest_bytes) =
        paddock_fuzz_targets::alloc_guard::measure(|| PeerMessage::decode(&bytes));
    assert!(decoded.is_err(), "{decoded:?}");
    assert!(largest_bytes <= 1 << 20, "allocated {largest_bytes} bytes");
}
