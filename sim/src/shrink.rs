//! Shrinking: from a failing run, find smaller options that still fail the same checker.
//!
//! Greedy descent over the run's options: at each step try, in order, halving the ops,
//! halving the clients, removing each enabled fault, one size smaller ensemble, then
//! the gentler cuts (a quarter of the ops, one client); the first candidate that still
//! fails the same checker becomes the current run and the search restarts from it. It
//! stops when no candidate fails, or after [`SHRINK_RUNS_MAX`] runs.
//!
//! A smaller option draws the seed's RNG differently, so the smaller run is a different
//! history, not a prefix of the original one; what is kept is the seed, the checker and
//! a replay command. The same input always shrinks to the same result (runs are
//! deterministic and candidates are tried in a fixed order). The runner is a parameter
//! so the search itself can be tested without a failing build.

use crate::RunReport;
use crate::options::RunOptions;

/// Most runs one shrink may spend (each is a full simulation).
pub const SHRINK_RUNS_MAX: u32 = 300;

/// The outcome of a shrink.
#[derive(Debug, Clone)]
pub struct ShrinkReport {
    /// The run as given.
    pub original: RunReport,
    /// The smallest run found that fails the same checker.
    pub smallest: RunReport,
    /// Runs spent, the original included.
    pub runs: u32,
    /// The shrinking steps taken, in order (e.g. `ops 1000 -> 500`).
    pub steps: Vec<String>,
}

/// Shrinks the failing run of `options`, running each candidate with `run`. Returns the
/// original report as the error when it does not fail.
pub fn shrink(
    options: &RunOptions,
    run: &mut dyn FnMut(&RunOptions) -> RunReport,
) -> Result<ShrinkReport, Box<RunReport>> {
    let original = run(options);
    let Err(failure) = &original.result else {
        return Err(Box::new(original));
    };
    let checker = failure.checker;
    let mut smallest = original.clone();
    let mut runs = 1;
    let mut steps = Vec::new();
    'descend: loop {
        for (step, candidate) in candidates(&smallest.options) {
            if runs >= SHRINK_RUNS_MAX {
                break 'descend;
            }
            let report = run(&candidate);
            runs += 1;
            if report.result.as_ref().is_err_and(|f| f.checker == checker) {
                smallest = report;
                steps.push(step);
                continue 'descend;
            }
        }
        break;
    }
    Ok(ShrinkReport {
        original,
        smallest,
        runs,
        steps,
    })
}

/// The smaller variants of `options` to try, largest cut first, each with a label.
fn candidates(options: &RunOptions) -> Vec<(String, RunOptions)> {
    let mut out = Vec::new();
    let mut push = |label: String, change: &dyn Fn(&mut RunOptions)| {
        let mut candidate = options.clone();
        change(&mut candidate);
        if candidate != *options {
            out.push((label, candidate));
        }
    };
    let ops = options.ops;
    let clients = options.clients;
    push(format!("ops {ops} -> {}", ops / 2), &|o| o.ops = ops / 2);
    if clients > 1 {
        push(format!("clients {clients} -> {}", clients / 2), &|o| {
            o.clients = clients / 2
        });
    }
    for fault in options.faults.0.iter().copied() {
        push(format!("without fault {}", fault.name()), &|o| {
            o.faults.0.remove(&fault);
        });
    }
    if options.nodes > 3 {
        let nodes = options.nodes - 2;
        push(format!("nodes {} -> {nodes}", options.nodes), &|o| {
            o.nodes = nodes
        });
    }
    push(format!("ops {ops} -> {}", ops - ops / 4), &|o| {
        o.ops = ops - ops / 4
    });
    if clients > 1 {
        push(format!("clients {clients} -> {}", clients - 1), &|o| {
            o.clients = clients - 1
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::check::Failure;
    use crate::options::{Fault, FaultSet};

    fn report(options: &RunOptions, result: Result<(), Failure>) -> RunReport {
        RunReport {
            options: options.clone(),
            ops_completed: options.ops,
            committed: 0,
            events: 0,
            sim_ms: 0,
            trace_hash: 0,
            fault_plan: String::new(),
            fault_counts: crate::faults::FaultCounts::default(),
            measures: crate::monitor::Measures::default(),
            result,
        }
    }

    // A fake bug that needs the crash fault and at least 37 ops, with 2 clients or more,
    // shrinks to exactly that: the search reaches the smallest failing options, and keeps
    // the failure of the same checker (a different checker's failure is not progress).
    #[test]
    fn shrinks_to_the_smallest_failing_options() {
        let mut fake = |o: &RunOptions| {
            let result = if o.faults.has(Fault::Crash) && o.ops >= 37 && o.clients >= 2 {
                Err(Failure::new("durability", "write lost"))
            } else if o.ops >= 37 {
                Err(Failure::new("liveness", "unrelated"))
            } else {
                Ok(())
            };
            report(o, result)
        };
        let start = RunOptions {
            seed: 4,
            ..RunOptions::default()
        };
        let shrunk = shrink(&start, &mut fake).unwrap();
        let small = &shrunk.smallest.options;
        assert_eq!(small.faults, FaultSet([Fault::Crash].into_iter().collect()));
        assert_eq!(small.clients, 2);
        assert!((37..50).contains(&small.ops), "ops {}", small.ops);
        assert_eq!(small.nodes, 3);
        assert_eq!(small.seed, 4);
        assert_eq!(shrunk.smallest.result.unwrap_err().checker, "durability");
        assert!(shrunk.runs <= SHRINK_RUNS_MAX);
    }

    // A run that passes cannot be shrunk: its report comes back as the error.
    #[test]
    fn passing_runs_are_refused() {
        let mut fake = |o: &RunOptions| report(o, Ok(()));
        let refused = shrink(&RunOptions::default(), &mut fake).unwrap_err();
        assert!(refused.result.is_ok());
    }
}
