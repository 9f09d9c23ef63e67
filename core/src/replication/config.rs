//! `ReplicationConfig`: who the members are and every timing and size bound of the
//! protocol, each with its unit. `validate` refuses a configuration the protocol cannot
//! run with (e.g. a heartbeat slower than the election timeout) with the key at fault.

use std::collections::BTreeSet;

use crate::ids::NodeId;

/// Default for [`ReplicationConfig::message_bytes_max`]: 16 MiB.
pub const MESSAGE_BYTES_MAX_DEFAULT: u64 = 16 * 1024 * 1024;

/// What a peer message may hold beyond `message_bytes_max` of payloads or snapshot:
/// its header and, per entry, index, zxid and length (64 entries of 26 bytes at most,
/// with room to spare). A transport caps a peer frame at
/// `message_bytes_max + PEER_MESSAGE_OVERHEAD_BYTES`.
pub const PEER_MESSAGE_OVERHEAD_BYTES: u64 = 64 * 1024;

/// What a snapshot file holds beyond the node's bytes (header, index, checksum), rounded
/// up generously.
pub const SNAPSHOT_FRAMING_BYTES_MAX: u64 = 4096;

/// The membership and bounds one replica runs with. All replicas of an ensemble must
/// agree on `voters` and `observers` (there is no reconfiguration yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// This replica (ZooKeeper's `myid`).
    pub id: NodeId,
    /// Members that vote and count towards quorums.
    pub voters: BTreeSet<NodeId>,
    /// Members that receive entries and commits but never vote nor count.
    pub observers: BTreeSet<NodeId>,
    /// How often a leader sends heartbeats, in milliseconds. Default 50.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomised election timeout, in milliseconds; also the leader
    /// lease and the check-quorum period. Default 500.
    pub election_timeout_ms_min: u64,
    /// Upper bound (exclusive) of the randomised election timeout, in milliseconds.
    /// Default 1000.
    pub election_timeout_ms_max: u64,
    /// Most entries in one `Append` message. Default 64.
    pub entries_per_message_max: u32,
    /// Most `Append` messages in flight (sent, not yet acknowledged) to one follower:
    /// the pipeline depth. Default 8.
    pub messages_in_flight_max: u32,
    /// Most proposals the leader holds uncommitted; `propose` refuses more. Default 4096.
    pub proposals_uncommitted_max: u64,
    /// Largest payload of one proposal, in bytes. Default 1 MiB (ZooKeeper's
    /// `jute.maxbuffer`).
    pub payload_bytes_max: u32,
    /// Most bytes of entry payloads in one `Append`, and most bytes of snapshot in one
    /// `Snapshot` piece: what bounds a peer message (the transport adds a fixed
    /// overhead, [`PEER_MESSAGE_OVERHEAD_BYTES`]). An entry larger than this travels
    /// alone, so a transport's frame limit must allow `payload_bytes_max` too (the
    /// server's config requires it). Default 16 MiB.
    pub message_bytes_max: u64,
    /// Largest snapshot file a follower accepts from a leader, in bytes: what it may be
    /// made to hold while a snapshot arrives. Default 4 GiB and a little (the storage
    /// engine's own limit, `Limits::snapshot_bytes_max`, plus the file's framing).
    pub snapshot_bytes_max: u64,
    /// Highest zxid counter a leader assigns in one epoch. A leader whose counter is used
    /// up steps down so that an election starts a new epoch, as ZooKeeper does on zxid
    /// rollover. Default `u32::MAX`; tests lower it to make rollovers happen.
    pub zxid_counter_max: u32,
    /// The planted bug, if any (tests of the checkers only).
    #[cfg(feature = "planted-bugs")]
    pub bug: Option<crate::bugs::Bug>,
}

/// Why a `ReplicationConfig` was refused; each variant names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicationConfigError {
    /// `id` is neither a voter nor an observer.
    #[error("id {id:?} is not in voters nor observers")]
    IdNotMember {
        /// The id.
        id: NodeId,
    },
    /// `voters` is empty.
    #[error("voters is empty")]
    NoVoters,
    /// A member is both a voter and an observer.
    #[error("{id:?} is both a voter and an observer")]
    VoterAndObserver {
        /// The member listed twice.
        id: NodeId,
    },
    /// A timing key is out of range: `heartbeat_interval_ms` must be above 0 and below
    /// `election_timeout_ms_min`, which must be below `election_timeout_ms_max`.
    #[error("{key} = {value_ms} ms is out of range: {allowed}")]
    Timing {
        /// The key at fault.
        key: &'static str,
        /// Its value in milliseconds.
        value_ms: u64,
        /// What is allowed.
        allowed: &'static str,
    },
    /// A size bound is zero.
    #[error("{key} must be at least 1")]
    ZeroBound {
        /// The key at fault.
        key: &'static str,
    },
}

impl ReplicationConfig {
    /// A configuration with the documented defaults for `id` in an ensemble of `voters`.
    pub fn new(id: NodeId, voters: BTreeSet<NodeId>) -> ReplicationConfig {
        ReplicationConfig {
            id,
            voters,
            observers: BTreeSet::new(),
            heartbeat_interval_ms: 50,
            election_timeout_ms_min: 500,
            election_timeout_ms_max: 1000,
            entries_per_message_max: 64,
            messages_in_flight_max: 8,
            proposals_uncommitted_max: 4096,
            payload_bytes_max: 1024 * 1024,
            message_bytes_max: MESSAGE_BYTES_MAX_DEFAULT,
            snapshot_bytes_max: crate::limits::SNAPSHOT_BYTES_MAX_DEFAULT
                + SNAPSHOT_FRAMING_BYTES_MAX,
            zxid_counter_max: u32::MAX,
            #[cfg(feature = "planted-bugs")]
            bug: None,
        }
    }

    /// Checks the relations between the keys.
    pub fn validate(&self) -> Result<(), ReplicationConfigError> {
        if self.voters.is_empty() {
            return Err(ReplicationConfigError::NoVoters);
        }
        if let Some(id) = self.voters.intersection(&self.observers).next() {
            return Err(ReplicationConfigError::VoterAndObserver { id: *id });
        }
        if !self.is_member(self.id) {
            return Err(ReplicationConfigError::IdNotMember { id: self.id });
        }
        if self.heartbeat_interval_ms == 0
            || self.heartbeat_interval_ms >= self.election_timeout_ms_min
        {
            return Err(ReplicationConfigError::Timing {
                key: "heartbeat_interval_ms",
                value_ms: self.heartbeat_interval_ms,
                allowed: "above 0 and below election_timeout_ms_min",
            });
        }
        if self.election_timeout_ms_min >= self.election_timeout_ms_max {
            return Err(ReplicationConfigError::Timing {
                key: "election_timeout_ms_max",
                value_ms: self.election_timeout_ms_max,
                allowed: "above election_timeout_ms_min",
            });
        }
        let bounds = [
            (
                "entries_per_message_max",
                u64::from(self.entries_per_message_max),
            ),
            (
                "messages_in_flight_max",
                u64::from(self.messages_in_flight_max),
            ),
            ("proposals_uncommitted_max", self.proposals_uncommitted_max),
            ("zxid_counter_max", u64::from(self.zxid_counter_max)),
            ("message_bytes_max", self.message_bytes_max),
        ];
        if let Some((key, _)) = bounds.iter().find(|(_, value)| *value == 0) {
            return Err(ReplicationConfigError::ZeroBound { key });
        }
        Ok(())
    }

    /// True for a voter or an observer.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.observers.contains(&id)
    }

    /// True when no other member replicates from `id`'s log: it is the only voter and
    /// there are no observers (a standalone server).
    pub fn has_no_peers(&self, id: NodeId) -> bool {
        self.observers.is_empty() && self.voters.len() == 1 && self.voters.contains(&id)
    }

    /// How many voters make a majority.
    pub fn quorum_size(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ReplicationConfig {
        ReplicationConfig::new(NodeId(1), [1, 2, 3].map(NodeId).into_iter().collect())
    }

    // The defaults are valid, and each broken relation is refused with the key at fault.
    #[test]
    fn validation_names_the_key() {
        assert_eq!(three().validate(), Ok(()));
        assert_eq!(three().quorum_size(), 2);

        let mut c = three();
        c.id = NodeId(9);
        assert_eq!(
            c.validate(),
            Err(ReplicationConfigError::IdNotMember { id: NodeId(9) })
        );
        let mut c = three();
        c.observers.insert(NodeId(2));
        assert!(matches!(
            c.validate(),
            Err(ReplicationConfigError::VoterAndObserver { .. })
        ));
        let mut c = three();
        c.heartbeat_interval_ms = 500;
        assert!(matches!(
            c.validate(),
            Err(ReplicationConfigError::Timing {
                key: "heartbeat_interval_ms",
                ..
            })
        ));
        let mut c = three();
        c.election_timeout_ms_max = 500;
        assert!(matches!(
            c.validate(),
            Err(ReplicationConfigError::Timing {
                key: "election_timeout_ms_max",
                ..
            })
        ));
        let mut c = three();
        c.messages_in_flight_max = 0;
        assert_eq!(
            c.validate(),
            Err(ReplicationConfigError::ZeroBound {
                key: "messages_in_flight_max"
            })
        );
        let mut c = three();
        c.voters.clear();
        assert_eq!(c.validate(), Err(ReplicationConfigError::NoVoters));
    }

    // The defaults are the documented ones (the field docs, and README's table for
    // `paddock.peerMessageBytesMax`: 16777216), written out rather than restated.
    #[test]
    fn defaults_are_the_documented_ones() {
        let c = three();
        assert_eq!(c.message_bytes_max, 16_777_216);
        assert_eq!(c.payload_bytes_max, 1_048_576);
        assert_eq!(
            (c.entries_per_message_max, c.messages_in_flight_max),
            (64, 8)
        );
        assert_eq!(c.proposals_uncommitted_max, 4096);
        assert_eq!(
            (
                c.heartbeat_interval_ms,
                c.election_timeout_ms_min,
                c.election_timeout_ms_max
            ),
            (50, 500, 1000)
        );
    }
}
