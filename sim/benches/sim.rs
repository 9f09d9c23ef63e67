//! The simulator's speed: whole seeded runs with the campaign's default options (5
//! servers, all faults, 8 clients, 1,000 ops), reported as simulated events per wall
//! second. Runs are deterministic, so the event count per iteration is fixed and
//! measured once before timing.

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use paddock_sim::options::RunOptions;
use paddock_sim::run;

/// Seeds run per iteration.
const SEEDS: [u64; 3] = [0, 1, 2];

fn bench_sim(c: &mut Criterion) {
    let options = |seed| RunOptions {
        seed,
        ..RunOptions::default()
    };
    let events: u64 = SEEDS
        .iter()
        .map(|&seed| run(&options(seed), None).unwrap().events)
        .sum();
    let mut group = c.benchmark_group("sim");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    group.bench_function("default_options_3_seeds_events", |b| {
        b.iter(|| {
            for seed in SEEDS {
                assert!(run(&options(seed), None).unwrap().events > 0);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_sim);
criterion_main!(benches);
