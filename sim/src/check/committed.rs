//! The committed sequence and the links between it and the clients' operations.
//!
//! The committed sequence is read from `History::payloads` (every index some server
//! applied, with its payload); agreement checks that all servers applied the same thing
//! at each index, so one copy per index is the sequence. Each entry's `Origin` names a
//! connection and the client's xid; the world's connection records map the connection
//! to its client, and (client, xid) names exactly one operation.
//!
//! Invariant: `Committed::entries` holds consecutive indexes from the first one; if some
//! index was never seen applied (a server installed a snapshot over it and no other
//! server applied it), the sequence stops before it and `gap_at` says where.

use std::collections::BTreeMap;

use paddock_core::ids::{ConnId, SessionId, Zxid};
use paddock_core::node::{Origin, Proposal, ProposalBody};
use paddock_core::tree::TxnKind;

use super::Failure;
use crate::history::{ClientId, History};

/// One committed log entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its index.
    pub index: u64,
    /// Its zxid.
    pub zxid: Zxid,
    /// What it carries; `None` for an empty payload (a new leader's no-op).
    pub proposal: Option<Proposal>,
}

/// The committed sequence, decoded.
#[derive(Debug, Default)]
pub struct Committed {
    /// Entries with consecutive indexes.
    pub entries: Vec<Entry>,
    /// The first index missing from the history, if the sequence has a hole.
    pub gap_at: Option<u64>,
}

impl Committed {
    /// Decodes every committed payload; an undecodable one is an agreement failure (the
    /// servers applied bytes that mean nothing).
    pub fn read(history: &History) -> Result<Committed, Failure> {
        let mut committed = Committed::default();
        let first = history.payloads.keys().next().copied().unwrap_or(1);
        // The sequence starts at index 1, or right after the state a server started
        // from (a run from existing data directories); otherwise what came before the
        // first entry is unknown, and nothing can be replayed.
        if first > 1 && !history.starts.contains_key(&(first - 1)) {
            committed.gap_at = Some(first - 1);
            return Ok(committed);
        }
        for (expected, (index, (zxid, bytes))) in (first..).zip(&history.payloads) {
            if *index != expected {
                committed.gap_at = Some(expected);
                break;
            }
            let proposal = if bytes.is_empty() {
                None
            } else {
                Some(Proposal::decode(bytes).map_err(|e| {
                    Failure::new(
                        "agreement",
                        format!("index {index} zxid {zxid}: committed payload undecodable: {e}"),
                    )
                })?)
            };
            committed.entries.push(Entry {
                index: *index,
                zxid: *zxid,
                proposal,
            });
        }
        Ok(committed)
    }
}

/// Which op each connection and origin stands for.
#[derive(Debug, Default)]
pub struct OpIndex {
    conn_client: BTreeMap<ConnId, ClientId>,
    by_xid: BTreeMap<(ClientId, i32), usize>,
    /// The connection each op was sent on (by op position), when known.
    pub op_conn: Vec<Option<ConnId>>,
    /// The connection each event arrived on (by event position), when known.
    pub event_conn: Vec<Option<ConnId>>,
    /// The session each op ran in (by op position): the recorded one, or, when the
    /// client sent the op before its handshake finished and recorded session 0, the
    /// session its connection ended up with.
    pub op_session: Vec<SessionId>,
}

impl OpIndex {
    /// Indexes a history's ops, events and connections.
    pub fn new(history: &History, committed: &Committed) -> OpIndex {
        let mut index = OpIndex::default();
        let conn_session = conn_sessions(history, committed);
        let mut by_client: BTreeMap<ClientId, Vec<(usize, usize, ConnId)>> = BTreeMap::new();
        for record in &history.conns {
            index.conn_client.insert(record.conn, record.client);
            by_client.entry(record.client).or_default().push((
                record.first_op,
                record.first_event,
                record.conn,
            ));
        }
        // The connection of an op is its client's last connection opened before it.
        let mut cursor: BTreeMap<ClientId, usize> = BTreeMap::new();
        for (position, op) in history.ops.iter().enumerate() {
            index.by_xid.insert((op.client, op.xid), position);
            let conns = by_client.get(&op.client).map_or(&[][..], Vec::as_slice);
            let at = cursor.entry(op.client).or_insert(0);
            while conns.get(*at + 1).is_some_and(|c| c.0 <= position) {
                *at += 1;
            }
            let conn = conns.get(*at).filter(|c| c.0 <= position).map(|c| c.2);
            index.op_conn.push(conn);
            let session = match op.session {
                SessionId(0) => conn
                    .and_then(|c| conn_session.get(&c).copied())
                    .unwrap_or_default(),
                recorded => recorded,
            };
            index.op_session.push(session);
        }
        let mut cursor: BTreeMap<ClientId, usize> = BTreeMap::new();
        for (position, event) in history.events.iter().enumerate() {
            let conns = by_client.get(&event.client).map_or(&[][..], Vec::as_slice);
            let at = cursor.entry(event.client).or_insert(0);
            while conns.get(*at + 1).is_some_and(|c| c.1 <= position) {
                *at += 1;
            }
            index
                .event_conn
                .push(conns.get(*at).filter(|c| c.1 <= position).map(|c| c.2));
        }
        index
    }

    /// The client that opened `conn`.
    pub fn client_of(&self, conn: ConnId) -> Option<ClientId> {
        self.conn_client.get(&conn).copied()
    }

    /// The op an origin answers (`None` for a connect, xid 0, or an unknown origin).
    pub fn op_of(&self, origin: &Origin) -> Option<usize> {
        if origin.xid == 0 {
            return None;
        }
        let client = self.client_of(origin.conn)?;
        self.by_xid.get(&(client, origin.xid)).copied()
    }
}

/// The session each connection ran: the one created on it, else the one its client had
/// before (a resume).
fn conn_sessions(history: &History, committed: &Committed) -> BTreeMap<ConnId, SessionId> {
    let mut created: BTreeMap<ConnId, SessionId> = BTreeMap::new();
    for entry in &committed.entries {
        if let Some(Proposal {
            origin: Some(origin),
            body:
                ProposalBody::Txn(paddock_core::tree::Txn {
                    kind: TxnKind::CreateSession { session, .. },
                    ..
                }),
        }) = &entry.proposal
            && origin.xid == 0
        {
            created.insert(origin.conn, *session);
        }
    }
    let mut current: BTreeMap<ClientId, SessionId> = BTreeMap::new();
    let mut sessions = BTreeMap::new();
    for record in &history.conns {
        let session = match created.get(&record.conn) {
            Some(session) => *session,
            None => current.get(&record.client).copied().unwrap_or_default(),
        };
        current.insert(record.client, session);
        sessions.insert(record.conn, session);
    }
    sessions
}
