//! insta snapshots pinning the exact bytes (hex) of every message kind the codec writes:
//! each request opcode, each response body, multi and multiRead, notifications, reserved-xid
//! replies and the connect records. A change to any byte shows up as a snapshot diff; each
//! entry is also decoded back to the value it came from.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use paddock_core::acl::{Acl, Id};
use paddock_core::ids::SessionId;
use paddock_core::stat::Stat;
use paddock_core::wire::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn stat() -> Stat {
    Stat {
        czxid: 2,
        mzxid: 3,
        ctime: 1000,
        mtime: 2000,
        version: 1,
        cversion: 2,
        aversion: 3,
        ephemeral_owner: 0,
        data_length: 1,
        num_children: 4,
        pzxid: 5,
    }
}

fn create() -> CreateRequest {
    CreateRequest {
        path: "/n".into(),
        data: Some(b"d".to_vec()),
        acl: vec![Acl {
            perms: 31,
            id: Id::new("digest", "u:h"),
        }],
        flags: 3,
    }
}

fn create_ttl() -> CreateTtlRequest {
    CreateTtlRequest {
        path: "/t".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 5,
        ttl_ms: 60_000,
    }
}

fn watched(path: &str) -> PathWatchRequest {
    PathWatchRequest {
        path: path.into(),
        watch: true,
    }
}

fn all_requests() -> Vec<(&'static str, Request)> {
    let path = |p: &str| PathRequest { path: p.into() };
    vec![
        ("create", Request::Create(create())),
        ("create2", Request::Create2(create())),
        (
            "createContainer",
            Request::CreateContainer(CreateRequest {
                flags: 4,
                ..create()
            }),
        ),
        ("createTTL", Request::CreateTtl(create_ttl())),
        (
            "delete",
            Request::Delete(DeleteRequest {
                path: "/n".into(),
                version: -1,
            }),
        ),
        ("exists", Request::Exists(watched("/n"))),
        ("getData", Request::GetData(watched("/n"))),
        (
            "setData",
            Request::SetData(SetDataRequest {
                path: "/n".into(),
                data: Some(Vec::new()),
                version: 2,
            }),
        ),
        ("getACL", Request::GetAcl(path("/n"))),
        (
            "setACL",
            Request::SetAcl(SetAclRequest {
                path: "/n".into(),
                acl: Acl::read_unsafe(),
                version: 0,
            }),
        ),
        (
            "getChildren",
            Request::GetChildren(PathWatchRequest {
                path: "/".into(),
                watch: false,
            }),
        ),
        ("sync", Request::Sync(path("/"))),
        ("ping", Request::Ping),
        ("getChildren2", Request::GetChildren2(watched("/"))),
        (
            "check",
            Request::Check(CheckVersionRequest {
                path: "/n".into(),
                version: 7,
            }),
        ),
        (
            "multi",
            Request::Multi(vec![
                MultiOp::Create(create()),
                MultiOp::Create2(create()),
                MultiOp::CreateContainer(create()),
                MultiOp::CreateTtl(create_ttl()),
                MultiOp::Delete(DeleteRequest {
                    path: "/n".into(),
                    version: 1,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: "/n".into(),
                    data: None,
                    version: -1,
                }),
                MultiOp::Check(CheckVersionRequest {
                    path: "/n".into(),
                    version: 0,
                }),
            ]),
        ),
        ("multi (empty)", Request::Multi(Vec::new())),
        (
            "reconfig",
            Request::Reconfig(ReconfigRequest {
                joining_servers: "server.4=h:2888:3888;2181".into(),
                leaving_servers: String::new(),
                new_members: String::new(),
                cur_config_id: -1,
            }),
        ),
        (
            "checkWatches",
            Request::CheckWatches(WatchesRequest {
                path: "/n".into(),
                watcher_type: 3,
            }),
        ),
        (
            "removeWatches",
            Request::RemoveWatches(WatchesRequest {
                path: "/n".into(),
                watcher_type: 1,
            }),
        ),
        ("deleteContainer", Request::DeleteContainer(b"/c".to_vec())),
        (
            "multiRead",
            Request::MultiRead(vec![
                MultiReadOp::GetData(PathWatchRequest {
                    path: "/n".into(),
                    watch: false,
                }),
                MultiReadOp::GetChildren(PathWatchRequest {
                    path: "/".into(),
                    watch: false,
                }),
            ]),
        ),
        (
            "auth",
            Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: "digest".into(),
                auth: b"u:p".to_vec(),
            }),
        ),
        (
            "setWatches",
            Request::SetWatches(SetWatches {
                relative_zxid: 9,
                data_watches: vec!["/d".into()],
                exist_watches: vec!["/e".into()],
                child_watches: vec![],
            }),
        ),
        ("sasl", Request::Sasl(SaslToken { token: vec![1, 2] })),
        (
            "getEphemerals",
            Request::GetEphemerals(GetEphemeralsRequest {
                prefix_path: "/".into(),
            }),
        ),
        (
            "getAllChildrenNumber",
            Request::GetAllChildrenNumber(path("/")),
        ),
        (
            "setWatches2",
            Request::SetWatches2(SetWatches2 {
                relative_zxid: 9,
                data_watches: vec![],
                exist_watches: vec![],
                child_watches: vec!["/c".into()],
                persistent_watches: vec!["/p".into()],
                persistent_recursive_watches: vec!["/r".into()],
            }),
        ),
        (
            "addWatch",
            Request::AddWatch(AddWatchRequest {
                path: "/n".into(),
                mode: 1,
            }),
        ),
        ("whoAmI", Request::WhoAmI),
        ("closeSession", Request::CloseSession),
        (
            "unknown op 42",
            Request::Unknown {
                op: 42,
                body: vec![0xab],
            },
        ),
    ]
}

// Every request kind, with xid 1 (reserved xids for ping, auth and setWatches).
#[test]
fn request_bytes() {
    let mut lines = Vec::new();
    for (name, request) in all_requests() {
        let xid = match request {
            Request::Ping => -2,
            Request::Auth(_) => -4,
            Request::SetWatches(_) | Request::SetWatches2(_) => -8,
            _ => 1,
        };
        let header = RequestHeader {
            xid,
            op: request.op_code(),
        };
        let mut out = Vec::new();
        encode_request(&header, &request, &mut out);
        assert_eq!(decode_request(&out).unwrap(), (header, request), "{name}");
        lines.push(format!("{name}: {}", hex(&out)));
    }
    insta::assert_snapshot!(lines.join("\n"));
}

fn all_responses() -> Vec<(&'static str, OpCode, Option<Response>)> {
    let children = vec!["a".to_string(), "b".to_string()];
    vec![
        (
            "create",
            OpCode::Create,
            Some(Response::Create(CreateResponse {
                path: "/n0000000001".into(),
            })),
        ),
        (
            "create2",
            OpCode::Create2,
            Some(Response::Create2(Create2Response {
                path: "/n".into(),
                stat: stat(),
            })),
        ),
        ("delete", OpCode::Delete, None),
        ("exists", OpCode::Exists, Some(Response::Stat(stat()))),
        (
            "getData",
            OpCode::GetData,
            Some(Response::GetData(GetDataResponse {
                data: Some(b"d".to_vec()),
                stat: stat(),
            })),
        ),
        (
            "getData (null data)",
            OpCode::GetData,
            Some(Response::GetData(GetDataResponse {
                data: None,
                stat: stat(),
            })),
        ),
        ("setData", OpCode::SetData, Some(Response::Stat(stat()))),
        (
            "getACL",
            OpCode::GetAcl,
            Some(Response::GetAcl(GetAclResponse {
                acl: Acl::open_unsafe(),
                stat: stat(),
            })),
        ),
        ("setACL", OpCode::SetAcl, Some(Response::Stat(stat()))),
        (
            "getChildren",
            OpCode::GetChildren,
            Some(Response::GetChildren(children.clone())),
        ),
        ("sync", OpCode::Sync, Some(Response::Sync("/".into()))),
        (
            "getChildren2",
            OpCode::GetChildren2,
            Some(Response::GetChildren2(GetChildren2Response {
                children: children.clone(),
                stat: stat(),
            })),
        ),
        (
            "multi",
            OpCode::Multi,
            Some(Response::Multi(vec![
                MultiResult::Create(CreateResponse { path: "/a".into() }),
                MultiResult::Create2(Create2Response {
                    path: "/b".into(),
                    stat: stat(),
                }),
                MultiResult::Delete,
                MultiResult::SetData(stat()),
                MultiResult::Check,
            ])),
        ),
        (
            "multi (failed)",
            OpCode::Multi,
            Some(Response::Multi(vec![
                MultiResult::Error(0),
                MultiResult::Error(-110),
                MultiResult::Error(-2),
            ])),
        ),
        (
            "multi (empty)",
            OpCode::Multi,
            Some(Response::Multi(Vec::new())),
        ),
        (
            "reconfig",
            OpCode::Reconfig,
            Some(Response::GetData(GetDataResponse {
                data: Some(b"version=0".to_vec()),
                stat: stat(),
            })),
        ),
        ("checkWatches", OpCode::CheckWatches, None),
        ("removeWatches", OpCode::RemoveWatches, None),
        (
            "multiRead",
            OpCode::MultiRead,
            Some(Response::Multi(vec![
                MultiResult::GetData(GetDataResponse {
                    data: Some(Vec::new()),
                    stat: stat(),
                }),
                MultiResult::GetChildren(children.clone()),
                MultiResult::Error(-101),
            ])),
        ),
        (
            "sasl",
            OpCode::Sasl,
            Some(Response::Sasl(SaslToken { token: vec![3] })),
        ),
        (
            "getEphemerals",
            OpCode::GetEphemerals,
            Some(Response::GetEphemerals(vec!["/e/1".into()])),
        ),
        (
            "getAllChildrenNumber",
            OpCode::GetAllChildrenNumber,
            Some(Response::GetAllChildrenNumber(12)),
        ),
        (
            "addWatch",
            OpCode::AddWatch,
            Some(Response::AddWatch(ErrorResponse { err: 0 })),
        ),
        (
            "whoAmI",
            OpCode::WhoAmI,
            Some(Response::WhoAmI(vec![
                ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into(),
                },
                ClientInfo {
                    auth_scheme: "digest".into(),
                    user: "bob".into(),
                },
            ])),
        ),
        ("closeSession", OpCode::CloseSession, None),
    ]
}

// Every reply kind: success bodies by op, an error reply, reserved-xid replies, a notification.
#[test]
fn reply_bytes() {
    let header = ReplyHeader {
        xid: 1,
        zxid: 0x1_0000_0005,
        err: 0,
    };
    let mut lines = Vec::new();
    for (name, pending, body) in all_responses() {
        let mut out = Vec::new();
        encode_reply(&header, body.as_ref(), &mut out);
        assert_eq!(
            decode_reply(&out, pending).unwrap(),
            (header, Reply::Response(body)),
            "{name}"
        );
        lines.push(format!("{name}: {}", hex(&out)));
    }
    let special = [
        (
            "error NONODE",
            ReplyHeader {
                xid: 1,
                zxid: 5,
                err: -101,
            },
            Reply::Response(None),
        ),
        (
            "ping",
            ReplyHeader {
                xid: -2,
                zxid: 5,
                err: 0,
            },
            Reply::Ping,
        ),
        (
            "auth ok",
            ReplyHeader {
                xid: -4,
                zxid: 0,
                err: 0,
            },
            Reply::Auth,
        ),
        (
            "auth failed",
            ReplyHeader {
                xid: -4,
                zxid: 0,
                err: -115,
            },
            Reply::Auth,
        ),
        (
            "setWatches",
            ReplyHeader {
                xid: -8,
                zxid: 5,
                err: 0,
            },
            Reply::SetWatches,
        ),
        (
            "notification NodeChildrenChanged",
            ReplyHeader::NOTIFICATION,
            Reply::Event(WatcherEvent::new(
                paddock_core::watch::EventType::NodeChildrenChanged,
                "/",
            )),
        ),
    ];
    for (name, header, reply) in special {
        let mut out = Vec::new();
        encode_decoded_reply(&header, &reply, &mut out);
        assert_eq!(
            decode_reply(&out, OpCode::GetData).unwrap(),
            (header, reply),
            "{name}"
        );
        lines.push(format!("{name}: {}", hex(&out)));
    }
    insta::assert_snapshot!(lines.join("\n"));
}

// The handshake records (with and without the readOnly byte) and framing.
#[test]
fn connect_bytes() {
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0x1_0000_0009,
        timeout_ms: 30_000,
        session_id: SessionId(0x0100_0000_0000_0002),
        passwd: (0..16).collect(),
        read_only: Some(true),
    };
    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 30_000,
        session_id: SessionId(0x0100_0000_0000_0002),
        passwd: (0..16).collect(),
        read_only: Some(false),
    };
    let expired = ConnectResponse {
        timeout_ms: 0,
        session_id: SessionId(0),
        passwd: vec![0; 16],
        read_only: None,
        ..response.clone()
    };
    let mut lines = Vec::new();
    for (name, request) in [
        ("connect request", &request),
        (
            "connect request (no readOnly)",
            &ConnectRequest {
                read_only: None,
                ..request.clone()
            },
        ),
    ] {
        let mut out = Vec::new();
        encode_connect_request(request, &mut out);
        assert_eq!(&decode_connect_request(&out).unwrap(), request);
        lines.push(format!("{name}: {}", hex(&out)));
    }
    for (name, response) in [
        ("connect response", &response),
        ("connect response (expired, no readOnly)", &expired),
    ] {
        let mut out = Vec::new();
        encode_connect_response(response, &mut out);
        assert_eq!(&decode_connect_response(&out).unwrap(), response);
        lines.push(format!("{name}: {}", hex(&out)));
    }
    lines.push(format!(
        "frame(ping): {}",
        hex(&frame(&[0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 11]))
    ));
    insta::assert_snapshot!(lines.join("\n"));
}
