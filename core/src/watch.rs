//! Watches: one-shot data, child and exist watches, persistent and persistent-recursive
//! watches, and the events each applied transaction triggers.

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
