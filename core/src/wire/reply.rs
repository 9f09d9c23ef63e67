//! Server → client messages: the [`Response`] enum (one variant per success body), multi
//! results, watch notifications, and their encoding (server side) and decoding (client side).
//!
//! A reply body cannot be parsed without knowing what it answers, so the client tells
//! [`decode_reply`] the opcode of its oldest pending request. Reserved xids are recognised
//! first: -1 notification, -2 ping, -4 auth (as the Java client does) and -8, which only the
//! C client uses for setWatches; the Java client 3.8.0 sends setWatches with an ordinary xid,
//! so its answer is decoded against the pending setWatches like any reply (captured in
//! `tests/vectors/java_reconnect_setwatches*.txt`). Then a non-zero `err` means header only
//! (docs/protocol.md, Headers and reserved xids). Multi results keep the types as sent
//! (a create op 1 answers type 1; 15, 19 and 21 answer 15), so re-encoding is byte-identical.

use serde::{Deserialize, Serialize};

use super::jute::{DecodeError, Reader, Record, Writer};
use super::records::*;
use crate::stat::Stat;

/// The body of a successful reply, by the kind of request it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Response {
    /// create (1).
    Create(CreateResponse),
    /// create2 (15), createContainer (19), createTTL (21).
    Create2(Create2Response),
    /// exists (3), setData (5), setACL (7): a bare Stat.
    Stat(Stat),
    /// getData (4), reconfig (16).
    GetData(GetDataResponse),
    /// getACL (6).
    GetAcl(GetAclResponse),
    /// getChildren (8): child names.
    GetChildren(Vec<String>),
    /// getChildren2 (12).
    GetChildren2(GetChildren2Response),
    /// sync (9): the path, echoed.
    Sync(String),
    /// multi (14) and multiRead (22): one result per op, in op order.
    Multi(Vec<MultiResult>),
    /// sasl (102): the server's token.
    Sasl(SaslToken),
    /// getEphemerals (103): full paths.
    GetEphemerals(Vec<String>),
    /// getAllChildrenNumber (104): the number of descendants.
    GetAllChildrenNumber(i32),
    /// addWatch (106): a 4-byte `ErrorResponse{0}` that the Java client insists on.
    AddWatch(ErrorResponse),
    /// whoAmI (107): one entry per authenticated id.
    WhoAmI(Vec<ClientInfo>),
}

/// One entry of a multi or multiRead response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum MultiResult {
    /// Type 1: answers a create op 1.
    Create(CreateResponse),
    /// Type 15: answers create ops 15, 19 and 21.
    Create2(Create2Response),
    /// Type 2: a delete succeeded.
    Delete,
    /// Type 5: a setData succeeded.
    SetData(Stat),
    /// Type 13: a check passed.
    Check,
    /// Type 4 (multiRead): getData.
    GetData(GetDataResponse),
    /// Type 8 (multiRead): getChildren.
    GetChildren(Vec<String>),
    /// Type -1: the op failed with this code, or 0 (rolled back) / -2 (not run) in a failed
    /// multi. The code is written both in the header and in an `ErrorResponse` body.
    Error(i32),
}

impl MultiResult {
    /// The type written in this result's MultiHeader.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiResult::Create(_) => OpCode::Create,
            MultiResult::Create2(_) => OpCode::Create2,
            MultiResult::Delete => OpCode::Delete,
            MultiResult::SetData(_) => OpCode::SetData,
            MultiResult::Check => OpCode::Check,
            MultiResult::GetData(_) => OpCode::GetData,
            MultiResult::GetChildren(_) => OpCode::GetChildren,
            MultiResult::Error(_) => OpCode::Error,
        }
    }
}

/// A decoded server frame, classified by its xid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Reply {
    /// xid -1: a watch notification.
    Event(WatcherEvent),
    /// xid -2: the answer to a ping.
    Ping,
    /// xid -4: the answer to an auth packet (`err` 0 or AUTHFAILED).
    Auth,
    /// xid -8: the answer to setWatches / setWatches2 sent by the C client with xid -8 (a
    /// Java client's, sent with an ordinary xid, is a `Response(None)`).
    SetWatches,
    /// Any other xid: the answer to the oldest pending request. `None` when the header has
    /// `err != 0` or the op's success carries no body (delete, closeSession, ...).
    Response(Option<Response>),
}

/// Reserved xids (docs/protocol.md, Headers and reserved xids).
const XID_NOTIFICATION: i32 = -1;
const XID_PING: i32 = -2;
const XID_AUTH: i32 = -4;
const XID_SET_WATCHES: i32 = -8;

/// The longest payload a frame's int32 length prefix can announce.
const REPLY_PAYLOAD_BYTES_MAX: usize = i32::MAX as usize;

/// Appends a server frame payload: the header, then the body if any (`None` = header only,
/// for errors and for ops whose success has no body).
///
/// A body too long for any frame (over 2 GiB: a client can ask for that, e.g. a multiRead
/// of thousands of getData on a 1 MB znode) is replaced by the header alone with
/// `err` = MARSHALLINGERROR (-5), so [`frame`](super::frame) always gets a payload it
/// can frame.
pub fn encode_reply(header: &ReplyHeader, body: Option<&Response>, out: &mut Vec<u8>) {
    encode_reply_within(header, body, out, REPLY_PAYLOAD_BYTES_MAX);
}

/// [`encode_reply`] with the payload bounded by `payload_bytes_max`.
fn encode_reply_within(
    header: &ReplyHeader,
    body: Option<&Response>,
    out: &mut Vec<u8>,
    payload_bytes_max: usize,
) {
    let start = out.len();
    let mut writer = Writer::new(out);
    header.write(&mut writer);
    if let Some(body) = body {
        encode_reply_body(body, &mut writer);
        if out.len().saturating_sub(start) > payload_bytes_max {
            out.truncate(start);
            let refused = ReplyHeader {
                err: crate::error::ZkError::MarshallingError.code(),
                ..*header
            };
            refused.write(&mut Writer::new(out));
        }
    }
}

/// Appends a notification payload: `header` (normally [`ReplyHeader::NOTIFICATION`]) and
/// the event.
pub fn encode_event(header: &ReplyHeader, event: &WatcherEvent, out: &mut Vec<u8>) {
    let mut writer = Writer::new(out);
    header.write(&mut writer);
    event.write(&mut writer);
}

/// Appends the payload that [`decode_reply`] decoded into `(header, reply)`, byte for byte.
pub fn encode_decoded_reply(header: &ReplyHeader, reply: &Reply, out: &mut Vec<u8>) {
    match reply {
        Reply::Event(event) => encode_event(header, event, out),
        Reply::Response(body) => encode_reply(header, body.as_ref(), out),
        Reply::Ping | Reply::Auth | Reply::SetWatches => encode_reply(header, None, out),
    }
}

fn encode_reply_body(body: &Response, writer: &mut Writer<'_>) {
    match body {
        Response::Create(body) => body.write(writer),
        Response::Create2(body) => body.write(writer),
        Response::Stat(stat) => stat.write(writer),
        Response::GetData(body) => body.write(writer),
        Response::GetAcl(body) => body.write(writer),
        Response::GetChildren(names) | Response::GetEphemerals(names) => writer.write_vector(names),
        Response::GetChildren2(body) => body.write(writer),
        Response::Sync(path) => writer.write_ustring(path),
        Response::Multi(results) => encode_reply_multi_results(results, writer),
        Response::Sasl(body) => body.write(writer),
        Response::GetAllChildrenNumber(count) => writer.write_int(*count),
        Response::AddWatch(body) => body.write(writer),
        Response::WhoAmI(infos) => writer.write_vector(infos),
    }
}

fn encode_reply_multi_results(results: &[MultiResult], writer: &mut Writer<'_>) {
    for result in results {
        let err = match result {
            MultiResult::Error(code) => *code,
            _ => 0,
        };
        MultiHeader {
            op_type: result.op_code().code(),
            done: false,
            err,
        }
        .write(writer);
        match result {
            MultiResult::Create(body) => body.write(writer),
            MultiResult::Create2(body) => body.write(writer),
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(stat) => stat.write(writer),
            MultiResult::GetData(body) => body.write(writer),
            MultiResult::GetChildren(names) => writer.write_vector(names),
            MultiResult::Error(code) => ErrorResponse { err: *code }.write(writer),
        }
    }
    MultiHeader::END.write(writer);
}

/// Decodes a server frame payload (after the handshake). `pending` is the opcode of the
/// client's oldest pending request; it is ignored for reserved xids (-1, -2, -4, -8). For a
/// request sent with an opcode that is not an [`OpCode`], pass [`OpCode::Error`]: its only
/// possible answer is a header-only UNIMPLEMENTED.
pub fn decode_reply(payload: &[u8], pending: OpCode) -> Result<(ReplyHeader, Reply), DecodeError> {
    let mut reader = Reader::new(payload);
    let header = ReplyHeader::read(&mut reader)?;
    let reply = match header.xid {
        XID_NOTIFICATION => Reply::Event(WatcherEvent::read(&mut reader)?),
        XID_PING => Reply::Ping,
        XID_AUTH => Reply::Auth,
        XID_SET_WATCHES => Reply::SetWatches,
        _ if header.err != 0 => Reply::Response(None),
        _ => Reply::Response(decode_reply_body(pending, &mut reader)?),
    };
    reader.finish("reply")?;
    Ok((header, reply))
}

fn decode_reply_body(
    pending: OpCode,
    reader: &mut Reader<'_>,
) -> Result<Option<Response>, DecodeError> {
    let body = match pending {
        OpCode::Create => Response::Create(Record::read(reader)?),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            Response::Create2(Record::read(reader)?)
        }
        OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(Record::read(reader)?),
        OpCode::GetData | OpCode::Reconfig => Response::GetData(Record::read(reader)?),
        OpCode::GetAcl => Response::GetAcl(Record::read(reader)?),
        OpCode::GetChildren => Response::GetChildren(reader.read_vector("GetChildrenResponse")?),
        OpCode::GetChildren2 => Response::GetChildren2(Record::read(reader)?),
        OpCode::Sync => Response::Sync(reader.read_ustring("SyncResponse.path")?),
        OpCode::Multi | OpCode::MultiRead => {
            Response::Multi(decode_reply_multi_results(pending, reader)?)
        }
        OpCode::Sasl => Response::Sasl(Record::read(reader)?),
        OpCode::GetEphemerals => {
            Response::GetEphemerals(reader.read_vector("GetEphemeralsResponse")?)
        }
        OpCode::GetAllChildrenNumber => {
            Response::GetAllChildrenNumber(reader.read_int("GetAllChildrenNumberResponse")?)
        }
        OpCode::AddWatch => Response::AddWatch(Record::read(reader)?),
        OpCode::WhoAmI => Response::WhoAmI(reader.read_vector("WhoAmIResponse.clientInfo")?),
        OpCode::Delete
        | OpCode::Ping
        | OpCode::Check
        | OpCode::CheckWatches
        | OpCode::RemoveWatches
        | OpCode::DeleteContainer
        | OpCode::Auth
        | OpCode::SetWatches
        | OpCode::SetWatches2
        | OpCode::CloseSession
        | OpCode::Notification
        | OpCode::CreateSession
        | OpCode::Error => return Ok(None),
    };
    Ok(Some(body))
}

/// Reads multi results up to the end marker. `pending` (Multi or MultiRead) decides which
/// result types are allowed; success entries must carry `err = 0`, error entries the same
/// code in header and body.
fn decode_reply_multi_results(
    pending: OpCode,
    reader: &mut Reader<'_>,
) -> Result<Vec<MultiResult>, DecodeError> {
    let mut results = Vec::new();
    // Terminates: every iteration consumes at least a 9-byte header.
    loop {
        let offset = reader.offset();
        let header = MultiHeader::read(reader)?;
        let bad_header = DecodeError::BadMultiHeader {
            offset,
            op_type: header.op_type,
            done: header.done,
            err: header.err,
        };
        if header.done {
            return if header == MultiHeader::END {
                Ok(results)
            } else {
                Err(bad_header)
            };
        }
        let op = OpCode::try_from(header.op_type).ok();
        if op != Some(OpCode::Error) && header.err != 0 {
            return Err(bad_header);
        }
        let result = match (pending, op) {
            (_, Some(OpCode::Error)) => {
                let body_err = ErrorResponse::read(reader)?.err;
                if body_err != header.err {
                    let header_err = header.err;
                    return Err(DecodeError::MultiErrorMismatch {
                        offset,
                        header_err,
                        body_err,
                    });
                }
                MultiResult::Error(body_err)
            }
            (OpCode::Multi, Some(OpCode::Create)) => MultiResult::Create(Record::read(reader)?),
            (OpCode::Multi, Some(OpCode::Create2)) => MultiResult::Create2(Record::read(reader)?),
            (OpCode::Multi, Some(OpCode::Delete)) => MultiResult::Delete,
            (OpCode::Multi, Some(OpCode::SetData)) => MultiResult::SetData(Record::read(reader)?),
            (OpCode::Multi, Some(OpCode::Check)) => MultiResult::Check,
            (OpCode::MultiRead, Some(OpCode::GetData)) => {
                MultiResult::GetData(Record::read(reader)?)
            }
            (OpCode::MultiRead, Some(OpCode::GetChildren)) => {
                MultiResult::GetChildren(reader.read_vector("GetChildrenResponse")?)
            }
            _ => {
                let (multi_op, op_type) = (pending.code(), header.op_type);
                return Err(DecodeError::MultiOpNotAllowed {
                    multi_op,
                    offset,
                    op_type,
                });
            }
        };
        results.push(result);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // A body longer than a frame may be becomes a header-only MARSHALLINGERROR reply
    // (the real bound, 2 GiB, is scaled down here); one that fits is left alone.
    #[test]
    fn an_unframeable_reply_becomes_a_marshalling_error() {
        let header = ReplyHeader {
            xid: 7,
            zxid: 9,
            err: 0,
        };
        let names = vec!["child".to_owned(); 10];
        let body = Response::GetChildren(names.clone());
        let mut fits = Vec::new();
        encode_reply_within(&header, Some(&body), &mut fits, 1024);
        assert_eq!(
            decode_reply(&fits, OpCode::GetChildren).unwrap(),
            (header, Reply::Response(Some(Response::GetChildren(names))))
        );
        let mut over = Vec::new();
        encode_reply_within(&header, Some(&body), &mut over, fits.len() - 1);
        let (refused, reply) = decode_reply(&over, OpCode::GetChildren).unwrap();
        assert_eq!(
            refused,
            ReplyHeader {
                err: crate::error::ZkError::MarshallingError.code(),
                ..header
            }
        );
        assert_eq!(reply, Reply::Response(None));
    }
}
