//! `zk_files`: arbitrary bytes into the readers of Apache ZooKeeper's own files
//! (`paddock_core::zk_files`), what `paddock import-zookeeper` reads from an operator's
//! disk.
//!
//! The first byte selects: even, the rest is a snapshot file; odd, a transaction log.
//!
//! Properties: never a panic; no single allocation beyond a small multiple of the input
//! (every length and count is checked against the bytes left first); a snapshot that
//! decodes encodes back to one that decodes to the same znodes and sessions; whatever
//! decodes goes through the import's replay and conversion to a Paddock state (which may
//! refuse it with an error, never a panic), and a state it gives satisfies the tree's
//! invariants.

use std::num::NonZeroU64;

use paddock_core::zk_files::{self, ZkState};

use crate::alloc_guard;

/// The target body. See the module documentation.
pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let ((), largest_bytes) = alloc_guard::measure(|| {
        if selector & 1 == 0 {
            snapshot(rest);
        } else {
            log(rest);
        }
    });
    let bound = 32 * data.len() + 64 * 1024;
    assert!(
        largest_bytes <= bound,
        "allocated {largest_bytes} bytes at once for {} input bytes (bound {bound})",
        data.len()
    );
}

fn tick() -> NonZeroU64 {
    NonZeroU64::new(2000).expect("non-zero")
}

fn snapshot(bytes: &[u8]) {
    let Ok(snapshot) = zk_files::decode_snapshot(bytes) else {
        return;
    };
    let again = zk_files::encode_snapshot(
        snapshot.sessions.iter().copied(),
        snapshot.znodes.iter().map(|(p, z)| (p.as_str(), z.clone())),
    );
    let decoded = zk_files::decode_snapshot(&again).expect("an encoded snapshot decodes");
    assert_eq!(decoded.sessions, snapshot.sessions);
    assert_eq!(decoded.znodes, snapshot.znodes);
    if let Ok(state) = ZkState::from_snapshot(snapshot, 0)
        && let Ok((node, _)) = state.into_node_snapshot(tick())
    {
        node.tree.assert_invariants();
    }
}

fn log(bytes: &[u8]) {
    let Ok(log) = zk_files::decode_log(bytes) else {
        return;
    };
    let mut state = ZkState::empty();
    for record in &log.records {
        state.replay(record);
    }
    if let Ok((node, summary)) = state.into_node_snapshot(tick()) {
        node.tree.assert_invariants();
        assert!(summary.txns_replayed <= log.records.len() as u64);
    }
}
