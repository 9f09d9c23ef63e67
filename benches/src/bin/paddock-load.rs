//! `paddock-load`: pipelined load on any ZooKeeper-protocol server (Apache ZooKeeper or
//! Paddock), through the independent `zookeeper-client` crate.
//!
//! `--clients` sessions, spread round-robin over the `--server` list, each keep `--inflight`
//! requests of one kind (`--op`) outstanding for `--warmup` seconds (not measured) and then
//! `--seconds` seconds (measured); see [`paddock_benches::load`] for exactly what is counted.
//! `--op idle` instead opens the sessions, prints `paddock-load: N sessions open` on stderr
//! once they are (so a script can measure the server then), holds them `--seconds` without
//! requests and closes them. Prints a short human line on stderr and one JSON object on
//! stdout:
//! `{"op","clients","inflight","size","seconds","ops","ops_per_sec","p50_us","p99_us",
//! "p999_us","max_us","errors"}`. Exits 1 with a message when it cannot connect, when setup
//! fails or when no request succeeds.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use paddock_benches::load::{self, LoadOptions, LoadTls, Op};

/// Pipelined ZooKeeper-protocol load generator.
#[derive(Debug, Parser)]
#[command(name = "paddock-load", version)]
struct Args {
    /// Servers to connect to: HOST:PORT[,HOST:PORT...]; session i connects to the (i mod n)-th.
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    /// Operation to measure (mixed = 90% get, 10% set; churn = create then delete; idle = hold
    /// the sessions open without requests).
    #[arg(long, value_enum, default_value_t = Op::Get)]
    op: Op,
    /// Sessions (one connection each).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Requests in flight per session.
    #[arg(long, default_value_t = 16)]
    inflight: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Measurement time in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Load before the measurement, in seconds, not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Parent node of every node the run uses.
    #[arg(long, default_value = "/paddock-load")]
    prefix: String,
    /// How long to keep trying to establish each session, in seconds.
    #[arg(long, default_value_t = 5.0)]
    connect_timeout: f64,
    /// Stop after starting this many requests, all sessions together (or when the window
    /// ends): `--op create --count 1000000` loads 10^6 znodes.
    #[arg(long)]
    count: Option<u64>,
    /// Connect over TLS, checking the server's certificate against this PEM file of CA
    /// certificates (the server's secureClientPort); needs --tls-cert and --tls-key too.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<std::path::PathBuf>,
    /// The client certificate (PEM) presented over TLS.
    #[arg(long, requires = "tls_ca")]
    tls_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "tls_ca")]
    tls_key: Option<std::path::PathBuf>,
}

/// The TLS files named on the command line, read.
fn tls(args: &Args) -> Result<Option<LoadTls>, String> {
    let (Some(ca), Some(cert), Some(key)) = (&args.tls_ca, &args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let read = |path: &std::path::PathBuf| {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
    };
    Ok(Some(LoadTls {
        ca: read(ca)?,
        cert: read(cert)?,
        key: read(key)?,
    }))
}

fn duration(flag: &str, secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("--{flag} must be a non-negative number of seconds, not {secs}"))
}

fn options(args: Args) -> Result<LoadOptions, String> {
    let tls = tls(&args)?;
    Ok(LoadOptions {
        tls,
        seconds: duration("seconds", args.seconds)?,
        warmup: duration("warmup", args.warmup)?,
        server: args.server,
        op: args.op,
        clients: args.clients,
        inflight: args.inflight,
        size: args.size,
        connect_timeout: duration("connect-timeout", args.connect_timeout)?,
        prefix: args.prefix,
        count: args.count,
    })
}

/// `--op idle`: says on stderr when the sessions are open, then holds them.
async fn idle(opts: &LoadOptions) -> Result<load::LoadSummary, load::LoadError> {
    let sessions = load::open_idle(opts).await?;
    eprintln!(
        "paddock-load: {} sessions open ({} failed), holding them for {:.1} s",
        sessions.open(),
        sessions.failed(),
        opts.seconds.as_secs_f64()
    );
    sessions.hold().await
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match options(Args::parse()) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("paddock-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = if opts.op == Op::Idle {
        idle(&opts).await
    } else {
        load::run(&opts).await
    };
    match outcome {
        Ok(summary) => {
            eprintln!("paddock-load: {} against {}", summary, opts.server);
            println!("{}", summary.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("paddock-load: {e}");
            ExitCode::FAILURE
        }
    }
}
