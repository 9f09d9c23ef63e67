//! The recipes under faults: used safely they pass every checker on every seed; the lock
//! used without its fencing token admits two acting holders, and the checker says so
//! with the seed and the command that replays it.

#![allow(clippy::unwrap_used)]

use paddock_core::wire::{Request, Response};
use paddock_sim::check::check_all;
use paddock_sim::history::{History, Outcome};
use paddock_sim::options::RunOptions;
use paddock_sim::recipes::{self, WorkloadKind};
use paddock_sim::trace::Trace;

fn options(seed: u64, workload: WorkloadKind) -> RunOptions {
    RunOptions {
        seed,
        clients: 15,
        workload,
        ..RunOptions::default()
    }
}

/// How much of each recipe a history shows.
#[derive(Debug, Default)]
struct Activity {
    lock_acts: usize,
    election_acts: usize,
    lock_holders: usize,
    queue_taken: usize,
    config_writes: usize,
    config_events: usize,
    registry_listings: usize,
}

fn activity(history: &History) -> Activity {
    let ok = |o: &Outcome| matches!(o, Outcome::Reply { err: 0, .. });
    let mut tokens = std::collections::BTreeSet::new();
    let mut a = Activity::default();
    for act in &history.acts {
        match act.resource {
            "lock" => {
                a.lock_acts += 1;
                tokens.insert(act.token);
            }
            _ => a.election_acts += 1,
        }
    }
    a.lock_holders = tokens.len();
    for op in &history.ops {
        match (&op.request, &op.outcome) {
            (Request::Delete(d), o) if d.path.starts_with(recipes::QUEUE) && ok(o) => {
                a.queue_taken += 1
            }
            (Request::SetData(s), o) if s.path == recipes::CONFIG && ok(o) => a.config_writes += 1,
            (
                Request::GetChildren(r),
                Outcome::Reply {
                    err: 0,
                    response: Some(Response::GetChildren(_)),
                    ..
                },
            ) if r.path == recipes::REGISTRY => a.registry_listings += 1,
            _ => {}
        }
    }
    a.config_events = history
        .events
        .iter()
        .filter(|e| e.event.path == recipes::CONFIG)
        .count();
    a
}

// Every recipe runs for real under faults and passes: locks change hands, leaders act,
// items are taken, the configuration is written and watched, the registry is listed.
#[test]
fn recipes_used_safely_pass_under_faults() {
    let mut total = Activity::default();
    for seed in 0..12 {
        let options = options(seed, WorkloadKind::Recipes);
        let (world, liveness) = paddock_sim::simulate(&options, Trace::hash_only());
        liveness.unwrap();
        if let Err(failure) = check_all(&world, false) {
            panic!(
                "seed {seed}: {}: {}\nreplay: {}",
                failure.checker,
                failure.event,
                options.replay_command()
            );
        }
        let a = activity(&world.history);
        total.lock_acts += a.lock_acts;
        total.lock_holders += a.lock_holders;
        total.election_acts += a.election_acts;
        total.queue_taken += a.queue_taken;
        total.config_writes += a.config_writes;
        total.config_events += a.config_events;
        total.registry_listings += a.registry_listings;
    }
    println!("{total:?}");
    assert!(total.lock_holders > 24, "{total:?}");
    assert!(total.lock_acts > 60, "{total:?}");
    assert!(total.election_acts > 60, "{total:?}");
    assert!(total.queue_taken > 24, "{total:?}");
    assert!(total.config_writes >= 12 * 5, "{total:?}");
    assert!(total.config_events > 24, "{total:?}");
    assert!(total.registry_listings > 24, "{total:?}");
}

// The classic pitfall, shown honestly: the same lock and election used without the
// fencing token admit two acting holders once a holder stalls past its session timeout
// (or is cut off with the minority), and the checker reports it with the seed and the
// replay command; the same seed with fencing passes.
#[test]
fn the_lock_without_fencing_admits_two_holders_and_is_caught() {
    let mut caught = None;
    for seed in 0..100 {
        let unfenced = options(seed, WorkloadKind::RecipesUnfenced);
        let (world, _) = paddock_sim::simulate(&unfenced, Trace::hash_only());
        if let Err(failure) = check_all(&world, false) {
            caught = Some((seed, failure, unfenced.replay_command()));
            break;
        }
    }
    let (seed, failure, replay) = caught.expect("no seed in 0..100 caught the unfenced lock");
    println!(
        "seed {seed}: {}: {}\n{replay}",
        failure.checker, failure.event
    );
    assert!(
        matches!(failure.checker, "recipe-lock" | "recipe-election"),
        "{failure:?}"
    );
    assert!(failure.event.contains("two holders acted"), "{failure:?}");
    assert!(replay.contains("--workload recipes-unfenced"), "{replay}");
    let fenced = options(seed, WorkloadKind::Recipes);
    let (world, _) = paddock_sim::simulate(&fenced, Trace::hash_only());
    check_all(&world, false).unwrap();
}
