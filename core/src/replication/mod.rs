//! `replication`: leader-based atomic broadcast of opaque payloads (Zab's shape, Raft's
//! election and recovery rules), as a pure value driven by `step`.
//!
//! A `Replica` owns one member's view of the replicated log: its epoch and vote, its log
//! entries, how far the log is durable and committed, and, on the leader, each follower's
//! progress. It is driven by `step(now_ms, Input, &mut outputs)`, `propose` and `compact`,
//! and asks the world for everything else through `Output`s: send a message, make the hard
//! state or entries durable, install a snapshot, apply committed entries.
//!
//! Invariants enforced here (see docs/consensus.md for the argument and where each one is
//! asserted): one leader per epoch; a leader only appends entries of its own epoch; the
//! commit index never decreases and only covers entries a majority of voters made durable,
//! the newest of the leader's own epoch; every committed entry is output exactly once, in
//! index order; a vote or acknowledgement leaves only after what it promises is durable.
//!
//! It does not encode bytes, touch a disk or a clock, or know what payloads mean: the
//! storage module writes records, the node applies committed payloads to the tree.

mod config;
mod election;
mod follower;
mod interface;
mod leader;
mod log;
mod message;
mod progress;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ids::{Epoch, NodeId, Zxid};

pub use config::{
    MESSAGE_BYTES_MAX_DEFAULT, PEER_MESSAGE_OVERHEAD_BYTES, ReplicationConfig,
    ReplicationConfigError, SNAPSHOT_FRAMING_BYTES_MAX,
};
pub use interface::{
    CompactError, DurableState, FollowerStatus, HardState, Input, Output, ProposeError,
    ReplicaError, Role, SnapshotSend, Status, StepError,
};
pub use log::LogError;
pub use message::{
    AppendOutcome, EPOCH_MAX, Entry, INDEX_MAX, Message, MessageBody, MessageError, SnapshotMeta,
};

use log::ReplicaLog;
use progress::Progress;

/// A timer of the replica; the next deadline is the earliest armed one, and expired
/// timers are handled in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// Follower, pre-candidate or candidate: start a (pre-)election when it fires.
    Election,
    /// Leader: send heartbeats.
    Heartbeat,
    /// Leader: step down unless a majority of voters was heard from since the last check.
    CheckQuorum,
}

const TIMERS: [Timer; 3] = [Timer::Election, Timer::Heartbeat, Timer::CheckQuorum];

/// Most messages held while a hard state is being made durable (one disk write); only
/// replies to what arrives during that write pile up here.
const HELD_MESSAGES_MAX: usize = 1024;

/// Most `PersistEntries` writes awaiting their report. Beyond it the oldest is forgotten,
/// and its report is then ignored as stale, which only delays an acknowledgement.
const PERSIST_REPORTS_MAX: usize = 4096;

/// Epochs a message may claim beyond the epoch this replica started with, whatever the
/// time: room for every election a member missed while it was down.
pub const EPOCH_JUMP_MAX: u32 = 1 << 16;

/// How fast the believable epoch rises while the replica runs, in epochs per
/// `election_timeout_ms_min`. Each voter campaigns at most once per election timeout and
/// adopting a newer epoch re-arms its timer, so an ensemble's epoch rises at most about
/// once per timeout per voter; a member that fell further behind than
/// [`EPOCH_JUMP_MAX`] still catches up, at this rate.
pub const EPOCHS_PER_ELECTION_TIMEOUT_MAX: u64 = 8;

/// A `PersistEntries` write handed to the runtime and not yet reported durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PersistReport {
    /// Index of the write's last entry.
    index: u64,
    /// Zxid of the write's last entry.
    zxid: Zxid,
    /// The lowest truncation point emitted after this write: a later write may already
    /// have removed entries above it from the disk, so the report proves no more.
    durable_index_max: u64,
}

/// The role-specific part of a replica's state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RoleState {
    Follower,
    Observer,
    PreCandidate {
        granted: BTreeSet<NodeId>,
        rejected: BTreeSet<NodeId>,
    },
    Candidate {
        granted: BTreeSet<NodeId>,
        rejected: BTreeSet<NodeId>,
    },
    Leader(LeaderState),
}

/// What only a leader keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LeaderState {
    /// Every other member (voters and observers), by id.
    progress: BTreeMap<NodeId, Progress>,
    /// Index of this epoch's NEWLEADER entry.
    new_leader_index: u64,
    /// Counter of the next proposal's zxid; past `zxid_counter_max` once the epoch's
    /// counters are used up.
    counter_next: u64,
}

impl LeaderState {
    /// The counter the next proposal gets, or `None` once the epoch's are used up.
    fn counter(&self, counter_max: u32) -> Option<u32> {
        u32::try_from(self.counter_next)
            .ok()
            .filter(|counter| *counter <= counter_max)
    }
}

/// A snapshot file arriving from a leader in pieces: the bytes from its start so far.
#[derive(Debug)]
struct IncomingSnapshot {
    from: NodeId,
    epoch: Epoch,
    meta: SnapshotMeta,
    total_bytes: u64,
    bytes: Vec<u8>,
}

impl IncomingSnapshot {
    /// What a piece must match to continue this transfer.
    fn key(&self) -> (NodeId, Epoch, SnapshotMeta, u64) {
        (self.from, self.epoch, self.meta, self.total_bytes)
    }
}

/// One member's replication state machine. See the module documentation.
#[derive(Debug)]
pub struct Replica {
    config: ReplicationConfig,
    rng: ChaCha8Rng,
    role: RoleState,
    /// The current hard state; may be ahead of `hard_state_durable`.
    hard_state: HardState,
    /// The last hard state handed to the runtime in `PersistHardState`.
    hard_state_requested: HardState,
    hard_state_durable: HardState,
    leader: Option<NodeId>,
    log: ReplicaLog,
    /// What a follower that needs compacted entries is sent: the newest durable snapshot
    /// the owner offered (`snapshot_offer`) or installed from a leader, at or after the
    /// log's own start (except on a replica with no peers, whose log is cut as its entries
    /// are applied, see `flush_committed`, and which never sends a snapshot). Only its metadata: the runtime reads the bytes from where it made
    /// them durable (`Output::SendSnapshot`), so no copy of the state machine is held here.
    snapshot_send: SnapshotMeta,
    /// Highest index such that the log up to it is durable.
    persisted_index: u64,
    /// Highest index already handed to the runtime in a `PersistEntries`.
    persist_requested_index: u64,
    /// A truncation not yet handed to the runtime.
    truncate_pending: Option<u64>,
    /// The `PersistEntries` writes not yet reported durable, oldest first.
    persist_reports: VecDeque<PersistReport>,
    commit_index: u64,
    /// Highest index output in `Output::Committed` (or covered by an installed snapshot).
    applied_index: u64,
    /// Follower: highest index known to match the current leader's log.
    match_known_index: u64,
    /// Follower: highest match index acknowledged to the current leader.
    ack_sent_index: u64,
    /// When a leader was last heard from (or, on the leader, now): the lease that makes
    /// this member ignore elections while a leader is alive.
    leader_contact_ms: Option<u64>,
    timers: BTreeMap<Timer, u64>,
    /// Sends (`Output::Send` and `Output::SendSnapshot`) waiting until `hard_state` is
    /// durable.
    held: Vec<Output>,
    /// The last `(epoch, leader)` reported in `Output::LeaderChanged`.
    leader_reported: (Epoch, Option<NodeId>),
    now_ms: u64,
    started: bool,
    /// The durable epoch this replica started with, and when it started: the base of
    /// `epoch_ceiling`, which no message can move.
    epoch_base: Epoch,
    started_ms: u64,
    messages_refused: u64,
    /// The snapshot a leader is sending in pieces, as far as it arrived (followers only).
    snapshot_incoming: Option<IncomingSnapshot>,
    /// Started with a lost log (`DurableState::log_lost`) and not yet re-synced: this
    /// member neither votes nor campaigns, since its log may lack entries it
    /// acknowledged (a vote from it could elect a leader without a committed entry).
    resync_needed: bool,
}

impl Replica {
    /// A replica starting from what recovery found on disk. Its timers are armed by the
    /// first `step` (until then `next_deadline` is `Some(0)`).
    pub fn new(
        config: ReplicationConfig,
        durable_state: DurableState,
        seed: u64,
    ) -> Result<Replica, ReplicaError> {
        config.validate()?;
        // The snapshot's bytes are the owner's to restore its state machine from; the
        // replica needs only where the snapshot ends.
        let DurableState {
            hard_state,
            snapshot,
            snapshot_bytes: _,
            entries,
            log_lost,
        } = durable_state;
        // planted bug: vote-after-lost-log (the loss recovery found is ignored).
        #[cfg(feature = "planted-bugs")]
        let log_lost = log_lost && config.bug != Some(crate::bugs::Bug::VoteAfterLostLog);
        let log = ReplicaLog::new(snapshot, entries)?;
        let log_epoch = log.last_zxid().epoch();
        if log_epoch > hard_state.epoch {
            return Err(ReplicaError::EpochBehindLog {
                epoch: hard_state.epoch,
                log_epoch,
            });
        }
        let role = if config.voters.contains(&config.id) {
            RoleState::Follower
        } else {
            RoleState::Observer
        };
        Ok(Replica {
            rng: ChaCha8Rng::seed_from_u64(seed),
            role,
            hard_state,
            hard_state_requested: hard_state,
            hard_state_durable: hard_state,
            leader: None,
            persisted_index: log.last_index(),
            persist_requested_index: log.last_index(),
            truncate_pending: None,
            persist_reports: VecDeque::new(),
            commit_index: snapshot.index,
            applied_index: snapshot.index,
            match_known_index: snapshot.index,
            ack_sent_index: 0,
            leader_contact_ms: None,
            timers: BTreeMap::new(),
            held: Vec::new(),
            leader_reported: (hard_state.epoch, None),
            now_ms: 0,
            started: false,
            epoch_base: hard_state.epoch,
            started_ms: 0,
            messages_refused: 0,
            resync_needed: log_lost,
            snapshot_incoming: None,
            snapshot_send: snapshot,
            log,
            config,
        })
    }

    /// Handles one input at `now_ms` and appends what must happen to `out`. An `Err`
    /// says why the input (or its remainder) was refused: a malformed message or a stale
    /// persistence report changes nothing; a message refused by a handler may already
    /// have moved this replica to the sender's newer epoch. Refused peer messages are
    /// counted in `Status::messages_refused`.
    pub fn step(
        &mut self,
        now_ms: u64,
        input: Input,
        out: &mut Vec<Output>,
    ) -> Result<(), StepError> {
        // A clock that steps back is treated as standing still: deadlines stay ordered.
        self.now_ms = self.now_ms.max(now_ms);
        if !self.started {
            self.started = true;
            self.started_ms = self.now_ms;
            if self.config.voters.len() == 1 && self.is_voter() {
                // The only voter: no one to wait for, so it campaigns at the first tick
                // (a standalone server serves a few fsyncs after it starts).
                self.timers.insert(Timer::Election, self.now_ms);
            } else {
                // An observer's timer only makes it forget a leader gone silent.
                self.election_timer_reset();
            }
        }
        let result = match input {
            Input::Tick => {
                self.step_timers(out);
                Ok(())
            }
            // The common tail below (`flush`) is all a flush asks for.
            Input::Flush => Ok(()),
            Input::Message { from, msg } => self.step_message(from, msg, out),
            Input::HardStatePersisted { hard_state } => {
                self.step_hard_state_persisted(hard_state, out);
                Ok(())
            }
            Input::Persisted { index, zxid } => self.step_persisted(index, zxid, out),
            Input::SnapshotInstalled { meta } => self.step_snapshot_installed(meta, out),
        };
        self.leader_step_down_if_exhausted();
        if let Err(StepError::BadMessage(_)) = &result {
            self.messages_refused += 1;
        }
        self.flush(out);
        result
    }

    /// The earliest time at which this replica needs an `Input::Tick`, in milliseconds.
    /// Moved by every input: the runtime re-reads it after each `step`.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.started {
            return Some(0);
        }
        self.timers.values().min().copied()
    }

    /// Appends a proposal to the leader's log and returns its zxid. Nothing is sent or
    /// persisted until the next `step` (`Input::Flush` asks for just that), so a burst of
    /// proposals goes out in one `PersistEntries` and one `Append` per follower.
    pub fn propose(&mut self, payload: Vec<u8>) -> Result<Zxid, ProposeError> {
        self.leader_propose(payload)
    }

    /// The zxid the next successful `propose` will return: `Some` only on a leader. The
    /// state machine needs it before proposing, because a transaction carries its zxid.
    pub fn next_proposal_zxid(&self) -> Option<Zxid> {
        match &self.role {
            RoleState::Leader(state) => state
                .counter(self.config.zxid_counter_max)
                .map(|counter| Zxid::new(self.hard_state.epoch, counter)),
            _ => None,
        }
    }

    /// True while `propose` would refuse for want of room: `proposals_uncommitted_max`
    /// proposals wait for commit (on a leader; never on another role). The owner holds its
    /// writes until commits make room, rather than refusing them.
    pub fn proposals_full(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
            && self.log.last_index() - self.commit_index >= self.config.proposals_uncommitted_max
    }

    /// Forgets log entries up to `upto_index`, which the owner has captured in a durable
    /// snapshot of the state machine, and offers that snapshot at once (see
    /// [`Replica::snapshot_offer`]). Returns the snapshot's metadata.
    pub fn compact(&mut self, upto_index: u64) -> Result<SnapshotMeta, CompactError> {
        let (meta, _) = self.log_cut(upto_index)?;
        if meta.index >= self.snapshot_send.index {
            self.snapshot_send = meta;
        }
        Ok(meta)
    }

    /// Offers the owner's newest durable snapshot of the state machine, covering entries
    /// up to `meta.index` (applied here, with `meta.zxid` at that index), as what a
    /// follower needing compacted entries is sent (`Output::SendSnapshot`: the owner
    /// keeps the bytes, on disk). The log is not cut: the owner cuts it later with
    /// [`Replica::compact_log`] (keeping a tail behind the snapshot, so that followers a
    /// few entries short still catch up by entries).
    pub fn snapshot_offer(&mut self, meta: SnapshotMeta) -> Result<(), CompactError> {
        if meta.index <= self.snapshot_send.index {
            return Err(CompactError::AlreadyCompacted {
                snapshot_index: self.snapshot_send.index,
            });
        }
        if meta.index > self.applied_index || self.log.zxid_at(meta.index) != Some(meta.zxid) {
            return Err(CompactError::NotApplied {
                index: meta.index,
                applied_index: self.applied_index,
            });
        }
        self.snapshot_send = meta;
        Ok(())
    }

    /// Forgets log entries up to `upto_index`, which must be covered by the snapshot
    /// offered last (or be where a snapshot is offered with [`Replica::compact`]).
    /// Returns the metadata of the new log start.
    pub fn compact_log(&mut self, upto_index: u64) -> Result<SnapshotMeta, CompactError> {
        self.compact_log_taking(upto_index).map(|(meta, _)| meta)
    }

    /// Where [`Replica::compact_log`] may cut so that the entries kept up to `upto_index`
    /// hold at most `bytes_max` bytes (payloads plus a fixed cost per entry): the owner
    /// keeps a bounded tail of log behind its newest snapshot, for followers just short
    /// of it. Never beyond `upto_index`, nor below the log's start.
    pub fn log_index_keeping_bytes(&self, upto_index: u64, bytes_max: u64) -> u64 {
        self.log.index_keeping_bytes(upto_index, bytes_max)
    }

    /// [`Replica::compact_log`], handing the forgotten entries to the owner (to free
    /// where it likes) instead of dropping them.
    pub fn compact_log_taking(
        &mut self,
        upto_index: u64,
    ) -> Result<(SnapshotMeta, Vec<Entry>), CompactError> {
        if upto_index > self.snapshot_send.index {
            return Err(CompactError::NotCovered {
                index: upto_index,
                snapshot_index: self.snapshot_send.index,
            });
        }
        self.log_cut(upto_index)
    }

    fn log_cut(&mut self, upto_index: u64) -> Result<(SnapshotMeta, Vec<Entry>), CompactError> {
        let snapshot_index = self.log.snapshot().index;
        if upto_index <= snapshot_index {
            return Err(CompactError::AlreadyCompacted { snapshot_index });
        }
        let zxid = match self.log.zxid_at(upto_index) {
            Some(zxid) if upto_index <= self.applied_index => zxid,
            _ => {
                return Err(CompactError::NotApplied {
                    index: upto_index,
                    applied_index: self.applied_index,
                });
            }
        };
        let meta = SnapshotMeta {
            index: upto_index,
            zxid,
        };
        let dropped = self.log.compact(meta);
        Ok((meta, dropped))
    }

    /// Where the log starts (the index its first entry follows) and its last index.
    pub fn log_span(&self) -> (u64, u64) {
        (self.log.snapshot().index, self.log.last_index())
    }

    /// The zxid of the entry at `index` in this replica's log (the snapshot's at the
    /// snapshot index), or `None` when it is compacted away or beyond the end.
    pub fn zxid_at(&self, index: u64) -> Option<Zxid> {
        self.log.zxid_at(index)
    }

    /// The current role.
    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::Observer => Role::Observer,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    /// A summary for monitoring.
    pub fn status(&self) -> Status {
        let (followers, proposals_outstanding, leader_ready) = match &self.role {
            RoleState::Leader(state) => (
                state
                    .progress
                    .iter()
                    .map(|(id, pr)| FollowerStatus {
                        id: *id,
                        match_index: pr.match_index,
                        is_observer: self.config.observers.contains(id),
                    })
                    .collect(),
                self.log.last_index() - self.commit_index,
                self.commit_index >= state.new_leader_index,
            ),
            _ => (Vec::new(), 0, false),
        };
        Status {
            id: self.config.id,
            role: self.role(),
            epoch: self.hard_state.epoch,
            leader: self.leader,
            commit_index: self.commit_index,
            commit_zxid: self.log.zxid_at(self.commit_index),
            last_index: self.log.last_index(),
            last_zxid: self.log.last_zxid(),
            persisted_index: self.persisted_index,
            applied_index: self.applied_index,
            followers,
            proposals_outstanding,
            leader_ready,
            messages_refused: self.messages_refused,
            resync_needed: self.resync_needed,
        }
    }

    fn is_voter(&self) -> bool {
        self.config.voters.contains(&self.config.id)
    }

    fn step_timers(&mut self, out: &mut Vec<Output>) {
        for timer in TIMERS {
            let expired = self.timers.get(&timer).is_some_and(|at| *at <= self.now_ms);
            if !expired {
                continue;
            }
            self.timers.remove(&timer);
            match timer {
                Timer::Election => self.election_timeout(out),
                Timer::Heartbeat => self.leader_heartbeat(out),
                Timer::CheckQuorum => self.leader_check_quorum(),
            }
        }
    }

    fn step_message(
        &mut self,
        from: NodeId,
        msg: Message,
        out: &mut Vec<Output>,
    ) -> Result<(), StepError> {
        if from == self.config.id || !self.config.is_member(from) {
            return Err(MessageError::UnknownSender { from }.into());
        }
        msg.validate(
            self.config.entries_per_message_max,
            self.config.payload_bytes_max,
        )?;
        if !self.step_message_epoch(from, &msg, out)? {
            return Ok(());
        }
        match &self.role {
            RoleState::Leader(_) => self.leader_step(from, msg, out),
            RoleState::Follower | RoleState::Observer => self.follower_step(from, msg, out),
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => {
                self.election_step(from, msg, out)
            }
        }
    }

    /// Applies the epoch rules every message goes through first; returns false when the
    /// message was fully handled (stale, or ignored under the leader lease), and refuses
    /// a message from an epoch beyond `epoch_ceiling` before it can move anything.
    fn step_message_epoch(
        &mut self,
        from: NodeId,
        msg: &Message,
        out: &mut Vec<Output>,
    ) -> Result<bool, StepError> {
        let epoch = self.hard_state.epoch;
        let ceiling = self.epoch_ceiling();
        if msg.epoch > ceiling {
            return Err(MessageError::EpochTooFar {
                epoch: msg.epoch,
                ceiling,
            }
            .into());
        }
        Ok(if msg.epoch > epoch {
            match msg.body {
                // Pre-votes never move epochs: that is what keeps a rejoining member
                // from deposing a healthy leader.
                MessageBody::PreVote { .. } => true,
                MessageBody::PreVoteReply { granted: true } => true,
                MessageBody::Vote { .. } if self.in_leader_lease() => false,
                MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::Snapshot { .. } => {
                    self.become_follower(msg.epoch, Some(from));
                    true
                }
                _ => {
                    self.become_follower(msg.epoch, None);
                    true
                }
            }
        } else if msg.epoch < epoch {
            self.step_message_stale(from, &msg.body, out);
            false
        } else {
            true
        })
    }

    /// The highest epoch this replica believes a message may carry now: the epoch it
    /// started with plus [`EPOCH_JUMP_MAX`], rising by [`EPOCHS_PER_ELECTION_TIMEOUT_MAX`]
    /// per `election_timeout_ms_min` since it started, and never above [`EPOCH_MAX`].
    /// Nothing a peer sends moves it, so forged or corrupt epochs cannot use up the epoch
    /// space (which would leave no next epoch to elect a leader in), while a member that
    /// was away for many elections still catches up with the ensemble.
    pub fn epoch_ceiling(&self) -> Epoch {
        let running_ms = self.now_ms.saturating_sub(self.started_ms);
        let earned = running_ms.saturating_mul(EPOCHS_PER_ELECTION_TIMEOUT_MAX)
            / self.config.election_timeout_ms_min.max(1);
        let ceiling = u64::from(self.epoch_base.0)
            .saturating_add(u64::from(EPOCH_JUMP_MAX))
            .saturating_add(earned);
        Epoch(u32::try_from(ceiling.min(u64::from(EPOCH_MAX.0))).unwrap_or(EPOCH_MAX.0))
    }

    /// Answers a message from an older epoch so its sender learns the newer epoch: a
    /// deposed leader then steps down, a stale candidate stops.
    fn step_message_stale(&mut self, from: NodeId, body: &MessageBody, out: &mut Vec<Output>) {
        let reply = match body {
            MessageBody::PreVote { .. } => MessageBody::PreVoteReply { granted: false },
            MessageBody::Vote { .. } => MessageBody::VoteReply { granted: false },
            MessageBody::Append { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::Snapshot { .. } => MessageBody::HeartbeatReply,
            _ => return,
        };
        self.send(from, reply, out);
    }

    /// True while a leader is believed alive: this member is the leader, or heard from
    /// one within the minimum election timeout.
    fn in_leader_lease(&self) -> bool {
        if let RoleState::Leader(_) = self.role {
            return true;
        }
        self.leader_contact_ms
            .is_some_and(|at| self.now_ms < at + self.config.election_timeout_ms_min)
    }

    /// Moves to `epoch` (resetting the vote) if it is newer, and follows `leader`.
    fn become_follower(&mut self, epoch: Epoch, leader: Option<NodeId>) {
        assert!(epoch >= self.hard_state.epoch, "epochs never go back");
        if epoch > self.hard_state.epoch {
            self.hard_state_set(HardState {
                epoch,
                voted_for: None,
            });
        }
        self.role = if self.is_voter() {
            RoleState::Follower
        } else {
            RoleState::Observer
        };
        self.leader = leader;
        self.timers.clear();
        self.election_timer_reset();
    }

    /// Changes the hard state; `flush_hard_state` asks for it to be made durable once per
    /// step, and messages sent until it is durable are held (see `send`).
    fn hard_state_set(&mut self, hard_state: HardState) {
        assert!(
            hard_state.epoch >= self.hard_state.epoch,
            "epochs never go back"
        );
        if hard_state.epoch > self.hard_state.epoch {
            // A new epoch has a new leader whose log is not yet known to match ours.
            self.match_known_index = self.commit_index;
            self.ack_sent_index = 0;
            // A snapshot arriving from the old epoch's leader will not be finished.
            self.snapshot_incoming = None;
        }
        self.hard_state = hard_state;
    }

    /// Emits the hard state if it changed since last emitted. Called before any output
    /// that depends on it reaching the disk: entries or a snapshot of a new epoch must
    /// never be durable while the epoch is not.
    fn flush_hard_state(&mut self, out: &mut Vec<Output>) {
        if self.hard_state != self.hard_state_requested {
            self.hard_state_requested = self.hard_state;
            out.push(Output::PersistHardState {
                hard_state: self.hard_state,
            });
        }
    }

    fn election_timer_reset(&mut self) {
        let timeout_ms = self
            .rng
            .random_range(self.config.election_timeout_ms_min..self.config.election_timeout_ms_max);
        self.timers
            .insert(Timer::Election, self.now_ms + timeout_ms);
    }

    /// Queues a message; it leaves at once if the hard state is durable, else when it is
    /// (a vote or an acknowledgement must never outrun the state that backs it).
    fn send(&mut self, to: NodeId, body: MessageBody, out: &mut Vec<Output>) {
        self.send_at(to, self.hard_state.epoch, body, out);
    }

    /// `send` with an explicit epoch (pre-votes carry the epoch they are about).
    fn send_at(&mut self, to: NodeId, epoch: Epoch, body: MessageBody, out: &mut Vec<Output>) {
        let msg = Message { epoch, body };
        self.send_output(Output::Send { to, msg }, out);
    }

    /// Emits a send (`Output::Send` or `Output::SendSnapshot`), or holds it while the hard
    /// state is not durable.
    fn send_output(&mut self, send: Output, out: &mut Vec<Output>) {
        if self.hard_state == self.hard_state_durable && self.held.is_empty() {
            out.push(send);
        } else if self.held.len() < HELD_MESSAGES_MAX {
            self.held.push(send);
        }
        // Beyond the bound a message is dropped, which the protocol survives like any
        // loss (every message is retried or superseded).
    }

    fn step_hard_state_persisted(&mut self, hard_state: HardState, out: &mut Vec<Output>) {
        if hard_state.epoch < self.hard_state_durable.epoch {
            return;
        }
        self.hard_state_durable = hard_state;
        if self.hard_state_durable == self.hard_state {
            out.append(&mut self.held);
        }
    }

    /// A write is reported durable. The report is matched to the oldest outstanding
    /// write with that last entry (reports arrive in write order), and proves
    /// durability only up to the lowest truncation emitted after that write: the same
    /// zxid may have been truncated and appended again since, and the disk may already
    /// hold the truncation but not yet the new append.
    fn step_persisted(
        &mut self,
        index: u64,
        zxid: Zxid,
        out: &mut Vec<Output>,
    ) -> Result<(), StepError> {
        let position = self
            .persist_reports
            .iter()
            .position(|report| report.index == index && report.zxid == zxid)
            .ok_or(StepError::StalePersisted)?;
        let report = self.persist_reports[position];
        self.persist_reports.drain(..=position);
        let durable_index = index.min(report.durable_index_max);
        assert!(
            durable_index <= self.log.last_index(),
            "a write is reported durable beyond the log"
        );
        self.persisted_index = self.persisted_index.max(durable_index);
        match self.role {
            RoleState::Leader(_) => self.leader_commit_advance(),
            _ => self.follower_ack(out),
        }
        Ok(())
    }

    fn step_snapshot_installed(
        &mut self,
        meta: SnapshotMeta,
        out: &mut Vec<Output>,
    ) -> Result<(), StepError> {
        if self.log.snapshot() != meta {
            return Err(StepError::StalePersisted);
        }
        self.persisted_index = self.persisted_index.max(meta.index);
        self.follower_ack(out);
        Ok(())
    }

    /// Emits, in this order: the hard state, the pending log writes, the leader's
    /// appends, the newly committed entries, and a leader change.
    fn flush(&mut self, out: &mut Vec<Output>) {
        self.flush_hard_state(out);
        let last_index = self.log.last_index();
        if self.truncate_pending.is_some() || self.persist_requested_index < last_index {
            let from = self.persist_requested_index + 1;
            let entries = self
                .log
                .slice(from, last_index - self.persist_requested_index, u64::MAX);
            if let Some(last) = entries.last() {
                if self.persist_reports.len() >= PERSIST_REPORTS_MAX {
                    self.persist_reports.pop_front();
                }
                self.persist_reports.push_back(PersistReport {
                    index: last.index,
                    zxid: last.zxid,
                    durable_index_max: u64::MAX,
                });
            }
            out.push(Output::PersistEntries {
                truncate_after: self.truncate_pending.take(),
                entries,
            });
            self.persist_requested_index = last_index;
        }
        if let RoleState::Leader(_) = self.role {
            self.leader_send_all(out);
        }
        self.flush_committed(out);
        let current = (self.hard_state.epoch, self.leader);
        if current != self.leader_reported {
            self.leader_reported = current;
            out.push(Output::LeaderChanged {
                epoch: current.0,
                leader: current.1,
            });
        }
    }

    /// Outputs committed entries that are also durable here, each exactly once.
    fn flush_committed(&mut self, out: &mut Vec<Output>) {
        let upto = self.commit_index.min(self.persisted_index);
        if upto <= self.applied_index {
            return;
        }
        let entries = if self.config.has_no_peers(self.config.id) {
            // No member ever reads this log but this one, and the entries are durable and
            // committed: hand them over instead of copying them, so that a standalone
            // server holds in memory only the entries not committed yet.
            let meta = SnapshotMeta {
                index: upto,
                zxid: self
                    .log
                    .zxid_at(upto)
                    .expect("committed entry missing from the log"),
            };
            let mut entries = self.log.compact(meta);
            entries.retain(|e| e.index > self.applied_index);
            entries
        } else {
            self.log
                .slice(self.applied_index + 1, upto - self.applied_index, u64::MAX)
        };
        assert_eq!(
            entries.last().map(|e| e.index),
            Some(upto),
            "committed entries {}..={upto} missing from the log",
            self.applied_index + 1
        );
        self.applied_index = upto;
        out.push(Output::Committed { entries });
    }

    /// Raises the commit index; it never goes back.
    fn commit_set(&mut self, index: u64) {
        assert!(index >= self.commit_index, "commit index never decreases");
        assert!(index <= self.log.last_index(), "commit beyond the log");
        self.commit_index = index;
    }

    /// Ends a resync once this member holds a committed entry of the current epoch
    /// (written by this epoch's leader, after every entry of earlier epochs it holds, and
    /// this log matches the leader's up to it): every entry committed before is here.
    fn resync_check(&mut self, out: &mut Vec<Output>) {
        if !self.resync_needed {
            return;
        }
        let committed_epoch = self.log.zxid_at(self.commit_index).map(|zxid| zxid.epoch());
        if committed_epoch == Some(self.hard_state.epoch)
            && self.match_known_index >= self.commit_index
        {
            self.resync_needed = false;
            out.push(Output::Resynced);
            self.election_timer_reset();
        }
    }

    /// Drops log entries after `index` (an uncommitted divergent suffix).
    fn log_truncate_after(&mut self, index: u64) {
        assert!(
            index >= self.commit_index,
            "committed entries are never truncated"
        );
        self.log.truncate_after(index);
        self.persisted_index = self.persisted_index.min(index);
        for report in &mut self.persist_reports {
            report.durable_index_max = report.durable_index_max.min(index);
        }
        if index < self.persist_requested_index {
            self.persist_requested_index = index;
            self.truncate_pending = Some(self.truncate_pending.map_or(index, |t| t.min(index)));
        }
    }
}
