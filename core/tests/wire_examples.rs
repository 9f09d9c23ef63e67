//! Byte-exact checks of the wire layouts in docs/protocol.md, and one test per `DecodeError` path
//! of the wire codec (truncation, bad lengths, trailing bytes, bad multi, oversized frames).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use paddock_core::acl::{Acl, Id};
use paddock_core::ids::SessionId;
use paddock_core::stat::Stat;
use paddock_core::wire::*;

/// Parses hex written with optional spaces and `|` separators.
fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn sample_stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0002,
        mzxid: 0x1_0000_0003,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_500,
        version: 1,
        cversion: -1,
        aversion: 2,
        ephemeral_owner: 0x0100_0000_0000_0001,
        data_length: 5,
        num_children: 0,
        pzxid: 0x1_0000_0002,
    }
}

fn request_bytes(xid: i32, request: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(
        &RequestHeader {
            xid,
            op: request.op_code(),
        },
        request,
        &mut out,
    );
    out
}

// The 45-byte kazoo ConnectRequest of docs/protocol.md, Handshake, framed, byte for byte,
// both ways.
#[test]
fn kazoo_connect_request_is_45_bytes() {
    let expected = unhex(
        "00 00 00 2d | 00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 27 10 |
         00 00 00 00 00 00 00 00 | 00 00 00 10 | 00000000000000000000000000000000 | 00",
    );
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 10_000,
        session_id: SessionId(0),
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    let mut payload = Vec::new();
    encode_connect_request(&request, &mut payload);
    assert_eq!(payload.len(), 45);
    assert_eq!(frame(&payload), expected);
    assert_eq!(decode_connect_request(&expected[4..]).unwrap(), request);
}

// The 37-byte ConnectResponse, and the 36-byte one for a client that sent no readOnly byte.
#[test]
fn connect_response_is_37_or_36_bytes() {
    let mut response = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 10_000,
        session_id: SessionId(0x0100_0000_0000_0001),
        passwd: (1..=16).collect(),
        read_only: Some(false),
    };
    let mut payload = Vec::new();
    encode_connect_response(&response, &mut payload);
    let expected =
        unhex("00000000 00002710 0100000000000001 00000010 0102030405060708090a0b0c0d0e0f10 00");
    assert_eq!(payload, expected);
    assert_eq!(payload.len(), 37);
    assert_eq!(decode_connect_response(&payload).unwrap(), response);

    response.read_only = None;
    payload.clear();
    encode_connect_response(&response, &mut payload);
    assert_eq!(payload.len(), 36);
    assert_eq!(decode_connect_response(&payload).unwrap(), response);
}

// An old client's ConnectRequest without the readOnly byte decodes with read_only None and
// re-encodes without it, so a server can mirror its absence.
#[test]
fn connect_request_without_read_only_byte() {
    let mut bytes = unhex("00000000 0000000000000005 00001388 0000000000000007 00000010");
    bytes.extend([7u8; 16]);
    let request = decode_connect_request(&bytes).unwrap();
    assert_eq!(request.read_only, None);
    assert_eq!(request.last_zxid_seen, 5);
    assert_eq!(request.session_id, SessionId(7));
    let mut again = Vec::new();
    encode_connect_request(&request, &mut again);
    assert_eq!(again, bytes);
}

// A 16-byte ReplyHeader followed by a 68-byte Stat (an exists reply), field by field.
#[test]
fn reply_header_16_and_stat_68_bytes() {
    let header = ReplyHeader {
        xid: 3,
        zxid: 0x1_0000_0003,
        err: 0,
    };
    let mut out = Vec::new();
    encode_reply(&header, Some(&Response::Stat(sample_stat())), &mut out);
    let expected = unhex(
        "00000003 0000000100000003 00000000 |
         0000000100000002 0000000100000003 0000018bcfe56800 0000018bcfe569f4 |
         00000001 ffffffff 00000002 0100000000000001 00000005 00000000 0000000100000002",
    );
    assert_eq!(out.len(), 16 + 68);
    assert_eq!(out, expected);
    let (decoded_header, reply) = decode_reply(&out, OpCode::Exists).unwrap();
    assert_eq!(decoded_header, header);
    assert_eq!(reply, Reply::Response(Some(Response::Stat(sample_stat()))));
}

// The 9-byte MultiHeader end marker {-1, true, -1}, and an empty multi being legal.
#[test]
fn multi_header_is_9_bytes_and_empty_multi_is_legal() {
    let bytes = request_bytes(1, &Request::Multi(Vec::new()));
    assert_eq!(bytes, unhex("00000001 0000000e | ffffffff 01 ffffffff"));
    assert_eq!(
        decode_request(&bytes).unwrap().1,
        Request::Multi(Vec::new())
    );
}

// Reserved xids: a ping is header-only both ways; a notification carries {-1, -1, 0} and a
// WatcherEvent; auth and setWatches replies are header-only and classified by xid.
#[test]
fn reserved_xids() {
    let ping = request_bytes(-2, &Request::Ping);
    assert_eq!(ping, unhex("fffffffe 0000000b"));

    let mut out = Vec::new();
    let event = WatcherEvent::new(paddock_core::watch::EventType::NodeDataChanged, "/a");
    encode_event(&ReplyHeader::NOTIFICATION, &event, &mut out);
    assert_eq!(
        out,
        unhex("ffffffff ffffffffffffffff 00000000 | 00000003 00000003 00000002 2f61")
    );
    // The pending opcode does not matter for reserved xids.
    assert_eq!(
        decode_reply(&out, OpCode::GetData).unwrap().1,
        Reply::Event(event)
    );

    for (xid, reply) in [
        (-2, Reply::Ping),
        (-4, Reply::Auth),
        (-8, Reply::SetWatches),
    ] {
        let mut out = Vec::new();
        encode_reply(
            &ReplyHeader {
                xid,
                zxid: 9,
                err: 0,
            },
            None,
            &mut out,
        );
        assert_eq!(decode_reply(&out, OpCode::Create).unwrap().1, reply);
    }
    let mut failed_auth = Vec::new();
    encode_reply(
        &ReplyHeader {
            xid: -4,
            zxid: 0,
            err: -115,
        },
        None,
        &mut failed_auth,
    );
    let (header, reply) = decode_reply(&failed_auth, OpCode::Auth).unwrap();
    assert_eq!(
        (header.error(), reply),
        (Some(paddock_core::error::ZkError::AuthFailed), Reply::Auth)
    );
}

// kazoo's create of "/app" with b"" and OPEN_ACL_UNSAFE, exactly as kazoo serialises it.
#[test]
fn kazoo_create_request() {
    let bytes = unhex(
        "00000001 00000001 | 00000004 2f617070 | 00000000 | 00000001 0000001f
         00000005 776f726c64 00000006 616e796f6e65 | 00000000",
    );
    let (header, request) = decode_request(&bytes).unwrap();
    assert_eq!(header, RequestHeader { xid: 1, op: 1 });
    let expected = CreateRequest {
        path: "/app".into(),
        data: Some(Vec::new()),
        acl: Acl::open_unsafe(),
        flags: 0,
    };
    assert_eq!(request, Request::Create(expected));
    assert_eq!(request_bytes(1, &request), bytes);
}

// kazoo writes "" as a null ustring (CREATOR_ALL_ACL's auth:""); it decodes as "" and is
// re-encoded with length 0, the one documented re-encoding difference.
#[test]
fn null_ustring_reads_as_empty() {
    let bytes = unhex(
        "00000002 00000001 | 00000002 2f61 | ffffffff | 00000001 0000001f
         00000004 61757468 ffffffff | 00000001",
    );
    let (_, request) = decode_request(&bytes).unwrap();
    let Request::Create(create) = &request else {
        panic!("not a create: {request:?}")
    };
    assert_eq!(create.data, None);
    assert_eq!(
        create.acl,
        vec![Acl {
            perms: 31,
            id: Id::new("auth", "")
        }]
    );
    assert_eq!(create.flags, 1);
    let again = request_bytes(2, &request);
    assert_eq!(again[again.len() - 8..], unhex("00000000 00000001"));
}

// A kazoo transaction (create op 1, delete, check) and a failed-multi reply with rolled-back
// (0), failing (-101) and not-run (-2) entries, byte for byte.
#[test]
fn multi_request_and_failed_multi_reply() {
    let ops = vec![
        MultiOp::Create(CreateRequest {
            path: "/x".into(),
            data: Some(b"v".to_vec()),
            acl: Acl::open_unsafe(),
            flags: 0,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/y".into(),
            version: -1,
        }),
        MultiOp::Check(CheckVersionRequest {
            path: "/z".into(),
            version: 3,
        }),
    ];
    let bytes = request_bytes(5, &Request::Multi(ops.clone()));
    let expected = unhex(
        "00000005 0000000e |
         00000001 00 ffffffff | 00000002 2f78 00000001 76 00000001 0000001f
           00000005 776f726c64 00000006 616e796f6e65 00000000 |
         00000002 00 ffffffff | 00000002 2f79 ffffffff |
         0000000d 00 ffffffff | 00000002 2f7a 00000003 |
         ffffffff 01 ffffffff",
    );
    assert_eq!(bytes, expected);
    assert_eq!(decode_request(&bytes).unwrap().1, Request::Multi(ops));

    let results = vec![
        MultiResult::Error(0),
        MultiResult::Error(-101),
        MultiResult::Error(-2),
    ];
    let mut reply = Vec::new();
    let header = ReplyHeader {
        xid: 5,
        zxid: 0x10,
        err: 0,
    };
    encode_reply(&header, Some(&Response::Multi(results.clone())), &mut reply);
    let expected = unhex(
        "00000005 0000000000000010 00000000 |
         ffffffff 00 00000000 00000000 | ffffffff 00 ffffff9b ffffff9b |
         ffffffff 00 fffffffe fffffffe | ffffffff 01 ffffffff",
    );
    assert_eq!(reply, expected);
    let decoded = decode_reply(&reply, OpCode::Multi).unwrap();
    assert_eq!(
        decoded,
        (header, Reply::Response(Some(Response::Multi(results))))
    );
}

// Result types are kept as sent: op 1 answers type 1, ops 15/19/21 answer 15.
#[test]
fn multi_result_types_follow_the_op() {
    let stat = sample_stat();
    let results = vec![
        MultiResult::Create(CreateResponse { path: "/a".into() }),
        MultiResult::Create2(Create2Response {
            path: "/b".into(),
            stat,
        }),
        MultiResult::Delete,
        MultiResult::SetData(stat),
        MultiResult::Check,
    ];
    let mut out = Vec::new();
    encode_reply(
        &ReplyHeader {
            xid: 1,
            zxid: 1,
            err: 0,
        },
        Some(&Response::Multi(results)),
        &mut out,
    );
    let types: Vec<i32> = [16usize, 16 + 9 + 6, 16 + 9 + 6 + 9 + 6 + 68]
        .iter()
        .map(|at| i32::from_be_bytes(out[*at..*at + 4].try_into().unwrap()))
        .collect();
    assert_eq!(types, vec![1, 15, 2]);
}

// addWatch's success reply has the 4-byte ErrorResponse body; delete's has none.
#[test]
fn add_watch_reply_has_four_byte_body() {
    let header = ReplyHeader {
        xid: 7,
        zxid: 2,
        err: 0,
    };
    let mut out = Vec::new();
    encode_reply(
        &header,
        Some(&Response::AddWatch(ErrorResponse { err: 0 })),
        &mut out,
    );
    assert_eq!(out.len(), 20);
    assert_eq!(
        decode_reply(&out, OpCode::AddWatch).unwrap().1,
        Reply::Response(Some(Response::AddWatch(ErrorResponse { err: 0 })))
    );
    let mut delete = Vec::new();
    encode_reply(&header, None, &mut delete);
    assert_eq!(
        decode_reply(&delete, OpCode::Delete).unwrap().1,
        Reply::Response(None)
    );
    assert!(matches!(
        decode_reply(&out, OpCode::Delete),
        Err(DecodeError::TrailingBytes {
            offset: 16,
            trailing_bytes: 4,
            ..
        })
    ));
}

// An error reply is header only: a body after it is trailing garbage, and none is expected.
#[test]
fn error_reply_is_header_only() {
    let mut out = Vec::new();
    encode_reply(
        &ReplyHeader {
            xid: 4,
            zxid: 2,
            err: -101,
        },
        None,
        &mut out,
    );
    let (header, reply) = decode_reply(&out, OpCode::GetData).unwrap();
    assert_eq!(header.error(), Some(paddock_core::error::ZkError::NoNode));
    assert_eq!(reply, Reply::Response(None));
    out.extend([0, 0, 0, 0]);
    assert!(matches!(
        decode_reply(&out, OpCode::GetData),
        Err(DecodeError::TrailingBytes {
            record: "reply",
            offset: 16,
            trailing_bytes: 4
        })
    ));
}

// Unknown and internal opcodes decode as Request::Unknown with the body kept, so the server
// can answer UNIMPLEMENTED and re-encoding is exact.
#[test]
fn unknown_opcodes_are_kept() {
    for op in [10, 23, 99, 108, 0, -10, -1, i32::MIN] {
        let mut bytes = unhex("00000009");
        bytes.extend(op.to_be_bytes());
        bytes.extend(b"junk");
        let (header, request) = decode_request(&bytes).unwrap();
        assert_eq!(header.op, op);
        assert_eq!(
            request,
            Request::Unknown {
                op,
                body: b"junk".to_vec()
            }
        );
        assert_eq!(request_bytes(9, &request), bytes);
    }
    assert_eq!(OpCode::try_from(10), Err(UnknownOpCode(10)));
}

// deleteContainer's body is the raw path bytes, not a jute string.
#[test]
fn delete_container_takes_raw_path() {
    let bytes = unhex("00000003 00000014 2f632f64");
    let (_, request) = decode_request(&bytes).unwrap();
    assert_eq!(request, Request::DeleteContainer(b"/c/d".to_vec()));
}

// Every opcode maps to its wire value and back.
#[test]
fn op_codes_round_trip() {
    let codes: Vec<i32> = OpCode::all().map(OpCode::code).collect();
    assert_eq!(codes.len(), 33);
    for op in OpCode::all() {
        assert_eq!(OpCode::try_from(op.code()), Ok(op));
    }
    assert_eq!(OpCode::Create2.code(), 15);
    assert_eq!(OpCode::CloseSession.code(), -11);
    assert_eq!(OpCode::WhoAmI.code(), 107);
}

// Truncated payloads fail with the field and offset where the bytes ran out.
#[test]
fn truncation_errors() {
    assert_eq!(
        decode_request(&unhex("0000000100")).unwrap_err(),
        DecodeError::Truncated {
            field: "RequestHeader.type",
            offset: 4,
            needed_bytes: 4,
            remaining_bytes: 1
        }
    );
    let exists = unhex("00000001 00000003 00000002 2f61");
    assert_eq!(
        decode_request(&exists).unwrap_err(),
        DecodeError::Truncated {
            field: "Request.watch",
            offset: 14,
            needed_bytes: 1,
            remaining_bytes: 0
        }
    );
    assert!(matches!(
        decode_connect_request(&unhex("00000000 00000000")),
        Err(DecodeError::Truncated {
            field: "ConnectRequest.lastZxidSeen",
            offset: 4,
            ..
        })
    ));
    assert!(matches!(
        decode_reply(&unhex("00000001 00000000000000"), OpCode::Ping),
        Err(DecodeError::Truncated {
            field: "ReplyHeader.zxid",
            ..
        })
    ));
    // A multi missing its end marker.
    assert!(matches!(
        decode_request(&unhex(
            "00000001 0000000e 00000002 00 ffffffff 00000002 2f79 ffffffff"
        )),
        Err(DecodeError::Truncated {
            field: "MultiHeader.type",
            offset: 27,
            ..
        })
    ));
}

// Negative (other than -1) and oversized lengths and counts are refused, naming the field.
#[test]
fn bad_length_errors() {
    // path length -2
    assert!(matches!(
        decode_request(&unhex("00000001 00000003 fffffffe 00")),
        Err(DecodeError::BadLength {
            field: "Request.path",
            offset: 8,
            len: -2,
            ..
        })
    ));
    // data length 2^31-1 in a setData
    assert!(matches!(
        decode_request(&unhex("00000001 00000005 00000001 2f 7fffffff 00000000")),
        Err(DecodeError::BadLength {
            field: "SetDataRequest.data",
            len: i32::MAX,
            ..
        })
    ));
    // an ACL count far beyond the remaining bytes
    assert!(matches!(
        decode_request(&unhex("00000001 00000007 00000001 2f 10000000 00000000")),
        Err(DecodeError::BadLength {
            field: "SetACLRequest.acl",
            len: 0x1000_0000,
            ..
        })
    ));
    // a children count of -5 in a reply
    assert!(matches!(
        decode_reply(
            &unhex("00000001 0000000000000001 00000000 fffffffb"),
            OpCode::GetChildren
        ),
        Err(DecodeError::BadLength { len: -5, .. })
    ));
    // a ConnectRequest password longer than the payload
    assert!(matches!(
        decode_connect_request(&unhex(
            "00000000 0000000000000000 00002710 0000000000000000 00000100"
        )),
        Err(DecodeError::BadLength {
            field: "ConnectRequest.passwd",
            len: 256,
            ..
        })
    ));
}

// Bytes after a record that must end are refused: after a request body, after a body-less
// request, and after the optional readOnly byte of connect records.
#[test]
fn trailing_bytes_errors() {
    assert_eq!(
        decode_request(&unhex("00000001 00000003 00000002 2f61 01 ff")).unwrap_err(),
        DecodeError::TrailingBytes {
            record: "request",
            offset: 15,
            trailing_bytes: 1
        }
    );
    assert!(matches!(
        decode_request(&unhex("fffffffe 0000000b 00")),
        Err(DecodeError::TrailingBytes {
            offset: 8,
            trailing_bytes: 1,
            ..
        })
    ));
    let mut connect = Vec::new();
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 1,
        session_id: SessionId(0),
        passwd: vec![0; 16],
        read_only: Some(true),
    };
    encode_connect_request(&request, &mut connect);
    connect.push(0);
    assert_eq!(
        decode_connect_request(&connect).unwrap_err(),
        DecodeError::TrailingBytes {
            record: "ConnectRequest",
            offset: 45,
            trailing_bytes: 1
        }
    );
    let mut response = unhex("00000000 00002710 0000000000000001 00000000 01");
    assert_eq!(
        decode_connect_response(&response).unwrap().read_only,
        Some(true)
    );
    response.push(1);
    assert!(matches!(
        decode_connect_response(&response),
        Err(DecodeError::TrailingBytes {
            record: "ConnectResponse",
            ..
        })
    ));
    // Trailing bytes after a multi's end marker.
    assert!(matches!(
        decode_request(&unhex("00000001 0000000e ffffffff 01 ffffffff 00")),
        Err(DecodeError::TrailingBytes { offset: 17, .. })
    ));
}

// Malformed multi requests: an op not allowed in that kind of multi (mixing multi and
// multiRead), an op header with err != -1, an end marker with the wrong fields.
#[test]
fn bad_multi_requests() {
    let get_data_in_multi =
        unhex("00000001 0000000e 00000004 00 ffffffff 00000002 2f61 00 ffffffff 01 ffffffff");
    assert_eq!(
        decode_request(&get_data_in_multi).unwrap_err(),
        DecodeError::MultiOpNotAllowed {
            multi_op: 14,
            offset: 8,
            op_type: 4
        }
    );
    let delete_in_multi_read =
        unhex("00000001 00000016 00000002 00 ffffffff 00000002 2f61 ffffffff ffffffff 01 ffffffff");
    assert_eq!(
        decode_request(&delete_in_multi_read).unwrap_err(),
        DecodeError::MultiOpNotAllowed {
            multi_op: 22,
            offset: 8,
            op_type: 2
        }
    );
    for forbidden in [3i32, 9, 14, 22, 100, 12345] {
        let mut bytes = unhex("00000001 0000000e");
        bytes.extend(forbidden.to_be_bytes());
        bytes.extend(unhex("00 ffffffff"));
        assert!(matches!(
            decode_request(&bytes),
            Err(DecodeError::MultiOpNotAllowed { op_type, .. }) if op_type == forbidden
        ));
    }
    assert_eq!(
        decode_request(&unhex("00000001 0000000e 00000002 00 00000000")).unwrap_err(),
        DecodeError::BadMultiHeader {
            offset: 8,
            op_type: 2,
            done: false,
            err: 0
        }
    );
    assert_eq!(
        decode_request(&unhex("00000001 0000000e 00000002 01 ffffffff")).unwrap_err(),
        DecodeError::BadMultiHeader {
            offset: 8,
            op_type: 2,
            done: true,
            err: -1
        }
    );
    // multiRead accepts getData and getChildren, with or without watch set.
    let reads = unhex(
        "00000001 00000016 00000004 00 ffffffff 00000002 2f61 00 00000008 00 ffffffff 00000001 2f 00 ffffffff 01 ffffffff",
    );
    let (_, request) = decode_request(&reads).unwrap();
    assert_eq!(
        request,
        Request::MultiRead(vec![
            MultiReadOp::GetData(PathWatchRequest {
                path: "/a".into(),
                watch: false
            }),
            MultiReadOp::GetChildren(PathWatchRequest {
                path: "/".into(),
                watch: false
            }),
        ])
    );
}

// Malformed multi replies: a result type the pending kind of multi cannot produce (including
// 19 and 21, which servers answer as 15), a success entry with err != 0, and an error entry
// whose body disagrees with its header.
#[test]
fn bad_multi_replies() {
    let header = "00000001 0000000000000001 00000000";
    let get_children_in_multi = unhex(&format!(
        "{header} 00000008 00 00000000 00000000 ffffffff 01 ffffffff"
    ));
    assert_eq!(
        decode_reply(&get_children_in_multi, OpCode::Multi).unwrap_err(),
        DecodeError::MultiOpNotAllowed {
            multi_op: 14,
            offset: 16,
            op_type: 8
        }
    );
    assert!(decode_reply(&get_children_in_multi, OpCode::MultiRead).is_ok());
    let delete_in_multi_read = unhex(&format!(
        "{header} 00000002 00 00000000 ffffffff 01 ffffffff"
    ));
    assert!(matches!(
        decode_reply(&delete_in_multi_read, OpCode::MultiRead),
        Err(DecodeError::MultiOpNotAllowed {
            multi_op: 22,
            op_type: 2,
            ..
        })
    ));
    for create_type in ["00000013", "00000015"] {
        let bytes = unhex(&format!("{header} {create_type} 00 00000000 00000001 2f"));
        assert!(matches!(
            decode_reply(&bytes, OpCode::Multi),
            Err(DecodeError::MultiOpNotAllowed { .. })
        ));
    }
    let success_with_err = unhex(&format!(
        "{header} 00000002 00 ffffff9b ffffffff 01 ffffffff"
    ));
    assert_eq!(
        decode_reply(&success_with_err, OpCode::Multi).unwrap_err(),
        DecodeError::BadMultiHeader {
            offset: 16,
            op_type: 2,
            done: false,
            err: -101
        }
    );
    let mismatch = unhex(&format!(
        "{header} ffffffff 00 ffffff9b 00000000 ffffffff 01 ffffffff"
    ));
    assert_eq!(
        decode_reply(&mismatch, OpCode::Multi).unwrap_err(),
        DecodeError::MultiErrorMismatch {
            offset: 16,
            header_err: -101,
            body_err: 0
        }
    );
    let bad_end = unhex(&format!("{header} ffffffff 01 00000000"));
    assert!(matches!(
        decode_reply(&bad_end, OpCode::Multi),
        Err(DecodeError::BadMultiHeader {
            done: true,
            err: 0,
            ..
        })
    ));
}

// Framing: frames longer than max_frame_bytes or negative are refused before buffering
// them; a frame of exactly the limit is accepted; a four-letter word is not a frame.
#[test]
fn frame_limits() {
    let max = MAX_FRAME_BYTES_DEFAULT;
    assert_eq!(max, 1_048_575);
    let too_big = (max + 1).to_be_bytes();
    assert_eq!(
        split_frame(&too_big, max).unwrap_err(),
        DecodeError::FrameLength {
            len: 1_048_576,
            max_frame_bytes: max
        }
    );
    assert_eq!(
        split_frame(&[0xff, 0xff, 0xff, 0xff], max).unwrap_err(),
        DecodeError::FrameLength {
            len: -1,
            max_frame_bytes: max
        }
    );
    assert_eq!(split_frame(&max.to_be_bytes(), max).unwrap(), None);
    assert_eq!(split_frame(&[0, 0], max).unwrap(), None);
    assert_eq!(
        split_frame(&[0, 0, 0, 1, 7, 8], max).unwrap(),
        Some((&[7u8][..], 5))
    );

    let mut splitter = FrameSplitter::new(16);
    splitter.push(&frame(&[1; 16]));
    assert_eq!(splitter.next_frame().unwrap(), Some(vec![1; 16]));
    splitter.push(&frame(&[1; 17]));
    assert!(matches!(
        splitter.next_frame(),
        Err(DecodeError::FrameLength { len: 17, .. })
    ));

    assert!(matches!(
        split_frame(b"ruok", max),
        Err(DecodeError::FrameLength { .. })
    ));
    assert_eq!(
        classify_connection_start(b"ruok"),
        ConnectionStart::FourLetterWord(FourLetterWord::Ruok)
    );
    assert_eq!(
        classify_connection_start(b"mntr\n"),
        ConnectionStart::FourLetterWord(FourLetterWord::Mntr)
    );
    assert_eq!(classify_connection_start(b"ruo"), ConnectionStart::NeedMore);
    assert_eq!(
        classify_connection_start(b"RUOK"),
        ConnectionStart::Protocol
    );
    assert_eq!(
        classify_connection_start(&frame(&[0; 45])),
        ConnectionStart::Protocol
    );
}

// DecodeError messages name the field and the offset, for logs.
#[test]
fn error_messages_name_field_and_offset() {
    let err = decode_request(&unhex("00000001 00000003 fffffffe 00")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Request.path at offset 8 has bad length -2 (1 bytes left)"
    );
    let err = DecodeError::FrameLength {
        len: -3,
        max_frame_bytes: 10,
    };
    assert_eq!(err.to_string(), "frame length -3 is outside 0..=10");
}
