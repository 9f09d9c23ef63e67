//! Each checker rejects a real history with one thing broken in it: a run passes every
//! checker as recorded, then one mutation (a changed reply, a dropped entry, a watch event
//! moved after a reply...) must make the named checker fail.
#![allow(clippy::unwrap_used)]

use paddock_core::ids::{SessionId, Zxid};
use paddock_core::node::{Proposal, ProposalBody};
use paddock_core::tree::{Txn, TxnKind};
use paddock_core::wire::{Request, Response};
use paddock_sim::check::{self, Failure, ServerFinal, Subject};
use paddock_sim::history::{History, Outcome};
use paddock_sim::options::{FaultSet, RunOptions};
use paddock_sim::trace::Trace;
use paddock_sim::world::World;

fn world(seed: u64) -> World {
    let options = RunOptions {
        seed,
        nodes: 3,
        clients: 4,
        ops: 400,
        faults: FaultSet::default(),
        bug: None,
        from_disks: None,
        workload: Default::default(),
        preload_znodes: 0,
    };
    let (world, liveness) = paddock_sim::simulate(&options, Trace::hash_only());
    liveness.unwrap();
    assert_eq!(
        check::check_all(&world, true),
        Ok(()),
        "seed {seed} passes as recorded"
    );
    world
}

fn checker(result: Result<(), Failure>) -> &'static str {
    result.err().map_or("none", |f| f.checker)
}

/// Asserts that `result` is a failure of `name` whose event mentions `words`.
fn fails(result: Result<(), Failure>, name: &str, words: &str) {
    let failure = result.expect_err("the mutation must be caught");
    assert_eq!(failure.checker, name, "{}", failure.event);
    assert!(failure.event.contains(words), "{}", failure.event);
}

/// Positions of ops answered with success whose request matches `pick`.
fn answered(history: &History, pick: impl Fn(&Request) -> bool) -> Vec<usize> {
    history
        .ops
        .iter()
        .enumerate()
        .filter(|(_, op)| pick(&op.request) && matches!(op.outcome, Outcome::Reply { err: 0, .. }))
        .map(|(p, _)| p)
        .collect()
}

fn reply_zxid(history: &History, position: usize) -> i64 {
    match history.ops[position].outcome {
        Outcome::Reply { zxid, .. } => zxid,
        _ => panic!("op {position} has no reply"),
    }
}

fn index_of_zxid(history: &History, zxid: i64) -> u64 {
    *history
        .payloads
        .iter()
        .find(|(_, (z, _))| z.as_wire() == zxid)
        .unwrap()
        .0
}

// Agreement: one server applying another payload at an index, or ending with a tree that
// differs from the replay of the committed sequence, is caught.
#[test]
fn agreement_rejects_a_diverging_server() {
    let mut w = world(11);
    let list = w.history.applied.values_mut().nth(1).unwrap();
    list[5].payload_hash ^= 1;
    fails(check::check_all(&w, true), "agreement", "applied zxid");

    let w = world(11);
    let mut servers: Vec<ServerFinal> = w.servers.values().filter_map(ServerFinal::of).collect();
    let subject = |servers: &[ServerFinal]| {
        check::check(&Subject {
            history: &w.history,
            servers,
            fault_free: true,
        })
    };
    assert_eq!(subject(&servers), Ok(()));
    servers[0].digest ^= 1;
    fails(subject(&servers), "agreement", "tree digest");
}

// Durability: an acknowledged write whose entry is replaced by a no-op, or whose reply
// names another zxid, is caught.
#[test]
fn durability_rejects_a_lost_or_misplaced_write() {
    let mut w = world(12);
    let write = answered(&w.history, |r| matches!(r, Request::SetData(_)))[0];
    let index = index_of_zxid(&w.history, reply_zxid(&w.history, write));
    w.history.payloads.get_mut(&index).unwrap().1 = Vec::new();
    fails(
        check::check_history(&w.history),
        "durability",
        "not in the committed sequence",
    );

    let mut w = world(12);
    let write = answered(&w.history, |r| matches!(r, Request::Create(_)))[0];
    if let Outcome::Reply { zxid, .. } = &mut w.history.ops[write].outcome {
        *zxid += 1;
    }
    fails(
        check::check_history(&w.history),
        "durability",
        "but it committed at index",
    );
}

// Linearizable writes: a reply that differs from the model's result, an op committed
// twice, and a real-time order violation are each caught.
#[test]
fn linearizable_rejects_wrong_reply_duplicate_and_time_travel() {
    let mut w = world(13);
    let write = answered(&w.history, |r| matches!(r, Request::SetData(_)))[0];
    if let Outcome::Reply {
        response: Some(Response::Stat(stat)),
        ..
    } = &mut w.history.ops[write].outcome
    {
        stat.version += 1;
    }
    fails(
        check::check_history(&w.history),
        "linearizable",
        "the model answers",
    );

    let mut w = world(13);
    let write = answered(&w.history, |r| matches!(r, Request::SetData(_)))[0];
    let index = index_of_zxid(&w.history, reply_zxid(&w.history, write));
    let copy = w.history.payloads[&index].1.clone();
    let (last, (zxid, _)) = w.history.payloads.iter().next_back().unwrap();
    let (last, zxid) = (*last, *zxid);
    w.history
        .payloads
        .insert(last + 1, (Zxid(zxid.0 + 1), copy));
    fails(
        check::check_history(&w.history),
        "linearizable",
        "committed twice",
    );

    // A write answered before another was sent, committed after it.
    let mut w = world(13);
    let writes = answered(&w.history, |r| matches!(r, Request::SetData(_)));
    let (early, late) = (writes[0], *writes.last().unwrap());
    assert_ne!(w.history.ops[early].client, w.history.ops[late].client);
    let after = w.history.ops[late].completed_ms.unwrap() + 1;
    w.history.ops[early].invoked_ms = after;
    w.history.ops[early].completed_ms = Some(after + 1);
    fails(
        check::check_history(&w.history),
        "linearizable",
        "before it was sent",
    );
}

// Reads: a read answered with other data than the model holds at its zxid, or a reply
// zxid that goes back in time, is caught.
#[test]
fn reads_reject_wrong_data_and_going_back() {
    let mut w = world(14);
    let read = answered(&w.history, |r| matches!(r, Request::GetData(_)))[0];
    if let Outcome::Reply {
        response: Some(Response::GetData(r)),
        ..
    } = &mut w.history.ops[read].outcome
    {
        r.data = Some(b"never written".to_vec());
    }
    fails(
        check::check_history(&w.history),
        "reads",
        "the model answers",
    );

    let mut w = world(14);
    let reads = answered(&w.history, |r| {
        matches!(r, Request::Exists(_) | Request::GetData(_))
    });
    let late = *reads.last().unwrap();
    if let Outcome::Reply { zxid, .. } = &mut w.history.ops[late].outcome {
        *zxid = 0;
    }
    fails(check::check_history(&w.history), "reads", "");
}

// Sessions: a client told its session expired though no close is committed, a server
// ending with an ephemeral of a session that is not live, and (without faults) an expiry
// while the client was being answered, are each caught.
#[test]
fn sessions_reject_phantom_expiry_leaked_ephemeral_and_early_expiry() {
    let mut w = world(15);
    // A session no close was committed for: clients end with closeSession, so invent one
    // the client claims to have seen created and then expire.
    let phantom = SessionId(0x0dd0_5e55);
    w.history
        .sessions
        .push(paddock_sim::history::SessionRecord {
            client: 0,
            session: phantom,
            created_ms: 1,
            expired_ms: Some(2),
        });
    let closed = w.history.payloads.values().any(|(_, bytes)| {
        matches!(Proposal::decode(bytes).map(|p| p.body),
            Ok(ProposalBody::Txn(Txn { kind: TxnKind::CloseSession { session }, .. })) if session == phantom)
    });
    assert!(!closed, "the phantom session has no committed close");
    fails(
        check::check_history(&w.history),
        "sessions",
        "no close of it is committed",
    );

    let w = world(15);
    let mut leaked = w.servers.values().find_map(ServerFinal::of).unwrap();
    leaked
        .ephemerals
        .insert(SessionId(0x5151), ["/ghost".to_owned()].into());
    let subject = Subject {
        history: &w.history,
        servers: std::slice::from_ref(&leaked),
        fault_free: false,
    };
    fails(check::check(&subject), "sessions", "which is not live");

    // The leader expires a session one ms after its client sent a request that was
    // answered: the session's own committed close becomes a leader's expiry at that time
    // (and the client's closeSession becomes indeterminate, as if its reply was lost).
    let mut w = world(15);
    let op = answered(&w.history, |r| matches!(r, Request::GetData(_)))[0];
    let session = w.history.ops[op].session;
    let at = w.history.ops[op].invoked_ms + 1;
    expire_at(&mut w.history, session, at);
    fails(quiet(&w.history), "sessions", "though");
}

/// Every checker over `history` as a run without faults (no server states).
fn quiet(history: &History) -> Result<(), Failure> {
    check::check(&Subject {
        history,
        servers: &[],
        fault_free: true,
    })
}

/// Makes the committed close of `session` a leader's expiry at leader time `at_ms`,
/// committed then, and the client's own closeSession indeterminate (as if the client
/// stopped before its answer came: a fault-free run loses no operation with its
/// connection).
fn expire_at(history: &mut History, session: SessionId, at_ms: u64) {
    let (close_index, zxid) = history
        .payloads
        .iter()
        .find_map(
            |(index, (zxid, bytes))| match Proposal::decode(bytes).map(|p| p.body) {
                Ok(ProposalBody::Txn(Txn {
                    kind: TxnKind::CloseSession { session: s },
                    ..
                })) if s == session => Some((*index, *zxid)),
                _ => None,
            },
        )
        .expect("every client closes its session at the end");
    let expiry = Proposal {
        origin: None,
        body: ProposalBody::Txn(Txn {
            zxid,
            time_ms: i64::try_from(at_ms).unwrap(),
            session,
            kind: TxnKind::CloseSession { session },
        }),
    };
    history
        .payloads
        .insert(close_index, (zxid, expiry.encode()));
    history.first_applied_ms.insert(close_index, at_ms);
    for record in &mut history.ops {
        if record.session == session && matches!(record.request, Request::CloseSession) {
            record.outcome = Outcome::Pending;
            record.completed_ms = None;
        }
    }
}

// Without faults, an expiry a tick after an answered ping, while the client sent no
// operation for a whole timeout (the idle client of a fault-free run), is caught; the
// same expiry passes when the pings are not recorded (the checker needs them).
#[test]
fn sessions_reject_an_expiry_while_the_client_pings() {
    let mut w = world(15);
    let tick = w.history.measures.timing.tick_ms;
    let timeout = u64::from(paddock_sim::client::SESSION_TIMEOUT_MS);
    let (session, ping) = w
        .history
        .pings
        .iter()
        .flat_map(|(session, sent)| sent.iter().map(move |t| (*session, *t)))
        .find(|(session, t)| {
            let at = t + tick;
            !w.history.ops.iter().any(|op| {
                op.session == *session && op.invoked_ms + timeout > at && op.invoked_ms <= at
            })
        })
        .expect("the idle client pings for a whole timeout without an operation");
    expire_at(&mut w.history, session, ping + tick);
    fails(quiet(&w.history), "sessions", "sent a ping at ");
    w.history.pings.remove(&session);
    assert_eq!(quiet(&w.history), Ok(()));
}

// Without faults, a session its client abandoned (dropped the connection without closing
// it) must expire within its timeout and a little more: an expiry committed later fails,
// as does one that never came.
#[test]
fn sessions_reject_an_abandoned_session_expiring_late_or_never() {
    let w = world(15);
    let (&session, &last_sent) = w
        .history
        .abandoned
        .iter()
        .next()
        .expect("one client of a fault-free run abandons its session");
    let expiry = w
        .history
        .payloads
        .iter()
        .find_map(|(index, (_, bytes))| match Proposal::decode(bytes) {
            Ok(Proposal {
                origin: None,
                body:
                    ProposalBody::Txn(Txn {
                        kind: TxnKind::CloseSession { session: s },
                        ..
                    }),
            }) if s == session => Some(*index),
            _ => None,
        })
        .expect("the abandoned session expired");
    let due = check::abandoned_expiry_due_ms(&w.history, last_sent, u64::MAX);
    let mut late = w.history.clone();
    late.first_applied_ms.insert(expiry, due + 1);
    fails(quiet(&late), "sessions", "expired only at");
    // A session abandoned at the same time that no expiry names (the run went on past
    // its due time: the settling waits for it).
    let mut never = w.history.clone();
    assert!(never.measures.run_ms > due);
    never.abandoned.insert(SessionId(0x0dd0_5e55), last_sent);
    fails(quiet(&never), "sessions", "never expired");
}

// Watches: an event delivered after a reply carrying its change's zxid, an event
// delivered twice, and an event that never arrived though a later reply did, are caught.
#[test]
fn watches_reject_late_duplicate_and_missing_events() {
    let w = world(24);
    assert!(
        !w.history.events.is_empty(),
        "seed 24 delivers watch events"
    );

    // Delivering an event after a reply that already carried a later zxid is caught on
    // every connection the watch checker follows; it follows most of them.
    let mut caught_late = 0;
    let mut caught_twice = 0;
    for index in 0..w.history.events.len().min(200) {
        let mut late = w.history.clone();
        late.events[index].client_zxid = i64::MAX;
        let verdict = check::check_history(&late);
        if let Err(f) = &verdict {
            assert_eq!(f.checker, "watches", "{}", f.event);
            caught_late += usize::from(f.event.contains("after a reply"));
        }
        let mut twice = w.history.clone();
        let copy = twice.events[index].clone();
        twice.events.insert(index + 1, copy);
        for conn in &mut twice.conns {
            if conn.first_event > index + 1 {
                conn.first_event += 1;
            }
        }
        if let Err(f) = check::check_history(&twice) {
            assert_eq!(f.checker, "watches", "{}", f.event);
            caught_twice += usize::from(f.event.contains("its watches owe"));
        }
    }
    assert!(caught_late > 0, "no late event was caught");
    assert!(caught_twice > 0, "no duplicated event was caught");

    // Dropping an event is caught whenever a later reply on its connection proves it was
    // due; at least one of the first events of the run is like that.
    let mut caught = 0;
    for dropped in 0..w.history.events.len().min(20) {
        let mut missing = w.history.clone();
        missing.events.remove(dropped);
        for conn in &mut missing.conns {
            if conn.first_event > dropped {
                conn.first_event -= 1;
            }
        }
        let verdict = checker(check::check_history(&missing));
        assert!(matches!(verdict, "watches" | "none"), "{verdict}");
        caught += usize::from(verdict == "watches");
    }
    assert!(caught > 0);
}

// A frame a client could not take fails the run even when every other checker passes;
// the run itself recorded none.
#[test]
fn wire_rejects_a_frame_a_client_could_not_take() {
    let mut w = world(3);
    assert!(w.history.wire_breaches.is_empty());
    assert_eq!(quiet(&w.history), Ok(()));
    w.history
        .wire_breaches
        .push("client 0 got from server 1 a reply to GetData that does not decode".to_owned());
    fails(quiet(&w.history), "wire", "does not decode");
}

// Without faults an operation lost with its connection needs a leader change to explain
// it: one lost in a run with a single leader fails.
#[test]
fn bounds_reject_an_operation_lost_without_a_leader_change() {
    let mut w = world(3);
    assert_eq!(w.history.measures.leaderships, 1);
    let record = w
        .history
        .ops
        .iter_mut()
        .find(|op| matches!(op.request, Request::GetData(_)))
        .expect("some read");
    record.outcome = Outcome::Lost;
    fails(quiet(&w.history), "bounds", "1 operations lost");
}
