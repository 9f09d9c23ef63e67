//! What a correct server would do with a client request, computed on the checkers'
//! reference model (a `DataTree` replaying the committed sequence): the tree operation a
//! write request asks for, the reply a committed write must get, and the answer a read
//! must get at a given state.
//!
//! These mappings are written from the protocol (docs/protocol.md: Opcodes, Error codes,
//! Multi) and not borrowed from the server's code, so a mistake in the server's reply layer
//! shows up as a mismatch instead of being copied into the oracle.
//!
//! Not here: deciding when a read is answered (the replay does) or watches.

use paddock_core::acl::Id;
use paddock_core::error::ZkError;
use paddock_core::ids::SessionId;
use paddock_core::tree::{
    Applied, CheckOp, CreateOp, CreateOpcode, DataTree, DeleteOp, MultiOp as TreeMultiOp, Op,
    OpResult, ReadOp, ReadResult, SetAclOp, SetDataOp, TxnKind,
};
use paddock_core::wire::{
    self, Create2Response, CreateResponse, GetAclResponse, GetChildren2Response, GetDataResponse,
    MultiOp, MultiReadOp, MultiResult, Request, Response,
};

/// What a request is, as far as the checkers care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Goes through the log as a tree operation.
    Write(Op),
    /// Goes through the log as a sync, answered with `path`.
    Sync(String),
    /// Answered from the server's local state.
    Read,
    /// Anything else (ping, auth, watch management...): not checked against the model.
    Other,
}

fn create_op(opcode: CreateOpcode, r: &wire::CreateRequest) -> CreateOp {
    CreateOp {
        opcode,
        path: r.path.clone(),
        data: r.data.clone(),
        acl: r.acl.clone(),
        flags: r.flags,
    }
}

fn create_ttl_op(r: &wire::CreateTtlRequest) -> CreateOp {
    CreateOp {
        opcode: CreateOpcode::CreateTtl { ttl_ms: r.ttl_ms },
        path: r.path.clone(),
        data: r.data.clone(),
        acl: r.acl.clone(),
        flags: r.flags,
    }
}

fn multi_op(op: &MultiOp) -> TreeMultiOp {
    match op {
        MultiOp::Create(r) => TreeMultiOp::Create(create_op(CreateOpcode::Create, r)),
        MultiOp::Create2(r) => TreeMultiOp::Create(create_op(CreateOpcode::Create2, r)),
        MultiOp::CreateContainer(r) => {
            TreeMultiOp::Create(create_op(CreateOpcode::CreateContainer, r))
        }
        MultiOp::CreateTtl(r) => TreeMultiOp::Create(create_ttl_op(r)),
        MultiOp::Delete(r) => TreeMultiOp::Delete(DeleteOp {
            path: r.path.clone(),
            version: r.version,
        }),
        MultiOp::SetData(r) => TreeMultiOp::SetData(SetDataOp {
            path: r.path.clone(),
            data: r.data.clone(),
            version: r.version,
        }),
        MultiOp::Check(r) => TreeMultiOp::Check(CheckOp {
            path: r.path.clone(),
            version: r.version,
        }),
    }
}

/// Sorts a request: the tree op a write asks for (with `session` as the caller), a sync,
/// a read, or something else.
pub fn kind(request: &Request, session: SessionId) -> Kind {
    let write = Kind::Write;
    match request {
        Request::Create(r) => write(Op::Create(create_op(CreateOpcode::Create, r))),
        Request::Create2(r) => write(Op::Create(create_op(CreateOpcode::Create2, r))),
        Request::CreateContainer(r) => {
            write(Op::Create(create_op(CreateOpcode::CreateContainer, r)))
        }
        Request::CreateTtl(r) => write(Op::Create(create_ttl_op(r))),
        Request::Delete(r) => write(Op::Delete(DeleteOp {
            path: r.path.clone(),
            version: r.version,
        })),
        Request::SetData(r) => write(Op::SetData(SetDataOp {
            path: r.path.clone(),
            data: r.data.clone(),
            version: r.version,
        })),
        Request::SetAcl(r) => write(Op::SetAcl(SetAclOp {
            path: r.path.clone(),
            acl: r.acl.clone(),
            version: r.version,
        })),
        Request::Multi(ops) => write(Op::Multi(ops.iter().map(multi_op).collect())),
        Request::DeleteContainer(raw) => write(Op::DeleteContainer {
            path: String::from_utf8_lossy(raw).into_owned(),
        }),
        Request::CloseSession => write(Op::CloseSession { session }),
        Request::Sync(r) => Kind::Sync(r.path.clone()),
        Request::Exists(_)
        | Request::GetData(_)
        | Request::GetChildren(_)
        | Request::GetChildren2(_)
        | Request::GetAcl(_)
        | Request::GetAllChildrenNumber(_)
        | Request::GetEphemerals(_)
        | Request::MultiRead(_) => Kind::Read,
        _ => Kind::Other,
    }
}

/// A reply as the checkers compare it: header error code and body. Child lists are
/// sorted, since a server may list children in any order.
pub type Answer = (i32, Option<Response>);

/// Puts a reply in the form answers are compared in (children sorted).
pub fn normalize(err: i32, response: Option<&Response>) -> Answer {
    let mut response = response.cloned();
    match &mut response {
        Some(Response::GetChildren(children)) => children.sort(),
        Some(Response::GetChildren2(r)) => r.children.sort(),
        Some(Response::Multi(results)) => {
            for result in results {
                if let MultiResult::GetChildren(children) = result {
                    children.sort();
                }
            }
        }
        _ => {}
    }
    (err, response)
}

fn multi_result(result: &OpResult) -> MultiResult {
    match result {
        OpResult::Created {
            opcode: CreateOpcode::Create,
            path,
            ..
        } => MultiResult::Create(CreateResponse { path: path.clone() }),
        OpResult::Created { path, stat, .. } => MultiResult::Create2(Create2Response {
            path: path.clone(),
            stat: *stat,
        }),
        OpResult::Deleted => MultiResult::Delete,
        OpResult::DataSet(stat) | OpResult::AclSet(stat) => MultiResult::SetData(*stat),
        OpResult::Checked => MultiResult::Check,
        OpResult::Error(err) => MultiResult::Error(err.code()),
    }
}

/// The reply to a committed write transaction, from what applying it produced: a multi
/// answers one result per op with header error 0 even when it failed (docs/protocol.md,
/// Multi); a single write answers its result record; session and reaper txns answer an
/// empty body.
pub fn write_answer(kind: &TxnKind, applied: &Applied) -> Answer {
    match kind {
        TxnKind::Multi(_) | TxnKind::MultiFailed(_) => (
            0,
            Some(Response::Multi(
                applied.results.iter().map(multi_result).collect(),
            )),
        ),
        TxnKind::Single(_) => match applied.results.first() {
            Some(OpResult::Created {
                opcode: CreateOpcode::Create,
                path,
                ..
            }) => (
                0,
                Some(Response::Create(CreateResponse { path: path.clone() })),
            ),
            Some(OpResult::Created { path, stat, .. }) => (
                0,
                Some(Response::Create2(Create2Response {
                    path: path.clone(),
                    stat: *stat,
                })),
            ),
            Some(OpResult::DataSet(stat) | OpResult::AclSet(stat)) => {
                (0, Some(Response::Stat(*stat)))
            }
            Some(OpResult::Deleted | OpResult::Checked) => (0, None),
            Some(OpResult::Error(err)) => (err.code(), None),
            None => (ZkError::SystemError.code(), None),
        },
        TxnKind::CreateSession { .. }
        | TxnKind::CloseSession { .. }
        | TxnKind::DeleteContainer { .. } => (0, None),
    }
}

fn answer_of(result: Result<Response, ZkError>) -> Answer {
    match result {
        Ok(response) => normalize(0, Some(&response)),
        Err(err) => (err.code(), None),
    }
}

/// The answer a read request gets from `tree`, asked by a connection holding `ids` in
/// `session`; `None` when `request` is not a read.
pub fn read_answer(
    tree: &DataTree,
    request: &Request,
    ids: &[Id],
    session: SessionId,
) -> Option<Answer> {
    let result = match request {
        Request::Exists(r) => tree.exists(&r.path, ids).map(Response::Stat),
        Request::GetData(r) => tree
            .get_data(&r.path, ids)
            .map(|(data, stat)| Response::GetData(GetDataResponse { data, stat })),
        Request::GetChildren(r) => tree.get_children(&r.path, ids).map(Response::GetChildren),
        Request::GetChildren2(r) => tree.get_children2(&r.path, ids).map(|(children, stat)| {
            Response::GetChildren2(GetChildren2Response { children, stat })
        }),
        Request::GetAcl(r) => tree
            .get_acl(&r.path, ids)
            .map(|(acl, stat)| Response::GetAcl(GetAclResponse { acl, stat })),
        Request::GetAllChildrenNumber(r) => tree
            .get_all_children_number(&r.path, ids)
            .map(Response::GetAllChildrenNumber),
        Request::GetEphemerals(r) => Ok(Response::GetEphemerals(
            tree.get_ephemerals(session, &r.prefix_path),
        )),
        Request::MultiRead(ops) => {
            let ops: Vec<ReadOp> = ops
                .iter()
                .map(|op| match op {
                    MultiReadOp::GetData(r) => ReadOp::GetData(r.path.clone()),
                    MultiReadOp::GetChildren(r) => ReadOp::GetChildren(r.path.clone()),
                })
                .collect();
            let results = tree
                .multi_read(&ops, ids)
                .into_iter()
                .map(|result| match result {
                    ReadResult::Data(data, stat) => {
                        MultiResult::GetData(GetDataResponse { data, stat })
                    }
                    ReadResult::Children(children) => MultiResult::GetChildren(children),
                    ReadResult::Error(err) => MultiResult::Error(err.code()),
                })
                .collect();
            Ok(Response::Multi(results))
        }
        _ => return None,
    };
    Some(answer_of(result))
}
