//! `four_letter`: the text answers of ZooKeeper's four-letter words, in ZooKeeper 3.8's
//! layouts (docs/protocol.md, Four-letter words) so existing monitoring scripts and kazoo
//! parse them.
//!
//! Pure formatting from a [`NodeStatus`] and what the runtime counts ([`Counters`],
//! [`ConnInfo`]); the whitelist check happens here too, so a disabled word gets
//! ZooKeeper's refusal text. Latencies come from core (`NodeStatus::latency`: ms from a
//! request's arrival to its answer, every request counted, connects and pings included,
//! as ZooKeeper counts them). Words Paddock does not implement (`hash`, `gtmk`, `stmk`)
//! get the same answer as a word outside the whitelist. `crst` and
//! `srst` answer here; the runtime resets the statistics they name ([`resets`]).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use paddock_core::node::{ConnStats, NodeStatus};
use paddock_core::replication::Role;
use paddock_core::wire::FourLetterWord;

use crate::config::ZooCfg;

/// The version string reported everywhere; kazoo reads the leading `3.8.0`.
pub const ZOOKEEPER_VERSION: &str = concat!(
    "3.8.0-paddock-",
    env!("CARGO_PKG_VERSION"),
    ", built on 1970-01-01 00:00 UTC"
);

/// Words this runtime answers.
pub const IMPLEMENTED: &[FourLetterWord] = &[
    FourLetterWord::Ruok,
    FourLetterWord::Srvr,
    FourLetterWord::Stat,
    FourLetterWord::Conf,
    FourLetterWord::Cons,
    FourLetterWord::Envi,
    FourLetterWord::Mntr,
    FourLetterWord::Wchs,
    FourLetterWord::Isro,
    FourLetterWord::Crst,
    FourLetterWord::Srst,
    FourLetterWord::Dirs,
    FourLetterWord::Dump,
    FourLetterWord::Wchc,
    FourLetterWord::Wchp,
];

/// Statistics a word resets, once answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// `crst`: every connection's counters and latencies.
    Connections,
    /// `srst`: the server's counters and latencies.
    Server,
}

/// What `word` resets, when it is enabled and the server serves (the runtime resets it
/// after answering; a server that does not serve answers that instead, as ZooKeeper).
pub fn resets(word: FourLetterWord, config: &ZooCfg, serving: bool) -> Option<Reset> {
    let reset = match word {
        FourLetterWord::Crst => Reset::Connections,
        FourLetterWord::Srst => Reset::Server,
        _ => return None,
    };
    (serving && enabled(word, config)).then_some(reset)
}

/// Whether `word` is in the whitelist and answered by Paddock.
fn enabled(word: FourLetterWord, config: &ZooCfg) -> bool {
    config.four_letter_words.iter().any(|w| w == word.as_str()) && IMPLEMENTED.contains(&word)
}

/// Durations in ms summed up as ZooKeeper's summaries print them in `mntr` (`avg_X`,
/// `min_X`, `max_X`, `cnt_X`, `sum_X`); recorded from any thread.
#[derive(Debug)]
pub struct Summary {
    count: AtomicU64,
    sum_ms: AtomicU64,
    min_ms: AtomicU64,
    max_ms: AtomicU64,
}

impl Default for Summary {
    fn default() -> Summary {
        Summary {
            count: AtomicU64::new(0),
            sum_ms: AtomicU64::new(0),
            min_ms: AtomicU64::new(u64::MAX),
            max_ms: AtomicU64::new(0),
        }
    }
}

impl Summary {
    /// Adds one duration.
    pub fn record(&self, elapsed: std::time::Duration) {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ms.fetch_add(ms, Ordering::Relaxed);
        self.min_ms.fetch_min(ms, Ordering::Relaxed);
        self.max_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The figures so far.
    pub fn figures(&self) -> SummaryFigures {
        let count = self.count.load(Ordering::Relaxed);
        SummaryFigures {
            count,
            sum_ms: self.sum_ms.load(Ordering::Relaxed),
            min_ms: if count == 0 {
                0
            } else {
                self.min_ms.load(Ordering::Relaxed)
            },
            max_ms: self.max_ms.load(Ordering::Relaxed),
        }
    }
}

/// What a [`Summary`] holds at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SummaryFigures {
    /// Durations recorded.
    pub count: u64,
    /// Their sum, ms.
    pub sum_ms: u64,
    /// The shortest (0 before any).
    pub min_ms: u64,
    /// The longest.
    pub max_ms: u64,
}

impl SummaryFigures {
    /// The five `mntr` lines of summary `name`, in ZooKeeper's order.
    fn lines(self, name: &str) -> [(String, String); 5] {
        let avg = if self.count == 0 {
            0.0
        } else {
            self.sum_ms as f64 / self.count as f64
        };
        [
            (format!("zk_avg_{name}"), java_double(avg)),
            (format!("zk_min_{name}"), self.min_ms.to_string()),
            (format!("zk_max_{name}"), self.max_ms.to_string()),
            (format!("zk_cnt_{name}"), self.count.to_string()),
            (format!("zk_sum_{name}"), self.sum_ms.to_string()),
        ]
    }
}

/// Traffic counters the runtime keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Reads of client bytes handed to the node.
    pub received: u64,
    /// Writes of reply bytes to clients.
    pub sent: u64,
    /// Longest time the event loop spent on one round of events (handling them and
    /// stepping the node, not waiting), in microseconds: how long every client, peer and
    /// timer waited behind the slowest work on the loop.
    pub loop_round_max_us: u64,
    /// Longest time the event loop spent on one step of the node (one input and the
    /// outputs it made), in microseconds: the longest stretch during which it handled
    /// nothing else.
    pub loop_event_max_us: u64,
    /// Client requests received and not yet answered, all connections together (what
    /// `globalOutstandingLimit` bounds; ZooKeeper's `zk_outstanding_requests`).
    pub outstanding_requests: u64,
    /// The most `outstanding_requests` has been since the server started.
    pub outstanding_requests_max: u64,
    /// Times reading a connection was paused because the outstanding requests of all
    /// connections were above `globalOutstandingLimit`.
    pub reads_throttled: u64,
    /// Reply bytes written and not yet taken by the clients' sockets, all together.
    pub queued_reply_bytes: u64,
    /// Connections closed because they did not read their replies (over their own
    /// budget, or among the largest while all together were over theirs).
    pub slow_clients_closed: u64,
    /// Ms since the server started (`zk_uptime`).
    pub uptime_ms: u64,
    /// Open file descriptors and their limit, where the system tells
    /// (`zk_open_file_descriptor_count`, `zk_max_file_descriptor_count`; read for `mntr`
    /// only).
    pub file_descriptors: Option<(u64, u64)>,
    /// `fdatasync` times of the log (`zk_*_fsynctime`).
    pub fsync: SummaryFigures,
    /// Times from looking for a leader to following or leading one (`zk_*_election_time`).
    pub election: SummaryFigures,
}

/// One open client connection, for `stat` and `cons`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Reads from this client.
    pub received: u64,
    /// Writes to this client.
    pub sent: u64,
    /// Wall-clock ms when the connection was accepted.
    pub established_ms: u64,
    /// Wall-clock ms of the last answer (0 before any).
    pub last_response_ms: u64,
    /// What core knows of it (session, last operation, latencies).
    pub stats: Option<ConnStats>,
}

/// What `dump`, `wchc` and `wchp` list (gathered for those words only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dump {
    /// The tick, ms: deadlines are grouped in sets of one tick, as ZooKeeper's expiry
    /// queues group them.
    pub tick_ms: u64,
    /// Each live session and when it expires (wall-clock ms).
    pub sessions: Vec<(i64, u64)>,
    /// Each session owning ephemerals, with their paths.
    pub ephemerals: Vec<(i64, Vec<String>)>,
    /// Each connection: its client's address, its session (0 before one) and when it
    /// expires (wall-clock ms).
    pub connections: Vec<(SocketAddr, i64, u64)>,
    /// Each watching session with the paths it watches.
    pub watches_by_session: Vec<(i64, Vec<String>)>,
    /// Each watched path with the sessions watching it.
    pub watches_by_path: Vec<(String, Vec<i64>)>,
}

/// Everything an answer may need.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The node's summary.
    pub status: &'a NodeStatus,
    /// The server's config.
    pub config: &'a ZooCfg,
    /// This server's id (1 for a standalone server).
    pub server_id: u64,
    /// Runtime counters.
    pub counters: Counters,
    /// Open client connections.
    pub conns: &'a [ConnInfo],
    /// Bytes of the files in `dataDir` and in `dataLogDir` (read for `dirs` only).
    pub dir_bytes: (u64, u64),
    /// Sessions, ephemerals and watches (gathered for `dump`, `wchc` and `wchp` only).
    pub dump: Option<&'a Dump>,
}

const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The text to write back for `word` (the runtime then closes the connection).
pub fn answer(word: FourLetterWord, ctx: &Context<'_>) -> String {
    let name = word.as_str();
    if !enabled(word, ctx.config) {
        return format!("{name} is not executed because it is not in the whitelist.\n");
    }
    let serving = ctx.status.replication.leader.is_some();
    match word {
        FourLetterWord::Ruok | FourLetterWord::Envi | FourLetterWord::Isro => body(word, ctx),
        _ if !serving => NOT_SERVING.to_owned(),
        FourLetterWord::Crst => "Connection stats reset.\n".to_owned(),
        FourLetterWord::Srst => "Server stats reset.\n".to_owned(),
        _ => body(word, ctx),
    }
}

/// Each group's head on a line of its own, then its items one a line after a tab.
fn tab_lists<I: IntoIterator<Item = String>>(
    groups: impl IntoIterator<Item = (String, I)>,
    out: &mut String,
) {
    for (head, items) in groups {
        let _ = writeln!(out, "{head}");
        for item in items {
            let _ = writeln!(out, "\t{item}");
        }
    }
}

/// `wchc`: each watching session, then its paths indented by a tab; a blank line ends it.
fn wchc(ctx: &Context<'_>) -> String {
    let mut out = String::new();
    let groups = ctx.dump.map_or(&[][..], |d| &d.watches_by_session);
    tab_lists(
        groups
            .iter()
            .map(|(session, paths)| (format!("{session:#x}"), paths.iter().cloned())),
        &mut out,
    );
    out.push('\n');
    out
}

/// `wchp`: each watched path, then the sessions watching it.
fn wchp(ctx: &Context<'_>) -> String {
    let mut out = String::new();
    let groups = ctx.dump.map_or(&[][..], |d| &d.watches_by_path);
    tab_lists(
        groups
            .iter()
            .map(|(path, sessions)| (path.clone(), sessions.iter().map(|s| format!("{s:#x}")))),
        &mut out,
    );
    out.push('\n');
    out
}

/// Items grouped by their deadline rounded up to the next tick, earliest first, as
/// ZooKeeper's `ExpiryQueue.dump` prints them: `Sets (S)/(N):`, then each set.
fn expiry_sets<T>(
    items: &[T],
    deadline: impl Fn(&T) -> u64,
    tick_ms: u64,
    line: impl Fn(&T) -> String,
    out: &mut String,
) {
    let tick = tick_ms.max(1);
    let mut sets: std::collections::BTreeMap<u64, Vec<String>> = std::collections::BTreeMap::new();
    for item in items {
        let at = (deadline(item) / tick)
            .saturating_add(1)
            .saturating_mul(tick);
        sets.entry(at).or_default().push(line(item));
    }
    let _ = writeln!(out, "Sets ({})/({}):", sets.len(), items.len());
    for (at, lines) in sets {
        let _ = writeln!(out, "{} expire at {}:", lines.len(), java_date(at));
        for line in lines {
            let _ = writeln!(out, "\t{line}");
        }
    }
}

/// `dump`: the sessions by expiry, the ephemerals by session, the connections by expiry.
fn dump(ctx: &Context<'_>) -> String {
    let empty = Dump::default();
    let d = ctx.dump.unwrap_or(&empty);
    let mut out = String::from("SessionTracker dump:\nSession ");
    expiry_sets(
        &d.sessions,
        |s| s.1,
        d.tick_ms,
        |s| format!("{:#x}", s.0),
        &mut out,
    );
    let _ = writeln!(out, "ephemeral nodes dump:");
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", d.ephemerals.len());
    tab_lists(
        d.ephemerals
            .iter()
            .map(|(session, paths)| (format!("{session:#x}:"), paths.iter().cloned())),
        &mut out,
    );
    out.push_str("Connections dump:\nConnections ");
    expiry_sets(
        &d.connections,
        |c| c.2,
        d.tick_ms,
        |c| format!("ip: /{} sessionId: {:#x}", c.0, c.1),
        &mut out,
    );
    out
}

/// A wall-clock time as Java's `Date.toString` prints it in UTC:
/// `Sat Dec 05 16:25:13 UTC 2026`.
pub fn java_date(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {day:02} {:02}:{:02}:{:02} UTC {year}",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The text of `word` for the AdminServer and the metrics endpoint (`crate::http`), which
/// ZooKeeper serves whatever the whitelist says and while no leader is known: the same
/// layouts as [`answer`], for the words without side effects (`crst` and `srst` are not
/// offered there).
pub fn answer_for_http(word: FourLetterWord, ctx: &Context<'_>) -> String {
    match word {
        FourLetterWord::Crst | FourLetterWord::Srst => String::new(),
        _ => body(word, ctx),
    }
}

/// The text of a word that reports (every implemented word but `crst` and `srst`).
fn body(word: FourLetterWord, ctx: &Context<'_>) -> String {
    let serving = ctx.status.replication.leader.is_some();
    match word {
        FourLetterWord::Ruok => "imok".to_owned(),
        FourLetterWord::Envi => envi(ctx),
        // Paddock has no read-only mode: a serving server is read-write; ZooKeeper says
        // `null` when it does not serve.
        FourLetterWord::Isro => if serving { "rw" } else { "null" }.to_owned(),
        FourLetterWord::Dirs => format!(
            "datadir_size: {}\nlogdir_size: {}\n",
            ctx.dir_bytes.0, ctx.dir_bytes.1
        ),
        FourLetterWord::Srvr => srvr(ctx),
        FourLetterWord::Stat => stat(ctx),
        FourLetterWord::Conf => conf(ctx),
        FourLetterWord::Cons => cons(ctx),
        FourLetterWord::Mntr => mntr(ctx),
        FourLetterWord::Dump => dump(ctx),
        FourLetterWord::Wchc => wchc(ctx),
        FourLetterWord::Wchp => wchp(ctx),
        FourLetterWord::Wchs => wchs(ctx),
        _ => String::new(),
    }
}

/// `standalone`, `leader`, `follower` or `observer`, as `Mode:` and `zk_server_state` say.
pub fn mode(ctx: &Context<'_>) -> &'static str {
    if ctx.config.servers.len() <= 1 {
        return "standalone";
    }
    match ctx.status.replication.role {
        Role::Leader => "leader",
        Role::Observer => "observer",
        _ => "follower",
    }
}

fn srvr_body(ctx: &Context<'_>, out: &mut String) {
    let s = ctx.status;
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        s.latency.min_ms,
        avg_latency(s),
        s.latency.max_ms
    );
    let _ = writeln!(out, "Received: {}", ctx.counters.received);
    let _ = writeln!(out, "Sent: {}", ctx.counters.sent);
    let _ = writeln!(out, "Connections: {}", s.connections);
    let _ = writeln!(out, "Outstanding: {}", ctx.counters.outstanding_requests);
    let _ = writeln!(out, "Zxid: {:#x}", s.applied_zxid.0);
    let _ = writeln!(out, "Mode: {}", mode(ctx));
    let _ = writeln!(out, "Node count: {}", s.znodes);
}

/// The mean latency as ZooKeeper prints a Java double: at most four decimals, at least
/// one (`0.0`, `0.5`, `1.2345`).
fn avg_latency(s: &NodeStatus) -> String {
    java_double(s.latency.avg_ms())
}

fn java_double(value: f64) -> String {
    let text = format!("{value:.4}");
    let trimmed = text.trim_end_matches('0');
    if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_owned()
    }
}

fn srvr(ctx: &Context<'_>) -> String {
    let mut out = format!("Zookeeper version: {ZOOKEEPER_VERSION}\n");
    srvr_body(ctx, &mut out);
    out
}

/// ` /ip:port[1](queued=..,recved=..,sent=..)`, as `stat` lists clients. The long form
/// (`cons`) adds, once a session exists and in ZooKeeper's field order, the session id,
/// last operation, established time, timeout, last xid and zxid, last response time and
/// the latencies (last, min, avg, max).
fn conn_line(conn: &ConnInfo, long: bool, out: &mut String) {
    let stats = conn.stats;
    let queued = stats.map_or(0, |s| s.queued);
    let _ = write!(
        out,
        " /{}[1](queued={queued},recved={},sent={}",
        conn.peer, conn.received, conn.sent
    );
    if let Some(s) = stats.filter(|_| long)
        && let Some(session) = s.session
    {
        let _ = write!(
            out,
            ",sid={:#x},lop={},est={},to={},lcxid={:#x},lzxid={:#x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            session.0,
            s.last_op,
            conn.established_ms,
            s.timeout_ms.unwrap_or(0),
            i64::from(s.last_xid),
            s.last_zxid,
            conn.last_response_ms,
            s.last_latency_ms,
            s.latency.min_ms,
            // ZooKeeper prints the per-connection average as a whole number of ms.
            s.latency.total_ms.checked_div(s.latency.count).unwrap_or(0),
            s.latency.max_ms
        );
    }
    out.push_str(")\n");
}

fn stat(ctx: &Context<'_>) -> String {
    let mut out = format!("Zookeeper version: {ZOOKEEPER_VERSION}\nClients:\n");
    for conn in ctx.conns {
        conn_line(conn, false, &mut out);
    }
    out.push('\n');
    srvr_body(ctx, &mut out);
    out
}

fn cons(ctx: &Context<'_>) -> String {
    let mut out = String::new();
    for conn in ctx.conns {
        conn_line(conn, true, &mut out);
    }
    out.push('\n');
    out
}

fn conf(ctx: &Context<'_>) -> String {
    let c = ctx.config;
    let mut out = String::new();
    if let Some(port) = c.client_port {
        let _ = writeln!(out, "clientPort={port}");
    }
    if let Some(secure) = &c.secure_client {
        let _ = writeln!(out, "secureClientPort={}", secure.port);
    }
    let _ = writeln!(out, "dataDir={}", c.data_dir);
    let _ = writeln!(out, "dataLogDir={}", c.data_log_dir);
    let _ = writeln!(out, "tickTime={}", c.tick_time_ms);
    let _ = writeln!(out, "maxClientCnxns={}", c.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", c.min_session_timeout_ms);
    let _ = writeln!(out, "maxSessionTimeout={}", c.max_session_timeout_ms);
    let _ = writeln!(out, "serverId={}", ctx.server_id);
    if c.servers.len() > 1 {
        let _ = writeln!(out, "initLimit={}", c.init_limit_ticks);
        let _ = writeln!(out, "syncLimit={}", c.sync_limit_ticks);
        let _ = writeln!(out, "electionAlg=3");
        if let Some(me) = c.servers.get(&ctx.server_id) {
            let _ = writeln!(out, "electionPort={}", me.election_port);
            let _ = writeln!(out, "quorumPort={}", me.peer_port);
            let _ = writeln!(out, "peerType={}", u8::from(me.observer));
            let _ = writeln!(out, "membership: ");
            for (id, s) in &c.servers {
                let role = if s.observer {
                    "observer"
                } else {
                    "participant"
                };
                let _ = writeln!(
                    out,
                    "server.{id}={}:{}:{role}",
                    s.host_port(s.peer_port),
                    s.election_port
                );
            }
        }
    }
    out
}

fn envi(ctx: &Context<'_>) -> String {
    let mut out = String::from("Environment:\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let dir = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let _ = writeln!(out, "zookeeper.version={ZOOKEEPER_VERSION}");
    let _ = writeln!(out, "host.name={host}");
    let _ = writeln!(out, "java.version=none (paddock, Rust)");
    let _ = writeln!(out, "os.name={}", std::env::consts::OS);
    let _ = writeln!(out, "os.arch={}", std::env::consts::ARCH);
    let _ = writeln!(out, "user.dir={dir}");
    let _ = writeln!(out, "paddock.server.id={}", ctx.server_id);
    out
}

fn mntr(ctx: &Context<'_>) -> String {
    let s = ctx.status;
    let mut lines: Vec<(String, String)> = vec![
        ("zk_version".to_owned(), ZOOKEEPER_VERSION.to_owned()),
        ("zk_server_state".to_owned(), mode(ctx).to_owned()),
        ("zk_avg_latency".to_owned(), avg_latency(s)),
        ("zk_max_latency".to_owned(), s.latency.max_ms.to_string()),
        ("zk_min_latency".to_owned(), s.latency.min_ms.to_string()),
        (
            "zk_packets_received".to_owned(),
            ctx.counters.received.to_string(),
        ),
        ("zk_packets_sent".to_owned(), ctx.counters.sent.to_string()),
        (
            "zk_num_alive_connections".to_owned(),
            s.connections.to_string(),
        ),
        (
            "zk_outstanding_requests".to_owned(),
            ctx.counters.outstanding_requests.to_string(),
        ),
        ("zk_znode_count".to_owned(), s.znodes.to_string()),
        (
            "zk_watch_count".to_owned(),
            s.watches.watch_count.to_string(),
        ),
        ("zk_ephemerals_count".to_owned(), s.ephemerals.to_string()),
        ("zk_global_sessions".to_owned(), s.sessions.to_string()),
        // Paddock has no local sessions: every session is global.
        ("zk_local_sessions".to_owned(), "0".to_owned()),
        ("zk_uptime".to_owned(), ctx.counters.uptime_ms.to_string()),
        (
            "paddock_loop_round_max_ms".to_owned(),
            format!("{:.3}", ctx.counters.loop_round_max_us as f64 / 1000.0),
        ),
        (
            "paddock_loop_event_max_ms".to_owned(),
            format!("{:.3}", ctx.counters.loop_event_max_us as f64 / 1000.0),
        ),
        (
            "paddock_outstanding_requests_max".to_owned(),
            ctx.counters.outstanding_requests_max.to_string(),
        ),
        (
            "paddock_reads_throttled".to_owned(),
            ctx.counters.reads_throttled.to_string(),
        ),
        (
            "paddock_queued_reply_bytes".to_owned(),
            ctx.counters.queued_reply_bytes.to_string(),
        ),
        (
            "paddock_slow_clients_closed".to_owned(),
            ctx.counters.slow_clients_closed.to_string(),
        ),
        // Both 0 unless a peer or a disk misbehaves, or a bug breaks what the node relies on.
        (
            "paddock_payload_errors".to_owned(),
            s.payload_errors.to_string(),
        ),
        (
            "paddock_invariant_breaches".to_owned(),
            s.invariant_breaches.to_string(),
        ),
    ];
    // ZooKeeper reports the quorum's size in an ensemble only.
    if ctx.config.servers.len() > 1 {
        lines.push((
            "zk_quorum_size".to_owned(),
            quorum_size(ctx.config).to_string(),
        ));
    }
    lines.extend(ctx.counters.fsync.lines("fsynctime"));
    lines.extend(ctx.counters.election.lines("election_time"));
    if let Some((open, max)) = ctx.counters.file_descriptors {
        lines.push(("zk_open_file_descriptor_count".to_owned(), open.to_string()));
        lines.push(("zk_max_file_descriptor_count".to_owned(), max.to_string()));
    }
    if mode(ctx) == "leader" {
        let voters = s
            .replication
            .followers
            .iter()
            .filter(|f| !f.is_observer)
            .count();
        let synced = s
            .replication
            .followers
            .iter()
            .filter(|f| !f.is_observer && f.match_index >= s.replication.commit_index)
            .count();
        lines.push((
            "zk_followers".to_owned(),
            s.replication.followers.len().to_string(),
        ));
        lines.push(("zk_synced_followers".to_owned(), synced.to_string()));
        lines.push(("zk_voting_followers".to_owned(), voters.to_string()));
        lines.push(("zk_pending_syncs".to_owned(), "0".into()));
    }
    let mut out = String::new();
    for (key, value) in lines {
        let _ = writeln!(out, "{key}\t{value}");
    }
    out
}

/// The voting members, as ZooKeeper's `quorum_size`.
fn quorum_size(config: &ZooCfg) -> usize {
    config.servers.values().filter(|s| !s.observer).count()
}

fn wchs(ctx: &Context<'_>) -> String {
    let w = &ctx.status.watches;
    format!(
        "{} connections watching {} paths\nTotal watches:{}\n",
        w.connection_count, w.path_count, w.watch_count
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_like_javas() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_796_487_913_000), "Sat Dec 05 16:25:13 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn average_latency_prints_like_a_java_double() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(0.5), "0.5");
        assert_eq!(java_double(10.0 / 3.0), "3.3333");
        assert_eq!(java_double(7.0), "7.0");
        assert_eq!(java_double(12.25), "12.25");
    }
}
