//! READ at event delivery (ZooKeeper 3.8.4+, CVE-2024-23944), seen by clients of a real
//! `Node`: a session receives NodeCreated, NodeDataChanged and NodeDeleted only if it may
//! read the node (for a delete, by the ACL the node had), and NodeChildrenChanged only if
//! it may read the parent, by the ACL that stood at the change and the identities the
//! session holds when the event is delivered; a dropped event still uses up its one-shot
//! watch. Each test has a session `bob` that authenticates as nobody the ACLs name (or as
//! `alice` where it says so) and a writer `alice`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster_support;

use cluster_support::*;
use paddock_core::acl::{self, Acl, Id, perms};
use paddock_core::ids::ConnId;
use paddock_core::wire::{
    AddWatchRequest, AuthPacket, CreateRequest, DeleteRequest, MultiOp, PathWatchRequest, Request,
    SetAclRequest, SetDataRequest,
};

fn alice_only() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id::new("digest", &acl::digest_id("alice", "secret")),
    }]
}

fn auth(c: &mut Cluster, conn: ConnId, user: &str) {
    c.call(
        conn,
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: format!("{user}:secret").into_bytes(),
        }),
    )
    .unwrap();
}

fn ok(c: &mut Cluster, conn: ConnId, request: Request) {
    let watching_missing = matches!(request, Request::Exists(_));
    let (header, _) = c.call(conn, request).expect("answered");
    // exists on a missing node answers NoNode and still sets its watch.
    let no_node = paddock_core::error::ZkError::NoNode.code();
    assert!(
        header.err == 0 || (watching_missing && header.err == no_node),
        "request failed: {}",
        header.err
    );
}

fn create(path: &str, acl: Vec<Acl>) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(b"d".to_vec()),
        acl,
        flags: 0,
    }
}

fn set(path: &str) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(b"e".to_vec()),
        version: -1,
    })
}

fn exists_watch(path: &str) -> Request {
    Request::Exists(PathWatchRequest {
        path: path.into(),
        watch: true,
    })
}

fn recursive_watch(path: &str) -> Request {
    Request::AddWatch(AddWatchRequest {
        path: path.into(),
        mode: 1,
    })
}

/// A one-server ensemble with `alice` (authenticated) and `bob` connected.
fn setup() -> (Cluster, ConnId, ConnId) {
    let mut c = cluster(1, 3);
    elect(&mut c);
    let alice = c.connect(1);
    auth(&mut c, alice, "alice");
    let bob = c.connect(1);
    auth(&mut c, bob, "bob");
    (c, alice, bob)
}

/// The events `conn` received so far, as (type, path), and forgets them.
fn events(c: &mut Cluster, conn: ConnId) -> Vec<(i32, String)> {
    c.run_for(50);
    let client = c.clients.get_mut(&conn).unwrap();
    client
        .events
        .drain(..)
        .map(|e| (e.event_type, e.path))
        .collect()
}

// Through a recursive watch on `/`, bob hears of every change to what he may read and of
// nothing else: not of alice's node being created, changed or deleted, nor of children
// created under it.
#[test]
fn recursive_watch_on_root_hides_unreadable_nodes() {
    let (mut c, alice, bob) = setup();
    ok(&mut c, bob, recursive_watch("/"));
    ok(
        &mut c,
        alice,
        Request::Create(create("/open", Acl::open_unsafe())),
    );
    ok(
        &mut c,
        alice,
        Request::Create(create("/secret", alice_only())),
    );
    ok(
        &mut c,
        alice,
        Request::Create(create("/secret/child", Acl::open_unsafe())),
    );
    ok(&mut c, alice, set("/secret"));
    ok(&mut c, alice, set("/open"));
    ok(
        &mut c,
        alice,
        Request::Delete(DeleteRequest {
            path: "/secret/child".into(),
            version: -1,
        }),
    );
    ok(
        &mut c,
        alice,
        Request::Delete(DeleteRequest {
            path: "/secret".into(),
            version: -1,
        }),
    );
    assert_eq!(
        events(&mut c, bob),
        vec![
            (1, "/open".to_owned()),
            // /secret/child is readable by anyone: its own events pass.
            (1, "/secret/child".to_owned()),
            (3, "/open".to_owned()),
            (2, "/secret/child".to_owned()),
        ]
    );
    // Alice, who may read everything, heard nothing: she set no watch.
    assert!(events(&mut c, alice).is_empty());
}

// NodeChildrenChanged is checked against the parent's ACL; a data event against the
// node's own, as it stood at the change, and a dropped one-shot watch is used up.
#[test]
fn one_shot_watches_are_checked_and_used_up() {
    let (mut c, alice, bob) = setup();
    ok(&mut c, alice, Request::Create(create("/p", alice_only())));
    // Bob cannot read /p, so getChildren fails; an exists watch on a missing node works.
    ok(&mut c, bob, exists_watch("/x"));
    ok(&mut c, alice, Request::Create(create("/x", alice_only())));
    // The creation was hidden from bob, and his watch is gone: opening the ACL and
    // changing the node tells him nothing either.
    ok(
        &mut c,
        alice,
        Request::SetAcl(SetAclRequest {
            path: "/x".into(),
            acl: Acl::open_unsafe(),
            version: -1,
        }),
    );
    ok(&mut c, alice, set("/x"));
    assert!(events(&mut c, bob).is_empty());
    // A fresh watch now that /x is readable: the change is delivered.
    ok(&mut c, bob, exists_watch("/x"));
    ok(&mut c, alice, set("/x"));
    assert_eq!(events(&mut c, bob), vec![(3, "/x".to_owned())]);
    // Deleted: checked against the ACL /x had, which alice restricts first.
    ok(&mut c, bob, exists_watch("/x"));
    ok(
        &mut c,
        alice,
        Request::SetAcl(SetAclRequest {
            path: "/x".into(),
            acl: alice_only(),
            version: -1,
        }),
    );
    ok(
        &mut c,
        alice,
        Request::Delete(DeleteRequest {
            path: "/x".into(),
            version: -1,
        }),
    );
    assert!(events(&mut c, bob).is_empty());
}

// Inside a multi each change is checked against the ACL of that moment: a node created
// open and restricted in the same multi is announced, one created restricted and opened
// is not.
#[test]
fn multi_changes_use_the_acl_at_each_step() {
    let (mut c, alice, bob) = setup();
    ok(&mut c, bob, exists_watch("/a"));
    ok(&mut c, bob, exists_watch("/b"));
    ok(
        &mut c,
        alice,
        Request::Multi(vec![
            MultiOp::Create(create("/a", Acl::open_unsafe())),
            MultiOp::Create(create("/b", alice_only())),
        ]),
    );
    assert_eq!(events(&mut c, bob), vec![(1, "/a".to_owned())]);
}

// Auth added later counts from then on: the identities at delivery decide.
#[test]
fn auth_added_later_opens_later_events() {
    let (mut c, alice, bob) = setup();
    ok(&mut c, alice, Request::Create(create("/s", alice_only())));
    ok(&mut c, bob, recursive_watch("/"));
    ok(&mut c, alice, set("/s"));
    assert!(events(&mut c, bob).is_empty());
    auth(&mut c, bob, "alice");
    ok(&mut c, alice, set("/s"));
    assert_eq!(events(&mut c, bob), vec![(3, "/s".to_owned())]);
}

// A session closing deletes its ephemerals: a watcher who may not read one is not told.
#[test]
fn session_close_deletions_are_checked() {
    let (mut c, alice, bob) = setup();
    let mut ephemeral = create("/e-secret", alice_only());
    ephemeral.flags = 1;
    ok(&mut c, alice, Request::Create(ephemeral));
    let mut open = create("/e-open", Acl::open_unsafe());
    open.flags = 1;
    ok(&mut c, alice, Request::Create(open));
    ok(&mut c, bob, recursive_watch("/"));
    c.call(alice, Request::CloseSession);
    assert_eq!(events(&mut c, bob), vec![(2, "/e-open".to_owned())]);
}

// An identity the runtime proved below the protocol (a TLS client certificate) is held by
// the connection like an authenticated one: an `auth` ACL entry expands to it, it passes
// the ACL naming it, another session does not, and whoAmI lists it.
#[test]
fn identity_from_the_runtime_is_held_by_the_connection() {
    let (mut c, _alice, bob) = setup();
    let carol = c.connect(1);
    let subject = Id::new("x509", "CN=carol,O=Example");
    c.step(
        paddock_core::ids::NodeId(1),
        paddock_core::node::Input::ClientAuthenticated {
            conn: carol,
            id: subject.clone(),
        },
    );
    let owned = vec![Acl {
        perms: perms::ALL,
        id: Id::new("auth", ""),
    }];
    ok(&mut c, carol, Request::Create(create("/carol", owned)));
    assert_eq!(c.get(carol, "/carol", false), Ok(b"d".to_vec()));
    assert_eq!(
        c.get(bob, "/carol", false),
        Err(paddock_core::error::ZkError::NoAuth)
    );
    let (header, reply) = c.call(carol, Request::WhoAmI).unwrap();
    assert_eq!(header.err, 0);
    let text = format!("{reply:?}");
    assert!(text.contains("CN=carol,O=Example"), "{text}");
}

// whoAmI names a digest identity by its user alone (the id is `user:hash`), and every
// other identity, the connection's address here, by its whole id.
#[test]
fn who_am_i_names_a_digest_user_without_the_hash() {
    let (mut c, alice, _bob) = setup();
    let (header, reply) = c.call(alice, Request::WhoAmI).unwrap();
    assert_eq!(header.err, 0);
    let paddock_core::wire::Reply::Response(Some(paddock_core::wire::Response::WhoAmI(infos))) =
        reply
    else {
        panic!("not a whoAmI reply: {reply:?}");
    };
    let named: Vec<(String, String)> = infos
        .into_iter()
        .map(|info| (info.auth_scheme, info.user))
        .collect();
    assert_eq!(
        named,
        [
            ("ip".to_owned(), "10.0.0.1".to_owned()),
            ("digest".to_owned(), "alice".to_owned())
        ]
    );
}
