//! A simulated disk per server: the server's storage engine (`paddock_core::storage::Store`,
//! the same code and byte layout the real server runs) over in-memory files
//! (`MemFiles`) that keep what a crash would leave. Writes complete in order after a
//! latency (the fsync), each batch of due writes followed by one sync, as the real disk
//! thread's group commit does.
//!
//! Faults: a crash loses every write whose sync has not returned, except that a log
//! append in flight may tear (it is performed and written without its sync, and the
//! crash keeps a prefix of its bytes); a bit flip damages a synced record that another
//! record follows, so recovery must refuse the disk rather than cut it as a torn tail.
//! Restart runs the store's recovery over the files, exactly as the real runtime does.

use std::collections::VecDeque;

use crate::decide::Decisions;
use paddock_core::limits::Limits;
use paddock_core::node::{Input, PeerMessage, Persist};
use paddock_core::replication::{DurableState, SnapshotSend};
use paddock_core::storage::{Dir, Injected, MemFiles, Store, StoreConfig, StoreError};
use rand::RngExt;

/// Why a disk cannot be recovered or written; the server must not start from it.
pub type DiskError = StoreError;

/// Bytes per log segment before the next append starts a new one: small, so runs roll,
/// pad and purge segments often.
const SEGMENT_ROLL_BYTES: u64 = 16 * 1024;

/// The store's layout in the simulator: the server's rules at a smaller scale.
pub fn store_config(limits: Limits) -> StoreConfig {
    StoreConfig {
        segment_roll_bytes: SEGMENT_ROLL_BYTES,
        segment_pad_bytes: 4 * 1024,
        segment_pad_bytes_min: 2 * 1024,
        snapshots_retained: 2,
        ..StoreConfig::new(limits)
    }
}

/// The files, and the engine over them while the server runs.
#[derive(Debug)]
enum State {
    /// The server runs on these files (opened by its last recovery).
    Open(Box<Store<MemFiles>>),
    /// The server is down (or never started): the files as the crash left them.
    Closed(MemFiles),
}

/// One server's disk.
#[derive(Debug)]
pub struct SimDisk {
    config: StoreConfig,
    state: State,
    pending: VecDeque<(u64, Persist)>,
    busy_until_ms: u64,
    /// Writes completed since the start.
    pub writes: u64,
    /// Bits flipped in this disk's records (the disk fault).
    pub bit_flips: u64,
    /// Newest log segments this disk lost (the disk fault).
    pub lost_segments: u64,
}

impl SimDisk {
    /// An empty disk whose records obey `limits`.
    pub fn new(limits: Limits) -> SimDisk {
        SimDisk::with_files(limits, MemFiles::new())
    }

    /// A disk holding `files` (a saved or real data directory).
    pub fn with_files(limits: Limits, files: MemFiles) -> SimDisk {
        SimDisk {
            config: store_config(limits),
            state: State::Closed(files),
            pending: VecDeque::new(),
            busy_until_ms: 0,
            writes: 0,
            bit_flips: 0,
            lost_segments: 0,
        }
    }

    /// The files as they are now.
    pub fn files(&self) -> &MemFiles {
        match &self.state {
            State::Open(store) => store.files(),
            State::Closed(files) => files,
        }
    }

    fn take_files(&mut self) -> MemFiles {
        let state = std::mem::replace(&mut self.state, State::Closed(MemFiles::new()));
        match state {
            State::Open(store) => store.into_files(),
            State::Closed(files) => files,
        }
    }

    /// Queues a write; returns when it completes (true time, ms).
    pub fn submit(&mut self, now_ms: u64, latency_ms: u64, op: Persist) -> u64 {
        let at = self.busy_until_ms.max(now_ms) + latency_ms;
        self.busy_until_ms = at;
        self.pending.push_back((at, op));
        at
    }

    /// Plants a bug in this disk's storage engine.
    #[cfg(feature = "planted-bugs")]
    pub fn plant_bug(&mut self, bug: Option<paddock_core::bugs::Bug>) {
        self.config.bug = bug;
    }

    /// Completes every write due by `now_ms`, in order, then syncs once; returns what to
    /// tell the node. With `inject`, that failure is armed for the batch (it fires at the
    /// first matching file operation, if any). An error means the disk failed: the
    /// server must stop.
    pub fn complete(
        &mut self,
        now_ms: u64,
        inject: Option<Injected>,
    ) -> Result<Vec<Input>, DiskError> {
        let State::Open(store) = &mut self.state else {
            self.pending.clear();
            return Ok(Vec::new());
        };
        if let Some(fault) = inject {
            store.files_mut().arm(fault);
        }
        let done = Self::complete_batch(store, &mut self.pending, &mut self.writes, now_ms);
        store.files_mut().disarm();
        done
    }

    fn complete_batch(
        store: &mut Store<MemFiles>,
        pending: &mut VecDeque<(u64, Persist)>,
        writes: &mut u64,
        now_ms: u64,
    ) -> Result<Vec<Input>, DiskError> {
        let mut inputs = Vec::new();
        let mut snapshot_taken = false;
        while pending.front().is_some_and(|(at, _)| *at <= now_ms) {
            let Some((_, op)) = pending.pop_front() else {
                break;
            };
            *writes += 1;
            snapshot_taken |= matches!(op, Persist::WriteSnapshot { .. });
            if let Some(input) = op.perform(store)? {
                inputs.push(input);
            }
        }
        store.sync()?;
        if snapshot_taken {
            store.purge()?;
        }
        Ok(inputs)
    }

    /// The message carrying a piece of the newest snapshot file, read as a runtime does
    /// for `Output::PeerSnapshot`, when it covers at least the snapshot asked for.
    pub fn snapshot_piece(&mut self, send: &SnapshotSend) -> Option<PeerMessage> {
        match &mut self.state {
            State::Open(store) => PeerMessage::snapshot_piece_read(store.files_mut(), send),
            State::Closed(files) => PeerMessage::snapshot_piece_read(files, send),
        }
        .ok()
        .flatten()
    }

    /// The process stopped (its disk failed) but the machine did not: writes not yet done
    /// are dropped, and the files stay as they are, page cache included (bytes a failed
    /// sync never wrote are still read back).
    pub fn stop(&mut self) {
        self.pending.clear();
        self.busy_until_ms = 0;
        let files = self.take_files();
        self.state = State::Closed(files);
    }

    /// The machine lost power: writes whose sync has not returned are lost, except that with
    /// `torn_per_mille` a log append in flight is performed without its sync and that
    /// share of its unsynced bytes (rounded down) reaches the disk. Returns how many bytes
    /// were torn in, if any.
    pub fn crash(&mut self, torn_per_mille: Option<u64>) -> Option<u64> {
        let first = self.pending.pop_front();
        self.pending.clear();
        self.busy_until_ms = 0;
        if let (Some(_), Some((_, op @ Persist::Entries { .. })), State::Open(store)) =
            (torn_per_mille, first, &mut self.state)
        {
            // Written but not synced; an error here just means less reached the disk.
            let _ = op.perform(store).and_then(|_| store.write_buffered());
        }
        let mut files = self.take_files();
        let share = usize::try_from(torn_per_mille.unwrap_or(0)).unwrap_or(0);
        let torn = files.crash(|_, _, unsynced| unsynced * share / 1000);
        self.state = State::Closed(files);
        Some(torn).filter(|bytes| *bytes > 0)
    }

    /// Flips one random bit of a durable record that another record follows (so recovery
    /// can tell the damage from a torn tail). Returns the record's index and the flipped
    /// byte's offset in its segment, or `None` with fewer than two records after the
    /// newest snapshot (or a disk that no longer recovers).
    pub fn flip_bit(&mut self, rng: &mut Decisions) -> Option<(u64, u64)> {
        let mut files = self.take_files();
        let flipped = (|| {
            let (store, _) = Store::open(files.clone(), self.config.clone()).ok()?;
            let indexes: Vec<u64> = store.indexes().collect();
            let last = indexes.len().checked_sub(1).filter(|n| *n > 0)?;
            let index = *indexes.get(rng.random_range(0..last))?;
            let (segment, range) = store.record_location(index)?;
            let offset = rng.random_range(range);
            let bit = rng.random_range(0..8u8);
            files
                .flip_bit(Dir::Log, segment, offset, bit)
                .then_some((index, offset))
        })();
        self.state = State::Closed(files);
        if flipped.is_some() {
            self.bit_flips += 1;
        }
        flipped
    }

    /// Loses the newest log segment file (after a crash). Returns its name, or `None`
    /// when there is no segment.
    pub fn lose_newest_segment(&mut self) -> Option<String> {
        let mut files = self.take_files();
        let newest = files
            .contents()
            .filter(|(dir, name, _)| {
                *dir == Dir::Log && name.starts_with("log.") && !name.ends_with(".tmp")
            })
            .map(|(_, name, _)| name.to_owned())
            .max();
        if let Some(name) = &newest {
            files.lose(Dir::Log, name);
            self.lost_segments += 1;
        }
        self.state = State::Closed(files);
        newest
    }

    /// Whether a fault damaged this disk (bits flipped, a segment lost).
    pub fn damaged(&self) -> bool {
        self.bit_flips > 0 || self.lost_segments > 0
    }

    /// What a restarting node finds: the store's recovery over the files (a torn tail
    /// cut, half-written files removed). An error means damage recovery must not repair:
    /// the server must not start, and its files stay as they were.
    pub fn recover(&mut self) -> Result<DurableState, DiskError> {
        let files = self.take_files();
        match Store::open(files.clone(), self.config.clone()) {
            Ok((store, opened)) => {
                self.state = State::Open(Box::new(store));
                Ok(opened.durable)
            }
            Err(error) => {
                self.state = State::Closed(files);
                Err(error)
            }
        }
    }
}
