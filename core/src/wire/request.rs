//! Client → server messages: the [`Request`] enum (one variant per opcode body), multi and
//! multiRead bodies, and their decoding (server side) and encoding (client side).
//!
//! Invariants: `decode_request` consumes the whole payload or fails; an unknown opcode is
//! not an error but [`Request::Unknown`] (the server answers UNIMPLEMENTED and closes), so
//! decoding and re-encoding reproduce the input for every opcode. Semantic checks (paths,
//! flags, a top-level `check`) are the server's job, not this module's.

use serde::{Deserialize, Serialize};

use super::jute::{DecodeError, Reader, Record, Writer};
use super::records::*;

/// The body of a client request, by opcode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Request {
    /// create (1): answered with a CreateResponse.
    Create(CreateRequest),
    /// create2 (15): answered with a Create2Response.
    Create2(CreateRequest),
    /// createContainer (19).
    CreateContainer(CreateRequest),
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// exists (3).
    Exists(PathWatchRequest),
    /// getData (4).
    GetData(PathWatchRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// getACL (6).
    GetAcl(PathRequest),
    /// setACL (7).
    SetAcl(SetAclRequest),
    /// getChildren (8).
    GetChildren(PathWatchRequest),
    /// sync (9).
    Sync(PathRequest),
    /// ping (11), no body.
    Ping,
    /// getChildren2 (12).
    GetChildren2(PathWatchRequest),
    /// check (13): only valid inside multi; top level is answered UNIMPLEMENTED.
    Check(CheckVersionRequest),
    /// multi (14): write ops applied all-or-nothing (may be empty).
    Multi(Vec<MultiOp>),
    /// reconfig (16).
    Reconfig(ReconfigRequest),
    /// checkWatches (17).
    CheckWatches(WatchesRequest),
    /// removeWatches (18).
    RemoveWatches(WatchesRequest),
    /// deleteContainer (20): the raw UTF-8 path bytes, not jute.
    DeleteContainer(Vec<u8>),
    /// multiRead (22): read ops run one by one (may be empty).
    MultiRead(Vec<MultiReadOp>),
    /// auth (100).
    Auth(AuthPacket),
    /// setWatches (101).
    SetWatches(SetWatches),
    /// sasl (102).
    Sasl(SaslToken),
    /// getEphemerals (103).
    GetEphemerals(GetEphemeralsRequest),
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber(PathRequest),
    /// setWatches2 (105).
    SetWatches2(SetWatches2),
    /// addWatch (106).
    AddWatch(AddWatchRequest),
    /// whoAmI (107), no body.
    WhoAmI,
    /// closeSession (-11), no body.
    CloseSession,
    /// An opcode clients may not send (unknown, or internal: 0, -1, -10), with its raw body.
    /// The server answers UNIMPLEMENTED and closes the connection. `op` is never one of the
    /// client opcodes above (those decode to their own variant).
    Unknown {
        /// The opcode as sent.
        op: i32,
        /// The body bytes, undecoded.
        body: Vec<u8>,
    },
}

/// One write op inside a multi (14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum MultiOp {
    /// create (1): its result has type 1.
    Create(CreateRequest),
    /// create2 (15): its result has type 15.
    Create2(CreateRequest),
    /// createContainer (19): its result has type 15.
    CreateContainer(CreateRequest),
    /// createTTL (21): its result has type 15.
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// check (13).
    Check(CheckVersionRequest),
}

/// One read op inside a multiRead (22).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum MultiReadOp {
    /// getData (4); clients send `watch = false`.
    GetData(PathWatchRequest),
    /// getChildren (8); clients send `watch = false`.
    GetChildren(PathWatchRequest),
}

impl Request {
    /// The opcode this request is sent with (the raw value for [`Request::Unknown`]).
    pub fn op_code(&self) -> i32 {
        let op = match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
            Request::Unknown { op, .. } => return *op,
        };
        op.code()
    }
}

impl MultiOp {
    /// The op type written in this op's MultiHeader.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
        }
    }
}

impl MultiReadOp {
    /// The op type written in this op's MultiHeader.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiReadOp::GetData(_) => OpCode::GetData,
            MultiReadOp::GetChildren(_) => OpCode::GetChildren,
        }
    }
}

/// Decodes a client frame payload (after the handshake): header, then the body its opcode
/// names, which must end exactly where the payload ends.
pub fn decode_request(payload: &[u8]) -> Result<(RequestHeader, Request), DecodeError> {
    let mut reader = Reader::new(payload);
    let header = RequestHeader::read(&mut reader)?;
    let request = match OpCode::try_from(header.op) {
        Ok(op) => decode_request_body(op, &mut reader)?,
        Err(_) => Request::Unknown {
            op: header.op,
            body: reader.read_rest().to_vec(),
        },
    };
    reader.finish("request")?;
    Ok((header, request))
}

fn decode_request_body(op: OpCode, reader: &mut Reader<'_>) -> Result<Request, DecodeError> {
    Ok(match op {
        OpCode::Create => Request::Create(Record::read(reader)?),
        OpCode::Create2 => Request::Create2(Record::read(reader)?),
        OpCode::CreateContainer => Request::CreateContainer(Record::read(reader)?),
        OpCode::CreateTtl => Request::CreateTtl(Record::read(reader)?),
        OpCode::Delete => Request::Delete(Record::read(reader)?),
        OpCode::Exists => Request::Exists(Record::read(reader)?),
        OpCode::GetData => Request::GetData(Record::read(reader)?),
        OpCode::SetData => Request::SetData(Record::read(reader)?),
        OpCode::GetAcl => Request::GetAcl(Record::read(reader)?),
        OpCode::SetAcl => Request::SetAcl(Record::read(reader)?),
        OpCode::GetChildren => Request::GetChildren(Record::read(reader)?),
        OpCode::Sync => Request::Sync(Record::read(reader)?),
        OpCode::Ping => Request::Ping,
        OpCode::GetChildren2 => Request::GetChildren2(Record::read(reader)?),
        OpCode::Check => Request::Check(Record::read(reader)?),
        OpCode::Multi => Request::Multi(decode_multi_ops(reader)?),
        OpCode::Reconfig => Request::Reconfig(Record::read(reader)?),
        OpCode::CheckWatches => Request::CheckWatches(Record::read(reader)?),
        OpCode::RemoveWatches => Request::RemoveWatches(Record::read(reader)?),
        OpCode::DeleteContainer => Request::DeleteContainer(reader.read_rest().to_vec()),
        OpCode::MultiRead => Request::MultiRead(decode_multi_read_ops(reader)?),
        OpCode::Auth => Request::Auth(Record::read(reader)?),
        OpCode::SetWatches => Request::SetWatches(Record::read(reader)?),
        OpCode::Sasl => Request::Sasl(Record::read(reader)?),
        OpCode::GetEphemerals => Request::GetEphemerals(Record::read(reader)?),
        OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(Record::read(reader)?),
        OpCode::SetWatches2 => Request::SetWatches2(Record::read(reader)?),
        OpCode::AddWatch => Request::AddWatch(Record::read(reader)?),
        OpCode::WhoAmI => Request::WhoAmI,
        OpCode::CloseSession => Request::CloseSession,
        OpCode::Notification | OpCode::CreateSession | OpCode::Error => Request::Unknown {
            op: op.code(),
            body: reader.read_rest().to_vec(),
        },
    })
}

/// Reads the next op header of a multi request: `Ok(None)` at the end marker, else the
/// header's offset and op type. Op headers must be `{type, false, -1}`.
fn decode_multi_next(reader: &mut Reader<'_>) -> Result<Option<(usize, i32)>, DecodeError> {
    let offset = reader.offset();
    let header = MultiHeader::read(reader)?;
    let bad = DecodeError::BadMultiHeader {
        offset,
        op_type: header.op_type,
        done: header.done,
        err: header.err,
    };
    if header.done {
        return if header == MultiHeader::END {
            Ok(None)
        } else {
            Err(bad)
        };
    }
    if header.err != -1 {
        return Err(bad);
    }
    Ok(Some((offset, header.op_type)))
}

fn decode_multi_ops(reader: &mut Reader<'_>) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    // Terminates: every iteration consumes at least a 9-byte header.
    while let Some((offset, op_type)) = decode_multi_next(reader)? {
        let op = match OpCode::try_from(op_type) {
            Ok(OpCode::Create) => MultiOp::Create(Record::read(reader)?),
            Ok(OpCode::Create2) => MultiOp::Create2(Record::read(reader)?),
            Ok(OpCode::CreateContainer) => MultiOp::CreateContainer(Record::read(reader)?),
            Ok(OpCode::CreateTtl) => MultiOp::CreateTtl(Record::read(reader)?),
            Ok(OpCode::Delete) => MultiOp::Delete(Record::read(reader)?),
            Ok(OpCode::SetData) => MultiOp::SetData(Record::read(reader)?),
            Ok(OpCode::Check) => MultiOp::Check(Record::read(reader)?),
            _ => {
                let multi_op = OpCode::Multi.code();
                return Err(DecodeError::MultiOpNotAllowed {
                    multi_op,
                    offset,
                    op_type,
                });
            }
        };
        ops.push(op);
    }
    Ok(ops)
}

fn decode_multi_read_ops(reader: &mut Reader<'_>) -> Result<Vec<MultiReadOp>, DecodeError> {
    let mut ops = Vec::new();
    // Terminates: every iteration consumes at least a 9-byte header.
    while let Some((offset, op_type)) = decode_multi_next(reader)? {
        let op = match OpCode::try_from(op_type) {
            Ok(OpCode::GetData) => MultiReadOp::GetData(Record::read(reader)?),
            Ok(OpCode::GetChildren) => MultiReadOp::GetChildren(Record::read(reader)?),
            _ => {
                let multi_op = OpCode::MultiRead.code();
                return Err(DecodeError::MultiOpNotAllowed {
                    multi_op,
                    offset,
                    op_type,
                });
            }
        };
        ops.push(op);
    }
    Ok(ops)
}

/// Appends a client frame payload (header + body, no length prefix; see `frame`).
///
/// Panics if `header.op` is not `request.op_code()`: a mismatched pair is a bug of the caller.
pub fn encode_request(header: &RequestHeader, request: &Request, out: &mut Vec<u8>) {
    assert_eq!(
        header.op,
        request.op_code(),
        "RequestHeader.op must match the request body"
    );
    let mut writer = Writer::new(out);
    header.write(&mut writer);
    encode_request_body(request, &mut writer);
}

fn encode_request_body(request: &Request, writer: &mut Writer<'_>) {
    match request {
        Request::Create(body) | Request::Create2(body) | Request::CreateContainer(body) => {
            body.write(writer)
        }
        Request::CreateTtl(body) => body.write(writer),
        Request::Delete(body) => body.write(writer),
        Request::Exists(body)
        | Request::GetData(body)
        | Request::GetChildren(body)
        | Request::GetChildren2(body) => body.write(writer),
        Request::SetData(body) => body.write(writer),
        Request::GetAcl(body) | Request::Sync(body) | Request::GetAllChildrenNumber(body) => {
            body.write(writer)
        }
        Request::SetAcl(body) => body.write(writer),
        Request::Check(body) => body.write(writer),
        Request::Multi(ops) => encode_multi_ops(ops, writer),
        Request::MultiRead(ops) => encode_multi_read_ops(ops, writer),
        Request::Reconfig(body) => body.write(writer),
        Request::CheckWatches(body) | Request::RemoveWatches(body) => body.write(writer),
        Request::DeleteContainer(path) => writer.write_raw(path),
        Request::Auth(body) => body.write(writer),
        Request::SetWatches(body) => body.write(writer),
        Request::Sasl(body) => body.write(writer),
        Request::GetEphemerals(body) => body.write(writer),
        Request::SetWatches2(body) => body.write(writer),
        Request::AddWatch(body) => body.write(writer),
        Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        Request::Unknown { body, .. } => writer.write_raw(body),
    }
}

fn encode_multi_op_header(op: OpCode) -> MultiHeader {
    MultiHeader {
        op_type: op.code(),
        done: false,
        err: -1,
    }
}

fn encode_multi_ops(ops: &[MultiOp], writer: &mut Writer<'_>) {
    for op in ops {
        encode_multi_op_header(op.op_code()).write(writer);
        match op {
            MultiOp::Create(body) | MultiOp::Create2(body) | MultiOp::CreateContainer(body) => {
                body.write(writer)
            }
            MultiOp::CreateTtl(body) => body.write(writer),
            MultiOp::Delete(body) => body.write(writer),
            MultiOp::SetData(body) => body.write(writer),
            MultiOp::Check(body) => body.write(writer),
        }
    }
    MultiHeader::END.write(writer);
}

fn encode_multi_read_ops(ops: &[MultiReadOp], writer: &mut Writer<'_>) {
    for op in ops {
        encode_multi_op_header(op.op_code()).write(writer);
        match op {
            MultiReadOp::GetData(body) | MultiReadOp::GetChildren(body) => body.write(writer),
        }
    }
    MultiHeader::END.write(writer);
}
