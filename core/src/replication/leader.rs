//! Leader: proposals, sending the log to each follower (diff, truncation via conflict
//! hints, snapshot), heartbeats, check-quorum and commit.
//!
//! A new leader first appends an empty NEWLEADER entry of its epoch (zxid `epoch << 32`)
//! and proposals follow it; since commit is a prefix, nothing of the new epoch commits
//! before it (Zab's NEWLEADER, Raft's no-op). Commit advances to the highest index a
//! majority of voters has durable, counting the leader's own durable index, and only
//! when that entry is of the leader's epoch (Raft §5.4.2); observers never count.

use std::collections::BTreeMap;

use crate::ids::{NodeId, Zxid};

use super::progress::{Progress, ProgressState};
use super::{
    AppendOutcome, Entry, LeaderState, Message, MessageBody, MessageError, Output, ProposeError,
    Replica, RoleState, SnapshotSend, StepError, Timer,
};

impl Replica {
    /// Won the election: take over the epoch and append its NEWLEADER entry.
    pub(super) fn become_leader(&mut self) {
        assert_eq!(
            self.hard_state.voted_for,
            Some(self.config.id),
            "a leader voted for itself in its epoch"
        );
        let next_index = self.log.last_index() + 1;
        let progress: BTreeMap<NodeId, Progress> = self
            .config
            .voters
            .iter()
            .chain(self.config.observers.iter())
            .filter(|id| **id != self.config.id)
            .map(|id| (*id, Progress::new(next_index)))
            .collect();
        self.role = RoleState::Leader(LeaderState {
            progress,
            new_leader_index: next_index,
            counter_next: 1,
        });
        self.leader = Some(self.config.id);
        self.leader_contact_ms = Some(self.now_ms);
        self.timers.clear();
        self.timers.insert(
            Timer::Heartbeat,
            self.now_ms + self.config.heartbeat_interval_ms,
        );
        self.timers.insert(
            Timer::CheckQuorum,
            self.now_ms + self.config.election_timeout_ms_min,
        );
        self.leader_append(Vec::new(), 0);
    }

    /// Appends one entry of the leader's epoch with the given counter.
    fn leader_append(&mut self, payload: Vec<u8>, counter: u32) -> Zxid {
        assert!(
            matches!(self.role, RoleState::Leader(_)),
            "only a leader appends"
        );
        let zxid = Zxid::new(self.hard_state.epoch, counter);
        assert_eq!(
            zxid.epoch(),
            self.hard_state.epoch,
            "a leader appends only in its epoch"
        );
        let entry = Entry {
            index: self.log.last_index() + 1,
            zxid,
            payload,
        };
        self.log.append(entry);
        zxid
    }

    /// `propose` on the leader: checks the limits, then appends.
    pub(super) fn leader_propose(&mut self, payload: Vec<u8>) -> Result<Zxid, ProposeError> {
        let uncommitted = self.log.last_index() - self.commit_index;
        let RoleState::Leader(state) = &mut self.role else {
            return Err(ProposeError::NotLeader {
                leader_hint: self.leader,
            });
        };
        if payload.len() > self.config.payload_bytes_max as usize {
            return Err(ProposeError::PayloadTooLarge {
                size_bytes: payload.len(),
                limit_bytes: self.config.payload_bytes_max,
            });
        }
        if uncommitted >= self.config.proposals_uncommitted_max {
            return Err(ProposeError::TooManyUncommitted { uncommitted });
        }
        let Some(counter) = state.counter(self.config.zxid_counter_max) else {
            return Err(ProposeError::ZxidCounterExhausted);
        };
        state.counter_next += 1;
        Ok(self.leader_append(payload, counter))
    }

    /// A leader whose zxid counter is used up steps down (checked after every input), so
    /// that an election starts a new epoch with a fresh counter: ZooKeeper forces the same
    /// re-election on zxid rollover. Its proposals stay in its log and commit under the
    /// next leader like any others; its clients' pending writes are lost to them as on
    /// any leader change.
    pub(super) fn leader_step_down_if_exhausted(&mut self) {
        let RoleState::Leader(state) = &self.role else {
            return;
        };
        if state.counter(self.config.zxid_counter_max).is_some() {
            return;
        }
        self.leader_contact_ms = None;
        self.become_follower(self.hard_state.epoch, None);
    }

    /// Handles a message in the leader's own epoch.
    pub(super) fn leader_step(
        &mut self,
        from: NodeId,
        msg: Message,
        out: &mut Vec<Output>,
    ) -> Result<(), StepError> {
        let last_index = self.log.last_index();
        if let Some(pr) = self.leader_progress(from) {
            pr.recently_active = true;
        }
        match msg.body {
            MessageBody::AppendReply(AppendOutcome::Accepted { match_index }) => {
                if match_index > last_index {
                    return Err(MessageError::AckBeyondLog {
                        index: match_index,
                        last_index,
                    }
                    .into());
                }
                let now_ms = self.now_ms;
                #[cfg(feature = "planted-bugs")]
                let bug = self.config.bug;
                let progressed = self.leader_progress(from).is_some_and(|pr| {
                    let progressed = pr.on_accepted(match_index);
                    if progressed {
                        pr.last_progress_ms = now_ms;
                    }
                    // planted bug: never-pipelined (every acknowledgement goes back to
                    // probing, one append at a time).
                    #[cfg(feature = "planted-bugs")]
                    if bug == Some(crate::bugs::Bug::NeverPipelined) {
                        pr.become_probe(pr.match_index + 1);
                    }
                    progressed
                });
                if progressed {
                    self.leader_commit_advance();
                }
            }
            MessageBody::AppendReply(AppendOutcome::Missing { last_index }) => {
                self.leader_on_missing(from, last_index, out);
            }
            MessageBody::AppendReply(AppendOutcome::Rejected {
                rejected_index,
                hint_index,
                hint_epoch,
            }) => self.leader_on_rejected(from, rejected_index, hint_index, hint_epoch),
            MessageBody::HeartbeatReply => {
                // A follower behind that neither received nor acknowledged anything for
                // a heartbeat interval may have lost an `Append`: probe it, which turns
                // the loss into a rejection or an acknowledgement.
                let (messages_in_flight_max, now_ms) =
                    (self.config.messages_in_flight_max, self.now_ms);
                let quiet_since_ms = now_ms.saturating_sub(self.config.heartbeat_interval_ms);
                let stalled = self.leader_progress(from).is_some_and(|pr| {
                    pr.on_heartbeat_reply(messages_in_flight_max);
                    pr.match_index < last_index && pr.last_progress_ms <= quiet_since_ms
                });
                if stalled {
                    self.leader_send_append(from, true, out);
                }
            }
            MessageBody::SnapshotReply {
                offset,
                received_bytes,
                ..
            } => self.leader_on_snapshot_reply(from, offset, received_bytes, out),
            MessageBody::PreVote { .. } | MessageBody::Vote { .. } => {
                self.election_on_request(from, &msg, out)
            }
            // Another leader cannot exist in our epoch; stale replies need nothing.
            MessageBody::PreVoteReply { .. }
            | MessageBody::VoteReply { .. }
            | MessageBody::Append { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::Snapshot { .. } => {}
        }
        Ok(())
    }

    fn leader_progress(&mut self, id: NodeId) -> Option<&mut Progress> {
        match &mut self.role {
            RoleState::Leader(state) => state.progress.get_mut(&id),
            _ => None,
        }
    }

    /// A follower's log does not match at `rejected_index`: back off to where the
    /// conflict hint says the logs may match, skipping whole divergent epochs.
    fn leader_on_rejected(
        &mut self,
        from: NodeId,
        rejected_index: u64,
        hint_index: u64,
        hint_epoch: crate::ids::Epoch,
    ) {
        let snapshot_index = self.log.snapshot().index;
        let match_index_guess = if hint_index < snapshot_index {
            // Compacted here: `leader_send_append` will send the snapshot.
            hint_index
        } else {
            self.log.find_conflict_by_epoch(hint_index, hint_epoch).0
        };
        // planted bug: conflict-hint-ignored (back to the start of the log).
        #[cfg(feature = "planted-bugs")]
        let match_index_guess = if self.config.bug == Some(crate::bugs::Bug::ConflictHintIgnored) {
            0
        } else {
            match_index_guess
        };
        let Some(pr) = self.leader_progress(from) else {
            return;
        };
        let is_current = match pr.state {
            ProgressState::Probe { .. } => rejected_index.checked_add(1) == Some(pr.next_index),
            ProgressState::Replicate => rejected_index > pr.match_index,
            ProgressState::Snapshot { .. } => false,
        };
        if !is_current {
            return;
        }
        let next_index = match_index_guess.min(rejected_index.saturating_sub(1)) + 1;
        if rejected_index <= pr.match_index {
            // The follower no longer holds an entry it acknowledged: its disk lost synced
            // writes (a lying fsync, a data directory restored from a backup), or this is
            // a stale rejection from before its acknowledgement. Probing above the match
            // would be refused forever, a round trip at a time; forget the match and find
            // where the logs meet (a stale rejection costs one more probe). The commit
            // index never moves back.
            pr.match_index = next_index - 1;
        }
        pr.become_probe(next_index);
    }

    /// A follower's log ends at `last_index`, below what it acknowledged: it restarted
    /// with a wiped or lost log. Forget the match beyond it and probe from there at once
    /// (an idle leader sends nothing else). Ignored during a snapshot transfer (the
    /// follower's log is empty until the snapshot is in) and when it is not below the
    /// match (a late answer, from before the follower caught up).
    fn leader_on_missing(&mut self, from: NodeId, last_index: u64, out: &mut Vec<Output>) {
        let commit_index = self.commit_index;
        let Some(pr) = self.leader_progress(from) else {
            return;
        };
        if matches!(pr.state, ProgressState::Snapshot { .. }) || last_index >= pr.match_index {
            return;
        }
        // Nothing beyond the commit index counts for this follower until it acknowledges
        // it again: whether its remaining entries match is unknown.
        pr.match_index = last_index.min(commit_index);
        pr.become_probe(last_index + 1);
        self.leader_send_append(from, true, out);
    }

    /// Sends every follower what it is missing, as far as its pipeline allows.
    /// Also tells every member of a commit index it has not heard yet, at once rather
    /// than at the next heartbeat (ZooKeeper sends COMMIT as soon as it commits), so reads
    /// served by followers lag the leader as little as possible.
    pub(super) fn leader_send_all(&mut self, out: &mut Vec<Output>) {
        let ids: Vec<NodeId> = match &self.role {
            RoleState::Leader(state) => state.progress.keys().copied().collect(),
            _ => return,
        };
        let commit_index = self.commit_index;
        for id in ids {
            // Each send either fills one pipeline slot or returns false, so this loop
            // ends within `messages_in_flight_max + 1` rounds.
            for _ in 0..=self.config.messages_in_flight_max {
                if !self.leader_send_append(id, false, out) {
                    break;
                }
            }
            let notice = self.leader_progress(id).and_then(|pr| {
                let known_index = commit_index.min(pr.match_index);
                (known_index > pr.commit_sent_index).then(|| {
                    pr.commit_sent_index = known_index;
                    known_index
                })
            });
            if let Some(commit_index) = notice {
                self.send(id, MessageBody::Heartbeat { commit_index }, out);
            }
        }
    }

    /// Sends `to` its next `Append` (or the snapshot, when it needs compacted entries).
    /// An empty `Append` is sent only when `allow_empty` (a probe). Returns true if a
    /// message was sent.
    fn leader_send_append(&mut self, to: NodeId, allow_empty: bool, out: &mut Vec<Output>) -> bool {
        let commit_index = self.commit_index;
        let snapshot = self.snapshot_send;
        let (messages_in_flight_max, entries_max) = (
            self.config.messages_in_flight_max,
            u64::from(self.config.entries_per_message_max),
        );
        let now_ms = self.now_ms;
        let RoleState::Leader(state) = &mut self.role else {
            return false;
        };
        let Some(pr) = state.progress.get_mut(&to) else {
            return false;
        };
        if pr.is_paused(messages_in_flight_max) {
            return false;
        }
        let prev_index = pr.next_index - 1;
        let body = match self.log.zxid_at(prev_index) {
            None => {
                pr.become_snapshot(snapshot.index, now_ms);
                self.leader_send_snapshot_piece(to, 0, out);
                return true;
            }
            Some(prev_zxid) => {
                let entries =
                    self.log
                        .slice(prev_index + 1, entries_max, self.config.message_bytes_max);
                if entries.is_empty() && !allow_empty {
                    return false;
                }
                let last_index = prev_index + entries.len() as u64;
                pr.on_append_sent(last_index);
                pr.last_progress_ms = now_ms;
                pr.commit_sent_index = pr.commit_sent_index.max(commit_index.min(last_index));
                MessageBody::Append {
                    prev_index,
                    prev_zxid,
                    entries,
                    commit_index,
                }
            }
        };
        self.send(to, body, out);
        true
    }

    /// Asks the runtime to send `to` the piece of the snapshot file from `offset`.
    fn leader_send_snapshot_piece(&mut self, to: NodeId, offset: u64, out: &mut Vec<Output>) {
        let send = Output::SendSnapshot(SnapshotSend {
            to,
            epoch: self.hard_state.epoch,
            meta: self.snapshot_send,
            offset,
            bytes_max: self.config.message_bytes_max,
        });
        self.send_output(send, out);
    }

    /// The follower answered a snapshot piece: send the next one from where it stands.
    /// (The last piece is answered with `AppendReply` once the snapshot is durable.)
    pub(super) fn leader_on_snapshot_reply(
        &mut self,
        from: NodeId,
        offset: u64,
        received_bytes: u64,
        out: &mut Vec<Output>,
    ) {
        let now_ms = self.now_ms;
        let next = self
            .leader_progress(from)
            .and_then(|pr| pr.on_snapshot_reply(offset, received_bytes, now_ms));
        if let Some(next_offset) = next {
            self.leader_send_snapshot_piece(from, next_offset, out);
        }
    }

    /// Heartbeat timer: tell every follower we are alive and how far it may commit;
    /// send again snapshot pieces that got no answer (from where the follower stands, so
    /// a transfer cut by a dropped connection resumes rather than starting over).
    pub(super) fn leader_heartbeat(&mut self, out: &mut Vec<Output>) {
        let (commit_index, now_ms) = (self.commit_index, self.now_ms);
        let retry_after_ms = self.config.election_timeout_ms_max;
        let RoleState::Leader(state) = &mut self.role else {
            return;
        };
        let mut beats = Vec::with_capacity(state.progress.len());
        let mut pieces = Vec::new();
        for (id, pr) in state.progress.iter_mut() {
            if let ProgressState::Snapshot {
                offset, sent_at_ms, ..
            } = &mut pr.state
                && now_ms >= *sent_at_ms + retry_after_ms
            {
                *sent_at_ms = now_ms;
                pieces.push((*id, *offset));
            }
            let known_index = commit_index.min(pr.match_index);
            pr.commit_sent_index = pr.commit_sent_index.max(known_index);
            beats.push((*id, known_index));
        }
        for (id, commit_index) in beats {
            self.send(id, MessageBody::Heartbeat { commit_index }, out);
        }
        // planted bug: resend-every-heartbeat (the pipeline forgotten on every beat).
        #[cfg(feature = "planted-bugs")]
        if self.config.bug == Some(crate::bugs::Bug::ResendEveryHeartbeat) {
            if let RoleState::Leader(state) = &mut self.role {
                for pr in state.progress.values_mut() {
                    if pr.state == ProgressState::Replicate {
                        pr.become_replicate();
                    }
                }
            }
            self.leader_send_all(out);
        }
        for (id, offset) in pieces {
            self.leader_send_snapshot_piece(id, offset, out);
        }
        self.timers
            .insert(Timer::Heartbeat, now_ms + self.config.heartbeat_interval_ms);
    }

    /// Check-quorum: a leader that has not heard from a majority of voters within an
    /// election timeout steps down, so it stops accepting proposals it cannot commit and
    /// clients move to a server that can reach the new leader.
    pub(super) fn leader_check_quorum(&mut self) {
        let me = self.config.id;
        let RoleState::Leader(state) = &mut self.role else {
            return;
        };
        let mut active = 0;
        for id in &self.config.voters {
            if *id == me {
                active += 1;
            } else if let Some(pr) = state.progress.get_mut(id) {
                active += usize::from(pr.recently_active);
            }
        }
        for pr in state.progress.values_mut() {
            pr.recently_active = false;
        }
        // planted bug: check-quorum-disabled (a leader never counts its contacts).
        #[cfg(feature = "planted-bugs")]
        if self.config.bug == Some(crate::bugs::Bug::CheckQuorumDisabled) {
            active = self.config.quorum_size();
        }
        if active < self.config.quorum_size() {
            self.leader_contact_ms = None;
            self.become_follower(self.hard_state.epoch, None);
            return;
        }
        self.leader_contact_ms = Some(self.now_ms);
        self.timers.insert(
            Timer::CheckQuorum,
            self.now_ms + self.config.election_timeout_ms_min,
        );
    }

    /// Advances the commit index to the highest index durable on a majority of voters,
    /// if that entry is of the leader's epoch.
    pub(super) fn leader_commit_advance(&mut self) {
        let RoleState::Leader(state) = &self.role else {
            return;
        };
        let me = self.config.id;
        let mut durable: Vec<u64> = self
            .config
            .voters
            .iter()
            .map(|id| {
                if *id == me {
                    self.persisted_index
                } else {
                    state.progress.get(id).map_or(0, |pr| pr.match_index)
                }
            })
            .collect();
        durable.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_size = self.config.quorum_size();
        // planted bug: commit-without-quorum (a majority counted as voters / 2).
        #[cfg(feature = "planted-bugs")]
        let quorum_size = match self.config.bug {
            Some(crate::bugs::Bug::CommitWithoutQuorum) => (self.config.voters.len() / 2).max(1),
            _ => quorum_size,
        };
        let Some(quorum_index) = durable.get(quorum_size - 1).copied() else {
            return;
        };
        if quorum_index <= self.commit_index {
            return;
        }
        let of_this_epoch = self
            .log
            .zxid_at(quorum_index)
            .is_some_and(|z| z.epoch() == self.hard_state.epoch);
        if of_this_epoch {
            self.commit_set(quorum_index);
        }
    }
}
