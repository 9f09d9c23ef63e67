//! The apply stage: runs prepared txns on the tree. It cannot fail for a txn prepared
//! against the same state; a txn that does not fit (a foreign or out-of-order txn) changes
//! nothing and answers SYSTEMERROR instead of panicking, and a multi is dry-run on a
//! copy of the node map first so that it stays all-or-nothing even then.

use std::sync::Arc;

use crate::acl::Acl;
use crate::error::ZkError;
use crate::ids::{SessionId, Zxid};
use crate::watch::{Change, ChangeAcl};
use crate::work;

use super::DataTree;
use super::node::{self, Mismatch, NodeKind, Nodes, Znode};
use super::txn::{Applied, OpResult, Txn, TxnKind, TxnOp};

/// An edit of the per-session ephemeral index caused by one op.
pub(crate) enum EphemeralEdit {
    /// The session gained an ephemeral at this path.
    Add(SessionId, String),
    /// The session lost its ephemeral at this path.
    Remove(SessionId, String),
}

/// What one applied op produced.
pub(crate) struct Step {
    pub(crate) result: OpResult,
    /// The change and the ACLs that stood at it (for READ at event delivery).
    pub(crate) change: Option<(Change, ChangeAcl)>,
    pub(crate) ephemeral: Option<EphemeralEdit>,
}

/// Applies one prepared op to a node store. Atomic: on `Mismatch` nothing changed.
pub(crate) fn apply_op(
    store: &mut Nodes,
    op: &TxnOp,
    zxid: Zxid,
    time_ms: i64,
) -> Result<Step, Mismatch> {
    match op {
        TxnOp::Create(create) => {
            let acl = store
                .acl_recent_equal(&create.acl)
                .unwrap_or_else(|| Arc::new(create.acl.clone()));
            let znode = Znode::new(create.data.clone(), acl, create.kind, zxid, time_ms);
            let stat = znode.stat();
            let acl = node::create(store, &create.path, znode)?;
            let ephemeral = match create.kind {
                NodeKind::Ephemeral(session) => {
                    Some(EphemeralEdit::Add(session, create.path.clone()))
                }
                _ => None,
            };
            Ok(Step {
                result: OpResult::Created {
                    opcode: create.opcode,
                    path: create.path.clone(),
                    stat,
                },
                change: Some((Change::Created(create.path.clone()), acl)),
                ephemeral,
            })
        }
        TxnOp::Delete { path } => {
            let (removed, parent_acl) = node::delete(store, path, zxid)?;
            Ok(deleted_step(path, removed, parent_acl))
        }
        TxnOp::SetData {
            path,
            data,
            version,
        } => {
            node::set_data(store, path, data.clone(), *version, zxid, time_ms)?;
            let node = store.node(path).ok_or(Mismatch)?;
            let acl = ChangeAcl {
                acl: node.acl.clone(),
                parent_acl: None,
            };
            Ok(Step {
                result: OpResult::DataSet(node.stat()),
                change: Some((Change::DataChanged(path.clone()), acl)),
                ephemeral: None,
            })
        }
        TxnOp::SetAcl {
            path,
            acl,
            aversion,
        } => {
            node::set_acl(store, path, acl.clone(), *aversion)?;
            let stat = store.node(path).ok_or(Mismatch)?.stat();
            Ok(Step {
                result: OpResult::AclSet(stat),
                change: None,
                ephemeral: None,
            })
        }
        TxnOp::Check { path } => {
            store.node(path).ok_or(Mismatch)?;
            Ok(Step {
                result: OpResult::Checked,
                change: None,
                ephemeral: None,
            })
        }
    }
}

fn deleted_step(path: &str, removed: Arc<Znode>, parent_acl: Arc<Vec<Acl>>) -> Step {
    let ephemeral = match removed.kind {
        NodeKind::Ephemeral(session) => Some(EphemeralEdit::Remove(session, path.to_owned())),
        _ => None,
    };
    let acl = ChangeAcl {
        acl: removed.acl.clone(),
        parent_acl: Some(parent_acl),
    };
    Step {
        result: OpResult::Deleted,
        change: Some((Change::Deleted(path.to_owned()), acl)),
        ephemeral,
    }
}

impl DataTree {
    /// Applies a txn (prepared by [`DataTree::prepare`] against this same state) and
    /// reports its per-op results and the changes for the watch module, in order.
    /// Deterministic: the same txns in the same order give identical trees.
    pub fn apply(&mut self, txn: &Txn) -> Applied {
        work::touch(super::TOUCHED_PER_WRITE);
        // planted bug: scan-tree-per-write (the ephemerals recounted over the whole tree
        // after every write, for a status figure).
        #[cfg(feature = "planted-bugs")]
        if self.config.bug == Some(crate::bugs::Bug::ScanTreePerWrite) {
            let ephemerals = self
                .nodes
                .iter()
                .filter(|(_, node)| matches!(node.kind, NodeKind::Ephemeral(_)))
                .count();
            std::hint::black_box(ephemerals);
        }
        self.last_zxid = self.last_zxid.max(txn.zxid);
        let mut applied = Applied {
            zxid: txn.zxid,
            results: Vec::new(),
            closed_ephemerals: Vec::new(),
            changes: Vec::new(),
            change_acls: Vec::new(),
        };
        match &txn.kind {
            TxnKind::Single(op) => {
                let step = apply_op(&mut self.nodes, op, txn.zxid, txn.time_ms);
                self.apply_record(step, &mut applied);
            }
            TxnKind::Multi(ops) => self.apply_multi(ops, txn, &mut applied),
            TxnKind::MultiFailed(codes) => {
                applied.results = codes.iter().map(|code| OpResult::Error(*code)).collect();
            }
            TxnKind::CreateSession { .. } => {}
            TxnKind::CloseSession { session } => {
                self.apply_close_session(*session, txn, &mut applied)
            }
            TxnKind::DeleteContainer { path } => {
                let op = TxnOp::Delete { path: path.clone() };
                let step = apply_op(&mut self.nodes, &op, txn.zxid, txn.time_ms);
                self.apply_record(step, &mut applied);
            }
        }
        applied
    }

    /// Records one op's outcome: its result, its change and its ephemeral-index edit.
    fn apply_record(&mut self, step: Result<Step, Mismatch>, applied: &mut Applied) {
        let Ok(step) = step else {
            applied.results.push(OpResult::Error(ZkError::SystemError));
            return;
        };
        applied.results.push(step.result);
        if let Some((change, acl)) = step.change {
            applied.changes.push(change);
            applied.change_acls.push(acl);
        }
        match step.ephemeral {
            Some(EphemeralEdit::Add(session, path)) => {
                self.ephemerals.entry(session).or_default().insert(path);
            }
            Some(EphemeralEdit::Remove(session, path)) => {
                if let Some(paths) = self.ephemerals.get_mut(&session) {
                    paths.remove(&path);
                    if paths.is_empty() {
                        self.ephemerals.remove(&session);
                    }
                }
            }
            None => {}
        }
    }

    /// A multi: dry-run on a copy of the node map, then applied op by op (all ops share the zxid).
    fn apply_multi(&mut self, ops: &[TxnOp], txn: &Txn, applied: &mut Applied) {
        work::touch(super::TOUCHED_PER_WRITE * ops.len() as u64);
        let mut dry_run = self.nodes.clone();
        let fits = ops
            .iter()
            .all(|op| apply_op(&mut dry_run, op, txn.zxid, txn.time_ms).is_ok());
        if !fits {
            applied.results = vec![OpResult::Error(ZkError::SystemError); ops.len()];
            return;
        }
        for op in ops {
            let step = apply_op(&mut self.nodes, op, txn.zxid, txn.time_ms);
            assert!(
                step.is_ok(),
                "multi op {op:?} failed after its dry run passed"
            );
            self.apply_record(step, applied);
        }
    }

    /// A session closes: its ephemerals are deleted in path order, each like a delete
    /// (parent pzxid = this zxid, a `Deleted` change).
    fn apply_close_session(&mut self, session: SessionId, txn: &Txn, applied: &mut Applied) {
        let paths = self.ephemerals.remove(&session).unwrap_or_default();
        work::touch(super::TOUCHED_PER_WRITE * paths.len() as u64);
        for path in paths {
            if let Ok((removed, parent_acl)) = node::delete(&mut self.nodes, &path, txn.zxid) {
                let step = deleted_step(&path, removed, parent_acl);
                if let Some((change, acl)) = step.change {
                    applied.changes.push(change);
                    applied.change_acls.push(acl);
                }
                applied.closed_ephemerals.push(path);
            }
        }
    }
}
