//! The replay: one pass over the committed sequence on a reference model (a fresh
//! `DataTree` plus a table of live sessions), checking every entry against the client
//! operation it answers, and answering every read at the zxid its reply carries.
//!
//! For each committed entry, in index order:
//! - a tree transaction is prepared again by the model from the client's ORIGINAL
//!   request (found through the entry's origin) with the entry's zxid, time and session,
//!   and must equal the committed one; the reply the client got must equal the model's
//!   result (linearizable writes). A write from a session the model does not hold live
//!   prepares to SESSIONEXPIRED, so it cannot pass as a committed change;
//! - a failed write must fail the same way on the model (or with SESSIONEXPIRED when the
//!   leader had already proposed closing the session, which then closes later);
//! - an op appears at most once;
//! - a session close leaves no ephemeral of the session (sessions);
//! - the changes feed the watch model, and reads answered at this zxid are checked and
//!   register their watches (reads, watches).
//!
//! Cost: O(entries + ops log ops) plus the model's own work. The first failure of each
//! checker is kept; `mod.rs` reports them in a fixed checker order.

use std::collections::{BTreeMap, BTreeSet};

use paddock_core::error::ZkError;
use paddock_core::ids::{ConnId, SessionId, Zxid};
use paddock_core::node::{Origin, ProposalBody};
use paddock_core::tree::{DataTree, Op, OpContext, TreeConfig, Txn, TxnKind};
use paddock_core::watch::EventType;
use paddock_core::wire::{Request, Response};

use super::Failure;
use super::committed::{Committed, Entry, OpIndex};
use super::expect::{self, Kind};
use super::watches::{Register, WatchModel};
use crate::history::{History, OpRecord, Outcome};

/// The first failure each checker found during the replay.
#[derive(Debug, Default)]
pub struct Findings {
    /// Durability.
    pub durability: Option<Failure>,
    /// Linearizable writes.
    pub linearizable: Option<Failure>,
    /// Reads.
    pub reads: Option<Failure>,
    /// Sessions and ephemerals.
    pub sessions: Option<Failure>,
    /// Watches.
    pub watches: Option<Failure>,
}

fn note(slot: &mut Option<Failure>, checker: &'static str, event: impl FnOnce() -> String) {
    if slot.is_none() {
        *slot = Some(Failure::new(checker, event()));
    }
}

/// An op in words, for failure messages.
pub fn describe(position: usize, op: &OpRecord) -> String {
    format!(
        "op #{position} (client {} xid {} session 0x{:x} via server {}, sent at {} ms: {:?})",
        op.client, op.xid, op.session.0, op.server.0, op.invoked_ms, op.request
    )
}

/// What the replay learned, for the checks that run after it.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Where each op committed: op position → (index, zxid).
    pub commits: BTreeMap<usize, (u64, Zxid)>,
    /// Zxid of the last replayed entry (0 when none).
    pub last_zxid: Zxid,
    /// Index of the last replayed entry (0 when none).
    pub last_index: u64,
    /// Sessions live at the end, with their timeout in ms.
    pub alive: BTreeMap<SessionId, i32>,
    /// Sessions closed somewhere in the sequence.
    pub closed: BTreeSet<SessionId>,
    /// Leader-made closes (expiries): session, leader time of the proposal in ms, index,
    /// and the session's timeout in ms (0 if the model never saw it created).
    pub expiries: Vec<(SessionId, i64, u64, i32)>,
    /// Model tree digests at the indexes asked for.
    pub digests: BTreeMap<u64, u64>,
    /// The watch model after the whole sequence.
    pub watches: WatchModel,
    /// Connections whose watches the model cannot follow (removeWatches was used).
    pub unmodelled_conns: BTreeSet<ConnId>,
}

/// The replay's state.
struct Replay<'a> {
    history: &'a History,
    index: &'a OpIndex,
    tree: DataTree,
    first_close: BTreeMap<SessionId, u64>,
    findings: Findings,
    out: Replayed,
    digest_at: &'a BTreeSet<u64>,
}

/// Replays `committed`, checking ops and reads, and recording model digests at
/// `digest_at` indexes.
pub fn replay(
    history: &History,
    committed: &Committed,
    index: &OpIndex,
    digest_at: &BTreeSet<u64>,
) -> (Findings, Replayed) {
    let mut first_close = BTreeMap::new();
    for entry in &committed.entries {
        if let Some(ProposalBody::Txn(Txn {
            kind: TxnKind::CloseSession { session },
            ..
        })) = entry.proposal.as_ref().map(|p| &p.body)
        {
            first_close.entry(*session).or_insert(entry.index);
        }
    }
    // A run from existing data directories replays from the state the first entry
    // follows (`Committed::read` made sure there is one).
    let start = committed.entries.first().and_then(|entry| {
        history
            .starts
            .get(&(entry.index - 1))
            .map(|s| (entry.index - 1, s))
    });
    let mut replay = Replay {
        history,
        index,
        tree: start.map_or_else(
            || DataTree::new(TreeConfig::default()),
            |(_, s)| s.tree.clone(),
        ),
        first_close,
        findings: Findings::default(),
        out: Replayed::default(),
        digest_at,
    };
    let mut start_zxid = Zxid::ZERO;
    if let Some((start_index, state)) = start {
        start_zxid = state.zxid;
        replay.out.alive = state.sessions.clone();
        replay.out.last_zxid = state.zxid;
        replay.out.last_index = start_index;
        if replay.digest_at.contains(&start_index) {
            replay.out.digests.insert(start_index, replay.tree.digest());
        }
    }
    let mut reads = replay.reads_by_zxid();
    reads.reverse();
    replay.answer_reads(start_zxid, &mut reads);
    for entry in &committed.entries {
        replay.entry(entry);
        replay.out.last_zxid = entry.zxid;
        replay.out.last_index = entry.index;
        if replay.digest_at.contains(&entry.index) {
            replay.out.digests.insert(entry.index, replay.tree.digest());
        }
        replay.answer_reads(entry.zxid, &mut reads);
    }
    if committed.gap_at.is_none()
        && let Some((zxid, position)) = reads.last()
    {
        let op = &history.ops[*position];
        note(&mut replay.findings.reads, "reads", || {
            format!(
                "{} answered at zxid 0x{:x}, which is not in the committed sequence",
                describe(*position, op),
                zxid
            )
        });
    }
    (replay.findings, replay.out)
}

impl Replay<'_> {
    fn session_of(&self, position: usize) -> SessionId {
        self.index
            .op_session
            .get(position)
            .copied()
            .unwrap_or_default()
    }

    /// Ops answered from local state (or registering watches), by reply zxid.
    fn reads_by_zxid(&self) -> Vec<(i64, usize)> {
        let mut reads: Vec<(i64, usize)> = self
            .history
            .ops
            .iter()
            .enumerate()
            .filter_map(|(position, op)| match &op.outcome {
                Outcome::Reply { zxid, .. } => {
                    let local = matches!(expect::kind(&op.request, op.session), Kind::Read)
                        || matches!(
                            op.request,
                            Request::AddWatch(_)
                                | Request::SetWatches(_)
                                | Request::SetWatches2(_)
                                | Request::RemoveWatches(_)
                        );
                    local.then_some((*zxid, position))
                }
                _ => None,
            })
            .collect();
        reads.sort();
        reads
    }

    fn entry(&mut self, entry: &Entry) {
        let Some(proposal) = &entry.proposal else {
            return;
        };
        if self.history.loaded.contains(&entry.zxid) {
            // Written before the run (a log it started from): applied as the servers
            // apply it, watches included, with no op of this run to stand for it.
            if let ProposalBody::Txn(txn) = &proposal.body {
                let applied = self.tree.apply(txn);
                self.out
                    .watches
                    .apply(&applied.changes, &applied.change_acls, entry.zxid);
                self.txn_session(entry, proposal.origin.as_ref(), txn);
            }
            return;
        }
        let op = proposal.origin.as_ref().and_then(|o| self.index.op_of(o));
        if let Some(position) = op
            && let Some((index, _)) = self.out.commits.get(&position).copied()
        {
            let record = &self.history.ops[position];
            note(&mut self.findings.linearizable, "linearizable", || {
                format!(
                    "{} committed twice: at index {index} and again at index {} zxid {}",
                    describe(position, record),
                    entry.index,
                    entry.zxid
                )
            });
        } else if let Some(position) = op {
            self.out.commits.insert(position, (entry.index, entry.zxid));
        }
        match &proposal.body {
            ProposalBody::Txn(txn) => self.txn(entry, proposal.origin.as_ref(), op, txn),
            // The leader's own writes (reaping) may fail at prepare and change nothing.
            ProposalBody::Failed { .. } if proposal.origin.is_none() => {}
            ProposalBody::Failed { error } => self.failed(entry, op, *error),
            ProposalBody::Sync => self.sync(entry, proposal.origin.as_ref(), op),
        }
    }

    /// The op a committed txn must be the preparation of, with its caller's ids.
    fn txn_source(
        &mut self,
        entry: &Entry,
        origin: Option<&Origin>,
        op: Option<usize>,
        txn: &Txn,
    ) -> Option<(Op, Vec<paddock_core::acl::Id>)> {
        if let Some(position) = op {
            let record = &self.history.ops[position];
            let session = self.session_of(position);
            if let Kind::Write(tree_op) = expect::kind(&record.request, session) {
                return Some((tree_op, record.ids.clone()));
            }
            note(&mut self.findings.linearizable, "linearizable", || {
                format!(
                    "index {} zxid {} commits a txn for {}, which is not a write",
                    entry.index,
                    entry.zxid,
                    describe(position, record)
                )
            });
            return None;
        }
        let own = match (&txn.kind, origin) {
            (
                TxnKind::CreateSession {
                    session,
                    password,
                    timeout_ms,
                },
                Some(o),
            ) if o.xid == 0 => Some(Op::CreateSession {
                session: *session,
                password: *password,
                timeout_ms: *timeout_ms,
            }),
            (TxnKind::CloseSession { session }, None) => {
                Some(Op::CloseSession { session: *session })
            }
            (TxnKind::DeleteContainer { path }, None) => {
                Some(Op::DeleteContainer { path: path.clone() })
            }
            _ => None,
        };
        if own.is_none() {
            note(&mut self.findings.linearizable, "linearizable", || {
                format!(
                    "index {} zxid {} commits {:?} from origin {:?}, which names no client op",
                    entry.index, entry.zxid, txn, origin
                )
            });
        }
        own.map(|op| (op, Vec::new()))
    }

    fn txn(&mut self, entry: &Entry, origin: Option<&Origin>, op: Option<usize>, txn: &Txn) {
        if txn.zxid != entry.zxid {
            note(&mut self.findings.linearizable, "linearizable", || {
                format!(
                    "index {} zxid {} carries a txn stamped zxid {}",
                    entry.index, entry.zxid, txn.zxid
                )
            });
        }
        if let Some((tree_op, ids)) = self.txn_source(entry, origin, op, txn) {
            let session = match &tree_op {
                Op::CreateSession { session, .. } | Op::CloseSession { session } => *session,
                _ => op.map_or(txn.session, |p| self.session_of(p)),
            };
            let ctx = OpContext {
                zxid: entry.zxid,
                time_ms: txn.time_ms,
                session,
                session_live: self.out.alive.contains_key(&session),
                ids,
            };
            let prepared = self.tree.prepare(&tree_op, &ctx);
            if prepared.as_ref() != Ok(txn) {
                let what = op.map_or_else(
                    || "the server's own op".to_owned(),
                    |p| describe(p, &self.history.ops[p]),
                );
                note(&mut self.findings.linearizable, "linearizable", || {
                    format!(
                        "index {} zxid {}: committed {:?} for {what}, but the model prepares {:?}",
                        entry.index, entry.zxid, txn.kind, prepared
                    )
                });
            }
        }
        let applied = self.tree.apply(txn);
        self.out
            .watches
            .apply(&applied.changes, &applied.change_acls, entry.zxid);
        self.txn_session(entry, origin, txn);
        if let Some(position) = op {
            let expected = expect::write_answer(&txn.kind, &applied);
            self.check_reply(position, entry, &expected);
        }
    }

    fn txn_session(&mut self, entry: &Entry, origin: Option<&Origin>, txn: &Txn) {
        match &txn.kind {
            TxnKind::CreateSession {
                session,
                timeout_ms,
                ..
            } => {
                self.out.alive.insert(*session, *timeout_ms);
            }
            TxnKind::CloseSession { session } => {
                let timeout_ms = self.out.alive.remove(session).unwrap_or(0);
                self.out.closed.insert(*session);
                if origin.is_none() {
                    self.out
                        .expiries
                        .push((*session, txn.time_ms, entry.index, timeout_ms));
                }
                if let Some(paths) = self.tree.ephemerals().get(session) {
                    note(&mut self.findings.sessions, "sessions", || {
                        format!(
                            "index {} zxid {}: session 0x{:x} closed but its ephemerals {paths:?} remain",
                            entry.index, entry.zxid, session.0
                        )
                    });
                }
            }
            _ => {}
        }
    }

    fn failed(&mut self, entry: &Entry, op: Option<usize>, error: ZkError) {
        let Some(position) = op else {
            note(&mut self.findings.linearizable, "linearizable", || {
                format!(
                    "index {} zxid {}: a failed write ({error:?}) that names no client op",
                    entry.index, entry.zxid
                )
            });
            return;
        };
        let record = &self.history.ops[position];
        let session = self.session_of(position);
        let Kind::Write(tree_op) = expect::kind(&record.request, session) else {
            note(&mut self.findings.linearizable, "linearizable", || {
                format!(
                    "index {} zxid {}: {} committed as a failed write",
                    entry.index,
                    entry.zxid,
                    describe(position, record)
                )
            });
            return;
        };
        let live = self.out.alive.contains_key(&session);
        let ctx = OpContext {
            zxid: entry.zxid,
            time_ms: 0,
            session,
            session_live: live,
            ids: record.ids.clone(),
        };
        let prepared = self.tree.prepare(&tree_op, &ctx);
        // The leader refuses a session's writes once it proposed closing it; that close
        // then commits after them.
        let closing = error == ZkError::SessionExpired
            && live
            && self
                .first_close
                .get(&session)
                .is_some_and(|at| *at > entry.index);
        let matches = match &prepared {
            Err(model) => *model == error,
            Ok(_) => false,
        };
        if !matches && !closing {
            note(&mut self.findings.linearizable, "linearizable", || {
                format!(
                    "index {} zxid {}: {} failed with {error:?}, but the model prepares {prepared:?}",
                    entry.index,
                    entry.zxid,
                    describe(position, record)
                )
            });
        }
        self.check_reply(position, entry, &(error.code(), None));
    }

    fn sync(&mut self, entry: &Entry, origin: Option<&Origin>, op: Option<usize>) {
        let Some(position) = op else {
            if origin.is_none_or(|o| o.xid != 0) {
                note(&mut self.findings.linearizable, "linearizable", || {
                    format!(
                        "index {} zxid {}: a sync that names no client op (origin {origin:?})",
                        entry.index, entry.zxid
                    )
                });
            }
            return;
        };
        let record = &self.history.ops[position];
        match expect::kind(&record.request, self.session_of(position)) {
            Kind::Sync(path) => {
                self.check_reply(position, entry, &(0, Some(Response::Sync(path))));
            }
            _ => note(&mut self.findings.linearizable, "linearizable", || {
                format!(
                    "index {} zxid {}: {} committed as a sync",
                    entry.index,
                    entry.zxid,
                    describe(position, record)
                )
            }),
        }
    }

    /// The reply an op got for a committed entry must carry the entry's zxid and the
    /// model's answer.
    fn check_reply(&mut self, position: usize, entry: &Entry, expected: &expect::Answer) {
        let record = &self.history.ops[position];
        let Outcome::Reply {
            zxid,
            err,
            response,
        } = &record.outcome
        else {
            return;
        };
        // A second commit of the op is reported as such; the reply answers the first.
        if self.out.commits.get(&position).map(|c| c.0) != Some(entry.index) {
            return;
        }
        if *zxid != entry.zxid.as_wire() {
            note(&mut self.findings.durability, "durability", || {
                format!(
                    "{} answered with zxid 0x{zxid:x}, but it committed at index {} zxid {}",
                    describe(position, record),
                    entry.index,
                    entry.zxid
                )
            });
            return;
        }
        let got = expect::normalize(*err, response.as_ref());
        if got != *expected {
            note(&mut self.findings.linearizable, "linearizable", || {
                format!(
                    "{} at zxid {}: got {got:?}, the model answers {expected:?}",
                    describe(position, record),
                    entry.zxid
                )
            });
        }
    }

    /// Answers (and checks) every read whose reply carries `zxid`; `reads` is sorted by
    /// descending zxid so the next ones are popped from its end.
    fn answer_reads(&mut self, zxid: Zxid, reads: &mut Vec<(i64, usize)>) {
        while let Some((read_zxid, position)) = reads.last().copied() {
            if read_zxid > zxid.as_wire() {
                return;
            }
            reads.pop();
            let op = &self.history.ops[position];
            if read_zxid < zxid.as_wire() {
                note(&mut self.findings.reads, "reads", || {
                    format!(
                        "{} answered at zxid 0x{read_zxid:x}, which is not in the committed sequence",
                        describe(position, op)
                    )
                });
                continue;
            }
            self.read(position, zxid);
        }
    }

    fn read(&mut self, position: usize, zxid: Zxid) {
        let op = &self.history.ops[position];
        let Outcome::Reply { err, response, .. } = &op.outcome else {
            return;
        };
        let session = self.session_of(position);
        if let Some(expected) = expect::read_answer(&self.tree, &op.request, &op.ids, session) {
            let got = expect::normalize(*err, response.as_ref());
            if got != expected {
                note(&mut self.findings.reads, "reads", || {
                    format!(
                        "{} at zxid {zxid}: got {got:?}, the model answers {expected:?}",
                        describe(position, op)
                    )
                });
            }
        }
        let Some(conn) = self.index.op_conn.get(position).copied().flatten() else {
            return;
        };
        self.register(conn, &op.request, *err, zxid);
    }

    /// The watches a read answered with `err` registered on `conn`.
    fn register(&mut self, conn: ConnId, request: &Request, err: i32, zxid: Zxid) {
        let ok = err == 0;
        let watches = &mut self.out.watches;
        match request {
            Request::Exists(r) if r.watch && (ok || err == ZkError::NoNode.code()) => {
                watches.register(conn, &r.path, Register::Data);
            }
            Request::GetData(r) if r.watch && ok => {
                watches.register(conn, &r.path, Register::Data);
            }
            Request::GetChildren(r) | Request::GetChildren2(r) if r.watch && ok => {
                watches.register(conn, &r.path, Register::Child);
            }
            Request::AddWatch(r) if ok => match r.mode {
                0 => watches.register(conn, &r.path, Register::Persistent),
                1 => watches.register(conn, &r.path, Register::Recursive),
                _ => {}
            },
            Request::SetWatches(r) if ok => self.set_watches(
                conn,
                zxid,
                r.relative_zxid,
                [&r.data_watches, &r.exist_watches, &r.child_watches],
                [&[][..], &[][..]],
            ),
            Request::SetWatches2(r) if ok => self.set_watches(
                conn,
                zxid,
                r.relative_zxid,
                [&r.data_watches, &r.exist_watches, &r.child_watches],
                [&r.persistent_watches, &r.persistent_recursive_watches],
            ),
            Request::RemoveWatches(_) => {
                self.out.unmodelled_conns.insert(conn);
            }
            _ => {}
        }
    }

    /// setWatches on reconnect: catch-up events or registrations, per docs/protocol.md, Watches.
    fn set_watches(
        &mut self,
        conn: ConnId,
        zxid: Zxid,
        relative_zxid: i64,
        [data, exist, child]: [&Vec<String>; 3],
        [persistent, recursive]: [&[String]; 2],
    ) {
        let watches = &mut self.out.watches;
        let stat = |path: &str| self.tree.node(path).map(|n| n.stat());
        for path in data {
            match stat(path) {
                None => watches.catch_up(conn, EventType::NodeDeleted, path, zxid),
                Some(s) if s.mzxid > relative_zxid => {
                    watches.catch_up(conn, EventType::NodeDataChanged, path, zxid);
                }
                Some(_) => watches.register(conn, path, Register::Data),
            }
        }
        for path in exist {
            match stat(path) {
                None => watches.register(conn, path, Register::Data),
                Some(_) => watches.catch_up(conn, EventType::NodeCreated, path, zxid),
            }
        }
        for path in child {
            match stat(path) {
                None => watches.catch_up(conn, EventType::NodeDeleted, path, zxid),
                Some(s) if s.pzxid > relative_zxid => {
                    watches.catch_up(conn, EventType::NodeChildrenChanged, path, zxid);
                }
                Some(_) => watches.register(conn, path, Register::Child),
            }
        }
        for path in persistent {
            watches.register(conn, path, Register::Persistent);
        }
        for path in recursive {
            watches.register(conn, path, Register::Recursive);
        }
    }
}
