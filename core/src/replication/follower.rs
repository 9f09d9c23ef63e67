//! Follower (and observer): accept the leader's log, truncate a divergent uncommitted
//! suffix, install snapshots, and acknowledge only what is durable.
//!
//! The acknowledgement a follower sends is `min(persisted_index, match_known_index)`: the
//! prefix that is both durable here and known to equal the current leader's log. So an
//! acknowledged entry survives a crash of this follower, and a stale entry of an older
//! epoch that happens to be durable is never counted for the new leader.

use crate::ids::{NodeId, Zxid};

use super::{
    AppendOutcome, Entry, IncomingSnapshot, Message, MessageBody, MessageError, Output, Replica,
    RoleState, SnapshotMeta, StepError,
};

use crate::storage::SnapshotPiece;

impl Replica {
    /// Handles a message in the current epoch while following (or observing).
    pub(super) fn follower_step(
        &mut self,
        from: NodeId,
        msg: Message,
        out: &mut Vec<Output>,
    ) -> Result<(), StepError> {
        match msg.body {
            MessageBody::Append {
                prev_index,
                prev_zxid,
                entries,
                commit_index,
            } => {
                self.follower_leader_contact(from);
                self.follower_on_append(from, prev_index, prev_zxid, entries, commit_index, out)
            }
            MessageBody::Heartbeat { commit_index } => {
                self.follower_leader_contact(from);
                // The leader caps `commit_index` at the index this follower acknowledged
                // in this epoch, and an acknowledged prefix is durable and never
                // truncated within an epoch: it still matches, even across a restart.
                let last_index = self.log.last_index();
                if commit_index > last_index && self.snapshot_incoming.is_none() {
                    // The leader believes we hold entries we do not: say where our log
                    // ends so that it probes from there.
                    let outcome = AppendOutcome::Missing { last_index };
                    self.send(from, MessageBody::AppendReply(outcome), out);
                }
                let commit_index = self.commit_index.max(commit_index.min(last_index));
                self.commit_set(commit_index);
                self.match_known_index = self.match_known_index.max(commit_index);
                self.resync_check(out);
                self.send(from, MessageBody::HeartbeatReply, out);
                Ok(())
            }
            MessageBody::Snapshot {
                meta,
                offset,
                total_bytes,
                bytes,
            } => {
                self.follower_leader_contact(from);
                let piece = SnapshotPiece {
                    meta,
                    offset,
                    total_bytes,
                    bytes,
                };
                self.follower_on_snapshot_piece(from, msg.epoch, piece, out)
            }
            MessageBody::PreVote { .. } | MessageBody::Vote { .. } => {
                self.election_on_request(from, &msg, out);
                Ok(())
            }
            MessageBody::PreVoteReply { .. }
            | MessageBody::VoteReply { .. }
            | MessageBody::AppendReply(_)
            | MessageBody::HeartbeatReply
            | MessageBody::SnapshotReply { .. } => Ok(()),
        }
    }

    /// The leader of our epoch spoke: remember it and restart the election timer.
    fn follower_leader_contact(&mut self, from: NodeId) {
        self.leader = Some(from);
        self.leader_contact_ms = Some(self.now_ms);
        if matches!(self.role, RoleState::Follower | RoleState::Observer) {
            self.election_timer_reset();
        }
    }

    fn follower_on_append(
        &mut self,
        from: NodeId,
        prev_index: u64,
        prev_zxid: Zxid,
        mut entries: Vec<Entry>,
        leader_commit_index: u64,
        out: &mut Vec<Output>,
    ) -> Result<(), StepError> {
        let rejected_index = prev_index;
        let (mut prev_index, mut prev_zxid) = (prev_index, prev_zxid);
        if prev_index < self.commit_index {
            // Committed entries equal the leader's (leader completeness): skip them and
            // match at the last skipped one, which must then be our committed entry.
            let skip = usize::try_from(self.commit_index - prev_index).unwrap_or(usize::MAX);
            if entries.len() < skip {
                self.follower_reply_accepted(from, out);
                return Ok(());
            }
            let skipped: Vec<Entry> = entries.drain(..skip).collect();
            if let Some(last) = skipped.last() {
                (prev_index, prev_zxid) = (last.index, last.zxid);
            }
        }
        if self.log.zxid_at(prev_index) != Some(prev_zxid) {
            let (hint_index, hint_epoch) = self
                .log
                .find_conflict_by_epoch(prev_index, prev_zxid.epoch());
            let outcome = AppendOutcome::Rejected {
                rejected_index,
                hint_index,
                hint_epoch,
            };
            self.send(from, MessageBody::AppendReply(outcome), out);
            return Ok(());
        }
        let last_new_index = prev_index + entries.len() as u64;
        self.follower_append(entries)?;
        self.match_known_index = self.match_known_index.max(last_new_index);
        let commit_index = self
            .commit_index
            .max(leader_commit_index.min(last_new_index));
        self.commit_set(commit_index);
        self.resync_check(out);
        // planted bug: ack-before-persist (acknowledge what was appended in memory).
        #[cfg(feature = "planted-bugs")]
        if self.config.bug == Some(crate::bugs::Bug::AckBeforePersist) {
            let outcome = AppendOutcome::Accepted {
                match_index: last_new_index,
            };
            self.send(from, MessageBody::AppendReply(outcome), out);
            return Ok(());
        }
        if self.follower_ack_index() >= last_new_index {
            self.follower_reply_accepted(from, out);
        }
        Ok(())
    }

    /// Appends the entries the log lacks, truncating a divergent suffix first. Refuses,
    /// without changing anything, an `Append` that would drop a confirmed entry.
    fn follower_append(&mut self, entries: Vec<Entry>) -> Result<(), StepError> {
        let confirmed_index = self.commit_index.max(self.match_known_index);
        let mut first_new = entries.len();
        for (position, entry) in entries.iter().enumerate() {
            // planted bug: no-truncate-on-sync (an entry at the index counts as the same).
            #[cfg(feature = "planted-bugs")]
            if self.config.bug == Some(crate::bugs::Bug::NoTruncateOnSync)
                && self.log.zxid_at(entry.index).is_some()
            {
                continue;
            }
            match self.log.zxid_at(entry.index) {
                Some(zxid) if zxid == entry.zxid => continue,
                Some(_) if entry.index <= confirmed_index => {
                    return Err(MessageError::ConflictsWithConfirmed { index: entry.index }.into());
                }
                Some(_) => {
                    self.log_truncate_after(entry.index - 1);
                }
                None => {}
            }
            first_new = position;
            break;
        }
        for entry in entries.into_iter().skip(first_new) {
            self.log.append(entry);
        }
        Ok(())
    }

    /// A piece of a snapshot from the leader. Pieces are gathered in order into
    /// `snapshot_incoming` (one transfer at a time, from one leader in one epoch, bounded
    /// by `snapshot_bytes_max`) and each is answered with how much is held, so the
    /// leader sends the next one, or resumes from there after a loss. A piece that
    /// does not follow what is held is not taken; its answer tells the leader where to
    /// go on (0 when nothing of that snapshot is held). The last piece completes the
    /// file, which must check (framing, checksum, the index and zxid it claims) before
    /// anything changes here.
    fn follower_on_snapshot_piece(
        &mut self,
        from: NodeId,
        epoch: crate::ids::Epoch,
        piece: SnapshotPiece,
        out: &mut Vec<Output>,
    ) -> Result<(), StepError> {
        if piece.meta.index <= self.commit_index {
            self.snapshot_incoming = None;
            self.follower_reply_holding(from, piece.meta.index, out);
            return Ok(());
        }
        if piece.total_bytes > self.config.snapshot_bytes_max {
            return Err(MessageError::SnapshotTooLarge {
                total_bytes: piece.total_bytes,
                limit: self.config.snapshot_bytes_max,
            }
            .into());
        }
        let key = (from, epoch, piece.meta, piece.total_bytes);
        let held = match &mut self.snapshot_incoming {
            Some(incoming) if incoming.key() == key => incoming,
            _ if piece.offset == 0 => self.snapshot_incoming.insert(IncomingSnapshot {
                from,
                epoch,
                meta: piece.meta,
                total_bytes: piece.total_bytes,
                bytes: Vec::new(),
            }),
            _ => {
                self.follower_snapshot_reply(from, &piece, 0, out);
                return Ok(());
            }
        };
        if piece.offset == held.bytes.len() as u64 {
            held.bytes.extend_from_slice(&piece.bytes);
        }
        let received_bytes = held.bytes.len() as u64;
        if received_bytes < held.total_bytes {
            self.follower_snapshot_reply(from, &piece, received_bytes, out);
            return Ok(());
        }
        let Some(complete) = self.snapshot_incoming.take() else {
            return Ok(());
        };
        match crate::storage::snapshot_file_unframe(complete.bytes, self.config.snapshot_bytes_max)
        {
            Some((meta, bytes)) if meta == complete.meta => {
                self.follower_on_snapshot(from, meta, bytes, out);
                Ok(())
            }
            // The leader's file or the transfer was damaged: start over, and refuse the
            // message (counted and logged by the owner).
            _ => {
                self.follower_snapshot_reply(from, &piece, 0, out);
                Err(MessageError::SnapshotDamaged {
                    index: piece.meta.index,
                }
                .into())
            }
        }
    }

    /// Answers a snapshot piece: this follower holds `received_bytes` of its snapshot.
    fn follower_snapshot_reply(
        &mut self,
        to: NodeId,
        piece: &SnapshotPiece,
        received_bytes: u64,
        out: &mut Vec<Output>,
    ) {
        let reply = MessageBody::SnapshotReply {
            index: piece.meta.index,
            offset: piece.offset,
            received_bytes,
        };
        self.send(to, reply, out);
    }

    /// The snapshot replaces our log when it covers more than we have committed.
    fn follower_on_snapshot(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        bytes: Vec<u8>,
        out: &mut Vec<Output>,
    ) {
        if meta.index <= self.commit_index {
            self.follower_reply_holding(from, meta.index, out);
            return;
        }
        // Only entries up to our old commit index are known to equal the snapshot's
        // history; the rest is durable again once the snapshot is.
        self.persisted_index = self.persisted_index.min(self.commit_index);
        self.log.reset(meta);
        self.persist_requested_index = meta.index;
        self.truncate_pending = None;
        // The snapshot write discards the whole log: earlier writes prove nothing more.
        for report in &mut self.persist_reports {
            report.durable_index_max = 0;
        }
        self.commit_set(meta.index);
        self.applied_index = meta.index;
        self.match_known_index = meta.index;
        self.snapshot_send = meta;
        self.flush_hard_state(out);
        out.push(Output::InstallSnapshot { meta, bytes });
    }

    /// A snapshot at `index` arrived that this follower does not need: acknowledge it
    /// once what it holds up to `index` is durable. Until then it stays silent (the
    /// acknowledgement follows the persistence report, `follower_ack`): an answer below
    /// `index` while a snapshot it installed is still being written would send the
    /// leader back to probing, and so to sending the whole snapshot again.
    fn follower_reply_holding(&mut self, from: NodeId, index: u64, out: &mut Vec<Output>) {
        if self.follower_ack_index() >= index {
            self.follower_reply_accepted(from, out);
        }
    }

    /// What this follower may acknowledge: durable and known to match the leader.
    fn follower_ack_index(&self) -> u64 {
        self.persisted_index.min(self.match_known_index)
    }

    fn follower_reply_accepted(&mut self, to: NodeId, out: &mut Vec<Output>) {
        let match_index = self.follower_ack_index();
        assert!(
            match_index <= self.persisted_index,
            "never acknowledge beyond what is durable"
        );
        self.ack_sent_index = self.ack_sent_index.max(match_index);
        let outcome = AppendOutcome::Accepted { match_index };
        self.send(to, MessageBody::AppendReply(outcome), out);
    }

    /// After a persistence report: acknowledge newly durable entries to the leader.
    pub(super) fn follower_ack(&mut self, out: &mut Vec<Output>) {
        let is_following = matches!(self.role, RoleState::Follower | RoleState::Observer);
        let Some(leader) = self.leader.filter(|_| is_following) else {
            return;
        };
        if self.follower_ack_index() > self.ack_sent_index {
            self.follower_reply_accepted(leader, out);
        }
    }
}
