//! `node_client_stream`: fuzzer bytes as one client's byte stream into a real
//! `paddock_core::node::Node`, the only member of its ensemble (so it leads and serves
//! writes), with its disk completing every write at once.
//!
//! Input layout: the first byte holds flags (bit 0: put a valid ConnectRequest frame in
//! front of the stream, so the fuzzer spends its effort after the handshake; bits 1-7:
//! how many ms pass after each chunk). The rest is chunks, each a length byte and that
//! many bytes, delivered as separate `ClientBytes` inputs with time passing between them.
//!
//! Properties: the node never panics (`NodeConfig::check_invariants` checks the tree after every
//! apply); and afterwards a well-behaved client on another connection, from another
//! address, still gets a session and an answer, in order, to a read and a write.

use std::net::{IpAddr, Ipv4Addr};

use paddock_core::ids::{ConnId, NodeId};
use paddock_core::node::{Input, Node, NodeConfig, Output};
use paddock_core::storage::{MemFiles, Store, StoreConfig};
use paddock_core::wire::{
    ConnectRequest, CreateRequest, FrameSplitter, MAX_FRAME_BYTES_DEFAULT, OpCode,
    PathWatchRequest, Reply, Request, RequestHeader, decode_connect_response, decode_reply,
    encode_connect_request, encode_request, frame,
};

/// The fuzzed connection.
const FUZZ_CONN: ConnId = ConnId(1);
/// The well-behaved connection opened afterwards.
const PROBE_CONN: ConnId = ConnId(2);
/// Steps the harness may take to settle one input before it calls the node stuck.
const SETTLE_STEPS_MAX: u32 = 10_000;

/// One node with an instant disk (the storage engine over in-memory files), and the
/// bytes each connection received.
pub struct Harness {
    node: Node,
    store: Store<MemFiles>,
    now_ms: u64,
    /// Bytes sent to the probe connection.
    probe_inbound: Vec<u8>,
    /// Whether the node closed the fuzzed connection.
    fuzz_closed: bool,
    /// Whether the node closed the probe connection.
    probe_closed: bool,
}

impl Harness {
    /// A single-member ensemble that has elected itself and is ready to serve.
    pub fn new() -> Harness {
        let id = NodeId(1);
        let mut config = NodeConfig::new(id, [id].into_iter().collect());
        config.check_invariants = true;
        // A SASL user, so SASL requests reach the DIGEST-MD5 exchange.
        config.sasl.users.insert("bob".into(), "bobsecret".into());
        let (store, opened) = Store::open(MemFiles::new(), StoreConfig::new(config.limits.clone()))
            .expect("empty files open");
        let node = Node::new(config, opened.durable, 7).expect("a fresh node starts");
        let mut harness = Harness {
            node,
            store,
            now_ms: 1_000_000,
            probe_inbound: Vec::new(),
            fuzz_closed: false,
            probe_closed: false,
        };
        for _ in 0..100 {
            if harness.node.is_leader() {
                return harness;
            }
            harness.advance(1_000);
        }
        panic!("a single-member ensemble did not elect itself in 100 s");
    }

    /// Feeds one input and everything it causes (disk completions, due timers).
    pub fn step(&mut self, input: Input) {
        let mut pending = vec![input];
        for _ in 0..SETTLE_STEPS_MAX {
            let Some(input) = pending.pop() else {
                return;
            };
            let mut outputs = Vec::new();
            self.node.step(self.now_ms, input, &mut outputs);
            let completions: Vec<Input> = outputs
                .into_iter()
                .filter_map(|output| self.route(output))
                .collect();
            // `pending` is a stack: push in reverse so completions are reported in the
            // order the writes were asked for.
            pending.extend(completions.into_iter().rev());
        }
        panic!("the node kept producing work for {SETTLE_STEPS_MAX} steps");
    }

    /// Lets `ms` pass, ticking at every deadline on the way.
    pub fn advance(&mut self, ms: u64) {
        let until_ms = self.now_ms + ms;
        while let Some(deadline) = self.node.next_deadline().filter(|d| *d <= until_ms) {
            self.now_ms = self.now_ms.max(deadline);
            self.step(Input::Tick);
        }
        self.now_ms = until_ms;
        self.step(Input::Tick);
    }

    /// Performs an output; returns the input that reports its completion, if any.
    fn route(&mut self, output: Output) -> Option<Input> {
        match output {
            Output::Persist(write) => {
                // Performed as a runtime would: snapshots encode the fuzzed state, and the
                // records and files are the server's.
                let done = write
                    .perform(&mut self.store)
                    .and_then(|done| self.store.sync().map(|()| done));
                match done {
                    Ok(done) => done,
                    Err(error) => panic!("in-memory files failed: {error}"),
                }
            }
            Output::ToClient { conn, bytes } => {
                if conn == PROBE_CONN {
                    self.probe_inbound.extend(bytes);
                }
                None
            }
            Output::CloseClient { conn } | Output::FourLetterWord { conn, .. } => {
                self.fuzz_closed |= conn == FUZZ_CONN;
                self.probe_closed |= conn == PROBE_CONN;
                None
            }
            Output::Peer { .. } | Output::PeerSnapshot { .. } | Output::Release(_) => None,
        }
    }
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

/// The target body. See the module documentation.
pub fn run(data: &[u8]) {
    let Some((flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut harness = Harness::new();
    let fuzz_addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    harness.step(Input::ClientConnected {
        conn: FUZZ_CONN,
        addr: fuzz_addr,
    });
    if flags & 1 == 1 {
        harness.step(Input::ClientBytes {
            conn: FUZZ_CONN,
            bytes: frame(&connect_payload()),
        });
    }
    let pause_ms = u64::from(flags >> 1) * 10;
    while let Some((len, tail)) = rest.split_first() {
        let (chunk, after) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = after;
        if harness.fuzz_closed {
            break;
        }
        harness.step(Input::ClientBytes {
            conn: FUZZ_CONN,
            bytes: chunk.to_vec(),
        });
        harness.advance(pause_ms);
    }
    probe(&mut harness);
}

fn connect_payload() -> Vec<u8> {
    let mut payload = Vec::new();
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 30_000,
        session_id: Default::default(),
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    encode_connect_request(&request, &mut payload);
    payload
}

/// A well-behaved client: connect, then an exists and a create; every answer must come,
/// in order, with the xid asked.
fn probe(harness: &mut Harness) {
    harness.step(Input::ClientConnected {
        conn: PROBE_CONN,
        addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    });
    let exists = Request::Exists(PathWatchRequest {
        path: "/zookeeper".to_owned(),
        watch: false,
    });
    let create = Request::Create(CreateRequest {
        path: "/probe-".to_owned(),
        data: Some(b"probe".to_vec()),
        acl: paddock_core::acl::Acl::open_unsafe(),
        flags: 2,
    });
    let mut bytes = frame(&connect_payload());
    for (xid, request) in [(1, &exists), (2, &create)] {
        let mut payload = Vec::new();
        let header = RequestHeader {
            xid,
            op: request.op_code(),
        };
        encode_request(&header, request, &mut payload);
        bytes.extend(frame(&payload));
    }
    harness.step(Input::ClientBytes {
        conn: PROBE_CONN,
        bytes,
    });
    harness.advance(100);
    assert!(
        !harness.probe_closed,
        "the node closed the well-behaved client"
    );
    let mut splitter = FrameSplitter::new(MAX_FRAME_BYTES_DEFAULT);
    splitter.push(&harness.probe_inbound);
    let mut next = || {
        splitter
            .next_frame()
            .expect("the node sends well-formed frames")
            .expect("the node answered the well-behaved client")
    };
    let connected = decode_connect_response(&next()).expect("a ConnectResponse");
    assert!(
        connected.timeout_ms > 0,
        "the well-behaved client got no session"
    );
    for (xid, op) in [(1, OpCode::Exists), (2, OpCode::Create)] {
        let (header, reply) = decode_reply(&next(), op).expect("a decodable reply");
        assert_eq!(header.xid, xid, "replies out of order");
        assert!(matches!(reply, Reply::Response(_)), "unexpected {reply:?}");
    }
}
