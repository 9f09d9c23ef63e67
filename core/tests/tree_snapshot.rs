//! A scripted scenario touching every write kind, dumped as text and pinned with insta:
//! every node's data, kind, full visible Stat and ACL, and every step's results and
//! changes. A change in any Stat rule shows up as a reviewed snapshot diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tree_common;

use std::fmt::Write;

use paddock_core::acl::{Acl, Id, digest_id};
use paddock_core::ids::SessionId;
use paddock_core::tree::{CreateOpcode, DataTree, Op};
use tree_common::*;

fn dump_tree(tree: &DataTree, out: &mut String) {
    let ids = [Id::new("super", "")];
    let mut stack = vec!["/".to_string()];
    while let Some(path) = stack.pop() {
        let node = tree.node(&path).unwrap();
        let s = node.stat();
        let data = match node.data() {
            None => "null".to_string(),
            Some(d) => format!("{:?}", String::from_utf8_lossy(d)),
        };
        writeln!(
            out,
            "{path} data={data} kind={:?}\n  czxid={} mzxid={} pzxid={} ctime={} mtime={} version={} cversion={} aversion={} owner={:#x} len={} children={}",
            node.kind(),
            s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime, s.version, s.cversion, s.aversion,
            s.ephemeral_owner, s.data_length, s.num_children
        )
        .unwrap();
        for entry in tree.get_acl(&path, &ids).unwrap().0 {
            writeln!(
                out,
                "  acl {} {}:{}",
                entry.perms, entry.id.scheme, entry.id.id
            )
            .unwrap();
        }
        let mut children = tree.get_children(&path, &ids).unwrap();
        children.reverse();
        for child in children {
            stack.push(if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            });
        }
    }
    writeln!(out, "ephemerals {:?}", tree.ephemerals()).unwrap();
}

// The scenario's step results, changes and final tree are exactly the reviewed snapshot.
#[test]
fn scenario_snapshot() {
    let mut h = Harness::new();
    let bob = digest_id("bob", "secret");
    h.ids.push(Id::new("digest", &bob));
    let mut container = create_op("/app", 4);
    container.opcode = CreateOpcode::CreateContainer;
    let mut ttl = create_op("/app/lease-", 6);
    ttl.opcode = CreateOpcode::CreateTtl { ttl_ms: 30_000 };
    let mut private = create_op("/private", 0);
    private.acl = Acl::creator_all();
    private.data = None;
    let steps = vec![
        Op::Create(container),
        Op::Create(create_op("/app/lock-", 3)),
        Op::Create(create_op("/app/lock-", 3)),
        Op::Create(ttl),
        Op::Create(private),
        Op::SetData(paddock_core::tree::SetDataOp {
            path: "/app".into(),
            data: Some(b"cfg".to_vec()),
            version: 0,
        }),
        Op::SetAcl(paddock_core::tree::SetAclOp {
            path: "/app".into(),
            acl: Acl::open_unsafe(),
            version: 0,
        }),
        Op::Multi(vec![
            m_create("/jobs", 0),
            m_create("/jobs/j-", 2),
            m_create("/jobs/j-", 2),
            m_delete("/jobs/j-0000000000", 0),
        ]),
        Op::Multi(vec![m_create("/never", 0), m_check("/jobs", 5)]),
        Op::Delete(paddock_core::tree::DeleteOp {
            path: "/app/lock-0000000000".into(),
            version: -1,
        }),
        Op::CloseSession {
            session: SessionId(0x100),
        },
    ];
    let mut out = String::new();
    for op in steps {
        let label = format!("{op:?}");
        let label: String = label.chars().take(60).collect();
        match h.run(op) {
            Ok(applied) => {
                writeln!(out, "zxid {} {label}", applied.zxid.0).unwrap();
                for result in &applied.results {
                    writeln!(out, "  result {result:?}").unwrap();
                }
                for change in &applied.changes {
                    writeln!(out, "  change {change:?}").unwrap();
                }
            }
            Err(code) => writeln!(out, "error {code:?} {label}").unwrap(),
        }
    }
    dump_tree(&h.tree, &mut out);
    writeln!(
        out,
        "candidates at t=100000: {:?}",
        h.tree.deletion_candidates(100_000)
    )
    .unwrap();
    writeln!(out, "digest {:#018x}", h.tree.digest()).unwrap();
    insta::assert_snapshot!(out);
}
