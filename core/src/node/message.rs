//! What servers say to each other besides replication, and what the replicated log
//! carries.
//!
//! The log carries [`Proposal`]s: a tree transaction (or a failed write, or a sync) plus
//! the [`Origin`] that tells the server holding the client connection whom to answer.
//! Followers hand writes to the leader over a small reliable, ordered channel built on
//! the lossy network: [`PeerMessage::Forward`] batches carry consecutive sequence
//! numbers per (follower, epoch); the leader takes them strictly in order, acknowledges
//! with [`PeerMessage::ForwardAck`], and the follower retransmits what is unacknowledged.

use serde::{Deserialize, Serialize};

use crate::acl::Id;
use crate::error::ZkError;
use crate::ids::{ConnId, Epoch, NodeId, SessionId};
use crate::replication;
use crate::tree::{Op, Txn};

/// Where a write came from: the server, connection and request that wait for its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The server holding the client connection.
    pub node: NodeId,
    /// The connection on that server.
    pub conn: ConnId,
    /// The connection's request sequence number (not the client's xid): replies are
    /// matched by it, and a gap shows a write was lost.
    pub seq: u64,
    /// The client's xid (0 for a connect), so a history can name the request.
    pub xid: i32,
}

/// A write on its way to the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// Who waits for the result; `None` for the leader's own writes (expiry, reaping).
    pub origin: Option<Origin>,
    /// The session asking.
    pub session: SessionId,
    /// The identities of the asking connection, for ACL checks at prepare.
    pub ids: Vec<Id>,
    /// What to do.
    pub op: WriteOp,
}

/// What a write does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOp {
    /// A tree operation (including session create and close).
    Tree(Op),
    /// `sync`: goes through the log so that the origin answers only once it has applied
    /// everything the leader ordered before it.
    Sync,
}

/// One entry of the replicated log, as the node encodes it into a replication payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Who to answer; `None` for the leader's own proposals (session expiry, reaping).
    pub origin: Option<Origin>,
    /// What applying it does.
    pub body: ProposalBody,
}

/// What applying a proposal does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalBody {
    /// Apply this transaction.
    Txn(Txn),
    /// A write that failed validation: it changes nothing but takes its place in the
    /// order, so its session's replies stay FIFO (ZooKeeper logs an error txn the same way).
    Failed {
        /// The error the client gets.
        error: ZkError,
    },
    /// A sync: changes nothing; answered when applied.
    Sync,
}

/// A message between servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// The replication protocol.
    Replication(replication::Message),
    /// Follower → leader: writes `first_seq`, `first_seq + 1`, ... of this follower's
    /// stream in `epoch`.
    Forward {
        /// The leader's epoch the follower addresses.
        epoch: Epoch,
        /// The sender's stream: chosen at random when it starts or sees a new leader, so
        /// a restarted server's numbering is never mistaken for its old one's.
        stream: u64,
        /// Sequence number of the first write.
        first_seq: u64,
        /// The writes, in order.
        writes: Vec<Write>,
    },
    /// Leader → follower: every write before `next_seq` of the follower's stream in
    /// `epoch` was taken.
    ForwardAck {
        /// The epoch of the stream.
        epoch: Epoch,
        /// The stream acknowledged.
        stream: u64,
        /// The next sequence number the leader expects.
        next_seq: u64,
    },
    /// Leader → follower: the leader could not take a write (e.g. too many proposals
    /// outstanding); the origin fails the request's connection.
    ForwardRefused {
        /// The write's origin.
        origin: Origin,
    },
    /// Follower → leader: these sessions showed life (a frame arrived on their
    /// connection) since the last touch message.
    Touch {
        /// The sessions, in id order.
        sessions: Vec<SessionId>,
    },
}

/// Why a payload from the log, a peer message or a snapshot could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable bytes: {reason}")]
pub struct PayloadError {
    /// What bincode said.
    pub reason: String,
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ 64 * 1024 * 1024 }>()
}

/// The largest allocation a peer message of `input_bytes` may make its decoder claim:
/// [`PEER_DECODE_BYTES_MIN`], or the smallest tier of 256 MiB, 1 GiB or 4 GiB at least
/// the input's size. Peer messages are bounded by `ReplicationConfig::message_bytes_max`
/// (16 MiB by default; snapshots travel in pieces of that size), which an operator may
/// raise; bincode allocates some claimed lengths (strings) before reading them, so the
/// limit grows with the bytes actually received: a forged length in a small message
/// claims at most 64 MiB, in any message at most four times its size.
pub const PEER_DECODE_BYTES_MIN: usize = 64 * 1024 * 1024;

/// Encodes a peer message (no limit: it is ours).
fn peer_bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Decodes a peer message with the limit of [`PEER_DECODE_BYTES_MIN`]'s tiers.
fn peer_decode_limited(bytes: &[u8]) -> Result<PeerMessage, bincode::error::DecodeError> {
    const MIB: usize = 1024 * 1024;
    let standard = bincode::config::standard();
    let decoded = match bytes.len() {
        len if len <= PEER_DECODE_BYTES_MIN => {
            bincode::serde::decode_from_slice(bytes, standard.with_limit::<{ 64 * MIB }>())
        }
        len if len <= 256 * MIB => {
            bincode::serde::decode_from_slice(bytes, standard.with_limit::<{ 256 * MIB }>())
        }
        len if len <= 1024 * MIB => {
            bincode::serde::decode_from_slice(bytes, standard.with_limit::<{ 1024 * MIB }>())
        }
        _ => {
            bincode::serde::decode_from_slice(bytes, standard.with_limit::<{ u32::MAX as usize }>())
        }
    };
    decoded.map(|(message, _)| message)
}

/// Appends to a `Vec` for bincode.
struct VecSink<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// `value` in bincode, in a buffer of exactly its length: a counting pass first, then one
/// allocation. (bincode's `encode_to_vec` grows its buffer from empty, reallocating a few
/// times per message on the hot path, and a log entry would keep the slack.)
fn encode_exact<T: Serialize>(
    value: &T,
    config: impl bincode::config::Config,
) -> Result<Vec<u8>, bincode::error::EncodeError> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config)?;
    let mut bytes = Vec::with_capacity(size.bytes_written);
    bincode::serde::encode_into_writer(value, VecSink(&mut bytes), config)?;
    Ok(bytes)
}

impl Proposal {
    /// The bytes stored in the log.
    pub fn encode(&self) -> Vec<u8> {
        encode_exact(self, bincode_config()).expect("a proposal always serialises")
    }

    /// Decodes a log payload.
    pub fn decode(bytes: &[u8]) -> Result<Proposal, PayloadError> {
        bincode::serde::decode_from_slice(bytes, bincode_config())
            .map(|(p, _)| p)
            .map_err(|e| PayloadError {
                reason: e.to_string(),
            })
    }
}

impl PeerMessage {
    /// The message that carries a piece of a snapshot file to another server, as the
    /// runtime builds it for `Output::PeerSnapshot` from the snapshot's durable bytes.
    pub fn snapshot_piece(epoch: Epoch, piece: crate::storage::SnapshotPiece) -> PeerMessage {
        PeerMessage::Replication(replication::Message {
            epoch,
            body: piece.into_body(),
        })
    }

    /// Reads the piece `send` asks for from `files` (the newest snapshot file, when it
    /// covers at least `send.meta`) and builds its message: what a runtime does for
    /// `Output::PeerSnapshot`. `Ok(None)` when there is no such snapshot.
    pub fn snapshot_piece_read<F: crate::storage::Files>(
        files: &mut F,
        send: &replication::SnapshotSend,
    ) -> Result<Option<PeerMessage>, crate::storage::StoreError> {
        let piece =
            crate::storage::read_snapshot_piece(files, send.meta, send.offset, send.bytes_max)?;
        Ok(piece.map(|piece| PeerMessage::snapshot_piece(send.epoch, piece)))
    }

    /// The bytes sent to a peer (the runtime frames them).
    pub fn encode(&self) -> Vec<u8> {
        encode_exact(self, peer_bincode_config()).expect("a peer message always serialises")
    }

    /// Decodes bytes received from a peer; bad bytes are an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<PeerMessage, PayloadError> {
        peer_decode_limited(bytes).map_err(|e| PayloadError {
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // A snapshot travels in pieces of up to `message_bytes_max` (16 MiB by default):
    // one piece of that size round-trips through the peer codec.
    #[test]
    fn a_snapshot_piece_round_trips() {
        let meta = replication::SnapshotMeta {
            index: 7,
            zxid: crate::ids::Zxid(7),
        };
        let piece = crate::storage::SnapshotPiece {
            meta,
            offset: 32 * 1024 * 1024,
            total_bytes: 100 * 1024 * 1024,
            bytes: vec![5u8; 16 * 1024 * 1024],
        };
        let msg = PeerMessage::snapshot_piece(Epoch(1), piece);
        let encoded = msg.encode();
        assert_eq!(PeerMessage::decode(&encoded).unwrap(), msg);
    }
}
