//! Planted bugs: known, realistic mistakes that can be switched on, one at a time, so the
//! simulator's checkers can be shown to catch each of them (README, The simulator).
//!
//! This module and every hook that consults it exist only with the `planted-bugs` cargo
//! feature, which release builds of the real server never enable. The chosen bug travels
//! in the configurations ([`NodeConfig::plant_bug`] → [`ReplicationConfig`],
//! [`TreeConfig`], and the storage engine's `StoreConfig`), never in a global: a campaign
//! runs seeds in parallel threads, each with its own choice. This module depends on
//! nothing else in core: the hooks read it, it reads none of them.
//!
//! Each hook in core is a few lines marked `planted bug: <name>` and does what the
//! mistake would do at that very place; the unbugged path is unchanged. This module
//! does not decide whether a bug is caught: `sim/tests/planted_bugs.rs` runs seeds until a
//! checker fails.
//!
//! [`NodeConfig::plant_bug`]: crate::node::NodeConfig::plant_bug
//! [`ReplicationConfig`]: crate::replication::ReplicationConfig
//! [`TreeConfig`]: crate::tree::TreeConfig

use std::fmt;
use std::str::FromStr;

/// A known mistake that can be planted in core. Names are part of the command line
/// (`paddock-sim run --bug NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// The leader counts a majority as `voters / 2` (the `+ 1` forgotten), so it commits
    /// an entry that only a minority holds durably.
    CommitWithoutQuorum,
    /// A follower acknowledges entries as soon as it appended them in memory, before the
    /// disk reported them durable.
    AckBeforePersist,
    /// A follower that finds an entry at the same index as the leader's keeps its own
    /// instead of truncating the divergent suffix (it compares indexes, not zxids).
    NoTruncateOnSync,
    /// A voter compares logs by length only, so it votes for a candidate whose longer log
    /// ends in an older epoch than its own.
    VoteForStaleLog,
    /// `create` reads flags 3 (EPHEMERAL_SEQUENTIAL) as PERSISTENT_SEQUENTIAL, so the
    /// node outlives its session.
    EphemeralLeak,
    /// `exists` with a watch on a missing node does not register the watch, so the
    /// client never hears of the node's creation.
    OneShotWatchDropped,
    /// `sync` is answered from the local state at once instead of after the server has
    /// caught up with the leader.
    SyncNotWaiting,
    /// The sequential suffix comes from the parent's current number of children instead
    /// of its cversion, so numbers repeat after a delete.
    SequenceFromChildCount,
    /// Committed entries are applied in the order of their zxid's counter (the low 32
    /// bits), so a batch that spans an epoch change runs out of order.
    ApplyOutOfOrder,
    /// A new leader keeps the session deadlines of its follower days instead of giving
    /// every session a full timeout from its own clock, so sessions whose clients kept
    /// pinging other servers expire on a leader change.
    LostSessionOnLeaderChange,
    /// Watch events are delivered without checking READ (the leak of CVE-2024-23944), so
    /// a session learns of changes to nodes it may not read.
    WatchReadUnchecked,
    /// The storage engine carries on after a failed `fsync`, as if it had succeeded (the
    /// PostgreSQL "fsyncgate" mistake): the node acknowledges writes the disk may not hold.
    IgnoreFailedFsync,
    /// Recovery trusts the log it reads back after a restart although the bytes written
    /// since the last successful sync may live only in the page cache (a failed `fsync`
    /// marks them clean without writing them): it does not make them durable before the
    /// node counts them.
    TrustUnsyncedSuffix,
    /// A member whose newest log segment was lost votes and campaigns at once instead of
    /// waiting for a leader to re-sync it, so its vote can elect a leader that lacks an
    /// entry it had acknowledged.
    VoteAfterLostLog,
    /// On every heartbeat the leader sends again every entry a follower has not
    /// acknowledged yet (from its match point), instead of trusting the pipeline: a
    /// resend storm that no safety checker sees.
    ResendEveryHeartbeat,
    /// The leader's check-quorum never finds a quorum missing, so a leader cut off from
    /// the others keeps acting as leader (accepting writes it cannot commit, serving
    /// reads) long after a new leader was elected behind it.
    CheckQuorumDisabled,
    /// Every acknowledgement sends the follower back to probing, so the leader has one
    /// `Append` in flight at a time: each waits a round trip for the one before.
    NeverPipelined,
    /// Once a snapshot is durable the log before it is kept anyway: memory grows with
    /// every write for as long as the server runs.
    UnboundedLogRetention,
    /// Every applied write scans the whole tree (recounting ephemerals for a status
    /// figure): a write's cost grows with the tree instead of with what it touches.
    ScanTreePerWrite,
    /// A rejected append sends the follower back to the start of the leader's log, the
    /// conflict hint ignored: a follower missing one entry gets the whole log again, or
    /// the whole snapshot once the log was compacted.
    ConflictHintIgnored,
}

impl Bug {
    /// Every bug, in the order of the issue.
    pub const ALL: [Bug; 20] = [
        Bug::CommitWithoutQuorum,
        Bug::AckBeforePersist,
        Bug::NoTruncateOnSync,
        Bug::VoteForStaleLog,
        Bug::EphemeralLeak,
        Bug::OneShotWatchDropped,
        Bug::SyncNotWaiting,
        Bug::SequenceFromChildCount,
        Bug::ApplyOutOfOrder,
        Bug::LostSessionOnLeaderChange,
        Bug::WatchReadUnchecked,
        Bug::IgnoreFailedFsync,
        Bug::TrustUnsyncedSuffix,
        Bug::VoteAfterLostLog,
        Bug::ResendEveryHeartbeat,
        Bug::CheckQuorumDisabled,
        Bug::NeverPipelined,
        Bug::UnboundedLogRetention,
        Bug::ScanTreePerWrite,
        Bug::ConflictHintIgnored,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Bug::CommitWithoutQuorum => "commit-without-quorum",
            Bug::AckBeforePersist => "ack-before-persist",
            Bug::NoTruncateOnSync => "no-truncate-on-sync",
            Bug::VoteForStaleLog => "vote-for-stale-log",
            Bug::EphemeralLeak => "ephemeral-leak",
            Bug::OneShotWatchDropped => "one-shot-watch-dropped",
            Bug::SyncNotWaiting => "sync-not-waiting",
            Bug::SequenceFromChildCount => "sequence-from-child-count",
            Bug::ApplyOutOfOrder => "apply-out-of-order",
            Bug::LostSessionOnLeaderChange => "lost-session-on-leader-change",
            Bug::WatchReadUnchecked => "watch-read-unchecked",
            Bug::IgnoreFailedFsync => "ignore-failed-fsync",
            Bug::TrustUnsyncedSuffix => "trust-unsynced-suffix",
            Bug::VoteAfterLostLog => "vote-after-lost-log",
            Bug::ResendEveryHeartbeat => "resend-every-heartbeat",
            Bug::CheckQuorumDisabled => "check-quorum-disabled",
            Bug::NeverPipelined => "never-pipelined",
            Bug::UnboundedLogRetention => "unbounded-log-retention",
            Bug::ScanTreePerWrite => "scan-tree-per-write",
            Bug::ConflictHintIgnored => "conflict-hint-ignored",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Bug::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bug {name:?}; expected one of {}", Bug::ALL.map(Bug::name).join(", "))]
pub struct UnknownBug {
    /// The name given.
    pub name: String,
}

impl FromStr for Bug {
    type Err = UnknownBug;

    fn from_str(name: &str) -> Result<Bug, UnknownBug> {
        Bug::ALL
            .into_iter()
            .find(|bug| bug.name() == name)
            .ok_or_else(|| UnknownBug {
                name: name.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Every bug parses back from its own name, and a wrong name is refused with the list.
    #[test]
    fn names_round_trip() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>(), Ok(bug));
        }
        let err = "commit-without-majority".parse::<Bug>().unwrap_err();
        assert!(err.to_string().contains("commit-without-quorum"));
    }
}
