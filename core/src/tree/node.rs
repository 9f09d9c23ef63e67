//! One znode in its stored form, the node map the write primitives run on, and the
//! primitives themselves (create, delete, setData, setACL of one node).
//!
//! The stored form keeps what ZooKeeper persists (stored cversion = number of child
//! creates, the kind from which the stored ephemeralOwner derives); [`Znode::stat`] derives
//! what clients see (docs/protocol.md, Stat). The primitives run both on the tree's node map and
//! on an O(1) copy of it (the state "as changed by earlier ops of the same multi"), so the
//! checks a multi is prepared against and the changes it applies are one code.

use std::ops::Bound;
use std::sync::Arc;

use arcstr::ArcStr;

use serde::{Deserialize, Serialize};

use crate::acl::Acl;
use crate::ids::{SessionId, Zxid};
use crate::stat::Stat;
use crate::watch::ChangeAcl;
use crate::work;

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

/// A znode as stored: data, ACL, kind, stored stat fields and its number of children.
/// The child names are not stored here: they are the node map's keys under this path
/// (`Nodes::children`). The ACL list is shared ([`Arc`]) by the nodes that have the same
/// one, as most nodes of a tree do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Znode {
    #[serde(with = "crate::bytes::option_boxed")]
    pub(crate) data: Option<Box<[u8]>>,
    #[serde(deserialize_with = "acl_shared")]
    pub(crate) acl: Arc<Vec<Acl>>,
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
    /// Not serialized: recounted from the paths when a snapshot is loaded.
    #[serde(skip)]
    pub(crate) child_count: u32,
}

impl Znode {
    /// A node as a create makes it: every zxid the create's, both times its time, versions 0.
    pub(crate) fn new(
        data: Option<Vec<u8>>,
        acl: impl Into<Arc<Vec<Acl>>>,
        kind: NodeKind,
        zxid: Zxid,
        time_ms: i64,
    ) -> Znode {
        let zxid = zxid.as_wire();
        Znode {
            data: data.map(Vec::into_boxed_slice),
            acl: acl.into(),
            kind,
            czxid: zxid,
            mzxid: zxid,
            ctime_ms: time_ms,
            mtime_ms: time_ms,
            version: 0,
            cversion_stored: 0,
            aversion: 0,
            pzxid: zxid,
            child_count: 0,
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

    /// The number of children.
    pub fn child_count(&self) -> u32 {
        self.child_count
    }

    /// The stored cversion (number of child creates, wrapping).
    pub fn cversion_stored(&self) -> i32 {
        self.cversion_stored
    }

    /// The number of children as the wire's int32 (saturating; no real tree gets near it).
    pub fn num_children(&self) -> i32 {
        i32::try_from(self.child_count).unwrap_or(i32::MAX)
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

/// The node map: every znode by its full path, in a persistent ordered map, so a copy
/// (for a snapshot, the leader's prepared state or a multi's dry run) costs O(1) and
/// shares every node it does not change. Nodes sit behind [`Arc`]s; changing one copies
/// it only while another copy of the map still holds it.
///
/// Also kept here, because they change exactly when nodes come and go: the paths of the
/// container and TTL nodes (the reaper's candidates, without a scan of the tree), and the
/// ACL list of the node created last, which the next create with an equal list shares.
#[derive(Debug, Clone, Default)]
pub(crate) struct Nodes {
    /// Keys are [`ArcStr`]s, shared strings behind a thin pointer: copying a map node on
    /// a change (while another copy of the map shares it) copies pointers, not strings;
    /// the B-tree's branch keys share their leaf key's allocation; and an entry is 16
    /// bytes, not the 32 of `(Arc<str>, Arc<Znode>)`, which halves the B-tree's own
    /// memory (its leaves are about half full: 10^6 znodes, ~37 MB less).
    map: imbl::OrdMap<ArcStr, Arc<Znode>>,
    reapable: imbl::OrdSet<ArcStr>,
    acl_recent: Option<Arc<Vec<Acl>>>,
}

impl PartialEq for Nodes {
    fn eq(&self, other: &Nodes) -> bool {
        self.map == other.map
    }
}

impl Eq for Nodes {}

/// The prefix every child path of `path` starts with.
fn child_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_owned()
    } else {
        format!("{path}/")
    }
}

impl Nodes {
    /// The node at `path`, if any.
    pub(crate) fn node(&self, path: &str) -> Option<&Znode> {
        work::visit(1);
        self.map.get(path).map(|node| &**node)
    }

    /// The node at `path` for changing, if any (copied first if another map shares it).
    pub(crate) fn node_mut(&mut self, path: &str) -> Option<&mut Znode> {
        work::visit(1);
        self.map.get_mut(path).map(Arc::make_mut)
    }

    /// Whether a node is at `path`.
    pub(crate) fn contains(&self, path: &str) -> bool {
        work::visit(1);
        self.map.contains_key(path)
    }

    /// The number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Every node with its path, in path order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Znode)> {
        self.map.iter().map(|(path, node)| {
            work::visit(1);
            (&**path, &**node)
        })
    }

    /// Every node whose path is `prefix` or sorts after it, in path order.
    pub(crate) fn iter_from<'a>(
        &'a self,
        prefix: &str,
    ) -> impl Iterator<Item = (&'a str, &'a Znode)> + 'a {
        self.map
            .range::<_, str>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(path, node)| {
                work::visit(1);
                (&**path, &**node)
            })
    }

    /// The container and TTL nodes' paths, in path order.
    pub(crate) fn reapable(&self) -> impl Iterator<Item = (&str, &Znode)> {
        self.reapable
            .iter()
            .filter_map(|path| self.node(path).map(|node| (&**path, node)))
    }

    /// The names of the children of `path`, sorted. Children are the map's keys that
    /// extend `path` by one segment; the subtree under each child is skipped with one
    /// seek, so this costs O(children × log nodes) whatever the subtree's size.
    pub(crate) fn children(&self, path: &str) -> Vec<String> {
        let Some(node) = self.node(path) else {
            return Vec::new();
        };
        let mut names = Vec::with_capacity(node.child_count as usize);
        if node.child_count == 0 {
            return names;
        }
        let prefix = child_prefix(path);
        let mut seek = String::new();
        let mut range = self
            .map
            .range::<_, str>((Bound::Excluded(prefix.as_str()), Bound::Unbounded));
        while let Some((key, _)) = range.next() {
            work::visit(1);
            let Some(rest) = key.strip_prefix(prefix.as_str()) else {
                break;
            };
            match rest.find('/') {
                None => names.push(rest.to_owned()),
                Some(slash) => {
                    // A descendant of the child `rest[..slash]` (listed already: it sorts
                    // before its subtree): jump past the subtree, whose paths all sort
                    // below `child` + '0' ('/' + 1).
                    seek.clear();
                    seek.push_str(&key[..prefix.len() + slash]);
                    seek.push('0');
                    range = self
                        .map
                        .range::<_, str>((Bound::Included(seek.as_str()), Bound::Unbounded));
                }
            }
        }
        names
    }

    /// The ACL list the previous insert stored, when it equals `acl`: a create with the
    /// same list shares it instead of copying `acl`'s strings.
    pub(crate) fn acl_recent_equal(&self, acl: &[Acl]) -> Option<Arc<Vec<Acl>>> {
        self.acl_recent
            .as_ref()
            .filter(|recent| ***recent == *acl)
            .map(Arc::clone)
    }

    /// Puts a node at `path` (replacing nothing: callers checked it is absent). Its ACL
    /// list is shared with the previous insert's or its parent's when equal (the parent
    /// is looked up only when the previous insert's differs).
    pub(crate) fn insert(&mut self, path: &str, node: Znode) {
        let _ = self.insert_key(ArcStr::from(path), node, None);
    }

    /// [`Nodes::insert`] with the path already in its shared form, and the parent's ACL
    /// when the caller has it at hand (else it is looked up when needed); returns the ACL
    /// list the node now holds and the node it replaced (none when callers checked).
    fn insert_key(
        &mut self,
        key: ArcStr,
        mut node: Znode,
        parent_acl: Option<&Arc<Vec<Acl>>>,
    ) -> (Arc<Vec<Acl>>, Option<Arc<Znode>>) {
        let recent = self
            .acl_recent
            .as_ref()
            .filter(|recent| Arc::ptr_eq(recent, &node.acl) || ***recent == *node.acl);
        let shared = match recent {
            Some(recent) => Some(Arc::clone(recent)),
            None => match parent_acl {
                Some(acl) => Some(Arc::clone(acl)),
                None => path::parent_of(&key)
                    .and_then(|parent| self.node(parent))
                    .map(|parent| Arc::clone(&parent.acl)),
            }
            .filter(|acl| **acl == *node.acl),
        };
        if let Some(shared) = shared {
            node.acl = shared;
        }
        self.acl_recent = Some(Arc::clone(&node.acl));
        let acl = Arc::clone(&node.acl);
        if matches!(node.kind, NodeKind::Container | NodeKind::Ttl { .. }) {
            self.reapable.insert(key.clone());
        }
        work::visit(1);
        let replaced = self.map.insert(key, Arc::new(node));
        (acl, replaced)
    }

    /// Takes the node at `path` out.
    pub(crate) fn remove(&mut self, path: &str) -> Option<Arc<Znode>> {
        work::visit(1);
        let node = self.map.remove(path)?;
        if matches!(node.kind, NodeKind::Container | NodeKind::Ttl { .. }) {
            self.reapable.remove(path);
        }
        Some(node)
    }
}

/// An ACL entry as a snapshot holds it, its strings borrowed from the input when the
/// decoder lends them.
#[derive(Deserialize)]
struct AclRef<'a> {
    perms: i32,
    #[serde(borrow)]
    id: IdRef<'a>,
}

/// An identity as a snapshot holds it (see [`AclRef`]).
#[derive(Deserialize)]
struct IdRef<'a> {
    #[serde(borrow)]
    scheme: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
}

impl AclRef<'_> {
    fn matches(&self, acl: &Acl) -> bool {
        self.perms == acl.perms && *self.id.scheme == *acl.id.scheme && *self.id.id == *acl.id.id
    }

    fn to_acl(&self) -> Acl {
        Acl {
            perms: self.perms,
            id: crate::acl::Id::new(&self.id.scheme, &self.id.id),
        }
    }
}

thread_local! {
    /// The ACL list the last znode decoded on this thread had: consecutive znodes of a
    /// snapshot mostly have the same one, and then share it without allocating (four
    /// allocations per znode otherwise, a tenth of the time a snapshot takes to load).
    /// Only a cache: a list is shared only when every entry is equal.
    static ACL_RECENT: std::cell::RefCell<Option<Arc<Vec<Acl>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decodes a znode's ACL list, sharing the previous znode's when it is equal.
fn acl_shared<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Arc<Vec<Acl>>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Arc<Vec<Acl>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an ACL list")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Arc<Vec<Acl>>, A::Error> {
            let recent = ACL_RECENT.with(|recent| recent.borrow().clone());
            let mut matched = 0usize;
            let mut owned: Option<Vec<Acl>> = None;
            while let Some(entry) = seq.next_element::<AclRef<'de>>()? {
                if let Some(owned) = owned.as_mut() {
                    owned.push(entry.to_acl());
                    continue;
                }
                let same = recent
                    .as_ref()
                    .and_then(|recent| recent.get(matched))
                    .is_some_and(|acl| entry.matches(acl));
                if same {
                    matched += 1;
                } else {
                    let mut list: Vec<Acl> = recent
                        .as_ref()
                        .and_then(|recent| recent.get(..matched))
                        .map(<[Acl]>::to_vec)
                        .unwrap_or_default();
                    list.push(entry.to_acl());
                    owned = Some(list);
                }
            }
            let shared = match (owned, recent) {
                (None, Some(recent)) if recent.len() == matched => return Ok(recent),
                (None, recent) => Arc::new(
                    recent
                        .as_ref()
                        .and_then(|recent| recent.get(..matched))
                        .map(<[Acl]>::to_vec)
                        .unwrap_or_default(),
                ),
                (Some(owned), _) => Arc::new(owned),
            };
            ACL_RECENT.with(|recent| *recent.borrow_mut() = Some(Arc::clone(&shared)));
            Ok(shared)
        }
    }
    deserializer.deserialize_seq(Visitor)
}

/// A path read from a snapshot straight into its shared form (no intermediate
/// `String`): borrowed from the input when the decoder lends it.
struct PathKey(ArcStr);

impl<'de> Deserialize<'de> for PathKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PathKey, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PathKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a znode path")
            }
            fn visit_str<E: serde::de::Error>(self, path: &str) -> Result<PathKey, E> {
                Ok(PathKey(ArcStr::from(path)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// A node map loaded from a snapshot: the nodes in path order (so every parent comes
/// before its children), each checked to have its parent and counted as its child.
impl<'de> Deserialize<'de> for Nodes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Nodes, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Nodes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence of (path, znode) in path order")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Nodes, A::Error> {
                use serde::de::Error;
                let mut builder = NodesBuilder::default();
                while let Some((PathKey(path), node)) = seq.next_element::<(PathKey, Znode)>()? {
                    builder.push(path, node).map_err(A::Error::custom)?;
                }
                builder.finish().map_err(A::Error::custom)
            }
        }
        deserializer.deserialize_seq(Visitor)
    }
}

/// Builds a node map from nodes given in path order (so every parent comes before its
/// children), each checked to have its parent and counted as its child: a snapshot's
/// loading and an import's.
#[derive(Default)]
pub(crate) struct NodesBuilder {
    nodes: Nodes,
    previous: Option<ArcStr>,
    /// Children are counted per parent path, then set once per parent: one map lookup per
    /// parent instead of one per node (the order the counts are set in does not matter).
    counts: hashbrown::HashMap<String, u32>,
}

impl NodesBuilder {
    /// Adds the next node; fails when it is not after the previous one in path order or
    /// has no parent path.
    pub(crate) fn push(&mut self, path: ArcStr, mut node: Znode) -> Result<(), String> {
        if self.previous.as_deref().is_some_and(|p| p >= &*path) {
            return Err(format!("snapshot node {path:?} out of order"));
        }
        node.child_count = 0;
        if &*path != "/" {
            let parent = path::parent_of(&path)
                .ok_or_else(|| format!("snapshot node {path:?} has no parent"))?;
            let count = self.counts.entry_ref(parent).or_insert(0);
            *count = count.saturating_add(1);
        }
        let _ = self.nodes.insert_key(path.clone(), node, None);
        self.previous = Some(path);
        Ok(())
    }

    /// The map, once every parent counted is found in it.
    pub(crate) fn finish(self) -> Result<Nodes, String> {
        let mut nodes = self.nodes;
        for (parent, count) in self.counts {
            let node = nodes
                .node_mut(&parent)
                .ok_or_else(|| format!("snapshot nodes under {parent:?} have no parent"))?;
            node.child_count = count;
        }
        Ok(nodes)
    }
}

impl Serialize for Nodes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.map.len()))?;
        for (path, node) in self.iter() {
            seq.serialize_element(&(path, node))?;
        }
        seq.end()
    }
}

/// Why a primitive could not run: the txn was not prepared against this state. Prepared
/// txns never hit this; it keeps a foreign or replayed-out-of-order txn from panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mismatch;

/// Creates `path` under its existing parent: the parent's stored cversion goes up by one
/// (wrapping) and its pzxid becomes the txn's zxid. Returns the ACLs of the new node and
/// of its parent (for the watch events), found on the way.
///
/// Two descents of the map (the parent, the insert): a node already at `path`, which a
/// txn prepared against this state never meets, is found by the insert and put back.
pub(crate) fn create(store: &mut Nodes, path: &str, node: Znode) -> Result<ChangeAcl, Mismatch> {
    let parent_path = path::parent_of(path).ok_or(Mismatch)?;
    if parent_path == path {
        return Err(Mismatch);
    }
    let zxid = node.czxid;
    let parent = store.node_mut(parent_path).ok_or(Mismatch)?;
    let parent_before = (parent.child_count, parent.cversion_stored, parent.pzxid);
    parent.child_count = parent.child_count.checked_add(1).ok_or(Mismatch)?;
    parent.cversion_stored = parent.cversion_stored.wrapping_add(1);
    parent.pzxid = zxid;
    let parent_acl = Arc::clone(&parent.acl);
    let key = ArcStr::from(path);
    let (acl, replaced) = store.insert_key(key.clone(), node, Some(&parent_acl));
    if let Some(existing) = replaced {
        if !matches!(existing.kind, NodeKind::Container | NodeKind::Ttl { .. }) {
            store.reapable.remove(&key);
        }
        store.map.insert(key, existing);
        if let Some(parent) = store.node_mut(parent_path) {
            (parent.child_count, parent.cversion_stored, parent.pzxid) = parent_before;
        }
        return Err(Mismatch);
    }
    Ok(ChangeAcl {
        acl,
        parent_acl: Some(parent_acl),
    })
}

/// Deletes a childless `path`: the parent loses the child and its pzxid becomes `zxid`;
/// the stored cversion is untouched (deletes show up in the visible cversion only).
/// Returns the removed node and the parent's ACL.
pub(crate) fn delete(
    store: &mut Nodes,
    path: &str,
    zxid: Zxid,
) -> Result<(Arc<Znode>, Arc<Vec<Acl>>), Mismatch> {
    let parent_path = path::parent_of(path).ok_or(Mismatch)?;
    let node = store.node(path).ok_or(Mismatch)?;
    if node.child_count != 0 || path::is_special(path) {
        return Err(Mismatch);
    }
    let parent = store.node_mut(parent_path).ok_or(Mismatch)?;
    parent.child_count = parent.child_count.saturating_sub(1);
    parent.pzxid = zxid.as_wire();
    let parent_acl = Arc::clone(&parent.acl);
    let removed = store.remove(path).ok_or(Mismatch)?;
    Ok((removed, parent_acl))
}

/// Sets a node's data: version (as prepared), mzxid and mtime change.
pub(crate) fn set_data(
    store: &mut Nodes,
    path: &str,
    data: Option<Vec<u8>>,
    version: i32,
    zxid: Zxid,
    time_ms: i64,
) -> Result<(), Mismatch> {
    let node = store.node_mut(path).ok_or(Mismatch)?;
    node.data = data.map(Vec::into_boxed_slice);
    node.version = version;
    node.mzxid = zxid.as_wire();
    node.mtime_ms = time_ms;
    Ok(())
}

/// Sets a node's ACL and aversion (as prepared); nothing else changes.
pub(crate) fn set_acl(
    store: &mut Nodes,
    path: &str,
    acl: Vec<Acl>,
    aversion: i32,
) -> Result<(), Mismatch> {
    let node = store.node_mut(path).ok_or(Mismatch)?;
    node.acl = acl.into();
    node.aversion = aversion;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // A znode's stored form, with the reference count in front of it, fits jemalloc's
    // 112-byte size class: every byte more costs 16 per znode (10^6 znodes: 16 MB).
    #[test]
    fn znode_fits_its_size_class() {
        assert!(
            std::mem::size_of::<Znode>() <= 96,
            "Znode is {} bytes",
            std::mem::size_of::<Znode>()
        );
    }

    fn plain() -> Znode {
        Znode::new(None, Acl::open_unsafe(), NodeKind::Persistent, Zxid(1), 0)
    }

    // Decoded znodes share an ACL list equal to the one before them, and only then: a
    // longer list starting like it, a shorter one and a different one come out whole.
    #[test]
    fn decoded_znodes_share_equal_acl_lists() {
        let open = Acl::open_unsafe();
        let mut longer = open.clone();
        longer.push(Acl {
            perms: 1,
            id: crate::acl::Id::new("digest", "u:x"),
        });
        let lists = [
            open.clone(),
            open.clone(),
            longer.clone(),
            open.clone(),
            vec![],
        ];
        let encoded: Vec<u8> = {
            let znodes: Vec<Znode> = lists
                .iter()
                .map(|acl| Znode::new(None, acl.clone(), NodeKind::Persistent, Zxid(1), 0))
                .collect();
            bincode::serde::encode_to_vec(&znodes, bincode::config::standard()).unwrap()
        };
        let (decoded, _): (Vec<Znode>, usize) =
            bincode::serde::decode_from_slice(&encoded, bincode::config::standard()).unwrap();
        let got: Vec<Vec<Acl>> = decoded.iter().map(|z| z.acl().to_vec()).collect();
        assert_eq!(got, lists.to_vec());
        assert!(Arc::ptr_eq(&decoded[0].acl, &decoded[1].acl));
        assert!(!Arc::ptr_eq(&decoded[1].acl, &decoded[2].acl));
        assert!(!Arc::ptr_eq(&decoded[2].acl, &decoded[3].acl));
    }

    /// A map holding `paths` (parents first), each counted by its parent.
    fn nodes_with(paths: &[&str]) -> Nodes {
        let mut nodes = Nodes::default();
        nodes.insert("/", plain());
        for path in paths {
            create(&mut nodes, path, plain()).unwrap();
        }
        nodes
    }

    // Children are found among the keys in sorted order even when sibling names sort
    // between a child and its own subtree ("a!" < "a/…" since '!' < '/'), when names share
    // prefixes, and under the root.
    #[test]
    fn children_skip_subtrees_and_keep_byte_order() {
        let nodes = nodes_with(&[
            "/a", "/a!", "/a/b", "/a/b/c", "/a/b/c/d", "/a/b!", "/a/bb", "/a0", "/a/b/e", "/b",
        ]);
        assert_eq!(nodes.children("/"), ["a", "a!", "a0", "b"]);
        assert_eq!(nodes.children("/a"), ["b", "b!", "bb"]);
        assert_eq!(nodes.children("/a/b"), ["c", "e"]);
        assert_eq!(nodes.children("/a/b/c"), ["d"]);
        assert!(nodes.children("/a!").is_empty());
        assert!(nodes.children("/missing").is_empty());
        for (path, node) in nodes.iter() {
            assert_eq!(
                node.child_count as usize,
                nodes.children(path).len(),
                "{path}"
            );
        }
    }

    // Creating and deleting keep the parent's count; a node with children is not deleted.
    #[test]
    fn counts_follow_creates_and_deletes() {
        let mut nodes = nodes_with(&["/a", "/a/b"]);
        assert_eq!(delete(&mut nodes, "/a", Zxid(2)).err(), Some(Mismatch));
        delete(&mut nodes, "/a/b", Zxid(2)).unwrap();
        assert_eq!(nodes.node("/a").unwrap().child_count, 0);
        assert!(nodes.children("/a").is_empty());
        delete(&mut nodes, "/a", Zxid(3)).unwrap();
        assert_eq!(nodes.node("/").unwrap().child_count, 0);
    }

    // A changed copy leaves the original as it was (the maps share what is unchanged).
    #[test]
    fn copies_are_independent() {
        let mut nodes = nodes_with(&["/a"]);
        let frozen = nodes.clone();
        set_data(&mut nodes, "/a", Some(b"new".to_vec()), 1, Zxid(2), 9).unwrap();
        create(&mut nodes, "/a/b", plain()).unwrap();
        assert_eq!(frozen.node("/a").unwrap().data(), None);
        assert!(frozen.children("/a").is_empty());
        assert_eq!(nodes.node("/a").unwrap().data(), Some(&b"new"[..]));
    }

    // Equal ACL lists are shared with the parent or the previous create.
    #[test]
    fn equal_acls_are_shared() {
        let nodes = nodes_with(&["/a", "/a/b"]);
        let root = nodes.node("/").unwrap();
        assert!(Arc::ptr_eq(&root.acl, &nodes.node("/a/b").unwrap().acl));
        let mut other = Nodes::default();
        other.insert("/", plain());
        let private = || Znode::new(None, Acl::creator_all(), NodeKind::Persistent, Zxid(1), 0);
        create(&mut other, "/x", private()).unwrap();
        create(&mut other, "/y", private()).unwrap();
        let (x, y) = (other.node("/x").unwrap(), other.node("/y").unwrap());
        assert!(Arc::ptr_eq(&x.acl, &y.acl));
        assert!(!Arc::ptr_eq(&x.acl, &other.node("/").unwrap().acl));
    }

    fn decode(bytes: &[u8]) -> Result<Nodes, bincode::error::DecodeError> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map(|(n, _)| n)
    }

    // A snapshot's node map loads back equal, with the counts recounted; one whose nodes
    // are out of order or lack a parent is refused.
    #[test]
    fn loading_checks_order_and_parents() {
        let nodes = nodes_with(&["/a", "/a/b", "/c"]);
        let bytes = bincode::serde::encode_to_vec(&nodes, bincode::config::standard()).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back, nodes);
        assert_eq!(back.node("/a").unwrap().child_count, 1);
        let forged = |paths: &[&str]| {
            let entries: Vec<(&str, Znode)> = paths.iter().map(|p| (*p, plain())).collect();
            bincode::serde::encode_to_vec(&entries, bincode::config::standard()).unwrap()
        };
        assert!(decode(&forged(&["/", "/a", "/a/b"])).is_ok());
        assert!(decode(&forged(&["/", "/a/b"])).is_err());
        assert!(decode(&forged(&["/", "/b", "/a"])).is_err());
        assert!(decode(&forged(&["/", "/a", "/a"])).is_err());
        assert!(decode(&forged(&["/", "a"])).is_err());
    }
}
