//! `paddock inspect FILE`: what a snapshot, log segment or hard state holds, Paddock's own
//! or Apache ZooKeeper's (as ZooKeeper's `SnapshotFormatter` and `TxnLogToolkit` show
//! theirs), as text or JSON. The kind is found from the file's first bytes; a ZooKeeper
//! snapshot named `.gz` or `.snappy` is decompressed first.

use std::path::Path;

use paddock_core::limits::Limits;
use paddock_core::node::{NodeSnapshot, Proposal, ProposalBody};
use paddock_core::storage::{self, HardState};
use paddock_core::tree::{PersistedZnode, TxnKind, TxnOp};
use paddock_core::zk_files::{self, LogEnd, ZkTxn};
use serde_json::{Value, json};

/// One line of a log: a txn as an operator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Txn {
    zxid: i64,
    /// The log index (Paddock's logs only).
    index: Option<u64>,
    session: i64,
    time: i64,
    /// The operation (`create`, `setData`, `multi`, `createSession`, ...).
    op: String,
    /// The paths it touches.
    paths: Vec<String>,
}

/// What a file holds.
#[derive(Debug)]
enum Inspected {
    Snapshot {
        format: &'static str,
        /// The last zxid it covers (ZooKeeper's: from the file name, when it has one).
        zxid: Option<i64>,
        index: Option<u64>,
        znodes: Vec<(String, PersistedZnode)>,
        sessions: Vec<(i64, i32)>,
    },
    Log {
        format: &'static str,
        txns: Vec<Txn>,
        /// Where the valid records end, when a torn write follows them.
        torn_at: Option<u64>,
    },
    HardState(HardState),
}

/// Reads and describes `path`; the text (or JSON) to print, or why it cannot be read.
pub fn inspect(path: &Path, as_json: bool) -> Result<String, String> {
    let bytes = zk_snapshot_or_raw(path)?;
    // ZooKeeper names a snapshot by the zxid it covers (its contents do not say it).
    let named_zxid = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("snapshot."))
        .and_then(|rest| rest.split('.').next())
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .map(|zxid| zxid as i64);
    let inspected = describe(&bytes, named_zxid)?;
    Ok(if as_json {
        let mut text =
            serde_json::to_string_pretty(&to_json(&inspected)).map_err(|e| e.to_string())?;
        text.push('\n');
        text
    } else {
        to_text(&inspected)
    })
}

fn zk_snapshot_or_raw(path: &Path) -> Result<Vec<u8>, String> {
    let name = path.to_string_lossy();
    if name.ends_with(".gz") || name.ends_with(".snappy") {
        crate::zk_import::snapshot_bytes(path)
    } else {
        std::fs::read(path).map_err(|e| e.to_string())
    }
}

fn describe(bytes: &[u8], named_zxid: Option<i64>) -> Result<Inspected, String> {
    let magic4 = bytes.get(..4).and_then(|m| <[u8; 4]>::try_from(m).ok());
    let magic4 = magic4.map(i32::from_be_bytes);
    if magic4 == Some(zk_files::SNAPSHOT_MAGIC) {
        let snap = zk_files::decode_snapshot(bytes).map_err(|e| e.to_string())?;
        return Ok(Inspected::Snapshot {
            format: "zookeeper",
            zxid: named_zxid,
            index: None,
            znodes: snap.znodes,
            sessions: snap.sessions,
        });
    }
    if magic4 == Some(zk_files::LOG_MAGIC) {
        let log = zk_files::decode_log(bytes).map_err(|e| e.to_string())?;
        let txns = log
            .records
            .iter()
            .map(|r| zk_txn(r.header.zxid, r.header.client_id, r.header.time, &r.txn))
            .collect();
        let torn_at = match log.end {
            LogEnd::Torn { offset } => Some(offset as u64),
            LogEnd::Clean => None,
        };
        return Ok(Inspected::Log {
            format: "zookeeper",
            txns,
            torn_at,
        });
    }
    if bytes.starts_with(&storage::SNAPSHOT_MAGIC) {
        let (meta, state) = storage::snapshot_file_unframe(bytes.to_vec(), u64::MAX)
            .ok_or("a damaged Paddock snapshot (its framing or checksum does not check)")?;
        let state = NodeSnapshot::decode(&state).map_err(|e| e.reason)?;
        return Ok(Inspected::Snapshot {
            format: "paddock",
            zxid: Some(meta.zxid.as_wire()),
            index: Some(meta.index),
            znodes: state
                .tree
                .persisted()
                .map(|(p, z)| (p.to_owned(), z))
                .collect(),
            sessions: state
                .sessions
                .iter()
                .map(|s| (s.id.0, i32::try_from(s.timeout_ms).unwrap_or(i32::MAX)))
                .collect(),
        });
    }
    if bytes.starts_with(&storage::SEGMENT_MAGIC) {
        let limits = Limits::default();
        let scan = storage::scan_segment(0, bytes, paddock_core::ids::Zxid::ZERO, &limits)
            .map_err(|e| e.to_string())?;
        let mut txns = Vec::new();
        for record in &scan.records {
            let (index, payload) = record
                .payload
                .split_first_chunk::<8>()
                .ok_or("a record without its index")?;
            let index = u64::from_le_bytes(*index);
            txns.push(paddock_txn(record.zxid.as_wire(), index, payload));
        }
        let torn_at = match scan.tail {
            storage::Tail::Torn { offset, .. } => Some(offset),
            storage::Tail::Clean => None,
        };
        return Ok(Inspected::Log {
            format: "paddock",
            txns,
            torn_at,
        });
    }
    if bytes.starts_with(&storage::HARD_STATE_MAGIC) {
        return HardState::decode(bytes)
            .map(Inspected::HardState)
            .map_err(|e| e.to_string());
    }
    Err(
        "not a snapshot, log or hard state of Paddock or ZooKeeper (unknown first bytes)"
            .to_owned(),
    )
}

fn zk_txn(zxid: i64, session: i64, time: i64, txn: &ZkTxn) -> Txn {
    let (op, paths) = zk_op(txn);
    Txn {
        zxid,
        index: None,
        session,
        time,
        op,
        paths,
    }
}

fn zk_op(txn: &ZkTxn) -> (String, Vec<String>) {
    match txn {
        ZkTxn::CreateSession { timeout_ms } => {
            (format!("createSession timeout={timeout_ms}"), Vec::new())
        }
        ZkTxn::CloseSession { paths } => {
            ("closeSession".to_owned(), paths.clone().unwrap_or_default())
        }
        ZkTxn::Create {
            path,
            ephemeral_owner,
            ..
        } => {
            let op = match *ephemeral_owner {
                0 => "create",
                i64::MIN => "createContainer",
                owner if (owner as u64) >> 56 == 0xFF => "createTTL",
                _ => "create ephemeral",
            };
            (op.to_owned(), vec![path.clone()])
        }
        ZkTxn::Delete { path } => ("delete".to_owned(), vec![path.clone()]),
        ZkTxn::SetData { path, version, .. } => {
            (format!("setData version={version}"), vec![path.clone()])
        }
        ZkTxn::SetAcl { path, version, .. } => {
            (format!("setACL aversion={version}"), vec![path.clone()])
        }
        ZkTxn::Check => ("check".to_owned(), Vec::new()),
        ZkTxn::Error { err } => (format!("error {err}"), Vec::new()),
        ZkTxn::Multi(ops) => {
            let parts: Vec<(String, Vec<String>)> = ops.iter().map(zk_op).collect();
            let names: Vec<&str> = parts.iter().map(|(op, _)| op.as_str()).collect();
            (
                format!("multi [{}]", names.join(", ")),
                parts.iter().flat_map(|(_, p)| p.clone()).collect(),
            )
        }
    }
}

fn paddock_txn(zxid: i64, index: u64, payload: &[u8]) -> Txn {
    let mut txn = Txn {
        zxid,
        index: Some(index),
        session: 0,
        time: 0,
        op: String::new(),
        paths: Vec::new(),
    };
    if payload.is_empty() {
        txn.op = "newLeader".to_owned();
        return txn;
    }
    let proposal = match Proposal::decode(payload) {
        Ok(proposal) => proposal,
        Err(e) => {
            txn.op = format!("undecodable ({})", e.reason);
            return txn;
        }
    };
    match proposal.body {
        ProposalBody::Failed { error } => txn.op = format!("error {error:?}"),
        ProposalBody::Sync => txn.op = "sync".to_owned(),
        ProposalBody::Txn(t) => {
            txn.session = t.session.0;
            txn.time = t.time_ms;
            let op = |op: &TxnOp| -> (String, String) {
                match op {
                    TxnOp::Create(c) => ("create".to_owned(), c.path.clone()),
                    TxnOp::Delete { path } => ("delete".to_owned(), path.clone()),
                    TxnOp::SetData { path, version, .. } => {
                        (format!("setData version={version}"), path.clone())
                    }
                    TxnOp::SetAcl { path, aversion, .. } => {
                        (format!("setACL aversion={aversion}"), path.clone())
                    }
                    TxnOp::Check { path } => ("check".to_owned(), path.clone()),
                }
            };
            match t.kind {
                TxnKind::Single(single) => {
                    let (name, path) = op(&single);
                    txn.op = name;
                    txn.paths.push(path);
                }
                TxnKind::Multi(ops) => {
                    let parts: Vec<(String, String)> = ops.iter().map(op).collect();
                    let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
                    txn.op = format!("multi [{}]", names.join(", "));
                    txn.paths = parts.into_iter().map(|(_, p)| p).collect();
                }
                TxnKind::MultiFailed(codes) => txn.op = format!("multi failed {codes:?}"),
                TxnKind::CreateSession { timeout_ms, .. } => {
                    txn.op = format!("createSession timeout={timeout_ms}")
                }
                TxnKind::CloseSession { .. } => txn.op = "closeSession".to_owned(),
                TxnKind::DeleteContainer { path } => {
                    txn.op = "deleteContainer".to_owned();
                    txn.paths.push(path);
                }
            }
        }
    }
    txn
}

fn data_text(data: &Option<Vec<u8>>) -> String {
    match data {
        None => "null".to_owned(),
        Some(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn to_text(inspected: &Inspected) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match inspected {
        Inspected::Snapshot {
            format,
            zxid,
            index,
            znodes,
            sessions,
        } => {
            let zxid = zxid.map_or("unknown (not in its file name)".to_owned(), |z| {
                format!("{z:#x}")
            });
            let index = index.map_or(String::new(), |i| format!(", log index {i}"));
            let _ = writeln!(out, "{format} snapshot, zxid {zxid}{index}");
            let _ = writeln!(out, "ZNode Details (count={}):", znodes.len());
            for (path, z) in znodes {
                let _ = writeln!(out, "----\n{path}");
                let _ = writeln!(
                    out,
                    "  cZxid = {:#018x}\n  ctime = {}\n  mZxid = {:#018x}\n  mtime = {}\n  pZxid = {:#018x}",
                    z.czxid, z.ctime, z.mzxid, z.mtime, z.pzxid
                );
                let _ = writeln!(
                    out,
                    "  cversion = {}\n  dataVersion = {}\n  aclVersion = {}\n  ephemeralOwner = {:#018x}",
                    z.cversion, z.version, z.aversion, z.ephemeral_owner
                );
                let _ = writeln!(
                    out,
                    "  dataLength = {}",
                    z.data.as_ref().map_or(0, Vec::len)
                );
                let acl: Vec<String> = z
                    .acl
                    .iter()
                    .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms))
                    .collect();
                let _ = writeln!(out, "  acl = {}", acl.join(","));
            }
            let _ = writeln!(out, "----\nSession Details (sid, timeout, ephemeralCount):");
            for (id, timeout) in sessions {
                let count = znodes
                    .iter()
                    .filter(|(_, z)| z.ephemeral_owner == *id)
                    .count();
                let _ = writeln!(out, "{id:#018x}, {timeout}, {count}");
            }
        }
        Inspected::Log {
            format,
            txns,
            torn_at,
        } => {
            let _ = writeln!(out, "{format} transaction log, {} txns", txns.len());
            for t in txns {
                let index = t.index.map_or(String::new(), |i| format!(" index {i}"));
                let _ = writeln!(
                    out,
                    "zxid {:#018x}{index} time {} session {:#018x} {} {}",
                    t.zxid,
                    t.time,
                    t.session,
                    t.op,
                    t.paths.join(" ")
                );
            }
            if let Some(offset) = torn_at {
                let _ = writeln!(
                    out,
                    "torn write after offset {offset} (dropped at recovery)"
                );
            }
        }
        Inspected::HardState(hard) => {
            let vote = hard
                .voted_for
                .map_or("none".to_owned(), |n| n.0.to_string());
            let _ = writeln!(
                out,
                "paddock hard state: epoch {}, voted for {vote}",
                hard.current_epoch.0
            );
        }
    }
    out
}

fn to_json(inspected: &Inspected) -> Value {
    match inspected {
        Inspected::Snapshot {
            format,
            zxid,
            index,
            znodes,
            sessions,
        } => json!({
            "kind": "snapshot",
            "format": format,
            "zxid": zxid.map(|z| format!("{z:#x}")),
            "index": index,
            "znodes": znodes.iter().map(|(path, z)| json!({
                "path": path,
                "data": data_text(&z.data),
                "czxid": format!("{:#x}", z.czxid),
                "mzxid": format!("{:#x}", z.mzxid),
                "pzxid": format!("{:#x}", z.pzxid),
                "ctime": z.ctime,
                "mtime": z.mtime,
                "version": z.version,
                "cversion": z.cversion,
                "aversion": z.aversion,
                "ephemeralOwner": format!("{:#x}", z.ephemeral_owner),
                "acl": z.acl.iter().map(|a| json!({"scheme": a.id.scheme, "id": a.id.id, "perms": a.perms})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "sessions": sessions.iter().map(|(id, timeout)| json!({"id": format!("{id:#x}"), "timeout": timeout})).collect::<Vec<_>>(),
        }),
        Inspected::Log {
            format,
            txns,
            torn_at,
        } => json!({
            "kind": "log",
            "format": format,
            "txns": txns.iter().map(|t| json!({
                "zxid": format!("{:#x}", t.zxid),
                "index": t.index,
                "session": format!("{:#x}", t.session),
                "time": t.time,
                "op": t.op,
                "paths": t.paths,
            })).collect::<Vec<_>>(),
            "tornAt": torn_at,
        }),
        Inspected::HardState(hard) => json!({
            "kind": "hardstate",
            "format": "paddock",
            "epoch": hard.current_epoch.0,
            "votedFor": hard.voted_for.map(|n| n.0),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use paddock_core::acl::{Acl, Id};
    use paddock_core::wire::Writer;

    fn znode(owner: i64) -> PersistedZnode {
        PersistedZnode {
            data: Some(b"hi".to_vec()),
            acl: vec![Acl {
                perms: 1,
                id: Id::new("digest", "alice:x"),
            }],
            czxid: 3,
            mzxid: 4,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_001,
            version: 1,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: 3,
        }
    }

    fn zk_log() -> Vec<u8> {
        let mut entry = Vec::new();
        let mut w = Writer::new(&mut entry);
        w.write_long(0x77);
        w.write_int(1);
        w.write_long(5);
        w.write_long(1_700_000_000_002);
        w.write_int(2);
        w.write_ustring("/a/e");
        zk_files::encode_log_records(&[entry])
    }

    // What an operator reads, for a ZooKeeper snapshot and log (text and JSON).
    #[test]
    fn zookeeper_files_read_as_text_and_json() {
        let mut root = znode(0);
        root.acl = Acl::open_unsafe();
        let snapshot = zk_files::encode_snapshot(
            [(0x77, 30_000)],
            [("/", root), ("/a", znode(0)), ("/a/e", znode(0x77))],
        );
        let inspected = describe(&snapshot, Some(4)).unwrap();
        insta::assert_snapshot!("zookeeper_snapshot_text", to_text(&inspected));
        insta::assert_snapshot!(
            "zookeeper_snapshot_json",
            serde_json::to_string_pretty(&to_json(&inspected)).unwrap()
        );
        let log = describe(&zk_log(), None).unwrap();
        insta::assert_snapshot!("zookeeper_log_text", to_text(&log));
        let mut torn = zk_log();
        torn.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 40]);
        let torn = describe(&torn, None).unwrap();
        assert!(to_text(&torn).ends_with("torn write after offset 69 (dropped at recovery)\n"));
        assert!(describe(b"garbage", None).is_err());
    }
}
