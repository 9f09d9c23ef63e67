//! Whole servers (`paddock_core::node::Node`) in a small deterministic harness: a loop
//! that moves outputs to inputs with seeded latencies, an in-memory disk per server that
//! loses unsynced writes on a crash, and clients that speak the real wire protocol.
//! These are the replication scenarios of issue 3, seen from the client's side.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use paddock_core::error::ZkError;
use paddock_core::ids::{ConnId, NodeId, SessionId};
use paddock_core::node::{Input, Node, NodeConfig, Output, PeerMessage};
use paddock_core::replication::{DurableState, Entry, HardState, SnapshotMeta};
use paddock_core::wire::{
    self, ConnectRequest, CreateRequest, FrameSplitter, OpCode, PathRequest, PathWatchRequest,
    Reply, ReplyHeader, Request, RequestHeader, Response, SetDataRequest, WatcherEvent,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a server's disk holds durably.
#[derive(Default, Clone)]
struct Disk {
    hard_state: HardState,
    snapshot: SnapshotMeta,
    snapshot_bytes: Vec<u8>,
    entries: Vec<Entry>,
}

impl Disk {
    fn durable(&self) -> DurableState {
        DurableState {
            hard_state: self.hard_state,
            snapshot: self.snapshot,
            snapshot_bytes: self.snapshot_bytes.clone(),
            entries: self.entries.clone(),
        }
    }
}

/// A pending disk write, performed in order, then reported to the node.
#[derive(Clone)]
enum DiskOp {
    HardState(HardState),
    Entries {
        truncate_after: Option<u64>,
        entries: Vec<Entry>,
    },
    Install {
        meta: SnapshotMeta,
        bytes: Vec<u8>,
    },
    Snapshot {
        meta: SnapshotMeta,
        bytes: Vec<u8>,
    },
}

enum Event {
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
        op: DiskOp,
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
struct Client {
    node: u64,
    splitter: Option<FrameSplitter>,
    connected: Option<(SessionId, Vec<u8>)>,
    closed: bool,
    next_xid: i32,
    pending: BTreeMap<i32, OpCode>,
    replies: BTreeMap<i32, (ReplyHeader, Reply)>,
    events: Vec<WatcherEvent>,
    last_zxid: i64,
}

struct Cluster {
    now_ms: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: BTreeMap<NodeId, Option<Node>>,
    configs: BTreeMap<NodeId, NodeConfig>,
    incarnations: BTreeMap<NodeId, u64>,
    disks: BTreeMap<NodeId, Disk>,
    disk_busy_until: BTreeMap<NodeId, u64>,
    cut: BTreeSet<(NodeId, NodeId)>,
    clients: BTreeMap<ConnId, Client>,
    next_conn: u64,
    rng: ChaCha8Rng,
    snapshots_installed: u64,
}

impl Cluster {
    fn new(size: u64, seed: u64, tune: impl Fn(&mut NodeConfig)) -> Cluster {
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
        };
        for id in &voters {
            let mut config = NodeConfig::new(*id, voters.clone());
            tune(&mut config);
            cluster.configs.insert(*id, config);
            cluster.disks.insert(*id, Disk::default());
            cluster.incarnations.insert(*id, 0);
            cluster.start(*id);
        }
        cluster
    }

    fn start(&mut self, id: NodeId) {
        let config = self.configs[&id].clone();
        let incarnation = self.incarnations[&id] + 1;
        self.incarnations.insert(id, incarnation);
        let seed = self.rng.random::<u64>();
        let node = Node::new(config, self.disks[&id].durable(), seed).expect("node starts");
        self.nodes.insert(id, Some(node));
        self.schedule(self.now_ms, Event::Tick { node: id });
    }

    /// Crash: the process dies; unsynced disk writes are lost; its clients disconnect.
    fn crash(&mut self, id: NodeId) {
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

    fn schedule(&mut self, at_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at_ms, self.seq), event);
    }

    fn latency(&mut self) -> u64 {
        self.rng.random_range(1..6)
    }

    fn isolate(&mut self, id: NodeId) {
        for other in self.configs.keys().copied().collect::<Vec<_>>() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    fn step(&mut self, id: NodeId, input: Input) {
        let mut out = Vec::new();
        let Some(Some(node)) = self.nodes.get_mut(&id) else {
            return;
        };
        node.step(self.now_ms, input, &mut out);
        let deadline = node.next_deadline();
        for output in out {
            self.route(id, output);
        }
        if let Some(at) = deadline {
            self.schedule(at.max(self.now_ms), Event::Tick { node: id });
        }
    }

    fn route(&mut self, id: NodeId, output: Output) {
        let now = self.now_ms;
        match output {
            Output::Peer { to, msg } => {
                let at = now + self.latency();
                self.schedule(at, Event::Peer { from: id, to, msg });
            }
            Output::PersistHardState { hard_state } => self.disk(id, DiskOp::HardState(hard_state)),
            Output::PersistEntries {
                truncate_after,
                entries,
            } => {
                self.disk(
                    id,
                    DiskOp::Entries {
                        truncate_after,
                        entries,
                    },
                );
            }
            Output::InstallSnapshot { meta, bytes } => {
                self.snapshots_installed += 1;
                self.disk(id, DiskOp::Install { meta, bytes });
            }
            Output::WriteSnapshot { meta, bytes } => {
                self.disk(id, DiskOp::Snapshot { meta, bytes })
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
        }
    }

    /// Disk writes complete in order, each 1 ms after the previous one.
    fn disk(&mut self, id: NodeId, op: DiskOp) {
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

    fn disk_done(&mut self, id: NodeId, op: DiskOp) {
        let disk = self.disks.get_mut(&id).unwrap();
        let input = match op {
            DiskOp::HardState(hard_state) => {
                disk.hard_state = hard_state;
                Input::HardStatePersisted { hard_state }
            }
            DiskOp::Entries {
                truncate_after,
                entries,
            } => {
                if let Some(keep) = truncate_after {
                    disk.entries.retain(|e| e.index <= keep);
                }
                let last = entries.last().map(|e| (e.index, e.zxid));
                disk.entries.extend(entries);
                match last {
                    Some((index, zxid)) => Input::Persisted { index, zxid },
                    None => return,
                }
            }
            DiskOp::Install { meta, bytes } => {
                disk.snapshot = meta;
                disk.snapshot_bytes = bytes;
                disk.entries.clear();
                Input::SnapshotInstalled { meta }
            }
            DiskOp::Snapshot { meta, bytes } => {
                disk.snapshot = meta;
                disk.snapshot_bytes = bytes;
                disk.entries.retain(|e| e.index > meta.index);
                Input::SnapshotWritten { meta }
            }
        };
        self.step(id, input);
    }

    fn run_one(&mut self) -> bool {
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

    fn run_for(&mut self, ms: u64) {
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

    fn run_until(&mut self, limit_ms: u64, mut done: impl FnMut(&Cluster) -> bool) -> bool {
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

    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| n.as_ref().filter(|n| n.is_leader()).map(|_| *id))
            .next()
    }

    fn leaders(&self) -> usize {
        self.nodes
            .values()
            .filter(|n| n.as_ref().is_some_and(Node::is_leader))
            .count()
    }

    fn node(&self, id: u64) -> &Node {
        self.nodes[&NodeId(id)].as_ref().expect("node is up")
    }

    // ---- clients ----

    fn client_receive(&mut self, conn: ConnId, bytes: &[u8]) {
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

    fn client_open(
        &mut self,
        node: u64,
        session: Option<(SessionId, Vec<u8>)>,
        last_zxid: i64,
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
            read_only: Some(false),
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
    fn connect(&mut self, node: u64) -> ConnId {
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

    fn send(&mut self, conn: ConnId, request: Request) -> i32 {
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
    fn send_with_xid(&mut self, conn: ConnId, xid: i32, request: Request) -> i32 {
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
    fn call(&mut self, conn: ConnId, request: Request) -> Option<(ReplyHeader, Reply)> {
        let xid = self.send(conn, request);
        self.run_until(10_000, |c| {
            c.clients[&conn].replies.contains_key(&xid) || c.clients[&conn].closed
        });
        self.clients.get_mut(&conn).unwrap().replies.remove(&xid)
    }

    fn create(
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

    fn get(&mut self, conn: ConnId, path: &str, watch: bool) -> Result<Vec<u8>, ZkError> {
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

    fn digests_agree(&self) -> bool {
        let up: Vec<&Node> = self.nodes.values().filter_map(Option::as_ref).collect();
        up.windows(2).all(|w| {
            w[0].applied_zxid() == w[1].applied_zxid()
                && w[0].tree().digest() == w[1].tree().digest()
        })
    }
}

fn cluster(size: u64, seed: u64) -> Cluster {
    Cluster::new(size, seed, |_| {})
}

fn elect(c: &mut Cluster) -> NodeId {
    assert!(
        c.run_until(20_000, |c| c.leader().is_some()),
        "no leader elected"
    );
    c.leader().unwrap()
}

// A 3- and a 5-server ensemble each elect exactly one leader, and keep it while healthy.
#[test]
fn a_leader_is_elected() {
    for (size, seed) in [(3, 1), (5, 2), (3, 3), (5, 4)] {
        let mut c = cluster(size, seed);
        let leader = elect(&mut c);
        c.run_for(5_000);
        assert_eq!(c.leaders(), 1, "size {size} seed {seed}");
        assert_eq!(
            c.leader(),
            Some(leader),
            "a healthy leader was deposed (size {size} seed {seed})"
        );
    }
}

// Writes sent to every server commit everywhere in one order and are answered; every
// server's tree ends byte-identical.
#[test]
fn writes_through_any_server_commit_everywhere() {
    for size in [3, 5] {
        let mut c = cluster(size, 10 + size);
        elect(&mut c);
        let conns: Vec<ConnId> = (1..=size).map(|n| c.connect(n)).collect();
        for round in 0..5 {
            for (i, conn) in conns.iter().enumerate() {
                let path = format!("/n-{round}-{i}");
                assert_eq!(c.create(*conn, &path, b"x", 0), Ok(path.clone()));
            }
        }
        let seq = c.create(conns[0], "/s-", b"", 2).unwrap();
        assert_eq!(seq, format!("/s-{:010}", size * 5));
        c.run_for(1_000);
        assert!(c.digests_agree(), "trees differ after writes");
        assert_eq!(c.node(1).tree().node_count() as u64, 4 + size * 5 + 1);
        // Read-your-writes on a follower: the read waits behind the same session's write.
        let follower = (1..=size).find(|n| Some(NodeId(*n)) != c.leader()).unwrap();
        let conn = c.connect(follower);
        c.send(
            conn,
            Request::SetData(SetDataRequest {
                path: "/n-0-0".into(),
                data: Some(b"new".to_vec()),
                version: -1,
            }),
        );
        assert_eq!(c.get(conn, "/n-0-0", false), Ok(b"new".to_vec()));
    }
}

// A crashed leader is replaced, no committed write is lost, and the old leader rejoins.
#[test]
fn killed_leader_is_replaced_without_losing_writes() {
    let mut c = cluster(5, 21);
    let leader = elect(&mut c);
    let other = (1..=5).find(|n| NodeId(*n) != leader).unwrap();
    let conn = c.connect(other);
    for i in 0..20 {
        c.create(conn, &format!("/k{i}"), b"v", 0).unwrap();
    }
    c.crash(leader);
    assert!(
        c.run_until(20_000, |c| c.leader().is_some_and(|l| l != leader)),
        "no new leader"
    );
    let survivor = (1..=5)
        .find(|n| NodeId(*n) != leader && *n != other)
        .unwrap();
    let conn = c.connect(survivor);
    for i in 0..20 {
        assert_eq!(
            c.get(conn, &format!("/k{i}"), false),
            Ok(b"v".to_vec()),
            "committed write lost"
        );
    }
    c.create(conn, "/after", b"", 0).unwrap();
    c.start(leader);
    assert!(
        c.run_until(20_000, |c| c.digests_agree()),
        "restarted server did not catch up"
    );
}

// A follower cut off while writes commit catches up by diff once it is reachable again.
#[test]
fn lagging_follower_catches_up_by_diff() {
    let mut c = cluster(3, 31);
    let leader = elect(&mut c);
    let lagging = (1..=3).map(NodeId).find(|n| *n != leader).unwrap();
    c.isolate(lagging);
    let conn = c.connect(leader.0);
    for i in 0..30 {
        c.create(conn, &format!("/d{i}"), b"", 0).unwrap();
    }
    c.heal();
    assert!(
        c.run_until(20_000, |c| c.digests_agree()),
        "lagging follower did not catch up"
    );
    assert_eq!(c.snapshots_installed, 0, "diff expected, got a snapshot");
}

// After the leader compacted its log, a far-behind follower catches up by snapshot.
#[test]
fn far_behind_follower_catches_up_by_snapshot() {
    let mut c = Cluster::new(3, 41, |cfg| cfg.snapshot_every_entries = 10);
    let leader = elect(&mut c);
    let lagging = (1..=3).map(NodeId).find(|n| *n != leader).unwrap();
    c.isolate(lagging);
    let conn = c.connect(leader.0);
    for i in 0..60 {
        c.create(conn, &format!("/s{i}"), b"data", 0).unwrap();
    }
    c.run_for(500);
    c.heal();
    assert!(
        c.run_until(20_000, |c| c.digests_agree()),
        "follower did not catch up"
    );
    assert!(c.snapshots_installed > 0, "expected a snapshot transfer");
    let conn = c.connect(lagging.0);
    assert_eq!(c.get(conn, "/s59", false), Ok(b"data".to_vec()));
}

// A leader partitioned into a minority stops answering writes; the majority elects a
// new leader and commits; on healing the old leader drops its uncommitted suffix.
#[test]
fn minority_leader_stops_and_truncates_its_uncommitted_suffix() {
    let mut c = cluster(3, 51);
    let old = elect(&mut c);
    let conn_old = c.connect(old.0);
    c.isolate(old);
    let xid = c.send(
        conn_old,
        Request::Create(CreateRequest {
            path: "/lost".into(),
            data: None,
            acl: paddock_core::acl::Acl::open_unsafe(),
            flags: 0,
        }),
    );
    c.run_for(5_000);
    let client = &c.clients[&conn_old];
    assert!(
        client.replies.get(&xid).is_none_or(|(h, _)| h.err != 0),
        "an isolated leader acknowledged a write"
    );
    assert!(
        !c.node(old.0).is_leader(),
        "isolated leader did not step down"
    );
    let new = c.leader().expect("majority elected a new leader");
    assert_ne!(new, old);
    let conn = c.connect(new.0);
    c.create(conn, "/won", b"", 0).unwrap();
    c.heal();
    assert!(
        c.run_until(20_000, |c| c.digests_agree()),
        "old leader did not converge"
    );
    assert!(
        c.node(old.0).tree().node("/lost").is_none(),
        "uncommitted write survived"
    );
    assert!(c.node(old.0).tree().node("/won").is_some());
}

// A session whose client goes silent expires on the leader's clock, and its ephemerals
// vanish on every server; a live client's session survives the same time.
#[test]
fn silent_session_expires_and_its_ephemerals_vanish() {
    let mut c = cluster(3, 61);
    let leader = elect(&mut c);
    let follower = (1..=3).find(|n| NodeId(*n) != leader).unwrap();
    let silent = c.connect(follower);
    let live = c.connect(follower);
    c.create(silent, "/eph", b"", 1).unwrap();
    c.create(live, "/live", b"", 1).unwrap();
    // The live client pings every 2 s; the silent one says nothing.
    for _ in 0..10 {
        c.send(live, Request::Ping);
        c.run_for(2_000);
    }
    for n in 1..=3 {
        assert!(
            c.node(n).tree().node("/eph").is_none(),
            "ephemeral outlived its session on {n}"
        );
        assert!(
            c.node(n).tree().node("/live").is_some(),
            "live session expired on {n}"
        );
    }
    assert!(
        c.clients[&silent].closed,
        "expired session's connection stayed open"
    );
}

// A watch set on one server fires when a write through another server changes the node,
// before the reader's next reply.
#[test]
fn watch_fires_across_servers() {
    let mut c = cluster(3, 71);
    elect(&mut c);
    let reader = c.connect(1);
    let writer = c.connect(2);
    c.create(writer, "/w", b"1", 0).unwrap();
    c.call(reader, Request::Sync(PathRequest { path: "/w".into() }))
        .unwrap();
    assert_eq!(c.get(reader, "/w", true), Ok(b"1".to_vec()));
    c.call(
        writer,
        Request::SetData(SetDataRequest {
            path: "/w".into(),
            data: Some(b"2".to_vec()),
            version: -1,
        }),
    )
    .unwrap();
    c.run_for(100);
    let events = &c.clients[&reader].events;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].event_type, events[0].path.as_str()), (3, "/w"));
}

// A client that reconnects elsewhere keeps its session; one that saw newer state than a
// lagging server is refused there.
#[test]
fn session_moves_between_servers() {
    let mut c = cluster(3, 81);
    elect(&mut c);
    let first = c.connect(1);
    c.create(first, "/mine", b"", 1).unwrap();
    let (session, passwd) = c.clients[&first].connected.clone().unwrap();
    let last_zxid = c.clients[&first].last_zxid;
    let moved = c.client_open(2, Some((session, passwd)), last_zxid);
    assert!(
        c.run_until(10_000, |c| c.clients[&moved].connected.is_some()
            || c.clients[&moved].closed)
    );
    assert_eq!(
        c.clients[&moved].connected.as_ref().map(|s| s.0),
        Some(session)
    );
    let bad = c.client_open(3, Some((session, vec![9; 16])), last_zxid);
    c.run_for(1_000);
    assert!(
        c.clients[&bad].closed && c.clients[&bad].connected.is_none(),
        "wrong password accepted"
    );
    for _ in 0..10 {
        c.send(moved, Request::Ping);
        c.run_for(2_000);
    }
    assert!(
        c.node(3).tree().node("/mine").is_some(),
        "session lost though its client moved"
    );
}

// A follower that restarts while the leader stays serves writes again: its forward stream
// starts afresh, and the leader must not mistake the new numbering for the old one's
// (it once did, silently dropping the restarted server's writes as duplicates).
#[test]
fn restarted_follower_serves_writes() {
    let mut c = cluster(3, 91);
    let leader = elect(&mut c);
    let follower = (1..=3).map(NodeId).find(|n| *n != leader).unwrap();
    let conn = c.connect(follower.0);
    for i in 0..5 {
        c.create(conn, &format!("/before{i}"), b"", 0).unwrap();
    }
    c.crash(follower);
    c.run_for(200);
    c.start(follower);
    c.run_for(2_000);
    assert_eq!(
        c.leader(),
        Some(leader),
        "the leader changed; the scenario needs it stable"
    );
    let conn = c.connect(follower.0);
    assert_eq!(c.create(conn, "/after", b"", 0), Ok("/after".to_owned()));
}

// Auth and requests pipelined right behind the ConnectRequest (as the Rust client and the
// Java client with queued auth do) are answered once the session is set up, in order.
#[test]
fn auth_pipelined_behind_connect_is_answered() {
    let mut c = cluster(3, 101);
    elect(&mut c);
    let conn = c.client_open(2, None, 0);
    let xid = c.send(
        conn,
        Request::Auth(wire::AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"alice:secret".to_vec(),
        }),
    );
    assert_eq!(xid, -4);
    let ping = c.send(
        conn,
        Request::Exists(PathWatchRequest {
            path: "/".into(),
            watch: false,
        }),
    );
    assert!(
        c.run_until(10_000, |c| c.clients[&conn].replies.contains_key(&ping)),
        "no reply"
    );
    assert!(c.clients[&conn].connected.is_some());
    let auth = c.clients[&conn].replies.get(&-4).map(|(h, _)| h.err);
    assert_eq!(
        auth,
        Some(0),
        "auth reply missing or failed: {:?}",
        c.clients[&conn].replies.keys()
    );
}

// Auth sent with an ordinary xid (the Rust zookeeper-client numbers it like any request) is
// answered under that same xid, as ZooKeeper does; answering -4 left that client timing out.
#[test]
fn auth_with_ordinary_xid_is_answered_under_that_xid() {
    let mut c = cluster(3, 102);
    elect(&mut c);
    let conn = c.connect(2);
    let xid = c.send_with_xid(
        conn,
        7,
        Request::Auth(wire::AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"alice:secret".to_vec(),
        }),
    );
    assert!(
        c.run_until(10_000, |c| c.clients[&conn].replies.contains_key(&xid)),
        "no auth reply under xid {xid}: {:?}",
        c.clients[&conn].replies.keys()
    );
    assert_eq!(
        c.clients[&conn].replies.get(&xid).map(|(h, _)| h.err),
        Some(0)
    );
    assert!(!c.clients[&conn].replies.contains_key(&-4));
}

// Each answer counts its latency on the server that sent it, from the request's arrival
// to the answer: a write through a follower waits at least for the leader's disk, a read
// can be answered at once, and `NodeStatus::latency` keeps min, max and the count.
#[test]
fn answers_count_their_latency() {
    let mut c = cluster(3, 41);
    elect(&mut c);
    let follower = (1..=3).find(|n| Some(NodeId(*n)) != c.leader()).unwrap();
    let before = c.node(follower).status().latency;
    let conn = c.connect(follower);
    for i in 0..4 {
        let path = format!("/lat-{i}");
        assert_eq!(c.create(conn, &path, b"x", 0), Ok(path.clone()));
        assert_eq!(c.get(conn, &path, false), Ok(b"x".to_vec()));
    }
    let after = c.node(follower).status().latency;
    // The connect, four creates and four reads.
    assert_eq!(after.count - before.count, 9);
    assert!(
        after.max_ms >= 1,
        "a write cannot be answered in 0 ms: {after:?}"
    );
    assert!(after.min_ms <= after.max_ms);
    assert!(after.avg_ms() >= after.min_ms as f64 && after.avg_ms() <= after.max_ms as f64);
    // The connection's own view, as `cons` prints it.
    let stats = c.node(follower).conn_stats(conn).unwrap();
    assert!(stats.session.is_some());
    assert_eq!(stats.last_op, "GETD");
    assert_eq!(stats.queued, 0);
    assert_eq!(stats.latency.count, 9);
    assert_eq!(stats.last_zxid, c.node(follower).applied_zxid().0);
}
