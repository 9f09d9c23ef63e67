//! The oracle of the mutation run (`scripts/mutants.sh`): campaigns that must all pass.
//! A mutant of core that makes any seed fail — a checker, a bound, a panic — is killed.
//!
//! `PADDOCK_ORACLE_SEEDS` sets how many seeds of 5 servers under every fault it runs
//! (default 2, so that `cargo test` keeps it quick; the mutation run uses 150); a third
//! as many run on 3 servers, a fifth as many without faults and with the recipes, and
//! one large-tree seed. Runs in parallel on the available cores and stops at the first
//! failing seed.
#![allow(clippy::unwrap_used)]

use paddock_sim::campaign::{SeedRange, run_campaign_until};
use paddock_sim::options::{FaultSet, RunOptions};
use paddock_sim::recipes::WorkloadKind;

#[test]
fn every_oracle_campaign_passes() {
    let seeds: u64 = std::env::var("PADDOCK_ORACLE_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let jobs = std::thread::available_parallelism().map_or(2, usize::from);
    // The cheapest first: a mutant that fails without faults is killed in seconds.
    let campaigns = [
        (
            RunOptions {
                faults: FaultSet::default(),
                ..RunOptions::default()
            },
            seeds.div_ceil(5),
        ),
        (RunOptions::default(), seeds),
        (
            RunOptions {
                nodes: 3,
                ..RunOptions::default()
            },
            seeds.div_ceil(3),
        ),
        (
            RunOptions {
                clients: 15,
                workload: WorkloadKind::Recipes,
                ..RunOptions::default()
            },
            seeds.div_ceil(5),
        ),
        (
            RunOptions {
                nodes: 3,
                preload_znodes: 20_000,
                ..RunOptions::default()
            },
            1,
        ),
    ];
    for (base, count) in campaigns {
        let report = run_campaign_until(&base, &SeedRange(0..count), jobs, &|_| {}, true);
        assert!(
            report.failures.is_empty(),
            "{}",
            report.failure_lines().join("\n")
        );
    }
}
