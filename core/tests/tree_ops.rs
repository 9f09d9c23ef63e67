//! Single operations on the tree: the exact Stat changes each write makes, every error
//! code each op can return (docs/protocol.md, Error codes) in ZooKeeper's check order,
//! create modes, sequential naming, and the reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tree_common;

use paddock_core::acl::{Acl, Id, digest_id, perms};
use paddock_core::error::ZkError;
use paddock_core::ids::SessionId;
use paddock_core::stat::Stat;
use paddock_core::tree::{
    CheckOp, CreateOpcode, DataTree, NodeKind, Op, OpResult, ReadOp, ReadResult, TreeConfig,
};
use paddock_core::watch::Change;
use tree_common::*;

// A fresh tree has /, /zookeeper, /zookeeper/quota and /zookeeper/config with all-zero
// stats, the root showing cversion -1 and /zookeeper -2, config read-only.
#[test]
fn initial_tree() {
    let tree = DataTree::new(TreeConfig::default());
    let ids = ip_ids();
    assert_eq!(tree.node_count(), 4);
    let (data, root) = tree.get_data("/", &ids).unwrap();
    assert_eq!(data, Some(Vec::new()));
    assert_eq!(
        root,
        Stat {
            cversion: -1,
            num_children: 1,
            ..Stat::default()
        }
    );
    let zk = tree.exists("/zookeeper", &ids).unwrap();
    assert_eq!(
        zk,
        Stat {
            cversion: -2,
            num_children: 2,
            ..Stat::default()
        }
    );
    assert_eq!(
        tree.get_children("/zookeeper", &ids).unwrap(),
        vec!["config", "quota"]
    );
    assert_eq!(
        tree.exists("/zookeeper/quota", &ids).unwrap(),
        Stat::default()
    );
    let (acl, _) = tree.get_acl("/zookeeper/config", &ids).unwrap();
    assert_eq!(acl, Acl::read_unsafe());
    assert_eq!(
        tree.get_data("/zookeeper/config", &ids).unwrap().0,
        Some(Vec::new())
    );
    assert_eq!(tree.get_all_children_number("/", &ids), Ok(3));
    assert_eq!(tree.last_zxid().0, 0);
}

// A persistent create sets every stat field of the new node from its txn, bumps the
// parent's cversion and pzxid, and reports one Created change.
#[test]
fn create_persistent_stats() {
    let mut h = Harness::new();
    let applied = h.run(Op::Create(create_op("/a", 0))).unwrap();
    let expected = Stat {
        czxid: 1,
        mzxid: 1,
        ctime: 1010,
        mtime: 1010,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 1,
        num_children: 0,
        pzxid: 1,
    };
    assert_eq!(
        applied.results,
        vec![OpResult::Created {
            opcode: CreateOpcode::Create,
            path: "/a".into(),
            stat: expected
        }]
    );
    assert_eq!(applied.changes, vec![Change::Created("/a".into())]);
    assert_eq!(applied.zxid.0, 1);
    assert_eq!(h.stat("/a"), expected);
    // Root: stored cversion 1 with 2 children shows 0; pzxid moves, mzxid does not.
    let root = h.stat("/");
    assert_eq!(
        (root.cversion, root.num_children, root.pzxid, root.mzxid),
        (0, 2, 1, 0)
    );
    // A child create changes the parent's pzxid and cversion only.
    h.create("/a/b", 0).unwrap();
    let a = h.stat("/a");
    assert_eq!(
        a,
        Stat {
            cversion: 1,
            num_children: 1,
            pzxid: 2,
            ..expected
        }
    );
    assert_eq!(h.tree.last_zxid().0, 2);
}

// Null and empty data are distinct and both have dataLength 0.
#[test]
fn null_and_empty_data() {
    let mut h = Harness::new();
    let mut op = create_op("/null", 0);
    op.data = None;
    h.create_op(op).unwrap();
    let mut op = create_op("/empty", 0);
    op.data = Some(Vec::new());
    h.create_op(op).unwrap();
    let (null, null_stat) = h.tree.get_data("/null", &h.ids).unwrap();
    let (empty, empty_stat) = h.tree.get_data("/empty", &h.ids).unwrap();
    assert_eq!((null, null_stat.data_length), (None, 0));
    assert_eq!((empty, empty_stat.data_length), (Some(Vec::new()), 0));
    let mut set = paddock_core::tree::SetDataOp {
        path: "/empty".into(),
        data: None,
        version: -1,
    };
    h.run(Op::SetData(set.clone())).unwrap();
    assert_eq!(h.tree.get_data("/empty", &h.ids).unwrap().0, None);
    set.data = Some(b"xyz".to_vec());
    h.run(Op::SetData(set)).unwrap();
    assert_eq!(h.stat("/empty").data_length, 3);
}

// An ephemeral reports its session as ephemeralOwner, is indexed under it, and cannot have
// children; NODEEXISTS is checked before NOCHILDRENFOREPHEMERALS.
#[test]
fn ephemeral_create() {
    let mut h = Harness::new();
    h.create("/e", 1).unwrap();
    assert_eq!(h.stat("/e").ephemeral_owner, 0x100);
    assert_eq!(
        h.tree.node("/e").unwrap().kind(),
        NodeKind::Ephemeral(SessionId(0x100))
    );
    assert_eq!(h.tree.get_ephemerals(SessionId(0x100), ""), vec!["/e"]);
    assert_eq!(
        h.create("/e/child", 0),
        Err(ZkError::NoChildrenForEphemerals)
    );
    assert_eq!(
        h.create("/e/child", 2),
        Err(ZkError::NoChildrenForEphemerals)
    );
    assert_eq!(h.create("/e", 0), Err(ZkError::NodeExists));
    // Sequential ephemerals are ephemerals too.
    let p = h.create("/s-", 3).unwrap();
    assert_eq!(p, "/s-0000000001");
    assert_eq!(h.stat(&p).ephemeral_owner, 0x100);
    assert_eq!(
        h.tree.get_ephemerals(SessionId(0x100), "/"),
        vec!["/e", "/s-0000000001"]
    );
    // Persistent nodes report 0.
    h.create("/p", 0).unwrap();
    assert_eq!(h.stat("/p").ephemeral_owner, 0);
}

// Sequential names use the parent's stored cversion (child creates so far, never lowered
// by deletes), `%010d`, and a path ending in `/` is allowed.
#[test]
fn sequential_naming() {
    let mut h = Harness::new();
    h.create("/q", 0).unwrap();
    assert_eq!(h.create("/q/job-", 2).unwrap(), "/q/job-0000000000");
    assert_eq!(h.create("/q/job-", 2).unwrap(), "/q/job-0000000001");
    h.create("/q/plain", 0).unwrap();
    h.delete("/q/job-0000000000", -1).unwrap();
    assert_eq!(h.create("/q/job-", 2).unwrap(), "/q/job-0000000003");
    assert_eq!(h.create("/q/", 2).unwrap(), "/q/0000000004");
    // Top-level sequential nodes count the root's creates (stored 0 at start: zookeeper
    // was not counted).
    assert_eq!(h.create("/top", 2).unwrap(), "/top0000000001");
    // 5 creates and 1 delete: visible cversion 6 = 2*5 - 4 children.
    let q = h.stat("/q");
    assert_eq!((q.cversion, q.num_children), (6, 4));
    // An existing name blocks a sequential create too.
    // Stored cversion is 5 before this create and 6 after it: the next name collides.
    h.create("/q/job-0000000006", 0).unwrap();
    assert_eq!(h.create("/q/job-", 2), Err(ZkError::NodeExists));
}

// Only opcode 19 makes a container; flags 4 with opcode 1 or 15 is a plain persistent node.
// Containers and TTL nodes show ephemeralOwner 0.
#[test]
fn container_and_ttl_kinds() {
    let mut h = Harness::new();
    let mut op = create_op("/c", 4);
    op.opcode = CreateOpcode::CreateContainer;
    h.create_op(op).unwrap();
    assert_eq!(h.tree.node("/c").unwrap().kind(), NodeKind::Container);
    assert_eq!(h.stat("/c").ephemeral_owner, 0);
    for opcode in [CreateOpcode::Create, CreateOpcode::Create2] {
        let mut op = create_op("/not-container", 4);
        op.opcode = opcode;
        h.create_op(op).unwrap();
        assert_eq!(
            h.tree.node("/not-container").unwrap().kind(),
            NodeKind::Persistent
        );
        h.delete("/not-container", -1).unwrap();
    }
    let mut op = create_op("/t", 5);
    op.opcode = CreateOpcode::CreateTtl { ttl_ms: 500 };
    h.create_op(op).unwrap();
    assert_eq!(
        h.tree.node("/t").unwrap().kind(),
        NodeKind::Ttl { ttl_ms: 500 }
    );
    assert_eq!(
        NodeKind::Ttl { ttl_ms: 500 }.ephemeral_owner_stored(),
        (0xFF00_0000_0000_01F4u64) as i64
    );
    assert_eq!(NodeKind::Container.ephemeral_owner_stored(), i64::MIN);
    assert_eq!(h.stat("/t").ephemeral_owner, 0);
    let mut op = create_op("/ts-", 6);
    op.opcode = CreateOpcode::CreateTtl { ttl_ms: 1 };
    let p = h.create_op(op).unwrap();
    assert_eq!(p, "/ts-0000000004");
    assert_eq!(h.tree.node(&p).unwrap().kind(), NodeKind::Ttl { ttl_ms: 1 });
    // Create2 reports its opcode and the Stat.
    let mut op = create_op("/two", 0);
    op.opcode = CreateOpcode::Create2;
    let applied = h.run(Op::Create(op)).unwrap();
    assert!(
        matches!(&applied.results[0], OpResult::Created { opcode: CreateOpcode::Create2, stat, .. } if stat.czxid == 8)
    );
}

// Flag and TTL validation: unknown flags and TTL out of range are BADARGUMENTS, TTL modes
// with TTL disabled are UNIMPLEMENTED (checked first).
#[test]
fn create_flag_and_ttl_errors() {
    let mut h = Harness::new();
    let ttl = |flags: i32, ttl_ms: i64| {
        let mut op = create_op("/t", flags);
        op.opcode = CreateOpcode::CreateTtl { ttl_ms };
        op
    };
    for flags in [-1, 7, 8, 100] {
        assert_eq!(
            h.create("/x", flags),
            Err(ZkError::BadArguments),
            "flags {flags}"
        );
    }
    assert_eq!(h.create_op(ttl(5, 0)), Err(ZkError::BadArguments));
    assert_eq!(h.create_op(ttl(5, -1)), Err(ZkError::BadArguments));
    assert_eq!(
        h.create_op(ttl(5, 0x100_0000_0000)),
        Err(ZkError::BadArguments)
    );
    assert_eq!(h.create_op(ttl(0, 100)), Err(ZkError::BadArguments));
    assert_eq!(h.create_op(ttl(0, -1)), Err(ZkError::BadArguments));
    // A TTL mode through opcode 1 carries ttl -1: invalid.
    assert_eq!(h.create("/t", 5), Err(ZkError::BadArguments));
    assert!(h.create_op(ttl(5, 0xFF_FFFF_FFFF)).is_ok());

    let mut off = Harness::with_config(TreeConfig {
        ttl_enabled: false,
        ..TreeConfig::default()
    });
    assert_eq!(off.create_op(ttl(5, 100)), Err(ZkError::Unimplemented));
    assert_eq!(off.create_op(ttl(6, 100)), Err(ZkError::Unimplemented));
    // UNIMPLEMENTED wins over a bad TTL, a dead session and a bad path.
    off.session_live = false;
    let mut bad = ttl(6, 0);
    bad.path = "nonsense".into();
    assert_eq!(off.create_op(bad), Err(ZkError::Unimplemented));
}

// The create checks run in ZooKeeper's order: each case has the error it shows plus a
// later one that must not win.
#[test]
fn create_error_order() {
    let mut h = Harness::new();
    h.tree.set_data_bytes_max(4);
    h.create("/p", 0).unwrap();
    h.create("/locked", 0).unwrap();
    h.set_acl("/locked", Acl::read_unsafe(), -1).unwrap();
    h.create("/e", 1).unwrap();

    // Bad TTL beats a dead session.
    h.session_live = false;
    let mut op = create_op("/x", 5);
    op.opcode = CreateOpcode::CreateTtl { ttl_ms: 0 };
    assert_eq!(h.create_op(op), Err(ZkError::BadArguments));
    // A dead session beats a path without `/`.
    assert_eq!(h.create("nonsense", 0), Err(ZkError::SessionExpired));
    assert_eq!(h.create("/ok", 1), Err(ZkError::SessionExpired));
    h.session_live = true;
    // No `/` or NUL beats an invalid ACL.
    let mut op = create_op("nonsense", 0);
    op.acl = vec![];
    assert_eq!(h.create_op(op), Err(ZkError::BadArguments));
    let mut op = create_op("/a\0b", 0);
    op.acl = vec![];
    assert_eq!(h.create_op(op), Err(ZkError::BadArguments));
    // Data too large (our data_bytes_max) is BADARGUMENTS.
    let mut op = create_op("/big", 0);
    op.data = Some(vec![0; 5]);
    assert_eq!(h.create_op(op), Err(ZkError::BadArguments));
    // An invalid ACL beats a missing parent.
    let mut op = create_op("/missing/x", 0);
    op.acl = vec![acl(31, "world", "someone")];
    assert_eq!(h.create_op(op), Err(ZkError::InvalidAcl));
    // A missing parent beats an invalid final path (the path is validated after).
    assert_eq!(h.create("/missing/.", 0), Err(ZkError::NoNode));
    assert_eq!(h.create("a/b", 0), Err(ZkError::NoNode));
    // No CREATE permission beats an invalid final path and an existing node.
    assert_eq!(h.create("/locked/.", 0), Err(ZkError::NoAuth));
    // An invalid final path with a parent that exists.
    assert_eq!(h.create("/p/.", 0), Err(ZkError::BadArguments));
    assert_eq!(h.create("/p/", 0), Err(ZkError::BadArguments));
    assert_eq!(h.create("/p//x", 0), Err(ZkError::NoNode));
    assert_eq!(h.create("/p/\u{1}", 0), Err(ZkError::BadArguments));
    // Existing node; the root counts as existing.
    assert_eq!(h.create("/p", 0), Err(ZkError::NodeExists));
    assert_eq!(h.create("/", 0), Err(ZkError::NodeExists));
    assert_eq!(h.create("/e/x", 0), Err(ZkError::NoChildrenForEphemerals));
}

// delete: the parent's pzxid moves and its visible cversion goes up (stored unchanged);
// the node leaves the ephemeral index; one Deleted change.
#[test]
fn delete_stats() {
    let mut h = Harness::new();
    h.create("/a", 0).unwrap();
    h.create("/a/b", 1).unwrap();
    let before = h.stat("/a");
    let applied = h.delete("/a/b", 0).unwrap();
    assert_eq!(applied.results, vec![OpResult::Deleted]);
    assert_eq!(applied.changes, vec![Change::Deleted("/a/b".into())]);
    let after = h.stat("/a");
    assert_eq!(
        after,
        Stat {
            cversion: 2,
            num_children: 0,
            pzxid: 3,
            ..before
        }
    );
    assert_eq!(h.tree.node("/a").unwrap().cversion_stored(), 1);
    assert!(h.tree.get_ephemerals(SessionId(0x100), "").is_empty());
    assert_eq!(h.tree.exists("/a/b", &h.ids), Err(ZkError::NoNode));
}

// delete errors, in order: BADARGUMENTS (no `/`, NUL, special node), NONODE (parent),
// NOAUTH (DELETE on the parent), NONODE (node), BADVERSION, NOTEMPTY.
#[test]
fn delete_errors() {
    let mut h = Harness::new();
    for special in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(
            h.delete(special, -1).map(|_| ()),
            Err(ZkError::BadArguments),
            "{special}"
        );
    }
    assert_eq!(
        h.delete("nonsense", -1).map(|_| ()),
        Err(ZkError::BadArguments)
    );
    assert_eq!(h.delete("/a\0", -1).map(|_| ()), Err(ZkError::BadArguments));
    assert_eq!(h.delete("/missing/x", -1).map(|_| ()), Err(ZkError::NoNode));
    h.create("/a", 0).unwrap();
    h.create("/a/b", 0).unwrap();
    h.create("/a/b/c", 0).unwrap();
    assert_eq!(h.delete("/a/zz", -1).map(|_| ()), Err(ZkError::NoNode));
    assert_eq!(h.delete("/a/b", 5).map(|_| ()), Err(ZkError::BadVersion));
    assert_eq!(h.delete("/a/b", 0).map(|_| ()), Err(ZkError::NotEmpty));
    assert_eq!(h.delete("/a/b", -1).map(|_| ()), Err(ZkError::NotEmpty));
    // NOAUTH is checked on the parent, before the node's existence.
    h.set_acl(
        "/a",
        vec![acl(perms::ALL ^ perms::DELETE, "world", "anyone")],
        -1,
    )
    .unwrap();
    assert_eq!(h.delete("/a/zz", -1).map(|_| ()), Err(ZkError::NoAuth));
    assert_eq!(h.delete("/a/b", 7).map(|_| ()), Err(ZkError::NoAuth));
    // The node's own ACL does not matter.
    h.set_acl("/a/b/c", Acl::read_unsafe(), -1).unwrap();
    assert!(h.delete("/a/b/c", 0).is_ok());
    // After a setData the version must match the new value.
    h.set_data("/a/b", b"x", -1).unwrap();
    h.set_acl("/a", Acl::open_unsafe(), -1).unwrap();
    assert_eq!(h.delete("/a/b", 0).map(|_| ()), Err(ZkError::BadVersion));
    assert!(h.delete("/a/b", 1).is_ok());
}

// setData: version +1, mzxid and mtime move; czxid, ctime, pzxid, cversion, aversion stay.
#[test]
fn set_data_stats() {
    let mut h = Harness::new();
    h.create("/a", 0).unwrap();
    let before = h.stat("/a");
    let applied = h.set_data("/a", b"hello", 0).unwrap();
    let expected = Stat {
        mzxid: 2,
        mtime: 1020,
        version: 1,
        data_length: 5,
        ..before
    };
    assert_eq!(applied.results, vec![OpResult::DataSet(expected)]);
    assert_eq!(applied.changes, vec![Change::DataChanged("/a".into())]);
    assert_eq!(h.stat("/a"), expected);
    h.set_data("/a", b"", -1).unwrap();
    assert_eq!(h.stat("/a").version, 2);
    // The parent is untouched by a child's setData.
    assert_eq!(h.stat("/").pzxid, 1);
}

// setData errors: BADARGUMENTS (path, size), NONODE, NOAUTH (WRITE), BADVERSION.
#[test]
fn set_data_errors() {
    let mut h = Harness::new();
    h.tree.set_data_bytes_max(3);
    h.create("/a", 0).unwrap();
    assert_eq!(
        h.set_data("/a/", b"x", -1).map(|_| ()),
        Err(ZkError::BadArguments)
    );
    assert_eq!(
        h.set_data("a", b"x", -1).map(|_| ()),
        Err(ZkError::BadArguments)
    );
    assert_eq!(
        h.set_data("/a", b"four", -1).map(|_| ()),
        Err(ZkError::BadArguments)
    );
    assert!(h.set_data("/a", b"abc", -1).is_ok());
    assert_eq!(
        h.set_data("/nope", b"x", -1).map(|_| ()),
        Err(ZkError::NoNode)
    );
    assert_eq!(
        h.set_data("/a", b"x", 0).map(|_| ()),
        Err(ZkError::BadVersion)
    );
    h.set_acl(
        "/a",
        vec![acl(perms::ALL ^ perms::WRITE, "world", "anyone")],
        -1,
    )
    .unwrap();
    // NOAUTH beats BADVERSION.
    assert_eq!(h.set_data("/a", b"x", 9).map(|_| ()), Err(ZkError::NoAuth));
    assert_eq!(
        h.set_data("/zookeeper/config", b"x", -1).map(|_| ()),
        Err(ZkError::NoAuth)
    );
}

// setACL changes only the ACL and aversion (no change reported); its version is checked
// against aversion; `auth` expands to the caller's digest ids.
#[test]
fn set_acl_stats_and_errors() {
    let mut h = Harness::new();
    h.create("/a", 0).unwrap();
    h.set_data("/a", b"x", -1).unwrap();
    let before = h.stat("/a");
    let keep_admin = vec![acl(perms::READ | perms::ADMIN, "world", "anyone")];
    let applied = h.set_acl("/a", keep_admin, 0).unwrap();
    assert_eq!(
        applied.results,
        vec![OpResult::AclSet(Stat {
            aversion: 1,
            ..before
        })]
    );
    assert!(applied.changes.is_empty());
    assert_eq!(
        h.stat("/a"),
        Stat {
            aversion: 1,
            ..before
        }
    );
    // Data version is 1 now but aversion is 1 too; aversion 0 is stale.
    h.set_acl("/a", Acl::open_unsafe(), -1).unwrap();
    assert_eq!(
        h.set_acl("/a", Acl::open_unsafe(), 1).map(|_| ()),
        Err(ZkError::BadVersion)
    );
    assert!(h.set_acl("/a", Acl::open_unsafe(), 2).is_ok());
    assert_eq!(
        h.set_acl("/a/", Acl::open_unsafe(), -1).map(|_| ()),
        Err(ZkError::BadArguments)
    );
    // INVALIDACL beats NONODE.
    assert_eq!(
        h.set_acl("/nope", vec![], -1).map(|_| ()),
        Err(ZkError::InvalidAcl)
    );
    assert_eq!(
        h.set_acl("/nope", Acl::creator_all(), -1).map(|_| ()),
        Err(ZkError::InvalidAcl)
    );
    assert_eq!(
        h.set_acl("/nope", Acl::open_unsafe(), -1).map(|_| ()),
        Err(ZkError::NoNode)
    );
    h.set_acl(
        "/a",
        vec![acl(perms::ALL ^ perms::ADMIN, "world", "anyone")],
        -1,
    )
    .unwrap();
    assert_eq!(
        h.set_acl("/a", Acl::open_unsafe(), 99).map(|_| ()),
        Err(ZkError::NoAuth)
    );
    // `auth` expands to the caller's digest id.
    let bob = digest_id("bob", "secret");
    h.ids.push(Id::new("digest", &bob));
    h.create("/b", 0).unwrap();
    h.set_acl("/b", Acl::creator_all(), -1).unwrap();
    let (acl_list, _) = h.tree.get_acl("/b", &h.ids).unwrap();
    assert_eq!(acl_list, vec![acl(31, "digest", &bob)]);
}

// A top-level check is UNIMPLEMENTED (valid only inside multi).
#[test]
fn top_level_check_unimplemented() {
    let mut h = Harness::new();
    h.create("/a", 0).unwrap();
    let op = Op::Check(CheckOp {
        path: "/a".into(),
        version: 0,
    });
    assert_eq!(h.run(op).map(|_| ()), Err(ZkError::Unimplemented));
}

// Reads: NONODE for absent nodes, BADARGUMENTS for NUL in exists, sorted children, the
// descendant count, multiRead running each read on its own.
#[test]
fn reads() {
    let mut h = Harness::new();
    for p in ["/b", "/a", "/a/z", "/a/y", "/a/y/deep", "/ab"] {
        h.create(p, 0).unwrap();
    }
    let ids = h.ids.clone();
    assert_eq!(h.tree.get_data("/nope", &ids), Err(ZkError::NoNode));
    assert_eq!(h.tree.exists("/nope", &ids), Err(ZkError::NoNode));
    assert_eq!(h.tree.exists("/a\0", &ids), Err(ZkError::BadArguments));
    assert_eq!(h.tree.exists("nonsense", &ids), Err(ZkError::NoNode));
    assert_eq!(h.tree.get_children("/nope", &ids), Err(ZkError::NoNode));
    assert_eq!(h.tree.get_children2("/nope", &ids), Err(ZkError::NoNode));
    assert_eq!(h.tree.get_acl("/nope", &ids), Err(ZkError::NoNode));
    assert_eq!(
        h.tree.get_all_children_number("/nope", &ids),
        Err(ZkError::NoNode)
    );
    assert_eq!(
        h.tree.get_children("/", &ids).unwrap(),
        vec!["a", "ab", "b", "zookeeper"]
    );
    let (children, stat) = h.tree.get_children2("/a", &ids).unwrap();
    assert_eq!(children, vec!["y", "z"]);
    assert_eq!(stat, h.stat("/a"));
    assert_eq!(h.tree.get_all_children_number("/a", &ids), Ok(3));
    assert_eq!(h.tree.get_all_children_number("/a/z", &ids), Ok(0));
    assert_eq!(h.tree.get_all_children_number("/", &ids), Ok(9));
    let reads = h.tree.multi_read(
        &[
            ReadOp::GetData("/a".into()),
            ReadOp::GetChildren("/nope".into()),
            ReadOp::GetChildren("/a".into()),
        ],
        &ids,
    );
    assert_eq!(
        reads,
        vec![
            ReadResult::Data(Some(b"d".to_vec()), h.stat("/a")),
            ReadResult::Error(ZkError::NoNode),
            ReadResult::Children(vec!["y".into(), "z".into()]),
        ]
    );
}

// Read ACLs: getData, exists, getChildren(2), getAllChildrenNumber need READ; getACL needs
// READ or ADMIN and masks digest ids without ADMIN; multiRead reports NOAUTH per read.
#[test]
fn read_acls() {
    let mut h = Harness::new();
    let bob = digest_id("bob", "secret");
    h.create("/n", 0).unwrap();
    h.set_acl(
        "/n",
        vec![
            acl(perms::ADMIN, "world", "anyone"),
            acl(perms::ALL, "digest", &bob),
        ],
        -1,
    )
    .unwrap();
    let anon = ip_ids();
    assert_eq!(h.tree.get_data("/n", &anon), Err(ZkError::NoAuth));
    assert_eq!(h.tree.exists("/n", &anon), Err(ZkError::NoAuth));
    assert_eq!(h.tree.get_children("/n", &anon), Err(ZkError::NoAuth));
    assert_eq!(h.tree.get_children2("/n", &anon), Err(ZkError::NoAuth));
    assert_eq!(
        h.tree.get_all_children_number("/n", &anon),
        Err(ZkError::NoAuth)
    );
    assert_eq!(
        h.tree.multi_read(&[ReadOp::GetData("/n".into())], &anon),
        vec![ReadResult::Error(ZkError::NoAuth)]
    );
    // ADMIN without READ: getACL allowed, unmasked.
    let (unmasked, _) = h.tree.get_acl("/n", &anon).unwrap();
    assert_eq!(unmasked[1], acl(perms::ALL, "digest", &bob));
    // READ without ADMIN: masked.
    let with_bob = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", &bob)];
    h.ids = with_bob.clone();
    h.set_acl(
        "/n",
        vec![
            acl(perms::READ, "world", "anyone"),
            acl(perms::ALL, "digest", &bob),
        ],
        -1,
    )
    .unwrap();
    let (masked, _) = h.tree.get_acl("/n", &anon).unwrap();
    assert_eq!(
        masked,
        vec![
            acl(perms::READ, "world", "anyone"),
            acl(perms::ALL, "digest", "bob:x")
        ]
    );
    let (full, _) = h.tree.get_acl("/n", &with_bob).unwrap();
    assert_eq!(full[1].id.id, bob);
    // Neither READ nor ADMIN: NOAUTH.
    h.set_acl("/n", vec![acl(perms::ALL, "digest", &bob)], -1)
        .unwrap();
    assert_eq!(h.tree.get_acl("/n", &anon), Err(ZkError::NoAuth));
    assert!(h.tree.get_data("/n", &with_bob).is_ok());
    // super reads everything.
    let sup = vec![Id::new("ip", "10.0.0.1"), Id::new("super", "")];
    assert!(h.tree.get_data("/n", &sup).is_ok());
    assert_eq!(h.tree.get_acl("/n", &sup).unwrap().0[0].id.id, bob);
}

// Write ACLs per scheme: an ip prefix grants CREATE to a subnet, digest to its holder,
// super to anyone holding it; a node with an empty ACL list (never made by fixupACL, but
// allowed by the check) would allow all — shown on the ACL module.
#[test]
fn write_acls_per_scheme() {
    let mut h = Harness::new();
    h.create("/net", 0).unwrap();
    h.set_acl(
        "/net",
        vec![acl(perms::CREATE | perms::READ, "ip", "10.1.0.0/16")],
        -1,
    )
    .unwrap();
    h.ids = vec![Id::new("ip", "10.2.0.1")];
    assert_eq!(h.create("/net/x", 0), Err(ZkError::NoAuth));
    h.ids = vec![Id::new("ip", "10.1.200.7")];
    assert!(h.create("/net/x", 0).is_ok());
    // Digest: only the exact id.
    let bob = digest_id("bob", "secret");
    h.ids = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", &bob)];
    let mut op = create_op("/bob", 0);
    op.acl = Acl::creator_all();
    h.create_op(op).unwrap();
    assert_eq!(
        h.tree.get_acl("/bob", &h.ids).unwrap().0,
        vec![acl(31, "digest", &bob)]
    );
    assert!(h.set_data("/bob", b"mine", -1).is_ok());
    h.ids = vec![Id::new("digest", &digest_id("bob", "wrong"))];
    assert_eq!(
        h.set_data("/bob", b"theirs", -1).map(|_| ()),
        Err(ZkError::NoAuth)
    );
    // super passes every check, including on the read-only config node.
    h.ids = vec![Id::new("ip", "127.0.0.1"), Id::new("super", "")];
    assert!(h.set_data("/bob", b"super", -1).is_ok());
    assert!(h.set_data("/zookeeper/config", b"cfg", -1).is_ok());
    // Invalid ACLs on create.
    let mut op = create_op("/bad", 0);
    op.acl = vec![acl(31, "ip", "300.0.0.1")];
    assert_eq!(h.create_op(op), Err(ZkError::InvalidAcl));
}
