//! The tree's own operation, transaction and result types (independent of the wire codec:
//! the node converts decoded requests into [`Op`]s and [`Applied`] results into replies).
//!
//! An [`Op`] is what a client asked; [`DataTree::prepare`](super::DataTree::prepare) checks
//! it and turns it into a [`Txn`], which carries everything apply needs (zxid, time, the
//! resolved sequential path, the expanded ACL, the new versions), so that applying it is
//! deterministic. Txns are replicated and logged, hence serde.

use serde::{Deserialize, Serialize};

use crate::acl::{Acl, Id};
use crate::error::ZkError;
use crate::ids::{SessionId, Zxid};
use crate::stat::Stat;
use crate::watch::{Change, ChangeAcl};

use super::node::NodeKind;

/// Which create opcode the client sent: it decides the reply layout and, for containers and
/// TTL nodes, the kind of node (docs/protocol.md, Containers and TTL nodes: flags 4 with
/// opcode 1 or 15 make a plain persistent node; only opcode 19 makes a container).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateOpcode {
    /// Opcode 1: the reply carries the path only.
    Create,
    /// Opcode 15: the reply carries the path and the Stat.
    Create2,
    /// Opcode 19: makes a container.
    CreateContainer,
    /// Opcode 21 with its `ttl` field: makes a TTL node.
    CreateTtl {
        /// The requested time to live, ms (valid: 1..=2^40-1).
        ttl_ms: i64,
    },
}

/// A create request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOp {
    /// The opcode it arrived with.
    pub opcode: CreateOpcode,
    /// The requested path (the sequence suffix is appended to it for sequential modes).
    pub path: String,
    /// The data; `None` is null data.
    #[serde(with = "crate::bytes::option_vec")]
    pub data: Option<Vec<u8>>,
    /// The requested ACL (before fix-up).
    pub acl: Vec<Acl>,
    /// CreateMode flags 0..=6 (anything else is BADARGUMENTS).
    pub flags: i32,
}

/// A delete request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteOp {
    /// The node to delete.
    pub path: String,
    /// Expected version, -1 for any.
    pub version: i32,
}

/// A setData request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetDataOp {
    /// The node to change.
    pub path: String,
    /// The new data; `None` is null data.
    #[serde(with = "crate::bytes::option_vec")]
    pub data: Option<Vec<u8>>,
    /// Expected version, -1 for any.
    pub version: i32,
}

/// A setACL request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAclOp {
    /// The node to change.
    pub path: String,
    /// The new ACL (before fix-up).
    pub acl: Vec<Acl>,
    /// Expected aversion, -1 for any.
    pub version: i32,
}

/// A check (CheckVersionRequest); valid only inside a multi.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOp {
    /// The node to check.
    pub path: String,
    /// Expected version, -1 for any.
    pub version: i32,
}

/// One operation of a multi (the kinds ZooKeeper allows there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MultiOp {
    /// create / create2 / createContainer / createTTL.
    Create(CreateOp),
    /// delete.
    Delete(DeleteOp),
    /// setData.
    SetData(SetDataOp),
    /// check.
    Check(CheckOp),
}

/// A write the tree prepares into a [`Txn`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Any create opcode.
    Create(CreateOp),
    /// delete.
    Delete(DeleteOp),
    /// setData.
    SetData(SetDataOp),
    /// setACL.
    SetAcl(SetAclOp),
    /// A top-level check: always UNIMPLEMENTED (ZooKeeper 3.8 accepts check in multi only).
    Check(CheckOp),
    /// multi: all-or-nothing.
    Multi(Vec<MultiOp>),
    /// A new session (the session table validates it; the tree only logs it).
    CreateSession {
        /// The new session's id.
        session: SessionId,
        /// Its password.
        password: [u8; 16],
        /// Negotiated timeout, ms.
        timeout_ms: i32,
    },
    /// A session closes or expires: its ephemerals are deleted.
    CloseSession {
        /// The session.
        session: SessionId,
    },
    /// The container/TTL reaper deletes a node (re-checked at prepare).
    DeleteContainer {
        /// The candidate path.
        path: String,
    },
}

/// Who asks and when: what prepare needs besides the op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpContext {
    /// The zxid the txn will have (every op of a multi shares it).
    pub zxid: Zxid,
    /// The leader's wall clock at proposal, ms since the Unix epoch.
    pub time_ms: i64,
    /// The calling session (owner of ephemerals it creates).
    pub session: SessionId,
    /// Whether that session is live and not closing; `false` gives SESSIONEXPIRED at the
    /// place ZooKeeper checks it (after the create flag and TTL checks).
    pub session_live: bool,
    /// The identities of the calling connection (ip, digest, super).
    pub ids: Vec<Id>,
}

/// A prepared create: the final path and everything the node will hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTxn {
    /// The opcode it was asked with (for the reply layout).
    pub opcode: CreateOpcode,
    /// The final path (sequence suffix included).
    pub path: String,
    /// The data.
    #[serde(with = "crate::bytes::option_vec")]
    pub data: Option<Vec<u8>>,
    /// The fixed-up ACL.
    pub acl: Vec<Acl>,
    /// The node kind (owner session for ephemerals).
    pub kind: NodeKind,
}

/// One prepared change of a multi (or a single write).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// Create a node.
    Create(CreateTxn),
    /// Delete a childless node.
    Delete {
        /// The node.
        path: String,
    },
    /// Set data and the new version.
    SetData {
        /// The node.
        path: String,
        /// The new data.
        #[serde(with = "crate::bytes::option_vec")]
        data: Option<Vec<u8>>,
        /// The version after the change.
        version: i32,
    },
    /// Set the ACL and the new aversion.
    SetAcl {
        /// The node.
        path: String,
        /// The fixed-up ACL.
        acl: Vec<Acl>,
        /// The aversion after the change.
        aversion: i32,
    },
    /// A passed check (multi only); changes nothing.
    Check {
        /// The node.
        path: String,
    },
}

/// What a txn does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnKind {
    /// One write (create, delete, setData, setACL).
    Single(TxnOp),
    /// A multi whose ops all passed: applied together, in order.
    Multi(Vec<TxnOp>),
    /// A multi that failed: one code per op (0 before the failing op, its code, then
    /// RUNTIMEINCONSISTENCY). Applies nothing; logged like ZooKeeper's error txn.
    MultiFailed(Vec<ZkError>),
    /// A session was created.
    CreateSession {
        /// The session.
        session: SessionId,
        /// Its password.
        password: [u8; 16],
        /// Negotiated timeout, ms.
        timeout_ms: i32,
    },
    /// A session closed: its ephemerals are deleted in path order.
    CloseSession {
        /// The session.
        session: SessionId,
    },
    /// The reaper deletes a container or TTL node.
    DeleteContainer {
        /// The node.
        path: String,
    },
}

/// A replicated transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Its zxid.
    pub zxid: Zxid,
    /// The leader's wall clock at proposal, ms since the Unix epoch.
    pub time_ms: i64,
    /// The session that asked (the closing session for CloseSession).
    pub session: SessionId,
    /// What it does.
    pub kind: TxnKind,
}

/// The result of one applied op, as the server answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// A node was created.
    Created {
        /// The opcode asked with (opcode 1 replies with the path only).
        opcode: CreateOpcode,
        /// The final path.
        path: String,
        /// The new node's Stat.
        stat: Stat,
    },
    /// A node was deleted.
    Deleted,
    /// Data was set; the node's new Stat.
    DataSet(Stat),
    /// The ACL was set; the node's new Stat.
    AclSet(Stat),
    /// A check passed.
    Checked,
    /// The op failed with this code (multi entries; `Ok` marks a rolled-back op).
    Error(ZkError),
}

/// What applying a txn produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The txn's zxid.
    pub zxid: Zxid,
    /// One result per op: one entry for single writes, one per op for a multi (successful
    /// or failed), none for session txns.
    pub results: Vec<OpResult>,
    /// Paths deleted because a session closed, in deletion (path) order.
    pub closed_ephemerals: Vec<String>,
    /// What changed, in order, for the watch module.
    pub changes: Vec<Change>,
    /// The ACLs that stood at each change, one per entry of `changes`: they decide who
    /// may see its events.
    pub change_acls: Vec<ChangeAcl>,
}
