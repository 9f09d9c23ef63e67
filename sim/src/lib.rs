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
pub mod monitor;
pub mod net;
pub mod options;
pub mod preload;
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
/// How many times the settling after the clients finish is extended for an abandoned
/// session's expiry that an election moved later (each extension is one session timeout
/// and a little more).
const SETTLE_ROUNDS_MAX: usize = 4;

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
    /// What the run measured against the liveness and efficiency bounds
    /// (`monitor::Measures`; the liveness figures only once its liveness phase ran).
    pub measures: monitor::Measures,
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
        None if options.preload_znodes > 0 => {
            let files = preload::files(
                options.preload_znodes,
                paddock_core::limits::Limits::default(),
            )
            .map_err(std::io::Error::other)?;
            Some(
                (1..=options.nodes)
                    .map(|id| (paddock_core::ids::NodeId(id), files.clone()))
                    .collect(),
            )
        }
        None => None,
    };
    let (mut world, liveness) = simulate_from(options, decisions, trace, start);
    let fault_free = options.faults.0.is_empty();
    // The safety checkers run over whatever history there is, even when the run did not
    // finish: a safety violation is the root cause a livelock or a stall follows from,
    // and the first bad event is what the reader needs.
    let result = check::check_all(&world, fault_free).and(liveness);
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
        measures: world.history.measures.clone(),
        result,
    };
    Ok((report, world))
}

/// Runs the safety and liveness phases of a simulation without checking the history:
/// the world (with its history, whose `measures` hold what the monitor and the liveness
/// phase measured) and the liveness verdict. Tests of the checkers mutate the history
/// this produces.
pub fn simulate(options: &RunOptions, trace: Trace) -> (World, Result<(), Failure>) {
    simulate_with(options, Decisions::seeded(options.seed), trace)
}

/// [`simulate`] with the decisions taken from `decisions`.
pub fn simulate_with(
    options: &RunOptions,
    decisions: Decisions,
    trace: Trace,
) -> (World, Result<(), Failure>) {
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
) -> (World, Result<(), Failure>) {
    let mut world = World::with_start(options, decisions, trace, start);
    while !world.clients_done() && world.run_one(SAFETY_PHASE_MS_MAX) {}
    let safety_ended_ms = world.now_ms;
    let liveness = liveness(&mut world);
    let mut measures = world.monitor.measures.clone();
    measures.run_ms = world.now_ms;
    measures.time_writes(&world.history.ops, safety_ended_ms);
    if let Ok(heal) = &liveness {
        measures.time_to_leader_ms = Some(heal.time_to_leader_ms);
        measures.op_after_heal_max_ms = heal.op_after_heal_max_ms;
        measures.catch_up_max_ms = heal.catch_up_max_ms;
        measures.catch_up_missed = heal.catch_up_missed;
    }
    world.history.measures = measures;
    (world, liveness.map(|_| ()))
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

/// What the liveness phase measured.
#[derive(Debug, Clone, Copy, Default)]
struct Healed {
    time_to_leader_ms: u64,
    op_after_heal_max_ms: u64,
    catch_up_max_ms: u64,
    catch_up_missed: u64,
}

/// Heals every fault and requires a leader and the end of all pending work in bounded
/// virtual time; then lets the ensemble settle so every server catches up with what was
/// committed before healing.
fn liveness(world: &mut World) -> Result<Healed, Failure> {
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
    let mut catch_up = CatchUp::at_heal(world);
    while !done(world) {
        if !world.run_one(deadline) {
            break;
        }
        catch_up.observe(world);
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
                has_leader(world)
            ),
        ));
    }
    // Five seconds, and long enough for every abandoned session's expiry to commit
    // (checker `sessions`; an election on the way moves it later, hence the rounds).
    let finished_ms = world.now_ms;
    let mut settle = finished_ms + 5_000;
    for _ in 0..SETTLE_ROUNDS_MAX {
        while world.run_one(settle) {
            catch_up.observe(world);
        }
        let due = world
            .history
            .abandoned
            .values()
            .map(|sent| check::abandoned_expiry_due_ms(&world.history, *sent, u64::MAX) + 1)
            .max()
            .unwrap_or(0);
        if due <= world.now_ms {
            break;
        }
        settle = due;
    }
    exhausted(world)?;
    // A member whose log was lost is re-synced by the first committed entry of the
    // current epoch it holds: once the run settled under a leader, none still needs it.
    if let Some((id, _)) = world.servers.iter().find(|(_, s)| {
        s.node
            .as_ref()
            .is_some_and(|n| n.replication_status().resync_needed)
    }) {
        return Err(Failure::new(
            "liveness",
            format!(
                "server {} still needs a resync (its log was lost) once the run settled, {} ms after every client finished",
                id.0,
                world.now_ms - finished_ms
            ),
        ));
    }
    connections_held(world)?;
    log_spans_reported(world)?;
    let (catch_up_max_ms, catch_up_missed) = catch_up.slowest(world)?;
    Ok(Healed {
        time_to_leader_ms: leader_at_ms.unwrap_or(world.now_ms) - healed_ms,
        op_after_heal_max_ms: op_after_heal_max_ms(&world.history, healed_ms),
        catch_up_max_ms,
        catch_up_missed,
    })
}

/// Once the run has settled, every running server holds exactly the client connections
/// open to it: a closed one whose state (its watches, its queues) a server keeps is a
/// leak no bound of a single step sees.
fn connections_held(world: &World) -> Result<(), Failure> {
    for (id, server) in &world.servers {
        let Some(node) = &server.node else {
            continue;
        };
        let open = world
            .links
            .values()
            .filter(|l| l.open && l.server == *id)
            .count() as u64;
        let held = node.memory().connections;
        if held != open {
            return Err(Failure::new(
                "liveness",
                format!(
                    "server {} holds {held} client connections once the run settled, but {open} are open to it",
                    id.0
                ),
            ));
        }
    }
    Ok(())
}

/// Once the run has settled, the log span every running server reports (what the
/// simulator compares to tell a snapshot's need) is its log's: it ends at the last index
/// its replication status names and starts no later than its commit index (only
/// committed entries are compacted into a snapshot).
fn log_spans_reported(world: &World) -> Result<(), Failure> {
    for (id, server) in &world.servers {
        let Some(node) = &server.node else {
            continue;
        };
        let (start, last) = node.log_span();
        let status = node.replication_status();
        if last != status.last_index || start > status.commit_index || start > last {
            return Err(Failure::new(
                "stats",
                format!(
                    "server {} reports its log spanning {start}..={last}, but its last index is {} and its commit index {}",
                    id.0, status.last_index, status.commit_index
                ),
            ));
        }
    }
    Ok(())
}

/// The longest an operation took after healing: from healing for one pending then,
/// from its invocation for one started after.
fn op_after_heal_max_ms(history: &history::History, healed_ms: u64) -> u64 {
    history
        .ops
        .iter()
        .filter_map(|op| {
            let done = op.completed_ms?;
            (done > healed_ms).then(|| done - op.invoked_ms.max(healed_ms))
        })
        .max()
        .unwrap_or(0)
}

/// Every server's progress towards what was committed before healing.
struct CatchUp {
    healed_ms: u64,
    /// The highest index applied anywhere at healing.
    target: u64,
    /// Per server: what it had applied at healing, and when it reached the target.
    servers: std::collections::BTreeMap<paddock_core::ids::NodeId, (u64, Option<u64>)>,
}

impl CatchUp {
    fn at_heal(world: &World) -> CatchUp {
        let target = world
            .history
            .payloads
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0);
        let servers = world
            .servers
            .iter()
            .filter(|(_, s)| !s.disk_damaged)
            .map(|(id, s)| {
                let applied = s.node.as_ref().map_or(0, |n| n.applied_index());
                (*id, (applied, (applied >= target).then_some(world.now_ms)))
            })
            .collect();
        CatchUp {
            healed_ms: world.now_ms,
            target,
            servers,
        }
    }

    fn observe(&mut self, world: &World) {
        for (id, (_, reached)) in &mut self.servers {
            if reached.is_none()
                && world
                    .servers
                    .get(id)
                    .and_then(|s| s.node.as_ref())
                    .is_some_and(|n| n.applied_index() >= self.target)
            {
                *reached = Some(world.now_ms);
            }
        }
    }

    /// The slowest server's time to catch up and what it missed; a server that never
    /// did fails the run.
    fn slowest(&self, world: &World) -> Result<(u64, u64), Failure> {
        let mut slowest = (0, 0);
        for (id, (applied, reached)) in &self.servers {
            let Some(at) = reached else {
                let now = world
                    .servers
                    .get(id)
                    .and_then(|s| s.node.as_ref())
                    .map(|n| n.applied_index());
                return Err(Failure::new(
                    "liveness",
                    format!(
                        "server {} did not catch up: it had applied index {applied} at healing and {now:?} at {} ms, {} ms later, short of index {} committed before healing",
                        id.0,
                        world.now_ms,
                        world.now_ms - self.healed_ms,
                        self.target
                    ),
                ));
            };
            let took = at - self.healed_ms;
            if took >= slowest.0 {
                slowest = (took, self.target.saturating_sub(*applied));
            }
        }
        Ok(slowest)
    }
}
