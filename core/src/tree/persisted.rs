//! The tree in the form ZooKeeper persists it: each znode with its data, ACL list and
//! `StatPersisted` fields (ZooKeeper's `DataNode` in a snapshot). The importer of a
//! ZooKeeper data directory builds a tree from these ([`DataTree::from_persisted`]), and
//! the exporter writes them back out ([`DataTree::persisted`]). The stored form of a
//! Paddock znode is this same set of fields, so the round trip is exact.

use crate::acl::Acl;
use crate::ids::{SessionId, Zxid};

use super::node::{NodeKind, NodesBuilder, Znode};
use super::{DataTree, Ephemerals, TreeConfig};

/// A znode as ZooKeeper's snapshot holds it: data, ACL list and `StatPersisted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedZnode {
    /// The data; `None` is null data.
    pub data: Option<Vec<u8>>,
    /// The ACL list.
    pub acl: Vec<Acl>,
    /// Zxid of the create.
    pub czxid: i64,
    /// Zxid of the last setData (or the create).
    pub mzxid: i64,
    /// Time of the create, ms since the Unix epoch.
    pub ctime: i64,
    /// Time of the last setData (or the create).
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// The stored cversion: the number of child creates (ZooKeeper's `StatPersisted`
    /// cversion, not the one a client sees).
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// The stored ephemeral owner: a session for ephemerals, `i64::MIN` for containers,
    /// `0xFF00_0000_0000_0000 | ttl` for TTL nodes, 0 for persistent nodes.
    pub ephemeral_owner: i64,
    /// Zxid of the last change to the children.
    pub pzxid: i64,
}

/// The top byte that marks a stored ephemeralOwner as an extended type (ZooKeeper's
/// `EphemeralType` with extended types on); the next 16 bits name the type, 0 for TTL.
const EXTENDED_MASK: u64 = 0xFF00_0000_0000_0000;
const EXTENDED_TYPE_MASK: u64 = 0x00FF_FF00_0000_0000;
const TTL_MASK: u64 = 0x0000_00FF_FFFF_FFFF;

impl PersistedZnode {
    /// The kind a stored ephemeral owner means (ZooKeeper's `EphemeralType.get`).
    pub fn kind(&self) -> Result<NodeKind, String> {
        let owner = self.ephemeral_owner;
        let raw = owner as u64;
        Ok(match owner {
            0 => NodeKind::Persistent,
            i64::MIN => NodeKind::Container,
            _ if raw & EXTENDED_MASK == EXTENDED_MASK => {
                let ttl_ms = (raw & TTL_MASK) as i64;
                if raw & EXTENDED_TYPE_MASK != 0 || ttl_ms == 0 {
                    return Err(format!(
                        "ephemeral owner {owner:#x} is an extended type Paddock does not know"
                    ));
                }
                NodeKind::Ttl { ttl_ms }
            }
            _ => NodeKind::Ephemeral(SessionId(owner)),
        })
    }
}

impl DataTree {
    /// A tree of the znodes ZooKeeper persisted (any order), with `last_zxid` as the last
    /// applied transaction. Fails, naming the node, when a node's parent is missing, an
    /// ephemeral has children, the root is missing, or an owner is of an unknown kind.
    /// The reserved `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config` are added as
    /// a fresh tree has them when they are missing (ZooKeeper before 3.5 had no config
    /// node).
    pub fn from_persisted(
        config: TreeConfig,
        znodes: impl IntoIterator<Item = (String, PersistedZnode)>,
        last_zxid: Zxid,
    ) -> Result<DataTree, String> {
        let fresh = DataTree::new(config.clone());
        let mut sorted: std::collections::BTreeMap<String, Znode> =
            std::collections::BTreeMap::new();
        for (path, znode) in znodes {
            let kind = znode.kind().map_err(|e| format!("znode {path:?}: {e}"))?;
            if path != "/" {
                super::path::validate(&path)
                    .map_err(|_| format!("znode path {path:?} is not a valid path"))?;
            }
            let stored = Znode {
                data: znode.data.map(Vec::into_boxed_slice),
                acl: znode.acl.into(),
                kind,
                czxid: znode.czxid,
                mzxid: znode.mzxid,
                ctime_ms: znode.ctime,
                mtime_ms: znode.mtime,
                version: znode.version,
                cversion_stored: znode.cversion,
                aversion: znode.aversion,
                pzxid: znode.pzxid,
                child_count: 0,
            };
            if sorted.insert(path.clone(), stored).is_some() {
                return Err(format!("znode {path:?} appears twice"));
            }
        }
        if !sorted.contains_key("/") {
            return Err("no root znode".to_owned());
        }
        for reserved in [super::ZOOKEEPER_PATH, super::QUOTA_PATH, super::CONFIG_PATH] {
            if !sorted.contains_key(reserved)
                && let Some(node) = fresh.nodes.node(reserved)
            {
                sorted.insert(reserved.to_owned(), node.clone());
            }
        }
        let mut builder = NodesBuilder::default();
        for (path, node) in sorted {
            builder.push(arcstr::ArcStr::from(path), node)?;
        }
        let nodes = builder.finish()?;
        let mut ephemerals = Ephemerals::new();
        for (path, node) in nodes.iter() {
            if let NodeKind::Ephemeral(session) = node.kind {
                if node.child_count != 0 {
                    return Err(format!("ephemeral znode {path:?} has children"));
                }
                ephemerals
                    .entry(session)
                    .or_default()
                    .insert(path.to_owned());
            }
        }
        Ok(DataTree {
            nodes,
            ephemerals,
            last_zxid,
            config,
            data_bytes_max: crate::limits::ZNODE_DATA_BYTES_MAX_DEFAULT,
        })
    }

    /// Every znode in its persisted form, in path order (the root first).
    pub fn persisted(&self) -> impl Iterator<Item = (&str, PersistedZnode)> {
        self.nodes.iter().map(|(path, node)| {
            (
                path,
                PersistedZnode {
                    data: node.data.as_deref().map(<[u8]>::to_vec),
                    acl: node.acl.to_vec(),
                    czxid: node.czxid,
                    mzxid: node.mzxid,
                    ctime: node.ctime_ms,
                    mtime: node.mtime_ms,
                    version: node.version,
                    cversion: node.cversion_stored,
                    aversion: node.aversion,
                    ephemeral_owner: node.kind.ephemeral_owner_stored(),
                    pzxid: node.pzxid,
                },
            )
        })
    }

    /// The sessions that own ephemerals, in order.
    pub fn ephemeral_owners(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.ephemerals.keys().copied()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn znode(owner: i64, cversion: i32) -> PersistedZnode {
        PersistedZnode {
            data: Some(b"x".to_vec()),
            acl: Acl::open_unsafe(),
            czxid: 5,
            mzxid: 6,
            ctime: 7,
            mtime: 8,
            version: 2,
            cversion,
            aversion: 1,
            ephemeral_owner: owner,
            pzxid: 9,
        }
    }

    // Every field survives the round trip, children are counted, kinds decoded.
    #[test]
    fn persisted_znodes_round_trip() {
        let given = vec![
            ("/".to_owned(), znode(0, 3)),
            ("/a".to_owned(), znode(0, 2)),
            ("/a/e".to_owned(), znode(0x1234, 0)),
            ("/a/c".to_owned(), znode(i64::MIN, 0)),
            ("/t".to_owned(), znode((EXTENDED_MASK | 5000) as i64, 0)),
        ];
        let tree =
            DataTree::from_persisted(TreeConfig::default(), given.clone(), Zxid(0x1_0000_0009))
                .unwrap();
        tree.assert_invariants();
        assert_eq!(tree.last_zxid(), Zxid(0x1_0000_0009));
        assert_eq!(tree.node("/a").unwrap().child_count(), 2);
        assert_eq!(
            tree.node("/t").unwrap().kind(),
            NodeKind::Ttl { ttl_ms: 5000 }
        );
        assert_eq!(
            tree.ephemeral_owners().collect::<Vec<_>>(),
            vec![SessionId(0x1234)]
        );
        let out: Vec<(String, PersistedZnode)> = tree
            .persisted()
            .filter(|(p, _)| !p.starts_with("/zookeeper"))
            .map(|(p, z)| (p.to_owned(), z))
            .collect();
        let mut expected = given;
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(out, expected);
        // The reserved nodes a 3.4 snapshot lacks are added.
        assert!(tree.node(super::super::CONFIG_PATH).is_some());
    }

    #[test]
    fn orphans_ephemeral_parents_and_unknown_owners_are_refused() {
        let orphan = vec![
            ("/".to_owned(), znode(0, 0)),
            ("/a/b".to_owned(), znode(0, 0)),
        ];
        let err = DataTree::from_persisted(TreeConfig::default(), orphan, Zxid(1)).unwrap_err();
        assert!(err.contains("/a"), "{err}");
        let parent = vec![
            ("/".to_owned(), znode(0, 0)),
            ("/e".to_owned(), znode(7, 0)),
            ("/e/c".to_owned(), znode(0, 0)),
        ];
        let err = DataTree::from_persisted(TreeConfig::default(), parent, Zxid(1)).unwrap_err();
        assert!(err.contains("/e"), "{err}");
        let unknown = vec![
            ("/".to_owned(), znode(0, 0)),
            (
                "/x".to_owned(),
                znode((EXTENDED_MASK | 1 << 40 | 5) as i64, 0),
            ),
        ];
        assert!(DataTree::from_persisted(TreeConfig::default(), unknown, Zxid(1)).is_err());
        let rootless = vec![("/a".to_owned(), znode(0, 0))];
        assert!(DataTree::from_persisted(TreeConfig::default(), rootless, Zxid(1)).is_err());
    }
}
