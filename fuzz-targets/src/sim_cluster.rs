//! `sim_cluster`: whole simulated ensembles (`paddock_sim::run`) chosen by fuzzer bytes;
//! every checker must pass.
//!
//! The simulator draws all of its decisions (fault schedule, message order, client ops)
//! from one seeded RNG and offers no hook to take them from a byte stream, so the input
//! chooses the run instead: the first eight bytes are the seed, the next ones the
//! ensemble size, the number of clients and operations, and which fault classes are on.
//! Coverage guidance then searches over scenarios and seeds, not over individual
//! decisions within a run.

use std::str::FromStr;

use paddock_sim::options::{Fault, FaultSet, RunOptions};

/// Client operations per run, at most: keeps one input under about a second.
pub const OPS_MAX: u64 = 120;

/// The options an input selects.
pub fn options(data: &[u8]) -> RunOptions {
    let byte = |index: usize| data.get(index).copied().unwrap_or(0);
    let mut seed_bytes = [0u8; 8];
    for (index, slot) in seed_bytes.iter_mut().enumerate() {
        *slot = byte(index);
    }
    let faults_mask = u16::from_le_bytes([byte(11), byte(12)]);
    let names: Vec<&str> = Fault::ALL
        .iter()
        .enumerate()
        .filter(|(index, _)| faults_mask & (1 << index) != 0)
        .map(|(_, fault)| fault.name())
        .collect();
    RunOptions {
        seed: u64::from_le_bytes(seed_bytes),
        nodes: [3, 5, 7][usize::from(byte(8) % 3)],
        clients: 1 + u32::from(byte(9) % 4),
        ops: 10 + u64::from(byte(10)) % (OPS_MAX - 9),
        faults: FaultSet::from_str(&names.join(",")).expect("names come from Fault::ALL"),
        bug: None,
    }
}

/// The target body. See the module documentation.
pub fn run(data: &[u8]) {
    let options = options(data);
    let report = paddock_sim::run(&options, None).expect("a run without a trace file cannot fail");
    if let Err(failure) = &report.result {
        panic!(
            "simulation failed: {} — replay with: {}",
            report.summary_line(),
            failure_replay(&options, failure)
        );
    }
}

fn failure_replay(options: &RunOptions, failure: &paddock_sim::check::Failure) -> String {
    format!("{} (checker {})", options.replay_command(), failure.checker)
}
