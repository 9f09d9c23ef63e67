//! Cluster tests of `core::replication`: several `Replica`s wired together by a small
//! deterministic harness (virtual time, a seeded RNG, a network that can drop, delay
//! and partition messages, disks whose writes complete later and are lost at a crash).
//!
//! The harness checks on every step: one leader per epoch (election safety), committed
//! entries output in index order exactly once per incarnation, and every node committing
//! the same zxid and payload at each index (state-machine safety). Scenario tests then
//! check the behaviour the brief asks for; the randomized test runs many seeds with
//! partitions, crashes, loss and compaction, and finally requires the healed cluster to
//! converge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use paddock_core::ids::{Epoch, NodeId, Zxid};
use paddock_core::limits::Limits;
use paddock_core::node::Persist;
use paddock_core::replication::{
    DurableState, Entry, Input, Message, MessageBody, Output, ProposeError, Replica,
    ReplicationConfig, Role, SnapshotMeta, SnapshotSend,
};
use paddock_core::storage::{MemFiles, SnapshotPiece, Store, StoreConfig, read_snapshot_piece};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A node's disk: the storage engine over in-memory files, synced after every write.
struct Disk {
    store: Store<MemFiles>,
}

impl Disk {
    fn config() -> StoreConfig {
        StoreConfig {
            segment_roll_bytes: 4 * 1024,
            ..StoreConfig::new(Limits::default())
        }
    }

    fn new() -> Disk {
        let (store, _) = Store::open(MemFiles::new(), Disk::config()).expect("empty disk opens");
        Disk { store }
    }

    /// What a restarting node recovers from these files.
    fn durable(&mut self) -> DurableState {
        let files = std::mem::replace(&mut self.store, Disk::new().store).into_files();
        let (store, opened) = Store::open(files, Disk::config()).expect("test disks recover");
        self.store = store;
        opened.durable
    }

    /// The piece of the newest snapshot file on disk `send` asks for, when that file
    /// covers at least the snapshot asked for.
    fn snapshot_piece(&mut self, send: &SnapshotSend) -> Option<SnapshotPiece> {
        read_snapshot_piece(
            self.store.files_mut(),
            send.meta,
            send.offset,
            send.bytes_max,
        )
        .expect("in-memory read")
    }

    /// Performs a write and syncs it.
    fn write(&mut self, write: Persist) {
        write
            .perform(&mut self.store)
            .and_then(|_| self.store.sync())
            .expect("in-memory files do not fail");
    }

    /// The disk forgets every log entry after the first `kept` (a lying fsync, an old
    /// backup).
    fn lose_entries_after(&mut self, kept: usize) {
        let keep = self
            .store
            .indexes()
            .nth(kept.saturating_sub(1))
            .unwrap_or(0);
        self.write(Persist::Entries {
            truncate_after: Some(keep),
            entries: Vec::new(),
        });
    }
}

/// A write the runtime has accepted but the disk has not finished, with the input that
/// reports it.
type DiskWrite = (Persist, Option<Input>);

struct Member {
    replica: Option<Replica>,
    disk: Disk,
    /// Pending writes, completed in order, each at its time in milliseconds.
    writes: VecDeque<(u64, DiskWrite)>,
    /// The state machine: the proposal values applied, in order.
    applied: Vec<u64>,
    applied_index: u64,
    snapshots_installed: u64,
    incarnation: u64,
}

struct Cluster {
    seed: u64,
    rng: ChaCha8Rng,
    now_ms: u64,
    voters: BTreeSet<NodeId>,
    observers: BTreeSet<NodeId>,
    members: BTreeMap<NodeId, Member>,
    /// Messages in flight by (delivery time, sequence number).
    network: BTreeMap<(u64, u64), (NodeId, NodeId, Message)>,
    sequence: u64,
    /// Directed links that drop every message.
    cut: BTreeSet<(NodeId, NodeId)>,
    loss_percent: u32,
    /// Chance that a delivered message is delivered twice.
    duplicate_percent: u32,
    latency_ms_max: u64,
    disk_latency_ms_max: u64,
    /// The first zxid and payload committed at each index, by any node.
    committed: BTreeMap<u64, (Zxid, Vec<u8>)>,
    leaders: BTreeMap<Epoch, NodeId>,
    value_next: u64,
    trace_hash: u64,
    /// Rewrites (or drops, by returning `None`) each message sent: targeted faults.
    rewrite: Option<Rewrite>,
    /// When `Some`, one line per output, for transcript tests.
    transcript: Option<Vec<String>>,
}

type Rewrite = Box<dyn Fn(NodeId, NodeId, Message) -> Option<Message>>;

fn config_for(
    id: NodeId,
    voters: &BTreeSet<NodeId>,
    observers: &BTreeSet<NodeId>,
) -> ReplicationConfig {
    let mut config = ReplicationConfig::new(id, voters.clone());
    config.observers = observers.clone();
    config.heartbeat_interval_ms = 10;
    config.election_timeout_ms_min = 100;
    config.election_timeout_ms_max = 200;
    config.entries_per_message_max = 8;
    config.messages_in_flight_max = 4;
    config.proposals_uncommitted_max = 1000;
    config
}

fn snapshot_encode(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn snapshot_decode(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("chunks of 8")))
        .collect()
}

/// One output as a short line of a transcript.
fn describe(output: &Output) -> String {
    let range = |entries: &[Entry]| match (entries.first(), entries.last()) {
        (Some(first), Some(last)) => format!("{}..={}", first.index, last.index),
        _ => "none".to_string(),
    };
    match output {
        Output::Send { to, msg } => {
            let body = match &msg.body {
                MessageBody::PreVote {
                    last_index,
                    last_zxid,
                } => format!("PreVote last {last_index}@{last_zxid}"),
                MessageBody::Vote {
                    last_index,
                    last_zxid,
                } => format!("Vote last {last_index}@{last_zxid}"),
                MessageBody::Append {
                    prev_index,
                    prev_zxid,
                    entries,
                    commit_index,
                } => format!(
                    "Append prev {prev_index}@{prev_zxid} entries {} commit {commit_index}",
                    range(entries)
                ),
                other => format!("{other:?}"),
            };
            format!("-> n{} e{} {body}", to.0, msg.epoch.0)
        }
        Output::PersistHardState { hard_state } => format!(
            "persist hard state e{} voted {:?}",
            hard_state.epoch.0,
            hard_state.voted_for.map(|id| id.0)
        ),
        Output::PersistEntries {
            truncate_after,
            entries,
        } => format!(
            "persist entries {} truncate after {truncate_after:?}",
            range(entries)
        ),
        Output::InstallSnapshot { meta, .. } => {
            format!("install snapshot {}@{}", meta.index, meta.zxid)
        }
        Output::SendSnapshot(send) => {
            format!(
                "-> n{} e{} snapshot {}@{} from {}",
                send.to.0, send.epoch.0, send.meta.index, send.meta.zxid, send.offset
            )
        }
        Output::Committed { entries } => format!("committed {}", range(entries)),
        Output::LeaderChanged { epoch, leader } => {
            format!("leader e{} {:?}", epoch.0, leader.map(|id| id.0))
        }
        Output::Resynced => "resynced".to_owned(),
    }
}

/// The seed for randomized tests: `PADDOCK_SEED` when set, else `default`; printed.
fn test_seed(default: u64) -> u64 {
    let seed = std::env::var("PADDOCK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    println!("seed {seed} (rerun with PADDOCK_SEED={seed})");
    seed
}

impl Cluster {
    fn new(size: u64, seed: u64) -> Cluster {
        Cluster::with_observers(size, 0, seed)
    }

    /// Voters `1..=voters_count`, then observers after them.
    fn with_observers(voters_count: u64, observers_count: u64, seed: u64) -> Cluster {
        let voters: BTreeSet<NodeId> = (1..=voters_count).map(NodeId).collect();
        let observers: BTreeSet<NodeId> = (voters_count + 1..=voters_count + observers_count)
            .map(NodeId)
            .collect();
        let mut cluster = Cluster {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now_ms: 0,
            voters: voters.clone(),
            observers: observers.clone(),
            members: BTreeMap::new(),
            network: BTreeMap::new(),
            sequence: 0,
            cut: BTreeSet::new(),
            loss_percent: 0,
            duplicate_percent: 0,
            latency_ms_max: 5,
            disk_latency_ms_max: 3,
            committed: BTreeMap::new(),
            leaders: BTreeMap::new(),
            value_next: 0,
            trace_hash: 0xcbf2_9ce4_8422_2325,
            rewrite: None,
            transcript: None,
        };
        for id in voters.into_iter().chain(observers) {
            let member = Member {
                replica: None,
                disk: Disk::new(),
                writes: VecDeque::new(),
                applied: Vec::new(),
                applied_index: 0,
                snapshots_installed: 0,
                incarnation: 0,
            };
            cluster.members.insert(id, member);
            cluster.restart(id);
        }
        cluster
    }

    fn ids(&self) -> Vec<NodeId> {
        self.members.keys().copied().collect()
    }

    fn replica(&self, id: NodeId) -> &Replica {
        self.members[&id].replica.as_ref().expect("node is up")
    }

    /// Starts (or restarts) a node from what its disk holds.
    fn restart(&mut self, id: NodeId) {
        let config = config_for(id, &self.voters, &self.observers);
        let member = self.members.get_mut(&id).expect("member");
        member.incarnation += 1;
        let durable = member.disk.durable();
        let seed = self.seed ^ (id.0 << 48) ^ (member.incarnation << 32);
        member.applied = snapshot_decode(&durable.snapshot_bytes);
        member.applied_index = durable.snapshot.index;
        member.replica = Some(Replica::new(config, durable, seed).expect("valid durable state"));
    }

    /// Crashes a node: unfinished writes are lost, the disk keeps what finished.
    fn crash(&mut self, id: NodeId) {
        let member = self.members.get_mut(&id).expect("member");
        member.replica = None;
        member.writes.clear();
    }

    fn isolate(&mut self, id: NodeId) {
        for other in self.ids() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    fn partition(&mut self, side: &BTreeSet<NodeId>) {
        for a in self.ids() {
            for b in self.ids() {
                if side.contains(&a) != side.contains(&b) {
                    self.cut.insert((a, b));
                }
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    /// Feeds one input to a node and routes what it outputs.
    fn step(&mut self, id: NodeId, input: Input) {
        let now_ms = self.now_ms;
        let Some(replica) = self.members.get_mut(&id).and_then(|m| m.replica.as_mut()) else {
            return;
        };
        let mut out = Vec::new();
        let _ignored = replica.step(now_ms, input, &mut out);
        if replica.role() == Role::Leader {
            let epoch = replica.status().epoch;
            let first = *self.leaders.entry(epoch).or_insert(id);
            assert_eq!(
                first, id,
                "two leaders in epoch {epoch:?} (seed {})",
                self.seed
            );
        }
        for output in out {
            self.trace(id, &output);
            if let Some(lines) = &mut self.transcript {
                lines.push(format!(
                    "{:>4}ms n{} {}",
                    self.now_ms,
                    id.0,
                    describe(&output)
                ));
            }
            self.route(id, output);
        }
    }

    fn trace(&mut self, id: NodeId, output: &Output) {
        let line = format!("{} {} {:?}", self.now_ms, id.0, output);
        for byte in line.bytes() {
            self.trace_hash = (self.trace_hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn route(&mut self, id: NodeId, output: Output) {
        match output {
            Output::SendSnapshot(send) => {
                // A piece of the member's durable snapshot, when it is that one or newer
                // (a runtime may send a newer one); otherwise the send is lost.
                let Some(member) = self.members.get_mut(&id) else {
                    return;
                };
                let Some(piece) = member.disk.snapshot_piece(&send) else {
                    return;
                };
                let msg = Message {
                    epoch: send.epoch,
                    body: piece.into_body(),
                };
                self.route(id, Output::Send { to: send.to, msg });
            }
            Output::Send { to, msg } => {
                let lost = self.rng.random_range(0..100) < self.loss_percent;
                if lost || self.cut.contains(&(id, to)) {
                    return;
                }
                let msg = match &self.rewrite {
                    Some(rewrite) => match rewrite(id, to, msg) {
                        Some(msg) => msg,
                        None => return,
                    },
                    None => msg,
                };
                let copies = if self.rng.random_range(0..100) < self.duplicate_percent {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let deliver_at = self.now_ms + self.rng.random_range(1..=self.latency_ms_max);
                    self.sequence += 1;
                    self.network
                        .insert((deliver_at, self.sequence), (id, to, msg.clone()));
                }
            }
            Output::PersistHardState { hard_state } => self.disk_write(
                id,
                (
                    Persist::HardState(hard_state),
                    Some(Input::HardStatePersisted { hard_state }),
                ),
            ),
            Output::PersistEntries {
                truncate_after,
                entries,
            } => {
                let done = entries.last().map(|last| Input::Persisted {
                    index: last.index,
                    zxid: last.zxid,
                });
                let write = Persist::Entries {
                    truncate_after,
                    entries,
                };
                self.disk_write(id, (write, done));
            }
            Output::InstallSnapshot { meta, bytes } => {
                let member = self.members.get_mut(&id).expect("member");
                member.applied = snapshot_decode(&bytes);
                member.applied_index = meta.index;
                member.snapshots_installed += 1;
                let done = Some(Input::SnapshotInstalled { meta });
                self.disk_write(id, (Persist::InstallSnapshot { meta, bytes }, done));
            }
            Output::Committed { entries } => self.apply(id, entries),
            Output::LeaderChanged { .. } => {}
            Output::Resynced => self
                .members
                .get_mut(&id)
                .expect("member")
                .disk
                .write(Persist::LogResynced),
        }
    }

    fn disk_write(&mut self, id: NodeId, write: DiskWrite) {
        let latency_ms = self.rng.random_range(0..=self.disk_latency_ms_max);
        let member = self.members.get_mut(&id).expect("member");
        let after = member.writes.back().map_or(0, |(at, _)| *at);
        member
            .writes
            .push_back((after.max(self.now_ms + latency_ms), write));
    }

    fn apply(&mut self, id: NodeId, entries: Vec<Entry>) {
        let seed = self.seed;
        let member = self.members.get_mut(&id).expect("member");
        for entry in entries {
            assert_eq!(
                entry.index,
                member.applied_index + 1,
                "node {id:?} applied out of order (seed {seed})"
            );
            member.applied_index = entry.index;
            if !entry.is_new_leader() {
                member.applied.push(u64::from_be_bytes(
                    entry.payload.as_slice().try_into().unwrap(),
                ));
            }
            let first = self
                .committed
                .entry(entry.index)
                .or_insert_with(|| (entry.zxid, entry.payload.clone()));
            assert_eq!(
                (first.0, &first.1),
                (entry.zxid, &entry.payload),
                "node {id:?} committed a different entry at {} (seed {seed})",
                entry.index
            );
        }
    }

    /// Completes the earliest disk write of `id` and reports it.
    fn disk_complete(&mut self, id: NodeId) {
        let member = self.members.get_mut(&id).expect("member");
        let Some((_, write)) = member.writes.pop_front() else {
            return;
        };
        let (write, done) = write;
        member.disk.write(write);
        if let Some(input) = done {
            self.step(id, input);
        }
    }

    /// Runs every event up to `now_ms + duration_ms`, one at a time in time order.
    fn run_for(&mut self, duration_ms: u64) {
        let end_ms = self.now_ms + duration_ms;
        loop {
            let network = self.network.keys().next().map(|(at, _)| *at);
            let mut next: Option<(u64, u8, NodeId)> = network.map(|at| (at, 0, NodeId(0)));
            for (id, member) in &self.members {
                let disk = member.writes.front().map(|(at, _)| (*at, 1, *id));
                let timer = member
                    .replica
                    .as_ref()
                    .and_then(Replica::next_deadline)
                    .map(|at| (at, 2, *id));
                for candidate in [disk, timer].into_iter().flatten() {
                    if next.is_none_or(|n| candidate < n) {
                        next = Some(candidate);
                    }
                }
            }
            let Some((at, kind, id)) = next.filter(|(at, _, _)| *at <= end_ms) else {
                break;
            };
            self.now_ms = self.now_ms.max(at);
            match kind {
                0 => {
                    let (_, (from, to, msg)) = self.network.pop_first().expect("peeked");
                    self.step(to, Input::Message { from, msg });
                }
                1 => self.disk_complete(id),
                _ => self.step(id, Input::Tick),
            }
        }
        self.now_ms = end_ms;
        self.check_log_matching();
    }

    /// The live leader of the highest epoch, if any.
    fn leader(&self) -> Option<NodeId> {
        self.members
            .iter()
            .filter_map(|(id, m)| m.replica.as_ref().map(|r| (id, r)))
            .filter(|(_, r)| r.role() == Role::Leader)
            .max_by_key(|(_, r)| r.status().epoch)
            .map(|(id, _)| *id)
    }

    /// Runs until a leader of the newest epoch has committed its NEWLEADER entry (at
    /// most `limit_ms`); a deposed leader that has not yet heard of the new epoch does
    /// not count.
    fn elect(&mut self, limit_ms: u64) -> NodeId {
        for _ in 0..limit_ms / 10 {
            let epoch_max = self
                .members
                .values()
                .filter_map(|m| m.replica.as_ref().map(|r| r.status().epoch))
                .max();
            let ready = self.leader().filter(|id| {
                let status = self.replica(*id).status();
                status.leader_ready && Some(status.epoch) == epoch_max
            });
            if let Some(leader) = ready {
                return leader;
            }
            self.run_for(10);
        }
        panic!("no leader within {limit_ms} ms (seed {})", self.seed);
    }

    /// Runs until some live node leads the newest epoch, ready or not (at most
    /// `limit_ms`).
    fn wait_for_leader(&mut self, limit_ms: u64) -> NodeId {
        for _ in 0..limit_ms / 5 {
            let epoch_max = self
                .members
                .values()
                .filter_map(|m| m.replica.as_ref().map(|r| r.status().epoch))
                .max();
            let leader = self
                .leader()
                .filter(|id| Some(self.replica(*id).status().epoch) == epoch_max);
            if let Some(leader) = leader {
                return leader;
            }
            self.run_for(5);
        }
        panic!("no leader within {limit_ms} ms (seed {})", self.seed);
    }

    /// Proposes `count` new values on `id` in one batch; returns the values accepted.
    fn propose(&mut self, id: NodeId, count: u64) -> Result<Vec<u64>, ProposeError> {
        let mut values = Vec::new();
        let replica = self
            .members
            .get_mut(&id)
            .and_then(|m| m.replica.as_mut())
            .expect("node is up");
        for _ in 0..count {
            let value = self.value_next;
            replica.propose(value.to_be_bytes().to_vec())?;
            self.value_next += 1;
            values.push(value);
        }
        self.step(id, Input::Tick);
        Ok(values)
    }

    /// Snapshots node `id`'s state machine at its applied index and compacts its log.
    fn compact(&mut self, id: NodeId) {
        let member = self.members.get_mut(&id).expect("member");
        let Some(replica) = member.replica.as_mut() else {
            return;
        };
        let bytes = snapshot_encode(&member.applied);
        if let Ok(meta) = replica.compact(member.applied_index) {
            member
                .disk
                .store
                .write_snapshot(meta, &bytes)
                .and_then(|()| member.disk.store.purge().map(drop))
                .expect("in-memory files do not fail");
        }
    }

    /// Log matching: if two logs hold the same zxid at an index, they agree before it.
    fn check_log_matching(&self) {
        let live: Vec<(NodeId, &Replica)> = self
            .members
            .iter()
            .filter_map(|(id, m)| m.replica.as_ref().map(|r| (*id, r)))
            .collect();
        for (i, (a_id, a)) in live.iter().enumerate() {
            for (b_id, b) in live.iter().skip(i + 1) {
                let top = a.status().last_index.min(b.status().last_index);
                let mut matched = false;
                for index in (1..=top).rev() {
                    match (a.zxid_at(index), b.zxid_at(index)) {
                        (Some(x), Some(y)) if matched => assert_eq!(
                            x, y,
                            "logs of {a_id:?} and {b_id:?} differ at {index} below a match \
                             (seed {})",
                            self.seed
                        ),
                        (Some(x), Some(y)) => matched = x == y,
                        _ => break,
                    }
                }
            }
        }
    }

    /// Every live node has applied the same committed values.
    fn assert_converged(&self, expected: Option<&[u64]>) {
        let ids = self.ids();
        let first = &self.members[&ids[0]];
        for id in &ids {
            let member = &self.members[id];
            assert!(member.replica.is_some(), "{id:?} is down");
            assert_eq!(
                member.applied_index, first.applied_index,
                "{id:?} applied up to a different index (seed {})",
                self.seed
            );
            assert_eq!(member.applied, first.applied, "{id:?} state differs");
        }
        // Durability: nothing committed anywhere, ever, is missing at the end.
        let committed_max = self.committed.keys().next_back().copied().unwrap_or(0);
        assert!(
            first.applied_index >= committed_max,
            "entry {committed_max} was committed but is not applied everywhere (seed {})",
            self.seed
        );
        if let Some(expected) = expected {
            assert_eq!(
                first.applied, expected,
                "applied values (seed {})",
                self.seed
            );
        }
    }
}

// In clusters of 3 and 5, a leader is elected, every other node follows it, and no other
// node claims leadership of any epoch.
#[test]
fn leader_is_elected() {
    for size in [3, 5] {
        let mut cluster = Cluster::new(size, test_seed(1));
        let leader = cluster.elect(2000);
        cluster.run_for(500);
        assert_eq!(cluster.leader(), Some(leader), "leadership stays stable");
        for id in cluster.ids() {
            let status = cluster.replica(id).status();
            assert_eq!(status.leader, Some(leader), "{id:?} follows the leader");
            let role = if id == leader {
                Role::Leader
            } else {
                Role::Follower
            };
            assert_eq!(status.role, role);
        }
        assert!(cluster.replica(leader).status().leader_ready);
    }
}

// Proposals commit on every node, in proposal order, in clusters of 3 and 5; the leader
// sees every follower's match index reach its last index.
#[test]
fn proposals_commit_everywhere_in_order() {
    for size in [3, 5] {
        let mut cluster = Cluster::new(size, test_seed(2));
        let leader = cluster.elect(2000);
        let mut expected = Vec::new();
        for _ in 0..20 {
            expected.extend(cluster.propose(leader, 10).expect("leader accepts"));
            cluster.run_for(3);
        }
        cluster.run_for(500);
        cluster.assert_converged(Some(&expected));
        let status = cluster.replica(leader).status();
        assert_eq!(status.proposals_outstanding, 0);
        for follower in &status.followers {
            assert_eq!(follower.match_index, status.last_index, "{follower:?}");
        }
    }
}

// When the leader crashes, another is elected in a later epoch, nothing committed is
// lost, new proposals commit, and the old leader rejoins and catches up.
#[test]
fn leader_crash_elects_another_and_keeps_committed() {
    for size in [3, 5] {
        let mut cluster = Cluster::new(size, test_seed(3));
        let first = cluster.elect(2000);
        let mut expected = cluster.propose(first, 30).unwrap();
        cluster.run_for(200);
        assert_eq!(cluster.members[&first].applied, expected);
        let epoch_before = cluster.replica(first).status().epoch;
        cluster.crash(first);
        let second = cluster.elect(3000);
        assert_ne!(second, first);
        assert!(cluster.replica(second).status().epoch > epoch_before);
        expected.extend(cluster.propose(second, 30).unwrap());
        cluster.run_for(300);
        cluster.restart(first);
        cluster.run_for(1000);
        cluster.assert_converged(Some(&expected));
    }
}

// A follower cut off while 100 entries commit catches up from the leader's log (a diff:
// no snapshot is sent) once it can talk to the leader again.
#[test]
fn lagging_follower_catches_up_by_diff() {
    let mut cluster = Cluster::new(3, test_seed(4));
    let leader = cluster.elect(2000);
    let lagging = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.isolate(lagging);
    let mut expected = Vec::new();
    for _ in 0..10 {
        expected.extend(cluster.propose(leader, 10).unwrap());
        cluster.run_for(20);
    }
    cluster.run_for(200);
    assert!(cluster.members[&lagging].applied.is_empty());
    cluster.heal();
    cluster.run_for(1000);
    cluster.assert_converged(Some(&expected));
    assert_eq!(cluster.members[&lagging].snapshots_installed, 0);
}

// A follower that needs entries the leader has compacted away receives the snapshot,
// installs it, and then follows by diff; its state matches everyone's.
#[test]
fn lagging_follower_catches_up_by_snapshot() {
    let mut cluster = Cluster::new(3, test_seed(5));
    let leader = cluster.elect(2000);
    let lagging = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.isolate(lagging);
    let mut expected = cluster.propose(leader, 50).unwrap();
    cluster.run_for(300);
    for id in cluster.ids() {
        if id != lagging {
            cluster.compact(id);
        }
    }
    assert!(
        cluster.replica(leader).zxid_at(1).is_none(),
        "entry 1 is compacted"
    );
    expected.extend(cluster.propose(leader, 10).unwrap());
    cluster.run_for(100);
    cluster.heal();
    cluster.run_for(1000);
    cluster.assert_converged(Some(&expected));
    assert_eq!(cluster.members[&lagging].snapshots_installed, 1);
    // It restarts from the installed snapshot, not from an empty disk.
    cluster.crash(lagging);
    cluster.restart(lagging);
    let member = cluster.members.get_mut(&lagging).unwrap();
    assert!(
        member
            .disk
            .snapshot_piece(&SnapshotSend {
                to: lagging,
                epoch: Epoch(0),
                meta: SnapshotMeta::default(),
                offset: 0,
                bytes_max: 64,
            })
            .is_some_and(|piece| piece.meta.index > 50)
    );
    cluster.run_for(1000);
    cluster.assert_converged(Some(&expected));
}

// A leader cut off from the others keeps appending proposals it cannot commit; after a
// new leader commits other entries at those indexes and the partition heals, the old
// leader truncates its divergent suffix and ends up with the new leader's log.
#[test]
fn divergent_uncommitted_suffix_is_truncated() {
    let mut cluster = Cluster::new(5, test_seed(6));
    let old = cluster.elect(2000);
    let committed = cluster.propose(old, 5).unwrap();
    cluster.run_for(200);
    cluster.isolate(old);
    let lost = cluster.propose(old, 5).unwrap();
    cluster.run_for(50);
    let old_status = cluster.replica(old).status();
    assert!(
        old_status.last_index > old_status.commit_index,
        "old leader has a suffix"
    );
    let divergent_index = old_status.last_index;
    let divergent_zxid = cluster.replica(old).zxid_at(divergent_index).unwrap();

    cluster.run_for(1000);
    let new = cluster.leader().expect("majority elects a new leader");
    assert_ne!(new, old);
    let mut expected = committed.clone();
    expected.extend(cluster.propose(new, 10).unwrap());
    cluster.run_for(300);
    let new_zxid = cluster.replica(new).zxid_at(divergent_index).unwrap();
    assert_ne!(
        new_zxid, divergent_zxid,
        "the new leader's log differs there"
    );
    assert_eq!(
        cluster.replica(old).zxid_at(divergent_index),
        Some(divergent_zxid)
    );

    cluster.heal();
    cluster.run_for(1000);
    assert_eq!(
        cluster.replica(old).zxid_at(divergent_index),
        Some(new_zxid)
    );
    cluster.assert_converged(Some(&expected));
    assert!(
        lost.iter()
            .all(|v| !cluster.members[&old].applied.contains(v))
    );
}

// A leader left in a minority (with one follower, of five) steps down within an election
// timeout or two and refuses proposals, while the majority elects a new leader.
#[test]
fn minority_leader_steps_down() {
    let mut cluster = Cluster::new(5, test_seed(7));
    let old = cluster.elect(2000);
    let buddy = cluster.ids().into_iter().find(|id| *id != old).unwrap();
    cluster.partition(&BTreeSet::from([old, buddy]));
    cluster.run_for(50);
    assert_eq!(cluster.replica(old).role(), Role::Leader, "not yet");
    cluster.run_for(400);
    assert_ne!(cluster.replica(old).role(), Role::Leader);
    assert!(matches!(
        cluster.propose(old, 1),
        Err(ProposeError::NotLeader { .. })
    ));
    let new = cluster.leader().expect("majority side has a leader");
    assert_ne!(new, old);
    assert_ne!(new, buddy);
}

// A follower partitioned for many election timeouts does not raise its epoch (pre-vote
// fails), and when it rejoins the leader keeps its leadership and epoch.
#[test]
fn rejoining_server_does_not_disrupt_leader() {
    let mut cluster = Cluster::new(3, test_seed(8));
    let leader = cluster.elect(2000);
    let epoch = cluster.replica(leader).status().epoch;
    let loner = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.isolate(loner);
    cluster.run_for(3000);
    assert_eq!(
        cluster.replica(loner).status().epoch,
        epoch,
        "pre-vote kept the epoch"
    );
    assert_ne!(cluster.replica(loner).role(), Role::Leader);
    cluster.heal();
    cluster.run_for(1000);
    assert_eq!(cluster.leader(), Some(leader));
    for id in cluster.ids() {
        assert_eq!(cluster.replica(id).status().epoch, epoch, "{id:?}");
        assert_eq!(cluster.replica(id).status().leader, Some(leader), "{id:?}");
    }
}

// A crashed follower whose last writes were lost restarts from its disk, never
// acknowledged what it lost, and catches up.
#[test]
fn crashed_follower_restarts_from_disk() {
    let mut cluster = Cluster::new(3, test_seed(9));
    cluster.disk_latency_ms_max = 30;
    let leader = cluster.elect(2000);
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let mut expected = cluster.propose(leader, 20).unwrap();
    cluster.run_for(15);
    cluster.crash(follower);
    expected.extend(cluster.propose(leader, 20).unwrap());
    cluster.run_for(300);
    cluster.restart(follower);
    cluster.run_for(1000);
    cluster.assert_converged(Some(&expected));
}

// Many seeds: random cluster size, loss, partitions, crashes, restarts, compactions and
// proposals (safety checked on every step by the harness), then a healed phase that
// must elect a leader and converge with a final proposal committed everywhere.
#[test]
fn randomized_partitions_and_crashes() {
    let base = test_seed(1000);
    // PADDOCK_SEED_COUNT widens the campaign (e.g. 5000 seeds) without a code change.
    let seeds = std::env::var("PADDOCK_SEED_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if std::env::var("PADDOCK_SEED").is_ok() {
            1
        } else {
            200
        });
    for seed in base..base + seeds {
        randomized_run(seed);
    }
}

fn randomized_run(seed: u64) {
    println!("randomized run, seed {seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let size = if rng.random_range(0..2) == 0 { 3 } else { 5 };
    let mut cluster = Cluster::with_observers(size, rng.random_range(0..2), seed);
    cluster.loss_percent = rng.random_range(0..15);
    cluster.duplicate_percent = rng.random_range(0..10);
    cluster.latency_ms_max = rng.random_range(1..30);
    cluster.disk_latency_ms_max = rng.random_range(0..20);
    println!(
        "size {size}, loss {}%, duplication {}%, latency up to {} ms, disk up to {} ms",
        cluster.loss_percent,
        cluster.duplicate_percent,
        cluster.latency_ms_max,
        cluster.disk_latency_ms_max
    );
    for _ in 0..60 {
        let ids = cluster.ids();
        let id = ids[rng.random_range(0..ids.len())];
        match rng.random_range(0..10) {
            0 => cluster.isolate(id),
            1 => {
                let side: BTreeSet<NodeId> = ids
                    .iter()
                    .copied()
                    .filter(|_| rng.random_range(0..2) == 0)
                    .collect();
                cluster.partition(&side);
            }
            2 => cluster.heal(),
            3 => cluster.crash(id),
            4 => {
                if cluster.members[&id].replica.is_none() {
                    cluster.restart(id);
                }
            }
            5 => cluster.compact(id),
            _ => {
                if let Some(leader) = cluster.leader() {
                    let _ = cluster.propose(leader, rng.random_range(1..20));
                }
            }
        }
        cluster.run_for(rng.random_range(10..300));
    }
    cluster.heal();
    cluster.loss_percent = 0;
    cluster.duplicate_percent = 0;
    for id in cluster.ids() {
        if cluster.members[&id].replica.is_none() {
            cluster.restart(id);
        }
    }
    // Liveness: a leader that lost its quorum during the last partition may still step
    // down right after the heal (check-quorum) and lose an uncommitted proposal, as a
    // client would see; so, like a client, retry a few times.
    cluster.run_for(500);
    for attempt in 0.. {
        assert!(
            attempt < 5,
            "no proposal committed after the heal (seed {seed})"
        );
        let leader = cluster.elect(5000);
        let value = cluster.propose(leader, 1).expect("a fresh leader accepts")[0];
        cluster.run_for(1000);
        let everywhere = cluster.members.values().all(|m| m.applied.contains(&value));
        if everywhere {
            break;
        }
    }
    cluster.assert_converged(None);
}

// The same seed gives the same run: the hash of every output of every node is equal.
#[test]
fn same_seed_same_trace() {
    let run = |seed| {
        let mut cluster = Cluster::new(5, seed);
        cluster.loss_percent = 5;
        let leader = cluster.elect(2000);
        cluster.propose(leader, 50).unwrap();
        cluster.crash(leader);
        cluster.run_for(1000);
        cluster.trace_hash
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}

// Raft §5.4.2 (the thesis' figure 3.7): an entry of an older epoch that a new leader has
// copied to a majority is NOT committed by counting, because a voter with a newer last
// epoch can still win and overwrite it. Steps: leader A copies x only to B and crashes;
// E wins the next epoch with C and D but its NEWLEADER entry (same index as x) stays
// local; A returns and leads again, copies x to everyone but not its own NEWLEADER entry,
// and crashes with B; E returns, wins with C and D, and overwrites x. If x had been
// committed the harness would see two entries committed at one index, or E could never
// commit. Either way this test fails if the epoch check in the commit rule is removed.
#[test]
fn old_epoch_entry_on_a_majority_is_not_committed_by_counting() {
    let mut cluster = Cluster::new(5, test_seed(10));
    let a = cluster.elect(2000);
    cluster.run_for(100);
    // Phase 1: x reaches B only.
    let others: Vec<NodeId> = cluster.ids().into_iter().filter(|id| *id != a).collect();
    let b = others[0];
    let b_only = move |from: NodeId, to: NodeId, msg: Message| match msg.body {
        MessageBody::Append { .. } if from == a && to != b => None,
        _ => Some(msg),
    };
    cluster.rewrite = Some(Box::new(b_only));
    let x = cluster.propose(a, 1).unwrap()[0];
    cluster.run_for(30);
    let x_index = cluster.replica(a).status().last_index;
    let x_zxid = cluster.replica(a).zxid_at(x_index).unwrap();
    assert_eq!(cluster.replica(b).zxid_at(x_index), Some(x_zxid), "B has x");
    cluster.crash(a);
    cluster.crash(b);

    // Phase 2: one of C, D, E leads a newer epoch; its NEWLEADER entry stays local.
    cluster.rewrite = Some(Box::new(|_, _, msg: Message| match msg.body {
        MessageBody::Append { .. } => None,
        _ => Some(msg),
    }));
    let e = cluster.wait_for_leader(3000);
    assert!(others.contains(&e) && e != b);
    let e_zxid = cluster.replica(e).zxid_at(x_index).unwrap();
    assert!(
        e_zxid.epoch() > x_zxid.epoch(),
        "E's entry at x's index is newer"
    );
    cluster.run_for(50);
    assert_eq!(
        cluster.replica(e).status().persisted_index,
        x_index,
        "E's entry is durable"
    );
    cluster.crash(e);

    // Phase 3: A or B leads again and copies x to everyone, but nothing after it.
    cluster.rewrite = Some(Box::new(move |_, _, mut msg: Message| {
        if let MessageBody::Append { entries, .. } = &mut msg.body {
            entries.retain(|entry| entry.index <= x_index);
        }
        Some(msg)
    }));
    cluster.restart(a);
    cluster.restart(b);
    let third = cluster.wait_for_leader(3000);
    assert!(third == a || third == b, "only A or B is up to date enough");
    cluster.run_for(300);
    let alive: Vec<NodeId> = cluster.ids().into_iter().filter(|id| *id != e).collect();
    for id in &alive {
        assert_eq!(
            cluster.replica(*id).zxid_at(x_index),
            Some(x_zxid),
            "{id:?} has x"
        );
    }
    assert!(
        cluster.replica(third).status().commit_index < x_index,
        "x is not committed"
    );

    // Phase 4: A and B crash, E returns and wins with C and D, and overwrites x.
    cluster.crash(a);
    cluster.crash(b);
    cluster.rewrite = None;
    cluster.restart(e);
    eprintln!("a {a:?} b {b:?} e {e:?} third {third:?}");
    for id in cluster.ids() {
        if cluster.members[&id].replica.is_some() {
            eprintln!("{:?}", cluster.replica(id).status());
        }
    }
    let fourth = cluster.elect(5000);
    assert_eq!(fourth, e, "only E is up to date enough among C, D, E");
    cluster.restart(a);
    cluster.restart(b);
    cluster.run_for(1000);
    cluster.assert_converged(None);
    assert!(
        !cluster.members[&a].applied.contains(&x),
        "x was never committed"
    );
    assert_eq!(cluster.committed[&x_index].0, e_zxid);
}

// Observers receive every committed entry but never vote nor count: with two of three
// voters down, the leader and two observers (a majority of all members) commit nothing,
// and an observer never campaigns even when no leader is heard (it only stops naming
// the silent one).
#[test]
fn observers_learn_commits_but_never_count() {
    let mut cluster = Cluster::with_observers(3, 2, test_seed(11));
    let leader = cluster.elect(2000);
    let mut expected = cluster.propose(leader, 20).unwrap();
    cluster.run_for(300);
    cluster.assert_converged(Some(&expected));
    let status = cluster.replica(leader).status();
    let observers: Vec<_> = status.followers.iter().filter(|f| f.is_observer).collect();
    assert_eq!(observers.len(), 2);
    assert!(observers.iter().all(|f| f.match_index == status.last_index));
    for observer in [NodeId(4), NodeId(5)] {
        assert_eq!(cluster.replica(observer).role(), Role::Observer);
    }

    let voters_down: Vec<NodeId> = [1, 2, 3]
        .map(NodeId)
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    for id in &voters_down {
        cluster.crash(*id);
    }
    let commit_before = cluster.replica(leader).status().commit_index;
    let _ = cluster.propose(leader, 5);
    cluster.run_for(1000);
    assert_eq!(cluster.replica(leader).status().commit_index, commit_before);
    assert_ne!(
        cluster.replica(leader).role(),
        Role::Leader,
        "check-quorum ignores observers"
    );
    for observer in [NodeId(4), NodeId(5)] {
        let status = cluster.replica(observer).status();
        assert_eq!(status.role, Role::Observer);
        assert_eq!(
            status.leader, None,
            "an observer forgets a leader it has not heard from for an election timeout"
        );
    }

    for id in voters_down {
        cluster.restart(id);
    }
    let leader = cluster.elect(3000);
    expected.extend(cluster.propose(leader, 5).unwrap());
    cluster.run_for(500);
    let applied = &cluster.members[&NodeId(4)].applied;
    assert!(
        applied.ends_with(&expected[expected.len() - 5..]),
        "{applied:?}"
    );
    cluster.assert_converged(None);
}

// Transcript of a 3-node election and one batch of two proposals, one line per output,
// reviewed as a snapshot: pre-vote, durable vote, the NEWLEADER entry, probe then
// pipelined appends, acks only after persistence, commit, heartbeats. Any change in the
// protocol's behaviour shows up as a diff here.
#[test]
fn transcript_of_election_and_first_proposals() {
    let mut cluster = Cluster::new(3, 42);
    cluster.latency_ms_max = 2;
    cluster.disk_latency_ms_max = 1;
    cluster.transcript = Some(Vec::new());
    let leader = cluster.elect(2000);
    cluster.propose(leader, 2).unwrap();
    cluster.run_for(15);
    let lines = cluster.transcript.take().unwrap();
    insta::assert_snapshot!(lines.join("\n"));
}

// A follower whose disk lost entries it had acknowledged (a lying fsync, or a data
// directory restored from an older backup) is found and brought back in step by the
// leader: it rejects appends at its old match index, and the leader forgets that match
// and probes down instead of re-sending the same refused append forever.
#[test]
fn follower_that_lost_acknowledged_entries_is_resynced() {
    let mut cluster = Cluster::new(3, test_seed(17));
    let leader = cluster.elect(2000);
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let mut expected = cluster.propose(leader, 20).unwrap();
    cluster.run_for(500);
    cluster.assert_converged(Some(&expected));
    cluster.crash(follower);
    let member = cluster.members.get_mut(&follower).unwrap();
    member.disk.lose_entries_after(5);
    cluster.restart(follower);
    expected.extend(cluster.propose(leader, 5).unwrap());
    cluster.run_for(1000);
    cluster.assert_converged(Some(&expected));
    assert_eq!(
        cluster.replica(follower).status().last_index,
        cluster.replica(leader).status().last_index
    );
}
