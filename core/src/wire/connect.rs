//! The handshake records: the client's first frame is a bare [`ConnectRequest`] and the
//! server's first frame a bare [`ConnectResponse`], neither with a header (docs/protocol.md,
//! Handshake).
//!
//! The readOnly byte is not part of the 3.8 jute record: it is appended by hand and may be
//! absent (clients older than 3.4). `read_only: None` records its absence so a server can
//! mirror it in the response and so re-encoding reproduces the input. Negotiating timeouts
//! and checking passwords is the session module's job.

use super::jute::{DecodeError, Reader, Writer};
use super::records::{ConnectRequest, ConnectResponse};
use crate::ids::SessionId;

/// Reads the optional trailing readOnly byte, then requires the payload to end.
fn read_optional_read_only(
    reader: &mut Reader<'_>,
    record: &'static str,
) -> Result<Option<bool>, DecodeError> {
    let read_only = match reader.remaining_bytes() {
        0 => None,
        _ => Some(reader.read_bool("readOnly")?),
    };
    reader.finish(record)?;
    Ok(read_only)
}

/// Decodes a client's first frame payload.
pub fn decode_connect_request(payload: &[u8]) -> Result<ConnectRequest, DecodeError> {
    let mut reader = Reader::new(payload);
    let protocol_version = reader.read_int("ConnectRequest.protocolVersion")?;
    let last_zxid_seen = reader.read_long("ConnectRequest.lastZxidSeen")?;
    let timeout_ms = reader.read_int("ConnectRequest.timeOut")?;
    let session_id = SessionId(reader.read_long("ConnectRequest.sessionId")?);
    let passwd = reader
        .read_buffer("ConnectRequest.passwd")?
        .unwrap_or_default();
    let read_only = read_optional_read_only(&mut reader, "ConnectRequest")?;
    Ok(ConnectRequest {
        protocol_version,
        last_zxid_seen,
        timeout_ms,
        session_id,
        passwd,
        read_only,
    })
}

/// Appends a client's first frame payload (45 bytes with a 16-byte password and readOnly).
pub fn encode_connect_request(request: &ConnectRequest, out: &mut Vec<u8>) {
    let mut writer = Writer::new(out);
    writer.write_int(request.protocol_version);
    writer.write_long(request.last_zxid_seen);
    writer.write_int(request.timeout_ms);
    writer.write_long(request.session_id.0);
    writer.write_buffer(Some(&request.passwd));
    if let Some(read_only) = request.read_only {
        writer.write_bool(read_only);
    }
}

/// Decodes a server's first frame payload.
pub fn decode_connect_response(payload: &[u8]) -> Result<ConnectResponse, DecodeError> {
    let mut reader = Reader::new(payload);
    let protocol_version = reader.read_int("ConnectResponse.protocolVersion")?;
    let timeout_ms = reader.read_int("ConnectResponse.timeOut")?;
    let session_id = SessionId(reader.read_long("ConnectResponse.sessionId")?);
    let passwd = reader
        .read_buffer("ConnectResponse.passwd")?
        .unwrap_or_default();
    let read_only = read_optional_read_only(&mut reader, "ConnectResponse")?;
    Ok(ConnectResponse {
        protocol_version,
        timeout_ms,
        session_id,
        passwd,
        read_only,
    })
}

/// Appends a server's first frame payload (37 bytes with a 16-byte password and readOnly).
pub fn encode_connect_response(response: &ConnectResponse, out: &mut Vec<u8>) {
    let mut writer = Writer::new(out);
    writer.write_int(response.protocol_version);
    writer.write_int(response.timeout_ms);
    writer.write_long(response.session_id.0);
    writer.write_buffer(Some(&response.passwd));
    if let Some(read_only) = response.read_only {
        writer.write_bool(read_only);
    }
}
