//! `verdict`: the committed log read back from the servers' data directories, joined to
//! the clients' history, and judged by the simulator's checkers.
//!
//! In the simulator the world sees every entry a server applies; here the servers are
//! real processes, so once they are stopped each one's log is read from its data
//! directory (the storage engine's own recovery, as a restart would read it). The entries
//! a majority of the servers hold identically form the committed sequence; the run waits
//! for the servers to converge before stopping them, so their logs agree.
//!
//! A committed entry names the connection it came from by the server's connection id,
//! which clients cannot see. Each client numbers its requests from its own xid range
//! ([`crate::client::first_xid`]), so the xid alone names the operation, and the entry's
//! origin is rewritten to the harness's id of the connection that operation was sent on.
//! A session's creation (xid 0) is linked through the session it created. Entries that
//! name no operation (a leader's own writes, re-validations of resumed sessions) get a
//! connection id no client used.

use std::collections::BTreeMap;
use std::path::Path;

use paddock_core::ids::{ConnId, NodeId, SessionId, Zxid};
use paddock_core::limits::Limits;
use paddock_core::node::{Proposal, ProposalBody};
use paddock_core::replication::Entry;
use paddock_core::tree::TxnKind;
use paddock_sim::check::{self, Failure, Subject};
use paddock_sim::history::{AppliedRecord, History, fnv1a};

/// Why a data directory could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{dir}: {reason}")]
pub struct ReadError {
    /// The directory.
    pub dir: String,
    /// What failed.
    pub reason: String,
}

/// Reads the durable log of the server whose data (and log) directory is `dir`.
pub fn read_log(dir: &Path) -> Result<Vec<Entry>, ReadError> {
    let (_, durable) =
        paddock_net_real::storage::open(dir, dir, Limits::default(), 3).map_err(|e| ReadError {
            dir: dir.display().to_string(),
            reason: e.to_string(),
        })?;
    if durable.snapshot.index > 0 {
        return Err(ReadError {
            dir: dir.display().to_string(),
            reason: format!(
                "a snapshot covers indexes up to {}: the entries before it are not in the log \
                 (runs set snapCount high enough that none is taken)",
                durable.snapshot.index
            ),
        });
    }
    Ok(durable.entries)
}

/// The last index of the committed sequence: the highest index up to which a majority of
/// `logs` hold the same entries (by zxid) as each other, from index 1.
pub fn committed_through(logs: &BTreeMap<NodeId, Vec<Entry>>, voters: usize) -> u64 {
    let majority = voters / 2 + 1;
    let mut index = 0u64;
    loop {
        let next = index + 1;
        let mut counts: BTreeMap<Zxid, usize> = BTreeMap::new();
        for log in logs.values() {
            if let Some(entry) = usize::try_from(index)
                .ok()
                .and_then(|i| log.get(i))
                .filter(|e| e.index == next)
            {
                *counts.entry(entry.zxid).or_default() += 1;
            }
        }
        if counts.values().any(|&c| c >= majority) {
            index = next;
        } else {
            return index;
        }
    }
}

/// Fills `history`'s committed sequence and each server's applied entries from `logs`
/// (each server's log, read with [`read_log`]), up to the index a majority holds, with
/// origins rewritten to the history's connections.
pub fn join(history: &mut History, logs: &BTreeMap<NodeId, Vec<Entry>>, voters: usize) {
    let through = committed_through(logs, voters);
    let links = Links::new(history);
    let mut unknown_conn = u64::MAX;
    let mut rewritten: BTreeMap<(u64, Zxid), Vec<u8>> = BTreeMap::new();
    for (node, log) in logs {
        let mut applied = Vec::new();
        for entry in log.iter().take_while(|e| e.index <= through) {
            let bytes = rewritten
                .entry((entry.index, entry.zxid))
                .or_insert_with(|| links.rewrite(&entry.payload, &mut unknown_conn))
                .clone();
            applied.push(AppliedRecord {
                index: entry.index,
                zxid: entry.zxid,
                payload_hash: fnv1a(&bytes),
                digest: None,
            });
            history
                .payloads
                .entry(entry.index)
                .or_insert((entry.zxid, bytes));
        }
        history.applied.insert(*node, applied);
    }
}

/// Runs every checker over the joined history.
pub fn judge(history: &History) -> Result<(), Failure> {
    check::check(&Subject {
        history,
        servers: &[],
        fault_free: false,
    })
}

/// How the history's operations and sessions map to its connections.
struct Links {
    /// xid -> the connection its operation was sent on.
    by_xid: BTreeMap<i32, ConnId>,
    /// session -> the connection that received it first.
    by_session: BTreeMap<SessionId, ConnId>,
}

impl Links {
    fn new(history: &History) -> Links {
        let mut by_xid = BTreeMap::new();
        // The connection of an op is its client's last connection opened before it.
        let mut conns_of: BTreeMap<u32, Vec<(usize, ConnId, u64)>> = BTreeMap::new();
        for record in &history.conns {
            conns_of.entry(record.client).or_default().push((
                record.first_op,
                record.conn,
                record.opened_ms,
            ));
        }
        for (position, op) in history.ops.iter().enumerate() {
            let conn = conns_of.get(&op.client).and_then(|conns| {
                conns
                    .iter()
                    .rev()
                    .find(|(first_op, _, _)| *first_op <= position)
                    .map(|(_, conn, _)| *conn)
            });
            if let Some(conn) = conn {
                by_xid.insert(op.xid, conn);
            }
        }
        let mut by_session = BTreeMap::new();
        for record in &history.sessions {
            let conn = conns_of.get(&record.client).and_then(|conns| {
                conns
                    .iter()
                    .rev()
                    .find(|(_, _, opened_ms)| *opened_ms <= record.created_ms)
                    .map(|(_, conn, _)| *conn)
            });
            if let Some(conn) = conn {
                by_session.entry(record.session).or_insert(conn);
            }
        }
        Links { by_xid, by_session }
    }

    /// `payload` with its origin's connection rewritten (unchanged when it does not
    /// decode or has no origin).
    fn rewrite(&self, payload: &[u8], unknown_conn: &mut u64) -> Vec<u8> {
        let Ok(mut proposal) = Proposal::decode(payload) else {
            return payload.to_vec();
        };
        let created = match &proposal.body {
            ProposalBody::Txn(txn) => match &txn.kind {
                TxnKind::CreateSession { session, .. } => Some(*session),
                _ => None,
            },
            _ => None,
        };
        let Some(origin) = &mut proposal.origin else {
            return payload.to_vec();
        };
        let linked = if origin.xid != 0 {
            self.by_xid.get(&origin.xid).copied()
        } else {
            created.and_then(|s| self.by_session.get(&s).copied())
        };
        origin.conn = linked.unwrap_or_else(|| {
            *unknown_conn -= 1;
            ConnId(*unknown_conn)
        });
        proposal.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, epoch: u32) -> Entry {
        Entry {
            index,
            zxid: Zxid::new(
                paddock_core::ids::Epoch(epoch),
                u32::try_from(index).unwrap_or(0),
            ),
            payload: Vec::new(),
        }
    }

    // The committed sequence ends where no majority holds the same entry.
    #[test]
    fn committed_is_what_a_majority_holds() {
        let mut logs = BTreeMap::new();
        logs.insert(NodeId(1), vec![entry(1, 1), entry(2, 1), entry(3, 1)]);
        logs.insert(NodeId(2), vec![entry(1, 1), entry(2, 1), entry(3, 2)]);
        logs.insert(NodeId(3), vec![entry(1, 1)]);
        assert_eq!(committed_through(&logs, 3), 2);
        logs.insert(NodeId(3), vec![entry(1, 1), entry(2, 1), entry(3, 2)]);
        assert_eq!(committed_through(&logs, 3), 3);
        assert_eq!(committed_through(&BTreeMap::new(), 3), 0);
    }
}
