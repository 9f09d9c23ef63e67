//! `disk`: the thread that performs the node's persist outputs on [`Storage`], in order,
//! with group commit, and reports each completion back to the event loop.
//!
//! Group commit: the thread takes one request, then everything else already queued (up to
//! [`DISK_BATCH_REQUESTS_MAX`]), writes it all, calls `fdatasync` once, and only then
//! sends the completions, in request order. A completion therefore never overtakes the
//! sync that makes it true (docs/consensus.md §14: acknowledge only after durability).
//!
//! On any I/O error the thread reports [`DiskEvent::Failed`] and stops: a node that cannot
//! persist must not acknowledge anything more, so the runtime shuts down.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paddock_core::ids::NodeId;
use paddock_core::node::{Input, NodeSnapshot, Persist};
use paddock_core::replication::{SnapshotMeta, SnapshotSend};

use crate::peer::Peers;
use crate::storage::{SnapshotFiles, Storage, StorageError};

/// Most requests written behind one `fdatasync`, in requests (ZooKeeper flushes after
/// 1000 pending transactions, `zookeeper.maxBatchSize`).
pub const DISK_BATCH_REQUESTS_MAX: usize = 1000;

/// What the disk thread is asked to do: the node's writes, in order, and the news from
/// the snapshot thread.
#[derive(Debug)]
pub enum DiskRequest {
    /// An `Output::Persist` of the node other than `Persist::WriteSnapshot` (whose file
    /// the snapshot thread writes: [`encode_snapshot_then_write`]).
    Persist(Persist),
    /// The file of a `Persist::WriteSnapshot` is durable.
    SnapshotWritten {
        /// What it covers.
        meta: SnapshotMeta,
    },
    /// The snapshot thread could not write its file: the disk has failed.
    SnapshotFailed(String),
}

/// Encodes a snapshot the node took and writes its file, in the background
/// ([`run_in_background`]), then tells the disk thread ([`DiskRequest::SnapshotWritten`]):
/// the state is an O(1) copy of the node's, so neither the event loop nor the log writes
/// behind it wait for the encoding or the writing of a large tree. (A snapshot covers
/// only entries this server has made durable, so its file may become durable before log
/// writes queued earlier.) The node takes one snapshot at a time, so at most one such
/// thread runs.
pub fn encode_snapshot_then_write(
    meta: SnapshotMeta,
    state: Box<NodeSnapshot>,
    files: SnapshotFiles,
    disk: &Sender<DiskRequest>,
) {
    run_in_background(
        "paddock-snapshot",
        (state, files, disk.clone()),
        move |(state, mut files, disk)| {
            let written = files.write_state(meta, &state);
            drop(state);
            let request = match written {
                Ok(()) => DiskRequest::SnapshotWritten { meta },
                Err(error) => DiskRequest::SnapshotFailed(error.to_string()),
            };
            let _ = disk.send(request);
        },
    );
}

/// The peers a background thread is sending snapshot pieces to, each with the request
/// it is to serve next (the newest asked while it was busy).
pub type PieceSenders = Arc<Mutex<BTreeMap<NodeId, Option<SnapshotSend>>>>;

/// Sends a peer a piece of this server's durable snapshot for `Output::PeerSnapshot`, in
/// the background ([`run_in_background`]): the piece (up to `message_bytes_max`, 16 MiB
/// by default) is read and encoded there, so the event loop never copies snapshot bytes.
/// At most one thread serves each peer; a request while it runs waits in `senders` (the
/// newest replacing an older one: the node asks for one piece at a time) and the thread
/// serves it next. A file that cannot be read is logged and the send dropped: the node
/// asks again after its retry time, and the next snapshot it takes replaces the file.
pub fn send_snapshot_piece_in_background(
    request: SnapshotSend,
    files: SnapshotFiles,
    peers: Peers,
    senders: &PieceSenders,
) {
    let Ok(mut busy) = senders.lock() else {
        return;
    };
    if let Some(next) = busy.get_mut(&request.to) {
        *next = Some(request);
        return;
    }
    busy.insert(request.to, None);
    drop(busy);
    let senders = Arc::clone(senders);
    run_in_background(
        "paddock-snapshot-send",
        (files, peers),
        move |(mut files, peers)| {
            let mut request = request;
            loop {
                send_snapshot_piece(request, &mut files, &peers);
                let Ok(mut busy) = senders.lock() else {
                    return;
                };
                match busy.get_mut(&request.to).and_then(Option::take) {
                    Some(next) => request = next,
                    None => {
                        busy.remove(&request.to);
                        return;
                    }
                }
            }
        },
    );
}

fn send_snapshot_piece(request: SnapshotSend, files: &mut SnapshotFiles, peers: &Peers) {
    let SnapshotSend {
        to, meta, offset, ..
    } = request;
    match files.read_piece(&request) {
        Ok(Some(msg)) => {
            if offset == 0 {
                tracing::info!(peer = to.0, index = meta.index, "sending a snapshot");
            }
            peers.send(to, &msg);
        }
        Ok(None) => {
            tracing::debug!(
                peer = to.0,
                index = meta.index,
                "no snapshot file that new yet; the node retries"
            );
        }
        Err(error) => {
            tracing::warn!(peer = to.0, %error, "cannot read the snapshot to send; the node retries");
        }
    }
}

/// Runs `work(value)` on a short-lived thread named `name` at a lower priority
/// ([`lower_priority`]), or on the caller's thread (at its own priority) if no thread can
/// start: background work (encoding a snapshot, freeing what the node released) must
/// still happen then.
pub fn run_in_background<T: Send + 'static>(
    name: &str,
    value: T,
    work: impl FnOnce(T) + Send + 'static,
) {
    // The value and the work sit in a slot both the thread and a failed spawn can reach:
    // a failed `spawn` drops its closure, and the work must still be done.
    let slot = Arc::new(Mutex::new(Some((value, work))));
    let take = |slot: &Mutex<Option<(T, _)>>| slot.lock().ok().and_then(|mut taken| taken.take());
    let job = {
        let slot = Arc::clone(&slot);
        move || {
            lower_priority();
            if let Some((value, work)) = take(&slot) {
                work(value);
            }
        }
    };
    if let Err(error) = std::thread::Builder::new().name(name.to_owned()).spawn(job) {
        tracing::warn!(%error, name, "no thread for background work: doing it on the event loop");
        if let Some((value, work)) = take(&slot) {
            work(value);
        }
    }
}

/// What the disk thread tells the event loop.
#[derive(Debug)]
pub enum DiskEvent {
    /// A request is durable: feed this input to the node.
    Done(Input),
    /// Persisting failed; the thread has stopped.
    Failed(String),
}

/// How the disk thread purges old files.
#[derive(Debug, Clone, Copy)]
pub struct PurgePolicy {
    /// Time between purges; `None` disables purging (`autopurge.purgeInterval=0`).
    pub interval: Option<Duration>,
}

/// Runs the disk thread until `requests` closes or `deliver` refuses an event (returns
/// false: the event loop is gone). `deliver` hands each completion straight to the event
/// loop's queue, with no thread in between.
pub fn run(
    mut storage: Storage,
    requests: Receiver<DiskRequest>,
    mut deliver: impl FnMut(DiskEvent) -> bool,
    purge: PurgePolicy,
    fsync: &crate::four_letter::Summary,
) {
    // The first snapshot after start purges at once, as ZooKeeper's purge task runs when
    // the server starts; later ones wait for the interval.
    let mut purged_at: Option<Instant> = None;
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        while batch.len() < DISK_BATCH_REQUESTS_MAX {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let done = match run_batch(&mut storage, batch, fsync) {
            Ok(done) => done,
            Err(error) => {
                tracing::error!(%error, "disk write failed; stopping");
                deliver(DiskEvent::Failed(error.to_string()));
                return;
            }
        };
        let snapshot_taken = done
            .iter()
            .any(|input| matches!(input, Input::SnapshotWritten { .. }));
        for input in done {
            if !deliver(DiskEvent::Done(input)) {
                return;
            }
        }
        if let Some(interval) = purge.interval
            && snapshot_taken
            && purged_at.is_none_or(|at| at.elapsed() >= interval)
        {
            purged_at = Some(Instant::now());
            match storage.purge() {
                Ok(removed) => tracing::info!(removed, "purged old snapshots and logs"),
                Err(error) => tracing::warn!(%error, "purge failed"),
            }
        }
    }
}

/// Writes a batch, syncs once, and returns the completions in request order.
fn run_batch(
    storage: &mut Storage,
    batch: Vec<DiskRequest>,
    fsync: &crate::four_letter::Summary,
) -> Result<Vec<Input>, StorageError> {
    let mut done = Vec::with_capacity(batch.len());
    for request in batch {
        let completion = match request {
            DiskRequest::Persist(write) => write.perform(storage)?,
            DiskRequest::SnapshotWritten { meta } => {
                storage.snapshot_written(meta)?;
                Some(Input::SnapshotWritten { meta })
            }
            DiskRequest::SnapshotFailed(reason) => {
                return Err(StorageError::Snapshot(reason));
            }
        };
        done.extend(completion);
    }
    let syncing = Instant::now();
    storage.sync()?;
    fsync.record(syncing.elapsed());
    Ok(done)
}

/// Background work (encoding a snapshot, freeing what the node released) yields the
/// CPU to the event loop, client and disk threads: this thread's nice value goes up by
/// [`BACKGROUND_NICE`]. On a machine with few cores a snapshot of 10^6 znodes takes a
/// core for about a second, and requests would otherwise wait behind it. Only the
/// calling thread changes (Linux gives every thread its own nice value); when the
/// system refuses, nothing changes.
pub fn lower_priority() {
    // On Linux `PRIO_PROCESS` with a thread id names that one thread.
    let tid = Some(rustix::thread::gettid());
    let result = rustix::process::getpriority_process(tid).and_then(|current| {
        rustix::process::setpriority_process(tid, current.saturating_add(BACKGROUND_NICE))
    });
    if let Err(error) = result {
        tracing::debug!(%error, "could not lower a background thread's priority");
    }
}

/// How much [`lower_priority`] raises a background thread's nice value.
const BACKGROUND_NICE: i32 = 19;
