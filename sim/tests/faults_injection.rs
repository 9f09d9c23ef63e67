//! Each fault of the plan actually strikes when it is enabled, and never when it is not;
//! the whole run stays deterministic with every fault on.
#![allow(clippy::unwrap_used)]

use paddock_sim::faults::FaultCounts;
use paddock_sim::options::{Fault, FaultSet, RunOptions};
use paddock_sim::trace::Trace;
use paddock_sim::world::World;

/// Runs the safety phase of a small run and returns what was injected.
fn injected(seed: u64, faults: FaultSet) -> FaultCounts {
    let options = RunOptions {
        seed,
        nodes: 3,
        clients: 3,
        ops: 150,
        faults,
        bug: None,
        from_disks: None,
        workload: Default::default(),
        preload_znodes: 0,
    };
    let mut world = World::new(&options, Trace::hash_only());
    while !world.clients_done() && world.run_one(120_000) {}
    world.fault_counts()
}

/// The counters that show `fault` struck.
fn struck(fault: Fault, c: &FaultCounts) -> u64 {
    match fault {
        Fault::Latency => c.latency_spikes,
        Fault::Loss => c.messages_lost,
        Fault::Duplication => c.messages_duplicated,
        Fault::Partition => c.partitions + c.clogs,
        Fault::Crash => c.crashes,
        Fault::Pause => c.pauses,
        Fault::Clock => c.skewed_clocks,
        Fault::Disk => c.fsync_spikes + c.torn_writes + c.bit_flips,
        Fault::Client => 0,
    }
}

fn set(faults: &[Fault]) -> FaultSet {
    FaultSet(faults.iter().copied().collect())
}

// For every fault the simulator owns: with it enabled (crash too for disk, whose torn
// writes and flips happen at crashes), some seed of a handful makes it strike; with every
// other fault enabled but not it, no seed does.
#[test]
fn each_fault_strikes_only_when_enabled() {
    let owned = [
        Fault::Latency,
        Fault::Loss,
        Fault::Duplication,
        Fault::Partition,
        Fault::Crash,
        Fault::Pause,
        Fault::Clock,
        Fault::Disk,
    ];
    for fault in owned {
        let on = if fault == Fault::Disk {
            set(&[Fault::Disk, Fault::Crash])
        } else {
            set(&[fault])
        };
        let hits: u64 = (0..8)
            .map(|seed| struck(fault, &injected(seed, on.clone())))
            .sum();
        assert!(hits > 0, "{fault:?} never struck while enabled");
        let others: Vec<Fault> = Fault::ALL.into_iter().filter(|f| *f != fault).collect();
        for seed in 0..2 {
            let counts = injected(seed, set(&others));
            assert_eq!(
                struck(fault, &counts),
                0,
                "{fault:?} struck while disabled: {counts:?}"
            );
        }
    }
}

// With no fault enabled nothing is injected at all.
#[test]
fn no_faults_inject_nothing() {
    assert_eq!(injected(7, FaultSet::default()), FaultCounts::default());
}

// Disk damage strikes only a minority: over many seeds with crashes and disk faults, no
// run of 3 servers flips bits on more than one disk, some run does flip one, and every
// flipped disk keeps its server down through the heal phase.
#[test]
fn disk_damage_stays_a_minority() {
    let mut flips = 0;
    for seed in 0..64 {
        let options = RunOptions {
            seed,
            nodes: 3,
            clients: 3,
            ops: 150,
            faults: set(&[Fault::Disk, Fault::Crash]),
            bug: None,
            from_disks: None,
            workload: Default::default(),
            preload_znodes: 0,
        };
        let mut world = World::new(&options, Trace::hash_only());
        while !world.clients_done() && world.run_one(120_000) {}
        world.heal_all();
        let counts = world.fault_counts();
        assert!(counts.bit_flips <= 1, "seed {seed}: {counts:?}");
        assert_eq!(counts.damaged_servers, counts.bit_flips, "seed {seed}");
        let down = world.servers.values().filter(|s| s.node.is_none()).count() as u64;
        assert_eq!(down, counts.damaged_servers, "seed {seed}");
        flips += counts.bit_flips;
    }
    assert!(flips > 0, "no seed flipped a bit");
}

// The same seed and options give the same trace hash with every fault on, and another
// seed gives another one.
#[test]
fn same_seed_same_trace_with_all_faults() {
    let options = RunOptions {
        seed: 11,
        nodes: 5,
        clients: 4,
        ops: 200,
        ..RunOptions::default()
    };
    let first = paddock_sim::run(&options, None).unwrap();
    let second = paddock_sim::run(&options, None).unwrap();
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.events, second.events);
    let other = paddock_sim::run(
        &RunOptions {
            seed: 12,
            ..options
        },
        None,
    )
    .unwrap();
    assert_ne!(first.trace_hash, other.trace_hash);
}

// The plan is chosen by the seed alone and describes itself; with no faults it says so.
#[test]
fn plan_is_a_function_of_the_seed() {
    use paddock_sim::decide::Decisions;
    let plan = |seed| {
        let mut rng = Decisions::seeded(seed);
        paddock_sim::faults::FaultPlan::choose(&FaultSet::all(), 5, &mut rng)
    };
    assert_eq!(plan(3), plan(3));
    assert_ne!(plan(3).describe(), "none");
    let mut rng = Decisions::seeded(3);
    let none = paddock_sim::faults::FaultPlan::choose(&FaultSet::default(), 5, &mut rng);
    assert_eq!(none.describe(), "none");
}

// Depose strikes aim at the leader: the group cut off first holds the serving leader,
// and the server cut off in the second half is another one, the leader elected meanwhile.
#[test]
fn depose_strikes_cut_off_the_leader_then_its_successor() {
    let path = std::env::temp_dir().join(format!("paddock-depose-{}.jsonl", std::process::id()));
    let mut swaps = 0;
    for seed in 0..16 {
        let options = RunOptions {
            seed,
            nodes: 5,
            clients: 4,
            ops: 400,
            faults: set(&[Fault::Partition]),
            bug: None,
            from_disks: None,
            workload: Default::default(),
            preload_znodes: 0,
        };
        let report = paddock_sim::run(&options, Some(&path)).unwrap();
        assert_eq!(report.result, Ok(()), "{}", report.summary_line());
        let trace = std::fs::read_to_string(&path).unwrap();
        let mut deposed: Option<String> = None;
        for line in trace.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let details = value["details"].as_str().unwrap_or_default();
            let group = details
                .split_once('{')
                .and_then(|(_, rest)| rest.split_once('}'))
                .map(|(inner, _)| inner.to_owned());
            if details.starts_with("Depose for") {
                deposed = group;
            } else if details.starts_with("Depose (new leader)") {
                let fresh = group.unwrap();
                let first = deposed.take().expect("a second half follows a first half");
                assert!(
                    !first.split(',').any(|id| id == fresh),
                    "seed {seed}: the new leader {fresh} was in the deposed group {first}"
                );
                swaps += 1;
            }
        }
    }
    let _ = std::fs::remove_file(&path);
    assert!(swaps > 0, "no depose strike reached its second half");
}
