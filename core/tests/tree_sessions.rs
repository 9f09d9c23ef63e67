//! Sessions and reaping: CreateSession/CloseSession txns (ephemerals deleted in path
//! order with parents' pzxid/cversion updated), getEphemerals, DeleteContainer's re-check
//! and the container/TTL deletion candidates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tree_common;

use paddock_core::error::ZkError;
use paddock_core::ids::SessionId;
use paddock_core::tree::{CreateOpcode, Op, OpResult, TxnKind};
use paddock_core::watch::Change;
use tree_common::*;

const S1: SessionId = SessionId(0x11);
const S2: SessionId = SessionId(0x22);

/// Creates `path` with `flags` as `session`.
fn create_as(h: &mut Harness, session: SessionId, path: &str, flags: i32) -> String {
    let saved = h.session;
    h.session = session;
    let created = h.create(path, flags).unwrap();
    h.session = saved;
    created
}

// CreateSession is a logged txn that changes no node; its fields travel in the txn.
#[test]
fn create_session_txn() {
    let mut h = Harness::new();
    let nodes_before = h.tree.get_children("/", &h.ids).unwrap();
    let op = Op::CreateSession {
        session: S1,
        password: [7; 16],
        timeout_ms: 4000,
    };
    let applied = h.run(op).unwrap();
    assert!(applied.results.is_empty() && applied.changes.is_empty());
    let txn = h.log.last().unwrap();
    assert_eq!(
        txn.kind,
        TxnKind::CreateSession {
            session: S1,
            password: [7; 16],
            timeout_ms: 4000
        }
    );
    assert_eq!(txn.session, S1);
    // Txns are replicated with bincode: the password and timeout survive the trip.
    let config = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(txn, config).unwrap();
    let (decoded, used): (paddock_core::tree::Txn, usize) =
        bincode::serde::decode_from_slice(&bytes, config).unwrap();
    assert_eq!((&decoded, used), (txn, bytes.len()));
    assert_eq!(h.tree.last_zxid().0, 1);
    assert_eq!(h.tree.get_children("/", &h.ids).unwrap(), nodes_before);
}

// Closing a session deletes exactly its ephemerals, in sorted path order, each with a
// Deleted change; parents get the close txn's zxid as pzxid and a visible cversion bump.
#[test]
fn close_session_deletes_ephemerals() {
    let mut h = Harness::new();
    h.create("/b", 0).unwrap();
    h.create("/a", 0).unwrap();
    create_as(&mut h, S1, "/b/e1", 1);
    create_as(&mut h, S2, "/a/other", 1);
    create_as(&mut h, S1, "/a/e2", 1);
    let seq = create_as(&mut h, S1, "/a/s-", 3);
    create_as(&mut h, S1, "/top", 1);
    assert_eq!(
        h.tree.get_ephemerals(S1, ""),
        vec!["/a/e2", seq.as_str(), "/b/e1", "/top"]
    );
    let a_before = h.stat("/a");
    let applied = h.run(Op::CloseSession { session: S1 }).unwrap();
    let zxid = applied.zxid.0 as i64;
    let expected = vec![
        "/a/e2".to_string(),
        seq.clone(),
        "/b/e1".into(),
        "/top".into(),
    ];
    assert_eq!(applied.closed_ephemerals, expected);
    assert_eq!(
        applied.changes,
        expected
            .iter()
            .map(|p| Change::Deleted(p.clone()))
            .collect::<Vec<_>>()
    );
    assert!(applied.results.is_empty());
    let a = h.stat("/a");
    assert_eq!(
        (a.pzxid, a.cversion, a.num_children),
        (zxid, a_before.cversion + 2, 1)
    );
    assert_eq!(a.mzxid, a_before.mzxid);
    assert_eq!(h.stat("/b").pzxid, zxid);
    assert_eq!(h.stat("/").pzxid, zxid);
    assert!(h.tree.get_ephemerals(S1, "").is_empty());
    assert_eq!(h.tree.get_ephemerals(S2, ""), vec!["/a/other"]);
    assert!(h.tree.ephemerals().get(&S1).is_none());
    // Closing again (or a session without ephemerals) deletes nothing.
    let applied = h.run(Op::CloseSession { session: S1 }).unwrap();
    assert!(applied.changes.is_empty() && applied.closed_ephemerals.is_empty());
}

// getEphemerals filters by plain string prefix; "" and "/" mean everything.
#[test]
fn get_ephemerals_prefix() {
    let mut h = Harness::new();
    h.create("/a", 0).unwrap();
    h.create("/ab", 0).unwrap();
    create_as(&mut h, S1, "/a/x", 1);
    create_as(&mut h, S1, "/ab/y", 1);
    create_as(&mut h, S1, "/b", 1);
    assert_eq!(h.tree.get_ephemerals(S1, "/"), vec!["/a/x", "/ab/y", "/b"]);
    assert_eq!(h.tree.get_ephemerals(S1, ""), vec!["/a/x", "/ab/y", "/b"]);
    assert_eq!(h.tree.get_ephemerals(S1, "/a"), vec!["/a/x", "/ab/y"]);
    assert_eq!(h.tree.get_ephemerals(S1, "/a/"), vec!["/a/x"]);
    assert_eq!(h.tree.get_ephemerals(S1, "/c"), Vec::<String>::new());
    assert_eq!(h.tree.get_ephemerals(S2, ""), Vec::<String>::new());
}

fn container(h: &mut Harness, path: &str) {
    let mut op = create_op(path, 4);
    op.opcode = CreateOpcode::CreateContainer;
    h.create_op(op).unwrap();
}

fn ttl_node(h: &mut Harness, path: &str, ttl_ms: i64) {
    let mut op = create_op(path, 5);
    op.opcode = CreateOpcode::CreateTtl { ttl_ms };
    h.create_op(op).unwrap();
}

// DeleteContainer re-checks: BADARGUMENTS for special paths and no `/`, NONODE, NOTEMPTY
// for children, BADVERSION for anything but a container or TTL node; otherwise it deletes
// like a delete (no ACL or session check).
#[test]
fn delete_container_recheck() {
    let mut h = Harness::new();
    container(&mut h, "/c");
    h.create("/c/kid", 0).unwrap();
    h.create("/plain", 0).unwrap();
    h.create("/eph", 1).unwrap();
    ttl_node(&mut h, "/t", 10);
    let dc = |path: &str| Op::DeleteContainer { path: path.into() };
    assert_eq!(
        h.run(dc("/zookeeper")).map(|_| ()),
        Err(ZkError::BadArguments)
    );
    assert_eq!(h.run(dc("/")).map(|_| ()), Err(ZkError::BadArguments));
    assert_eq!(h.run(dc("c")).map(|_| ()), Err(ZkError::BadArguments));
    assert_eq!(h.run(dc("/none")).map(|_| ()), Err(ZkError::NoNode));
    assert_eq!(h.run(dc("/c")).map(|_| ()), Err(ZkError::NotEmpty));
    assert_eq!(h.run(dc("/plain")).map(|_| ()), Err(ZkError::BadVersion));
    assert_eq!(h.run(dc("/eph")).map(|_| ()), Err(ZkError::BadVersion));
    h.delete("/c/kid", -1).unwrap();
    h.session_live = false;
    // The reaper's delete needs no live session (a client's write would be refused).
    let refused = h.set_acl("/", vec![acl(1, "world", "anyone")], -1);
    assert_eq!(refused.map(|_| ()), Err(ZkError::SessionExpired));
    let applied = h.run(dc("/c")).unwrap();
    assert_eq!(applied.results, vec![OpResult::Deleted]);
    assert_eq!(applied.changes, vec![Change::Deleted("/c".into())]);
    assert_eq!(h.stat("/").pzxid, applied.zxid.0 as i64);
    assert!(h.run(dc("/t")).is_ok());
    assert!(h.tree.node("/t").is_none());
}

// Containers are candidates once they had a child and have none; TTL nodes once childless
// and older (since the last setData) than their TTL, strictly. Output is sorted.
#[test]
fn deletion_candidates() {
    let mut h = Harness::new();
    container(&mut h, "/c2");
    container(&mut h, "/c1");
    container(&mut h, "/never");
    h.create("/c1/k", 0).unwrap();
    h.create("/c2/k", 0).unwrap();
    h.create("/plain", 0).unwrap();
    h.create("/plain/k", 0).unwrap();
    h.delete("/plain/k", -1).unwrap();
    assert!(
        h.tree.deletion_candidates(i64::MAX).is_empty(),
        "containers with children"
    );
    h.delete("/c2/k", -1).unwrap();
    h.delete("/c1/k", -1).unwrap();
    assert_eq!(h.tree.deletion_candidates(0), vec!["/c1", "/c2"]);

    ttl_node(&mut h, "/t", 100);
    let mtime = h.stat("/t").mtime;
    assert_eq!(h.tree.deletion_candidates(mtime + 100), vec!["/c1", "/c2"]);
    assert_eq!(
        h.tree.deletion_candidates(mtime + 101),
        vec!["/c1", "/c2", "/t"]
    );
    // setData refreshes the TTL.
    h.set_data("/t", b"touch", -1).unwrap();
    let mtime2 = h.stat("/t").mtime;
    assert!(mtime2 > mtime);
    assert_eq!(h.tree.deletion_candidates(mtime + 101), vec!["/c1", "/c2"]);
    assert_eq!(
        h.tree.deletion_candidates(mtime2 + 101),
        vec!["/c1", "/c2", "/t"]
    );
    // A TTL node with a child is not a candidate.
    h.create("/t/k", 0).unwrap();
    assert_eq!(h.tree.deletion_candidates(i64::MAX), vec!["/c1", "/c2"]);
}
