//! A simulated ZooKeeper client, speaking the real wire protocol through
//! `paddock_core::wire`, with the behaviour of the Java client's `ClientCnxn`
//! (docs/protocol.md, Handshake, Headers and reserved xids, Watches): ping when idle for a
//! third of the session timeout, give up on a silent connection after two thirds, give up
//! on a handshake after timeout / servers; reconnect to another server with the session id,
//! password and lastZxidSeen (a server that is behind closes without a reply, and the
//! client tries another); start a new session when told the old one expired. After each
//! ConnectResponse it re-sends its digest credentials (auth packets, xid -4) before
//! anything else, then re-registers its watches with setWatches (op 101), or setWatches2
//! (op 105) when it holds persistent watches, with relativeZxid = lastZxidSeen, so the
//! server sends catch-up events for what it missed.
//!
//! Invariants: at most one operation (a workload request or a setWatches) is outstanding,
//! so each client is one process of the history; xids count up for the whole run and are
//! never reused; every operation sent is recorded in the history before its bytes leave,
//! with the identities (ip + digest ids) the server holds for the connection at that
//! point. An addauth is recorded under a fresh xid although the wire carries -4, as the
//! Java client sends every auth packet. The client keeps Java's watch tables (data,
//! exist, child, persistent, persistent-recursive) only to re-register them; checking
//! what fired is the watch checker's job.
//!
//! Client faults (only when enabled): a random disconnect (the client closes its
//! connection and reconnects elsewhere) and a silence (the client stops pinging for two
//! to three session timeouts while keeping its connection, as a paused process does, then
//! must be told "expired" and start a new session). Tests force both with [`SimClient::pause`].
//! The client does not choose faults for servers or the network, and owns no clock: the
//! world passes `now_ms` in.

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use crate::decide::Decisions;
use paddock_core::acl::{self, Id};
use paddock_core::error::ZkError;
use paddock_core::ids::{ConnId, NodeId, SessionId};
use paddock_core::wire::{
    self, ConnectRequest, FrameSplitter, OpCode, Reply, ReplyHeader, Request, RequestHeader,
    SetWatches, SetWatches2, WatcherEvent,
};
use rand::RngExt;

use crate::history::{ClientId, EventRecord, History, OpRecord, Outcome, SessionRecord};
use crate::recipes::{ActRecord, Recipe, Step};
use crate::workload::Workload;

/// Session timeout every client asks for, ms.
pub const SESSION_TIMEOUT_MS: u32 = 6000;
/// How often a connected client wakes to time out, ping or send, ms.
const WAKE_CONNECTED_MS: u64 = 20;
/// How often a client without a connection tries to open one, ms.
const WAKE_DISCONNECTED_MS: u64 = 50;
/// Longest think time between two operations, ms.
const THINK_MS_MAX: u64 = 50;
/// Client faults: chance, per wake while connected, of dropping the connection (1 in N).
const DISCONNECT_ONE_IN_WAKES: u32 = 400;
/// Client faults: chance, per operation about to be sent, of going silent (1 in N).
const SILENCE_ONE_IN_OPS: u32 = 300;
/// Recipe clients with client faults: chance, per act, of stalling between deciding to
/// act and acting, past the session timeout (1 in N).
const RECIPE_STALL_ONE_IN_ACTS: u32 = 8;
/// How long an idle recipe client (a watcher waiting for events) waits, ms.
const RECIPE_IDLE_MS: u64 = 150;
/// The xid of auth packets (docs/protocol.md, Headers and reserved xids).
const XID_AUTH: i32 = -4;
/// The xid of pings.
const XID_PING: i32 = -2;

/// The address the world gives client `id`'s connections (`10.0.hi.lo`), which servers
/// hold as the connection's `ip` identity. The world computes the same address; the
/// client tests check, through whoAmI, that the recorded identities match the server's.
pub fn address(id: ClientId) -> IpAddr {
    let [_, _, hi, lo] = id.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, 0, hi, lo))
}

/// Merges consecutive sends on one connection into one, as a client writes what it has
/// queued in one go: frames sent together then reach the server together and in order
/// (auth packets, setWatches and a request after a reconnect), whatever latency the
/// network gives each send.
fn coalesce(actions: Vec<Action>) -> Vec<Action> {
    let mut merged: Vec<Action> = Vec::with_capacity(actions.len());
    for action in actions {
        if let (
            Some(Action::Send { conn, bytes }),
            Action::Send {
                conn: next_conn,
                bytes: next_bytes,
            },
        ) = (merged.last_mut(), &action)
            && conn == next_conn
        {
            bytes.extend_from_slice(next_bytes);
            continue;
        }
        merged.push(action);
    }
    merged
}

/// What a client asks the world to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to `server`; the world answers with `SimClient::opened`.
    Connect {
        /// The server.
        server: NodeId,
    },
    /// Send bytes on the open connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// Whole frames.
        bytes: Vec<u8>,
    },
    /// Close the connection from the client side.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

#[derive(Debug)]
struct Link {
    conn: ConnId,
    server: NodeId,
    splitter: FrameSplitter,
    /// The ConnectResponse arrived: the session is open on this connection.
    open: bool,
    /// The credentials and watches were sent behind the ConnectRequest, before its
    /// answer.
    primed: bool,
    opened_ms: u64,
    /// When each ping sent on this connection and not answered yet was sent, oldest
    /// first (the server answers in order).
    pings_sent_ms: VecDeque<u64>,
}

#[derive(Debug)]
struct Outstanding {
    xid: i32,
    op: OpCode,
    record: usize,
}

/// The watches a client holds, as the Java client keeps them (ZKWatchManager): used to
/// re-register them after a reconnect, and updated by replies and events.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WatchTable {
    /// Paths watched by getData, or by exists on an existing node.
    pub data: BTreeSet<String>,
    /// Paths watched by exists on a missing node.
    pub exist: BTreeSet<String>,
    /// Paths watched by getChildren / getChildren2.
    pub child: BTreeSet<String>,
    /// Paths with a persistent watch (addWatch mode 0).
    pub persistent: BTreeSet<String>,
    /// Paths with a persistent-recursive watch (addWatch mode 1).
    pub recursive: BTreeSet<String>,
}

impl WatchTable {
    /// True when no watch is held.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }

    /// A watch event consumed the one-shot watches it fires (Java's `materialize`):
    /// created / data changed fire data and exist watches, deleted fires all three, a
    /// child change fires child watches. Persistent watches stay.
    fn fire(&mut self, event: &WatcherEvent) {
        let path = event.path.as_str();
        match event.event_type {
            1 | 3 => {
                self.data.remove(path);
                self.exist.remove(path);
            }
            2 => {
                self.data.remove(path);
                self.exist.remove(path);
                self.child.remove(path);
            }
            4 => {
                self.child.remove(path);
            }
            _ => {}
        }
    }

    /// A successful reply registered a watch (Java's `WatchRegistration`): getData on
    /// success, exists on success (data) or NONODE (exist), getChildren on success, addWatch.
    fn register(&mut self, request: &Request, err: i32) {
        let ok = err == 0;
        match request {
            Request::GetData(r) if r.watch && ok => {
                self.data.insert(r.path.clone());
            }
            Request::Exists(r) if r.watch && ok => {
                self.data.insert(r.path.clone());
            }
            Request::Exists(r) if r.watch && err == ZkError::NoNode.code() => {
                self.exist.insert(r.path.clone());
            }
            Request::GetChildren(r) | Request::GetChildren2(r) if r.watch && ok => {
                self.child.insert(r.path.clone());
            }
            Request::AddWatch(r) if ok && r.mode == 0 => {
                self.persistent.insert(r.path.clone());
            }
            Request::AddWatch(r) if ok && r.mode == 1 => {
                self.recursive.insert(r.path.clone());
            }
            Request::RemoveWatches(r) if ok => self.remove(&r.path, r.watcher_type),
            _ => {}
        }
    }

    /// removeWatches succeeded: drop the watches of that type (1 children, 2 data, 3 any,
    /// 4 persistent, 5 persistent-recursive).
    fn remove(&mut self, path: &str, watcher_type: i32) {
        if matches!(watcher_type, 1 | 3) {
            self.child.remove(path);
        }
        if matches!(watcher_type, 2 | 3) {
            self.data.remove(path);
            self.exist.remove(path);
        }
        if matches!(watcher_type, 3 | 4) {
            self.persistent.remove(path);
        }
        if matches!(watcher_type, 3 | 5) {
            self.recursive.remove(path);
        }
    }

    /// One held watch and the removeWatches type that names it, chosen at random.
    fn sample(&self, rng: &mut Decisions) -> Option<(String, i32)> {
        let lists: [(&BTreeSet<String>, i32); 5] = [
            (&self.child, 1),
            (&self.data, 2),
            (&self.exist, 2),
            (&self.persistent, 4),
            (&self.recursive, 3),
        ];
        let total: usize = lists.iter().map(|(set, _)| set.len()).sum();
        if total == 0 {
            return None;
        }
        let mut index = rng.random_range(0..total);
        for (set, watcher_type) in lists {
            if let Some(path) = set.iter().nth(index) {
                return Some((path.clone(), watcher_type));
            }
            index -= set.len();
        }
        None
    }

    /// The request that re-registers every watch: setWatches2 when persistent watches are
    /// held, else setWatches, as the Java client chooses.
    fn set_watches_request(&self, relative_zxid: i64) -> Request {
        let list = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
        if self.persistent.is_empty() && self.recursive.is_empty() {
            Request::SetWatches(SetWatches {
                relative_zxid,
                data_watches: list(&self.data),
                exist_watches: list(&self.exist),
                child_watches: list(&self.child),
            })
        } else {
            Request::SetWatches2(SetWatches2 {
                relative_zxid,
                data_watches: list(&self.data),
                exist_watches: list(&self.exist),
                child_watches: list(&self.child),
                persistent_watches: list(&self.persistent),
                persistent_recursive_watches: list(&self.recursive),
            })
        }
    }
}

/// One client.
#[derive(Debug)]
pub struct SimClient {
    id: ClientId,
    servers: u64,
    faults: bool,
    link: Option<Link>,
    connecting: bool,
    last_server: Option<NodeId>,
    session: Option<(SessionId, Vec<u8>)>,
    timeout_ms: u64,
    last_zxid: i64,
    next_xid: i32,
    outstanding: Option<Outstanding>,
    /// Requests to send before asking the workload again (a read after its sync, scripts).
    plan: VecDeque<Request>,
    ops_left: u64,
    next_op_ms: u64,
    last_heard_ms: u64,
    last_sent_ms: u64,
    /// Auth replies still due for credentials re-sent on this connection.
    auth_replies_due: u32,
    /// Digest credentials (`user:password`), in the order they were added.
    credentials: Vec<Vec<u8>>,
    /// The identities the server holds for this client's connections: ip, then digests.
    ids: Vec<Id>,
    /// While an addauth is outstanding: the identities before it (its credential is not
    /// in force on the server until the packet is answered).
    ids_before_auth: Option<Vec<Id>>,
    watches: WatchTable,
    /// The client does nothing (no connect, ping or request) before this time.
    silent_until_ms: u64,
    /// Close the connection at the next wake (a forced or random disconnect).
    drop_link: bool,
    workload: Workload,
    /// The recipe this client plays instead of the random workload, if any.
    recipe: Option<Recipe>,
    /// An act the recipe decided on and the client has not performed yet (it stalled
    /// in between: the act happens when it wakes, whatever happened meanwhile).
    pending_act: Option<(&'static str, i64, bool)>,
    /// An idle stretch: when `ops_left` comes down to `.0`, the client sends no operation
    /// for `.1` ms, pinging only, as an application holding a session it does not use.
    idle: Option<(u64, u64)>,
    /// No operation is sent before this time (pings are).
    idle_until_ms: u64,
    /// Instead of closing its session with its last operation, the client drops its
    /// connection and stops, as a crashed process does: the session must expire.
    abandons: bool,
    /// The last operation answered while nothing else was outstanding on its connection
    /// (no ping, no credential): the server's `cons` must name it as the connection's
    /// last (`World` takes and checks it).
    answered: Option<(ConnId, i32, OpCode)>,
}

impl SimClient {
    /// A client that will perform `ops` operations (the last one a closeSession) against
    /// an ensemble of `servers`; `faults` enables client faults.
    pub fn new(id: ClientId, servers: u64, ops: u64, faults: bool) -> SimClient {
        SimClient {
            id,
            servers,
            faults,
            link: None,
            connecting: false,
            last_server: None,
            session: None,
            timeout_ms: u64::from(SESSION_TIMEOUT_MS),
            last_zxid: 0,
            next_xid: 1,
            outstanding: None,
            plan: VecDeque::new(),
            ops_left: ops,
            next_op_ms: 0,
            last_heard_ms: 0,
            last_sent_ms: 0,
            auth_replies_due: 0,
            credentials: Vec::new(),
            ids: vec![Id::new("ip", &address(id).to_string())],
            ids_before_auth: None,
            answered: None,
            watches: WatchTable::default(),
            silent_until_ms: 0,
            drop_link: false,
            workload: Workload::default(),
            recipe: None,
            pending_act: None,
            idle: None,
            idle_until_ms: 0,
            abandons: false,
        }
    }

    /// Abandons its session at the end instead of closing it (see `abandons`).
    pub fn abandoning(mut self) -> SimClient {
        self.abandons = true;
        self
    }

    /// Once `ops_left` operations are left, the client goes idle for `idle_ms`: it keeps
    /// its connection and pings, and sends no operation.
    pub fn with_idle_stretch(mut self, ops_left: u64, idle_ms: u64) -> SimClient {
        self.idle = Some((ops_left, idle_ms));
        self
    }

    /// Plays its recipe ([`crate::recipes`], by its id) instead of the random workload;
    /// `fenced` makes its lock or election acts carry their token.
    pub fn with_recipe(mut self, fenced: bool) -> SimClient {
        self.recipe = Some(Recipe::new(self.id, fenced));
        self
    }

    /// Numbers this client's requests from `first` on instead of 1 (a harness that
    /// links committed entries to requests by xid alone gives each client its own range).
    pub fn with_first_xid(mut self, first: i32) -> SimClient {
        self.next_xid = first;
        self
    }

    /// Takes `addr` as the address servers see this client connect from (its `ip`
    /// identity), instead of [`address`] (a real network gives its own).
    pub fn with_address(mut self, addr: IpAddr) -> SimClient {
        self.ids = vec![Id::new("ip", &addr.to_string())];
        self
    }

    /// Workload operations not started yet.
    pub fn ops_left(&self) -> u64 {
        self.ops_left
    }

    /// True once every operation finished.
    pub fn done(&self) -> bool {
        self.ops_left == 0 && self.outstanding.is_none()
    }

    /// True while an operation waits for its answer.
    pub fn busy(&self) -> bool {
        self.outstanding.is_some()
    }

    /// The connection currently open, if any.
    pub fn conn(&self) -> Option<ConnId> {
        self.link.as_ref().map(|l| l.conn)
    }

    /// The watches the client holds.
    pub fn watches(&self) -> &WatchTable {
        &self.watches
    }

    /// The identities the server holds for this client's connections (ip, digests).
    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    /// Queues `requests` to be sent next, in order, before the random workload resumes
    /// (each counts as one of the client's operations). For scenario tests.
    pub fn script(&mut self, requests: Vec<Request>) {
        self.plan.extend(requests);
    }

    /// Stops the client until `until_ms`: no request, ping or reconnect; with
    /// `disconnect`, it also closes its connection at its next wake. A pause past the
    /// session timeout lets the session expire, as a stalled process does.
    pub fn pause(&mut self, until_ms: u64, disconnect: bool) {
        self.silent_until_ms = self.silent_until_ms.max(until_ms);
        self.drop_link |= disconnect;
    }

    /// Client faults stop (the heal phase): pending silences end now.
    pub fn heal(&mut self) {
        self.faults = false;
        self.silent_until_ms = 0;
    }

    /// The world opened the connection asked for by `Action::Connect`. Clients of odd id
    /// send their credentials and watches right behind the ConnectRequest, before its
    /// answer, as the Java client's primeConnection does; the others wait for the answer,
    /// as kazoo does.
    pub fn opened(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        server: NodeId,
        history: &mut History,
    ) -> Vec<Action> {
        self.connecting = false;
        self.last_server = Some(server);
        let primed = self.id % 2 == 1;
        self.link = Some(Link {
            conn,
            server,
            splitter: FrameSplitter::new(wire::MAX_FRAME_BYTES_DEFAULT),
            open: false,
            primed,
            opened_ms: now_ms,
            pings_sent_ms: VecDeque::new(),
        });
        let (session_id, passwd) = self.session.clone().unwrap_or((SessionId(0), vec![0; 16]));
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout_ms: i32::try_from(SESSION_TIMEOUT_MS).unwrap_or(i32::MAX),
            session_id,
            passwd,
            read_only: Some(false),
        };
        let mut payload = Vec::new();
        wire::encode_connect_request(&request, &mut payload);
        self.last_sent_ms = now_ms;
        self.last_heard_ms = now_ms;
        let mut actions = vec![Action::Send {
            conn,
            bytes: wire::frame(&payload),
        }];
        if primed {
            self.prime(now_ms, conn, server, history, &mut actions);
        }
        actions
    }

    /// Re-sends every credential on a new connection before any other request, then the
    /// watches of a session it resumes.
    fn prime(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        server: NodeId,
        history: &mut History,
        actions: &mut Vec<Action>,
    ) {
        self.reauthenticate(now_ms, conn, actions);
        if self.session.is_some() && !self.watches.is_empty() && self.outstanding.is_none() {
            let request = self.watches.set_watches_request(self.last_zxid);
            actions.push(self.send_op(now_ms, conn, server, request, false, history));
        }
    }

    /// The connection closed (server side, crash, or our own close). The outstanding
    /// operation, if any, is lost: it may or may not have happened.
    pub fn closed(&mut self, now_ms: u64, history: &mut History) {
        self.link = None;
        self.connecting = false;
        self.auth_replies_due = 0;
        self.ids_before_auth = None;
        if let Some(out) = self.outstanding.take()
            && let Some(record) = history.ops.get_mut(out.record)
        {
            record.outcome = Outcome::Lost;
            record.completed_ms = Some(now_ms);
            if let Some(recipe) = &mut self.recipe {
                recipe.observe(&record.request, &record.outcome);
            }
        }
    }

    /// Time passed: connect, time out, ping or issue the next operation. Returns actions
    /// and when to wake next.
    pub fn wake(
        &mut self,
        now_ms: u64,
        rng: &mut Decisions,
        history: &mut History,
    ) -> (Vec<Action>, u64) {
        let mut actions = Vec::new();
        if self.drop_link {
            self.drop_link = false;
            self.close(now_ms, history, &mut actions);
        }
        if now_ms < self.silent_until_ms {
            return (actions, self.silent_until_ms);
        }
        if let Some((resource, token, fenced)) = self.pending_act.take() {
            // The act decided before a stall happens now, on the session it was decided
            // in, without asking the ensemble again: the pitfall fencing guards against.
            self.act(now_ms, resource, token, fenced, history);
        }
        if self.link.is_none() {
            if !self.connecting && !self.done() {
                self.connecting = true;
                actions.push(Action::Connect {
                    server: self.pick_server(rng),
                });
            }
            return (actions, now_ms + WAKE_DISCONNECTED_MS);
        }
        self.wake_linked(now_ms, rng, history, &mut actions);
        (coalesce(actions), now_ms + WAKE_CONNECTED_MS)
    }

    /// Another server than the last one tried, as the Java client moves along its host
    /// list after a failure.
    fn pick_server(&self, rng: &mut Decisions) -> NodeId {
        let last = self.last_server.map_or(0, |s| s.0);
        if self.servers <= 1 || last == 0 {
            return NodeId(rng.random_range(1..=self.servers.max(1)));
        }
        let offset = rng.random_range(1..self.servers);
        NodeId((last - 1 + offset) % self.servers + 1)
    }

    /// The server sent a frame this client cannot take (`what`): recorded as a breach
    /// of the protocol (`History::wire_breaches`), and the connection dropped.
    fn wire_breach(
        &mut self,
        now_ms: u64,
        history: &mut History,
        actions: &mut Vec<Action>,
        what: String,
    ) {
        if let Some(link) = &self.link {
            history.wire_breaches.push(format!(
                "client {} got from server {} on connection {} at {now_ms} ms {what}",
                self.id, link.server.0, link.conn.0
            ));
        }
        self.close(now_ms, history, actions);
    }

    fn close(&mut self, now_ms: u64, history: &mut History, actions: &mut Vec<Action>) {
        if let Some(link) = &self.link {
            actions.push(Action::Close { conn: link.conn });
            self.closed(now_ms, history);
        }
    }

    fn wake_linked(
        &mut self,
        now_ms: u64,
        rng: &mut Decisions,
        history: &mut History,
        actions: &mut Vec<Action>,
    ) {
        let Some(link) = &self.link else {
            return;
        };
        let (conn, server, open) = (link.conn, link.server, link.open);
        // Connect timeout: timeout / servers, as the Java client and kazoo do.
        let handshake_over = now_ms >= link.opened_ms + self.timeout_ms / self.servers.max(1);
        let read_timeout = now_ms >= self.last_heard_ms + self.timeout_ms * 2 / 3;
        if (!open && handshake_over) || read_timeout {
            self.close(now_ms, history, actions);
            return;
        }
        if !open {
            return;
        }
        if self.faults && rng.random_range(0..DISCONNECT_ONE_IN_WAKES) == 0 {
            self.close(now_ms, history, actions);
            return;
        }
        if let Some((at_ops_left, idle_ms)) = self.idle
            && self.ops_left == at_ops_left
            && self.outstanding.is_none()
        {
            self.idle = None;
            self.idle_until_ms = now_ms + idle_ms;
        }
        if self.outstanding.is_none()
            && self.ops_left > 0
            && now_ms >= self.next_op_ms
            && now_ms >= self.idle_until_ms
        {
            if self.faults && rng.random_range(0..SILENCE_ONE_IN_OPS) == 0 {
                // A stall longer than the session timeout: the session must expire.
                let stall_ms = self.timeout_ms * 2 + rng.random_range(0..=self.timeout_ms);
                self.pause(now_ms + stall_ms, false);
                return;
            }
            if self.recipe.is_some() && self.plan.is_empty() && self.ops_left > 1 {
                self.recipe_step(now_ms, conn, server, rng, history, actions);
                return;
            }
            if self.abandons
                && self.ops_left <= 1
                && let Some((session, _)) = &self.session
            {
                history.abandoned.insert(*session, self.last_sent_ms);
                self.ops_left = 0;
                self.close(now_ms, history, actions);
                return;
            }
            let request = self.next_request(rng);
            actions.push(self.send_op(now_ms, conn, server, request, true, history));
        } else if now_ms >= self.last_sent_ms + self.timeout_ms / 3 {
            actions.push(self.send_frame(now_ms, conn, XID_PING, &Request::Ping));
            if let Some(link) = &mut self.link {
                link.pings_sent_ms.push_back(now_ms);
            }
        }
    }

    /// One step of the recipe: send its requests, act, or idle (each uses one of the
    /// client's operations, so an idle watcher still comes to its end).
    fn recipe_step(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        server: NodeId,
        rng: &mut Decisions,
        history: &mut History,
        actions: &mut Vec<Action>,
    ) {
        let session = self.session.as_ref().map(|s| s.0).unwrap_or_default();
        let Some(recipe) = &mut self.recipe else {
            return;
        };
        match recipe.next(session, self.ops_left) {
            Step::Send(requests) => {
                self.plan.extend(requests);
                if let Some(request) = self.plan.pop_front() {
                    actions.push(self.send_op(now_ms, conn, server, request, true, history));
                }
            }
            Step::Act {
                resource,
                token,
                fenced,
            } => {
                self.ops_left = self.ops_left.saturating_sub(1);
                self.next_op_ms = now_ms + rng.random_range(0..THINK_MS_MAX);
                if self.faults && rng.random_range(0..RECIPE_STALL_ONE_IN_ACTS) == 0 {
                    // A stall between deciding to act and acting (a GC pause), longer
                    // than the session timeout.
                    self.pending_act = Some((resource, token, fenced));
                    let stall_ms = self.timeout_ms * 2 + rng.random_range(0..=self.timeout_ms);
                    self.pause(now_ms + stall_ms, false);
                    return;
                }
                self.act(now_ms, resource, token, fenced, history);
            }
            Step::Idle => {
                self.ops_left = self.ops_left.saturating_sub(1);
                self.next_op_ms = now_ms + RECIPE_IDLE_MS;
            }
        }
    }

    fn act(
        &mut self,
        now_ms: u64,
        resource: &'static str,
        token: i64,
        fenced: bool,
        history: &mut History,
    ) {
        let session = self.session.as_ref().map(|s| s.0).unwrap_or_default();
        history.acts.push(ActRecord {
            client: self.id,
            session,
            resource,
            token,
            fenced,
            at_ms: now_ms,
        });
    }

    /// The next workload request: the plan first, then the workload; the last operation
    /// closes the session, as a client that finished its work does.
    fn next_request(&mut self, rng: &mut Decisions) -> Request {
        if self.ops_left <= 1 {
            self.plan.clear();
            return Request::CloseSession;
        }
        if let Some(request) = self.plan.pop_front() {
            return request;
        }
        let held = self.watches.sample(rng);
        let mut requests = VecDeque::from(self.workload.next(rng, held));
        let first = requests.pop_front().unwrap_or(Request::WhoAmI);
        self.plan.extend(requests);
        first
    }

    fn send_frame(&mut self, now_ms: u64, conn: ConnId, xid: i32, request: &Request) -> Action {
        let mut payload = Vec::new();
        let header = RequestHeader {
            xid,
            op: request.op_code(),
        };
        wire::encode_request(&header, request, &mut payload);
        self.last_sent_ms = now_ms;
        Action::Send {
            conn,
            bytes: wire::frame(&payload),
        }
    }

    /// Sends one operation and records it. `counted` operations use up the client's
    /// budget; setWatches after a reconnect does not.
    fn send_op(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        server: NodeId,
        request: Request,
        counted: bool,
        history: &mut History,
    ) -> Action {
        let xid = self.next_xid;
        self.next_xid = self.next_xid.checked_add(1).unwrap_or(1);
        let op = OpCode::try_from(request.op_code()).unwrap_or(OpCode::Error);
        let wire_xid = if op == OpCode::Auth { XID_AUTH } else { xid };
        let action = self.send_frame(now_ms, conn, wire_xid, &request);
        if let Request::Auth(packet) = &request {
            // Java adds the credential when addauth is called, and the server adds the id
            // when it processes the packet, before any later request of this connection.
            self.ids_before_auth = Some(self.ids.clone());
            self.add_credential(&packet.auth);
        }
        let ids = self.ids.clone();
        let session = self.session.as_ref().map(|s| s.0).unwrap_or_default();
        history.ops.push(OpRecord {
            client: self.id,
            session,
            server,
            xid,
            request,
            ids,
            invoked_ms: now_ms,
            completed_ms: None,
            outcome: Outcome::Pending,
        });
        self.outstanding = Some(Outstanding {
            xid,
            op,
            record: history.ops.len() - 1,
        });
        if counted {
            self.ops_left = self.ops_left.saturating_sub(1);
        }
        action
    }

    fn add_credential(&mut self, credential: &[u8]) {
        if !self.credentials.iter().any(|c| c == credential) {
            self.credentials.push(credential.to_vec());
        }
        for id in acl::add_auth("digest", credential, None).unwrap_or_default() {
            if !self.ids.contains(&id) {
                self.ids.push(id);
            }
        }
    }

    /// Bytes from the server.
    pub fn receive(
        &mut self,
        now_ms: u64,
        bytes: &[u8],
        rng: &mut Decisions,
        history: &mut History,
    ) -> Vec<Action> {
        let Some(link) = &mut self.link else {
            return Vec::new();
        };
        link.splitter.push(bytes);
        let mut actions = Vec::new();
        loop {
            let Some(link) = &mut self.link else {
                return coalesce(actions);
            };
            let frame = match link.splitter.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return coalesce(actions),
                Err(err) => {
                    let what = format!("a frame that does not split ({err})");
                    self.wire_breach(now_ms, history, &mut actions, what);
                    return coalesce(actions);
                }
            };
            self.last_heard_ms = now_ms;
            if link.open {
                self.receive_reply(now_ms, &frame, rng, history, &mut actions);
            } else {
                self.receive_connect(now_ms, &frame, history, &mut actions);
            }
        }
    }

    fn receive_connect(
        &mut self,
        now_ms: u64,
        frame: &[u8],
        history: &mut History,
        actions: &mut Vec<Action>,
    ) {
        let response = match wire::decode_connect_response(frame) {
            Ok(response) => response,
            Err(err) => {
                let what = format!("a connect response that does not decode ({err})");
                self.wire_breach(now_ms, history, actions, what);
                return;
            }
        };
        if response.timeout_ms <= 0 {
            self.session_expired(now_ms, history);
            self.close(now_ms, history, actions);
            return;
        }
        let Some(link) = &mut self.link else {
            return;
        };
        link.open = true;
        let (conn, server, primed) = (link.conn, link.server, link.primed);
        self.timeout_ms = u64::try_from(response.timeout_ms).unwrap_or(self.timeout_ms);
        let resumed = self.session.as_ref().map(|s| s.0) == Some(response.session_id);
        if !resumed {
            // A new session holds no watches (a resumed one keeps them, re-registered below).
            self.watches = WatchTable::default();
            history.sessions.push(SessionRecord {
                client: self.id,
                session: response.session_id,
                created_ms: now_ms,
                expired_ms: None,
            });
        }
        self.session = Some((response.session_id, response.passwd));
        if !primed {
            self.prime(now_ms, conn, server, history, actions);
        }
    }

    /// The session is gone: a new one starts on the next connection, from scratch as a new
    /// Java handle or kazoo does (lastZxidSeen 0, no watches), keeping the credentials.
    fn session_expired(&mut self, now_ms: u64, history: &mut History) {
        if let Some((session, _)) = self.session.take()
            && let Some(record) = history
                .sessions
                .iter_mut()
                .rev()
                .find(|s| s.session == session && s.client == self.id)
        {
            record.expired_ms.get_or_insert(now_ms);
        }
        self.last_zxid = 0;
        self.watches = WatchTable::default();
    }

    /// Re-sends every credential on a new connection before any other request (Java's
    /// primeConnection), so the connection holds the same identities as before.
    fn reauthenticate(&mut self, now_ms: u64, conn: ConnId, actions: &mut Vec<Action>) {
        let packets: Vec<Request> = self
            .credentials
            .iter()
            .map(|auth| {
                Request::Auth(wire::AuthPacket {
                    auth_type: 0,
                    scheme: "digest".to_owned(),
                    auth: auth.clone(),
                })
            })
            .collect();
        for packet in packets {
            self.auth_replies_due += 1;
            actions.push(self.send_frame(now_ms, conn, XID_AUTH, &packet));
        }
    }

    fn receive_reply(
        &mut self,
        now_ms: u64,
        frame: &[u8],
        rng: &mut Decisions,
        history: &mut History,
        actions: &mut Vec<Action>,
    ) {
        let Some(link) = &self.link else {
            return;
        };
        let server = link.server;
        let pending = self.outstanding.as_ref().map_or(OpCode::Ping, |o| o.op);
        let (header, reply) = match wire::decode_reply(frame, pending) {
            Ok(decoded) => decoded,
            Err(err) => {
                let what = format!("a reply to {pending:?} that does not decode ({err})");
                self.wire_breach(now_ms, history, actions, what);
                return;
            }
        };
        // lastZxidSeen moves with answers to requests only: the Java client ignores the
        // zxid of ping and auth replies (and events carry -1).
        if matches!(reply, Reply::Response(_)) && header.zxid > 0 {
            self.last_zxid = self.last_zxid.max(header.zxid);
        }
        match reply {
            Reply::Event(event) => {
                self.watches.fire(&event);
                if let Some(recipe) = &mut self.recipe {
                    recipe.event(&event);
                }
                let ids = self.ids_before_auth.as_ref().unwrap_or(&self.ids).clone();
                history.events.push(EventRecord {
                    client: self.id,
                    server,
                    at_ms: now_ms,
                    event,
                    client_zxid: self.last_zxid,
                    ids,
                });
            }
            Reply::Ping => {
                let sent = self.link.as_mut().and_then(|l| l.pings_sent_ms.pop_front());
                if let (Some(sent_ms), Some((session, _))) = (sent, &self.session) {
                    history.pings.entry(*session).or_default().push(sent_ms);
                }
            }
            Reply::SetWatches => {}
            Reply::Auth if self.auth_replies_due > 0 => {
                self.auth_replies_due -= 1;
                if header.err != 0 {
                    self.close(now_ms, history, actions);
                }
            }
            Reply::Auth if pending == OpCode::Auth => {
                self.complete(now_ms, &header, None, rng, history);
            }
            Reply::Response(response)
                if pending != OpCode::Auth
                    && self
                        .outstanding
                        .as_ref()
                        .is_some_and(|o| o.xid == header.xid) =>
            {
                self.complete(now_ms, &header, response, rng, history);
            }
            // A reply to nothing we asked: the server broke FIFO order; Java drops the
            // connection.
            Reply::Auth | Reply::Response(_) => {
                let asked = self.outstanding.as_ref().map(|o| (o.xid, o.op));
                let what = format!(
                    "an answer (xid {}) to nothing it asked (outstanding: {asked:?})",
                    header.xid
                );
                self.wire_breach(now_ms, history, actions, what);
            }
        }
    }

    /// The operation answered last on a connection with nothing else outstanding, once:
    /// its connection, xid and opcode.
    pub fn take_answered(&mut self) -> Option<(ConnId, i32, OpCode)> {
        self.answered.take()
    }

    /// The outstanding operation got its answer.
    fn complete(
        &mut self,
        now_ms: u64,
        header: &ReplyHeader,
        response: Option<wire::Response>,
        rng: &mut Decisions,
        history: &mut History,
    ) {
        let Some(out) = self.outstanding.take() else {
            return;
        };
        self.ids_before_auth = None;
        self.answered = self
            .link
            .as_ref()
            .filter(|l| l.pings_sent_ms.is_empty() && self.auth_replies_due == 0)
            .map(|l| (l.conn, out.xid, out.op));
        let Some(record) = history.ops.get_mut(out.record) else {
            return;
        };
        record.outcome = Outcome::Reply {
            zxid: header.zxid,
            err: header.err,
            response,
        };
        record.completed_ms = Some(now_ms);
        self.watches.register(&record.request, header.err);
        self.workload.observe(&record.outcome);
        if let Some(recipe) = &mut self.recipe {
            recipe.observe(&record.request, &record.outcome);
        }
        self.next_op_ms = now_ms + rng.random_range(0..THINK_MS_MAX);
    }
}
