//! The prepare stage: checks one write against the tree (or against a copy of its node map
//! changed by the earlier ops of a multi) in ZooKeeper's check order, and fixes everything the apply
//! stage needs into a [`TxnOp`] (ZooKeeper's PrepRequestProcessor; docs/protocol.md, Create,
//! Error codes, Multi).
//!
//! Nothing here mutates the tree; the multi preparation mutates only its own copy of the node map.

use crate::acl::{self, perms};
use crate::error::ZkError;

use super::TreeConfig;
use super::apply::apply_op;
use super::node::{NodeKind, Nodes};
use super::path;
use super::txn::{
    CheckOp, CreateOp, CreateOpcode, CreateTxn, DeleteOp, MultiOp, OpContext, SetAclOp, SetDataOp,
    TxnKind, TxnOp,
};

/// The largest TTL ZooKeeper accepts (EphemeralType.TTL's 40-bit value), ms.
pub const TTL_MS_MAX: i64 = 0xFF_FFFF_FFFF;

/// A CreateMode decoded from its flags.
#[derive(Debug, Clone, Copy)]
struct CreateMode {
    ephemeral: bool,
    sequential: bool,
    ttl: bool,
}

fn create_mode(flags: i32) -> Result<CreateMode, ZkError> {
    let (ephemeral, sequential, ttl) = match flags {
        0 | 4 => (false, false, false),
        1 => (true, false, false),
        2 => (false, true, false),
        3 => (true, true, false),
        5 => (false, false, true),
        6 => (false, true, true),
        _ => return Err(ZkError::BadArguments),
    };
    Ok(CreateMode {
        ephemeral,
        sequential,
        ttl,
    })
}

/// Version rule: -1 matches anything; the new version is the current one plus one (int32,
/// wrapping).
fn check_version(current: i32, expected: i32) -> Result<i32, ZkError> {
    if expected != -1 && expected != current {
        return Err(ZkError::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

fn check_session(ctx: &OpContext) -> Result<(), ZkError> {
    if ctx.session_live {
        Ok(())
    } else {
        Err(ZkError::SessionExpired)
    }
}

fn check_data_size(data_bytes_max: u32, data: Option<&Vec<u8>>) -> Result<(), ZkError> {
    let size_bytes = data.map_or(0, Vec::len);
    if u64::try_from(size_bytes).unwrap_or(u64::MAX) > u64::from(data_bytes_max) {
        return Err(ZkError::BadArguments);
    }
    Ok(())
}

/// The TTL the create asks for: opcode 21's field, or -1 (what ZooKeeper uses for the other
/// opcodes); checked against the mode as EphemeralType.validateTTL does.
fn create_ttl_ms(op: &CreateOp, mode: CreateMode) -> Result<i64, ZkError> {
    let ttl_ms = match op.opcode {
        CreateOpcode::CreateTtl { ttl_ms } => ttl_ms,
        _ => -1,
    };
    let valid = if mode.ttl {
        ttl_ms > 0 && ttl_ms <= TTL_MS_MAX
    } else {
        ttl_ms < 0
    };
    if !valid {
        return Err(ZkError::BadArguments);
    }
    // Opcode 21 with a non-TTL mode would make ZooKeeper fail while applying its txn; we
    // refuse it here instead, so that apply cannot fail.
    if matches!(op.opcode, CreateOpcode::CreateTtl { .. }) && !mode.ttl {
        return Err(ZkError::BadArguments);
    }
    Ok(ttl_ms)
}

/// create / create2 / createContainer / createTTL, in the order of docs/protocol.md, Create.
pub(crate) fn create(
    store: &Nodes,
    (config, data_bytes_max): (&TreeConfig, u32),
    op: &CreateOp,
    ctx: &OpContext,
) -> Result<CreateTxn, ZkError> {
    let mode = create_mode(op.flags)?;
    // planted bug: ephemeral-leak (EPHEMERAL_SEQUENTIAL read as PERSISTENT_SEQUENTIAL).
    #[cfg(feature = "planted-bugs")]
    let mode = match config.bug {
        Some(crate::bugs::Bug::EphemeralLeak) if op.flags == 3 => CreateMode {
            ephemeral: false,
            ..mode
        },
        _ => mode,
    };
    if mode.ttl && !config.ttl_enabled {
        return Err(ZkError::Unimplemented);
    }
    let ttl_ms = create_ttl_ms(op, mode)?;
    check_session(ctx)?;
    let parent_path = path::parent_of(&op.path).ok_or(ZkError::BadArguments)?;
    check_data_size(data_bytes_max, op.data.as_ref())?;
    let acl = acl::fixup_acl(&op.acl, &ctx.ids)?;
    let parent = store.node(parent_path).ok_or(ZkError::NoNode)?;
    acl::check(&parent.acl, &ctx.ids, perms::CREATE)?;
    let sequence = parent.cversion_stored;
    // planted bug: sequence-from-child-count (the suffix counts the current children).
    #[cfg(feature = "planted-bugs")]
    let sequence = match config.bug {
        Some(crate::bugs::Bug::SequenceFromChildCount) => {
            i32::try_from(parent.child_count).unwrap_or(i32::MAX)
        }
        _ => sequence,
    };
    let final_path = if mode.sequential {
        format!("{}{}", op.path, path::sequence_suffix(sequence))
    } else {
        op.path.clone()
    };
    path::validate(&final_path)?;
    if store.contains(&final_path) {
        return Err(ZkError::NodeExists);
    }
    if matches!(parent.kind, NodeKind::Ephemeral(_)) {
        return Err(ZkError::NoChildrenForEphemerals);
    }
    let kind = match op.opcode {
        CreateOpcode::CreateContainer => NodeKind::Container,
        CreateOpcode::CreateTtl { .. } => NodeKind::Ttl { ttl_ms },
        CreateOpcode::Create | CreateOpcode::Create2 if mode.ephemeral => {
            NodeKind::Ephemeral(ctx.session)
        }
        CreateOpcode::Create | CreateOpcode::Create2 => NodeKind::Persistent,
    };
    Ok(CreateTxn {
        opcode: op.opcode,
        path: final_path,
        data: op.data.clone(),
        acl,
        kind,
    })
}

/// delete: BADARGUMENTS (no `/`, NUL, special node), NONODE (parent), NOAUTH (DELETE on the
/// parent), NONODE (node), BADVERSION, NOTEMPTY. The path itself is not validated.
pub(crate) fn delete(store: &Nodes, op: &DeleteOp, ctx: &OpContext) -> Result<TxnOp, ZkError> {
    check_session(ctx)?;
    let parent_path = path::parent_of(&op.path).ok_or(ZkError::BadArguments)?;
    if path::is_special(&op.path) {
        return Err(ZkError::BadArguments);
    }
    let parent = store.node(parent_path).ok_or(ZkError::NoNode)?;
    acl::check(&parent.acl, &ctx.ids, perms::DELETE)?;
    let node = store.node(&op.path).ok_or(ZkError::NoNode)?;
    check_version(node.version, op.version)?;
    if node.child_count != 0 {
        return Err(ZkError::NotEmpty);
    }
    Ok(TxnOp::Delete {
        path: op.path.clone(),
    })
}

/// setData: BADARGUMENTS (path, data size), NONODE, NOAUTH (WRITE), BADVERSION.
pub(crate) fn set_data(
    store: &Nodes,
    data_bytes_max: u32,
    op: &SetDataOp,
    ctx: &OpContext,
) -> Result<TxnOp, ZkError> {
    check_session(ctx)?;
    path::validate(&op.path)?;
    check_data_size(data_bytes_max, op.data.as_ref())?;
    let node = store.node(&op.path).ok_or(ZkError::NoNode)?;
    acl::check(&node.acl, &ctx.ids, perms::WRITE)?;
    let version = check_version(node.version, op.version)?;
    Ok(TxnOp::SetData {
        path: op.path.clone(),
        data: op.data.clone(),
        version,
    })
}

/// setACL: BADARGUMENTS, INVALIDACL, NONODE, NOAUTH (ADMIN), BADVERSION (aversion).
pub(crate) fn set_acl(store: &Nodes, op: &SetAclOp, ctx: &OpContext) -> Result<TxnOp, ZkError> {
    check_session(ctx)?;
    path::validate(&op.path)?;
    let acl = acl::fixup_acl(&op.acl, &ctx.ids)?;
    let node = store.node(&op.path).ok_or(ZkError::NoNode)?;
    acl::check(&node.acl, &ctx.ids, perms::ADMIN)?;
    let aversion = check_version(node.aversion, op.version)?;
    Ok(TxnOp::SetAcl {
        path: op.path.clone(),
        acl,
        aversion,
    })
}

/// check (multi only): BADARGUMENTS, NONODE, NOAUTH (READ), BADVERSION.
pub(crate) fn check(store: &Nodes, op: &CheckOp, ctx: &OpContext) -> Result<TxnOp, ZkError> {
    check_session(ctx)?;
    path::validate(&op.path)?;
    let node = store.node(&op.path).ok_or(ZkError::NoNode)?;
    acl::check(&node.acl, &ctx.ids, perms::READ)?;
    check_version(node.version, op.version)?;
    Ok(TxnOp::Check {
        path: op.path.clone(),
    })
}

/// deleteContainer, ZooKeeper's re-check before the reaper deletes: BADARGUMENTS (no `/`,
/// NUL, special node), NONODE, NOTEMPTY, and BADVERSION when the node is not a container or
/// TTL node. (ZooKeeper 3.8 only refuses plain ephemerals here; we also spare persistent
/// nodes: docs/protocol.md, Containers and TTL nodes.) No session or ACL check: the server
/// itself asks.
pub(crate) fn delete_container(store: &Nodes, path: &str) -> Result<TxnKind, ZkError> {
    path::parent_of(path).ok_or(ZkError::BadArguments)?;
    if path::is_special(path) {
        return Err(ZkError::BadArguments);
    }
    let node = store.node(path).ok_or(ZkError::NoNode)?;
    if node.child_count != 0 {
        return Err(ZkError::NotEmpty);
    }
    if !matches!(node.kind, NodeKind::Container | NodeKind::Ttl { .. }) {
        return Err(ZkError::BadVersion);
    }
    Ok(TxnKind::DeleteContainer {
        path: path.to_owned(),
    })
}

/// multi: each op is checked against the state changed by the earlier ops (an O(1) copy of
/// the node map), so e.g. two sequential creates get consecutive numbers. The first failure makes
/// the whole multi a `MultiFailed` with ZooKeeper's result layout (docs/protocol.md, Multi).
pub(crate) fn multi(
    base: &Nodes,
    (config, data_bytes_max): (&TreeConfig, u32),
    ops: &[MultiOp],
    ctx: &OpContext,
) -> Result<TxnKind, ZkError> {
    check_session(ctx)?;
    let mut scratch = base.clone();
    let mut prepared = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let txn_op = match op {
            MultiOp::Create(create_op) => {
                create(&scratch, (config, data_bytes_max), create_op, ctx).map(TxnOp::Create)
            }
            MultiOp::Delete(delete_op) => delete(&scratch, delete_op, ctx),
            MultiOp::SetData(set_op) => set_data(&scratch, data_bytes_max, set_op, ctx),
            MultiOp::Check(check_op) => check(&scratch, check_op, ctx),
        };
        let applied = txn_op.and_then(|txn_op| {
            apply_op(&mut scratch, &txn_op, ctx.zxid, ctx.time_ms)
                .map_err(|_| ZkError::SystemError)?;
            Ok(txn_op)
        });
        match applied {
            Ok(txn_op) => prepared.push(txn_op),
            Err(code) => return Ok(TxnKind::MultiFailed(multi_failure(ops.len(), index, code))),
        }
    }
    Ok(TxnKind::Multi(prepared))
}

/// The result codes of a multi whose op `failed_index` failed with `code`.
fn multi_failure(op_count: usize, failed_index: usize, code: ZkError) -> Vec<ZkError> {
    (0..op_count)
        .map(|index| match index.cmp(&failed_index) {
            std::cmp::Ordering::Less => ZkError::Ok,
            std::cmp::Ordering::Equal => code,
            std::cmp::Ordering::Greater => ZkError::RuntimeInconsistency,
        })
        .collect()
}
