//! `paddock`: the real-network server binary.
//!
//! Today it validates ZooKeeper configs (`paddock check-config zoo.cfg`); the server
//! itself (`paddock serve`) arrives with the runtime.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paddock_net_real::config;

/// Exit code for a config that was refused.
const EXIT_CONFIG: u8 = 2;
/// Exit code for a file that could not be read.
const EXIT_IO: u8 = 3;

#[derive(Parser)]
#[command(
    name = "paddock",
    version,
    about = "A ZooKeeper-compatible coordination service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and validate a zoo.cfg; print the effective settings and any warnings.
    CheckConfig {
        /// Path of the zoo.cfg file.
        file: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckConfig { file } => check_config(&file),
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("paddock: cannot read {}: {e}", file.display());
            return ExitCode::from(EXIT_IO);
        }
    };
    match config::parse(&text) {
        Ok((cfg, warnings)) => {
            for w in &warnings {
                eprintln!("{}:{}: warning: {}", file.display(), w.line, w.message);
            }
            println!("{cfg:#?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "{}:{}: error: {}: {}",
                file.display(),
                e.line,
                e.key,
                e.reason
            );
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
