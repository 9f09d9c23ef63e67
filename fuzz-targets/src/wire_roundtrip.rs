//! `wire_roundtrip`: structured messages (built with `arbitrary` from the fuzzer's bytes)
//! encoded, framed, split, decoded: the decoded value must equal the original, and
//! encoding it again must give the same bytes.
//!
//! Only values the codec can produce are compared: a [`Request::Unknown`] carrying a
//! client opcode is skipped (that opcode decodes to its own variant), a reply's xid and
//! error are made consistent with its kind, and a multi response mixing write and read
//! results (which no pending opcode can decode) is skipped. Every such case is a value no
//! server or client sends, not a codec defect.

use arbitrary::{Arbitrary, Unstructured};
use paddock_core::wire::{
    ConnectRequest, ConnectResponse, FrameSplitter, MAX_FRAME_BYTES_DEFAULT, MultiResult, OpCode,
    Reply, ReplyHeader, Request, RequestHeader, Response, decode_connect_request,
    decode_connect_response, decode_reply, decode_request, encode_connect_request,
    encode_connect_response, encode_decoded_reply, encode_request, frame,
};

/// One message of either direction.
#[derive(Debug, Arbitrary)]
pub enum Message {
    /// A client's first frame.
    ConnectRequest(ConnectRequest),
    /// A server's first frame.
    ConnectResponse(ConnectResponse),
    /// A client request with its xid.
    Request {
        /// The client's xid.
        xid: i32,
        /// The body.
        request: Request,
    },
    /// A server frame: reply, notification or reserved-xid answer.
    Reply {
        /// The header (made consistent with `reply`).
        header: ReplyHeader,
        /// The body.
        reply: Reply,
    },
}

/// The target body. See the module documentation.
pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    // Several messages per input, so one run covers a short conversation. (An exhausted
    // `Unstructured` keeps producing default values, so stop when it is empty.)
    while !input.is_empty() {
        let Ok(message) = Message::arbitrary(&mut input) else {
            return;
        };
        check(message);
    }
}

/// Encodes, frames, splits and decodes one message, asserting it comes back unchanged.
pub fn check(message: Message) {
    match message {
        Message::ConnectRequest(request) => {
            let mut payload = Vec::new();
            encode_connect_request(&request, &mut payload);
            let decoded = decode_connect_request(&through_frame(&payload));
            assert_eq!(decoded.as_ref(), Ok(&request), "ConnectRequest round trip");
        }
        Message::ConnectResponse(response) => {
            let mut payload = Vec::new();
            encode_connect_response(&response, &mut payload);
            let decoded = decode_connect_response(&through_frame(&payload));
            assert_eq!(
                decoded.as_ref(),
                Ok(&response),
                "ConnectResponse round trip"
            );
        }
        Message::Request { xid, request } => check_request(xid, request),
        Message::Reply { header, reply } => check_reply(header, reply),
    }
}

fn check_request(xid: i32, request: Request) {
    if let Request::Unknown { op, .. } = &request
        && OpCode::try_from(*op).is_ok_and(|code| {
            !matches!(
                code,
                OpCode::Notification | OpCode::CreateSession | OpCode::Error
            )
        })
    {
        return;
    }
    let header = RequestHeader {
        xid,
        op: request.op_code(),
    };
    let mut payload = Vec::new();
    encode_request(&header, &request, &mut payload);
    let decoded = decode_request(&through_frame(&payload)).expect("an encoded request decodes");
    assert_eq!(decoded, (header, request), "request round trip");
    let mut again = Vec::new();
    encode_request(&decoded.0, &decoded.1, &mut again);
    assert_eq!(again, payload, "request re-encoding");
}

fn check_reply(mut header: ReplyHeader, reply: Reply) {
    const RESERVED_XIDS: [i32; 4] = [-1, -2, -4, -8];
    let pending = match &reply {
        Reply::Event(_) => {
            header.xid = -1;
            OpCode::Notification
        }
        Reply::Ping => {
            header.xid = -2;
            OpCode::Ping
        }
        Reply::Auth => {
            header.xid = -4;
            OpCode::Auth
        }
        Reply::SetWatches => {
            header.xid = -8;
            OpCode::SetWatches
        }
        Reply::Response(body) => {
            if RESERVED_XIDS.contains(&header.xid) {
                header.xid = 1;
            }
            match body {
                None => OpCode::Delete,
                Some(body) => {
                    header.err = 0;
                    let Some(op) = pending_for(body) else {
                        return;
                    };
                    op
                }
            }
        }
    };
    let mut payload = Vec::new();
    encode_decoded_reply(&header, &reply, &mut payload);
    let decoded =
        decode_reply(&through_frame(&payload), pending).expect("an encoded reply decodes");
    assert_eq!(
        decoded,
        (header, reply),
        "reply round trip (pending {pending:?})"
    );
    let mut again = Vec::new();
    encode_decoded_reply(&decoded.0, &decoded.1, &mut again);
    assert_eq!(again, payload, "reply re-encoding");
}

/// The pending opcode whose reply decodes as `body`; `None` for a multi mixing write and
/// read results.
fn pending_for(body: &Response) -> Option<OpCode> {
    Some(match body {
        Response::Create(_) => OpCode::Create,
        Response::Create2(_) => OpCode::Create2,
        Response::Stat(_) => OpCode::Exists,
        Response::GetData(_) => OpCode::GetData,
        Response::GetAcl(_) => OpCode::GetAcl,
        Response::GetChildren(_) => OpCode::GetChildren,
        Response::GetChildren2(_) => OpCode::GetChildren2,
        Response::Sync(_) => OpCode::Sync,
        Response::Sasl(_) => OpCode::Sasl,
        Response::GetEphemerals(_) => OpCode::GetEphemerals,
        Response::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
        Response::AddWatch(_) => OpCode::AddWatch,
        Response::WhoAmI(_) => OpCode::WhoAmI,
        Response::Multi(results) => {
            let is_read = |r: &MultiResult| {
                matches!(r, MultiResult::GetData(_) | MultiResult::GetChildren(_))
            };
            let is_write = |r: &MultiResult| !is_read(r) && !matches!(r, MultiResult::Error(_));
            match (results.iter().any(is_read), results.iter().any(is_write)) {
                (true, true) => return None,
                (true, false) => OpCode::MultiRead,
                (false, _) => OpCode::Multi,
            }
        }
    })
}

/// Frames a payload and gets it back through a [`FrameSplitter`], as a peer would.
fn through_frame(payload: &[u8]) -> Vec<u8> {
    let mut splitter = FrameSplitter::new(MAX_FRAME_BYTES_DEFAULT);
    splitter.push(&frame(payload));
    let got = splitter
        .next_frame()
        .expect("a frame we built is within the limit")
        .expect("a whole frame was pushed");
    assert_eq!(splitter.buffered_bytes(), 0, "one frame, nothing left over");
    got
}
