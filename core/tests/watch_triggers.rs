//! The watch table against docs/protocol.md, Watches: every row of the trigger table, the 3.9 rules
//! for coexisting modes, check/removeWatches, setWatches catch-up, connection removal and
//! the four-letter-word views.

use paddock_core::error::ZkError;
use paddock_core::ids::{ConnId, Zxid};
use paddock_core::watch::{
    Change, EventType, SetWatchesLists, WatchEvent, WatchKind, WatchSummary, WatchTable,
    WatcherType,
};

use EventType::{NodeChildrenChanged, NodeCreated, NodeDataChanged, NodeDeleted};

const A: ConnId = ConnId(1);
const B: ConnId = ConnId(2);
const C: ConnId = ConnId(3);

fn created(path: &str) -> Change {
    Change::Created(path.to_owned())
}

fn deleted(path: &str) -> Change {
    Change::Deleted(path.to_owned())
}

fn data_changed(path: &str) -> Change {
    Change::DataChanged(path.to_owned())
}

fn ev(conn: ConnId, event_type: EventType, path: &str) -> (ConnId, WatchEvent) {
    (
        conn,
        WatchEvent {
            event_type,
            path: path.to_owned(),
        },
    )
}

fn table_with(watches: &[(ConnId, &str, WatchKind)]) -> WatchTable {
    let mut table = WatchTable::new();
    for (conn, path, kind) in watches {
        table.register(*conn, path, *kind);
    }
    table
}

// Row "create P": data(P) fires NodeCreated (an exists watch on a missing node), then the
// child watch of the parent fires NodeChildrenChanged; both are one-shot and gone after.
#[test]
fn create_fires_data_then_parent_child() {
    let mut table = table_with(&[
        (B, "/a", WatchKind::Child),
        (A, "/a/x", WatchKind::Data),
        (C, "/a/x", WatchKind::Child),
    ]);
    let events = table.trigger(&[created("/a/x")]);
    assert_eq!(
        events,
        vec![ev(A, NodeCreated, "/a/x"), ev(B, NodeChildrenChanged, "/a")]
    );
    // C's child watch on /a/x is not fired by the creation of /a/x itself.
    assert_eq!(
        table.check_watches(C, "/a/x", WatcherType::Children),
        Ok(())
    );
    assert_eq!(
        table.trigger(&[deleted("/a/x"), created("/a/x")]),
        vec![ev(C, NodeDeleted, "/a/x")]
    );
}

// A top-level node's parent is `/`: creating /a fires a child watch on `/`.
#[test]
fn create_top_level_fires_root_child_watch() {
    let mut table = table_with(&[(A, "/", WatchKind::Child)]);
    assert_eq!(
        table.trigger(&[created("/a")]),
        vec![ev(A, NodeChildrenChanged, "/")]
    );
}

// Row "delete P": data(P) NodeDeleted, then child(P) NodeDeleted for connections not
// already notified, then child(parent) NodeChildrenChanged.
#[test]
fn delete_fires_data_child_then_parent() {
    let mut table = table_with(&[
        (C, "/", WatchKind::Child),
        (B, "/p", WatchKind::Child),
        (A, "/p", WatchKind::Data),
    ]);
    let events = table.trigger(&[deleted("/p")]);
    assert_eq!(
        events,
        vec![
            ev(A, NodeDeleted, "/p"),
            ev(B, NodeDeleted, "/p"),
            ev(C, NodeChildrenChanged, "/")
        ]
    );
    assert_eq!(table.summary(), WatchSummary::default());
}

// One NodeDeleted per connection: a connection with a data and a child watch on P gets one
// event, and its child watch is consumed all the same (ZooKeeper removes it while firing).
#[test]
fn delete_notifies_each_connection_once() {
    let mut table = table_with(&[(A, "/p", WatchKind::Data), (A, "/p", WatchKind::Child)]);
    assert_eq!(
        table.trigger(&[deleted("/p")]),
        vec![ev(A, NodeDeleted, "/p")]
    );
    assert_eq!(
        table.check_watches(A, "/p", WatcherType::Any),
        Err(ZkError::NoWatcher)
    );
}

// Row "setData P": only data(P) fires, with NodeDataChanged; child watches on P and the
// parent stay armed.
#[test]
fn set_data_fires_only_data_watches() {
    let mut table = table_with(&[
        (A, "/p", WatchKind::Data),
        (B, "/p", WatchKind::Child),
        (C, "/", WatchKind::Child),
    ]);
    assert_eq!(
        table.trigger(&[data_changed("/p")]),
        vec![ev(A, NodeDataChanged, "/p")]
    );
    assert_eq!(table.trigger(&[data_changed("/p")]), vec![]);
    assert_eq!(table.summary().watch_count, 2);
}

// Standard watches match the exact path only: nothing fires for a grandchild's creation
// or a sibling's change.
#[test]
fn standard_watches_match_exact_path() {
    let mut table = table_with(&[(A, "/a", WatchKind::Data), (B, "/a", WatchKind::Child)]);
    let events = table.trigger(&[created("/a/b/c"), data_changed("/ab"), deleted("/a/b/c")]);
    assert_eq!(events, vec![]);
    assert_eq!(table.summary().watch_count, 2);
}

// A persistent watch on P acts as a data and a child watch on P that survive firing.
#[test]
fn persistent_watch_fires_every_time() {
    let mut table = table_with(&[(A, "/p", WatchKind::Persistent)]);
    let changes = [
        created("/p"),
        created("/p/c"),
        data_changed("/p"),
        deleted("/p/c"),
        deleted("/p"),
    ];
    let expected = vec![
        ev(A, NodeCreated, "/p"),
        ev(A, NodeChildrenChanged, "/p"),
        ev(A, NodeDataChanged, "/p"),
        ev(A, NodeChildrenChanged, "/p"),
        ev(A, NodeDeleted, "/p"),
    ];
    assert_eq!(table.trigger(&changes), expected);
    assert_eq!(table.trigger(&changes), expected);
    assert_eq!(
        table.check_watches(A, "/p", WatcherType::Persistent),
        Ok(())
    );
}

// A recursive watch fires data events for the path and every descendant, with the changed
// node's path, never NodeChildrenChanged, and is never removed.
#[test]
fn recursive_watch_covers_descendants_without_children_events() {
    let mut table = table_with(&[(A, "/a", WatchKind::PersistentRecursive)]);
    let changes = [
        created("/a"),
        created("/a/b"),
        created("/a/b/c"),
        data_changed("/a/b"),
        deleted("/a/b/c"),
        created("/ab"),
        data_changed("/"),
    ];
    let expected = vec![
        ev(A, NodeCreated, "/a"),
        ev(A, NodeCreated, "/a/b"),
        ev(A, NodeCreated, "/a/b/c"),
        ev(A, NodeDataChanged, "/a/b"),
        ev(A, NodeDeleted, "/a/b/c"),
    ];
    assert_eq!(table.trigger(&changes), expected);
    assert_eq!(table.trigger(&changes), expected);
}

// A recursive watch on `/` sees every node.
#[test]
fn recursive_watch_on_root_sees_everything() {
    let mut table = table_with(&[(A, "/", WatchKind::PersistentRecursive)]);
    let events = table.trigger(&[created("/x"), data_changed("/"), deleted("/x/y/z")]);
    assert_eq!(
        events,
        vec![
            ev(A, NodeCreated, "/x"),
            ev(A, NodeDataChanged, "/"),
            ev(A, NodeDeleted, "/x/y/z")
        ]
    );
}

// 3.9 (ZOOKEEPER-4466): a one-shot and a persistent watch of one connection on one path
// coexist; one change gives that connection one event; the one-shot goes, the other stays.
#[test]
fn one_shot_and_persistent_coexist() {
    let mut table = table_with(&[(A, "/p", WatchKind::Persistent), (A, "/p", WatchKind::Data)]);
    assert_eq!(
        table.trigger(&[data_changed("/p")]),
        vec![ev(A, NodeDataChanged, "/p")]
    );
    assert_eq!(
        table.check_watches(A, "/p", WatcherType::Data),
        Err(ZkError::NoWatcher)
    );
    assert_eq!(
        table.check_watches(A, "/p", WatcherType::Persistent),
        Ok(())
    );
    // Registering the persistent watch first or last makes no difference.
    let mut table = table_with(&[
        (A, "/p", WatchKind::Child),
        (A, "/p", WatchKind::Persistent),
    ]);
    assert_eq!(
        table.trigger(&[created("/p/c")]),
        vec![ev(A, NodeChildrenChanged, "/p")]
    );
    assert_eq!(
        table.check_watches(A, "/p", WatcherType::Children),
        Err(ZkError::NoWatcher)
    );
    assert_eq!(
        table.trigger(&[created("/p/d")]),
        vec![ev(A, NodeChildrenChanged, "/p")]
    );
}

// A connection matched by its exact-path watch and by recursive watches on ancestors gets
// one event, and its one-shot watch is consumed.
#[test]
fn overlapping_recursive_and_standard_give_one_event() {
    let mut table = table_with(&[
        (A, "/", WatchKind::PersistentRecursive),
        (A, "/a", WatchKind::PersistentRecursive),
        (A, "/a/b", WatchKind::Data),
        (A, "/a/b", WatchKind::PersistentRecursive),
    ]);
    assert_eq!(
        table.trigger(&[data_changed("/a/b")]),
        vec![ev(A, NodeDataChanged, "/a/b")]
    );
    assert_eq!(
        table.check_watches(A, "/a/b", WatcherType::Data),
        Err(ZkError::NoWatcher)
    );
}

// Order: changes in order, then trigger-table order, then ascending ConnId, whatever the
// registration order.
#[test]
fn event_order_is_deterministic() {
    let mut table = table_with(&[
        (C, "/p", WatchKind::Data),
        (A, "/", WatchKind::Child),
        (B, "/p", WatchKind::PersistentRecursive),
        (A, "/p", WatchKind::Data),
        (C, "/", WatchKind::Child),
        (B, "/q", WatchKind::Data),
    ]);
    let events = table.trigger(&[data_changed("/q"), created("/p")]);
    assert_eq!(
        events,
        vec![
            ev(B, NodeDataChanged, "/q"),
            ev(A, NodeCreated, "/p"),
            ev(B, NodeCreated, "/p"),
            ev(C, NodeCreated, "/p"),
            ev(A, NodeChildrenChanged, "/"),
            ev(C, NodeChildrenChanged, "/"),
        ]
    );
}

// removeWatches/checkWatches with each WatcherType: each type sees exactly its modes, a
// miss is NOWATCHER, check leaves the table alone and remove takes only the named modes.
#[test]
fn check_and_remove_by_type() {
    let all = [
        (A, "/p", WatchKind::Data),
        (A, "/p", WatchKind::Child),
        (A, "/p", WatchKind::Persistent),
        (A, "/p", WatchKind::PersistentRecursive),
    ];
    let types = [
        (WatcherType::Children, WatchKind::Child),
        (WatcherType::Data, WatchKind::Data),
        (WatcherType::Persistent, WatchKind::Persistent),
        (
            WatcherType::PersistentRecursive,
            WatchKind::PersistentRecursive,
        ),
    ];
    for (watcher_type, kind) in types {
        let mut only = table_with(&[(A, "/p", kind)]);
        for (other, _) in types.iter().filter(|(t, _)| *t != watcher_type) {
            assert_eq!(only.check_watches(A, "/p", *other), Err(ZkError::NoWatcher));
            assert_eq!(
                only.remove_watches(A, "/p", *other),
                Err(ZkError::NoWatcher)
            );
        }
        assert_eq!(only.check_watches(A, "/p", watcher_type), Ok(()));
        assert_eq!(only.check_watches(A, "/p", WatcherType::Any), Ok(()));
        assert_eq!(
            only.check_watches(B, "/p", watcher_type),
            Err(ZkError::NoWatcher)
        );
        assert_eq!(
            only.check_watches(A, "/q", watcher_type),
            Err(ZkError::NoWatcher)
        );
        assert_eq!(only.remove_watches(A, "/p", watcher_type), Ok(()));
        assert_eq!(
            only.remove_watches(A, "/p", watcher_type),
            Err(ZkError::NoWatcher)
        );
        assert_eq!(only.summary(), WatchSummary::default());

        let mut full = table_with(&all);
        assert_eq!(full.remove_watches(A, "/p", watcher_type), Ok(()));
        assert_eq!(
            full.check_watches(A, "/p", watcher_type),
            Err(ZkError::NoWatcher)
        );
        for (other, _) in types.iter().filter(|(t, _)| *t != watcher_type) {
            assert_eq!(full.check_watches(A, "/p", *other), Ok(()));
        }
    }
    let mut full = table_with(&all);
    assert_eq!(full.remove_watches(A, "/p", WatcherType::Any), Ok(()));
    assert_eq!(
        full.remove_watches(A, "/p", WatcherType::Any),
        Err(ZkError::NoWatcher)
    );
    assert_eq!(full.trigger(&[created("/p/c"), deleted("/p")]), vec![]);
}

// removeWatches removes silently: the removed watch no longer fires, other connections'
// watches on the path are untouched.
#[test]
fn removed_watch_no_longer_fires() {
    let mut table = table_with(&[(A, "/p", WatchKind::Data), (B, "/p", WatchKind::Data)]);
    assert_eq!(table.remove_watches(A, "/p", WatcherType::Data), Ok(()));
    assert_eq!(
        table.trigger(&[data_changed("/p")]),
        vec![ev(B, NodeDataChanged, "/p")]
    );
}

// Wire codes: WatcherType 1..=5 and addWatch modes 0/1 decode; anything else is a typed error.
#[test]
fn wire_codes() {
    for code in 1..=5 {
        let watcher_type = WatcherType::from_code(code).expect("defined code");
        assert_eq!(watcher_type.code(), code);
    }
    assert_eq!(WatcherType::from_code(0), Err(ZkError::BadArguments));
    assert_eq!(WatcherType::from_code(6), Err(ZkError::BadArguments));
    assert_eq!(WatchKind::from_add_watch_mode(0), Ok(WatchKind::Persistent));
    assert_eq!(
        WatchKind::from_add_watch_mode(1),
        Ok(WatchKind::PersistentRecursive)
    );
    assert_eq!(
        WatchKind::from_add_watch_mode(2),
        Err(ZkError::BadArguments)
    );
    assert_eq!(
        WatchKind::from_add_watch_mode(-1),
        Err(ZkError::BadArguments)
    );
    let codes = [
        NodeCreated,
        NodeDeleted,
        NodeDataChanged,
        NodeChildrenChanged,
    ]
    .map(|e| e.code());
    assert_eq!(codes, [1, 2, 3, 4]);
}

/// The node state the setWatches tests see: /gone is absent; /old changed at or before
/// zxid 10; /data-new has mzxid 11; /kids-new has pzxid 11.
fn lookup(path: &str) -> Option<(Zxid, Zxid)> {
    match path {
        "/old" => Some((Zxid(10), Zxid(5))),
        "/data-new" => Some((Zxid(11), Zxid(5))),
        "/kids-new" => Some((Zxid(5), Zxid(11))),
        _ => None,
    }
}

fn paths(list: &[&str]) -> Vec<String> {
    list.iter().map(|p| (*p).to_owned()).collect()
}

fn catch_up(event_type: EventType, path: &str) -> WatchEvent {
    WatchEvent {
        event_type,
        path: path.to_owned(),
    }
}

// setWatches dataWatches: absent → NodeDeleted, mzxid > relZxid → NodeDataChanged, else the
// data watch is registered (and no event). Boundary: mzxid == relZxid registers.
#[test]
fn set_watches_data_list() {
    let mut table = WatchTable::new();
    let data = paths(&["/gone", "/data-new", "/old", "/kids-new"]);
    let lists = SetWatchesLists {
        relative_zxid: Zxid(10),
        data_paths: &data,
        ..Default::default()
    };
    let events = table.set_watches(A, &lists, lookup);
    assert_eq!(
        events,
        vec![
            catch_up(NodeDeleted, "/gone"),
            catch_up(NodeDataChanged, "/data-new")
        ]
    );
    assert_eq!(
        table.by_connection(),
        vec![(A, paths(&["/kids-new", "/old"]))]
    );
    assert_eq!(table.check_watches(A, "/old", WatcherType::Data), Ok(()));
    assert_eq!(
        table.check_watches(A, "/gone", WatcherType::Any),
        Err(ZkError::NoWatcher)
    );
}

// setWatches existWatches: absent → data watch registered; present → NodeCreated.
#[test]
fn set_watches_exist_list() {
    let mut table = WatchTable::new();
    let exist = paths(&["/gone", "/old"]);
    let lists = SetWatchesLists {
        relative_zxid: Zxid(10),
        exist_paths: &exist,
        ..Default::default()
    };
    assert_eq!(
        table.set_watches(A, &lists, lookup),
        vec![catch_up(NodeCreated, "/old")]
    );
    assert_eq!(table.check_watches(A, "/gone", WatcherType::Data), Ok(()));
    assert_eq!(
        table.trigger(&[created("/gone")]),
        vec![ev(A, NodeCreated, "/gone")]
    );
}

// setWatches childWatches: absent → NodeDeleted, pzxid > relZxid → NodeChildrenChanged,
// else a child watch is registered.
#[test]
fn set_watches_child_list() {
    let mut table = WatchTable::new();
    let child = paths(&["/gone", "/kids-new", "/data-new"]);
    let lists = SetWatchesLists {
        relative_zxid: Zxid(10),
        child_paths: &child,
        ..Default::default()
    };
    let events = table.set_watches(A, &lists, lookup);
    assert_eq!(
        events,
        vec![
            catch_up(NodeDeleted, "/gone"),
            catch_up(NodeChildrenChanged, "/kids-new")
        ]
    );
    assert_eq!(
        table.check_watches(A, "/data-new", WatcherType::Children),
        Ok(())
    );
    assert_eq!(table.summary().watch_count, 1);
}

// setWatches2 persistent lists: registered whatever the node state, with no catch-up.
#[test]
fn set_watches_persistent_lists() {
    let mut table = WatchTable::new();
    let persistent = paths(&["/gone", "/data-new"]);
    let recursive = paths(&["/kids-new"]);
    let lists = SetWatchesLists {
        relative_zxid: Zxid(0),
        persistent_paths: &persistent,
        persistent_recursive_paths: &recursive,
        ..Default::default()
    };
    assert_eq!(table.set_watches(A, &lists, lookup), vec![]);
    assert_eq!(
        table.check_watches(A, "/gone", WatcherType::Persistent),
        Ok(())
    );
    assert_eq!(
        table.check_watches(A, "/data-new", WatcherType::Persistent),
        Ok(())
    );
    assert_eq!(
        table.check_watches(A, "/kids-new", WatcherType::PersistentRecursive),
        Ok(())
    );
}

// All lists at once: catch-up events come in list order (data, exist, child).
#[test]
fn set_watches_events_in_list_order() {
    let mut table = WatchTable::new();
    let child = paths(&["/gone"]);
    let exist = paths(&["/old"]);
    let data = paths(&["/data-new"]);
    let lists = SetWatchesLists {
        relative_zxid: Zxid(10),
        data_paths: &data,
        exist_paths: &exist,
        child_paths: &child,
        ..Default::default()
    };
    assert_eq!(
        table.set_watches(A, &lists, lookup),
        vec![
            catch_up(NodeDataChanged, "/data-new"),
            catch_up(NodeCreated, "/old"),
            catch_up(NodeDeleted, "/gone"),
        ]
    );
}

// Closing a connection drops all its watches and only its watches.
#[test]
fn remove_connection_drops_its_watches() {
    let mut table = table_with(&[
        (A, "/p", WatchKind::Data),
        (A, "/q", WatchKind::PersistentRecursive),
        (B, "/p", WatchKind::Child),
    ]);
    table.remove_connection(A);
    table.remove_connection(C);
    assert_eq!(table.by_connection(), vec![(B, paths(&["/p"]))]);
    assert_eq!(table.paths_watched_by(A), 0);
    let events = table.trigger(&[data_changed("/p"), created("/q/x"), deleted("/p")]);
    assert_eq!(events, vec![ev(B, NodeDeleted, "/p")]);
}

// wchs / wchc / wchp views: counts per table, ascending orders.
#[test]
fn four_letter_word_views() {
    let table = table_with(&[
        (B, "/z", WatchKind::Data),
        (A, "/z", WatchKind::Persistent),
        (A, "/a", WatchKind::PersistentRecursive),
        (A, "/a", WatchKind::Child),
        (C, "/a", WatchKind::Data),
        (C, "/a", WatchKind::Persistent),
    ]);
    // /z: B data 1, A persistent 2; /a: A recursive+child 2, C data+persistent 2.
    let expected = WatchSummary {
        connection_count: 3,
        path_count: 2,
        watch_count: 7,
    };
    assert_eq!(table.summary(), expected);
    assert_eq!(
        table.by_connection(),
        vec![
            (A, paths(&["/a", "/z"])),
            (B, paths(&["/z"])),
            (C, paths(&["/a"]))
        ]
    );
    assert_eq!(
        table.by_path(),
        vec![("/a".to_owned(), vec![A, C]), ("/z".to_owned(), vec![A, B])]
    );
    assert_eq!(table.paths_watched_by(A), 2);
}
