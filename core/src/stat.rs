//! `Stat`: a znode's metadata exactly as ZooKeeper puts it on the wire (68 bytes).
//!
//! Field order is wire order. Values here are the *client-visible* ones (visible
//! cversion, visible ephemeralOwner); the tree keeps its stored forms and derives this.

use serde::{Deserialize, Serialize};

/// A znode's metadata as clients see it (docs/protocol.md, Stat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Stat {
    /// zxid of the transaction that created the node.
    pub czxid: i64,
    /// zxid of the last setData (or of the create).
    pub mzxid: i64,
    /// Creation time, ms since the Unix epoch (the leader's clock at proposal).
    pub ctime: i64,
    /// Time of the last setData, ms since the Unix epoch.
    pub mtime: i64,
    /// Number of setData calls.
    pub version: i32,
    /// Visible child version: child creates plus child deletes.
    pub cversion: i32,
    /// Number of setACL calls.
    pub aversion: i32,
    /// Owning session for a plain ephemeral; 0 otherwise.
    pub ephemeral_owner: i64,
    /// Length of the data in bytes (0 for null data).
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the last child create or delete.
    pub pzxid: i64,
}
