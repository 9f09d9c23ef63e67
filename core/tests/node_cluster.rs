//! Whole servers (`paddock_core::node::Node`) in a small deterministic harness: a loop
//! that moves outputs to inputs with seeded latencies, an in-memory disk per server that
//! loses unsynced writes on a crash, and clients that speak the real wire protocol.
//! These are the replication scenarios of issue 3, seen from the client's side.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster_support;

use cluster_support::*;
use paddock_core::ids::{ConnId, NodeId};
use paddock_core::wire::{
    self, CreateRequest, PathRequest, PathWatchRequest, Request, SetDataRequest,
};

// A 3- and a 5-server ensemble each elect exactly one leader, and keep it while healthy.
#[test]
fn a_leader_is_elected() {
    for (size, seed) in [(3, 1), (5, 2), (3, 3), (5, 4)] {
        let mut c = cluster(size, seed);
        let leader = elect(&mut c);
        c.run_for(5_000);
        assert_eq!(c.leaders(), 1, "size {size} seed {seed}");
        assert_eq!(
            c.leader(),
            Some(leader),
            "a healthy leader was deposed (size {size} seed {seed})"
        );
    }
}

// Writes sent to every server commit everywhere in one order and are answered; every
// server's tree ends byte-identical.
#[test]
fn writes_through_any_server_commit_everywhere() {
    for size in [3, 5] {
        let mut c = cluster(size, 10 + size);
        elect(&mut c);
        let conns: Vec<ConnId> = (1..=size).map(|n| c.connect(n)).collect();
        for round in 0..5 {
            for (i, conn) in conns.iter().enumerate() {
                let path = format!("/n-{round}-{i}");
                assert_eq!(c.create(*conn, &path, b"x", 0), Ok(path.clone()));
            }
        }
        let seq = c.create(conns[0], "/s-", b"", 2).unwrap();
        assert_eq!(seq, format!("/s-{:010}", size * 5));
        c.run_for(1_000);
        assert!(c.digests_agree(), "trees differ after writes");
        assert_eq!(c.node(1).tree().node_count() as u64, 4 + size * 5 + 1);
        // Read-your-writes on a follower: the read waits behind the same session's write.
        let follower = (1..=size).find(|n| Some(NodeId(*n)) != c.leader()).unwrap();
        let conn = c.connect(follower);
        c.send(
            conn,
            Request::SetData(SetDataRequest {
                path: "/n-0-0".into(),
                data: Some(b"new".to_vec()),
                version: -1,
            }),
        );
        assert_eq!(c.get(conn, "/n-0-0", false), Ok(b"new".to_vec()));
    }
}

// A crashed leader is replaced, no committed write is lost, and the old leader rejoins.
#[test]
fn killed_leader_is_replaced_without_losing_writes() {
    let mut c = cluster(5, 21);
    let leader = elect(&mut c);
    let other = (1..=5).find(|n| NodeId(*n) != leader).unwrap();
    let conn = c.connect(other);
    for i in 0..20 {
        c.create(conn, &format!("/k{i}"), b"v", 0).unwrap();
    }
    c.crash(leader);
    assert!(
        c.run_until(20_000, |c| c.leader().is_some_and(|l| l != leader)),
        "no new leader"
    );
    let survivor = (1..=5)
        .find(|n| NodeId(*n) != leader && *n != other)
        .unwrap();
    let conn = c.connect(survivor);
    for i in 0..20 {
        assert_eq!(
            c.get(conn, &format!("/k{i}"), false),
            Ok(b"v".to_vec()),
            "committed write lost"
        );
    }
    c.create(conn, "/after", b"", 0).unwrap();
    c.start(leader);
    assert!(
        c.run_until(20_000, |c| c.digests_agree()),
        "restarted server did not catch up"
    );
}

// A follower cut off while writes commit catches up by diff once it is reachable again.
#[test]
fn lagging_follower_catches_up_by_diff() {
    let mut c = cluster(3, 31);
    let leader = elect(&mut c);
    let lagging = follower_of_three(leader);
    c.isolate(lagging);
    let conn = c.connect(leader.0);
    for i in 0..30 {
        c.create(conn, &format!("/d{i}"), b"", 0).unwrap();
    }
    c.heal();
    assert!(
        c.run_until(20_000, |c| c.digests_agree()),
        "lagging follower did not catch up"
    );
    assert_eq!(c.snapshots_installed, 0, "diff expected, got a snapshot");
}

// A follower catching up on 30 entries persists them in writes of at most
// `log_batch_records_max` records (the harness checks every write), each acknowledged on
// its own, and ends with the leader's state; with the default bound the same catch-up
// writes larger batches, so the bound is what splits them.
#[test]
fn catch_up_is_persisted_in_batches_of_at_most_log_batch_records_max() {
    for (batch_max, expected) in [(Some(2), 2), (None, 3)] {
        let mut c = Cluster::new(3, 31, |config| {
            if let Some(max) = batch_max {
                config.limits.log_batch_records_max = max;
            }
        });
        let leader = elect(&mut c);
        let lagging = follower_of_three(leader);
        c.isolate(lagging);
        let conn = c.connect(leader.0);
        for i in 0..30 {
            c.create(conn, &format!("/d{i}"), b"", 0).unwrap();
        }
        c.entries_write_max = 0;
        c.heal();
        assert!(
            c.run_until(20_000, |c| c.digests_agree()),
            "lagging follower did not catch up ({batch_max:?})"
        );
        if batch_max.is_some() {
            assert_eq!(c.entries_write_max, expected);
        } else {
            assert!(c.entries_write_max >= expected, "{}", c.entries_write_max);
        }
    }
}

// After the leader compacted its log (keeping no tail behind its snapshots), a
// far-behind follower catches up by snapshot.
#[test]
fn far_behind_follower_catches_up_by_snapshot() {
    let mut c = Cluster::new(3, 41, |cfg| {
        cfg.snapshot_every_entries = 10;
        cfg.snapshot_log_kept_bytes = 0;
    });
    let leader = elect(&mut c);
    let lagging = follower_of_three(leader);
    c.isolate(lagging);
    let conn = c.connect(leader.0);
    for i in 0..60 {
        c.create(conn, &format!("/s{i}"), b"data", 0).unwrap();
    }
    c.run_for(500);
    c.heal();
    assert!(
        c.run_until(20_000, |c| c.digests_agree()),
        "follower did not catch up"
    );
    assert!(c.snapshots_installed > 0, "expected a snapshot transfer");
    let conn = c.connect(lagging.0);
    assert_eq!(c.get(conn, "/s59", false), Ok(b"data".to_vec()));
}

// A leader partitioned into a minority stops answering writes; the majority elects a
// new leader and commits; on healing the old leader drops its uncommitted suffix.
#[test]
fn minority_leader_stops_and_truncates_its_uncommitted_suffix() {
    let mut c = cluster(3, 51);
    let old = elect(&mut c);
    let conn_old = c.connect(old.0);
    c.isolate(old);
    let xid = c.send(
        conn_old,
        Request::Create(CreateRequest {
            path: "/lost".into(),
            data: None,
            acl: paddock_core::acl::Acl::open_unsafe(),
            flags: 0,
        }),
    );
    c.run_for(5_000);
    let client = &c.clients[&conn_old];
    assert!(
        client.replies.get(&xid).is_none_or(|(h, _)| h.err != 0),
        "an isolated leader acknowledged a write"
    );
    assert!(
        !c.node(old.0).is_leader(),
        "isolated leader did not step down"
    );
    let new = c.leader().expect("majority elected a new leader");
    assert_ne!(new, old);
    let conn = c.connect(new.0);
    c.create(conn, "/won", b"", 0).unwrap();
    c.heal();
    assert!(
        c.run_until(20_000, |c| c.digests_agree()),
        "old leader did not converge"
    );
    assert!(
        c.node(old.0).tree().node("/lost").is_none(),
        "uncommitted write survived"
    );
    assert!(c.node(old.0).tree().node("/won").is_some());
}

// A session whose client goes silent expires on the leader's clock, and its ephemerals
// vanish on every server; a live client's session survives the same time.
#[test]
fn silent_session_expires_and_its_ephemerals_vanish() {
    let mut c = cluster(3, 61);
    let leader = elect(&mut c);
    let follower = (1..=3).find(|n| NodeId(*n) != leader).unwrap();
    let silent = c.connect(follower);
    let live = c.connect(follower);
    c.create(silent, "/eph", b"", 1).unwrap();
    c.create(live, "/live", b"", 1).unwrap();
    // The live client pings every 2 s; the silent one says nothing.
    for _ in 0..10 {
        c.send(live, Request::Ping);
        c.run_for(2_000);
    }
    for n in 1..=3 {
        assert!(
            c.node(n).tree().node("/eph").is_none(),
            "ephemeral outlived its session on {n}"
        );
        assert!(
            c.node(n).tree().node("/live").is_some(),
            "live session expired on {n}"
        );
    }
    assert!(
        c.clients[&silent].closed,
        "expired session's connection stayed open"
    );
}

// A watch set on one server fires when a write through another server changes the node,
// before the reader's next reply.
#[test]
fn watch_fires_across_servers() {
    let mut c = cluster(3, 71);
    elect(&mut c);
    let reader = c.connect(1);
    let writer = c.connect(2);
    c.create(writer, "/w", b"1", 0).unwrap();
    c.call(reader, Request::Sync(PathRequest { path: "/w".into() }))
        .unwrap();
    assert_eq!(c.get(reader, "/w", true), Ok(b"1".to_vec()));
    c.call(
        writer,
        Request::SetData(SetDataRequest {
            path: "/w".into(),
            data: Some(b"2".to_vec()),
            version: -1,
        }),
    )
    .unwrap();
    c.run_for(100);
    let events = &c.clients[&reader].events;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].event_type, events[0].path.as_str()), (3, "/w"));
}

// A client that reconnects elsewhere keeps its session; one that saw newer state than a
// lagging server is refused there.
#[test]
fn session_moves_between_servers() {
    let mut c = cluster(3, 81);
    elect(&mut c);
    let first = c.connect(1);
    c.create(first, "/mine", b"", 1).unwrap();
    let (session, passwd) = c.clients[&first].connected.clone().unwrap();
    let last_zxid = c.clients[&first].last_zxid;
    let moved = c.client_open(2, Some((session, passwd)), last_zxid);
    assert!(
        c.run_until(10_000, |c| c.clients[&moved].connected.is_some()
            || c.clients[&moved].closed)
    );
    assert_eq!(
        c.clients[&moved].connected.as_ref().map(|s| s.0),
        Some(session)
    );
    let bad = c.client_open(3, Some((session, vec![9; 16])), last_zxid);
    c.run_for(1_000);
    assert!(
        c.clients[&bad].closed && c.clients[&bad].connected.is_none(),
        "wrong password accepted"
    );
    for _ in 0..10 {
        c.send(moved, Request::Ping);
        c.run_for(2_000);
    }
    assert!(
        c.node(3).tree().node("/mine").is_some(),
        "session lost though its client moved"
    );
}

// A follower that restarts while the leader stays serves writes again: its forward stream
// starts afresh, and the leader must not mistake the new numbering for the old one's
// (it once did, silently dropping the restarted server's writes as duplicates).
#[test]
fn restarted_follower_serves_writes() {
    let mut c = cluster(3, 91);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let conn = c.connect(follower.0);
    for i in 0..5 {
        c.create(conn, &format!("/before{i}"), b"", 0).unwrap();
    }
    c.crash(follower);
    c.run_for(200);
    c.start(follower);
    c.run_for(2_000);
    assert_eq!(
        c.leader(),
        Some(leader),
        "the leader changed; the scenario needs it stable"
    );
    let conn = c.connect(follower.0);
    assert_eq!(c.create(conn, "/after", b"", 0), Ok("/after".to_owned()));
}

// Auth and requests pipelined right behind the ConnectRequest (as the Rust client and the
// Java client with queued auth do) are answered once the session is set up, in order.
#[test]
fn auth_pipelined_behind_connect_is_answered() {
    let mut c = cluster(3, 101);
    elect(&mut c);
    let conn = c.client_open(2, None, 0);
    let xid = c.send(
        conn,
        Request::Auth(wire::AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"alice:secret".to_vec(),
        }),
    );
    assert_eq!(xid, -4);
    let ping = c.send(
        conn,
        Request::Exists(PathWatchRequest {
            path: "/".into(),
            watch: false,
        }),
    );
    assert!(
        c.run_until(10_000, |c| c.clients[&conn].replies.contains_key(&ping)),
        "no reply"
    );
    assert!(c.clients[&conn].connected.is_some());
    let auth = c.clients[&conn].replies.get(&-4).map(|(h, _)| h.err);
    assert_eq!(
        auth,
        Some(0),
        "auth reply missing or failed: {:?}",
        c.clients[&conn].replies.keys()
    );
}

// Auth sent with an ordinary xid (the Rust zookeeper-client numbers it like any request) is
// answered under that same xid, as ZooKeeper does; answering -4 left that client timing out.
#[test]
fn auth_with_ordinary_xid_is_answered_under_that_xid() {
    let mut c = cluster(3, 102);
    elect(&mut c);
    let conn = c.connect(2);
    let xid = c.send_with_xid(
        conn,
        7,
        Request::Auth(wire::AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"alice:secret".to_vec(),
        }),
    );
    assert!(
        c.run_until(10_000, |c| c.clients[&conn].replies.contains_key(&xid)),
        "no auth reply under xid {xid}: {:?}",
        c.clients[&conn].replies.keys()
    );
    assert_eq!(
        c.clients[&conn].replies.get(&xid).map(|(h, _)| h.err),
        Some(0)
    );
    assert!(!c.clients[&conn].replies.contains_key(&-4));
}

// Each answer counts its latency on the server that sent it, from the request's arrival
// to the answer: a write through a follower waits at least for the leader's disk, a read
// can be answered at once, and `NodeStatus::latency` keeps min, max and the count.
#[test]
fn answers_count_their_latency() {
    let mut c = cluster(3, 41);
    elect(&mut c);
    let follower = (1..=3).find(|n| Some(NodeId(*n)) != c.leader()).unwrap();
    let before = c.node(follower).status().latency;
    let conn = c.connect(follower);
    for i in 0..4 {
        let path = format!("/lat-{i}");
        assert_eq!(c.create(conn, &path, b"x", 0), Ok(path.clone()));
        assert_eq!(c.get(conn, &path, false), Ok(b"x".to_vec()));
    }
    let after = c.node(follower).status().latency;
    // The connect, four creates and four reads.
    assert_eq!(after.count - before.count, 9);
    assert!(
        after.max_ms >= 1,
        "a write cannot be answered in 0 ms: {after:?}"
    );
    assert!(after.min_ms <= after.max_ms);
    assert!(after.avg_ms() >= after.min_ms as f64 && after.avg_ms() <= after.max_ms as f64);
    // The connection's own view, as `cons` prints it.
    let stats = c.node(follower).conn_stats(conn).unwrap();
    assert!(stats.session.is_some());
    assert_eq!(stats.last_op, "GETD");
    assert_eq!(stats.queued, 0);
    assert_eq!(stats.latency.count, 9);
    assert_eq!(stats.last_zxid, c.node(follower).applied_zxid().0);
}

/// The password of a new session on a fresh one-server ensemble built from `seed`, with
/// the password stream keyed by `secret` when given.
fn first_password(seed: u64, secret: Option<[u8; 32]>) -> Vec<u8> {
    let mut c = cluster(1, seed);
    c.password_secret = secret;
    c.crash(NodeId(1));
    c.start(NodeId(1));
    elect(&mut c);
    let conn = c.connect(1);
    c.clients[&conn].connected.clone().unwrap().1
}

// Session passwords come from the password key alone: another key gives another password
// under the same seed, and the same key gives the same password under another seed, so
// nothing the protocol's seed depends on (in the old server: the start time and pid)
// says anything about a password.
#[test]
fn session_passwords_depend_on_the_password_key_only() {
    let key_a = Some([7u8; 32]);
    let key_b = Some([8u8; 32]);
    let a = first_password(5, key_a);
    assert_eq!(a.len(), 16);
    assert_ne!(a, first_password(5, key_b));
    assert_eq!(a, first_password(6, key_a));
    assert_ne!(first_password(5, None), first_password(6, None));
}

fn set_data(path: &str, data: Vec<u8>) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(data),
        version: -1,
    })
}

// A client that pipelines more request bytes than a connection may hold (here 1 MB
// writes stuck behind a write that cannot commit, its server cut off from the leader) is
// closed once they pass QUEUE_BYTES_MAX; other clients are served meanwhile.
#[test]
fn queued_request_bytes_are_bounded() {
    let mut c = cluster(3, 21);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let writer = c.connect(leader.0);
    c.create(writer, "/x", b"", 0).unwrap();
    let flood = c.connect(follower.0);
    c.run_for(100);
    c.isolate(follower);
    let megabyte = vec![1u8; 1_000_000];
    let count = paddock_core::node::QUEUE_BYTES_MAX / megabyte.len() + 2;
    for sent in 0..count {
        c.send(flood, set_data("/x", megabyte.clone()));
        c.run_for(1);
        if sent == 60 {
            // README's bound is 64 MiB: 61 MB queued are still held.
            assert!(!c.clients[&flood].closed, "closed below 64 MiB queued");
        }
        if sent == 2 {
            // What the memory monitor reads: the largest queue of one connection.
            let held = c.node(follower.0).memory().conn_queue_bytes_max;
            assert!(
                (3_000_000..4_000_000).contains(&held),
                "three 1 MB requests queued, {held} bytes reported"
            );
        }
    }
    c.run_for(100);
    assert!(
        c.clients[&flood].closed,
        "the flooding connection is still open"
    );
    c.heal();
    c.create(writer, "/y", b"served", 0).unwrap();
}

// A request's bytes count against its connection's queue only until it is answered:
// once three 100 KB writes are answered, nothing is held, so a connection that sends its
// requests one after the other is never closed for the bytes it sent in all.
#[test]
fn answered_requests_leave_no_queued_bytes() {
    let mut c = cluster(3, 23);
    let leader = elect(&mut c);
    let conn = c.connect(leader.0);
    c.create(conn, "/q", b"", 0).unwrap();
    for _ in 0..3 {
        assert!(c.call(conn, set_data("/q", vec![7u8; 100_000])).is_some());
    }
    assert_eq!(c.node(leader.0).memory().conn_queue_bytes_max, 0);
}

// The queue bound is inclusive: requests whose frames add up to exactly QUEUE_BYTES_MAX
// (128 frames of 512 KiB behind a write that cannot commit) are all held; one byte more
// closes the connection.
#[test]
fn queued_request_bytes_may_reach_queue_bytes_max_exactly() {
    let mut c = cluster(3, 24);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let writer = c.connect(leader.0);
    c.create(writer, "/x", b"", 0).unwrap();
    let flood = c.connect(follower.0);
    c.run_for(100);
    c.isolate(follower);
    const FRAME: usize = 512 * 1024;
    // A setData frame of "/x": header 8, path 4 + 2, data 4 + len, version 4.
    let data = |frame: usize| vec![1u8; frame - 22];
    let count = paddock_core::node::QUEUE_BYTES_MAX / FRAME;
    for _ in 0..count {
        c.send(flood, set_data("/x", data(FRAME)));
        c.run_for(1);
    }
    c.run_for(100);
    let held = c.node(follower.0).memory().conn_queue_bytes_max;
    assert_eq!(held, paddock_core::node::QUEUE_BYTES_MAX as u64);
    assert!(!c.clients[&flood].closed, "closed at exactly the bound");
    c.send(flood, set_data("/x", data(23)));
    c.run_for(100);
    assert!(c.clients[&flood].closed, "one byte over the bound is held");
}

// A connection's statistics (what `cons` prints) carry its session and the negotiated
// timeout (6 s asked, within the default bounds).
#[test]
fn conn_stats_carry_the_session_and_its_timeout() {
    let mut c = cluster(3, 25);
    let leader = elect(&mut c);
    let conn = c.connect(leader.0);
    let stats = c.node(leader.0).conn_stats(conn).unwrap();
    let session = c.clients[&conn].connected.as_ref().map(|(s, _)| *s);
    assert_eq!(stats.session, session);
    assert_eq!(stats.timeout_ms, Some(6000));
    // The last operation of a ping, as `cons` prints it after `lop=`.
    c.send_with_xid(conn, -2, Request::Ping);
    c.run_for(10);
    assert_eq!(c.node(leader.0).conn_stats(conn).unwrap().last_op, "PING");
    // A request waiting for its write to commit is counted as queued.
    let follower = follower_of_three(leader);
    let waiting = c.connect(follower.0);
    c.isolate(follower);
    c.send(waiting, set_data("/", b"x".to_vec()));
    c.run_for(5);
    assert_eq!(c.node(follower.0).conn_stats(waiting).unwrap().queued, 1);
}

// Frames sent before the session is set up are held in bytes up to EARLY_BYTES_MAX: a
// client that sends more while its session cannot be created is closed.
#[test]
fn early_frame_bytes_are_bounded() {
    let mut c = cluster(3, 22);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    c.isolate(follower);
    let conn = c.client_open(follower.0, None, 0);
    c.run_for(10);
    let megabyte = vec![1u8; 1_000_000];
    for xid in 1..=(paddock_core::node::EARLY_BYTES_MAX / megabyte.len() + 2) {
        c.send_with_xid(conn, xid as i32, set_data("/x", megabyte.clone()));
        c.run_for(1);
    }
    c.run_for(100);
    assert!(
        c.clients[&conn].closed,
        "the early frames were held without bound"
    );
}

// Up to 4 MiB of frames sent behind the ConnectRequest (README: what a client can make
// the server hold) are held, that limit included, and answered once the session is set
// up.
#[test]
fn early_frames_up_to_the_limit_are_held_and_answered() {
    const LIMIT: usize = 4 * 1024 * 1024;
    let mut c = cluster(3, 22);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let writer = c.connect(leader.0);
    c.create(writer, "/x", b"", 0).unwrap();
    c.isolate(follower);
    let conn = c.client_open(follower.0, None, 0);
    c.run_for(10);
    // Eight frames that fill the limit exactly: the data is what is left after each
    // frame's request header, path and version (the length prefix is not held).
    let header_bytes = {
        let mut payload = Vec::new();
        let request = set_data("/x", Vec::new());
        wire::encode_request(
            &wire::RequestHeader {
                xid: 1,
                op: request.op_code(),
            },
            &request,
            &mut payload,
        );
        payload.len()
    };
    let each = LIMIT / 8 - header_bytes;
    for xid in 1..=8 {
        c.send_with_xid(conn, xid, set_data("/x", vec![1; each]));
        c.run_for(1);
    }
    c.run_for(100);
    assert!(!c.clients[&conn].closed, "frames within the limit refused");
    c.heal();
    c.run_for(2_000);
    assert!(c.clients[&conn].connected.is_some());
    assert_eq!(
        c.clients[&conn].replies.len(),
        8,
        "early frames not answered"
    );
}

// Up to EARLY_FRAMES_MAX frames sent behind the ConnectRequest are held, that count
// included, and answered once the session is set up; one more closes the connection.
#[test]
fn early_frames_up_to_the_count_are_held_and_one_more_closes() {
    use paddock_core::node::EARLY_FRAMES_MAX;
    for (frames, closed) in [(EARLY_FRAMES_MAX, false), (EARLY_FRAMES_MAX + 1, true)] {
        let mut c = cluster(3, 22);
        let leader = elect(&mut c);
        let follower = follower_of_three(leader);
        c.isolate(follower);
        let conn = c.client_open(follower.0, None, 0);
        c.run_for(10);
        for xid in 1..=frames {
            c.send_with_xid(conn, xid as i32, Request::Ping);
        }
        c.run_for(100);
        assert_eq!(c.clients[&conn].closed, closed, "{frames} early frames");
    }
}

/// A one-server ensemble that snapshots only by bytes (`every_bytes`), after `writes`
/// 4 KB writes: the index of the snapshot on its disk (0 for none).
fn snapshot_after_big_writes(every_bytes: u64, writes: usize) -> u64 {
    let mut c = Cluster::new(1, 5, |config| {
        config.snapshot_every_entries = 1_000_000;
        config.snapshot_every_bytes = every_bytes;
    });
    elect(&mut c);
    let conn = c.connect(1);
    c.create(conn, "/x", b"", 0).unwrap();
    for _ in 0..writes {
        c.call(conn, set_data("/x", vec![1; 4000])).unwrap();
    }
    c.run_for(100);
    c.disks
        .get_mut(&NodeId(1))
        .map_or(0, |disk| disk.snapshot_index())
}

// Snapshots are taken by bytes too (snapSizeLimitInKb): 40 KB of writes with a 20 KB
// budget give a snapshot although the entry count is far from snapCount, 12 KB of them
// do not; with the default budget 40 KB give none.
#[test]
fn snapshot_is_taken_by_bytes_applied() {
    assert!(
        snapshot_after_big_writes(20_000, 10) > 0,
        "no snapshot by bytes"
    );
    assert_eq!(
        snapshot_after_big_writes(20_000, 3),
        0,
        "a snapshot before the bytes applied reached the budget"
    );
    assert_eq!(snapshot_after_big_writes(256 * 1024 * 1024, 10), 0);
}

// What a runtime sums for `globalOutstandingLimit`: a connection's requests received and
// not yet answered. Pipelined writes on a follower are all counted until the leader has
// committed them, then the count falls back to 0 as they are answered; a ping counts only
// until its answer; a closed connection counts 0.
#[test]
fn outstanding_requests_are_counted_until_answered() {
    let mut c = cluster(3, 41);
    let leader = elect(&mut c);
    let follower = (1..=3).find(|n| Some(NodeId(*n)) != Some(leader)).unwrap();
    let conn = c.connect(follower);
    let outstanding = |c: &Cluster| c.node(follower).conn_requests_outstanding(conn);
    assert_eq!(outstanding(&c), 0);
    c.create(conn, "/o", b"", 0).unwrap();
    let xids: Vec<i32> = (0..5)
        .map(|k| {
            c.send(
                conn,
                Request::SetData(SetDataRequest {
                    path: "/o".into(),
                    data: Some(vec![k]),
                    version: -1,
                }),
            )
        })
        .collect();
    assert!(
        c.run_until(10_000, |c| outstanding(c) == 5),
        "five pipelined writes never outstanding at once"
    );
    assert!(c.run_until(10_000, |c| {
        xids.iter()
            .all(|x| c.clients[&conn].replies.contains_key(x))
    }));
    assert_eq!(outstanding(&c), 0);
    let ping = c.send_with_xid(conn, -2, Request::Ping);
    assert!(c.run_until(10_000, |c| !c.clients[&conn].pending.contains_key(&ping)));
    assert_eq!(outstanding(&c), 0);
    c.send(
        conn,
        Request::SetData(SetDataRequest {
            path: "/o".into(),
            data: None,
            version: -1,
        }),
    );
    assert!(c.run_until(10_000, |c| outstanding(c) == 1));
    c.step(
        NodeId(follower),
        paddock_core::node::Input::ClientDisconnected { conn },
    );
    assert_eq!(outstanding(&c), 0);
}

// Committed entries are applied at most `applied_per_step_max` per step, the rest in the
// steps that follow at once (`next_deadline` is then immediate): a standalone server
// restarting with 40 entries after its snapshot applies them a few at a time once
// elected, and starts leading (serving writes) only once all are applied.
#[test]
fn committed_entries_are_applied_a_few_per_step() {
    let tune = |config: &mut paddock_core::node::NodeConfig| {
        config.snapshot_every_entries = 1_000_000;
        config.applied_per_step_max = 3;
    };
    let mut c = Cluster::new(1, 8, tune);
    elect(&mut c);
    let conn = c.connect(1);
    for i in 0..40 {
        c.create(conn, &format!("/n{i}"), b"", 0).unwrap();
    }
    c.run_for(100);
    let mut disk = c.disks.remove(&NodeId(1)).unwrap();
    let durable = disk.durable();
    assert!(durable.entries.len() > 40, "{}", durable.entries.len());
    let mut config = paddock_core::node::NodeConfig::new(NodeId(1), [NodeId(1)].into());
    tune(&mut config);
    let mut node = paddock_core::node::Node::new(config, durable, 1).unwrap();
    let (mut now_ms, mut steps_applying) = (0, 0);
    let mut inputs = vec![paddock_core::node::Input::Tick];
    for _ in 0..10_000 {
        let input = inputs.pop().unwrap_or(paddock_core::node::Input::Tick);
        let before = node.applied_index();
        let mut out = Vec::new();
        node.step(now_ms, input, &mut out);
        let applied = node.applied_index() - before;
        assert!(applied <= 3, "{applied} entries applied in one step");
        if applied > 0 {
            steps_applying += 1;
            assert!(!node.is_leader() || node.next_deadline() != Some(0));
        }
        for output in out {
            if let paddock_core::node::Output::Persist(op) = output
                && let Some(done) = disk.write(op)
            {
                inputs.push(done);
            }
        }
        if node.is_leader() && node.next_deadline() != Some(0) && inputs.is_empty() {
            break;
        }
        now_ms += 1;
    }
    assert!(node.is_leader());
    assert!(node.applied_index() > 40);
    assert!(
        steps_applying >= 14,
        "{steps_applying} steps applied entries"
    );
    assert_eq!(
        node.tree().node_count(),
        c.nodes[&NodeId(1)].as_ref().unwrap().tree().node_count()
    );
}

// A multiRead whose answer would not fit a client frame (here a 1 MB znode named over
// and over) fails with MARSHALLINGERROR before its reply is built, and the connection
// goes on serving; one that fits is answered.
#[test]
fn a_multi_read_beyond_a_frame_is_refused_not_built() {
    let mut c = cluster(3, 22);
    let leader = elect(&mut c);
    let conn = c.connect(leader.0);
    c.create(conn, "/big", &vec![7u8; 1_000_000], 0).unwrap();
    c.create(conn, "/small", b"s", 0).unwrap();
    let read = |path: &str| {
        wire::MultiReadOp::GetData(PathWatchRequest {
            path: path.into(),
            watch: false,
        })
    };
    let (header, _) = c
        .call(conn, Request::MultiRead(vec![read("/big"); 100]))
        .expect("an answer");
    assert_eq!(
        header.err,
        paddock_core::error::ZkError::MarshallingError.code()
    );
    let (header, reply) = c
        .call(conn, Request::MultiRead(vec![read("/big"), read("/small")]))
        .expect("an answer");
    assert_eq!(header.err, 0);
    match reply {
        wire::Reply::Response(Some(wire::Response::Multi(results))) => {
            assert_eq!(results.len(), 2)
        }
        other => panic!("unexpected reply {other:?}"),
    }
    assert_eq!(c.get(conn, "/small", false), Ok(b"s".to_vec()));
}

// A write the leader takes from its own client leaves for every follower within the step
// that took it: the proposal is not parked until the leader's next timer or message.
#[test]
fn a_leader_sends_a_write_to_its_followers_in_the_step_that_took_it() {
    use paddock_core::node::Input;
    let mut c = cluster(3, 23);
    let leader = elect(&mut c);
    let conn = c.connect(leader.0);
    c.create(conn, "/warm", b"", 0).unwrap();
    c.run_for(20);
    let request = Request::Create(CreateRequest {
        path: "/now".into(),
        data: Some(b"x".to_vec()),
        acl: paddock_core::acl::Acl::open_unsafe(),
        flags: 0,
    });
    let mut payload = Vec::new();
    wire::encode_request(
        &wire::RequestHeader {
            xid: 100,
            op: request.op_code(),
        },
        &request,
        &mut payload,
    );
    let now = c.now_ms;
    let node = c.nodes.get_mut(&leader).unwrap().as_mut().unwrap();
    let mut out = Vec::new();
    let bytes = wire::frame(&payload);
    node.step(now, Input::ClientBytes { conn, bytes }, &mut out);
    let followers: Vec<NodeId> = (1..=3).map(NodeId).filter(|n| *n != leader).collect();
    assert_eq!(appended_to(&out), followers, "outputs of the step: {out:?}");
}

/// Takes `follower`'s next `Forward` off the network and has `leader` step with it by
/// hand, returning that step's outputs unrouted.
fn step_leader_with_next_forward(
    c: &mut Cluster,
    follower: NodeId,
    leader: NodeId,
) -> Vec<paddock_core::node::Output> {
    use paddock_core::node::{Input, PeerMessage};
    next_forward(c, follower);
    let key = *c
        .queue
        .iter()
        .find(|(_, e)| matches!(e, Event::Peer { from, msg: PeerMessage::Forward { .. }, .. } if *from == follower))
        .expect("next_forward left it queued")
        .0;
    let Some(Event::Peer { from, msg, .. }) = c.queue.remove(&key) else {
        unreachable!("the key was found as a peer event")
    };
    let now = c.now_ms.max(key.0);
    let node = c.nodes.get_mut(&leader).unwrap().as_mut().unwrap();
    let mut out = Vec::new();
    node.step(now, Input::Peer { from, msg }, &mut out);
    out
}

/// The servers a step's outputs send entries to, in id order.
fn appended_to(out: &[paddock_core::node::Output]) -> Vec<NodeId> {
    use paddock_core::node::{Output, PeerMessage};
    use paddock_core::replication::MessageBody;
    let mut to: Vec<NodeId> = out
        .iter()
        .filter_map(|o| match o {
            Output::Peer {
                to,
                msg: PeerMessage::Replication(m),
            } => match &m.body {
                MessageBody::Append { entries, .. } if !entries.is_empty() => Some(*to),
                _ => None,
            },
            _ => None,
        })
        .collect();
    to.sort();
    to
}

// So does a write a follower forwards: the step in which the leader takes it sends it to
// every follower.
#[test]
fn a_leader_sends_a_forwarded_write_to_its_followers_in_the_step_that_took_it() {
    let mut c = cluster(3, 24);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let conn = c.connect(follower.0);
    c.create(conn, "/warm", b"", 0).unwrap();
    c.run_for(20);
    c.send(
        conn,
        Request::Create(CreateRequest {
            path: "/now".into(),
            data: Some(b"x".to_vec()),
            acl: paddock_core::acl::Acl::open_unsafe(),
            flags: 0,
        }),
    );
    let out = step_leader_with_next_forward(&mut c, follower, leader);
    let followers: Vec<NodeId> = (1..=3).map(NodeId).filter(|n| *n != leader).collect();
    assert_eq!(appended_to(&out), followers, "outputs of the step: {out:?}");
}

// A write the leader cannot propose (here larger than replication's payload limit) fails
// its connection, wherever the client is connected: on the leader at once, on a follower
// when the leader's refusal comes back. Other writes are served meanwhile.
#[test]
fn a_write_the_leader_refuses_closes_its_connection_on_any_server() {
    let mut c = Cluster::new(3, 24, |config| {
        config.replication.payload_bytes_max = 50_000
    });
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let small = c.connect(leader.0);
    c.create(small, "/x", b"", 0).unwrap();
    for server in [leader, follower] {
        let conn = c.connect(server.0);
        c.send(conn, set_data("/x", vec![1; 100_000]));
        c.run_for(500);
        assert!(
            c.clients[&conn].closed,
            "a refused write left its connection open on server {server:?}"
        );
        assert!(c.clients[&conn].replies.is_empty());
    }
    c.create(small, "/y", b"served", 0).unwrap();
}

/// Runs the cluster until `follower` has sent a `Forward`, and returns its epoch, stream
/// and writes (the message is still on its way).
fn next_forward(
    c: &mut Cluster,
    follower: NodeId,
) -> (
    paddock_core::ids::Epoch,
    u64,
    Vec<paddock_core::node::Write>,
) {
    use paddock_core::node::PeerMessage;
    loop {
        let forward = c.queue.values().find_map(|event| match event {
            Event::Peer {
                from,
                msg:
                    PeerMessage::Forward {
                        epoch,
                        stream,
                        writes,
                        ..
                    },
                ..
            } if *from == follower => Some((*epoch, *stream, writes.clone())),
            _ => None,
        });
        if let Some(forward) = forward {
            return forward;
        }
        assert!(c.run_one(), "the follower forwarded nothing");
    }
}

// Forwarded writes are taken once: a stream's writes resent after the leader took them
// are skipped, and a stream the follower replaced (it restarted and numbers a new one
// from 0) is never taken from again, for the last 16 streams it replaced, however late
// its messages arrive.
#[test]
fn forwarded_writes_are_taken_once_per_stream_and_never_from_a_replaced_stream() {
    use paddock_core::node::{Input, PeerMessage};
    let mut c = cluster(3, 25);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let conn = c.connect(follower.0);
    c.run_for(100);
    c.send(conn, set_data("/", b"forwarded".to_vec()));
    let (epoch, stream, writes) = next_forward(&mut c, follower);
    c.run_for(500);
    let last_index = |c: &Cluster| c.node(leader.0).replication_status().last_index;
    let deliver = |c: &mut Cluster, stream: u64, first_seq: u64| {
        let before = last_index(c);
        let msg = PeerMessage::Forward {
            epoch,
            stream,
            first_seq,
            writes: writes.clone(),
        };
        c.step(
            leader,
            Input::Peer {
                from: follower,
                msg,
            },
        );
        last_index(c) - before
    };
    assert_eq!(deliver(&mut c, stream, 0), 0, "a resent write taken again");
    for replacement in 1..=16 {
        assert_eq!(
            deliver(&mut c, stream + replacement, 0),
            1,
            "a new stream's first write not taken"
        );
        assert_eq!(deliver(&mut c, stream + replacement, 0), 0);
        for replaced in stream..stream + replacement {
            assert_eq!(
                deliver(&mut c, replaced, 0),
                0,
                "stream {replaced}, replaced by {}, taken from",
                stream + replacement
            );
        }
    }
}

// Requests pipelined on one connection (writes and reads mixed, not waiting for
// answers) are each answered under their own xid with their own result,
// on the leader and on a follower.
#[test]
fn pipelined_requests_are_answered_each_with_its_own_result() {
    use paddock_core::wire::{Reply, Response};
    let mut c = cluster(3, 26);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    for server in [leader, follower] {
        let conn = c.connect(server.0);
        let mut sent = Vec::new();
        for i in 0..6 {
            let path = format!("/p-{}-{i}", server.0);
            let create = Request::Create(CreateRequest {
                path: path.clone(),
                data: Some(path.clone().into_bytes()),
                acl: paddock_core::acl::Acl::open_unsafe(),
                flags: 0,
            });
            sent.push((c.send(conn, create), path.clone()));
            if i % 2 == 1 {
                let get = Request::GetData(PathWatchRequest {
                    path: path.clone(),
                    watch: false,
                });
                sent.push((c.send(conn, get), path));
            }
        }
        c.run_for(1_000);
        let client = &c.clients[&conn];
        assert_eq!(client.replies.len(), sent.len(), "answers missing");
        for (xid, path) in &sent {
            match &client.replies[xid] {
                (h, Reply::Response(Some(Response::Create(r)))) if h.err == 0 => {
                    assert_eq!(&r.path, path, "xid {xid}")
                }
                (h, Reply::Response(Some(Response::GetData(r)))) if h.err == 0 => {
                    assert_eq!(r.data.as_deref(), Some(path.as_bytes()), "xid {xid}")
                }
                other => panic!("xid {xid} ({path}): {other:?}"),
            }
        }
    }
}

// A follower lets go of a forwarded write only when its leader acknowledges it on the
// same epoch and stream: acknowledgements from another server, another stream or another
// epoch change nothing, and the write still reaches the leader once the way is open.
#[test]
fn forwarded_writes_are_released_only_by_their_leaders_acknowledgement() {
    use paddock_core::ids::Epoch;
    use paddock_core::node::{Input, PeerMessage};
    let mut c = cluster(3, 27);
    let leader = elect(&mut c);
    let mut followers = (1..=3).map(NodeId).filter(|n| *n != leader);
    let (follower, other) = (followers.next().unwrap(), followers.next().unwrap());
    let conn = c.connect(follower.0);
    c.run_for(100);
    c.cut.insert((follower, leader));
    let xid = c.send(conn, set_data("/", b"forwarded".to_vec()));
    let (epoch, stream, _) = next_forward(&mut c, follower);
    let forged = [
        (other, epoch, stream),
        (leader, epoch, stream + 1),
        (leader, Epoch(epoch.0 + 1), stream),
    ];
    for (from, epoch, stream) in forged {
        let msg = PeerMessage::ForwardAck {
            epoch,
            stream,
            next_seq: 100,
        };
        c.step(follower, Input::Peer { from, msg });
    }
    c.run_for(100);
    assert!(c.clients[&conn].replies.is_empty());
    c.heal();
    c.run_for(1_000);
    let (header, _) = c.clients[&conn]
        .replies
        .get(&xid)
        .expect("the write answered");
    assert_eq!(header.err, 0);
}

// A new leader's reaper runs at its interval from the leader's start: a container
// emptied after the election is deleted on every server within two intervals.
#[test]
fn a_new_leaders_reaper_deletes_an_emptied_container() {
    let mut c = Cluster::new(3, 28, |config| config.reap_interval_ms = 10_000);
    let leader = elect(&mut c);
    let conn = c.connect(leader.0);
    let container = Request::CreateContainer(CreateRequest {
        path: "/box".into(),
        data: Some(Vec::new()),
        acl: paddock_core::acl::Acl::open_unsafe(),
        flags: 4,
    });
    let (header, _) = c.call(conn, container).expect("an answer");
    assert_eq!(header.err, 0);
    c.create(conn, "/box/item", b"", 0).unwrap();
    let delete = Request::Delete(wire::DeleteRequest {
        path: "/box/item".into(),
        version: -1,
    });
    let (header, _) = c.call(conn, delete).expect("an answer");
    assert_eq!(header.err, 0);
    c.run_for(20_000);
    for server in 1..=3 {
        assert!(
            c.node(server).tree().node("/box").is_none(),
            "the emptied container is still on server {server}"
        );
    }
}

// The ConnectResponse carries the readOnly byte only when the ConnectRequest did: a
// client older than ZooKeeper 3.4 sends none and reads none back, on a new session and
// on a resumed one.
#[test]
fn the_read_only_byte_is_answered_only_to_clients_that_send_it() {
    let mut c = cluster(3, 29);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let wait = |c: &mut Cluster, conn: ConnId| {
        assert!(c.run_until(10_000, |c| c.clients[&conn].connected.is_some()));
    };
    let old = c.client_open_with(leader.0, None, 0, None);
    wait(&mut c, old);
    assert_eq!(c.clients[&old].read_only, None);
    let session = c.clients[&old].connected.clone();
    let resumed = c.client_open_with(follower.0, session.clone(), 0, None);
    wait(&mut c, resumed);
    assert_eq!(c.clients[&resumed].read_only, None);
    let new = c.client_open_with(follower.0, session, 0, Some(false));
    wait(&mut c, new);
    assert_eq!(c.clients[&new].read_only, Some(false));
}

// A session that reconnects to the server it is already connected to moves to the new
// connection: the new one is served, the old one is forgotten.
#[test]
fn a_session_reconnecting_to_the_same_server_moves_to_the_new_connection() {
    let mut c = cluster(3, 30);
    let leader = elect(&mut c);
    let follower = (1..=3).find(|n| NodeId(*n) != leader).unwrap();
    for server in [leader.0, follower] {
        let first = c.connect(server);
        let session = c.clients[&first].connected.clone();
        let last_zxid = c.clients[&first].last_zxid;
        let second = c.client_open(server, session, last_zxid);
        assert!(c.run_until(10_000, |c| c.clients[&second].connected.is_some()));
        assert!(
            c.node(server).conn_stats(first).is_none(),
            "old connection kept"
        );
        assert!(c.node(server).conn_stats(second).is_some());
        assert_eq!(c.get(second, "/", false), Ok(Vec::new()));
    }
}

// A standalone server restarted from a snapshot and the log kept behind it applies each
// entry once: the log entries the snapshot already holds are not applied again, and it
// serves writes with every znode in place.
#[test]
fn a_standalone_server_restarted_after_snapshots_applies_each_entry_once() {
    let mut c = Cluster::new(1, 31, |config| config.snapshot_every_entries = 5);
    elect(&mut c);
    let conn = c.connect(1);
    for i in 0..12 {
        c.create(conn, &format!("/before{i}"), b"", 0).unwrap();
    }
    c.run_for(100);
    assert!(c.disks.get_mut(&NodeId(1)).unwrap().snapshot_index() > 0);
    c.crash(NodeId(1));
    c.run_for(100);
    c.start(NodeId(1));
    elect(&mut c);
    let conn = c.connect(1);
    for i in 0..12 {
        c.create(conn, &format!("/after{i}"), b"", 0).unwrap();
    }
    for i in 0..12 {
        assert!(c.node(1).tree().node(&format!("/before{i}")).is_some());
    }
}

// The log a snapshot made unneeded is handed back (`Output::Release`) for the runtime to
// free off its event loop, not dropped on it.
#[test]
fn the_log_behind_a_snapshot_is_released() {
    let mut c = Cluster::new(3, 31, |config| {
        config.snapshot_every_entries = 5;
        config.snapshot_log_kept_bytes = 0;
    });
    let leader = elect(&mut c);
    let conn = c.connect(leader.0);
    for i in 0..12 {
        c.create(conn, &format!("/n{i}"), b"", 0).unwrap();
    }
    c.run_for(100);
    assert!(
        c.entries_released >= 5,
        "{} entries released",
        c.entries_released
    );
}

// `log_zxid_at` reads each server's own log: after writes commit and apply everywhere,
// the last entry's zxid is the one the client saw for its last write, equal on every
// server; an index past the end has none.
#[test]
fn log_zxid_at_reads_the_entry_at_an_index() {
    let mut c = cluster(3, 31);
    elect(&mut c);
    let conn = c.connect(1);
    for n in 0..3 {
        c.create(conn, &format!("/z{n}"), b"", 0).unwrap();
    }
    c.run_for(1_000);
    let last = c.clients[&conn].last_zxid;
    for id in 1..=3 {
        let node = c.node(id);
        let (start, end) = node.log_span();
        assert!(start < end, "server {id} holds no entries");
        assert_eq!(node.applied_zxid(), node.log_zxid_at(end).unwrap());
        assert_eq!(node.log_zxid_at(end).unwrap().0 as i64, last, "server {id}");
        assert!(node.log_zxid_at(end - 1).unwrap() < node.log_zxid_at(end).unwrap());
        assert_eq!(node.log_zxid_at(end + 1), None, "server {id}");
    }
}

// A session whose client's closeSession is proposed but not yet committed (the leader's
// disk is stalled) may pass its timeout meanwhile: the leader proposes no second close
// for it, so the log holds one close, and the session ends once.
#[test]
fn a_session_closing_when_it_expires_is_closed_once() {
    let mut c = cluster(1, 32);
    elect(&mut c);
    let conn = c.connect(1);
    c.create(conn, "/e", b"", 1).unwrap();
    c.run_for(100);
    let stalled_until = c.now_ms + 60_000;
    c.disk_busy_until.insert(NodeId(1), stalled_until);
    c.send(conn, Request::CloseSession);
    c.run_for(100);
    let (_, with_close) = c.node(1).log_span();
    // Past the session's timeout, the disk still stalled.
    c.run_for(40_000);
    assert!(c.now_ms < stalled_until);
    assert_eq!(
        c.node(1).log_span().1,
        with_close,
        "a second close was proposed"
    );
    c.run_for(30_000);
    assert_eq!(c.node(1).log_span().1, with_close);
    assert_eq!(c.node(1).applied_index(), with_close);
    assert!(c.node(1).tree().node("/e").is_none());
    assert_eq!(c.node(1).status().sessions, 0);
}

// A server told to snapshot once any payload byte was applied (`snapshot_every_bytes`
// 0) snapshots after each applied write, and never twice at the same index: with
// nothing applied since, no snapshot is due.
#[test]
fn snapshots_by_bytes_never_repeat_an_index() {
    let mut c = Cluster::new(1, 33, |config| config.snapshot_every_bytes = 0);
    elect(&mut c);
    let conn = c.connect(1);
    for n in 0..3 {
        c.create(conn, &format!("/s{n}"), b"x", 0).unwrap();
        c.run_for(200);
    }
    c.run_for(5_000);
    let indexes: Vec<u64> = c
        .snapshots_written
        .iter()
        .map(|(_, index)| *index)
        .collect();
    assert!(indexes.len() >= 3, "{indexes:?}");
    assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");
    assert_eq!(indexes.last(), Some(&c.node(1).applied_index()));
}

// While proposals are pending, the leader's memory report counts the transactions
// applied since its prepared tree was last rebased (the nodes they touched are held
// twice until then); the count goes back to 0 once nothing is pending.
#[test]
fn the_leader_counts_the_transactions_applied_since_its_last_rebase() {
    let mut c = cluster(1, 34);
    let leader = elect(&mut c);
    let conn = c.connect(leader.0);
    for n in 0..100 {
        c.send(
            conn,
            Request::Create(CreateRequest {
                path: format!("/p{n}"),
                data: Some(b"x".to_vec()),
                acl: paddock_core::acl::Acl::open_unsafe(),
                flags: 0,
            }),
        );
    }
    let mut most = 0;
    while c.clients[&conn].replies.len() < 100 {
        assert!(c.run_one(), "the writes were not all answered");
        most = most.max(c.node(leader.0).memory().prepared_unshared);
    }
    assert!((1..100).contains(&most), "{most}");
    c.run_for(100);
    assert_eq!(c.node(leader.0).memory().prepared_unshared, 0);
}

// A write a follower forwarded, which the leader took and acknowledged but lost with its
// leadership (it never committed), is never answered: the client cannot know its fate,
// so its connection closes at the leader change.
#[test]
fn a_write_lost_with_its_leader_closes_its_connection() {
    use paddock_core::node::{Output, PeerMessage};
    let mut c = cluster(3, 35);
    let old = elect(&mut c);
    let follower = follower_of_three(old);
    let conn = c.connect(follower.0);
    c.create(conn, "/warm", b"", 0).unwrap();
    c.run_for(20);
    let create = |path: &str| {
        Request::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl: paddock_core::acl::Acl::open_unsafe(),
            flags: 0,
        })
    };
    let first = c.send(conn, create("/first"));
    // The leader takes the write; only its acknowledgement of the forward goes out (its
    // appends are lost), and it is cut off right after.
    let out = step_leader_with_next_forward(&mut c, follower, old);
    let acks: Vec<Output> = out
        .into_iter()
        .filter(|o| {
            matches!(
                o,
                Output::Peer {
                    msg: PeerMessage::ForwardAck { .. },
                    ..
                }
            )
        })
        .collect();
    assert_eq!(acks.len(), 1);
    for ack in acks {
        c.route(old, ack);
    }
    c.run_for(5);
    c.isolate(old);
    assert!(
        c.run_until(20_000, |c| c.leader().is_some_and(|l| l != old)),
        "no new leader"
    );
    assert!(c.clients[&conn].closed, "the connection stayed open");
    let client = &c.clients[&conn];
    assert!(!client.replies.contains_key(&first), "{:?}", client.replies);
    let new = c.leader().unwrap();
    assert!(c.node(new.0).tree().node("/first").is_none());
}

// The memory report counts the writes a follower holds for the leader: here three, held
// unsent while the follower, cut off, knows no leader.
#[test]
fn a_follower_reports_the_writes_it_holds_for_the_leader() {
    let mut c = cluster(3, 36);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let conn = c.connect(follower.0);
    c.create(conn, "/warm", b"", 0).unwrap();
    c.isolate(follower);
    assert!(
        c.run_until(20_000, |c| c
            .node(follower.0)
            .status()
            .replication
            .leader
            .is_none()),
        "the cut-off follower still names a leader"
    );
    for n in 0..3 {
        c.send(
            conn,
            Request::Create(CreateRequest {
                path: format!("/held{n}"),
                data: None,
                acl: paddock_core::acl::Acl::open_unsafe(),
                flags: 0,
            }),
        );
    }
    c.run_for(50);
    assert_eq!(c.node(follower.0).memory().forwarded, 3);
}

// A leader holding `proposals_uncommitted_max` uncommitted proposals holds further writes,
// its own and forwarded ones, until commits make room: every pipelined write is answered
// and no connection is closed.
#[test]
fn a_full_leader_holds_writes_until_commits_make_room() {
    let mut c = Cluster::new(3, 77, |config| {
        config.replication.proposals_uncommitted_max = 2;
    });
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let conns: Vec<ConnId> = (0..6)
        .map(|i| c.connect(if i % 2 == 0 { leader.0 } else { follower.0 }))
        .collect();
    let mut sent = Vec::new();
    for (i, conn) in conns.iter().enumerate() {
        for j in 0..4 {
            let request = Request::Create(CreateRequest {
                path: format!("/w-{i}-{j}"),
                data: Some(vec![1]),
                acl: paddock_core::acl::Acl::open_unsafe(),
                flags: 0,
            });
            sent.push((*conn, c.send(*conn, request)));
        }
    }
    let answered = |c: &Cluster| {
        sent.iter()
            .all(|(conn, xid)| c.clients[conn].replies.contains_key(xid))
    };
    assert!(c.run_until(30_000, answered), "writes left unanswered");
    for (conn, xid) in &sent {
        assert!(!c.clients[conn].closed, "a connection was closed");
        assert_eq!(c.clients[conn].replies[xid].0.err, 0, "a write failed");
    }
    c.run_for(1_000);
    assert!(c.digests_agree());
    assert_eq!(c.node(1).tree().node_count(), 4 + 24);
}

// `sessions_max` is enforced by the leader, counting sessions it has proposed: with a
// limit of 3 and four connects in flight at once, on the leader and on a follower, three
// sessions open and one connection is closed; once a session closes, a new one opens.
#[test]
fn the_leader_refuses_a_session_beyond_sessions_max() {
    let mut c = Cluster::new(3, 78, |config| config.limits.sessions_max = 3);
    let leader = elect(&mut c);
    let follower = follower_of_three(leader);
    let conns: Vec<ConnId> = [leader, follower, leader, follower]
        .iter()
        .map(|n| c.client_open(n.0, None, 0))
        .collect();
    let settled = |c: &Cluster| {
        conns
            .iter()
            .all(|conn| c.clients[conn].connected.is_some() || c.clients[conn].closed)
    };
    assert!(c.run_until(10_000, settled));
    let open: Vec<ConnId> = conns
        .iter()
        .copied()
        .filter(|conn| c.clients[conn].connected.is_some())
        .collect();
    assert_eq!(open.len(), 3, "sessions opened");
    assert_eq!(c.node(1).sessions().len(), 3);
    let reply = c.call(open[0], Request::CloseSession);
    assert!(reply.is_some());
    c.run_for(100);
    c.connect(follower.0);
    assert_eq!(c.node(leader.0).sessions().len(), 3);
}

// `watches_per_connection_max` bounds the paths one connection watches: a request that
// would watch one more fails with QUOTAEXCEEDED and registers nothing; another watch on a
// path already watched, a read without a watch, and a watch after one was removed go
// through. setWatches counts every path it lists.
#[test]
fn a_connection_watches_at_most_watches_per_connection_max_paths() {
    let mut c = Cluster::new(1, 79, |config| config.limits.watches_per_connection_max = 2);
    elect(&mut c);
    let conn = c.connect(1);
    for path in ["/a", "/b", "/c"] {
        c.create(conn, path, b"x", 0).unwrap();
    }
    let err = |c: &mut Cluster, request: Request| c.call(conn, request).map(|(h, _)| h.err);
    let watch = |path: &str| {
        Request::GetData(PathWatchRequest {
            path: path.to_owned(),
            watch: true,
        })
    };
    assert_eq!(c.get(conn, "/a", true), Ok(b"x".to_vec()));
    let exists_b = Request::Exists(PathWatchRequest {
        path: "/b".to_owned(),
        watch: true,
    });
    assert_eq!(err(&mut c, exists_b), Some(0));
    assert_eq!(
        c.get(conn, "/c", true),
        Err(paddock_core::error::ZkError::QuotaExceeded)
    );
    assert_eq!(c.get(conn, "/c", false), Ok(b"x".to_vec()));
    let children_a = Request::GetChildren(PathWatchRequest {
        path: "/a".to_owned(),
        watch: true,
    });
    assert_eq!(err(&mut c, children_a), Some(0), "a second kind on /a");
    let set_watches = Request::SetWatches(wire::SetWatches {
        relative_zxid: 0,
        data_watches: vec!["/c".to_owned()],
        exist_watches: vec![],
        child_watches: vec![],
    });
    assert_eq!(
        err(&mut c, set_watches),
        Some(paddock_core::error::ZkError::QuotaExceeded.code())
    );
    let set_watches2 = Request::SetWatches2(wire::SetWatches2 {
        relative_zxid: 0,
        data_watches: vec![],
        exist_watches: vec![],
        child_watches: vec![],
        persistent_watches: vec!["/c".to_owned()],
        persistent_recursive_watches: vec![],
    });
    assert_eq!(
        err(&mut c, set_watches2),
        Some(paddock_core::error::ZkError::QuotaExceeded.code()),
        "setWatches2 counts too"
    );
    let add_watch = Request::AddWatch(wire::AddWatchRequest {
        path: "/c".to_owned(),
        mode: 0,
    });
    assert_eq!(
        err(&mut c, add_watch),
        Some(paddock_core::error::ZkError::QuotaExceeded.code()),
        "addWatch counts too"
    );
    assert_eq!(c.node(1).status().watches.path_count, 2);
    // setData on /c fires nothing: no watch was registered there.
    let set_c = Request::SetData(SetDataRequest {
        path: "/c".to_owned(),
        data: Some(b"y".to_vec()),
        version: -1,
    });
    assert_eq!(err(&mut c, set_c), Some(0));
    assert!(c.clients[&conn].events.is_empty());
    let remove_b = Request::RemoveWatches(wire::WatchesRequest {
        path: "/b".to_owned(),
        watcher_type: 2,
    });
    assert_eq!(err(&mut c, remove_b), Some(0));
    assert_eq!(err(&mut c, watch("/c")), Some(0));
    // checkWatches sees what the connection holds, and changes nothing.
    let check = |path: &str| {
        Request::CheckWatches(wire::WatchesRequest {
            path: path.to_owned(),
            watcher_type: 2,
        })
    };
    let no_watcher = paddock_core::error::ZkError::NoWatcher.code();
    assert_eq!(err(&mut c, check("/c")), Some(0));
    assert_eq!(err(&mut c, check("/b")), Some(no_watcher));
    assert!(!c.clients[&conn].closed);
    assert_eq!(c.node(1).status().watches.path_count, 2);
}

// A reply that would not fit the client's frame (`frame_bytes_max`, its jute.maxbuffer)
// is answered MARSHALLINGERROR instead, and the connection stays open: here the children
// of a node whose names outgrow 4 KiB.
#[test]
fn a_reply_larger_than_a_frame_is_a_marshalling_error() {
    let mut c = Cluster::new(1, 80, |config| {
        config.limits.frame_bytes_max = 4096;
        config.limits.znode_data_bytes_max = 4096 - 88;
    });
    elect(&mut c);
    let conn = c.connect(1);
    c.create(conn, "/p", b"", 0).unwrap();
    let children = |c: &mut Cluster| {
        let request = Request::GetChildren(PathWatchRequest {
            path: "/p".to_owned(),
            watch: false,
        });
        c.call(conn, request).map(|(h, _)| h.err)
    };
    let name = "n".repeat(80);
    for i in 0..45 {
        c.create(conn, &format!("/p/{name}{i:02}"), b"", 0).unwrap();
    }
    // 45 names of 82 bytes and their length prefixes: 3 870 bytes and the headers.
    assert_eq!(children(&mut c), Some(0));
    for i in 45..60 {
        c.create(conn, &format!("/p/{name}{i:02}"), b"", 0).unwrap();
    }
    let marshalling = paddock_core::error::ZkError::MarshallingError.code();
    assert_eq!(children(&mut c), Some(marshalling));
    assert!(!c.clients[&conn].closed);
    assert_eq!(c.get(conn, "/p", false), Ok(Vec::new()));
}

// `znode_data_bytes_max` is the tree's data limit, on every server (the leader checks
// it): one byte more is BADARGUMENTS for create and setData.
#[test]
fn znode_data_bytes_max_bounds_create_and_set_data() {
    let mut c = Cluster::new(3, 81, |config| config.limits.znode_data_bytes_max = 8);
    let leader = elect(&mut c);
    let conn = c.connect(follower_of_three(leader).0);
    let bad = Err(paddock_core::error::ZkError::BadArguments);
    assert_eq!(c.create(conn, "/big", &[0; 9], 0), bad);
    assert_eq!(c.create(conn, "/ok", &[0; 8], 0), Ok("/ok".to_owned()));
    let set = |data: Vec<u8>| {
        Request::SetData(SetDataRequest {
            path: "/ok".to_owned(),
            data: Some(data),
            version: -1,
        })
    };
    let bad_code = paddock_core::error::ZkError::BadArguments.code();
    assert_eq!(
        c.call(conn, set(vec![1; 9])).map(|(h, _)| h.err),
        Some(bad_code)
    );
    assert_eq!(c.call(conn, set(vec![1; 8])).map(|(h, _)| h.err), Some(0));
}

// A new leader looks for containers to delete a full `reap_interval_ms` after it starts,
// not at once: an emptied container left by the old leader is still there a second
// after the new one is elected, and gone once the interval has passed.
#[test]
fn a_new_leader_reaps_a_full_interval_after_it_starts() {
    let mut c = Cluster::new(3, 82, |config| config.reap_interval_ms = 10_000);
    let old = elect(&mut c);
    let conn = c.connect(old.0);
    let container = Request::CreateContainer(CreateRequest {
        path: "/box".into(),
        data: Some(Vec::new()),
        acl: paddock_core::acl::Acl::open_unsafe(),
        flags: 4,
    });
    assert_eq!(c.call(conn, container).map(|(h, _)| h.err), Some(0));
    c.create(conn, "/box/item", b"", 0).unwrap();
    let delete = Request::Delete(wire::DeleteRequest {
        path: "/box/item".into(),
        version: -1,
    });
    assert_eq!(c.call(conn, delete).map(|(h, _)| h.err), Some(0));
    c.isolate(old);
    assert!(c.run_until(20_000, |c| c.leader().is_some_and(|l| l != old)));
    let new = c.leader().unwrap();
    c.run_for(1_000);
    assert!(
        c.node(new.0).tree().node("/box").is_some(),
        "reaped at once"
    );
    c.run_for(12_000);
    assert!(c.node(new.0).tree().node("/box").is_none(), "never reaped");
}
