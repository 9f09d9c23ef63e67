//! The time a server spends loading its snapshot at start-up: N znodes of 128 bytes (as
//! `tree_memory` builds them) encoded as a snapshot, then decoded into a node as
//! `paddock serve` does after recovery (`Node::new`), with the resident set before and
//! after (the peak of a start-up is the snapshot's bytes plus the tree).
//!
//! `cargo run --release -p paddock-benches --example snapshot_load [-- N [FILE]]` (default
//! 10^6). With FILE, the encoded snapshot is kept there and a later run with the same N
//! loads it from there without building the tree (for profiling the load alone).

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The allocator `paddock serve` runs with (net-real/src/main.rs).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::collections::BTreeSet;
use std::num::NonZeroU64;
use std::time::Instant;

use paddock_core::acl::{Acl, Id};
use paddock_core::ids::{NodeId, SessionId, Zxid};
use paddock_core::node::{Node, NodeConfig, NodeSnapshot};
use paddock_core::replication::{DurableState, SnapshotMeta};
use paddock_core::session::SessionTable;
use paddock_core::tree::{CreateOp, CreateOpcode, DataTree, Op, OpContext, TreeConfig};

fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm's second field");
    pages * 4096.0 / 1e6
}

fn main() {
    let count: u64 = match std::env::args().nth(1) {
        None => 1_000_000,
        Some(arg) => arg.parse().unwrap_or_else(|_| {
            eprintln!("usage: snapshot_load [ZNODES]");
            std::process::exit(2)
        }),
    };
    let file = std::env::args().nth(2);
    let (bytes, meta) = match file.as_deref().map(std::fs::read) {
        Some(Ok(bytes)) => {
            let meta = SnapshotMeta {
                index: count + 1,
                zxid: Zxid(1 << 32 | (count + 1)),
            };
            (bytes, meta)
        }
        _ => build(count, file.as_deref()),
    };
    load(bytes, meta);
}

/// Builds the tree of `count` znodes and encodes it (kept in `file` when given).
fn build(count: u64, file: Option<&str>) -> (Vec<u8>, SnapshotMeta) {
    let ctx = |zxid: u64| OpContext {
        zxid: Zxid(1 << 32 | zxid),
        time_ms: 1_700_000_000_000,
        session: SessionId(1),
        session_live: true,
        ids: vec![Id::new("ip", "127.0.0.1")],
    };
    let create = |path: &str, flags: i32, data_bytes: usize| {
        Op::Create(CreateOp {
            opcode: CreateOpcode::Create,
            path: path.to_owned(),
            data: Some(vec![3; data_bytes]),
            acl: Acl::open_unsafe(),
            flags,
        })
    };
    let mut tree = DataTree::new(TreeConfig::default());
    let txn = tree.prepare(&create("/big", 0, 0), &ctx(1)).unwrap();
    tree.apply(&txn);
    for i in 0..count {
        let txn = tree
            .prepare(&create("/big/s3-1234abcd-", 2, 128), &ctx(2 + i))
            .unwrap();
        tree.apply(&txn);
    }
    let snapshot = NodeSnapshot {
        sessions: SessionTable::new(NonZeroU64::new(2000).unwrap()),
        tree,
    };
    let bytes = snapshot.encode();
    let meta = SnapshotMeta {
        index: count + 1,
        zxid: snapshot.tree.last_zxid(),
    };
    if let Some(file) = file {
        std::fs::write(file, &bytes).expect("the snapshot file is writable");
    }
    (bytes, meta)
}

/// Loads the snapshot into a node as the server does, and reports.
fn load(bytes: Vec<u8>, meta: SnapshotMeta) {
    let before = rss_mb();
    let id = NodeId(1);
    let durable = DurableState {
        hard_state: paddock_core::replication::HardState {
            epoch: paddock_core::ids::Epoch(1),
            voted_for: None,
        },
        snapshot: meta,
        snapshot_bytes: bytes,
        ..DurableState::default()
    };
    let started = Instant::now();
    let node = Node::new(NodeConfig::new(id, BTreeSet::from([id])), durable, 1).unwrap();
    let elapsed = started.elapsed();
    println!(
        "{} znodes loaded in {} ms; RSS {before:.0} MB with the snapshot's bytes, {:.0} MB after",
        node.tree().node_count(),
        elapsed.as_millis(),
        rss_mb()
    );
}
