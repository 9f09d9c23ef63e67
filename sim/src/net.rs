//! The network between servers and to clients: latency (with spikes), loss,
//! duplication, partitions and clogs on peer links; latency with per-connection FIFO on
//! client connections.
//!
//! Invariants: bytes on one client connection arrive in the order they were sent, in
//! each direction (TCP), whatever the latency draws: an arrival is never earlier than
//! the previous arrival in the same direction. Peer messages carry no such promise: they
//! may be reordered, lost or duplicated, and the protocol copes. A cut link drops what
//! is sent on it and what is in flight when it arrives; a clogged link holds every
//! message until the clog ends. This module decides fates and times only: the world
//! schedules the deliveries and records the fault events in the trace.

use std::collections::{BTreeMap, BTreeSet};

use crate::decide::Decisions;
use paddock_core::ids::{ConnId, NodeId};
use rand::RngExt;

use crate::faults::{FaultCounts, FaultPlan, Latency};

/// Peer latency when the latency fault is off, ms (uniform).
const PEER_LATENCY_MS: Latency = Latency {
    ms_min: 1,
    ms_max: 4,
    spike_per_mille: 0,
    spike_ms_max: 4,
};

/// Client latency when the latency fault is off, ms (uniform).
const CLIENT_LATENCY_MS: Latency = Latency {
    ms_min: 1,
    ms_max: 2,
    spike_per_mille: 0,
    spike_ms_max: 2,
};

/// Which way bytes travel on a client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// What happened to one peer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Delivered once with ordinary latency.
    Delivered,
    /// Delivered once, late (a latency spike or a clog).
    Delayed,
    /// Dropped by a partition.
    Cut,
    /// Lost at random.
    Lost,
    /// Delivered twice.
    Duplicated,
}

/// The network model.
#[derive(Debug)]
pub struct Network {
    /// Directed links that drop everything.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Directed links that hold every message until this true time, ms.
    pub clogs: BTreeMap<(NodeId, NodeId), u64>,
    latency: Option<Latency>,
    loss_per_mille: u32,
    dup_per_mille: u32,
    /// The last arrival time scheduled per connection and direction, true ms.
    last_arrival_ms: BTreeMap<(ConnId, Direction), u64>,
    /// Spikes, losses and duplicates injected so far.
    pub counts: FaultCounts,
}

impl Network {
    /// The network of a run with fault plan `plan`.
    pub fn new(plan: &FaultPlan) -> Network {
        Network {
            cut: BTreeSet::new(),
            clogs: BTreeMap::new(),
            latency: plan.latency,
            loss_per_mille: plan.loss_per_mille,
            dup_per_mille: plan.dup_per_mille,
            last_arrival_ms: BTreeMap::new(),
            counts: FaultCounts::default(),
        }
    }

    /// When a message sent now from `from` to `to` arrives: none when lost or cut, two
    /// arrivals when duplicated.
    pub fn deliveries(
        &mut self,
        now_ms: u64,
        from: NodeId,
        to: NodeId,
        rng: &mut Decisions,
    ) -> (Vec<u64>, Fate) {
        if self.cut.contains(&(from, to)) {
            return (Vec::new(), Fate::Cut);
        }
        if self.loss_per_mille > 0 && rng.random_range(0..1000) < self.loss_per_mille {
            self.counts.messages_lost += 1;
            return (Vec::new(), Fate::Lost);
        }
        let copies = if self.dup_per_mille > 0 && rng.random_range(0..1000) < self.dup_per_mille {
            self.counts.messages_duplicated += 1;
            2
        } else {
            1
        };
        let clog_until_ms = self.clogs.get(&(from, to)).copied().unwrap_or(0);
        let mut delayed = false;
        let mut arrivals = Vec::with_capacity(copies);
        for _ in 0..copies {
            let (latency_ms, spike) = self.latency.unwrap_or(PEER_LATENCY_MS).draw(rng);
            if spike {
                self.counts.latency_spikes += 1;
            }
            delayed |= spike || clog_until_ms > now_ms;
            arrivals.push(now_ms.max(clog_until_ms) + latency_ms);
        }
        let fate = match (copies, delayed) {
            (2, _) => Fate::Duplicated,
            (_, true) => Fate::Delayed,
            _ => Fate::Delivered,
        };
        (arrivals, fate)
    }

    /// True when messages from `from` reach `to` right now.
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// When bytes sent now on `conn` in `direction` arrive: after a random latency, and
    /// never before the bytes sent earlier in the same direction (TCP is FIFO). The flag
    /// says the latency was a spike.
    pub fn client_arrival(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        direction: Direction,
        rng: &mut Decisions,
    ) -> (u64, bool) {
        let (latency_ms, spike) = self.latency.unwrap_or(CLIENT_LATENCY_MS).draw(rng);
        if spike {
            self.counts.latency_spikes += 1;
        }
        let last = self.last_arrival_ms.entry((conn, direction)).or_insert(0);
        let at = (now_ms + latency_ms).max(*last);
        *last = at;
        (at, spike)
    }

    /// Forgets a closed connection's arrival times.
    pub fn forget(&mut self, conn: ConnId) {
        self.last_arrival_ms.remove(&(conn, Direction::ToServer));
        self.last_arrival_ms.remove(&(conn, Direction::ToClient));
    }

    /// Every fault off: links whole, no clogs, no loss, duplication or spikes.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.clogs.clear();
        self.loss_per_mille = 0;
        self.dup_per_mille = 0;
        if let Some(latency) = &mut self.latency {
            latency.spike_per_mille = 0;
        }
    }
}
