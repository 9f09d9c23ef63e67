//! `sim_cluster`: whole simulated ensembles (`paddock_sim::run_with`) whose decisions
//! are chosen by the fuzzer's bytes; every checker must pass.
//!
//! Input layout: bytes 0..8 seed the stream that fills the low bits of every draw;
//! byte 8 picks the ensemble size (3, 5 or 7), byte 9 the number of clients, byte 10
//! the number of client operations, bytes 11..13 which fault classes are on (a bit per
//! class of [`Fault::ALL`]). Every byte after that is the *script*: in order, each one
//! steers one decision of the run — the fault plan first, then every message delay,
//! loss, duplication and reordering, every crash, pause, clock and disk fault, every
//! client's next operation and server (see `paddock_sim::decide`). A short input leaves
//! the later decisions to the seeded stream. So coverage guidance searches over the
//! schedule itself, one decision per byte, which random seeds only sample.

use std::str::FromStr;

use paddock_sim::decide::Decisions;
use paddock_sim::options::{Fault, FaultSet, RunOptions};

/// Client operations per run, at most: keeps one input under about a second.
pub const OPS_MAX: u64 = 120;

/// Bytes of the input before the script.
pub const HEADER_LEN: usize = 13;

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
        from_disks: None,
        workload: Default::default(),
        preload_znodes: 0,
    }
}

/// The decisions an input selects: its script steering the seeded stream.
pub fn decisions(data: &[u8]) -> Decisions {
    let script = data.get(HEADER_LEN..).unwrap_or_default().to_vec();
    Decisions::scripted(options(data).seed, script)
}

/// The target body. See the module documentation.
pub fn run(data: &[u8]) {
    let options = options(data);
    let report = paddock_sim::run_with(&options, decisions(data), None)
        .expect("a run without a trace file cannot fail");
    if let Err(failure) = &report.result {
        panic!(
            "simulation failed: {} (checker {}; {} script bytes) — replay this input with \
             `cargo fuzz run -s none sim_cluster <file>`, or keep it under \
             fuzz/regressions/sim_cluster/ and run `cargo test -p paddock-fuzz-targets`",
            report.summary_line(),
            failure.checker,
            data.len().saturating_sub(HEADER_LEN),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_bytes_change_the_run_but_the_same_input_replays_identically() {
        let mut input = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 30, 0xff, 0x03];
        input.extend(std::iter::repeat_n(0x80, 400));
        let trace = |data: &[u8]| {
            paddock_sim::run_with(&options(data), decisions(data), None)
                .expect("no trace file")
                .trace_hash
        };
        let first = trace(&input);
        assert_eq!(first, trace(&input), "the same input gives the same run");
        let mut steered = input.clone();
        for byte in &mut steered[HEADER_LEN..] {
            *byte = 0x10;
        }
        assert_ne!(first, trace(&steered), "script bytes must steer the run");
        let unscripted = &input[..HEADER_LEN];
        assert_ne!(first, trace(unscripted), "the script must matter");
    }
}
