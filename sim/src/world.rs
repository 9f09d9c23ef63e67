//! The simulated world: one virtual clock, one seeded RNG, one event queue, the servers
//! (each a `paddock_core::node::Node` with its own disk and clock), the network between
//! them and the clients. Everything a run does happens by popping the next event.
//!
//! Determinism: events are ordered by (time, sequence number), the RNG is consumed in
//! event order, and no hash map order reaches anything. The same options give the same
//! events, the same trace hash and the same verdict.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use crate::decide::Decisions;
use crate::recipes::WorkloadKind;
use paddock_core::ids::{ConnId, Epoch, NodeId};
use paddock_core::node::{Input, Node, NodeConfig, Output, PeerMessage, Persist};
use paddock_core::replication::{AppendOutcome, Message, MessageBody};
use paddock_core::wire::OpCode;
use rand::RngExt;

use crate::client::{Action, SimClient};
use crate::disk::SimDisk;
use crate::faults::{FaultCounts, FaultEvent, FaultPlan};
use crate::history::{AppliedRecord, ClientId, History, fnv1a};
use crate::net::{Direction, Fate, Network};
use crate::options::RunOptions;
use crate::trace::Trace;
use paddock_core::storage::{FileError, FileErrorKind, FileOp, Injected, MemFiles, StoreError};

/// Sample a tree digest every this many applied indexes (agreement checks them); a run
/// from a preloaded tree samples this many times less often per thousand znodes, so
/// that hashing the tree stays a small part of the run.
const DIGEST_EVERY_INDEXES: u64 = 16;

/// The simulated servers' `ReplicationConfig::message_bytes_max`: far below the default
/// 16 MiB, so that snapshots of the simulated trees go in pieces.
pub const SIM_MESSAGE_BYTES_MAX: u64 = 1024;

/// `NodeConfig::snapshot_every_entries` in a run from a preloaded large tree
/// (`RunOptions::preload_znodes`).
pub const LARGE_TREE_SNAPSHOT_EVERY_ENTRIES: u64 = 1_000_000;

/// `ReplicationConfig::message_bytes_max` in a run from a preloaded large tree.
pub const LARGE_TREE_MESSAGE_BYTES_MAX: u64 = 256 * 1024;

/// The simulated servers' `NodeConfig::applied_per_step_max`: far below the default
/// 1024, so that applying committed entries spans steps.
pub const SIM_APPLIED_PER_STEP_MAX: usize = 4;

/// Events one run may process per client operation: a healthy 1000-op run of 5 servers
/// with every fault takes 30 000 to 280 000 (seeds 0..1000); a run that keeps producing
/// events without virtual time advancing (a livelock) stops at its budget and fails.
pub const EVENTS_PER_OP_MAX: u64 = 2_000;

/// The smallest event budget of a run, however few its operations.
pub const EVENTS_PER_RUN_MIN: u64 = 2_000_000;

/// Something that happens at a virtual instant.
#[derive(Debug)]
pub enum Event {
    /// A server's timer deadline.
    Tick {
        /// The server.
        node: NodeId,
        /// Its incarnation when the tick was armed (a restart invalidates it).
        incarnation: u64,
    },
    /// A peer message arrives.
    Deliver {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// The message.
        msg: PeerMessage,
    },
    /// A disk write completes.
    DiskDone {
        /// The server.
        node: NodeId,
        /// Its incarnation when the write was issued.
        incarnation: u64,
    },
    /// Client bytes reach a server.
    ToServer {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Server bytes reach a client.
    ToClient {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A connection closed by the server reaches the client.
    ClientClosed {
        /// The connection.
        conn: ConnId,
    },
    /// A client's timer.
    ClientWake {
        /// The client.
        client: ClientId,
    },
    /// A fault starts or ends (see `faults.rs`).
    Fault(FaultEvent),
}

/// One simulated server.
#[derive(Debug)]
pub struct Server {
    /// Its id.
    pub id: NodeId,
    /// The running node; `None` while crashed.
    pub node: Option<Node>,
    /// Its disk (survives crashes).
    pub disk: SimDisk,
    /// Bumped at every restart; stale events carry an older one.
    pub incarnation: u64,
    /// Clock offset from true time, ms.
    pub clock_offset_ms: i64,
    /// Clock drift, parts per million.
    pub clock_drift_ppm: i64,
    /// Paused (a long stall) until this true time; 0 once its resume event replayed the
    /// inputs queued meanwhile.
    pub paused_until_ms: u64,
    /// The true time of the tick already armed, to avoid arming duplicates.
    pub tick_armed_ms: Option<u64>,
    /// Inputs that reached the server while it was paused, in arrival order; processed
    /// when it resumes.
    pub backlog: VecDeque<Input>,
    /// Recovery found its disk damaged: it must never start again in this run.
    pub disk_damaged: bool,
    /// The highest index this incarnation acknowledged to a leader as durable, with the
    /// epoch it acknowledged in: after a crash, recovery must find it again.
    pub acked: Option<(Epoch, u64)>,
    /// True time this incarnation started, ms.
    pub started_ms: u64,
}

impl Server {
    /// The server's own clock reading at true time `now_ms`.
    pub fn clock_ms(&self, now_ms: u64) -> u64 {
        let drift = i128::from(now_ms) * i128::from(self.clock_drift_ppm) / 1_000_000;
        let skewed = i128::from(now_ms) + i128::from(self.clock_offset_ms) + drift;
        u64::try_from(skewed.max(0)).unwrap_or(u64::MAX)
    }

    /// The first true time at which the server's clock reads at least `deadline_ms`.
    pub fn true_time_for(&self, deadline_ms: u64) -> u64 {
        let rate = 1_000_000 + i128::from(self.clock_drift_ppm);
        let base = i128::from(deadline_ms) - i128::from(self.clock_offset_ms);
        let mut t = u64::try_from((base * 1_000_000 / rate.max(1)).max(0)).unwrap_or(u64::MAX);
        while self.clock_ms(t) < deadline_ms {
            t += 1;
        }
        t
    }
}

/// A client connection as the world routes it.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// The client.
    pub client: ClientId,
    /// The server.
    pub server: NodeId,
    /// Still open.
    pub open: bool,
}

/// The whole simulation.
pub struct World {
    /// True virtual time, ms.
    pub now_ms: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    /// The run's one decision source (a seeded RNG, optionally steered by a script).
    pub rng: Decisions,
    /// Servers by id.
    pub servers: BTreeMap<NodeId, Server>,
    /// Clients by id.
    pub clients: Vec<SimClient>,
    /// Client connections.
    pub links: BTreeMap<ConnId, Link>,
    next_conn: u64,
    /// The network model.
    pub net: Network,
    /// What the run recorded.
    pub history: History,
    /// The event trace.
    pub trace: Trace,
    /// Events processed.
    pub events: u64,
    configs: BTreeMap<NodeId, NodeConfig>,
    /// The faults of this run and their intensity.
    pub plan: FaultPlan,
    /// False once the heal phase started: no fault strikes any more.
    pub faults_on: bool,
    /// Faults injected by the world (the network keeps its own counts).
    pub counts: FaultCounts,
    /// Highest zxid counter of an epoch (`u32::MAX` unless the run forces rollovers).
    pub zxid_counter_max: u32,
    /// The run's event budget (`EVENTS_PER_OP_MAX` per op, at least `EVENTS_PER_RUN_MIN`).
    pub events_max: u64,
    /// Sample a tree digest every this many applied indexes.
    digest_every: u64,
    /// Bounds checked step by step (memory, leases, pipelining).
    pub monitor: crate::monitor::Monitor,
    /// The run started from existing disks: servers starting for the first time record
    /// the log they load (`History::loaded`).
    from_disks: bool,
}

/// The client of every fault-free mixed workload that goes idle (pinging only) halfway
/// through its operations, for [`IDLE_STRETCH_MS`].
const IDLE_CLIENT: ClientId = 2;
/// How long the idle client sends no operation: one and a half session timeouts.
const IDLE_STRETCH_MS: u64 = crate::client::SESSION_TIMEOUT_MS as u64 * 3 / 2;
/// The client of every fault-free mixed workload that abandons its session at the end.
const ABANDONING_CLIENT: ClientId = 3;

impl World {
    /// Builds the world of a run: servers started, clients waiting to connect.
    pub fn new(options: &RunOptions, trace: Trace) -> World {
        World::with_decisions(options, Decisions::seeded(options.seed), trace)
    }

    /// Builds the world of a run whose decisions come from `rng` (a scripted run: see
    /// [`crate::decide`]).
    pub fn with_decisions(options: &RunOptions, rng: Decisions, trace: Trace) -> World {
        World::with_start(options, rng, trace, None)
    }

    /// [`World::with_decisions`], each server starting from the files `start` holds for
    /// it (`crate::saved::load_start`; a server without any starts empty) instead of an
    /// empty disk. The state each server starts from is recorded for the checkers
    /// (`History::starts`).
    pub fn with_start(
        options: &RunOptions,
        mut rng: Decisions,
        trace: Trace,
        mut start: Option<BTreeMap<NodeId, MemFiles>>,
    ) -> World {
        let voters: std::collections::BTreeSet<NodeId> = (1..=options.nodes).map(NodeId).collect();
        // One run in four adds an observer to the voters (the next id): it follows the
        // log and serves clients, and never votes nor counts for a quorum.
        let mut observers = std::collections::BTreeSet::new();
        if rng.random_range(0..4) == 0 {
            observers.insert(NodeId(options.nodes + 1));
        }
        // Faults that last (damaged disks) strike at most a minority of the voters.
        let plan = FaultPlan::choose(&options.faults, options.nodes, &mut rng);
        // One run in four uses up its zxid counters every few hundred writes, so leaders
        // step down on rollover and the next epoch starts, under every other fault.
        let zxid_counter_max = match rng.random_range(0..4) {
            0 => rng.random_range(100..400),
            _ => u32::MAX,
        };
        let members: Vec<NodeId> = voters.union(&observers).copied().collect();
        let servers = members.len() as u64;
        let mut world = World {
            now_ms: 0,
            seq: 0,
            queue: BTreeMap::new(),
            servers: BTreeMap::new(),
            clients: Vec::new(),
            links: BTreeMap::new(),
            next_conn: 1,
            net: Network::new(&plan),
            history: History::default(),
            trace,
            events: 0,
            configs: BTreeMap::new(),
            plan,
            faults_on: true,
            counts: FaultCounts::default(),
            zxid_counter_max,
            from_disks: start.is_some(),
            monitor: crate::monitor::Monitor::default(),
            digest_every: DIGEST_EVERY_INDEXES * (options.preload_znodes / 1000).max(1),
            events_max: options
                .ops
                .saturating_mul(EVENTS_PER_OP_MAX)
                .max(EVENTS_PER_RUN_MIN),
            rng,
        };
        for id in members {
            let mut config = NodeConfig::new(id, voters.clone());
            config.replication.observers = observers.clone();
            config.record_applied = true;
            config.check_invariants = true;
            config.snapshot_every_entries = 200;
            // A short tail of log behind each snapshot (a few dozen entries), so that
            // followers back from a crash or a partition are often sent a snapshot.
            config.snapshot_log_kept_bytes = 4 * 1024;
            // Small messages: the simulated trees' snapshots (a few KiB) travel in several
            // pieces, so loss, reordering and crashes hit transfers mid-way, and appends
            // are cut by bytes as well as by count.
            config.replication.message_bytes_max = SIM_MESSAGE_BYTES_MAX;
            // Few entries applied per step: committed entries often wait across steps,
            // interleaved with every other input, as a large batch does on a server.
            config.applied_per_step_max = SIM_APPLIED_PER_STEP_MAX;
            config.replication.zxid_counter_max = zxid_counter_max;
            if options.preload_znodes > 0 {
                // A large tree: no snapshot of it during the run (each would copy it to
                // every disk), and pieces large enough that sending one stays cheap.
                config.snapshot_every_entries = LARGE_TREE_SNAPSHOT_EVERY_ENTRIES;
                config.replication.message_bytes_max = LARGE_TREE_MESSAGE_BYTES_MAX;
            }
            #[cfg(feature = "planted-bugs")]
            config.plant_bug(options.bug.as_deref().and_then(|name| name.parse().ok()));
            let files = start.as_mut().and_then(|start| start.remove(&id));
            #[allow(unused_mut)]
            let mut disk = SimDisk::with_files(config.limits.clone(), files.unwrap_or_default());
            #[cfg(feature = "planted-bugs")]
            disk.plant_bug(config.bug);
            if world.configs.is_empty() {
                world.monitor = crate::monitor::Monitor::new(voters.clone(), &config);
            }
            world.configs.insert(id, config);
            world.servers.insert(
                id,
                Server {
                    id,
                    node: None,
                    disk,
                    incarnation: 0,
                    clock_offset_ms: 0,
                    clock_drift_ppm: 0,
                    paused_until_ms: 0,
                    tick_armed_ms: None,
                    backlog: VecDeque::new(),
                    disk_damaged: false,
                    acked: None,
                    started_ms: 0,
                },
            );
            world.history.applied.insert(id, Vec::new());
            world.skew_clock(id);
            if world.start(id) && world.from_disks {
                world.record_start_state(id);
            }
        }
        if world.from_disks {
            world.clocks_after_start_states();
        }
        world.schedule_first_faults();
        let per_client = options.ops / u64::from(options.clients.max(1));
        let extra = options.ops % u64::from(options.clients.max(1));
        for c in 0..options.clients {
            let ops = per_client + u64::from(u64::from(c) < extra);
            let client_faults = options.faults.has(crate::options::Fault::Client);
            let client = SimClient::new(c, servers, ops, client_faults);
            let client = match options.workload {
                // Without faults, one client holds its session idle halfway through,
                // pinging only, past its timeout: the session lives on through the pings
                // alone (checker `sessions`, which judges expiries only without faults),
                // which a follower must report to the leader.
                WorkloadKind::Mixed if c == IDLE_CLIENT && options.faults.0.is_empty() => {
                    client.with_idle_stretch(ops / 2, IDLE_STRETCH_MS)
                }
                // And one drops its connection at the end instead of closing its session,
                // as a crashed process does: the session must expire within its timeout
                // (checker `sessions`).
                WorkloadKind::Mixed if c == ABANDONING_CLIENT && options.faults.0.is_empty() => {
                    client.abandoning()
                }
                WorkloadKind::Mixed => client,
                WorkloadKind::Recipes => client.with_recipe(true),
                WorkloadKind::RecipesUnfenced => client.with_recipe(false),
            };
            world.clients.push(client);
            let at = world.rng.random_range(0..200);
            world.schedule(at, Event::ClientWake { client: c });
        }
        world
    }

    /// Records the state server `id` starts from (its snapshot, before any of its log
    /// is applied): the checkers' model starts there.
    fn record_start_state(&mut self, id: NodeId) {
        let Some(node) = self.servers.get(&id).and_then(|s| s.node.as_ref()) else {
            return;
        };
        let sessions = node
            .sessions()
            .iter()
            .map(|s| (s.id, i32::try_from(s.timeout_ms).unwrap_or(i32::MAX)))
            .collect();
        let state = crate::history::StartState {
            zxid: node.applied_zxid(),
            tree: node.tree().clone(),
            sessions,
        };
        self.history
            .starts
            .entry(node.applied_index())
            .or_insert(state);
    }

    /// Moves every server's clock past the times the loaded states hold (by a day), as
    /// real clocks are past what a data directory saw: session ids, which come from the
    /// clock, must not repeat those of sessions in the loaded state.
    fn clocks_after_start_states(&mut self) {
        const MARGIN_MS: i64 = 86_400_000;
        let latest_ms = self
            .history
            .starts
            .values()
            .map(|state| crate::saved::tree_time_max(&state.tree))
            .max()
            .unwrap_or(0);
        let base_ms = latest_ms.max(0).saturating_add(MARGIN_MS);
        self.history.clock_base_ms = base_ms;
        for server in self.servers.values_mut() {
            server.clock_offset_ms = server.clock_offset_ms.saturating_add(base_ms);
        }
    }

    /// The size limits every server runs with.
    pub fn limits(&self) -> paddock_core::limits::Limits {
        self.configs
            .values()
            .next()
            .map(|config| config.limits.clone())
            .unwrap_or_default()
    }

    /// The scenario the seed chose: the fault plan, and a forced zxid rollover if any.
    pub fn describe_scenario(&self) -> String {
        let mut text = self.plan.describe();
        if let Some(config) = self.configs.values().next() {
            for observer in &config.replication.observers {
                text.push_str(&format!(" observer={}", observer.0));
            }
        }
        if self.zxid_counter_max != u32::MAX {
            text.push_str(&format!(
                " zxid-rollover=every {} writes",
                self.zxid_counter_max
            ));
        }
        text
    }

    /// Starts (or restarts) a server from its disk; false when its disk does not
    /// recover (mid-log damage): such a server stays down, so it never votes with a
    /// damaged log.
    pub fn start(&mut self, id: NodeId) -> bool {
        let Some(config) = self.configs.get(&id).cloned() else {
            return false;
        };
        let seed = self.rng.random::<u64>();
        let Some(server) = self.servers.get_mut(&id) else {
            return false;
        };
        server.incarnation += 1;
        server.tick_armed_ms = None;
        let now = self.now_ms;
        server.started_ms = now;
        let durable = match server.disk.recover() {
            Ok(durable) => {
                if self.from_disks && server.incarnation == 1 {
                    // Entries from before the run: no op of this run stands for them.
                    self.history
                        .loaded
                        .extend(durable.entries.iter().map(|entry| entry.zxid));
                }
                durable
            }
            Err(error) => {
                server.node = None;
                if server.disk.bit_flips == 0 {
                    // No fault damaged this disk: the storage engine lost or corrupted
                    // what it wrote.
                    self.history.ack_losses.push(format!(
                        "server {} refused its own disk at {now} ms though no fault damaged \
                         it: {error}",
                        id.0
                    ));
                }
                if !server.disk_damaged {
                    server.disk_damaged = true;
                    self.counts.damaged_servers += 1;
                }
                self.trace
                    .record(now, id.0, "disk-refused", || error.to_string());
                return false;
            }
        };
        match Node::new(config, durable, seed) {
            Ok(node) => {
                // An acknowledgement promised the entries were on disk: unless the server
                // durably moved to a later epoch (whose leader may truncate), recovery
                // must find at least what it acknowledged.
                let status = node.status().replication;
                if let Some((epoch, index)) = server.acked.take()
                    && status.epoch == epoch
                    && status.last_index < index
                {
                    self.history.ack_losses.push(format!(
                        "server {} acknowledged index {index} as durable in epoch {} but \
                         recovered its log only up to index {} at {now} ms",
                        id.0, epoch.0, status.last_index
                    ));
                }
                server.node = Some(node);
            }
            Err(error) => {
                server.node = None;
                self.trace
                    .record(now, id.0, "start-failed", || format!("{error:?}"));
                return false;
            }
        }
        self.trace.record(now, id.0, "start", String::new);
        self.monitor.resumed(id, now);
        self.arm_tick(id);
        true
    }

    /// Crashes a server: writes whose fsync has not returned are lost (with the disk
    /// fault, the in-flight log append may tear and a synced record may get a flipped
    /// bit); its client connections drop.
    pub fn crash(&mut self, id: NodeId) {
        let disk_faults = self.plan.disk.filter(|_| self.faults_on);
        // Damage (flipped bits, a lost segment) strikes at most a minority of the disks.
        let damage_allowed = disk_faults.is_some_and(|d| {
            let damaged = self.servers.values().filter(|s| s.disk.damaged()).count();
            let this = self.servers.get(&id).is_some_and(|s| s.disk.damaged());
            this || damaged < usize::try_from(d.damaged_servers_max).unwrap_or(0)
        });
        let flip = damage_allowed
            && disk_faults.is_some_and(|d| self.rng.random_range(0..1000) < d.flip_per_mille);
        let lose = damage_allowed
            && !flip
            && disk_faults.is_some_and(|d| self.rng.random_range(0..1000) < d.lose_per_mille);
        let torn = disk_faults
            .filter(|d| self.rng.random_range(0..1000) < d.torn_per_mille)
            .map(|_| self.rng.random_range(1..1000u64));
        let now = self.now_ms;
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        server.node = None;
        server.paused_until_ms = 0;
        server.backlog.clear();
        self.monitor.stopped(id);
        self.trace.record(now, id.0, "crash", String::new);
        // Tear first: a torn append's truncation could otherwise cut right after the
        // flipped record, making it the last one, which recovery would cut as torn.
        if let Some(bytes) = server.disk.crash(torn) {
            self.counts.torn_writes += 1;
            self.trace
                .record(now, id.0, "torn-write", || format!("bytes={bytes}"));
        }
        if lose && let Some(name) = server.disk.lose_newest_segment() {
            // What it acknowledged went with the file: recovery cannot find it again.
            server.acked = None;
            self.counts.lost_segments += 1;
            self.trace
                .record(now, id.0, "segment-lost", || format!("log/{name}"));
        }
        if flip && let Some((index, offset)) = server.disk.flip_bit(&mut self.rng) {
            self.counts.bit_flips += 1;
            self.trace.record(now, id.0, "bit-flip", || {
                format!("record index={index} byte offset={offset}")
            });
        }
        self.close_connections(id);
    }

    /// The server's client connections drop (its process is gone).
    fn close_connections(&mut self, id: NodeId) {
        let conns: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| l.server == id && l.open)
            .map(|(c, _)| *c)
            .collect();
        for conn in conns {
            self.schedule(self.now_ms + 1, Event::ClientClosed { conn });
        }
    }

    /// Queues an event at true time `at_ms`.
    pub fn schedule(&mut self, at_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at_ms.max(self.now_ms), self.seq), event);
    }

    pub(crate) fn arm_tick(&mut self, id: NodeId) {
        let now = self.now_ms;
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        let Some(node) = &server.node else {
            return;
        };
        let Some(deadline) = node.next_deadline() else {
            return;
        };
        let at = server
            .true_time_for(deadline)
            .max(now)
            .max(server.paused_until_ms);
        if server
            .tick_armed_ms
            .is_some_and(|armed| armed <= at && armed >= now)
        {
            return;
        }
        server.tick_armed_ms = Some(at);
        let incarnation = server.incarnation;
        self.schedule(
            at,
            Event::Tick {
                node: id,
                incarnation,
            },
        );
    }

    /// Feeds an input to a server and routes its outputs. A crashed server loses the
    /// input; a paused one queues it until it resumes.
    pub fn step(&mut self, id: NodeId, input: Input) {
        let now = self.now_ms;
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        let clock = server.clock_ms(now);
        let Some(node) = &mut server.node else {
            return;
        };
        // A pause lasts until its resume event has replayed the backlog: an input due at
        // the very instant the pause ends still queues behind what arrived during it.
        if server.paused_until_ms != 0 {
            server.backlog.push_back(input);
            return;
        }
        let mut out = Vec::new();
        // The tally starts with the step: the world's own reads of a tree (digests for
        // the checkers) are not the server's work.
        let _ = paddock_core::work::take();
        let from = match &input {
            Input::Peer { from, .. } => Some(*from),
            _ => None,
        };
        node.step(clock, input, &mut out);
        if let Some(config) = self.configs.get(&id) {
            self.monitor.after_step(now, id, from, node, config);
        }
        let applied = node.drain_applied();
        let every = self.digest_every;
        let digest = if applied.iter().any(|e| e.index % every == 0) {
            Some(node.tree().digest())
        } else {
            None
        };
        self.record_applied(id, applied, digest);
        for output in out {
            self.route(id, output);
        }
        self.arm_tick(id);
    }

    fn record_applied(
        &mut self,
        id: NodeId,
        entries: Vec<paddock_core::replication::Entry>,
        digest: Option<u64>,
    ) {
        let last = entries.len().saturating_sub(1);
        for (i, entry) in entries.into_iter().enumerate() {
            let record = AppliedRecord {
                index: entry.index,
                zxid: entry.zxid,
                payload_hash: fnv1a(&entry.payload),
                digest: if i == last { digest } else { None },
            };
            self.trace.apply(self.now_ms, id, &entry);
            self.history
                .first_applied_ms
                .entry(entry.index)
                .or_insert(self.now_ms);
            self.history
                .payloads
                .entry(entry.index)
                .or_insert((entry.zxid, entry.payload));
            if let Some(list) = self.history.applied.get_mut(&id) {
                list.push(record);
            }
        }
    }

    /// Whether `follower`'s log, as it is now, shares no entry with the part of
    /// `leader`'s log the leader still holds (its start included), so that only a snapshot
    /// can bring it up to date.
    fn snapshot_needed(&self, leader: NodeId, follower: NodeId) -> bool {
        let node = |id| self.servers.get(&id).and_then(|s: &Server| s.node.as_ref());
        let (Some(leader), Some(follower)) = (node(leader), node(follower)) else {
            return true;
        };
        let (leader_start, leader_last) = leader.log_span();
        let (follower_start, follower_last) = follower.log_span();
        let (low, high) = (
            leader_start.max(follower_start),
            leader_last.min(follower_last),
        );
        (low..=high).rev().all(|index| {
            let ours = follower.log_zxid_at(index);
            ours.is_none() || ours != leader.log_zxid_at(index)
        })
    }

    /// Counts a peer message sent, for the message budget (`check::budget`).
    fn count_sent(&mut self, msg: &PeerMessage) {
        let traffic = &mut self.history.traffic;
        match msg {
            PeerMessage::Replication(Message { body, .. }) => match body {
                MessageBody::Append { entries, .. } => {
                    traffic.appends += 1;
                    traffic.entries += entries.len() as u64;
                    traffic.entry_bytes +=
                        entries.iter().map(|e| e.payload.len() as u64).sum::<u64>();
                }
                MessageBody::Heartbeat { .. } => traffic.heartbeats += 1,
                MessageBody::Snapshot { .. } => traffic.snapshot_pieces += 1,
                _ => traffic.other += 1,
            },
            PeerMessage::Forward { writes, .. } => {
                traffic.other += 1;
                traffic.forwarded_writes += writes.len() as u64;
            }
            PeerMessage::Touch { .. } => traffic.touches += 1,
            _ => traffic.other += 1,
        }
    }

    /// `msg` as the receiver decodes it from the bytes the sender encodes, as on a real
    /// peer connection: a message that does not come back equal fails the run (monitor,
    /// `peer-codec`), and travels on as sent.
    fn through_the_wire(&mut self, from: NodeId, to: NodeId, msg: PeerMessage) -> PeerMessage {
        let bytes = msg.encode();
        let what = match PeerMessage::decode(&bytes) {
            Ok(decoded) if decoded == msg => return decoded,
            Ok(decoded) => format!("came back as {decoded:?}"),
            Err(e) => format!("does not decode: {e}"),
        };
        self.monitor
            .codec_breach(from, to, format!("{msg:?}, {} bytes, {what}", bytes.len()));
        msg
    }

    fn route(&mut self, id: NodeId, output: Output) {
        let now = self.now_ms;
        match output {
            Output::Peer { to, msg } => {
                let msg = self.through_the_wire(id, to, msg);
                self.count_sent(&msg);
                if let PeerMessage::Replication(Message {
                    epoch,
                    body:
                        MessageBody::Snapshot {
                            meta, offset: 0, ..
                        },
                }) = &msg
                {
                    let needed = self.snapshot_needed(id, to);
                    self.monitor
                        .snapshot_begun(id, to, *epoch, meta.index, needed);
                }
                if let PeerMessage::Replication(Message {
                    body:
                        MessageBody::PreVoteReply { granted: true }
                        | MessageBody::VoteReply { granted: true },
                    ..
                }) = &msg
                    && self
                        .servers
                        .get(&id)
                        .and_then(|s| s.node.as_ref())
                        .is_some_and(|n| n.replication_status().resync_needed)
                {
                    self.monitor.vote_while_resyncing(id, to);
                }
                self.monitor.sent(id, to, &msg);
                if let PeerMessage::Replication(Message {
                    epoch,
                    body: MessageBody::AppendReply(AppendOutcome::Accepted { match_index }),
                }) = &msg
                    && let Some(server) = self.servers.get_mut(&id)
                {
                    let acked = server.acked.get_or_insert((*epoch, *match_index));
                    if *epoch > acked.0 || (*epoch == acked.0 && *match_index > acked.1) {
                        *acked = (*epoch, *match_index);
                    }
                }
                let (arrivals, fate) = self.net.deliveries(now, id, to, &mut self.rng);
                if fate != Fate::Delivered {
                    self.trace.record(now, id.0, fate_kind(fate), || {
                        format!("to={} arrivals={arrivals:?} {msg:?}", to.0)
                    });
                }
                for at in arrivals {
                    self.schedule(
                        at,
                        Event::Deliver {
                            from: id,
                            to,
                            msg: msg.clone(),
                        },
                    );
                }
            }
            Output::PeerSnapshot(send) => {
                // As the real server does: a piece of the snapshot file read from this
                // disk, when it is the one asked for or newer.
                let msg = self
                    .servers
                    .get_mut(&id)
                    .and_then(|server| server.disk.snapshot_piece(&send));
                match msg {
                    Some(msg) => self.route(id, Output::Peer { to: send.to, msg }),
                    None => self.trace.record(now, id.0, "snapshot-unavailable", || {
                        format!("to={} index={}", send.to.0, send.meta.index)
                    }),
                }
            }
            Output::Persist(op) => self.disk(id, op),
            Output::ToClient { conn, bytes } => {
                let at = self.client_arrival(conn, Direction::ToClient);
                self.schedule(at, Event::ToClient { conn, bytes });
            }
            Output::CloseClient { conn } => {
                let at = self.client_arrival(conn, Direction::ToClient);
                self.schedule(at, Event::ClientClosed { conn });
            }
            Output::FourLetterWord { conn, .. } => {
                self.schedule(now + 1, Event::ClientClosed { conn })
            }
            // Freed here; the real server frees it off its loop.
            Output::Release(released) => drop(released),
        }
    }

    /// When bytes sent now on a client connection arrive (FIFO); a spike is traced.
    fn client_arrival(&mut self, conn: ConnId, direction: Direction) -> u64 {
        let now = self.now_ms;
        let (at, spike) = self.net.client_arrival(now, conn, direction, &mut self.rng);
        if spike {
            let server = self.links.get(&conn).map_or(0, |l| l.server.0);
            self.trace.record(now, server, "client-delay", || {
                format!("conn={} {direction:?} arrives at {at}", conn.0)
            });
        }
        at
    }

    fn disk(&mut self, id: NodeId, op: Persist) {
        let now = self.now_ms;
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        let (latency_ms, spike) = match &self.plan.disk {
            Some(faults) => faults.fsync.draw(&mut self.rng),
            None => (1 + self.rng.random_range(0..2), false),
        };
        if spike {
            self.counts.fsync_spikes += 1;
            self.trace.record(now, id.0, "fsync-spike", || {
                format!("latency={latency_ms}ms")
            });
        }
        let at = server.disk.submit(now, latency_ms, op);
        let incarnation = server.incarnation;
        self.schedule(
            at,
            Event::DiskDone {
                node: id,
                incarnation,
            },
        );
    }

    /// Processes the next event; false when none is left before `until_ms`.
    pub fn run_one(&mut self, until_ms: u64) -> bool {
        if self.events >= self.events_max {
            return false;
        }
        let Some(entry) = self.queue.first_entry() else {
            return false;
        };
        if entry.key().0 > until_ms {
            return false;
        }
        let ((at, _), event) = entry.remove_entry();
        self.now_ms = self.now_ms.max(at);
        self.events += 1;
        self.handle(event);
        true
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Tick { node, incarnation } => {
                let Some(server) = self.servers.get_mut(&node) else {
                    return;
                };
                if server.incarnation != incarnation {
                    return;
                }
                if server.tick_armed_ms.is_some_and(|t| t <= self.now_ms) {
                    server.tick_armed_ms = None;
                }
                if server.paused_until_ms > self.now_ms {
                    let at = server.paused_until_ms;
                    self.schedule(at, Event::Tick { node, incarnation });
                    return;
                }
                self.step(node, Input::Tick);
            }
            Event::Deliver { from, to, msg } => {
                if self.net.connected(from, to) && self.running(to) {
                    self.trace.deliver(self.now_ms, from, to, &msg);
                    self.monitor.delivered(from, to, &msg);
                    self.step(to, Input::Peer { from, msg });
                }
            }
            Event::DiskDone { node, incarnation } => self.disk_done(node, incarnation),
            Event::ToServer { conn, bytes } => {
                let Some(link) = self.links.get(&conn).copied() else {
                    return;
                };
                if link.open && self.running(link.server) {
                    let now = self.now_ms;
                    self.trace
                        .client_bytes(now, link.server, conn, true, &bytes);
                    self.step(link.server, Input::ClientBytes { conn, bytes });
                    self.check_connection(link.server, conn, None);
                }
            }
            Event::ToClient { conn, bytes } => {
                let Some(link) = self.links.get(&conn).copied() else {
                    return;
                };
                let client = link.client as usize;
                if !link.open || self.clients.get(client).and_then(SimClient::conn) != Some(conn) {
                    return;
                }
                let now = self.now_ms;
                self.trace
                    .client_bytes(now, link.server, conn, false, &bytes);
                let actions =
                    self.clients[client].receive(now, &bytes, &mut self.rng, &mut self.history);
                if let Some((conn, xid, op)) = self.clients[client].take_answered() {
                    self.check_connection(link.server, conn, Some((xid, op)));
                }
                self.client_actions(link.client, actions);
            }
            Event::ClientClosed { conn } => self.client_conn_closed(conn),
            Event::ClientWake { client } => self.client_wake(client),
            Event::Fault(fault) => self.fault(fault),
        }
    }

    /// What server `id` shows of connection `conn` (`cons`) agrees with its client
    /// (`check::stats::connection`); `answered` is the request the client just had
    /// answered with nothing else outstanding there.
    fn check_connection(&mut self, id: NodeId, conn: ConnId, answered: Option<(i32, OpCode)>) {
        let Some(node) = self.servers.get(&id).and_then(|s| s.node.as_ref()) else {
            return;
        };
        let Some(stats) = node.conn_stats(conn) else {
            return;
        };
        let outstanding = node.conn_requests_outstanding(conn);
        if let Err(why) = crate::check::stats::connection(&stats, outstanding, answered) {
            let now = self.now_ms;
            self.monitor.breach_of(
                "stats",
                format!("server {} at {now} ms: connection {} {why}", id.0, conn.0),
            );
        }
    }

    /// A server's process exists (it may be paused).
    pub fn running(&self, id: NodeId) -> bool {
        self.servers.get(&id).is_some_and(|s| s.node.is_some())
    }

    /// A server is running (not crashed, not paused).
    pub fn up(&self, id: NodeId) -> bool {
        self.servers
            .get(&id)
            .is_some_and(|s| s.node.is_some() && s.paused_until_ms <= self.now_ms)
    }

    fn disk_done(&mut self, id: NodeId, incarnation: u64) {
        let now = self.now_ms;
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        if server.incarnation != incarnation || server.node.is_none() {
            return;
        }
        let inject = self
            .plan
            .disk
            .filter(|d| self.faults_on && self.rng.random_range(0..1000) < d.error_per_mille)
            .map(|_| match self.rng.random_range(0..3) {
                0 => Injected::Write(FileErrorKind::Io("input/output error (injected)".into())),
                1 => Injected::Write(FileErrorKind::NoSpace),
                _ => Injected::Sync,
            });
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        match server.disk.complete(now, inject) {
            Ok(inputs) => {
                for input in inputs {
                    self.step(id, input);
                }
            }
            Err(error) => self.disk_failed(id, &error),
        }
    }

    /// A write failed: the server stops as the real one does (its process exits; the
    /// machine, and so the page cache, stays) and restarts after a random downtime.
    fn disk_failed(&mut self, id: NodeId, error: &StoreError) {
        let now = self.now_ms;
        let text = error.to_string();
        match error {
            StoreError::File(FileError {
                kind: FileErrorKind::NoSpace,
                ..
            }) => self.counts.disk_full += 1,
            StoreError::File(FileError {
                op: FileOp::Sync, ..
            }) => self.counts.fsync_errors += 1,
            _ => self.counts.write_errors += 1,
        }
        self.trace.record(now, id.0, "disk-failed", || text.clone());
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        server.node = None;
        server.paused_until_ms = 0;
        server.backlog.clear();
        server.disk.stop();
        self.monitor.stopped(id);
        let incarnation = server.incarnation;
        self.close_connections(id);
        let downtime_ms = self.rng.random_range(100..=3_000);
        self.schedule(
            now + downtime_ms,
            Event::Fault(crate::faults::FaultEvent::Restart {
                node: id,
                incarnation,
            }),
        );
    }

    fn client_conn_closed(&mut self, conn: ConnId) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        if !link.open {
            return;
        }
        link.open = false;
        let (client, server) = (link.client, link.server);
        self.net.forget(conn);
        if self.running(server) {
            self.step(server, Input::ClientDisconnected { conn });
        }
        let now = self.now_ms;
        if let Some(c) = self.clients.get_mut(client as usize)
            && c.conn() == Some(conn)
        {
            c.closed(now, &mut self.history);
        }
    }

    fn client_wake(&mut self, client: ClientId) {
        let now = self.now_ms;
        let Some(c) = self.clients.get_mut(client as usize) else {
            return;
        };
        let (actions, next) = c.wake(now, &mut self.rng, &mut self.history);
        self.client_actions(client, actions);
        let done = self
            .clients
            .get(client as usize)
            .is_none_or(SimClient::done);
        if !done {
            self.schedule(next, Event::ClientWake { client });
        }
    }

    fn client_actions(&mut self, client: ClientId, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Connect { server } => {
                    let conn = ConnId(self.next_conn);
                    self.next_conn += 1;
                    self.links.insert(
                        conn,
                        Link {
                            client,
                            server,
                            open: true,
                        },
                    );
                    let ids = self
                        .clients
                        .get(client as usize)
                        .map(|c| c.ids().to_vec())
                        .unwrap_or_default();
                    self.history
                        .connected(conn, client, server, self.now_ms, ids);
                    let addr = IpAddr::V4(Ipv4Addr::new(
                        10,
                        0,
                        (client >> 8) as u8,
                        (client & 0xff) as u8,
                    ));
                    if self.running(server) {
                        self.step(server, Input::ClientConnected { conn, addr });
                    } else {
                        self.schedule(self.now_ms + 1, Event::ClientClosed { conn });
                    }
                    let now = self.now_ms;
                    let actions =
                        self.clients[client as usize].opened(now, conn, server, &mut self.history);
                    self.client_actions(client, actions);
                }
                Action::Send { conn, bytes } => {
                    let at = self.client_arrival(conn, Direction::ToServer);
                    self.schedule(at, Event::ToServer { conn, bytes });
                }
                Action::Close { conn } => {
                    if let Some(link) = self.links.get_mut(&conn)
                        && link.open
                    {
                        link.open = false;
                        let server = link.server;
                        if self.running(server) {
                            self.step(server, Input::ClientDisconnected { conn });
                        }
                    }
                }
            }
        }
    }

    /// True once the run used up its event budget (a livelock).
    pub fn events_exhausted(&self) -> bool {
        self.events >= self.events_max
    }

    /// True when every client finished its operations.
    pub fn clients_done(&self) -> bool {
        self.clients.iter().all(SimClient::done)
    }

    /// Wakes every client now (used when the heal phase starts).
    pub fn wake_clients(&mut self) {
        for c in 0..self.clients.len() {
            self.schedule(
                self.now_ms,
                Event::ClientWake {
                    client: c as ClientId,
                },
            );
        }
    }
}

/// The trace kind of a peer message's fate.
fn fate_kind(fate: Fate) -> &'static str {
    match fate {
        Fate::Delivered => "send",
        Fate::Delayed => "delay",
        Fate::Cut => "cut",
        Fate::Lost => "loss",
        Fate::Duplicated => "dup",
    }
}
