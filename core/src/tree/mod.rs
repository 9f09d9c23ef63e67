//! The znode data tree with ZooKeeper 3.8 semantics (zk-protocol.md §5–§11): nodes in their
//! stored form, reads with ACL checks, writes in two stages (`prepare` checks an [`Op`] and
//! fixes it into a [`Txn`]; `apply` runs the txn and cannot fail for a prepared one), the
//! per-session ephemeral index, container/TTL reaping candidates and a state digest.
//!
//! Invariants: every node but the root has its parent in the map, listed in the parent's
//! children; ephemerals have no children; the ephemeral index holds exactly the paths of
//! the plain ephemerals, under their owner. All maps are ordered, so every output (child
//! lists, ephemerals, candidates, digest, serialized bytes) is deterministic.
//!
//! Not here: the session table (the node passes `session_live` and the caller's ids),
//! watches (the tree reports [`Change`](crate::watch::Change)s), quotas (never enforced, so
//! QUOTAEXCEEDED is never returned), reconfig, and the wire codec.

mod apply;
mod node;
mod path;
mod prepare;
mod txn;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::acl::{self, Acl, Id, perms};
use crate::error::ZkError;
use crate::ids::{SessionId, Zxid};
use crate::stat::Stat;

pub use node::{NodeKind, Znode};
pub use path::{
    CONFIG_PATH, QUOTA_PATH, ZOOKEEPER_PATH, is_special, sequence_suffix, validate as validate_path,
};
pub use prepare::TTL_MS_MAX;
pub use txn::{
    Applied, CheckOp, CreateOp, CreateOpcode, CreateTxn, DeleteOp, MultiOp, Op, OpContext,
    OpResult, SetAclOp, SetDataOp, Txn, TxnKind, TxnOp,
};

/// What the tree needs to know of the server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeConfig {
    /// Whether TTL creates are allowed. Default `true` (Paddock enables TTL nodes; with
    /// `false`, TTL creates give UNIMPLEMENTED as in ZooKeeper's default).
    pub ttl_enabled: bool,
    /// Largest znode data accepted by create and setData, in bytes; larger gives
    /// BADARGUMENTS. Default 1_048_575 (ZooKeeper's `jute.maxbuffer`).
    pub data_bytes_max: u32,
    /// The super user's digest id (`super:<base64 sha1>`), if any; authenticating with it
    /// grants `super`. Default `None`.
    pub super_digest: Option<String>,
    /// The planted bug, if any (tests of the checkers only; never serialized).
    #[cfg(feature = "planted-bugs")]
    #[serde(skip)]
    pub bug: Option<crate::bugs::Bug>,
}

impl Default for TreeConfig {
    fn default() -> TreeConfig {
        TreeConfig {
            ttl_enabled: true,
            data_bytes_max: 1_048_575,
            super_digest: None,
            #[cfg(feature = "planted-bugs")]
            bug: None,
        }
    }
}

/// One read of a multiRead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadOp {
    /// getData of a path.
    GetData(String),
    /// getChildren of a path.
    GetChildren(String),
}

/// The result of one read of a multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// getData: the data (`None` is null) and the Stat.
    Data(Option<Vec<u8>>, Stat),
    /// getChildren: the sorted child names.
    Children(Vec<String>),
    /// The read failed with this code.
    Error(ZkError),
}

/// The znode tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataTree {
    nodes: BTreeMap<String, Znode>,
    ephemerals: BTreeMap<SessionId, BTreeSet<String>>,
    last_zxid: Zxid,
    /// Configuration is not state: it is not snapshotted or digested.
    #[serde(skip)]
    config: TreeConfig,
}

impl DataTree {
    /// A fresh tree (DataTree's constructor): `/`, `/zookeeper`, `/zookeeper/quota` with
    /// empty data and OPEN_ACL_UNSAFE, and `/zookeeper/config` with empty data and
    /// READ_ACL_UNSAFE, all with an all-zero stat except the config node's aversion, which
    /// is -1 (ZooKeeper puts its ACL in place with `setACL(path, acl, -1)`, which stores the
    /// version argument as the aversion). The root then shows cversion -1 and `/zookeeper`
    /// -2 (stored 0, with children).
    pub fn new(config: TreeConfig) -> DataTree {
        let reserved =
            |acl: Vec<Acl>| Znode::new(Some(Vec::new()), acl, NodeKind::Persistent, Zxid::ZERO, 0);
        let mut nodes = BTreeMap::new();
        let mut root = reserved(Acl::open_unsafe());
        root.children.insert("zookeeper".to_owned());
        let mut zookeeper = reserved(Acl::open_unsafe());
        zookeeper.children.insert("quota".to_owned());
        zookeeper.children.insert("config".to_owned());
        nodes.insert("/".to_owned(), root);
        nodes.insert(ZOOKEEPER_PATH.to_owned(), zookeeper);
        nodes.insert(QUOTA_PATH.to_owned(), reserved(Acl::open_unsafe()));
        let mut config_node = reserved(Acl::read_unsafe());
        config_node.aversion = -1;
        nodes.insert(CONFIG_PATH.to_owned(), config_node);
        DataTree {
            nodes,
            ephemerals: BTreeMap::new(),
            last_zxid: Zxid::ZERO,
            config,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &TreeConfig {
        &self.config
    }

    /// Replaces the configuration (e.g. after loading a snapshot, which does not hold it).
    pub fn set_config(&mut self, config: TreeConfig) {
        self.config = config;
    }

    /// The zxid of the last applied txn (zero for a fresh tree).
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// The node at `path`, without ACL checks (for the server's own use: watches, 4lw).
    pub fn node(&self, path: &str) -> Option<&Znode> {
        self.nodes.get(path)
    }

    /// The number of znodes, the root and the reserved nodes included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node at `path` if the caller holds one of the `wanted` permissions on it.
    fn readable(&self, path: &str, ids: &[Id], wanted: i32) -> Result<&Znode, ZkError> {
        let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        acl::check(&node.acl, ids, wanted)?;
        Ok(node)
    }

    /// getData: the data (`None` is null) and Stat. NONODE, NOAUTH (READ).
    pub fn get_data(&self, path: &str, ids: &[Id]) -> Result<(Option<Vec<u8>>, Stat), ZkError> {
        let node = self.readable(path, ids, perms::READ)?;
        Ok((node.data.clone(), node.stat()))
    }

    /// exists: the Stat. BADARGUMENTS (NUL in the path), NONODE (the normal "absent"
    /// answer; the watch module still registers the watch), NOAUTH (READ, as 3.8.4+).
    pub fn exists(&self, path: &str, ids: &[Id]) -> Result<Stat, ZkError> {
        if path.contains('\0') {
            return Err(ZkError::BadArguments);
        }
        Ok(self.readable(path, ids, perms::READ)?.stat())
    }

    /// getChildren: the child names, sorted. NONODE, NOAUTH (READ).
    pub fn get_children(&self, path: &str, ids: &[Id]) -> Result<Vec<String>, ZkError> {
        Ok(self
            .readable(path, ids, perms::READ)?
            .children
            .iter()
            .cloned()
            .collect())
    }

    /// getChildren2: the sorted child names and the Stat. NONODE, NOAUTH (READ).
    pub fn get_children2(&self, path: &str, ids: &[Id]) -> Result<(Vec<String>, Stat), ZkError> {
        let node = self.readable(path, ids, perms::READ)?;
        Ok((node.children.iter().cloned().collect(), node.stat()))
    }

    /// getAllChildrenNumber: the number of descendants (for `/`, every node but the root).
    /// NONODE, NOAUTH (READ).
    pub fn get_all_children_number(&self, path: &str, ids: &[Id]) -> Result<i32, ZkError> {
        self.readable(path, ids, perms::READ)?;
        let prefix = if path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        let count = self
            .nodes
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(descendant, _)| descendant.starts_with(&prefix))
            .filter(|(descendant, _)| descendant.as_str() != "/")
            .count();
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// getEphemerals: the session's ephemeral paths, sorted; all of them when `prefix` is
    /// empty or `/`, else those starting with `prefix` (plain string prefix, as ZooKeeper).
    pub fn get_ephemerals(&self, session: SessionId, prefix: &str) -> Vec<String> {
        let Some(paths) = self.ephemerals.get(&session) else {
            return Vec::new();
        };
        let everything = prefix.is_empty() || prefix == "/";
        paths
            .iter()
            .filter(|p| everything || p.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Every session that owns ephemerals, with its paths (sorted).
    pub fn ephemerals(&self) -> &BTreeMap<SessionId, BTreeSet<String>> {
        &self.ephemerals
    }

    /// getACL: the ACL and Stat. NONODE, NOAUTH (needs READ or ADMIN); without ADMIN the
    /// digest ids come back masked as `user:x`.
    pub fn get_acl(&self, path: &str, ids: &[Id]) -> Result<(Vec<Acl>, Stat), ZkError> {
        let node = self.readable(path, ids, perms::READ | perms::ADMIN)?;
        let acl = match acl::check(&node.acl, ids, perms::ADMIN) {
            Ok(()) => node.acl.clone(),
            Err(_) => acl::mask_digests(&node.acl),
        };
        Ok((acl, node.stat()))
    }

    /// multiRead: each read runs on its own; a failure becomes an error entry and later
    /// reads still run.
    pub fn multi_read(&self, ops: &[ReadOp], ids: &[Id]) -> Vec<ReadResult> {
        ops.iter()
            .map(|op| match op {
                ReadOp::GetData(path) => match self.get_data(path, ids) {
                    Ok((data, stat)) => ReadResult::Data(data, stat),
                    Err(code) => ReadResult::Error(code),
                },
                ReadOp::GetChildren(path) => match self.get_children(path, ids) {
                    Ok(children) => ReadResult::Children(children),
                    Err(code) => ReadResult::Error(code),
                },
            })
            .collect()
    }

    /// Checks a write against the current state and fixes it into a txn carrying the
    /// context's zxid, time and session. Errors are the codes of zk-protocol.md §7 in
    /// ZooKeeper's check order. A multi whose op fails still gives `Ok`: a `MultiFailed`
    /// txn with the per-op codes (only whole-request failures are `Err`).
    pub fn prepare(&self, op: &Op, ctx: &OpContext) -> Result<Txn, ZkError> {
        let kind = match op {
            Op::Create(create) => TxnKind::Single(TxnOp::Create(prepare::create(
                &self.nodes,
                &self.config,
                create,
                ctx,
            )?)),
            Op::Delete(delete) => TxnKind::Single(prepare::delete(&self.nodes, delete, ctx)?),
            Op::SetData(set) => {
                TxnKind::Single(prepare::set_data(&self.nodes, &self.config, set, ctx)?)
            }
            Op::SetAcl(set) => TxnKind::Single(prepare::set_acl(&self.nodes, set, ctx)?),
            Op::Check(_) => return Err(ZkError::Unimplemented),
            Op::Multi(ops) => prepare::multi(&self.nodes, &self.config, ops, ctx)?,
            Op::CreateSession {
                session,
                password,
                timeout_ms,
            } => TxnKind::CreateSession {
                session: *session,
                password: *password,
                timeout_ms: *timeout_ms,
            },
            Op::CloseSession { session } => TxnKind::CloseSession { session: *session },
            Op::DeleteContainer { path } => prepare::delete_container(&self.nodes, path)?,
        };
        let session = match op {
            Op::CreateSession { session, .. } | Op::CloseSession { session } => *session,
            _ => ctx.session,
        };
        Ok(Txn {
            zxid: ctx.zxid,
            time_ms: ctx.time_ms,
            session,
            kind,
        })
    }

    /// The container and TTL nodes the reaper should delete now, sorted: containers with no
    /// children that had at least one (stored cversion > 0), and TTL nodes with no children
    /// whose `now_ms - mtime > ttl` (ContainerManager.getCandidates).
    pub fn deletion_candidates(&self, now_ms: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, node)| node.children.is_empty())
            .filter(|(_, node)| match node.kind {
                NodeKind::Container => node.cversion_stored > 0,
                NodeKind::Ttl { ttl_ms } => now_ms.saturating_sub(node.mtime_ms) > ttl_ms,
                NodeKind::Persistent | NodeKind::Ephemeral(_) => false,
            })
            .map(|(path, _)| path.clone())
            .collect()
    }

    /// Checks the tree's structural invariants and panics naming the first broken one:
    /// every node but the root has its parent, which lists it as a child; every listed child
    /// exists; ephemerals have no children; the ephemeral index holds exactly the plain
    /// ephemerals under their owners, with no empty entry. O(nodes); meant for tests and
    /// the simulator's expensive cross-checks, not for every apply.
    pub fn assert_invariants(&self) {
        assert!(self.nodes.contains_key("/"), "the root is missing");
        let mut indexed: BTreeMap<SessionId, BTreeSet<String>> = BTreeMap::new();
        for (path, node) in &self.nodes {
            for child in &node.children {
                let child_path = if path == "/" {
                    format!("/{child}")
                } else {
                    format!("{path}/{child}")
                };
                assert!(
                    self.nodes.contains_key(&child_path),
                    "{path} lists missing child {child}"
                );
            }
            if let NodeKind::Ephemeral(session) = node.kind {
                assert!(node.children.is_empty(), "ephemeral {path} has children");
                indexed.entry(session).or_default().insert(path.clone());
            }
            if path == "/" {
                continue;
            }
            let parent = path::parent_of(path).expect("stored paths have a parent");
            let listed = self
                .nodes
                .get(parent)
                .is_some_and(|p| p.children.contains(path::name_of(path)));
            assert!(listed, "{path} is not listed by its parent {parent}");
        }
        assert_eq!(
            indexed, self.ephemerals,
            "the ephemeral index differs from the nodes"
        );
    }

    /// A digest of the whole state (last zxid; every node's path, data, kind, stored stat,
    /// ACL; every session's ephemerals): 64-bit FNV-1a over a canonical, length-prefixed
    /// traversal in path order, so equal states give equal digests on every server.
    pub fn digest(&self) -> u64 {
        let mut hash = Fnv1a::new();
        hash.u64(self.last_zxid.0);
        hash.u64(self.nodes.len() as u64);
        for (path, node) in &self.nodes {
            hash.bytes(path.as_bytes());
            match &node.data {
                None => hash.u64(0),
                Some(data) => {
                    hash.u64(1);
                    hash.bytes(data);
                }
            }
            hash.u64(node.kind.ephemeral_owner_stored() as u64);
            for field in [
                node.czxid,
                node.mzxid,
                node.ctime_ms,
                node.mtime_ms,
                node.pzxid,
            ] {
                hash.u64(field as u64);
            }
            for field in [
                node.version,
                node.cversion_stored,
                node.aversion,
                node.num_children(),
            ] {
                hash.u64(u64::from(field as u32));
            }
            hash.u64(node.acl.len() as u64);
            for entry in &node.acl {
                hash.u64(u64::from(entry.perms as u32));
                hash.bytes(entry.id.scheme.as_bytes());
                hash.bytes(entry.id.id.as_bytes());
            }
        }
        for (session, paths) in &self.ephemerals {
            hash.u64(session.0 as u64);
            hash.u64(paths.len() as u64);
            for path in paths {
                hash.bytes(path.as_bytes());
            }
        }
        hash.finish()
    }
}

/// 64-bit FNV-1a, fed with fixed-width integers and length-prefixed byte strings.
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Fnv1a {
        Fnv1a(Self::OFFSET_BASIS)
    }

    fn raw(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn u64(&mut self, value: u64) {
        self.raw(&value.to_be_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        self.raw(bytes);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx(zxid: u64) -> OpContext {
        OpContext {
            zxid: Zxid(zxid),
            time_ms: 5,
            session: SessionId(1),
            session_live: true,
            ids: vec![Id::new("ip", "127.0.0.1")],
        }
    }

    fn run(tree: &mut DataTree, op: Op, zxid: u64) -> Result<Applied, ZkError> {
        let txn = tree.prepare(&op, &ctx(zxid))?;
        Ok(tree.apply(&txn))
    }

    fn seq_create(path: &str) -> Op {
        Op::Create(CreateOp {
            opcode: CreateOpcode::Create,
            path: path.into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 2,
        })
    }

    fn created_path(applied: &Applied) -> &str {
        match &applied.results[..] {
            [OpResult::Created { path, .. }] => path,
            other => panic!("not a create: {other:?}"),
        }
    }

    // The sequence counter is a signed int32: after 2147483647 it wraps to -2147483648,
    // and %010d keeps the sign inside the width (-1 → -000000001). The visible cversion
    // wraps too, without panicking.
    #[test]
    fn sequence_wraps_like_java() {
        let mut tree = DataTree::new(TreeConfig::default());
        run(&mut tree, seq_create("/q"), 1).unwrap();
        tree.nodes.get_mut("/q0000000000").unwrap().cversion_stored = i32::MAX;
        let applied = run(&mut tree, seq_create("/q0000000000/n-"), 2).unwrap();
        assert_eq!(created_path(&applied), "/q0000000000/n-2147483647");
        let applied = run(&mut tree, seq_create("/q0000000000/n-"), 3).unwrap();
        assert_eq!(created_path(&applied), "/q0000000000/n--2147483648");
        let parent = tree.node("/q0000000000").unwrap();
        assert_eq!(parent.cversion_stored(), i32::MIN + 1);
        assert_eq!(
            parent.stat().cversion,
            (i32::MIN + 1).wrapping_mul(2).wrapping_sub(2)
        );
        tree.nodes.get_mut("/q0000000000").unwrap().cversion_stored = -1;
        let applied = run(&mut tree, seq_create("/q0000000000/n-"), 4).unwrap();
        assert_eq!(created_path(&applied), "/q0000000000/n--000000001");
        let applied = run(&mut tree, seq_create("/q0000000000/n-"), 5).unwrap();
        assert_eq!(created_path(&applied), "/q0000000000/n-0000000000");
    }

    // Data and ACL versions are int32s that wrap: a node at version 2147483647 accepts
    // that expected version and moves to -2147483648.
    #[test]
    fn versions_wrap() {
        let mut tree = DataTree::new(TreeConfig::default());
        run(&mut tree, seq_create("/v"), 1).unwrap();
        let node = tree.nodes.get_mut("/v0000000000").unwrap();
        node.version = i32::MAX;
        node.aversion = i32::MAX;
        let set = Op::SetData(SetDataOp {
            path: "/v0000000000".into(),
            data: None,
            version: i32::MAX,
        });
        run(&mut tree, set, 2).unwrap();
        let acl = Op::SetAcl(SetAclOp {
            path: "/v0000000000".into(),
            acl: Acl::open_unsafe(),
            version: i32::MAX,
        });
        run(&mut tree, acl, 3).unwrap();
        let stat = tree.node("/v0000000000").unwrap().stat();
        assert_eq!((stat.version, stat.aversion), (i32::MIN, i32::MIN));
    }

    // assert_invariants passes on a fresh tree and catches an orphan node, a node missing
    // from its parent's list and a stale ephemeral index.
    #[test]
    fn invariants_are_checked() {
        let tree = DataTree::new(TreeConfig::default());
        tree.assert_invariants();
        let orphan = Znode::new(None, Acl::open_unsafe(), NodeKind::Persistent, Zxid(1), 0);
        let mut broken = tree.clone();
        broken.nodes.insert("/nowhere/x".into(), orphan.clone());
        let caught = std::panic::catch_unwind(|| broken.assert_invariants());
        assert!(caught.is_err());
        let mut unlisted = tree.clone();
        unlisted.nodes.insert("/x".into(), orphan);
        assert!(std::panic::catch_unwind(|| unlisted.assert_invariants()).is_err());
        let mut stale = tree;
        stale
            .ephemerals
            .entry(SessionId(3))
            .or_default()
            .insert("/gone".into());
        assert!(std::panic::catch_unwind(|| stale.assert_invariants()).is_err());
    }

    // NODEEXISTS is checked before NOCHILDRENFOREPHEMERALS (zk-protocol.md §6 steps 10
    // and 11). A child under an ephemeral cannot be made through the API, so the state is
    // built by hand.
    #[test]
    fn node_exists_before_ephemeral_parent() {
        let mut tree = DataTree::new(TreeConfig::default());
        let create = |path: &str, flags: i32| {
            Op::Create(CreateOp {
                opcode: CreateOpcode::Create,
                path: path.into(),
                data: None,
                acl: Acl::open_unsafe(),
                flags,
            })
        };
        run(&mut tree, create("/e", 1), 1).unwrap();
        let child = Znode::new(None, Acl::open_unsafe(), NodeKind::Persistent, Zxid(2), 0);
        tree.nodes.insert("/e/c".into(), child);
        tree.nodes
            .get_mut("/e")
            .unwrap()
            .children
            .insert("c".into());
        assert_eq!(
            run(&mut tree, create("/e/c", 0), 3).err(),
            Some(ZkError::NodeExists)
        );
        assert_eq!(
            run(&mut tree, create("/e/d", 0), 3).err(),
            Some(ZkError::NoChildrenForEphemerals)
        );
    }

    // A close-session txn for a session whose indexed ephemeral vanished (a state the
    // invariants forbid, e.g. a damaged snapshot) skips it instead of panicking.
    #[test]
    fn close_session_tolerates_missing_nodes() {
        let mut tree = DataTree::new(TreeConfig::default());
        tree.ephemerals
            .entry(SessionId(1))
            .or_default()
            .insert("/ghost".into());
        let txn = tree
            .prepare(
                &Op::CloseSession {
                    session: SessionId(1),
                },
                &ctx(1),
            )
            .unwrap();
        let applied = tree.apply(&txn);
        assert!(applied.closed_ephemerals.is_empty());
        assert!(tree.ephemerals.is_empty());
    }

    // A fresh /zookeeper/config shows aversion -1 (ZooKeeper sets its ACL with version -1,
    // seen on a real 3.8.0 server: zk38_semantics.json step 10); the other reserved nodes
    // keep 0.
    #[test]
    fn config_node_aversion() {
        let tree = DataTree::new(TreeConfig::default());
        assert_eq!(tree.node(CONFIG_PATH).unwrap().stat().aversion, -1);
        for path in ["/", ZOOKEEPER_PATH, QUOTA_PATH] {
            assert_eq!(tree.node(path).unwrap().stat().aversion, 0, "{path}");
        }
    }

    // FNV-1a matches its published test vectors (empty input, "a"), so the digest algorithm
    // is the standard one and stable across builds.
    #[test]
    fn fnv_vectors() {
        let empty = Fnv1a::new();
        assert_eq!(empty.finish(), 0xcbf2_9ce4_8422_2325);
        let mut a = Fnv1a::new();
        a.raw(b"a");
        assert_eq!(a.finish(), 0xaf63_dc4c_8601_ec8c);
    }
}
