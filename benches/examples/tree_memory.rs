//! The tree's memory per znode, measured as the server allocates (jemalloc): N znodes
//! of 128 bytes created with sequential names under one parent, as `paddock-load --op
//! create` makes them, and the resident set before and after. The server's RSS at 10^6
//! znodes is this plus the log it keeps for followers, sessions and the runtime.
//!
//! `cargo run --release -p paddock-benches --example tree_memory [-- N]` (default 10^6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The allocator `paddock serve` runs with (net-real/src/main.rs).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use paddock_core::acl::{Acl, Id};
use paddock_core::ids::{SessionId, Zxid};
use paddock_core::tree::{CreateOp, CreateOpcode, DataTree, Op, OpContext, TreeConfig};

/// Bytes of data in each znode, as the comparison with ZooKeeper uses.
const DATA_BYTES: usize = 128;

/// The process's resident set, in bytes (Linux).
fn rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm's second field");
    pages * 4096.0
}

fn main() {
    let count: u64 = match std::env::args().nth(1) {
        None => 1_000_000,
        Some(arg) => arg.parse().unwrap_or_else(|_| {
            eprintln!("usage: tree_memory [ZNODES]");
            std::process::exit(2)
        }),
    };
    let ctx = |zxid: u64| OpContext {
        zxid: Zxid(zxid),
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
    let before = rss_bytes();
    for i in 0..count {
        // Persistent sequential: "/big/s3-1234abcd-0000000042", like paddock-load's.
        let txn = tree
            .prepare(&create("/big/s3-1234abcd-", 2, DATA_BYTES), &ctx(2 + i))
            .unwrap();
        tree.apply(&txn);
    }
    let per_znode = (rss_bytes() - before) / count.max(1) as f64;
    println!(
        "{count} znodes of {DATA_BYTES} B: {per_znode:.0} B of RSS per znode, {:.0} beyond the data",
        per_znode - DATA_BYTES as f64
    );
}
