//! `run`: one chaos run, start to verdict.
//!
//! 1. A private network ([`Network`]) and an ensemble of real `paddock serve` processes
//!    in it, one per server namespace, each with its own data directory.
//! 2. Clients ([`crate::client`]) in their own namespace, working from the start.
//! 3. For the fault phase, faults one after another, each chosen by the seed, held for a
//!    while and then undone; every one is printed with the time it began. The kinds are
//!    listed at [`FaultKind`].
//! 4. Heal: every rule removed, every delay lifted, every killed server restarted, every
//!    paused one resumed (and none left on a moved clock).
//!    Liveness: every client completes an operation it started after the heal, and the
//!    servers converge on one zxid, each within [`LIVENESS_TIMEOUT`].
//! 5. Clients and servers stop; the servers' logs are read back and joined to the history
//!    ([`crate::verdict`]), and the simulator's checkers judge it.
//!
//! The run holds the seed's choices only: what the network and the processes do with
//! them is real, so a seed names a fault schedule, not an outcome.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use paddock_core::ids::NodeId;
use paddock_sim::check::Failure;
use paddock_sim::history::{History, Outcome};
use paddock_sim::recipes::WorkloadKind;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::client::{self, ClientSpec, Shared};
use crate::netns::{self, Network};
use crate::proxy::{Proxy, ProxyOptions, Setting};
use crate::verdict::{self, ServerLogs};

/// How long the ensemble may take to serve, to recover after the heal, and to converge.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(30);
/// The client port every server listens on, at its own address.
const CLIENT_PORT: u16 = 2181;
/// The peer port every server listens on, at its own address.
const PEER_PORT: u16 = 2888;
/// The election port of the `server.N` lines (paddock does not listen on it).
const ELECTION_PORT: u16 = 3888;
/// With peer proxies, server i reaches server j through `127.0.0.1:{PROXY_PEER_PORT + j}`
/// in its own namespace (and `PROXY_ELECTION_PORT + j` stands in its `server.j` line).
const PROXY_PEER_PORT: u16 = 2900;
/// See [`PROXY_PEER_PORT`].
const PROXY_ELECTION_PORT: u16 = 3900;
/// `snapCount` of a run without the `wipe` fault: no snapshot is ever taken, so every
/// log reaches back to index 1.
const SNAP_COUNT_NONE: u32 = 1_000_000_000;
/// `snapCount` of a run that may wipe a server: a snapshot every this many entries (well
/// under a second of the clients' load, even on a loaded machine), so a wiped server gets
/// its state as a snapshot from the leader, whose log was compacted, rather than by a
/// replay from index 1. (At 100, a run on a busy 2-core machine could write too little
/// before its wipes for any leader to have compacted.)
const SNAP_COUNT_WITH_WIPES: u32 = 20;
/// `paddock.snapshotLogKeptBytes` of a run that may wipe a server: the leader keeps a
/// few entries of log behind its snapshot (instead of 8 MiB, more than a run writes), so
/// a wiped server, which needs the log from index 1, is sent the snapshot.
const SNAPSHOT_LOG_KEPT_BYTES_WITH_WIPES: u32 = 1024;
/// How long a server stopped with SIGTERM may take to exit before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(5);
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
    /// What the clients do: the simulator's random mix, or its recipes (whose clients
    /// also stall now and then past their session timeout, as paused processes do).
    pub workload: WorkloadKind,
}

/// A kind of fault, as `--faults` names it.
///
/// # Delay (`delay`)
///
/// This kernel has no `tc netem`, so delay is added by proxies the harness owns
/// ([`crate::proxy`]), on the *peer* links only: when `delay` may be chosen, server i's
/// `zoo.cfg` names every other server j as `127.0.0.1:{2900 + j}` while its own line
/// keeps its real address, and a proxy in i's namespace listening there relays to
/// `10.77.0.j:2888`. So the proxy's traffic still leaves from i's address to j's, and
/// partitions, loss and bandwidth limits (nftables and `tbf` on the servers' interfaces)
/// act on it as before. This needs nothing from the server: in plaintext quorum mode a
/// peer is known by the id in its handshake, not by its source address
/// (`net-real/src/peer.rs`). Client traffic is not delayed. Not a perfect stand-in: a
/// connect to an unreachable peer succeeds (to the proxy) and is then closed, instead of
/// failing.
///
/// # Wipe (`wipe`)
///
/// `kill -9` of a server, every file of its data directory moved away but `myid` (kept
/// as an archive the verdict reads, see [`crate::verdict`]), and a restart when the
/// fault ends and the other servers have a leader (a replacement disk goes in once the
/// ensemble has recovered without it): it rejoins empty, as a replaced disk would, and gets its state from the
/// leader — as a snapshot, since runs that may wipe take snapshots every
/// [`SNAP_COUNT_WITH_WIPES`] entries and keep only
/// [`SNAPSHOT_LOG_KEPT_BYTES_WITH_WIPES`] of log behind them. The next fault
/// waits until the wiped server has caught up with the zxid the others had when it
/// restarted (or reports a liveness failure after [`LIVENESS_TIMEOUT`]).
///
/// Only one server is ever wiped at a time, and never before the one wiped last caught
/// up: wiping a majority can legitimately lose acknowledged writes (an entry a quorum
/// acknowledged may be on the wiped servers only), and ZooKeeper has the same property.
/// Even one wipe forgets the server's vote and the entries it acknowledged, which a
/// quorum-based system cannot fully survive combined with other faults before it caught
/// up; that is why nothing else happens meanwhile.
///
/// # Clock (`clock`)
///
/// What can be done without touching the host's clock: a time namespace (`unshare
/// --time`, Linux 5.6 and later) offsets `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME` only,
/// and only for processes started in it after the offset was set; a running process
/// cannot be moved into one. So the fault restarts a server (SIGTERM, then SIGKILL after
/// [`TERM_GRACE`]) inside a new time namespace whose monotonic clock is either hours
/// ahead of the host's (1 to 10 000 h, seeded) or reads a few seconds to minutes, as just
/// after boot (seeded, 5 to 600 s), and when the fault ends restarts it again on the
/// host's clock. `Instant` is `CLOCK_MONOTONIC`, so this covers: nothing that a server
/// keeps across a restart, or compares with another process, may be a monotonic
/// reading, and nothing may subtract from `Instant::now()` past the clock's zero (a
/// panic in Rust) on a host that booted recently. What it cannot cover: a clock that
/// jumps while the server runs (monotonic clocks never do; the wall clock can, and the
/// node's time is the wall clock at start plus monotonic time since, see
/// `net-real/src/server.rs`), and a skewed wall clock (`CLOCK_REALTIME` has no
/// namespace; changing it would change the host's). Those would need an `LD_PRELOAD`
/// shim, which the harness does not use. On a kernel without time namespaces the fault
/// is left out of the default set (and refused when asked for).
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
    /// 50-400 ms more one-way delay, with jitter, on every peer link of a server.
    Delay,
    /// The leader (half the time) or any server killed, its data directory emptied but
    /// for `myid`, and restarted.
    Wipe,
    /// A server restarted with its monotonic clock far ahead or near zero.
    ClockOffset,
    /// A bridge: the others split in two sides that cannot reach each other, while one
    /// server (the leader half the time) still reaches both.
    Bridge,
}

impl FaultKind {
    /// Every kind, in `--faults` order.
    pub const ALL: [FaultKind; 10] = [
        FaultKind::Partition,
        FaultKind::Isolate,
        FaultKind::Loss,
        FaultKind::Bandwidth,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Delay,
        FaultKind::Wipe,
        FaultKind::ClockOffset,
        FaultKind::Bridge,
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
            FaultKind::Delay => "delay",
            FaultKind::Wipe => "wipe",
            FaultKind::ClockOffset => "clock",
            FaultKind::Bridge => "bridge",
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
    /// The offset of `CLOCK_MONOTONIC` in the time namespace it runs in, seconds (none:
    /// the host's clock).
    clock_offset_s: Option<i64>,
    /// Where the contents of its data directory went each time it was wiped, oldest
    /// first.
    archives: Vec<PathBuf>,
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
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(server.dir.join("server.log"))
            .map_err(|e| io_error("server log", e))?;
        let prefix = &self.prefix[i - 1];
        let mut command = Command::new(&prefix[0]);
        command.args(&prefix[1..]);
        if let Some(offset) = server.clock_offset_s {
            // `unshare` execs the server without a fork (the kernel moves a process into
            // the time namespace it made for its children when it execs), so the child is
            // the server itself, as for the others: signals reach it.
            command.args([
                "unshare".to_owned(),
                "--time".to_owned(),
                format!("--monotonic={offset}"),
                format!("--boottime={offset}"),
            ]);
        }
        let _ = writeln!(
            log,
            "paddock-chaos: starting server {i}{}",
            server.clock_offset_s.map_or(String::new(), |o| format!(
                " (CLOCK_MONOTONIC offset {o} s)"
            ))
        );
        let child = command
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

    /// Stops server `i` (SIGTERM, SIGKILL after [`TERM_GRACE`]) and starts it again with
    /// its monotonic clock offset by `clock_offset_s` (none: the host's).
    fn restart(&mut self, i: usize, clock_offset_s: Option<i64>) -> Result<(), RunError> {
        if self.servers[i - 1].paused {
            self.resume(i);
        }
        self.signal(i, rustix::process::Signal::TERM);
        if let Some(mut child) = self.servers[i - 1].child.take() {
            let deadline = Instant::now() + TERM_GRACE;
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.servers[i - 1].clock_offset_s = clock_offset_s;
        self.start(i)
    }

    /// Kills server `i` and moves every file of its data directory but `myid` (and the
    /// harness's `zoo.cfg` and `server.log`) to a new archive directory under `work`.
    /// The server stays down.
    fn wipe(&mut self, i: usize, work: &Path) -> Result<(), RunError> {
        self.kill(i);
        let server = &mut self.servers[i - 1];
        let archive = work.join(format!("s{i}-wiped-{}", server.archives.len() + 1));
        fs::create_dir_all(&archive).map_err(|e| io_error("wipe archive", e))?;
        server.archives.push(archive.clone());
        for entry in fs::read_dir(&server.dir)
            .map_err(|e| io_error("wipe", e))?
            .flatten()
        {
            let name = entry.file_name();
            if ["myid", "zoo.cfg", "server.log"]
                .iter()
                .any(|keep| name == std::ffi::OsStr::new(keep))
            {
                continue;
            }
            fs::rename(entry.path(), archive.join(&name))
                .map_err(|e| io_error(&format!("wipe {}", entry.path().display()), e))?;
        }
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
    /// Server `via` reaches both sides; the sides cannot reach each other.
    Bridge { via: usize, sides: [Vec<usize>; 2] },
    /// A share of the packets into a server dropped.
    Loss { server: usize, percent: u8 },
    /// A server's sending rate limited.
    Bandwidth { server: usize, kbit: u32 },
    /// A server killed with SIGKILL, restarted when the fault ends.
    Kill { server: usize },
    /// A server stopped with SIGSTOP for longer than the session timeout.
    Pause { server: usize },
    /// More delay (and a jitter) on every peer link of a server, both ways.
    Delay {
        server: usize,
        ms: u32,
        jitter_ms: u32,
    },
    /// A server killed, its data directory emptied but for `myid`, restarted when the
    /// fault ends.
    Wipe { server: usize },
    /// A server restarted with its monotonic clock moved, and again on the host's clock
    /// when the fault ends.
    Clock { server: usize, clock: ClockShift },
}

/// Where a restarted server's monotonic clock is put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClockShift {
    /// This many hours ahead of the host's.
    AheadHours(u32),
    /// Reading this many seconds, as just after boot (back from the host's, unless the
    /// host booted more recently).
    NearBootSecs(u32),
}

impl ClockShift {
    /// The offset to give a time namespace, seconds, for `now_s`, the host's
    /// `CLOCK_MONOTONIC` now.
    fn offset_s(self, now_s: i64) -> i64 {
        match self {
            ClockShift::AheadHours(h) => i64::from(h) * 3600,
            ClockShift::NearBootSecs(s) => i64::from(s) - now_s,
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Partition(groups) => write!(f, "partition {groups:?}"),
            Fault::Bridge { via, sides } => write!(
                f,
                "bridge: server {via} reaches {:?} and {:?}, which cannot reach each other",
                sides[0], sides[1]
            ),
            Fault::Loss { server, percent } => write!(f, "loss {percent}% into server {server}"),
            Fault::Bandwidth { server, kbit } => {
                write!(f, "bandwidth of server {server} {kbit} kbit/s")
            }
            Fault::Kill { server } => write!(f, "kill -9 server {server}"),
            Fault::Pause { server } => write!(f, "SIGSTOP server {server}"),
            Fault::Delay {
                server,
                ms,
                jitter_ms,
            } => write!(
                f,
                "delay {ms} ms (+0-{jitter_ms} ms jitter) each way on server {server}'s peer links"
            ),
            Fault::Wipe { server } => write!(
                f,
                "wipe server {server} (kill -9, data directory emptied but for myid, restarted after)"
            ),
            Fault::Clock { server, clock } => match clock {
                ClockShift::AheadHours(h) => write!(
                    f,
                    "clock: restart server {server} in a time namespace, CLOCK_MONOTONIC {h} h ahead"
                ),
                ClockShift::NearBootSecs(s) => write!(
                    f,
                    "clock: restart server {server} in a time namespace, CLOCK_MONOTONIC reading {s} s (as just after boot)"
                ),
            },
        }
    }
}

/// The proxies on the peer links (see [`FaultKind`], Delay): `(i, j)` is the one in
/// server i's namespace that carries what i sends to j. Dropping it stops them all.
struct PeerProxies {
    links: BTreeMap<(usize, usize), (Proxy, Arc<Setting>)>,
}

impl PeerProxies {
    fn start(net: &Arc<Network>, servers: usize, seed: u64) -> Result<PeerProxies, RunError> {
        let mut links = BTreeMap::new();
        for i in 1..=servers {
            for j in (1..=servers).filter(|j| *j != i) {
                let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), proxy_port(j));
                let target = SocketAddr::new(IpAddr::V4(net.server_ip(j)), PEER_PORT);
                let options =
                    ProxyOptions::new(listen, target, seed ^ ((i as u64) << 8 | j as u64));
                let setting = Arc::new(Setting::new());
                let net = net.clone();
                let proxy = Proxy::start(
                    options,
                    setting.clone(),
                    Some(Box::new(move || {
                        net.enter_server(i).map_err(|e| e.to_string())
                    })),
                )
                .map_err(|e| io_error(&format!("peer proxy {i}->{j}"), e))?;
                links.insert((i, j), (proxy, setting));
            }
        }
        Ok(PeerProxies { links })
    }

    /// `ms` (plus up to `jitter_ms`) each way on every link from or to `server`.
    fn delay(&self, server: usize, ms: u32, jitter_ms: u32) {
        let (delay, jitter) = (
            Duration::from_millis(u64::from(ms)),
            Duration::from_millis(u64::from(jitter_ms)),
        );
        for ((i, j), (_, setting)) in &self.links {
            if *i == server || *j == server {
                setting.set(delay, delay, jitter);
            }
        }
    }

    /// No delay anywhere.
    fn clear(&self) {
        for (_, setting) in self.links.values() {
            setting.clear();
        }
    }
}

/// The port of the proxy to server `j`, in every other server's namespace.
fn proxy_port(j: usize) -> u16 {
    PROXY_PEER_PORT + u16::try_from(j).unwrap_or(0)
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

/// Waits until a server other than `wiped` leads (or `stop`); the liveness failure when
/// none does within [`LIVENESS_TIMEOUT`].
fn survivors_lead(addrs: &[SocketAddr], wiped: usize, stop: &AtomicBool) -> Option<String> {
    let deadline = Instant::now() + LIVENESS_TIMEOUT;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        if leader(addrs).is_some_and(|l| l != wiped) {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
    if stop.load(Ordering::Relaxed) {
        return None;
    }
    Some(format!(
        "no leader among the servers but the wiped {wiped} within {LIVENESS_TIMEOUT:?}"
    ))
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
        FaultKind::Bridge => {
            let via = leader_or_any(rng);
            let mut others: Vec<usize> = (1..=servers).filter(|s| *s != via).collect();
            for i in (1..others.len()).rev() {
                others.swap(i, rng.random_range(0..=i));
            }
            let (a, b) = others.split_at(others.len() / 2);
            Fault::Bridge {
                via,
                sides: [a.to_vec(), b.to_vec()],
            }
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
        FaultKind::Delay => {
            let ms = rng.random_range(50..=400);
            Fault::Delay {
                server: leader_or_any(rng),
                ms,
                jitter_ms: rng.random_range(0..=ms / 2),
            }
        }
        FaultKind::Wipe => Fault::Wipe {
            server: leader_or_any(rng),
        },
        FaultKind::ClockOffset => Fault::Clock {
            server: leader_or_any(rng),
            clock: if rng.random_bool(0.5) {
                ClockShift::AheadHours(rng.random_range(1..=10_000))
            } else {
                ClockShift::NearBootSecs(rng.random_range(5..=600))
            },
        },
    }
}

/// Server `id`'s `zoo.cfg`: with `proxied`, every other server's line names the proxy in
/// its own namespace (see [`FaultKind`], Delay).
fn config(
    dir: &Path,
    id: usize,
    net: &Network,
    servers: usize,
    proxied: bool,
    snap_count: u32,
) -> String {
    let mut text = format!(
        "tickTime={TICK_MS}\ninitLimit=10\nsyncLimit=5\ndataDir={d}\ndataLogDir={d}\n\
         clientPort={CLIENT_PORT}\nclientPortAddress={ip}\nmaxClientCnxns=0\n\
         4lw.commands.whitelist=*\nsnapCount={snap_count}\nsnapSizeLimitInKb=100000000\n",
        d = dir.display(),
        ip = net.server_ip(id),
    );
    if snap_count != SNAP_COUNT_NONE {
        text.push_str(&format!(
            "paddock.snapshotLogKeptBytes={SNAPSHOT_LOG_KEPT_BYTES_WITH_WIPES}\n"
        ));
    }
    for s in 1..=servers {
        if proxied && s != id {
            let port = proxy_port(s);
            let election = PROXY_ELECTION_PORT + (port - PROXY_PEER_PORT);
            text.push_str(&format!("server.{s}=127.0.0.1:{port}:{election}\n"));
        } else {
            text.push_str(&format!(
                "server.{s}={}:{PEER_PORT}:{ELECTION_PORT}\n",
                net.server_ip(s)
            ));
        }
    }
    text
}

/// Whether processes can be started in a time namespace with an offset monotonic clock.
fn time_namespaces_work() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["--time", "--monotonic=3600", "--boottime=3600", "true"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`unshare --time` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The host's `CLOCK_MONOTONIC`, whole seconds.
fn monotonic_now_s() -> i64 {
    rustix::time::clock_gettime(rustix::time::ClockId::Monotonic).tv_sec
}

/// How waiting for a wiped server ended.
enum CatchUp {
    /// It reached the zxid.
    Done { zxid: u64, after: Duration },
    /// It did not in time: the liveness failure.
    TimedOut(String),
    /// Ctrl-C.
    Interrupted,
}

/// A `srvr` zxid (`0x…`) as a number.
fn zxid_value(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
}

/// Waits until server `server` (just restarted after a wipe) has applied at least the
/// highest zxid the other servers report now, within [`LIVENESS_TIMEOUT`].
fn catch_up(addrs: &[SocketAddr], server: usize, stop: &AtomicBool) -> CatchUp {
    let started = Instant::now();
    let deadline = started + LIVENESS_TIMEOUT;
    let mut target = None;
    let mut seen = None;
    while Instant::now() < deadline {
        if stop.load(Ordering::Relaxed) {
            return CatchUp::Interrupted;
        }
        let zxids = zxids(addrs);
        if target.is_none() {
            target = zxids
                .iter()
                .enumerate()
                .filter(|(k, _)| k + 1 != server)
                .filter_map(|(_, z)| z.as_deref().and_then(zxid_value))
                .max();
        }
        seen = zxids[server - 1].as_deref().and_then(zxid_value);
        if let (Some(target), Some(seen)) = (target, seen)
            && seen >= target
        {
            return CatchUp::Done {
                zxid: seen,
                after: started.elapsed(),
            };
        }
        thread::sleep(Duration::from_millis(100));
    }
    CatchUp::TimedOut(format!(
        "server {server}, restarted with a wiped data directory, did not catch up within {} s: \
         the others were at zxid {}, it reports {}",
        LIVENESS_TIMEOUT.as_secs(),
        target.map_or("(none answered)".to_owned(), |z| format!("{z:#x}")),
        seen.map_or("nothing".to_owned(), |z| format!("{z:#x}")),
    ))
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
    let mut kinds = if options.kinds.is_empty() {
        FaultKind::ALL.to_vec()
    } else {
        options.kinds.clone()
    };
    if kinds.contains(&FaultKind::ClockOffset)
        && let Err(why) = time_namespaces_work()
    {
        if !options.kinds.is_empty() {
            return Err(RunError::Io(format!(
                "the clock fault needs time namespaces: {why}"
            )));
        }
        eprintln!("paddock-chaos: no clock faults (they need time namespaces): {why}");
        kinds.retain(|k| *k != FaultKind::ClockOffset);
    }
    // Delay needs the peer links to run through the harness's proxies; without it they
    // stay direct. The proxies live in the servers' namespaces and stop when dropped,
    // at the end of this function, before the network goes.
    let proxies = if kinds.contains(&FaultKind::Delay) {
        Some(PeerProxies::start(net, options.servers, options.seed)?)
    } else {
        None
    };
    let snap_count = if kinds.contains(&FaultKind::Wipe) {
        SNAP_COUNT_WITH_WIPES
    } else {
        SNAP_COUNT_NONE
    };
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
        let text = self::config(
            &dir,
            id,
            net,
            options.servers,
            proxies.is_some(),
            snap_count,
        );
        fs::write(&config, text).map_err(|e| io_error("zoo.cfg", e))?;
        servers.servers.push(Server {
            id,
            dir,
            config,
            child: None,
            paused: false,
            clock_offset_s: None,
            archives: Vec::new(),
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
            recipe: match options.workload {
                WorkloadKind::Mixed => None,
                WorkloadKind::Recipes => Some(true),
                WorkloadKind::RecipesUnfenced => Some(false),
            },
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
    // A liveness failure is reported only if the checkers find nothing worse in the
    // history as it stands.
    let mut liveness = None;
    let at = |shared: &Shared| shared.now_ms() as f64 / 1000.0;
    while Instant::now() < phase_end {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let fault = choose_fault(&mut rng, &kinds, options.servers, leader(&addrs));
        let hold = match fault {
            Fault::Pause { .. } => Duration::from_millis(rng.random_range(7_000..=9_000)),
            _ => Duration::from_millis(rng.random_range(1_000..=4_000)),
        };
        println!(
            "t={:.1}s fault: {fault} for {:.1}s",
            at(&shared),
            hold.as_secs_f64()
        );
        faults += 1;
        match &fault {
            Fault::Partition(groups) => net.partition(groups)?,
            Fault::Bridge { sides, .. } => {
                let pairs: Vec<(usize, usize)> = sides[0]
                    .iter()
                    .flat_map(|&a| sides[1].iter().map(move |&b| (a, b)))
                    .collect();
                net.cut(&pairs)?;
            }
            Fault::Loss { server, percent } => net.loss(*server, *percent)?,
            Fault::Bandwidth { server, kbit } => net.bandwidth(*server, *kbit)?,
            Fault::Kill { server } => servers.kill(*server),
            Fault::Pause { server } => servers.pause(*server),
            Fault::Delay {
                server,
                ms,
                jitter_ms,
            } => {
                if let Some(proxies) = &proxies {
                    proxies.delay(*server, *ms, *jitter_ms);
                }
            }
            Fault::Wipe { server } => servers.wipe(*server, work)?,
            Fault::Clock { server, clock } => {
                servers.restart(*server, Some(clock.offset_s(monotonic_now_s())))?;
            }
        }
        sleep_unless(stop, hold);
        match &fault {
            Fault::Partition(_)
            | Fault::Bridge { .. }
            | Fault::Loss { .. }
            | Fault::Bandwidth { .. } => net.heal()?,
            Fault::Kill { server } => servers.start(*server)?,
            Fault::Pause { server } => servers.resume(*server),
            Fault::Delay { .. } => {
                if let Some(proxies) = &proxies {
                    proxies.clear();
                }
            }
            Fault::Wipe { server } => {
                // The replacement disk goes in once the others have a leader again.
                // Until then the survivors must elect among themselves: one of them holds
                // every acknowledged entry the wiped server had, and the empty server's
                // vote could otherwise help elect one that lacks them (a ZooKeeper
                // ensemble has the same property).
                if let Some(event) = survivors_lead(&addrs, *server, stop) {
                    println!("t={:.1}s {event}", at(&shared));
                    liveness = Some(event);
                    break;
                }
                servers.start(*server)?;
                match catch_up(&addrs, *server, stop) {
                    CatchUp::Done { zxid, after } => println!(
                        "t={:.1}s server {server} caught up to zxid {zxid:#x} {:.1}s after its restart",
                        at(&shared),
                        after.as_secs_f64()
                    ),
                    CatchUp::TimedOut(event) => {
                        println!("t={:.1}s {event}", at(&shared));
                        liveness = Some(event);
                        break;
                    }
                    CatchUp::Interrupted => {
                        interrupted = true;
                        break;
                    }
                }
            }
            Fault::Clock { server, .. } => servers.restart(*server, None)?,
        }
        sleep_unless(stop, Duration::from_millis(rng.random_range(500..=2_000)));
    }

    // Heal, then liveness.
    net.heal()?;
    if let Some(proxies) = &proxies {
        proxies.clear();
    }
    for i in 1..=options.servers {
        if servers.servers[i - 1].paused {
            servers.resume(i);
        }
        if servers.servers[i - 1].clock_offset_s.is_some() {
            servers.restart(i, None)?;
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
    let mut waiting: Vec<u32> = (0..options.clients).collect();
    while liveness.is_none() && !waiting.is_empty() {
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
        let current = verdict::read_log(&server.dir).map_err(|e| io_error("read log", e))?;
        if current.snapshot.index > 0 {
            println!(
                "server {}: its log starts after a snapshot at index {} (zxid {:#x}) that it \
                 installed from the leader",
                server.id, current.snapshot.index, current.snapshot.zxid.0
            );
        }
        let mut archives = Vec::new();
        for archive in &server.archives {
            match verdict::read_log(archive) {
                Ok(log) => archives.push(log),
                Err(e) => println!(
                    "server {}: a data directory it was wiped of cannot be read, left out: {e}",
                    server.id
                ),
            }
        }
        logs.insert(NodeId(server.id as u64), ServerLogs { current, archives });
    }
    let committed = verdict::join(&mut history, &logs, options.servers);
    if let Some(first) = committed.holes.first() {
        println!(
            "the committed sequence lacks {} entries from index {first} on (no log holds them \
             any more, or the logs holding them disagree): the checkers check what they can \
             around them",
            committed.holes.len()
        );
    }
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
