//! paddock-sim: a deterministic simulator of a Paddock ensemble.
//!
//! A run builds a [`world::World`] from its options (one seed drives everything), lets
//! clients work through the real wire protocol while faults are injected (the safety
//! phase), then heals every fault and requires the ensemble to finish all pending work
//! (the liveness phase), and finally runs every checker over the history.

pub mod campaign;
pub mod check;
pub mod client;
pub mod decide;
pub mod disk;
pub mod faults;
pub mod history;
pub mod net;
pub mod options;
pub mod recipes;
pub mod saved;
pub mod shrink;
pub mod trace;
pub mod workload;
pub mod world;

use std::path::Path;

use check::Failure;
use decide::Decisions;
use options::RunOptions;
use trace::Trace;
use world::World;

/// Longest the safety phase may run, virtual ms.
pub const SAFETY_PHASE_MS_MAX: u64 = 600_000;
/// How long, after healing, the ensemble has to elect a leader and finish every
/// pending operation, virtual ms (plus `LIVENESS_MS_PER_OP_LEFT` for each operation the
/// clients had not started when the safety phase ran out of time).
pub const LIVENESS_PHASE_MS_MAX: u64 = 60_000;

/// Extra liveness time per operation not yet started at healing, virtual ms: a healthy
/// ensemble answers one in well under 100 ms, think time included.
pub const LIVENESS_MS_PER_OP_LEFT: u64 = 500;

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The options it ran with.
    pub options: RunOptions,
    /// Client operations that got an answer.
    pub ops_completed: u64,
    /// Highest log index any server applied.
    pub committed: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end, ms.
    pub sim_ms: u64,
    /// The trace fingerprint.
    pub trace_hash: u64,
    /// The fault plan the seed chose (`FaultPlan::describe`).
    pub fault_plan: String,
    /// What the faults injected, damaged disks included.
    pub fault_counts: faults::FaultCounts,
    /// Virtual ms from healing until a leader was serving (when the run passed).
    pub time_to_leader_ms: Option<u64>,
    /// The verdict.
    pub result: Result<(), Failure>,
}

impl RunReport {
    /// The one summary line (`seed=.. nodes=.. ops=.. committed=.. faults=.. trace=.. result=..`).
    pub fn summary_line(&self) -> String {
        let result = match &self.result {
            Ok(()) => "ok".to_owned(),
            Err(f) => format!("FAIL {}: {}", f.checker, f.event),
        };
        format!(
            "seed={} nodes={} ops={} committed={} faults={} trace={:016x} result={}",
            self.options.seed,
            self.options.nodes,
            self.ops_completed,
            self.committed,
            self.options.faults,
            self.trace_hash,
            result
        )
    }
}

/// Runs one simulation; `trace_path` writes the JSON-lines trace.
pub fn run(options: &RunOptions, trace_path: Option<&Path>) -> std::io::Result<RunReport> {
    run_with(options, Decisions::seeded(options.seed), trace_path)
}

/// Runs one simulation whose decisions come from `decisions` (see [`decide`]): the
/// `sim_cluster` fuzz target steers every choice of the run with its input bytes.
pub fn run_with(
    options: &RunOptions,
    decisions: Decisions,
    trace_path: Option<&Path>,
) -> std::io::Result<RunReport> {
    run_world(options, decisions, trace_path).map(|(report, _)| report)
}

/// Runs one simulation and writes every server's final disk under `dir` as a data
/// directory a real server starts from ([`saved::save`]).
pub fn run_and_save_disks(
    options: &RunOptions,
    trace_path: Option<&Path>,
    dir: &Path,
) -> std::io::Result<(RunReport, Vec<saved::SavedServer>)> {
    let (report, world) = run_world(options, Decisions::seeded(options.seed), trace_path)?;
    let saved = saved::save(&world, dir)?;
    Ok((report, saved))
}

/// [`run_with`], keeping the world.
fn run_world(
    options: &RunOptions,
    decisions: Decisions,
    trace_path: Option<&Path>,
) -> std::io::Result<(RunReport, World)> {
    let trace = match trace_path {
        Some(path) => Trace::to_file(path)?,
        None => Trace::hash_only(),
    };
    let start = match &options.from_disks {
        Some(dir) => Some(saved::load_start(dir, options.nodes)?),
        None => None,
    };
    let (mut world, liveness) = simulate_from(options, decisions, trace, start);
    let fault_free = options.faults.0.is_empty();
    // The safety checkers run over whatever history there is, even when the run did not
    // finish: a safety violation is the root cause a livelock or a stall follows from,
    // and the first bad event is what the reader needs.
    let result = check::check_all(&world, fault_free).and(liveness);
    let time_to_leader_ms = result.as_ref().ok().copied();
    let result = result.map(|_| ());
    world.trace.finish();
    let ops_completed = world
        .history
        .ops
        .iter()
        .filter(|o| matches!(o.outcome, history::Outcome::Reply { .. }))
        .count() as u64;
    let report = RunReport {
        options: options.clone(),
        ops_completed,
        committed: world
            .history
            .payloads
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0),
        events: world.events,
        sim_ms: world.now_ms,
        trace_hash: world.trace.hash(),
        fault_plan: world.describe_scenario(),
        fault_counts: world.fault_counts(),
        time_to_leader_ms,
        result,
    };
    Ok((report, world))
}

/// Runs the safety and liveness phases of a simulation without checking the history:
/// the world (with its history) and the liveness verdict (time to leader after healing,
/// ms). Tests of the checkers mutate the history this produces.
pub fn simulate(options: &RunOptions, trace: Trace) -> (World, Result<u64, Failure>) {
    simulate_with(options, Decisions::seeded(options.seed), trace)
}

/// [`simulate`] with the decisions taken from `decisions`.
pub fn simulate_with(
    options: &RunOptions,
    decisions: Decisions,
    trace: Trace,
) -> (World, Result<u64, Failure>) {
    simulate_from(options, decisions, trace, None)
}

/// [`simulate_with`], the servers starting from the disks in `start`
/// ([`saved::load_start`]) rather than empty ones.
pub fn simulate_from(
    options: &RunOptions,
    decisions: Decisions,
    trace: Trace,
    start: Option<
        std::collections::BTreeMap<paddock_core::ids::NodeId, paddock_core::storage::MemFiles>,
    >,
) -> (World, Result<u64, Failure>) {
    let mut world = World::with_start(options, decisions, trace, start);
    while !world.clients_done() && world.run_one(SAFETY_PHASE_MS_MAX) {}
    let liveness = liveness(&mut world);
    (world, liveness)
}

/// A run that used up its event budget is a livelock: events kept coming while virtual
/// time stood (nearly) still.
fn exhausted(world: &World) -> Result<(), Failure> {
    if world.events_exhausted() {
        return Err(Failure::new(
            "liveness",
            format!(
                "{} events processed by virtual time {} ms: a livelock",
                world.events, world.now_ms
            ),
        ));
    }
    Ok(())
}

/// Heals every fault and requires a leader and the end of all pending work in bounded
/// virtual time; then lets the ensemble settle so every server catches up. Returns the
/// virtual ms from healing until a leader was serving.
fn liveness(world: &mut World) -> Result<u64, Failure> {
    exhausted(world)?;
    world.heal_all();
    world.wake_clients();
    let healed_ms = world.now_ms;
    let ops_left: u64 = world.clients.iter().map(|c| c.ops_left()).sum();
    let allowed_ms = LIVENESS_PHASE_MS_MAX + ops_left * LIVENESS_MS_PER_OP_LEFT;
    let deadline = healed_ms + allowed_ms;
    let has_leader = |w: &World| {
        w.servers
            .values()
            .any(|s| s.node.as_ref().is_some_and(|n| n.is_leader()))
    };
    let done = |w: &World| w.clients_done() && has_leader(w);
    let mut leader_at_ms = has_leader(world).then_some(healed_ms);
    while !done(world) {
        if !world.run_one(deadline) {
            break;
        }
        if leader_at_ms.is_none() && has_leader(world) {
            leader_at_ms = Some(world.now_ms);
        }
    }
    exhausted(world)?;
    if !done(world) {
        let pending = world.clients.iter().filter(|c| !c.done()).count();
        return Err(Failure::new(
            "liveness",
            format!(
                "{allowed_ms} ms after healing ({ops_left} ops not started then): {pending} clients unfinished, leader={}",
                world
                    .servers
                    .values()
                    .any(|s| s.node.as_ref().is_some_and(|n| n.is_leader()))
            ),
        ));
    }
    let settle = world.now_ms + 5_000;
    while world.run_one(settle) {}
    exhausted(world)?;
    Ok(leader_at_ms.unwrap_or(world.now_ms) - healed_ms)
}
