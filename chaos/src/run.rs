//! `run`: one chaos run, start to verdict.
//!
//! 1. A private network ([`Network`]) and an ensemble of real `paddock serve` processes
//!    in it, one per server namespace, each with its own data directory.
//! 2. Clients ([`crate::client`]) in their own namespace, working from the start.
//! 3. For the fault phase, faults one after another, each chosen by the seed, held for a
//!    while and then undone; every one is printed with the time it began.
//! 4. Heal: every rule removed, every killed server restarted, every paused one resumed.
//!    Liveness: every client completes an operation it started after the heal, and the
//!    servers converge on one zxid, each within [`LIVENESS_TIMEOUT`].
//! 5. Clients and servers stop; the servers' logs are read back and joined to the history
//!    ([`crate::verdict`]), and the simulator's checkers judge it.
//!
//! The run holds the seed's choices only: what the network and the processes do with
//! them is real, so a seed names a fault schedule, not an outcome.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use paddock_core::ids::NodeId;
use paddock_sim::check::Failure;
use paddock_sim::history::{History, Outcome};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::client::{self, ClientSpec, Shared};
use crate::netns::{self, Network};
use crate::verdict;

/// How long the ensemble may take to serve, to recover after the heal, and to converge.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(30);
/// The client port every server listens on, at its own address.
const CLIENT_PORT: u16 = 2181;
/// The session timeout clients ask for ([`paddock_sim::client::SESSION_TIMEOUT_MS`]) is
/// within the servers' bounds for this tick (2 to 20 ticks).
const TICK_MS: u32 = 500;

/// What a run does.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Chooses every fault and every client's operations.
    pub seed: u64,
    /// Servers in the ensemble (3 or 5).
    pub servers: usize,
    /// Clients.
    pub clients: u32,
    /// Length of the fault phase.
    pub fault_time: Duration,
    /// The `paddock` binary.
    pub paddock: PathBuf,
    /// Where a failed run's artefacts are kept.
    pub keep_root: PathBuf,
    /// The kinds of fault the seed chooses from (all when empty).
    pub kinds: Vec<FaultKind>,
}

/// A kind of fault, as `--faults` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// The servers split in two groups at random (majority and minority).
    Partition,
    /// The leader (half the time; else any server) cut off from every other server.
    Isolate,
    /// 10-60% of the packets into a server dropped.
    Loss,
    /// A server's sending rate limited to 64-1024 kbit/s.
    Bandwidth,
    /// `kill -9` of the leader (half the time) or any server, restarted after.
    Kill,
    /// SIGSTOP of the leader (half the time) or any server, longer than the session
    /// timeout, then SIGCONT.
    Pause,
}

impl FaultKind {
    /// Every kind, in `--faults` order.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Partition,
        FaultKind::Isolate,
        FaultKind::Loss,
        FaultKind::Bandwidth,
        FaultKind::Kill,
        FaultKind::Pause,
    ];

    /// Its `--faults` name.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Isolate => "isolate",
            FaultKind::Loss => "loss",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
        }
    }
}

impl std::str::FromStr for FaultKind {
    type Err = String;

    fn from_str(name: &str) -> Result<FaultKind, String> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown fault {name:?} (one of {})", names.join(", "))
            })
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Verdict {
    /// The checkers' verdict.
    pub result: Result<(), Failure>,
    /// Faults injected.
    pub faults: usize,
    /// Client operations recorded.
    pub ops: usize,
    /// Operations answered.
    pub answered: usize,
    /// Length of the committed sequence.
    pub committed: u64,
    /// Where the artefacts were kept (failed runs only).
    pub kept: Option<PathBuf>,
}

/// Why a run could not be carried out (as opposed to a verdict).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The network could not be built or changed.
    #[error("network: {0}")]
    Net(#[from] netns::NetError),
    /// A file or process operation failed.
    #[error("{0}")]
    Io(String),
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
}

fn io_error(what: &str, e: impl std::fmt::Display) -> RunError {
    RunError::Io(format!("{what}: {e}"))
}

/// One server process.
struct Server {
    id: usize,
    dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    paused: bool,
}

/// The ensemble's processes; every one still running is killed on drop.
struct Servers {
    servers: Vec<Server>,
    prefix: Vec<Vec<String>>,
    paddock: PathBuf,
}

impl Servers {
    fn start(&mut self, i: usize) -> Result<(), RunError> {
        let server = &mut self.servers[i - 1];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(server.dir.join("server.log"))
            .map_err(|e| io_error("server log", e))?;
        let prefix = &self.prefix[i - 1];
        let child = Command::new(&prefix[0])
            .args(&prefix[1..])
            .arg(&self.paddock)
            .args(["serve", "--config"])
            .arg(&server.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| io_error(&format!("start server {i}"), e))?;
        server.child = Some(child);
        server.paused = false;
        Ok(())
    }

    fn signal(&mut self, i: usize, signal: rustix::process::Signal) {
        if let Some(child) = &self.servers[i - 1].child
            && let Some(pid) = i32::try_from(child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    fn kill(&mut self, i: usize) {
        self.signal(i, rustix::process::Signal::KILL);
        if let Some(mut child) = self.servers[i - 1].child.take() {
            let _ = child.wait();
        }
        self.servers[i - 1].paused = false;
    }

    fn pause(&mut self, i: usize) {
        self.signal(i, rustix::process::Signal::STOP);
        self.servers[i - 1].paused = true;
    }

    fn resume(&mut self, i: usize) {
        self.signal(i, rustix::process::Signal::CONT);
        self.servers[i - 1].paused = false;
    }

    /// Stops every server gracefully (SIGTERM, then SIGKILL after 10 s).
    fn stop_all(&mut self) {
        for i in 1..=self.servers.len() {
            if self.servers[i - 1].paused {
                self.resume(i);
            }
            self.signal(i, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for server in &mut self.servers {
            if let Some(mut child) = server.child.take() {
                while Instant::now() < deadline {
                    if matches!(child.try_wait(), Ok(Some(_))) {
                        break;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for server in &mut self.servers {
            if let Some(mut child) = server.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A fault, as chosen and printed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault {
    /// The servers split into groups that cannot reach each other.
    Partition(Vec<Vec<usize>>),
    /// A share of the packets into a server dropped.
    Loss { server: usize, percent: u8 },
    /// A server's sending rate limited.
    Bandwidth { server: usize, kbit: u32 },
    /// A server killed with SIGKILL, restarted when the fault ends.
    Kill { server: usize },
    /// A server stopped with SIGSTOP for longer than the session timeout.
    Pause { server: usize },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Partition(groups) => write!(f, "partition {groups:?}"),
            Fault::Loss { server, percent } => write!(f, "loss {percent}% into server {server}"),
            Fault::Bandwidth { server, kbit } => {
                write!(f, "bandwidth of server {server} {kbit} kbit/s")
            }
            Fault::Kill { server } => write!(f, "kill -9 server {server}"),
            Fault::Pause { server } => write!(f, "SIGSTOP server {server}"),
        }
    }
}

/// The leader, by asking each server `srvr` (from the calling thread's namespace).
fn leader(addrs: &[SocketAddr]) -> Option<usize> {
    addrs
        .iter()
        .position(|addr| {
            paddock_net_real::client::four_letter(&addr.to_string(), "srvr")
                .is_ok_and(|text| text.lines().any(|l| l.trim() == "Mode: leader"))
        })
        .map(|i| i + 1)
}

/// Each server's zxid as `srvr` reports it (`None` for one that does not answer).
fn zxids(addrs: &[SocketAddr]) -> Vec<Option<String>> {
    addrs
        .iter()
        .map(|addr| {
            paddock_net_real::client::four_letter(&addr.to_string(), "srvr")
                .ok()
                .and_then(|text| {
                    text.lines()
                        .find_map(|l| l.strip_prefix("Zxid: ").map(str::to_owned))
                })
        })
        .collect()
}

fn choose_fault(
    rng: &mut ChaCha8Rng,
    kinds: &[FaultKind],
    servers: usize,
    leader: Option<usize>,
) -> Fault {
    let any = |rng: &mut ChaCha8Rng| rng.random_range(1..=servers);
    let leader_or_any = |rng: &mut ChaCha8Rng| match leader {
        Some(l) if rng.random_bool(0.5) => l,
        _ => rng.random_range(1..=servers),
    };
    let kinds = if kinds.is_empty() {
        &FaultKind::ALL[..]
    } else {
        kinds
    };
    match kinds[rng.random_range(0..kinds.len())] {
        FaultKind::Partition => {
            // Majority and minority, at random.
            let mut order: Vec<usize> = (1..=servers).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            let cut = rng.random_range(1..servers);
            let (a, b) = order.split_at(cut);
            Fault::Partition(vec![a.to_vec(), b.to_vec()])
        }
        FaultKind::Isolate => {
            // The leader (or a server) cut off from all others.
            let alone = leader_or_any(rng);
            let rest = (1..=servers).filter(|s| *s != alone).collect();
            Fault::Partition(vec![vec![alone], rest])
        }
        FaultKind::Loss => Fault::Loss {
            server: any(rng),
            percent: rng.random_range(10..=60),
        },
        FaultKind::Bandwidth => Fault::Bandwidth {
            server: any(rng),
            kbit: rng.random_range(64..=1024),
        },
        FaultKind::Kill => Fault::Kill {
            server: leader_or_any(rng),
        },
        FaultKind::Pause => Fault::Pause {
            server: leader_or_any(rng),
        },
    }
}

fn config(dir: &Path, id: usize, net: &Network, servers: usize) -> String {
    let mut text = format!(
        "tickTime={TICK_MS}\ninitLimit=10\nsyncLimit=5\ndataDir={d}\ndataLogDir={d}\n\
         clientPort={CLIENT_PORT}\nclientPortAddress={ip}\nmaxClientCnxns=0\n\
         4lw.commands.whitelist=*\nsnapCount=1000000000\nsnapSizeLimitInKb=100000000\n",
        d = dir.display(),
        ip = net.server_ip(id),
    );
    for s in 1..=servers {
        text.push_str(&format!("server.{s}={}:2888:3888\n", net.server_ip(s)));
    }
    text
}

/// Carries out one run. `stop` (Ctrl-C) ends it early with [`RunError::Interrupted`];
/// everything it created is removed either way, but for a failed run's artefacts.
pub fn run(options: &RunOptions, stop: &Arc<AtomicBool>) -> Result<Verdict, RunError> {
    let pid = std::process::id();
    let _ = netns::sweep_stale("pdc");
    let net = Arc::new(Network::create(&format!("pdc{pid}"), options.servers)?);
    let work = std::env::temp_dir().join(format!("paddock-chaos-{pid}"));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| io_error("work directory", e))?;
    let outcome = run_in(options, stop, &net, &work);
    // A failed run's artefacts were moved out of it already.
    let _ = fs::remove_dir_all(&work);
    outcome
}

fn run_in(
    options: &RunOptions,
    stop: &Arc<AtomicBool>,
    net: &Arc<Network>,
    work: &Path,
) -> Result<Verdict, RunError> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut servers = Servers {
        servers: Vec::new(),
        prefix: (1..=options.servers).map(|i| net.exec_prefix(i)).collect(),
        paddock: options.paddock.clone(),
    };
    for id in 1..=options.servers {
        let dir = work.join(format!("s{id}"));
        fs::create_dir_all(&dir).map_err(|e| io_error("data directory", e))?;
        fs::write(dir.join("myid"), format!("{id}\n")).map_err(|e| io_error("myid", e))?;
        let config = dir.join("zoo.cfg");
        fs::write(&config, self::config(&dir, id, net, options.servers))
            .map_err(|e| io_error("zoo.cfg", e))?;
        servers.servers.push(Server {
            id,
            dir,
            config,
            child: None,
            paused: false,
        });
    }
    for i in 1..=options.servers {
        servers.start(i)?;
    }
    // This thread talks to the servers from the clients' namespace too.
    net.enter_clients()?;
    let addrs: Vec<SocketAddr> = (1..=options.servers)
        .map(|i| SocketAddr::new(IpAddr::V4(net.server_ip(i)), CLIENT_PORT))
        .collect();
    let started = Instant::now();
    while leader(&addrs).is_none() {
        if started.elapsed() > LIVENESS_TIMEOUT {
            let history = History::default();
            return liveness_failure(
                options,
                work,
                &mut servers,
                &history,
                "no leader elected at start-up",
                0,
            );
        }
        if stop.load(Ordering::Relaxed) {
            return Err(RunError::Interrupted);
        }
        thread::sleep(Duration::from_millis(100));
    }

    let shared = Arc::new(Shared::new());
    let clients_stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for id in 0..options.clients {
        let spec = ClientSpec {
            id,
            servers: addrs.clone(),
            address: IpAddr::V4(net.client_ip()),
            seed: options.seed,
        };
        let (shared, clients_stop, net) = (shared.clone(), clients_stop.clone(), net.clone());
        let thread = thread::Builder::new()
            .name(format!("client-{id}"))
            .spawn(move || {
                if net.enter_clients().is_ok() {
                    client::run(&spec, &shared, &clients_stop);
                }
            })
            .map_err(|e| io_error("client thread", e))?;
        threads.push(thread);
    }
    let stop_clients = |threads: Vec<thread::JoinHandle<()>>| {
        clients_stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
    };

    // The fault phase.
    let mut faults = 0;
    let phase_end = Instant::now() + options.fault_time;
    let mut interrupted = false;
    while Instant::now() < phase_end {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let fault = choose_fault(&mut rng, &options.kinds, options.servers, leader(&addrs));
        let hold = match fault {
            Fault::Pause { .. } => Duration::from_millis(rng.random_range(7_000..=9_000)),
            _ => Duration::from_millis(rng.random_range(1_000..=4_000)),
        };
        println!(
            "t={:.1}s fault: {fault} for {:.1}s",
            shared.now_ms() as f64 / 1000.0,
            hold.as_secs_f64()
        );
        faults += 1;
        match &fault {
            Fault::Partition(groups) => net.partition(groups)?,
            Fault::Loss { server, percent } => net.loss(*server, *percent)?,
            Fault::Bandwidth { server, kbit } => net.bandwidth(*server, *kbit)?,
            Fault::Kill { server } => servers.kill(*server),
            Fault::Pause { server } => servers.pause(*server),
        }
        sleep_unless(stop, hold);
        match &fault {
            Fault::Partition(_) | Fault::Loss { .. } | Fault::Bandwidth { .. } => net.heal()?,
            Fault::Kill { server } => servers.start(*server)?,
            Fault::Pause { server } => servers.resume(*server),
        }
        sleep_unless(stop, Duration::from_millis(rng.random_range(500..=2_000)));
    }

    // Heal, then liveness.
    net.heal()?;
    for i in 1..=options.servers {
        if servers.servers[i - 1].paused {
            servers.resume(i);
        }
        if servers.servers[i - 1].child.is_none() {
            servers.start(i)?;
        }
    }
    if interrupted {
        stop_clients(threads);
        return Err(RunError::Interrupted);
    }
    let healed_ms = shared.now_ms();
    println!("t={:.1}s healed", healed_ms as f64 / 1000.0);
    let healed = Instant::now();
    // A liveness failure is reported only if the checkers find nothing worse in the
    // history as it stands.
    let mut liveness = None;
    let mut waiting: Vec<u32> = (0..options.clients).collect();
    while !waiting.is_empty() {
        {
            let history = shared.history();
            waiting.retain(|c| !answered_since(&history, *c, healed_ms));
        }
        if waiting.is_empty() {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            stop_clients(threads);
            return Err(RunError::Interrupted);
        }
        if healed.elapsed() > LIVENESS_TIMEOUT {
            liveness = Some(format!(
                "clients {waiting:?} completed no operation within {} s of the heal",
                LIVENESS_TIMEOUT.as_secs()
            ));
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    stop_clients(threads);
    // The servers converge on one zxid (nothing more is written now).
    while liveness.is_none() {
        let seen = zxids(&addrs);
        if seen.iter().all(Option::is_some) && seen.windows(2).all(|w| w[0] == w[1]) {
            break;
        }
        if healed.elapsed() > LIVENESS_TIMEOUT * 2 {
            liveness = Some(format!("the servers did not converge: zxids {seen:?}"));
        }
        thread::sleep(Duration::from_millis(100));
    }
    servers.stop_all();

    let shared =
        Arc::try_unwrap(shared).map_err(|_| RunError::Io("a client thread lives on".into()))?;
    let mut history = shared.into_history();
    let mut logs = BTreeMap::new();
    for server in &servers.servers {
        let log = verdict::read_log(&server.dir).map_err(|e| io_error("read log", e))?;
        logs.insert(NodeId(server.id as u64), log);
    }
    verdict::join(&mut history, &logs, options.servers);
    let result = verdict::judge(&history)
        .and_then(|()| liveness.map_or(Ok(()), |event| Err(Failure::new("liveness", event))));
    let kept = match &result {
        Ok(()) => None,
        Err(_) => Some(keep(options, work, &history)?),
    };
    Ok(Verdict {
        result,
        faults,
        ops: history.ops.len(),
        answered: history
            .ops
            .iter()
            .filter(|op| matches!(op.outcome, Outcome::Reply { .. }))
            .count(),
        committed: history.payloads.keys().next_back().copied().unwrap_or(0),
        kept,
    })
}

/// A liveness failure: the servers stopped, the artefacts kept.
fn liveness_failure(
    options: &RunOptions,
    work: &Path,
    servers: &mut Servers,
    history: &History,
    event: &str,
    faults: usize,
) -> Result<Verdict, RunError> {
    servers.stop_all();
    let kept = keep(options, work, history)?;
    Ok(Verdict {
        result: Err(Failure::new("liveness", event.to_owned())),
        faults,
        ops: history.ops.len(),
        answered: 0,
        committed: 0,
        kept: Some(kept),
    })
}

/// Whether `client` has an operation it sent after `since_ms` that the server answered.
fn answered_since(history: &History, client: u32, since_ms: u64) -> bool {
    history.ops.iter().rev().any(|op| {
        op.client == client
            && op.invoked_ms >= since_ms
            && matches!(op.outcome, Outcome::Reply { .. })
    })
}

fn sleep_unless(stop: &AtomicBool, duration: Duration) {
    let end = Instant::now() + duration;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())));
    }
}

/// Moves a failed run's artefacts (data directories, server logs) under `keep_root`,
/// with the history, and returns the folder.
fn keep(options: &RunOptions, work: &Path, history: &History) -> Result<PathBuf, RunError> {
    let folder = options.keep_root.join(format!(
        "paddock-chaos-seed-{}-{}",
        options.seed,
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&folder);
    fs::create_dir_all(&folder).map_err(|e| io_error("keep folder", e))?;
    for entry in fs::read_dir(work)
        .map_err(|e| io_error("work directory", e))?
        .flatten()
    {
        let to = folder.join(entry.file_name());
        if fs::rename(entry.path(), &to).is_err() {
            copy_dir(&entry.path(), &to).map_err(|e| io_error("keep", e))?;
        }
    }
    let mut file = File::create(folder.join("history.txt")).map_err(|e| io_error("history", e))?;
    use std::io::Write as _;
    writeln!(file, "{history:#?}").map_err(|e| io_error("history", e))?;
    Ok(folder)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)?.flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
