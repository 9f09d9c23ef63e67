//! Property tests of the wire codec: decode(encode(x)) == x for requests (multi and
//! multiRead included), replies, notifications and connect records; decoding arbitrary or
//! truncated bytes never panics; and whatever decodes re-encodes to a stable value.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use paddock_core::acl::{Acl, Id};
use paddock_core::ids::SessionId;
use paddock_core::stat::Stat;
use paddock_core::wire::*;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,8}"
}

fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12))
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..12)
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(text(), 0..4)
}

fn acl() -> impl Strategy<Value = Vec<Acl>> {
    let entry = (any::<i32>(), text(), text()).prop_map(|(perms, scheme, id)| Acl {
        perms,
        id: Id { scheme, id },
    });
    proptest::collection::vec(entry, 0..3)
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(
            |((czxid, mzxid, ctime, mtime), (version, cversion, aversion, owner), rest)| Stat {
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner: owner,
                data_length: rest.0,
                num_children: rest.1,
                pzxid: rest.2,
            },
        )
}

fn create() -> impl Strategy<Value = CreateRequest> {
    (text(), data(), acl(), any::<i32>()).prop_map(|(path, data, acl, flags)| CreateRequest {
        path,
        data,
        acl,
        flags,
    })
}

fn create_ttl() -> impl Strategy<Value = CreateTtlRequest> {
    (text(), data(), acl(), any::<i32>(), any::<i64>()).prop_map(
        |(path, data, acl, flags, ttl_ms)| CreateTtlRequest {
            path,
            data,
            acl,
            flags,
            ttl_ms,
        },
    )
}

fn path_watch() -> impl Strategy<Value = PathWatchRequest> {
    (text(), any::<bool>()).prop_map(|(path, watch)| PathWatchRequest { path, watch })
}

fn path() -> impl Strategy<Value = PathRequest> {
    text().prop_map(|path| PathRequest { path })
}

fn delete() -> impl Strategy<Value = DeleteRequest> {
    (text(), any::<i32>()).prop_map(|(path, version)| DeleteRequest { path, version })
}

fn set_data() -> impl Strategy<Value = SetDataRequest> {
    (text(), data(), any::<i32>()).prop_map(|(path, data, version)| SetDataRequest {
        path,
        data,
        version,
    })
}

fn check() -> impl Strategy<Value = CheckVersionRequest> {
    (text(), any::<i32>()).prop_map(|(path, version)| CheckVersionRequest { path, version })
}

fn watches() -> impl Strategy<Value = WatchesRequest> {
    (text(), any::<i32>()).prop_map(|(path, watcher_type)| WatchesRequest { path, watcher_type })
}

fn multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create().prop_map(MultiOp::Create),
        create().prop_map(MultiOp::Create2),
        create().prop_map(MultiOp::CreateContainer),
        create_ttl().prop_map(MultiOp::CreateTtl),
        delete().prop_map(MultiOp::Delete),
        set_data().prop_map(MultiOp::SetData),
        check().prop_map(MultiOp::Check),
    ]
}

fn multi_read_op() -> impl Strategy<Value = MultiReadOp> {
    prop_oneof![
        path_watch().prop_map(MultiReadOp::GetData),
        path_watch().prop_map(MultiReadOp::GetChildren),
    ]
}

/// Opcodes that decode as `Request::Unknown`: unknown ones and the internal 0, -1, -10.
fn unknown_op() -> impl Strategy<Value = i32> {
    any::<i32>().prop_filter("not a client opcode", |op| match OpCode::try_from(*op) {
        Err(_) => true,
        Ok(op) => matches!(
            op,
            OpCode::Notification | OpCode::Error | OpCode::CreateSession
        ),
    })
}

fn request() -> impl Strategy<Value = Request> {
    let writes = prop_oneof![
        create().prop_map(Request::Create),
        create().prop_map(Request::Create2),
        create().prop_map(Request::CreateContainer),
        create_ttl().prop_map(Request::CreateTtl),
        delete().prop_map(Request::Delete),
        set_data().prop_map(Request::SetData),
        (text(), acl(), any::<i32>())
            .prop_map(|(path, acl, version)| Request::SetAcl(SetAclRequest { path, acl, version })),
        check().prop_map(Request::Check),
        proptest::collection::vec(multi_op(), 0..4).prop_map(Request::Multi),
        proptest::collection::vec(multi_read_op(), 0..4).prop_map(Request::MultiRead),
        bytes().prop_map(Request::DeleteContainer),
    ];
    let reads = prop_oneof![
        path_watch().prop_map(Request::Exists),
        path_watch().prop_map(Request::GetData),
        path_watch().prop_map(Request::GetChildren),
        path_watch().prop_map(Request::GetChildren2),
        path().prop_map(Request::GetAcl),
        path().prop_map(Request::Sync),
        path().prop_map(Request::GetAllChildrenNumber),
        text().prop_map(|prefix_path| Request::GetEphemerals(GetEphemeralsRequest { prefix_path })),
        Just(Request::Ping),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
    ];
    let session = prop_oneof![
        (text(), text(), text(), any::<i64>()).prop_map(|(j, l, n, id)| {
            Request::Reconfig(ReconfigRequest {
                joining_servers: j,
                leaving_servers: l,
                new_members: n,
                cur_config_id: id,
            })
        }),
        watches().prop_map(Request::CheckWatches),
        watches().prop_map(Request::RemoveWatches),
        (any::<i32>(), text(), bytes()).prop_map(|(auth_type, scheme, auth)| {
            Request::Auth(AuthPacket {
                auth_type,
                scheme,
                auth,
            })
        }),
        (any::<i64>(), strings(), strings(), strings()).prop_map(|(zxid, d, e, c)| {
            Request::SetWatches(SetWatches {
                relative_zxid: zxid,
                data_watches: d,
                exist_watches: e,
                child_watches: c,
            })
        }),
        (
            any::<i64>(),
            strings(),
            strings(),
            strings(),
            strings(),
            strings()
        )
            .prop_map(|(zxid, d, e, c, p, r)| {
                Request::SetWatches2(SetWatches2 {
                    relative_zxid: zxid,
                    data_watches: d,
                    exist_watches: e,
                    child_watches: c,
                    persistent_watches: p,
                    persistent_recursive_watches: r,
                })
            }),
        bytes().prop_map(|token| Request::Sasl(SaslToken { token })),
        (text(), any::<i32>())
            .prop_map(|(path, mode)| Request::AddWatch(AddWatchRequest { path, mode })),
        (unknown_op(), bytes()).prop_map(|(op, body)| Request::Unknown { op, body }),
    ];
    prop_oneof![writes, reads, session]
}

fn multi_results() -> impl Strategy<Value = Vec<MultiResult>> {
    let result = prop_oneof![
        text().prop_map(|path| MultiResult::Create(CreateResponse { path })),
        (text(), stat())
            .prop_map(|(path, stat)| MultiResult::Create2(Create2Response { path, stat })),
        Just(MultiResult::Delete),
        stat().prop_map(MultiResult::SetData),
        Just(MultiResult::Check),
        any::<i32>().prop_map(MultiResult::Error),
    ];
    proptest::collection::vec(result, 0..4)
}

fn multi_read_results() -> impl Strategy<Value = Vec<MultiResult>> {
    let result = prop_oneof![
        (data(), stat())
            .prop_map(|(data, stat)| MultiResult::GetData(GetDataResponse { data, stat })),
        strings().prop_map(MultiResult::GetChildren),
        any::<i32>().prop_map(MultiResult::Error),
    ];
    proptest::collection::vec(result, 0..4)
}

/// A success body together with an opcode whose reply it is.
fn response() -> impl Strategy<Value = (OpCode, Response)> {
    let create2_op = prop_oneof![
        Just(OpCode::Create2),
        Just(OpCode::CreateContainer),
        Just(OpCode::CreateTtl)
    ];
    let stat_op = prop_oneof![
        Just(OpCode::Exists),
        Just(OpCode::SetData),
        Just(OpCode::SetAcl)
    ];
    let get_data_op = prop_oneof![Just(OpCode::GetData), Just(OpCode::Reconfig)];
    prop_oneof![
        text().prop_map(|path| (OpCode::Create, Response::Create(CreateResponse { path }))),
        (create2_op, text(), stat())
            .prop_map(|(op, path, stat)| (op, Response::Create2(Create2Response { path, stat }))),
        (stat_op, stat()).prop_map(|(op, stat)| (op, Response::Stat(stat))),
        (get_data_op, data(), stat())
            .prop_map(|(op, data, stat)| (op, Response::GetData(GetDataResponse { data, stat }))),
        (acl(), stat()).prop_map(|(acl, stat)| (
            OpCode::GetAcl,
            Response::GetAcl(GetAclResponse { acl, stat })
        )),
        strings().prop_map(|c| (OpCode::GetChildren, Response::GetChildren(c))),
        (strings(), stat()).prop_map(|(children, stat)| {
            (
                OpCode::GetChildren2,
                Response::GetChildren2(GetChildren2Response { children, stat }),
            )
        }),
        text().prop_map(|path| (OpCode::Sync, Response::Sync(path))),
        multi_results().prop_map(|r| (OpCode::Multi, Response::Multi(r))),
        multi_read_results().prop_map(|r| (OpCode::MultiRead, Response::Multi(r))),
        bytes().prop_map(|token| (OpCode::Sasl, Response::Sasl(SaslToken { token }))),
        strings().prop_map(|p| (OpCode::GetEphemerals, Response::GetEphemerals(p))),
        any::<i32>().prop_map(|n| (
            OpCode::GetAllChildrenNumber,
            Response::GetAllChildrenNumber(n)
        )),
        any::<i32>().prop_map(|err| (OpCode::AddWatch, Response::AddWatch(ErrorResponse { err }))),
        proptest::collection::vec((text(), text()), 0..3).prop_map(|infos| {
            let infos = infos
                .into_iter()
                .map(|(auth_scheme, user)| ClientInfo { auth_scheme, user });
            (OpCode::WhoAmI, Response::WhoAmI(infos.collect()))
        }),
    ]
}

fn op_code() -> impl Strategy<Value = OpCode> {
    let all: Vec<OpCode> = OpCode::all().collect();
    proptest::sample::select(all)
}

/// Xids that are not reserved, so the reply is matched to the pending request.
fn normal_xid() -> impl Strategy<Value = i32> {
    any::<i32>().prop_filter("not reserved", |xid| ![-1, -2, -4, -8].contains(xid))
}

proptest! {
    // Every request re-decodes to itself, header included.
    #[test]
    fn request_round_trip(xid in any::<i32>(), request in request()) {
        let header = RequestHeader { xid, op: request.op_code() };
        let mut out = Vec::new();
        encode_request(&header, &request, &mut out);
        prop_assert_eq!(decode_request(&out).unwrap(), (header, request));
    }

    // Every success body re-decodes to itself when the client says which op it answers.
    #[test]
    fn response_round_trip(xid in normal_xid(), zxid in any::<i64>(), (op, body) in response()) {
        let header = ReplyHeader { xid, zxid, err: 0 };
        let mut out = Vec::new();
        encode_reply(&header, Some(&body), &mut out);
        prop_assert_eq!(decode_reply(&out, op).unwrap(), (header, Reply::Response(Some(body))));
    }

    // A non-zero err means header only, whatever the pending op.
    #[test]
    fn error_reply_round_trip(
        xid in normal_xid(),
        zxid in any::<i64>(),
        err in any::<i32>().prop_filter("non-zero", |e| *e != 0),
        op in op_code(),
    ) {
        let header = ReplyHeader { xid, zxid, err };
        let mut out = Vec::new();
        encode_reply(&header, None, &mut out);
        prop_assert_eq!(out.len(), 16);
        prop_assert_eq!(decode_reply(&out, op).unwrap(), (header, Reply::Response(None)));
    }

    // Notifications and reserved-xid replies round trip whatever the pending op.
    #[test]
    fn reserved_reply_round_trip(
        zxid in any::<i64>(),
        err in any::<i32>(),
        event_type in any::<i32>(),
        state in any::<i32>(),
        path in text(),
        op in op_code(),
    ) {
        let event = WatcherEvent { event_type, state, path };
        let replies = [
            (ReplyHeader { xid: -1, zxid, err }, Reply::Event(event)),
            (ReplyHeader { xid: -2, zxid, err }, Reply::Ping),
            (ReplyHeader { xid: -4, zxid, err }, Reply::Auth),
            (ReplyHeader { xid: -8, zxid, err }, Reply::SetWatches),
        ];
        for (header, reply) in replies {
            let mut out = Vec::new();
            encode_decoded_reply(&header, &reply, &mut out);
            prop_assert_eq!(decode_reply(&out, op).unwrap(), (header, reply));
        }
    }

    // Connect records round trip, readOnly present or absent.
    #[test]
    fn connect_round_trip(
        version in any::<i32>(),
        zxid in any::<i64>(),
        timeout_ms in any::<i32>(),
        session in any::<i64>(),
        passwd in bytes(),
        read_only in proptest::option::of(any::<bool>()),
    ) {
        let request = ConnectRequest {
            protocol_version: version,
            last_zxid_seen: zxid,
            timeout_ms,
            session_id: SessionId(session),
            passwd: passwd.clone(),
            read_only,
        };
        let mut out = Vec::new();
        encode_connect_request(&request, &mut out);
        prop_assert_eq!(decode_connect_request(&out).unwrap(), request);

        let response = ConnectResponse {
            protocol_version: version,
            timeout_ms,
            session_id: SessionId(session),
            passwd,
            read_only,
        };
        let mut out = Vec::new();
        encode_connect_response(&response, &mut out);
        prop_assert_eq!(decode_connect_response(&out).unwrap(), response);
    }

    // Arbitrary bytes never panic any decoder; whatever decodes re-encodes to bytes that
    // decode to the same value (decoding is a projection).
    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok((header, request)) = decode_request(&input) {
            let mut out = Vec::new();
            encode_request(&header, &request, &mut out);
            prop_assert_eq!(decode_request(&out).unwrap(), (header, request));
        }
        for op in OpCode::all() {
            if let Ok((header, reply)) = decode_reply(&input, op) {
                let mut out = Vec::new();
                encode_decoded_reply(&header, &reply, &mut out);
                prop_assert_eq!(decode_reply(&out, op).unwrap(), (header, reply));
            }
        }
        let _ = decode_connect_request(&input);
        let _ = decode_connect_response(&input);
        let _ = split_frame(&input, MAX_FRAME_BYTES_DEFAULT);
        let _ = classify_connection_start(&input);
    }

    // Arbitrary bytes behind a valid header reach the body decoders of every opcode,
    // including multi, without panicking.
    #[test]
    fn arbitrary_bodies_never_panic(
        op in op_code(),
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut input = 1i32.to_be_bytes().to_vec();
        input.extend(op.code().to_be_bytes());
        input.extend(&body);
        let _ = decode_request(&input);
        let mut reply = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        reply.extend(&body);
        let _ = decode_reply(&reply, op);
    }

    // Every strict prefix of a jute-encoded request fails to decode (raw-bodied requests,
    // deleteContainer and unknown ops, excepted): truncation is always detected.
    #[test]
    fn truncated_requests_fail(request in request(), cut in any::<prop::sample::Index>()) {
        prop_assume!(!matches!(request, Request::DeleteContainer(_) | Request::Unknown { .. }));
        let mut out = Vec::new();
        encode_request(&RequestHeader { xid: 1, op: request.op_code() }, &request, &mut out);
        let len = cut.index(out.len());
        prop_assert!(decode_request(&out[..len]).is_err());
    }

    // Every strict prefix of a reply with a body fails to decode.
    #[test]
    fn truncated_replies_fail((op, body) in response(), cut in any::<prop::sample::Index>()) {
        let mut out = Vec::new();
        encode_reply(&ReplyHeader { xid: 1, zxid: 1, err: 0 }, Some(&body), &mut out);
        let len = cut.index(out.len());
        prop_assert!(decode_reply(&out[..len], op).is_err());
    }

    // A frame splitter fed a stream of frames in arbitrary chunks returns the same payloads.
    #[test]
    fn splitter_round_trip(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6),
        chunk_bytes in 1usize..17,
    ) {
        let stream: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
        let mut splitter = FrameSplitter::new(64);
        let mut got = Vec::new();
        for chunk in stream.chunks(chunk_bytes) {
            splitter.push(chunk);
            while let Some(payload) = splitter.next_frame().unwrap() {
                got.push(payload);
            }
        }
        prop_assert_eq!(got, payloads);
        prop_assert_eq!(splitter.buffered_bytes(), 0);
    }
}
