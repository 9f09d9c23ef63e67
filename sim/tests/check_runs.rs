//! Real runs pass every checker: a few seeds with no faults and with all faults, on 3 and 5
//! servers. (Campaigns run hundreds; this keeps `cargo test` quick.) A failure here is a
//! bug in core or in the simulator: the message names the seed and the first bad event.
#![allow(clippy::unwrap_used)]

use paddock_sim::options::{FaultSet, RunOptions};

fn run(seed: u64, nodes: u64, faults: FaultSet) -> paddock_sim::RunReport {
    let options = RunOptions {
        seed,
        nodes,
        clients: 6,
        ops: 300,
        faults,
        bug: None,
    };
    paddock_sim::run(&options, None).unwrap()
}

// Fault-free runs pass, including the strict session rule (no expiry while the client
// is being answered), and report how long a leader took after healing.
#[test]
fn fault_free_runs_pass() {
    for seed in 0..4 {
        let report = run(seed, 3 + 2 * (seed % 2), FaultSet::default());
        assert_eq!(report.result, Ok(()), "{}", report.summary_line());
        assert!(report.time_to_leader_ms.is_some());
        assert!(report.ops_completed > 0);
    }
}

// Runs with every fault switched on pass.
#[test]
fn runs_with_all_faults_pass() {
    for seed in 0..4 {
        let report = run(seed, 5, FaultSet::all());
        assert_eq!(report.result, Ok(()), "{}", report.summary_line());
    }
}

// Seeds on which the checkers found real bugs in core (see the checkers' report): a
// follower that installs a snapshot keeps its client connections and one-shot watches,
// so the events of the changes the snapshot skipped are never sent and a watch later
// fires for the wrong change. Un-ignore once core is fixed; each must then pass.
#[test]
#[ignore = "core bug: snapshot install keeps client watches (seeds 809, 876, 1016, 1058)"]
fn seeds_with_known_core_bugs() {
    for seed in [809, 876, 1016, 1058] {
        let options = RunOptions {
            seed,
            ..RunOptions::default()
        };
        let report = paddock_sim::run(&options, None).unwrap();
        assert_eq!(report.result, Ok(()), "{}", report.summary_line());
    }
}

// The checkers cost no more than the simulation they check: they are a replay and a few
// sorts over the history, O(history log history), not a search.
#[test]
fn checking_costs_less_than_simulating() {
    let options = RunOptions {
        seed: 3,
        faults: FaultSet::default(),
        ..RunOptions::default()
    };
    let started = std::time::Instant::now();
    let (world, liveness) = paddock_sim::simulate(&options, paddock_sim::trace::Trace::hash_only());
    let simulated = started.elapsed();
    liveness.unwrap();
    let started = std::time::Instant::now();
    let verdict = paddock_sim::check::check_all(&world, true);
    let checked = started.elapsed();
    assert_eq!(verdict, Ok(()));
    println!(
        "{} ops, {} committed: simulate {simulated:?}, check {checked:?}",
        world.history.ops.len(),
        world.history.payloads.len()
    );
    assert!(
        checked < simulated,
        "check {checked:?} vs simulate {simulated:?}"
    );
}
