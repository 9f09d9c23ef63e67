//! `paddock-sim`: run one seeded simulation, a campaign of seeds, or shrink a failure.
//!
//! Exit codes: 0 every run passed; 1 a run failed (a checker, a liveness timeout or a
//! broken invariant), or the seed given to `shrink` does not fail; 2 bad command line or
//! a trace file that cannot be written. Every failure prints the command that replays it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use paddock_sim::RunReport;
use paddock_sim::campaign::{SeedRange, run_campaign, run_guarded, run_guarded_traced};
use paddock_sim::options::{FaultSet, RunOptions};
use paddock_sim::shrink::shrink;

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
    #[arg(long, default_value_t = 5, value_parser = parse_nodes)]
    nodes: u64,
    /// Simulated clients.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    clients: u32,
    /// Client operations in the whole run.
    #[arg(long, default_value_t = 1000)]
    ops: u64,
    /// Faults to inject: all, none, or a comma-separated list.
    #[arg(long, default_value = "all")]
    faults: FaultSet,
    /// Start every server from existing data directories instead of empty disks:
    /// `DIR/server-<id>/` per server (as `--save-disks` writes them), or `DIR` itself, one
    /// data directory (a real server's `dataDir`, or `data/` and `log/`) that every
    /// server starts from a copy of.
    #[arg(long, value_name = "DIR")]
    from_disks: Option<PathBuf>,
    /// What the clients do: `mixed` (every operation at random), `recipes` (lock,
    /// election, queue, configuration and registry, used safely; 10 or more clients give
    /// every recipe two), or `recipes-unfenced` (the same with locks and leaders acting
    /// without their fencing token, the classic pitfall).
    #[arg(long, default_value = "mixed")]
    workload: paddock_sim::recipes::WorkloadKind,
    /// Start every server from a snapshot of a tree of this many znodes under `/big`
    /// (0: empty disks). A campaign without it runs one seed in 100 (99, 199, ...) from
    /// 100 000 znodes.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        conflicts_with = "from_disks"
    )]
    preload_znodes: u64,
    /// Plant a known bug in core, by name (a build with the `planted-bugs` feature).
    #[cfg(feature = "planted-bugs")]
    #[arg(long, value_parser = parse_bug)]
    bug: Option<String>,
}

/// Refuses a bug name core does not know, instead of silently running unbugged.
#[cfg(feature = "planted-bugs")]
fn parse_bug(name: &str) -> Result<String, String> {
    name.parse::<paddock_core::bugs::Bug>()
        .map(|_| name.to_owned())
        .map_err(|e| e.to_string())
}

impl Common {
    fn options(&self, seed: u64) -> RunOptions {
        RunOptions {
            seed,
            nodes: self.nodes,
            clients: self.clients,
            ops: self.ops,
            faults: self.faults.clone(),
            #[cfg(feature = "planted-bugs")]
            bug: self.bug.clone(),
            #[cfg(not(feature = "planted-bugs"))]
            bug: None,
            from_disks: self.from_disks.clone(),
            workload: self.workload,
            preload_znodes: self.preload_znodes,
        }
    }
}

fn parse_nodes(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n @ (3 | 5 | 7)) => Ok(n),
        _ => Err(format!("{text:?} servers: expected 3, 5 or 7")),
    }
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
        /// Write each server's final disk under this directory (`server-<id>/` with
        /// `data/`, `log/`, a standalone `zoo.cfg` to serve it, and `tree.txt`, the tree
        /// it serves).
        #[arg(long)]
        save_disks: Option<PathBuf>,
    },
    /// Run a range of seeds in parallel and list the failures.
    Campaign {
        /// Seeds to run: A..B (B excluded).
        #[arg(long)]
        seeds: SeedRange,
        /// Worker threads (default: the available cores).
        #[arg(long)]
        jobs: Option<usize>,
        #[command(flatten)]
        common: Common,
    },
    /// Reduce a failing run to a small one that fails the same checker.
    Shrink {
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        common: Common,
    },
}

/// Refuses, with a clear message, `--from-disks` that names nothing a run can start
/// from (each run reads the directories again).
fn from_disks_readable(common: &Common) -> Result<(), ExitCode> {
    let Some(dir) = &common.from_disks else {
        return Ok(());
    };
    match paddock_sim::saved::load_start(dir, common.nodes) {
        Ok(_) => Ok(()),
        Err(e) => {
            eprintln!("paddock-sim: --from-disks {}: {e}", dir.display());
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    let common = match &command {
        Command::Run { common, .. }
        | Command::Campaign { common, .. }
        | Command::Shrink { common, .. } => common,
    };
    if let Err(code) = from_disks_readable(common) {
        return code;
    }
    match command {
        Command::Run {
            seed,
            common,
            trace,
            save_disks,
        } => run_one(&common.options(seed), trace, save_disks),
        Command::Campaign {
            seeds,
            jobs,
            common,
        } => campaign(&common.options(seeds.0.start), &seeds, jobs),
        Command::Shrink { seed, common } => shrink_one(&common.options(seed)),
    }
}

fn exit_code(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run_one(options: &RunOptions, trace: Option<PathBuf>, save_disks: Option<PathBuf>) -> ExitCode {
    println!(
        "seed={} nodes={} clients={} ops={} faults={}{}",
        options.seed,
        options.nodes,
        options.clients,
        options.ops,
        options.faults,
        options
            .bug
            .as_ref()
            .map(|b| format!(" bug={b}"))
            .unwrap_or_default()
            + &options.from_disks_label()
    );
    let (report, saved) = match &save_disks {
        None => (run_guarded_traced(options, trace.as_deref()), Vec::new()),
        Some(dir) => match paddock_sim::run_and_save_disks(options, trace.as_deref(), dir) {
            Ok((report, saved)) => (Ok(report), saved),
            Err(e) => {
                eprintln!(
                    "paddock-sim: cannot save the disks under {}: {e}",
                    dir.display()
                );
                return ExitCode::from(2);
            }
        },
    };
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("paddock-sim: cannot write the trace: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "events={} virtual_ms={} ops_completed={}",
        report.events, report.sim_ms, report.ops_completed
    );
    println!("scenario: {}", report.fault_plan);
    println!("injected: {}", report.fault_counts.describe());
    for server in &saved {
        let tree = match &server.tree {
            Ok(lines) => format!("serves {} znodes", lines.len()),
            Err(error) => format!("does not start: {error}"),
        };
        println!(
            "disk of server {}: {} ({tree})",
            server.id.0,
            server.dir.display()
        );
    }
    if report.result.is_err() {
        println!("replay: {}", options.replay_command());
    }
    println!("{}", report.summary_line());
    exit_code(report.result.is_ok())
}

fn campaign(base: &RunOptions, seeds: &SeedRange, jobs: Option<usize>) -> ExitCode {
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!(
        "campaign seeds={seeds} jobs={jobs} nodes={} clients={} ops={} faults={}{}",
        base.nodes,
        base.clients,
        base.ops,
        base.faults,
        base.from_disks_label()
    );
    let total = seeds.0.end - seeds.0.start;
    // The bar is for a person watching; logs and pipes get only the deterministic lines.
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} seeds, eta {eta} {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let on_done = |report: &RunReport| {
        if report.result.is_err() {
            bar.set_message(format!("failing seed {}", report.options.seed));
        }
        bar.inc(1);
    };
    let report = run_campaign(base, seeds, jobs, &on_done);
    bar.finish_and_clear();
    for line in report.failure_lines() {
        println!("{line}");
    }
    println!("{}", report.speed_line());
    println!("{}", report.storage_line());
    println!("bounds measured (largest): {}", report.measures.describe());
    println!("{}", report.summary_line());
    exit_code(report.failures.is_empty())
}

fn shrink_one(options: &RunOptions) -> ExitCode {
    let mut runner = |o: &RunOptions| {
        let report = run_guarded(o);
        eprintln!("tried: {}", report.summary_line());
        report
    };
    match shrink(options, &mut runner) {
        Ok(shrunk) => {
            println!("original: {}", shrunk.original.summary_line());
            for step in &shrunk.steps {
                println!("  {step}");
            }
            println!("runs={}", shrunk.runs);
            println!("smallest: {}", shrunk.smallest.summary_line());
            println!("replay: {}", shrunk.smallest.options.replay_command());
            ExitCode::SUCCESS
        }
        Err(passing) => {
            println!("{}", passing.summary_line());
            println!("seed {} does not fail: nothing to shrink", options.seed);
            ExitCode::from(1)
        }
    }
}
