//! A small, obviously correct reference model of the znode tree for `tree_ops`: a map
//! from full path to a plain record, with children found by scanning the map, and every
//! rule written out once, straight from docs/protocol.md (Stat to Multi: check order,
//! versions, cversion = child creates + child deletes, sequence numbers from the count of
//! child creates, pzxid, ephemerals, multi all-or-nothing). It has no overlay, no indexes
//! and no stored/visible split: a multi runs on a copy of the whole map.
//!
//! Scope: callers without authentication (ACL entries are `world:anyone` only), live
//! sessions, valid paths plus a trailing-slash form; containers and TTL nodes are created
//! but never reaped.

use std::collections::BTreeMap;

use paddock_core::acl::Acl;
use paddock_core::error::ZkError;
use paddock_core::stat::Stat;

/// Permission bits, as ZooDefs.Perms.
const READ: i32 = 1;
const WRITE: i32 = 2;
const CREATE: i32 = 4;
const DELETE: i32 = 8;
const ADMIN: i32 = 16;

/// The largest TTL accepted, ms (2^40 - 1).
const TTL_MS_MAX: i64 = 0xFF_FFFF_FFFF;

/// One znode of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelNode {
    /// The data; `None` is null.
    pub data: Option<Vec<u8>>,
    /// The ACL as stored.
    pub acl: Vec<Acl>,
    /// The owning session of a plain ephemeral.
    pub ephemeral_owner: Option<i64>,
    /// Creation zxid and time.
    pub czxid: i64,
    /// Creation time, ms.
    pub ctime_ms: i64,
    /// Last setData zxid (or creation).
    pub mzxid: i64,
    /// Last setData time, ms.
    pub mtime_ms: i64,
    /// setData count.
    pub version: i32,
    /// setACL count.
    pub aversion: i32,
    /// Children created under this node, ever.
    pub child_creates: i32,
    /// Children deleted from under this node, ever.
    pub child_deletes: i32,
    /// Zxid of the last child create or delete (creation zxid before any).
    pub pzxid: i64,
}

/// A create as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCreate {
    /// The requested path (prefix for sequential modes).
    pub path: String,
    /// The data.
    pub data: Option<Vec<u8>>,
    /// The requested ACL.
    pub acl: Vec<Acl>,
    /// CreateMode flags.
    pub flags: i32,
    /// 19 (createContainer): flags must be 4 and the node is a container.
    pub container: bool,
    /// Opcode 21's ttl field; `None` for the other opcodes.
    pub ttl_ms: Option<i64>,
}

/// One model operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelOp {
    /// A create.
    Create(ModelCreate),
    /// delete(path, version).
    Delete(String, i32),
    /// setData(path, data, version).
    SetData(String, Option<Vec<u8>>, i32),
    /// setACL(path, acl, aversion).
    SetAcl(String, Vec<Acl>, i32),
    /// check(path, version).
    Check(String, i32),
}

/// What one op did, in the model's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelResult {
    /// Created at this final path, with this Stat.
    Created(String, Stat),
    /// Deleted.
    Deleted,
    /// Data set; the node's Stat after it.
    DataSet(Stat),
    /// ACL set; the node's Stat after it.
    AclSet(Stat),
    /// Check passed.
    Checked,
}

/// The whole model: every node by full path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The nodes.
    pub nodes: BTreeMap<String, ModelNode>,
}

impl Model {
    /// A model holding only an open persistent `/`; tests create their own subtree under it.
    pub fn new() -> Model {
        let root = ModelNode::new(Some(Vec::new()), Acl::open_unsafe(), None, 0, 0);
        Model {
            nodes: [("/".to_owned(), root)].into_iter().collect(),
        }
    }

    /// The children of `path`: every node whose parent is `path`, by name.
    pub fn children(&self, path: &str) -> Vec<String> {
        self.nodes
            .keys()
            .filter(|candidate| *candidate != "/" && parent(candidate) == Some(path))
            .map(|candidate| name(candidate).to_owned())
            .collect()
    }

    /// The Stat clients would see for `path`.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        let node = self.nodes.get(path)?;
        let data_length = node.data.as_ref().map_or(0, Vec::len);
        Some(Stat {
            czxid: node.czxid,
            mzxid: node.mzxid,
            ctime: node.ctime_ms,
            mtime: node.mtime_ms,
            version: node.version,
            cversion: node.child_creates + node.child_deletes,
            aversion: node.aversion,
            ephemeral_owner: node.ephemeral_owner.unwrap_or(0),
            data_length: i32::try_from(data_length).expect("model data is small"),
            num_children: i32::try_from(self.children(path).len()).expect("few children"),
            pzxid: node.pzxid,
        })
    }

    /// Runs one op at `zxid`/`time_ms` for `session`; on error nothing changes.
    pub fn apply(
        &mut self,
        op: &ModelOp,
        session: i64,
        zxid: i64,
        time_ms: i64,
    ) -> Result<ModelResult, ZkError> {
        match op {
            ModelOp::Create(create) => self.create(create, session, zxid, time_ms),
            ModelOp::Delete(path, version) => self.delete(path, *version, zxid),
            ModelOp::SetData(path, data, version) => {
                self.set_data(path, data, *version, zxid, time_ms)
            }
            ModelOp::SetAcl(path, acl, version) => self.set_acl(path, acl, *version),
            ModelOp::Check(path, version) => {
                valid(path)?;
                let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
                allowed(&node.acl, READ)?;
                expect_version(node.version, *version)?;
                Ok(ModelResult::Checked)
            }
        }
    }

    /// A multi: the ops run one by one on a copy; all succeed and the copy is kept, or the
    /// result is one code per op (Ok before the failure, its code, then
    /// RUNTIMEINCONSISTENCY) and nothing changes.
    pub fn multi(
        &mut self,
        ops: &[ModelOp],
        session: i64,
        zxid: i64,
        time_ms: i64,
    ) -> Result<Vec<ModelResult>, Vec<ZkError>> {
        let mut scratch = self.clone();
        let mut results = Vec::new();
        for (index, op) in ops.iter().enumerate() {
            match scratch.apply(op, session, zxid, time_ms) {
                Ok(result) => results.push(result),
                Err(code) => {
                    let mut codes = vec![ZkError::Ok; index];
                    codes.push(code);
                    codes.resize(ops.len(), ZkError::RuntimeInconsistency);
                    return Err(codes);
                }
            }
        }
        *self = scratch;
        Ok(results)
    }

    /// A session ends: its ephemerals are deleted, in path order; returns their paths.
    pub fn close_session(&mut self, session: i64, zxid: i64) -> Vec<String> {
        let owned: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, node)| node.ephemeral_owner == Some(session))
            .map(|(path, _)| path.clone())
            .collect();
        for path in &owned {
            self.remove(path, zxid);
        }
        owned
    }

    fn create(
        &mut self,
        op: &ModelCreate,
        session: i64,
        zxid: i64,
        time_ms: i64,
    ) -> Result<ModelResult, ZkError> {
        let (ephemeral, sequential, ttl) = match op.flags {
            0 | 4 => (false, false, false),
            1 => (true, false, false),
            2 => (false, true, false),
            3 => (true, true, false),
            5 => (false, false, true),
            6 => (false, true, true),
            _ => return Err(ZkError::BadArguments),
        };
        match (ttl, op.ttl_ms) {
            (true, Some(ms)) if (1..=TTL_MS_MAX).contains(&ms) => {}
            (false, None) => {}
            _ => return Err(ZkError::BadArguments),
        }
        let parent_path = parent(&op.path).ok_or(ZkError::BadArguments)?;
        let acl = fixup(&op.acl)?;
        let parent_node = self.nodes.get(parent_path).ok_or(ZkError::NoNode)?;
        allowed(&parent_node.acl, CREATE)?;
        let path = if sequential {
            format!("{}{:010}", op.path, parent_node.child_creates)
        } else {
            op.path.clone()
        };
        valid(&path)?;
        if self.nodes.contains_key(&path) {
            return Err(ZkError::NodeExists);
        }
        if parent_node.ephemeral_owner.is_some() {
            return Err(ZkError::NoChildrenForEphemerals);
        }
        let parent_node = self.nodes.get_mut(parent_path).expect("looked up above");
        parent_node.child_creates += 1;
        parent_node.pzxid = zxid;
        let owner = (ephemeral && !op.container && op.ttl_ms.is_none()).then_some(session);
        let node = ModelNode::new(op.data.clone(), acl, owner, zxid, time_ms);
        self.nodes.insert(path.clone(), node);
        let stat = self.stat(&path).expect("just inserted");
        Ok(ModelResult::Created(path, stat))
    }

    fn delete(&mut self, path: &str, version: i32, zxid: i64) -> Result<ModelResult, ZkError> {
        let parent_path = parent(path).ok_or(ZkError::BadArguments)?;
        if ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"].contains(&path) {
            return Err(ZkError::BadArguments);
        }
        let parent_node = self.nodes.get(parent_path).ok_or(ZkError::NoNode)?;
        allowed(&parent_node.acl, DELETE)?;
        let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        expect_version(node.version, version)?;
        if !self.children(path).is_empty() {
            return Err(ZkError::NotEmpty);
        }
        self.remove(path, zxid);
        Ok(ModelResult::Deleted)
    }

    fn remove(&mut self, path: &str, zxid: i64) {
        self.nodes.remove(path);
        let parent_path = parent(path).expect("a stored path has a parent");
        let parent_node = self
            .nodes
            .get_mut(parent_path)
            .expect("parents outlive children");
        parent_node.child_deletes += 1;
        parent_node.pzxid = zxid;
    }

    fn set_data(
        &mut self,
        path: &str,
        data: &Option<Vec<u8>>,
        version: i32,
        zxid: i64,
        time_ms: i64,
    ) -> Result<ModelResult, ZkError> {
        valid(path)?;
        let node = self.nodes.get_mut(path).ok_or(ZkError::NoNode)?;
        allowed(&node.acl, WRITE)?;
        expect_version(node.version, version)?;
        node.data = data.clone();
        node.version += 1;
        node.mzxid = zxid;
        node.mtime_ms = time_ms;
        Ok(ModelResult::DataSet(self.stat(path).expect("just changed")))
    }

    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<ModelResult, ZkError> {
        valid(path)?;
        let acl = fixup(acl)?;
        let node = self.nodes.get_mut(path).ok_or(ZkError::NoNode)?;
        allowed(&node.acl, ADMIN)?;
        expect_version(node.aversion, version)?;
        node.acl = acl;
        node.aversion += 1;
        Ok(ModelResult::AclSet(self.stat(path).expect("just changed")))
    }
}

impl Default for Model {
    fn default() -> Model {
        Model::new()
    }
}

impl ModelNode {
    fn new(
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral_owner: Option<i64>,
        zxid: i64,
        time_ms: i64,
    ) -> ModelNode {
        ModelNode {
            data,
            acl,
            ephemeral_owner,
            czxid: zxid,
            ctime_ms: time_ms,
            mzxid: zxid,
            mtime_ms: time_ms,
            version: 0,
            aversion: 0,
            child_creates: 0,
            child_deletes: 0,
            pzxid: zxid,
        }
    }
}

/// Everything before the last `/` (the root for top-level paths); `None` without a `/`.
fn parent(path: &str) -> Option<&str> {
    let slash = path.rfind('/')?;
    Some(if slash == 0 { "/" } else { &path[..slash] })
}

fn name(path: &str) -> &str {
    path.rfind('/').map_or(path, |slash| &path[slash + 1..])
}

/// The model's paths are plain ASCII names, so validity is: absolute, no empty segment
/// (which also refuses a trailing `/`).
fn valid(path: &str) -> Result<(), ZkError> {
    let absolute = path.starts_with('/');
    let segments_ok = path == "/" || path[1..].split('/').all(|s| !s.is_empty());
    if absolute && segments_ok {
        Ok(())
    } else {
        Err(ZkError::BadArguments)
    }
}

/// Only `world:anyone` entries are used: duplicates collapse, an empty list is refused.
fn fixup(acl: &[Acl]) -> Result<Vec<Acl>, ZkError> {
    let mut unique: Vec<Acl> = Vec::new();
    for entry in acl {
        if !unique.contains(entry) {
            unique.push(entry.clone());
        }
    }
    if unique.is_empty() {
        return Err(ZkError::InvalidAcl);
    }
    Ok(unique)
}

/// An unauthenticated caller may do `wanted` when some `world:anyone` entry grants it
/// (or the ACL is empty).
fn allowed(acl: &[Acl], wanted: i32) -> Result<(), ZkError> {
    if acl.is_empty() || acl.iter().any(|entry| entry.perms & wanted != 0) {
        Ok(())
    } else {
        Err(ZkError::NoAuth)
    }
}

fn expect_version(current: i32, expected: i32) -> Result<(), ZkError> {
    if expected == -1 || expected == current {
        Ok(())
    } else {
        Err(ZkError::BadVersion)
    }
}
