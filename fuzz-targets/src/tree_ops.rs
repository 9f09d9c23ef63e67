//! `tree_ops`: arbitrary operation sequences on `paddock_core::tree::DataTree` and, side
//! by side, on the reference model in [`crate::tree_model`].
//!
//! Each step is one write (every create mode and opcode, delete, setData, setACL, a
//! top-level check, a multi of up to eight ops) or a session close, issued by one of
//! three sessions; paths come from a small menu under `/t` plus "the k-th node that
//! exists now" (so sequential nodes get deleted and changed too). After every step the
//! result must equal the model's, and every node under `/t` must have the model's data,
//! Stat, ACL and children. Every transaction is also sent through bincode (as the log
//! does) and applied to a second tree, whose digest and whole state must equal the
//! first's after every step.

use arbitrary::{Arbitrary, Unstructured};
use paddock_core::acl::{Acl, Id};
use paddock_core::error::ZkError;
use paddock_core::ids::{Epoch, SessionId, Zxid};
use paddock_core::node::{Proposal, ProposalBody};
use paddock_core::tree::{
    CheckOp, CreateOp, CreateOpcode, DataTree, DeleteOp, MultiOp, Op, OpContext, OpResult,
    SetAclOp, SetDataOp, Txn,
};

use crate::tree_model::{Model, ModelCreate, ModelOp, ModelResult};

/// Paths ops may name (besides existing nodes, see [`PathChoice`]). `/t/a/` is invalid
/// except as a sequential prefix.
const PATHS: [&str; 8] = [
    "/t", "/t/a", "/t/b", "/t/a/c", "/t/a/d", "/t/b/c", "/t/a/c/e", "/t/a/",
];

/// Steps per input, at most (bounds the run time of one input).
const STEPS_MAX: usize = 64;

/// A path: `index` below the menu's length picks from [`PATHS`], above it the
/// `(index - len)`-th node under `/t` that exists now (modulo their count).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct PathChoice {
    index: u8,
}

/// The create variants: opcode and flags.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum CreateKind {
    /// Opcode 1 or 15 (`create2`) with flags 0..=7 (7 is invalid, 4 is plain persistent,
    /// 5 and 6 are TTL modes without a TTL: refused).
    Plain {
        /// Use opcode 15.
        create2: bool,
        /// Flags, modulo 8.
        flags: u8,
    },
    /// Opcode 19 with flags 4.
    Container,
    /// Opcode 21 with flags 5 or 6 (or 0, refused) and a TTL of 0 (refused), 1 or 1000 ms.
    Ttl {
        /// Flags choice: 0 → 5, 1 → 6, else 0.
        flags: u8,
        /// TTL choice: 0 → 0, 1 → 1, else 1000.
        ttl: u8,
    },
}

/// One fuzzed write op (top level or inside a multi).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum FuzzOp {
    /// A create.
    Create {
        /// Which create.
        kind: CreateKind,
        /// Where.
        path: PathChoice,
        /// Data choice: 0 → null, else that many bytes.
        data: u8,
        /// ACL menu choice.
        acl: u8,
    },
    /// delete.
    Delete {
        /// Which node.
        path: PathChoice,
        /// Expected version choice.
        version: u8,
    },
    /// setData.
    SetData {
        /// Which node.
        path: PathChoice,
        /// Data choice.
        data: u8,
        /// Expected version choice.
        version: u8,
    },
    /// setACL (top level only: multi has no setACL).
    SetAcl {
        /// Which node.
        path: PathChoice,
        /// ACL menu choice.
        acl: u8,
        /// Expected aversion choice.
        version: u8,
    },
    /// check (UNIMPLEMENTED at top level).
    Check {
        /// Which node.
        path: PathChoice,
        /// Expected version choice.
        version: u8,
    },
}

/// One step of a sequence.
#[derive(Debug, Clone, Arbitrary)]
pub enum FuzzStep {
    /// A single write by session `1 + session % 3`.
    Single {
        /// Session choice.
        session: u8,
        /// The op.
        op: FuzzOp,
    },
    /// A multi (up to eight ops; setACL entries become checks).
    Multi {
        /// Session choice.
        session: u8,
        /// The ops.
        ops: Vec<FuzzOp>,
    },
    /// Session `1 + session % 3` closes.
    CloseSession {
        /// Session choice.
        session: u8,
    },
}

/// The two trees, the model, and the position in the sequence.
struct Run {
    tree: DataTree,
    replica: DataTree,
    model: Model,
    counter: u32,
    time_ms: i64,
}

/// The target body. See the module documentation.
pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let mut run = Run::new();
    run.single(
        1,
        &FuzzOp::Create {
            kind: CreateKind::Plain {
                create2: false,
                flags: 0,
            },
            path: PathChoice { index: 0 },
            data: 1,
            acl: 0,
        },
    );
    for _ in 0..STEPS_MAX {
        if input.is_empty() {
            break;
        }
        let Ok(step) = input.arbitrary::<FuzzStep>() else {
            break;
        };
        match step {
            FuzzStep::Single { session, op } => run.single(session_id(session), &op),
            FuzzStep::Multi { session, ops } => {
                run.multi(session_id(session), &ops[..ops.len().min(8)])
            }
            FuzzStep::CloseSession { session } => run.close(session_id(session)),
        }
        run.compare_state();
    }
}

fn session_id(choice: u8) -> i64 {
    1 + i64::from(choice % 3)
}

fn acl_menu(choice: u8) -> Vec<Acl> {
    let world = |perms| Acl {
        perms,
        id: Id::new("world", "anyone"),
    };
    match choice % 6 {
        0 => vec![world(31)],
        1 => vec![world(1)],
        2 => vec![world(1 | 4 | 8)],
        3 => Vec::new(),
        4 => vec![world(31), world(31)],
        _ => vec![world(2 | 16)],
    }
}

fn version_menu(choice: u8) -> i32 {
    i32::from(choice % 4) - 1
}

fn data_menu(choice: u8) -> Option<Vec<u8>> {
    (choice != 0).then(|| vec![choice; usize::from(choice % 8)])
}

impl Run {
    fn new() -> Run {
        Run {
            tree: DataTree::new(Default::default()),
            replica: DataTree::new(Default::default()),
            model: Model::new(),
            counter: 0,
            time_ms: 1_700_000_000_000,
        }
    }

    fn context(&mut self, session: i64) -> OpContext {
        self.time_ms += 7;
        OpContext {
            zxid: Zxid::new(Epoch(1), self.counter + 1),
            time_ms: self.time_ms,
            session: SessionId(session),
            session_live: true,
            ids: Vec::new(),
        }
    }

    fn path(&self, choice: PathChoice) -> String {
        let index = usize::from(choice.index);
        if let Some(path) = PATHS.get(index) {
            return (*path).to_owned();
        }
        let existing: Vec<&String> = self
            .model
            .nodes
            .keys()
            .filter(|p| p.starts_with("/t"))
            .collect();
        match existing.len() {
            0 => PATHS[0].to_owned(),
            count => existing[(index - PATHS.len()) % count].clone(),
        }
    }

    /// The same op for the tree and for the model.
    fn translate(&self, op: &FuzzOp, in_multi: bool) -> (Op, ModelOp) {
        match *op {
            FuzzOp::Create {
                kind,
                path,
                data,
                acl,
            } => {
                let (opcode, flags, container, ttl_ms) = match kind {
                    CreateKind::Plain { create2, flags } => {
                        let opcode = if create2 {
                            CreateOpcode::Create2
                        } else {
                            CreateOpcode::Create
                        };
                        (opcode, i32::from(flags % 8), false, None)
                    }
                    CreateKind::Container => (CreateOpcode::CreateContainer, 4, true, None),
                    CreateKind::Ttl { flags, ttl } => {
                        let flags = [5, 6, 0][usize::from(flags.min(2))];
                        let ttl_ms = [0, 1, 1000][usize::from(ttl.min(2))];
                        (
                            CreateOpcode::CreateTtl { ttl_ms },
                            flags,
                            false,
                            Some(ttl_ms),
                        )
                    }
                };
                let create = CreateOp {
                    opcode,
                    path: self.path(path),
                    data: data_menu(data),
                    acl: acl_menu(acl),
                    flags,
                };
                let model = ModelCreate {
                    path: create.path.clone(),
                    data: create.data.clone(),
                    acl: create.acl.clone(),
                    flags,
                    container,
                    ttl_ms,
                };
                (Op::Create(create), ModelOp::Create(model))
            }
            FuzzOp::Delete { path, version } => {
                let (path, version) = (self.path(path), version_menu(version));
                let model = ModelOp::Delete(path.clone(), version);
                (Op::Delete(DeleteOp { path, version }), model)
            }
            FuzzOp::SetData {
                path,
                data,
                version,
            } => {
                let (path, data, version) =
                    (self.path(path), data_menu(data), version_menu(version));
                let model = ModelOp::SetData(path.clone(), data.clone(), version);
                (
                    Op::SetData(SetDataOp {
                        path,
                        data,
                        version,
                    }),
                    model,
                )
            }
            FuzzOp::SetAcl { path, acl, version } if !in_multi => {
                let (path, acl, version) = (self.path(path), acl_menu(acl), version_menu(version));
                let model = ModelOp::SetAcl(path.clone(), acl.clone(), version);
                (Op::SetAcl(SetAclOp { path, acl, version }), model)
            }
            FuzzOp::SetAcl { path, version, .. } | FuzzOp::Check { path, version } => {
                let (path, version) = (self.path(path), version_menu(version));
                let model = ModelOp::Check(path.clone(), version);
                (Op::Check(CheckOp { path, version }), model)
            }
        }
    }

    /// Applies a prepared txn to the tree, and through bincode to the replica.
    fn commit(&mut self, txn: &Txn) -> paddock_core::tree::Applied {
        self.counter += 1;
        assert_eq!(txn.zxid, Zxid::new(Epoch(1), self.counter), "txn zxid");
        let applied = self.tree.apply(txn);
        // The path a txn takes to a follower and to the disk: a proposal in bincode.
        let proposal = Proposal {
            origin: None,
            body: ProposalBody::Txn(txn.clone()),
        };
        let logged = match Proposal::decode(&proposal.encode()).map(|p| p.body) {
            Ok(ProposalBody::Txn(logged)) => logged,
            other => panic!("a txn proposal came back as {other:?}"),
        };
        assert_eq!(&logged, txn, "a txn changed through bincode");
        self.replica.apply(&logged);
        assert_eq!(self.tree.digest(), self.replica.digest(), "replica digest");
        assert_eq!(self.tree, self.replica, "replica state");
        applied
    }

    fn single(&mut self, session: i64, op: &FuzzOp) {
        let (tree_op, model_op) = self.translate(op, false);
        let ctx = self.context(session);
        let zxid = ctx.zxid.as_wire();
        let expected = if matches!(tree_op, Op::Check(_)) {
            Err(ZkError::Unimplemented)
        } else {
            let mut scratch = self.model.clone();
            let result = scratch.apply(&model_op, session, zxid, ctx.time_ms);
            if result.is_ok() {
                self.model = scratch;
            }
            result
        };
        match self.tree.prepare(&tree_op, &ctx) {
            Err(code) => assert_eq!(Err(code), expected, "{tree_op:?} failed unlike the model"),
            Ok(txn) => {
                let expected = expected.unwrap_or_else(|code| {
                    panic!("{tree_op:?} prepared but the model says {code:?}")
                });
                let applied = self.commit(&txn);
                assert_eq!(applied.results.len(), 1, "one result per single write");
                self.compare_result(&applied.results[0], &expected);
            }
        }
    }

    fn multi(&mut self, session: i64, ops: &[FuzzOp]) {
        let pairs: Vec<(Op, ModelOp)> = ops.iter().map(|op| self.translate(op, true)).collect();
        let tree_ops: Vec<MultiOp> = pairs
            .iter()
            .map(|(op, _)| match op {
                Op::Create(create) => MultiOp::Create(create.clone()),
                Op::Delete(delete) => MultiOp::Delete(delete.clone()),
                Op::SetData(set) => MultiOp::SetData(set.clone()),
                Op::Check(check) => MultiOp::Check(check.clone()),
                other => unreachable!("translate makes no {other:?} in a multi"),
            })
            .collect();
        let model_ops: Vec<ModelOp> = pairs.into_iter().map(|(_, op)| op).collect();
        let ctx = self.context(session);
        let expected = self
            .model
            .multi(&model_ops, session, ctx.zxid.as_wire(), ctx.time_ms);
        let txn = self
            .tree
            .prepare(&Op::Multi(tree_ops), &ctx)
            .expect("a multi by a live session always prepares");
        let applied = self.commit(&txn);
        match expected {
            Err(codes) => {
                let got: Vec<OpResult> = codes.into_iter().map(OpResult::Error).collect();
                assert_eq!(applied.results, got, "failed multi results");
            }
            Ok(results) => {
                assert_eq!(applied.results.len(), results.len(), "multi result count");
                for (got, want) in applied.results.iter().zip(&results) {
                    self.compare_result(got, want);
                }
            }
        }
    }

    fn close(&mut self, session: i64) {
        let ctx = self.context(session);
        let expected = self.model.close_session(session, ctx.zxid.as_wire());
        let close = Op::CloseSession {
            session: SessionId(session),
        };
        let txn = self
            .tree
            .prepare(&close, &ctx)
            .expect("closing a session prepares");
        let applied = self.commit(&txn);
        assert_eq!(applied.closed_ephemerals, expected, "ephemerals closed");
    }

    /// An op's result and the Stat it reports, as of that op (later ops of a multi may
    /// change the node again).
    fn compare_result(&self, got: &OpResult, want: &ModelResult) {
        match (got, want) {
            (OpResult::Created { path, stat, .. }, ModelResult::Created(want_path, want_stat)) => {
                assert_eq!(path, want_path, "created path");
                assert_eq!(stat, want_stat, "Stat of created {path}");
            }
            (OpResult::DataSet(stat), ModelResult::DataSet(want))
            | (OpResult::AclSet(stat), ModelResult::AclSet(want)) => {
                assert_eq!(stat, want, "Stat after setData/setACL");
            }
            (OpResult::Deleted, ModelResult::Deleted)
            | (OpResult::Checked, ModelResult::Checked) => {}
            _ => panic!("result {got:?}, model says {want:?}"),
        }
    }

    /// Every node under `/t` (and whether `/t` exists) agrees with the model.
    fn compare_state(&self) {
        let root_has_t = self.tree.children("/").contains(&"t".to_owned());
        assert_eq!(
            root_has_t,
            self.model.nodes.contains_key("/t"),
            "/t existence"
        );
        let mut tree_paths = Vec::new();
        if root_has_t {
            collect(&self.tree, "/t", &mut tree_paths);
        }
        let model_paths: Vec<&String> = self
            .model
            .nodes
            .keys()
            .filter(|p| p.as_str() == "/t" || p.starts_with("/t/"))
            .collect();
        assert_eq!(
            tree_paths.iter().collect::<Vec<_>>(),
            model_paths,
            "the set of nodes differs"
        );
        for path in model_paths {
            let node = self.tree.node(path).expect("listed above");
            let want = &self.model.nodes[path];
            assert_eq!(node.data(), want.data.as_deref(), "data of {path}");
            assert_eq!(node.acl(), want.acl.as_slice(), "ACL of {path}");
            assert_eq!(Some(node.stat()), self.model.stat(path), "Stat of {path}");
            let children = self.tree.children(path);
            assert_eq!(
                node.child_count() as usize,
                children.len(),
                "child count of {path}"
            );
            let children: Vec<&String> = children.iter().collect();
            let want_children = self.model.children(path);
            assert_eq!(
                children,
                want_children.iter().collect::<Vec<_>>(),
                "children of {path}"
            );
            let read = self.tree.get_data(path, &[]);
            let readable = want.acl.iter().any(|entry| entry.perms & 1 != 0);
            assert_eq!(read.is_ok(), readable, "getData ACL check on {path}");
        }
    }
}

/// Every path of the subtree at `path`, in sorted (map) order.
fn collect(tree: &DataTree, path: &str, out: &mut Vec<String>) {
    let mut all = vec![path.to_owned()];
    let mut index = 0;
    while let Some(current) = all.get(index).cloned() {
        all.extend(
            tree.children(&current)
                .iter()
                .map(|name| format!("{current}/{name}")),
        );
        index += 1;
    }
    all.sort();
    out.extend(all);
}
