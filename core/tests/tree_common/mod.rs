//! Shared helpers for the tree integration tests: a harness that prepares and applies ops
//! with a fresh zxid and time each, and short constructors for ops.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use paddock_core::acl::{Acl, Id};
use paddock_core::error::ZkError;
use paddock_core::ids::{SessionId, Zxid};
use paddock_core::stat::Stat;
use paddock_core::tree::{
    Applied, CheckOp, CreateOp, CreateOpcode, DataTree, DeleteOp, MultiOp, Op, OpContext, SetAclOp,
    SetDataOp, TreeConfig, Txn,
};

/// The identity every connection has.
pub fn ip_ids() -> Vec<Id> {
    vec![Id::new("ip", "127.0.0.1")]
}

/// A tree plus the next zxid/time, the calling session and its identities.
pub struct Harness {
    pub tree: DataTree,
    /// zxid of the last txn run (the next one gets +1).
    pub zxid: u64,
    /// Time of the last txn run, ms (the next one gets +10).
    pub time_ms: i64,
    pub session: SessionId,
    pub session_live: bool,
    pub ids: Vec<Id>,
    /// Every txn applied so far, for replay.
    pub log: Vec<Txn>,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(TreeConfig::default())
    }

    pub fn with_config(config: TreeConfig) -> Harness {
        Harness {
            tree: DataTree::new(config),
            zxid: 0,
            time_ms: 1_000,
            session: SessionId(0x100),
            session_live: true,
            ids: ip_ids(),
            log: Vec::new(),
        }
    }

    /// The context the next txn will be prepared with.
    pub fn ctx(&self) -> OpContext {
        OpContext {
            zxid: Zxid(self.zxid + 1),
            time_ms: self.time_ms + 10,
            session: self.session,
            session_live: self.session_live,
            ids: self.ids.clone(),
        }
    }

    /// Prepares `op`; on success applies it (consuming a zxid) and returns what it did.
    /// On failure checks that the tree did not change.
    pub fn run(&mut self, op: Op) -> Result<Applied, ZkError> {
        let before = self.tree.digest();
        let txn = match self.tree.prepare(&op, &self.ctx()) {
            Ok(txn) => txn,
            Err(code) => {
                assert_eq!(
                    self.tree.digest(),
                    before,
                    "a failed prepare changed the tree"
                );
                return Err(code);
            }
        };
        self.zxid += 1;
        self.time_ms += 10;
        let applied = self.tree.apply(&txn);
        self.log.push(txn);
        Ok(applied)
    }

    pub fn stat(&self, path: &str) -> Stat {
        self.tree
            .node(path)
            .unwrap_or_else(|| panic!("{path} exists"))
            .stat()
    }

    /// Creates `path` with `flags` (opcode 1, open ACL) and returns the final path.
    pub fn create(&mut self, path: &str, flags: i32) -> Result<String, ZkError> {
        self.create_op(create_op(path, flags))
    }

    pub fn create_op(&mut self, op: CreateOp) -> Result<String, ZkError> {
        let applied = self.run(Op::Create(op))?;
        match &applied.results[..] {
            [paddock_core::tree::OpResult::Created { path, .. }] => Ok(path.clone()),
            other => panic!("unexpected create results {other:?}"),
        }
    }

    pub fn delete(&mut self, path: &str, version: i32) -> Result<Applied, ZkError> {
        self.run(Op::Delete(DeleteOp {
            path: path.into(),
            version,
        }))
    }

    pub fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> Result<Applied, ZkError> {
        self.run(Op::SetData(SetDataOp {
            path: path.into(),
            data: Some(data.to_vec()),
            version,
        }))
    }

    pub fn set_acl(&mut self, path: &str, acl: Vec<Acl>, version: i32) -> Result<Applied, ZkError> {
        self.run(Op::SetAcl(SetAclOp {
            path: path.into(),
            acl,
            version,
        }))
    }
}

/// An opcode-1 create with data `b"d"` and OPEN_ACL_UNSAFE.
pub fn create_op(path: &str, flags: i32) -> CreateOp {
    CreateOp {
        opcode: CreateOpcode::Create,
        path: path.into(),
        data: Some(b"d".to_vec()),
        acl: Acl::open_unsafe(),
        flags,
    }
}

pub fn m_create(path: &str, flags: i32) -> MultiOp {
    MultiOp::Create(create_op(path, flags))
}

pub fn m_delete(path: &str, version: i32) -> MultiOp {
    MultiOp::Delete(DeleteOp {
        path: path.into(),
        version,
    })
}

pub fn m_set(path: &str, data: &[u8], version: i32) -> MultiOp {
    MultiOp::SetData(SetDataOp {
        path: path.into(),
        data: Some(data.to_vec()),
        version,
    })
}

pub fn m_check(path: &str, version: i32) -> MultiOp {
    MultiOp::Check(CheckOp {
        path: path.into(),
        version,
    })
}

pub fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id::new(scheme, id),
    }
}
