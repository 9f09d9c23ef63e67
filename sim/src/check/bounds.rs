//! Liveness and efficiency with numbers: what the monitor (`crate::monitor`) and the
//! liveness phase measured, against bounds derived from the servers' timing
//! configuration (docs/consensus.md, Liveness and efficiency bounds). A run that is
//! merely slow, stuck for a while, chatty or bloated fails here like a safety bug.
//!
//! - a bound a server broke while the run went on (memory, leader lease);
//! - after healing: a leader within [`LEADER_TIMEOUTS`] election timeouts; every
//!   operation done within [`OP_TIMEOUTS`] election timeouts of that leader; every
//!   server caught up with what was committed before healing within
//!   [`CATCH_UP_TIMEOUTS`] election timeouts of that leader plus
//!   [`CATCH_UP_MS_PER_ENTRY`] per entry it missed;
//! - without faults: no leadership but the first and those zxid rollovers force, no
//!   operation lost with its connection but at a leader change (at most
//!   [`LOST_PER_CLIENT_AND_LEADER_CHANGE`] per client and change), and heartbeats at
//!   their configured rate (commit notices, sent as heartbeats, counted
//!   at one per follower and committed entry at most);
//! - housekeeping: at most [`BACKGROUND_PASSES_PER_SECOND`] pass over each server's tree
//!   per simulated second (a step's own visits are judged as it happens, by the
//!   monitor: within `VISITS_PER_TOUCH` per unit its operations touched);
//! - without faults, writes are not held back by timers: their mean latency stays
//!   within [`WRITE_LATENCY_MEAN_HEARTBEATS_PERCENT`] percent of a heartbeat interval
//!   (a write needs a few network hops and two fsyncs, a fraction of it);
//! - followers send their sessions' activity (`Touch`) at most [`TOUCH_SLACK`] times per
//!   server and half tick;
//! - leaders pipeline: once a run committed [`PIPELINE_COMMITTED_MIN`] entries, some
//!   leader had two appends in flight to one follower.

use super::Failure;
use crate::history::{History, Outcome};
use crate::monitor::Measures;

/// Election timeouts (the configured maximum) from healing until a leader serves: a
/// pre-vote and a vote round after the first timeout, and a few split votes.
pub const LEADER_TIMEOUTS: u64 = 5;
/// Election timeouts after the leader serves within which every operation is done
/// (clients that lost their connection reconnect, forwarded writes are sent again).
pub const OP_TIMEOUTS: u64 = 2;
/// Election timeouts after the leader serves within which every server holds what was
/// committed before healing, before the per-entry part.
pub const CATCH_UP_TIMEOUTS: u64 = 2;
/// Without faults, operations a client may lose with its connection per leader change
/// (measured at most 1.5 over 3000 fault-free seeds; none in a run with one leader).
pub const LOST_PER_CLIENT_AND_LEADER_CHANGE: u64 = 2;
/// Catch-up time per entry missed, ms.
pub const CATCH_UP_MS_PER_ENTRY: u64 = 2;
/// Heartbeats (timed, and commit notices) per follower may exceed the configured rate
/// by this many percent.
pub const HEARTBEAT_SLACK_PERCENT: u64 = 10;
/// Housekeeping (snapshot installs, session table rebuilds, the reaper's scan, status
/// counts, digests) may pass over each server's whole tree (and a few dozen sessions)
/// this many times per simulated second, at most.
pub const BACKGROUND_PASSES_PER_SECOND: u64 = 1;
/// What one pass may visit beyond the tree's znodes: the sessions and a few lookups.
pub const BACKGROUND_PASS_SLACK: u64 = 64;
/// The mean latency of the writes of a run without faults, in percent of the heartbeat
/// interval, at most. Ideally a write costs six one-way hops (client, forward, append,
/// acknowledgement, commit notice, reply) and two fsyncs, about half an interval in the
/// simulator; a commit or an acknowledgement that waits for the next timer costs about
/// an interval more per write. The slack above the ideal covers reordered forwards,
/// which wait for their retransmission.
pub const WRITE_LATENCY_MEAN_HEARTBEATS_PERCENT: u64 = 150;
/// Writes a run needs before their mean latency is judged.
pub const WRITE_LATENCY_WRITES_MIN: u64 = 50;
/// Touch messages per server and half tick, at most: one from the timer, and room for a
/// restart or a clock drift within the period.
pub const TOUCH_SLACK: u64 = 2;
/// Committed entries a run needs before its pipelining is judged.
pub const PIPELINE_COMMITTED_MIN: u64 = 100;

/// Checks the measures of a run.
pub fn check(history: &History, fault_free: bool) -> Result<(), Failure> {
    let m = &history.measures;
    if let Some(breach) = &m.breach {
        return Err(breach.clone());
    }
    after_heal(m)?;
    background(history, m)?;
    if history.traffic.appends == 0 {
        // Nobody counted the traffic (a real network's history): the rest is unknown.
        return Ok(());
    }
    touches(history, m)?;
    let committed = history.payloads.len() as u64;
    if fault_free {
        rates(history, m, committed)?;
        write_latency(m)?;
    }
    if committed >= PIPELINE_COMMITTED_MIN && m.pipeline_depth_max < 2 && history.starts.is_empty()
    {
        return Err(Failure::new(
            "bounds",
            format!(
                "{committed} entries committed and no leader ever had two appends in flight to one follower: replication is not pipelined"
            ),
        ));
    }
    Ok(())
}

fn after_heal(m: &Measures) -> Result<(), Failure> {
    let Some(leader_ms) = m.time_to_leader_ms else {
        return Ok(());
    };
    let timeout = m.timing.election_timeout_ms_max;
    let leader_bound = LEADER_TIMEOUTS * timeout;
    if leader_ms > leader_bound {
        return Err(Failure::new(
            "bounds",
            format!(
                "no leader served until {leader_ms} ms after healing, above {LEADER_TIMEOUTS} election timeouts ({leader_bound} ms)"
            ),
        ));
    }
    let op_bound = leader_ms + OP_TIMEOUTS * timeout;
    if m.op_after_heal_max_ms > op_bound {
        return Err(Failure::new(
            "bounds",
            format!(
                "an operation took {} ms after healing, above the leader's {leader_ms} ms and {OP_TIMEOUTS} election timeouts ({op_bound} ms)",
                m.op_after_heal_max_ms
            ),
        ));
    }
    let catch_up_bound =
        leader_ms + CATCH_UP_TIMEOUTS * timeout + m.catch_up_missed * CATCH_UP_MS_PER_ENTRY;
    if m.catch_up_max_ms > catch_up_bound {
        return Err(Failure::new(
            "bounds",
            format!(
                "a server took {} ms after healing to apply the {} entries it missed, above {catch_up_bound} ms",
                m.catch_up_max_ms, m.catch_up_missed
            ),
        ));
    }
    Ok(())
}

/// Housekeeping stays within its passes per simulated second.
fn background(history: &History, m: &Measures) -> Result<(), Failure> {
    let servers = history.applied.len() as u64;
    let seconds = m.run_ms.div_ceil(1000) + 1;
    let allowed =
        BACKGROUND_PASSES_PER_SECOND * servers * (m.znodes_max + BACKGROUND_PASS_SLACK) * seconds;
    if m.work.background > allowed {
        return Err(Failure::new(
            "bounds",
            format!(
                "housekeeping visited {} znodes and sessions over {} ms on {servers} servers of at most {} znodes, above {allowed} ({BACKGROUND_PASSES_PER_SECOND} pass per server per second)",
                m.work.background, m.run_ms, m.znodes_max
            ),
        ));
    }
    Ok(())
}

/// Followers report their sessions' activity to the leader at most once per half tick
/// each (the Touch timer), and once more per start.
fn touches(history: &History, m: &Measures) -> Result<(), Failure> {
    let servers = history.applied.len() as u64;
    let period = (m.timing.tick_ms / 2).max(1);
    let allowed = TOUCH_SLACK * servers * (m.run_ms / period + 1);
    if history.traffic.touches > allowed {
        return Err(Failure::new(
            "bounds",
            format!(
                "{} session touches sent in {} ms by {servers} servers, above {allowed} ({TOUCH_SLACK} per server per {period} ms, half a tick)",
                history.traffic.touches, m.run_ms
            ),
        ));
    }
    Ok(())
}

/// Without faults, writes complete within a fraction of a heartbeat interval on average.
fn write_latency(m: &Measures) -> Result<(), Failure> {
    let bound = m.timing.heartbeat_interval_ms * WRITE_LATENCY_MEAN_HEARTBEATS_PERCENT / 100;
    if m.writes_timed >= WRITE_LATENCY_WRITES_MIN && m.write_latency_mean_ms > bound {
        return Err(Failure::new(
            "bounds",
            format!(
                "{} writes without faults took {} ms on average (the slowest {} ms), above {bound} ms ({WRITE_LATENCY_MEAN_HEARTBEATS_PERCENT}% of the {} ms heartbeat interval): something waits for a timer",
                m.writes_timed,
                m.write_latency_mean_ms,
                m.write_latency_max_ms,
                m.timing.heartbeat_interval_ms
            ),
        ));
    }
    Ok(())
}

fn rates(history: &History, m: &Measures, committed: u64) -> Result<(), Failure> {
    let rollovers = match m.timing.zxid_counter_max {
        u32::MAX => 0,
        max => committed.div_ceil(u64::from(max.max(1))),
    };
    if m.leaderships > 1 + rollovers {
        return Err(Failure::new(
            "bounds",
            format!(
                "{} leaderships without faults, where the first and {rollovers} zxid rollovers explain {}",
                m.leaderships,
                1 + rollovers
            ),
        ));
    }
    // A client loses its outstanding operation when its server drops the connection;
    // without faults only a leader change makes servers do that (followers close their
    // clients' connections), and a client may lose one more reconnecting meanwhile.
    let lost = history
        .ops
        .iter()
        .filter(|op| matches!(op.outcome, Outcome::Lost))
        .count() as u64;
    let clients = history
        .ops
        .iter()
        .map(|op| op.client)
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    let lost_max = LOST_PER_CLIENT_AND_LEADER_CHANGE * clients * (m.leaderships.saturating_sub(1));
    if lost > lost_max {
        return Err(Failure::new(
            "bounds",
            format!(
                "{lost} operations lost with their connections without faults, where {} leader changes explain {lost_max} at most for {clients} clients",
                m.leaderships.saturating_sub(1)
            ),
        ));
    }
    let followers = (history.applied.len() as u64).saturating_sub(1);
    let timed = m.run_ms / m.timing.heartbeat_interval_ms.max(1) + 1;
    let allowed = followers * (timed + committed) * (100 + HEARTBEAT_SLACK_PERCENT) / 100;
    if history.traffic.heartbeats > allowed {
        return Err(Failure::new(
            "bounds",
            format!(
                "{} heartbeats to {followers} followers in {} ms without faults, above {allowed}: one per {} ms and one per committed entry ({committed}) each, and {HEARTBEAT_SLACK_PERCENT}%",
                history.traffic.heartbeats, m.run_ms, m.timing.heartbeat_interval_ms
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
    use crate::monitor::Timing;
    use paddock_core::ids::{NodeId, Zxid};

    fn history(committed: u64, measures: Measures) -> History {
        let mut history = History::default();
        for i in 1..=committed {
            history.payloads.insert(i, (Zxid(i), Vec::new()));
        }
        for id in 1..=3 {
            history.applied.insert(NodeId(id), Vec::new());
        }
        history.traffic = Traffic {
            appends: committed,
            entries: committed * 2,
            heartbeats: 2 * (measures.run_ms / 50 + 1 + committed),
            ..Traffic::default()
        };
        history.measures = measures;
        history
    }

    fn healthy() -> Measures {
        Measures {
            leaderships: 1,
            pipeline_depth_max: 4,
            time_to_leader_ms: Some(800),
            op_after_heal_max_ms: 900,
            catch_up_max_ms: 1200,
            catch_up_missed: 40,
            run_ms: 10_000,
            write_latency_max_ms: 220,
            write_latency_mean_ms: 20,
            writes_timed: 400,
            timing: Timing {
                heartbeat_interval_ms: 50,
                election_timeout_ms_max: 1000,
                zxid_counter_max: u32::MAX,
                tick_ms: 2000,
            },
            ..Measures::default()
        }
    }

    fn fails(history: &History, fault_free: bool, words: &str) {
        let failure = check(history, fault_free).unwrap_err();
        assert_eq!(failure.checker, "bounds");
        assert!(failure.event.contains(words), "{}", failure.event);
    }

    #[test]
    fn a_healthy_run_passes_and_each_bound_bites() {
        check(&history(200, healthy()), true).unwrap();
        let breach = Measures {
            breach: Some(Failure::new("bounds", "server 1 holds too much")),
            ..healthy()
        };
        fails(&history(200, breach), false, "holds too much");
        let slow_leader = Measures {
            time_to_leader_ms: Some(5001),
            ..healthy()
        };
        fails(&history(200, slow_leader), false, "no leader served");
        let slow_op = Measures {
            op_after_heal_max_ms: 2801,
            ..healthy()
        };
        fails(&history(200, slow_op), false, "an operation took 2801 ms");
        let slow_catch_up = Measures {
            catch_up_max_ms: 800 + 2000 + 80 + 1,
            ..healthy()
        };
        fails(
            &history(200, slow_catch_up),
            false,
            "to apply the 40 entries",
        );
        let elections = Measures {
            leaderships: 2,
            ..healthy()
        };
        fails(&history(200, elections.clone()), true, "2 leaderships");
        check(&history(200, elections), false).unwrap();
        let rollovers = Measures {
            leaderships: 3,
            timing: Timing {
                zxid_counter_max: 100,
                ..healthy().timing
            },
            ..healthy()
        };
        check(&history(200, rollovers.clone()), true).unwrap();
        // Operations lost with their connections: none with one leader, two per client
        // and leader change otherwise.
        let lose = |history: &mut History, client: u32, n: usize| {
            for _ in 0..n {
                history.ops.push(crate::history::OpRecord {
                    client,
                    session: paddock_core::ids::SessionId(1),
                    server: NodeId(1),
                    xid: 1,
                    request: paddock_core::wire::Request::Ping,
                    ids: Vec::new(),
                    invoked_ms: 10,
                    completed_ms: Some(20),
                    outcome: Outcome::Lost,
                });
            }
        };
        let mut lossy = history(200, healthy());
        lose(&mut lossy, 0, 1);
        fails(&lossy, true, "1 operations lost");
        check(&lossy, false).unwrap();
        let mut after_changes = history(200, rollovers);
        lose(&mut after_changes, 0, 4);
        lose(&mut after_changes, 1, 4);
        check(&after_changes, true).unwrap();
        lose(&mut after_changes, 1, 1);
        fails(&after_changes, true, "9 operations lost");
        let serial = Measures {
            pipeline_depth_max: 1,
            ..healthy()
        };
        fails(&history(200, serial.clone()), false, "not pipelined");
        check(&history(99, serial), false).unwrap();
    }

    #[test]
    fn slow_writes_fail_without_faults() {
        let mut slow = healthy();
        slow.write_latency_mean_ms = 75;
        check(&history(200, slow.clone()), true).unwrap();
        slow.write_latency_mean_ms = 76;
        fails(&history(200, slow.clone()), true, "took 76 ms on average");
        check(&history(200, slow.clone()), false).unwrap();
        slow.writes_timed = WRITE_LATENCY_WRITES_MIN - 1;
        check(&history(200, slow), true).unwrap();
    }

    #[test]
    fn touches_beyond_two_per_half_tick_fail() {
        let mut chatty = history(200, healthy());
        chatty.measures.timing.tick_ms = 2000;
        // 3 servers, 10 000 ms: 11 half ticks each.
        chatty.traffic.touches = 2 * 3 * 11;
        check(&chatty, false).unwrap();
        chatty.traffic.touches += 1;
        fails(&chatty, false, "67 session touches");
    }

    #[test]
    fn housekeeping_beyond_a_pass_per_second_fails() {
        let mut busy = history(200, healthy());
        busy.measures.znodes_max = 36;
        // 3 servers, 11 seconds, 100 visits a pass.
        busy.measures.work.background = 3 * 100 * 11;
        check(&busy, false).unwrap();
        busy.measures.work.background += 1;
        fails(&busy, false, "housekeeping visited 3301");
    }

    #[test]
    fn heartbeats_above_the_rate_fail_without_faults() {
        let mut chatty = history(200, healthy());
        let allowed = 2 * (10_000 / 50 + 1 + 200) * 110 / 100;
        chatty.traffic.heartbeats = allowed;
        check(&chatty, true).unwrap();
        chatty.traffic.heartbeats = allowed + 1;
        fails(&chatty, true, "heartbeats");
        check(&chatty, false).unwrap();
    }
}
