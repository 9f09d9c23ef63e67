//! Bugs the simulator found, each kept as a named scenario of whole servers that fails
//! without its fix: a scripted schedule in the deterministic test cluster, not a seed of
//! the simulator (a seed becomes another run whenever the simulator draws differently).
//! `sim/tests/check_runs.rs` keeps the seeds that first showed them, as a second sweep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster_support;

use cluster_support::*;
use paddock_core::ids::{ConnId, NodeId, SessionId};
use paddock_core::wire::{CreateRequest, PathWatchRequest, Request, SetDataRequest};

/// The session of `conn` and its deadline on `leader`'s clock.
fn session_deadline(c: &Cluster, conn: ConnId, leader: NodeId) -> (SessionId, u64) {
    let session = c.clients[&conn].connected.as_ref().unwrap().0;
    let session_now = c.node(leader.0).sessions().get(session).unwrap();
    (session, session_now.expires_at_ms)
}

fn set_data(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest {
        path: path.to_owned(),
        data: Some(data.to_vec()),
        version: -1,
    })
}

// Found by the simulator (seeds 1, 17, 18 with all faults): a follower that installed a
// leader's snapshot kept its client connections and their one-shot watches, so the
// events of the changes the snapshot skipped were never sent, and a watch later fired
// for another change. Fixed in `Node::install_snapshot`: installing a snapshot closes
// every client connection of the server, whose clients reconnect and re-send their
// watches with setWatches, which reports what they missed.
#[test]
fn a_follower_installing_a_snapshot_closes_its_client_connections() {
    let mut c = Cluster::new(3, 101, |config| {
        config.snapshot_every_entries = 10;
        config.snapshot_log_kept_bytes = 0;
    });
    let leader = elect(&mut c);
    let behind = follower_of_three(leader);
    let writer = c.connect(leader.0);
    c.create(writer, "/w", b"0", 0).unwrap();
    let reader = c.connect(behind.0);
    assert_eq!(c.get(reader, "/w", true), Ok(b"0".to_vec()));
    c.isolate(behind);
    assert!(c.call(writer, set_data("/w", b"1")).is_some());
    for i in 0..40 {
        c.create(writer, &format!("/s{i}"), b"", 0).unwrap();
    }
    c.run_for(500);
    c.heal();
    assert!(c.run_until(20_000, |c| c.snapshots_installed > 0));
    c.run_for(100);
    assert!(
        c.clients[&reader].closed,
        "the follower kept a connection across a snapshot install"
    );
    assert!(c.run_until(20_000, |c| c.digests_agree()));
}

// Found by the simulator (seed 372): a leader whose due sessions were already closing
// (their close proposed, waiting for a quorum it no longer had) re-armed its expiry
// timer at the same past instant, forever; time stopped moving. Fixed in
// `leader_expire_sessions`: a due session is marked closing, so it never arms the timer
// again while its close waits.
#[test]
fn a_leader_whose_expired_sessions_wait_for_a_quorum_does_not_spin() {
    let mut c = Cluster::new(3, 102, |config| {
        // Sessions of one second, and a leader that keeps its role for five after losing
        // its followers.
        config.tick_ms = 100;
        config.session_timeout_ms_min = 200;
        config.session_timeout_ms_max = 1_000;
        config.replication.election_timeout_ms_min = 5_000;
        config.replication.election_timeout_ms_max = 8_000;
    });
    let leader = elect(&mut c);
    let silent = c.connect(leader.0);
    c.create(silent, "/e", b"", 1).unwrap();
    let (session, expires_at) = session_deadline(&c, silent, leader);
    for n in (1..=3).map(NodeId).filter(|n| *n != leader) {
        c.isolate(n);
    }
    // Three seconds past the deadline, event by event: the close is proposed and cannot
    // commit, and time must go on (a few thousand events: heartbeats, retries).
    let mut events = 0;
    while c.now_ms < expires_at + 3_000 {
        assert!(c.run_one());
        events += 1;
        assert!(events < 100_000, "time stopped at {} ms", c.now_ms);
    }
    assert_eq!(c.leader(), Some(leader));
    let left = c.node(leader.0).sessions().get(session).unwrap();
    assert!(left.closing, "the expired session is not closing");
}

// Found by the simulator's session checker (seeds 936, 981): a leader did not count a
// forwarded write as activity on its session, so a client that wrote through a follower
// just before its deadline had the write committed and its session expired anyway: the
// follower's touch arrives up to half a tick after the forward. Fixed in
// `Node::leader_take`, which touches the session of every write it takes.
#[test]
fn a_write_forwarded_just_before_the_deadline_keeps_its_session() {
    let mut c = cluster(3, 103);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let conn = c.connect(follower.0);
    let (session, expires_at) = session_deadline(&c, conn, leader);
    assert!(c.run_until(20_000, |c| c.now_ms + 30 >= expires_at));
    let xid = c.send(
        conn,
        Request::Create(CreateRequest {
            path: "/late".to_owned(),
            data: Some(Vec::new()),
            acl: paddock_core::acl::Acl::open_unsafe(),
            flags: 0,
        }),
    );
    c.run_for(1_500);
    assert_eq!(
        c.clients[&conn].replies.get(&xid).map(|(h, _)| h.err),
        Some(0)
    );
    assert!(
        !c.clients[&conn].closed,
        "the session expired after its write"
    );
    assert!(c.node(leader.0).sessions().get(session).is_some());
    // And a read with a watch still works on it.
    let watched = Request::GetData(PathWatchRequest {
        path: "/late".to_owned(),
        watch: true,
    });
    assert_eq!(c.call(conn, watched).map(|(h, _)| h.err), Some(0));
}
