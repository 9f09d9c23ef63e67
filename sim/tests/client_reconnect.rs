//! The simulated clients across connection trouble: a reconnect re-registers watches with
//! setWatches and receives the catch-up events of what it missed; a client that goes
//! silent past its session timeout is told "expired" and starts a new session; with
//! client faults on, runs still pass and exercise both paths.

#![allow(clippy::unwrap_used)]

use paddock_core::wire::{CreateRequest, PathWatchRequest, Request, SetDataRequest};
use paddock_sim::SAFETY_PHASE_MS_MAX;
use paddock_sim::client::SESSION_TIMEOUT_MS;
use paddock_sim::history::{History, Outcome};
use paddock_sim::options::{FaultSet, RunOptions};
use paddock_sim::trace::Trace;
use paddock_sim::world::World;

fn options(seed: u64, clients: u32, ops: u64, faults: &str) -> RunOptions {
    RunOptions {
        seed,
        nodes: 5,
        clients,
        ops,
        faults: faults.parse::<FaultSet>().unwrap(),
        bug: None,
        from_disks: None,
        workload: Default::default(),
        preload_znodes: 0,
    }
}

fn finish(world: &mut World) {
    while !world.clients_done() && world.run_one(SAFETY_PHASE_MS_MAX) {}
}

fn run_until(world: &mut World, done: impl Fn(&World) -> bool) {
    while !done(world) {
        assert!(world.run_one(SAFETY_PHASE_MS_MAX), "ran out of events");
    }
}

/// The reply zxid of client `client`'s first answered op matching `pick`.
fn answered(history: &History, client: u32, pick: impl Fn(&Request) -> bool) -> Option<i64> {
    history
        .ops
        .iter()
        .filter(|o| o.client == client && pick(&o.request))
        .find_map(|o| match o.outcome {
            Outcome::Reply { zxid, err: 0, .. } => Some(zxid),
            _ => None,
        })
}

// A client holding a data watch on /w loses its connection; another client changes /w;
// the first reconnects, re-sends its watch with setWatches and relativeZxid = its
// lastZxidSeen (older than the change), and the server answers with a catch-up
// NodeDataChanged before the setWatches reply.
#[test]
fn reconnect_set_watches_delivers_catch_up_events() {
    let mut world = World::new(&options(3, 2, 80, "none"), Trace::hash_only());
    world.clients[0].script(vec![
        Request::Create(CreateRequest {
            path: "/w".to_owned(),
            data: Some(b"a".to_vec()),
            acl: paddock_core::acl::Acl::open_unsafe(),
            flags: 0,
        }),
        Request::GetData(PathWatchRequest {
            path: "/w".to_owned(),
            watch: true,
        }),
    ]);
    let is_watch = |r: &Request| matches!(r, Request::GetData(p) if p.path == "/w" && p.watch);
    run_until(&mut world, |w| answered(&w.history, 0, is_watch).is_some());
    assert!(world.clients[0].watches().data.contains("/w"));
    let paused_ms = world.now_ms;
    world.clients[0].pause(paused_ms + 2_000, true);
    run_until(&mut world, |w| w.clients[0].conn().is_none());
    world.clients[1].script(vec![Request::SetData(SetDataRequest {
        path: "/w".to_owned(),
        data: Some(b"b".to_vec()),
        version: -1,
    })]);
    let is_set = |r: &Request| matches!(r, Request::SetData(p) if p.path == "/w");
    run_until(&mut world, |w| answered(&w.history, 1, is_set).is_some());
    let changed_zxid = answered(&world.history, 1, is_set).unwrap();
    finish(&mut world);

    let history = &world.history;
    let resync = history
        .ops
        .iter()
        .find(|o| o.client == 0 && matches!(o.request, Request::SetWatches(_)))
        .expect("client 0 re-sent its watches");
    let Request::SetWatches(lists) = &resync.request else {
        unreachable!()
    };
    println!("setWatches {lists:?}, change at zxid {changed_zxid:#x}");
    assert!(lists.data_watches.contains(&"/w".to_owned()));
    assert!(lists.relative_zxid < changed_zxid);
    assert!(resync.invoked_ms >= paused_ms + 2_000);
    let catch_up = history
        .events
        .iter()
        .find(|e| e.client == 0 && e.event.path == "/w")
        .expect("a catch-up event for /w");
    assert_eq!(catch_up.event.event_type, 3, "NodeDataChanged");
    assert!(catch_up.at_ms >= resync.invoked_ms);
    assert!(catch_up.at_ms <= resync.completed_ms.unwrap());
    assert_eq!(catch_up.server, resync.server);
}

// A client that stops pinging for three session timeouts keeps no session: when it comes
// back, the server says "expired" and the client opens a new session (lastZxidSeen reset),
// then carries on with its operations.
#[test]
fn silent_client_session_expires_and_it_starts_a_new_one() {
    let mut world = World::new(&options(4, 2, 80, "none"), Trace::hash_only());
    run_until(&mut world, |w| {
        w.history.ops.iter().filter(|o| o.client == 0).count() >= 5 && !w.clients[0].busy()
    });
    let silent_from = world.now_ms;
    let silent_until = silent_from + 3 * u64::from(SESSION_TIMEOUT_MS);
    world.clients[0].pause(silent_until, false);
    finish(&mut world);

    let sessions: Vec<_> = world
        .history
        .sessions
        .iter()
        .filter(|s| s.client == 0)
        .collect();
    println!("client 0 sessions {sessions:?}");
    assert!(sessions.len() >= 2, "no new session");
    let expired_ms = sessions[0].expired_ms.expect("first session told expired");
    assert!(expired_ms >= silent_until);
    assert!(sessions[1].created_ms >= expired_ms);
    let ops: Vec<_> = world.history.ops.iter().filter(|o| o.client == 0).collect();
    assert!(
        ops.iter()
            .all(|o| o.invoked_ms <= silent_from || o.invoked_ms >= silent_until),
        "a silent client sent an operation"
    );
    let after: Vec<_> = ops
        .iter()
        .filter(|o| o.invoked_ms >= silent_until)
        .collect();
    assert!(!after.is_empty());
    assert!(after.iter().all(|o| o.session == sessions[1].session));
}

// With client faults on, runs pass every checker, and over a few seeds the faults both
// make clients reconnect with setWatches (101 or 105) and let sessions expire (lost ops,
// answered by nobody, are counted for information: a disconnect rarely meets one in flight).
#[test]
fn client_faults_reconnect_and_expire() {
    let (mut resyncs, mut expiries, mut lost) = (0, 0, 0);
    for seed in 0..6 {
        let options = options(seed, 8, 1000, "client");
        let report = paddock_sim::run(&options, None).unwrap();
        assert!(report.result.is_ok(), "{}", report.summary_line());
        let mut world = World::new(&options, Trace::hash_only());
        finish(&mut world);
        let history = &world.history;
        resyncs += history
            .ops
            .iter()
            .filter(|o| matches!(o.request, Request::SetWatches(_) | Request::SetWatches2(_)))
            .count();
        expiries += history
            .sessions
            .iter()
            .filter(|s| s.expired_ms.is_some())
            .count();
        lost += history
            .ops
            .iter()
            .filter(|o| o.outcome == Outcome::Lost)
            .count();
    }
    println!("setWatches sent {resyncs}, sessions expired {expiries}, ops lost {lost}");
    assert!(resyncs > 0 && expiries > 0);
}
