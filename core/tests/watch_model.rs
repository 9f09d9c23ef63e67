//! Random register / trigger / remove / check / setWatches / close sequences give the same events,
//! errors and four-letter-word views from the watch table as from a naive reference that
//! keeps a flat set of registrations and scans all of it for every delivery, written
//! straight from the registration and setWatches tables of docs/protocol.md, Watches.

use std::collections::{BTreeMap, BTreeSet};

use paddock_core::error::ZkError;
use paddock_core::ids::{ConnId, Zxid};
use paddock_core::watch::{
    Change, EventType, SetWatchesLists, WatchEvent, WatchKind, WatchSummary, WatchTable,
    WatcherType,
};
use proptest::prelude::*;

const PATHS: [&str; 7] = ["/", "/a", "/a/b", "/a/b/c", "/ab", "/a/c", "/b"];

#[derive(Debug, Clone)]
enum Op {
    Register(ConnId, &'static str, WatchKind),
    Trigger(Vec<Change>),
    Remove(ConnId, &'static str, WatcherType),
    Check(ConnId, &'static str, WatcherType),
    SetWatches(ConnId, Reconnect),
    Close(ConnId),
}

/// A setWatches2 request and the node state it meets: `(mzxid, pzxid)` of existing paths.
#[derive(Debug, Clone)]
struct Reconnect {
    relative_zxid: u64,
    node_zxids: BTreeMap<&'static str, (u64, u64)>,
    /// data, exist, child, persistent, persistent-recursive.
    lists: [Vec<String>; 5],
}

#[derive(Clone, Copy, PartialEq)]
enum Table {
    Data,
    Child,
}

/// The reference: every registration as a (connection, path, kind) triple.
#[derive(Default)]
struct Reference {
    registrations: BTreeSet<(ConnId, String, WatchKind)>,
}

fn is_strict_ancestor(ancestor: &str, path: &str) -> bool {
    let prefix = if ancestor == "/" {
        "/".to_owned()
    } else {
        format!("{ancestor}/")
    };
    ancestor != path && path.starts_with(&prefix)
}

fn parent(path: &str) -> Option<String> {
    if path == "/" {
        return None;
    }
    let cut = path.rfind('/')?;
    Some(if cut == 0 {
        "/".to_owned()
    } else {
        path[..cut].to_owned()
    })
}

/// Whether a registration receives a delivery on `table` about `path` (docs/protocol.md,
/// Watches, the registration table).
fn covers(watch_path: &str, kind: WatchKind, table: Table, path: &str) -> bool {
    match table {
        Table::Data => {
            (watch_path == path && kind != WatchKind::Child)
                || (kind == WatchKind::PersistentRecursive && is_strict_ancestor(watch_path, path))
        }
        Table::Child => {
            watch_path == path && matches!(kind, WatchKind::Child | WatchKind::Persistent)
        }
    }
}

fn kinds_of(watcher_type: WatcherType) -> Vec<WatchKind> {
    match watcher_type {
        WatcherType::Children => vec![WatchKind::Child],
        WatcherType::Data => vec![WatchKind::Data],
        WatcherType::Persistent => vec![WatchKind::Persistent],
        WatcherType::PersistentRecursive => vec![WatchKind::PersistentRecursive],
        WatcherType::Any => vec![
            WatchKind::Data,
            WatchKind::Child,
            WatchKind::Persistent,
            WatchKind::PersistentRecursive,
        ],
    }
}

impl Reference {
    /// The connections a delivery reaches; removes the one-shot registrations it fired.
    fn deliver(&mut self, table: Table, path: &str) -> BTreeSet<ConnId> {
        let matched: Vec<_> = self
            .registrations
            .iter()
            .filter(|(_, watch_path, kind)| covers(watch_path, *kind, table, path))
            .cloned()
            .collect();
        let one_shot = if table == Table::Data {
            WatchKind::Data
        } else {
            WatchKind::Child
        };
        for registration in &matched {
            if registration.2 == one_shot {
                self.registrations.remove(registration);
            }
        }
        matched.into_iter().map(|(conn, _, _)| conn).collect()
    }

    fn trigger(&mut self, changes: &[Change]) -> Vec<(ConnId, WatchEvent)> {
        let mut out = Vec::new();
        let mut emit = |conns: BTreeSet<ConnId>, event_type: EventType, path: &str| {
            for conn in conns {
                out.push((
                    conn,
                    WatchEvent {
                        event_type,
                        path: path.to_owned(),
                    },
                ));
            }
        };
        for change in changes {
            let (path, data_event) = match change {
                Change::Created(p) => (p, EventType::NodeCreated),
                Change::Deleted(p) => (p, EventType::NodeDeleted),
                Change::DataChanged(p) => (p, EventType::NodeDataChanged),
            };
            let data_conns = self.deliver(Table::Data, path);
            emit(data_conns.clone(), data_event, path);
            if data_event == EventType::NodeDeleted {
                let child_conns = self.deliver(Table::Child, path);
                emit(&child_conns - &data_conns, EventType::NodeDeleted, path);
            }
            if data_event != EventType::NodeDataChanged
                && let Some(parent) = parent(path)
            {
                let parent_conns = self.deliver(Table::Child, &parent);
                emit(parent_conns, EventType::NodeChildrenChanged, &parent);
            }
        }
        out
    }

    /// setWatches straight from the setWatches table of docs/protocol.md, Watches.
    fn set_watches(&mut self, conn: ConnId, reconnect: &Reconnect) -> Vec<WatchEvent> {
        let mut events = Vec::new();
        let rel = reconnect.relative_zxid;
        let [data, exist, child, persistent, recursive] = &reconnect.lists;
        let state = |p: &String| reconnect.node_zxids.get(p.as_str()).copied();
        let mut register = |p: &String, kind| {
            self.registrations.insert((conn, p.clone(), kind));
        };
        let mut send = |event_type, p: &String| {
            events.push(WatchEvent {
                event_type,
                path: p.clone(),
            })
        };
        for p in data {
            match state(p) {
                None => send(EventType::NodeDeleted, p),
                Some((mzxid, _)) if mzxid > rel => send(EventType::NodeDataChanged, p),
                Some(_) => register(p, WatchKind::Data),
            }
        }
        for p in exist {
            match state(p) {
                None => register(p, WatchKind::Data),
                Some(_) => send(EventType::NodeCreated, p),
            }
        }
        for p in child {
            match state(p) {
                None => send(EventType::NodeDeleted, p),
                Some((_, pzxid)) if pzxid > rel => send(EventType::NodeChildrenChanged, p),
                Some(_) => register(p, WatchKind::Child),
            }
        }
        for p in persistent {
            register(p, WatchKind::Persistent);
        }
        for p in recursive {
            register(p, WatchKind::PersistentRecursive);
        }
        events
    }

    fn held(&self, conn: ConnId, path: &str, watcher_type: WatcherType) -> Vec<WatchKind> {
        let kinds = kinds_of(watcher_type).into_iter();
        kinds
            .filter(|k| self.registrations.contains(&(conn, path.to_owned(), *k)))
            .collect()
    }

    fn remove(
        &mut self,
        conn: ConnId,
        path: &str,
        watcher_type: WatcherType,
    ) -> Result<(), ZkError> {
        let held = self.held(conn, path, watcher_type);
        if held.is_empty() {
            return Err(ZkError::NoWatcher);
        }
        for kind in held {
            self.registrations.remove(&(conn, path.to_owned(), kind));
        }
        Ok(())
    }

    fn summary(&self) -> WatchSummary {
        let pairs: BTreeSet<(ConnId, &str)> = self
            .registrations
            .iter()
            .map(|(c, p, _)| (*c, p.as_str()))
            .collect();
        let in_table = |conn: ConnId, path: &str, table: Table| {
            let path_owned = path.to_owned();
            self.registrations
                .iter()
                .any(|(c, p, k)| *c == conn && *p == path_owned && covers(p, *k, table, p))
        };
        let watch_count = pairs
            .iter()
            .map(|(c, p)| {
                u64::from(in_table(*c, p, Table::Data)) + u64::from(in_table(*c, p, Table::Child))
            })
            .sum();
        WatchSummary {
            connection_count: pairs.iter().map(|(c, _)| *c).collect::<BTreeSet<_>>().len() as u64,
            path_count: pairs.iter().map(|(_, p)| *p).collect::<BTreeSet<_>>().len() as u64,
            watch_count,
        }
    }

    fn by_connection(&self) -> Vec<(ConnId, Vec<String>)> {
        let conns: BTreeSet<ConnId> = self.registrations.iter().map(|(c, _, _)| *c).collect();
        conns
            .into_iter()
            .map(|conn| {
                let paths: BTreeSet<String> = self
                    .registrations
                    .iter()
                    .filter(|(c, _, _)| *c == conn)
                    .map(|(_, p, _)| p.clone())
                    .collect();
                (conn, paths.into_iter().collect())
            })
            .collect()
    }

    fn by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        let mut by_path: BTreeMap<String, BTreeSet<ConnId>> = BTreeMap::new();
        for (conn, path, _) in &self.registrations {
            by_path.entry(path.clone()).or_default().insert(*conn);
        }
        by_path
            .into_iter()
            .map(|(p, conns)| (p, conns.into_iter().collect()))
            .collect()
    }
}

fn path() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(&PATHS[..])
}

fn conn() -> impl Strategy<Value = ConnId> {
    (1u64..=3).prop_map(ConnId)
}

fn kind() -> impl Strategy<Value = WatchKind> {
    prop_oneof![
        Just(WatchKind::Data),
        Just(WatchKind::Child),
        Just(WatchKind::Persistent),
        Just(WatchKind::PersistentRecursive),
    ]
}

fn watcher_type() -> impl Strategy<Value = WatcherType> {
    (1i32..=5).prop_map(|code| WatcherType::from_code(code).expect("codes 1..=5 are defined"))
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        path().prop_map(|p| Change::Created(p.to_owned())),
        path().prop_map(|p| Change::Deleted(p.to_owned())),
        path().prop_map(|p| Change::DataChanged(p.to_owned())),
    ]
}

fn reconnect() -> impl Strategy<Value = Reconnect> {
    let list = || proptest::collection::vec(path().prop_map(str::to_owned), 0..3);
    let node_zxids = proptest::collection::btree_map(path(), (0u64..4, 0u64..4), 0..7);
    let lists = (list(), list(), list(), list(), list());
    (0u64..4, node_zxids, lists).prop_map(|(relative_zxid, node_zxids, (d, e, c, p, r))| {
        Reconnect {
            relative_zxid,
            node_zxids,
            lists: [d, e, c, p, r],
        }
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (conn(), path(), kind()).prop_map(|(c, p, k)| Op::Register(c, p, k)),
        3 => proptest::collection::vec(change(), 1..4).prop_map(Op::Trigger),
        1 => (conn(), path(), watcher_type()).prop_map(|(c, p, t)| Op::Remove(c, p, t)),
        1 => (conn(), path(), watcher_type()).prop_map(|(c, p, t)| Op::Check(c, p, t)),
        1 => (conn(), reconnect()).prop_map(|(c, r)| Op::SetWatches(c, r)),
        1 => conn().prop_map(Op::Close),
    ]
}

proptest! {
    // The table and the reference agree on every output after every operation.
    #[test]
    fn table_matches_reference(ops in proptest::collection::vec(op(), 1..60)) {
        let mut table = WatchTable::new();
        let mut reference = Reference::default();
        for op in ops {
            match op {
                Op::Register(c, p, k) => {
                    table.register(c, p, k);
                    reference.registrations.insert((c, p.to_owned(), k));
                }
                Op::Trigger(changes) => {
                    prop_assert_eq!(table.trigger(&changes), reference.trigger(&changes));
                }
                Op::Remove(c, p, t) => {
                    prop_assert_eq!(table.remove_watches(c, p, t), reference.remove(c, p, t));
                }
                Op::Check(c, p, t) => {
                    let expected =
                        if reference.held(c, p, t).is_empty() { Err(ZkError::NoWatcher) } else { Ok(()) };
                    prop_assert_eq!(table.check_watches(c, p, t), expected);
                }
                Op::SetWatches(c, reconnect) => {
                    let [data, exist, child, persistent, recursive] = &reconnect.lists;
                    let lists = SetWatchesLists {
                        relative_zxid: Zxid(reconnect.relative_zxid),
                        data_paths: data,
                        exist_paths: exist,
                        child_paths: child,
                        persistent_paths: persistent,
                        persistent_recursive_paths: recursive,
                    };
                    let lookup = |p: &str| {
                        reconnect.node_zxids.get(p).map(|(m, c)| (Zxid(*m), Zxid(*c)))
                    };
                    let expected = reference.set_watches(c, &reconnect);
                    prop_assert_eq!(table.set_watches(c, &lists, lookup), expected);
                }
                Op::Close(c) => {
                    table.remove_connection(c);
                    reference.registrations.retain(|(rc, _, _)| *rc != c);
                }
            }
            prop_assert_eq!(table.summary(), reference.summary());
            prop_assert_eq!(table.by_connection(), reference.by_connection());
            prop_assert_eq!(table.by_path(), reference.by_path());
        }
    }
}
