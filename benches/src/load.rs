//! A pipelined ZooKeeper-protocol load generator: throughput and latency of one operation
//! kind against any server that speaks the protocol (Apache ZooKeeper or Paddock alike).
//!
//! It talks to the server through the independent `zookeeper-client` crate (crates.io, async
//! on tokio), never through Paddock's own code. `clients` sessions each hold their own
//! connection. The sessions are spread round-robin over the servers listed (session `i` to
//! server `i mod n`), each session connecting to its one server only: the client library
//! picks a random server from a list, which spreads the load of a few sessions unevenly over
//! an ensemble, and a benchmark has no use for fail-over. Each session is driven by one task
//! that keeps `inflight` requests outstanding at all times (a `FuturesUnordered`; the client
//! writes requests to its connection in call order without waiting for replies, so they
//! pipeline): as soon as one completes the next is issued. A request's latency is the time
//! from its issue (its first poll, when the client queues it on the connection) to the arrival
//! of its reply, so it includes client-side queueing behind the session's other requests, as a
//! pipelining application would see it.
//!
//! A run is setup (the prefix node and, for operations other than create and churn, one node
//! per session, `PREFIX/s<i>`, holding `size` bytes), then `warmup` (load, not measured), then
//! `seconds` of measurement: a request counts towards `ops` and the latency distribution when
//! its reply arrives inside the measurement window. After the window no new requests are
//! issued and the outstanding ones are drained. `errors` counts every failed request of the
//! whole run (warmup, window and drain), and requests still unanswered 10 s after the window.
//!
//! Operations: `create` creates a new persistent node per request, `PREFIX/s<i>-<run>-<n>`
//! (`<run>` is the first session's id in hex, so runs never collide with an earlier run's
//! nodes; the nodes are left behind); `set` writes `size` bytes to the session's node; `get`
//! reads it; `exists` reads its stat; `mixed` is 9 gets then 1 set, repeated; `churn` creates a
//! node as `create` does and, once that succeeded, deletes it, in each of the `inflight`
//! slots, so every create and every delete is one request (a slot whose create completes
//! after the window leaves its node behind; a failed create is followed by a new create).
//!
//! `idle` issues no requests: it opens `clients` sessions (at most [`IDLE_CONNECTS_IN_FLIGHT`]
//! handshakes at a time), holds them open for `seconds` (the client library pings each one
//! every third of the session timeout, as any idle ZooKeeper client does) and closes them.
//! Its `ops` are the sessions still connected at the end of the hold, its latencies the time
//! each session took to be established, and its `errors` the sessions that could not be
//! established or were no longer connected at the end; `warmup` and `size` play no part.
//! [`open_idle`] and [`IdleSessions::hold`] are the two halves, so a caller can measure the
//! server while the sessions are open.
//!
//! Latencies are kept as samples (microseconds) per session, merged and sorted at the end; a
//! session that collects more than its share of [`MAX_SAMPLES`] keeps every second sample, then
//! every fourth, and so on, and each kept sample is weighted by its stride, so memory stays
//! bounded and the percentiles stay unbiased. The maximum is exact.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;
use zookeeper_client as zk;

/// Upper bound on the latency samples one run keeps (all sessions together).
pub const MAX_SAMPLES: usize = 5_000_000;

/// Pause between connection attempts.
const CONNECT_RETRY: Duration = Duration::from_millis(200);

/// Session timeout asked of the server.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long outstanding requests may take to complete after the measurement window.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed request before its slot issues the next one, so a lost connection
/// does not turn into a busy loop of failures.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// How long to wait for a session to be closed at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Sessions `idle` establishes at the same time: enough to open 10,000 sessions in seconds,
/// few enough not to overrun a server's accept backlog.
pub const IDLE_CONNECTS_IN_FLIGHT: usize = 64;

static OPEN: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

/// The operation a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    /// Create a new persistent node per request.
    Create,
    /// setData of `size` bytes on the session's node.
    Set,
    /// getData of the session's node.
    Get,
    /// exists (stat) of the session's node.
    Exists,
    /// 90% get, 10% set on the session's node.
    Mixed,
    /// Create a new persistent node, then delete it; each is one request.
    Churn,
    /// Open the sessions, hold them without requests, close them.
    Idle,
}

impl Op {
    /// The operation's name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Set => "set",
            Op::Get => "get",
            Op::Exists => "exists",
            Op::Mixed => "mixed",
            Op::Churn => "churn",
            Op::Idle => "idle",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Servers: `HOST:PORT[,HOST:PORT...]`; session `i` connects to the `i mod n`-th.
    pub server: String,
    /// The operation measured.
    pub op: Op,
    /// Number of sessions (one connection each).
    pub clients: usize,
    /// Requests in flight per session.
    pub inflight: usize,
    /// Value size in bytes.
    pub size: usize,
    /// Length of the measurement window.
    pub seconds: Duration,
    /// Load before the measurement window, not measured.
    pub warmup: Duration,
    /// Parent of every node the run uses.
    pub prefix: String,
    /// How long to keep trying to establish each session before giving up.
    pub connect_timeout: Duration,
    /// Stop once this many requests were started, all sessions together (each session
    /// starts at most its share, rounded up), or when the window ends, whichever is
    /// first: e.g. `--op create --count 1000000` loads 10^6 znodes. `None`: no limit.
    pub count: Option<u64>,
    /// Connect over TLS (a secure client port) with these PEM texts; `None`: plaintext.
    pub tls: Option<LoadTls>,
}

/// The PEM texts a TLS session presents and checks: the CA the server's certificate must
/// chain to, and the client's own certificate and key (for servers that need one).
#[derive(Clone, Debug)]
pub struct LoadTls {
    /// CA certificates.
    pub ca: String,
    /// The client's certificate chain.
    pub cert: String,
    /// The client's private key.
    pub key: String,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            server: "127.0.0.1:2181".into(),
            op: Op::Get,
            clients: 16,
            inflight: 16,
            size: 128,
            seconds: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            prefix: "/paddock-load".into(),
            connect_timeout: Duration::from_secs(5),
            count: None,
            tls: None,
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadSummary {
    /// The operation measured.
    pub op: Op,
    /// Number of sessions.
    pub clients: usize,
    /// Requests in flight per session (0 for `idle`).
    pub inflight: usize,
    /// Value size in bytes.
    pub size: usize,
    /// Length of the measurement window (for `idle`, of the hold) in seconds.
    pub seconds: f64,
    /// Requests that completed successfully inside the measurement window (for `idle`, the
    /// sessions still connected at the end of the hold).
    pub ops: u64,
    /// `ops / seconds`.
    pub ops_per_sec: f64,
    /// Median latency in microseconds (for `idle`, of session establishment).
    pub p50_us: u64,
    /// 99th percentile latency in microseconds.
    pub p99_us: u64,
    /// 99.9th percentile latency in microseconds.
    pub p999_us: u64,
    /// Largest latency in microseconds.
    pub max_us: u64,
    /// Requests that failed (or never completed), whole run.
    pub errors: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

impl LoadSummary {
    /// The summary as one JSON object on one line, keys in a fixed order.
    pub fn to_json(&self) -> String {
        // Every value is a number or a fixed ASCII name, so no escaping is needed; `seconds`
        // is positive and finite (validated), and Rust prints f64 without exponents.
        format!(
            "{{\"op\":\"{}\",\"clients\":{},\"inflight\":{},\"size\":{},\"seconds\":{},\
             \"ops\":{},\"ops_per_sec\":{:.1},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\
             \"max_us\":{},\"errors\":{}}}",
            self.op.name(),
            self.clients,
            self.inflight,
            self.size,
            self.seconds,
            self.ops,
            self.ops_per_sec,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.errors
        )
    }
}

impl fmt::Display for LoadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "op={} clients={} inflight={} size={}: {} ops in {:.1} s = {:.0} ops/s, \
             latency p50 {} us, p99 {} us, p99.9 {} us, max {} us, errors {}",
            self.op,
            self.clients,
            self.inflight,
            self.size,
            self.ops,
            self.seconds,
            self.ops_per_sec,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.errors
        )?;
        if let Some(e) = &self.first_error {
            write!(f, " (first: {e})")?;
        }
        Ok(())
    }
}

/// Why a run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The options make no sense.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// A session could not be established.
    #[error("cannot connect to {server}: {reason}")]
    Connect {
        /// The server the session was to connect to.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// Creating the run's nodes failed.
    #[error("setup of {path} failed: {source}")]
    Setup {
        /// The node being created.
        path: String,
        /// The server's or client's error.
        source: zk::Error,
    },
    /// No request completed successfully in the measurement window.
    #[error("no request succeeded in the measurement window ({errors} errors, first: {first})")]
    NothingSucceeded {
        /// Requests that failed.
        errors: u64,
        /// The first failure.
        first: String,
    },
    /// A session's task ended abnormally.
    #[error("session task failed: {0}")]
    Task(String),
}

/// One request kind on the wire.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Create,
    Delete,
    Set,
    Get,
    Exists,
}

/// Latency samples of one session: every `stride`-th completion, each standing for `stride`.
#[derive(Debug)]
struct Recorder {
    samples: Vec<u32>,
    stride: u64,
    seen: u64,
    cap: usize,
    max: u32,
}

impl Recorder {
    fn new(cap: usize) -> Self {
        Recorder {
            samples: Vec::new(),
            stride: 1,
            seen: 0,
            cap: cap.max(1000),
            max: 0,
        }
    }

    fn record(&mut self, us: u32) {
        self.max = self.max.max(us);
        if self.seen.is_multiple_of(self.stride) {
            self.samples.push(us);
            if self.samples.len() >= self.cap {
                // Keep the samples taken at multiples of twice the stride.
                let mut i = 0;
                self.samples.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
        }
        self.seen += 1;
    }
}

/// What one session's task brings back.
#[derive(Debug)]
struct SessionResult {
    recorder: Recorder,
    errors: u64,
    first_error: Option<String>,
}

/// Everything one session's task needs.
struct SessionPlan {
    op: Op,
    inflight: usize,
    /// The session's node (`PREFIX/s<i>`).
    node: String,
    /// Prefix of the nodes `create` makes (`PREFIX/s<i>-<run>-`).
    create_base: String,
    data: Arc<[u8]>,
    measure_from: Instant,
    measure_until: Instant,
    cap: usize,
    /// New requests the session may start (follow-ups of churn not counted).
    limit: u64,
}

impl SessionPlan {
    /// The kind of the `n`-th new request of the session.
    fn kind(&self, n: u64) -> Kind {
        match self.op {
            Op::Create | Op::Churn => Kind::Create,
            Op::Set => Kind::Set,
            Op::Get => Kind::Get,
            Op::Exists => Kind::Exists,
            Op::Mixed if n % 10 == 9 => Kind::Set,
            Op::Mixed => Kind::Get,
            Op::Idle => unreachable!("idle sessions are never driven"),
        }
    }

    /// The request a slot issues on the same node after a request of kind `done` completed
    /// (`ok` when it succeeded), or `None` when the slot moves on to a new request: churn
    /// deletes the node it has just created.
    fn follow_up(&self, done: Kind, ok: bool) -> Option<Kind> {
        match (self.op, done, ok) {
            (Op::Churn, Kind::Create, true) => Some(Kind::Delete),
            _ => None,
        }
    }

    /// The node of request `n`.
    fn path(&self, n: u64) -> Cow<'_, str> {
        match self.op {
            Op::Create | Op::Churn => Cow::Owned(format!("{}{n}", self.create_base)),
            _ => Cow::Borrowed(&self.node),
        }
    }
}

/// One request's reply: what it was, when it was issued and how it went.
struct Completion {
    kind: Kind,
    /// The request's number in its session, which names its node for create and churn.
    n: u64,
    start: Instant,
    outcome: Result<(), zk::Error>,
}

/// Issues request `n` of kind `kind` of the session and waits for its reply.
async fn request(client: &zk::Client, plan: &SessionPlan, kind: Kind, n: u64) -> Completion {
    let path = plan.path(n);
    let data = &plan.data;
    let start = Instant::now();
    let outcome = match kind {
        Kind::Create => client.create(&path, data, &OPEN).await.map(drop),
        Kind::Delete => client.delete(&path, None).await,
        Kind::Set => client.set_data(&path, data, None).await.map(drop),
        Kind::Get => client.get_data(&path).await.map(drop),
        Kind::Exists => match client.check_stat(&path).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(zk::Error::NoNode),
            Err(e) => Err(e),
        },
    };
    if outcome.is_err() {
        tokio::time::sleep(ERROR_BACKOFF).await;
    }
    Completion {
        kind,
        n,
        start,
        outcome,
    }
}

/// Drives one session: `inflight` requests outstanding until the window ends, then drains
/// them and closes the session.
async fn drive(client: zk::Client, plan: SessionPlan) -> SessionResult {
    let mut result = SessionResult {
        recorder: Recorder::new(plan.cap),
        errors: 0,
        first_error: None,
    };
    let deadline = plan.measure_until + DRAIN_TIMEOUT;
    {
        let mut pending = FuturesUnordered::new();
        // The number of the session's next new request.
        let mut next: u64 = 0;
        for _ in 0..plan.inflight {
            if next >= plan.limit {
                break;
            }
            pending.push(request(&client, &plan, plan.kind(next), next));
            next += 1;
        }
        loop {
            let done = match tokio::time::timeout_at(deadline, pending.next()).await {
                Ok(Some(done)) => done,
                Ok(None) => break,
                Err(_) => {
                    result.errors += pending.len() as u64;
                    result.first_error.get_or_insert_with(|| {
                        format!(
                            "requests unanswered {} s after the window",
                            DRAIN_TIMEOUT.as_secs()
                        )
                    });
                    break;
                }
            };
            let end = Instant::now();
            match &done.outcome {
                Ok(()) => {
                    if end >= plan.measure_from && end < plan.measure_until {
                        let us = u32::try_from(end.duration_since(done.start).as_micros())
                            .unwrap_or(u32::MAX);
                        result.recorder.record(us);
                    }
                }
                Err(e) => {
                    result.errors += 1;
                    result.first_error.get_or_insert_with(|| e.to_string());
                }
            }
            if end < plan.measure_until {
                let (kind, n) = match plan.follow_up(done.kind, done.outcome.is_ok()) {
                    Some(kind) => (kind, done.n),
                    None if next >= plan.limit => continue,
                    None => {
                        next += 1;
                        (plan.kind(next - 1), next - 1)
                    }
                };
                pending.push(request(&client, &plan, kind, n));
            }
        }
    }
    close(client).await;
    result
}

/// Drops `client` (which makes the library send closeSession) and waits a little for the
/// session to end, so the server does not keep it until it expires.
async fn close(client: zk::Client) {
    let mut state = client.state_watcher();
    drop(client);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while !state.state().is_terminated() {
            state.changed().await;
        }
    })
    .await;
}

/// Establishes a session, retrying (a server may still be starting or electing a leader)
/// until `timeout`; the error names the last reason.
async fn connect(
    server: &str,
    timeout: Duration,
    tls: Option<&LoadTls>,
) -> Result<zk::Client, LoadError> {
    let deadline = Instant::now() + timeout;
    let tls = match tls {
        None => None,
        Some(tls) => Some({
            // Fails only when a provider is installed already, which is as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
            zk::TlsOptions::new()
                .with_pem_ca(&tls.ca)
                .and_then(|options| options.with_pem_identity(&tls.cert, &tls.key))
                .map_err(|e| LoadError::Connect {
                    server: server.to_string(),
                    reason: format!("TLS options: {e}"),
                })?
        }),
    };
    loop {
        let connector = zk::Client::connector()
            .with_session_timeout(SESSION_TIMEOUT)
            .with_fail_eagerly();
        let attempt = async {
            match &tls {
                None => connector.connect(server).await,
                Some(options) => {
                    connector
                        .with_tls(options.clone())
                        .secure_connect(server)
                        .await
                }
            }
        };
        let reason = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no session within {:.1} s", timeout.as_secs_f64()),
        };
        if Instant::now() + CONNECT_RETRY >= deadline {
            return Err(LoadError::Connect {
                server: server.to_string(),
                reason,
            });
        }
        tokio::time::sleep(CONNECT_RETRY).await;
    }
}

/// Creates `path` with `data`, or overwrites the data of an existing node.
async fn ensure_node(client: &zk::Client, path: &str, data: &[u8]) -> Result<(), LoadError> {
    let setup = |source| LoadError::Setup {
        path: path.to_string(),
        source,
    };
    match client.create(path, data, &OPEN).await {
        Ok(_) => Ok(()),
        Err(zk::Error::NodeExists) => client
            .set_data(path, data, None)
            .await
            .map(drop)
            .map_err(setup),
        Err(e) => Err(setup(e)),
    }
}

/// Validated options: the prefix without a trailing `/`, and the servers one by one.
struct Checked {
    prefix: String,
    servers: Vec<String>,
}

impl Checked {
    /// The server session `i` connects to.
    fn server(&self, i: usize) -> &str {
        // In bounds: `validate` refuses an empty list.
        &self.servers[i % self.servers.len()]
    }
}

fn validate(opts: &LoadOptions) -> Result<Checked, LoadError> {
    let bad = |s: &str| Err(LoadError::InvalidOptions(s.to_string()));
    if opts.clients == 0 {
        return bad("--clients must be at least 1");
    }
    if opts.inflight == 0 {
        return bad("--inflight must be at least 1");
    }
    if opts.seconds.is_zero() {
        return bad("--seconds must be positive");
    }
    let servers: Vec<String> = opts
        .server
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if servers.is_empty() {
        return bad("--server must name at least one HOST:PORT");
    }
    if !opts.prefix.starts_with('/') {
        return bad("--prefix must be an absolute path (start with /)");
    }
    Ok(Checked {
        // "/" and "/a/" become "" and "/a": children are then "/s0" and "/a/s0".
        prefix: opts.prefix.trim_end_matches('/').to_string(),
        servers,
    })
}

/// Weighted percentiles of `(latency, weight)` samples: one value per quantile in `qs`
/// (ascending), 0 when there are no samples.
fn percentiles(mut samples: Vec<(u32, u64)>, qs: &[f64]) -> Vec<u64> {
    samples.sort_unstable_by_key(|s| s.0);
    let total: u64 = samples.iter().map(|s| s.1).sum();
    let mut out = Vec::with_capacity(qs.len());
    let mut cum = 0u64;
    let mut it = samples.iter();
    let mut current = 0u32;
    for &q in qs {
        // The smallest latency with at least ceil(q * total) samples at or below it.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total.max(1));
        while cum < rank {
            match it.next() {
                Some(&(us, w)) => {
                    cum += w;
                    current = us;
                }
                None => break,
            }
        }
        out.push(if total == 0 { 0 } else { u64::from(current) });
    }
    out
}

/// Runs the load described by `opts` and returns what it measured.
///
/// Fails when the options are invalid, when a session cannot be established, when setup
/// fails, or when no request at all succeeded in the measurement window. Individual request
/// failures during the run are counted in [`LoadSummary::errors`].
pub async fn run(opts: &LoadOptions) -> Result<LoadSummary, LoadError> {
    if opts.op == Op::Idle {
        return open_idle(opts).await?.hold().await;
    }
    let checked = validate(opts)?;
    let prefix = checked.prefix.clone();

    let mut clients = Vec::with_capacity(opts.clients);
    for i in 0..opts.clients {
        clients.push(connect(checked.server(i), opts.connect_timeout, opts.tls.as_ref()).await?);
    }

    let data: Arc<[u8]> = vec![b'x'; opts.size].into();
    if let Some(first) = clients.first()
        && !prefix.is_empty()
    {
        first
            .mkdir(&prefix, &OPEN)
            .await
            .map_err(|source| LoadError::Setup {
                path: prefix.clone(),
                source,
            })?;
    }
    let run_tag = clients
        .first()
        .map(|c| format!("{:x}", c.session_id().0))
        .unwrap_or_default();
    if !matches!(opts.op, Op::Create | Op::Churn) {
        for (i, client) in clients.iter().enumerate() {
            ensure_node(client, &format!("{prefix}/s{i}"), &data).await?;
        }
    }

    let measure_from = Instant::now() + opts.warmup;
    let measure_until = measure_from + opts.seconds;
    let cap = MAX_SAMPLES / opts.clients;
    let mut tasks = Vec::with_capacity(opts.clients);
    for (i, client) in clients.into_iter().enumerate() {
        let plan = SessionPlan {
            op: opts.op,
            inflight: opts.inflight,
            node: format!("{prefix}/s{i}"),
            create_base: format!("{prefix}/s{i}-{run_tag}-"),
            data: data.clone(),
            measure_from,
            measure_until,
            cap,
            limit: opts
                .count
                .map_or(u64::MAX, |count| count.div_ceil(opts.clients as u64)),
        };
        tasks.push(tokio::spawn(drive(client, plan)));
    }

    let mut samples: Vec<(u32, u64)> = Vec::new();
    let mut ops = 0u64;
    let mut errors = 0u64;
    let mut max = 0u32;
    let mut first_error = None;
    for task in tasks {
        let r = task.await.map_err(|e| LoadError::Task(e.to_string()))?;
        ops += r.recorder.seen;
        errors += r.errors;
        max = max.max(r.recorder.max);
        if first_error.is_none() {
            first_error = r.first_error;
        }
        let stride = r.recorder.stride;
        samples.extend(r.recorder.samples.into_iter().map(|us| (us, stride)));
    }

    if ops == 0 {
        return Err(LoadError::NothingSucceeded {
            errors,
            first: first_error.unwrap_or_else(|| "no reply within the window".into()),
        });
    }
    let p = percentiles(samples, &[0.5, 0.99, 0.999]);
    // A run stopped by `count` ends before its window does.
    let seconds = opts
        .seconds
        .min(Instant::now().saturating_duration_since(measure_from))
        .as_secs_f64()
        .max(f64::MIN_POSITIVE);
    Ok(LoadSummary {
        op: opts.op,
        clients: opts.clients,
        inflight: opts.inflight,
        size: opts.size,
        seconds,
        ops,
        ops_per_sec: ops as f64 / seconds,
        p50_us: p.first().copied().unwrap_or(0),
        p99_us: p.get(1).copied().unwrap_or(0),
        p999_us: p.get(2).copied().unwrap_or(0),
        max_us: u64::from(max),
        errors,
        first_error,
    })
}

/// Sessions opened by [`open_idle`] and not closed yet; [`IdleSessions::hold`] holds and
/// closes them.
pub struct IdleSessions {
    clients: Vec<zk::Client>,
    /// Session establishment times.
    recorder: Recorder,
    /// Sessions that could not be established.
    errors: u64,
    first_error: Option<String>,
    /// Sessions asked for.
    asked: usize,
    size: usize,
    hold: Duration,
}

/// Opens the sessions of an `idle` run (`opts.op` must be [`Op::Idle`]), at most
/// [`IDLE_CONNECTS_IN_FLIGHT`] handshakes at a time, each retried until
/// `opts.connect_timeout`. A session that cannot be established is counted, not fatal: a
/// server's connection limits are part of what an idle run measures.
///
/// Fails when the options are invalid or when no session at all could be established.
pub async fn open_idle(opts: &LoadOptions) -> Result<IdleSessions, LoadError> {
    if opts.op != Op::Idle {
        return Err(LoadError::InvalidOptions(format!(
            "open_idle runs --op idle, not --op {}",
            opts.op
        )));
    }
    let checked = validate(opts)?;
    let mut sessions = IdleSessions {
        clients: Vec::with_capacity(opts.clients),
        recorder: Recorder::new(MAX_SAMPLES),
        errors: 0,
        first_error: None,
        asked: opts.clients,
        size: opts.size,
        hold: opts.seconds,
    };
    let mut connecting = FuturesUnordered::new();
    let mut started = 0;
    loop {
        while started < opts.clients && connecting.len() < IDLE_CONNECTS_IN_FLIGHT {
            let server = checked.server(started).to_string();
            let timeout = opts.connect_timeout;
            let tls = opts.tls.clone();
            connecting.push(async move {
                let start = Instant::now();
                let result = connect(&server, timeout, tls.as_ref()).await;
                (start.elapsed(), result)
            });
            started += 1;
        }
        let Some((took, result)) = connecting.next().await else {
            break;
        };
        match result {
            Ok(client) => {
                let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
                sessions.recorder.record(us);
                sessions.clients.push(client);
            }
            Err(e) => {
                sessions.errors += 1;
                sessions.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    if sessions.clients.is_empty() {
        return Err(LoadError::NothingSucceeded {
            errors: sessions.errors,
            first: sessions.first_error.unwrap_or_else(|| "no session".into()),
        });
    }
    Ok(sessions)
}

impl IdleSessions {
    /// The sessions open (established, whether or not still connected).
    pub fn open(&self) -> usize {
        self.clients.len()
    }

    /// Sessions that could not be established.
    pub fn failed(&self) -> u64 {
        self.errors
    }

    /// Holds the sessions open without requests for the hold time, checks that each is
    /// still connected, closes them all and returns what was measured (see the module doc).
    pub async fn hold(self) -> Result<LoadSummary, LoadError> {
        let IdleSessions {
            clients,
            recorder,
            mut errors,
            mut first_error,
            asked,
            size,
            hold,
        } = self;
        tokio::time::sleep(hold).await;
        let lost: Vec<zk::SessionState> = clients
            .iter()
            .map(zk::Client::state)
            .filter(|s| *s != zk::SessionState::SyncConnected)
            .collect();
        if let Some(state) = lost.first() {
            errors += lost.len() as u64;
            first_error.get_or_insert_with(|| {
                format!(
                    "{} sessions not connected at the end of the hold (one was {state:?})",
                    lost.len()
                )
            });
        }
        let held = (clients.len() - lost.len()) as u64;
        let mut closing: FuturesUnordered<_> = clients.into_iter().map(close).collect();
        while closing.next().await.is_some() {}
        if held == 0 {
            return Err(LoadError::NothingSucceeded {
                errors,
                first: first_error.unwrap_or_else(|| "no session".into()),
            });
        }
        let stride = recorder.stride;
        let samples = recorder.samples.iter().map(|&us| (us, stride)).collect();
        let p = percentiles(samples, &[0.5, 0.99, 0.999]);
        let seconds = hold.as_secs_f64();
        Ok(LoadSummary {
            op: Op::Idle,
            clients: asked,
            inflight: 0,
            size,
            seconds,
            ops: held,
            ops_per_sec: held as f64 / seconds,
            p50_us: p.first().copied().unwrap_or(0),
            p99_us: p.get(1).copied().unwrap_or(0),
            p999_us: p.get(2).copied().unwrap_or(0),
            max_us: u64::from(recorder.max),
            errors,
            first_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_stays_bounded_and_weights_its_samples() {
        let mut r = Recorder::new(1000);
        for i in 0..100_000u32 {
            r.record(i);
        }
        assert!(r.samples.len() < 1000);
        assert_eq!(r.seen, 100_000);
        assert_eq!(r.max, 99_999);
        let weighted: u64 = r.samples.len() as u64 * r.stride;
        assert!(weighted.abs_diff(100_000) <= r.stride);
        let p = percentiles(
            r.samples.iter().map(|&us| (us, r.stride)).collect(),
            &[0.5, 0.99],
        );
        assert!(p[0].abs_diff(50_000) <= 2 * r.stride, "{p:?}");
        assert!(p[1].abs_diff(99_000) <= 2 * r.stride, "{p:?}");
    }

    fn plan(op: Op) -> SessionPlan {
        SessionPlan {
            op,
            inflight: 1,
            node: "/p/s0".into(),
            create_base: "/p/s0-ab-".into(),
            data: Vec::new().into(),
            measure_from: Instant::now(),
            measure_until: Instant::now(),
            cap: 1000,
            limit: u64::MAX,
        }
    }

    // Churn deletes exactly the node its create made, and only after the create succeeded;
    // no other operation issues follow-ups.
    #[test]
    fn churn_deletes_the_node_it_created() {
        let churn = plan(Op::Churn);
        assert!(matches!(churn.kind(7), Kind::Create));
        assert_eq!(churn.path(7), "/p/s0-ab-7");
        assert!(matches!(
            churn.follow_up(Kind::Create, true),
            Some(Kind::Delete)
        ));
        assert!(churn.follow_up(Kind::Create, false).is_none());
        assert!(churn.follow_up(Kind::Delete, true).is_none());
        for op in [Op::Create, Op::Set, Op::Get, Op::Exists, Op::Mixed] {
            for kind in [Kind::Create, Kind::Set, Kind::Get, Kind::Exists] {
                assert!(plan(op).follow_up(kind, true).is_none(), "{op} {kind:?}");
            }
        }
    }

    #[test]
    fn percentiles_of_a_small_set() {
        let s: Vec<(u32, u64)> = (1..=100).map(|us| (us, 1)).collect();
        assert_eq!(percentiles(s, &[0.5, 0.99, 0.999]), vec![50, 99, 100]);
        assert_eq!(percentiles(Vec::new(), &[0.5]), vec![0]);
    }

    #[test]
    fn json_has_the_documented_keys() {
        let s = LoadSummary {
            op: Op::Mixed,
            clients: 2,
            inflight: 4,
            size: 128,
            seconds: 1.0,
            ops: 10,
            ops_per_sec: 10.0,
            p50_us: 1,
            p99_us: 2,
            p999_us: 3,
            max_us: 4,
            errors: 0,
            first_error: None,
        };
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap_or_default();
        let keys: Vec<&str> = v
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), 12, "{keys:?}");
        assert_eq!(v["op"], "mixed");
        assert!(
            s.to_json()
                .starts_with(r#"{"op":"mixed","clients":2,"inflight":4,"#)
        );
        assert!(s.to_json().ends_with(r#""max_us":4,"errors":0}"#));
    }
}
