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

/// The largest allocation a log payload or a peer message of `input_bytes` may make its
/// decoder claim: [`DECODE_BYTES_MIN`], or the smallest tier of 256 MiB, 1 GiB or 4 GiB
/// at least the input's size. Peer messages are bounded by
/// `ReplicationConfig::message_bytes_max` (16 MiB by default; snapshots travel in pieces
/// of that size) and log payloads by `payload_bytes_max` (`jute.maxbuffer` and a little),
/// both of which an operator may raise; bincode allocates some claimed lengths (strings,
/// byte strings) before reading them, so the limit grows with the bytes actually
/// received: a forged length in a small input claims at most 64 MiB, in any input at
/// most four times its size.
pub const DECODE_BYTES_MIN: usize = 64 * 1024 * 1024;

/// Encodes a log payload or a peer message (no limit: it is ours).
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Decodes a log payload or a peer message with the limit of [`DECODE_BYTES_MIN`]'s
/// tiers.
fn decode_limited<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, bincode::error::DecodeError> {
    const MIB: usize = 1024 * 1024;
    let standard = bincode::config::standard();
    let decoded = match bytes.len() {
        len if len <= DECODE_BYTES_MIN => {
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
    decoded.map(|(value, _)| value)
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
        decode_limited(bytes).map_err(|e| PayloadError {
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
        encode_exact(self, bincode_config()).expect("a peer message always serialises")
    }

    /// Decodes bytes received from a peer; bad bytes are an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<PeerMessage, PayloadError> {
        decode_limited(bytes).map_err(|e| PayloadError {
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The largest messages a leader builds fit the frame a transport allows, which is
    // `message_bytes_max + PEER_MESSAGE_OVERHEAD_BYTES`: an Append of
    // `entries_per_message_max` entries carrying `message_bytes_max` bytes of payload, and
    // a snapshot piece of `message_bytes_max` bytes, every number at its widest.
    #[test]
    fn the_largest_peer_messages_fit_a_peer_frame() {
        let config =
            replication::ReplicationConfig::new(NodeId(1), [NodeId(1)].into_iter().collect());
        let frame_max = config.message_bytes_max + replication::PEER_MESSAGE_OVERHEAD_BYTES;
        let entries_max = config.entries_per_message_max as usize;
        let widest = crate::ids::Zxid::new(Epoch(u32::MAX), u32::MAX);
        let per_entry = config.message_bytes_max as usize / entries_max;
        let entries = (0..entries_max)
            .map(|_| replication::Entry {
                index: u64::MAX,
                zxid: widest,
                payload: vec![0xA5; per_entry],
            })
            .collect();
        let append = PeerMessage::Replication(replication::Message {
            epoch: Epoch(u32::MAX),
            body: replication::MessageBody::Append {
                prev_index: u64::MAX,
                prev_zxid: widest,
                entries,
                commit_index: u64::MAX,
            },
        });
        let piece = PeerMessage::Replication(replication::Message {
            epoch: Epoch(u32::MAX),
            body: replication::MessageBody::Snapshot {
                meta: replication::SnapshotMeta {
                    index: u64::MAX,
                    zxid: widest,
                },
                offset: u64::MAX,
                total_bytes: u64::MAX,
                bytes: vec![0x5A; config.message_bytes_max as usize],
            },
        });
        for message in [append, piece] {
            let len = message.encode().len() as u64;
            assert!(len > config.message_bytes_max, "the payload is all there");
            assert!(len <= frame_max, "{len} bytes, above {frame_max}");
        }
    }

    /// A forwarded setData of `data_bytes` whose data length prefix is then forged to
    /// claim `claimed` bytes (bincode's varint: 0xFB and two bytes or 0xFC and four,
    /// rewritten as 0xFC and four).
    fn forged_forward(data_bytes: usize, claimed: u32) -> Vec<u8> {
        let write = Write {
            origin: None,
            session: SessionId(1),
            ids: Vec::new(),
            op: WriteOp::Tree(Op::SetData(crate::tree::SetDataOp {
                path: "/p".into(),
                data: Some(vec![7; data_bytes]),
                version: -1,
            })),
        };
        let msg = PeerMessage::Forward {
            epoch: Epoch(1),
            stream: 0,
            first_seq: 0,
            writes: vec![write],
        };
        let mut bytes = msg.encode();
        let len = u32::try_from(data_bytes).unwrap();
        let (marker, width): (u8, usize) = if len < 1 << 16 { (0xFB, 2) } else { (0xFC, 4) };
        let mut prefix = vec![marker];
        prefix.extend_from_slice(&len.to_le_bytes()[..width]);
        prefix.extend_from_slice(&[7, 7, 7, 7]);
        let at = bytes
            .windows(prefix.len())
            .position(|w| w == prefix.as_slice())
            .expect("the data's length prefix");
        let mut forged = vec![0xFC];
        forged.extend_from_slice(&claimed.to_le_bytes());
        bytes.splice(at..at + 1 + width, forged);
        bytes
    }

    // A forged length is refused before anything is allocated for it once it passes the
    // message's limit: 64 MiB for a message up to that size, the next tier (at most four
    // times the message's size) beyond; below the limit it is read and runs out of bytes.
    #[test]
    fn a_forged_length_claims_no_more_than_the_limit_for_the_message_size() {
        const MIB: u32 = 1024 * 1024;
        let refused = |bytes: &[u8]| {
            matches!(
                decode_limited::<PeerMessage>(bytes),
                Err(bincode::error::DecodeError::LimitExceeded)
            )
        };
        let small = forged_forward(1000, 65 * MIB);
        assert!(small.len() < 2000);
        assert!(refused(&small), "a 65 MiB claim in a small message");
        assert!(!refused(&forged_forward(1000, 63 * MIB)));
        assert!(PeerMessage::decode(&small).is_err());
        let medium = forged_forward(2 * MIB as usize, 65 * MIB);
        assert!(refused(&medium), "a 65 MiB claim in a 2 MiB message");
        // Beyond 64 MiB the limit is 256 MiB, not the 1 GiB of messages beyond that.
        let large = forged_forward(65 * MIB as usize, 300 * MIB);
        assert!(refused(&large), "a 300 MiB claim in a 65 MiB message");
        // Beyond 256 MiB it is 1 GiB.
        let larger = forged_forward(257 * MIB as usize, 1536 * MIB);
        assert!(refused(&larger), "a 1.5 GiB claim in a 257 MiB message");
    }

    // Messages as large as `paddock.peerMessageBytesMax` allows (up to 1 GiB) decode:
    // each tier's limit is at least the size of the inputs it takes.
    #[test]
    fn peer_messages_beyond_64_and_256_mib_decode() {
        const MIB: usize = 1024 * 1024;
        for size in [65 * MIB, 257 * MIB] {
            let msg = PeerMessage::Replication(replication::Message {
                epoch: Epoch(1),
                body: replication::MessageBody::Append {
                    prev_index: 0,
                    prev_zxid: crate::ids::Zxid(0),
                    entries: vec![replication::Entry {
                        index: 1,
                        zxid: crate::ids::Zxid(1),
                        payload: vec![9; size],
                    }],
                    commit_index: 0,
                },
            });
            let bytes = msg.encode();
            assert!(bytes.len() > size);
            assert_eq!(PeerMessage::decode(&bytes), Ok(msg), "{size} bytes");
        }
    }

    // A log payload beyond 64 MiB (a write under `jute.maxbuffer` raised that far)
    // decodes again on every server: the limit grows with the payload, as a peer
    // message's does. (It was a fixed 64 MiB: followers counted such an entry as a
    // payload error and skipped it, while the leader applied it.)
    #[test]
    fn a_proposal_beyond_64_mib_round_trips() {
        let proposal = Proposal {
            origin: None,
            body: ProposalBody::Txn(Txn {
                zxid: crate::ids::Zxid(1),
                time_ms: 0,
                session: SessionId(1),
                kind: crate::tree::TxnKind::Single(crate::tree::TxnOp::SetData {
                    path: "/big".into(),
                    data: Some(vec![3; 70 * 1024 * 1024]),
                    version: 1,
                }),
            }),
        };
        assert_eq!(Proposal::decode(&proposal.encode()), Ok(proposal));
    }

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
