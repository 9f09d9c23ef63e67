//! The serving leader's half of a node ([`Leader`], the node's `Role::Leader`): it takes
//! every write — its own clients' and those its followers forward — validates it against
//! its prepared state and proposes it; it expires sessions and reaps containers and TTL
//! nodes. A server is in this role from `lead_start` (its epoch's first entry committed
//! and every committed entry applied) until replication reports any change of leader or
//! epoch (`Node::leader_changed`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{INVARIANT_PASS_ZNODES_MAX, Node, Output, Role};
use crate::ids::{Epoch, NodeId, SessionId, Zxid};
use crate::node::message::{Origin, PeerMessage, Proposal, ProposalBody, Write, WriteOp};
use crate::replication::Entry;
use crate::session::SessionTable;
use crate::tree::{DataTree, Op, OpContext, Txn};

/// The leader's state: its prepared state (the applied state plus its own uncommitted
/// proposals), its followers' forward streams, and its timers.
///
/// The prepared tree starts as an O(1) copy of the applied tree and is advanced by each
/// proposed txn; the applied tree later applies the same txns on its own, so the nodes
/// they touch exist twice. Rebasing (a fresh copy of the applied tree plus the txns still
/// in `pending`) lets the two share them again: it happens whenever nothing is pending,
/// and otherwise after [`REBASE_EVERY`] applied txns (or 8 × the pending ones, whichever
/// is more), so at most that many nodes are held twice and the re-applied txns cost at
/// most 1/8 of the applies.
#[derive(Debug)]
pub(super) struct Leader {
    /// The prepared tree.
    tree: DataTree,
    /// Txns in the prepared tree that the applied tree has not applied yet, in order,
    /// with the origin of their write. Applying a committed entry this leader proposed
    /// takes its proposal from here instead of decoding the entry's payload: it is the
    /// same proposal, as no other server proposes zxids of this leader's epoch.
    pending: VecDeque<(Option<Origin>, Txn)>,
    /// Txns applied since the prepared tree was last rebased.
    applied_since_rebase: usize,
    /// The prepared session table.
    sessions: SessionTable,
    /// Per follower, its forward stream in this epoch: the stream id and the next
    /// sequence number expected.
    streams: BTreeMap<NodeId, Stream>,
    /// Sessions whose close this leader already proposed.
    expiring: BTreeSet<SessionId>,
    /// When to propose closing the sessions whose deadline passed (`None`: to be armed
    /// from the applied session table at the end of the step).
    expiry_at: Option<u64>,
    /// When to look for containers and TTL nodes to delete next.
    reap_at: u64,
}

/// Applied txns after which the leader's prepared tree is rebased even while proposals are
/// pending (see [`Leader`]).
pub(super) const REBASE_EVERY: usize = 4096;

/// Whether a leader whose applied tree applied `applied_since_rebase` txns since its
/// prepared tree was last rebased, with `pending` txns still only in the prepared tree,
/// rebases it now (see [`Leader`]): when nothing is pending (the two trees are then
/// equal), or once the applies reach [`REBASE_EVERY`] or 8 × `pending`, whichever is more.
pub(super) fn rebase_due(applied_since_rebase: usize, pending: usize) -> bool {
    pending == 0 || applied_since_rebase >= REBASE_EVERY.max(8 * pending)
}

/// Streams of a follower the leader remembers as replaced: a restart loop shorter than a
/// message's time in flight is the only way to exceed it.
const STREAMS_RETIRED_MAX: usize = 16;

/// A follower's forward stream as the leader tracks it.
#[derive(Debug)]
struct Stream {
    /// The current stream id.
    stream: u64,
    /// The next sequence number expected in it.
    next: u64,
    /// Ids of streams it replaced (their late messages are ignored).
    retired: VecDeque<u64>,
}

impl Leader {
    /// A leadership starting from the applied state (`tree`, `sessions`), its first reap
    /// due at `reap_at`.
    pub(super) fn new(tree: DataTree, sessions: SessionTable, reap_at: u64) -> Leader {
        Leader {
            tree,
            pending: VecDeque::new(),
            applied_since_rebase: 0,
            sessions,
            streams: BTreeMap::new(),
            expiring: BTreeSet::new(),
            expiry_at: None,
            reap_at,
        }
    }

    /// The earliest of its timers.
    pub(super) fn next_deadline(&self) -> u64 {
        self.expiry_at
            .map_or(self.reap_at, |at| at.min(self.reap_at))
    }

    /// True when the session expiry timer waits to be armed.
    pub(super) fn expiry_at_unset(&self) -> bool {
        self.expiry_at.is_none()
    }

    /// Proposed txns not yet applied, and txns applied since the last rebase
    /// (`MemoryUse::prepared`, `MemoryUse::prepared_unshared`).
    pub(super) fn prepared_counts(&self) -> (usize, usize) {
        (self.pending.len(), self.applied_since_rebase)
    }

    /// The proposal of a committed entry this leader proposed, still held decoded in its
    /// pending txns (see [`Leader::pending`]). With `check`, compares it with the entry's
    /// payload.
    pub(super) fn proposal_take(&mut self, entry: &Entry, check: bool) -> Option<Proposal> {
        if self
            .pending
            .front()
            .is_none_or(|(_, txn)| txn.zxid != entry.zxid)
        {
            return None;
        }
        let (origin, txn) = self.pending.pop_front()?;
        let proposal = Proposal {
            origin,
            body: ProposalBody::Txn(txn),
        };
        if check {
            assert_eq!(
                Proposal::decode(&entry.payload).ok().as_ref(),
                Some(&proposal),
                "a pending proposal differs from its committed entry {}",
                entry.index
            );
        }
        Some(proposal)
    }

    /// The applied tree (`applied`) applied the txn `zxid`: drops it (and any older) from
    /// the pending txns and rebases the prepared tree when due (see [`Leader`]). With
    /// `check`, a small tree is compared with the applied one when nothing is pending.
    pub(super) fn applied(&mut self, applied: &DataTree, zxid: Zxid, check: bool) {
        while self
            .pending
            .front()
            .is_some_and(|(_, txn)| txn.zxid <= zxid)
        {
            self.pending.pop_front();
        }
        self.applied_since_rebase += 1;
        if !rebase_due(self.applied_since_rebase, self.pending.len()) {
            return;
        }
        // With nothing pending, the prepared tree already equals the applied one.
        if check && self.pending.is_empty() && applied.node_count() <= INVARIANT_PASS_ZNODES_MAX {
            crate::work::uncounted(|| {
                assert_eq!(
                    self.tree.digest(),
                    applied.digest(),
                    "the prepared tree differs from the applied one with nothing pending"
                )
            });
        }
        self.tree = applied.clone();
        // Housekeeping: amortised over `REBASE_EVERY` applies, so its cost must stay
        // within the background budget, not hide behind the allowance of a write.
        crate::work::background(|| {
            for (_, txn) in &self.pending {
                self.tree.apply(txn);
            }
        });
        self.applied_since_rebase = 0;
    }

    /// A close of `session` was applied: it is no longer expiring.
    pub(super) fn session_closed(&mut self, session: SessionId) {
        self.expiring.remove(&session);
    }

    /// Advances the prepared state by a proposed transaction.
    fn prepared_apply(&mut self, now_ms: u64, origin: Option<Origin>, txn: Txn) {
        self.tree.apply(&txn);
        // A refused create changes nothing here; the applied state reports it.
        let _ = super::sessions_apply(&mut self.sessions, &txn.kind, now_ms);
        self.pending.push_back((origin, txn));
    }

    /// Records that the writes of `from`'s stream `stream` up to (not including)
    /// `expected` were taken.
    fn stream_taken(&mut self, from: NodeId, stream: u64, expected: u64) {
        let st = self.streams.entry(from).or_insert(Stream {
            stream,
            next: 0,
            retired: VecDeque::new(),
        });
        if st.stream != stream {
            st.retired.push_back(st.stream);
            if st.retired.len() > STREAMS_RETIRED_MAX {
                st.retired.pop_front();
            }
            st.stream = stream;
        }
        st.next = expected;
    }
}

impl Node {
    /// The leader's writes waiting in the route (its own clients'): proposes them in
    /// order while replication has room (at `proposals_uncommitted_max` the rest wait for
    /// commits to make room). Returns true when something was proposed.
    pub(super) fn leader_take_unsent(&mut self, now_ms: u64, out: &mut Vec<Output>) -> bool {
        let mut proposed = false;
        while !self.replica.proposals_full() {
            let Some(write) = self.route.unsent.pop_front() else {
                break;
            };
            proposed |= self.leader_take(now_ms, write, out);
        }
        proposed
    }

    /// The leader receives a follower's forwarded writes: takes them strictly in sequence
    /// order, once each, as long as it has room to propose, and acknowledges what it took.
    pub(super) fn leader_forwarded(
        &mut self,
        now_ms: u64,
        from: NodeId,
        (epoch, stream): (Epoch, u64),
        first_seq: u64,
        writes: Vec<Write>,
        out: &mut Vec<Output>,
    ) {
        let Role::Leader(leader) = &self.role else {
            return;
        };
        if epoch != self.route.epoch {
            return;
        }
        // A new stream (the follower restarted) numbers from 0; messages of a stream it
        // replaced may still be in flight and must never be taken again.
        let state = leader.streams.get(&from);
        if state.is_some_and(|st| st.retired.contains(&stream)) {
            return;
        }
        let mut expected = match state {
            Some(st) if st.stream == stream => st.next,
            _ => 0,
        };
        let mut proposed = false;
        for (offset, write) in writes.into_iter().enumerate() {
            let seq = first_seq.saturating_add(offset as u64);
            if seq < expected {
                continue;
            }
            // Out of order, or no room for more proposals: the acknowledgement below stops
            // at `expected`, and the follower sends the rest again.
            if seq > expected || self.replica.proposals_full() {
                break;
            }
            proposed |= self.leader_take(now_ms, write, out);
            expected += 1;
        }
        // `leader_take` only proposes (replication is stepped by the flush below), so this
        // server still leads here.
        if let Role::Leader(leader) = &mut self.role {
            leader.stream_taken(from, stream, expected);
        }
        out.push(Output::Peer {
            to: from,
            msg: PeerMessage::ForwardAck {
                epoch,
                stream,
                next_seq: expected,
            },
        });
        if proposed {
            self.proposals_flush(now_ms, out);
        }
    }

    /// A follower reports which of its clients' sessions showed life.
    pub(super) fn leader_touched(&mut self, now_ms: u64, sessions: Vec<SessionId>) {
        for id in sessions {
            self.sessions.touch(id, now_ms);
        }
    }

    /// Validates a write against the prepared state and proposes it. Returns true when a
    /// proposal was made; a write that cannot be proposed fails its connection.
    pub(super) fn leader_take(&mut self, now_ms: u64, write: Write, out: &mut Vec<Output>) -> bool {
        let (Role::Leader(leader), Some(zxid)) = (&self.role, self.replica.next_proposal_zxid())
        else {
            self.write_refuse(write.origin, out);
            return false;
        };
        // `sessions_max` counts the sessions prepared here, so it holds however many
        // connects are in flight: one more is refused, and its connection closed.
        if matches!(write.op, WriteOp::Tree(Op::CreateSession { .. }))
            && leader.sessions.len() >= self.config.limits.sessions_max as usize
        {
            self.write_refuse(write.origin, out);
            return false;
        }
        // A request the leader takes is activity on its session, wherever the client
        // is connected: a follower's touch may arrive a tick later than its forward.
        self.sessions.touch(write.session, now_ms);
        let body = match &write.op {
            WriteOp::Sync => ProposalBody::Sync,
            WriteOp::Tree(op) => {
                let ctx = OpContext {
                    zxid,
                    time_ms: i64::try_from(now_ms).unwrap_or(i64::MAX),
                    session: write.session,
                    session_live: leader
                        .sessions
                        .get(write.session)
                        .is_some_and(|s| !s.closing),
                    ids: write.ids.clone(),
                };
                match leader.tree.prepare(op, &ctx) {
                    Ok(txn) => ProposalBody::Txn(txn),
                    Err(error) => ProposalBody::Failed { error },
                }
            }
        };
        let proposal = Proposal {
            origin: write.origin,
            body,
        };
        match self.replica.propose(proposal.encode()) {
            Ok(proposed_zxid) => {
                assert_eq!(
                    proposed_zxid, zxid,
                    "replication assigned another zxid than announced"
                );
                if let (ProposalBody::Txn(txn), Role::Leader(leader)) =
                    (proposal.body, &mut self.role)
                {
                    leader.prepared_apply(now_ms, proposal.origin, txn);
                }
                true
            }
            Err(_) => {
                self.write_refuse(write.origin, out);
                false
            }
        }
    }

    fn write_refuse(&mut self, origin: Option<Origin>, out: &mut Vec<Output>) {
        let Some(origin) = origin else {
            return;
        };
        if origin.node == self.id() {
            self.conn_close(origin.conn, out);
        } else {
            out.push(Output::Peer {
                to: origin.node,
                msg: PeerMessage::ForwardRefused { origin },
            });
        }
    }

    /// Lets replication persist and send what `propose` queued (`Input::Flush`: no timer
    /// fires). Nothing it emits is applied here: entries it could report committed wait
    /// in the apply queue for the next step.
    pub(super) fn proposals_flush(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        self.replica_step(now_ms, crate::replication::Input::Flush, out);
    }

    /// Starts serving as leader: every session gets a full timeout from this leader's
    /// clock (docs/consensus.md §14), and the prepared state starts as the applied one.
    pub(super) fn lead_start(&mut self, now_ms: u64) {
        let rearm = true;
        // planted bug: lost-session-on-leader-change (follower-era deadlines kept).
        #[cfg(feature = "planted-bugs")]
        let rearm = rearm && self.config.bug != Some(crate::bugs::Bug::LostSessionOnLeaderChange);
        if rearm {
            self.sessions_reset(now_ms);
        }
        self.role = Role::Leader(Leader::new(
            self.tree.clone(),
            self.sessions.clone(),
            now_ms + self.config.reap_interval_ms,
        ));
        self.leader_expiry_arm();
    }

    /// Arms the session expiry timer at the applied session table's next deadline.
    pub(super) fn leader_expiry_arm(&mut self) {
        if let Role::Leader(leader) = &mut self.role {
            leader.expiry_at = self.sessions.next_expiry_ms();
        }
    }

    /// Fires the leader's timers that are due: session expiry, then the reaper.
    pub(super) fn leader_timers(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        if let Role::Leader(leader) = &mut self.role
            && leader.expiry_at.is_some_and(|at| at <= now_ms)
        {
            leader.expiry_at = None;
            self.leader_expire_sessions(now_ms, out);
        }
        // Expiring sessions steps replication, which may have stepped this server down.
        if let Role::Leader(leader) = &self.role
            && leader.reap_at <= now_ms
        {
            self.leader_reap(now_ms, out);
        }
    }

    fn leader_expire_sessions(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let Role::Leader(leader) = &self.role else {
            return;
        };
        let due = self.sessions.expired(now_ms);
        // Sessions already closing in the prepared state (an expiry or the client's own
        // closeSession proposed, not yet committed) need no new proposal.
        let expired: Vec<SessionId> = due
            .iter()
            .copied()
            .filter(|id| !leader.expiring.contains(id) && leader.sessions.get(*id).is_some())
            .collect();
        for session in expired {
            if let Role::Leader(leader) = &mut self.role {
                leader.expiring.insert(session);
            }
            let write = Write {
                origin: None,
                session,
                ids: Vec::new(),
                op: WriteOp::Tree(Op::CloseSession { session }),
            };
            self.leader_take(now_ms, write, out);
        }
        self.proposals_flush(now_ms, out);
        // Flushing steps the replica, which may have stepped down meanwhile (check-quorum):
        // the session table was then reset for the next leader (`leader_changed`), and a
        // mark set now would outlive the expiry it stands for, answering SESSIONEXPIRED
        // to a session no close of which ever commits. Found by the simulator (seed 987
        // with 1 KiB messages).
        if !self.is_leader() {
            return;
        }
        // Every due session is closing one way or another: none of them may arm the next
        // deadline again, or the timer would fire at the same instant forever while the
        // close waits for a quorum. (A new leadership clears these marks.)
        for session in due {
            self.sessions.mark_closing(session);
        }
        self.leader_expiry_arm();
    }

    fn leader_reap(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        leader.reap_at = now_ms + self.config.reap_interval_ms;
        let candidates = leader
            .tree
            .deletion_candidates(i64::try_from(now_ms).unwrap_or(i64::MAX));
        for path in candidates {
            let write = Write {
                origin: None,
                session: SessionId(0),
                ids: Vec::new(),
                op: WriteOp::Tree(Op::DeleteContainer { path }),
            };
            self.leader_take(now_ms, write, out);
        }
        self.proposals_flush(now_ms, out);
    }
}

#[cfg(test)]
mod tests {
    use super::rebase_due;

    // The prepared tree is rebased when nothing is pending, else after 4096 applies, or
    // 8 per pending txn once more than 512 are pending.
    #[test]
    fn the_rebase_comes_when_nothing_is_pending_or_after_its_count() {
        assert!(rebase_due(1, 0));
        assert!(!rebase_due(4095, 1));
        assert!(rebase_due(4096, 1));
        assert!(!rebase_due(4096, 513));
        assert!(!rebase_due(4799, 600));
        assert!(rebase_due(4800, 600));
    }
}
