//! The recipes' own guarantees (`crate::recipes`), judged from the history alone, so the
//! chaos harness applies them to real servers unchanged. Each holds for a correct
//! ensemble under every fault; each can fail, and the tests below make it fail.
//!
//! - **recipe-lock / recipe-election:** the checker plays the protected resource. It
//!   takes the acts in the order they were performed; a fenced act is refused when a
//!   newer token was accepted before it, an unfenced act is always accepted. Then:
//!   1. one token, one holder: every act with a token comes from one session (a czxid
//!      names one create);
//!   2. exclusion: the accepted acts' tokens never go down: once the holder of a newer
//!      token has acted, no older holder's act is accepted. Unfenced, this fails as soon
//!      as an old holder acts after its session expired (the pitfall); fenced, the
//!      resource refuses that act instead;
//!   3. a refused act means its holder had lost the lock: a holder whose release (the
//!      delete of its node, on the same session, after the act) then succeeded still
//!      held it, so a newer token existed while it did (two holders at once).
//! - **recipe-queue:** an item is taken (its delete succeeds) at most once, and only
//!   items that were produced are taken (taken items no acknowledged create returned are
//!   at most the creates whose answer was lost); an acknowledged item is never lost: a
//!   listing taken after a sync that began after the item's create was acknowledged
//!   names it, unless a delete of it had been sent (so each item is taken exactly once
//!   or is still queued).
//! - **recipe-config:** a watcher converges: when its last read (after a sync) differs
//!   from the value its last watched read returned in the same session, an event on the
//!   configuration reached it after that read was sent (a watch fired; the watcher
//!   was told its view was stale).
//! - **recipe-registry:** a dead member drops out: a listing taken after a sync, more
//!   than [`DROP_BOUND_MS`] after its member's session ended (the member saw it expire,
//!   or closed it), does not name that member's node.

use std::collections::BTreeMap;

use paddock_core::ids::SessionId;
use paddock_core::wire::{Request, Response};

use super::Failure;
use crate::client::SESSION_TIMEOUT_MS;
use crate::history::{ClientId, History, OpRecord, Outcome};
use crate::recipes::{self, ActRecord};

/// How long after a member's session ended a synced listing may still name it: the
/// ensemble expires a silent session within its timeout, and a leader elected meanwhile
/// gives it a fresh timeout; twice the timeout covers both.
pub const DROP_BOUND_MS: u64 = 2 * SESSION_TIMEOUT_MS as u64;

/// Runs every recipe checker (each passes when its recipe did not run).
pub fn check(history: &History) -> Result<(), Failure> {
    holders(history, "lock", "recipe-lock", recipes::LOCK)?;
    holders(history, "election", "recipe-election", recipes::ELECTION)?;
    queue(history)?;
    config(history)?;
    registry(history)
}

fn ok_response(op: &OpRecord) -> Option<Option<&Response>> {
    match &op.outcome {
        Outcome::Reply {
            err: 0, response, ..
        } => Some(response.as_ref()),
        _ => None,
    }
}

fn holders(
    history: &History,
    resource: &str,
    checker: &'static str,
    parent: &str,
) -> Result<(), Failure> {
    let acts: Vec<&ActRecord> = history
        .acts
        .iter()
        .filter(|a| a.resource == resource)
        .collect();
    let mut owner: BTreeMap<i64, SessionId> = BTreeMap::new();
    for act in &acts {
        let first = *owner.entry(act.token).or_insert(act.session);
        if first != act.session {
            return Err(Failure::new(
                checker,
                format!(
                    "token {:#x} acted on by two holders: session {:#x} and session {:#x} (client {}, at {} ms)",
                    act.token, first.0, act.session.0, act.client, act.at_ms
                ),
            ));
        }
    }
    let mut newest: Option<&ActRecord> = None;
    for act in &acts {
        let stale = newest.is_some_and(|n| act.token < n.token);
        if stale && act.fenced {
            if let Some(release) = released_after(history, act, parent) {
                let newer = newest.map_or(0, |n| n.token);
                return Err(Failure::new(
                    checker,
                    format!(
                        "client {} (session {:#x}) acted with token {:#x} at {} ms and was refused (token {newer:#x} was newer), yet its release of {} succeeded at {} ms: two holders at once",
                        act.client, act.session.0, act.token, act.at_ms, release.0, release.1
                    ),
                ));
            }
            continue;
        }
        if stale && let Some(n) = newest {
            return Err(Failure::new(
                checker,
                format!(
                    "two holders acted: client {} (session {:#x}) acted with token {:#x} at {} ms after client {} (session {:#x}) acted with the newer token {:#x} at {} ms{}",
                    act.client,
                    act.session.0,
                    act.token,
                    act.at_ms,
                    n.client,
                    n.session.0,
                    n.token,
                    n.at_ms,
                    if act.fenced {
                        ""
                    } else {
                        " (the act carried no fencing token)"
                    }
                ),
            ));
        }
        if newest.is_none_or(|n| act.token > n.token) {
            newest = Some(act);
        }
    }
    Ok(())
}

/// A successful delete of a node under `parent` by the act's client and session, sent
/// after the act: its path and completion time.
fn released_after(history: &History, act: &ActRecord, parent: &str) -> Option<(String, u64)> {
    history.ops.iter().find_map(|op| match &op.request {
        Request::Delete(d)
            if op.client == act.client
                && op.session == act.session
                && op.invoked_ms >= act.at_ms
                && d.path.starts_with(parent)
                && ok_response(op).is_some() =>
        {
            Some((d.path.clone(), op.completed_ms.unwrap_or(op.invoked_ms)))
        }
        _ => None,
    })
}

fn queue(history: &History) -> Result<(), Failure> {
    let prefix = format!("{}/", recipes::QUEUE);
    let mut produced = std::collections::BTreeSet::new();
    let mut unanswered = 0usize;
    let mut taken: BTreeMap<&str, &OpRecord> = BTreeMap::new();
    let mut unknown = 0usize;
    for op in &history.ops {
        match &op.request {
            Request::Create(c) if c.path.starts_with(&prefix) => match ok_response(op) {
                Some(Some(Response::Create(r))) => {
                    produced.insert(r.path.clone());
                }
                Some(_) => {}
                None if matches!(op.outcome, Outcome::Lost | Outcome::Pending) => {
                    unanswered += 1;
                }
                None => {}
            },
            Request::Delete(d) if d.path.starts_with(&prefix) && ok_response(op).is_some() => {
                if let Some(first) = taken.insert(d.path.as_str(), op) {
                    return Err(Failure::new(
                        "recipe-queue",
                        format!(
                            "item {} taken twice: by client {} at {} ms and by client {} at {} ms",
                            d.path, first.client, first.invoked_ms, op.client, op.invoked_ms
                        ),
                    ));
                }
                if !produced.contains(&d.path) {
                    unknown += 1;
                }
            }
            _ => {}
        }
    }
    lost_items(history, &prefix)?;
    if unknown > unanswered {
        return Err(Failure::new(
            "recipe-queue",
            format!(
                "{unknown} items taken that no create returned, but only {unanswered} creates went unanswered"
            ),
        ));
    }
    Ok(())
}

/// An acknowledged item missing from a synced listing, with no delete of it sent.
fn lost_items(history: &History, prefix: &str) -> Result<(), Failure> {
    let mut acked: BTreeMap<&str, u64> = BTreeMap::new();
    let mut delete_sent: BTreeMap<&str, u64> = BTreeMap::new();
    for op in &history.ops {
        match (&op.request, ok_response(op)) {
            (Request::Create(c), Some(Some(Response::Create(r)))) if c.path.starts_with(prefix) => {
                acked.insert(r.path.as_str(), op.completed_ms.unwrap_or(op.invoked_ms));
            }
            (Request::Delete(d), _) if d.path.starts_with(prefix) => {
                let refused = matches!(op.outcome, Outcome::Reply { err, .. } if err != 0);
                if !refused {
                    delete_sent.entry(d.path.as_str()).or_insert(op.invoked_ms);
                }
            }
            _ => {}
        }
    }
    let queue = recipes::QUEUE;
    let mut previous: BTreeMap<ClientId, &OpRecord> = BTreeMap::new();
    for op in &history.ops {
        let sync = previous.insert(op.client, op).filter(|p| {
            matches!(&p.request, Request::Sync(r) if r.path == queue) && ok_response(p).is_some()
        });
        let (Some(sync), Request::GetChildren(r), Some(Some(Response::GetChildren(names)))) =
            (sync, &op.request, ok_response(op))
        else {
            continue;
        };
        if r.path != queue {
            continue;
        }
        let listed_by = op.completed_ms.unwrap_or(op.invoked_ms);
        let names: std::collections::BTreeSet<&str> = names.iter().map(String::as_str).collect();
        // Only items acknowledged before the sync began are due in the listing.
        for (item, acked_ms) in acked.iter().filter(|(_, at)| **at < sync.invoked_ms) {
            let deleted = delete_sent.get(item).is_some_and(|at| *at <= listed_by);
            let name = item.rsplit('/').next().unwrap_or_default();
            if !deleted && !names.contains(name) {
                return Err(Failure::new(
                    "recipe-queue",
                    format!(
                        "item {item}, acknowledged at {acked_ms} ms and never deleted, is missing from client {}'s listing after a sync at {} ms",
                        op.client, sync.invoked_ms
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn data_of(op: &OpRecord) -> Option<&[u8]> {
    match ok_response(op) {
        Some(Some(Response::GetData(r))) => Some(r.data.as_deref().unwrap_or_default()),
        _ => None,
    }
}

fn config(history: &History) -> Result<(), Failure> {
    // Each client's last watched read of the configuration, as the ops go by.
    let mut watched: BTreeMap<ClientId, &OpRecord> = BTreeMap::new();
    for op in &history.ops {
        let Request::GetData(r) = &op.request else {
            continue;
        };
        if r.path != recipes::CONFIG || data_of(op).is_none() {
            continue;
        }
        if r.watch {
            watched.insert(op.client, op);
            continue;
        }
        let Some(last) = watched.get(&op.client).filter(|l| l.session == op.session) else {
            continue;
        };
        let (view, now) = (data_of(last), data_of(op));
        if view == now {
            continue;
        }
        let told = history.events.iter().any(|e| {
            e.client == op.client && e.event.path == recipes::CONFIG && e.at_ms >= last.invoked_ms
        });
        if !told {
            return Err(Failure::new(
                "recipe-config",
                format!(
                    "client {} watched {} and read {:?} at {} ms, then read {:?} at {} ms, and no event told it of the change",
                    op.client,
                    recipes::CONFIG,
                    String::from_utf8_lossy(view.unwrap_or_default()),
                    last.invoked_ms,
                    String::from_utf8_lossy(now.unwrap_or_default()),
                    op.invoked_ms
                ),
            ));
        }
    }
    Ok(())
}

fn registry(history: &History) -> Result<(), Failure> {
    // When each registry member's session ended, as its client knows it.
    let mut ended: BTreeMap<String, u64> = BTreeMap::new();
    for s in &history.sessions {
        if let Some(at) = s.expired_ms {
            ended.insert(recipes::member_name(s.client, s.session), at);
        }
    }
    for op in &history.ops {
        if matches!(op.request, Request::CloseSession) && ok_response(op).is_some() {
            let at = op.completed_ms.unwrap_or(op.invoked_ms);
            ended.insert(recipes::member_name(op.client, op.session), at);
        }
    }
    let mut previous: BTreeMap<ClientId, &OpRecord> = BTreeMap::new();
    for op in &history.ops {
        let synced = previous
            .insert(op.client, op)
            .is_some_and(|p| matches!(p.request, Request::Sync(_)) && ok_response(p).is_some());
        let listing = matches!(&op.request, Request::GetChildren(r) if r.path == recipes::REGISTRY);
        let Some(Some(Response::GetChildren(names))) = ok_response(op) else {
            continue;
        };
        if !(listing && synced) {
            continue;
        }
        for name in names {
            if let Some(end) = ended.get(name)
                && op.invoked_ms > end + DROP_BOUND_MS
            {
                return Err(Failure::new(
                    "recipe-registry",
                    format!(
                        "client {} listed {} at {} ms after a sync, and it still named {name}, whose session ended at {end} ms",
                        op.client,
                        recipes::REGISTRY,
                        op.invoked_ms
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use paddock_core::ids::NodeId;
    use paddock_core::wire::{
        CreateRequest, CreateResponse, DeleteRequest, GetDataResponse, PathRequest,
        PathWatchRequest, WatcherEvent,
    };

    fn act(client: ClientId, session: i64, token: i64, fenced: bool, at_ms: u64) -> ActRecord {
        ActRecord {
            client,
            session: SessionId(session),
            resource: "lock",
            token,
            fenced,
            at_ms,
        }
    }

    fn op(client: ClientId, session: i64, request: Request, at: u64, outcome: Outcome) -> OpRecord {
        OpRecord {
            client,
            session: SessionId(session),
            server: NodeId(1),
            xid: 1,
            request,
            ids: Vec::new(),
            invoked_ms: at,
            completed_ms: Some(at + 1),
            outcome,
        }
    }

    fn ok(response: Option<Response>) -> Outcome {
        Outcome::Reply {
            zxid: 1,
            err: 0,
            response,
        }
    }

    /// Client 2 produced `item` (acknowledged at 11 ms).
    fn produce(item: &str) -> OpRecord {
        op(
            2,
            1,
            Request::Create(CreateRequest {
                path: "/recipes/queue/item-".into(),
                data: None,
                acl: Vec::new(),
                flags: 2,
            }),
            10,
            ok(Some(Response::Create(CreateResponse { path: item.into() }))),
        )
    }

    fn delete(path: &str) -> Request {
        Request::Delete(DeleteRequest {
            path: path.to_owned(),
            version: -1,
        })
    }

    // An unfenced old holder acting after a newer one fails exclusion; fenced, its act
    // is refused and the run passes, unless its release then succeeds.
    #[test]
    fn holders_interleaving_is_caught_unless_fenced() {
        let mut history = History {
            acts: vec![
                act(0, 1, 10, false, 100),
                act(5, 2, 20, false, 200),
                act(0, 1, 10, false, 300),
            ],
            ..History::default()
        };
        let failure = check(&history).unwrap_err();
        assert_eq!(failure.checker, "recipe-lock");
        assert!(
            failure.event.contains("no fencing token"),
            "{}",
            failure.event
        );

        for a in &mut history.acts {
            a.fenced = true;
        }
        check(&history).unwrap();

        history.ops.push(op(
            0,
            1,
            delete("/recipes/lock/c0-s1-0000000001"),
            310,
            ok(None),
        ));
        let failure = check(&history).unwrap_err();
        assert!(
            failure.event.contains("two holders at once"),
            "{}",
            failure.event
        );
    }

    #[test]
    fn one_token_two_sessions_is_caught() {
        let history = History {
            acts: vec![act(0, 1, 10, true, 100), act(5, 2, 10, true, 200)],
            ..History::default()
        };
        assert_eq!(check(&history).unwrap_err().checker, "recipe-lock");
    }

    #[test]
    fn an_item_taken_twice_is_caught() {
        let mut history = History::default();
        let item = "/recipes/queue/item-0000000001";
        history.ops.push(produce(item));
        history.ops.push(op(2, 1, delete(item), 20, ok(None)));
        check(&history).unwrap();
        history.ops.push(op(7, 3, delete(item), 30, ok(None)));
        assert_eq!(check(&history).unwrap_err().checker, "recipe-queue");
    }

    // An acknowledged item no one deleted must be in a listing after a later sync.
    #[test]
    fn an_item_lost_from_the_queue_is_caught() {
        let item = "/recipes/queue/item-0000000001";
        let create = produce(item);
        let sync = op(
            7,
            3,
            Request::Sync(PathRequest {
                path: recipes::QUEUE.into(),
            }),
            20,
            ok(Some(Response::Sync(recipes::QUEUE.into()))),
        );
        let list = |names: Vec<String>| {
            op(
                7,
                3,
                Request::GetChildren(PathWatchRequest {
                    path: recipes::QUEUE.into(),
                    watch: false,
                }),
                22,
                ok(Some(Response::GetChildren(names))),
            )
        };
        let mut history = History {
            ops: vec![
                create.clone(),
                sync.clone(),
                list(vec!["item-0000000001".into()]),
            ],
            ..History::default()
        };
        check(&history).unwrap();
        history.ops = vec![create, sync, list(Vec::new())];
        let failure = check(&history).unwrap_err();
        assert!(failure.event.contains("missing"), "{}", failure.event);
    }

    #[test]
    fn a_watcher_left_stale_without_an_event_is_caught() {
        let read = |watch: bool, value: &str, at: u64| {
            op(
                8,
                1,
                Request::GetData(PathWatchRequest {
                    path: recipes::CONFIG.into(),
                    watch,
                }),
                at,
                ok(Some(Response::GetData(GetDataResponse {
                    data: Some(value.as_bytes().to_vec()),
                    stat: Default::default(),
                }))),
            )
        };
        let mut history = History {
            ops: vec![read(true, "3", 100), read(false, "7", 500)],
            ..History::default()
        };
        assert_eq!(check(&history).unwrap_err().checker, "recipe-config");
        history.events.push(crate::history::EventRecord {
            client: 8,
            server: NodeId(1),
            at_ms: 200,
            event: WatcherEvent {
                event_type: 3,
                state: 3,
                path: recipes::CONFIG.into(),
            },
            client_zxid: 0,
            ids: Vec::new(),
        });
        check(&history).unwrap();
    }

    #[test]
    fn a_dead_member_still_listed_is_caught() {
        let mut history = History::default();
        history.sessions.push(crate::history::SessionRecord {
            client: 4,
            session: SessionId(0x9),
            created_ms: 0,
            expired_ms: Some(1000),
        });
        let sync = |at| {
            op(
                9,
                5,
                Request::Sync(PathRequest {
                    path: recipes::REGISTRY.into(),
                }),
                at,
                ok(Some(Response::Sync(recipes::REGISTRY.into()))),
            )
        };
        let list = |at| {
            op(
                9,
                5,
                Request::GetChildren(PathWatchRequest {
                    path: recipes::REGISTRY.into(),
                    watch: false,
                }),
                at,
                ok(Some(Response::GetChildren(vec!["m-c4-s9".into()]))),
            )
        };
        // Within the bound: allowed.
        history.ops = vec![sync(2000), list(2001)];
        check(&history).unwrap();
        let late = 1000 + DROP_BOUND_MS + 10;
        history.ops.extend([sync(late), list(late + 1)]);
        assert_eq!(check(&history).unwrap_err().checker, "recipe-registry");
    }
}
