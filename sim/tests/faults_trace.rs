//! Every fault the run injects is in the trace, so a failure can be read after the fact:
//! the trace lines of each fault kind match the run's fault counters.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use paddock_sim::options::RunOptions;

// With every fault on, a run's JSON-lines trace holds one line per crash, pause,
// partition or clog, torn write, bit flip, lost and duplicated message, fsync spike,
// client latency spike and skewed clock, and names each server whose damaged disk was
// refused.
#[test]
fn every_fault_is_traced() {
    let path =
        std::env::temp_dir().join(format!("paddock-faults-trace-{}.jsonl", std::process::id()));
    let mut checked = 0;
    for seed in 0..6 {
        let options = RunOptions {
            seed,
            nodes: 5,
            clients: 4,
            ops: 300,
            ..RunOptions::default()
        };
        let report = paddock_sim::run(&options, Some(&path)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        let mut refused = BTreeSet::new();
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let kind = value["kind"].as_str().unwrap().to_owned();
            if kind == "disk-refused" {
                refused.insert(value["node"].as_u64().unwrap());
            }
            *kinds.entry(kind).or_insert(0) += 1;
        }
        let count = |kind: &str| kinds.get(kind).copied().unwrap_or(0);
        let c = report.fault_counts;
        assert_eq!(count("crash"), c.crashes, "seed {seed}");
        assert_eq!(count("pause"), c.pauses, "seed {seed}");
        assert_eq!(count("partition"), c.partitions + c.clogs, "seed {seed}");
        assert_eq!(count("torn-write"), c.torn_writes, "seed {seed}");
        assert_eq!(count("bit-flip"), c.bit_flips, "seed {seed}");
        assert_eq!(count("loss"), c.messages_lost, "seed {seed}");
        assert_eq!(count("dup"), c.messages_duplicated, "seed {seed}");
        assert_eq!(count("fsync-spike"), c.fsync_spikes, "seed {seed}");
        assert_eq!(count("clock-skew"), c.skewed_clocks, "seed {seed}");
        assert_eq!(refused.len() as u64, c.damaged_servers, "seed {seed}");
        assert_eq!(count("heal"), 1, "seed {seed}");
        // Peer spikes show as "delay" (or "dup" when the message was also duplicated);
        // clogs delay too, so this is only an implication.
        assert!(count("client-delay") <= c.latency_spikes, "seed {seed}");
        if c.latency_spikes > 0 {
            assert!(
                count("client-delay") + count("delay") + count("dup") > 0,
                "seed {seed}"
            );
        }
        checked += c.crashes + c.pauses + c.partitions + c.clogs + c.messages_lost;
    }
    let _ = std::fs::remove_file(&path);
    assert!(checked > 0, "no fault struck in any seed");
}
