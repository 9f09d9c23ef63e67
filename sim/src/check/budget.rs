//! The message budget: replication must not cost much more than it needs to.
//!
//! Ideally a leader sends each committed entry once to each of the other `n - 1`
//! servers. Faults make it resend (lost and rejected appends, followers that restart or
//! rejoin after a partition, leaders that change), so the bound is a factor of that
//! ideal, over the whole run: entries carried by `Append` messages, from every leader
//! to every follower, at most [`ENTRIES_SENT_PER_IDEAL_MAX`] times
//! `(n - 1) × committed entries`. Measured over 1000 seeds each of 3, 5 and 7 servers
//! under every fault, the highest ratio is about 8.3; a resend storm goes far past it
//! (a leader resending every unacknowledged entry on every heartbeat: up to 19 within
//! 500 seeds; a leader answering each stale acknowledgement of a probe with the same
//! probe while a follower's disk stalls, the storm this check found: 1500 on one seed).
//! The same bound holds for `Append` messages (empty probes included, so a probe storm
//! counts) and for the entries' payload bytes against the committed payload bytes.
//! Snapshot pieces are not entries and are not counted here. Writes that followers
//! forward to the leader, retransmissions included, stay within
//! [`FORWARDS_PER_COMMITTED_MAX`] per committed entry.
//!
//! Snapshots are for followers that need entries the leader compacted away. A leader
//! that sends one to a follower whose log still shares an entry with the leader's (its
//! start included: entries would have served) wastes a transfer the size of the whole
//! tree; more than [`SNAPSHOTS_UNNEEDED_MAX`] such transfers in a run fail it (the
//! simulator compares the two logs as they are when the first piece leaves). Correct
//! code sends one now and then: a follower that replays a backlog after a pause
//! acknowledges old entries while its log holds newer ones; measured over 9500 seeds of
//! every size and workload, at most 1 per run. A leader that forgets the conflict hint
//! and backs off to the log's start sends dozens.
//!
//! Runs too short to judge (fewer than [`COMMITTED_MIN`] committed entries) and runs
//! that started from existing disks (their followers may need the whole loaded log) are
//! not checked; neither is a history without counted traffic (a real network's).

use super::Failure;
use crate::history::History;

/// Entries sent per entry of the ideal, at most (docs/consensus.md, Message budget).
pub const ENTRIES_SENT_PER_IDEAL_MAX: u64 = 12;
/// Writes forwarded by followers (retransmissions included) per committed entry, at
/// most: each write is forwarded once to each leader it meets; lost acknowledgements and
/// leader changes make a follower send it again.
pub const FORWARDS_PER_COMMITTED_MAX: u64 = 12;
/// Snapshot transfers per run to followers whose logs still met the leader's, at most.
pub const SNAPSHOTS_UNNEEDED_MAX: u64 = 3;
/// Committed entries a run needs before its traffic is judged.
pub const COMMITTED_MIN: u64 = 100;

/// Checks the run's replication traffic against the budget.
pub fn check(history: &History) -> Result<(), Failure> {
    let unneeded = history.measures.snapshots_unneeded;
    if unneeded > SNAPSHOTS_UNNEEDED_MAX {
        return Err(Failure::new(
            "budget",
            format!(
                "leaders sent {unneeded} snapshots to followers whose logs still met theirs (entries would have served), above the bound of {SNAPSHOTS_UNNEEDED_MAX}"
            ),
        ));
    }
    let committed = history.payloads.len() as u64;
    let followers = (history.applied.len() as u64).saturating_sub(1);
    let sent = history.traffic.entries;
    if sent == 0 || followers == 0 || committed < COMMITTED_MIN || !history.starts.is_empty() {
        return Ok(());
    }
    let ideal = committed * followers;
    let appends = history.traffic.appends;
    if appends > ENTRIES_SENT_PER_IDEAL_MAX * ideal {
        return Err(Failure::new(
            "budget",
            format!(
                "leaders sent {appends} appends ({sent} entries) for {committed} committed entries to {followers} followers: {:.1} times the ideal {ideal} messages, above the bound of {ENTRIES_SENT_PER_IDEAL_MAX}",
                appends as f64 / ideal as f64
            ),
        ));
    }
    let committed_bytes: u64 = history
        .payloads
        .values()
        .map(|(_, payload)| payload.len() as u64)
        .sum();
    let ideal_bytes = committed_bytes * followers;
    let bytes = history.traffic.entry_bytes;
    if bytes > ENTRIES_SENT_PER_IDEAL_MAX * ideal_bytes {
        return Err(Failure::new(
            "budget",
            format!(
                "leaders sent {bytes} bytes of entries for {committed_bytes} committed bytes to {followers} followers: {:.1} times the ideal {ideal_bytes}, above the bound of {ENTRIES_SENT_PER_IDEAL_MAX}",
                bytes as f64 / ideal_bytes.max(1) as f64
            ),
        ));
    }
    let forwarded = history.traffic.forwarded_writes;
    if forwarded > FORWARDS_PER_COMMITTED_MAX * committed {
        return Err(Failure::new(
            "budget",
            format!(
                "followers forwarded {forwarded} writes to leaders for {committed} committed entries: {:.1} per entry, above the bound of {FORWARDS_PER_COMMITTED_MAX}",
                forwarded as f64 / committed as f64
            ),
        ));
    }
    if sent > ENTRIES_SENT_PER_IDEAL_MAX * ideal {
        return Err(Failure::new(
            "budget",
            format!(
                "leaders sent {sent} entries in {} appends for {committed} committed entries to {followers} followers: {:.1} times the ideal {ideal}, above the bound of {ENTRIES_SENT_PER_IDEAL_MAX}",
                history.traffic.appends,
                sent as f64 / ideal as f64
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::history::Traffic;
    use paddock_core::ids::{NodeId, Zxid};

    fn history(committed: u64, servers: u64, entries_sent: u64) -> History {
        let mut history = History::default();
        for i in 1..=committed {
            history.payloads.insert(i, (Zxid(i), vec![0; 10]));
        }
        for id in 1..=servers {
            history.applied.insert(NodeId(id), Vec::new());
        }
        history.traffic = Traffic {
            appends: entries_sent.div_ceil(4),
            entries: entries_sent,
            entry_bytes: entries_sent * 10,
            ..Traffic::default()
        };
        history
    }

    // Empty probes and oversized entries are held to the same factor.
    #[test]
    fn a_probe_storm_or_a_byte_storm_fails() {
        let mut probes = history(500, 5, 2000);
        probes.traffic.appends = 500 * 4 * 12 + 1;
        let failure = check(&probes).unwrap_err();
        assert!(failure.event.contains("appends"), "{}", failure.event);
        let mut bytes = history(500, 5, 2000);
        bytes.traffic.entry_bytes = 500 * 10 * 4 * 12 + 1;
        let failure = check(&bytes).unwrap_err();
        assert!(
            failure.event.contains("bytes of entries"),
            "{}",
            failure.event
        );
    }

    #[test]
    fn unneeded_snapshots_beyond_the_bound_fail() {
        let mut few = history(50, 5, 0);
        few.measures.snapshots_unneeded = SNAPSHOTS_UNNEEDED_MAX;
        check(&few).unwrap();
        few.measures.snapshots_unneeded += 1;
        let failure = check(&few).unwrap_err();
        assert!(failure.event.contains("4 snapshots"), "{}", failure.event);
    }

    #[test]
    fn traffic_within_the_budget_passes_and_a_storm_fails() {
        check(&history(500, 5, 500 * 4 * 12)).unwrap();
        let failure = check(&history(500, 5, 500 * 4 * 12 + 1)).unwrap_err();
        assert_eq!(failure.checker, "budget");
        assert!(
            failure.event.contains("12.0 times the ideal 2000"),
            "{}",
            failure.event
        );
        // Too short to judge, or not counted.
        check(&history(50, 5, 1_000_000)).unwrap();
        check(&history(500, 5, 0)).unwrap();
    }
}
