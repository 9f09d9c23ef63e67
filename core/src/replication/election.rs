//! Election: pre-vote, vote, and the rules for granting either.
//!
//! A member whose election timer fires first asks for pre-votes in `epoch + 1` without
//! changing any state, and only when a majority would vote does it move to the new epoch
//! and ask for real votes (Raft thesis §9.6). A member grants at most one vote per epoch,
//! only to a candidate whose log is at least as up to date as its own, and only after the
//! vote is durable (`send` holds the reply until `HardStatePersisted`). While it believes
//! a leader is alive (the lease), a member refuses pre-votes and ignores votes for newer
//! epochs, so a member rejoining from a partition cannot depose a healthy leader.

use std::collections::BTreeSet;

use crate::ids::{Epoch, NodeId};

use super::{EPOCH_MAX, HardState, Message, MessageBody, Output, Replica, RoleState, StepError};

impl Replica {
    /// The election timer fired: a voter asks for pre-votes, an observer forgets its
    /// silent leader.
    pub(super) fn election_timeout(&mut self, out: &mut Vec<Output>) {
        if matches!(self.role, RoleState::Leader(_)) {
            return;
        }
        if !self.is_voter() {
            // An observer that has not heard from its leader for an election timeout
            // stops taking it for the leader (its forwarded writes wait rather than go
            // to a deposed leader) until a leader's append or heartbeat names one.
            self.leader = None;
            self.election_timer_reset();
            return;
        }
        if self.resync_needed {
            // Its log may lack acknowledged entries: it waits for a leader.
            self.election_timer_reset();
            return;
        }
        let Some(epoch_next) = self
            .hard_state
            .epoch
            .0
            .checked_add(1)
            .map(Epoch)
            .filter(|next| *next <= EPOCH_MAX)
        else {
            // The epoch space is used up; this member can only follow.
            return;
        };
        self.role = RoleState::PreCandidate {
            granted: BTreeSet::from([self.config.id]),
            rejected: BTreeSet::new(),
        };
        self.leader = None;
        self.election_timer_reset();
        let body = MessageBody::PreVote {
            last_index: self.log.last_index(),
            last_zxid: self.log.last_zxid(),
        };
        for to in self.voters_other() {
            self.send_at(to, epoch_next, body.clone(), out);
        }
        self.election_tally(out);
    }

    /// Pre-vote won: move to the next epoch, vote for ourselves and ask for votes.
    fn election_campaign(&mut self, out: &mut Vec<Output>) {
        let epoch = Epoch(self.hard_state.epoch.0 + 1);
        self.hard_state_set(HardState {
            epoch,
            voted_for: Some(self.config.id),
        });
        self.role = RoleState::Candidate {
            granted: BTreeSet::from([self.config.id]),
            rejected: BTreeSet::new(),
        };
        self.leader = None;
        self.election_timer_reset();
        let body = MessageBody::Vote {
            last_index: self.log.last_index(),
            last_zxid: self.log.last_zxid(),
        };
        for to in self.voters_other() {
            self.send(to, body.clone(), out);
        }
        self.election_tally(out);
    }

    /// Handles a message while pre-candidate or candidate (epoch rules already applied).
    pub(super) fn election_step(
        &mut self,
        from: NodeId,
        msg: Message,
        out: &mut Vec<Output>,
    ) -> Result<(), StepError> {
        match msg.body {
            MessageBody::PreVoteReply { granted } => {
                let expected = self.hard_state.epoch.0.checked_add(1).map(Epoch);
                let is_current = if granted {
                    Some(msg.epoch) == expected
                } else {
                    msg.epoch == self.hard_state.epoch
                };
                if let (RoleState::PreCandidate { .. }, true) = (&self.role, is_current) {
                    self.election_record(from, granted, out);
                }
            }
            MessageBody::VoteReply { granted } => {
                if let RoleState::Candidate { .. } = self.role {
                    self.election_record(from, granted, out);
                }
            }
            MessageBody::Append { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::Snapshot { .. } => {
                // A leader of our epoch exists: follow it.
                self.become_follower(msg.epoch, Some(from));
                return self.follower_step(from, msg, out);
            }
            MessageBody::PreVote { .. } | MessageBody::Vote { .. } => {
                self.election_on_request(from, &msg, out)
            }
            MessageBody::AppendReply(_)
            | MessageBody::HeartbeatReply
            | MessageBody::SnapshotReply { .. } => {}
        }
        Ok(())
    }

    fn election_record(&mut self, from: NodeId, granted: bool, out: &mut Vec<Output>) {
        if !self.config.voters.contains(&from) {
            return;
        }
        match &mut self.role {
            RoleState::PreCandidate {
                granted: yes,
                rejected: no,
            }
            | RoleState::Candidate {
                granted: yes,
                rejected: no,
            } => {
                if granted {
                    yes.insert(from);
                } else {
                    no.insert(from);
                }
            }
            _ => return,
        }
        self.election_tally(out);
    }

    /// Wins or loses the (pre-)election once a majority has answered either way.
    fn election_tally(&mut self, out: &mut Vec<Output>) {
        let quorum = self.config.quorum_size();
        let (granted, rejected, is_pre) = match &self.role {
            RoleState::PreCandidate { granted, rejected } => (granted.len(), rejected.len(), true),
            RoleState::Candidate { granted, rejected } => (granted.len(), rejected.len(), false),
            _ => return,
        };
        if granted >= quorum {
            if is_pre {
                self.election_campaign(out);
            } else {
                self.become_leader();
            }
        } else if rejected >= quorum {
            self.become_follower(self.hard_state.epoch, None);
        }
    }

    /// Answers a `PreVote` or `Vote` (the message's epoch is at least ours by now).
    pub(super) fn election_on_request(
        &mut self,
        from: NodeId,
        msg: &Message,
        out: &mut Vec<Output>,
    ) {
        let (last_index, last_zxid, is_pre) = match msg.body {
            MessageBody::PreVote {
                last_index,
                last_zxid,
            } => (last_index, last_zxid, true),
            MessageBody::Vote {
                last_index,
                last_zxid,
            } => (last_index, last_zxid, false),
            _ => return,
        };
        let up_to_date = self.log.is_up_to_date(last_index, last_zxid);
        // planted bug: vote-for-stale-log (logs compared by length, epochs ignored).
        #[cfg(feature = "planted-bugs")]
        let up_to_date = match self.config.bug {
            Some(crate::bugs::Bug::VoteForStaleLog) => last_index >= self.log.last_index(),
            _ => up_to_date,
        };
        let may_vote = self.is_voter() && self.config.voters.contains(&from) && !self.resync_needed;
        if is_pre {
            let granted = may_vote
                && up_to_date
                && msg.epoch > self.hard_state.epoch
                && !self.in_leader_lease();
            let epoch = if granted {
                msg.epoch
            } else {
                self.hard_state.epoch
            };
            self.send_at(from, epoch, MessageBody::PreVoteReply { granted }, out);
            return;
        }
        let vote_free = self.hard_state.voted_for.is_none_or(|id| id == from);
        let granted = may_vote && up_to_date && vote_free && msg.epoch == self.hard_state.epoch;
        if granted {
            if self.hard_state.voted_for.is_none() {
                let hard_state = HardState {
                    epoch: self.hard_state.epoch,
                    voted_for: Some(from),
                };
                self.hard_state_set(hard_state);
            }
            self.election_timer_reset();
        }
        self.send(from, MessageBody::VoteReply { granted }, out);
    }

    fn voters_other(&self) -> Vec<NodeId> {
        let me = self.config.id;
        self.config
            .voters
            .iter()
            .copied()
            .filter(|id| *id != me)
            .collect()
    }
}
