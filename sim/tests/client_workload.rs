//! The simulated clients as ZooKeeper clients, without faults: every operation kind is
//! sent and succeeds at least sometimes, watches fire and are recorded, digest ACLs let
//! the credential holder in and answer NOAUTH to others, the recorded identities are the
//! ones the server holds, and the same seed gives the same history.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use paddock_core::acl::perms;
use paddock_core::error::ZkError;
use paddock_core::wire::{
    AuthPacket, CreateRequest, MultiResult, PathRequest, PathWatchRequest, Request, Response,
    SetDataRequest,
};
use paddock_sim::SAFETY_PHASE_MS_MAX;
use paddock_sim::history::{History, OpRecord, Outcome};
use paddock_sim::options::{FaultSet, RunOptions};
use paddock_sim::trace::Trace;
use paddock_sim::workload::{credential, digest_acl, op_kind};
use paddock_sim::world::World;

fn options(seed: u64, clients: u32, ops: u64) -> RunOptions {
    RunOptions {
        seed,
        nodes: 5,
        clients,
        ops,
        faults: FaultSet::default(),
        bug: None,
        from_disks: None,
        workload: Default::default(),
        preload_znodes: 0,
    }
}

fn run_world(options: &RunOptions) -> World {
    let mut world = World::new(options, Trace::hash_only());
    while !world.clients_done() && world.run_one(SAFETY_PHASE_MS_MAX) {}
    world
}

/// Runs the world until `done` holds for its history (or nothing is left to run).
fn run_until(world: &mut World, done: impl Fn(&History) -> bool) {
    while !done(&world.history) {
        assert!(world.run_one(SAFETY_PHASE_MS_MAX), "ran out of events");
    }
}

fn replied(op: &OpRecord) -> Option<i32> {
    match op.outcome {
        Outcome::Reply { err, .. } => Some(err),
        _ => None,
    }
}

/// A multi that was answered and applied all its ops (its header err is 0 either way).
fn multi_applied(op: &OpRecord) -> bool {
    match &op.outcome {
        Outcome::Reply {
            err: 0,
            response: Some(Response::Multi(results)),
            ..
        } => results.iter().all(|r| !matches!(r, MultiResult::Error(_))),
        Outcome::Reply { err: 0, .. } => true,
        _ => false,
    }
}

// With no faults, every client finishes its operations, every operation kind of the
// workload is sent and succeeds at least once, multis both apply and roll back, and every
// error path the mix aims at is reached. Prints the per-kind table.
#[test]
fn every_op_kind_is_sent_and_succeeds() {
    let mut table: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
    let mut errors: BTreeSet<i32> = BTreeSet::new();
    let (mut multi_ok, mut multi_failed) = (0, 0);
    for seed in 0..4 {
        let options = options(seed, 8, 1500);
        let world = run_world(&options);
        assert!(world.clients_done(), "seed {seed}: clients did not finish");
        for op in &world.history.ops {
            let row = table.entry(op_kind(&op.request)).or_default();
            row[0] += 1;
            match replied(op) {
                Some(0) => row[1] += 1,
                Some(err) => {
                    row[2] += 1;
                    errors.insert(err);
                }
                None => row[3] += 1,
            }
            if matches!(op.request, Request::Multi(_)) && replied(op) == Some(0) {
                if multi_applied(op) {
                    multi_ok += 1;
                } else {
                    multi_failed += 1;
                }
            }
        }
        let report = paddock_sim::run(&options, None).unwrap();
        assert!(report.result.is_ok(), "{}", report.summary_line());
    }
    println!(
        "{:<28} {:>6} {:>6} {:>6} {:>6}",
        "kind", "sent", "ok", "error", "lost"
    );
    for (kind, [sent, ok, err, lost]) in &table {
        println!("{kind:<28} {sent:>6} {ok:>6} {err:>6} {lost:>6}");
    }
    println!("multi applied {multi_ok}, rolled back {multi_failed}; error codes seen {errors:?}");
    let expected = [
        "create",
        "create-acl",
        "create-ephemeral",
        "create-sequential",
        "create-ephemeral-sequential",
        "create2",
        "create-container",
        "create-ttl",
        "create-ttl-sequential",
        "delete",
        "delete-versioned",
        "setData",
        "setData-versioned",
        "getData",
        "getData-watch",
        "exists",
        "exists-watch",
        "getChildren",
        "getChildren-watch",
        "getChildren2",
        "getChildren2-watch",
        "multi",
        "multiRead",
        "sync",
        "addWatch-persistent",
        "addWatch-recursive",
        "removeWatches",
        "checkWatches",
        "setACL",
        "getACL",
        "addauth",
        "getEphemerals",
        "getAllChildrenNumber",
        "whoAmI",
        "closeSession",
    ];
    for kind in expected {
        let row = table.get(kind).copied().unwrap_or_default();
        assert!(row[1] > 0, "{kind} never succeeded: {row:?}");
    }
    assert!(multi_ok > 0 && multi_failed > 0);
    for err in [
        ZkError::NoNode,
        ZkError::NodeExists,
        ZkError::BadVersion,
        ZkError::NotEmpty,
        ZkError::NoAuth,
        ZkError::InvalidAcl,
        ZkError::NoChildrenForEphemerals,
        ZkError::NoWatcher,
    ] {
        assert!(errors.contains(&err.code()), "{err:?} never answered");
    }
}

/// What a client had asked to watch before `before_ms`: one-shot, persistent and
/// recursive paths, and setWatches lists.
fn watched_paths(
    history: &History,
    client: u32,
    before_ms: u64,
) -> (BTreeSet<String>, Vec<String>) {
    let mut exact = BTreeSet::new();
    let mut recursive = Vec::new();
    for op in history
        .ops
        .iter()
        .filter(|o| o.client == client && o.invoked_ms <= before_ms)
    {
        match &op.request {
            Request::GetData(r)
            | Request::Exists(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r)
                if r.watch =>
            {
                exact.insert(r.path.clone());
            }
            Request::AddWatch(r) if r.mode == 0 => {
                exact.insert(r.path.clone());
            }
            Request::AddWatch(r) => recursive.push(r.path.clone()),
            _ => {}
        }
    }
    (exact, recursive)
}

fn under(path: &str, root: &str) -> bool {
    root == "/" || path == root || path.starts_with(&format!("{root}/"))
}

// Watches fire and are recorded: events of all four types arrive, and every event a
// client records is for a path it asked to watch (exactly, or under a recursive watch)
// before the event arrived.
#[test]
fn watches_fire_and_are_recorded() {
    let world = run_world(&options(7, 8, 1500));
    let history = &world.history;
    let types: BTreeSet<i32> = history.events.iter().map(|e| e.event.event_type).collect();
    println!("{} events, types {types:?}", history.events.len());
    assert_eq!(types, BTreeSet::from([1, 2, 3, 4]));
    for event in &history.events {
        let (exact, recursive) = watched_paths(history, event.client, event.at_ms);
        let path = event.event.path.as_str();
        assert!(
            exact.contains(path) || recursive.iter().any(|root| under(path, root)),
            "client {} got {:?} without watching it",
            event.client,
            event.event
        );
    }
    let persistent_fired = history.events.iter().any(|e| {
        let (_, recursive) = watched_paths(history, e.client, e.at_ms);
        recursive
            .iter()
            .any(|root| under(&e.event.path, root) && e.event.path != *root)
    });
    assert!(
        persistent_fired,
        "no recursive watch ever fired for a descendant"
    );
}

// A digest ACL lets its credential holder read and write the node, and a client without
// the credential gets NOAUTH, through the whole path (auth packet, create with the ACL,
// reads and writes on two servers).
#[test]
fn digest_acl_admits_the_credential_holder_only() {
    let mut world = World::new(&options(11, 2, 60), Trace::hash_only());
    // "dave" is not one of the workload's users, so the other client cannot hold it.
    let acl = vec![digest_acl("dave", perms::ALL)];
    let read = Request::GetData(PathWatchRequest {
        path: "/acl".to_owned(),
        watch: false,
    });
    let write = Request::SetData(SetDataRequest {
        path: "/acl".to_owned(),
        data: Some(b"w".to_vec()),
        version: -1,
    });
    let sync = Request::Sync(PathRequest {
        path: "/acl".to_owned(),
    });
    world.clients[0].script(vec![
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".to_owned(),
            auth: credential("dave", true),
        }),
        Request::Create(CreateRequest {
            path: "/acl".to_owned(),
            data: Some(b"v".to_vec()),
            acl,
            flags: 0,
        }),
        read.clone(),
        write.clone(),
    ]);
    let wrote = |client: u32| {
        move |h: &History| {
            h.ops.iter().any(|o| {
                o.client == client
                    && matches!(&o.request, Request::SetData(r) if r.path == "/acl")
                    && replied(o).is_some()
            })
        }
    };
    run_until(&mut world, wrote(0));
    // The holder stops here, so its random deletes cannot remove /acl under the other.
    world.clients[0].pause(u64::MAX, false);
    world.clients[1].script(vec![sync, read, write]);
    run_until(&mut world, wrote(1));
    let on_acl = |client: u32| -> Vec<(&'static str, i32)> {
        world
            .history
            .ops
            .iter()
            .filter(|o| o.client == client)
            .filter(|o| {
                matches!(&o.request, Request::GetData(r) if r.path == "/acl")
                    || matches!(&o.request, Request::SetData(r) if r.path == "/acl")
                    || matches!(&o.request, Request::Create(r) if r.path == "/acl")
            })
            .filter_map(|o| Some((op_kind(&o.request), replied(o)?)))
            .collect()
    };
    let holder = on_acl(0);
    let other = on_acl(1);
    println!("holder {holder:?}, other {other:?}");
    let no_auth = ZkError::NoAuth.code();
    assert_eq!(holder, [("create-acl", 0), ("getData", 0), ("setData", 0)]);
    assert_eq!(other, [("getData", no_auth), ("setData", no_auth)]);
    let dave = paddock_core::acl::digest_id("dave", "secret");
    let other_ids: Vec<_> = world.history.ops.iter().filter(|o| o.client == 1).collect();
    assert!(
        other_ids
            .iter()
            .all(|o| o.ids.iter().all(|id| id.id != dave))
    );
}

// The identities recorded with each operation are the ones the server holds for the
// connection: every whoAmI answer equals the op's recorded ids (ip first, then digests),
// and some of them carry digest ids. Client faults are on, so many answers come after a
// reconnect, where the client must have re-sent its credentials.
#[test]
fn recorded_ids_match_who_am_i() {
    let mut checked = 0;
    let mut with_digest = 0;
    for seed in 20..23 {
        let mut options = options(seed, 8, 1500);
        options.faults = "client".parse().unwrap();
        let world = run_world(&options);
        for op in &world.history.ops {
            let Outcome::Reply {
                err: 0,
                response: Some(Response::WhoAmI(infos)),
                ..
            } = &op.outcome
            else {
                continue;
            };
            let recorded: Vec<(String, String)> = op
                .ids
                .iter()
                .map(|id| {
                    let user = match id.scheme.as_str() {
                        "digest" => id.id.split(':').next().unwrap_or_default().to_owned(),
                        _ => id.id.clone(),
                    };
                    (id.scheme.clone(), user)
                })
                .collect();
            let answered: Vec<(String, String)> = infos
                .iter()
                .map(|i| (i.auth_scheme.clone(), i.user.clone()))
                .collect();
            assert_eq!(recorded, answered, "client {} xid {}", op.client, op.xid);
            checked += 1;
            with_digest += u32::from(recorded.len() > 1);
        }
    }
    println!("{checked} whoAmI answers checked, {with_digest} with digest ids");
    assert!(checked > 10 && with_digest > 0);
}

// Determinism: the same seed and options give the same history (every op, reply and
// event) and the same trace hash, with and without client faults.
#[test]
fn same_seed_same_history() {
    for faults in ["none", "client"] {
        let mut options = options(5, 6, 600);
        options.faults = faults.parse().unwrap();
        let first = run_world(&options);
        let second = run_world(&options);
        assert_eq!(
            format!("{:?}", first.history.ops),
            format!("{:?}", second.history.ops)
        );
        assert_eq!(first.history.events, second.history.events);
        assert_eq!(first.history.sessions, second.history.sessions);
        let a = paddock_sim::run(&options, None).unwrap();
        let b = paddock_sim::run(&options, None).unwrap();
        assert_eq!(a.trace_hash, b.trace_hash);
        let mut other = options.clone();
        other.seed += 1;
        assert_ne!(
            format!("{:?}", run_world(&other).history.ops),
            format!("{:?}", first.history.ops)
        );
    }
}
