//! `verdict`: the committed log read back from the servers' data directories, joined to
//! the clients' history, and judged by the simulator's checkers.
//!
//! In the simulator the world sees every entry a server applies; here the servers are
//! real processes, so once they are stopped each one's log is read from its data
//! directory (the storage engine's own recovery, as a restart would read it, see
//! [`read_log`]). The run waits for the servers to converge before stopping them, so
//! their logs agree.
//!
//! # Which entries are committed
//!
//! Each server's log starts at index 1, or after a snapshot: one it installed from the
//! leader (it was wiped, or fell behind the leader's compacted log) — its older segments
//! are gone then — and, for a server that was wiped during the run, the data directory
//! it had before (an *archive*, read the same way) holds the entries it lost. The rule
//! ([`committed`]):
//!
//! - At index `k`, each server's *current* log votes for the zxid of its entry at `k`;
//!   a log whose snapshot covers exactly `k` votes for the snapshot's zxid. A log that
//!   does not hold `k` (its snapshot is past it, or it ends before it) does not vote.
//! - Above every snapshot index of every log and archive, `k` is committed when a
//!   majority of *all* the ensemble's servers vote for the same zxid — as before any
//!   snapshot existed. The committed sequence ends at the first index without one.
//! - At or below some snapshot's index, `k` is known to be committed: a server applied
//!   it (a snapshot holds applied state only, and a leader sends only its own
//!   snapshots). Its zxid is the one a strict majority of the current logs voting at
//!   `k` vote for, and its entry comes from a current log holding that zxid there, else
//!   from an archive holding it; when no current log votes at `k`, it is the entry a
//!   strict majority of the servers' archives holding `k` give (each server's newest
//!   archive with `k`). Ties and indexes no log or archive holds any more are *holes*:
//!   the checkers are told the sequence is incomplete there and check what they can (no
//!   false failure for writes in them).
//!
//! So an entry is only ever taken from logs that hold it, and above the snapshots the
//! quorum rule is the one without them. Archives never vote where a current log does;
//! they supply entries for indexes a snapshot proves were applied, and the payload of an
//! entry whose zxid only snapshots vouch for.
//!
//! A committed entry names the connection it came from by the server's connection id,
//! which clients cannot see. Each client numbers its requests from its own xid range
//! ([`crate::client::first_xid`]), so the xid alone names the operation, and the entry's
//! origin is rewritten to the harness's id of the connection that operation was sent on.
//! A session's creation (xid 0) is linked through the session it created. Entries that
//! name no operation (a leader's own writes, re-validations of resumed sessions) get a
//! connection id no client used.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use paddock_core::ids::{ConnId, NodeId, SessionId, Zxid};
use paddock_core::limits::Limits;
use paddock_core::node::{Proposal, ProposalBody};
use paddock_core::replication::{Entry, SnapshotMeta};
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

/// A server's durable log as read back: the snapshot it starts after and the entries
/// after that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerLog {
    /// The snapshot the entries follow (index 0: the log starts at index 1).
    pub snapshot: SnapshotMeta,
    /// The entries after it, contiguous, in index order.
    pub entries: Vec<Entry>,
}

impl ServerLog {
    /// A log from index 1.
    pub fn from_start(entries: Vec<Entry>) -> ServerLog {
        ServerLog {
            snapshot: SnapshotMeta::default(),
            entries,
        }
    }

    /// Its entry at `index`, if it holds one.
    pub fn at(&self, index: u64) -> Option<&Entry> {
        let position = index.checked_sub(self.snapshot.index)?.checked_sub(1)?;
        usize::try_from(position)
            .ok()
            .and_then(|p| self.entries.get(p))
            .filter(|e| e.index == index)
    }

    /// What it says about `index`: the zxid of its entry there (with the entry), or of
    /// its snapshot when that ends exactly there.
    fn vote(&self, index: u64) -> Option<(Zxid, Option<&Entry>)> {
        if let Some(entry) = self.at(index) {
            return Some((entry.zxid, Some(entry)));
        }
        (index > 0 && self.snapshot.index == index).then_some((self.snapshot.zxid, None))
    }

    /// Its last index (the snapshot's when it has no entries).
    pub fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.snapshot.index, |e| e.index)
    }
}

/// Every log a server held in the run: the one in its data directory at the end, and
/// the data directories it was wiped of, oldest first.
#[derive(Debug, Clone, Default)]
pub struct ServerLogs {
    /// The data directory at the end of the run.
    pub current: ServerLog,
    /// Wiped data directories, oldest first.
    pub archives: Vec<ServerLog>,
}

/// Storage files a data directory holds: the hard state, `loghead`, `logloss`, log
/// segments and snapshots (what [`read_log`] copies; `myid`, `zoo.cfg` and the server's
/// own log are not).
pub fn is_storage_file(name: &str) -> bool {
    name == "hardstate" || name.starts_with("log") || name.starts_with("snapshot.")
}

/// Reads the durable log of the server whose data (and log) directory is `dir`, from as
/// far back as it still holds it.
///
/// Without a snapshot file that is the storage engine's recovery of `dir`, as a restart
/// does it. With snapshots (the server took some, or installed one from the leader),
/// recovery would start from the newest and skip the segments before it, which are
/// still on disk (nothing purges them: `autopurge.purgeInterval` is 0). So the storage
/// files are copied to a scratch directory without any snapshot, then with each
/// snapshot alone, oldest first, and the first that the engine opens is the log: all of
/// it when its segments reach back to index 1, else from the oldest snapshot the
/// segments follow (one installed from the leader removed the segments before it).
pub fn read_log(dir: &Path) -> Result<ServerLog, ReadError> {
    let failed = |reason: String| ReadError {
        dir: dir.display().to_string(),
        reason,
    };
    let mut snapshots: Vec<String> = fs::read_dir(dir)
        .map_err(|e| failed(format!("listing: {e}")))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("snapshot.") && !name.ends_with(".tmp"))
        .collect();
    // `snapshot.<016x zxid>`: the names sort as the zxids do.
    snapshots.sort();
    if snapshots.is_empty() {
        return open_log(dir, dir);
    }
    let mut first_error = None;
    for keep in std::iter::once(None).chain(snapshots.iter().map(Some)) {
        match open_copy(dir, keep.map(String::as_str)) {
            Ok(log) => return Ok(log),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| failed("no snapshot opens".to_owned())))
}

/// The storage engine's recovery of `dir`; `shown` names it in errors.
fn open_log(dir: &Path, shown: &Path) -> Result<ServerLog, ReadError> {
    let (_, durable) =
        paddock_net_real::storage::open(dir, dir, Limits::default(), 3).map_err(|e| ReadError {
            dir: shown.display().to_string(),
            reason: e.to_string(),
        })?;
    Ok(ServerLog {
        snapshot: durable.snapshot,
        entries: durable.entries,
    })
}

/// [`open_log`] of a scratch copy of `dir`'s storage files with no snapshot but `keep`.
fn open_copy(dir: &Path, keep: Option<&str>) -> Result<ServerLog, ReadError> {
    static SCRATCH: AtomicU64 = AtomicU64::new(0);
    let scratch: PathBuf = std::env::temp_dir().join(format!(
        "paddock-chaos-read-{}-{}",
        std::process::id(),
        SCRATCH.fetch_add(1, Ordering::Relaxed)
    ));
    let failed = |reason: String| ReadError {
        dir: dir.display().to_string(),
        reason,
    };
    let copied = (|| -> std::io::Result<()> {
        fs::create_dir_all(&scratch)?;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let wanted = if name.starts_with("snapshot.") {
                keep == Some(name.as_str())
            } else {
                is_storage_file(&name) && !name.ends_with(".tmp")
            };
            if wanted && entry.file_type()?.is_file() {
                fs::copy(entry.path(), scratch.join(&name))?;
            }
        }
        Ok(())
    })();
    let outcome = copied
        .map_err(|e| failed(format!("copying to {}: {e}", scratch.display())))
        .and_then(|()| open_log(&scratch, dir));
    let _ = fs::remove_dir_all(&scratch);
    outcome
}

/// The committed entries (see the [module documentation](self) for the rule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// The committed entries by index, up to [`Committed::through`], but for the holes.
    pub entries: BTreeMap<u64, Entry>,
    /// Indexes below `through` known committed whose entry no log (or no majority of
    /// the logs holding it) gives.
    pub holes: Vec<u64>,
}

impl Committed {
    /// The last committed index (0: none).
    pub fn through(&self) -> u64 {
        self.entries.keys().next_back().copied().unwrap_or(0)
    }
}

/// The committed entries of an ensemble of `voters` servers whose logs are `logs`.
pub fn committed(logs: &BTreeMap<NodeId, ServerLogs>, voters: usize) -> Committed {
    let majority = voters / 2 + 1;
    // Indexes at or below this were applied by some server.
    let applied_through = logs
        .values()
        .flat_map(|l| std::iter::once(&l.current).chain(&l.archives))
        .map(|log| log.snapshot.index)
        .max()
        .unwrap_or(0);
    let mut out = Committed::default();
    let mut index = 0u64;
    loop {
        index += 1;
        let current = tally(logs.values().filter_map(|l| l.current.vote(index)));
        // Each server's newest archive holding an entry at `index`.
        let archived = || {
            tally(logs.values().filter_map(|l| {
                l.archives
                    .iter()
                    .rev()
                    .find_map(|a| a.vote(index).filter(|(_, entry)| entry.is_some()))
            }))
        };
        // The entry with `zxid`: from a current log, else from an archive.
        let entry_of = |zxid: Zxid| current.entry_of(zxid).or_else(|| archived().entry_of(zxid));
        if let Some((zxid, count)) = current.winner()
            && count >= majority
            && let Some(entry) = entry_of(zxid)
        {
            out.entries.insert(index, entry.clone());
            continue;
        }
        if index > applied_through {
            break;
        }
        // Applied by some server: its entry from the logs that still hold it.
        let chosen = if current.cast > 0 {
            current.strict_majority().and_then(entry_of)
        } else {
            let archived = archived();
            archived
                .strict_majority()
                .and_then(|z| archived.entry_of(z))
        };
        match chosen {
            Some(entry) => {
                out.entries.insert(index, entry.clone());
            }
            None => out.holes.push(index),
        }
    }
    let through = out.through();
    out.holes.retain(|h| *h < through);
    out
}

/// Votes at one index.
struct Tally<'a> {
    /// zxid -> (votes, an entry with it, if any vote came with one).
    by_zxid: BTreeMap<Zxid, (usize, Option<&'a Entry>)>,
    cast: usize,
}

fn tally<'a>(votes: impl Iterator<Item = (Zxid, Option<&'a Entry>)>) -> Tally<'a> {
    let mut tally = Tally {
        by_zxid: BTreeMap::new(),
        cast: 0,
    };
    for (zxid, entry) in votes {
        let slot = tally.by_zxid.entry(zxid).or_insert((0, None));
        slot.0 += 1;
        slot.1 = slot.1.or(entry);
        tally.cast += 1;
    }
    tally
}

impl<'a> Tally<'a> {
    /// The most voted zxid and its votes (of two as voted, the higher zxid).
    fn winner(&self) -> Option<(Zxid, usize)> {
        self.by_zxid
            .iter()
            .max_by_key(|(_, (count, _))| *count)
            .map(|(zxid, (count, _))| (*zxid, *count))
    }

    /// The zxid more than half the votes cast are for.
    fn strict_majority(&self) -> Option<Zxid> {
        self.winner()
            .filter(|(_, count)| *count * 2 > self.cast)
            .map(|(zxid, _)| zxid)
    }

    /// An entry with `zxid` that a vote came with.
    fn entry_of(&self, zxid: Zxid) -> Option<&'a Entry> {
        self.by_zxid.get(&zxid).and_then(|(_, entry)| *entry)
    }
}

/// The last index of the committed sequence (see [`committed`]).
pub fn committed_through(logs: &BTreeMap<NodeId, ServerLogs>, voters: usize) -> u64 {
    committed(logs, voters).through()
}

/// Fills `history`'s committed sequence and each server's applied entries from `logs`
/// (each server's logs, read with [`read_log`]): the committed entries (see
/// [`committed`]) with origins rewritten to the history's connections, and each server's
/// current log up to the last committed index as what it applied. Returns the committed
/// entries' summary.
pub fn join(
    history: &mut History,
    logs: &BTreeMap<NodeId, ServerLogs>,
    voters: usize,
) -> Committed {
    let committed = committed(logs, voters);
    let through = committed.through();
    let links = Links::new(history);
    let mut unknown_conn = u64::MAX;
    let mut rewritten: BTreeMap<(u64, Zxid), Vec<u8>> = BTreeMap::new();
    let mut rewrite = |entry: &Entry, unknown_conn: &mut u64| {
        rewritten
            .entry((entry.index, entry.zxid))
            .or_insert_with(|| links.rewrite(&entry.payload, unknown_conn))
            .clone()
    };
    for entry in committed.entries.values() {
        let bytes = rewrite(entry, &mut unknown_conn);
        history.payloads.insert(entry.index, (entry.zxid, bytes));
    }
    for (node, log) in logs {
        let mut applied = Vec::new();
        for entry in log
            .current
            .entries
            .iter()
            .take_while(|e| e.index <= through)
        {
            let bytes = rewrite(entry, &mut unknown_conn);
            applied.push(AppliedRecord {
                index: entry.index,
                zxid: entry.zxid,
                payload_hash: fnv1a(&bytes),
                digest: None,
            });
        }
        history.applied.insert(*node, applied);
    }
    committed
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
            payload: vec![u8::try_from(epoch).unwrap_or(0)],
        }
    }

    fn log(entries: Vec<Entry>) -> ServerLogs {
        ServerLogs {
            current: ServerLog::from_start(entries),
            archives: Vec::new(),
        }
    }

    /// A log after a snapshot at `index` (epoch 1), then `entries`.
    fn after_snapshot(index: u64, entries: Vec<Entry>) -> ServerLog {
        ServerLog {
            snapshot: SnapshotMeta {
                index,
                zxid: entry(index, 1).zxid,
            },
            entries,
        }
    }

    fn run(from: u64, to: u64, epoch: u32) -> Vec<Entry> {
        (from..=to).map(|i| entry(i, epoch)).collect()
    }

    // The committed sequence ends where no majority holds the same entry.
    #[test]
    fn committed_is_what_a_majority_holds() {
        let mut logs = BTreeMap::new();
        logs.insert(NodeId(1), log(vec![entry(1, 1), entry(2, 1), entry(3, 1)]));
        logs.insert(NodeId(2), log(vec![entry(1, 1), entry(2, 1), entry(3, 2)]));
        logs.insert(NodeId(3), log(vec![entry(1, 1)]));
        assert_eq!(committed_through(&logs, 3), 2);
        logs.insert(NodeId(3), log(vec![entry(1, 1), entry(2, 1), entry(3, 2)]));
        assert_eq!(committed_through(&logs, 3), 3);
        assert_eq!(committed(&logs, 3).entries[&3], entry(3, 2));
        assert_eq!(committed_through(&BTreeMap::new(), 3), 0);
    }

    // A wiped server's log starts after the leader's snapshot: below it the two others
    // decide, above it all three vote, and its snapshot counts as a vote at its index.
    #[test]
    fn a_log_after_a_snapshot_votes_only_where_it_holds_entries() {
        let mut logs = BTreeMap::new();
        logs.insert(NodeId(1), log(run(1, 10, 1)));
        logs.insert(NodeId(2), log(run(1, 8, 1)));
        logs.insert(
            NodeId(3),
            ServerLogs {
                current: after_snapshot(5, run(6, 10, 1)),
                archives: Vec::new(),
            },
        );
        let c = committed(&logs, 3);
        // 9 and 10: servers 1 and 3, a majority of 3.
        assert_eq!(c.through(), 10);
        assert!(c.holes.is_empty());
        assert_eq!(c.entries.len(), 10);
        // Server 2 disagreeing below the snapshot, with 1 agreeing: 2 of the 2 holders
        // are needed for a strict majority, so index 3 is a hole, not server 1's entry.
        logs.insert(
            NodeId(2),
            log([run(1, 2, 1), vec![entry(3, 7)], run(4, 8, 1)].concat()),
        );
        let c = committed(&logs, 3);
        assert_eq!(c.holes, vec![3]);
        assert_eq!(c.through(), 10);
        // Above every snapshot the quorum rule holds alone: server 3 by itself commits
        // nothing past what a majority holds.
        logs.insert(NodeId(1), log(run(1, 8, 1)));
        logs.insert(
            NodeId(3),
            ServerLogs {
                current: after_snapshot(5, run(6, 12, 1)),
                archives: Vec::new(),
            },
        );
        assert_eq!(committed_through(&logs, 3), 8);
    }

    // Indexes every current log lost (each installed a snapshot past them) come from
    // the archives of wiped data directories; with no archive either they are holes,
    // and the sequence goes on after them.
    #[test]
    fn archives_fill_what_every_current_log_lost() {
        let mut logs = BTreeMap::new();
        logs.insert(
            NodeId(1),
            ServerLogs {
                current: after_snapshot(6, run(7, 12, 1)),
                archives: vec![ServerLog::from_start(run(1, 4, 1))],
            },
        );
        logs.insert(
            NodeId(2),
            ServerLogs {
                current: after_snapshot(6, run(7, 12, 1)),
                archives: Vec::new(),
            },
        );
        logs.insert(
            NodeId(3),
            ServerLogs {
                current: after_snapshot(8, run(9, 12, 1)),
                archives: Vec::new(),
            },
        );
        let c = committed(&logs, 3);
        assert_eq!(c.through(), 12);
        assert_eq!(c.holes, vec![5, 6]);
        assert_eq!(c.entries[&4], entry(4, 1));
        // 6 is a snapshot's index on two logs, but a snapshot carries no payload and no
        // archive holds it.
        assert!(!c.entries.contains_key(&6));
        // Where the current logs only have a snapshot's zxid, an archive holding an
        // entry with that zxid gives it (and one with another zxid does not).
        logs.insert(
            NodeId(3),
            ServerLogs {
                current: after_snapshot(8, run(9, 12, 1)),
                archives: vec![ServerLog::from_start(run(1, 6, 1))],
            },
        );
        let c = committed(&logs, 3);
        assert_eq!(c.holes, Vec::<u64>::new());
        assert_eq!(c.entries[&6], entry(6, 1));
        logs.insert(
            NodeId(3),
            ServerLogs {
                current: after_snapshot(8, run(9, 12, 1)),
                archives: vec![ServerLog::from_start(
                    [run(1, 5, 1), vec![entry(6, 3)]].concat(),
                )],
            },
        );
        assert_eq!(committed(&logs, 3).holes, vec![6]);
        // An archive alone never commits an index above every snapshot.
        logs.insert(
            NodeId(2),
            ServerLogs {
                current: after_snapshot(6, run(7, 12, 1)),
                archives: vec![ServerLog::from_start(run(1, 20, 1))],
            },
        );
        assert_eq!(committed_through(&logs, 3), 12);
    }
}
