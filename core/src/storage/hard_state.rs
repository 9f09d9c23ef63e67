//! Hard state: the small record election needs to survive a crash (the epoch a node has
//! reached and whom it voted for in it), so that a node never votes twice in one epoch.
//!
//! The encoding is fixed-size (26 bytes) and checksummed, because the runtime overwrites
//! one small file in place (or writes a new one and renames it): a torn or damaged hard
//! state must be detected, never read as a different vote. Decoding also refuses
//! non-canonical bytes (a vote flag other than 0 or 1, a node id present without the
//! flag), so every valid byte string means exactly one `HardState`.

use super::{read_array, read_u16, read_u32, read_u64, to_u64};
use crate::ids::{Epoch, NodeId};

/// The first seven bytes of a hard state.
pub const HARD_STATE_MAGIC: [u8; 7] = *b"PDKHARD";

/// The hard state format version this build writes and reads.
pub const HARD_STATE_VERSION: u16 = 1;

/// Bytes of an encoded hard state: magic, version, epoch, vote flag, voted-for node id,
/// checksum.
pub const HARD_STATE_BYTES: usize = 7 + 2 + 4 + 1 + 8 + 4;

const _: () = assert!(HARD_STATE_BYTES == 26);

/// Offsets of the fields.
const VERSION_AT: usize = 7;
const EPOCH_AT: usize = 9;
const VOTE_FLAG_AT: usize = 13;
const VOTED_FOR_AT: usize = 14;
const CRC_AT: usize = 22;

/// What a node must remember across a crash to take part in elections safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// The highest epoch (election term) this node has entered; never decreases.
    pub current_epoch: Epoch,
    /// The candidate this node voted for in `current_epoch`; `None` when it has not voted
    /// in that epoch.
    pub voted_for: Option<NodeId>,
}

/// Why bytes are not a valid hard state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HardStateError {
    /// The bytes are not exactly [`HARD_STATE_BYTES`] long (a torn or foreign file).
    #[error("hard state is {found_bytes} bytes, expected {HARD_STATE_BYTES}")]
    Length {
        /// The length found, in bytes.
        found_bytes: u64,
    },
    /// The bytes do not start with "PDKHARD".
    #[error("bad hard state magic {found:?}")]
    Magic {
        /// The first seven bytes.
        found: [u8; 7],
    },
    /// A format version this build cannot read.
    #[error("unsupported hard state version {found}")]
    Version {
        /// The version found.
        found: u16,
    },
    /// The stored checksum does not match the bytes.
    #[error("hard state checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The checksum read from the bytes.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },
    /// The vote flag is neither 0 (no vote) nor 1 (voted).
    #[error("hard state vote flag {found} is neither 0 nor 1")]
    VoteFlag {
        /// The flag byte found.
        found: u8,
    },
    /// The vote flag says "no vote" but a node id is stored.
    #[error("hard state has no vote but stores node id {found}")]
    NodeIdWithoutVote {
        /// The stored node id.
        found: u64,
    },
}

impl HardState {
    /// The fixed 26-byte encoding.
    pub fn encode(&self) -> [u8; HARD_STATE_BYTES] {
        let mut bytes = Vec::with_capacity(HARD_STATE_BYTES);
        bytes.extend_from_slice(&HARD_STATE_MAGIC);
        bytes.extend_from_slice(&HARD_STATE_VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.current_epoch.0.to_le_bytes());
        bytes.push(u8::from(self.voted_for.is_some()));
        bytes.extend_from_slice(&self.voted_for.map_or(0, |node| node.0).to_le_bytes());
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
            .try_into()
            .expect("the fields add up to HARD_STATE_BYTES")
    }

    /// Decodes and validates a hard state.
    pub fn decode(bytes: &[u8]) -> Result<HardState, HardStateError> {
        let bytes: &[u8; HARD_STATE_BYTES] =
            bytes.try_into().map_err(|_| HardStateError::Length {
                found_bytes: to_u64(bytes.len()),
            })?;
        // With the length fixed, every field read below is in bounds.
        let in_bounds = "field within the fixed-size hard state";
        let magic: [u8; 7] = read_array(bytes, 0).expect(in_bounds);
        if magic != HARD_STATE_MAGIC {
            return Err(HardStateError::Magic { found: magic });
        }
        let version = read_u16(bytes, VERSION_AT).expect(in_bounds);
        if version != HARD_STATE_VERSION {
            return Err(HardStateError::Version { found: version });
        }
        let stored = read_u32(bytes, CRC_AT).expect(in_bounds);
        let computed = crc32c::crc32c(bytes.get(..CRC_AT).expect(in_bounds));
        if stored != computed {
            return Err(HardStateError::Checksum { stored, computed });
        }
        let current_epoch = Epoch(read_u32(bytes, EPOCH_AT).expect(in_bounds));
        let [flag]: [u8; 1] = read_array(bytes, VOTE_FLAG_AT).expect(in_bounds);
        let node_id = read_u64(bytes, VOTED_FOR_AT).expect(in_bounds);
        let voted_for = match (flag, node_id) {
            (0, 0) => None,
            (0, found) => return Err(HardStateError::NodeIdWithoutVote { found }),
            (1, node_id) => Some(NodeId(node_id)),
            (found, _) => return Err(HardStateError::VoteFlag { found }),
        };
        Ok(HardState {
            current_epoch,
            voted_for,
        })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests damage bytes at known offsets
mod tests {
    use super::*;

    /// Re-seals damaged bytes with a correct checksum, to reach the checks after it.
    fn reseal(bytes: &mut [u8; HARD_STATE_BYTES]) {
        let crc = crc32c::crc32c(&bytes[..CRC_AT]);
        bytes[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    }

    // A hard state decodes to itself with and without a vote, including node id 0.
    #[test]
    fn round_trip() {
        for voted_for in [
            None,
            Some(NodeId(0)),
            Some(NodeId(3)),
            Some(NodeId(u64::MAX)),
        ] {
            let state = HardState {
                current_epoch: Epoch(u32::MAX),
                voted_for,
            };
            assert_eq!(HardState::decode(&state.encode()), Ok(state));
        }
    }

    // Each way the bytes can be wrong gives its own error.
    #[test]
    fn each_defect_is_named() {
        let good = HardState {
            current_epoch: Epoch(4),
            voted_for: Some(NodeId(2)),
        }
        .encode();
        assert_eq!(
            HardState::decode(&good[..25]),
            Err(HardStateError::Length { found_bytes: 25 })
        );
        let mut magic = good;
        magic[6] = b'X';
        assert_eq!(
            HardState::decode(&magic),
            Err(HardStateError::Magic { found: *b"PDKHARX" })
        );
        let mut version = good;
        version[8] = 1;
        assert_eq!(
            HardState::decode(&version),
            Err(HardStateError::Version { found: 257 })
        );
        let mut flipped = good;
        flipped[EPOCH_AT] ^= 1;
        assert!(matches!(
            HardState::decode(&flipped),
            Err(HardStateError::Checksum { .. })
        ));
        let mut flag = good;
        flag[VOTE_FLAG_AT] = 2;
        reseal(&mut flag);
        assert_eq!(
            HardState::decode(&flag),
            Err(HardStateError::VoteFlag { found: 2 })
        );
        let mut stray = good;
        stray[VOTE_FLAG_AT] = 0;
        reseal(&mut stray);
        assert_eq!(
            HardState::decode(&stray),
            Err(HardStateError::NodeIdWithoutVote { found: 2 })
        );
    }

    // Any single bit flip of a valid hard state is refused, never read as another vote.
    #[test]
    fn every_bit_flip_is_refused() {
        let good = HardState {
            current_epoch: Epoch(9),
            voted_for: Some(NodeId(5)),
        }
        .encode();
        for bit in 0..HARD_STATE_BYTES * 8 {
            let mut flipped = good;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                HardState::decode(&flipped).is_err(),
                "bit {bit} went unnoticed"
            );
        }
    }
}
