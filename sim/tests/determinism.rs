//! Determinism: a run is a function of its options. The same seed and options give the
//! same trace hash, run after run in one process and whether or not a trace file is
//! written; another seed gives another hash. Runs use every fault, where hidden sources
//! of nondeterminism (hash order, wall clock, thread timing) would show first.

#![allow(clippy::unwrap_used)]

use paddock_sim::options::{FaultSet, RunOptions};
use paddock_sim::run;

fn options(seed: u64) -> RunOptions {
    RunOptions {
        seed,
        nodes: 5,
        clients: 4,
        ops: 200,
        faults: FaultSet::all(),
        bug: None,
        from_disks: None,
        workload: Default::default(),
        preload_znodes: 0,
    }
}

// The same seed twice in one process gives the same hash, events, time and verdict.
#[test]
fn same_seed_same_trace() {
    for seed in [1, 7, 42] {
        let a = run(&options(seed), None).unwrap();
        let b = run(&options(seed), None).unwrap();
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(a.events, b.events, "seed {seed}");
        assert_eq!(a.sim_ms, b.sim_ms, "seed {seed}");
        assert_eq!(a.summary_line(), b.summary_line(), "seed {seed}");
    }
}

// Equal options built separately (a clone, a fault set parsed from text) give the same
// hash, and writing the trace file does not change it.
#[test]
fn option_equal_runs_and_trace_files_agree() {
    let plain = run(&options(3), None).unwrap();
    let parsed = RunOptions {
        faults: "latency,loss,dup,partition,crash,pause,clock,disk,client"
            .parse()
            .unwrap(),
        ..options(3)
    };
    assert_eq!(parsed, options(3));
    let again = run(&parsed, None).unwrap();
    assert_eq!(plain.trace_hash, again.trace_hash);
    let path =
        std::env::temp_dir().join(format!("paddock-determinism-{}.jsonl", std::process::id()));
    let traced = run(&options(3), Some(&path)).unwrap();
    let lines = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
    std::fs::remove_file(&path).unwrap();
    assert_eq!(plain.trace_hash, traced.trace_hash);
    assert!(
        lines > 0 && lines <= traced.events,
        "{lines} trace lines for {} events",
        traced.events
    );
}

// Different seeds give different hashes: the hash really depends on what happened.
#[test]
fn other_seeds_other_traces() {
    let hashes: std::collections::BTreeSet<u64> = (0..6)
        .map(|seed| run(&options(seed), None).unwrap().trace_hash)
        .collect();
    assert_eq!(hashes.len(), 6);
}
