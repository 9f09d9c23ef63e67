//! What a run produced, as the checkers read it: every client operation with its
//! invocation and completion, every watch event, every session a client saw begin or
//! end, and every entry each server applied.

use std::collections::BTreeMap;

use paddock_core::acl::Id;
use paddock_core::ids::{ConnId, NodeId, SessionId, Zxid};
use paddock_core::wire::{Request, Response, WatcherEvent};

/// A simulated client, numbered from 0.
pub type ClientId = u32;

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished when the run ended.
    Pending,
    /// The server answered.
    Reply {
        /// The reply header's zxid.
        zxid: i64,
        /// The reply header's error code (0 = success).
        err: i32,
        /// The body, when `err == 0` and the op has one.
        response: Option<Response>,
    },
    /// The connection closed before the answer: the op may or may not have happened.
    Lost,
}

/// One client operation.
#[derive(Debug, Clone, PartialEq)]
pub struct OpRecord {
    /// The client.
    pub client: ClientId,
    /// Its session when it sent the op.
    pub session: SessionId,
    /// The server it sent the op to.
    pub server: NodeId,
    /// The request's xid (unique per client for the whole run).
    pub xid: i32,
    /// The request.
    pub request: Request,
    /// The client's identities on that connection (ip, digest...).
    pub ids: Vec<Id>,
    /// Virtual time it was sent, ms.
    pub invoked_ms: u64,
    /// Virtual time it finished, ms.
    pub completed_ms: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
}

/// A watch event a client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// The client.
    pub client: ClientId,
    /// The server that sent it.
    pub server: NodeId,
    /// Virtual time, ms.
    pub at_ms: u64,
    /// The event.
    pub event: WatcherEvent,
    /// The highest reply zxid the client had seen when the event arrived.
    pub client_zxid: i64,
    /// The identities the server held for the connection when it sent the event: the
    /// client's, less a credential whose auth packet is not answered yet (the server
    /// answers an auth as it takes it, so an event before the answer predates it).
    pub ids: Vec<Id>,
}

/// A session as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The client.
    pub client: ClientId,
    /// The session.
    pub session: SessionId,
    /// When the client learned the session exists, ms.
    pub created_ms: u64,
    /// When a server told the client the session had expired, ms.
    pub expired_ms: Option<u64>,
}

/// An entry a server applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedRecord {
    /// Log index.
    pub index: u64,
    /// Its zxid.
    pub zxid: Zxid,
    /// Hash of the payload (to compare servers cheaply).
    pub payload_hash: u64,
    /// Tree digest right after applying it, when sampled.
    pub digest: Option<u64>,
}

/// A client connection as the world opened it. Ops and events of its client recorded
/// after it opened (and before the client's next connection) belong to it: a client has
/// at most one connection at a time, so the positions below place every op and event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnRecord {
    /// The connection (unique for the whole run).
    pub conn: ConnId,
    /// The client that opened it.
    pub client: ClientId,
    /// The server it goes to.
    pub server: NodeId,
    /// Virtual time it opened, ms.
    pub opened_ms: u64,
    /// `History::ops.len()` when it opened.
    pub first_op: usize,
    /// `History::events.len()` when it opened.
    pub first_event: usize,
    /// The identities the connection holds from its start: the address and every
    /// credential the client re-sends before anything else.
    pub ids: Vec<Id>,
}

/// The state a server started from, when the run began from existing data directories:
/// its snapshot's tree and sessions at the index the snapshot covers.
#[derive(Debug, Clone)]
pub struct StartState {
    /// The zxid of the index the snapshot covers.
    pub zxid: Zxid,
    /// The tree.
    pub tree: paddock_core::tree::DataTree,
    /// The live sessions, with their timeouts in ms.
    pub sessions: BTreeMap<SessionId, i32>,
}

/// Replication messages sent by every server over a run, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// `Append` messages.
    pub appends: u64,
    /// Log entries carried by them.
    pub entries: u64,
    /// Payload bytes of those entries.
    pub entry_bytes: u64,
    /// Heartbeats (timed, and commit notices).
    pub heartbeats: u64,
    /// Snapshot pieces.
    pub snapshot_pieces: u64,
    /// Client writes carried by `Forward` messages (a follower's writes to the leader),
    /// retransmissions included.
    pub forwarded_writes: u64,
    /// `Touch` messages (a follower's sessions with activity, for the leader's expiry).
    pub touches: u64,
    /// Every other peer message (votes, replies, forwards).
    pub other: u64,
}

/// Everything a run recorded.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Client operations in invocation order.
    pub ops: Vec<OpRecord>,
    /// Watch events in arrival order.
    pub events: Vec<EventRecord>,
    /// Sessions in creation order.
    pub sessions: Vec<SessionRecord>,
    /// Per server, every entry it applied, in order (a server that restarts applies its
    /// log again: the sequence then restarts from its snapshot).
    pub applied: BTreeMap<NodeId, Vec<AppliedRecord>>,
    /// The payload of every committed index seen, by index (first server to apply it).
    pub payloads: BTreeMap<u64, (Zxid, Vec<u8>)>,
    /// Virtual time some server first applied each index, ms.
    pub first_applied_ms: BTreeMap<u64, u64>,
    /// Entries a server acknowledged as durable and did not recover after a crash (the
    /// world checks every restart).
    pub ack_losses: Vec<String>,
    /// Client connections in the order they opened.
    pub conns: Vec<ConnRecord>,
    /// Replication traffic the servers sent (the world counts it; zero where nobody
    /// did, as on a real network).
    pub traffic: Traffic,
    /// Acts of recipe clients on their protected resources, in the order performed.
    pub acts: Vec<crate::recipes::ActRecord>,
    /// For a run that began from existing data directories: the state each server
    /// started from, by the index its snapshot covers. The committed sequence the
    /// checkers replay then starts from one of them. Empty for a run from empty disks.
    pub starts: BTreeMap<u64, StartState>,
    /// The zxids of the log entries the servers loaded at the start of such a run: they
    /// were written before it (their origins name connections of another run or
    /// server), so the checkers apply them without linking them to this run's ops. A
    /// zxid names one proposal across the ensemble's life: a leader's epoch is new to
    /// every voter that elected it.
    pub loaded: std::collections::BTreeSet<Zxid>,
    /// What every server's clock was moved ahead of true time at the start of such a
    /// run (past the times the loaded state holds), ms; 0 otherwise.
    pub clock_base_ms: i64,
    /// What the monitor and the liveness phase measured (`crate::monitor`).
    pub measures: crate::monitor::Measures,
    /// By session, when each ping that was answered was sent, in the order answered:
    /// the session's activity that no operation records.
    pub pings: BTreeMap<SessionId, Vec<u64>>,
    /// Sessions their client abandoned (dropped the connection instead of closing the
    /// session, as a crashed process does), with when it last sent anything on them.
    pub abandoned: BTreeMap<SessionId, u64>,
    /// Frames a client could not take, in the order met: a frame that does not split or
    /// decode, or an answer to nothing it asked (the server broke FIFO order). The
    /// simulated network delivers client bytes intact and in order, so each is a server
    /// bug; the client drops the connection, as ZooKeeper's clients do.
    pub wire_breaches: Vec<String>,
}

impl History {
    /// Records that `client` opened connection `conn` to `server` (the world calls this
    /// when it opens the connection, before any op is sent on it).
    pub fn connected(
        &mut self,
        conn: ConnId,
        client: ClientId,
        server: NodeId,
        now_ms: u64,
        ids: Vec<Id>,
    ) {
        self.conns.push(ConnRecord {
            conn,
            client,
            server,
            opened_ms: now_ms,
            first_op: self.ops.len(),
            first_event: self.events.len(),
            ids,
        });
    }
}

/// FNV-1a, 64 bits: a fixed hash for payloads and the trace.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
