//! multi (all-or-nothing, ops checked against the earlier ops of the same multi, the failure
//! layout of docs/protocol.md, Multi) and its txn shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tree_common;

use paddock_core::error::ZkError;
use paddock_core::ids::{SessionId, Zxid};
use paddock_core::tree::{CreateOpcode, Op, OpResult, Txn, TxnKind};
use paddock_core::watch::Change;
use tree_common::*;

/// Applies a no-op txn with the zxid `h` last used to a copy of `before`, so that a
/// tree where a failed multi "applied nothing" can be compared by digest and equality.
fn assert_unchanged_but_zxid(before: &paddock_core::tree::DataTree, h: &Harness) {
    let mut expected = before.clone();
    expected.apply(&Txn {
        zxid: Zxid(h.zxid),
        time_ms: 0,
        session: SessionId(0),
        kind: TxnKind::CreateSession {
            session: SessionId(9),
            password: [0; 16],
            timeout_ms: 1,
        },
    });
    assert_eq!(expected.digest(), h.tree.digest());
    assert_eq!(&expected, &h.tree);
}

// A successful multi applies every op with one shared zxid and reports per-op results and
// the changes in op order.
#[test]
fn multi_success() {
    let mut h = Harness::new();
    h.create("/a", 0).unwrap();
    let ops = vec![
        m_create("/a/x", 0),
        m_set("/a", b"new", 0),
        m_check("/a", 1),
        m_create("/a/seq-", 2),
        m_delete("/a/x", 0),
    ];
    let applied = h.run(Op::Multi(ops)).unwrap();
    assert_eq!(applied.zxid.0, 2);
    assert_eq!(applied.results.len(), 5);
    let created = match &applied.results[0] {
        OpResult::Created { opcode, path, stat } => (*opcode, path.clone(), stat.czxid, stat.ctime),
        other => panic!("{other:?}"),
    };
    assert_eq!(created, (CreateOpcode::Create, "/a/x".into(), 2, 1020));
    assert!(
        matches!(&applied.results[1], OpResult::DataSet(stat) if stat.version == 1 && stat.mzxid == 2)
    );
    assert_eq!(applied.results[2], OpResult::Checked);
    assert!(
        matches!(&applied.results[3], OpResult::Created { path, .. } if path == "/a/seq-0000000001")
    );
    assert_eq!(applied.results[4], OpResult::Deleted);
    assert_eq!(
        applied.changes,
        vec![
            Change::Created("/a/x".into()),
            Change::DataChanged("/a".into()),
            Change::Created("/a/seq-0000000001".into()),
            Change::Deleted("/a/x".into()),
        ]
    );
    let a = h.stat("/a");
    // Two creates (stored 2), one delete, one child left: visible 3; everything at zxid 2.
    assert_eq!(
        (a.cversion, a.num_children, a.pzxid, a.mzxid, a.version),
        (3, 1, 2, 2, 1)
    );
    assert_eq!(h.tree.last_zxid().0, 2);
}

// Two sequential creates in one multi get consecutive numbers; an op sees nodes created
// and deleted by the earlier ops.
#[test]
fn multi_ops_see_earlier_ops() {
    let mut h = Harness::new();
    let applied = h
        .run(Op::Multi(vec![
            m_create("/q", 0),
            m_create("/q/n-", 2),
            m_create("/q/n-", 3),
            m_create("/q/n-0000000001/child", 0),
        ]))
        .unwrap_or_else(|e| panic!("{e:?}"));
    // The 4th op fails (the parent is ephemeral), so this multi is a failure.
    assert_eq!(
        applied.results,
        vec![
            OpResult::Error(ZkError::Ok),
            OpResult::Error(ZkError::Ok),
            OpResult::Error(ZkError::Ok),
            OpResult::Error(ZkError::NoChildrenForEphemerals),
        ]
    );
    let applied = h
        .run(Op::Multi(vec![
            m_create("/q", 0),
            m_create("/q/n-", 2),
            m_create("/q/n-", 3),
        ]))
        .unwrap();
    let paths: Vec<_> = applied
        .results
        .iter()
        .map(|r| match r {
            OpResult::Created { path, .. } => path.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(paths, vec!["/q", "/q/n-0000000000", "/q/n-0000000001"]);
    assert_eq!(
        h.tree.get_ephemerals(h.session, ""),
        vec!["/q/n-0000000001"]
    );
    // Delete then re-create the same path; create then check its fresh version.
    let applied = h
        .run(Op::Multi(vec![
            m_delete("/q/n-0000000000", 0),
            m_create("/q/n-0000000000", 1),
            m_check("/q/n-0000000000", 0),
            m_set("/q/n-0000000000", b"v", 0),
            m_check("/q/n-0000000000", 1),
        ]))
        .unwrap();
    assert!(
        !applied
            .results
            .iter()
            .any(|r| matches!(r, OpResult::Error(_)))
    );
    assert_eq!(h.stat("/q/n-0000000000").ephemeral_owner, h.session.0);
    assert_eq!(h.tree.get_ephemerals(h.session, "").len(), 2);
}

// A failed multi: ok-0 entries before the failing op, its code, RUNTIMEINCONSISTENCY
// after; the txn applies nothing (no node, stat, ephemeral or change), yet takes a zxid.
#[test]
fn multi_failure_layout() {
    let mut h = Harness::new();
    h.create("/a", 0).unwrap();
    let before = h.tree.clone();
    let applied = h
        .run(Op::Multi(vec![
            m_create("/a/x", 1),
            m_set("/a", b"v", -1),
            m_check("/a", 0),
            m_delete("/a/x", -1),
            m_create("/b", 0),
        ]))
        .unwrap();
    assert_eq!(
        applied.results,
        vec![
            OpResult::Error(ZkError::Ok),
            OpResult::Error(ZkError::Ok),
            OpResult::Error(ZkError::BadVersion),
            OpResult::Error(ZkError::RuntimeInconsistency),
            OpResult::Error(ZkError::RuntimeInconsistency),
        ]
    );
    assert!(applied.changes.is_empty());
    assert_eq!(applied.zxid.0, 2);
    match &h.log.last().unwrap().kind {
        TxnKind::MultiFailed(codes) => assert_eq!(codes.len(), 5),
        other => panic!("{other:?}"),
    }
    assert_unchanged_but_zxid(&before, &h);
    assert!(h.tree.get_ephemerals(h.session, "").is_empty());
}

// Each op kind fails inside a multi with its own code, at the first position.
#[test]
fn multi_failure_codes_per_op() {
    let mut h = Harness::new();
    h.create("/a", 0).unwrap();
    h.create("/a/kid", 0).unwrap();
    let cases = vec![
        (m_create("/a", 0), ZkError::NodeExists),
        (m_create("/none/x", 0), ZkError::NoNode),
        (m_create("bad", 0), ZkError::BadArguments),
        (m_create("/x", 9), ZkError::BadArguments),
        (m_delete("/a", -1), ZkError::NotEmpty),
        (m_delete("/zookeeper", -1), ZkError::BadArguments),
        (m_delete("/a/kid", 3), ZkError::BadVersion),
        (m_delete("/a/none", -1), ZkError::NoNode),
        (m_set("/none", b"", -1), ZkError::NoNode),
        (m_set("/a", b"", 4), ZkError::BadVersion),
        (m_set("/a/", b"", -1), ZkError::BadArguments),
        (m_check("/none", -1), ZkError::NoNode),
        (m_check("/a", 1), ZkError::BadVersion),
        (m_check("/a/", 0), ZkError::BadArguments),
        (m_set("/zookeeper/config", b"", -1), ZkError::NoAuth),
        (m_check("/a", -1), ZkError::Ok),
    ];
    for (op, code) in cases {
        let label = format!("{op:?}");
        let applied = h.run(Op::Multi(vec![op, m_create("/later", 0)])).unwrap();
        if code == ZkError::Ok {
            assert_eq!(applied.results[0], OpResult::Checked, "{label}");
            h.delete("/later", -1).unwrap();
            continue;
        }
        assert_eq!(
            applied.results,
            vec![
                OpResult::Error(code),
                OpResult::Error(ZkError::RuntimeInconsistency)
            ],
            "{label}"
        );
        assert!(h.tree.node("/later").is_none());
    }
    // NOAUTH on a check needs READ.
    h.set_acl(
        "/a",
        vec![acl(paddock_core::acl::perms::ADMIN, "world", "anyone")],
        -1,
    )
    .unwrap();
    let applied = h.run(Op::Multi(vec![m_check("/a", -1)])).unwrap();
    assert_eq!(applied.results, vec![OpResult::Error(ZkError::NoAuth)]);
}

// An empty multi is legal and does nothing; a multi from a dead session is refused whole.
#[test]
fn multi_empty_and_session() {
    let mut h = Harness::new();
    let applied = h.run(Op::Multi(vec![])).unwrap();
    assert!(applied.results.is_empty());
    assert_eq!(h.log.last().unwrap().kind, TxnKind::Multi(vec![]));
    h.session_live = false;
    assert_eq!(
        h.run(Op::Multi(vec![m_create("/x", 0)])).map(|_| ()),
        Err(ZkError::SessionExpired)
    );
    assert_eq!(
        h.run(Op::Multi(vec![])).map(|_| ()),
        Err(ZkError::SessionExpired)
    );
}

// Applying a multi txn to a tree it was not prepared against (here: the node it creates
// already exists) changes nothing and answers SYSTEMERROR per op, without panicking.
#[test]
fn multi_mismatch_is_atomic() {
    let mut h = Harness::new();
    let txn = h
        .tree
        .prepare(
            &Op::Multi(vec![m_create("/a", 0), m_create("/b", 0)]),
            &h.ctx(),
        )
        .unwrap();
    h.create("/b", 0).unwrap();
    let before = h.tree.clone();
    let applied = h.tree.apply(&txn);
    assert_eq!(
        applied.results,
        vec![OpResult::Error(ZkError::SystemError); 2]
    );
    assert!(applied.changes.is_empty());
    assert!(h.tree.node("/a").is_none());
    let mut expected = before;
    expected.apply(&Txn {
        kind: TxnKind::Multi(vec![]),
        ..txn.clone()
    });
    assert_eq!(expected, h.tree);
    // The same for a single op.
    let single = h
        .tree
        .prepare(&Op::Create(create_op("/c", 0)), &h.ctx())
        .unwrap();
    h.create("/c", 0).unwrap();
    let applied = h.tree.apply(&single);
    assert_eq!(applied.results, vec![OpResult::Error(ZkError::SystemError)]);
}
