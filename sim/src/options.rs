//! The options of a run, as the command line gives them, and the fault switches.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A class of fault the simulator can inject. Names are part of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Message latency drawn from a wide distribution (and so reordering).
    Latency,
    /// Messages lost.
    Loss,
    /// Messages delivered twice.
    Duplication,
    /// Network partitions: symmetric, asymmetric and one-way, and long clogs.
    Partition,
    /// Server crash (unsynced writes lost) and restart from its disk.
    Crash,
    /// A server stalls for a long time (a GC pause, a stuck disk).
    Pause,
    /// Per-server clock offset and drift.
    Clock,
    /// Disk faults: fsync latency, torn last write at crash, flipped bits in records.
    Disk,
    /// Clients lose their connections and reconnect elsewhere; some go silent long
    /// enough for their sessions to expire.
    Client,
}

impl Fault {
    /// Every fault, in command-line order.
    pub const ALL: [Fault; 9] = [
        Fault::Latency,
        Fault::Loss,
        Fault::Duplication,
        Fault::Partition,
        Fault::Crash,
        Fault::Pause,
        Fault::Clock,
        Fault::Disk,
        Fault::Client,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Latency => "latency",
            Fault::Loss => "loss",
            Fault::Duplication => "dup",
            Fault::Partition => "partition",
            Fault::Crash => "crash",
            Fault::Pause => "pause",
            Fault::Clock => "clock",
            Fault::Disk => "disk",
            Fault::Client => "client",
        }
    }
}

/// The set of enabled faults: `all`, `none`, or a comma-separated list of names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultSet(pub BTreeSet<Fault>);

impl FaultSet {
    /// Every fault.
    pub fn all() -> FaultSet {
        FaultSet(Fault::ALL.into_iter().collect())
    }

    /// True when `fault` is on.
    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }
}

impl FromStr for FaultSet {
    type Err = String;

    fn from_str(text: &str) -> Result<FaultSet, String> {
        match text {
            "all" => return Ok(FaultSet::all()),
            "none" | "" => return Ok(FaultSet::default()),
            _ => {}
        }
        let mut set = BTreeSet::new();
        for name in text.split(',').map(str::trim) {
            let fault = Fault::ALL
                .into_iter()
                .find(|f| f.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                    format!(
                        "unknown fault {name:?}; expected all, none or a list of {}",
                        names.join(",")
                    )
                })?;
            set.insert(fault);
        }
        Ok(FaultSet(set))
    }
}

impl fmt::Display for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() == Fault::ALL.len() {
            return write!(f, "all");
        }
        if self.0.is_empty() {
            return write!(f, "none");
        }
        let names: Vec<&str> = self.0.iter().map(|f| f.name()).collect();
        write!(f, "{}", names.join(","))
    }
}

/// Everything that determines a run: the same options give the same trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// The seed of the run's one RNG.
    pub seed: u64,
    /// Servers in the ensemble (3, 5 or 7).
    pub nodes: u64,
    /// Simulated clients.
    pub clients: u32,
    /// Client operations in the whole run.
    pub ops: u64,
    /// Enabled faults.
    pub faults: FaultSet,
    /// A planted bug (only with the `planted-bugs` feature), by name.
    pub bug: Option<String>,
    /// Start every server from existing data directories instead of empty disks
    /// (`crate::saved::load_start`): the run then begins from the state a real server
    /// or an earlier run left there.
    pub from_disks: Option<std::path::PathBuf>,
    /// What the clients do: the random mix of every operation, or the recipes.
    pub workload: crate::recipes::WorkloadKind,
    /// Start every server from a snapshot of a tree of this many znodes
    /// (`crate::preload`); 0: from empty disks.
    pub preload_znodes: u64,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            seed: 0,
            nodes: 5,
            clients: 8,
            ops: 1000,
            faults: FaultSet::all(),
            bug: None,
            from_disks: None,
            workload: crate::recipes::WorkloadKind::Mixed,
            preload_znodes: 0,
        }
    }
}

impl RunOptions {
    /// ` from-disks=DIR` for a run from existing disks, empty otherwise (for header lines).
    pub fn from_disks_label(&self) -> String {
        self.from_disks
            .as_ref()
            .map(|dir| format!(" from-disks={}", dir.display()))
            .unwrap_or_default()
    }

    /// The command line that replays this run.
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "cargo run --release -p paddock-sim{} -- run --seed {} --nodes {} --clients {} --ops {} --faults {}",
            if self.bug.is_some() {
                " --features planted-bugs"
            } else {
                ""
            },
            self.seed,
            self.nodes,
            self.clients,
            self.ops,
            self.faults
        );
        if let Some(bug) = &self.bug {
            cmd.push_str(&format!(" --bug {bug}"));
        }
        if self.workload != crate::recipes::WorkloadKind::Mixed {
            cmd.push_str(&format!(" --workload {}", self.workload));
        }
        if let Some(dir) = &self.from_disks {
            cmd.push_str(&format!(" --from-disks {}", dir.display()));
        }
        if self.preload_znodes > 0 {
            cmd.push_str(&format!(" --preload-znodes {}", self.preload_znodes));
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Fault lists parse by name, print back the same way, and unknown names are refused.
    #[test]
    fn fault_sets_parse_and_print() {
        assert_eq!("all".parse::<FaultSet>().unwrap(), FaultSet::all());
        assert_eq!("none".parse::<FaultSet>().unwrap().to_string(), "none");
        let set: FaultSet = "crash,loss".parse().unwrap();
        assert!(set.has(Fault::Crash) && set.has(Fault::Loss) && !set.has(Fault::Disk));
        assert_eq!(set.to_string(), "loss,crash");
        assert!(
            "crash,bogus"
                .parse::<FaultSet>()
                .unwrap_err()
                .contains("unknown fault")
        );
    }
}
