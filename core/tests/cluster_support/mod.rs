//! The whole-server cluster harness shared by the node-level integration tests: a loop
//! that moves outputs to inputs with seeded latencies, an in-memory disk per server that
//! loses unsynced writes on a crash, and clients that speak the real wire protocol.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    unreachable_pub,
    unused_imports
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use paddock_core::error::ZkError;
use paddock_core::ids::{ConnId, NodeId, SessionId};
use paddock_core::node::{Input, Node, NodeConfig, Output, PeerMessage, Persist};
use paddock_core::replication::{DurableState, SnapshotMeta};
use paddock_core::storage::{MemFiles, Store, StoreConfig, read_snapshot_piece};
use paddock_core::wire::{
    self, ConnectRequest, CreateRequest, FrameSplitter, OpCode, PathRequest, PathWatchRequest,
    Reply, ReplyHeader, Request, RequestHeader, Response, SetDataRequest, WatcherEvent,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A server's disk: the storage engine over in-memory files, synced after every write.
pub struct Disk {
    store: Store<MemFiles>,
}

impl Disk {
    fn config() -> StoreConfig {
        StoreConfig {
            segment_roll_bytes: 32 * 1024,
            ..StoreConfig::new(paddock_core::limits::Limits::default())
        }
    }

    pub fn new() -> Disk {
        let (store, _) = Store::open(MemFiles::new(), Disk::config()).expect("empty disk opens");
        Disk { store }
    }

    /// What a restarting server recovers from these files (the store reopened on them).
    pub fn durable(&mut self) -> DurableState {
        let files = std::mem::replace(&mut self.store, Disk::new().store).into_files();
        let (store, opened) = Store::open(files, Disk::config()).expect("test disks recover");
        self.store = store;
        opened.durable
    }

    /// Performs a write and syncs it; returns what to tell the node.
    pub fn write(&mut self, op: Persist) -> Option<Input> {
        op.perform(&mut self.store)
            .and_then(|done| self.store.sync().map(|()| done))
            .expect("in-memory files do not fail")
    }

    /// The index of the newest snapshot on disk (0 without one).
    pub fn snapshot_index(&mut self) -> u64 {
        read_snapshot_piece(self.store.files_mut(), SnapshotMeta::default(), 0, 0)
            .expect("in-memory read")
            .map_or(0, |piece| piece.meta.index)
    }
}

pub enum Event {
    Tick {
        node: NodeId,
    },
    Peer {
        from: NodeId,
        to: NodeId,
        msg: PeerMessage,
    },
    Disk {
        node: NodeId,
        incarnation: u64,
        op: Persist,
    },
    ToServer {
        node: NodeId,
        conn: ConnId,
        bytes: Vec<u8>,
    },
    ToClient {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    Closed {
        conn: ConnId,
    },
}

#[derive(Default)]
pub struct Client {
    pub node: u64,
    pub splitter: Option<FrameSplitter>,
    pub connected: Option<(SessionId, Vec<u8>)>,
    pub closed: bool,
    pub next_xid: i32,
    pub pending: BTreeMap<i32, OpCode>,
    pub replies: BTreeMap<i32, (ReplyHeader, Reply)>,
    pub events: Vec<WatcherEvent>,
    pub last_zxid: i64,
    /// The ConnectResponse's readOnly byte (`None` when it carried none).
    pub read_only: Option<bool>,
}

pub struct Cluster {
    pub now_ms: u64,
    pub seq: u64,
    pub queue: BTreeMap<(u64, u64), Event>,
    pub nodes: BTreeMap<NodeId, Option<Node>>,
    pub configs: BTreeMap<NodeId, NodeConfig>,
    pub incarnations: BTreeMap<NodeId, u64>,
    pub disks: BTreeMap<NodeId, Disk>,
    pub disk_busy_until: BTreeMap<NodeId, u64>,
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub clients: BTreeMap<ConnId, Client>,
    pub next_conn: u64,
    pub rng: ChaCha8Rng,
    pub snapshots_installed: u64,
    /// Every snapshot a server wrote, with the index it covers, in order.
    pub snapshots_written: Vec<(NodeId, u64)>,
    /// Log entries the nodes handed back to be freed (`Output::Release`).
    pub entries_released: u64,
    /// The key of every node's password stream, when a test sets it (else derived from
    /// the node's seed).
    pub password_secret: Option<[u8; 32]>,
    /// The most entries any server asked to persist in one write.
    pub entries_write_max: usize,
}

impl Cluster {
    pub fn new(size: u64, seed: u64, tune: impl Fn(&mut NodeConfig)) -> Cluster {
        let voters: BTreeSet<NodeId> = (1..=size).map(NodeId).collect();
        let mut cluster = Cluster {
            now_ms: 1_000_000,
            seq: 0,
            queue: BTreeMap::new(),
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            disks: BTreeMap::new(),
            disk_busy_until: BTreeMap::new(),
            cut: BTreeSet::new(),
            clients: BTreeMap::new(),
            next_conn: 1,
            rng: ChaCha8Rng::seed_from_u64(seed),
            snapshots_installed: 0,
            snapshots_written: Vec::new(),
            entries_released: 0,
            password_secret: None,
            entries_write_max: 0,
        };
        for id in &voters {
            let mut config = NodeConfig::new(*id, voters.clone());
            config.check_invariants = true;
            tune(&mut config);
            cluster.configs.insert(*id, config);
            cluster.disks.insert(*id, Disk::new());
            cluster.incarnations.insert(*id, 0);
            cluster.start(*id);
        }
        cluster
    }

    pub fn start(&mut self, id: NodeId) {
        let config = self.configs[&id].clone();
        let incarnation = self.incarnations[&id] + 1;
        self.incarnations.insert(id, incarnation);
        let mut seed = paddock_core::node::Seed::from(self.rng.random::<u64>());
        if let Some(secret) = self.password_secret {
            seed.password_secret = secret;
        }
        let durable = self
            .disks
            .get_mut(&id)
            .expect("a disk per server")
            .durable();
        let node = Node::new(config, durable, seed).expect("node starts");
        self.nodes.insert(id, Some(node));
        self.schedule(self.now_ms, Event::Tick { node: id });
    }

    /// Crash: the process dies; unsynced disk writes are lost; its clients disconnect.
    pub fn crash(&mut self, id: NodeId) {
        self.nodes.insert(id, None);
        let conns: Vec<ConnId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.node == id.0 && !c.closed)
            .map(|(k, _)| *k)
            .collect();
        for conn in conns {
            self.clients.get_mut(&conn).unwrap().closed = true;
        }
    }

    pub fn schedule(&mut self, at_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at_ms, self.seq), event);
    }

    pub fn latency(&mut self) -> u64 {
        self.rng.random_range(1..6)
    }

    pub fn isolate(&mut self, id: NodeId) {
        for other in self.configs.keys().copied().collect::<Vec<_>>() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn step(&mut self, id: NodeId, input: Input) {
        let mut out = Vec::new();
        let Some(Some(node)) = self.nodes.get_mut(&id) else {
            return;
        };
        node.step(self.now_ms, input, &mut out);
        // Every step of every test cluster stays within the memory bounds its config sets.
        if let Some(why) = node.memory().exceeded(&self.configs[&id]) {
            panic!("server {id:?} at {} ms: {why}", self.now_ms);
        }
        let deadline = node.next_deadline();
        for output in out {
            self.route(id, output);
        }
        if let Some(at) = deadline {
            self.schedule(at.max(self.now_ms), Event::Tick { node: id });
        }
    }

    pub fn route(&mut self, id: NodeId, output: Output) {
        let now = self.now_ms;
        match output {
            Output::Peer { to, msg } => {
                let at = now + self.latency();
                self.schedule(at, Event::Peer { from: id, to, msg });
            }
            Output::PeerSnapshot(send) => {
                // What this server's disk holds now, when it is that snapshot or newer
                // (a runtime may send a newer one); otherwise the send is lost.
                if let Some(msg) = self.disks.get_mut(&id).and_then(|disk| {
                    PeerMessage::snapshot_piece_read(disk.store.files_mut(), &send)
                        .expect("in-memory read")
                }) {
                    let at = now + self.latency();
                    let to = send.to;
                    self.schedule(at, Event::Peer { from: id, to, msg });
                }
            }
            Output::Persist(write) => {
                if let Persist::Entries { entries, .. } = &write {
                    let max = self.configs[&id].limits.log_batch_records_max;
                    assert!(
                        entries.len() <= max as usize,
                        "server {id:?} asked for {} records in one write (log_batch_records_max {max})",
                        entries.len()
                    );
                    self.entries_write_max = self.entries_write_max.max(entries.len());
                }
                if matches!(write, Persist::InstallSnapshot { .. }) {
                    self.snapshots_installed += 1;
                }
                self.disk(id, write);
            }
            Output::ToClient { conn, bytes } => {
                let at = now + 1;
                self.schedule(at, Event::ToClient { conn, bytes });
            }
            Output::CloseClient { conn } => {
                let at = now + 1;
                self.schedule(at, Event::Closed { conn });
            }
            Output::FourLetterWord { conn, .. } => self.schedule(now + 1, Event::Closed { conn }),
            Output::Release(released) => {
                self.entries_released += released.entries.len() as u64;
                drop(released);
            }
        }
    }

    /// Disk writes complete in order, each 1 ms after the previous one.
    pub fn disk(&mut self, id: NodeId, op: Persist) {
        let at = self
            .disk_busy_until
            .get(&id)
            .copied()
            .unwrap_or(0)
            .max(self.now_ms)
            + 1;
        self.disk_busy_until.insert(id, at);
        let incarnation = self.incarnations[&id];
        self.schedule(
            at,
            Event::Disk {
                node: id,
                incarnation,
                op,
            },
        );
    }

    pub fn disk_done(&mut self, id: NodeId, op: Persist) {
        let store = &mut self.disks.get_mut(&id).unwrap().store;
        let purge = matches!(op, Persist::WriteSnapshot { .. });
        if let Persist::WriteSnapshot { meta, .. } = &op {
            self.snapshots_written.push((id, meta.index));
        }
        let done = op
            .perform(store)
            .and_then(|done| store.sync().map(|()| done));
        if purge {
            store.purge().expect("in-memory files do not fail");
        }
        if let Some(input) = done.expect("in-memory files do not fail") {
            self.step(id, input);
        }
    }

    pub fn run_one(&mut self) -> bool {
        let Some(((at, _), event)) = self.queue.pop_first() else {
            return false;
        };
        self.now_ms = self.now_ms.max(at);
        match event {
            Event::Tick { node } => self.step(node, Input::Tick),
            Event::Peer { from, to, msg } => {
                if !self.cut.contains(&(from, to)) {
                    self.step(to, Input::Peer { from, msg });
                }
            }
            Event::Disk {
                node,
                incarnation,
                op,
            } => {
                if self.incarnations[&node] == incarnation
                    && matches!(self.nodes.get(&node), Some(Some(_)))
                {
                    self.disk_done(node, op);
                }
            }
            Event::ToServer { node, conn, bytes } => {
                if !self.clients[&conn].closed {
                    self.step(node, Input::ClientBytes { conn, bytes });
                }
            }
            Event::ToClient { conn, bytes } => self.client_receive(conn, &bytes),
            Event::Closed { conn } => {
                if let Some(c) = self.clients.get_mut(&conn) {
                    c.closed = true;
                }
            }
        }
        true
    }

    pub fn run_for(&mut self, ms: u64) {
        let until = self.now_ms + ms;
        while self
            .queue
            .first_key_value()
            .is_some_and(|((at, _), _)| *at <= until)
        {
            self.run_one();
        }
        self.now_ms = until;
    }

    pub fn run_until(&mut self, limit_ms: u64, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let until = self.now_ms + limit_ms;
        while !done(self) {
            if self
                .queue
                .first_key_value()
                .is_none_or(|((at, _), _)| *at > until)
            {
                return false;
            }
            self.run_one();
        }
        true
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| n.as_ref().filter(|n| n.is_leader()).map(|_| *id))
            .next()
    }

    pub fn leaders(&self) -> usize {
        self.nodes
            .values()
            .filter(|n| n.as_ref().is_some_and(Node::is_leader))
            .count()
    }

    pub fn node(&self, id: u64) -> &Node {
        self.nodes[&NodeId(id)].as_ref().expect("node is up")
    }

    // ---- clients ----

    pub fn client_receive(&mut self, conn: ConnId, bytes: &[u8]) {
        let client = self.clients.get_mut(&conn).unwrap();
        if client.closed {
            return;
        }
        let splitter = client
            .splitter
            .get_or_insert_with(|| FrameSplitter::new(1 << 20));
        splitter.push(bytes);
        while let Some(frame) = client.splitter.as_mut().unwrap().next_frame().unwrap() {
            if client.connected.is_none() {
                let response = wire::decode_connect_response(&frame).unwrap();
                if response.timeout_ms <= 0 {
                    client.closed = true;
                    return;
                }
                client.connected = Some((response.session_id, response.passwd));
                client.read_only = response.read_only;
                continue;
            }
            let xid = i32::from_be_bytes(frame[..4].try_into().unwrap());
            let op = client.pending.get(&xid).copied().unwrap_or(OpCode::Ping);
            let (header, reply) = wire::decode_reply(&frame, op).unwrap();
            if header.zxid > 0 {
                client.last_zxid = client.last_zxid.max(header.zxid);
            }
            match reply {
                Reply::Event(event) => client.events.push(event),
                other => {
                    client.pending.remove(&xid);
                    client.replies.insert(xid, (header, other));
                }
            }
        }
    }

    pub fn client_open(
        &mut self,
        node: u64,
        session: Option<(SessionId, Vec<u8>)>,
        last_zxid: i64,
    ) -> ConnId {
        self.client_open_with(node, session, last_zxid, Some(false))
    }

    /// Opens a connection whose ConnectRequest carries `read_only` (`None`: a client
    /// older than ZooKeeper 3.4, which sends no readOnly byte).
    pub fn client_open_with(
        &mut self,
        node: u64,
        session: Option<(SessionId, Vec<u8>)>,
        last_zxid: i64,
        read_only: Option<bool>,
    ) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.clients.insert(
            conn,
            Client {
                node,
                next_xid: 1,
                ..Client::default()
            },
        );
        self.step(
            NodeId(node),
            Input::ClientConnected {
                conn,
                addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            },
        );
        let (session_id, passwd) = session.unwrap_or((SessionId(0), vec![0; 16]));
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            timeout_ms: 6000,
            session_id,
            passwd,
            read_only,
        };
        let mut payload = Vec::new();
        wire::encode_connect_request(&request, &mut payload);
        self.schedule(
            self.now_ms + 1,
            Event::ToServer {
                node: NodeId(node),
                conn,
                bytes: wire::frame(&payload),
            },
        );
        conn
    }

    /// Opens a session on `node` and waits for it.
    pub fn connect(&mut self, node: u64) -> ConnId {
        let conn = self.client_open(node, None, 0);
        assert!(
            self.run_until(10_000, |c| c.clients[&conn].connected.is_some()
                || c.clients[&conn].closed),
            "connect timed out"
        );
        assert!(
            self.clients[&conn].connected.is_some(),
            "connection refused"
        );
        conn
    }

    pub fn send(&mut self, conn: ConnId, request: Request) -> i32 {
        let client = self.clients.get_mut(&conn).unwrap();
        let xid = if matches!(request, Request::Auth(_)) {
            -4
        } else {
            client.next_xid += 1;
            client.next_xid - 1
        };
        self.send_with_xid(conn, xid, request)
    }

    /// Sends a request under the given xid (as a client that numbers auth like any request).
    pub fn send_with_xid(&mut self, conn: ConnId, xid: i32, request: Request) -> i32 {
        let client = self.clients.get_mut(&conn).unwrap();
        let op = request.op_code();
        client.pending.insert(xid, OpCode::try_from(op).unwrap());
        let node = NodeId(client.node);
        let mut payload = Vec::new();
        wire::encode_request(&RequestHeader { xid, op }, &request, &mut payload);
        self.schedule(
            self.now_ms + 1,
            Event::ToServer {
                node,
                conn,
                bytes: wire::frame(&payload),
            },
        );
        xid
    }

    /// Sends a request and waits for its reply (None: no reply within the limit).
    pub fn call(&mut self, conn: ConnId, request: Request) -> Option<(ReplyHeader, Reply)> {
        let xid = self.send(conn, request);
        self.run_until(10_000, |c| {
            c.clients[&conn].replies.contains_key(&xid) || c.clients[&conn].closed
        });
        self.clients.get_mut(&conn).unwrap().replies.remove(&xid)
    }

    pub fn create(
        &mut self,
        conn: ConnId,
        path: &str,
        data: &[u8],
        flags: i32,
    ) -> Result<String, ZkError> {
        let request = Request::Create(CreateRequest {
            path: path.to_owned(),
            data: Some(data.to_vec()),
            acl: paddock_core::acl::Acl::open_unsafe(),
            flags,
        });
        match self.call(conn, request) {
            Some((h, Reply::Response(Some(Response::Create(r))))) if h.err == 0 => Ok(r.path),
            Some((h, _)) => Err(ZkError::from_code(h.err).unwrap()),
            None => Err(ZkError::ConnectionLoss),
        }
    }

    pub fn get(&mut self, conn: ConnId, path: &str, watch: bool) -> Result<Vec<u8>, ZkError> {
        let request = Request::GetData(PathWatchRequest {
            path: path.to_owned(),
            watch,
        });
        match self.call(conn, request) {
            Some((h, Reply::Response(Some(Response::GetData(r))))) if h.err == 0 => {
                Ok(r.data.unwrap_or_default())
            }
            Some((h, _)) => Err(ZkError::from_code(h.err).unwrap()),
            None => Err(ZkError::ConnectionLoss),
        }
    }

    pub fn digests_agree(&self) -> bool {
        let up: Vec<&Node> = self.nodes.values().filter_map(Option::as_ref).collect();
        up.windows(2).all(|w| {
            w[0].applied_zxid() == w[1].applied_zxid()
                && w[0].tree().digest() == w[1].tree().digest()
        })
    }
}

pub fn cluster(size: u64, seed: u64) -> Cluster {
    Cluster::new(size, seed, |_| {})
}

/// The lowest-numbered server of a three-server cluster that is not `leader`.
pub fn follower_of_three(leader: NodeId) -> NodeId {
    (1..=3)
        .map(NodeId)
        .find(|n| *n != leader)
        .expect("three servers")
}

pub fn elect(c: &mut Cluster) -> NodeId {
    assert!(
        c.run_until(20_000, |c| c.leader().is_some()),
        "no leader elected"
    );
    c.leader().unwrap()
}
