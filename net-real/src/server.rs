//! `server`: the event loop that owns one `Node`, and the client-port plumbing around it.
//!
//! One thread runs [`EventLoop`]: it takes [`Event`]s from a single channel (accepted
//! connections, client bytes and ends from the client thread, peer messages, disk
//! completions), steps the node with the wall clock as `now`, ticks it at
//! `next_deadline`, and performs the outputs in order: peer messages to [`Peers`],
//! persist requests to the disk thread, reply bytes and closes to the client thread
//! ([`ClientIo`], one thread for every client socket). Nothing decides anything here;
//! core does.
//!
//! Invariants: outputs are performed in the order the node produced them (one disk
//! channel keeps persist order; one command queue to the client thread keeps reply
//! order); a connection id is never reused; every queue is bounded — the event queue by
//! [`EVENTS_QUEUED_MAX`], the disk queue by the node's own bound on proposals in flight,
//! a client's unsent replies by [`crate::client_io::CLIENT_QUEUED_BYTES_MAX`] (a client
//! that does not read is disconnected rather than buffered without end), and every
//! client's together by [`crate::client_io::CLIENTS_QUEUED_BYTES_MAX`].
//!
//! Client bytes reach the node through a per-connection buffer, whole frames, a few reads
//! of possibly large replies per step ([`FEED_REPLY_BYTES_PER_STEP`]), so the loop can
//! stop between steps however large the replies the requests ask for:
//! - **`globalOutstandingLimit`** (ZooKeeper's meaning): the loop keeps, per connection,
//!   the node's count of requests received and not yet answered
//!   ([`Node::conn_requests_outstanding`], asked again after every step for each
//!   connection the step fed or answered, and for all every [`OBSERVE_INTERVAL`]) and
//!   their sum. When a connection's count grows while the sum is above the limit, reading
//!   that connection pauses (the client thread stops reading its socket; bytes already
//!   read wait here); it resumes when its own count falls to 0 or the sum to the limit
//!   or below. A connection with nothing outstanding is always read, as in ZooKeeper, so
//!   an idle client's pings go through. Nothing is dropped or failed for the limit; the
//!   count cannot leak, since it is the node's own queue length, which answers and
//!   closes empty.
//! - **Unsent replies**: a connection with
//!   [`crate::client_io::CLIENT_QUEUED_BYTES_PAUSE`] queued is not served until its
//!   socket takes them ([`Event::ClientDrained`]); while all connections together have
//!   [`crate::client_io::CLIENTS_QUEUED_BYTES_MAX`], only connections with nothing queued
//!   are served, one request at a time, until the client thread has sent or dropped
//!   enough (it closes the largest holders if that takes too long).
//! - Bytes read and not yet handed over count against
//!   [`crate::client_io::CLIENT_INPUT_BYTES_MAX`]; beyond it the client thread stops
//!   reading.
//!
//! What it does not do: retry disk errors (the disk thread stops and so does the server),
//! or measure request latency.

use paddock_core::acl::Id;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, channel, sync_channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use paddock_core::ids::{ConnId, NodeId, SessionId};
use paddock_core::limits::{GET_DATA_REPLY_OVERHEAD_BYTES, Limits, RECORD_TXN_OVERHEAD_BYTES};
use paddock_core::node::{Input, Node, NodeConfig, Output, PeerMessage, Persist, Seed};
use paddock_core::replication::{PEER_MESSAGE_OVERHEAD_BYTES, Role, SNAPSHOT_FRAMING_BYTES_MAX};
use paddock_core::wire::{ConnectionStart, FourLetterWord, OpCode, classify_connection_start};

use crate::client_io::{
    CLIENT_QUEUED_BYTES_PAUSE, CLIENTS_QUEUED_BYTES_MAX, ClientIo, ClientListener, QueuedReplies,
};
use crate::config::ZooCfg;
use crate::disk::{self, DiskEvent, DiskRequest, PurgePolicy};
use crate::four_letter::{self, ConnInfo, Counters};
use crate::jaas::{Jaas, JaasError};
use crate::peer::{PeerSecurity, Peers};
use crate::peer_auth::QuorumSasl;
use crate::storage::{self, SnapshotFiles, Storage, StorageError};
use crate::tls::{self, QuorumTls};

/// Events queued for the event loop; readers block when it is full, which pushes back on
/// clients and peers through TCP instead of growing memory.
const EVENTS_QUEUED_MAX: usize = 16 * 1024;
/// Events handled between two checks of the clock and the outputs, in events.
const EVENTS_PER_ROUND_MAX: usize = 256;
/// Within a long round, outputs are handed to the disk and client threads at least this
/// often ([`EventLoop::outputs_flush`]).
const OUTPUTS_FLUSH_INTERVAL: Duration = Duration::from_millis(1);

/// A node step taking this long or longer is logged with its input's kind, µs (the
/// runtime's target is no pause above 10 ms).
const SLOW_STEP_US: u64 = 10_000;

/// Longest wait for an event, so the loop sees a stop request promptly.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How often the loop looks at role and session changes to log them, and recounts every
/// connection's outstanding requests.
const OBSERVE_INTERVAL: Duration = Duration::from_millis(500);
/// Reply bytes one step may make, counting each read that may ask for a large reply (data,
/// children, ACLs) as a reply of `jute.maxbuffer` (the most a client accepts): such
/// requests of one connection handed to the node in one step are at most this over
/// `jute.maxbuffer` (16 by default), and at least one. Between steps the loop checks the
/// reply budgets and the outstanding limit, so a step passes them by at most this much
/// (and the small replies of at most [`FEED_FRAMES_PER_STEP`] other requests).
const FEED_REPLY_BYTES_PER_STEP: usize = 16 * 1024 * 1024;
/// Whole frames of any kind of one connection handed to the node in one step, at most
/// (writes go to the log together, as one read from the socket once brought them).
const FEED_FRAMES_PER_STEP: usize = 1024;
/// Steps handing held client bytes to the node per round, at most, so peers and timers
/// wait behind a bounded amount of client work.
const FEED_STEPS_PER_ROUND: usize = 256;
/// How long the loop waits for events while held client bytes wait for the reply budget.
const FEED_RETRY: Duration = Duration::from_millis(5);

/// What feeds the event loop.
#[derive(Debug)]
pub enum Event {
    /// The client thread accepted a connection; its unsent replies are counted in the
    /// [`QueuedReplies`] given.
    Accepted(ConnId, SocketAddr, QueuedReplies),
    /// A TLS client presented a certificate the trust store accepts, with this subject
    /// (before any of its bytes).
    ClientCertified(ConnId, String),
    /// A client sent bytes.
    ClientBytes(ConnId, Vec<u8>),
    /// A client's unsent replies fell below
    /// [`crate::client_io::CLIENT_QUEUED_BYTES_PAUSE`]: its requests may be handled again.
    ClientDrained(ConnId),
    /// A client ended its stream: what it sent before is still handled, then the
    /// connection closes.
    ClientEof(ConnId),
    /// A client's socket failed or was closed by the client thread (what it sent and the
    /// node has not seen yet is dropped).
    ClientClosed(ConnId),
    /// A peer sent a message.
    Peer(NodeId, PeerMessage),
    /// The disk thread finished a request or failed.
    Disk(DiskEvent),
    /// The AdminServer or the metrics endpoint asks for a word's answer
    /// (`four_letter::answer_for_http`), sent back on the channel given.
    Http(FourLetterWord, SyncSender<String>),
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config cannot run (e.g. `myid` missing or not in the server list).
    #[error("{0}")]
    Config(String),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The error.
        source: io::Error,
    },
    /// The data directories could not be opened or recovered.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The node refused the recovered state.
    #[error("recovered state refused: {0}")]
    Node(String),
}

/// This process's open file descriptors and their limit (`RLIMIT_NOFILE`'s soft value),
/// from `/proc/self` (Linux); `None` where it is not there.
fn file_descriptors() -> Option<(u64, u64)> {
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let max = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some((open, max))
}

/// Bytes of the regular files directly in `dir` (`dirs`: a data directory holds a few
/// snapshots, log segments and small files, so listing it is cheap); 0 when unreadable.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter_map(|entry| entry.metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .map(|meta| meta.len())
            .sum()
    })
}

/// The server id from `dataDir/myid` (required when `server.N` lines exist; 1 otherwise).
pub fn read_myid(cfg: &ZooCfg) -> Result<u64, StartError> {
    if cfg.servers.is_empty() {
        return Ok(1);
    }
    let path = Path::new(&cfg.data_dir).join("myid");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| StartError::Config(format!("{}: cannot read: {e}", path.display())))?;
    let id: u64 = text.trim().parse().map_err(|_| {
        StartError::Config(format!(
            "{}: {:?} is not a server id",
            path.display(),
            text.trim()
        ))
    })?;
    if !cfg.servers.contains_key(&id) {
        return Err(StartError::Config(format!(
            "{}: id {id} has no server.{id} line in the config",
            path.display()
        )));
    }
    Ok(id)
}

/// An ensemble's failure detection from ZooKeeper's keys, as ZooKeeper times its own:
/// the leader sends every follower something each half `tickTime` (ZooKeeper's pings), and
/// a member that has heard nothing from the leader for `syncLimit` ticks (a follower) or
/// from a quorum for as long (the leader, which then steps down) starts an election,
/// after a random wait of up to as long again so that two do not keep colliding.
/// Returns (heartbeat, election timeout min, max) in ms. With ZooKeeper's sample zoo.cfg
/// (tickTime=2000, syncLimit=5) a leader is deposed after 10 to 20 s of silence (15 to
/// 30 s on ZooKeeper's default tickTime of 3000), so a stall of a second or two (a slow
/// fsync, a pause) deposes nobody.
pub fn failure_detection_ms(cfg: &ZooCfg) -> (u64, u64, u64) {
    let tick = u64::from(cfg.tick_time_ms).max(2);
    let silence = tick.saturating_mul(u64::from(cfg.sync_limit_ticks).max(1));
    (tick / 2, silence, silence.saturating_mul(2))
}

/// The node configuration for server `id` under `cfg`.
pub fn node_config(cfg: &ZooCfg, id: u64) -> Result<NodeConfig, StartError> {
    let voters: BTreeSet<NodeId> = if cfg.servers.is_empty() {
        BTreeSet::from([NodeId(id)])
    } else {
        cfg.servers
            .iter()
            .filter(|(_, s)| !s.observer)
            .map(|(n, _)| NodeId(*n))
            .collect()
    };
    let observers = cfg
        .servers
        .iter()
        .filter(|(_, s)| s.observer)
        .map(|(n, _)| NodeId(*n))
        .collect();
    let mut config = NodeConfig::new(NodeId(id), voters);
    config.replication.observers = observers;
    if cfg.servers.len() <= 1 {
        // Alone, nobody competes: elect within ~100 ms so start-up is quick.
        config.replication.heartbeat_interval_ms = 10;
        config.replication.election_timeout_ms_min = 40;
        config.replication.election_timeout_ms_max = 80;
    } else {
        let (heartbeat, min, max) = failure_detection_ms(cfg);
        config.replication.heartbeat_interval_ms = heartbeat;
        config.replication.election_timeout_ms_min = min;
        config.replication.election_timeout_ms_max = max;
    }
    config.tick_ms = u64::from(cfg.tick_time_ms);
    config.session_timeout_ms_min = cfg.min_session_timeout_ms;
    config.session_timeout_ms_max = cfg.max_session_timeout_ms;
    config.snapshot_every_entries = u64::from(cfg.snap_count.max(1));
    config.snapshot_every_bytes = cfg.snap_size_limit_kb.max(1).saturating_mul(1024);
    config.snapshot_log_kept_bytes = cfg.snapshot_log_kept_bytes;
    config.limits = limits(cfg)?;
    config.tree.super_digest = cfg.super_digest.clone();
    config.tree.skip_acl = cfg.skip_acl;
    config.replication.payload_bytes_max = config.replication.payload_bytes_max.max(
        cfg.jute_max_buffer_bytes
            .saturating_add(RECORD_TXN_OVERHEAD_BYTES),
    );
    config.replication.message_bytes_max = u64::from(cfg.peer_message_bytes_max);
    config.replication.snapshot_bytes_max = config
        .limits
        .snapshot_bytes_max
        .saturating_add(SNAPSHOT_FRAMING_BYTES_MAX);
    config
        .replication
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
    Ok(config)
}

/// The longest peer frame this server sends or accepts: a replication message of
/// `paddock.peerMessageBytesMax` and its overhead.
fn peer_frame_bytes_max(cfg: &ZooCfg) -> u32 {
    let overhead = u32::try_from(PEER_MESSAGE_OVERHEAD_BYTES).unwrap_or(u32::MAX);
    cfg.peer_message_bytes_max.saturating_add(overhead)
}

fn limits(cfg: &ZooCfg) -> Result<Limits, StartError> {
    let mut limits = Limits {
        frame_bytes_max: cfg.jute_max_buffer_bytes,
        connections_per_ip_max: match cfg.max_client_cnxns {
            0 => u32::MAX,
            n => n,
        },
        ..Limits::default()
    };
    // A larger jute.maxbuffer needs room for a transaction of that size in the log.
    let record_min = cfg
        .jute_max_buffer_bytes
        .saturating_add(RECORD_TXN_OVERHEAD_BYTES)
        .saturating_mul(2);
    limits.record_bytes_max = limits.record_bytes_max.max(record_min);
    // Every znode a client may write it can read back within the frame.
    limits.znode_data_bytes_max = cfg
        .jute_max_buffer_bytes
        .saturating_sub(GET_DATA_REPLY_OVERHEAD_BYTES)
        .max(1);
    limits
        .validate()
        .map_err(|e| StartError::Config(format!("jute.maxbuffer: {e}")))?;
    Ok(limits)
}

/// A running server; dropping it does not stop it, [`ServerHandle::shutdown`] does.
#[derive(Debug)]
pub struct ServerHandle {
    /// The plaintext client port's bound address, or the secure one's when there is no
    /// plaintext port.
    pub client_addr: SocketAddr,
    /// The secure client port's bound address, when there is one.
    pub secure_client_addr: Option<SocketAddr>,
    /// The AdminServer's bound address, when it serves.
    pub admin_addr: Option<SocketAddr>,
    /// The Prometheus metrics endpoint's bound address, when it serves.
    pub metrics_addr: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
    http_threads: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// Asks the server to stop and waits until it has (queued disk writes included).
    /// Returns the reason when it stopped on its own because of a failure.
    pub fn shutdown(mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for the server to stop (after a failure or another thread's stop request).
    pub fn join(&mut self) -> Result<(), String> {
        let result = match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err("event loop panicked".into())),
            None => Ok(()),
        };
        // The HTTP endpoints end with the server, however it ended.
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.http_threads.drain(..) {
            let _ = thread.join();
        }
        result
    }

    /// The flag that stops the server when set (for signal handlers).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// True once the event loop has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })
}

fn bind_host(host: &str, port: u16) -> Result<TcpListener, StartError> {
    TcpListener::bind((host, port)).map_err(|source| StartError::Bind {
        addr: format!("{host}:{port}"),
        source,
    })
}

/// The address `listener` is bound to (its port chosen by the system for port 0).
fn bound_addr(listener: &TcpListener, ip: IpAddr) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        addr: ip.to_string(),
        source,
    })
}

/// Opens storage, binds the ports and starts every thread of server `cfg` (reading
/// `myid` for an ensemble). Returns once the server accepts connections.
pub fn start(mut cfg: ZooCfg) -> Result<ServerHandle, StartError> {
    let id = read_myid(&cfg)?;
    (cfg.client_port, cfg.client_port_address) =
        cfg.own_client_address(id).map_err(StartError::Config)?;
    let mut config = node_config(&cfg, id)?;
    #[cfg(feature = "planted-bugs")]
    if let Ok(name) = std::env::var("PADDOCK_PLANTED_BUG") {
        let bug: paddock_core::bugs::Bug = name
            .parse()
            .map_err(|e| StartError::Config(format!("PADDOCK_PLANTED_BUG: {e}")))?;
        tracing::warn!(bug = %bug, "a planted bug is on (a test build)");
        config.plant_bug(Some(bug));
    }
    let jaas = match &cfg.sasl.jaas_file {
        Some(path) => Some(
            Jaas::load(path).map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let jaas_error = |e: JaasError| {
        let path = cfg
            .sasl
            .jaas_file
            .as_deref()
            .unwrap_or(Path::new("JAAS file"));
        StartError::Config(format!("{}: {e}", path.display()))
    };
    if let Some(jaas) = &jaas
        && jaas.has_section(&cfg.sasl.server_section)
    {
        config.sasl.users = jaas
            .server_users(&cfg.sasl.server_section)
            .map_err(jaas_error)?;
        config.sasl.super_user = cfg.sasl.super_user.clone();
    }
    let client_ip = cfg
        .client_port_address
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let mut listeners = Vec::new();
    let mut plain_addr = None;
    if let Some(port) = cfg.client_port {
        let listener = bind(SocketAddr::new(client_ip, port))?;
        plain_addr = Some(bound_addr(&listener, client_ip)?);
        listeners.push(ClientListener {
            listener,
            tls: None,
        });
    }
    let mut secure_client_addr = None;
    if let Some(secure) = &cfg.secure_client {
        let tls = tls::client_port_config(
            &secure.key_store,
            secure.trust_store.as_deref(),
            secure.client_auth,
        )
        .map_err(|e| StartError::Config(format!("secureClientPort: {e}")))?;
        let ip = secure
            .address
            .or(cfg.client_port_address)
            .unwrap_or(client_ip);
        let listener = bind(SocketAddr::new(ip, secure.port))?;
        secure_client_addr = Some(bound_addr(&listener, ip)?);
        listeners.push(ClientListener {
            listener,
            tls: Some(tls),
        });
    }
    let Some(client_addr) = plain_addr.or(secure_client_addr) else {
        return Err(StartError::Config(
            "no client port: set clientPort or secureClientPort".into(),
        ));
    };
    let peer_listener = match cfg.servers.get(&id) {
        Some(me) if cfg.servers.len() > 1 => Some(bind_host(&me.host, me.peer_port)?),
        _ => None,
    };
    let quorum_tls = match &cfg.quorum_tls {
        Some(tls) if peer_listener.is_some() => Some(
            QuorumTls::load(&tls.key_store, &tls.trust_store, tls.hostname_verification)
                .map_err(|e| StartError::Config(format!("sslQuorum: {e}")))?,
        ),
        _ => None,
    };
    let quorum_sasl = match &jaas {
        Some(jaas) if cfg.sasl.quorum.enabled && peer_listener.is_some() => {
            Some(QuorumSasl::from_jaas(jaas, &cfg.sasl.quorum).map_err(jaas_error)?)
        }
        _ => None,
    };
    if peer_listener.is_some() && quorum_tls.is_none() {
        match &quorum_sasl {
            None => tracing::warn!(
                "the peer port is not authenticated: anyone who can reach it and claims a \
                 member's id is taken for that member; set sslQuorum=true or \
                 quorum.auth.enableSasl=true (see README, Security), or let only the members \
                 reach it"
            ),
            Some(sasl) if !sasl.server_require() => tracing::warn!(
                "the peer port accepts members that do not authenticate \
                 (quorum.auth.serverRequireSasl=false): set it to true once every member \
                 runs with quorum.auth.enableSasl=true"
            ),
            Some(_) => tracing::info!(
                "quorum SASL authenticates the members; the peer port is not encrypted \
                 (sslQuorum=true encrypts it)"
            ),
        }
    }
    let opening = Instant::now();
    let (storage, durable, decoded) = storage::open_decoding(
        Path::new(&cfg.data_dir),
        Path::new(&cfg.data_log_dir),
        config.limits.clone(),
        cfg.autopurge_snap_retain_count as usize,
    )?;
    tracing::info!(
        id,
        snapshot_zxid = format_args!("{:#x}", durable.snapshot.zxid.0),
        entries = durable.entries.len(),
        read_ms = opening.elapsed().as_millis(),
        "recovered from disk (snapshot decoded meanwhile)"
    );
    if durable.log_lost && cfg.servers.len() <= 1 {
        // No leader can ever re-sync a standalone server.
        return Err(StartError::Config(format!(
            "{}: refusing to start: the newest log segment is missing (see {}/logloss) and a \
             standalone server has no leader to re-sync it from; restore the segment, or \
             accept the loss by removing that file",
            cfg.data_dir, cfg.data_dir
        )));
    }
    let loading = Instant::now();
    let state = decoded.map_err(|e| StartError::Node(format!("snapshot: {e}")))?;
    let node = Node::with_state(config, durable, state, os_seed()?)
        .map_err(|e| StartError::Node(e.to_string()))?;
    tracing::info!(
        id,
        znodes = node.tree().node_count(),
        load_ms = loading.elapsed().as_millis(),
        "state loaded"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (events_tx, events_rx) = sync_channel(EVENTS_QUEUED_MAX);
    let peers = peer_listener.map(|listener| {
        let others = cfg
            .servers
            .iter()
            .filter(|(n, _)| **n != id)
            .map(|(n, s)| (NodeId(*n), s.host_port(s.peer_port)))
            .collect();
        Peers::start(
            NodeId(id),
            listener,
            others,
            peer_frame_bytes_max(&cfg),
            PeerSecurity {
                tls: quorum_tls,
                sasl: quorum_sasl,
            },
            events_tx.clone(),
            stop.clone(),
        )
    });
    let peers = match peers.transpose() {
        Ok(peers) => peers,
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            return Err(StartError::Config(format!(
                "cannot start the peer threads: {e}"
            )));
        }
    };
    let disk = disk_start(storage, &cfg, events_tx.clone())?;
    let http = http_start(&cfg, &events_tx, &stop);
    let io = ClientIo::start(listeners, events_tx, stop.clone())
        .map_err(|e| StartError::Config(format!("cannot start the client thread: {e}")))?;
    tracing::info!(id, %client_addr, secure_client_addr = ?secure_client_addr, "serving clients");
    let event_loop = EventLoop::new(node, cfg, id, peers, disk, io, stop.clone());
    let thread = thread::Builder::new()
        .name("paddock-node".into())
        .spawn(move || event_loop.run(events_rx))
        .map_err(|e| StartError::Config(format!("cannot start the event loop: {e}")))?;
    Ok(ServerHandle {
        client_addr,
        secure_client_addr,
        admin_addr: http.admin_addr,
        metrics_addr: http.metrics_addr,
        stop,
        thread: Some(thread),
        http_threads: http.threads,
    })
}

/// The HTTP endpoints that started.
struct HttpStarted {
    admin_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    threads: Vec<JoinHandle<()>>,
}

/// Starts the AdminServer and the metrics endpoint the config asks for; one whose port
/// cannot be bound is logged and left out (as ZooKeeper carries on without its
/// AdminServer).
fn http_start(cfg: &ZooCfg, events: &SyncSender<Event>, stop: &Arc<AtomicBool>) -> HttpStarted {
    let mut started = HttpStarted {
        admin_addr: None,
        metrics_addr: None,
        threads: Vec::new(),
    };
    let endpoints = [
        (
            cfg.admin_server,
            crate::http::Endpoint::Admin {
                command_url: cfg.admin_command_url.clone(),
            },
            "AdminServer",
        ),
        (
            cfg.metrics_server,
            crate::http::Endpoint::Metrics,
            "metrics endpoint",
        ),
    ];
    for (addr, endpoint, what) in endpoints {
        let Some(addr) = addr else { continue };
        let listener = match TcpListener::bind(addr) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(%addr, "the {what} is off: cannot listen: {e}");
                continue;
            }
        };
        let bound = listener.local_addr().unwrap_or(addr);
        let events = events.clone();
        let ask: crate::http::Ask = Arc::new(move |word| {
            let (tx, rx) = sync_channel(1);
            events.try_send(Event::Http(word, tx)).ok()?;
            rx.recv_timeout(crate::http::ANSWER_TIMEOUT).ok()
        });
        let is_admin = matches!(endpoint, crate::http::Endpoint::Admin { .. });
        match crate::http::spawn(listener, endpoint, ask, stop.clone()) {
            Ok(thread) => {
                tracing::info!(addr = %bound, "{what} serving");
                if is_admin {
                    started.admin_addr = Some(bound);
                } else {
                    started.metrics_addr = Some(bound);
                }
                started.threads.push(thread);
            }
            Err(e) => tracing::warn!(%addr, "the {what} is off: cannot start its thread: {e}"),
        }
    }
    started
}

/// The node's seed, all of it from the operating system's random source: session
/// passwords are keyed by 32 bytes of it, so they are unrelated to the start time, the
/// process id or another server's passwords. Without that source the server refuses to
/// start rather than hand out guessable passwords.
pub fn os_seed() -> Result<Seed, StartError> {
    let mut bytes = [0u8; 40];
    getrandom::fill(&mut bytes)
        .map_err(|e| StartError::Config(format!("no random source for session passwords: {e}")))?;
    let (rng, secret) = bytes.split_at(8);
    let mut password_secret = [0u8; 32];
    password_secret.copy_from_slice(secret);
    Ok(Seed {
        rng: u64::from_le_bytes(rng.try_into().unwrap_or_default()),
        password_secret,
    })
}

/// The kind of a node input, for logs.
fn input_kind(input: &Input) -> &'static str {
    match input {
        Input::Tick => "tick",
        Input::Peer { .. } => "peer",
        Input::ClientConnected { .. } => "client-connected",
        Input::ClientAuthenticated { .. } => "client-authenticated",
        Input::ClientBytes { .. } => "client-bytes",
        Input::ClientDisconnected { .. } => "client-disconnected",
        Input::HardStatePersisted { .. } => "hard-state-persisted",
        Input::Persisted { .. } => "persisted",
        Input::SnapshotInstalled { .. } => "snapshot-installed",
        Input::SnapshotWritten { .. } => "snapshot-written",
    }
}

fn disk_start(
    storage: Storage,
    cfg: &ZooCfg,
    events: SyncSender<Event>,
) -> Result<DiskStarted, StartError> {
    let (tx, rx) = channel();
    let snapshot_files = SnapshotFiles::of(&storage, u64::from(cfg.snapshot_write_bytes_per_sec));
    let purge = PurgePolicy {
        interval: match cfg.autopurge_purge_interval_hours {
            0 => None,
            hours => Some(Duration::from_secs(u64::from(hours) * 3600)),
        },
    };
    let deliver = move |event| events.send(Event::Disk(event)).is_ok();
    let fsync = Arc::new(four_letter::Summary::default());
    let disk_thread = thread::Builder::new()
        .name("paddock-disk".to_owned())
        .spawn({
            let fsync = fsync.clone();
            move || disk::run(storage, rx, deliver, purge, &fsync)
        })
        .map_err(|e| StartError::Config(format!("cannot start the disk thread: {e}")))?;
    Ok((tx, disk_thread, snapshot_files, fsync))
}

/// Follows frame boundaries on a client's byte stream: to hand the node a few whole
/// frames at a time ([`FrameWatch::split`]), telling requests whose reply may be large
/// from those whose reply is small, and to say why, in the log, a connection is about to
/// be closed for an oversized or negative frame length (the node itself enforces the
/// limit and closes the connection).
#[derive(Default)]
struct FrameWatch {
    header: Vec<u8>,
    remaining_bytes: u64,
    /// The first payload bytes of the current frame (xid and opcode), up to 8.
    head: Vec<u8>,
    /// Frames completed so far (the first is the connect request).
    frames: u64,
    started: bool,
    done: bool,
}

/// How much [`FrameWatch::split`] may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SplitLimit {
    /// Whole frames whose reply may be large (up to `jute.maxbuffer`).
    large: usize,
    /// Whole frames of any kind.
    all: usize,
}

/// Where [`FrameWatch::split`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Split {
    /// Bytes taken from the front of the input.
    bytes: usize,
    /// The length of the first frame above the limit, if these bytes announce it.
    oversized: Option<i64>,
}

/// False for requests whose reply is small or no larger than the request plus a stat
/// (writes, checks, pings, session and watch bookkeeping); true for reads that can ask
/// for up to `jute.maxbuffer` (data, children, ACLs, setWatches' events) and for anything
/// unknown.
fn reply_may_be_large(op: i32) -> bool {
    !matches!(
        OpCode::try_from(op),
        Ok(OpCode::Create
            | OpCode::Create2
            | OpCode::CreateContainer
            | OpCode::CreateTtl
            | OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::Exists
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Sync
            | OpCode::Ping
            | OpCode::Check
            | OpCode::Multi
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::GetAllChildrenNumber
            | OpCode::AddWatch
            | OpCode::WhoAmI
            | OpCode::CloseSession
            | OpCode::Auth)
    )
}

impl FrameWatch {
    /// Feeds bytes; returns the offending length of the first frame above `max_bytes`.
    #[cfg(test)]
    fn push(&mut self, bytes: &[u8], max_bytes: u32) -> Option<i64> {
        let all = SplitLimit {
            large: usize::MAX,
            all: usize::MAX,
        };
        self.split(bytes, max_bytes, all).oversized
    }

    /// Takes bytes from the front of `bytes` up to the end of the frame that reaches one
    /// of `limit`'s counts (all of them if none is reached). Past a four-letter word or a
    /// length out of bounds it no longer follows frames and takes everything.
    fn split(&mut self, bytes: &[u8], max_bytes: u32, limit: SplitLimit) -> Split {
        let mut at = 0;
        let (mut large, mut all) = (0, 0);
        let mut oversized = None;
        while at < bytes.len() && large < limit.large && all < limit.all {
            if self.done {
                at = bytes.len();
                break;
            }
            if self.remaining_bytes > 0 {
                let take = self.remaining_bytes.min((bytes.len() - at) as u64) as usize;
                let chunk = bytes.get(at..at + take).unwrap_or_default();
                let wanted = 8usize.saturating_sub(self.head.len()).min(chunk.len());
                self.head
                    .extend_from_slice(chunk.get(..wanted).unwrap_or_default());
                self.remaining_bytes -= take as u64;
                at += take;
                if self.remaining_bytes == 0 {
                    all += 1;
                    large += usize::from(self.frame_done());
                }
                continue;
            }
            let Some(byte) = bytes.get(at) else {
                break;
            };
            at += 1;
            self.header.push(*byte);
            let Ok(prefix) = <[u8; 4]>::try_from(self.header.as_slice()) else {
                continue;
            };
            self.header.clear();
            if !self.started {
                self.started = true;
                if let ConnectionStart::FourLetterWord(_) = classify_connection_start(&prefix) {
                    self.done = true;
                    continue;
                }
            }
            let length = i32::from_be_bytes(prefix);
            match u32::try_from(length) {
                Ok(0) => {
                    all += 1;
                    large += usize::from(self.frame_done());
                }
                Ok(length) if length <= max_bytes => self.remaining_bytes = u64::from(length),
                _ => {
                    self.done = true;
                    oversized = Some(i64::from(length));
                }
            }
        }
        Split {
            bytes: at,
            oversized,
        }
    }

    /// A frame ended: whether its reply may be large.
    fn frame_done(&mut self) -> bool {
        let first = self.frames == 0;
        self.frames += 1;
        let op = self
            .head
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(i32::from_be_bytes);
        self.head.clear();
        // The connect request is answered by a small connect response; a frame too short
        // for a header is refused by the node.
        !first && op.is_some_and(reply_may_be_large)
    }
}

/// One open client connection, as the event loop sees it.
struct Client {
    frames: FrameWatch,
    peer: SocketAddr,
    received: u64,
    sent: u64,
    /// Wall-clock ms when it was accepted, and when it was last answered (`cons`).
    established_ms: u64,
    last_response_ms: u64,
    /// Its unsent replies (shared with the client thread).
    queued: QueuedReplies,
    /// Bytes read and not yet handed to the node: `held[held_from..]`.
    held: Vec<u8>,
    held_from: usize,
    /// In `EventLoop::feedable` or `EventLoop::budget_waiting`.
    feedable: bool,
    /// Its requests received and not yet answered, as the node last said.
    outstanding: usize,
    /// Reading paused by `globalOutstandingLimit`.
    paused: bool,
    /// The client ended its stream: the connection closes once `held` is handed over.
    ended: bool,
}

impl Client {
    fn held_bytes(&self) -> usize {
        self.held.len() - self.held_from
    }
}

/// The wall clock as `now` for the node, made monotonic: wall time at start plus the
/// monotonic time since.
struct Clock {
    start: Instant,
    start_wall_ms: u64,
}

impl Clock {
    fn new() -> Clock {
        let start_wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Clock {
            start: Instant::now(),
            start_wall_ms,
        }
    }

    fn now_ms(&self) -> u64 {
        self.start_wall_ms + self.start.elapsed().as_millis() as u64
    }
}

/// What the loop last logged about the node, to log changes only.
#[derive(Default)]
struct Observed {
    leader: Option<NodeId>,
    is_leader: bool,
    sessions: BTreeSet<SessionId>,
    at: Option<Instant>,
}

/// The thread that owns the node. See the module documentation.
struct EventLoop {
    node: Node,
    cfg: ZooCfg,
    id: u64,
    peers: Option<Peers>,
    disk: Sender<DiskRequest>,
    /// Joined at the end, so a stopped server has finished its queued writes.
    disk_thread: JoinHandle<()>,
    /// Where snapshot files are written (by the snapshot thread) and read back to send.
    snapshot_files: SnapshotFiles,
    /// Peers a background thread is sending snapshot pieces
    /// ([`disk::send_snapshot_piece_in_background`]).
    snapshot_sends: disk::PieceSenders,
    /// Persist requests not yet handed to the disk thread ([`EventLoop::outputs_flush`]).
    disk_pending: Vec<DiskRequest>,
    /// When outputs were last handed over.
    flushed_at: Instant,
    /// Every client socket.
    io: ClientIo,
    stop: Arc<AtomicBool>,
    clock: Clock,
    clients: BTreeMap<ConnId, Client>,
    per_ip: BTreeMap<IpAddr, u32>,
    /// Connections with held bytes to hand to the node, in turn.
    feedable: VecDeque<ConnId>,
    /// Connections with held bytes and replies queued, waiting for the unsent replies of
    /// all clients to fall below their budget.
    budget_waiting: Vec<ConnId>,
    /// Connections the current step fed or answered: their outstanding count is asked
    /// again after it.
    touched: Vec<ConnId>,
    /// Sum of every client's `outstanding`.
    outstanding: usize,
    /// Connections whose reading `globalOutstandingLimit` paused.
    paused: BTreeSet<ConnId>,
    /// Connections by the time (ms) they must have a session, in accept order (so in
    /// deadline order): a connection that never completes the handshake is closed then.
    handshake_deadlines: VecDeque<(u64, ConnId)>,
    counters: Counters,
    out: Vec<Output>,
    observed: Observed,
    failure: Option<String>,
    /// The log's `fdatasync` times, recorded by the disk thread.
    fsync: Arc<four_letter::Summary>,
    /// Times from looking for a leader to following or leading one.
    election: four_letter::Summary,
    /// Since when this server has been looking for a leader (from its start).
    looking_since: Option<Instant>,
}

/// What [`disk_start`] starts: the request channel, the thread, the snapshot files and
/// the thread's `fdatasync` times.
type DiskStarted = (
    Sender<DiskRequest>,
    JoinHandle<()>,
    SnapshotFiles,
    Arc<four_letter::Summary>,
);

impl EventLoop {
    fn new(
        node: Node,
        cfg: ZooCfg,
        id: u64,
        peers: Option<Peers>,
        (disk, disk_thread, snapshot_files, fsync): DiskStarted,
        io: ClientIo,
        stop: Arc<AtomicBool>,
    ) -> EventLoop {
        EventLoop {
            node,
            cfg,
            id,
            peers,
            disk,
            disk_thread,
            snapshot_files,
            snapshot_sends: Arc::default(),
            disk_pending: Vec::new(),
            flushed_at: Instant::now(),
            io,
            stop,
            clock: Clock::new(),
            clients: BTreeMap::new(),
            per_ip: BTreeMap::new(),
            feedable: VecDeque::new(),
            budget_waiting: Vec::new(),
            touched: Vec::new(),
            outstanding: 0,
            paused: BTreeSet::new(),
            handshake_deadlines: VecDeque::new(),
            counters: Counters::default(),
            out: Vec::new(),
            observed: Observed::default(),
            failure: None,
            fsync,
            election: four_letter::Summary::default(),
            looking_since: Some(Instant::now()),
        }
    }

    /// Runs until a stop request or a disk failure. This loop has no other end.
    fn run(mut self, events: Receiver<Event>) -> Result<(), String> {
        self.step(Input::Tick);
        while !self.stop.load(Ordering::Relaxed) && self.failure.is_none() {
            let now = self.clock.now_ms();
            let idle = if !self.feedable.is_empty() {
                Duration::ZERO
            } else if !self.budget_waiting.is_empty() {
                FEED_RETRY
            } else {
                IDLE_WAIT
            };
            let wait = self
                .node
                .next_deadline()
                .map_or(idle, |d| Duration::from_millis(d.saturating_sub(now)))
                .min(idle);
            let event = match events.recv_timeout(wait) {
                Ok(event) => Some(event),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let round = Instant::now();
            if let Some(event) = event {
                self.handle(event);
                for event in events.try_iter().take(EVENTS_PER_ROUND_MAX) {
                    self.handle(event);
                }
            }
            self.feed_clients();
            if self
                .node
                .next_deadline()
                .is_some_and(|d| d <= self.clock.now_ms())
            {
                self.step(Input::Tick);
            }
            self.observe();
            self.outputs_flush();
            let busy_us = u64::try_from(round.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.counters.loop_round_max_us = self.counters.loop_round_max_us.max(busy_us);
        }
        self.close_all();
        self.outputs_flush();
        // Dropping the disk sender lets the disk thread finish what is queued, then end.
        let EventLoop {
            disk,
            disk_thread,
            failure,
            id,
            io,
            ..
        } = self;
        io.stop();
        drop(disk);
        if disk_thread.join().is_err() {
            return Err("the disk thread panicked".into());
        }
        tracing::info!(id, "stopped");
        match failure {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Accepted(conn, addr, queued) => self.accept(conn, addr, queued),
            Event::ClientDrained(conn) => self.feedable_push(conn),
            Event::ClientCertified(conn, subject) => {
                if self.clients.contains_key(&conn) {
                    let id = Id::new("x509", &subject);
                    self.step(Input::ClientAuthenticated { conn, id });
                }
            }
            Event::ClientBytes(conn, bytes) => self.client_bytes(conn, bytes),
            Event::ClientEof(conn) => match self.clients.get_mut(&conn) {
                Some(client) if client.held_bytes() > 0 => client.ended = true,
                Some(_) => self.client_disconnected(conn),
                None => {}
            },
            Event::ClientClosed(conn) => self.client_disconnected(conn),
            Event::Peer(from, msg) => self.step(Input::Peer { from, msg }),
            Event::Disk(DiskEvent::Done(input)) => self.step(input),
            Event::Http(word, reply) => {
                let text = self.four_letter_text(word, None, true);
                let _ = reply.try_send(text);
            }
            Event::Disk(DiskEvent::Failed(reason)) => {
                tracing::error!(%reason, "stopping: the disk failed");
                self.failure = Some(reason);
            }
        }
    }

    /// Steps the node with one input and performs what it asks; the time this takes is
    /// the longest stretch the loop can spend without handling anything else
    /// (`paddock_loop_event_max_ms`).
    fn step(&mut self, input: Input) {
        let started = Instant::now();
        let kind = input_kind(&input);
        let now = self.clock.now_ms();
        let mut out = std::mem::take(&mut self.out);
        self.node.step(now, input, &mut out);
        for output in out.drain(..) {
            self.perform(output);
        }
        self.out = out;
        self.outstanding_update();
        if self.flushed_at.elapsed() >= OUTPUTS_FLUSH_INTERVAL {
            self.outputs_flush();
        }
        let busy_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters.loop_event_max_us = self.counters.loop_event_max_us.max(busy_us);
        if busy_us >= SLOW_STEP_US {
            tracing::info!(input = kind, busy_us, "slow event-loop step");
        }
    }

    /// Hands the disk thread the persist requests of the steps since the last call, and
    /// wakes the client thread for their replies: once per round (or per
    /// [`OUTPUTS_FLUSH_INTERVAL`] within a long one) rather than at every output, so the
    /// other threads wake once for a batch instead of preempting the loop for each
    /// piece, and the disk thread sees the batch whole (group commit).
    fn outputs_flush(&mut self) {
        for request in self.disk_pending.drain(..) {
            if self.disk.send(request).is_err() && self.failure.is_none() {
                self.failure = Some("the disk thread stopped".into());
            }
        }
        self.io.flush();
        self.flushed_at = Instant::now();
    }

    /// Bytes read from a client: held, and handed to the node in turn
    /// ([`EventLoop::feed_clients`]).
    fn client_bytes(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let Some(client) = self.clients.get_mut(&conn) else {
            self.io.input_done(bytes.len());
            return;
        };
        client.received += 1;
        self.counters.received += 1;
        if client.held_bytes() == 0 {
            client.held = bytes;
            client.held_from = 0;
        } else {
            client.held.drain(..client.held_from);
            client.held_from = 0;
            client.held.extend_from_slice(&bytes);
        }
        self.feedable_push(conn);
    }

    fn feedable_push(&mut self, conn: ConnId) {
        if let Some(client) = self.clients.get_mut(&conn)
            && !client.feedable
            && !client.paused
            && client.held_bytes() > 0
        {
            client.feedable = true;
            self.feedable.push_back(conn);
        }
    }

    /// Hands held client bytes to the node, some frames of one connection per step, in
    /// turn: no more than fit under `globalOutstandingLimit` (one at a time beyond it),
    /// and a few that may ask for large replies. A connection with
    /// [`CLIENT_QUEUED_BYTES_PAUSE`] of replies queued waits for [`Event::ClientDrained`];
    /// while the replies of all clients are at their budget, only connections with
    /// nothing queued are served, one request at a time, and the others wait in
    /// `budget_waiting`.
    fn feed_clients(&mut self) {
        if !self.budget_waiting.is_empty()
            && self.io.queued_reply_bytes() < CLIENTS_QUEUED_BYTES_MAX
        {
            // Still marked `feedable`: they go back in the queue as they are.
            self.feedable.extend(self.budget_waiting.drain(..));
        }
        let per_step =
            (FEED_REPLY_BYTES_PER_STEP / self.cfg.jute_max_buffer_bytes.max(1) as usize).max(1);
        let mut steps = 0;
        while steps < FEED_STEPS_PER_ROUND {
            let Some(conn) = self.feedable.pop_front() else {
                return;
            };
            let Some(client) = self.clients.get_mut(&conn) else {
                continue;
            };
            client.feedable = false;
            let queued = client.queued.bytes();
            if client.paused || queued >= CLIENT_QUEUED_BYTES_PAUSE {
                // A resume, or its replies going out, brings it back.
                continue;
            }
            let over_budget = self.io.queued_reply_bytes() >= CLIENTS_QUEUED_BYTES_MAX;
            if over_budget && queued > 0 {
                client.feedable = true;
                self.budget_waiting.push(conn);
                continue;
            }
            // Up to the outstanding limit, and one request at a time beyond it.
            let room = (self.cfg.global_outstanding_limit as usize)
                .saturating_sub(self.outstanding)
                .clamp(1, FEED_FRAMES_PER_STEP);
            let limit = if over_budget {
                SplitLimit { large: 1, all: 1 }
            } else {
                SplitLimit {
                    large: per_step,
                    all: room,
                }
            };
            self.feed(conn, limit);
            steps += 1;
        }
    }

    /// Hands the node whole frames of `conn`'s held bytes, as many as `limit` allows.
    fn feed(&mut self, conn: ConnId, limit: SplitLimit) {
        let max_bytes = self.cfg.jute_max_buffer_bytes;
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        let held = client.held.get(client.held_from..).unwrap_or_default();
        let split = client.frames.split(held, max_bytes, limit);
        if let Some(length) = split.oversized {
            tracing::warn!(peer = %client.peer, length, jute_maxbuffer = max_bytes, "frame length out of bounds; closing the connection");
        }
        let bytes = if client.held_from == 0 && split.bytes == client.held.len() {
            std::mem::take(&mut client.held)
        } else {
            let bytes = held.get(..split.bytes).unwrap_or_default().to_vec();
            client.held_from += split.bytes;
            bytes
        };
        if client.held_bytes() == 0 {
            client.held.clear();
            client.held_from = 0;
        }
        self.io.input_done(bytes.len());
        if !bytes.is_empty() {
            self.touched.push(conn);
            self.step(Input::ClientBytes { conn, bytes });
        }
        match self.clients.get(&conn) {
            Some(client) if client.held_bytes() > 0 => self.feedable_push(conn),
            Some(client) if client.ended => self.client_disconnected(conn),
            _ => {}
        }
    }

    /// The connection is gone (its socket ended or failed): the node forgets it.
    fn client_disconnected(&mut self, conn: ConnId) {
        if self.client_remove(conn).is_some() {
            self.step(Input::ClientDisconnected { conn });
        }
    }

    /// Asks the node again for the outstanding requests of the connections the last step
    /// fed or answered, and pauses or resumes reading (`globalOutstandingLimit`).
    fn outstanding_update(&mut self) {
        let mut touched = std::mem::take(&mut self.touched);
        for conn in touched.drain(..) {
            self.outstanding_refresh(conn);
        }
        self.touched = touched;
        self.resume_below_limit();
    }

    /// Recounts every connection (a connection the node forgot without a word, e.g. one
    /// whose session moved to another connection, is set right here).
    fn outstanding_recount(&mut self) {
        let conns: Vec<ConnId> = self.clients.keys().copied().collect();
        for conn in conns {
            self.outstanding_refresh(conn);
        }
        self.resume_below_limit();
    }

    fn outstanding_refresh(&mut self, conn: ConnId) {
        let now = self.node.conn_requests_outstanding(conn);
        let limit = self.cfg.global_outstanding_limit as usize;
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        let before = client.outstanding;
        if now == before {
            return;
        }
        client.outstanding = now;
        self.outstanding = self.outstanding - before + now;
        self.counters.outstanding_requests_max = self
            .counters
            .outstanding_requests_max
            .max(self.outstanding as u64);
        if now > before && self.outstanding > limit && !client.paused {
            client.paused = true;
            self.paused.insert(conn);
            self.counters.reads_throttled += 1;
            self.io.pause(conn);
        } else if now == 0 && client.paused {
            self.resume(conn);
        }
    }

    /// Resumes every paused connection once the sum is at the limit or below.
    fn resume_below_limit(&mut self) {
        if self.paused.is_empty() || self.outstanding > self.cfg.global_outstanding_limit as usize {
            return;
        }
        for conn in std::mem::take(&mut self.paused) {
            self.resume(conn);
        }
    }

    fn resume(&mut self, conn: ConnId) {
        self.paused.remove(&conn);
        if let Some(client) = self.clients.get_mut(&conn) {
            client.paused = false;
            self.io.resume(conn);
            self.feedable_push(conn);
        }
    }

    fn perform(&mut self, output: Output) {
        match output {
            Output::Persist(Persist::WriteSnapshot { meta, state }) => {
                let files = self.snapshot_files.clone();
                disk::encode_snapshot_then_write(meta, state, files, &self.disk);
            }
            Output::Persist(write) => self.disk_pending.push(DiskRequest::Persist(write)),
            Output::Peer { to, msg } => {
                if let Some(peers) = &self.peers {
                    peers.send(to, &msg);
                }
            }
            Output::PeerSnapshot(send) => {
                if let Some(peers) = &self.peers {
                    let files = self.snapshot_files.clone();
                    let sends = &self.snapshot_sends;
                    disk::send_snapshot_piece_in_background(send, files, peers.clone(), sends);
                }
            }
            Output::ToClient { conn, bytes } => {
                self.touched.push(conn);
                self.client_write(conn, bytes);
            }
            Output::CloseClient { conn } => {
                if let Some(client) = self.client_remove(conn) {
                    tracing::debug!(peer = %client.peer, "node closed the connection (session closed, bad input, expired or moved session, or lost write outcome)");
                }
            }
            Output::FourLetterWord { conn, word } => self.four_letter(conn, word),
            // Hundreds of megabytes after a snapshot of a large tree: tens of
            // milliseconds of `munmap` and `free` that the loop does not wait for.
            Output::Release(released) => disk::run_in_background("paddock-release", released, drop),
        }
    }

    fn accept(&mut self, conn: ConnId, peer: SocketAddr, queued: QueuedReplies) {
        let max_cnxns = self.cfg.max_cnxns;
        if max_cnxns > 0 && self.clients.len() >= max_cnxns as usize {
            tracing::warn!(%peer, open = self.clients.len(), max_cnxns, "connection refused: too many connections");
            self.io.close(conn);
            return;
        }
        let ip = peer.ip();
        let open = self.per_ip.get(&ip).copied().unwrap_or(0);
        if open >= self.node.config().limits.connections_per_ip_max {
            tracing::warn!(%peer, open, max_client_cnxns = self.cfg.max_client_cnxns, "connection refused: too many connections from this address");
            self.io.close(conn);
            return;
        }
        *self.per_ip.entry(ip).or_default() += 1;
        self.clients.insert(
            conn,
            Client {
                frames: FrameWatch::default(),
                peer,
                received: 0,
                sent: 0,
                established_ms: self.clock.now_ms(),
                last_response_ms: 0,
                queued,
                held: Vec::new(),
                held_from: 0,
                feedable: false,
                outstanding: 0,
                paused: false,
                ended: false,
            },
        );
        let deadline = self.clock.now_ms() + u64::from(self.cfg.sessionless_cnxn_timeout_ms);
        self.handshake_deadlines.push_back((deadline, conn));
        self.step(Input::ClientConnected { conn, addr: ip });
    }

    /// Closes connections past their handshake deadline that still have no session
    /// (ZooKeeper's sessionless connection timeout). Costs one look per connection, once.
    fn close_sessionless(&mut self) {
        let now = self.clock.now_ms();
        while let Some((deadline, conn)) = self.handshake_deadlines.front().copied() {
            if deadline > now {
                return;
            }
            self.handshake_deadlines.pop_front();
            let sessionless = self.clients.contains_key(&conn)
                && self
                    .node
                    .conn_stats(conn)
                    .is_none_or(|s| s.session.is_none());
            if sessionless && let Some(client) = self.client_remove(conn) {
                tracing::info!(peer = %client.peer, timeout_ms = self.cfg.sessionless_cnxn_timeout_ms, "connection closed: no session within the timeout");
                self.step(Input::ClientDisconnected { conn });
            }
        }
    }

    fn client_write(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        client.sent += 1;
        client.last_response_ms = self.clock.now_ms();
        self.counters.sent += 1;
        self.io.write(conn, &client.queued, bytes);
    }

    /// Forgets a connection (its held bytes and its outstanding count with it) and asks
    /// the client thread to flush and close its socket.
    fn client_remove(&mut self, conn: ConnId) -> Option<Client> {
        let client = self.clients.remove(&conn)?;
        self.io.input_done(client.held_bytes());
        self.outstanding -= client.outstanding;
        self.paused.remove(&conn);
        let ip = client.peer.ip();
        if let Some(open) = self.per_ip.get_mut(&ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.per_ip.remove(&ip);
            }
        }
        self.io.close(conn);
        Some(client)
    }

    /// The answer to `word`, for a client connection `conn` (not listed among the
    /// connections, as ZooKeeper leaves out the asker) or for the HTTP endpoints.
    fn four_letter_text(&self, word: FourLetterWord, conn: Option<ConnId>, http: bool) -> String {
        let status = self.node.status();
        let conns: Vec<ConnInfo> = self
            .clients
            .iter()
            .filter(|(id, _)| Some(**id) != conn)
            .map(|(id, c)| ConnInfo {
                peer: c.peer,
                received: c.received,
                sent: c.sent,
                established_ms: c.established_ms,
                last_response_ms: c.last_response_ms,
                stats: self.node.conn_stats(*id),
            })
            .collect();
        let dump = matches!(
            word,
            FourLetterWord::Dump | FourLetterWord::Wchc | FourLetterWord::Wchp
        )
        .then(|| self.dump());
        let ctx = four_letter::Context {
            dump: dump.as_ref(),
            status: &status,
            config: &self.cfg,
            server_id: self.id,
            counters: Counters {
                outstanding_requests: self.outstanding as u64,
                queued_reply_bytes: self.io.queued_reply_bytes() as u64,
                slow_clients_closed: self.io.slow_clients_closed(),
                uptime_ms: u64::try_from(self.clock.start.elapsed().as_millis())
                    .unwrap_or(u64::MAX),
                file_descriptors: if word == FourLetterWord::Mntr {
                    file_descriptors()
                } else {
                    None
                },
                fsync: self.fsync.figures(),
                election: self.election.figures(),
                ..self.counters
            },
            conns: &conns,
            dir_bytes: if word == FourLetterWord::Dirs {
                (
                    dir_bytes(Path::new(&self.cfg.data_dir)),
                    dir_bytes(Path::new(&self.cfg.data_log_dir)),
                )
            } else {
                (0, 0)
            },
        };
        if http {
            four_letter::answer_for_http(word, &ctx)
        } else {
            four_letter::answer(word, &ctx)
        }
    }

    /// What `dump`, `wchc` and `wchp` list: O(sessions + connections + watches), for
    /// those words only.
    fn dump(&self) -> four_letter::Dump {
        let session_of = |conn: ConnId| {
            self.node
                .conn_stats(conn)
                .and_then(|s| s.session)
                .map_or(0, |s| s.0)
        };
        let sessions: Vec<(i64, u64)> = self
            .node
            .sessions()
            .iter()
            .filter(|s| !s.closing)
            .map(|s| (s.id.0, s.expires_at_ms))
            .collect();
        let deadlines: BTreeMap<i64, u64> = sessions.iter().copied().collect();
        let ephemerals = self
            .node
            .tree()
            .ephemerals()
            .iter()
            .map(|(session, paths)| (session.0, paths.iter().cloned().collect()))
            .collect();
        let sessionless_ms = u64::from(self.cfg.sessionless_cnxn_timeout_ms);
        let connections = self
            .clients
            .iter()
            .map(|(conn, client)| {
                let session = session_of(*conn);
                let expires = deadlines
                    .get(&session)
                    .copied()
                    .unwrap_or(client.established_ms.saturating_add(sessionless_ms));
                (client.peer, session, expires)
            })
            .collect();
        let mut by_session: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for (conn, paths) in self.node.watches().by_connection() {
            by_session
                .entry(session_of(conn))
                .or_default()
                .extend(paths);
        }
        let watches_by_path = self
            .node
            .watches()
            .by_path()
            .into_iter()
            .map(|(path, conns)| {
                let sessions: BTreeSet<i64> = conns.into_iter().map(session_of).collect();
                (path, sessions.into_iter().collect())
            })
            .collect();
        four_letter::Dump {
            tick_ms: u64::from(self.cfg.tick_time_ms),
            sessions,
            ephemerals,
            connections,
            watches_by_session: by_session
                .into_iter()
                .map(|(session, paths)| (session, paths.into_iter().collect()))
                .collect(),
            watches_by_path,
        }
    }

    fn four_letter(&mut self, conn: ConnId, word: FourLetterWord) {
        let text = self.four_letter_text(word, Some(conn), false);
        let serving = self.node.replication_status().leader.is_some();
        match four_letter::resets(word, &self.cfg, serving) {
            Some(four_letter::Reset::Connections) => {
                self.node.conn_stats_reset();
                for client in self.clients.values_mut() {
                    client.received = 0;
                    client.sent = 0;
                    client.last_response_ms = 0;
                }
            }
            Some(four_letter::Reset::Server) => {
                self.node.latency_reset();
                self.counters.received = 0;
                self.counters.sent = 0;
                self.counters.outstanding_requests_max = 0;
                self.counters.loop_round_max_us = 0;
                self.counters.loop_event_max_us = 0;
            }
            None => {}
        }
        if let Some(client) = self.clients.get(&conn) {
            self.io.write(conn, &client.queued, text.into_bytes());
        }
        self.client_remove(conn);
    }

    /// Logs leadership and session changes (polled: the node reports no events).
    fn observe(&mut self) {
        self.close_sessionless();
        // Election time, as ZooKeeper's: from looking for a leader (or the start) to
        // following or leading one.
        let looking = matches!(self.node.role(), Role::PreCandidate | Role::Candidate);
        match (looking, self.looking_since) {
            (true, None) => self.looking_since = Some(Instant::now()),
            (false, Some(since)) if self.node.leader().is_some() => {
                self.election.record(since.elapsed());
                self.looking_since = None;
            }
            _ => {}
        }
        let is_leader = self.node.is_leader();
        if is_leader != self.observed.is_leader {
            self.observed.is_leader = is_leader;
            let epoch = self.node.replication_status().epoch;
            if is_leader {
                tracing::info!(id = self.id, epoch = epoch.0, "election won: leading");
            } else {
                tracing::info!(id = self.id, epoch = epoch.0, "leadership lost");
            }
        }
        if self
            .observed
            .at
            .is_some_and(|at| at.elapsed() < OBSERVE_INTERVAL)
        {
            return;
        }
        self.observed.at = Some(Instant::now());
        self.outstanding_recount();
        self.observe_slow();
    }

    fn observe_slow(&mut self) {
        let replication = self.node.replication_status();
        let leader = replication.leader;
        if leader != self.observed.leader {
            self.observed.leader = leader;
            match leader {
                Some(l) if replication.role != Role::Leader => tracing::info!(
                    id = self.id,
                    leader = l.0,
                    epoch = replication.epoch.0,
                    applied_zxid = format_args!("{:#x}", self.node.applied_zxid().0),
                    "follower synced with leader"
                ),
                None => tracing::warn!(id = self.id, "no leader; looking"),
                _ => {}
            }
        }
        let sessions: BTreeSet<SessionId> = self.node.sessions().iter().map(|s| s.id).collect();
        for gone in self.observed.sessions.difference(&sessions) {
            tracing::info!(
                session = format_args!("{:#x}", gone.0),
                "session ended (closed or expired)"
            );
        }
        self.observed.sessions = sessions;
    }

    fn close_all(&mut self) {
        let conns: Vec<ConnId> = self.clients.keys().copied().collect();
        for conn in conns {
            self.client_remove(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{FrameWatch, Split, SplitLimit};

    // An ensemble times failure detection from tickTime and syncLimit as ZooKeeper does;
    // a standalone server elects itself at once.
    #[test]
    fn failure_detection_follows_ticktime_and_synclimit() {
        let ensemble = |extra: &str| {
            let text = format!(
                "dataDir=/d\nserver.1=h:2888:3888\nserver.2=h2:2888:3888\n\
                 server.3=h3:2888:3888\n{extra}"
            );
            crate::config::parse(&text).unwrap().0
        };
        // ZooKeeper's defaults: tickTime=3000, syncLimit=5.
        let defaults = ensemble("");
        assert_eq!(
            super::failure_detection_ms(&defaults),
            (1500, 15_000, 30_000)
        );
        // The sample zoo.cfg's tickTime=2000.
        let sample = ensemble("tickTime=2000\n");
        let config = super::node_config(&sample, 1).unwrap();
        assert_eq!(config.replication.election_timeout_ms_min, 10_000);
        assert_eq!(config.replication.election_timeout_ms_max, 20_000);
        assert_eq!(config.replication.heartbeat_interval_ms, 1000);
        let tests = ensemble("tickTime=500\nsyncLimit=5\n");
        assert_eq!(super::failure_detection_ms(&tests), (250, 2500, 5000));
        let standalone = crate::config::parse("dataDir=/d\n").unwrap().0;
        let config = super::node_config(&standalone, 1).unwrap();
        assert_eq!(config.replication.election_timeout_ms_max, 80);
    }

    fn frames(n: usize) -> SplitLimit {
        SplitLimit { large: n, all: n }
    }

    fn taken(bytes: usize) -> Split {
        Split {
            bytes,
            oversized: None,
        }
    }

    // split stops right after the n-th complete frame (an empty frame counts), whatever
    // the chunks the stream arrives in; a partial frame is taken whole; past a
    // four-letter word or an oversized length everything is taken.
    #[test]
    fn frame_watch_splits_after_whole_frames() {
        let stream = [0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 2, 9, 9];
        let mut watch = FrameWatch::default();
        assert_eq!(watch.split(&stream, 10, frames(1)), taken(7));
        assert_eq!(watch.split(&stream[7..], 10, frames(1)), taken(4));
        assert_eq!(watch.split(&stream[11..], 10, frames(5)), taken(6));
        for chunk in 1..stream.len() {
            let mut watch = FrameWatch::default();
            let mut ends = Vec::new();
            let mut at = 0;
            for piece in stream.chunks(chunk) {
                let mut rest = piece;
                while !rest.is_empty() {
                    let split = watch.split(rest, 10, frames(1));
                    at += split.bytes;
                    rest = &rest[split.bytes..];
                    if watch.header.is_empty() && watch.remaining_bytes == 0 {
                        ends.push(at);
                    }
                }
            }
            assert_eq!(ends, [7, 11, 17], "chunks of {chunk}");
        }
        let mut word = FrameWatch::default();
        assert_eq!(word.split(b"ruok and more", 10, frames(1)), taken(13));
        let mut big = FrameWatch::default();
        let split = big.split(&[0, 0, 0, 1, 7, 0, 0, 0, 20, 1, 1], 10, frames(3));
        assert_eq!(split.bytes, 11);
        assert_eq!(split.oversized, Some(20));
    }

    // Only requests whose reply may be large count against `large`: after the connect
    // request, setData and exists frames pass until the second getData ends.
    #[test]
    fn frame_watch_counts_large_replies() {
        let frame = |xid: i32, op: i32, extra: usize| {
            let mut f = Vec::new();
            f.extend_from_slice(&(8 + extra as i32).to_be_bytes());
            f.extend_from_slice(&xid.to_be_bytes());
            f.extend_from_slice(&op.to_be_bytes());
            f.extend(std::iter::repeat_n(0u8, extra));
            f
        };
        let mut stream = frame(0, 4, 20); // the connect request: small whatever it reads like
        let connect = stream.len();
        for (xid, op) in [(1, 5), (2, 4), (3, 3), (4, 5), (5, 4), (6, 8)] {
            stream.extend(frame(xid, op, 6));
        }
        let each = frame(0, 0, 6).len();
        let mut watch = FrameWatch::default();
        let limit = SplitLimit { large: 2, all: 100 };
        assert_eq!(watch.split(&stream, 1000, limit), taken(connect + 5 * each));
        let rest = &stream[connect + 5 * each..];
        assert_eq!(watch.split(rest, 1000, limit), taken(each));
        let mut watch = FrameWatch::default();
        let limit = SplitLimit { large: 100, all: 3 };
        assert_eq!(watch.split(&stream, 1000, limit), taken(connect + 2 * each));
    }

    // Frames within the limit pass across any split; the first oversized or negative
    // length is reported once; a four-letter word is not read as a length.
    #[test]
    fn frame_watch_reports_oversized_lengths() {
        let mut watch = FrameWatch::default();
        let mut stream = vec![0, 0, 0, 3, 1, 2, 3, 0, 0];
        assert_eq!(watch.push(&stream, 10), None);
        stream = vec![0, 2, 9, 9];
        assert_eq!(watch.push(&stream, 10), None);
        assert_eq!(watch.push(&[0, 0, 0, 20], 10), Some(20));
        assert_eq!(watch.push(&[0, 0, 0, 20], 10), None);
        let mut negative = FrameWatch::default();
        assert_eq!(negative.push(&[0xff, 0xff, 0xff, 0xff], 10), Some(-1));
        let mut word = FrameWatch::default();
        assert_eq!(word.push(b"ruok", 10), None);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod seed_tests {
    use super::os_seed;

    // Two seeds drawn at once share nothing: the password keys differ in about half
    // their 256 bits (at least 64: a chance below 10^-16 for random keys).
    #[test]
    fn os_seeds_are_unrelated() {
        let (a, b) = (os_seed().unwrap(), os_seed().unwrap());
        let differing: u32 = a
            .password_secret
            .iter()
            .zip(&b.password_secret)
            .map(|(x, y)| (x ^ y).count_ones())
            .sum();
        assert!(differing >= 64, "{differing} bits differ");
        assert_ne!(a.rng, b.rng);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod product_tests {
    use super::node_config;

    // A server's configuration, made from zoo.cfg, turns on none of the tests' machinery
    // (the invariant pass after every apply, the record of applied entries), however the
    // workspace was built: they are settings, which only the simulator and the tests set.
    #[test]
    fn a_server_config_carries_no_test_machinery() {
        let text = "dataDir=/tmp/x\nclientPort=2181\ntickTime=2000\n";
        let (cfg, _) = crate::config::parse(text).unwrap();
        let config = node_config(&cfg, 1).unwrap();
        assert!(!config.check_invariants);
        assert!(!config.record_applied);
    }
}
