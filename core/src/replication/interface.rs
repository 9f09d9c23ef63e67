//! The public vocabulary between a `Replica` and whoever drives it: inputs, outputs,
//! durable state, role and status, and the errors of each entry point. Only types live
//! here; `Replica` (in `mod.rs`) gives them meaning, and docs/consensus.md §2 states the
//! contract the runtime must keep.

use serde::{Deserialize, Serialize};

use crate::ids::{Epoch, NodeId, Zxid};

use super::config::ReplicationConfigError;
use super::log::LogError;
use super::message::{Entry, Message, MessageError, SnapshotMeta};

/// The state that must survive a crash besides the log: the epoch this member is in and
/// whom it voted for in that epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HardState {
    /// The highest epoch this member has seen (Raft's current term).
    pub epoch: Epoch,
    /// The candidate this member voted for in `epoch`, if any.
    pub voted_for: Option<NodeId>,
}

/// What recovery found on disk; what `Replica::new` starts from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DurableState {
    /// The last durable hard state.
    pub hard_state: HardState,
    /// The newest durable snapshot (the default means "no snapshot, empty state").
    pub snapshot: SnapshotMeta,
    /// The snapshot's bytes, for the owner to restore its state machine from (the replica
    /// keeps none: it asks for them with `Output::SendSnapshot`).
    pub snapshot_bytes: Vec<u8>,
    /// The durable entries after the snapshot, contiguous, in index order.
    pub entries: Vec<Entry>,
    /// Recovery found that the log may lack entries this member acknowledged (its
    /// newest log segment is gone): the member must not vote or lead until a leader has
    /// re-synced it (`Replica::status().resync_needed`, then `Output::Resynced`).
    pub log_lost: bool,
}

/// What the world tells a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time passed: due timers fire. Early or repeated ticks are harmless; a tick also
    /// flushes proposals made with `propose` since the last step.
    Tick,
    /// Nothing happened but proposals made with `propose` since the last step: emit them
    /// (one `PersistEntries`, one `Append` per follower within its pipeline). No timer
    /// fires, so an owner may flush after proposing without moving the protocol's clock.
    Flush,
    /// A message from another member arrived.
    Message {
        /// The sender, as the runtime authenticated it.
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// The `PersistHardState` output carrying `hard_state` is durable.
    HardStatePersisted {
        /// The hard state that was written.
        hard_state: HardState,
    },
    /// A `PersistEntries` output whose last entry is `(index, zxid)` is durable, and so
    /// is every persist output emitted before it. Report each such write, in order.
    Persisted {
        /// Index of the last entry written.
        index: u64,
        /// Its zxid; a mismatch with the current log (it was truncated since) makes the
        /// input stale and ignored.
        zxid: Zxid,
    },
    /// The snapshot of an `InstallSnapshot` output is durable and the log before it
    /// discarded.
    SnapshotInstalled {
        /// The installed snapshot.
        meta: SnapshotMeta,
    },
}

/// A piece of a member's durable snapshot file to send to another member (a replica's
/// `Output::SendSnapshot`, the node's `Output::PeerSnapshot`): the message is
/// `Message { epoch, body: MessageBody::Snapshot { meta, offset, total_bytes, bytes } }`
/// with at most `bytes_max` bytes of the file at `meta` from `offset`, read from where
/// the runtime made it durable (a snapshot the owner offered with
/// `Replica::snapshot_offer`, or one installed from a leader; the storage engine's
/// `read_snapshot_piece`). The runtime may send a piece of a newer durable snapshot of
/// this member instead (its own `meta`: the follower then starts that one from 0), and
/// may drop the send when it has neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotSend {
    /// The receiver.
    pub to: NodeId,
    /// The epoch the message carries.
    pub epoch: Epoch,
    /// The snapshot to send.
    pub meta: SnapshotMeta,
    /// Where in the snapshot file the piece starts.
    pub offset: u64,
    /// Most bytes in the piece (`ReplicationConfig::message_bytes_max`).
    pub bytes_max: u64,
}

/// What a replica asks of the world. The runtime performs outputs in the order given;
/// persist outputs in particular must reach the disk in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `msg` to member `to`. Loss is tolerated; the sender retries.
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        msg: Message,
    },
    /// Send a member a piece of this replica's durable snapshot file (see
    /// [`SnapshotSend`]). Loss is tolerated: the replica retries.
    SendSnapshot(SnapshotSend),
    /// Make `hard_state` durable, then report `Input::HardStatePersisted`. Messages that
    /// depend on it are held inside the replica until then.
    PersistHardState {
        /// The new hard state.
        hard_state: HardState,
    },
    /// Drop durable entries after `truncate_after` (when `Some`), then append `entries`,
    /// then report `Input::Persisted` for the last entry (if any).
    PersistEntries {
        /// Keep entries up to this index, drop the rest before appending.
        truncate_after: Option<u64>,
        /// New entries, contiguous, following the kept log.
        entries: Vec<Entry>,
    },
    /// Replace the state machine by this snapshot and make it durable, discarding the
    /// whole durable log; then report `Input::SnapshotInstalled`.
    InstallSnapshot {
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// The serialised state machine.
        bytes: Vec<u8>,
    },
    /// Apply these entries to the state machine. Indexes follow one another across
    /// outputs, each committed entry exactly once per `Replica` (a restarted replica starts
    /// again after its snapshot). NEWLEADER entries are included so zxids stay visible.
    Committed {
        /// Committed entries in index order.
        entries: Vec<Entry>,
    },
    /// A member that started with `DurableState::log_lost` holds the current leader's
    /// log up to an entry of the leader's epoch that is committed: it has every entry
    /// committed before, and may vote and lead again. The owner makes that durable (the
    /// storage engine forgets the loss), so a restart before this output starts again
    /// with the loss.
    Resynced,
    /// The known leader or the epoch changed (`leader: None` while none is known). When
    /// this replica stops leading, its uncommitted proposals may still commit (under a
    /// later leader) or be lost; the owner learns which from `Committed` zxids and should
    /// fail requests still pending, as ZooKeeper does with connection loss.
    LeaderChanged {
        /// The new epoch.
        epoch: Epoch,
        /// The leader of `epoch`, when known.
        leader: Option<NodeId>,
    },
}

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for pre-votes before starting an election.
    PreCandidate,
    /// Asks for votes in a new epoch.
    Candidate,
    /// Leads the current epoch.
    Leader,
    /// Receives entries, never votes or counts.
    Observer,
}

/// Why `propose` refused a payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader proposes; `leader_hint` is the leader this replica knows of.
    #[error("not the leader (leader: {leader_hint:?})")]
    NotLeader {
        /// The current leader, if known.
        leader_hint: Option<NodeId>,
    },
    /// `proposals_uncommitted_max` proposals are already waiting for commit.
    #[error("{uncommitted} proposals uncommitted, the limit")]
    TooManyUncommitted {
        /// Proposals appended but not committed.
        uncommitted: u64,
    },
    /// The payload is larger than `payload_bytes_max`.
    #[error("payload of {size_bytes} bytes exceeds {limit_bytes} bytes")]
    PayloadTooLarge {
        /// The payload size.
        size_bytes: usize,
        /// The limit.
        limit_bytes: u32,
    },
    /// The zxid counter of this epoch is used up; a new election must start a new epoch
    /// (ZooKeeper does the same on zxid rollover).
    #[error("zxid counter of the epoch is exhausted")]
    ZxidCounterExhausted,
}

/// Why `compact` refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// Only entries already output as committed may be covered by a snapshot.
    #[error("compact up to {index}, but only {applied_index} is applied")]
    NotApplied {
        /// The requested index.
        index: u64,
        /// The last index output as committed.
        applied_index: u64,
    },
    /// The log already starts after `index`.
    #[error("already compacted up to {snapshot_index}")]
    AlreadyCompacted {
        /// The current snapshot index.
        snapshot_index: u64,
    },
    /// The log may only be cut up to the snapshot offered last: a follower needing the
    /// entries cut is sent that snapshot, and must find the log going on right after it.
    #[error("compact up to {index}, beyond the offered snapshot at {snapshot_index}")]
    NotCovered {
        /// The requested index.
        index: u64,
        /// The index of the snapshot offered last.
        snapshot_index: u64,
    },
}

/// Why `Replica::new` refused its inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(#[from] ReplicationConfigError),
    /// The durable log is not a log.
    #[error("durable log: {0}")]
    Log(#[from] LogError),
    /// The log holds an entry from an epoch after the durable epoch, which a correct
    /// runtime cannot produce (the epoch is persisted before any entry of it).
    #[error("log reaches epoch {log_epoch:?}, after the durable epoch {epoch:?}")]
    EpochBehindLog {
        /// The durable epoch.
        epoch: Epoch,
        /// The epoch of the last log entry.
        log_epoch: Epoch,
    },
}

/// Why an input was ignored. Ignoring is always safe: the protocol retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// A peer message was malformed or came from a stranger.
    #[error("bad message: {0}")]
    BadMessage(#[from] MessageError),
    /// A persistence report names entries or a snapshot this replica no longer has.
    #[error("stale persistence report")]
    StalePersisted,
}

/// A follower as the leader sees it, for the four-letter words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerStatus {
    /// The member.
    pub id: NodeId,
    /// Highest index known to match the leader and be durable there.
    pub match_index: u64,
    /// True for an observer.
    pub is_observer: bool,
}

/// A summary of a replica for monitoring (`srvr`, `mntr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// This member.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its epoch.
    pub epoch: Epoch,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Highest committed index.
    pub commit_index: u64,
    /// Zxid at the commit index (`None` if this replica does not hold that entry yet).
    pub commit_zxid: Option<Zxid>,
    /// Highest index in the log.
    pub last_index: u64,
    /// Zxid of the last log entry.
    pub last_zxid: Zxid,
    /// Highest index durable locally.
    pub persisted_index: u64,
    /// Highest index output as committed.
    pub applied_index: u64,
    /// On the leader, every other member in id order; empty elsewhere.
    pub followers: Vec<FollowerStatus>,
    /// On the leader, entries appended but not committed; 0 elsewhere.
    pub proposals_outstanding: u64,
    /// True on a leader once the NEWLEADER entry of its epoch is committed.
    pub leader_ready: bool,
    /// Peer messages refused as malformed since start.
    pub messages_refused: u64,
    /// Started with a lost log and not yet re-synced by a leader: neither votes nor
    /// campaigns.
    pub resync_needed: bool,
}
