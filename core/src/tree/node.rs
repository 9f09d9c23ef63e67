//! One znode in its stored form, the map interface the write primitives run on, and the
//! primitives themselves (create, delete, setData, setACL of one node).
//!
//! The stored form keeps what ZooKeeper persists (stored cversion = number of child
//! creates, the kind from which the stored ephemeralOwner derives); [`Znode::stat`] derives
//! what clients see (zk-protocol.md §5). The primitives run both on the real node map and
//! on an [`Overlay`] (the state "as changed by earlier ops of the same multi"), so the
//! checks a multi is prepared against and the changes it applies are one code.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::acl::Acl;
use crate::ids::{SessionId, Zxid};
use crate::stat::Stat;

use super::path;

/// What kind of znode this is; fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A plain persistent node (stored ephemeralOwner 0).
    Persistent,
    /// A plain ephemeral node owned by a session; it cannot have children.
    Ephemeral(SessionId),
    /// A container (stored ephemeralOwner `i64::MIN`), reaped once it had a child and has
    /// none.
    Container,
    /// A TTL node (stored ephemeralOwner `0xFF00_0000_0000_0000 | ttl_ms`), reaped when it has
    /// no children and was not modified for longer than `ttl_ms`.
    Ttl {
        /// Time to live after the last setData (or the create), in ms; 1..=2^40-1.
        ttl_ms: i64,
    },
}

/// The top byte that marks a stored ephemeralOwner as a TTL (EphemeralType.TTL).
const TTL_OWNER_MARK: u64 = 0xFF00_0000_0000_0000;

impl NodeKind {
    /// The ephemeralOwner ZooKeeper persists for this kind.
    pub fn ephemeral_owner_stored(self) -> i64 {
        match self {
            NodeKind::Persistent => 0,
            NodeKind::Ephemeral(session) => session.0,
            NodeKind::Container => i64::MIN,
            // The TTL is at most 2^40-1, so it never reaches the mark byte.
            NodeKind::Ttl { ttl_ms } => (TTL_OWNER_MARK | ttl_ms as u64) as i64,
        }
    }

    /// The ephemeralOwner clients see: the session for plain ephemerals, otherwise 0.
    pub fn ephemeral_owner_visible(self) -> i64 {
        match self {
            NodeKind::Ephemeral(session) => session.0,
            _ => 0,
        }
    }
}

/// A znode as stored: data, ACL, kind, stored stat fields and the sorted child names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Znode {
    pub(crate) data: Option<Vec<u8>>,
    pub(crate) acl: Vec<Acl>,
    pub(crate) kind: NodeKind,
    pub(crate) czxid: i64,
    pub(crate) mzxid: i64,
    pub(crate) ctime_ms: i64,
    pub(crate) mtime_ms: i64,
    pub(crate) version: i32,
    /// Number of child creates so far (wrapping i32); sequence numbers come from it.
    pub(crate) cversion_stored: i32,
    pub(crate) aversion: i32,
    pub(crate) pzxid: i64,
    pub(crate) children: BTreeSet<String>,
}

impl Znode {
    /// A node as a create makes it: every zxid the create's, both times its time, versions 0.
    pub(crate) fn new(
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        kind: NodeKind,
        zxid: Zxid,
        time_ms: i64,
    ) -> Znode {
        let zxid = zxid.as_wire();
        Znode {
            data,
            acl,
            kind,
            czxid: zxid,
            mzxid: zxid,
            ctime_ms: time_ms,
            mtime_ms: time_ms,
            version: 0,
            cversion_stored: 0,
            aversion: 0,
            pzxid: zxid,
            children: BTreeSet::new(),
        }
    }

    /// The node's data; `None` is null data (distinct from empty).
    pub fn data(&self) -> Option<&[u8]> {
        self.data.as_deref()
    }

    /// The node's ACL list.
    pub fn acl(&self) -> &[Acl] {
        &self.acl
    }

    /// The node's kind.
    pub fn kind(&self) -> NodeKind {
        self.kind
    }

    /// The sorted names of the node's children.
    pub fn children(&self) -> &BTreeSet<String> {
        &self.children
    }

    /// The stored cversion (number of child creates, wrapping).
    pub fn cversion_stored(&self) -> i32 {
        self.cversion_stored
    }

    /// The number of children as the wire's int32 (saturating; no real tree gets near it).
    pub fn num_children(&self) -> i32 {
        i32::try_from(self.children.len()).unwrap_or(i32::MAX)
    }

    /// The client-visible Stat (DataNode.copyStat): cversion = 2 × stored − numChildren in
    /// wrapping int32 arithmetic, ephemeralOwner 0 for containers and TTL nodes.
    pub fn stat(&self) -> Stat {
        let num_children = self.num_children();
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime_ms,
            mtime: self.mtime_ms,
            version: self.version,
            cversion: self
                .cversion_stored
                .wrapping_mul(2)
                .wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner: self.kind.ephemeral_owner_visible(),
            data_length: self
                .data
                .as_ref()
                .map_or(0, |d| i32::try_from(d.len()).unwrap_or(i32::MAX)),
            num_children,
            pzxid: self.pzxid,
        }
    }
}

/// The node map interface the prepare checks and the write primitives use.
pub(crate) trait NodeStore {
    /// The node at `path`, if any.
    fn node(&self, path: &str) -> Option<&Znode>;
    /// The node at `path` for changing, if any.
    fn node_mut(&mut self, path: &str) -> Option<&mut Znode>;
    /// Puts a node at `path` (replacing nothing: callers checked it is absent).
    fn insert(&mut self, path: String, node: Znode);
    /// Takes the node at `path` out.
    fn remove(&mut self, path: &str) -> Option<Znode>;
}

impl NodeStore for BTreeMap<String, Znode> {
    fn node(&self, path: &str) -> Option<&Znode> {
        self.get(path)
    }
    fn node_mut(&mut self, path: &str) -> Option<&mut Znode> {
        self.get_mut(path)
    }
    fn insert(&mut self, path: String, node: Znode) {
        BTreeMap::insert(self, path, node);
    }
    fn remove(&mut self, path: &str) -> Option<Znode> {
        BTreeMap::remove(self, path)
    }
}

/// A copy-on-write view of a node map: changed nodes live in `changed` (`None` = deleted),
/// everything else is read from `base`. Used to prepare and dry-run multis.
pub(crate) struct Overlay<'a> {
    base: &'a BTreeMap<String, Znode>,
    changed: BTreeMap<String, Option<Znode>>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(base: &'a BTreeMap<String, Znode>) -> Overlay<'a> {
        Overlay {
            base,
            changed: BTreeMap::new(),
        }
    }
}

impl NodeStore for Overlay<'_> {
    fn node(&self, path: &str) -> Option<&Znode> {
        match self.changed.get(path) {
            Some(changed) => changed.as_ref(),
            None => self.base.get(path),
        }
    }
    fn node_mut(&mut self, path: &str) -> Option<&mut Znode> {
        if !self.changed.contains_key(path) {
            let copy = self.base.get(path)?.clone();
            self.changed.insert(path.to_owned(), Some(copy));
        }
        self.changed.get_mut(path).and_then(Option::as_mut)
    }
    fn insert(&mut self, path: String, node: Znode) {
        self.changed.insert(path, Some(node));
    }
    fn remove(&mut self, path: &str) -> Option<Znode> {
        let old = self.node(path).cloned();
        self.changed.insert(path.to_owned(), None);
        old
    }
}

/// Why a primitive could not run: the txn was not prepared against this state. Prepared
/// txns never hit this; it keeps a foreign or replayed-out-of-order txn from panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mismatch;

/// Creates `path` under its existing parent: the parent's stored cversion goes up by one
/// (wrapping) and its pzxid becomes the txn's zxid.
pub(crate) fn create(store: &mut impl NodeStore, path: &str, node: Znode) -> Result<(), Mismatch> {
    let parent_path = path::parent_of(path).ok_or(Mismatch)?;
    if store.node(path).is_some() || parent_path == path {
        return Err(Mismatch);
    }
    let zxid = node.czxid;
    let parent = store.node_mut(parent_path).ok_or(Mismatch)?;
    parent.children.insert(path::name_of(path).to_owned());
    parent.cversion_stored = parent.cversion_stored.wrapping_add(1);
    parent.pzxid = zxid;
    store.insert(path.to_owned(), node);
    Ok(())
}

/// Deletes a childless `path`: the parent loses the child and its pzxid becomes `zxid`;
/// the stored cversion is untouched (deletes show up in the visible cversion only).
pub(crate) fn delete(
    store: &mut impl NodeStore,
    path: &str,
    zxid: Zxid,
) -> Result<Znode, Mismatch> {
    let parent_path = path::parent_of(path).ok_or(Mismatch)?;
    let node = store.node(path).ok_or(Mismatch)?;
    if !node.children.is_empty() || path::is_special(path) {
        return Err(Mismatch);
    }
    let parent = store.node_mut(parent_path).ok_or(Mismatch)?;
    parent.children.remove(path::name_of(path));
    parent.pzxid = zxid.as_wire();
    store.remove(path).ok_or(Mismatch)
}

/// Sets a node's data: version (as prepared), mzxid and mtime change.
pub(crate) fn set_data(
    store: &mut impl NodeStore,
    path: &str,
    data: Option<Vec<u8>>,
    version: i32,
    zxid: Zxid,
    time_ms: i64,
) -> Result<(), Mismatch> {
    let node = store.node_mut(path).ok_or(Mismatch)?;
    node.data = data;
    node.version = version;
    node.mzxid = zxid.as_wire();
    node.mtime_ms = time_ms;
    Ok(())
}

/// Sets a node's ACL and aversion (as prepared); nothing else changes.
pub(crate) fn set_acl(
    store: &mut impl NodeStore,
    path: &str,
    acl: Vec<Acl>,
    aversion: i32,
) -> Result<(), Mismatch> {
    let node = store.node_mut(path).ok_or(Mismatch)?;
    node.acl = acl;
    node.aversion = aversion;
    Ok(())
}
