//! Bounds checked while a run goes on, step by step, rather than over its history at the
//! end: what a server holds in memory, how long a leader cut off from a quorum keeps
//! acting as leader, and whether leaders pipeline their appends. The world calls the
//! monitor after every step of a server and on every peer message sent and delivered
//! (and it holds observers to their role: never a leader, never in an election);
//! the first breach is kept in [`Measures::breach`] and reported by the checkers
//! (`check::bounds`) after every safety checker, so a safety bug that causes a breach is
//! still reported as itself.
//!
//! The bounds, with the reasoning behind each, are in docs/consensus.md (Liveness and
//! efficiency bounds).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use paddock_core::ids::{Epoch, NodeId};
use paddock_core::node::{Node, NodeConfig, PeerMessage};
use paddock_core::replication::{AppendOutcome, Message, MessageBody, Role};

use crate::check::Failure;

/// Largest clock drift a simulated server may have, parts per million
/// (`faults::ClockSkew::drift_ppm_max` draws at most 20 000).
const DRIFT_PPM_MAX: u64 = 20_000;

/// What the monitor and the liveness phase measured over a run: the figures the bounds
/// are checked against, also printed by campaigns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measures {
    /// The first bound a server broke while the run went on.
    pub breach: Option<Failure>,
    /// Leaderships begun (a server becoming leader), over the run.
    pub leaderships: u64,
    /// The longest a leader acted (took a step as leader) after it last heard from a
    /// quorum of voters, ms.
    pub lease_overrun_max_ms: u64,
    /// The most `Append` messages one leader had in flight to one follower.
    pub pipeline_depth_max: u64,
    /// The most log entries one server held.
    pub log_entries_max: u64,
    /// The most log entries one server held not yet applied.
    pub unapplied_max: u64,
    /// The most writes one server had forwarded and not seen acknowledged.
    pub forwarded_max: u64,
    /// Virtual ms from healing until a leader was serving.
    pub time_to_leader_ms: Option<u64>,
    /// The longest an operation took to complete after healing (from healing for one
    /// pending then, from its invocation for one started after), ms.
    pub op_after_heal_max_ms: u64,
    /// The longest a server took after healing to apply every entry committed before
    /// healing, ms, and the entries it was missing then.
    pub catch_up_max_ms: u64,
    /// Entries the server that took `catch_up_max_ms` was missing at healing.
    pub catch_up_missed: u64,
    /// Virtual ms the run lasted.
    pub run_ms: u64,
    /// The longest a write answered before the liveness phase took, invocation to reply,
    /// ms.
    pub write_latency_max_ms: u64,
    /// The mean of those writes' latencies, ms (rounded up).
    pub write_latency_mean_ms: u64,
    /// The writes those latencies are over.
    pub writes_timed: u64,
    /// Work done by the servers' steps (`paddock_core::work`), summed over the run.
    pub work: paddock_core::work::Work,
    /// The most znodes and sessions one step visited.
    pub step_visits_max: u64,
    /// The most znodes any server held.
    pub znodes_max: u64,
    /// Snapshot transfers begun to a follower whose log shared an entry with what the
    /// leader still held (entries would have served).
    pub snapshots_unneeded: u64,
    /// What the bounds derive from: the servers' timing configuration.
    pub timing: Timing,
}

/// The configuration the bounds derive from (every simulated server has the same).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// `heartbeat_interval_ms`.
    pub heartbeat_interval_ms: u64,
    /// `election_timeout_ms_max`.
    pub election_timeout_ms_max: u64,
    /// The zxid counters' limit (a leader steps down when its epoch's is used up).
    pub zxid_counter_max: u32,
    /// `tick_ms` (a follower reports its sessions' activity every half tick at most).
    pub tick_ms: u64,
}

impl Timing {
    /// The timing of `config`.
    pub fn of(config: &NodeConfig) -> Timing {
        Timing {
            heartbeat_interval_ms: config.replication.heartbeat_interval_ms,
            election_timeout_ms_max: config.replication.election_timeout_ms_max,
            zxid_counter_max: config.replication.zxid_counter_max,
            tick_ms: config.tick_ms,
        }
    }
}

impl Measures {
    /// Folds another run's measures in (maxima and sums), for a campaign's summary.
    pub fn fold(&mut self, other: &Measures) {
        self.leaderships = self.leaderships.max(other.leaderships);
        self.lease_overrun_max_ms = self.lease_overrun_max_ms.max(other.lease_overrun_max_ms);
        self.pipeline_depth_max = self.pipeline_depth_max.max(other.pipeline_depth_max);
        self.log_entries_max = self.log_entries_max.max(other.log_entries_max);
        self.unapplied_max = self.unapplied_max.max(other.unapplied_max);
        self.forwarded_max = self.forwarded_max.max(other.forwarded_max);
        self.time_to_leader_ms = self.time_to_leader_ms.max(other.time_to_leader_ms);
        self.op_after_heal_max_ms = self.op_after_heal_max_ms.max(other.op_after_heal_max_ms);
        self.run_ms = self.run_ms.max(other.run_ms);
        self.write_latency_max_ms = self.write_latency_max_ms.max(other.write_latency_max_ms);
        self.write_latency_mean_ms = self.write_latency_mean_ms.max(other.write_latency_mean_ms);
        self.writes_timed = self.writes_timed.max(other.writes_timed);
        self.step_visits_max = self.step_visits_max.max(other.step_visits_max);
        self.znodes_max = self.znodes_max.max(other.znodes_max);
        self.work.visited = self.work.visited.max(other.work.visited);
        self.work.touched = self.work.touched.max(other.work.touched);
        self.work.background = self.work.background.max(other.work.background);
        self.snapshots_unneeded = self.snapshots_unneeded.max(other.snapshots_unneeded);
        if other.catch_up_max_ms > self.catch_up_max_ms {
            self.catch_up_max_ms = other.catch_up_max_ms;
            self.catch_up_missed = other.catch_up_missed;
        }
    }

    /// Times the writes in `ops` answered successfully before `until_ms` (the liveness
    /// phase, whose operations wait for healing).
    pub fn time_writes(&mut self, ops: &[crate::history::OpRecord], until_ms: u64) {
        let (mut sum, mut count, mut max) = (0, 0, 0);
        for op in ops.iter().filter(|op| {
            matches!(
                crate::check::expect::kind(&op.request, op.session),
                crate::check::expect::Kind::Write(_)
            )
        }) {
            let (Some(done), crate::history::Outcome::Reply { err: 0, .. }) =
                (op.completed_ms, &op.outcome)
            else {
                continue;
            };
            if done > until_ms {
                continue;
            }
            let latency = done.saturating_sub(op.invoked_ms);
            sum += latency;
            count += 1;
            max = u64::max(max, latency);
        }
        self.write_latency_max_ms = max;
        self.write_latency_mean_ms = sum.div_ceil(u64::max(count, 1));
        self.writes_timed = count;
    }

    /// One line of the figures.
    pub fn describe(&self) -> String {
        format!(
            "step_visits_max={} background_visits={} leaderships={} lease_overrun_max={}ms pipeline_depth_max={} log_entries_max={} unapplied_max={} forwarded_max={} time_to_leader={}ms op_after_heal_max={}ms catch_up_max={}ms(missed {}) write_latency_max={}ms write_latency_mean={}ms snapshots_unneeded={}",
            self.step_visits_max,
            self.work.background,
            self.leaderships,
            self.lease_overrun_max_ms,
            self.pipeline_depth_max,
            self.log_entries_max,
            self.unapplied_max,
            self.forwarded_max,
            self.time_to_leader_ms.unwrap_or(0),
            self.op_after_heal_max_ms,
            self.catch_up_max_ms,
            self.catch_up_missed,
            self.write_latency_max_ms,
            self.write_latency_mean_ms,
            self.snapshots_unneeded,
        )
    }
}

/// The longest a leader may go on acting after it last heard from a quorum, ms, for a
/// configuration: its check-quorum runs every `election_timeout_ms_min` of its own
/// clock and steps down at the first check that finds no quorum heard since the previous
/// one, so the contact it last had can be almost two periods old; a drifting clock
/// stretches that, and the check runs at the first tick due after its deadline.
pub fn lease_bound_ms(config: &NodeConfig) -> u64 {
    let period = config.replication.election_timeout_ms_min;
    2 * period + 2 * period * DRIFT_PPM_MAX / 1_000_000 + config.replication.heartbeat_interval_ms
}

/// Znodes and sessions one step may visit per unit it touched (`paddock_core::work`).
pub const VISITS_PER_TOUCH: u64 = 4;
/// Visits any step may make beyond that: a few lookups of its own.
pub const VISITS_PER_STEP_SLACK: u64 = 64;

/// A leader's appends in flight to one follower, for the pipelining measure.
#[derive(Debug, Default)]
struct Pipe {
    /// The leader's epoch when they were sent.
    epoch: Epoch,
    /// The last index of each append not yet acknowledged, in sending order.
    in_flight: VecDeque<u64>,
}

/// The state the monitor keeps between steps.
#[derive(Debug, Default)]
pub struct Monitor {
    voters: BTreeSet<NodeId>,
    /// When each server last heard from each other server: (to, from) → true ms.
    heard: BTreeMap<(NodeId, NodeId), u64>,
    /// Servers leading now, since when (true ms).
    leading_since: BTreeMap<NodeId, u64>,
    /// When each server last resumed from a pause or started (true ms): a process that
    /// does not run cannot act.
    resumed: BTreeMap<NodeId, u64>,
    /// Appends in flight: (leader, follower).
    pipes: BTreeMap<(NodeId, NodeId), Pipe>,
    /// The snapshots a leader began sending a follower in its epoch: (leader, follower)
    /// → (epoch, snapshot indexes).
    snapshots: BTreeMap<(NodeId, NodeId), (Epoch, BTreeSet<u64>)>,
    /// What was measured.
    pub measures: Measures,
}

impl Monitor {
    /// A monitor of an ensemble of `voters`, each configured as `config`.
    pub fn new(voters: BTreeSet<NodeId>, config: &NodeConfig) -> Monitor {
        Monitor {
            voters,
            measures: Measures {
                timing: Timing::of(config),
                ..Measures::default()
            },
            ..Monitor::default()
        }
    }

    /// Server `id` started or resumed at `now_ms`.
    pub fn resumed(&mut self, id: NodeId, now_ms: u64) {
        self.resumed.insert(id, now_ms);
        self.leading_since.remove(&id);
    }

    /// Server `id` stopped (crashed).
    pub fn stopped(&mut self, id: NodeId) {
        self.leading_since.remove(&id);
        self.pipes.retain(|(leader, _), _| *leader != id);
    }

    fn breach(&mut self, event: String) {
        self.breach_of("bounds", event);
    }

    /// Records the run's first breach, of `checker`'s rule.
    pub fn breach_of(&mut self, checker: &'static str, event: String) {
        if self.measures.breach.is_none() {
            self.measures.breach = Some(Failure::new(checker, event));
        }
    }

    /// A message server `from` sent `to` does not survive its encoding (`what` says how).
    pub fn codec_breach(&mut self, from: NodeId, to: NodeId, what: String) {
        self.breach_of(
            "peer-codec",
            format!("server {} to {}: {what}", from.0, to.0),
        );
    }

    /// Server `from` granted `to` its vote or pre-vote while it still needed a resync
    /// (its log was lost: it may lack an entry it acknowledged, so its vote could elect a
    /// leader without it; docs/consensus.md §3).
    pub fn vote_while_resyncing(&mut self, from: NodeId, to: NodeId) {
        self.breach_of(
            "resync",
            format!(
                "server {} granted server {} its vote while it needed a resync (its log was lost)",
                from.0, to.0
            ),
        );
    }

    /// Server `id` took a step at true time `now_ms`; `from` is the peer whose message it
    /// was, if any.
    pub fn after_step(
        &mut self,
        now_ms: u64,
        id: NodeId,
        from: Option<NodeId>,
        node: &Node,
        config: &NodeConfig,
    ) {
        if let Some(from) = from {
            self.heard.insert((id, from), now_ms);
        }
        self.work(now_ms, id, paddock_core::work::take(), node);
        let memory = node.memory();
        let m = &mut self.measures;
        m.log_entries_max = m.log_entries_max.max(memory.log_entries);
        m.unapplied_max = m.unapplied_max.max(memory.unapplied);
        m.forwarded_max = m.forwarded_max.max(memory.forwarded);
        if let Some(why) = memory.exceeded(config) {
            self.breach(format!("server {} at {now_ms} ms {why}", id.0));
        }
        self.lease(now_ms, id, node.role(), config);
    }

    /// A step's visits stay within what its operations touched; housekeeping is summed
    /// (judged per simulated second by `check::bounds`).
    fn work(&mut self, now_ms: u64, id: NodeId, work: paddock_core::work::Work, node: &Node) {
        let m = &mut self.measures;
        m.work.visited += work.visited;
        m.work.touched += work.touched;
        m.work.background += work.background;
        m.step_visits_max = m.step_visits_max.max(work.visited);
        m.znodes_max = m.znodes_max.max(node.tree().node_count() as u64);
        let allowed = VISITS_PER_TOUCH * work.touched + VISITS_PER_STEP_SLACK;
        if work.visited > allowed {
            self.breach(format!(
                "server {} at {now_ms} ms visited {} znodes and sessions in one step whose operations touched {} (at most {allowed}; the tree holds {})",
                id.0,
                work.visited,
                work.touched,
                node.tree().node_count()
            ));
        }
    }

    /// A leader acting long after it last heard from a quorum breaks its lease.
    fn lease(&mut self, now_ms: u64, id: NodeId, role: Role, config: &NodeConfig) {
        if role != Role::Leader {
            self.leading_since.remove(&id);
            return;
        }
        if !self.voters.contains(&id) {
            self.breach_of(
                "observers",
                format!("observer {} became leader at {now_ms} ms", id.0),
            );
        }
        let since = *self.leading_since.entry(id).or_insert_with(|| {
            self.measures.leaderships += 1;
            now_ms
        });
        let mut heard: Vec<u64> = self
            .voters
            .iter()
            .filter(|v| **v != id)
            .map(|v| self.heard.get(&(id, *v)).copied().unwrap_or(0))
            .collect();
        heard.sort_unstable_by(|a, b| b.cmp(a));
        // The leader counts itself; the quorum's last member heard is the one that
        // matters.
        let quorum = self.voters.len() / 2 + 1;
        let contact = heard
            .get(quorum.saturating_sub(2))
            .copied()
            .unwrap_or(now_ms);
        let resumed = self.resumed.get(&id).copied().unwrap_or(0);
        let fresh = contact.max(since).max(resumed);
        let overrun = now_ms.saturating_sub(fresh);
        self.measures.lease_overrun_max_ms = self.measures.lease_overrun_max_ms.max(overrun);
        let bound = lease_bound_ms(config);
        if overrun > bound {
            self.breach(format!(
                "server {} still acts as leader at {now_ms} ms, {overrun} ms after it last heard from a quorum (lease bound {bound} ms)",
                id.0
            ));
        }
    }

    /// A peer message left `from` for `to` (the pipelining measure counts appends; an
    /// observer never takes part in an election).
    pub fn sent(&mut self, from: NodeId, to: NodeId, msg: &PeerMessage) {
        if let PeerMessage::Replication(Message { body, .. }) = msg
            && matches!(
                body,
                MessageBody::PreVote { .. }
                    | MessageBody::Vote { .. }
                    | MessageBody::PreVoteReply { .. }
                    | MessageBody::VoteReply { .. }
            )
            && !self.voters.is_empty()
            && !self.voters.contains(&from)
        {
            self.breach_of(
                "observers",
                format!(
                    "observer {} sent an election message to {}: {body:?}",
                    from.0, to.0
                ),
            );
        }
        let PeerMessage::Replication(Message {
            epoch,
            body:
                MessageBody::Append {
                    prev_index,
                    entries,
                    ..
                },
        }) = msg
        else {
            return;
        };
        if entries.is_empty() {
            return;
        }
        let pipe = self.pipes.entry((from, to)).or_default();
        if pipe.epoch != *epoch {
            pipe.epoch = *epoch;
            pipe.in_flight.clear();
        }
        // A resend from further back (after a rejection, a lost message or a re-probe)
        // replaces what was in flight beyond its start.
        while pipe.in_flight.back().is_some_and(|last| last > prev_index) {
            pipe.in_flight.pop_back();
        }
        pipe.in_flight.push_back(prev_index + entries.len() as u64);
        let depth = pipe.in_flight.len() as u64;
        self.measures.pipeline_depth_max = self.measures.pipeline_depth_max.max(depth);
    }

    /// Leader `from` sent follower `to` the first piece of the snapshot at `index` in
    /// `epoch`; `needed` says whether the follower's log, as it was then, shared no entry
    /// with what the leader still held. The first piece of each snapshot counts once
    /// per leader, epoch and follower (a lost first piece is sent again).
    pub fn snapshot_begun(
        &mut self,
        from: NodeId,
        to: NodeId,
        epoch: Epoch,
        index: u64,
        needed: bool,
    ) {
        let sent = self.snapshots.entry((from, to)).or_default();
        if sent.0 != epoch {
            *sent = (epoch, BTreeSet::new());
        }
        if sent.1.insert(index) && !needed {
            self.measures.snapshots_unneeded += 1;
        }
    }

    /// A peer message from `from` reached `to` (a follower's answer frees its leader's
    /// pipeline).
    pub fn delivered(&mut self, from: NodeId, to: NodeId, msg: &PeerMessage) {
        let PeerMessage::Replication(Message {
            epoch,
            body: MessageBody::AppendReply(outcome),
        }) = msg
        else {
            return;
        };
        let Some(pipe) = self.pipes.get_mut(&(to, from)) else {
            return;
        };
        if pipe.epoch != *epoch {
            return;
        }
        match outcome {
            AppendOutcome::Accepted { match_index } => {
                while pipe
                    .in_flight
                    .front()
                    .is_some_and(|last| last <= match_index)
                {
                    pipe.in_flight.pop_front();
                }
            }
            _ => pipe.in_flight.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paddock_core::ids::Zxid;

    // A first piece sent again counts once; a new epoch or another snapshot counts anew;
    // needed transfers never count.
    #[test]
    fn an_unneeded_snapshot_counts_once_per_leader_epoch_and_follower() {
        let mut monitor = Monitor::default();
        let (leader, follower) = (NodeId(1), NodeId(2));
        monitor.snapshot_begun(leader, follower, Epoch(1), 100, false);
        monitor.snapshot_begun(leader, follower, Epoch(1), 100, false);
        assert_eq!(monitor.measures.snapshots_unneeded, 1);
        monitor.snapshot_begun(leader, follower, Epoch(1), 200, false);
        monitor.snapshot_begun(leader, follower, Epoch(2), 200, false);
        monitor.snapshot_begun(leader, NodeId(3), Epoch(2), 200, true);
        assert_eq!(monitor.measures.snapshots_unneeded, 3);
    }

    #[test]
    fn an_observer_in_an_election_is_a_breach() {
        let voters: BTreeSet<NodeId> = [NodeId(1), NodeId(2)].into();
        let config = NodeConfig::new(NodeId(1), voters.clone());
        let pre_vote = |epoch| {
            PeerMessage::Replication(Message {
                epoch: Epoch(epoch),
                body: MessageBody::PreVote {
                    last_index: 0,
                    last_zxid: Zxid(0),
                },
            })
        };
        let mut monitor = Monitor::new(voters, &config);
        monitor.sent(NodeId(2), NodeId(1), &pre_vote(1));
        assert_eq!(monitor.measures.breach, None, "a voter campaigns");
        monitor.sent(NodeId(3), NodeId(1), &pre_vote(1));
        let breach = monitor.measures.breach.expect("an observer campaigned");
        assert_eq!(breach.checker, "observers");
        assert!(breach.event.contains("observer 3"), "{}", breach.event);
    }
}
