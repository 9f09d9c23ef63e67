//! The values replication exchanges with peers and with storage: log entries, snapshot
//! metadata and peer messages.
//!
//! Every `Message` carries the sender's epoch, and every field that came from a peer is
//! untrusted: `Message::validate` checks the shape of a message (contiguous entries,
//! increasing zxids, no entry from a future epoch, bounded sizes) before any handler looks
//! at it. This module does not decide anything; the handlers in `election`, `leader` and
//! `follower` do.

use serde::{Deserialize, Serialize};

use crate::ids::{Epoch, Zxid};

/// One record of the replicated log.
///
/// `index` is the position in the log (contiguous, starting at 1); `zxid` is
/// `epoch << 32 | counter`. A counter of 0 marks the empty entry a new leader appends
/// first (Zab's NEWLEADER analogue, see `Entry::is_new_leader`); proposals count from 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log, starting at 1.
    pub index: u64,
    /// Transaction id; its epoch is the epoch of the leader that appended the entry.
    pub zxid: Zxid,
    /// Opaque bytes for the state machine; empty for a NEWLEADER entry.
    #[serde(with = "crate::bytes::vec")]
    pub payload: Vec<u8>,
}

impl Entry {
    /// The epoch of the leader that appended this entry.
    pub fn epoch(&self) -> Epoch {
        self.zxid.epoch()
    }

    /// True for the empty entry a new leader appends before any proposal of its epoch.
    pub fn is_new_leader(&self) -> bool {
        self.zxid.counter() == 0
    }
}

/// Where a snapshot of the state machine ends: the last log entry it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Index of the last entry applied in the snapshot (0: the empty initial state).
    pub index: u64,
    /// Zxid of that entry (`Zxid::ZERO` for the empty initial state).
    pub zxid: Zxid,
}

/// A message between two members of the ensemble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender's epoch; for `PreVote` the epoch the sender would campaign in, and for a
    /// granted `PreVoteReply` that same epoch echoed back.
    pub epoch: Epoch,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of peer message (see docs/consensus.md, "Messages").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// "Would you vote for me in `epoch`?" Sent before a real election; changes no state
    /// at the receiver.
    PreVote {
        /// Index of the sender's last log entry.
        last_index: u64,
        /// Zxid of the sender's last log entry.
        last_zxid: Zxid,
    },
    /// Answer to `PreVote`.
    PreVoteReply {
        /// True when the receiver would vote for the sender.
        granted: bool,
    },
    /// A request for this member's vote in `epoch`.
    Vote {
        /// Index of the candidate's last log entry.
        last_index: u64,
        /// Zxid of the candidate's last log entry.
        last_zxid: Zxid,
    },
    /// Answer to `Vote`; sent only once the voter's hard state is durable.
    VoteReply {
        /// True when the vote was given.
        granted: bool,
    },
    /// Leader to follower: the entries after `prev_index`, which must match
    /// `(prev_index, prev_zxid)` in the follower's log (log matching).
    Append {
        /// Index of the entry just before `entries`.
        prev_index: u64,
        /// Zxid of the entry at `prev_index` in the leader's log.
        prev_zxid: Zxid,
        /// Contiguous entries starting at `prev_index + 1`; empty for a probe.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit_index: u64,
    },
    /// Follower to leader: the outcome of an `Append` or `Snapshot`.
    AppendReply(AppendOutcome),
    /// Leader to follower: liveness, and the commit index capped at the follower's match.
    Heartbeat {
        /// `min(leader commit index, follower match index)`.
        commit_index: u64,
    },
    /// Follower to leader: the heartbeat arrived (feeds check-quorum and resumes probes);
    /// also sent with the receiver's epoch to answer a message from a stale epoch.
    HeartbeatReply,
    /// Leader to follower: a piece of the snapshot file at `meta` (the storage engine's
    /// bytes, header and checksum included), because the follower needs entries the
    /// leader has compacted away. A snapshot travels in pieces of at most
    /// `ReplicationConfig::message_bytes_max`, one at a time: the follower answers each
    /// with `SnapshotReply`, and once it holds all `total_bytes` and they check, installs
    /// it and answers `AppendReply`.
    Snapshot {
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// Where in the file `bytes` start.
        offset: u64,
        /// The whole file's length.
        total_bytes: u64,
        /// The file's bytes from `offset`, opaque to replication.
        #[serde(with = "crate::bytes::vec")]
        bytes: Vec<u8>,
    },
    /// Follower to leader: how much of the snapshot at `index` it holds, in answer to the
    /// piece at `offset`. The leader goes on from `received_bytes`: after a lost piece or
    /// a dropped connection a transfer resumes where it stopped, and a follower that lost
    /// what it held (a restart, another snapshot) answers 0.
    SnapshotReply {
        /// The index of the snapshot the piece belonged to.
        index: u64,
        /// The offset of the piece answered.
        offset: u64,
        /// How many bytes of that snapshot the follower holds, from the start.
        received_bytes: u64,
    },
}

/// What a follower answers to `Append` or `Snapshot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to `match_index`, and that prefix is
    /// durable on the follower.
    Accepted {
        /// Highest index known to match the leader and durable.
        match_index: u64,
    },
    /// The follower has no entry `(rejected_index, prev_zxid)`. The hint is the largest
    /// index at or below `rejected_index` whose epoch is at most the epoch of the leader's
    /// `prev_zxid`, so the leader can skip a whole divergent epoch in one round trip.
    Rejected {
        /// The `prev_index` of the rejected `Append`.
        rejected_index: u64,
        /// Largest follower index that may still match.
        hint_index: u64,
        /// Epoch of the follower's entry at `hint_index`.
        hint_epoch: Epoch,
    },
    /// The answer to a `Heartbeat` whose commit index is beyond the follower's log: the
    /// leader counts entries as held here that are not (the follower restarted with a
    /// wiped or lost log). Its log ends at `last_index`; the leader probes from there.
    /// Without it an idle leader, which sends no `Append` to a follower it believes is
    /// caught up, would never notice.
    Missing {
        /// The follower's last index.
        last_index: u64,
    },
}

/// Why a peer message was refused before any handler saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The sender is not a member of the configuration, or is this replica itself.
    #[error("message from {from:?}, which is not another member")]
    UnknownSender {
        /// The claimed sender.
        from: crate::ids::NodeId,
    },
    /// An `Append` carries more entries than `entries_per_message_max`.
    #[error("append carries {count} entries, more than the limit {limit}")]
    TooManyEntries {
        /// Entries in the message.
        count: usize,
        /// The configured limit.
        limit: u32,
    },
    /// Entries are not contiguous from `prev_index + 1`, or their zxids do not increase.
    #[error("append entries out of order at index {index}")]
    EntriesOutOfOrder {
        /// Index where the order broke.
        index: u64,
    },
    /// An entry, prev zxid or snapshot claims an epoch above the message's epoch.
    #[error("zxid {zxid} is from an epoch after the message epoch {epoch:?}")]
    FutureEpoch {
        /// The offending zxid.
        zxid: Zxid,
        /// The message epoch.
        epoch: Epoch,
    },
    /// A NEWLEADER entry (counter 0) carries a payload, or a payload exceeds the limit.
    #[error("entry {index} has a payload of {size_bytes} bytes, which is not allowed")]
    BadPayload {
        /// The entry index.
        index: u64,
        /// The payload size.
        size_bytes: usize,
    },
    /// A reply acknowledges entries the leader never had.
    #[error("reply acknowledges index {index}, beyond the leader's last index {last_index}")]
    AckBeyondLog {
        /// The acknowledged index.
        index: u64,
        /// The leader's last index.
        last_index: u64,
    },
    /// An index beyond `INDEX_MAX`.
    #[error("index {index} is beyond any log")]
    IndexTooLarge {
        /// The index.
        index: u64,
    },
    /// A message claims an epoch further ahead than this replica can believe: beyond
    /// [`EPOCH_MAX`], or more than elections could have advanced since it started
    /// (`Replica::epoch_ceiling`). Adopting it could use up the epoch space.
    #[error("epoch {epoch:?} is beyond the highest epoch believable now, {ceiling:?}")]
    EpochTooFar {
        /// The claimed epoch.
        epoch: Epoch,
        /// The highest epoch this replica would adopt now.
        ceiling: Epoch,
    },
    /// A snapshot piece reaches beyond the length it claims for the whole file.
    #[error("snapshot piece of {piece_bytes} bytes at {offset} is outside a file of {total_bytes}")]
    SnapshotPieceOutside {
        /// Where the piece starts.
        offset: u64,
        /// Its length.
        piece_bytes: usize,
        /// The file length claimed.
        total_bytes: u64,
    },
    /// A snapshot arrived whole but does not check (framing, checksum, or another
    /// index or zxid than its pieces claimed); the transfer starts over.
    #[error("the snapshot at index {index} arrived damaged")]
    SnapshotDamaged {
        /// The index its pieces claimed.
        index: u64,
    },
    /// A snapshot is larger than this member accepts (`ReplicationConfig::snapshot_bytes_max`).
    #[error("snapshot of {total_bytes} bytes is above the limit {limit}")]
    SnapshotTooLarge {
        /// The file length claimed.
        total_bytes: u64,
        /// The configured limit.
        limit: u64,
    },
    /// An `Append` would make a follower drop an entry it knows is committed or that the
    /// same leader already confirmed: only a faulty leader sends that.
    #[error("append conflicts with confirmed entry {index}")]
    ConflictsWithConfirmed {
        /// The index of the confirmed entry.
        index: u64,
    },
}

/// The highest epoch a replica ever adopts or campaigns in. An election needs the next
/// epoch, so a member at `EPOCH_MAX` can only follow; the ceiling is never reached by
/// elections (one per election timeout at most, 2^32 of them take decades), and
/// `Replica::epoch_ceiling` keeps messages from jumping to it.
pub const EPOCH_MAX: Epoch = Epoch(u32::MAX - 1);

/// The largest log index a message may name. Far beyond any real log, it keeps every
/// `index + 1` computed from a peer's number from overflowing.
pub const INDEX_MAX: u64 = u64::MAX >> 1;

impl Message {
    /// Checks the shape of a message from a peer against the limits; handlers may then
    /// rely on contiguous entries, increasing zxids and no zxid from a future epoch.
    pub fn validate(
        &self,
        entries_per_message_max: u32,
        payload_bytes_max: u32,
    ) -> Result<(), MessageError> {
        let index = match &self.body {
            MessageBody::PreVote { last_index, .. } | MessageBody::Vote { last_index, .. } => {
                *last_index
            }
            MessageBody::Append { prev_index, .. } => *prev_index,
            MessageBody::AppendReply(AppendOutcome::Accepted { match_index }) => *match_index,
            MessageBody::AppendReply(AppendOutcome::Missing { last_index }) => *last_index,
            MessageBody::AppendReply(AppendOutcome::Rejected {
                rejected_index,
                hint_index,
                ..
            }) => (*rejected_index).max(*hint_index),
            MessageBody::Heartbeat { commit_index } => *commit_index,
            MessageBody::Snapshot { meta, .. } => meta.index,
            MessageBody::SnapshotReply { index, .. } => *index,
            MessageBody::PreVoteReply { .. }
            | MessageBody::VoteReply { .. }
            | MessageBody::HeartbeatReply => 0,
        };
        if index > INDEX_MAX {
            return Err(MessageError::IndexTooLarge { index });
        }
        match &self.body {
            MessageBody::Append {
                prev_index,
                prev_zxid,
                entries,
                ..
            } => validate_append(
                self.epoch,
                *prev_index,
                *prev_zxid,
                entries,
                entries_per_message_max,
                payload_bytes_max,
            ),
            MessageBody::Snapshot {
                meta,
                offset,
                total_bytes,
                bytes,
            } => {
                let end = offset.checked_add(bytes.len() as u64);
                if end.is_none_or(|end| end > *total_bytes) {
                    return Err(MessageError::SnapshotPieceOutside {
                        offset: *offset,
                        piece_bytes: bytes.len(),
                        total_bytes: *total_bytes,
                    });
                }
                validate_epoch(meta.zxid, self.epoch)
            }
            MessageBody::PreVote { last_zxid, .. } | MessageBody::Vote { last_zxid, .. } => {
                validate_epoch(*last_zxid, self.epoch)
            }
            MessageBody::PreVoteReply { .. }
            | MessageBody::VoteReply { .. }
            | MessageBody::AppendReply(_)
            | MessageBody::Heartbeat { .. }
            | MessageBody::HeartbeatReply
            | MessageBody::SnapshotReply { .. } => Ok(()),
        }
    }
}

fn validate_epoch(zxid: Zxid, epoch: Epoch) -> Result<(), MessageError> {
    if zxid.epoch() > epoch {
        return Err(MessageError::FutureEpoch { zxid, epoch });
    }
    Ok(())
}

fn validate_append(
    epoch: Epoch,
    prev_index: u64,
    prev_zxid: Zxid,
    entries: &[Entry],
    entries_per_message_max: u32,
    payload_bytes_max: u32,
) -> Result<(), MessageError> {
    if entries.len() > entries_per_message_max as usize {
        return Err(MessageError::TooManyEntries {
            count: entries.len(),
            limit: entries_per_message_max,
        });
    }
    validate_epoch(prev_zxid, epoch)?;
    let (mut index_before, mut zxid_before) = (prev_index, prev_zxid);
    for entry in entries {
        if Some(entry.index) != index_before.checked_add(1) || entry.zxid <= zxid_before {
            return Err(MessageError::EntriesOutOfOrder { index: entry.index });
        }
        validate_epoch(entry.zxid, epoch)?;
        let payload_too_big = entry.payload.len() > payload_bytes_max as usize;
        if payload_too_big || (entry.is_new_leader() && !entry.payload.is_empty()) {
            return Err(MessageError::BadPayload {
                index: entry.index,
                size_bytes: entry.payload.len(),
            });
        }
        (index_before, zxid_before) = (entry.index, entry.zxid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2^63: the first index a message may not name (`INDEX_MAX`, written out so the
    /// test pins the documented bound rather than restating the constant).
    const INDEX_MAX_PLUS_ONE: u64 = 1 << 63;

    fn entry(index: u64, epoch: u32, counter: u32) -> Entry {
        let payload = if counter == 0 { vec![] } else { vec![1, 2] };
        Entry {
            index,
            zxid: Zxid::new(Epoch(epoch), counter),
            payload,
        }
    }

    fn append(epoch: u32, prev_index: u64, prev_zxid: Zxid, entries: Vec<Entry>) -> Message {
        Message {
            epoch: Epoch(epoch),
            body: MessageBody::Append {
                prev_index,
                prev_zxid,
                entries,
                commit_index: 0,
            },
        }
    }

    // A well-formed append passes; each kind of malformed append is refused with its own
    // error instead of reaching a handler.
    #[test]
    fn append_shape_is_checked() {
        let z = |e, c| Zxid::new(Epoch(e), c);
        let ok = append(2, 1, z(1, 1), vec![entry(2, 2, 0), entry(3, 2, 1)]);
        assert_eq!(ok.validate(10, 100), Ok(()));

        let gap = append(2, 1, z(1, 1), vec![entry(3, 2, 0)]);
        assert_eq!(
            gap.validate(10, 100),
            Err(MessageError::EntriesOutOfOrder { index: 3 })
        );
        let not_increasing = append(2, 1, z(2, 5), vec![entry(2, 2, 1)]);
        assert_eq!(
            not_increasing.validate(10, 100),
            Err(MessageError::EntriesOutOfOrder { index: 2 })
        );
        let future = append(2, 1, z(1, 1), vec![entry(2, 3, 1)]);
        assert!(matches!(
            future.validate(10, 100),
            Err(MessageError::FutureEpoch { .. })
        ));
        let too_many = append(2, 1, z(1, 1), vec![entry(2, 2, 1), entry(3, 2, 2)]);
        assert!(matches!(
            too_many.validate(1, 100),
            Err(MessageError::TooManyEntries { count: 2, limit: 1 })
        ));
        let too_big = append(2, 1, z(1, 1), vec![entry(2, 2, 1)]);
        assert!(matches!(
            too_big.validate(10, 1),
            Err(MessageError::BadPayload { index: 2, .. })
        ));
        // A payload of exactly the limit is one `propose` takes: it must pass here too.
        assert_eq!(too_big.validate(10, 2), Ok(()));
        // The largest index a message may name is 2^63 - 1.
        let last = append(2, INDEX_MAX_PLUS_ONE - 1, z(1, 1), Vec::new());
        assert_eq!(last.validate(10, 100), Ok(()));
        let beyond = append(2, INDEX_MAX_PLUS_ONE, z(1, 1), Vec::new());
        assert_eq!(
            beyond.validate(10, 100),
            Err(MessageError::IndexTooLarge {
                index: INDEX_MAX_PLUS_ONE
            })
        );
    }

    // Messages survive a bincode round trip, so the runtime can put them on the wire.
    #[test]
    fn message_round_trips_through_bincode() {
        let msg = append(3, 4, Zxid::new(Epoch(2), 7), vec![entry(5, 3, 0)]);
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&msg, config).expect("encodes");
        let (back, used): (Message, usize) =
            bincode::serde::decode_from_slice(&bytes, config).expect("decodes");
        assert_eq!(back, msg);
        assert_eq!(used, bytes.len());
    }
}
