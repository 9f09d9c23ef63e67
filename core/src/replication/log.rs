//! `ReplicaLog`: the in-memory copy of one replica's log, the entries after its latest
//! snapshot.
//!
//! Invariants (asserted): entries are contiguous from `snapshot.index + 1`; zxids strictly
//! increase along the log (so epochs never decrease); truncation never reaches into the
//! snapshot. The log knows nothing about durability or commit: `Replica` tracks which
//! prefix is durable and committed, and emits the outputs that make the disk follow.

use crate::ids::{Epoch, Zxid};

use super::message::{Entry, SnapshotMeta};

/// Why the durable state handed to `Replica::new` cannot be a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// Entries do not follow the snapshot contiguously or their zxids do not increase.
    #[error("log entry {index} does not follow the entry before it")]
    OutOfOrder {
        /// Index of the first entry out of order.
        index: u64,
    },
}

/// The entries after a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplicaLog {
    snapshot: SnapshotMeta,
    entries: Vec<Entry>,
}

impl ReplicaLog {
    /// A log from what recovery found on disk, checked for order.
    pub(crate) fn new(snapshot: SnapshotMeta, entries: Vec<Entry>) -> Result<Self, LogError> {
        let (mut index_before, mut zxid_before) = (snapshot.index, snapshot.zxid);
        for entry in &entries {
            if Some(entry.index) != index_before.checked_add(1) || entry.zxid <= zxid_before {
                return Err(LogError::OutOfOrder { index: entry.index });
            }
            (index_before, zxid_before) = (entry.index, entry.zxid);
        }
        Ok(ReplicaLog { snapshot, entries })
    }

    /// The snapshot the log starts after.
    pub(crate) fn snapshot(&self) -> SnapshotMeta {
        self.snapshot
    }

    /// Index of the last entry (the snapshot index when the log is empty).
    pub(crate) fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.snapshot.index, |e| e.index)
    }

    /// Zxid of the last entry (the snapshot zxid when the log is empty).
    pub(crate) fn last_zxid(&self) -> Zxid {
        self.entries.last().map_or(self.snapshot.zxid, |e| e.zxid)
    }

    /// Zxid at `index`: the snapshot's zxid at the snapshot index, `None` when the entry
    /// was compacted away or does not exist yet.
    pub(crate) fn zxid_at(&self, index: u64) -> Option<Zxid> {
        if index == self.snapshot.index {
            return Some(self.snapshot.zxid);
        }
        self.entry(index).map(|e| e.zxid)
    }

    /// The entry at `index`, if it is in the log (not compacted, not beyond the end).
    pub(crate) fn entry(&self, index: u64) -> Option<&Entry> {
        let offset = index.checked_sub(self.snapshot.index + 1)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Up to `count_max` entries starting at `from` (clones), fewer at the end of the log
    /// or where their payloads would add up to more than `bytes_max` (the first entry is
    /// always included, so a follower is never starved by one large entry).
    pub(crate) fn slice(&self, from: u64, count_max: u64, bytes_max: u64) -> Vec<Entry> {
        assert!(
            from > self.snapshot.index,
            "slice from {from} reaches into the snapshot at {}",
            self.snapshot.index
        );
        let offset = usize::try_from(from - self.snapshot.index - 1).unwrap_or(usize::MAX);
        let count = usize::try_from(count_max).unwrap_or(usize::MAX);
        let mut bytes = 0u64;
        self.entries
            .iter()
            .skip(offset)
            .take(count)
            .take_while(|entry| {
                let first = bytes == 0;
                bytes = bytes.saturating_add(entry.payload.len() as u64).max(1);
                first || bytes <= bytes_max
            })
            .cloned()
            .collect()
    }

    /// Appends one entry after the last.
    pub(crate) fn append(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index() + 1,
            "log append out of order"
        );
        assert!(
            entry.zxid > self.last_zxid(),
            "zxid {} not above last zxid {}",
            entry.zxid,
            self.last_zxid()
        );
        self.entries.push(entry);
    }

    /// Drops every entry after `index`.
    pub(crate) fn truncate_after(&mut self, index: u64) {
        assert!(
            index >= self.snapshot.index,
            "truncate after {index} reaches into the snapshot at {}",
            self.snapshot.index
        );
        let keep = usize::try_from(index - self.snapshot.index).unwrap_or(usize::MAX);
        self.entries.truncate(keep);
    }

    /// Forgets the entries up to `meta.index`, which a snapshot now covers.
    /// Returns the entries forgotten, oldest first.
    pub(crate) fn compact(&mut self, meta: SnapshotMeta) -> Vec<Entry> {
        assert_eq!(
            self.zxid_at(meta.index),
            Some(meta.zxid),
            "compact at unknown entry"
        );
        let drop = usize::try_from(meta.index - self.snapshot.index).unwrap_or(usize::MAX);
        let kept = self.entries.split_off(drop.min(self.entries.len()));
        self.snapshot = meta;
        std::mem::replace(&mut self.entries, kept)
    }

    /// The index up to which the log may be cut while the entries after it, up to `upto`,
    /// still hold at most `bytes_max` bytes (payloads plus `size_of::<Entry>()` each):
    /// `upto` itself when even its own entry is larger; the log's start when everything
    /// up to `upto` fits.
    pub(crate) fn index_keeping_bytes(&self, upto: u64, bytes_max: u64) -> u64 {
        let upto = upto.min(self.last_index());
        let mut kept = 0u64;
        let mut index = upto;
        while index > self.snapshot.index {
            let offset = usize::try_from(index - self.snapshot.index - 1).unwrap_or(usize::MAX);
            let Some(entry) = self.entries.get(offset) else {
                break;
            };
            kept = kept
                .saturating_add(entry.payload.len() as u64)
                .saturating_add(std::mem::size_of::<Entry>() as u64);
            if kept > bytes_max {
                break;
            }
            index -= 1;
        }
        index
    }

    /// Replaces the whole log by a snapshot received from the leader.
    pub(crate) fn reset(&mut self, meta: SnapshotMeta) {
        self.entries.clear();
        self.snapshot = meta;
    }

    /// The largest index at or below `index` whose epoch is at most `epoch`, with that
    /// epoch; stops at the snapshot. This is the conflict hint of docs/consensus.md
    /// ("fast back-off"), computed the same way on both sides.
    pub(crate) fn find_conflict_by_epoch(&self, index: u64, epoch: Epoch) -> (u64, Epoch) {
        let mut at = index.min(self.last_index());
        while at > self.snapshot.index {
            let entry_epoch = self.entry(at).map_or(Epoch(0), Entry::epoch);
            if entry_epoch <= epoch {
                return (at, entry_epoch);
            }
            at -= 1;
        }
        (self.snapshot.index, self.snapshot.zxid.epoch())
    }

    /// Raft's voting rule: a log ending at `(last_zxid, last_index)` is at least as up to
    /// date as this one when its last epoch is higher, or equal with an index as high.
    pub(crate) fn is_up_to_date(&self, last_index: u64, last_zxid: Zxid) -> bool {
        (last_zxid.epoch(), last_index) >= (self.last_zxid().epoch(), self.last_index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(snapshot_index: u64, epochs: &[u32]) -> ReplicaLog {
        let snapshot = if snapshot_index == 0 {
            SnapshotMeta::default()
        } else {
            SnapshotMeta {
                index: snapshot_index,
                zxid: Zxid::new(Epoch(1), snapshot_index as u32),
            }
        };
        let mut counter = 1000;
        let entries = epochs
            .iter()
            .enumerate()
            .map(|(i, e)| {
                counter += 1;
                Entry {
                    index: snapshot_index + 1 + i as u64,
                    zxid: Zxid::new(Epoch(*e), counter),
                    payload: vec![],
                }
            })
            .collect();
        ReplicaLog::new(snapshot, entries).expect("test log is ordered")
    }

    // Positions map to entries across the snapshot boundary; compacted and future
    // positions have no zxid.
    #[test]
    fn positions_after_snapshot() {
        let log = log_of(5, &[1, 2, 2]);
        assert_eq!(log.last_index(), 8);
        assert_eq!(log.zxid_at(5), Some(Zxid::new(Epoch(1), 5)));
        assert_eq!(log.zxid_at(6).map(Zxid::epoch), Some(Epoch(1)));
        assert_eq!(log.zxid_at(4), None);
        assert_eq!(log.zxid_at(9), None);
        assert_eq!(log.slice(7, 10, u64::MAX).len(), 2);
        assert_eq!(log.slice(6, 1, u64::MAX)[0].index, 6);
    }

    // An append is bounded in payload bytes too, but always carries at least one entry
    // (an entry above the bound would otherwise never be sent).
    #[test]
    fn slice_is_bounded_in_bytes_with_at_least_one_entry() {
        let mut log = log_of(0, &[1, 1, 1, 1]);
        for entry in &mut log.entries {
            entry.payload = vec![0; 10];
        }
        assert_eq!(log.slice(1, 10, 25).len(), 2);
        assert_eq!(log.slice(1, 10, 30).len(), 3);
        assert_eq!(
            log.slice(1, 10, 3).len(),
            1,
            "one entry even above the bound"
        );
        assert_eq!(log.slice(2, 2, u64::MAX).len(), 2, "the count bound holds");
    }

    // The tail kept behind a cut is bounded in bytes: entries are counted back from
    // `upto` (payload plus a fixed cost each) until the next one would pass the budget.
    #[test]
    fn index_keeping_bytes_counts_back_from_upto() {
        let mut log = log_of(5, &[1, 1, 1, 1, 1]);
        for entry in &mut log.entries {
            entry.payload = vec![0; 60];
        }
        let each = 60 + std::mem::size_of::<Entry>() as u64;
        assert_eq!(log.index_keeping_bytes(9, 0), 9, "nothing kept");
        assert_eq!(log.index_keeping_bytes(9, each), 8, "entry 9 kept");
        assert_eq!(
            log.index_keeping_bytes(9, 3 * each - 1),
            7,
            "two fit, not three"
        );
        assert_eq!(log.index_keeping_bytes(8, 3 * each), 5, "6..=8 fit");
        assert_eq!(log.index_keeping_bytes(10, u64::MAX), 5, "the log's start");
        assert_eq!(
            log.index_keeping_bytes(20, each),
            9,
            "capped at the last entry"
        );
    }

    // Truncation and compaction move the ends of the log and keep the rest.
    #[test]
    fn truncate_and_compact() {
        let mut log = log_of(0, &[1, 1, 2, 2]);
        log.truncate_after(2);
        assert_eq!(log.last_index(), 2);
        let meta = SnapshotMeta {
            index: 1,
            zxid: log.zxid_at(1).expect("entry 1 exists"),
        };
        log.compact(meta);
        assert_eq!(log.snapshot(), meta);
        assert_eq!(log.last_index(), 2);
        assert_eq!(log.zxid_at(0), None);
    }

    // The conflict hint skips every entry of an epoch newer than the leader's.
    #[test]
    fn conflict_hint_skips_newer_epochs() {
        let log = log_of(0, &[1, 1, 3, 3, 3]);
        assert_eq!(log.find_conflict_by_epoch(5, Epoch(2)), (2, Epoch(1)));
        assert_eq!(log.find_conflict_by_epoch(9, Epoch(3)), (5, Epoch(3)));
        assert_eq!(log.find_conflict_by_epoch(5, Epoch(0)), (0, Epoch(0)));
        // Past every entry, the search stops at the snapshot and names the snapshot's
        // epoch (1 here), not an epoch of no entry.
        let compacted = log_of(4, &[3, 3]);
        assert_eq!(compacted.find_conflict_by_epoch(6, Epoch(2)), (4, Epoch(1)));
    }

    // A recovered log out of order is refused, not trusted.
    #[test]
    fn recovered_log_must_be_ordered() {
        let e = |index, counter| Entry {
            index,
            zxid: Zxid::new(Epoch(1), counter),
            payload: vec![],
        };
        let bad = ReplicaLog::new(SnapshotMeta::default(), vec![e(1, 1), e(3, 2)]);
        assert_eq!(bad, Err(LogError::OutOfOrder { index: 3 }));
        let bad = ReplicaLog::new(SnapshotMeta::default(), vec![e(1, 2), e(2, 2)]);
        assert_eq!(bad, Err(LogError::OutOfOrder { index: 2 }));
    }

    // The voting rule compares the last epoch first, then the index.
    #[test]
    fn up_to_date_rule() {
        let log = log_of(0, &[1, 2]);
        assert!(log.is_up_to_date(2, Zxid::new(Epoch(2), 1)));
        assert!(log.is_up_to_date(1, Zxid::new(Epoch(3), 1)));
        assert!(!log.is_up_to_date(5, Zxid::new(Epoch(1), 9)));
        assert!(!log.is_up_to_date(1, Zxid::new(Epoch(2), 1)));
    }
}
