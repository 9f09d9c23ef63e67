//! Writes the seed corpora under `fuzz/corpus/<target>/`: the golden wire vectors of
//! `core/tests/vectors` (each frame's payload, and each connection's client stream),
//! encoded messages of every kind, a real log, sample configs. Run it after changing a
//! format, review the diff, and commit: `cargo run -p paddock-fuzz-targets --example
//! seed_corpus`. Files are named by content hash, so re-running adds nothing twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use paddock_core::acl::Acl;
use paddock_core::ids::{ConnId, Epoch, NodeId, SessionId, Zxid};
use paddock_core::node::{Origin, PeerMessage, Proposal, ProposalBody, Write, WriteOp};
use paddock_core::replication::{AppendOutcome, Entry, Message, MessageBody, SnapshotMeta};
use paddock_core::tree::{DeleteOp, Op};
use paddock_core::wire::{
    CreateRequest, MultiOp, PathWatchRequest, Request, RequestHeader, SetDataRequest,
    encode_request, frame,
};
use paddock_fuzz_targets::storage_recover::real_log;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn write(target: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    // FNV-1a: a stable name from the content.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in data {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
    }
    std::fs::write(dir.join(format!("{hash:016x}")), data).unwrap();
}

/// (client stream, every frame payload) of each golden vector file.
fn vectors() -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/vectors");
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    names.sort();
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut stream = Vec::new();
        let mut payloads = Vec::new();
        for line in text.lines() {
            let Some((side, hex)) = line.split_once(' ') else {
                continue;
            };
            if side != "C" && side != "S" {
                continue;
            }
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            if side == "C" {
                stream.extend_from_slice(&bytes);
            }
            payloads.push(bytes[4..].to_vec());
        }
        out.push((stream, payloads));
    }
    out
}

fn wire_and_node() {
    for (stream, payloads) in vectors() {
        for payload in &payloads {
            write("wire_decode", payload);
        }
        write("wire_decode", &stream[..stream.len().min(4096)]);
        // node_client_stream: flags 0 (the stream brings its own handshake), then chunks.
        let mut input = vec![0u8];
        for chunk in stream.chunks(200) {
            input.push(u8::try_from(chunk.len()).unwrap());
            input.extend_from_slice(chunk);
        }
        write("node_client_stream", &input);
    }
    // A stream after the harness's own handshake (flags 1): creates, a multi, reads.
    let requests = [
        Request::Create(CreateRequest {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: Acl::open_unsafe(),
            flags: 0,
        }),
        Request::Create(CreateRequest {
            path: "/a/e".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 3,
        }),
        Request::GetData(PathWatchRequest {
            path: "/a".into(),
            watch: true,
        }),
        Request::SetData(SetDataRequest {
            path: "/a".into(),
            data: Some(b"y".to_vec()),
            version: -1,
        }),
        Request::Multi(vec![MultiOp::Create(CreateRequest {
            path: "/b".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 0,
        })]),
        Request::CloseSession,
    ];
    let mut input = vec![1u8];
    for (xid, request) in (1..).zip(&requests) {
        let mut payload = Vec::new();
        let header = RequestHeader {
            xid,
            op: request.op_code(),
        };
        encode_request(&header, request, &mut payload);
        write("wire_decode", &payload);
        let framed = frame(&payload);
        input.push(u8::try_from(framed.len()).unwrap());
        input.extend_from_slice(&framed);
    }
    write("node_client_stream", &input);
}

fn peer() {
    let entry = |index, counter, payload: Vec<u8>| Entry {
        index,
        zxid: Zxid::new(Epoch(2), counter),
        payload,
    };
    let proposal = Proposal {
        origin: Some(Origin {
            node: NodeId(2),
            conn: ConnId(9),
            seq: 4,
            xid: 17,
        }),
        body: ProposalBody::Sync,
    };
    let bodies = vec![
        MessageBody::PreVote {
            last_index: 3,
            last_zxid: Zxid::new(Epoch(1), 2),
        },
        MessageBody::VoteReply { granted: true },
        MessageBody::Append {
            prev_index: 1,
            prev_zxid: Zxid::new(Epoch(1), 1),
            entries: vec![entry(2, 0, Vec::new()), entry(3, 1, proposal.encode())],
            commit_index: 1,
        },
        MessageBody::AppendReply(AppendOutcome::Accepted { match_index: 3 }),
        MessageBody::Heartbeat { commit_index: 3 },
        MessageBody::Snapshot {
            meta: SnapshotMeta {
                index: 3,
                zxid: Zxid::new(Epoch(2), 1),
            },
            offset: 0,
            total_bytes: 8,
            bytes: b"snapshot".to_vec(),
        },
        MessageBody::SnapshotReply {
            index: 3,
            offset: 0,
            received_bytes: 8,
        },
    ];
    for body in bodies {
        let message = PeerMessage::Replication(Message {
            epoch: Epoch(2),
            body,
        });
        write("peer_decode", &message.encode());
    }
    let write_op = Write {
        origin: None,
        session: SessionId(5),
        ids: Vec::new(),
        op: WriteOp::Tree(Op::Delete(DeleteOp {
            path: "/x".into(),
            version: -1,
        })),
    };
    let others = [
        PeerMessage::Forward {
            epoch: Epoch(2),
            stream: 0x5eed,
            first_seq: 0,
            writes: vec![write_op],
        },
        PeerMessage::ForwardAck {
            epoch: Epoch(2),
            stream: 0x5eed,
            next_seq: 1,
        },
        PeerMessage::Touch {
            sessions: vec![SessionId(5)],
        },
    ];
    for message in others {
        write("peer_decode", &message.encode());
    }
    write("peer_decode", &proposal.encode());
    for (_, payload) in &real_log().records {
        write("peer_decode", payload);
    }
}

fn storage() {
    // Damage variant (odd first byte): no damage, one torn tail, one flipped bit.
    write("storage_recover", &[1, 2]);
    write("storage_recover", &[1, 0, 0, 2, 0x30, 0x00]);
    write("storage_recover", &[1, 2, 1, 0, 0x40, 0x00, 3]);
    // Arbitrary variant (even first byte): the real segments as raw chunks.
    let log = real_log();
    for segment in &log.segments {
        let mut input = vec![0u8, 0];
        input.extend_from_slice(segment);
        write("storage_recover", &input);
    }
}

fn configs() {
    let standalone = "tickTime=2000\ndataDir=/var/lib/zookeeper\nclientPort=2181\n";
    let ensemble = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/data\n\
        dataLogDir=/datalog\nclientPort=2181\nclientPortAddress=127.0.0.1\n\
        maxClientCnxns=60\nminSessionTimeout=4000\nmaxSessionTimeout=40000\n\
        autopurge.snapRetainCount=3\nautopurge.purgeInterval=1\n\
        4lw.commands.whitelist=ruok,srvr,mntr\nsnapCount=100000\njute.maxbuffer=1048575\n\
        server.1=zk1:2888:3888\nserver.2=zk2:2888:3888:participant\n\
        server.3=zk3:2888:3888:observer;2181\n# comment\n! also a comment\nunknown.key=1\n";
    for text in [standalone, ensemble, "tickTime:0\n", "server.x=zk:1:2\n"] {
        write("zoo_cfg", text.as_bytes());
    }
}

fn small_inputs() {
    // wire_roundtrip and tree_ops read structured values from any bytes.
    for seed in 0u8..6 {
        let bytes: Vec<u8> = (0..96u16)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed * 17))
            .collect();
        write("wire_roundtrip", &bytes);
        write("tree_ops", &bytes);
    }
    // sim_cluster: seed (8 bytes), nodes, clients, ops, fault mask (2 bytes).
    write("sim_cluster", &[1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 20, 0, 0]);
    write(
        "sim_cluster",
        &[7, 0, 0, 0, 0, 0, 0, 0, 1, 2, 40, 0xff, 0x01],
    );
    write(
        "sim_cluster",
        &[42, 0, 0, 0, 0, 0, 0, 0, 0, 3, 60, 0x10, 0x00],
    );
}

fn main() {
    wire_and_node();
    peer();
    storage();
    configs();
    small_inputs();
    println!(
        "seed corpora written under {}",
        fuzz_dir().join("corpus").display()
    );
}
