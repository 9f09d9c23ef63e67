//! `paddock-sim`: run one seeded simulation, a campaign of seeds, or shrink a failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use paddock_sim::options::{FaultSet, RunOptions};

#[derive(Parser)]
#[command(
    name = "paddock-sim",
    version,
    about = "Deterministic simulation of a Paddock ensemble"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Servers in the ensemble: 3, 5 or 7.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=7))]
    nodes: u64,
    /// Simulated clients.
    #[arg(long, default_value_t = 8)]
    clients: u32,
    /// Client operations in the whole run.
    #[arg(long, default_value_t = 1000)]
    ops: u64,
    /// Faults to inject: all, none, or a comma-separated list.
    #[arg(long, default_value = "all")]
    faults: FaultSet,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed and print its summary line.
    Run {
        /// The seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        common: Common,
        /// Write the event trace (JSON lines) to this file.
        #[arg(long)]
        trace: Option<PathBuf>,
    },
}

fn options(seed: u64, common: &Common) -> RunOptions {
    RunOptions {
        seed,
        nodes: common.nodes,
        clients: common.clients,
        ops: common.ops,
        faults: common.faults.clone(),
        bug: None,
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            seed,
            common,
            trace,
        } => {
            let options = options(seed, &common);
            match paddock_sim::run(&options, trace.as_deref()) {
                Ok(report) => {
                    println!("events={} virtual_ms={}", report.events, report.sim_ms);
                    println!(
                        "faults: {}\ninjected: {}",
                        report.fault_plan,
                        report.fault_counts.describe()
                    );
                    if report.result.is_err() {
                        println!("replay: {}", options.replay_command());
                    }
                    println!("{}", report.summary_line());
                    if report.result.is_ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("paddock-sim: cannot write the trace: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
