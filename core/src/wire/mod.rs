//! `wire`: the ZooKeeper 3.8 client protocol codec, both directions. A server decodes
//! requests and encodes replies; a client (the simulator, the CLI) encodes requests and
//! decodes replies. The facts it relies on are in docs/protocol.md (Framing, Jute encoding,
//! Handshake, Headers and reserved xids, Opcodes, Watches, Multi, ACLs, Four-letter words).
//!
//! Layers, each in its own file: `frame` splits a connection's byte stream into payloads
//! and spots four-letter words; `jute` reads and writes fields with bounds checks;
//! `records` holds every jute record and [`OpCode`]; `connect`, `request` and `reply` turn
//! payloads into messages and back.
//!
//! Invariants: decoding never panics and never allocates more than the input justifies;
//! every malformed input is a [`DecodeError`] naming the field and offset; a decoded
//! message re-encodes to the same bytes, except that null ustrings, null vectors and null
//! non-data buffers (passwords, auth credentials, SASL tokens) come back as empty ones
//! (length 0), invalid UTF-8 (including Java's CESU-8 surrogates) comes back as U+FFFD, and
//! a non-zero boolean byte comes back as 1. Znode data keeps null and empty apart. None of
//! these lossy cases occurs in traffic captured between ZooKeeper 3.8.0 and kazoo 2.11 or the
//! Java client 3.8.0: every captured frame re-encodes byte for byte (`tests/wire_golden.rs`);
//! kazoo does send null ustrings for empty strings in other calls (`tests/wire_kazoo.rs`).
//! Nothing here checks semantics (paths, versions, ACLs, whether an op may be sent at top
//! level) or decides what to answer.

//!
//! A request's life, client to server and back:
//!
//! ```
//! use paddock_core::wire::*;
//!
//! // Client: encode and frame a getData with a watch.
//! let request = Request::GetData(PathWatchRequest { path: "/app".into(), watch: true });
//! let mut payload = Vec::new();
//! encode_request(&RequestHeader { xid: 1, op: request.op_code() }, &request, &mut payload);
//! let bytes = frame(&payload);
//!
//! // Server: split the stream into frames, decode, answer NONODE (header only).
//! let mut inbound = FrameSplitter::new(MAX_FRAME_BYTES_DEFAULT);
//! inbound.push(&bytes);
//! let payload = inbound.next_frame()?.expect("one whole frame was pushed");
//! let (header, decoded) = decode_request(&payload)?;
//! assert_eq!(decoded, request);
//! let mut reply = Vec::new();
//! encode_reply(&ReplyHeader { xid: header.xid, zxid: 7, err: -101 }, None, &mut reply);
//!
//! // Client: decode the reply, knowing its oldest pending request is a getData.
//! let (reply_header, body) = decode_reply(&reply, OpCode::GetData)?;
//! assert_eq!(reply_header.error(), Some(paddock_core::error::ZkError::NoNode));
//! assert_eq!(body, Reply::Response(None));
//! # Ok::<(), DecodeError>(())
//! ```

#![deny(clippy::indexing_slicing)]

mod connect;
mod frame;
mod jute;
mod records;
mod reply;
mod request;

pub use connect::{
    decode_connect_request, decode_connect_response, encode_connect_request,
    encode_connect_response,
};
pub use frame::{
    ConnectionStart, FRAME_PREFIX_BYTES, FourLetterWord, FrameSplitter, MAX_FRAME_BYTES_DEFAULT,
    classify_connection_start, frame, split_frame,
};
pub use jute::{DecodeError, Reader, Record, Writer};
pub use records::*;
pub use reply::{
    MultiResult, Reply, Response, decode_reply, encode_decoded_reply, encode_event, encode_reply,
};
pub use request::{MultiOp, MultiReadOp, Request, decode_request, encode_request};
