//! The watch model: which events each client connection must receive, computed from the
//! registrations its replies prove (a read with `watch` answered at zxid z registered a
//! watch when the server stood at z) and the changes of the committed sequence, with the
//! trigger rules of zk-protocol.md §8 (one-shot data and child watches removed as they
//! fire, persistent watches kept, recursive ones matching descendants and never
//! `NodeChildrenChanged`, at most one event per connection per trigger).
//!
//! Invariant: a server emits a connection's events in zxid order and stops when the
//! connection closes, and the world delivers a connection's frames in order; so the
//! events a client received on a connection must be a prefix of the expected list. The
//! checker (in `mod.rs`) compares them and checks that each event arrived before any
//! reply carrying the zxid of the change that fired it.
//!
//! Not modelled: removeWatches/checkWatches (connections that use them are skipped) and
//! the 3.8.4 READ filter on events (the server does not apply it either).

use std::collections::{BTreeMap, BTreeSet};

use paddock_core::ids::{ConnId, Zxid};
use paddock_core::watch::{Change, EventType};

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

    fn emit(&mut self, conns: &BTreeSet<ConnId>, event_type: EventType, path: &str, zxid: Zxid) {
        for conn in conns {
            self.expected.entry(*conn).or_default().push(Expected {
                event_type,
                path: path.to_owned(),
                zxid,
                catch_up: false,
            });
        }
    }

    /// The changes of one applied transaction, in order.
    pub fn apply(&mut self, changes: &[Change], zxid: Zxid) {
        for change in changes {
            match change {
                Change::Created(path) => {
                    let data = self.trigger_data(path);
                    self.emit(&data, EventType::NodeCreated, path, zxid);
                    self.children_changed(path, zxid);
                }
                Change::Deleted(path) => {
                    let data = self.trigger_data(path);
                    self.emit(&data, EventType::NodeDeleted, path, zxid);
                    // The child table's NodeDeleted skips connections data(P) notified.
                    let child: BTreeSet<ConnId> = self
                        .trigger_child(path)
                        .difference(&data)
                        .copied()
                        .collect();
                    self.emit(&child, EventType::NodeDeleted, path, zxid);
                    self.children_changed(path, zxid);
                }
                Change::DataChanged(path) => {
                    let data = self.trigger_data(path);
                    self.emit(&data, EventType::NodeDataChanged, path, zxid);
                }
            }
        }
    }

    fn children_changed(&mut self, path: &str, zxid: Zxid) {
        if let Some(parent) = parent_of(path) {
            let parent = parent.to_owned();
            let child = self.trigger_child(&parent);
            self.emit(&child, EventType::NodeChildrenChanged, &parent, zxid);
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
        });
    }
}

/// Compares the events each connection received with the model's: a prefix of the
/// expected list, each event before any reply carrying its change's zxid, and no expected
/// event missing before a reply that carries a zxid at or past it.
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
    for (position, op) in history.ops.iter().enumerate() {
        if let (Some(conn), Outcome::Reply { zxid, .. }) =
            (index.op_conn.get(position).copied().flatten(), &op.outcome)
        {
            let max = replies.entry(conn).or_insert((*zxid, position));
            if *zxid > max.0 {
                *max = (*zxid, position);
            }
        }
    }
    let (no_expected, no_events) = (Vec::new(), Vec::new());
    let conns: BTreeSet<ConnId> = received.keys().chain(expected.keys()).copied().collect();
    for conn in conns.difference(unmodelled) {
        check_conn(
            history,
            *conn,
            expected.get(conn).unwrap_or(&no_expected),
            received.get(conn).unwrap_or(&no_events),
            replies.get(conn).copied(),
        )?;
    }
    Ok(())
}

/// One connection: `got` (event positions, in arrival order) must be a prefix of `want`,
/// each in time; `last_reply` (highest reply zxid on the connection, and its op) must not
/// prove a missing event was due.
fn check_conn(
    history: &History,
    conn: ConnId,
    want: &[Expected],
    got: &[usize],
    last_reply: Option<(i64, usize)>,
) -> Result<(), Failure> {
    for (k, position) in got.iter().enumerate() {
        let event = &history.events[*position];
        let Some(exp) = want.get(k) else {
            return Err(Failure::new(
                "watches",
                format!(
                    "client {} got {:?} at {} ms on connection {}, but no watch it set matches a committed change",
                    event.client, event.event, event.at_ms, conn.0
                ),
            ));
        };
        if event.event.event_type != exp.event_type.code() || event.event.path != exp.path {
            return Err(Failure::new(
                "watches",
                format!(
                    "client {} got {:?} at {} ms on connection {}, but the next event its watches owe is {:?} {} (change at zxid {})",
                    event.client,
                    event.event,
                    event.at_ms,
                    conn.0,
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
                    event.client, event.event, event.at_ms, conn.0, event.client_zxid, exp.zxid
                ),
            ));
        }
    }
    if let (Some(missing), Some((zxid, position))) = (want.get(got.len()), last_reply)
        && zxid >= missing.zxid.as_wire()
    {
        return Err(Failure::new(
            "watches",
            format!(
                "connection {} never delivered {:?} {} (change at zxid {}) though {} was answered on it at zxid 0x{zxid:x}",
                conn.0,
                missing.event_type,
                missing.path,
                missing.zxid,
                describe(position, &history.ops[position])
            ),
        ));
    }
    Ok(())
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
        model.apply(&[Change::Deleted("/a".into())], Zxid(5));
        model.apply(&[Change::Created("/a".into())], Zxid(6));
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
        model.apply(&[Change::Created("/a/b".into())], Zxid(1));
        model.apply(&[Change::DataChanged("/a/b".into())], Zxid(2));
        let got: Vec<EventType> = model.expected[&conn].iter().map(|e| e.event_type).collect();
        assert_eq!(
            got,
            vec![EventType::NodeCreated, EventType::NodeDataChanged]
        );
    }
}
