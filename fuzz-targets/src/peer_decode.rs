//! `peer_decode`: arbitrary bytes into the decoders of what servers send each other and
//! store in their logs: [`PeerMessage::decode`] (which carries the replication
//! protocol's `Message`) and [`Proposal::decode`] (log payloads), both serde + bincode 2.
//!
//! Properties: errors, never panics; a decoded replication message goes through
//! `Message::validate` without panicking; what decodes re-encodes to bytes that decode to
//! the same value; and no length field makes the decoder allocate more than its limit at
//! once: [`DECODE_BYTES_MIN`] for input up to that size, and beyond, a limit that grows
//! with the input, at most four times it (a snapshot piece or a write under a raised
//! `jute.maxbuffer` may be that large), for peer messages and log payloads alike;
//! measured with [`crate::alloc_guard`].

use paddock_core::node::{DECODE_BYTES_MIN, PeerMessage, Proposal};

use crate::alloc_guard;

/// Entries per replication message and payload bytes per entry that `validate` is asked
/// to accept: the defaults of `ReplicationConfig` are not needed to find panics, any
/// bound exercises both the accepting and the refusing paths.
const VALIDATE_ENTRIES_MAX: u32 = 64;
const VALIDATE_PAYLOAD_BYTES_MAX: u32 = 1024;

/// The target body. See the module documentation.
pub fn run(data: &[u8]) {
    let ((), largest_bytes) = alloc_guard::measure(|| decode_everything(data));
    let limit = DECODE_BYTES_MIN.max(data.len().saturating_mul(4));
    assert!(
        largest_bytes <= limit,
        "peer decoding allocated {largest_bytes} bytes at once for {} input bytes",
        data.len()
    );
}

fn decode_everything(data: &[u8]) {
    if let Ok(message) = PeerMessage::decode(data) {
        if let PeerMessage::Replication(replication) = &message {
            let _ = replication.validate(VALIDATE_ENTRIES_MAX, VALIDATE_PAYLOAD_BYTES_MAX);
        }
        let bytes = message.encode();
        assert_eq!(
            PeerMessage::decode(&bytes),
            Ok(message),
            "PeerMessage unstable"
        );
    }
    if let Ok(proposal) = Proposal::decode(data) {
        let bytes = proposal.encode();
        assert_eq!(Proposal::decode(&bytes), Ok(proposal), "Proposal unstable");
    }
}
