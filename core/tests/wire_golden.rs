//! Golden vectors: every frame that real Apache ZooKeeper 3.8.0 exchanged with kazoo 2.11.0 and
//! with the Java client 3.8.0 (`tests/vectors/*.txt`, format in `tests/vectors/README.md`) must
//! split, decode and re-encode to exactly the captured bytes, with no exceptions. In particular
//! the captures hold no null ustring, vector or non-data buffer (the codec's documented lossy
//! cases, re-encoded with length 0): one would make its frame differ here. Java's null create
//! data (length -1) is in them and survives, as znode data keeps null and empty apart.
//!
//! Client frames are split out of one byte stream per direction with [`FrameSplitter`] (fed in
//! odd-sized chunks, as a socket would); each reply is decoded with the opcode of the pending
//! request with the same xid (-1 event, -2 ping, -4 auth; the Java client sends setWatches with
//! an ordinary xid). Explicit checks on decoded values then prove that the right things were
//! decoded, not merely bytes that happen to round-trip.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use paddock_core::acl::{Acl, Id};
use paddock_core::error::ZkError;
use paddock_core::ids::SessionId;
use paddock_core::watch::EventType;
use paddock_core::wire::*;

/// The capture files, all of which must be present and all of which are checked.
const CAPTURES: [&str; 4] = [
    "kazoo_session.txt",
    "java_session.txt",
    "java_reconnect_setwatches.txt",
    "java_reconnect_setwatches2.txt",
];

/// Chunk size used to feed a direction's byte stream to the splitter: prime, smaller than any
/// frame, so frames and length prefixes straddle chunk boundaries.
const FEED_CHUNK_BYTES: usize = 7;

const XID_NOTIFICATION: i32 = -1;
const XID_PING: i32 = -2;
const XID_AUTH: i32 = -4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Client,
    Server,
}

/// One `C`/`S` line of a capture file.
#[derive(Debug)]
struct CapturedFrame {
    /// 1-based line number in the file, for failure messages.
    line: usize,
    direction: Direction,
    /// The whole frame, length prefix included.
    bytes: Vec<u8>,
}

/// What a captured frame decoded to.
#[derive(Debug, Clone)]
enum Decoded {
    ConnectRequest(ConnectRequest),
    ConnectResponse(ConnectResponse),
    Request(RequestHeader, Request),
    Reply {
        header: ReplyHeader,
        /// The opcode the reply was decoded against.
        pending: OpCode,
        reply: Reply,
    },
}

fn unhex(text: &str, line: usize) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "line {line}: odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|at| {
            u8::from_str_radix(&text[at..at + 2], 16)
                .unwrap_or_else(|e| panic!("line {line}: bad hex: {e}"))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Reads a capture file's frames in file order; every frame line must follow a comment line.
fn load(file: &str) -> Vec<CapturedFrame> {
    let text = std::fs::read_to_string(vectors_dir().join(file)).unwrap();
    let mut frames = Vec::new();
    let mut previous_was_comment = false;
    for (index, text_line) in text.lines().enumerate() {
        let line = index + 1;
        let direction = match text_line.split_at_checked(2) {
            Some(("C ", _)) => Direction::Client,
            Some(("S ", _)) => Direction::Server,
            _ => {
                assert!(
                    text_line.starts_with('#') || text_line.is_empty(),
                    "{file}:{line}: neither a comment nor a frame"
                );
                previous_was_comment = text_line.starts_with('#');
                continue;
            }
        };
        assert!(previous_was_comment, "{file}:{line}: frame without comment");
        previous_was_comment = false;
        let bytes = unhex(&text_line[2..], line);
        frames.push(CapturedFrame {
            line,
            direction,
            bytes,
        });
    }
    frames
}

/// Concatenates one direction's frames into the byte stream the socket carried and splits it
/// again with a [`FrameSplitter`]; the payloads must be exactly the frames minus prefixes.
fn split_stream(file: &str, frames: &[CapturedFrame], direction: Direction) -> Vec<Vec<u8>> {
    let stream: Vec<u8> = frames
        .iter()
        .filter(|frame| frame.direction == direction)
        .flat_map(|frame| frame.bytes.iter().copied())
        .collect();
    let mut splitter = FrameSplitter::new(MAX_FRAME_BYTES_DEFAULT);
    let mut payloads = Vec::new();
    for chunk in stream.chunks(FEED_CHUNK_BYTES) {
        splitter.push(chunk);
        while let Some(payload) = splitter.next_frame().unwrap() {
            payloads.push(payload);
        }
    }
    assert_eq!(splitter.buffered_bytes(), 0, "{file}: bytes left over");
    payloads
}

/// Splits one captured frame on its own with [`split_frame`], checking nothing is left over.
fn payload_of(file: &str, frame: &CapturedFrame) -> Vec<u8> {
    let (payload, consumed_bytes) = split_frame(&frame.bytes, MAX_FRAME_BYTES_DEFAULT)
        .unwrap()
        .unwrap_or_else(|| panic!("{file}:{}: incomplete frame", frame.line));
    assert_eq!(consumed_bytes, frame.bytes.len(), "{file}:{}", frame.line);
    payload.to_vec()
}

/// Requests sent and not yet answered, as the client tracks them.
#[derive(Default)]
struct Pending {
    /// Opcode of the latest request sent with each xid.
    op_by_xid: BTreeMap<i32, OpCode>,
    /// Ordinary xids in the order sent: their replies must come back in this order.
    fifo: VecDeque<i32>,
}

impl Pending {
    fn sent(&mut self, header: &RequestHeader) {
        // An opcode that is not ZooKeeper's can only be answered UNIMPLEMENTED (decode_reply doc).
        let op = OpCode::try_from(header.op).unwrap_or(OpCode::Error);
        self.op_by_xid.insert(header.xid, op);
        if header.xid >= 0 {
            self.fifo.push_back(header.xid);
        }
    }

    /// The opcode to decode a reply with `xid` against; removes the request it answers.
    fn answered(&mut self, xid: i32, location: &str) -> OpCode {
        if xid == XID_NOTIFICATION {
            return OpCode::Notification;
        }
        let op = self
            .op_by_xid
            .remove(&xid)
            .unwrap_or_else(|| panic!("{location}: reply to xid {xid}, which is not pending"));
        if xid >= 0 {
            let oldest = self.fifo.pop_front();
            assert_eq!(oldest, Some(xid), "{location}: reply out of FIFO order");
        }
        op
    }
}

/// Decodes one payload: the first frame of each direction is the handshake record, later
/// client frames are requests and later server frames replies to `pending`.
fn decode_frame(
    direction: Direction,
    first_of_direction: bool,
    payload: &[u8],
    pending: &mut Pending,
    location: &str,
) -> Decoded {
    let fail = |e: DecodeError| -> Decoded { panic!("{location}: {e}") };
    match (direction, first_of_direction) {
        (Direction::Client, true) => decode_connect_request(payload)
            .map(Decoded::ConnectRequest)
            .unwrap_or_else(fail),
        (Direction::Server, true) => decode_connect_response(payload)
            .map(Decoded::ConnectResponse)
            .unwrap_or_else(fail),
        (Direction::Client, false) => {
            let (header, request) = decode_request(payload).unwrap_or_else(|e| {
                panic!("{location}: {e}");
            });
            assert!(
                !matches!(request, Request::Unknown { .. }),
                "{location}: real clients send only known opcodes"
            );
            pending.sent(&header);
            Decoded::Request(header, request)
        }
        (Direction::Server, false) => {
            let xid = ReplyHeader::read(&mut Reader::new(payload))
                .unwrap_or_else(|e| panic!("{location}: {e}"))
                .xid;
            let op = pending.answered(xid, location);
            let (header, reply) =
                decode_reply(payload, op).unwrap_or_else(|e| panic!("{location}: {e}"));
            Decoded::Reply {
                header,
                pending: op,
                reply,
            }
        }
    }
}

/// The payload that encoding `decoded` gives.
fn encode_decoded(decoded: &Decoded) -> Vec<u8> {
    let mut out = Vec::new();
    match decoded {
        Decoded::ConnectRequest(request) => encode_connect_request(request, &mut out),
        Decoded::ConnectResponse(response) => encode_connect_response(response, &mut out),
        Decoded::Request(header, request) => encode_request(header, request, &mut out),
        Decoded::Reply { header, reply, .. } => encode_decoded_reply(header, reply, &mut out),
    }
    out
}

/// Splits, decodes and re-encodes every frame of `file`, asserting the re-encoded frame is
/// byte-identical to the captured one; returns `(line, decoded)` in file order.
fn decode_capture(file: &str) -> Vec<(usize, Decoded)> {
    let frames = load(file);
    let mut client_payloads = split_stream(file, &frames, Direction::Client).into_iter();
    let mut server_payloads = split_stream(file, &frames, Direction::Server).into_iter();
    let mut pending = Pending::default();
    let mut decoded_frames = Vec::new();
    let (mut client_frames, mut server_frames) = (0usize, 0usize);
    for captured in &frames {
        let location = format!("{file}:{}", captured.line);
        let payload = payload_of(file, captured);
        let (from_stream, frames_so_far) = match captured.direction {
            Direction::Client => (client_payloads.next(), &mut client_frames),
            Direction::Server => (server_payloads.next(), &mut server_frames),
        };
        assert_eq!(from_stream.as_ref(), Some(&payload), "{location}: splitter");
        let decoded = decode_frame(
            captured.direction,
            *frames_so_far == 0,
            &payload,
            &mut pending,
            &location,
        );
        *frames_so_far += 1;
        let again = frame(&encode_decoded(&decoded));
        assert_eq!(
            hex(&again),
            hex(&captured.bytes),
            "{location}: re-encoding differs from the capture; decoded {decoded:?}"
        );
        decoded_frames.push((captured.line, decoded));
    }
    assert!(client_payloads.next().is_none() && server_payloads.next().is_none());
    assert!(
        pending.fifo.is_empty(),
        "{file}: unanswered {:?}",
        pending.fifo
    );
    decoded_frames
}

/// A decoded capture, with look-ups for the explicit checks.
struct Capture {
    file: &'static str,
    frames: Vec<(usize, Decoded)>,
}

impl Capture {
    fn new(file: &'static str) -> Capture {
        Capture {
            file,
            frames: decode_capture(file),
        }
    }

    fn connect_request(&self) -> &ConnectRequest {
        match &self.frames[0].1 {
            Decoded::ConnectRequest(request) => request,
            other => panic!("{}: first frame is {other:?}", self.file),
        }
    }

    fn connect_response(&self) -> &ConnectResponse {
        self.frames
            .iter()
            .find_map(|(_, decoded)| match decoded {
                Decoded::ConnectResponse(response) => Some(response),
                _ => None,
            })
            .unwrap()
    }

    /// The (only) request sent with `xid`; not for the reused xids -2 and -4.
    fn request(&self, xid: i32) -> &Request {
        let mut found = self.frames.iter().filter_map(|(_, decoded)| match decoded {
            Decoded::Request(header, request) if header.xid == xid => Some(request),
            _ => None,
        });
        let request = found.next().unwrap_or_else(|| panic!("no request {xid}"));
        assert!(found.next().is_none(), "{}: xid {xid} reused", self.file);
        request
    }

    /// The reply to the request sent with ordinary `xid`.
    fn reply(&self, xid: i32) -> (ReplyHeader, &Reply) {
        self.replies()
            .find(|(header, _)| header.xid == xid)
            .unwrap_or_else(|| panic!("{}: no reply to {xid}", self.file))
    }

    fn replies(&self) -> impl Iterator<Item = (ReplyHeader, &Reply)> {
        self.frames.iter().filter_map(|(_, decoded)| match decoded {
            Decoded::Reply { header, reply, .. } => Some((*header, reply)),
            _ => None,
        })
    }

    /// Every watch event, in arrival order, as `(type, path)`.
    fn events(&self) -> Vec<(i32, String)> {
        self.replies()
            .filter_map(|(header, reply)| match reply {
                Reply::Event(event) => {
                    assert_eq!(header, ReplyHeader::NOTIFICATION);
                    assert_eq!(event.state, WatcherEvent::STATE_SYNC_CONNECTED);
                    Some((event.event_type, event.path.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// The decoded response body of the reply to `xid`, which must be a success.
    fn response(&self, xid: i32) -> &Response {
        match self.reply(xid) {
            (header, Reply::Response(Some(body))) if header.err == 0 => body,
            other => panic!("{}: reply to {xid} is {other:?}", self.file),
        }
    }
}

// Every frame of every capture splits, decodes (replies against the pending request with the
// same xid) and re-encodes to exactly the captured bytes; replies to ordinary xids come back
// in request order and every request is answered.
#[test]
fn every_captured_frame_round_trips_byte_for_byte() {
    let mut frames = 0;
    for file in CAPTURES {
        frames += decode_capture(file).len();
    }
    // 76 + 68 frames (README) plus the two reconnections (15, 16): a capture cannot silently shrink.
    assert_eq!(frames, 76 + 68 + 15 + 16);
}

// No capture file goes unchecked: the directory holds exactly the files listed above.
#[test]
fn every_capture_file_is_listed() {
    let mut on_disk: Vec<String> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".txt"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CAPTURES.iter().map(|name| name.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

/// The code of `error`, as carried in headers and multi results.
fn code(error: ZkError) -> i32 {
    error.code()
}

// kazoo's handshake: a fresh session asking for 4000 ms, with the readOnly byte present; the
// server grants 4000 ms, a session id and a 16-byte password, echoing readOnly.
#[test]
fn kazoo_handshake_values() {
    let kazoo = Capture::new("kazoo_session.txt");
    assert_eq!(
        *kazoo.connect_request(),
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 4000,
            session_id: SessionId(0),
            passwd: vec![0; 16],
            read_only: Some(false),
        }
    );
    let response = kazoo.connect_response();
    assert_eq!(response.protocol_version, 0);
    assert_eq!(response.timeout_ms, 4000);
    assert_eq!(response.session_id, SessionId(0x0100_000d_c7ce_0000));
    assert_eq!(response.passwd.len(), 16);
    assert_eq!(response.read_only, Some(false));
}

// The Java client's two reconnections resume the session the first connection was given, with
// its password, and report the last zxid they saw (0xc, then 0x11).
#[test]
fn java_reconnections_resume_the_same_session() {
    let first = Capture::new("java_session.txt");
    let granted = first.connect_response().clone();
    assert_eq!(granted.session_id, SessionId(0x0100_000d_e21c_0000));
    assert_eq!(first.connect_request().session_id, SessionId(0));
    for (file, last_zxid_seen) in [
        ("java_reconnect_setwatches.txt", 0xc),
        ("java_reconnect_setwatches2.txt", 0x11),
    ] {
        let again = Capture::new(file);
        let request = again.connect_request();
        assert_eq!(request.session_id, granted.session_id, "{file}");
        assert_eq!(request.passwd, granted.passwd, "{file}");
        assert_eq!(request.last_zxid_seen, last_zxid_seen, "{file}");
        assert_eq!(request.timeout_ms, 4000, "{file}");
        assert_eq!(again.connect_response().session_id, granted.session_id);
    }
}

// Failed writes: a create of an existing node answers NODEEXISTS, a delete of a node with
// children NOTEMPTY, each header-only and each with its own zxid; exists on a missing node
// answers NONODE.
#[test]
fn kazoo_error_replies() {
    let kazoo = Capture::new("kazoo_session.txt");
    let Request::Create(create) = kazoo.request(13) else {
        panic!("xid 13 is a create")
    };
    assert_eq!(create.path, "/vec");
    assert_eq!(create.data.as_deref(), Some(&b"again"[..]));
    let (header, reply) = kazoo.reply(13);
    assert_eq!(header.error(), Some(ZkError::NodeExists));
    assert_eq!((header.zxid, reply), (0x9, &Reply::Response(None)));
    let (header, reply) = kazoo.reply(14);
    assert_eq!(header.error(), Some(ZkError::NotEmpty));
    assert_eq!((header.zxid, reply), (0xa, &Reply::Response(None)));
    assert_eq!(kazoo.reply(11).0.error(), Some(ZkError::NoNode));
}

// A failed multi: header err 0, and per op OK (rolled back), BADVERSION (the failing check),
// RUNTIMEINCONSISTENCY (not run). The successful multi answers create, check, setData, delete.
#[test]
fn kazoo_multi_results() {
    let kazoo = Capture::new("kazoo_session.txt");
    let Request::Multi(ops) = kazoo.request(15) else {
        panic!("xid 15 is a multi")
    };
    let kinds: Vec<OpCode> = ops.iter().map(MultiOp::op_code).collect();
    assert_eq!(kinds, [OpCode::Create, OpCode::Check, OpCode::SetData]);
    assert_eq!(
        ops[1],
        MultiOp::Check(CheckVersionRequest {
            path: "/vec".into(),
            version: 99,
        })
    );
    let (header, _) = kazoo.reply(15);
    assert_eq!((header.err, header.zxid), (0, 0xb));
    assert_eq!(
        *kazoo.response(15),
        Response::Multi(vec![
            MultiResult::Error(code(ZkError::Ok)),
            MultiResult::Error(code(ZkError::BadVersion)),
            MultiResult::Error(code(ZkError::RuntimeInconsistency)),
        ])
    );

    let Response::Multi(results) = kazoo.response(16) else {
        panic!("xid 16 answers a multi")
    };
    assert_eq!(results.len(), 4);
    assert_eq!(
        results[0],
        MultiResult::Create(CreateResponse {
            path: "/vec/t2".into()
        })
    );
    assert_eq!(results[1], MultiResult::Check);
    let MultiResult::SetData(stat) = &results[2] else {
        panic!("third result is setData")
    };
    assert_eq!((stat.version, stat.data_length, stat.mzxid), (1, 8, 0xc));
    assert_eq!(results[3], MultiResult::Delete);
}

// kazoo's one-shot watches fire as notifications {-1, -1, 0} with the right type and path, in
// the order the scenario triggered them.
#[test]
fn kazoo_watch_events() {
    let kazoo = Capture::new("kazoo_session.txt");
    let expected = [
        (EventType::NodeDataChanged, "/vec/w"),
        (EventType::NodeCreated, "/vec/x"),
        (EventType::NodeChildrenChanged, "/vec/x"),
        (EventType::NodeDeleted, "/vec/x/child"),
    ];
    let expected: Vec<(i32, String)> = expected
        .iter()
        .map(|(event_type, path)| (event_type.code(), path.to_string()))
        .collect();
    assert_eq!(kazoo.events(), expected);
}

// Sessions, auth and reads on kazoo's connection: the digest auth packet, the auth reply
// {-4, 0, 0}, ping replies carrying the last zxid, getACL/setACL values and create variants.
#[test]
fn kazoo_requests_and_replies_decode_to_their_values() {
    let kazoo = Capture::new("kazoo_session.txt");
    let auths: Vec<(ReplyHeader, &Reply)> = kazoo
        .replies()
        .filter(|(header, _)| header.xid == XID_AUTH)
        .collect();
    let auth_header = ReplyHeader {
        xid: XID_AUTH,
        zxid: 0,
        err: 0,
    };
    assert_eq!(auths, [(auth_header, &Reply::Auth)]);
    let auth_request = kazoo.frames.iter().find_map(|(_, decoded)| match decoded {
        Decoded::Request(header, Request::Auth(packet)) if header.xid == XID_AUTH => Some(packet),
        _ => None,
    });
    assert_eq!(
        auth_request,
        Some(&AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"bob:secret".to_vec(),
        })
    );
    let pings: Vec<(ReplyHeader, &Reply)> = kazoo
        .replies()
        .filter(|(header, _)| header.xid == XID_PING)
        .collect();
    assert_eq!(pings.len(), 2);
    assert!(
        pings
            .iter()
            .all(|(header, reply)| header.zxid == 0x13 && **reply == Reply::Ping)
    );

    // kazoo sends b"" as an empty (not null) buffer.
    let Request::Create(eseq) = kazoo.request(4) else {
        panic!("xid 4 is a create")
    };
    assert_eq!((eseq.data.as_deref(), eseq.flags), (Some(&b""[..]), 3));
    let Response::Create(created) = kazoo.response(4) else {
        panic!("xid 4 answers a create")
    };
    assert_eq!(created.path, "/vec/eseq-0000000002");
    let Response::Create2(created) = kazoo.response(5) else {
        panic!("xid 5 answers a create2")
    };
    assert_eq!(
        (created.path.as_str(), created.stat.data_length),
        ("/vec/c2", 9)
    );

    let bob = Acl {
        perms: 31,
        id: Id::new("digest", "bob:fyVmFCwVbTJYrznoSu1koqYEYF0="),
    };
    let Response::GetAcl(acl) = kazoo.response(29) else {
        panic!("xid 29 answers getACL")
    };
    assert_eq!(acl.acl, [bob, Acl::read_unsafe()[0].clone()]);
    assert_eq!(acl.stat.aversion, 1);
    assert_eq!(*kazoo.response(30), Response::Sync("/vec".into()));
    let (header, reply) = kazoo.reply(32);
    assert_eq!(*kazoo.request(32), Request::CloseSession);
    assert_eq!((header.err, reply), (0, &Reply::Response(None)));
}

// The Java client's first connection: null create data stays null, createTTL and
// createContainer values, whoAmI, getAllChildrenNumber, getEphemerals, addWatch's 4-byte body,
// removeWatches answered NOWATCHER.
#[test]
fn java_session_values() {
    let java = Capture::new("java_session.txt");
    let Request::Create(create) = java.request(1) else {
        panic!("xid 1 is a create")
    };
    assert_eq!((create.path.as_str(), &create.data), ("/j", &None));
    let Request::CreateTtl(ttl) = java.request(4) else {
        panic!("xid 4 is a createTTL")
    };
    assert_eq!(
        (ttl.path.as_str(), ttl.flags, ttl.ttl_ms),
        ("/j/ttl", 5, 60_000)
    );
    let Request::CreateContainer(container) = java.request(3) else {
        panic!("xid 3 is a createContainer")
    };
    assert_eq!(container.flags, 4);
    let Response::Create2(created) = java.response(5) else {
        panic!("createTTL answers a Create2Response")
    };
    assert_eq!(created.path, "/j/ttlseq-0000000003");
    // Java sends CREATOR_ALL_ACL's empty id as an empty string, not null.
    let Request::Create(ephemeral) = java.request(6) else {
        panic!("xid 6 is a create")
    };
    assert_eq!(ephemeral.acl, Acl::creator_all());

    assert_eq!(
        *java.response(14),
        Response::WhoAmI(vec![
            ClientInfo {
                auth_scheme: "ip".into(),
                user: "127.0.0.1".into(),
            },
            ClientInfo {
                auth_scheme: "digest".into(),
                user: "alice".into(),
            },
        ])
    );
    assert_eq!(*java.response(12), Response::GetAllChildrenNumber(6));
    assert_eq!(*java.response(13), Response::GetAllChildrenNumber(10));
    assert_eq!(
        *java.response(11),
        Response::GetEphemerals(vec!["/j/cont/e20000000000".into()])
    );
    assert_eq!(
        *java.request(17),
        Request::AddWatch(AddWatchRequest {
            path: "/j".into(),
            mode: 1,
        })
    );
    assert_eq!(
        *java.response(17),
        Response::AddWatch(ErrorResponse { err: 0 })
    );
    assert_eq!(java.reply(26).0.error(), Some(ZkError::NoWatcher));
}

// multiRead keeps going past a failed op (getData, NONODE, getChildren); a multi of container,
// TTL, create and delete answers create2, create2, create, delete.
#[test]
fn java_multi_and_multi_read_results() {
    let java = Capture::new("java_session.txt");
    let Response::Multi(read) = java.response(15) else {
        panic!("xid 15 answers a multiRead")
    };
    assert_eq!(read.len(), 3);
    let MultiResult::GetData(data) = &read[0] else {
        panic!("first result is getData")
    };
    assert_eq!(data.data.as_deref(), Some(&b"p2"[..]));
    assert_eq!(read[1], MultiResult::Error(code(ZkError::NoNode)));
    let MultiResult::GetChildren(children) = &read[2] else {
        panic!("third result is getChildren")
    };
    assert_eq!(children, &["p2", "cont", "e1", "ttl", "ttlseq-0000000003"]);

    let Response::Multi(write) = java.response(16) else {
        panic!("xid 16 answers a multi")
    };
    let kinds: Vec<OpCode> = write.iter().map(MultiResult::op_code).collect();
    let expected = [
        OpCode::Create2,
        OpCode::Create2,
        OpCode::Create,
        OpCode::Delete,
    ];
    assert_eq!(kinds, expected);
}

// Java's setWatches (op 101) goes out with an ordinary xid (31, not -8); its reply is decoded
// against the pending setWatches and comes after the catch-up events it caused.
#[test]
fn java_set_watches_values() {
    let java = Capture::new("java_reconnect_setwatches.txt");
    assert_eq!(
        *java.request(31),
        Request::SetWatches(SetWatches {
            relative_zxid: 0xc,
            data_watches: vec!["/j/p2".into(), "/j/ttl".into()],
            exist_watches: vec!["/j/later".into()],
            child_watches: vec!["/j/cont".into()],
        })
    );
    let (header, reply) = java.reply(31);
    assert_eq!((header.zxid, header.err), (0x10, 0));
    assert_eq!(*reply, Reply::Response(None));
    let expected = [
        (EventType::NodeDataChanged.code(), "/j/p2".to_string()),
        (EventType::NodeCreated.code(), "/j/later".to_string()),
        (EventType::NodeDataChanged.code(), "/j/ttl".to_string()),
    ];
    assert_eq!(java.events(), expected);
    let pending_ops: Vec<OpCode> = java
        .frames
        .iter()
        .filter_map(|(_, decoded)| match decoded {
            Decoded::Reply {
                header, pending, ..
            } if header.xid == 31 => Some(*pending),
            _ => None,
        })
        .collect();
    assert_eq!(pending_ops, [OpCode::SetWatches]);
}

// setWatches2 (op 105) carries the persistent recursive watch; closing the session fires the
// session's own watches on its ephemerals before the close reply.
#[test]
fn java_set_watches2_values() {
    let java = Capture::new("java_reconnect_setwatches2.txt");
    assert_eq!(
        *java.request(35),
        Request::SetWatches2(SetWatches2 {
            relative_zxid: 0x11,
            data_watches: vec![],
            exist_watches: vec![],
            child_watches: vec!["/j".into(), "/j/cont".into()],
            persistent_watches: vec![],
            persistent_recursive_watches: vec!["/j".into()],
        })
    );
    assert_eq!(java.reply(35).1, &Reply::Response(None));
    let expected = [
        (EventType::NodeCreated, "/j/after"),
        (EventType::NodeDeleted, "/j/cont/e20000000000"),
        (EventType::NodeChildrenChanged, "/j/cont"),
        (EventType::NodeDeleted, "/j/e1"),
    ];
    let expected: Vec<(i32, String)> = expected
        .iter()
        .map(|(event_type, path)| (event_type.code(), path.to_string()))
        .collect();
    assert_eq!(java.events(), expected);
    assert_eq!(*java.request(37), Request::CloseSession);
    assert_eq!(java.reply(37).0.zxid, 0x13);
}
