//! The event trace: a running hash of every event (the determinism fingerprint of a
//! run) and, on request, a JSON-lines file with one object per event:
//! `{"t": virtual ms, "node": server id (0 for the world), "kind": ..., "details": ...}`.
//!
//! Legend of the kinds the world records through the helpers here:
//! - `deliver`: a peer message reached `node`; details name the sender, the epoch, the
//!   message kind and its indexes/zxids (entry payloads as sizes, not bytes).
//! - `to_server` / `to_client`: client bytes on a connection, one frame per item, decoded
//!   where cheap (request op and path, reply xid/zxid/err, watch events).
//! - `apply`: a server applied a log entry (index, zxid, payload size).
//! - anything else (`start`, `crash`, faults) comes through [`Trace::record`] or
//!   [`Trace::record_digest`] with free-form details.
//!
//! Invariant: the hash covers every event's time, node and kind, plus a digest of its
//! content chosen to be cheap (client bytes in full; peer messages by kind, epoch,
//! indexes, zxids and payload sizes; applied entries by index, zxid and payload hash).
//! Details strings are built only when a file is written, so hashing alone stays cheap;
//! the file never changes the hash.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use paddock_core::ids::{ConnId, NodeId, Zxid};
use paddock_core::node::PeerMessage;
use paddock_core::replication::{Entry, MessageBody};
use paddock_core::wire::{
    MAX_FRAME_BYTES_DEFAULT, ReplyHeader, WatcherEvent, decode_connect_request, decode_request,
    split_frame,
};

/// FNV-1a offset basis: the hash of an empty trace.
const HASH_INITIAL: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a prime.
const HASH_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Longest decoded request written in a details string, chars (znode data is long).
const DETAILS_REQUEST_CHARS_MAX: usize = 160;

/// The trace of one run.
pub struct Trace {
    hash: u64,
    file: Option<BufWriter<File>>,
}

impl Trace {
    /// A trace that only hashes.
    pub fn hash_only() -> Trace {
        Trace {
            hash: HASH_INITIAL,
            file: None,
        }
    }

    /// A trace that also writes every event to `path`.
    pub fn to_file(path: &Path) -> std::io::Result<Trace> {
        Ok(Trace {
            hash: HASH_INITIAL,
            file: Some(BufWriter::new(File::create(path)?)),
        })
    }

    fn mix(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.hash ^= u64::from(*b);
            self.hash = self.hash.wrapping_mul(HASH_PRIME);
        }
    }

    fn mix_u64(&mut self, value: u64) {
        self.mix(&value.to_le_bytes());
    }

    /// Records one event whose content is not hashed (only time, node and kind);
    /// `details` is only computed when writing a file.
    pub fn record(&mut self, at_ms: u64, node: u64, kind: &str, details: impl FnOnce() -> String) {
        self.mix_u64(at_ms);
        self.mix_u64(node);
        self.mix(kind.as_bytes());
        if let Some(file) = &mut self.file {
            let line =
                serde_json::json!({"t": at_ms, "node": node, "kind": kind, "details": details()});
            // A trace file that cannot be written loses the trace, not the run.
            let _ = writeln!(file, "{line}");
        }
    }

    /// Records one event and mixes `digest` (a cheap summary of its content, such as
    /// sizes, ids and zxids) into the hash.
    pub fn record_digest(
        &mut self,
        at_ms: u64,
        node: u64,
        kind: &str,
        digest: u64,
        details: impl FnOnce() -> String,
    ) {
        self.mix_u64(digest);
        self.record(at_ms, node, kind, details);
    }

    /// Records a peer message delivered to `to`.
    pub fn deliver(&mut self, at_ms: u64, from: NodeId, to: NodeId, msg: &PeerMessage) {
        let digest = peer_message_digest(msg);
        self.record_digest(at_ms, to.0, "deliver", digest, || {
            format!("from={} {}", from.0, peer_message_details(msg))
        });
    }

    /// Records client bytes on `conn` to or from `server`; the hash covers every byte.
    pub fn client_bytes(
        &mut self,
        at_ms: u64,
        server: NodeId,
        conn: ConnId,
        to_server: bool,
        bytes: &[u8],
    ) {
        let kind = if to_server { "to_server" } else { "to_client" };
        let digest = crate::history::fnv1a(bytes);
        self.record_digest(at_ms, server.0, kind, digest, || {
            format!(
                "conn={} bytes={} {}",
                conn.0,
                bytes.len(),
                client_frames_details(bytes, to_server)
            )
        });
    }

    /// Records that `node` applied `entry`.
    pub fn apply(&mut self, at_ms: u64, node: NodeId, entry: &Entry) {
        let digest = crate::history::fnv1a(&entry.payload) ^ entry.index.rotate_left(32);
        self.record_digest(at_ms, node.0, "apply", digest ^ entry.zxid.0, || {
            format!(
                "index={} zxid={} payload_bytes={}",
                entry.index,
                entry.zxid,
                entry.payload.len()
            )
        });
    }

    /// The fingerprint so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Flushes the file.
    pub fn finish(&mut self) {
        if let Some(file) = &mut self.file {
            let _ = file.flush();
        }
    }
}

/// Mixes `values` into one u64 (FNV-1a over their little-endian bytes).
fn digest_of(values: &[u64]) -> u64 {
    let mut hash = HASH_INITIAL;
    for value in values {
        for b in value.to_le_bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(HASH_PRIME);
        }
    }
    hash
}

fn entries_digest(entries: &[Entry]) -> u64 {
    let values: Vec<u64> = entries
        .iter()
        .flat_map(|e| [e.index, e.zxid.0, e.payload.len() as u64])
        .collect();
    digest_of(&values)
}

/// What identifies a peer message cheaply: its kind, epoch, indexes, zxids and sizes.
fn peer_message_digest(msg: &PeerMessage) -> u64 {
    match msg {
        PeerMessage::Replication(m) => {
            let epoch = u64::from(m.epoch.0);
            match &m.body {
                MessageBody::PreVote {
                    last_index,
                    last_zxid,
                } => digest_of(&[1, epoch, *last_index, last_zxid.0]),
                MessageBody::PreVoteReply { granted } => {
                    digest_of(&[2, epoch, u64::from(*granted)])
                }
                MessageBody::Vote {
                    last_index,
                    last_zxid,
                } => digest_of(&[3, epoch, *last_index, last_zxid.0]),
                MessageBody::VoteReply { granted } => digest_of(&[4, epoch, u64::from(*granted)]),
                MessageBody::Append {
                    prev_index,
                    prev_zxid,
                    entries,
                    commit_index,
                } => digest_of(&[
                    5,
                    epoch,
                    *prev_index,
                    prev_zxid.0,
                    *commit_index,
                    entries_digest(entries),
                ]),
                MessageBody::AppendReply(outcome) => digest_of(&[
                    6,
                    epoch,
                    crate::history::fnv1a(format!("{outcome:?}").as_bytes()),
                ]),
                MessageBody::Heartbeat { commit_index } => digest_of(&[7, epoch, *commit_index]),
                MessageBody::HeartbeatReply => digest_of(&[8, epoch]),
                MessageBody::Snapshot {
                    meta,
                    offset,
                    total_bytes,
                    bytes,
                } => digest_of(&[
                    9,
                    epoch,
                    meta.index,
                    meta.zxid.0,
                    *offset,
                    *total_bytes,
                    bytes.len() as u64,
                ]),
                MessageBody::SnapshotReply {
                    index,
                    offset,
                    received_bytes,
                } => digest_of(&[14, epoch, *index, *offset, *received_bytes]),
            }
        }
        PeerMessage::Forward {
            epoch,
            stream,
            first_seq,
            writes,
        } => digest_of(&[
            10,
            u64::from(epoch.0),
            *stream,
            *first_seq,
            writes.len() as u64,
        ]),
        PeerMessage::ForwardAck {
            epoch,
            stream: _,
            next_seq,
        } => digest_of(&[11, u64::from(epoch.0), *next_seq]),
        PeerMessage::ForwardRefused { .. } => digest_of(&[12]),
        PeerMessage::Touch { sessions } => digest_of(&[13, sessions.len() as u64]),
    }
}

/// A one-line description of a peer message, payload bytes given as sizes.
fn peer_message_details(msg: &PeerMessage) -> String {
    match msg {
        PeerMessage::Replication(m) => {
            let body = match &m.body {
                MessageBody::Append {
                    prev_index,
                    prev_zxid,
                    entries,
                    commit_index,
                } => {
                    let zxids: Vec<String> = entries
                        .iter()
                        .map(|e| format!("{}:{}:{}B", e.index, e.zxid, e.payload.len()))
                        .collect();
                    format!(
                        "Append prev={prev_index}:{prev_zxid} commit={commit_index} entries=[{}]",
                        zxids.join(",")
                    )
                }
                MessageBody::Snapshot {
                    meta,
                    offset,
                    total_bytes,
                    bytes,
                } => format!(
                    "Snapshot index={} zxid={} piece={offset}+{}/{total_bytes}",
                    meta.index,
                    meta.zxid,
                    bytes.len()
                ),
                other => format!("{other:?}"),
            };
            format!("epoch={} {body}", m.epoch.0)
        }
        PeerMessage::Forward {
            epoch,
            stream: _,
            first_seq,
            writes,
        } => format!(
            "Forward epoch={} first_seq={first_seq} writes={}",
            epoch.0,
            writes.len()
        ),
        other => format!("{other:?}"),
    }
}

/// Decodes each whole frame in `bytes` into a short description; the first frame of a
/// connection (xid 0 is never a request's) is the handshake.
fn client_frames_details(bytes: &[u8], to_server: bool) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    while let Ok(Some((payload, consumed))) = split_frame(rest, MAX_FRAME_BYTES_DEFAULT) {
        if !out.is_empty() {
            out.push_str("; ");
        }
        if to_server {
            request_details(payload, &mut out);
        } else {
            reply_details(payload, &mut out);
        }
        rest = rest.get(consumed..).unwrap_or_default();
    }
    if !rest.is_empty() {
        let _ = write!(out, " (+{} bytes of a partial frame)", rest.len());
    }
    out
}

fn request_details(payload: &[u8], out: &mut String) {
    if payload.get(..4) == Some(&[0, 0, 0, 0]) {
        match decode_connect_request(payload) {
            Ok(c) => {
                let _ = write!(
                    out,
                    "connect session={:#x} last_zxid={} timeout_ms={}",
                    c.session_id.0,
                    Zxid::from_wire(c.last_zxid_seen),
                    c.timeout_ms
                );
            }
            Err(e) => {
                let _ = write!(out, "undecodable connect: {e}");
            }
        }
        return;
    }
    match decode_request(payload) {
        Ok((header, request)) => {
            let mut text = format!("xid={} {request:?}", header.xid);
            if text.len() > DETAILS_REQUEST_CHARS_MAX {
                let cut = (0..=DETAILS_REQUEST_CHARS_MAX)
                    .rev()
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(0);
                text.truncate(cut);
                text.push('…');
            }
            out.push_str(&text);
        }
        Err(e) => {
            let _ = write!(out, "undecodable request: {e}");
        }
    }
}

fn reply_details(payload: &[u8], out: &mut String) {
    let mut reader = paddock_core::wire::Reader::new(payload);
    let header = match <ReplyHeader as paddock_core::wire::Record>::read(&mut reader) {
        Ok(h) => h,
        Err(e) => {
            let _ = write!(out, "undecodable reply: {e}");
            return;
        }
    };
    if header.xid == 0 {
        // The handshake answer: protocol version 0, then timeout and session id.
        let _ = write!(out, "connect-reply bytes={}", payload.len());
        return;
    }
    if header.xid == -1 {
        match <WatcherEvent as paddock_core::wire::Record>::read(&mut reader) {
            Ok(ev) => {
                let _ = write!(out, "event type={} path={}", ev.event_type, ev.path);
            }
            Err(e) => {
                let _ = write!(out, "undecodable event: {e}");
            }
        }
        return;
    }
    let _ = write!(
        out,
        "reply xid={} zxid={} err={} body_bytes={}",
        header.xid,
        Zxid::from_wire(header.zxid),
        header.err,
        reader.remaining_bytes()
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use paddock_core::wire::{PathWatchRequest, Request, RequestHeader, encode_request, frame};

    // Client frames are decoded into op names and paths, several frames per chunk.
    #[test]
    fn client_requests_are_decoded_in_details() {
        let request = Request::GetData(PathWatchRequest {
            path: "/app".into(),
            watch: true,
        });
        let mut payload = Vec::new();
        encode_request(
            &RequestHeader {
                xid: 7,
                op: request.op_code(),
            },
            &request,
            &mut payload,
        );
        let mut bytes = frame(&payload);
        bytes.extend(frame(&payload));
        let details = client_frames_details(&bytes, true);
        assert!(details.contains("xid=7 GetData"), "{details}");
        assert!(details.contains("\"/app\""), "{details}");
        assert_eq!(details.matches("GetData").count(), 2, "{details}");
    }

    // The hash depends on content digests, not only on time, node and kind: two events
    // that differ only in their bytes give different hashes.
    #[test]
    fn hash_covers_client_bytes() {
        let mut a = Trace::hash_only();
        let mut b = Trace::hash_only();
        a.client_bytes(5, NodeId(1), ConnId(1), true, &[0, 0, 0, 1, 9]);
        b.client_bytes(5, NodeId(1), ConnId(1), true, &[0, 0, 0, 1, 8]);
        assert_ne!(a.hash(), b.hash());
    }
}
