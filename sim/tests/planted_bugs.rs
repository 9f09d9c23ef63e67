//! The checkers can fail: every planted bug (core's `planted-bugs` feature) is caught by a
//! campaign of at most 500 seeds with default options, even seeds on 5 servers and odd
//! ones on 3 (the two ensemble sizes CI's campaigns run: a bug that needs few voters to
//! agree, such as one lost log deciding an election, shows on 3 first), and the unbugged
//! build passes the seeds that caught them. Prints a table of how many seeds each bug
//! needed.
//!
//! Run as CI does: `cargo test --release -p paddock-sim --features planted-bugs --test
//! planted_bugs -- --nocapture`. `PADDOCK_BUGS=name,name` limits the run to those bugs
//! (while working on one of them).

#![cfg(feature = "planted-bugs")]
#![allow(clippy::unwrap_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::Instant;

use paddock_core::bugs::Bug;
use paddock_sim::options::RunOptions;

/// Seeds a bug may need at most (the bound).
const SEEDS_MAX: u64 = 500;

/// Worker threads: the machine has 2 cores.
const THREADS: usize = 2;

/// How one seed ended.
#[derive(Debug, Clone)]
enum Verdict {
    Ok,
    /// A checker failed: its name and first bad event.
    Checker(&'static str, String),
    /// An assertion in core or the simulator fired (an invariant crash).
    Panic(String),
}

fn run_seed(seed: u64, bug: Option<Bug>) -> Verdict {
    let options = RunOptions {
        seed,
        nodes: if seed % 2 == 1 { 3 } else { 5 },
        bug: bug.map(|b| b.name().to_owned()),
        ..RunOptions::default()
    };
    let result = catch_unwind(AssertUnwindSafe(|| paddock_sim::run(&options, None)));
    match result {
        Ok(report) => match report.unwrap().result {
            Ok(()) => Verdict::Ok,
            Err(failure) => Verdict::Checker(failure.checker, failure.event),
        },
        Err(payload) => Verdict::Panic(
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default(),
        ),
    }
}

/// What the campaign found for one bug.
#[derive(Debug, Clone)]
struct Found {
    bug: Bug,
    /// The first failing seed and how it failed; `None` if all seeds passed.
    first: Option<(u64, Verdict)>,
    elapsed_ms: u128,
}

fn campaign(bug: Bug) -> Found {
    let start = Instant::now();
    let first = (0..SEEDS_MAX)
        .map(|seed| (seed, run_seed(seed, Some(bug))))
        .find(|(_, verdict)| !matches!(verdict, Verdict::Ok));
    let found = Found {
        bug,
        first,
        elapsed_ms: start.elapsed().as_millis(),
    };
    // Printed at once too, so a run cut short still shows what was found.
    eprintln!("{}", table_line(&found));
    found
}

/// One line of the table: bug, seeds needed, wall time, first failure.
fn table_line(f: &Found) -> String {
    let (seeds, what) = match &f.first {
        Some((seed, verdict)) => ((seed + 1).to_string(), describe(verdict)),
        None => (format!(">{SEEDS_MAX}"), "NOT CAUGHT".to_owned()),
    };
    format!(
        "{:<32} {seeds:>6} {:>9}  {what}",
        f.bug.name(),
        f.elapsed_ms
    )
}

/// Runs `job` over `items` on `THREADS` threads; results in the order of `items`.
fn parallel<T: Copy + Send + Sync, R: Send>(items: &[T], job: impl Fn(T) -> R + Sync) -> Vec<R> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut next = next.lock().unwrap();
                        *next += 1;
                        *next - 1
                    };
                    let Some(item) = items.get(i) else {
                        return;
                    };
                    let result = job(*item);
                    results.lock().unwrap()[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn describe(verdict: &Verdict) -> String {
    let text = match verdict {
        Verdict::Ok => "ok".to_owned(),
        Verdict::Checker(checker, event) => format!("{checker}: {event}"),
        Verdict::Panic(message) => format!("invariant crash: {message}"),
    };
    text.chars().take(140).collect()
}

// Each planted bug makes some seed in 0..500 fail (a checker, or an invariant assertion
// of core), and the same seeds pass without the bug, so it is the bug that was caught and
// not a flaw of the simulator.
#[test]
fn every_planted_bug_is_caught_and_the_unbugged_build_passes() {
    let bugs: Vec<Bug> = match std::env::var("PADDOCK_BUGS") {
        Ok(names) => names.split(',').map(|name| name.parse().unwrap()).collect(),
        Err(_) => Bug::ALL.to_vec(),
    };
    let found = parallel(&bugs, campaign);
    println!(
        "{:<32} {:>6} {:>9}  first failure",
        "bug", "seeds", "wall_ms"
    );
    for f in &found {
        println!("{}", table_line(f));
    }
    let catching: Vec<u64> = found
        .iter()
        .filter_map(|f| f.first.as_ref().map(|(seed, _)| *seed))
        .collect::<std::collections::BTreeSet<u64>>()
        .into_iter()
        .collect();
    let unbugged = parallel(&catching, |seed| (seed, run_seed(seed, None)));
    for (seed, verdict) in &unbugged {
        assert!(
            matches!(verdict, Verdict::Ok),
            "seed {seed} fails without any planted bug: {}",
            describe(verdict)
        );
    }
    let missed: Vec<&str> = found
        .iter()
        .filter(|f| f.first.is_none())
        .map(|f| f.bug.name())
        .collect();
    assert!(
        missed.is_empty(),
        "not caught in {SEEDS_MAX} seeds: {missed:?}"
    );
}
