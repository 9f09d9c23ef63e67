//! The checkers: each reads the history of a finished run (and the servers' final state)
//! and either passes or names the first bad event it found. They run in a fixed order —
//! agreement, durability, linearizable, reads, sessions, watches, the recipes' own, the
//! message budget, the liveness and efficiency bounds (`bounds`, over what the
//! monitor and the liveness phase measured) — and the first failing one is the verdict.
//! That every operation finishes at all after healing is checked by the run itself
//! (its liveness phase).
//!
//! One replay of the committed sequence on a reference model (`model`) feeds the
//! checkers that need state; the others are sorts and sweeps over the history
//! (`order`). Everything is O(history log history).
//!
//! If the history has a hole in the committed sequence (an index no server was seen
//! applying, possible when a snapshot install skips it everywhere), the replay stops
//! there: ops beyond it are not checked and the watch checker is skipped.

mod agreement;
pub mod bounds;
pub mod brute;
pub mod budget;
mod committed;
pub(crate) mod expect;
mod model;
mod order;
pub mod recipes;
pub mod stats;
mod watches;

use std::collections::{BTreeMap, BTreeSet};

use paddock_core::ids::{NodeId, SessionId};

use crate::history::{History, OpRecord, Outcome};
use crate::world::World;
use committed::{Committed, OpIndex};
use expect::Kind;
use model::Replayed;

/// A checker's verdict against a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The checker's name (part of the one-line summary).
    pub checker: &'static str,
    /// The first bad event, in words.
    pub event: String,
}

impl Failure {
    /// A failure of `checker` at `event`.
    pub fn new(checker: &'static str, event: impl Into<String>) -> Failure {
        Failure {
            checker,
            event: event.into(),
        }
    }
}

/// A running server's state at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFinal {
    /// The server.
    pub id: NodeId,
    /// Its last applied index.
    pub applied_index: u64,
    /// The zxid it reports as applied (`srvr`'s `Zxid`).
    pub applied_zxid: paddock_core::ids::Zxid,
    /// Its tree digest.
    pub digest: u64,
    /// Its ephemerals by owner session.
    pub ephemerals: BTreeMap<SessionId, BTreeSet<String>>,
    /// The request latencies it reports (`srvr`, `mntr`), since it last started.
    pub latency: paddock_core::node::LatencyStats,
    /// True time it last started, ms.
    pub started_ms: u64,
    /// Its clock's drift, parts per million.
    pub clock_drift_ppm: i64,
}

impl ServerFinal {
    /// The final state of `server`, when it runs.
    pub fn of(server: &crate::world::Server) -> Option<ServerFinal> {
        let node = server.node.as_ref()?;
        Some(ServerFinal {
            id: node.id(),
            applied_index: node.applied_index(),
            applied_zxid: node.applied_zxid(),
            digest: node.tree().digest(),
            ephemerals: ephemerals_of(node.tree()),
            latency: node.status().latency,
            started_ms: server.started_ms,
            clock_drift_ppm: server.clock_drift_ppm,
        })
    }
}

/// What the checkers read.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The run's history.
    pub history: &'a History,
    /// Every running server's final state (empty when unknown).
    pub servers: &'a [ServerFinal],
    /// The run injected no faults: a session may then expire only if its client stopped
    /// talking for its whole timeout (docs/consensus.md §14).
    pub fault_free: bool,
}

/// A tree's ephemerals by owner session, as the checkers compare them.
pub fn ephemerals_of(tree: &paddock_core::tree::DataTree) -> BTreeMap<SessionId, BTreeSet<String>> {
    tree.ephemerals()
        .iter()
        .map(|(session, paths)| (*session, paths.iter().cloned().collect()))
        .collect()
}

/// Runs every checker over a finished run.
pub fn check_all(world: &World, fault_free: bool) -> Result<(), Failure> {
    let servers: Vec<ServerFinal> = world.servers.values().filter_map(ServerFinal::of).collect();
    check(&Subject {
        history: &world.history,
        servers: &servers,
        fault_free,
    })
}

/// Checks that need only the history (for tests of the checkers themselves).
pub fn check_history(history: &History) -> Result<(), Failure> {
    check(&Subject {
        history,
        servers: &[],
        fault_free: false,
    })
}

/// Runs every checker over `subject`, in the fixed order.
pub fn check(subject: &Subject<'_>) -> Result<(), Failure> {
    let history = subject.history;
    if let Some(loss) = history.ack_losses.first() {
        return Err(Failure::new("durability", loss.clone()));
    }
    if let Some(breach) = history.wire_breaches.first() {
        return Err(Failure::new("wire", breach.clone()));
    }
    agreement::check(history)?;
    let committed = Committed::read(history)?;
    let complete = committed.gap_at.is_none();
    let index = OpIndex::new(history, &committed);
    let digest_at: BTreeSet<u64> = subject.servers.iter().map(|s| s.applied_index).collect();
    let (findings, replayed) = model::replay(history, &committed, &index, &digest_at);
    agreement::check_final(subject.servers, &replayed)?;
    first(findings.durability)?;
    order::durability(history, &replayed, complete)?;
    first(findings.linearizable)?;
    order::real_time(history, &replayed)?;
    first(findings.reads)?;
    order::monotonic_sessions(history)?;
    order::read_after_sync(history, &replayed)?;
    first(findings.sessions)?;
    sessions(subject, &index, &replayed, complete)?;
    first(findings.watches)?;
    if complete {
        watches::check(
            history,
            &index,
            &replayed.watches.expected,
            &replayed.unmodelled_conns,
        )?;
    }
    recipes::check(history)?;
    stats::check(history, subject.servers)?;
    budget::check(history, subject.fault_free)?;
    bounds::check(history, subject.fault_free)
}

fn first(finding: Option<Failure>) -> Result<(), Failure> {
    finding.map_or(Ok(()), Err)
}

/// Sessions: a session a client saw expire is closed in the committed sequence; no
/// server ends with an ephemeral of a closed session; without faults, no session expires
/// while its client kept talking to the ensemble.
fn sessions(
    subject: &Subject<'_>,
    index: &OpIndex,
    replayed: &Replayed,
    complete: bool,
) -> Result<(), Failure> {
    let history = subject.history;
    if complete {
        for record in &history.sessions {
            if let Some(at_ms) = record.expired_ms
                && !replayed.closed.contains(&record.session)
            {
                return Err(Failure::new(
                    "sessions",
                    format!(
                        "client {} was told session 0x{:x} expired at {at_ms} ms, but no close of it is committed",
                        record.client, record.session.0
                    ),
                ));
            }
        }
    }
    for server in subject.servers {
        if server.applied_index != replayed.last_index {
            continue;
        }
        for (session, paths) in &server.ephemerals {
            if !replayed.alive.contains_key(session) {
                return Err(Failure::new(
                    "sessions",
                    format!(
                        "server {} ends at index {} with ephemerals {paths:?} of session 0x{:x}, which is not live",
                        server.id.0, server.applied_index, session.0
                    ),
                ));
            }
        }
    }
    if subject.fault_free {
        expiries_while_active(history, index, replayed)?;
        expiries_while_pinging(history, replayed)?;
        if complete {
            abandoned_sessions_expire(history, replayed)?;
        }
    }
    expiries_after_commits(history, index, replayed)?;
    Ok(())
}

/// Under any faults: a session's expiry committed less than half its timeout after the
/// client sent a write or sync that committed. That request touched the session at the
/// leader of its time, and any later leader gives every session a full timeout from its
/// own election (docs/consensus.md §14), so whichever leader expired the session saw no touch
/// for a whole timeout only if the expiry came at least a timeout (less clock drift)
/// after the request was sent. Half a timeout leaves ample room for drift.
fn expiries_after_commits(
    history: &History,
    index: &OpIndex,
    replayed: &Replayed,
) -> Result<(), Failure> {
    let sent = sent_by_session(history, index, |op| {
        matches!(op.outcome, Outcome::Reply { err: 0, .. })
            && matches!(
                expect::kind(&op.request, op.session),
                Kind::Write(_) | Kind::Sync(_)
            )
    });
    for (session, _, expiry_index, timeout_ms) in &replayed.expiries {
        let (Some(times), Some(&at)) = (
            sent.get(session),
            history.first_applied_ms.get(expiry_index),
        ) else {
            continue;
        };
        let half = u64::try_from(*timeout_ms).unwrap_or(0) / 2;
        if let Some((t, position)) = sent_between(times, at.saturating_sub(half), at) {
            return Err(Failure::new(
                "sessions",
                format!(
                    "session 0x{:x} expired at index {expiry_index} (committed at {at} ms, timeout {timeout_ms} ms) though {} was sent at {t} ms and committed",
                    session.0,
                    model::describe(position, &history.ops[position])
                ),
            ));
        }
    }
    Ok(())
}

/// A session's expiry proposed at leader time T while its client had a request answered
/// that it sent after T - timeout: the session was touched within its timeout.
fn expiries_while_active(
    history: &History,
    index: &OpIndex,
    replayed: &Replayed,
) -> Result<(), Failure> {
    let sent = sent_by_session(history, index, |op| {
        matches!(op.outcome, Outcome::Reply { .. })
            && !matches!(expect::kind(&op.request, op.session), Kind::Other)
    });
    for (session, time_ms, index, timeout_ms) in &replayed.expiries {
        let Some(times) = sent.get(session) else {
            continue;
        };
        // Leader time, less the base a run from existing disks set every clock ahead by.
        let at = u64::try_from(time_ms.saturating_sub(history.clock_base_ms)).unwrap_or(0);
        let since = at.saturating_sub(u64::try_from(*timeout_ms).unwrap_or(0));
        if let Some((t, position)) = sent_between(times, since, at) {
            return Err(Failure::new(
                "sessions",
                format!(
                    "session 0x{:x} expired at index {index} (leader time {at} ms, timeout {timeout_ms} ms) though {} was sent at {t} ms and answered",
                    session.0,
                    model::describe(position, &history.ops[position])
                ),
            ));
        }
    }
    Ok(())
}

/// A session's expiry proposed at leader time T while its client had a ping answered
/// that it sent after T - timeout and at least a tick before T: the server that answered
/// touched the session, and reports its sessions' activity to the leader every half tick
/// (docs/consensus.md §14), so the leader heard of that ping before T and the session
/// was touched within its timeout. Pings are an idle client's only activity: without
/// this rule a follower that never reports activity passes every run whose clients send
/// operations.
fn expiries_while_pinging(history: &History, replayed: &Replayed) -> Result<(), Failure> {
    let lag_ms = history.measures.timing.tick_ms.max(1);
    for (session, time_ms, index, timeout_ms) in &replayed.expiries {
        let Some(sent) = history.pings.get(session) else {
            continue;
        };
        let at = u64::try_from(time_ms.saturating_sub(history.clock_base_ms)).unwrap_or(0);
        let since = at.saturating_sub(u64::try_from(*timeout_ms).unwrap_or(0));
        if let Some(t) = sent
            .iter()
            .copied()
            .find(|t| *t > since && t.saturating_add(lag_ms) <= at)
        {
            return Err(Failure::new(
                "sessions",
                format!(
                    "session 0x{:x} expired at index {index} (leader time {at} ms, timeout {timeout_ms} ms) though its client sent a ping at {t} ms that was answered",
                    session.0
                ),
            ));
        }
    }
    Ok(())
}

/// When the session a client abandoned after last sending at `last_sent_ms` must have
/// expired by, without faults, if its expiry committed no earlier than `before_ms`: its
/// last frame touched the session at a server within a few ms, a follower reports that
/// within half a tick, the leader's deadline is a timeout later rounded up to a tick, and
/// the expiry commits within a heartbeat interval: two ticks and a heartbeat interval
/// past the timeout. A leader elected since (a zxid rollover deposes one even without
/// faults) gives every session a full timeout from its election (docs/consensus.md §14),
/// so the count starts at the latest of the last send and the first commit of every
/// epoch before `before_ms`.
pub fn abandoned_expiry_due_ms(history: &History, last_sent_ms: u64, before_ms: u64) -> u64 {
    let timing = &history.measures.timing;
    let elected = history
        .payloads
        .iter()
        .filter(|(_, (zxid, _))| zxid.counter() == 0)
        .filter_map(|(index, _)| history.first_applied_ms.get(index).copied())
        .filter(|at| *at < before_ms)
        .max()
        .unwrap_or(0);
    last_sent_ms.max(elected)
        + u64::from(crate::client::SESSION_TIMEOUT_MS)
        + 2 * timing.tick_ms
        + timing.heartbeat_interval_ms
}

/// Without faults, a session whose client abandoned it (dropped its connection without
/// closing it, as a crashed process does) expires by [`abandoned_expiry_due_ms`]: its
/// ephemerals, locks and leaderships must not outlive it for long.
fn abandoned_sessions_expire(history: &History, replayed: &Replayed) -> Result<(), Failure> {
    for (session, last_sent_ms) in &history.abandoned {
        let committed = replayed
            .expiries
            .iter()
            .find(|(s, ..)| s == session)
            .and_then(|(_, _, index, _)| history.first_applied_ms.get(index).copied());
        let due = abandoned_expiry_due_ms(history, *last_sent_ms, committed.unwrap_or(u64::MAX));
        let late = match committed {
            Some(at) if at <= due => continue,
            Some(at) => format!("expired only at {at} ms"),
            // A run that ended before the expiry was due proves nothing.
            None if history.measures.run_ms <= due => continue,
            None => format!("never expired in a run of {} ms", history.measures.run_ms),
        };
        return Err(Failure::new(
            "sessions",
            format!(
                "session 0x{:x}, abandoned by its client after it last sent at {last_sent_ms} ms, {late} (due by {due} ms)",
                session.0
            ),
        ));
    }
    Ok(())
}

/// The ops `keep` selects, by session: (invocation time, position), in invocation order.
fn sent_by_session(
    history: &History,
    index: &OpIndex,
    keep: impl Fn(&OpRecord) -> bool,
) -> BTreeMap<SessionId, Vec<(u64, usize)>> {
    let mut sent: BTreeMap<SessionId, Vec<(u64, usize)>> = BTreeMap::new();
    for (position, op) in history.ops.iter().enumerate() {
        if keep(op) {
            let session = index.op_session.get(position).copied().unwrap_or_default();
            sent.entry(session)
                .or_default()
                .push((op.invoked_ms, position));
        }
    }
    sent
}

/// The first of `times` sent after `since` and no later than `at`.
fn sent_between(times: &[(u64, usize)], since: u64, at: u64) -> Option<(u64, usize)> {
    let first_after = times.partition_point(|(t, _)| *t <= since);
    times.get(first_after).copied().filter(|(t, _)| *t <= at)
}
