//! Benches of core's hot pure paths: the wire codec on a few typical messages, the
//! tree's two write stages (prepare, then apply) on creates, and a whole standalone
//! `Node` taking pipelined client requests (decode, classify, prepare, replicate, apply,
//! encode the reply) on a tree of 100,000 znodes.

#![allow(missing_docs, clippy::unwrap_used)]

/// The allocator `paddock serve` runs with (net-real/src/main.rs).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::collections::{BTreeSet, VecDeque};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use paddock_core::acl::{Acl, Id};
use paddock_core::ids::{ConnId, NodeId, SessionId, Zxid};
use paddock_core::node::{Input, Node, NodeConfig, Output, Persist};
use paddock_core::replication::DurableState;
use paddock_core::stat::Stat;
use paddock_core::tree::{CreateOp, CreateOpcode, DataTree, Op, OpContext, TreeConfig};
use paddock_core::wire::{
    ConnectRequest, CreateRequest, GetDataResponse, OpCode, PathWatchRequest, ReplyHeader, Request,
    RequestHeader, Response, SetDataRequest, decode_reply, decode_request, encode_connect_request,
    encode_reply, encode_request, frame,
};

/// Requests a client typically sends: a read with a watch and a create with 100 bytes.
fn requests() -> Vec<(&'static str, RequestHeader, Request)> {
    let get = Request::GetData(PathWatchRequest {
        path: "/app/config/service-17".into(),
        watch: true,
    });
    let create = Request::Create(CreateRequest {
        path: "/app/locks/lock-".into(),
        data: Some(vec![7; 100]),
        acl: Acl::open_unsafe(),
        flags: 3,
    });
    vec![
        (
            "get_data",
            RequestHeader {
                xid: 5,
                op: get.op_code(),
            },
            get,
        ),
        (
            "create",
            RequestHeader {
                xid: 6,
                op: create.op_code(),
            },
            create,
        ),
    ]
}

fn bench_wire(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(1));
    for (name, header, request) in requests() {
        let mut payload = Vec::new();
        encode_request(&header, &request, &mut payload);
        group.bench_function(format!("decode_request_{name}"), |b| {
            b.iter(|| decode_request(black_box(&payload)).unwrap())
        });
        group.bench_function(format!("encode_request_{name}"), |b| {
            let mut out = Vec::with_capacity(256);
            b.iter(|| {
                out.clear();
                encode_request(black_box(&header), black_box(&request), &mut out);
            })
        });
    }
    let reply_header = ReplyHeader {
        xid: 5,
        zxid: 0x1_0000_0042,
        err: 0,
    };
    let response = Response::GetData(GetDataResponse {
        data: Some(vec![1; 100]),
        stat: Stat::default(),
    });
    let mut reply = Vec::new();
    encode_reply(&reply_header, Some(&response), &mut reply);
    group.bench_function("encode_reply_get_data", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            encode_reply(
                black_box(&reply_header),
                Some(black_box(&response)),
                &mut out,
            );
        })
    });
    group.bench_function("decode_reply_get_data", |b| {
        b.iter(|| decode_reply(black_box(&reply), OpCode::GetData).unwrap())
    });
    group.finish();
}

/// Creates this many znodes under one parent per measured batch.
const TREE_CREATES_PER_BATCH: u64 = 1_000;

fn bench_tree(c: &mut Criterion) {
    let mut group = c.benchmark_group("tree");
    group.throughput(Throughput::Elements(TREE_CREATES_PER_BATCH));
    let mut parent = DataTree::new(TreeConfig::default());
    let ctx = |zxid: u64| OpContext {
        zxid: Zxid(zxid),
        time_ms: 1_700_000_000_000,
        session: SessionId(1),
        session_live: true,
        ids: vec![Id::new("ip", "127.0.0.1")],
    };
    let create = |path: &str, flags: i32| {
        Op::Create(CreateOp {
            opcode: CreateOpcode::Create,
            path: path.to_owned(),
            data: Some(vec![3; 64]),
            acl: Acl::open_unsafe(),
            flags,
        })
    };
    let txn = parent.prepare(&create("/app", 0), &ctx(1)).unwrap();
    parent.apply(&txn);
    // Persistent sequential creates: each one reads and bumps the parent's cversion.
    group.bench_function("prepare_apply_create_sequential", |b| {
        b.iter_batched(
            || parent.clone(),
            |mut tree| {
                for i in 0..TREE_CREATES_PER_BATCH {
                    let txn = tree.prepare(&create("/app/n-", 2), &ctx(2 + i)).unwrap();
                    black_box(tree.apply(&txn));
                }
                tree
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// A standalone node with one connected session, driven by hand: what it asks to persist
/// is reported durable at once, and the bytes it sends to the client are counted.
struct Standalone {
    node: Node,
    conn: ConnId,
    now_ms: u64,
    out: Vec<Output>,
    inputs: VecDeque<Input>,
    reply_bytes: usize,
}

impl Standalone {
    fn new() -> Standalone {
        let id = NodeId(1);
        let mut config = NodeConfig::new(id, BTreeSet::from([id]));
        // The server encodes snapshots on a thread of its own, off the loop measured
        // here; this harness would encode them inline, so it takes none.
        config.snapshot_every_entries = u64::MAX;
        config.snapshot_every_bytes = u64::MAX;
        let node = Node::new(config, DurableState::default(), 7).unwrap();
        let mut s = Standalone {
            node,
            conn: ConnId(1),
            now_ms: 1_000,
            out: Vec::new(),
            inputs: VecDeque::new(),
            reply_bytes: 0,
        };
        s.run(Input::Tick);
        s.run(Input::ClientConnected {
            conn: s.conn,
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        });
        let mut connect = Vec::new();
        encode_connect_request(
            &ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms: 30_000,
                session_id: SessionId(0),
                passwd: vec![0; 16],
                read_only: Some(false),
            },
            &mut connect,
        );
        s.run(Input::ClientBytes {
            conn: s.conn,
            bytes: frame(&connect),
        });
        assert!(s.reply_bytes > 0, "the session was not established");
        s
    }

    /// Steps `input` and everything it leads to (durability reports) to quiescence.
    fn run(&mut self, input: Input) {
        self.inputs.push_back(input);
        while let Some(input) = self.inputs.pop_front() {
            self.now_ms += 1;
            self.node.step(self.now_ms, input, &mut self.out);
            for output in self.out.drain(..) {
                match output {
                    Output::Persist(write) => {
                        // An instant disk: this bench measures the node, not storage.
                        if let Persist::WriteSnapshot { state, .. } = &write {
                            drop(state.encode());
                        }
                        self.inputs.extend(write.completion());
                    }
                    Output::ToClient { bytes, .. } => self.reply_bytes += bytes.len(),
                    _ => {}
                }
            }
        }
    }

    /// `requests` framed back to back, as one read from the socket.
    fn pipelined(requests: &[Request], first_xid: i32) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (xid, request) in (first_xid..).zip(requests) {
            let mut payload = Vec::new();
            let header = RequestHeader {
                xid,
                op: request.op_code(),
            };
            encode_request(&header, request, &mut payload);
            bytes.extend_from_slice(&frame(&payload));
        }
        bytes
    }
}

/// znodes in the node's tree before measuring.
const NODE_TREE_ZNODES: usize = 100_000;
/// Requests per pipelined batch (one socket read).
const NODE_BATCH: usize = 64;

fn bench_node(c: &mut Criterion) {
    let mut s = Standalone::new();
    let path = |i: usize| format!("/n/{:06}", i % NODE_TREE_ZNODES);
    let create = |path: String| {
        Request::Create(CreateRequest {
            path,
            data: Some(vec![5; 128]),
            acl: Acl::open_unsafe(),
            flags: 0,
        })
    };
    let mut xid = 1;
    let mut send = |s: &mut Standalone, requests: &[Request]| {
        let bytes = Standalone::pipelined(requests, xid);
        xid += requests.len() as i32;
        s.run(Input::ClientBytes {
            conn: s.conn,
            bytes,
        });
    };
    send(&mut s, &[create("/n".into())]);
    let creates: Vec<Request> = (0..NODE_TREE_ZNODES).map(|i| create(path(i))).collect();
    for chunk in creates.chunks(1_000) {
        send(&mut s, chunk);
    }
    assert!(s.node.tree().node_count() > NODE_TREE_ZNODES);
    let gets: Vec<Request> = (0..NODE_BATCH)
        .map(|i| {
            Request::GetData(PathWatchRequest {
                path: path(i * 1_543),
                watch: false,
            })
        })
        .collect();
    let sets: Vec<Request> = (0..NODE_BATCH)
        .map(|i| {
            Request::SetData(SetDataRequest {
                path: path(i * 1_543),
                data: Some(vec![6; 128]),
                version: -1,
            })
        })
        .collect();
    let mut group = c.benchmark_group("node");
    group.throughput(Throughput::Elements(NODE_BATCH as u64));
    for (name, batch) in [("get_data_pipelined", &gets), ("set_data_pipelined", &sets)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let before = s.reply_bytes;
                send(&mut s, batch);
                assert!(s.reply_bytes > before, "no replies");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_wire, bench_tree, bench_node);
criterion_main!(benches);
