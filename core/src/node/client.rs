//! Client connections: the handshake, the per-connection FIFO queue, reads answered
//! locally, writes handed to the leader and answered once applied.
//!
//! The queue keeps ZooKeeper's ordering promises: replies leave in request order; a
//! read runs only when every earlier request of its connection has been answered, so it
//! sees that connection's earlier writes; a write is handed to the leader only when no
//! read is queued before it, so a read never sees a write the client sent after it.

use std::collections::VecDeque;
use std::net::IpAddr;

use super::message::{Origin, Write, WriteOp};
use super::{LatencyStats, Node, Output, reply};
use crate::acl::{self, Id};
use crate::error::ZkError;
use crate::ids::{ConnId, SessionId, Zxid};
use crate::sasl::{self, DigestMd5Server, Step};
use crate::session::{SessionIdGenerator, generate_password, negotiate_timeout};
use crate::tree::{
    Applied, CheckOp, CreateOp, CreateOpcode, DeleteOp, MultiOp as TreeMultiOp, Op, ReadOp,
    SetAclOp, SetDataOp, Txn,
};
use crate::watch::{SetWatchesLists, WatchKind, WatcherType};
use crate::wire::{
    self, ClientInfo, ConnectionStart, ErrorResponse, FrameSplitter, GetAclResponse,
    GetChildren2Response, GetDataResponse, MultiOp, MultiReadOp, OpCode, Request, Response,
    SaslToken,
};
use rand::Rng as _;

/// Requests one connection may have queued before it is closed as abusive.
const QUEUE_REQUESTS_MAX: usize = 4096;
/// Bytes of request frames one connection may have queued (received, not yet answered)
/// before it is closed as abusive: 64 requests of the largest size in flight at once.
pub const QUEUE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Frames a client may send before its session is set up.
pub const EARLY_FRAMES_MAX: usize = 1024;
/// Bytes of those frames held while its session is set up.
pub const EARLY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the ConnectRequest.
    AwaitConnect,
    /// The session is being created or revalidated; later frames wait.
    Connecting,
    /// Serving requests.
    Open,
}

/// What a connect or resume is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WriteKind {
    /// Any tree write or sync.
    Plain,
    /// A sync (answered with its path).
    Sync { path: String },
    /// closeSession: answered, then the connection closes.
    CloseSession,
    /// A new session being created.
    Connect {
        session: SessionId,
        password: [u8; 16],
        timeout_ms: u32,
    },
    /// A resume, revalidated once this server caught up with the leader.
    Resume {
        session: SessionId,
        password: Vec<u8>,
        timeout_ms: u32,
    },
}

#[derive(Debug)]
enum Item {
    /// Answered from local state when it reaches the front.
    Local(Request),
    /// Goes through the log.
    Write {
        /// The write until it is handed to the leader.
        write: Option<Write>,
        /// Handed over and maybe proposed: its fate is unknown if leadership changes.
        sent: bool,
        kind: WriteKind,
        /// Frames to send once it reaches the front, and whether to close after them.
        answer: Option<(Vec<u8>, bool)>,
    },
}

#[derive(Debug)]
struct Pending {
    seq: u64,
    xid: i32,
    item: Item,
    /// Bytes of the request's frame, counted in `Conn::queued_bytes` until answered.
    frame_bytes: usize,
    /// When its frame arrived, ms: the answer's latency counts from here.
    received_ms: u64,
    /// ZooKeeper's four-letter name of its operation (`cons` shows the last one).
    op: &'static str,
}

/// What `cons` shows of one connection, as ZooKeeper's `dumpConnectionInfo` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnStats {
    /// Its session, once established.
    pub session: Option<SessionId>,
    /// The session's negotiated timeout, ms.
    pub timeout_ms: Option<u32>,
    /// Requests received and not answered yet.
    pub queued: u64,
    /// The last answered operation (`PING`, `SESS`, `GETD`, ...; `NA` before any).
    pub last_op: &'static str,
    /// Xid of the last answered request.
    pub last_xid: i32,
    /// The server's zxid when it sent the last answer (all ones, ZooKeeper's -1, before
    /// any).
    pub last_zxid: u64,
    /// Latency of the last answer, ms.
    pub last_latency_ms: u64,
    /// Latencies of every answer on this connection.
    pub latency: LatencyStats,
}

impl ConnStats {
    fn new() -> ConnStats {
        ConnStats {
            session: None,
            timeout_ms: None,
            queued: 0,
            last_op: "NA",
            last_xid: 0,
            last_zxid: u64::MAX,
            last_latency_ms: 0,
            latency: LatencyStats::default(),
        }
    }
}

/// ZooKeeper's four-letter name of an operation, as `cons` prints it after `lop=`.
fn op_name(op: i32) -> &'static str {
    match OpCode::try_from(op) {
        Ok(OpCode::Ping) => "PING",
        Ok(OpCode::CreateSession) => "SESS",
        Ok(OpCode::CloseSession) => "CLOS",
        Ok(OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
            "CREA"
        }
        Ok(OpCode::Delete | OpCode::DeleteContainer) => "DELE",
        Ok(OpCode::SetData) => "SETD",
        Ok(OpCode::SetAcl) => "SETA",
        Ok(OpCode::Reconfig) => "RECO",
        Ok(OpCode::Check) => "CHEC",
        Ok(OpCode::Multi) => "MULT",
        Ok(OpCode::MultiRead) => "MLTR",
        Ok(OpCode::Sync) => "SYNC",
        Ok(OpCode::Exists) => "EXIS",
        Ok(OpCode::GetData) => "GETD",
        Ok(OpCode::GetAcl) => "GETA",
        Ok(OpCode::GetChildren | OpCode::GetChildren2) => "GETC",
        Ok(OpCode::GetAllChildrenNumber) => "GETACN",
        Ok(OpCode::GetEphemerals) => "GETE",
        Ok(OpCode::SetWatches | OpCode::SetWatches2) => "SETW",
        Ok(OpCode::CheckWatches) => "CHKW",
        Ok(OpCode::RemoveWatches) => "REMW",
        Ok(OpCode::AddWatch) => "ADDW",
        Ok(OpCode::WhoAmI) => "HOMI",
        Ok(OpCode::Auth) => "AUTH",
        _ => "NA",
    }
}

/// One client connection.
#[derive(Debug)]
pub(super) struct Conn {
    ids: Vec<Id>,
    start: Vec<u8>,
    started: bool,
    splitter: FrameSplitter,
    phase: Phase,
    session: Option<SessionId>,
    read_only_byte: bool,
    queue: VecDeque<Pending>,
    /// Sum of `frame_bytes` over `queue`: bounded by [`QUEUE_BYTES_MAX`].
    queued_bytes: usize,
    next_seq: u64,
    early: VecDeque<Vec<u8>>,
    /// Sum of the lengths of `early`: bounded by [`EARLY_BYTES_MAX`].
    early_bytes: usize,
    stats: ConnStats,
    /// Its SASL exchange, once it sent a SASL request.
    sasl: Option<Box<DigestMd5Server>>,
}

/// How a write ended, for its answer.
pub(super) enum Done<'a> {
    /// The transaction was applied.
    Txn(&'a Txn, &'a Applied),
    /// The write failed validation at the leader.
    Failed(ZkError),
    /// A sync (or a resume's revalidation) went through the log.
    Sync,
}

impl Conn {
    /// Bytes of requests received and not answered yet.
    pub(super) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Adds an identity the connection proved (once).
    pub(super) fn add_identity(&mut self, id: Id) {
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }

    pub(super) fn new(addr: IpAddr, frame_bytes_max: u32) -> Conn {
        Conn {
            ids: vec![Id::new("ip", &addr.to_string())],
            start: Vec::new(),
            started: false,
            splitter: FrameSplitter::new(frame_bytes_max),
            phase: Phase::AwaitConnect,
            session: None,
            read_only_byte: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
            next_seq: 0,
            early: VecDeque::new(),
            early_bytes: 0,
            stats: ConnStats::new(),
            sasl: None,
        }
    }

    /// True when a write of this connection reached a leader and is not answered.
    pub(super) fn has_sent_writes(&self) -> bool {
        self.queue.iter().any(|p| {
            matches!(
                p.item,
                Item::Write {
                    sent: true,
                    answer: None,
                    ..
                }
            )
        })
    }

    /// The session this connection is attached to.
    pub(super) fn session(&self) -> Option<SessionId> {
        self.session
    }
}

fn tree_create(opcode: CreateOpcode, r: wire::CreateRequest) -> CreateOp {
    CreateOp {
        opcode,
        path: r.path,
        data: r.data,
        acl: r.acl,
        flags: r.flags,
    }
}

fn tree_create_ttl(r: wire::CreateTtlRequest) -> CreateOp {
    CreateOp {
        opcode: CreateOpcode::CreateTtl { ttl_ms: r.ttl_ms },
        path: r.path,
        data: r.data,
        acl: r.acl,
        flags: r.flags,
    }
}

fn tree_multi_op(op: MultiOp) -> TreeMultiOp {
    match op {
        MultiOp::Create(r) => TreeMultiOp::Create(tree_create(CreateOpcode::Create, r)),
        MultiOp::Create2(r) => TreeMultiOp::Create(tree_create(CreateOpcode::Create2, r)),
        MultiOp::CreateContainer(r) => {
            TreeMultiOp::Create(tree_create(CreateOpcode::CreateContainer, r))
        }
        MultiOp::CreateTtl(r) => TreeMultiOp::Create(tree_create_ttl(r)),
        MultiOp::Delete(r) => TreeMultiOp::Delete(DeleteOp {
            path: r.path,
            version: r.version,
        }),
        MultiOp::SetData(r) => TreeMultiOp::SetData(SetDataOp {
            path: r.path,
            data: r.data,
            version: r.version,
        }),
        MultiOp::Check(r) => TreeMultiOp::Check(CheckOp {
            path: r.path,
            version: r.version,
        }),
    }
}

/// A request sorted by where it is answered.
enum Classified {
    /// Through the log: what to do and how to answer.
    Write(WriteOp, WriteKind),
    /// From local state.
    Local(Request),
}

/// Splits a request into a write (what to do, how to answer) or a local request.
fn classify(request: Request, session: SessionId) -> Classified {
    let tree = |op| Classified::Write(WriteOp::Tree(op), WriteKind::Plain);
    match request {
        Request::Create(r) => tree(Op::Create(tree_create(CreateOpcode::Create, r))),
        Request::Create2(r) => tree(Op::Create(tree_create(CreateOpcode::Create2, r))),
        Request::CreateContainer(r) => {
            tree(Op::Create(tree_create(CreateOpcode::CreateContainer, r)))
        }
        Request::CreateTtl(r) => tree(Op::Create(tree_create_ttl(r))),
        Request::Delete(r) => tree(Op::Delete(DeleteOp {
            path: r.path,
            version: r.version,
        })),
        Request::SetData(r) => tree(Op::SetData(SetDataOp {
            path: r.path,
            data: r.data,
            version: r.version,
        })),
        Request::SetAcl(r) => tree(Op::SetAcl(SetAclOp {
            path: r.path,
            acl: r.acl,
            version: r.version,
        })),
        Request::Multi(ops) => tree(Op::Multi(ops.into_iter().map(tree_multi_op).collect())),
        Request::DeleteContainer(raw) => tree(Op::DeleteContainer {
            path: String::from_utf8_lossy(&raw).into_owned(),
        }),
        Request::CloseSession => Classified::Write(
            WriteOp::Tree(Op::CloseSession { session }),
            WriteKind::CloseSession,
        ),
        Request::Sync(r) => Classified::Write(WriteOp::Sync, WriteKind::Sync { path: r.path }),
        other => Classified::Local(other),
    }
}

impl Node {
    /// What `cons` shows of connection `id`; `None` if it is not open.
    pub fn conn_stats(&self, id: ConnId) -> Option<ConnStats> {
        let conn = self.conns.get(&id)?;
        Some(ConnStats {
            session: conn.session,
            timeout_ms: conn
                .session
                .and_then(|s| self.sessions.get(s))
                .map(|s| s.timeout_ms),
            queued: conn.queue.len() as u64,
            ..conn.stats
        })
    }

    /// Forgets every connection's statistics ([`ConnStats`]: last operation, xid, zxid
    /// and latencies), as ZooKeeper's `crst` does.
    pub fn conn_stats_reset(&mut self) {
        for conn in self.conns.values_mut() {
            conn.stats = ConnStats::new();
        }
    }

    /// Forgets the request latencies [`super::NodeStatus::latency`] reports, as ZooKeeper's
    /// `srst` does.
    pub fn latency_reset(&mut self) {
        self.counters.latency = LatencyStats::default();
    }

    /// Requests of connection `id` received and not answered yet: its queue (the
    /// connect request included while the session is set up) and the frames that wait
    /// for its session. 0 once the connection is closed or forgotten. Every request
    /// counted here leaves the count when it is answered or its connection goes, so the
    /// runtime can sum it across connections (`globalOutstandingLimit`) without a leak.
    pub fn conn_requests_outstanding(&self, id: ConnId) -> usize {
        self.conns
            .get(&id)
            .map_or(0, |conn| conn.queue.len() + conn.early.len())
    }

    /// Bytes from a client: spot a four-letter word, then split and handle frames.
    pub(super) fn client_bytes(
        &mut self,
        now_ms: u64,
        id: ConnId,
        bytes: &[u8],
        out: &mut Vec<Output>,
    ) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.started {
            conn.splitter.push(bytes);
        } else {
            conn.start.extend_from_slice(bytes);
            match wire::classify_connection_start(&conn.start) {
                ConnectionStart::NeedMore => return,
                ConnectionStart::FourLetterWord(word) => {
                    self.conn_forget(id);
                    out.push(Output::FourLetterWord { conn: id, word });
                    return;
                }
                ConnectionStart::Protocol => {
                    conn.started = true;
                    let start = std::mem::take(&mut conn.start);
                    conn.splitter.push(&start);
                }
            }
        }
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            match conn.splitter.next_frame() {
                Ok(Some(frame)) => self.conn_frame(now_ms, id, frame, out),
                Ok(None) => return,
                Err(_) => {
                    // Malformed or oversized: close this connection only.
                    self.conn_close(id, out);
                    return;
                }
            }
        }
    }

    fn conn_frame(&mut self, now_ms: u64, id: ConnId, frame: Vec<u8>, out: &mut Vec<Output>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match conn.phase {
            Phase::AwaitConnect => self.conn_connect(now_ms, id, &frame, out),
            Phase::Connecting => {
                conn.early_bytes += frame.len();
                conn.early.push_back(frame);
                if conn.early.len() > EARLY_FRAMES_MAX || conn.early_bytes > EARLY_BYTES_MAX {
                    self.conn_close(id, out);
                }
            }
            Phase::Open => self.conn_request(now_ms, id, &frame, out),
        }
    }

    fn conn_connect(&mut self, now_ms: u64, id: ConnId, frame: &[u8], out: &mut Vec<Output>) {
        let Ok(request) = wire::decode_connect_request(frame) else {
            self.conn_close(id, out);
            return;
        };
        // A client that saw newer state elsewhere must not go back in time here
        // (docs/protocol.md, Handshake).
        if request.last_zxid_seen > self.applied.zxid.as_wire() {
            self.conn_close(id, out);
            return;
        }
        let timeout_ms = negotiate_timeout(
            request.timeout_ms,
            self.config.session_timeout_ms_min,
            self.config.session_timeout_ms_max,
        );
        let node = self.id();
        let (session, op, kind) = if request.session_id.0 == 0 {
            let generator = self
                .session_ids
                .get_or_insert_with(|| SessionIdGenerator::new(node, now_ms));
            let session = generator.next_id();
            let password = generate_password(&mut self.passwords);
            let timeout = i32::try_from(timeout_ms).unwrap_or(i32::MAX);
            let op = WriteOp::Tree(Op::CreateSession {
                session,
                password,
                timeout_ms: timeout,
            });
            (
                session,
                op,
                WriteKind::Connect {
                    session,
                    password,
                    timeout_ms,
                },
            )
        } else {
            let session = request.session_id;
            let kind = WriteKind::Resume {
                session,
                password: request.passwd,
                timeout_ms,
            };
            (session, WriteOp::Sync, kind)
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.read_only_byte = request.read_only.is_some();
        conn.phase = Phase::Connecting;
        let seq = conn.next_seq;
        conn.next_seq += 1;
        let write = Write {
            origin: Some(Origin {
                node,
                conn: id,
                seq,
                xid: 0,
            }),
            session,
            ids: Vec::new(),
            op,
        };
        let item = Item::Write {
            write: Some(write),
            sent: false,
            kind,
            answer: None,
        };
        conn.queue.push_back(Pending {
            seq,
            xid: 0,
            item,
            frame_bytes: 0,
            received_ms: now_ms,
            op: "SESS",
        });
        self.conn_pump(now_ms, id, out);
    }

    fn conn_request(&mut self, now_ms: u64, id: ConnId, frame: &[u8], out: &mut Vec<Output>) {
        let Ok((header, request)) = wire::decode_request(frame) else {
            self.conn_close(id, out);
            return;
        };
        let node = self.id();
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(session) = conn.session else {
            return;
        };
        if conn.queue.len() >= QUEUE_REQUESTS_MAX
            || conn.queued_bytes + frame.len() > QUEUE_BYTES_MAX
        {
            self.conn_close(id, out);
            return;
        }
        self.sessions.touch(session, now_ms);
        if let super::Role::Follower(follower) = &mut self.role {
            follower.touch(session);
        }
        let seq = conn.next_seq;
        conn.next_seq += 1;
        let item = match classify(request, session) {
            // planted bug: sync-not-waiting (sync answered at once, like a read).
            #[cfg(feature = "planted-bugs")]
            Classified::Write(_, WriteKind::Sync { path })
                if self.config.bug == Some(crate::bugs::Bug::SyncNotWaiting) =>
            {
                let sync = Response::Sync(path);
                let frame = reply::frame(header.xid, self.applied.zxid, ZkError::Ok, Some(&sync));
                Item::Write {
                    write: None,
                    sent: false,
                    kind: WriteKind::Plain,
                    answer: Some((frame, false)),
                }
            }
            Classified::Write(op, kind) => {
                let ids = conn.ids.clone();
                let write = Write {
                    origin: Some(Origin {
                        node,
                        conn: id,
                        seq,
                        xid: header.xid,
                    }),
                    session,
                    ids,
                    op,
                };
                Item::Write {
                    write: Some(write),
                    sent: false,
                    kind,
                    answer: None,
                }
            }
            Classified::Local(request) => Item::Local(request),
        };
        conn.queued_bytes += frame.len();
        conn.queue.push_back(Pending {
            seq,
            xid: header.xid,
            item,
            frame_bytes: frame.len(),
            received_ms: now_ms,
            op: op_name(header.op),
        });
        self.conn_pump(now_ms, id, out);
    }

    /// Sends what is ready at the front of the queue, runs reads that reached the front,
    /// and hands writes to the leader up to the first queued read.
    pub(super) fn conn_pump(&mut self, now_ms: u64, id: ConnId, out: &mut Vec<Output>) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let ready = matches!(
                conn.queue.front(),
                Some(Pending {
                    item: Item::Local(_)
                        | Item::Write {
                            answer: Some(_),
                            ..
                        },
                    ..
                })
            );
            if !ready {
                break;
            }
            let Some(pending) = conn.queue.pop_front() else {
                break;
            };
            conn.queued_bytes -= pending.frame_bytes;
            let (bytes, close) = match pending.item {
                Item::Local(request) => self.local(now_ms, id, pending.xid, request),
                Item::Write { answer, .. } => answer.unwrap_or_default(),
            };
            if !bytes.is_empty() {
                let latency_ms = now_ms.saturating_sub(pending.received_ms);
                self.counters.latency.record(latency_ms);
                if let Some(conn) = self.conns.get_mut(&id) {
                    let stats = &mut conn.stats;
                    stats.latency.record(latency_ms);
                    stats.last_latency_ms = latency_ms;
                    stats.last_op = pending.op;
                    stats.last_xid = pending.xid;
                    stats.last_zxid = self.applied.zxid.0;
                }
                out.push(Output::ToClient { conn: id, bytes });
            }
            if close {
                self.conn_close(id, out);
                return;
            }
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut handed = Vec::new();
        for pending in conn.queue.iter_mut() {
            match &mut pending.item {
                Item::Local(_) => break,
                // Checked before taking: most queued writes were handed over already, and
                // `take` would move the whole (empty) slot each time.
                Item::Write { write, sent, .. } if write.is_some() => {
                    if let Some(write) = write.take() {
                        *sent = true;
                        handed.push(write);
                    }
                }
                Item::Write { .. } => {}
            }
        }
        for write in handed {
            self.forward_submit(write);
        }
    }

    /// A write of connection `origin.conn` was applied (or failed): store its answer.
    pub(super) fn conn_write_done(
        &mut self,
        now_ms: u64,
        origin: Origin,
        done: Done<'_>,
        out: &mut Vec<Output>,
    ) {
        let zxid = self.applied.zxid;
        let Some(conn) = self.conns.get_mut(&origin.conn) else {
            return;
        };
        // An earlier write that was sent but never came back was lost with a leader: the
        // client cannot know its fate, so it must see the connection drop.
        let lost = conn.queue.iter().any(|p| {
            p.seq < origin.seq
                && matches!(
                    p.item,
                    Item::Write {
                        sent: true,
                        answer: None,
                        ..
                    }
                )
        });
        let Some(index) = conn.queue.iter().position(|p| p.seq == origin.seq) else {
            return;
        };
        if lost {
            self.conn_close(origin.conn, out);
            return;
        }
        let xid = conn.queue.get(index).map_or(0, |p| p.xid);
        let kind = match conn.queue.get(index).map(|p| &p.item) {
            Some(Item::Write { kind, .. }) => kind.clone(),
            _ => return,
        };
        let answer = match kind {
            WriteKind::Plain => match done {
                Done::Txn(txn, applied) => (
                    reply::result(
                        xid,
                        zxid,
                        reply::txn(&txn.kind, applied),
                        self.config.limits.frame_bytes_max,
                    ),
                    false,
                ),
                Done::Failed(err) => (reply::frame(xid, zxid, err, None), false),
                Done::Sync => (reply::frame(xid, zxid, ZkError::Ok, None), false),
            },
            WriteKind::Sync { path } => match done {
                Done::Failed(err) => (reply::frame(xid, zxid, err, None), false),
                _ => (
                    reply::frame(xid, zxid, ZkError::Ok, Some(&Response::Sync(path))),
                    false,
                ),
            },
            WriteKind::CloseSession => match done {
                Done::Failed(err) => (reply::frame(xid, zxid, err, None), true),
                _ => (reply::frame(xid, zxid, ZkError::Ok, None), true),
            },
            WriteKind::Connect {
                session,
                password,
                timeout_ms,
            } => self.conn_connected(now_ms, origin.conn, session, password, timeout_ms, &done),
            WriteKind::Resume {
                session,
                password,
                timeout_ms,
            } => match self.sessions.check_reattach(session, &password) {
                Ok(s) => {
                    let password = s.password;
                    self.conn_connected(
                        now_ms,
                        origin.conn,
                        session,
                        password,
                        timeout_ms,
                        &Done::Sync,
                    )
                }
                Err(_) => (
                    reply::connect_expired(self.conn_read_only_byte(origin.conn)),
                    true,
                ),
            },
        };
        let Some(conn) = self.conns.get_mut(&origin.conn) else {
            return;
        };
        if let Some(Pending {
            item: Item::Write { answer: slot, .. },
            ..
        }) = conn.queue.get_mut(index)
        {
            *slot = Some(answer);
        }
        self.conn_pump(now_ms, origin.conn, out);
        self.conn_early_frames(now_ms, origin.conn, out);
    }

    fn conn_read_only_byte(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| c.read_only_byte)
    }

    /// The session of a connecting client exists: the connection opens.
    fn conn_connected(
        &mut self,
        now_ms: u64,
        id: ConnId,
        session: SessionId,
        password: [u8; 16],
        timeout_ms: u32,
        done: &Done<'_>,
    ) -> (Vec<u8>, bool) {
        let read_only_byte = self.conn_read_only_byte(id);
        if matches!(done, Done::Failed(_)) || self.sessions.get(session).is_none() {
            return (reply::connect_expired(read_only_byte), true);
        }
        self.sessions.touch(session, now_ms);
        // The session moves to this connection: older connections of it are closed.
        let others: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(other, c)| **other != id && c.session == Some(session))
            .map(|(other, _)| *other)
            .collect();
        for other in others {
            self.conn_forget(other);
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.session = Some(session);
            conn.phase = Phase::Open;
        }
        (
            reply::connect(timeout_ms, session, password, read_only_byte),
            false,
        )
    }

    /// Frames that arrived while the session was being set up, now that it is open.
    fn conn_early_frames(&mut self, now_ms: u64, id: ConnId, out: &mut Vec<Output>) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if conn.phase != Phase::Open {
                return;
            }
            let Some(frame) = conn.early.pop_front() else {
                return;
            };
            conn.early_bytes -= frame.len();
            self.conn_request(now_ms, id, &frame, out);
        }
    }

    /// Closes a connection (the runtime flushes, then closes the socket).
    pub(super) fn conn_close(&mut self, id: ConnId, out: &mut Vec<Output>) {
        if self.conns.contains_key(&id) {
            self.conn_forget(id);
            out.push(Output::CloseClient { conn: id });
        }
    }

    /// Forgets a connection and its watches.
    pub(super) fn conn_forget(&mut self, id: ConnId) {
        self.conns.remove(&id);
        self.watches.remove_connection(id);
    }

    /// Sends a watch event to a connection.
    pub(super) fn conn_event(
        &mut self,
        id: ConnId,
        event: &crate::watch::WatchEvent,
        out: &mut Vec<Output>,
    ) {
        if self.conns.contains_key(&id) {
            out.push(Output::ToClient {
                conn: id,
                bytes: reply::event(event),
            });
        }
    }

    /// Sends a triggered event if the connection may READ by `acl` (the ACL that stood at
    /// the change, `None` for none) with its identities as they are now, as ZooKeeper
    /// 3.8.4+ checks at delivery; otherwise drops it (its one-shot watch is used up all
    /// the same).
    pub(super) fn conn_event_checked(
        &mut self,
        id: ConnId,
        event: &crate::watch::WatchEvent,
        acl: Option<&[crate::acl::Acl]>,
        out: &mut Vec<Output>,
    ) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let readable = acl.is_some_and(|acl| {
            self.config.tree.skip_acl
                || crate::acl::check(acl, &conn.ids, crate::acl::perms::READ).is_ok()
        });
        // planted bug: watch-read-unchecked (the READ check is what the bug skips).
        #[cfg(feature = "planted-bugs")]
        let readable = readable || self.config.bug == Some(crate::bugs::Bug::WatchReadUnchecked);
        if readable {
            self.conn_event(id, event, out);
        }
    }

    /// A session ended: its connections here close without a message (docs/protocol.md,
    /// Sessions).
    pub(super) fn close_session_conns(&mut self, session: SessionId, out: &mut Vec<Output>) {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.session() == Some(session))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.conn_close(id, out);
        }
    }

    /// Answers a request from local state. Returns the frames and whether to close after.
    fn local(&mut self, now_ms: u64, id: ConnId, xid: i32, request: Request) -> (Vec<u8>, bool) {
        let zxid = self.applied.zxid;
        let Some(conn) = self.conns.get(&id) else {
            return (Vec::new(), true);
        };
        let ids = conn.ids.clone();
        let session = conn.session.unwrap_or_default();
        let _ = now_ms;
        let frame_bytes_max = self.config.limits.frame_bytes_max;
        let answer = |result| (reply::result(xid, zxid, result, frame_bytes_max), false);
        // A watch on one more path than `watches_per_connection_max` allows: the request
        // fails with QUOTAEXCEEDED, unread, and registers nothing.
        if let Some(paths) = watch_paths(&request) {
            let held = self.watches.paths_watched_by(id);
            let new = self.watches.paths_new_to(id, paths);
            if held + new > u64::from(self.config.limits.watches_per_connection_max) {
                return answer(Err(ZkError::QuotaExceeded));
            }
        }
        match request {
            Request::Ping => (reply::frame(-2, zxid, ZkError::Ok, None), false),
            Request::Exists(r) => {
                let result = self.tree.exists(&r.path, &ids);
                let watchable = matches!(result, Ok(_) | Err(ZkError::NoNode));
                // planted bug: one-shot-watch-dropped (no exists watch on a missing node).
                #[cfg(feature = "planted-bugs")]
                let watchable = match self.config.bug {
                    Some(crate::bugs::Bug::OneShotWatchDropped) => result.is_ok(),
                    _ => watchable,
                };
                if r.watch && watchable {
                    self.watches.register(id, &r.path, WatchKind::Data);
                }
                answer(result.map(|stat| Some(Response::Stat(stat))))
            }
            Request::GetData(r) => {
                let result = self.tree.get_data(&r.path, &ids);
                if r.watch && result.is_ok() {
                    self.watches.register(id, &r.path, WatchKind::Data);
                }
                answer(
                    result.map(|(data, stat)| {
                        Some(Response::GetData(GetDataResponse { data, stat }))
                    }),
                )
            }
            Request::GetChildren(r) => {
                let result = self.tree.get_children(&r.path, &ids);
                if r.watch && result.is_ok() {
                    self.watches.register(id, &r.path, WatchKind::Child);
                }
                answer(result.map(|c| Some(Response::GetChildren(c))))
            }
            Request::GetChildren2(r) => {
                let result = self.tree.get_children2(&r.path, &ids);
                if r.watch && result.is_ok() {
                    self.watches.register(id, &r.path, WatchKind::Child);
                }
                answer(result.map(|(children, stat)| {
                    Some(Response::GetChildren2(GetChildren2Response {
                        children,
                        stat,
                    }))
                }))
            }
            Request::GetAcl(r) => answer(
                self.tree
                    .get_acl(&r.path, &ids)
                    .map(|(acl, stat)| Some(Response::GetAcl(GetAclResponse { acl, stat }))),
            ),
            Request::GetAllChildrenNumber(r) => answer(
                self.tree
                    .get_all_children_number(&r.path, &ids)
                    .map(|n| Some(Response::GetAllChildrenNumber(n))),
            ),
            Request::GetEphemerals(r) => answer(Ok(Some(Response::GetEphemerals(
                self.tree.get_ephemerals(session, &r.prefix_path),
            )))),
            Request::MultiRead(ops) => {
                let ops: Vec<ReadOp> = ops
                    .into_iter()
                    .map(|op| match op {
                        MultiReadOp::GetData(r) => ReadOp::GetData(r.path),
                        MultiReadOp::GetChildren(r) => ReadOp::GetChildren(r.path),
                    })
                    .collect();
                let bytes_max = self.config.limits.frame_bytes_max as usize;
                answer(
                    self.tree
                        .multi_read_within(&ops, &ids, bytes_max)
                        .map(|results| {
                            let results = results.into_iter().map(reply::read_result).collect();
                            Some(Response::Multi(results))
                        }),
                )
            }
            Request::WhoAmI => {
                let infos = ids
                    .iter()
                    .map(|i| ClientInfo {
                        auth_scheme: i.scheme.clone(),
                        user: match i.scheme.as_str() {
                            "digest" => i.id.split(':').next().unwrap_or_default().to_owned(),
                            _ => i.id.clone(),
                        },
                    })
                    .collect();
                answer(Ok(Some(Response::WhoAmI(infos))))
            }
            // ZooKeeper answers auth with the request's own xid (-4 from the Java client,
            // an ordinary xid from others such as the Rust zookeeper-client).
            Request::Auth(packet) => {
                match acl::add_auth(
                    &packet.scheme,
                    &packet.auth,
                    self.config.tree.super_digest.as_deref(),
                ) {
                    Ok(added) => {
                        if let Some(conn) = self.conns.get_mut(&id) {
                            for identity in added {
                                if !conn.ids.contains(&identity) {
                                    conn.ids.push(identity);
                                }
                            }
                        }
                        (reply::frame(xid, Zxid::ZERO, ZkError::Ok, None), false)
                    }
                    Err(err) => (reply::frame(xid, Zxid::ZERO, err, None), true),
                }
            }
            Request::SetWatches(r) => {
                let lists = SetWatchesLists {
                    relative_zxid: Zxid::from_wire(r.relative_zxid),
                    data_paths: &r.data_watches,
                    exist_paths: &r.exist_watches,
                    child_paths: &r.child_watches,
                    persistent_paths: &[],
                    persistent_recursive_paths: &[],
                };
                self.local_set_watches(id, xid, &lists)
            }
            Request::SetWatches2(r) => {
                let lists = SetWatchesLists {
                    relative_zxid: Zxid::from_wire(r.relative_zxid),
                    data_paths: &r.data_watches,
                    exist_paths: &r.exist_watches,
                    child_paths: &r.child_watches,
                    persistent_paths: &r.persistent_watches,
                    persistent_recursive_paths: &r.persistent_recursive_watches,
                };
                self.local_set_watches(id, xid, &lists)
            }
            Request::AddWatch(r) => match WatchKind::from_add_watch_mode(r.mode) {
                Ok(kind) => {
                    self.watches.register(id, &r.path, kind);
                    answer(Ok(Some(Response::AddWatch(ErrorResponse { err: 0 }))))
                }
                Err(err) => answer(Err(err)),
            },
            Request::CheckWatches(r) => answer(
                WatcherType::from_code(r.watcher_type)
                    .and_then(|t| self.watches.check_watches(id, &r.path, t))
                    .map(|()| None),
            ),
            Request::RemoveWatches(r) => answer(
                WatcherType::from_code(r.watcher_type)
                    .and_then(|t| self.watches.remove_watches(id, &r.path, t))
                    .map(|()| None),
            ),
            Request::Reconfig(_) => answer(Err(ZkError::ReconfigDisabled)),
            Request::Sasl(token) => self.local_sasl(id, xid, &token.token),
            // A top-level check and unknown opcodes: UNIMPLEMENTED, then close, as
            // ZooKeeper 3.8 does.
            _ => (reply::frame(xid, zxid, ZkError::Unimplemented, None), true),
        }
    }

    /// One step of a connection's SASL exchange (DIGEST-MD5, see [`crate::sasl`]): the
    /// server's token, answered with zxid 0 as ZooKeeper does. Once complete the
    /// connection holds `sasl:<user>` (and `super` for the SASL super user). A failure,
    /// or SASL on a server with no SASL users, is AUTHFAILED and closes the connection
    /// (ZooKeeper closes it too, unless configured to keep failed clients).
    fn local_sasl(&mut self, id: ConnId, xid: i32, token: &[u8]) -> (Vec<u8>, bool) {
        let failed = (
            reply::frame(xid, Zxid::ZERO, ZkError::AuthFailed, None),
            true,
        );
        if self.config.sasl.users.is_empty() {
            return failed;
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return (Vec::new(), true);
        };
        let mut nonce = [0u8; sasl::NONCE_BYTES];
        if conn.sasl.is_none() {
            self.passwords.fill_bytes(&mut nonce);
        }
        let users = &self.config.sasl.users;
        let exchange = conn.sasl.get_or_insert_with(Box::default);
        let token = match exchange.step(token, &nonce, |user| users.get(user)) {
            Ok(Step::Challenge(token)) => token,
            Ok(Step::Complete { token, user }) => {
                if self.config.sasl.super_user.as_deref() == Some(user.as_str()) {
                    conn.add_identity(Id::new("super", ""));
                }
                conn.add_identity(Id::new("sasl", &user));
                token
            }
            Err(_) => return failed,
        };
        let response = Response::Sasl(SaslToken { token });
        (
            reply::frame(xid, Zxid::ZERO, ZkError::Ok, Some(&response)),
            false,
        )
    }

    fn local_set_watches(
        &mut self,
        id: ConnId,
        xid: i32,
        lists: &SetWatchesLists<'_>,
    ) -> (Vec<u8>, bool) {
        let tree = &self.tree;
        let events = self.watches.set_watches(id, lists, |path| {
            tree.node(path).map(|n| {
                let stat = n.stat();
                (Zxid::from_wire(stat.mzxid), Zxid::from_wire(stat.pzxid))
            })
        });
        let mut bytes = Vec::new();
        for event in &events {
            bytes.extend(reply::event(event));
        }
        bytes.extend(reply::frame(xid, self.applied.zxid, ZkError::Ok, None));
        (bytes, false)
    }
}

/// The paths `request` would set a watch on, when it sets any: a read with its watch flag,
/// addWatch, and setWatches (every path it lists, including those that get a catch-up
/// event instead of a watch).
fn watch_paths(request: &Request) -> Option<Vec<&str>> {
    let lists: Vec<&Vec<String>> = match request {
        Request::Exists(r)
        | Request::GetData(r)
        | Request::GetChildren(r)
        | Request::GetChildren2(r)
            if r.watch =>
        {
            return Some(vec![r.path.as_str()]);
        }
        Request::AddWatch(r) => return Some(vec![r.path.as_str()]),
        Request::SetWatches(r) => vec![&r.data_watches, &r.exist_watches, &r.child_watches],
        Request::SetWatches2(r) => vec![
            &r.data_watches,
            &r.exist_watches,
            &r.child_watches,
            &r.persistent_watches,
            &r.persistent_recursive_watches,
        ],
        _ => return None,
    };
    Some(lists.into_iter().flatten().map(String::as_str).collect())
}
