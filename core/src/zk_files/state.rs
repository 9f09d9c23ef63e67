//! ZooKeeper's state as its restart rebuilds it: a snapshot, then every logged txn after
//! the snapshot's zxid replayed with `DataTree.processTxn`'s rules, failures ignored (a
//! snapshot is fuzzy: it may already hold some of the changes replayed). The result
//! becomes a Paddock [`NodeSnapshot`] in which every znode keeps its data, ACL list and
//! persisted stat, and every session its id, timeout and ZooKeeper's password for it.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;

use crate::acl::Acl;
use crate::ids::{SessionId, Zxid};
use crate::node::NodeSnapshot;
use crate::session::{PASSWORD_BYTES, SessionTable};
use crate::tree::{CONFIG_PATH, DataTree, PersistedZnode, TreeConfig};

use super::{ZkFileError, ZkLogRecord, ZkSnapshot, ZkTxn};

/// The constant ZooKeeper mixes into a session's password seed (`superSecret`).
const PASSWORD_SECRET: i64 = 0xB341_5C00;

/// The password ZooKeeper gives session `id` (`ZooKeeperServer.generatePasswd`: 16 bytes
/// of `java.util.Random` seeded with `id ^ 0xB3415C00`). An imported session keeps it, so
/// a client holding it resumes its session on Paddock.
pub fn zookeeper_password(id: i64) -> [u8; PASSWORD_BYTES] {
    // java.util.Random: a 48-bit linear congruential generator.
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut seed = ((id ^ PASSWORD_SECRET) as u64 ^ MULTIPLIER) & MASK;
    let mut out = [0u8; PASSWORD_BYTES];
    for chunk in out.chunks_mut(4) {
        seed = (seed.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        // next(32): the top 32 of the 48 bits; nextBytes takes them low byte first.
        let word = (seed >> 16) as u32;
        for (i, byte) in chunk.iter_mut().enumerate() {
            *byte = (word >> (8 * i)) as u8;
        }
    }
    out
}

/// What an import found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Znodes in the result, the root and the reserved nodes included.
    pub znodes: u64,
    /// Sessions in the result.
    pub sessions: u64,
    /// Txns replayed from the logs.
    pub txns_replayed: u64,
    /// Of those, the ones that failed and were ignored (a change the fuzzy snapshot
    /// already held, or a failed request's error txn).
    pub txns_ignored: u64,
    /// Ephemerals of sessions that no longer exist, deleted (as ZooKeeper's start-up
    /// does).
    pub dead_ephemerals_deleted: u64,
    /// The last zxid.
    pub last_zxid: i64,
}

/// ZooKeeper's data tree and sessions, being rebuilt.
#[derive(Debug, Clone)]
pub struct ZkState {
    znodes: BTreeMap<String, PersistedZnode>,
    /// Each session's ephemerals.
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    sessions: BTreeMap<i64, i32>,
    last_zxid: i64,
    summary: ImportSummary,
}

/// The parent path of `path` (`/` for a top-level node); `None` for the root.
fn parent_of(path: &str) -> Option<&str> {
    let slash = path.rfind('/')?;
    if path == "/" {
        return None;
    }
    if slash == 0 {
        Some("/")
    } else {
        path.get(..slash)
    }
}

impl ZkState {
    /// The state of a ZooKeeper server that never took a snapshot: the fresh tree (`/`,
    /// `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`) and no sessions.
    pub fn empty() -> ZkState {
        let tree = DataTree::new(TreeConfig::default());
        let znodes = tree
            .persisted()
            .map(|(path, znode)| (path.to_owned(), znode))
            .collect();
        ZkState {
            znodes,
            ephemerals: BTreeMap::new(),
            sessions: BTreeMap::new(),
            last_zxid: 0,
            summary: ImportSummary::default(),
        }
    }

    /// The state a snapshot holds, `zxid` being the one in its file name (every txn up
    /// to it is in the snapshot). Fails when a znode comes before its parent or twice.
    pub fn from_snapshot(snapshot: ZkSnapshot, zxid: i64) -> Result<ZkState, ZkFileError> {
        let mut state = ZkState {
            znodes: BTreeMap::new(),
            ephemerals: BTreeMap::new(),
            sessions: snapshot.sessions.into_iter().collect(),
            last_zxid: zxid,
            summary: ImportSummary::default(),
        };
        for (path, znode) in snapshot.znodes {
            if let Some(parent) = parent_of(&path)
                && !state.znodes.contains_key(parent)
            {
                return Err(ZkFileError::Invalid(format!(
                    "snapshot znode {path:?} comes before its parent"
                )));
            }
            state.index_ephemeral(&path, znode.ephemeral_owner);
            if state.znodes.insert(path.clone(), znode).is_some() {
                return Err(ZkFileError::Invalid(format!(
                    "snapshot znode {path:?} appears twice"
                )));
            }
        }
        if !state.znodes.contains_key("/") {
            return Err(ZkFileError::Invalid(
                "snapshot has no root znode".to_owned(),
            ));
        }
        Ok(state)
    }

    /// The last zxid applied (the snapshot's, then each replayed txn's).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The number of znodes so far.
    pub fn znode_count(&self) -> usize {
        self.znodes.len()
    }

    /// Replays one logged txn if it is after [`ZkState::last_zxid`] (returns whether it
    /// was), as `FileTxnSnapLog.processTransaction` and `DataTree.processTxn` do: each
    /// change that does not fit (a node already created or already gone, which a fuzzy
    /// snapshot may hold) is ignored.
    pub fn replay(&mut self, record: &ZkLogRecord) -> bool {
        let header = record.header;
        if header.zxid <= self.last_zxid {
            return false;
        }
        self.summary.txns_replayed += 1;
        let ok = match &record.txn {
            ZkTxn::CreateSession { timeout_ms } => {
                self.sessions.insert(header.client_id, *timeout_ms);
                true
            }
            ZkTxn::CloseSession { paths } => {
                self.sessions.remove(&header.client_id);
                self.kill_session(header.client_id, header.zxid, paths.as_deref());
                true
            }
            ZkTxn::Multi(ops) => {
                // A failed multi was logged with every op an error: nothing applies.
                if ops.iter().any(|op| matches!(op, ZkTxn::Error { .. })) {
                    false
                } else {
                    let mut all = true;
                    for op in ops {
                        all &= self.apply(op, header.zxid, header.time);
                    }
                    all
                }
            }
            txn => self.apply(txn, header.zxid, header.time),
        };
        if !ok {
            self.summary.txns_ignored += 1;
        }
        self.last_zxid = header.zxid;
        true
    }

    /// Applies one change; `false` when it did not fit (and changed what ZooKeeper's
    /// failed change changes).
    fn apply(&mut self, txn: &ZkTxn, zxid: i64, time: i64) -> bool {
        match txn {
            ZkTxn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            } => self.create(
                path,
                data,
                acl,
                *ephemeral_owner,
                *parent_cversion,
                zxid,
                time,
            ),
            ZkTxn::Delete { path } => self.delete(path, zxid),
            ZkTxn::SetData {
                path,
                data,
                version,
            } => match self.znodes.get_mut(path) {
                Some(znode) => {
                    znode.data.clone_from(data);
                    znode.mtime = time;
                    znode.mzxid = zxid;
                    znode.version = *version;
                    true
                }
                None => false,
            },
            ZkTxn::SetAcl { path, acl, version } => match self.znodes.get_mut(path) {
                Some(znode) => {
                    znode.acl.clone_from(acl);
                    znode.aversion = *version;
                    true
                }
                None => false,
            },
            ZkTxn::Check => true,
            ZkTxn::Error { .. } | ZkTxn::CreateSession { .. } | ZkTxn::CloseSession { .. } => false,
            ZkTxn::Multi(_) => false,
        }
    }

    /// `DataTree.createNode`, then processTxn's repair of the parent when the node was
    /// already there (the parent takes the txn's cversion and pzxid if they are newer).
    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        path: &str,
        data: &Option<Vec<u8>>,
        acl: &[Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> bool {
        let Some(parent_path) = parent_of(path) else {
            return false;
        };
        if !self.znodes.contains_key(parent_path) {
            return false;
        }
        let exists = if let Some(existing) = self.znodes.get_mut(path) {
            // ZooKeeper gives the existing node the create's ACL before it fails.
            existing.acl = acl.to_vec();
            true
        } else {
            false
        };
        if let Some(parent) = self.znodes.get_mut(parent_path) {
            let cversion = if parent_cversion == -1 {
                parent.cversion.wrapping_add(1)
            } else {
                parent_cversion
            };
            if cversion > parent.cversion {
                parent.cversion = cversion;
                parent.pzxid = zxid;
            }
        }
        if exists {
            return false;
        }
        self.index_ephemeral(path, ephemeral_owner);
        self.znodes.insert(
            path.to_owned(),
            PersistedZnode {
                data: data.clone(),
                acl: acl.to_vec(),
                czxid: zxid,
                mzxid: zxid,
                ctime: time,
                mtime: time,
                version: 0,
                cversion: 0,
                aversion: 0,
                ephemeral_owner,
                pzxid: zxid,
            },
        );
        true
    }

    /// `DataTree.deleteNode`: the parent's pzxid moves up to `zxid` even when the node is
    /// already gone.
    fn delete(&mut self, path: &str, zxid: i64) -> bool {
        let Some(parent_path) = parent_of(path) else {
            return false;
        };
        let Some(parent) = self.znodes.get_mut(parent_path) else {
            return false;
        };
        parent.pzxid = parent.pzxid.max(zxid);
        let Some(removed) = self.znodes.remove(path) else {
            return false;
        };
        if let Some(paths) = self.ephemerals.get_mut(&removed.ephemeral_owner) {
            paths.remove(path);
            if paths.is_empty() {
                self.ephemerals.remove(&removed.ephemeral_owner);
            }
        }
        true
    }

    /// `DataTree.killSession`: the paths the txn lists, then any other ephemeral of the
    /// session.
    fn kill_session(&mut self, session: i64, zxid: i64, listed: Option<&[String]>) {
        for path in listed.unwrap_or_default() {
            self.delete(path, zxid);
        }
        let rest = self.ephemerals.remove(&session).unwrap_or_default();
        for path in rest {
            self.delete(&path, zxid);
        }
    }

    fn index_ephemeral(&mut self, path: &str, owner: i64) {
        let is_session = owner != 0 && owner != i64::MIN && (owner as u64) >> 56 != 0xFF;
        if is_session {
            self.ephemerals
                .entry(owner)
                .or_default()
                .insert(path.to_owned());
        }
    }

    /// Paddock's state for this one: the tree with every znode as ZooKeeper persisted it
    /// (but `/zookeeper/config`, which is Paddock's own), and the sessions with their
    /// timeouts and ZooKeeper's passwords. As ZooKeeper's start-up does, the ephemerals
    /// of sessions that no longer exist are deleted first. `tick_ms` is the server's tick
    /// (`NodeConfig::tick_ms`; session deadlines are set afresh when a node starts).
    pub fn into_node_snapshot(
        mut self,
        tick_ms: NonZeroU64,
    ) -> Result<(NodeSnapshot, ImportSummary), ZkFileError> {
        let dead: Vec<i64> = self
            .ephemerals
            .keys()
            .filter(|session| !self.sessions.contains_key(session))
            .copied()
            .collect();
        for session in dead {
            let paths = self.ephemerals.remove(&session).unwrap_or_default();
            for path in paths {
                if self.delete(&path, self.last_zxid) {
                    self.summary.dead_ephemerals_deleted += 1;
                }
            }
        }
        self.znodes.remove(CONFIG_PATH);
        let mut summary = self.summary;
        summary.last_zxid = self.last_zxid;
        let tree = DataTree::from_persisted(
            TreeConfig::default(),
            self.znodes,
            Zxid::from_wire(self.last_zxid),
        )
        .map_err(ZkFileError::Invalid)?;
        let mut sessions = SessionTable::new(tick_ms);
        for (id, timeout) in self.sessions {
            let timeout_ms = u32::try_from(timeout.max(1)).unwrap_or(1);
            sessions
                .create(SessionId(id), zookeeper_password(id), timeout_ms, 0)
                .map_err(|e| ZkFileError::Invalid(format!("session {id:#x}: {e}")))?;
        }
        summary.znodes = tree.node_count() as u64;
        summary.sessions = sessions.len() as u64;
        Ok((NodeSnapshot { tree, sessions }, summary))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::zk_files::ZkTxnHeader;

    fn record(zxid: i64, client_id: i64, txn: ZkTxn) -> ZkLogRecord {
        ZkLogRecord {
            header: ZkTxnHeader {
                client_id,
                cxid: 1,
                zxid,
                time: 1000 + zxid,
                kind: 0,
            },
            txn,
        }
    }

    fn create(path: &str, owner: i64, parent_cversion: i32) -> ZkTxn {
        ZkTxn::Create {
            path: path.into(),
            data: Some(path.as_bytes().to_vec()),
            acl: Acl::open_unsafe(),
            ephemeral_owner: owner,
            parent_cversion,
        }
    }

    // Values from java.util.Random as ZooKeeper 3.8's generatePasswd uses it (computed
    // with the JDK: new Random(id ^ 0xB3415C00L).nextBytes(new byte[16])).
    #[test]
    fn passwords_are_zookeepers() {
        assert_eq!(
            zookeeper_password(0x1000_0000_0000_0001),
            [
                0x05, 0x4c, 0xc7, 0x4a, 0x37, 0x32, 0x7d, 0xb2, 0x15, 0xe7, 0x02, 0xe2, 0x0c, 0x73,
                0xf0, 0x05
            ]
        );
    }

    #[test]
    fn replay_follows_zookeepers_rules() {
        let mut state = ZkState::empty();
        let s = 0x77;
        state.replay(&record(1, s, ZkTxn::CreateSession { timeout_ms: 4000 }));
        state.replay(&record(2, s, create("/a", 0, 1)));
        state.replay(&record(3, s, create("/a/e", s, 1)));
        // Already there (a fuzzy snapshot): ignored, the parent's cversion untouched
        // since the txn's is not newer.
        state.replay(&record(4, s, create("/a/e", s, 1)));
        assert_eq!(state.znodes["/a"].cversion, 1);
        assert_eq!(state.znodes["/a"].pzxid, 3);
        state.replay(&record(
            5,
            s,
            ZkTxn::SetData {
                path: "/a".into(),
                data: None,
                version: 1,
            },
        ));
        assert_eq!(state.znodes["/a"].version, 1);
        assert_eq!(state.znodes["/a"].mzxid, 5);
        assert_eq!(state.znodes["/a"].mtime, 1005);
        // A failed multi changes nothing.
        state.replay(&record(
            6,
            s,
            ZkTxn::Multi(vec![ZkTxn::Error { err: 0 }, ZkTxn::Error { err: -101 }]),
        ));
        // Older than the state: skipped.
        assert!(!state.replay(&record(6, s, create("/old", 0, -1))));
        state.replay(&record(7, s, ZkTxn::CloseSession { paths: None }));
        assert!(!state.znodes.contains_key("/a/e"));
        assert_eq!(state.znodes["/a"].pzxid, 7);
        assert!(state.sessions.is_empty());
        state.replay(&record(8, 9, create("/a/gone", 0x99, -1)));
        assert_eq!(state.znodes["/a"].cversion, 2);
        let (snap, summary) = state
            .into_node_snapshot(NonZeroU64::new(500).unwrap())
            .unwrap();
        // /a/gone's session (0x99) never existed: deleted at the end, as ZooKeeper does.
        assert_eq!(summary.dead_ephemerals_deleted, 1);
        assert_eq!(summary.txns_replayed, 8);
        assert_eq!(summary.txns_ignored, 2);
        assert!(snap.tree.node("/a/gone").is_none());
        assert_eq!(snap.tree.node("/a").unwrap().stat().pzxid, 8);
        assert_eq!(snap.tree.last_zxid(), Zxid(8));
        snap.tree.assert_invariants();
    }
}
