//! `paddock`: the real-network server binary.
//!
//! `paddock serve [--config zoo.cfg]` runs a server (standalone on 127.0.0.1:2181 with
//! data in ./paddock-data when no config is given); `paddock ctl --server HOST:PORT VERB`
//! is a small client for people (and `ctl bench`, a load generator);
//! `paddock check-config zoo.cfg` validates a config; `paddock import-zookeeper` and
//! `export-zookeeper` move a stopped server's data from and to Apache ZooKeeper's files,
//! `backup` and `restore` save and restore a running server's state, and `inspect` prints
//! a data file (docs/migration.md). Exit codes: 0
//! success, 1 a failed client call, a server that stopped on a failure or a failed import
//! (damaged ZooKeeper files, a non-empty target), 2 a refused config, 3 an unreadable
//! file, 4 a server that could not start (port in use, damaged data directory).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use paddock_net_real::client::{self, Client, ClientError};
use paddock_net_real::config::{self, ZooCfg};
use paddock_net_real::server;

/// jemalloc instead of the system allocator (see net-real/Cargo.toml).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for a config that was refused.
const EXIT_CONFIG: u8 = 2;
/// Exit code for a file that could not be read.
const EXIT_IO: u8 = 3;
/// Exit code for a server that could not start.
const EXIT_START: u8 = 4;

/// Longest `ctl bench --seconds`: far below where `Instant + Duration` overflows.
const BENCH_SECONDS_MAX: u64 = u32::MAX as u64;
/// Largest `ctl bench --size`, in bytes.
const BENCH_SIZE_MAX: u64 = 1 << 30;

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
    /// Run a server: standalone on 127.0.0.1:2181 (data in ./paddock-data) by default.
    Serve {
        /// A ZooKeeper zoo.cfg (myid is read from its dataDir for an ensemble).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// Log level: error, warn, info, debug or trace.
        #[arg(long, default_value = "info")]
        log_level: tracing::Level,
    },
    /// Talk to a server.
    Ctl {
        /// The server's client address.
        #[arg(long, default_value = "127.0.0.1:2181")]
        server: String,
        #[command(subcommand)]
        verb: Verb,
    },
    /// Parse and validate a zoo.cfg; print the effective settings and any warnings.
    CheckConfig {
        /// Path of the zoo.cfg file.
        file: std::path::PathBuf,
    },
    /// Import a stopped Apache ZooKeeper server's data (its snapshots and transaction
    /// logs) into an empty Paddock data directory.
    ImportZookeeper {
        /// ZooKeeper's dataDir (the directory holding version-2/, or version-2/ itself).
        #[arg(long)]
        from: std::path::PathBuf,
        /// ZooKeeper's dataLogDir, when it had one (default: --from).
        #[arg(long)]
        from_log: Option<std::path::PathBuf>,
        /// The Paddock dataDir to write (empty or missing).
        #[arg(long)]
        to: std::path::PathBuf,
        /// The Paddock dataLogDir, when it will have one (default: --to).
        #[arg(long)]
        to_log: Option<std::path::PathBuf>,
    },
    /// Write a consistent snapshot of a server's state to a file, while it runs (run it
    /// on the server's machine: it reads the data directory without writing to it).
    Backup {
        /// The server's dataDir.
        #[arg(long)]
        data_dir: std::path::PathBuf,
        /// The server's dataLogDir, when it has one (default: --data-dir).
        #[arg(long)]
        log_dir: Option<std::path::PathBuf>,
        /// The backup file to write.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Make an empty data directory hold a backup's state (start the server on it after).
    Restore {
        /// The backup file.
        #[arg(long)]
        from: std::path::PathBuf,
        /// The dataDir to write (empty or missing).
        #[arg(long)]
        to: std::path::PathBuf,
        /// The dataLogDir, when it will have one (default: --to).
        #[arg(long)]
        to_log: Option<std::path::PathBuf>,
    },
    /// Print what a snapshot, log segment or hard state file holds (Paddock's or
    /// ZooKeeper's).
    Inspect {
        /// The file.
        file: std::path::PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Export a stopped Paddock server's data as a snapshot Apache ZooKeeper 3.8 loads
    /// (to roll a migration back).
    ExportZookeeper {
        /// The Paddock dataDir.
        #[arg(long)]
        from: std::path::PathBuf,
        /// The Paddock dataLogDir, when it has one (default: --from).
        #[arg(long)]
        from_log: Option<std::path::PathBuf>,
        /// ZooKeeper's dataDir to write (its version-2/ must hold no snapshot or log).
        #[arg(long)]
        to: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum Verb {
    /// List the children of PATH.
    Ls {
        /// The znode.
        path: String,
    },
    /// Print PATH's data.
    Get {
        /// The znode.
        path: String,
    },
    /// Print PATH's stat.
    Stat {
        /// The znode.
        path: String,
    },
    /// Create PATH with DATA.
    Create {
        /// The znode.
        path: String,
        /// Its data.
        #[arg(default_value = "")]
        data: String,
        /// Ephemeral (dies with this command's session, so mostly for tests).
        #[arg(long, short = 'e')]
        ephemeral: bool,
        /// Sequential: the server appends a counter to the name.
        #[arg(long, short = 's')]
        sequential: bool,
    },
    /// Set PATH's data.
    Set {
        /// The znode.
        path: String,
        /// The new data.
        data: String,
    },
    /// Delete PATH.
    Delete {
        /// The znode.
        path: String,
    },
    /// Watch PATH's data and children; print events until COUNT arrived or interrupted.
    Watch {
        /// The znode.
        path: String,
        /// Stop after this many events.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Send a four-letter word (ruok, srvr, mntr, ...) and print the answer.
    Cmd {
        /// The word.
        word: String,
    },
    /// Measure writes/s (setData) or reads/s (getData) with concurrent sessions.
    Bench {
        /// `write` or `read`.
        #[arg(long, default_value = "write")]
        kind: String,
        /// Concurrent sessions, one thread each.
        #[arg(long, default_value_t = 16)]
        clients: u32,
        /// Run time in seconds (1 to 2^32 - 1: the deadline must be a time the clock has).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=BENCH_SECONDS_MAX))]
        seconds: u64,
        /// Bytes of data per znode (at most 1 GiB; a server refuses more than its
        /// jute.maxbuffer anyway).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=BENCH_SIZE_MAX))]
        size: u64,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config, log_level } => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_max_level(log_level)
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            serve(config.as_deref())
        }
        Command::Ctl { server, verb } => ctl(&server, verb),
        Command::CheckConfig { file } => check_config(&file),
        Command::ImportZookeeper {
            from,
            from_log,
            to,
            to_log,
        } => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_max_level(tracing::Level::WARN)
                .with_target(false)
                .init();
            let from_log = from_log.unwrap_or_else(|| from.clone());
            let to_log = to_log.unwrap_or_else(|| to.clone());
            import_zookeeper(&from, &from_log, &to, &to_log)
        }
        Command::Backup {
            data_dir,
            log_dir,
            out,
        } => {
            let log_dir = log_dir.unwrap_or_else(|| data_dir.clone());
            report_backup(
                "backup",
                paddock_net_real::backup::backup(&data_dir, &log_dir, &out),
                &out,
            )
        }
        Command::Restore { from, to, to_log } => {
            let to_log = to_log.unwrap_or_else(|| to.clone());
            report_backup(
                "restore",
                paddock_net_real::backup::restore(&from, &to, &to_log),
                &to,
            )
        }
        Command::Inspect { file, json } => match paddock_net_real::inspect::inspect(&file, json) {
            Ok(text) => {
                // A reader that stops early (`| head`) is not an error.
                let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("paddock: inspect: {}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
        Command::ExportZookeeper { from, from_log, to } => {
            let from_log = from_log.unwrap_or_else(|| from.clone());
            match paddock_net_real::zk_export::export(&from, &from_log, &to) {
                Ok(exported) => {
                    println!(
                        "exported   {} znodes, {} sessions, zxid {:#x} to {}",
                        exported.znodes,
                        exported.sessions,
                        exported.zxid,
                        exported.snapshot.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("paddock: export-zookeeper: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Prints what a backup or restore wrote, or why it failed.
fn report_backup(
    verb: &str,
    result: Result<paddock_net_real::backup::BackedUp, paddock_net_real::backup::BackupError>,
    to: &std::path::Path,
) -> ExitCode {
    match result {
        Ok(done) => {
            println!(
                "{verb}: {} znodes, {} sessions at zxid {:#x} (log index {}) to {}",
                done.znodes,
                done.sessions,
                done.meta.zxid.0,
                done.meta.index,
                to.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("paddock: {verb}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `import-zookeeper`: prints what was read and written, one line each.
fn import_zookeeper(
    from: &std::path::Path,
    from_log: &std::path::Path,
    to: &std::path::Path,
    to_log: &std::path::Path,
) -> ExitCode {
    use paddock_net_real::zk_import::{self, ImportError};
    // Session deadlines are set afresh when the server starts; ZooKeeper's default tick.
    let tick = std::num::NonZeroU64::new(2000).expect("non-zero");
    match zk_import::import(from, from_log, to, to_log, tick) {
        Ok(imported) => {
            let s = &imported.summary;
            match &imported.snapshot {
                Some(path) => println!("snapshot   {}", path.display()),
                None => println!("snapshot   none (ZooKeeper never took one)"),
            }
            for log in &imported.logs {
                let torn = if imported.torn_logs.contains(log) {
                    " (last record torn: dropped)"
                } else {
                    ""
                };
                println!("log        {}{torn}", log.display());
            }
            println!(
                "replayed   {} txns ({} ignored: already in the snapshot, or failed requests)",
                s.txns_replayed, s.txns_ignored
            );
            if s.dead_ephemerals_deleted > 0 {
                println!(
                    "deleted    {} ephemerals of sessions that no longer exist",
                    s.dead_ephemerals_deleted
                );
            }
            println!(
                "imported   {} znodes, {} sessions, last zxid {:#x} into {}",
                s.znodes,
                s.sessions,
                s.last_zxid,
                to.display()
            );
            ExitCode::SUCCESS
        }
        Err(e @ (ImportError::Read { .. } | ImportError::NoData(_))) => {
            eprintln!("paddock: import-zookeeper: {e}");
            ExitCode::from(EXIT_IO)
        }
        Err(e) => {
            eprintln!("paddock: import-zookeeper: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads and parses a config, printing warnings; `Err` carries the exit code.
fn load_config(file: &std::path::Path) -> Result<ZooCfg, ExitCode> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        eprintln!("paddock: cannot read {}: {e}", file.display());
        ExitCode::from(EXIT_IO)
    })?;
    // ZooKeeper's operators set some keys as JVM flags: see config::JVM_FLAG_KEYS.
    let jvm_flags = ["SERVER_JVMFLAGS", "JVMFLAGS"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .collect::<Vec<_>>()
        .join(" ");
    match config::parse_with_jvm_flags(&text, &jvm_flags) {
        Ok((cfg, warnings)) => {
            for w in &warnings {
                eprintln!("{}:{}: warning: {}", file.display(), w.line, w.message);
            }
            match cfg.dynamic_config_file.clone() {
                Some(dynamic) => load_dynamic(cfg, std::path::Path::new(&dynamic)),
                None => Ok(cfg),
            }
        }
        Err(e) if e.line == 0 && config::JVM_FLAG_KEYS.contains(&e.key.as_str()) => {
            eprintln!("SERVER_JVMFLAGS/JVMFLAGS: error: -D{}: {}", e.key, e.reason);
            Err(ExitCode::from(EXIT_CONFIG))
        }
        Err(e) => Err(config_error(file, &e)),
    }
}

/// Reads `cfg`'s dynamic config file (its `server.N` lines); `Err` carries the exit code.
fn load_dynamic(cfg: ZooCfg, file: &std::path::Path) -> Result<ZooCfg, ExitCode> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        eprintln!(
            "paddock: cannot read {} (dynamicConfigFile): {e}",
            file.display()
        );
        ExitCode::from(EXIT_IO)
    })?;
    match config::parse_dynamic(&text) {
        Ok(servers) => Ok(cfg.with_dynamic(servers)),
        Err(e) => Err(config_error(file, &e)),
    }
}

/// Prints a config error at its file and line; the exit code for it.
fn config_error(file: &std::path::Path, e: &config::ConfigError) -> ExitCode {
    eprintln!(
        "{}:{}: error: {}: {}",
        file.display(),
        e.line,
        e.key,
        e.reason
    );
    ExitCode::from(EXIT_CONFIG)
}

fn serve(file: Option<&std::path::Path>) -> ExitCode {
    let cfg = match file {
        Some(file) => match load_config(file) {
            Ok(cfg) => cfg,
            Err(code) => return code,
        },
        None => ZooCfg::standalone_default(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("paddock: cannot handle signal {signal}: {e}");
            return ExitCode::from(EXIT_START);
        }
    }
    let mut handle = match server::start(cfg) {
        Ok(handle) => handle,
        Err(server::StartError::Config(reason)) => {
            eprintln!("paddock: error: {reason}");
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => {
            eprintln!("paddock: cannot start: {e}");
            return ExitCode::from(EXIT_START);
        }
    };
    while !stop.load(Ordering::Relaxed) && !handle.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
    }
    if stop.load(Ordering::Relaxed) {
        tracing::info!("signal received; shutting down");
    }
    handle.stop_flag().store(true, Ordering::Relaxed);
    match handle.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("paddock: stopped: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn ctl(server: &str, verb: Verb) -> ExitCode {
    let result = match verb {
        Verb::Cmd { word } => client::four_letter(server, &word).map(|text| println!("{text}")),
        Verb::Bench {
            kind,
            clients,
            seconds,
            size,
        } => bench(server, &kind, clients, seconds, size),
        verb => Client::connect(server, 10_000).and_then(|mut c| {
            ctl_verb(&mut c, verb)?;
            c.close()
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paddock ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ctl_verb(c: &mut Client, verb: Verb) -> Result<(), ClientError> {
    match verb {
        Verb::Ls { path } => println!("{}", c.children(&path, false)?.join("\n")),
        Verb::Get { path } => println!("{}", String::from_utf8_lossy(&c.get(&path, false)?.0)),
        Verb::Stat { path } => match c.exists(&path, false)? {
            Some(stat) => println!("{stat:#?}"),
            None => return Err(ClientError::Zk(paddock_core::error::ZkError::NoNode)),
        },
        Verb::Create {
            path,
            data,
            ephemeral,
            sequential,
        } => {
            let flags = i32::from(ephemeral) | (i32::from(sequential) << 1);
            println!("{}", c.create(&path, data.as_bytes(), flags)?);
        }
        Verb::Set { path, data } => {
            c.set(&path, data.as_bytes(), -1)?;
        }
        Verb::Delete { path } => c.delete(&path, -1)?,
        Verb::Watch { path, count } => {
            for _ in 0..count {
                c.exists(&path, true)?;
                let _ = c.children(&path, true);
                loop {
                    if let Some(event) = c.next_event(Duration::from_secs(3600))? {
                        println!("event type={} path={}", event.event_type, event.path);
                        break;
                    }
                }
            }
        }
        Verb::Cmd { .. } | Verb::Bench { .. } => {}
    }
    Ok(())
}

/// Runs `clients` sessions for `seconds`, each doing setData (`write`) or getData
/// (`read`) on its own znode back to back, and prints throughput and latency.
fn bench(
    server: &str,
    kind: &str,
    clients: u32,
    seconds: u64,
    size: u64,
) -> Result<(), ClientError> {
    let write = kind == "write";
    let ops = Arc::new(AtomicU64::new(0));
    let out_of_range = |what: &str| {
        ClientError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what} is out of range"),
        ))
    };
    let deadline = Instant::now()
        .checked_add(Duration::from_secs(seconds))
        .ok_or_else(|| out_of_range("--seconds"))?;
    let data = vec![b'x'; usize::try_from(size).map_err(|_| out_of_range("--size"))?];
    let mut setup = Client::connect(server, 30_000)?;
    let _ = setup.create("/paddock-bench", b"", 0);
    let mut threads = Vec::new();
    for i in 0..clients {
        let server = server.to_owned();
        let ops = ops.clone();
        let data = data.clone();
        // Builder::spawn: too many --clients is an error, not a panic.
        let spawned =
            std::thread::Builder::new().spawn(move || -> Result<Vec<u32>, ClientError> {
                let mut c = Client::connect(&server, 30_000)?;
                let path = format!("/paddock-bench/n{i}");
                if c.exists(&path, false)?.is_none() {
                    c.create(&path, &data, 0)?;
                }
                let mut latencies_us = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    if write {
                        c.set(&path, &data, -1)?;
                    } else {
                        c.get(&path, false)?;
                    }
                    latencies_us.push(started.elapsed().as_micros() as u32);
                    ops.fetch_add(1, Ordering::Relaxed);
                }
                c.close()?;
                Ok(latencies_us)
            })?;
        threads.push(spawned);
    }
    let mut latencies_us = Vec::new();
    for thread in threads {
        match thread.join() {
            Ok(result) => latencies_us.extend(result?),
            Err(_) => return Err(ClientError::Closed),
        }
    }
    latencies_us.sort_unstable();
    let pick = |q: usize| {
        latencies_us
            .get(latencies_us.len() * q / 100)
            .copied()
            .unwrap_or(0)
    };
    let total = ops.load(Ordering::Relaxed);
    println!(
        "{kind}: {total} ops in {seconds} s = {:.0} ops/s with {clients} clients; latency p50 {} us, p99 {} us",
        total as f64 / seconds as f64,
        pick(50),
        pick(99)
    );
    setup.close()
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match load_config(file) {
        Ok(cfg) => {
            println!("{cfg:#?}");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
