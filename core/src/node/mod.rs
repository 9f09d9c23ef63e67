//! `Node`: one Paddock server as a pure value — the znode tree, the session table, the
//! watch table, client connections and the replication protocol, routed together.
//!
//! Driven through two calls: `step(now_ms, Input, &mut outputs)` and
//! `next_deadline()`. Inputs are client bytes, peer messages, timer ticks and disk
//! completions; outputs are bytes for clients and peers, and records to make durable.
//!
//! How a write travels: the server holding the connection turns the request into a
//! [`Write`] and hands it to the current leader over the forward stream (its own leader
//! included). The leader validates it against its *prepared* state — the applied state
//! plus every transaction it has proposed but not yet seen committed — into a tree
//! transaction (or a failed-write entry), and proposes it. Once committed, every server
//! applies it in zxid order (at most `NodeConfig::applied_per_step_max` per step, the
//! rest in the steps that follow at once, so a large batch never holds the event loop);
//! the origin server answers the client. Reads are answered
//! locally from the applied state, in the connection's FIFO order, so a read waits for
//! the same connection's earlier writes (read-your-writes).
//!
//! Invariants: entries are applied in index order exactly once; a client reply leaves
//! only after the entry it reports is committed and applied here; watch events for an
//! applied transaction are emitted before any reply that follows it; the leader's
//! prepared state is rebuilt from the applied state whenever leadership starts (and it
//! starts only once every committed entry is applied), so nothing it prepared under an
//! older epoch can leak into a newer one.
//!
//! Where things are: this file holds the node's state, `step` and the apply path; the two
//! roles of the write path each have a module with their state, timers and handlers —
//! `follower.rs` (the forward stream to the leader, touches) and `leader.rs` (the prepared
//! state, taking and proposing writes, session expiry, reaping) — and `Role` is the one
//! dispatch between them. `client.rs` holds connections and sessions' requests, `reply.rs`
//! the replies, `message.rs` the peer messages and proposals, `persist.rs` the disk
//! writes, `memory.rs` what the node holds. docs/architecture.md follows a write through
//! them function by function.
//!
//! What it does not do: touch sockets, disks or clocks (the runtime does); observers'
//! reads as a separate mode. (It does check READ before delivering a watch event, as
//! ZooKeeper 3.8.4 does: see `crate::watch`.)

mod client;
mod follower;
mod leader;
mod memory;
mod message;
mod persist;
mod reply;

use crate::acl::Id;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU64;

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::{ChaCha8Rng, ChaCha20Rng};
use serde::{Deserialize, Serialize};

use crate::ids::{ConnId, Epoch, NodeId, Zxid};
use crate::limits::Limits;
use crate::replication::{
    self, DurableState, Entry, HardState, ReplicaError, ReplicationConfig, SnapshotMeta,
};
use crate::session::{SessionError, SessionIdGenerator, SessionTable};
use crate::tree::{DataTree, OpResult, TreeConfig, TxnKind};
use crate::watch::{WatchSummary, WatchTable};
use crate::wire::FourLetterWord;

pub use client::{ConnStats, EARLY_BYTES_MAX, EARLY_FRAMES_MAX, QUEUE_BYTES_MAX};
pub use memory::MemoryUse;
pub use message::{
    DECODE_BYTES_MIN, Origin, PayloadError, PeerMessage, Proposal, ProposalBody, Write, WriteOp,
};
pub use persist::Persist;

use client::Conn;

/// Everything a server is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Membership, timing and size bounds of replication (`replication.id` is this server).
    pub replication: ReplicationConfig,
    /// Session tick in ms (ZooKeeper's tickTime): expiry deadlines round up to it.
    pub tick_ms: u64,
    /// Smallest session timeout granted, ms (ZooKeeper: 2 × tickTime).
    pub session_timeout_ms_min: u32,
    /// Largest session timeout granted, ms (ZooKeeper: 20 × tickTime).
    pub session_timeout_ms_max: u32,
    /// Every size bound.
    pub limits: Limits,
    /// Tree settings (TTL nodes, data size, super digest).
    pub tree: TreeConfig,
    /// Take a snapshot after this many applied entries since the last one (snapCount).
    pub snapshot_every_entries: u64,
    /// Take a snapshot once the entries applied since the last one carry this many payload
    /// bytes (ZooKeeper's `snapSizeLimitInKb`), whatever their count: the log kept in
    /// memory (one snapshot interval and `snapshot_log_kept_bytes`) is bounded in bytes,
    /// not only in entries.
    /// Default 256 MiB.
    pub snapshot_every_bytes: u64,
    /// Once a snapshot is durable, the log before it is cut but for its last entries
    /// holding at most this many bytes (payloads plus a fixed cost per entry): a follower
    /// that far short of the snapshot still catches up by entries (ZooKeeper keeps the
    /// last 500 proposals, `zookeeper.commitLogCount`), one further behind is sent the
    /// snapshot. This bounds the log held in memory to one snapshot interval plus this.
    /// Default 8 MiB.
    pub snapshot_log_kept_bytes: u64,
    /// How often the leader looks for containers and TTL nodes to delete, ms.
    pub reap_interval_ms: u64,
    /// How long a follower waits for the leader to acknowledge forwarded writes before
    /// sending them again, ms.
    pub forward_retransmit_ms: u64,
    /// Keep every applied entry for `drain_applied` (the simulator's checkers read them).
    pub record_applied: bool,
    /// Most committed entries applied in one step. The rest wait for the next steps
    /// (`next_deadline` asks for one at once), so a large batch — the 100 000 entries a
    /// restarted server finds after its snapshot, applied once it is elected — does not
    /// hold the event loop for hundreds of milliseconds while clients and peers wait.
    /// Default 1024 (a few milliseconds).
    pub applied_per_step_max: usize,
    /// Client SASL (DIGEST-MD5): the users accepted. Empty: SASL is not offered.
    pub sasl: SaslUsers,
    /// Cross-check after every apply: the tree's structure, and a leader's prepared state
    /// against its applied state, while the tree holds at most
    /// [`INVARIANT_PASS_ZNODES_MAX`] znodes (a full pass each time). The simulator, the
    /// test clusters and the fuzzers set it; a server never does (default `false`). A
    /// setting, not a cargo feature, so that no feature unification of a workspace build
    /// can turn it on in the server.
    pub check_invariants: bool,
    /// The planted bug, if any (set with `plant_bug`; tests of the checkers only).
    #[cfg(feature = "planted-bugs")]
    pub bug: Option<crate::bugs::Bug>,
}

impl NodeConfig {
    /// A configuration with Paddock's defaults for server `id` of an ensemble of `voters`.
    pub fn new(id: NodeId, voters: BTreeSet<NodeId>) -> NodeConfig {
        let tick_ms = 2000;
        NodeConfig {
            replication: ReplicationConfig::new(id, voters),
            tick_ms,
            session_timeout_ms_min: 2 * 2000,
            session_timeout_ms_max: 20 * 2000,
            limits: Limits::default(),
            tree: TreeConfig::default(),
            snapshot_every_entries: 10_000,
            snapshot_every_bytes: 256 * 1024 * 1024,
            snapshot_log_kept_bytes: 8 * 1024 * 1024,
            reap_interval_ms: 60_000,
            forward_retransmit_ms: 200,
            record_applied: false,
            applied_per_step_max: 1024,
            sasl: SaslUsers::default(),
            check_invariants: false,
            #[cfg(feature = "planted-bugs")]
            bug: None,
        }
    }

    /// This server's id.
    pub fn id(&self) -> NodeId {
        self.replication.id
    }

    /// Plants `bug` (or none) in this server and in the parts it configures.
    #[cfg(feature = "planted-bugs")]
    pub fn plant_bug(&mut self, bug: Option<crate::bugs::Bug>) {
        self.bug = bug;
        self.replication.bug = bug;
        self.tree.bug = bug;
    }
}

/// The users a server accepts for client SASL (ZooKeeper's JAAS `Server` section:
/// `user_NAME="password"`), and its SASL super user (`zookeeper.superUser`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SaslUsers {
    /// Passwords by user name.
    pub users: BTreeMap<String, String>,
    /// A user who, once authenticated, is also the super user.
    pub super_user: Option<String>,
}

impl std::fmt::Debug for SaslUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        f.debug_struct("SaslUsers")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("super_user", &self.super_user)
            .finish()
    }
}

/// What a node's randomness comes from.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed {
    /// Seeds every random choice of the protocol (election timeouts, stream ids), so a
    /// run can be replayed.
    pub rng: u64,
    /// Keys the stream session passwords are drawn from. A client's password is its
    /// session's only credential, so the real server fills this from the operating
    /// system's random source; nothing else is derived from it.
    pub password_secret: [u8; 32],
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seed")
            .field("rng", &self.rng)
            .finish_non_exhaustive()
    }
}

impl From<u64> for Seed {
    /// A reproducible seed: the password key is derived from `rng` too, so the same seed
    /// gives the same passwords (simulator and tests only; never for a real server).
    fn from(rng: u64) -> Seed {
        let mut password_secret = [0u8; 32];
        ChaCha8Rng::seed_from_u64(rng ^ 0x7a55_0000_5ec2_e7ed).fill_bytes(&mut password_secret);
        Seed {
            rng,
            password_secret,
        }
    }
}

/// What the world tells a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time passed (the runtime calls this at `next_deadline()`); early or repeated ticks
    /// are harmless.
    Tick,
    /// A message from another server arrived.
    Peer {
        /// The sender.
        from: NodeId,
        /// The message.
        msg: PeerMessage,
    },
    /// A client connected. Connection ids are never reused while the node lives.
    ClientConnected {
        /// The new connection.
        conn: ConnId,
        /// The client's address (for `ip` ACLs and `whoAmI`).
        addr: IpAddr,
    },
    /// The runtime authenticated a client connection below the protocol (a TLS client
    /// certificate, as the `x509` id of its subject): the connection holds that identity
    /// from now on, for ACLs, `auth` ACL entries and `whoAmI`. Comes before its bytes.
    ClientAuthenticated {
        /// The connection.
        conn: ConnId,
        /// The identity it proved.
        id: Id,
    },
    /// Bytes arrived on a client connection.
    ClientBytes {
        /// The connection.
        conn: ConnId,
        /// The bytes, in arrival order; any split.
        bytes: Vec<u8>,
    },
    /// A client connection closed (its session lives on until it expires).
    ClientDisconnected {
        /// The connection.
        conn: ConnId,
    },
    /// The hard state of an earlier `Persist::HardState` is durable.
    HardStatePersisted {
        /// What was written.
        hard_state: HardState,
    },
    /// Log entries up to `index` (with `zxid`) are durable.
    Persisted {
        /// Last durable index.
        index: u64,
        /// Its zxid.
        zxid: Zxid,
    },
    /// The snapshot of a `Persist::InstallSnapshot` is durable.
    SnapshotInstalled {
        /// What it covers.
        meta: SnapshotMeta,
    },
    /// The snapshot of a `Persist::WriteSnapshot` is durable: the log before it may go. The
    /// runtime keeps its bytes (on disk) for `Output::PeerSnapshot`.
    SnapshotWritten {
        /// What it covers.
        meta: SnapshotMeta,
    },
}

/// What a node asks of the world, in the order it must happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a message to another server.
    Peer {
        /// The receiver.
        to: NodeId,
        /// The message.
        msg: PeerMessage,
    },
    /// Send another server a piece of this node's durable snapshot file
    /// ([`replication::SnapshotSend`]; [`PeerMessage::snapshot_piece_read`] reads it and
    /// builds the message). The node holds no copy of its snapshots: a state of 10^6
    /// znodes is hundreds of megabytes, sent in pieces.
    PeerSnapshot(replication::SnapshotSend),
    /// Make something durable, then report [`Persist::completion`] (the one type for
    /// every write a node asks for; [`Persist::perform`] does it on a
    /// [`crate::storage::Store`]).
    Persist(Persist),
    /// Send framed bytes to a client.
    ToClient {
        /// The connection.
        conn: ConnId,
        /// Whole frames.
        bytes: Vec<u8>,
    },
    /// Close a client connection after flushing what was sent to it.
    CloseClient {
        /// The connection.
        conn: ConnId,
    },
    /// The connection opened with a four-letter word: the runtime answers it (from
    /// `Node::status`) and closes the connection; the node has forgotten it.
    FourLetterWord {
        /// The connection.
        conn: ConnId,
        /// The word.
        word: FourLetterWord,
    },
    /// Memory the node no longer needs, handed over rather than freed inside the step:
    /// the log entries a snapshot made unnecessary, up to hundreds of megabytes, whose
    /// freeing would pause the caller for milliseconds. The runtime may free it on another
    /// thread, or just drop it.
    Release(Released),
}

/// What [`Output::Release`] hands over: only to be dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// Log entries cut after a snapshot covered them.
    pub entries: Vec<Entry>,
}

/// The state machine as a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The tree.
    pub tree: DataTree,
    /// The session table.
    pub sessions: SessionTable,
}

impl NodeSnapshot {
    /// The snapshot bytes (bincode), as `Node::new` and `Input::SnapshotWritten` take them.
    /// O(state): runtimes call it off their event loop.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard())
            .expect("the state machine always serialises")
    }

    /// [`NodeSnapshot::encode`] into `writer` as it goes, with no buffer of the whole
    /// (`storage::write_snapshot_file_with` streams it into a file). O(state).
    pub fn encode_into<W: bincode::enc::write::Writer>(
        &self,
        writer: W,
    ) -> Result<(), bincode::error::EncodeError> {
        bincode::serde::encode_into_writer(self, writer, bincode::config::standard())
    }

    /// Decodes snapshot bytes (as [`NodeSnapshot::encode`] made them). O(state).
    pub fn decode(bytes: &[u8]) -> Result<NodeSnapshot, PayloadError> {
        snapshot_decode(bytes)
    }

    /// Applies logged entries in order, as a node applies committed ones but with no
    /// connections, watches or timers: the state a stopped server's data directory holds
    /// (its snapshot, then every entry after it), for tools that read one offline
    /// (`paddock export-zookeeper`, `paddock inspect`). An entry of a member's log may
    /// not have been committed; the caller decides which entries to give. Returns how
    /// many entries changed the state; an entry whose payload does not decode, or whose
    /// txn does not fit the state, is an error naming its index.
    pub fn apply_logged(&mut self, entries: &[crate::replication::Entry]) -> Result<u64, String> {
        let mut changed = 0;
        for entry in entries {
            if entry.payload.is_empty() {
                continue;
            }
            let proposal = Proposal::decode(&entry.payload)
                .map_err(|e| format!("log entry {}: {}", entry.index, e.reason))?;
            let ProposalBody::Txn(txn) = proposal.body else {
                continue;
            };
            let applied = self.tree.apply(&txn);
            if applied
                .results
                .iter()
                .any(|r| matches!(r, OpResult::Error(_)))
                && matches!(txn.kind, TxnKind::Single(_) | TxnKind::Multi(_))
            {
                return Err(format!(
                    "log entry {} (zxid {}) does not apply: {:?}",
                    entry.index, txn.zxid, applied.results
                ));
            }
            sessions_apply(&mut self.sessions, &txn.kind, 0)
                .map_err(|e| format!("log entry {}: {e}", entry.index))?;
            changed += 1;
        }
        Ok(changed)
    }
}

/// Why `Node::new` refused its durable state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The replication state is inconsistent.
    #[error("replication: {0}")]
    Replication(#[from] ReplicaError),
    /// The snapshot bytes do not decode.
    #[error("snapshot: {0}")]
    Snapshot(PayloadError),
}

/// A summary for four-letter words and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Replication's view (role, epoch, leader, commit, followers, outstanding).
    pub replication: replication::Status,
    /// Zxid of the last applied entry.
    pub applied_zxid: Zxid,
    /// Open client connections.
    pub connections: u64,
    /// Live sessions.
    pub sessions: u64,
    /// Znodes in the tree.
    pub znodes: u64,
    /// Ephemeral znodes.
    pub ephemerals: u64,
    /// Watch counts.
    pub watches: WatchSummary,
    /// Log payloads that did not decode (always 0 unless a peer or disk misbehaves).
    pub payload_errors: u64,
    /// Invariants found broken (always 0: see `Node::breach`; a server built with debug
    /// assertions or run with `check_invariants` panics instead).
    pub invariant_breaches: u64,
    /// How long client requests waited for their answers.
    pub latency: LatencyStats,
}

/// Request latencies, ms from the frame's arrival to its answer on the node's clock, as
/// ZooKeeper's `srvr` and `mntr` report them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyStats {
    /// Requests answered.
    pub count: u64,
    /// Sum of their latencies, ms.
    pub total_ms: u64,
    /// Smallest latency, ms (0 before the first answer).
    pub min_ms: u64,
    /// Largest latency, ms.
    pub max_ms: u64,
}

impl LatencyStats {
    /// Counts one answer that took `ms`.
    pub fn record(&mut self, ms: u64) {
        self.min_ms = if self.count == 0 {
            ms
        } else {
            self.min_ms.min(ms)
        };
        self.max_ms = self.max_ms.max(ms);
        self.total_ms = self.total_ms.saturating_add(ms);
        self.count += 1;
    }

    /// Mean latency, ms (0 before the first answer).
    pub fn avg_ms(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.total_ms as f64 / self.count as f64
    }
}

/// The largest tree [`NodeConfig::check_invariants`] checks in full after every apply (its
/// structure, and the leader's prepared tree against the applied one).
pub const INVARIANT_PASS_ZNODES_MAX: usize = 10_000;

/// What a node does in the write path: the one place its behaviour forks by role. Each
/// role's state, timers and handlers live in its own module; `Node` dispatches on this
/// in `peer` (which messages each role takes), `timers_fire` and `next_deadline` (each
/// role's timers), `forward_flush` (whether waiting writes are proposed or sent),
/// `after_step` (arming those timers), `leader_changed` (which ends a leadership), client
/// requests (who hears of a session's activity), `apply_entry` (the leader's prepared
/// state follows the applied one) and `memory`.
///
/// Not replication's role: a server elected leader is a `Follower` here until it serves
/// (its epoch's first entry committed and everything committed applied, `after_step`),
/// and any change of leader or epoch makes it a `Follower` again (`leader_changed`).
#[derive(Debug)]
enum Role {
    /// Not serving as leader: its clients' writes go over its forward stream to the
    /// leader the route names (or wait while none is known, or while it is that leader).
    Follower(follower::Follower),
    /// Serving as leader: it proposes every write, expires sessions and reaps.
    Leader(leader::Leader),
}

/// Where this server's writes go, whatever its role.
#[derive(Debug, Default)]
struct Route {
    /// The epoch of the leader it names.
    epoch: Epoch,
    /// The leader; `None`: none known, writes are held.
    leader: Option<NodeId>,
    /// Writes not sent or proposed yet (no leader known, the leader is this server and
    /// not serving yet, or a serving leader out of room for proposals).
    unsent: VecDeque<Write>,
}

/// One Paddock server. See the module documentation.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    replica: replication::Replica,
    tree: DataTree,
    sessions: SessionTable,
    watches: WatchTable,
    conns: BTreeMap<ConnId, Conn>,
    session_ids: Option<SessionIdGenerator>,
    rng: ChaCha8Rng,
    /// Session passwords only: a ChaCha20 stream keyed by [`Seed::password_secret`], so
    /// a password says nothing about the node's other random choices, its start time or
    /// another server's passwords.
    passwords: ChaCha20Rng,
    /// The last entry applied to the tree, sessions and watches.
    applied: Applied,
    /// Committed entries not applied yet, in index order (at most
    /// `applied_per_step_max` are applied per step). Invariant: they follow
    /// `applied.index` one by one. A leader starts serving only once it is empty, so its
    /// prepared state starts from everything committed before it.
    apply_queue: VecDeque<Entry>,
    /// Leader or follower, with the state and timers of that role.
    role: Role,
    /// Where this server's writes go.
    route: Route,
    snapshot: Snapshots,
    counters: Counters,
}

/// How far the node has applied the log.
#[derive(Debug)]
struct Applied {
    /// Index of the last applied entry.
    index: u64,
    /// Its zxid.
    zxid: Zxid,
    /// The entries applied since the last `drain_applied` (with
    /// `NodeConfig::record_applied` only).
    log: Vec<Entry>,
}

/// The node's own snapshots.
#[derive(Debug)]
struct Snapshots {
    /// Index of the last durable snapshot (or of the snapshot installed from the leader).
    index: u64,
    /// The snapshot asked for (`Persist::WriteSnapshot`) and not durable yet.
    pending: Option<SnapshotMeta>,
    /// Payload bytes of the entries applied since the last snapshot was started.
    applied_bytes: u64,
}

/// What `NodeStatus` counts.
#[derive(Debug, Default)]
struct Counters {
    /// See [`NodeStatus::payload_errors`].
    payload_errors: u64,
    /// See [`NodeStatus::invariant_breaches`].
    invariant_breaches: u64,
    /// See [`NodeStatus::latency`].
    latency: LatencyStats,
}

/// Replication's entries to persist as disk writes of at most `batch_max` records each
/// (`Limits::log_batch_records_max`), in order, the truncation with the first: a follower
/// catching up, or a leader's burst, reaches the disk as several writes, each completed
/// (and acknowledged) on its own. A pure truncation is one write with no entries.
fn persist_batches(
    truncate_after: Option<u64>,
    entries: Vec<Entry>,
    batch_max: u32,
) -> impl Iterator<Item = Persist> {
    let batch_max = usize::try_from(batch_max).unwrap_or(usize::MAX).max(1);
    let batches = entries.len().div_ceil(batch_max).max(1);
    let mut truncate_after = truncate_after;
    let mut entries = entries.into_iter();
    (0..batches).map(move |_| Persist::Entries {
        truncate_after: truncate_after.take(),
        entries: entries.by_ref().take(batch_max).collect(),
    })
}

/// What a txn does to a session table: a createSession adds its session armed from
/// `now_ms` (an error when the id is taken), a closeSession removes its session, which
/// is returned. The applied state, the leader's prepared state and offline tools apply
/// sessions with this one function.
fn sessions_apply(
    sessions: &mut SessionTable,
    kind: &TxnKind,
    now_ms: u64,
) -> Result<Option<crate::ids::SessionId>, SessionError> {
    match kind {
        TxnKind::CreateSession {
            session,
            password,
            timeout_ms,
        } => {
            let timeout = u32::try_from(*timeout_ms).unwrap_or(0);
            sessions.create(*session, *password, timeout, now_ms)?;
            Ok(None)
        }
        TxnKind::CloseSession { session } => {
            sessions.remove(*session);
            Ok(Some(*session))
        }
        _ => Ok(None),
    }
}

/// Gives a tree the settings a snapshot does not hold: the tree's configuration and the
/// data limit.
fn tree_configure(tree: &mut DataTree, config: &NodeConfig) {
    tree.set_config(config.tree.clone());
    tree.set_data_bytes_max(config.limits.znode_data_bytes_max);
}

fn snapshot_decode(bytes: &[u8]) -> Result<NodeSnapshot, PayloadError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(s, _)| s)
        .map_err(|e| PayloadError {
            reason: e.to_string(),
        })
}

impl Node {
    /// A server starting from what recovery found on its disk (`DurableState::default()`
    /// for a fresh one). `durable.snapshot_bytes` holds a [`NodeSnapshot`] when
    /// `durable.snapshot.index > 0`. `seed` drives every random choice it makes: a plain
    /// `u64` for a reproducible node (simulator, tests), or a [`Seed`] carrying the
    /// operating system's entropy for session passwords (the real server).
    pub fn new(
        config: NodeConfig,
        durable: DurableState,
        seed: impl Into<Seed>,
    ) -> Result<Node, NodeError> {
        let state = if durable.snapshot.index > 0 {
            Some(NodeSnapshot::decode(&durable.snapshot_bytes).map_err(NodeError::Snapshot)?)
        } else {
            None
        };
        Node::with_state(config, durable, state, seed)
    }

    /// [`Node::new`] with the snapshot already decoded (`state`, required when
    /// `durable.snapshot.index > 0`; `durable.snapshot_bytes` is then not read): a runtime
    /// may decode it on another thread while it reads the log.
    pub fn with_state(
        config: NodeConfig,
        durable: DurableState,
        state: Option<NodeSnapshot>,
        seed: impl Into<Seed>,
    ) -> Result<Node, NodeError> {
        let Seed {
            rng: seed,
            password_secret,
        } = seed.into();
        let tick = NonZeroU64::new(config.tick_ms.max(1)).expect("max(1) is non-zero");
        let (mut tree, sessions) = match (durable.snapshot.index > 0, state) {
            (true, Some(snap)) => (snap.tree, snap.sessions),
            (true, None) => {
                return Err(NodeError::Snapshot(PayloadError {
                    reason: "no decoded state for a snapshot".to_owned(),
                }));
            }
            (false, _) => (DataTree::new(config.tree.clone()), SessionTable::new(tick)),
        };
        tree_configure(&mut tree, &config);
        let snapshot = durable.snapshot;
        let replica = replication::Replica::new(config.replication.clone(), durable, seed)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e55_1011_d00d_f00d);
        let passwords = ChaCha20Rng::from_seed(password_secret);
        let role = Role::Follower(follower::Follower::new(rng.random()));
        Ok(Node {
            replica,
            tree,
            sessions,
            watches: WatchTable::new(),
            conns: BTreeMap::new(),
            session_ids: None,
            rng,
            passwords,
            applied: Applied {
                index: snapshot.index,
                zxid: snapshot.zxid,
                log: Vec::new(),
            },
            apply_queue: VecDeque::new(),
            role,
            route: Route::default(),
            snapshot: Snapshots {
                index: snapshot.index,
                pending: None,
                applied_bytes: 0,
            },
            counters: Counters::default(),
            config,
        })
    }

    /// This server's id.
    pub fn id(&self) -> NodeId {
        self.config.id()
    }

    /// The configuration it runs with (the runtime reads the limits it enforces itself,
    /// such as `Limits::connections_per_ip_max`, from here).
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The applied tree (for checkers and tests).
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The applied session table.
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// The leader this server routes writes to, when one is known (itself when it
    /// leads and serves). O(1).
    pub fn leader(&self) -> Option<NodeId> {
        self.route.leader
    }

    /// This server's watches (`wchc`, `wchp`).
    pub fn watches(&self) -> &WatchTable {
        &self.watches
    }

    /// Zxid of the last applied entry.
    pub fn applied_zxid(&self) -> Zxid {
        self.applied.zxid
    }

    /// Index of the last applied entry.
    pub fn applied_index(&self) -> u64 {
        self.applied.index
    }

    /// The entries applied since the last call, in order (only with
    /// `NodeConfig::record_applied`; a snapshot install skips indexes).
    pub fn drain_applied(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.applied.log)
    }

    /// The replication role (a leader is `Leader` from its election on, before it
    /// serves: see [`Node::is_leader`]).
    pub fn role(&self) -> replication::Role {
        self.replica.role()
    }

    /// True once this node leads and serves (its epoch's first entry committed and
    /// applied).
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    /// A summary for four-letter words. The runtime calls it every few hundred ms and on
    /// every four-letter word, on its event loop, so it costs O(members + sessions), never
    /// O(tree) or O(watches): the tree digest is for the simulator's checkers
    /// (`tree().digest()`), and the watch count is kept as watches change.
    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            replication: self.replica.status(),
            applied_zxid: self.applied.zxid,
            connections: self.conns.len() as u64,
            sessions: self.sessions.len() as u64,
            znodes: self.tree.node_count() as u64,
            ephemerals: crate::work::background(|| {
                crate::work::visit(self.tree.ephemerals().len() as u64);
                self.tree
                    .ephemerals()
                    .values()
                    .map(|s| s.len() as u64)
                    .sum()
            }),
            watches: self.watches.summary(),
            payload_errors: self.counters.payload_errors,
            invariant_breaches: self.counters.invariant_breaches,
            latency: self.counters.latency,
        }
    }

    /// The replication layer's status alone: O(ensemble size), unlike [`Node::status`], which also
    /// counts ephemerals across sessions (what a timer that only watches the role needs).
    pub fn replication_status(&self) -> replication::Status {
        self.replica.status()
    }

    /// Where the replicated log starts (the index its first entry follows) and its last
    /// index (what a checker compares between servers).
    pub fn log_span(&self) -> (u64, u64) {
        self.replica.log_span()
    }

    /// The zxid of the log entry at `index` (the log snapshot's at its start), or `None`
    /// when compacted away or beyond the end.
    pub fn log_zxid_at(&self, index: u64) -> Option<Zxid> {
        self.replica.zxid_at(index)
    }

    /// When the node next needs an `Input::Tick`.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.apply_queue.is_empty() {
            // Committed entries wait: the next step should come at once.
            return Some(0);
        }
        let own = match &self.role {
            Role::Leader(leader) => Some(leader.next_deadline()),
            Role::Follower(follower) => follower.next_deadline(),
        };
        match (self.replica.next_deadline(), own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Feeds one input; appends what the world must do to `out`.
    pub fn step(&mut self, now_ms: u64, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::Tick => {
                self.replica_step(now_ms, replication::Input::Tick, out);
                self.timers_fire(now_ms, out);
            }
            Input::Peer { from, msg } => self.peer(now_ms, from, msg, out),
            Input::ClientConnected { conn, addr } => {
                if self.conns.contains_key(&conn) {
                    self.breach(|| format!("connection id {conn:?} reused while open"));
                    self.conn_forget(conn);
                }
                self.conns
                    .insert(conn, Conn::new(addr, self.config.limits.frame_bytes_max));
            }
            Input::ClientAuthenticated { conn, id } => {
                if let Some(conn) = self.conns.get_mut(&conn) {
                    conn.add_identity(id);
                }
            }
            Input::ClientBytes { conn, bytes } => self.client_bytes(now_ms, conn, &bytes, out),
            Input::ClientDisconnected { conn } => self.conn_forget(conn),
            Input::HardStatePersisted { hard_state } => {
                self.replica_step(
                    now_ms,
                    replication::Input::HardStatePersisted { hard_state },
                    out,
                );
            }
            Input::Persisted { index, zxid } => {
                self.replica_step(now_ms, replication::Input::Persisted { index, zxid }, out);
            }
            Input::SnapshotInstalled { meta } => {
                self.replica_step(now_ms, replication::Input::SnapshotInstalled { meta }, out);
            }
            Input::SnapshotWritten { meta } => self.snapshot_written(meta, out),
        }
        self.apply_queued(now_ms, out);
        self.after_step(now_ms, out);
    }

    fn peer(&mut self, now_ms: u64, from: NodeId, msg: PeerMessage, out: &mut Vec<Output>) {
        match (self.is_leader(), msg) {
            (_, PeerMessage::Replication(msg)) => {
                self.replica_step(now_ms, replication::Input::Message { from, msg }, out);
            }
            (_, PeerMessage::ForwardRefused { origin }) => {
                if origin.node == self.id() {
                    self.conn_close(origin.conn, out);
                }
            }
            (
                true,
                PeerMessage::Forward {
                    epoch,
                    stream,
                    first_seq,
                    writes,
                },
            ) => self.leader_forwarded(now_ms, from, (epoch, stream), first_seq, writes, out),
            (true, PeerMessage::Touch { sessions }) => self.leader_touched(now_ms, sessions),
            (
                false,
                PeerMessage::ForwardAck {
                    epoch,
                    stream,
                    next_seq,
                },
            ) => self.follower_acked(from, (epoch, stream), next_seq),
            // The other end's messages: a follower takes no forwarded writes or touches,
            // a leader no acknowledgements (late, for a role this server left).
            (false, PeerMessage::Forward { .. } | PeerMessage::Touch { .. })
            | (true, PeerMessage::ForwardAck { .. }) => {}
        }
    }

    /// Steps replication and routes what it produced; applies committed entries at once.
    fn replica_step(&mut self, now_ms: u64, input: replication::Input, out: &mut Vec<Output>) {
        let mut produced = Vec::new();
        // A refused input is a stale or malformed message: ignoring it is always safe.
        let _ = self.replica.step(now_ms, input, &mut produced);
        self.replica_outputs(now_ms, produced, out);
    }

    fn replica_outputs(
        &mut self,
        now_ms: u64,
        produced: Vec<replication::Output>,
        out: &mut Vec<Output>,
    ) {
        for output in produced {
            match output {
                replication::Output::Send { to, msg } => {
                    out.push(Output::Peer {
                        to,
                        msg: PeerMessage::Replication(msg),
                    });
                }
                replication::Output::SendSnapshot(send) => out.push(Output::PeerSnapshot(send)),
                replication::Output::PersistHardState { hard_state } => {
                    out.push(Output::Persist(Persist::HardState(hard_state)));
                }
                replication::Output::PersistEntries {
                    truncate_after,
                    entries,
                } => {
                    let batch_max = self.config.limits.log_batch_records_max;
                    out.extend(
                        persist_batches(truncate_after, entries, batch_max).map(Output::Persist),
                    );
                }
                replication::Output::InstallSnapshot { meta, bytes } => {
                    // Entries waiting to be applied are older than the snapshot, which
                    // covers more than was committed.
                    self.apply_queue.clear();
                    self.install_snapshot(meta, &bytes, out);
                    out.push(Output::Persist(Persist::InstallSnapshot { meta, bytes }));
                }
                replication::Output::Resynced => out.push(Output::Persist(Persist::LogResynced)),
                replication::Output::Committed { entries } => {
                    // planted bug: apply-out-of-order (a batch ordered by zxid counter).
                    #[cfg(feature = "planted-bugs")]
                    let entries = {
                        let mut entries = entries;
                        if self.config.bug == Some(crate::bugs::Bug::ApplyOutOfOrder) {
                            entries.sort_by_key(|e| e.zxid.counter());
                        }
                        entries
                    };
                    self.apply_queue.extend(entries);
                }
                replication::Output::LeaderChanged { epoch, leader } => {
                    self.leader_changed(now_ms, epoch, leader, out);
                }
            }
        }
    }

    /// Applies up to `applied_per_step_max` of the committed entries waiting.
    fn apply_queued(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        for _ in 0..self.config.applied_per_step_max.max(1) {
            let Some(entry) = self.apply_queue.pop_front() else {
                return;
            };
            self.apply_entry(now_ms, &entry, out);
        }
    }

    /// Replaces the state by a snapshot from the leader. The changes it carries fire no
    /// watches, so every client connection here is closed: clients reconnect and re-send
    /// their watches with setWatches, which reports the changes they missed (ZooKeeper's
    /// learners likewise drop their clients when they resync by snapshot).
    fn install_snapshot(&mut self, meta: SnapshotMeta, bytes: &[u8], out: &mut Vec<Output>) {
        // Decoding visits every znode: snapshot work, accounted as housekeeping.
        match crate::work::background(|| snapshot_decode(bytes)) {
            Ok(snap) => {
                let conns: Vec<ConnId> = self.conns.keys().copied().collect();
                for conn in conns {
                    self.conn_close(conn, out);
                }
                self.tree = snap.tree;
                tree_configure(&mut self.tree, &self.config);
                self.sessions = snap.sessions;
                self.applied.index = meta.index;
                self.applied.zxid = meta.zxid;
                self.snapshot.index = meta.index;
                self.snapshot.applied_bytes = 0;
                self.snapshot.pending = None;
            }
            Err(_) => self.counters.payload_errors += 1,
        }
    }

    fn snapshot_written(&mut self, meta: SnapshotMeta, out: &mut Vec<Output>) {
        if self.snapshot.pending != Some(meta) {
            return;
        }
        self.snapshot.pending = None;
        self.snapshot.index = meta.index;
        // Refused only if a leader's snapshot was installed meanwhile: nothing to offer or
        // cut then.
        if self.replica.snapshot_offer(meta).is_err() {
            return;
        }
        // planted bug: unbounded-log-retention (the log is never cut behind a snapshot).
        #[cfg(feature = "planted-bugs")]
        if self.config.bug == Some(crate::bugs::Bug::UnboundedLogRetention) {
            return;
        }
        let cut = self
            .replica
            .log_index_keeping_bytes(meta.index, self.config.snapshot_log_kept_bytes);
        if let Ok((_, entries)) = self.replica.compact_log_taking(cut)
            && !entries.is_empty()
        {
            out.push(Output::Release(Released { entries }));
        }
    }

    /// Applies one committed entry to the tree, sessions and watches, and answers its
    /// origin if the client is connected here.
    fn apply_entry(&mut self, now_ms: u64, entry: &Entry, out: &mut Vec<Output>) {
        let in_order = entry.index == self.applied.index + 1;
        // planted bug: apply-out-of-order (the order check is what the bug lacks).
        #[cfg(feature = "planted-bugs")]
        let in_order = in_order || self.config.bug == Some(crate::bugs::Bug::ApplyOutOfOrder);
        if !in_order {
            // Applying it would fork this server's state from the ensemble's: stop here.
            let applied_index = self.applied.index;
            self.breach(|| format!("entry {} applied after {applied_index}", entry.index));
            return;
        }
        self.applied.index = self.applied.index.max(entry.index);
        self.applied.zxid = entry.zxid;
        self.snapshot.applied_bytes += entry.payload.len() as u64;
        if self.config.record_applied {
            self.applied.log.push(entry.clone());
        }
        if entry.payload.is_empty() {
            return;
        }
        let pending = match &mut self.role {
            Role::Leader(leader) => leader.proposal_take(entry, self.config.check_invariants),
            Role::Follower(_) => None,
        };
        let proposal = match pending {
            Some(proposal) => proposal,
            None => match Proposal::decode(&entry.payload) {
                Ok(p) => p,
                Err(_) => {
                    self.counters.payload_errors += 1;
                    return;
                }
            },
        };
        match proposal.body {
            ProposalBody::Txn(txn) => {
                let applied = self.tree.apply(&txn);
                // The leader prepared it against the very state it is applied to, so every
                // op of a write applies (a reaped container may be gone, which is fine).
                let write = matches!(txn.kind, TxnKind::Single(_) | TxnKind::Multi(_));
                if write
                    && applied
                        .results
                        .iter()
                        .any(|r| matches!(r, OpResult::Error(_)))
                {
                    let results = applied.results.clone();
                    self.breach(|| {
                        format!("committed txn {:?} did not apply: {results:?}", txn.zxid)
                    });
                }
                // A full pass over the tree after every apply: affordable on the
                // simulator's small trees only.
                if self.config.check_invariants
                    && self.tree.node_count() <= INVARIANT_PASS_ZNODES_MAX
                {
                    self.tree.assert_invariants();
                }
                if let Role::Leader(leader) = &mut self.role {
                    leader.applied(&self.tree, txn.zxid, self.config.check_invariants);
                }
                let mut closed = None;
                match sessions_apply(&mut self.sessions, &txn.kind, now_ms) {
                    Ok(Some(session)) => {
                        if let Role::Leader(leader) = &mut self.role {
                            leader.session_closed(session);
                        }
                        closed = Some(session);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        self.breach(|| format!("committed session open failed: {error}"));
                    }
                }
                let events = self
                    .watches
                    .trigger_with_acls(&applied.changes, &applied.change_acls);
                for (conn, event, acl) in events {
                    self.conn_event_checked(conn, &event, acl, out);
                }
                if let Some(origin) = proposal.origin.filter(|o| o.node == self.id()) {
                    self.conn_write_done(now_ms, origin, client::Done::Txn(&txn, &applied), out);
                }
                if let Some(session) = closed {
                    self.close_session_conns(session, out);
                }
            }
            ProposalBody::Failed { error } => {
                if let Some(origin) = proposal.origin.filter(|o| o.node == self.id()) {
                    self.conn_write_done(now_ms, origin, client::Done::Failed(error), out);
                }
            }
            ProposalBody::Sync => {
                if let Some(origin) = proposal.origin.filter(|o| o.node == self.id()) {
                    self.conn_write_done(now_ms, origin, client::Done::Sync, out);
                }
            }
        }
    }

    /// An invariant this node relies on does not hold: a bug, here or in the runtime, or a
    /// peer outside the fault model. Panics where invariants are checked (debug builds, and
    /// `NodeConfig::check_invariants`, so the simulator and the tests fail on it); a
    /// release server counts it in [`NodeStatus::invariant_breaches`] and goes on, its
    /// caller having refused what would break it further.
    fn breach(&mut self, what: impl FnOnce() -> String) {
        if cfg!(debug_assertions) || self.config.check_invariants {
            panic!("invariant breach: {}", what());
        }
        self.counters.invariant_breaches += 1;
    }

    /// Leadership moved (or a new epoch began). Writes already sent to the old leader may
    /// or may not commit: their connections are closed so their clients learn the outcome
    /// is unknown (ZooKeeper's followers drop every connection in that case).
    ///
    /// Any change ends a leadership: replication reports only changes of `(epoch,
    /// leader)`, and a serving leader is `(route.epoch, this server)`.
    fn leader_changed(
        &mut self,
        now_ms: u64,
        epoch: Epoch,
        leader: Option<NodeId>,
        out: &mut Vec<Output>,
    ) {
        let stream = self.rng.random();
        if self.is_leader() {
            self.sessions_reset(now_ms);
            self.role = Role::Follower(follower::Follower::new(stream));
        }
        let stale: BTreeSet<ConnId> = self
            .follower_restart(stream)
            .into_iter()
            .chain(
                self.conns
                    .iter()
                    .filter(|(_, c)| c.has_sent_writes())
                    .map(|(id, _)| *id),
            )
            .collect();
        self.route.epoch = epoch;
        self.route.leader = leader;
        for conn in stale {
            self.conn_close(conn, out);
        }
    }

    /// Queues a write for the leader; `after_step` sends it.
    pub(super) fn forward_submit(&mut self, write: Write) {
        self.route.unsent.push_back(write);
    }

    /// Sends the writes waiting in the route to the leader, or proposes them when this
    /// server leads and serves. Returns true when something was proposed (replication
    /// then needs a step to send it).
    fn forward_flush(&mut self, now_ms: u64, out: &mut Vec<Output>) -> bool {
        if self.route.unsent.is_empty() {
            return false;
        }
        let Some(leader) = self.route.leader else {
            return false;
        };
        match self.role {
            Role::Leader(_) => self.leader_take_unsent(now_ms, out),
            // Elected, not serving yet: the writes wait for `lead_start`.
            Role::Follower(_) if leader == self.id() => false,
            Role::Follower(_) => {
                self.follower_send(now_ms, leader, out);
                false
            }
        }
    }

    /// Work that follows any input: start serving as leader once ready, send held
    /// writes, arm the role's timers, take a snapshot when due.
    fn after_step(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let status = self.replica.status();
        if status.leader_ready
            && !self.is_leader()
            && status.leader == Some(self.id())
            && self.apply_queue.is_empty()
        {
            self.lead_start(now_ms);
        }
        // One round, after this step's applies: the writes they released go to the leader
        // (or are proposed here) now; anything the flush releases in turn (nothing, as it
        // fires no timer and applies nothing) would wait for the next step.
        if self.forward_flush(now_ms, out) {
            self.proposals_flush(now_ms, out);
        }
        match &self.role {
            Role::Leader(leader) if leader.expiry_at_unset() => self.leader_expiry_arm(),
            Role::Leader(_) => {}
            Role::Follower(_) => self.follower_touch_arm(now_ms),
        }
        self.snapshot_maybe(out);
    }

    /// Forgets closing marks a former leadership left in the applied session table (a
    /// close it proposed may never commit) and re-arms every deadline from `now_ms`.
    fn sessions_reset(&mut self, now_ms: u64) {
        let tick = self.sessions.tick_ms();
        let mut fresh = SessionTable::new(tick);
        crate::work::background(|| {
            for s in self.sessions.iter() {
                let _ = fresh.create(s.id, s.password, s.timeout_ms, now_ms);
            }
        });
        self.sessions = fresh;
    }

    fn snapshot_maybe(&mut self, out: &mut Vec<Output>) {
        let due_by_count =
            self.applied.index >= self.snapshot.index + self.config.snapshot_every_entries;
        let due_by_bytes = self.applied.index > self.snapshot.index
            && self.snapshot.applied_bytes >= self.config.snapshot_every_bytes;
        if self.snapshot.pending.is_some() || !(due_by_count || due_by_bytes) {
            return;
        }
        self.snapshot.applied_bytes = 0;
        let meta = SnapshotMeta {
            index: self.applied.index,
            zxid: self.applied.zxid,
        };
        let state = Box::new(NodeSnapshot {
            tree: self.tree.clone(),
            sessions: self.sessions.clone(),
        });
        out.push(Output::Persist(Persist::WriteSnapshot { meta, state }));
        self.snapshot.pending = Some(meta);
    }

    /// Fires the role's timers that are due.
    fn timers_fire(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        // A leader's timers may step it down (they step replication); a follower's
        // timers of the role it then takes are not armed yet.
        self.leader_timers(now_ms, out);
        self.follower_timers(now_ms, out);
    }
}

#[cfg(test)]
mod breach_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::Ipv4Addr;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    /// A fresh single-server node, seed 5.
    pub(super) fn node(check_invariants: bool) -> Node {
        let id = crate::ids::NodeId(1);
        let mut config = NodeConfig::new(id, [id].into());
        config.check_invariants = check_invariants;
        Node::new(config, crate::replication::DurableState::default(), 5).unwrap()
    }

    fn connect(conn: u64) -> Input {
        Input::ClientConnected {
            conn: ConnId(conn),
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    // A connection id the runtime reuses while it is open is a breach: a panic where
    // invariants are checked; else counted, and the old connection's state is dropped
    // rather than mixed into the new one's.
    #[test]
    fn a_reused_connection_id_is_a_breach() {
        let mut checked = node(true);
        let mut out = Vec::new();
        checked.step(0, connect(1), &mut out);
        let again = catch_unwind(AssertUnwindSafe(|| checked.step(0, connect(1), &mut out)));
        assert!(again.is_err(), "no panic with check_invariants");

        let mut server = node(false);
        server.step(0, connect(1), &mut out);
        server.step(0, connect(2), &mut out);
        let again = catch_unwind(AssertUnwindSafe(|| server.step(0, connect(1), &mut out)));
        if cfg!(debug_assertions) {
            assert!(again.is_err(), "no panic in a debug build");
        } else {
            assert!(again.is_ok());
            let status = server.status();
            assert_eq!((status.invariant_breaches, status.connections), (1, 2));
        }
    }
}

#[cfg(test)]
mod snapshot_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::acl::Acl;
    use crate::ids::SessionId;
    use crate::tree::{CreateOp, CreateOpcode, Op, OpContext};

    // A committed entry whose payload does not decode is counted as a payload error and
    // changes nothing but the applied index (it is still applied, in its turn).
    #[test]
    fn an_undecodable_entry_is_counted_and_skipped() {
        let mut node = super::breach_tests::node(false);
        let digest = node.tree.digest();
        let entry = Entry {
            index: 1,
            zxid: Zxid::new(Epoch(1), 1),
            payload: b"not a proposal".to_vec(),
        };
        let mut out = Vec::new();
        node.apply_entry(0, &entry, &mut out);
        assert_eq!(node.status().payload_errors, 1);
        assert_eq!(node.applied_index(), 1);
        assert_eq!(node.tree.digest(), digest);
        assert!(out.is_empty(), "{out:?}");
    }

    // A snapshot whose bytes do not decode is counted as a payload error and installs
    // nothing: the state, its indexes and the connections stay as they were.
    #[test]
    fn an_undecodable_snapshot_is_counted_and_not_installed() {
        let mut node = super::breach_tests::node(false);
        let digest = node.tree.digest();
        let meta = SnapshotMeta {
            index: 9,
            zxid: Zxid(9),
        };
        let mut out = Vec::new();
        node.install_snapshot(meta, b"not a snapshot", &mut out);
        node.install_snapshot(meta, &[], &mut out);
        assert_eq!(node.status().payload_errors, 2);
        assert_eq!(node.applied_index(), 0);
        assert_eq!(node.tree.digest(), digest);
        assert!(out.is_empty(), "{out:?}");
    }

    // A snapshot is a copy of the state as of its taking: later writes to the tree do not
    // reach it, and its bytes decode back to that state.
    #[test]
    fn snapshot_state_is_frozen_and_round_trips() {
        let mut tree = DataTree::new(TreeConfig::default());
        let create = |path: &str| {
            Op::Create(CreateOp {
                opcode: CreateOpcode::Create,
                path: path.into(),
                data: Some(b"x".to_vec()),
                acl: Acl::open_unsafe(),
                flags: 0,
            })
        };
        let ctx = |zxid: u64| OpContext {
            zxid: Zxid(zxid),
            time_ms: 1,
            session: SessionId(1),
            session_live: true,
            ids: Vec::new(),
        };
        let txn = tree.prepare(&create("/a"), &ctx(1)).unwrap();
        tree.apply(&txn);
        let mut sessions = SessionTable::new(NonZeroU64::new(2000).unwrap());
        sessions
            .create(SessionId(0x42), [7; 16], 6000, 1_000)
            .unwrap();
        let state = NodeSnapshot {
            tree: tree.clone(),
            sessions: sessions.clone(),
        };
        let digest = tree.digest();
        let txn = tree.prepare(&create("/a/b"), &ctx(2)).unwrap();
        tree.apply(&txn);
        assert_ne!(tree.digest(), digest);
        assert_eq!(state.tree.digest(), digest);
        let back = snapshot_decode(&state.encode()).unwrap();
        assert_eq!(back.tree.digest(), digest);
        assert_eq!(back.tree, state.tree);
        assert_eq!(back.sessions, sessions);
        back.tree.assert_invariants();
    }
}

#[cfg(test)]
mod persist_tests {
    use super::*;

    fn entries(indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
        indexes
            .map(|index| Entry {
                index,
                zxid: Zxid::new(Epoch(1), u32::try_from(index).unwrap_or(u32::MAX)),
                payload: vec![1],
            })
            .collect()
    }

    fn shape(batches: impl Iterator<Item = Persist>) -> Vec<(Option<u64>, Vec<u64>)> {
        batches
            .map(|p| match p {
                Persist::Entries {
                    truncate_after,
                    entries,
                } => (truncate_after, entries.iter().map(|e| e.index).collect()),
                other => panic!("not an entries write: {other:?}"),
            })
            .collect()
    }

    // Five entries at two per write are three writes, in order, the truncation with the
    // first; a batch within the bound, or a pure truncation, is one write.
    #[test]
    fn entries_are_persisted_in_writes_of_at_most_log_batch_records_max() {
        assert_eq!(
            shape(persist_batches(Some(3), entries(4..=8), 2)),
            vec![(Some(3), vec![4, 5]), (None, vec![6, 7]), (None, vec![8])]
        );
        assert_eq!(
            shape(persist_batches(None, entries(1..=4), 4)),
            vec![(None, vec![1, 2, 3, 4])]
        );
        assert_eq!(
            shape(persist_batches(Some(7), Vec::new(), 2)),
            vec![(Some(7), vec![])]
        );
    }
}

#[cfg(test)]
mod value_tests {
    use super::{LatencyStats, SaslUsers, Seed};

    // Debug output (logs, panics) names the SASL users and never their passwords.
    #[test]
    fn sasl_users_print_without_passwords() {
        let users = SaslUsers {
            users: [("alice".to_owned(), "s3cret-pw".to_owned())].into(),
            super_user: Some("alice".to_owned()),
        };
        let printed = format!("{users:?}");
        assert_eq!(
            printed,
            "SaslUsers { users: [\"alice\"], super_user: Some(\"alice\") }"
        );
        assert!(!printed.contains("s3cret-pw"));
    }

    // Each reproducible seed derives its own password key: no two of the first 64 share
    // one (a key that ignored some of the seed's bits would).
    #[test]
    fn seeds_derive_distinct_password_keys() {
        let keys: std::collections::BTreeSet<[u8; 32]> =
            (0..64).map(|n| Seed::from(n).password_secret).collect();
        assert_eq!(keys.len(), 64);
    }

    // Each seed numbers its own forwarding stream: no two of the first 64 share one (a
    // stream drawn from only some of the seed's bits would, and a leader would take a
    // restarted server's new stream for its old one).
    #[test]
    fn seeds_draw_distinct_forwarding_streams() {
        use crate::ids::NodeId;
        let streams: std::collections::BTreeSet<u64> = (0..64)
            .map(|n| {
                let config = super::NodeConfig::new(NodeId(1), [NodeId(1)].into());
                let durable = crate::replication::DurableState::default();
                let node = super::Node::new(config, durable, n).expect("a fresh node starts");
                match &node.role {
                    super::Role::Follower(follower) => follower.stream(),
                    super::Role::Leader(_) => panic!("a node starts as a follower"),
                }
            })
            .collect();
        assert_eq!(streams.len(), 64);
    }

    // min, max, count, sum and mean of the answers recorded, as `srvr` prints them; all
    // 0 before the first.
    #[test]
    fn latency_stats_keep_min_max_and_mean() {
        let mut stats = LatencyStats::default();
        assert_eq!(stats.avg_ms(), 0.0);
        for ms in [4, 1, 7, 0, 3] {
            stats.record(ms);
        }
        assert_eq!(
            stats,
            LatencyStats {
                count: 5,
                total_ms: 15,
                min_ms: 0,
                max_ms: 7,
            }
        );
        assert_eq!(stats.avg_ms(), 3.0);
        let mut one = LatencyStats::default();
        one.record(5);
        assert_eq!((one.min_ms, one.max_ms, one.avg_ms()), (5, 5, 5.0));
    }
}
