//! Campaigns: many seeds run in parallel over the cores, with the same options.
//!
//! Workers are scoped threads that pull the next seed from one atomic counter, so a slow
//! seed never holds up the others. Each seed's run is itself deterministic; only the
//! order in which seeds finish depends on thread timing, and nothing here lets that order
//! reach the result: failures are sorted by seed before they are returned.
//!
//! A run that panics (a core invariant assertion fired) is a failure like any other, of
//! the checker `panic`, so one bad seed cannot end a campaign. This module does not print
//! or draw anything; the caller sees each finished seed through a callback.

use std::any::Any;
use std::fmt;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::check::Failure;
use crate::options::RunOptions;
use crate::{RunReport, run};

/// One seed in this many runs from a preloaded large tree ([`LARGE_TREE_ZNODES`]
/// znodes), unless the campaign's options already name a starting state.
pub const LARGE_TREE_EVERY_SEEDS: u64 = 100;

/// Znodes of a campaign's large-tree runs.
pub const LARGE_TREE_ZNODES: u64 = 100_000;

/// The options of `seed` in a campaign over `base`: seeds `99, 199, ...` start from a
/// large tree.
pub fn seed_options(base: &RunOptions, seed: u64) -> RunOptions {
    let large = base.preload_znodes == 0
        && base.from_disks.is_none()
        && seed % LARGE_TREE_EVERY_SEEDS == LARGE_TREE_EVERY_SEEDS - 1;
    RunOptions {
        seed,
        preload_znodes: if large {
            LARGE_TREE_ZNODES
        } else {
            base.preload_znodes
        },
        ..base.clone()
    }
}

/// Most worker threads a campaign starts, whatever `--jobs` says.
pub const JOBS_MAX: usize = 256;

/// A half-open range of seeds, written `A..B` on the command line (`N` alone is `N..N+1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRange(pub Range<u64>);

impl FromStr for SeedRange {
    type Err = String;

    fn from_str(text: &str) -> Result<SeedRange, String> {
        let parse = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|e| format!("bad seed {s:?} in {text:?}: {e}; expected A..B"))
        };
        let range = match text.split_once("..") {
            Some((a, b)) => parse(a)?..parse(b)?,
            None => {
                let seed = parse(text)?;
                seed..seed.saturating_add(1)
            }
        };
        if range.is_empty() {
            return Err(format!(
                "empty seed range {text:?}; expected A..B with A < B"
            ));
        }
        Ok(SeedRange(range))
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.0.start, self.0.end)
    }
}

/// What a campaign produced.
#[derive(Debug, Clone)]
pub struct CampaignReport {
    /// Seeds whose run passed every checker.
    pub passed: u64,
    /// Reports of the failing seeds, in seed order.
    pub failures: Vec<RunReport>,
    /// Simulated events over all seeds.
    pub events: u64,
    /// Wall time of the whole campaign.
    pub wall: Duration,
    /// Faults injected over all seeds.
    pub injected: crate::faults::FaultCounts,
    /// The largest figure each bound was measured at, over the seeds.
    pub measures: crate::monitor::Measures,
}

impl CampaignReport {
    /// A report from failures in the order they were found; they are kept in seed order
    /// so the output does not depend on thread timing.
    pub fn from_unordered(
        passed: u64,
        mut failures: Vec<RunReport>,
        events: u64,
        wall: Duration,
    ) -> CampaignReport {
        failures.sort_by_key(|r| r.options.seed);
        CampaignReport {
            passed,
            failures,
            events,
            wall,
            injected: crate::faults::FaultCounts::default(),
            measures: crate::monitor::Measures::default(),
        }
    }

    /// Seeds run.
    pub fn seeds(&self) -> u64 {
        self.passed + self.failures.len() as u64
    }

    /// Seeds per wall minute.
    pub fn seeds_per_minute(&self) -> f64 {
        self.seeds() as f64 * 60.0 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Simulated events per wall second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Each failing seed's summary line followed by its replay command, in seed order.
    pub fn failure_lines(&self) -> Vec<String> {
        self.failures
            .iter()
            .flat_map(|r| {
                [
                    r.summary_line(),
                    format!("  replay: {}", r.options.replay_command()),
                ]
            })
            .collect()
    }

    /// The final line: `N passed, M failed`.
    pub fn summary_line(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failures.len())
    }

    /// The storage faults injected over all seeds, one `name=value` per kind.
    pub fn storage_line(&self) -> String {
        let c = &self.injected;
        format!(
            "storage faults injected: fsync_spikes={} torn={} flips={} damaged_servers={} \
             eio_writes={} enospc={} eio_fsyncs={} lost_segments={}",
            c.fsync_spikes,
            c.torn_writes,
            c.bit_flips,
            c.damaged_servers,
            c.write_errors,
            c.disk_full,
            c.fsync_errors,
            c.lost_segments
        )
    }

    /// The speed line: seeds per minute and simulated events per wall second.
    pub fn speed_line(&self) -> String {
        format!(
            "{} seeds in {:.1} s: {:.0} seeds/min, {:.0} simulated events/s",
            self.seeds(),
            self.wall.as_secs_f64(),
            self.seeds_per_minute(),
            self.events_per_second()
        )
    }
}

/// Runs every seed of `seeds` with `base`'s other options on `jobs` threads (at least
/// one, at most [`JOBS_MAX`]); `on_done` sees each report as its seed finishes.
pub fn run_campaign(
    base: &RunOptions,
    seeds: &SeedRange,
    jobs: usize,
    on_done: &(dyn Fn(&RunReport) + Sync),
) -> CampaignReport {
    run_campaign_until(base, seeds, jobs, on_done, false)
}

/// [`run_campaign`], starting no seed after one failed when `fail_fast` (the seeds
/// already running finish): for an oracle that needs one failure, not all of them.
pub fn run_campaign_until(
    base: &RunOptions,
    seeds: &SeedRange,
    jobs: usize,
    on_done: &(dyn Fn(&RunReport) + Sync),
    fail_fast: bool,
) -> CampaignReport {
    let started = Instant::now();
    let failed = std::sync::atomic::AtomicBool::new(false);
    let next = AtomicU64::new(seeds.0.start);
    let end = seeds.0.end;
    let results: Mutex<(u64, u64, Vec<RunReport>)> = Mutex::new((0, 0, Vec::new()));
    let injected = Mutex::new(crate::faults::FaultCounts::default());
    let measures = Mutex::new(crate::monitor::Measures::default());
    let worker = || {
        loop {
            let seed = next.fetch_add(1, Ordering::Relaxed);
            if seed >= end || (fail_fast && failed.load(Ordering::Relaxed)) {
                break;
            }
            let report = run_guarded(&seed_options(base, seed));
            if report.result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            on_done(&report);
            injected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .add(&report.fault_counts);
            measures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .fold(&report.measures);
            // A worker that panicked while holding the lock cannot exist (runs are
            // guarded), but a poisoned lock still holds valid counts.
            let mut guard = results.lock().unwrap_or_else(|p| p.into_inner());
            guard.1 += report.events;
            if report.result.is_ok() {
                guard.0 += 1;
            } else {
                guard.2.push(report);
            }
        }
    };
    let jobs = jobs.clamp(1, JOBS_MAX);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(worker);
        }
    });
    let (passed, events, failures) = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut report = CampaignReport::from_unordered(passed, failures, events, started.elapsed());
    report.injected = injected.into_inner().unwrap_or_else(|p| p.into_inner());
    report.measures = measures.into_inner().unwrap_or_else(|p| p.into_inner());
    report
}

/// Runs one seed without a trace file, turning a panic into a `panic` failure.
pub fn run_guarded(options: &RunOptions) -> RunReport {
    match run_guarded_traced(options, None) {
        Ok(report) => report,
        // Without a trace file there is no I/O to fail; report it rather than hide it.
        Err(e) => panicked(options, format!("i/o error without a trace file: {e}")),
    }
}

/// Runs one seed, writing the trace to `trace_path` when given; a panic inside the run
/// (a broken invariant) becomes a failure of the checker `panic` naming the message.
pub fn run_guarded_traced(
    options: &RunOptions,
    trace_path: Option<&Path>,
) -> std::io::Result<RunReport> {
    match catch_unwind(AssertUnwindSafe(|| run(options, trace_path))) {
        Ok(result) => result,
        Err(payload) => Ok(panicked(options, panic_message(payload.as_ref()))),
    }
}

fn panicked(options: &RunOptions, message: String) -> RunReport {
    RunReport {
        options: options.clone(),
        ops_completed: 0,
        committed: 0,
        events: 0,
        sim_ms: 0,
        trace_hash: 0,
        fault_plan: String::new(),
        fault_counts: crate::faults::FaultCounts::default(),
        measures: crate::monitor::Measures::default(),
        result: Err(Failure::new("panic", message)),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::options::FaultSet;

    // Seed ranges parse as A..B or a single seed, and empty or malformed ones are refused.
    #[test]
    fn seed_ranges_parse() {
        assert_eq!("3..7".parse::<SeedRange>().unwrap().0, 3..7);
        assert_eq!("9".parse::<SeedRange>().unwrap().0, 9..10);
        assert!("7..3".parse::<SeedRange>().is_err());
        assert!("a..3".parse::<SeedRange>().is_err());
    }

    // A campaign runs every seed once whatever the number of workers, and its counts do
    // not depend on the number of threads.
    #[test]
    fn campaign_runs_each_seed_once() {
        let base = RunOptions {
            nodes: 3,
            clients: 2,
            ops: 20,
            faults: FaultSet::default(),
            ..RunOptions::default()
        };
        let seen = Mutex::new(Vec::new());
        let on_done = |r: &RunReport| seen.lock().unwrap().push(r.options.seed);
        let seeds = SeedRange(10..16);
        let one = run_campaign(&base, &seeds, 1, &on_done);
        let three = run_campaign(&base, &seeds, 3, &on_done);
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, vec![10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15]);
        assert_eq!(one.seeds(), 6);
        assert_eq!(one.passed, three.passed);
        assert_eq!(one.events, three.events);
    }

    // Failures print in seed order whatever order the workers found them in, each with
    // the exact command that replays it.
    // Failing fast starts no seed after the first failure; otherwise every seed runs.
    #[test]
    fn a_fail_fast_campaign_stops_at_the_first_failure() {
        let broken = RunOptions {
            from_disks: Some("/nonexistent/paddock-disks".into()),
            ..RunOptions::default()
        };
        let seeds = SeedRange(0..20);
        let fast = run_campaign_until(&broken, &seeds, 1, &|_| {}, true);
        assert_eq!(fast.failures.len(), 1);
        let all = run_campaign_until(&broken, &seeds, 1, &|_| {}, false);
        assert_eq!(all.failures.len(), 20);
    }

    #[test]
    fn failures_print_sorted_with_replay_commands() {
        let failing = |seed| RunReport {
            options: RunOptions {
                seed,
                ..RunOptions::default()
            },
            ops_completed: 1,
            committed: 1,
            events: 1,
            sim_ms: 1,
            trace_hash: 0xab,
            fault_plan: String::new(),
            fault_counts: crate::faults::FaultCounts::default(),
            measures: crate::monitor::Measures::default(),
            result: Err(Failure::new("agreement", "index 3 differs")),
        };
        let found = vec![failing(9), failing(4)];
        let report = CampaignReport::from_unordered(2, found, 2, Duration::from_secs(1));
        let lines = report.failure_lines();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("seed=4 "), "{lines:?}");
        assert!(lines[0].ends_with("result=FAIL agreement: index 3 differs"));
        assert!(
            lines[1].ends_with("run --seed 4 --nodes 5 --clients 8 --ops 1000 --faults all"),
            "{lines:?}"
        );
        assert!(lines[2].starts_with("seed=9 "), "{lines:?}");
        assert_eq!(report.summary_line(), "2 passed, 2 failed");
    }

    // One seed in a hundred starts from a large tree, unless the options name a start.
    #[test]
    fn every_hundredth_seed_starts_from_a_large_tree() {
        let base = RunOptions::default();
        assert_eq!(seed_options(&base, 98).preload_znodes, 0);
        assert_eq!(seed_options(&base, 99).preload_znodes, LARGE_TREE_ZNODES);
        assert_eq!(seed_options(&base, 199).seed, 199);
        let from_disks = RunOptions {
            from_disks: Some("x".into()),
            ..RunOptions::default()
        };
        assert_eq!(seed_options(&from_disks, 99).preload_znodes, 0);
        assert!(
            seed_options(&base, 99)
                .replay_command()
                .ends_with("--preload-znodes 100000")
        );
    }

    // A panic payload's text is kept as the failure event.
    #[test]
    fn panic_messages_are_kept() {
        let payload: Box<dyn Any + Send> = Box::new(String::from("commit went back"));
        assert_eq!(panic_message(payload.as_ref()), "commit went back");
        let payload: Box<dyn Any + Send> = Box::new("static text");
        assert_eq!(panic_message(payload.as_ref()), "static text");
    }
}
