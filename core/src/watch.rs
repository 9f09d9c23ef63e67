//! Watches: the watch table of one server. It owns every one-shot data and child watch,
//! every persistent and persistent-recursive watch, and turns the changes an applied
//! transaction made into the watch events each connection must receive (`WatchManager`;
//! docs/protocol.md, Watches).
//!
//! Model. Watches belong to a client connection ([`ConnId`]) and die with it. For each
//! (connection, path) the table keeps a small set of modes: a one-shot data watch (getData,
//! exists), a one-shot child watch (getChildren), a persistent watch (addWatch mode 0, which
//! sits in ZooKeeper's data *and* child tables) and a persistent-recursive watch (addWatch
//! mode 1, data table only). As in ZooKeeper 3.9 (ZOOKEEPER-4466) the modes of one
//! connection on one path coexist: a later one-shot watch never replaces a persistent one.
//!
//! Invariants: `by_path` and `by_conn` describe the same (connection, path) pairs; no entry
//! holds an empty mode set; no map holds an empty inner collection; `recursive` holds exactly
//! the (path, connection) pairs whose entry has the recursive mode. Everything is a
//! `BTreeMap`/`BTreeSet`, so every output is in a defined order.
//!
//! Cost of a trigger: one lookup of the changed path (and of its parent) in `by_path`, plus,
//! only while recursive watches exist, one lookup per ancestor in `recursive`, which holds
//! nothing but recursive watches; never a scan of the whole table.
//!
//! Event order of [`WatchTable::trigger`]: changes in the order given; within one change,
//! the trigger-table order of docs/protocol.md, Watches (create: data(P) then
//! child(parent); delete: data(P), then child(P), then child(parent); setData: data(P));
//! within one trigger, ascending `ConnId`. A connection gets at most one event per trigger,
//! however many of its watches match.
//!
//! Four-letter words: ZooKeeper's `wchs`, `wchc` and `wchp` read its data table only, so a
//! lone child watch is invisible there; ours report every watch. `wchc` in ZooKeeper is keyed
//! by session id: the node maps each [`ConnId`] to its session when printing.
//!
//! READ at delivery (ZooKeeper 3.8.4+, CVE-2024-23944): [`WatchTable::trigger_with_acls`]
//! pairs every event with the ACL that decides whether its connection may see it — the
//! node's own ACL for created, changed and deleted (for a delete, the ACL the node had),
//! the parent's for `NodeChildrenChanged`, each as it stood at that change, also inside a
//! multi — and the node drops an event whose connection lacks READ by that ACL. A dropped
//! event has still used up its one-shot watch. The catch-up events of setWatches are not
//! filtered, as in ZooKeeper. No watch limit is enforced here: the node checks
//! `Limits::watches_per_connection_max` with [`WatchTable::paths_watched_by`] and
//! [`WatchTable::paths_new_to`] before registering.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::acl::Acl;
use crate::error::ZkError;
use crate::ids::{ConnId, Zxid};

/// What applying one transaction changed in the tree, in the order it happened. The tree
/// reports these; the watch table turns them into events (a `Created` also means the
/// parent's children changed, and so on: the watch module derives those).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// A znode was created at this path.
    Created(String),
    /// The znode at this path was deleted.
    Deleted(String),
    /// The data of the znode at this path was set.
    DataChanged(String),
}

/// The ACLs that stood at one [`Change`] when it happened: they decide who may see the
/// events it fires (READ is checked at delivery).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeAcl {
    /// The changed node's ACL (for a delete, the ACL it had); shared with the tree.
    pub acl: Arc<Vec<Acl>>,
    /// The parent's ACL, for `NodeChildrenChanged` (`None` for a data change).
    pub parent_acl: Option<Arc<Vec<Acl>>>,
}

impl ChangeAcl {
    /// The ACL deciding who sees an event of `event_type` fired by this change. An event
    /// with no ACL to check against (a parent's event of a data change, which the watch
    /// table never fires) is refused to everyone.
    pub fn for_event(&self, event_type: EventType) -> Option<&[Acl]> {
        match event_type {
            EventType::NodeChildrenChanged => self.parent_acl.as_deref().map(Vec::as_slice),
            _ => Some(&*self.acl),
        }
    }
}

/// The event types a server sends (Watcher.Event.EventType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// A node was created where a watch was set.
    NodeCreated,
    /// A watched node was deleted.
    NodeDeleted,
    /// A watched node's data changed.
    NodeDataChanged,
    /// A watched node's child list changed.
    NodeChildrenChanged,
}

impl EventType {
    /// The wire value.
    pub fn code(self) -> i32 {
        match self {
            EventType::NodeCreated => 1,
            EventType::NodeDeleted => 2,
            EventType::NodeDataChanged => 3,
            EventType::NodeChildrenChanged => 4,
        }
    }
}

/// One event to send to one connection: `WatcherEvent{type, state = SyncConnected, path}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchEvent {
    /// What happened.
    pub event_type: EventType,
    /// The full server path the event is about: the changed node for data events (also for
    /// a recursive watch set on an ancestor), the parent for `NodeChildrenChanged`.
    pub path: String,
}

/// What a registering call asks for on one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    /// One-shot data watch: getData with watch (node exists) or exists with watch (either way).
    Data,
    /// One-shot child watch: getChildren / getChildren2 with watch.
    Child,
    /// addWatch mode 0: the path's data and child events, never removed by firing.
    Persistent,
    /// addWatch mode 1: data events of the path and all its descendants, never
    /// `NodeChildrenChanged`, never removed by firing.
    PersistentRecursive,
}

impl WatchKind {
    /// The kind for an addWatch `mode` (0 PERSISTENT, 1 PERSISTENT_RECURSIVE). Any other mode
    /// is `BadArguments` (ZooKeeper throws on an unknown mode while decoding the request).
    pub fn from_add_watch_mode(mode: i32) -> Result<WatchKind, ZkError> {
        match mode {
            0 => Ok(WatchKind::Persistent),
            1 => Ok(WatchKind::PersistentRecursive),
            _ => Err(ZkError::BadArguments),
        }
    }

    fn mode_bit(self) -> u8 {
        match self {
            WatchKind::Data => DATA_STANDARD,
            WatchKind::Child => CHILD_STANDARD,
            WatchKind::Persistent => PERSISTENT,
            WatchKind::PersistentRecursive => RECURSIVE,
        }
    }
}

/// The `type` of checkWatches (17) and removeWatches (18): which watches of the connection
/// on the path the request is about (3.9 semantics, `DataTree.removeWatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatcherType {
    /// 1: the one-shot child watch.
    Children,
    /// 2: the one-shot data watch.
    Data,
    /// 3: every watch on the path, one-shot or persistent, in either table.
    Any,
    /// 4 (3.9): the persistent watch.
    Persistent,
    /// 5 (3.9): the persistent-recursive watch.
    PersistentRecursive,
}

impl WatcherType {
    /// The type for a wire value; an unknown value is `BadArguments`.
    pub fn from_code(code: i32) -> Result<WatcherType, ZkError> {
        match code {
            1 => Ok(WatcherType::Children),
            2 => Ok(WatcherType::Data),
            3 => Ok(WatcherType::Any),
            4 => Ok(WatcherType::Persistent),
            5 => Ok(WatcherType::PersistentRecursive),
            _ => Err(ZkError::BadArguments),
        }
    }

    /// The wire value.
    pub fn code(self) -> i32 {
        match self {
            WatcherType::Children => 1,
            WatcherType::Data => 2,
            WatcherType::Any => 3,
            WatcherType::Persistent => 4,
            WatcherType::PersistentRecursive => 5,
        }
    }

    fn mode_bits(self) -> u8 {
        match self {
            WatcherType::Children => CHILD_STANDARD,
            WatcherType::Data => DATA_STANDARD,
            WatcherType::Any => ALL_MODES,
            WatcherType::Persistent => PERSISTENT,
            WatcherType::PersistentRecursive => RECURSIVE,
        }
    }
}

/// The paths a reconnecting client re-sends with setWatches (101) or setWatches2 (105).
/// setWatches carries no persistent lists: pass empty slices.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetWatchesLists<'a> {
    /// The client's lastZxidSeen: changes after it are reported as catch-up events.
    pub relative_zxid: Zxid,
    /// Paths with a data watch (set by getData).
    pub data_paths: &'a [String],
    /// Paths with an exist watch (set by exists).
    pub exist_paths: &'a [String],
    /// Paths with a child watch.
    pub child_paths: &'a [String],
    /// Paths with a persistent watch (setWatches2 only).
    pub persistent_paths: &'a [String],
    /// Paths with a persistent-recursive watch (setWatches2 only).
    pub persistent_recursive_paths: &'a [String],
}

/// The `wchs` numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchSummary {
    /// Connections holding at least one watch.
    pub connection_count: u64,
    /// Paths with at least one watch.
    pub path_count: u64,
    /// Watches, counted as ZooKeeper's two tables do: a one-shot watch or a recursive watch
    /// is one, a persistent watch is two (it sits in the data and the child table), and a
    /// one-shot data watch plus a persistent watch of one connection on one path are also
    /// two (one membership per table).
    pub watch_count: u64,
}

/// Mode bits of one (connection, path) entry.
const DATA_STANDARD: u8 = 1;
const CHILD_STANDARD: u8 = 2;
const PERSISTENT: u8 = 4;
const RECURSIVE: u8 = 8;
const ALL_MODES: u8 = DATA_STANDARD | CHILD_STANDARD | PERSISTENT | RECURSIVE;
/// Modes that put the entry in ZooKeeper's data table (fired by data triggers).
const IN_DATA_TABLE: u8 = DATA_STANDARD | PERSISTENT | RECURSIVE;
/// Modes that put the entry in ZooKeeper's child table (fired by child triggers).
const IN_CHILD_TABLE: u8 = CHILD_STANDARD | PERSISTENT;

/// The watch table of one server. See the module documentation for the model and order.
#[derive(Debug, Clone, Default)]
pub struct WatchTable {
    /// path → connection → mode bits (never 0).
    by_path: BTreeMap<String, BTreeMap<ConnId, u8>>,
    /// connection → the paths it has an entry on; the reverse index of `by_path`.
    by_conn: BTreeMap<ConnId, BTreeSet<String>>,
    /// path → connections with a recursive watch there: the index the ancestor walk of a
    /// trigger reads, so it never iterates one-shot watches on an ancestor.
    recursive: BTreeMap<String, BTreeSet<ConnId>>,
    /// [`WatchSummary::watch_count`], kept up to date by every change of a mode set so
    /// that `summary` (run by monitoring every few hundred ms) costs no scan.
    watch_count: u64,
}

/// How many of ZooKeeper's two tables an entry with `modes` sits in.
fn table_memberships(modes: u8) -> u64 {
    u64::from(modes & IN_DATA_TABLE != 0) + u64::from(modes & IN_CHILD_TABLE != 0)
}

impl WatchTable {
    /// An empty table.
    pub fn new() -> WatchTable {
        WatchTable::default()
    }

    /// Registers a watch of `kind` for `conn` on `path`. Registering what is already there
    /// changes nothing (a connection holds at most one watch of each kind per path).
    pub fn register(&mut self, conn: ConnId, path: &str, kind: WatchKind) {
        let bit = kind.mode_bit();
        // Look up before inserting: re-registering on a watched path (every read with a
        // watch) then allocates nothing.
        if !self.by_path.contains_key(path) {
            self.by_path.insert(path.to_owned(), BTreeMap::new());
        }
        let conns = self.by_path.get_mut(path).expect("inserted just above");
        let modes = conns.entry(conn).or_insert(0);
        if *modes == 0 {
            self.by_conn
                .entry(conn)
                .or_default()
                .insert(path.to_owned());
        }
        let newly_recursive = bit == RECURSIVE && *modes & RECURSIVE == 0;
        let before = table_memberships(*modes);
        *modes |= bit;
        self.watch_count += table_memberships(*modes) - before;
        if newly_recursive {
            self.recursive
                .entry(path.to_owned())
                .or_default()
                .insert(conn);
        }
    }

    /// The events the changes of one applied transaction trigger, in the order documented
    /// on the module; fired one-shot watches are removed.
    pub fn trigger(&mut self, changes: &[Change]) -> Vec<(ConnId, WatchEvent)> {
        let mut events = Vec::new();
        for change in changes {
            match change {
                Change::Created(path) => {
                    self.fire_data(path, EventType::NodeCreated, &mut events);
                    self.fire_parent(path, &mut events);
                }
                Change::Deleted(path) => {
                    let notified = self.fire_data(path, EventType::NodeDeleted, &mut events);
                    let mut targets = BTreeSet::new();
                    self.take_exact(path, IN_CHILD_TABLE, CHILD_STANDARD, &mut targets);
                    // ZooKeeper passes the data watchers as `supress`: a connection learns
                    // of the deletion once, but its one-shot child watch is still consumed.
                    let unnotified = targets.difference(&notified).copied();
                    push_events(unnotified, EventType::NodeDeleted, path, &mut events);
                    self.fire_parent(path, &mut events);
                }
                Change::DataChanged(path) => {
                    self.fire_data(path, EventType::NodeDataChanged, &mut events);
                }
            }
        }
        events
    }

    /// `trigger`, with each event paired with the ACL its delivery must pass (READ), from
    /// `acls`, which holds one entry per change. A change without an entry fires events
    /// paired with `None`, which no connection may see.
    pub fn trigger_with_acls<'a>(
        &mut self,
        changes: &[Change],
        acls: &'a [ChangeAcl],
    ) -> Vec<(ConnId, WatchEvent, Option<&'a [Acl]>)> {
        let mut events = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            let acl = acls.get(i);
            for (conn, event) in self.trigger(std::slice::from_ref(change)) {
                let decides = acl.and_then(|a| a.for_event(event.event_type));
                events.push((conn, event, decides));
            }
        }
        events
    }

    /// Fires the data table for `path`: exact-path watches of any data mode, plus recursive
    /// watches on strict ancestors. Returns the connections notified.
    fn fire_data(
        &mut self,
        path: &str,
        event_type: EventType,
        events: &mut Vec<(ConnId, WatchEvent)>,
    ) -> BTreeSet<ConnId> {
        let mut targets = BTreeSet::new();
        self.take_exact(path, IN_DATA_TABLE, DATA_STANDARD, &mut targets);
        if !self.recursive.is_empty() {
            for ancestor in ancestors(path) {
                if let Some(conns) = self.recursive.get(ancestor) {
                    targets.extend(conns.iter().copied());
                }
            }
        }
        push_events(targets.iter().copied(), event_type, path, events);
        targets
    }

    /// Fires `NodeChildrenChanged` on the child table of the parent of `path` (none for `/`).
    fn fire_parent(&mut self, path: &str, events: &mut Vec<(ConnId, WatchEvent)>) {
        if let Some(parent) = parent_of(path) {
            let mut targets = BTreeSet::new();
            self.take_exact(parent, IN_CHILD_TABLE, CHILD_STANDARD, &mut targets);
            push_events(targets, EventType::NodeChildrenChanged, parent, events);
        }
    }

    /// Adds to `targets` the connections whose entry on exactly `path` has a bit of
    /// `matching`, and clears their one-shot bit `consumed`.
    fn take_exact(
        &mut self,
        path: &str,
        matching: u8,
        consumed: u8,
        targets: &mut BTreeSet<ConnId>,
    ) {
        let Some(conns) = self.by_path.get_mut(path) else {
            return;
        };
        let mut emptied = Vec::new();
        let mut dropped = 0;
        conns.retain(|conn, modes| {
            if *modes & matching != 0 {
                targets.insert(*conn);
            }
            let before = table_memberships(*modes);
            *modes &= !consumed;
            dropped += before - table_memberships(*modes);
            if *modes == 0 {
                emptied.push(*conn);
            }
            *modes != 0
        });
        self.watch_count -= dropped;
        if conns.is_empty() {
            self.by_path.remove(path);
        }
        for conn in emptied {
            self.unindex(conn, path);
        }
    }

    /// Removes `path` from the reverse index of `conn`, dropping an emptied set.
    fn unindex(&mut self, conn: ConnId, path: &str) {
        if let Some(paths) = self.by_conn.get_mut(&conn) {
            paths.remove(path);
            if paths.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
    }

    /// Removes `conn` from the recursive watchers of `path`, dropping an emptied set.
    fn unindex_recursive(&mut self, conn: ConnId, path: &str) {
        if let Some(conns) = self.recursive.get_mut(path) {
            conns.remove(&conn);
            if conns.is_empty() {
                self.recursive.remove(path);
            }
        }
    }

    /// The mode bits `conn` holds on `path` (0 when none).
    fn modes(&self, conn: ConnId, path: &str) -> u8 {
        self.by_path
            .get(path)
            .and_then(|conns| conns.get(&conn))
            .copied()
            .unwrap_or(0)
    }

    /// removeWatches (18): removes the watches of `watcher_type` that `conn` holds on `path`,
    /// without sending any event. `NoWatcher` when it holds none of them.
    pub fn remove_watches(
        &mut self,
        conn: ConnId,
        path: &str,
        watcher_type: WatcherType,
    ) -> Result<(), ZkError> {
        let bits = watcher_type.mode_bits();
        let held = self.modes(conn, path);
        if held & bits == 0 {
            return Err(ZkError::NoWatcher);
        }
        let remaining = held & !bits;
        self.watch_count -= table_memberships(held) - table_memberships(remaining);
        if held & RECURSIVE != 0 && remaining & RECURSIVE == 0 {
            self.unindex_recursive(conn, path);
        }
        let conns = self
            .by_path
            .get_mut(path)
            .expect("modes() found an entry on this path");
        if remaining == 0 {
            conns.remove(&conn);
            if conns.is_empty() {
                self.by_path.remove(path);
            }
            self.unindex(conn, path);
        } else {
            conns.insert(conn, remaining);
        }
        Ok(())
    }

    /// checkWatches (17): `Ok` when `conn` holds a watch of `watcher_type` on `path`,
    /// `NoWatcher` otherwise. Changes nothing.
    pub fn check_watches(
        &self,
        conn: ConnId,
        path: &str,
        watcher_type: WatcherType,
    ) -> Result<(), ZkError> {
        if self.modes(conn, path) & watcher_type.mode_bits() == 0 {
            return Err(ZkError::NoWatcher);
        }
        Ok(())
    }

    /// setWatches (101) / setWatches2 (105) on reconnect (docs/protocol.md, Watches, the
    /// setWatches table). `node_zxids` gives the current `(mzxid, pzxid)` of a path, `None`
    /// when it does not exist. Registers what must be registered and returns the catch-up
    /// events for `conn`, in list order (data, exist, child), each list in the order given;
    /// they go out before the -8 reply.
    pub fn set_watches<F>(
        &mut self,
        conn: ConnId,
        lists: &SetWatchesLists<'_>,
        node_zxids: F,
    ) -> Vec<WatchEvent>
    where
        F: Fn(&str) -> Option<(Zxid, Zxid)>,
    {
        let relative_zxid = lists.relative_zxid;
        let mut events = Vec::new();
        let mut catch_up = |event_type: EventType, path: &str| {
            events.push(WatchEvent {
                event_type,
                path: path.to_owned(),
            });
        };
        for path in lists.data_paths {
            match node_zxids(path) {
                None => catch_up(EventType::NodeDeleted, path),
                Some((mzxid, _)) if mzxid > relative_zxid => {
                    catch_up(EventType::NodeDataChanged, path);
                }
                Some(_) => self.register(conn, path, WatchKind::Data),
            }
        }
        for path in lists.exist_paths {
            match node_zxids(path) {
                None => self.register(conn, path, WatchKind::Data),
                Some(_) => catch_up(EventType::NodeCreated, path),
            }
        }
        for path in lists.child_paths {
            match node_zxids(path) {
                None => catch_up(EventType::NodeDeleted, path),
                Some((_, pzxid)) if pzxid > relative_zxid => {
                    catch_up(EventType::NodeChildrenChanged, path);
                }
                Some(_) => self.register(conn, path, WatchKind::Child),
            }
        }
        for path in lists.persistent_paths {
            self.register(conn, path, WatchKind::Persistent);
        }
        for path in lists.persistent_recursive_paths {
            self.register(conn, path, WatchKind::PersistentRecursive);
        }
        events
    }

    /// Drops every watch of a closed connection.
    pub fn remove_connection(&mut self, conn: ConnId) {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return;
        };
        for path in paths {
            let Some(conns) = self.by_path.get_mut(&path) else {
                continue;
            };
            let modes = conns.remove(&conn).unwrap_or(0);
            self.watch_count -= table_memberships(modes);
            if conns.is_empty() {
                self.by_path.remove(&path);
            }
            if modes & RECURSIVE != 0 {
                self.unindex_recursive(conn, &path);
            }
        }
    }

    /// How many paths `conn` has at least one watch on (for a per-connection watch limit).
    pub fn paths_watched_by(&self, conn: ConnId) -> u64 {
        self.by_conn
            .get(&conn)
            .map_or(0, |paths| paths.len() as u64)
    }

    /// The most paths one connection watches (0 with no watches): O(connections).
    pub fn paths_watched_max(&self) -> u64 {
        self.by_conn
            .values()
            .map(|paths| paths.len() as u64)
            .max()
            .unwrap_or(0)
    }

    /// How many of `paths` `conn` holds no watch on yet (each counted once): what
    /// registering a watch on all of them would add to [`WatchTable::paths_watched_by`].
    pub fn paths_new_to<'a>(&self, conn: ConnId, paths: impl IntoIterator<Item = &'a str>) -> u64 {
        let mut new = BTreeSet::new();
        for path in paths {
            if self.modes(conn, path) == 0 {
                new.insert(path);
            }
        }
        new.len() as u64
    }

    /// `wchs`: connections watching, paths watched, and total watches (see
    /// [`WatchSummary::watch_count`]; the same number is mntr's `zk_watch_count`).
    pub fn summary(&self) -> WatchSummary {
        debug_assert_eq!(
            self.watch_count,
            self.by_path
                .values()
                .flat_map(BTreeMap::values)
                .map(|modes| table_memberships(*modes))
                .sum::<u64>(),
            "the kept watch count matches the table"
        );
        let watch_count = self.watch_count;
        WatchSummary {
            connection_count: self.by_conn.len() as u64,
            path_count: self.by_path.len() as u64,
            watch_count,
        }
    }

    /// `wchc`: each watching connection (ascending) with the paths it watches (ascending).
    pub fn by_connection(&self) -> Vec<(ConnId, Vec<String>)> {
        self.by_conn
            .iter()
            .map(|(conn, paths)| (*conn, paths.iter().cloned().collect()))
            .collect()
    }

    /// `wchp`: each watched path (ascending) with the connections watching it (ascending).
    pub fn by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        self.by_path
            .iter()
            .map(|(path, conns)| (path.clone(), conns.keys().copied().collect()))
            .collect()
    }
}

/// Appends one `event_type` event about `path` for each connection, in the order given.
fn push_events(
    conns: impl IntoIterator<Item = ConnId>,
    event_type: EventType,
    path: &str,
    events: &mut Vec<(ConnId, WatchEvent)>,
) {
    for conn in conns {
        events.push((
            conn,
            WatchEvent {
                event_type,
                path: path.to_owned(),
            },
        ));
    }
}

/// The parent of a path: `/` for a top-level node, `None` for `/` itself (and for a string
/// without a `/`, which the tree never reports).
fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(index) => path.get(..index),
        None => None,
    }
}

/// The strict ancestors of a path, nearest first, ending with `/`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(parent_of(path), |p| parent_of(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Parents and ancestors follow ZooKeeper's rule that `/` is the parent of a top-level node.
    #[test]
    fn parents_and_ancestors() {
        assert_eq!(parent_of("/"), None);
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("junk"), None);
        assert_eq!(
            ancestors("/a/b/c").collect::<Vec<_>>(),
            vec!["/a/b", "/a", "/"]
        );
        assert_eq!(ancestors("/").count(), 0);
    }

    // The recursive index and both main indexes stay consistent through register, fire,
    // remove and connection close (the ancestor walk reads only the recursive index).
    #[test]
    fn indexes_stay_consistent() {
        let mut table = WatchTable::new();
        let (a, b) = (ConnId(1), ConnId(2));
        table.register(a, "/x", WatchKind::PersistentRecursive);
        table.register(a, "/x", WatchKind::PersistentRecursive);
        table.register(b, "/x", WatchKind::Data);
        table.register(b, "/y", WatchKind::PersistentRecursive);
        assert_eq!(table.recursive.len(), 2);
        table.trigger(&[Change::DataChanged("/x".into())]);
        assert_eq!(
            table.by_path(),
            vec![("/x".into(), vec![a]), ("/y".into(), vec![b])]
        );
        assert_eq!(table.remove_watches(a, "/x", WatcherType::Any), Ok(()));
        assert_eq!(table.recursive.get("/y"), Some(&BTreeSet::from([b])));
        assert_eq!(table.recursive.len(), 1);
        table.remove_connection(b);
        assert!(table.recursive.is_empty());
        assert!(table.by_path.is_empty());
        assert!(table.by_conn.is_empty());
    }
}
