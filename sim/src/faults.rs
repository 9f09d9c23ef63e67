//! The fault plan of a run: which of the enabled faults are active and how hard they
//! hit, chosen by the seed (swarm testing: each enabled fault is active with some
//! probability, at a random intensity), plus the counters of what was injected.
//!
//! # Fault model
//!
//! Injected during the safety phase, because the design claims to survive them:
//! - network (`net.rs`): peer messages delayed by a random latency with rare long spikes
//!   (so reordered), lost, duplicated; symmetric, asymmetric and one-way partitions; long
//!   clogs (a link holds every message for seconds); depose strikes, which aim at the
//!   leader: it is cut off (with at most a minority) until the rest elect another, then
//!   rejoins just as the new leader is cut off in turn, so the next election weighs an
//!   old-epoch log against the new epoch's. Client connections are TCP: their
//!   bytes get latency and spikes but always arrive in order, never lost or duplicated
//!   (a lost TCP connection is a client fault, owned by the clients' injector).
//! - node: crash at any instant (writes whose fsync has not returned are lost) and
//!   restart from the disk after a random downtime; long pauses (the process is stalled:
//!   no ticks, its inbound messages and disk completions queue and are processed, in
//!   order, when it resumes).
//! - clock: each server's clock has its own constant offset and drift (well below 100%,
//!   so every server clock is monotonic, across restarts too). Safety must not depend on
//!   clocks; only timeouts move.
//! - disk (`disk.rs`, the storage engine over `MemFiles`): variable fsync latency with
//!   rare long stalls; a crash is a power loss (what was not synced is lost), and the
//!   in-flight log append may be torn (a prefix of its bytes reaches the disk); a bit
//!   flip in a synced log record that is NOT the last one, on at most a minority of the
//!   servers in a run. Recovery finds the flip (a valid record follows it), and that
//!   server refuses to start for the rest of the run: it never votes with a damaged log.
//!   Disk errors: a batch of writes may meet EIO on a write, ENOSPC, or EIO on the fsync
//!   (the page-cache lie: the bytes are marked clean without reaching the disk, reads
//!   keep returning them, no later sync writes them, and a power loss loses them). The
//!   server stops (its process exits; the machine and its page cache stay) and restarts
//!   after a random downtime. Required: no acknowledged write is lost, and a disk no
//!   fault damaged is never refused by recovery (the durability checker reports both).
//!   A crash may also lose the newest log segment file (on at most a minority of the
//!   servers, counted with the bit flips): that server finds the loss at recovery and
//!   must neither vote nor lead until a leader has re-synced it.
//!
//! Not injected, because no Zab/Raft design survives it (or the storage format cannot
//! tell it apart from a fault it does survive):
//! - losing synced data on a majority (a flipped bit on a majority of servers, or a
//!   bit flip in the last synced record, which recovery cannot tell from a torn write and
//!   so cuts: the record is gone though the server may have acknowledged it);
//! - torn or corrupt hard-state and snapshot files: the runtime writes them to a new
//!   file, syncs it and renames it, so they are either old or new, never half;
//! - a clock that goes backwards (clocks are monotonic by contract of the runtime);
//! - byzantine peers (a peer sending well-formed lies).
//!
//! The heal phase (`World::heal_all`) turns every fault off, restarts every server
//! whose disk recovers, and leaves clocks skewed (a clock cannot be moved back).

use std::collections::BTreeSet;
use std::fmt;

use crate::decide::Decisions;
use paddock_core::ids::NodeId;
use rand::RngExt;

use crate::options::{Fault, FaultSet};
use crate::world::{Event, World};

/// Chance, per mille, that an enabled fault is active in a run (swarm testing).
const ACTIVE_PER_MILLE: u32 = 750;

/// A latency distribution: uniform between the bounds, and rarely a long spike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Smallest ordinary latency, ms.
    pub ms_min: u64,
    /// Largest ordinary latency, ms.
    pub ms_max: u64,
    /// Chance of a spike, per mille.
    pub spike_per_mille: u32,
    /// Largest spike, ms (spikes are uniform in `ms_max..=spike_ms_max`).
    pub spike_ms_max: u64,
}

impl Latency {
    /// The latency of one message or write, ms, and whether it was a spike.
    pub fn draw(&self, rng: &mut Decisions) -> (u64, bool) {
        if self.spike_per_mille > 0 && rng.random_range(0..1000) < self.spike_per_mille {
            (rng.random_range(self.ms_max..=self.spike_ms_max), true)
        } else {
            (rng.random_range(self.ms_min..=self.ms_max), false)
        }
    }
}

/// When a recurring fault strikes and how long each strike lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Shortest gap between the end of one strike and the next, ms.
    pub gap_ms_min: u64,
    /// Longest gap, ms.
    pub gap_ms_max: u64,
    /// Shortest strike, ms.
    pub duration_ms_min: u64,
    /// Longest strike, ms.
    pub duration_ms_max: u64,
}

impl Schedule {
    /// A random gap before the next strike, ms.
    pub fn gap_ms(&self, rng: &mut Decisions) -> u64 {
        rng.random_range(self.gap_ms_min..=self.gap_ms_max)
    }

    /// A random strike duration, ms.
    pub fn duration_ms(&self, rng: &mut Decisions) -> u64 {
        rng.random_range(self.duration_ms_min..=self.duration_ms_max)
    }

    fn choose(rng: &mut Decisions, gap_ms_max: u64, duration_ms_max: u64) -> Schedule {
        let gap_ms_max = rng.random_range(gap_ms_max / 4..=gap_ms_max);
        let duration_ms_max = rng.random_range(duration_ms_max / 4..=duration_ms_max);
        Schedule {
            gap_ms_min: gap_ms_max / 10,
            gap_ms_max,
            duration_ms_min: duration_ms_max / 20,
            duration_ms_max,
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "every {}..{}ms for {}..{}ms",
            self.gap_ms_min, self.gap_ms_max, self.duration_ms_min, self.duration_ms_max
        )
    }
}

/// Per-server clock skew bounds; each server draws its own within them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSkew {
    /// Largest offset from true time, ms (offsets are in `0..=offset_ms_max`).
    pub offset_ms_max: u64,
    /// Largest drift, parts per million either way.
    pub drift_ppm_max: i64,
}

/// Disk fault parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskFaults {
    /// How long a write takes to become durable.
    pub fsync: Latency,
    /// Chance, per mille, that a crash tears the in-flight log append.
    pub torn_per_mille: u32,
    /// Chance, per mille, that a crash comes with a bit flipped in a synced record that
    /// is not the last one.
    pub flip_per_mille: u32,
    /// Servers whose disk may be damaged in this run: a minority.
    pub damaged_servers_max: u64,
    /// Chance, per mille, that a crash also loses the newest log segment file (a file
    /// system that forgot a file: the node must not vote until a leader re-synced it).
    pub lose_per_mille: u32,
    /// Chance, per mille, that a batch of writes meets a disk error (EIO on a write,
    /// ENOSPC, or EIO on the fsync, whose bytes then never reach the disk though reads
    /// still return them): the server stops and restarts later, page cache intact.
    pub error_per_mille: u32,
}

/// The faults active in a run and their intensity. `None` or zero means off.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultPlan {
    /// Peer and client latency with spikes; `None`: a short uniform latency.
    pub latency: Option<Latency>,
    /// Chance that a peer message is lost, per mille.
    pub loss_per_mille: u32,
    /// Chance that a peer message is delivered twice, per mille.
    pub dup_per_mille: u32,
    /// Partitions and clogs.
    pub partition: Option<Schedule>,
    /// Crashes; the duration is the downtime before the restart.
    pub crash: Option<Schedule>,
    /// Pauses.
    pub pause: Option<Schedule>,
    /// Clock offsets and drifts.
    pub clock: Option<ClockSkew>,
    /// Disk faults.
    pub disk: Option<DiskFaults>,
}

impl FaultPlan {
    /// Chooses the plan of a run of `nodes` voting servers from the enabled `faults`. Each
    /// enabled fault draws from `rng` whether it is active and its parameters, in the
    /// fixed order of `Fault::ALL`, so a plan is a pure function of the seed.
    pub fn choose(faults: &FaultSet, nodes: u64, rng: &mut Decisions) -> FaultPlan {
        let mut plan = FaultPlan::default();
        for fault in Fault::ALL {
            if !faults.has(fault) || rng.random_range(0..1000) >= ACTIVE_PER_MILLE {
                continue;
            }
            match fault {
                Fault::Latency => {
                    let ms_max = rng.random_range(2..=40);
                    plan.latency = Some(Latency {
                        ms_min: 1,
                        ms_max,
                        spike_per_mille: rng.random_range(1..=20),
                        spike_ms_max: rng.random_range(200..=3000),
                    });
                }
                Fault::Loss => plan.loss_per_mille = rng.random_range(1..=100),
                Fault::Duplication => plan.dup_per_mille = rng.random_range(1..=50),
                Fault::Partition => plan.partition = Some(Schedule::choose(rng, 6_000, 8_000)),
                Fault::Crash => plan.crash = Some(Schedule::choose(rng, 15_000, 5_000)),
                Fault::Pause => plan.pause = Some(Schedule::choose(rng, 10_000, 8_000)),
                Fault::Clock => {
                    plan.clock = Some(ClockSkew {
                        offset_ms_max: rng.random_range(0..=60_000),
                        drift_ppm_max: rng.random_range(0..=20_000),
                    });
                }
                Fault::Disk => {
                    plan.disk = Some(DiskFaults {
                        fsync: Latency {
                            ms_min: 1,
                            ms_max: rng.random_range(1..=20),
                            spike_per_mille: rng.random_range(1..=30),
                            spike_ms_max: rng.random_range(50..=1000),
                        },
                        torn_per_mille: rng.random_range(200..=1000),
                        flip_per_mille: rng.random_range(100..=500),
                        damaged_servers_max: nodes.saturating_sub(1) / 2,
                        lose_per_mille: rng.random_range(0..=300),
                        error_per_mille: if rng.random_range(0..2) == 0 {
                            0
                        } else {
                            rng.random_range(1..=10)
                        },
                    });
                }
                // Client faults belong to the clients' own injector.
                Fault::Client => {}
            }
        }
        plan
    }

    /// The chosen parameters, one `name=value` per active fault (`none` when none is).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = &self.latency {
            parts.push(format!(
                "latency={}..{}ms spikes={}permille..{}ms",
                l.ms_min, l.ms_max, l.spike_per_mille, l.spike_ms_max
            ));
        }
        if self.loss_per_mille > 0 {
            parts.push(format!("loss={}permille", self.loss_per_mille));
        }
        if self.dup_per_mille > 0 {
            parts.push(format!("dup={}permille", self.dup_per_mille));
        }
        if let Some(s) = &self.partition {
            parts.push(format!("partition=({s})"));
        }
        if let Some(s) = &self.crash {
            parts.push(format!("crash=({s})"));
        }
        if let Some(s) = &self.pause {
            parts.push(format!("pause=({s})"));
        }
        if let Some(c) = &self.clock {
            parts.push(format!(
                "clock=offset<={}ms,drift<={}ppm",
                c.offset_ms_max, c.drift_ppm_max
            ));
        }
        if let Some(d) = &self.disk {
            parts.push(format!(
                "disk=fsync{}..{}ms,spikes={}permille..{}ms,torn={}permille,flip={}permille,\
                 damaged<={},lose={}permille,errors={}permille",
                d.fsync.ms_min,
                d.fsync.ms_max,
                d.fsync.spike_per_mille,
                d.fsync.spike_ms_max,
                d.torn_per_mille,
                d.flip_per_mille,
                d.damaged_servers_max,
                d.lose_per_mille,
                d.error_per_mille
            ));
        }
        if parts.is_empty() {
            return "none".to_owned();
        }
        parts.join(" ")
    }
}

/// How many faults of each kind a run injected (the world's and the network's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    /// Peer messages delivered later than the ordinary latency (spikes), and client
    /// segments delayed by a spike.
    pub latency_spikes: u64,
    /// Peer messages lost at random.
    pub messages_lost: u64,
    /// Peer messages delivered twice.
    pub messages_duplicated: u64,
    /// Partitions started (symmetric, asymmetric or one-way).
    pub partitions: u64,
    /// Clogs started.
    pub clogs: u64,
    /// Server crashes.
    pub crashes: u64,
    /// Server pauses.
    pub pauses: u64,
    /// Servers with a skewed clock.
    pub skewed_clocks: u64,
    /// Disk writes that took a long (spike) fsync.
    pub fsync_spikes: u64,
    /// Log appends torn by a crash.
    pub torn_writes: u64,
    /// Bits flipped in synced records.
    pub bit_flips: u64,
    /// Servers that refused to start because recovery found mid-log corruption.
    pub damaged_servers: u64,
    /// Writes that failed with EIO (the server stopped).
    pub write_errors: u64,
    /// Writes that failed with ENOSPC (the server stopped).
    pub disk_full: u64,
    /// Fsyncs that failed with EIO, their bytes never written (the server stopped).
    pub fsync_errors: u64,
    /// Newest log segments lost at a crash.
    pub lost_segments: u64,
}

impl FaultCounts {
    /// Adds `other`'s counts to these (a campaign's totals).
    pub fn add(&mut self, other: &FaultCounts) {
        self.latency_spikes += other.latency_spikes;
        self.messages_lost += other.messages_lost;
        self.messages_duplicated += other.messages_duplicated;
        self.partitions += other.partitions;
        self.clogs += other.clogs;
        self.crashes += other.crashes;
        self.pauses += other.pauses;
        self.skewed_clocks += other.skewed_clocks;
        self.fsync_spikes += other.fsync_spikes;
        self.torn_writes += other.torn_writes;
        self.bit_flips += other.bit_flips;
        self.damaged_servers += other.damaged_servers;
        self.write_errors += other.write_errors;
        self.disk_full += other.disk_full;
        self.fsync_errors += other.fsync_errors;
        self.lost_segments += other.lost_segments;
    }

    /// The counts as `name=value` words, for the run summary.
    pub fn describe(&self) -> String {
        format!(
            "spikes={} lost={} dup={} partitions={} clogs={} crashes={} pauses={} \
             skewed_clocks={} fsync_spikes={} torn={} flips={} damaged_servers={} \
             eio_writes={} enospc={} eio_fsyncs={} lost_segments={}",
            self.latency_spikes,
            self.messages_lost,
            self.messages_duplicated,
            self.partitions,
            self.clogs,
            self.crashes,
            self.pauses,
            self.skewed_clocks,
            self.fsync_spikes,
            self.torn_writes,
            self.bit_flips,
            self.damaged_servers,
            self.write_errors,
            self.disk_full,
            self.fsync_errors,
            self.lost_segments
        )
    }
}

/// A fault striking or ending; the world schedules these as events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultEvent {
    /// Start a partition or a clog, then schedule its end.
    PartitionStart,
    /// End the current partition, then schedule the next one.
    PartitionEnd,
    /// End the first half of a depose strike: the deposed leader's minority rejoins
    /// and, at the same instant, the leader the majority elected meanwhile is cut off.
    Depose {
        /// The leader the strike deposed.
        stale: NodeId,
    },
    /// Crash a running server, schedule its restart and the next crash.
    Crash,
    /// Restart a crashed server (if still the same incarnation).
    Restart {
        /// The server.
        node: NodeId,
        /// Its incarnation when it crashed.
        incarnation: u64,
    },
    /// Pause a running server, schedule its resume and the next pause.
    Pause,
    /// A paused server resumes and processes what queued up.
    Resume {
        /// The server.
        node: NodeId,
        /// Its incarnation when it was paused.
        incarnation: u64,
    },
}

/// The shapes a partition strike can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartitionKind {
    /// Two groups that cannot hear each other.
    Symmetric,
    /// A group that cannot send to the rest but still hears it.
    Asymmetric,
    /// A single directed link cut.
    OneWay,
    /// Links that hold every message until the clog ends.
    Clog,
    /// The serving leader (with at most a minority) is cut off long enough for the rest
    /// to elect another; then it rejoins just as the new leader is cut off in turn, so an
    /// election runs between its old-epoch log and the new epoch's (`FaultEvent::Depose`).
    Depose,
}

impl World {
    /// Draws a server's clock offset and drift when the clock fault is active.
    pub(crate) fn skew_clock(&mut self, id: NodeId) {
        let Some(skew) = self.plan.clock else {
            return;
        };
        let offset_ms = self.rng.random_range(0..=skew.offset_ms_max);
        let drift_ppm = self
            .rng
            .random_range(-skew.drift_ppm_max..=skew.drift_ppm_max);
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        // Drift stays far below 100% (`ClockSkew` bounds), so the clock never runs back.
        server.clock_offset_ms = i64::try_from(offset_ms).unwrap_or(0);
        server.clock_drift_ppm = drift_ppm;
        self.counts.skewed_clocks += 1;
        self.trace.record(self.now_ms, id.0, "clock-skew", || {
            format!("offset={offset_ms}ms drift={drift_ppm}ppm")
        });
    }

    /// Schedules the first strike of every recurring fault of the plan.
    pub(crate) fn schedule_first_faults(&mut self) {
        let firsts = [
            (self.plan.partition, FaultEvent::PartitionStart),
            (self.plan.crash, FaultEvent::Crash),
            (self.plan.pause, FaultEvent::Pause),
        ];
        for (schedule, event) in firsts {
            if let Some(schedule) = schedule {
                let at = self.now_ms + schedule.gap_ms(&mut self.rng);
                self.schedule(at, Event::Fault(event));
            }
        }
    }

    /// Handles a fault event. Once the heal phase started, only resumes still happen.
    pub(crate) fn fault(&mut self, event: FaultEvent) {
        if let FaultEvent::Resume { node, incarnation } = event {
            self.fault_resume(node, incarnation);
            return;
        }
        if !self.faults_on {
            return;
        }
        match event {
            FaultEvent::PartitionStart => self.fault_partition_start(),
            FaultEvent::PartitionEnd => {
                self.net.cut.clear();
                self.trace
                    .record(self.now_ms, 0, "partition-end", String::new);
                if let Some(schedule) = self.plan.partition {
                    let at = self.now_ms + schedule.gap_ms(&mut self.rng);
                    self.schedule(at, Event::Fault(FaultEvent::PartitionStart));
                }
            }
            FaultEvent::Depose { stale } => self.fault_depose_swap(stale),
            FaultEvent::Crash => self.fault_crash(),
            FaultEvent::Restart { node, incarnation } => {
                let same = self
                    .servers
                    .get(&node)
                    .is_some_and(|s| s.incarnation == incarnation && s.node.is_none());
                if same {
                    self.start(node);
                }
            }
            FaultEvent::Pause => self.fault_pause(),
            FaultEvent::Resume { .. } => {}
        }
    }

    /// A random non-empty proper subset of the servers.
    fn fault_group(&mut self) -> BTreeSet<NodeId> {
        let ids: Vec<NodeId> = self.servers.keys().copied().collect();
        let size = self.rng.random_range(1..ids.len().max(2));
        let mut group = BTreeSet::new();
        while group.len() < size.min(ids.len()) {
            if let Some(id) = ids.get(self.rng.random_range(0..ids.len())) {
                group.insert(*id);
            }
        }
        group
    }

    fn fault_partition_start(&mut self) {
        let Some(schedule) = self.plan.partition else {
            return;
        };
        let duration_ms = schedule.duration_ms(&mut self.rng);
        let kind = match self.rng.random_range(0..5) {
            0 => PartitionKind::Symmetric,
            1 => PartitionKind::Asymmetric,
            2 => PartitionKind::OneWay,
            3 => PartitionKind::Clog,
            _ => PartitionKind::Depose,
        };
        if kind == PartitionKind::Depose
            && let Some(leader) = self.fault_leader(None)
        {
            self.fault_depose(leader);
            return;
        }
        let ids: Vec<NodeId> = self.servers.keys().copied().collect();
        let group = self.fault_group();
        let outside: Vec<NodeId> = ids
            .iter()
            .filter(|id| !group.contains(id))
            .copied()
            .collect();
        let mut links = Vec::new();
        for a in &group {
            for b in &outside {
                match kind {
                    PartitionKind::Symmetric | PartitionKind::Clog | PartitionKind::Depose => {
                        links.push((*a, *b));
                        links.push((*b, *a));
                    }
                    PartitionKind::Asymmetric | PartitionKind::OneWay => links.push((*a, *b)),
                }
            }
        }
        if kind == PartitionKind::OneWay && !links.is_empty() {
            let pick = self.rng.random_range(0..links.len());
            links = links.get(pick).copied().into_iter().collect();
        }
        let until_ms = self.now_ms + duration_ms;
        if kind == PartitionKind::Clog {
            self.counts.clogs += 1;
            for link in &links {
                self.net.clogs.insert(*link, until_ms);
            }
        } else {
            self.counts.partitions += 1;
            self.net.cut.extend(links.iter().copied());
        }
        self.trace.record(self.now_ms, 0, "partition", || {
            let links: Vec<String> = links
                .iter()
                .map(|(a, b)| format!("{}->{}", a.0, b.0))
                .collect();
            format!("{kind:?} for {duration_ms}ms: {}", links.join(" "))
        });
        self.schedule(until_ms, Event::Fault(FaultEvent::PartitionEnd));
    }

    /// The serving leader of the highest epoch other than `except`, if any: the one a
    /// majority follows (a deposed leader may still believe it leads for a while).
    fn fault_leader(&self, except: Option<NodeId>) -> Option<NodeId> {
        self.servers
            .values()
            .filter(|s| Some(s.id) != except)
            .filter_map(|s| s.node.as_ref().map(|node| (s.id, node)))
            .filter(|(_, node)| node.is_leader())
            .max_by_key(|(id, node)| (node.status().replication.epoch, *id))
            .map(|(id, _)| id)
    }

    /// Cuts `group` off from every other server, both ways.
    fn fault_isolate(&mut self, group: &BTreeSet<NodeId>, what: &str, duration_ms: u64) {
        let ids: Vec<NodeId> = self.servers.keys().copied().collect();
        let mut links = Vec::new();
        for a in group {
            for b in ids.iter().filter(|id| !group.contains(id)) {
                links.push((*a, *b));
                links.push((*b, *a));
            }
        }
        self.counts.partitions += 1;
        self.net.cut.extend(links.iter().copied());
        self.trace.record(self.now_ms, 0, "partition", || {
            let group: Vec<String> = group.iter().map(|id| id.0.to_string()).collect();
            format!(
                "{what} for {duration_ms}ms: {{{}}} cut off",
                group.join(",")
            )
        });
    }

    /// First half of a depose strike: `leader` and at most a minority with it are cut
    /// off for about as long as the rest need to elect another leader.
    fn fault_depose(&mut self, leader: NodeId) {
        let ids: Vec<NodeId> = self.servers.keys().copied().collect();
        let minority = (ids.len().saturating_sub(1) / 2).max(1);
        let size = self.rng.random_range(1..=minority);
        let mut group = BTreeSet::from([leader]);
        while group.len() < size {
            if let Some(id) = ids.get(self.rng.random_range(0..ids.len())) {
                group.insert(*id);
            }
        }
        let duration_ms = self.rng.random_range(300..=3_000);
        self.fault_isolate(&group, "Depose", duration_ms);
        let at = self.now_ms + duration_ms;
        self.schedule(at, Event::Fault(FaultEvent::Depose { stale: leader }));
    }

    /// Second half of a depose strike: the deposed side rejoins, and the leader elected
    /// meanwhile (if any) is cut off, so the next election weighs the deposed leader's
    /// old-epoch log against the new epoch's.
    fn fault_depose_swap(&mut self, stale: NodeId) {
        self.net.cut.clear();
        self.trace
            .record(self.now_ms, 0, "partition-end", String::new);
        let Some(schedule) = self.plan.partition else {
            return;
        };
        match self.fault_leader(Some(stale)) {
            Some(fresh) => {
                let duration_ms = schedule.duration_ms(&mut self.rng);
                self.fault_isolate(&BTreeSet::from([fresh]), "Depose (new leader)", duration_ms);
                let at = self.now_ms + duration_ms;
                self.schedule(at, Event::Fault(FaultEvent::PartitionEnd));
            }
            None => {
                let at = self.now_ms + schedule.gap_ms(&mut self.rng);
                self.schedule(at, Event::Fault(FaultEvent::PartitionStart));
            }
        }
    }

    /// A random running server (paused ones included), if any.
    fn fault_pick_running(&mut self, unpaused: bool) -> Option<NodeId> {
        let now = self.now_ms;
        let ids: Vec<NodeId> = self
            .servers
            .values()
            .filter(|s| s.node.is_some() && (!unpaused || s.paused_until_ms <= now))
            .map(|s| s.id)
            .collect();
        if ids.is_empty() {
            return None;
        }
        ids.get(self.rng.random_range(0..ids.len())).copied()
    }

    fn fault_crash(&mut self) {
        let Some(schedule) = self.plan.crash else {
            return;
        };
        if let Some(id) = self.fault_pick_running(false) {
            self.counts.crashes += 1;
            self.crash(id);
            let downtime_ms = schedule.duration_ms(&mut self.rng);
            let incarnation = self.servers.get(&id).map_or(0, |s| s.incarnation);
            let at = self.now_ms + downtime_ms;
            self.schedule(
                at,
                Event::Fault(FaultEvent::Restart {
                    node: id,
                    incarnation,
                }),
            );
        }
        let at = self.now_ms + schedule.gap_ms(&mut self.rng);
        self.schedule(at, Event::Fault(FaultEvent::Crash));
    }

    fn fault_pause(&mut self) {
        let Some(schedule) = self.plan.pause else {
            return;
        };
        if let Some(id) = self.fault_pick_running(true) {
            let duration_ms = schedule.duration_ms(&mut self.rng);
            let until_ms = self.now_ms + duration_ms;
            if let Some(server) = self.servers.get_mut(&id) {
                server.paused_until_ms = until_ms;
                let incarnation = server.incarnation;
                self.counts.pauses += 1;
                self.trace.record(self.now_ms, id.0, "pause", || {
                    format!("for {duration_ms}ms")
                });
                self.schedule(
                    until_ms,
                    Event::Fault(FaultEvent::Resume {
                        node: id,
                        incarnation,
                    }),
                );
            }
        }
        let at = self.now_ms + schedule.gap_ms(&mut self.rng);
        self.schedule(at, Event::Fault(FaultEvent::Pause));
    }

    /// Ends a pause: the queued inputs are processed in arrival order.
    fn fault_resume(&mut self, id: NodeId, incarnation: u64) {
        let now = self.now_ms;
        let Some(server) = self.servers.get_mut(&id) else {
            return;
        };
        if server.incarnation != incarnation || server.paused_until_ms > now {
            return;
        }
        server.paused_until_ms = 0;
        let backlog = std::mem::take(&mut server.backlog);
        self.monitor.resumed(id, now);
        self.trace
            .record(now, id.0, "resume", || format!("queued={}", backlog.len()));
        for input in backlog {
            self.step(id, input);
        }
        self.arm_tick(id);
    }

    /// Turns every fault off (partitions, clogs, loss, duplication, latency and fsync
    /// spikes, pauses; no further crashes) and restarts every server whose disk
    /// recovers. Clocks stay skewed: a clock cannot be moved back. Servers with a
    /// damaged disk stay down (at most a minority per run).
    pub fn heal_all(&mut self) {
        self.faults_on = false;
        self.net.heal();
        if let Some(disk) = &mut self.plan.disk {
            disk.fsync.spike_per_mille = 0;
        }
        self.trace.record(self.now_ms, 0, "heal", String::new);
        for client in &mut self.clients {
            client.heal();
        }
        let ids: Vec<NodeId> = self.servers.keys().copied().collect();
        for id in ids {
            let (paused, down, incarnation) = match self.servers.get_mut(&id) {
                Some(server) => {
                    let paused = server.paused_until_ms > self.now_ms;
                    if paused {
                        server.paused_until_ms = self.now_ms;
                    }
                    (paused, server.node.is_none(), server.incarnation)
                }
                None => continue,
            };
            if paused {
                self.fault_resume(id, incarnation);
            }
            if down {
                self.start(id);
            }
        }
    }

    /// Every fault injected so far, the world's and the network's.
    pub fn fault_counts(&self) -> FaultCounts {
        let net = &self.net.counts;
        FaultCounts {
            latency_spikes: net.latency_spikes,
            messages_lost: net.messages_lost,
            messages_duplicated: net.messages_duplicated,
            ..self.counts
        }
    }
}
