//! The watch model: which events each client connection must receive, computed from the
//! registrations its replies prove (a read with `watch` answered at zxid z registered a
//! watch when the server stood at z) and the changes of the committed sequence, with the
//! trigger rules of docs/protocol.md, Watches (one-shot data and child watches removed as they
//! fire, persistent watches kept, recursive ones matching descendants and never
//! `NodeChildrenChanged`, at most one event per connection per trigger).
//!
//! Invariant: a server emits a connection's events in zxid order and stops when the
//! connection closes, and the world delivers a connection's frames in order; so the
//! events a client received on a connection must be a prefix of the expected list. The
//! checker (in `mod.rs`) compares them and checks that each event arrived before any
//! reply carrying the zxid of the change that fired it.
//!
//! READ at delivery (ZooKeeper 3.8.4+): each expected event carries the ACL that stood at
//! its change (the node's, or the parent's for `NodeChildrenChanged`); the connection
//! must receive it if its identities at that moment may READ, and must not otherwise.
//! Identities only grow on a connection, and the server answers an auth packet as it
//! takes it, so the identities in force when an event was fired lie between those
//! recorded with the events received just before and just after it (`EventRecord::ids`;
//! the connection's start and its last identities at the ends). An event visible with
//! the lower bound is owed, one hidden even with the upper bound must not arrive, and
//! one in between may go either way: the matching tries both. Catch-up events of
//! setWatches are not filtered, as in ZooKeeper.
//!
//! Not modelled: removeWatches/checkWatches (connections that use them are skipped).

use std::collections::{BTreeMap, BTreeSet};

use paddock_core::acl::{self, Acl, Id, perms};
use paddock_core::ids::{ConnId, Zxid};
use paddock_core::watch::{Change, ChangeAcl, EventType};

use super::Failure;
use super::committed::OpIndex;
use super::model::describe;
use crate::history::{History, Outcome};

/// One event a connection must receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Its type.
    pub event_type: EventType,
    /// Its path (the parent for `NodeChildrenChanged`).
    pub path: String,
    /// The zxid of the change that fires it (for a catch-up event, of the reply after it).
    pub zxid: Zxid,
    /// A setWatches catch-up event: it must precede the setWatches reply, which carries
    /// `zxid` itself, rather than every reply carrying `zxid`.
    pub catch_up: bool,
    /// The ACL the connection must READ by to receive it (`None`: delivered to all).
    pub acl: Option<Vec<Acl>>,
}

impl Expected {
    /// Whether a connection holding `ids` may receive this event.
    fn visible(&self, ids: &[Id]) -> bool {
        self.acl
            .as_ref()
            .is_none_or(|a| acl::check(a, ids, perms::READ).is_ok())
    }
}

/// The watch modes one connection holds on one path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Modes {
    data: bool,
    child: bool,
    persistent: bool,
}

/// A registration kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Register {
    /// One-shot data watch (getData, exists).
    Data,
    /// One-shot child watch (getChildren).
    Child,
    /// addWatch mode 0.
    Persistent,
    /// addWatch mode 1.
    Recursive,
}

/// Every connection's watches and the events they must produce.
#[derive(Debug, Default)]
pub struct WatchModel {
    by_path: BTreeMap<String, BTreeMap<ConnId, Modes>>,
    recursive: BTreeMap<String, BTreeSet<ConnId>>,
    /// Per connection, the events it must receive, in order.
    pub expected: BTreeMap<ConnId, Vec<Expected>>,
}

fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(at) => path.get(..at),
        None => None,
    }
}

impl WatchModel {
    /// Registers a watch of `conn` on `path`.
    pub fn register(&mut self, conn: ConnId, path: &str, kind: Register) {
        if kind == Register::Recursive {
            self.recursive
                .entry(path.to_owned())
                .or_default()
                .insert(conn);
            return;
        }
        let modes = self
            .by_path
            .entry(path.to_owned())
            .or_default()
            .entry(conn)
            .or_default();
        match kind {
            Register::Data => modes.data = true,
            Register::Child => modes.child = true,
            Register::Persistent => modes.persistent = true,
            Register::Recursive => {}
        }
    }

    /// The connections whose data-table watches match `path`, removing one-shot ones.
    fn trigger_data(&mut self, path: &str) -> BTreeSet<ConnId> {
        let mut fired = BTreeSet::new();
        if let Some(conns) = self.by_path.get_mut(path) {
            for (conn, modes) in conns.iter_mut() {
                if modes.data || modes.persistent {
                    fired.insert(*conn);
                }
                modes.data = false;
            }
        }
        let mut ancestor = Some(path);
        while let Some(at) = ancestor {
            if let Some(conns) = self.recursive.get(at) {
                fired.extend(conns.iter().copied());
            }
            ancestor = parent_of(at);
        }
        self.prune(path);
        fired
    }

    /// The connections whose child-table watches match `path`, removing one-shot ones.
    fn trigger_child(&mut self, path: &str) -> BTreeSet<ConnId> {
        let mut fired = BTreeSet::new();
        if let Some(conns) = self.by_path.get_mut(path) {
            for (conn, modes) in conns.iter_mut() {
                if modes.child || modes.persistent {
                    fired.insert(*conn);
                }
                modes.child = false;
            }
        }
        self.prune(path);
        fired
    }

    fn prune(&mut self, path: &str) {
        if let Some(conns) = self.by_path.get_mut(path) {
            conns.retain(|_, m| m.data || m.child || m.persistent);
            if conns.is_empty() {
                self.by_path.remove(path);
            }
        }
    }

    fn emit(
        &mut self,
        conns: &BTreeSet<ConnId>,
        event_type: EventType,
        path: &str,
        zxid: Zxid,
        acl: Option<&[Acl]>,
    ) {
        for conn in conns {
            self.expected.entry(*conn).or_default().push(Expected {
                event_type,
                path: path.to_owned(),
                zxid,
                catch_up: false,
                // No ACL known for a change: nobody may see it (the server does the same).
                acl: Some(acl.map(<[Acl]>::to_vec).unwrap_or_else(deny_all)),
            });
        }
    }

    /// The changes of one applied transaction, in order, with the ACLs that stood at each
    /// (one per change).
    pub fn apply(&mut self, changes: &[Change], acls: &[ChangeAcl], zxid: Zxid) {
        for (i, change) in changes.iter().enumerate() {
            let own = acls.get(i).map(|a| a.acl.as_slice());
            let parent = acls
                .get(i)
                .and_then(|a| a.parent_acl.as_deref().map(Vec::as_slice));
            match change {
                Change::Created(path) => {
                    let data = self.trigger_data(path);
                    self.emit(&data, EventType::NodeCreated, path, zxid, own);
                    self.children_changed(path, zxid, parent);
                }
                Change::Deleted(path) => {
                    let data = self.trigger_data(path);
                    self.emit(&data, EventType::NodeDeleted, path, zxid, own);
                    // The child table's NodeDeleted skips connections data(P) notified.
                    let child: BTreeSet<ConnId> = self
                        .trigger_child(path)
                        .difference(&data)
                        .copied()
                        .collect();
                    self.emit(&child, EventType::NodeDeleted, path, zxid, own);
                    self.children_changed(path, zxid, parent);
                }
                Change::DataChanged(path) => {
                    let data = self.trigger_data(path);
                    self.emit(&data, EventType::NodeDataChanged, path, zxid, own);
                }
            }
        }
    }

    fn children_changed(&mut self, path: &str, zxid: Zxid, parent_acl: Option<&[Acl]>) {
        if let Some(parent) = parent_of(path) {
            let parent = parent.to_owned();
            let child = self.trigger_child(&parent);
            self.emit(
                &child,
                EventType::NodeChildrenChanged,
                &parent,
                zxid,
                parent_acl,
            );
        }
    }

    /// A catch-up event a setWatches reply carries (sent before the reply, so it counts
    /// as fired at the reply's zxid).
    pub fn catch_up(&mut self, conn: ConnId, event_type: EventType, path: &str, zxid: Zxid) {
        self.expected.entry(conn).or_default().push(Expected {
            event_type,
            path: path.to_owned(),
            zxid,
            catch_up: true,
            acl: None,
        });
    }
}

/// An ACL no identity satisfies (an entry no caller's id can match; empty would allow all).
fn deny_all() -> Vec<Acl> {
    vec![Acl {
        perms: perms::READ,
        id: Id::new("none", "nobody"),
    }]
}

/// Compares the events each connection received with the model's: in order, each
/// expected event the connection could read received and each it could not read absent
/// (see the module documentation for the uncertain ones), each before any reply carrying
/// its change's zxid, and no owed event missing before a reply that carries a zxid at or
/// past it.
pub fn check(
    history: &History,
    index: &OpIndex,
    expected: &BTreeMap<ConnId, Vec<Expected>>,
    unmodelled: &BTreeSet<ConnId>,
) -> Result<(), Failure> {
    let mut received: BTreeMap<ConnId, Vec<usize>> = BTreeMap::new();
    for (position, conn) in index.event_conn.iter().enumerate() {
        if let Some(conn) = conn {
            received.entry(*conn).or_default().push(position);
        }
    }
    let mut replies: BTreeMap<ConnId, (i64, usize)> = BTreeMap::new();
    // The most identities each connection ever held: its last op's (they only grow).
    let mut last_ids: BTreeMap<ConnId, &[Id]> = BTreeMap::new();
    for (position, op) in history.ops.iter().enumerate() {
        let Some(conn) = index.op_conn.get(position).copied().flatten() else {
            continue;
        };
        last_ids.insert(conn, &op.ids);
        if let Outcome::Reply { zxid, .. } = &op.outcome {
            let max = replies.entry(conn).or_insert((*zxid, position));
            if *zxid > max.0 {
                *max = (*zxid, position);
            }
        }
    }
    let opened: BTreeMap<ConnId, &[Id]> = history
        .conns
        .iter()
        .map(|c| (c.conn, c.ids.as_slice()))
        .collect();
    let (no_expected, no_events) = (Vec::new(), Vec::new());
    let conns: BTreeSet<ConnId> = received.keys().chain(expected.keys()).copied().collect();
    for conn in conns.difference(unmodelled) {
        let got = received.get(conn).unwrap_or(&no_events);
        let first: &[Id] = opened.get(conn).copied().unwrap_or_default();
        let mut last: Vec<Id> = last_ids.get(conn).copied().unwrap_or(first).to_vec();
        for id in got.iter().flat_map(|p| &history.events[*p].ids) {
            if !last.contains(id) {
                last.push(id.clone());
            }
        }
        Conn {
            history,
            conn: *conn,
            want: expected.get(conn).unwrap_or(&no_expected),
            got,
            first_ids: first,
            last_ids: &last,
            last_reply: replies.get(conn).copied(),
        }
        .check()?;
    }
    Ok(())
}

/// One connection's expected and received events.
struct Conn<'a> {
    history: &'a History,
    conn: ConnId,
    want: &'a [Expected],
    /// Positions of the received events in `history.events`, in arrival order.
    got: &'a [usize],
    /// Identities from the connection's start, and the most it ever held.
    first_ids: &'a [Id],
    last_ids: &'a [Id],
    /// Highest reply zxid on the connection, and its op.
    last_reply: Option<(i64, usize)>,
}

impl Conn<'_> {
    /// Matches `want` against `got` in order. An event whose visibility the identities
    /// cannot decide is tried both ways; each state (next wanted, next received) is tried
    /// once, so this is linear in practice. On failure, the one from the state that got
    /// furthest is reported.
    fn check(&self) -> Result<(), Failure> {
        let mut seen: BTreeSet<(usize, usize)> = BTreeSet::new();
        let mut stack = vec![(0usize, 0usize)];
        let mut worst: Option<((usize, usize), Failure)> = None;
        while let Some((k, j)) = stack.pop() {
            if !seen.insert((k, j)) {
                continue;
            }
            match self.step(k, j) {
                Step::Done => return Ok(()),
                Step::Next(next) => stack.extend(next),
                Step::Fail(failure) => {
                    if worst.as_ref().is_none_or(|(at, _)| (j, k) > (at.1, at.0)) {
                        worst = Some(((k, j), failure));
                    }
                }
            }
        }
        Err(worst.map_or_else(
            || {
                Failure::new(
                    "watches",
                    format!("connection {}: no matching", self.conn.0),
                )
            },
            |(_, f)| f,
        ))
    }

    /// Identities in force for an event fired after received event `j - 1` and not after
    /// received event `j`: (at least, at most).
    fn bounds(&self, j: usize) -> (&[Id], &[Id]) {
        let ids = |at: usize| self.history.events[self.got[at]].ids.as_slice();
        let lo = if j == 0 { self.first_ids } else { ids(j - 1) };
        let hi = if j < self.got.len() {
            ids(j)
        } else {
            self.last_ids
        };
        (lo, hi)
    }

    fn step(&self, k: usize, j: usize) -> Step {
        let Some(exp) = self.want.get(k) else {
            return match self.got.get(j) {
                None => Step::Done,
                Some(position) => {
                    let event = &self.history.events[*position];
                    Step::Fail(Failure::new(
                        "watches",
                        format!(
                            "client {} got {:?} at {} ms on connection {}, but no watch it set matches a committed change it may read",
                            event.client, event.event, event.at_ms, self.conn.0
                        ),
                    ))
                }
            };
        };
        let (lo, hi) = self.bounds(j);
        let (owed, possible) = (exp.visible(lo), exp.visible(hi));
        let mut next = Vec::new();
        if !owed {
            // Hidden, or uncertain: it may have been dropped.
            next.push((k + 1, j));
        }
        if possible {
            match self.got.get(j) {
                Some(position) => match self.matches(exp, *position) {
                    Ok(()) => next.push((k + 1, j + 1)),
                    Err(failure) if owed => return Step::Fail(failure),
                    Err(_) => {}
                },
                None if owed => return self.missing(exp),
                None => {}
            }
        }
        Step::Next(next)
    }

    /// Whether received event `position` is `exp`, in time.
    fn matches(&self, exp: &Expected, position: usize) -> Result<(), Failure> {
        let event = &self.history.events[position];
        if event.event.event_type != exp.event_type.code() || event.event.path != exp.path {
            return Err(Failure::new(
                "watches",
                format!(
                    "client {} got {:?} at {} ms on connection {}, but the next event its watches owe is {:?} {} (change at zxid {})",
                    event.client,
                    event.event,
                    event.at_ms,
                    self.conn.0,
                    exp.event_type,
                    exp.path,
                    exp.zxid
                ),
            ));
        }
        let late = if exp.catch_up {
            event.client_zxid > exp.zxid.as_wire()
        } else {
            event.client_zxid >= exp.zxid.as_wire()
        };
        if late {
            return Err(Failure::new(
                "watches",
                format!(
                    "client {} got {:?} at {} ms on connection {} after a reply with zxid 0x{:x}, not before the change's zxid {}",
                    event.client,
                    event.event,
                    event.at_ms,
                    self.conn.0,
                    event.client_zxid,
                    exp.zxid
                ),
            ));
        }
        Ok(())
    }

    /// Every received event is matched and `exp` is owed: fine unless a reply proves it
    /// was due.
    fn missing(&self, exp: &Expected) -> Step {
        match self.last_reply {
            Some((zxid, position)) if zxid >= exp.zxid.as_wire() => Step::Fail(Failure::new(
                "watches",
                format!(
                    "connection {} never delivered {:?} {} (change at zxid {}) though {} was answered on it at zxid 0x{zxid:x}",
                    self.conn.0,
                    exp.event_type,
                    exp.path,
                    exp.zxid,
                    describe(position, &self.history.ops[position])
                ),
            )),
            _ => Step::Done,
        }
    }
}

/// What one matching state leads to.
enum Step {
    /// The rest is consistent.
    Done,
    /// States to try.
    Next(Vec<(usize, usize)>),
    /// This way fails.
    Fail(Failure),
}

#[cfg(test)]
mod tests {
    use super::*;

    // Deleting a node watched by both getData and getChildren on one connection gives one
    // NodeDeleted (the child table's is suppressed), and the parent's child watch fires once.
    #[test]
    fn delete_fires_once_per_connection_and_table() {
        let mut model = WatchModel::default();
        let conn = ConnId(1);
        model.register(conn, "/a", Register::Data);
        model.register(conn, "/a", Register::Child);
        model.register(conn, "/", Register::Child);
        let open = [ChangeAcl {
            acl: paddock_core::acl::Acl::open_unsafe().into(),
            parent_acl: Some(paddock_core::acl::Acl::open_unsafe().into()),
        }];
        model.apply(&[Change::Deleted("/a".into())], &open, Zxid(5));
        model.apply(&[Change::Created("/a".into())], &open, Zxid(6));
        let got: Vec<(EventType, &str)> = model.expected[&conn]
            .iter()
            .map(|e| (e.event_type, e.path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (EventType::NodeDeleted, "/a"),
                (EventType::NodeChildrenChanged, "/"),
            ]
        );
    }

    // A recursive watch sees descendants' data events but never NodeChildrenChanged, and
    // stays after firing.
    #[test]
    fn recursive_watch_matches_descendants() {
        let mut model = WatchModel::default();
        let conn = ConnId(2);
        model.register(conn, "/a", Register::Recursive);
        let open = [ChangeAcl {
            acl: paddock_core::acl::Acl::open_unsafe().into(),
            parent_acl: Some(paddock_core::acl::Acl::open_unsafe().into()),
        }];
        model.apply(&[Change::Created("/a/b".into())], &open, Zxid(1));
        model.apply(&[Change::DataChanged("/a/b".into())], &open, Zxid(2));
        let got: Vec<EventType> = model.expected[&conn].iter().map(|e| e.event_type).collect();
        assert_eq!(
            got,
            vec![EventType::NodeCreated, EventType::NodeDataChanged]
        );
    }
}
