//! `paddock-chaos`: the real `paddock` binary under faults on a real network, judged by
//! the simulator's checkers. Needs root (network namespaces, nftables).
//!
//! ```text
//! paddock-chaos run --seed 7 --servers 3 --clients 4 --seconds 60
//! ```
//!
//! Prints each fault as it begins, then one line ending `result=ok` or
//! `result=FAIL <checker>: <first bad event>`, with the seed. A failed run keeps its
//! history, every server's log and data directory in one folder and prints its path and
//! the command that repeats the run's faults. Exit codes: 0 ok, 1 a checker failed, 2 the
//! run could not be carried out (no root, a missing tool, interrupted).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use paddock_chaos::netns;
use paddock_chaos::run::{FaultKind, RunOptions, run};
use paddock_sim::recipes::WorkloadKind;

#[derive(Parser, Debug)]
#[command(name = "paddock-chaos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// One run: an ensemble in network namespaces, clients, faults for a while, heal,
    /// then the checkers' verdict.
    Run {
        /// Chooses every fault and every client's operations.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Servers in the ensemble.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(3..=7))]
        servers: u8,
        /// Clients, each one session at a time.
        #[arg(long, default_value_t = 4)]
        clients: u32,
        /// Length of the fault phase, seconds.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// The `paddock` binary (default: the one beside this binary).
        #[arg(long)]
        paddock: Option<PathBuf>,
        /// Where a failed run's artefacts are kept.
        #[arg(long, default_value = "/tmp")]
        keep: PathBuf,
        /// The kinds of fault to choose from, comma-separated: partition, isolate,
        /// bridge (one server reaches two sides that cannot reach each other), loss,
        /// bandwidth, kill, pause, delay (peer links, through the harness's proxies),
        /// wipe (a server's data directory, but for myid), clock (a restart with its
        /// monotonic clock moved, in a time namespace) (default: all).
        #[arg(long, value_delimiter = ',')]
        faults: Vec<FaultKind>,
        /// What the clients do: `mixed` (every operation at random), `recipes` (lock,
        /// election, queue, configuration, registry, by client id modulo 5; their
        /// clients also stall past their session timeout now and then), or
        /// `recipes-unfenced` (locks and leaders acting without their fencing token).
        #[arg(long, default_value = "mixed")]
        workload: WorkloadKind,
    },
}

fn main() -> ExitCode {
    let Cmd::Run {
        seed,
        servers,
        clients,
        seconds,
        paddock,
        keep,
        faults,
        workload,
    } = Cli::parse().command;
    let paddock = match paddock.or_else(sibling_paddock) {
        Some(path) if path.is_file() => path,
        other => {
            eprintln!(
                "paddock-chaos: no paddock binary at {} (build it with `cargo build -p \
                 paddock-net-real --bin paddock`, or pass --paddock)",
                other.map_or_else(|| "?".to_owned(), |p| p.display().to_string())
            );
            return ExitCode::from(2);
        }
    };
    let stop = match netns::install_signal_flag() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("paddock-chaos: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = netns::ensure_tools() {
        eprintln!("paddock-chaos: {e}");
        return ExitCode::from(2);
    }
    let options = RunOptions {
        seed,
        servers: usize::from(servers),
        clients,
        fault_time: Duration::from_secs(seconds),
        paddock,
        keep_root: keep,
        kinds: faults.clone(),
        workload,
    };
    let mut replay = format!(
        "paddock-chaos run --seed {seed} --servers {servers} --clients {clients} --seconds {seconds}"
    );
    if workload != WorkloadKind::Mixed {
        replay.push_str(&format!(" --workload {workload}"));
    }
    if !faults.is_empty() {
        let names: Vec<&str> = faults.iter().map(|k| k.name()).collect();
        replay.push_str(&format!(" --faults {}", names.join(",")));
    }
    match run(&options, &stop) {
        Ok(verdict) => {
            let summary = format!(
                "paddock-chaos: seed={seed} servers={servers} clients={clients} faults={} \
                 ops={} answered={} committed={}",
                verdict.faults, verdict.ops, verdict.answered, verdict.committed
            );
            match verdict.result {
                Ok(()) => {
                    println!("{summary} result=ok");
                    ExitCode::SUCCESS
                }
                Err(failure) => {
                    println!(
                        "{summary} result=FAIL {}: {}",
                        failure.checker, failure.event
                    );
                    if let Some(kept) = verdict.kept {
                        println!("kept: {}", kept.display());
                    }
                    println!("replay the faults: {replay}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("paddock-chaos: seed={seed}: {e}");
            ExitCode::from(2)
        }
    }
}

/// `paddock` in the directory of this binary (both are built into the same target dir).
fn sibling_paddock() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("paddock"))
}
