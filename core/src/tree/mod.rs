//! The znode data tree with ZooKeeper 3.8 semantics (`DataTree`; docs/protocol.md): nodes
//! in their stored form, reads with ACL checks, writes in two stages (`prepare` checks an
//! [`Op`] and fixes it into a [`Txn`]; `apply` runs the txn and cannot fail for a prepared
//! one), the per-session ephemeral index, container/TTL reaping candidates and a state
//! digest.
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
mod persisted;
mod prepare;
mod txn;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::acl::{self, Acl, Id, perms};
use crate::error::ZkError;
use crate::ids::{SessionId, Zxid};
use crate::stat::Stat;
use crate::work;

use node::Nodes;

/// Units of work a write touches by definition (docs/consensus.md, Work budget): its node,
/// its parent, the check of each, and room for the ACL and sequence lookups.
pub(crate) const TOUCHED_PER_WRITE: u64 = 8;
pub use node::{NodeKind, Znode};
pub use path::{
    CONFIG_PATH, QUOTA_PATH, ZOOKEEPER_PATH, is_special, sequence_suffix, validate as validate_path,
};
pub use persisted::PersistedZnode;
pub use prepare::TTL_MS_MAX;
pub use txn::{
    Applied, CheckOp, CreateOp, CreateOpcode, CreateTxn, DeleteOp, MultiOp, Op, OpContext,
    OpResult, SetAclOp, SetDataOp, Txn, TxnKind, TxnOp,
};

/// What the tree needs to know of the server's configuration. Not state: never
/// serialised (a snapshot holds none of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeConfig {
    /// Whether TTL creates are allowed. Default `true` (Paddock enables TTL nodes; with
    /// `false`, TTL creates give UNIMPLEMENTED as in ZooKeeper's default).
    pub ttl_enabled: bool,
    /// The super user's digest id (`super:<base64 sha1>`), if any; authenticating with it
    /// grants `super`. Default `None`.
    pub super_digest: Option<String>,
    /// ZooKeeper's `skipACL=yes`: no ACL is checked, for any operation or watch event.
    /// Default `false`.
    pub skip_acl: bool,
    /// The planted bug, if any (tests of the checkers only).
    #[cfg(feature = "planted-bugs")]
    pub bug: Option<crate::bugs::Bug>,
}

impl Default for TreeConfig {
    fn default() -> TreeConfig {
        TreeConfig {
            ttl_enabled: true,
            super_digest: None,
            skip_acl: false,
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

impl ReadResult {
    /// Bytes this result takes in a multi reply: its header (type, done flag, error: 9
    /// bytes) and its body (data with its length and a 68-byte Stat, or each child name
    /// with its length and the list's count, or an error code).
    pub fn wire_bytes(&self) -> usize {
        const HEADER: usize = 9;
        HEADER
            + match self {
                ReadResult::Data(data, _) => 4 + data.as_ref().map_or(0, Vec::len) + 68,
                ReadResult::Children(children) => {
                    4 + children.iter().map(|c| 4 + c.len()).sum::<usize>()
                }
                ReadResult::Error(_) => 4,
            }
    }
}

/// Each session's ephemeral paths (a persistent map, copied in O(1) with the tree).
pub type Ephemerals = imbl::OrdMap<SessionId, imbl::OrdSet<String>>;

/// The znode tree. Cloning it is O(1): its maps are persistent and share what neither copy
/// changed, so a snapshot or the leader's prepared state is a clone, not a copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TreeRepr")]
pub struct DataTree {
    nodes: Nodes,
    /// Derived from the nodes' kinds when a snapshot is loaded.
    #[serde(skip)]
    ephemerals: Ephemerals,
    last_zxid: Zxid,
    /// Configuration is not state: it is not snapshotted or digested.
    #[serde(skip)]
    config: TreeConfig,
    /// Largest znode data create and setData accept, in bytes
    /// ([`crate::limits::Limits::znode_data_bytes_max`], set with
    /// [`DataTree::set_data_bytes_max`]); larger gives BADARGUMENTS.
    #[serde(skip)]
    data_bytes_max: u32,
}

/// A tree as a snapshot holds it: the nodes in path order and the last zxid.
#[derive(Deserialize)]
struct TreeRepr {
    nodes: Nodes,
    last_zxid: Zxid,
}

impl TryFrom<TreeRepr> for DataTree {
    type Error = String;

    /// Rebuilds the ephemeral index and checks what the node map's own loading cannot:
    /// the root is there and no ephemeral has children.
    fn try_from(repr: TreeRepr) -> Result<DataTree, String> {
        if !repr.nodes.contains("/") {
            return Err("snapshot has no root node".to_owned());
        }
        let mut ephemerals = Ephemerals::new();
        for (path, node) in repr.nodes.iter() {
            if let NodeKind::Ephemeral(session) = node.kind {
                if node.child_count != 0 {
                    return Err(format!("snapshot ephemeral {path:?} has children"));
                }
                ephemerals
                    .entry(session)
                    .or_default()
                    .insert(path.to_owned());
            }
        }
        Ok(DataTree {
            nodes: repr.nodes,
            ephemerals,
            last_zxid: repr.last_zxid,
            config: TreeConfig::default(),
            data_bytes_max: crate::limits::ZNODE_DATA_BYTES_MAX_DEFAULT,
        })
    }
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
        let mut nodes = Nodes::default();
        let mut root = reserved(Acl::open_unsafe());
        root.child_count = 1;
        let mut zookeeper = reserved(Acl::open_unsafe());
        zookeeper.child_count = 2;
        nodes.insert("/", root);
        nodes.insert(ZOOKEEPER_PATH, zookeeper);
        nodes.insert(QUOTA_PATH, reserved(Acl::open_unsafe()));
        let mut config_node = reserved(Acl::read_unsafe());
        config_node.aversion = -1;
        nodes.insert(CONFIG_PATH, config_node);
        DataTree {
            nodes,
            ephemerals: Ephemerals::new(),
            last_zxid: Zxid::ZERO,
            config,
            data_bytes_max: crate::limits::ZNODE_DATA_BYTES_MAX_DEFAULT,
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

    /// Sets the largest znode data create and setData accept, in bytes (a node sets its
    /// `Limits::znode_data_bytes_max`; default [`crate::limits::ZNODE_DATA_BYTES_MAX_DEFAULT`]).
    /// Like the configuration, it is not state: a snapshot does not hold it.
    pub fn set_data_bytes_max(&mut self, data_bytes_max: u32) {
        self.data_bytes_max = data_bytes_max;
    }

    /// The zxid of the last applied txn (zero for a fresh tree).
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// The node at `path`, without ACL checks (for the server's own use: watches, 4lw).
    pub fn node(&self, path: &str) -> Option<&Znode> {
        self.nodes.node(path)
    }

    /// The number of znodes, the root and the reserved nodes included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node at `path` if the caller holds one of the `wanted` permissions on it.
    fn readable(&self, path: &str, ids: &[Id], wanted: i32) -> Result<&Znode, ZkError> {
        work::touch(2);
        let node = self.nodes.node(path).ok_or(ZkError::NoNode)?;
        if !self.config.skip_acl {
            acl::check(&node.acl, ids, wanted)?;
        }
        Ok(node)
    }

    /// getData: the data (`None` is null) and Stat. NONODE, NOAUTH (READ).
    pub fn get_data(&self, path: &str, ids: &[Id]) -> Result<(Option<Vec<u8>>, Stat), ZkError> {
        let node = self.readable(path, ids, perms::READ)?;
        Ok((node.data.as_deref().map(<[u8]>::to_vec), node.stat()))
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
        self.readable(path, ids, perms::READ)?;
        let names = self.nodes.children(path);
        work::touch(names.len() as u64);
        Ok(names)
    }

    /// The sorted child names of the node at `path` (none if it is absent), without ACL
    /// checks (for the server's own use).
    pub fn children(&self, path: &str) -> Vec<String> {
        self.nodes.children(path)
    }

    /// getChildren2: the sorted child names and the Stat. NONODE, NOAUTH (READ).
    pub fn get_children2(&self, path: &str, ids: &[Id]) -> Result<(Vec<String>, Stat), ZkError> {
        let node = self.readable(path, ids, perms::READ)?;
        let names = self.nodes.children(path);
        work::touch(names.len() as u64);
        Ok((names, node.stat()))
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
            .iter_from(&prefix)
            .take_while(|(descendant, _)| descendant.starts_with(&prefix))
            .filter(|(descendant, _)| *descendant != "/")
            .count();
        work::touch(count as u64 + 1);
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
    pub fn ephemerals(&self) -> &Ephemerals {
        &self.ephemerals
    }

    /// getACL: the ACL and Stat. NONODE, NOAUTH (needs READ or ADMIN); without ADMIN the
    /// digest ids come back masked as `user:x`.
    pub fn get_acl(&self, path: &str, ids: &[Id]) -> Result<(Vec<Acl>, Stat), ZkError> {
        let node = self.readable(path, ids, perms::READ | perms::ADMIN)?;
        let acl = if self.config.skip_acl || acl::check(&node.acl, ids, perms::ADMIN).is_ok() {
            node.acl.to_vec()
        } else {
            acl::mask_digests(&node.acl)
        };
        Ok((acl, node.stat()))
    }

    /// multiRead: each read runs on its own; a failure becomes an error entry and later
    /// reads still run.
    pub fn multi_read(&self, ops: &[ReadOp], ids: &[Id]) -> Vec<ReadResult> {
        ops.iter().map(|op| self.read_one(op, ids)).collect()
    }

    /// [`DataTree::multi_read`] with its answer bounded: once the results would take more
    /// than `bytes_max` bytes on the wire (each result's own bytes and framing, counted
    /// as they are gathered), the reads stop and the whole request fails with
    /// MARSHALLINGERROR. One request of a few bytes naming the same large znode a
    /// thousand times would otherwise make the server build a reply of gigabytes that no
    /// client accepts (they read frames up to `jute.maxbuffer`).
    pub fn multi_read_within(
        &self,
        ops: &[ReadOp],
        ids: &[Id],
        bytes_max: usize,
    ) -> Result<Vec<ReadResult>, ZkError> {
        let mut results = Vec::with_capacity(ops.len().min(1024));
        let mut bytes = 0usize;
        for op in ops {
            let result = self.read_one(op, ids);
            bytes = bytes.saturating_add(result.wire_bytes());
            if bytes > bytes_max {
                return Err(ZkError::MarshallingError);
            }
            results.push(result);
        }
        Ok(results)
    }

    fn read_one(&self, op: &ReadOp, ids: &[Id]) -> ReadResult {
        match op {
            ReadOp::GetData(path) => match self.get_data(path, ids) {
                Ok((data, stat)) => ReadResult::Data(data, stat),
                Err(code) => ReadResult::Error(code),
            },
            ReadOp::GetChildren(path) => match self.get_children(path, ids) {
                Ok(children) => ReadResult::Children(children),
                Err(code) => ReadResult::Error(code),
            },
        }
    }

    /// Checks a write against the current state and fixes it into a txn carrying the
    /// context's zxid, time and session. Errors are the codes of docs/protocol.md, Error
    /// codes, in ZooKeeper's check order. A multi whose op fails still gives `Ok`: a
    /// `MultiFailed` txn with the per-op codes (only whole-request failures are `Err`).
    pub fn prepare(&self, op: &Op, ctx: &OpContext) -> Result<Txn, ZkError> {
        // skipACL: the caller passes every check as the super user does (which adds
        // nothing to the ACLs an `auth` entry is fixed up to).
        let skipping;
        let ctx = if self.config.skip_acl {
            let mut with_super = ctx.clone();
            with_super.ids.push(Id::new("super", ""));
            skipping = with_super;
            &skipping
        } else {
            ctx
        };
        work::touch(match op {
            Op::Multi(ops) => TOUCHED_PER_WRITE * (1 + ops.len() as u64),
            _ => TOUCHED_PER_WRITE,
        });
        let kind = match op {
            Op::Create(create) => TxnKind::Single(TxnOp::Create(prepare::create(
                &self.nodes,
                (&self.config, self.data_bytes_max),
                create,
                ctx,
            )?)),
            Op::Delete(delete) => TxnKind::Single(prepare::delete(&self.nodes, delete, ctx)?),
            Op::SetData(set) => TxnKind::Single(prepare::set_data(
                &self.nodes,
                self.data_bytes_max,
                set,
                ctx,
            )?),
            Op::SetAcl(set) => TxnKind::Single(prepare::set_acl(&self.nodes, set, ctx)?),
            Op::Check(_) => return Err(ZkError::Unimplemented),
            Op::Multi(ops) => {
                prepare::multi(&self.nodes, (&self.config, self.data_bytes_max), ops, ctx)?
            }
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
        work::background(|| self.deletion_candidates_scan(now_ms))
    }

    fn deletion_candidates_scan(&self, now_ms: i64) -> Vec<String> {
        self.nodes
            .reapable()
            .filter(|(_, node)| node.child_count == 0)
            .filter(|(_, node)| match node.kind {
                NodeKind::Container => node.cversion_stored > 0,
                NodeKind::Ttl { ttl_ms } => now_ms.saturating_sub(node.mtime_ms) > ttl_ms,
                NodeKind::Persistent | NodeKind::Ephemeral(_) => false,
            })
            .map(|(path, _)| path.to_owned())
            .collect()
    }

    /// Checks the tree's structural invariants and panics naming the first broken one:
    /// every node but the root has its parent; every node's child count is the number of
    /// nodes one segment below it; ephemerals have no children; the ephemeral index holds
    /// exactly the plain ephemerals under their owners, with no empty entry; the reaper's
    /// index holds exactly the container and TTL nodes. O(nodes); meant for tests and the
    /// simulator's expensive cross-checks, not for every apply.
    pub fn assert_invariants(&self) {
        work::uncounted(|| self.assert_invariants_now());
    }

    fn assert_invariants_now(&self) {
        assert!(self.nodes.contains("/"), "the root is missing");
        let mut indexed = Ephemerals::new();
        let mut counted: BTreeMap<&str, u32> = BTreeMap::new();
        for (path, node) in self.nodes.iter() {
            if let NodeKind::Ephemeral(session) = node.kind {
                assert!(node.child_count == 0, "ephemeral {path} has children");
                indexed.entry(session).or_default().insert(path.to_owned());
            }
            if path == "/" {
                continue;
            }
            let parent = path::parent_of(path).expect("stored paths have a parent");
            assert!(self.nodes.contains(parent), "{path} has no parent {parent}");
            *counted.entry(parent).or_default() += 1;
        }
        for (path, node) in self.nodes.iter() {
            let children = counted.get(path).copied().unwrap_or(0);
            assert_eq!(
                node.child_count, children,
                "{path} counts its children wrong"
            );
            assert_eq!(
                self.nodes.children(path).len(),
                children as usize,
                "{path} lists its children wrong"
            );
        }
        assert_eq!(
            indexed, self.ephemerals,
            "the ephemeral index differs from the nodes"
        );
        let reapable: Vec<&str> = self.nodes.reapable().map(|(path, _)| path).collect();
        let kinds: Vec<&str> = self
            .nodes
            .iter()
            .filter(|(_, node)| matches!(node.kind, NodeKind::Container | NodeKind::Ttl { .. }))
            .map(|(path, _)| path)
            .collect();
        assert_eq!(reapable, kinds, "the reaper's index differs from the nodes");
    }

    /// A digest of the whole state (last zxid; every node's path, data, kind, stored stat,
    /// ACL; every session's ephemerals): 64-bit FNV-1a over a canonical, length-prefixed
    /// traversal in path order, so equal states give equal digests on every server.
    pub fn digest(&self) -> u64 {
        work::background(|| self.digest_now())
    }

    fn digest_now(&self) -> u64 {
        let mut hash = Fnv1a::new();
        hash.u64(self.last_zxid.0);
        hash.u64(self.nodes.len() as u64);
        for (path, node) in self.nodes.iter() {
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
            for entry in node.acl.iter() {
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

    // skipACL (ZooKeeper's `zookeeper.skipACL=yes`): a caller with no right on a node
    // reads, changes and creates under it, and sees its ACL unmasked; an `auth` ACL is
    // still fixed up to the caller's own ids only. Without it, the same calls are NOAUTH.
    #[test]
    fn skip_acl_checks_nothing() {
        let locked = vec![Acl {
            perms: perms::ALL,
            id: Id::new("digest", &acl::digest_id("owner", "pw")),
        }];
        for skip_acl in [false, true] {
            let mut tree = DataTree::new(TreeConfig {
                skip_acl,
                ..TreeConfig::default()
            });
            let create = |path: &str, acl: Vec<Acl>| {
                Op::Create(CreateOp {
                    opcode: CreateOpcode::Create,
                    path: path.into(),
                    data: Some(b"x".to_vec()),
                    acl,
                    flags: 0,
                })
            };
            run(&mut tree, create("/locked", locked.clone()), 1).unwrap();
            let ids = ctx(0).ids;
            let set = Op::SetData(SetDataOp {
                path: "/locked".into(),
                data: None,
                version: -1,
            });
            let child = create("/locked/child", Acl::open_unsafe());
            let results = [
                tree.get_data("/locked", &ids).map(|_| ()),
                run(&mut tree, set, 2).map(|_| ()),
                run(&mut tree, child, 3).map(|_| ()),
            ];
            let acl = tree.get_acl("/locked", &ids).map(|(acl, _)| acl);
            if skip_acl {
                assert_eq!(results, [Ok(()), Ok(()), Ok(())]);
                assert_eq!(acl, Ok(locked.clone()), "unmasked");
                let auth = vec![Acl {
                    perms: perms::ALL,
                    id: Id::new("auth", ""),
                }];
                let mut digest_ctx = ctx(4);
                digest_ctx.ids.push(Id::new("digest", "me:x"));
                let txn = tree.prepare(&create("/mine", auth), &digest_ctx).unwrap();
                tree.apply(&txn);
                let (fixed, _) = tree.get_acl("/mine", &ids).unwrap();
                assert_eq!(
                    fixed,
                    vec![Acl {
                        perms: perms::ALL,
                        id: Id::new("digest", "me:x")
                    }]
                );
            } else {
                let noauth = Err(ZkError::NoAuth);
                assert_eq!(results, [noauth; 3]);
                assert_eq!(acl, Err(ZkError::NoAuth));
            }
        }
    }

    // The sequence counter is a signed int32: after 2147483647 it wraps to -2147483648,
    // and %010d keeps the sign inside the width (-1 → -000000001). The visible cversion
    // wraps too, without panicking.
    #[test]
    fn sequence_wraps_like_java() {
        let mut tree = DataTree::new(TreeConfig::default());
        run(&mut tree, seq_create("/q"), 1).unwrap();
        tree.nodes.node_mut("/q0000000000").unwrap().cversion_stored = i32::MAX;
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
        tree.nodes.node_mut("/q0000000000").unwrap().cversion_stored = -1;
        let applied = run(&mut tree, seq_create("/q0000000000/n-"), 4).unwrap();
        assert_eq!(created_path(&applied), "/q0000000000/n--000000001");
        let applied = run(&mut tree, seq_create("/q0000000000/n-"), 5).unwrap();
        assert_eq!(created_path(&applied), "/q0000000000/n-0000000000");
    }

    // A create txn applied a second time (a txn that does not fit this state) finds its
    // node already there: it answers SYSTEMERROR and changes nothing, neither the node,
    // nor the parent's counts, nor the reaper's candidates (the second is a container).
    #[test]
    fn create_over_an_existing_node_changes_nothing() {
        let mut tree = DataTree::new(TreeConfig::default());
        let plain = Op::Create(CreateOp {
            opcode: CreateOpcode::Create,
            path: "/c".into(),
            data: Some(b"first".to_vec()),
            acl: Acl::open_unsafe(),
            flags: 0,
        });
        let txn = tree.prepare(&plain, &ctx(1)).unwrap();
        tree.apply(&txn);
        let container = Op::Create(CreateOp {
            opcode: CreateOpcode::CreateContainer,
            path: "/c".into(),
            data: Some(b"second".to_vec()),
            acl: Acl::open_unsafe(),
            flags: 0,
        });
        // Prepared on an empty copy, applied here: the node is already there.
        let txn = DataTree::new(TreeConfig::default())
            .prepare(&container, &ctx(2))
            .unwrap();
        let before = tree.clone();
        let reapable_before: Vec<String> = tree
            .nodes
            .reapable()
            .map(|(path, _)| path.to_owned())
            .collect();
        let applied = tree.apply(&txn);
        assert_eq!(applied.results, vec![OpResult::Error(ZkError::SystemError)]);
        assert!(applied.changes.is_empty());
        assert!(tree.nodes == before.nodes, "the node map changed");
        assert_eq!(
            tree.node("/").unwrap().stat(),
            before.node("/").unwrap().stat()
        );
        let reapable: Vec<String> = tree
            .nodes
            .reapable()
            .map(|(path, _)| path.to_owned())
            .collect();
        assert_eq!(reapable, reapable_before);
        assert_eq!(tree.node("/c").unwrap().data(), Some(&b"first"[..]));
    }

    // Data and ACL versions are int32s that wrap: a node at version 2147483647 accepts
    // that expected version and moves to -2147483648.
    #[test]
    fn versions_wrap() {
        let mut tree = DataTree::new(TreeConfig::default());
        run(&mut tree, seq_create("/v"), 1).unwrap();
        let node = tree.nodes.node_mut("/v0000000000").unwrap();
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
        broken.nodes.insert("/nowhere/x", orphan.clone());
        let caught = std::panic::catch_unwind(|| broken.assert_invariants());
        assert!(caught.is_err());
        let mut uncounted = tree.clone();
        uncounted.nodes.insert("/x", orphan);
        assert!(std::panic::catch_unwind(|| uncounted.assert_invariants()).is_err());
        let mut container = tree.clone();
        let mut node = Znode::new(None, Acl::open_unsafe(), NodeKind::Container, Zxid(1), 0);
        node.child_count = 0;
        container.nodes.insert("/c", node);
        container.nodes.node_mut("/").unwrap().child_count += 1;
        container.assert_invariants();
        container.nodes.remove("/c");
        container.nodes.node_mut("/").unwrap().child_count -= 1;
        container.assert_invariants();
        let mut stale = tree;
        stale
            .ephemerals
            .entry(SessionId(3))
            .or_default()
            .insert("/gone".into());
        assert!(std::panic::catch_unwind(|| stale.assert_invariants()).is_err());
    }

    // NODEEXISTS is checked before NOCHILDRENFOREPHEMERALS (docs/protocol.md, Create, steps
    // 12 and 13). A child under an ephemeral cannot be made through the API, so the state is
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
        tree.nodes.insert("/e/c", child);
        tree.nodes.node_mut("/e").unwrap().child_count += 1;
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
            .insert("/ghost".to_owned());
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
