//! Large trees: a run can start every server from a snapshot holding a tree of many
//! znodes (`--preload-znodes N`; campaigns do it for one seed in
//! [`crate::campaign::LARGE_TREE_EVERY_SEEDS`]), so that work which grows with the tree
//! shows: the work bounds (`check::bounds`) see a write that scans 10^5 znodes, where
//! the simulator's own trees hold a few dozen.
//!
//! The znodes sit under `/big` (`/big/dNNN/nNNNNN`, a few hundred per directory), apart
//! from the paths the workloads use, and the run starts as one from existing disks
//! (`History::starts`): every server's disk holds the same snapshot at index `N` (one
//! create per znode, directories included), epoch 1, and no log.

use std::sync::OnceLock;

use paddock_core::acl::Acl;
use paddock_core::ids::{Epoch, SessionId, Zxid};
use paddock_core::limits::Limits;
use paddock_core::node::NodeSnapshot;
use paddock_core::replication::{HardState, SnapshotMeta};
use paddock_core::session::SessionTable;
use paddock_core::storage::{MemFiles, Store, StoreError};
use paddock_core::tree::{CreateOp, CreateOpcode, DataTree, Op, OpContext, TreeConfig};

use crate::disk::store_config;

/// Znodes per `/big/dNNN` directory.
const PER_DIRECTORY: u64 = 400;

/// The session tick of the loaded state's (empty) session table, ms.
const TICK_MS: u64 = 2000;

/// Why a preloaded disk could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PreloadError {
    /// The storage engine refused a write.
    #[error("writing the preloaded snapshot: {0}")]
    Store(#[from] StoreError),
    /// A create was refused (a bug in the layout).
    #[error("creating {path}: {code:?}")]
    Create {
        /// The path.
        path: String,
        /// The error.
        code: paddock_core::error::ZkError,
    },
}

/// The tree of `znodes` znodes under `/big` (directories included), and the zxid of its
/// last create.
pub fn tree(znodes: u64) -> Result<(DataTree, Zxid), PreloadError> {
    let mut tree = DataTree::new(TreeConfig::default());
    let mut counter = 0u32;
    let mut create = |tree: &mut DataTree, path: String| -> Result<Zxid, PreloadError> {
        counter += 1;
        let zxid = Zxid::new(Epoch(1), counter);
        let op = Op::Create(CreateOp {
            opcode: CreateOpcode::Create,
            path: path.clone(),
            data: Some(b"preloaded".to_vec()),
            acl: Acl::open_unsafe(),
            flags: 0,
        });
        let ctx = OpContext {
            zxid,
            time_ms: 0,
            session: SessionId(0),
            session_live: true,
            ids: Vec::new(),
        };
        let txn = tree
            .prepare(&op, &ctx)
            .map_err(|code| PreloadError::Create { path, code })?;
        tree.apply(&txn);
        Ok(zxid)
    };
    let mut last = create(&mut tree, "/big".to_owned())?;
    let mut made = 1u64;
    let mut directory = 0u64;
    while made < znodes {
        let dir = format!("/big/d{directory:03}");
        last = create(&mut tree, dir.clone())?;
        made += 1;
        let mut child = 0u64;
        while child < PER_DIRECTORY && made < znodes {
            last = create(&mut tree, format!("{dir}/n{child:05}"))?;
            made += 1;
            child += 1;
        }
        directory += 1;
    }
    Ok((tree, last))
}

/// A disk holding a snapshot of [`tree`]`(znodes)` and nothing else. The usual size
/// ([`crate::campaign::LARGE_TREE_ZNODES`]) is built once per process.
pub fn files(znodes: u64, limits: Limits) -> Result<MemFiles, PreloadError> {
    static USUAL: OnceLock<MemFiles> = OnceLock::new();
    if znodes == crate::campaign::LARGE_TREE_ZNODES
        && limits == Limits::default()
        && let Some(files) = USUAL.get()
    {
        return Ok(files.clone());
    }
    let files = build(znodes, limits.clone())?;
    if znodes == crate::campaign::LARGE_TREE_ZNODES && limits == Limits::default() {
        let _ = USUAL.set(files.clone());
    }
    Ok(files)
}

fn build(znodes: u64, limits: Limits) -> Result<MemFiles, PreloadError> {
    let (tree, zxid) = tree(znodes)?;
    let index = u64::from(zxid.counter());
    let meta = SnapshotMeta { index, zxid };
    let tick = std::num::NonZeroU64::new(TICK_MS).unwrap_or(std::num::NonZeroU64::MIN);
    let state = NodeSnapshot {
        tree,
        sessions: SessionTable::new(tick),
    };
    let (mut store, _) = Store::open(MemFiles::new(), store_config(limits))?;
    store.write_hard_state(HardState {
        epoch: Epoch(1),
        voted_for: None,
    })?;
    store.write_snapshot_with(meta, |file| state.encode_into(file))?;
    store.sync()?;
    Ok(store.into_files())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The tree holds exactly the znodes asked for under /big, laid out in directories.
    #[test]
    fn the_tree_has_the_znodes_asked_for() {
        let fresh = DataTree::new(TreeConfig::default()).node_count();
        let (tree, zxid) = tree(1000).unwrap();
        assert_eq!(tree.node_count(), fresh + 1000);
        assert_eq!(u64::from(zxid.counter()), 1000);
        assert_eq!(tree.children("/big").len(), 3);
        assert_eq!(tree.children("/big/d000").len(), 400);
        assert!(tree.node("/big/d002/n00195").is_some());
        assert!(tree.node("/big/d002/n00196").is_none());
    }
}
