//! Benches of core's hot pure paths: the wire codec on a few typical messages, and the
//! tree's two write stages (prepare, then apply) on creates.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use paddock_core::acl::{Acl, Id};
use paddock_core::ids::{SessionId, Zxid};
use paddock_core::stat::Stat;
use paddock_core::tree::{CreateOp, CreateOpcode, DataTree, Op, OpContext, TreeConfig};
use paddock_core::wire::{
    CreateRequest, GetDataResponse, OpCode, PathWatchRequest, ReplyHeader, Request, RequestHeader,
    Response, decode_reply, decode_request, encode_reply, encode_request,
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

criterion_group!(benches, bench_wire, bench_tree);
criterion_main!(benches);
