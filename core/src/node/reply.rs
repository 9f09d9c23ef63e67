//! Turning results into wire frames: replies to reads and writes, watch events and
//! connect responses. Pure functions of their arguments.

use crate::error::ZkError;
use crate::ids::{SessionId, Zxid};
use crate::tree::{Applied, CreateOpcode, OpResult, ReadResult, TxnKind};
use crate::watch::WatchEvent;
use crate::wire::{
    self, ConnectResponse, Create2Response, CreateResponse, GetDataResponse, MultiResult,
    ReplyHeader, Response, WatcherEvent,
};

/// A reply frame: the header, and the body unless `err` is set.
pub(super) fn frame(xid: i32, zxid: Zxid, err: ZkError, body: Option<&Response>) -> Vec<u8> {
    let header = ReplyHeader {
        xid,
        zxid: zxid.as_wire(),
        err: err.code(),
    };
    let mut payload = Vec::new();
    let body = if err == ZkError::Ok { body } else { None };
    wire::encode_reply(&header, body, &mut payload);
    wire::frame(&payload)
}

/// A frame answering with `result`, when it fits `frame_bytes_max` (the client's
/// `jute.maxbuffer`): a larger one (the children of a node with very many, a multi's
/// results) would make the client drop the connection and, reconnected, ask again, so it
/// is answered MARSHALLINGERROR instead, as multiRead is when its results outgrow a frame.
pub(super) fn result(
    xid: i32,
    zxid: Zxid,
    result: Result<Option<Response>, ZkError>,
    frame_bytes_max: u32,
) -> Vec<u8> {
    let bytes = match result {
        Ok(body) => frame(xid, zxid, ZkError::Ok, body.as_ref()),
        Err(err) => frame(xid, zxid, err, None),
    };
    // The frame's 4-byte length prefix is not part of the limit.
    if bytes.len() - 4 > frame_bytes_max as usize {
        return frame(xid, zxid, ZkError::MarshallingError, None);
    }
    bytes
}

/// A watch notification frame (`{-1, -1, 0}` + WatcherEvent).
pub(super) fn event(event: &WatchEvent) -> Vec<u8> {
    let mut payload = Vec::new();
    let body = WatcherEvent::new(event.event_type, &event.path);
    wire::encode_event(&ReplyHeader::NOTIFICATION, &body, &mut payload);
    wire::frame(&payload)
}

/// A ConnectResponse frame; `read_only_byte` mirrors whether the client sent one.
pub(super) fn connect(
    timeout_ms: u32,
    session: SessionId,
    password: [u8; 16],
    read_only_byte: bool,
) -> Vec<u8> {
    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms: i32::try_from(timeout_ms).unwrap_or(i32::MAX),
        session_id: session,
        passwd: password.to_vec(),
        read_only: read_only_byte.then_some(false),
    };
    let mut payload = Vec::new();
    wire::encode_connect_response(&response, &mut payload);
    wire::frame(&payload)
}

/// The "session expired" ConnectResponse: timeout 0, id 0, zero password (docs/protocol.md,
/// Handshake).
pub(super) fn connect_expired(read_only_byte: bool) -> Vec<u8> {
    connect(0, SessionId(0), [0; 16], read_only_byte)
}

fn multi_result(result: &OpResult) -> MultiResult {
    match result {
        OpResult::Created {
            opcode: CreateOpcode::Create,
            path,
            ..
        } => MultiResult::Create(CreateResponse { path: path.clone() }),
        OpResult::Created { path, stat, .. } => MultiResult::Create2(Create2Response {
            path: path.clone(),
            stat: *stat,
        }),
        OpResult::Deleted => MultiResult::Delete,
        OpResult::DataSet(stat) | OpResult::AclSet(stat) => MultiResult::SetData(*stat),
        OpResult::Checked => MultiResult::Check,
        OpResult::Error(err) => MultiResult::Error(err.code()),
    }
}

/// The body (or error) a client gets for an applied tree transaction it asked for.
pub(super) fn txn(kind: &TxnKind, applied: &Applied) -> Result<Option<Response>, ZkError> {
    match kind {
        TxnKind::Multi(_) | TxnKind::MultiFailed(_) => Ok(Some(Response::Multi(
            applied.results.iter().map(multi_result).collect(),
        ))),
        TxnKind::Single(_) => match applied.results.first() {
            Some(OpResult::Created {
                opcode: CreateOpcode::Create,
                path,
                ..
            }) => Ok(Some(Response::Create(CreateResponse {
                path: path.clone(),
            }))),
            Some(OpResult::Created { path, stat, .. }) => {
                Ok(Some(Response::Create2(Create2Response {
                    path: path.clone(),
                    stat: *stat,
                })))
            }
            Some(OpResult::DataSet(stat) | OpResult::AclSet(stat)) => {
                Ok(Some(Response::Stat(*stat)))
            }
            Some(OpResult::Deleted | OpResult::Checked) => Ok(None),
            Some(OpResult::Error(err)) => Err(*err),
            None => Err(ZkError::SystemError),
        },
        // Opening and closing a session record no result and cannot fail once prepared;
        // a container's deletion (which may find the container gone) has no client.
        TxnKind::CreateSession { .. }
        | TxnKind::CloseSession { .. }
        | TxnKind::DeleteContainer { .. } => Ok(None),
    }
}

/// A multiRead entry.
pub(super) fn read_result(result: ReadResult) -> MultiResult {
    match result {
        ReadResult::Data(data, stat) => MultiResult::GetData(GetDataResponse { data, stat }),
        ReadResult::Children(children) => MultiResult::GetChildren(children),
        ReadResult::Error(err) => MultiResult::Error(err.code()),
    }
}
