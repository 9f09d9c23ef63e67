//! Agreement: servers apply the same entry at the same index (so committed sequences are
//! prefixes of one another), zxids increase along every server's sequence, and sampled
//! tree digests match at equal indexes; at the end, every running server's tree equals
//! the reference model's replay of the committed sequence at the server's applied index.

use std::collections::BTreeMap;

use super::model::Replayed;
use super::{Failure, ServerFinal};
use crate::history::History;

/// Checks agreement over every server's applied sequence.
pub fn check(history: &History) -> Result<(), Failure> {
    // index -> (server, zxid, payload hash) of the first server seen applying it.
    let mut at_index: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();
    let mut digests: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (server, applied) in &history.applied {
        let mut previous: Option<(u64, u64)> = None;
        for record in applied {
            if let Some((index, zxid)) = previous {
                // A restart replays from the snapshot: the sequence may start again lower.
                if record.index > index && record.zxid.0 <= zxid {
                    return Err(Failure::new(
                        "agreement",
                        format!(
                            "server {} applied zxid {} at index {} after zxid 0x{zxid:x} at index {index}",
                            server.0, record.zxid, record.index
                        ),
                    ));
                }
            }
            previous = Some((record.index, record.zxid.0));
            let seen = at_index.entry(record.index).or_insert((
                server.0,
                record.zxid.0,
                record.payload_hash,
            ));
            if (seen.1, seen.2) != (record.zxid.0, record.payload_hash) {
                return Err(Failure::new(
                    "agreement",
                    format!(
                        "index {}: server {} applied zxid 0x{:x}, server {} applied zxid {} (payload differs: {})",
                        record.index,
                        seen.0,
                        seen.1,
                        server.0,
                        record.zxid,
                        seen.2 != record.payload_hash
                    ),
                ));
            }
            if let Some(digest) = record.digest {
                let first = digests.entry(record.index).or_insert((server.0, digest));
                if first.1 != digest {
                    return Err(Failure::new(
                        "agreement",
                        format!(
                            "index {}: tree digest {:016x} on server {} but {:016x} on server {}",
                            record.index, first.1, first.0, digest, server.0
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Every running server's final tree digest equals the model's at its applied index.
pub fn check_final(servers: &[ServerFinal], replayed: &Replayed) -> Result<(), Failure> {
    for server in servers {
        let Some(model) = replayed.digests.get(&server.applied_index) else {
            continue;
        };
        if *model != server.digest {
            return Err(Failure::new(
                "agreement",
                format!(
                    "server {} ends at index {} with tree digest {:016x}, but replaying the committed sequence gives {model:016x}",
                    server.id.0, server.applied_index, server.digest
                ),
            ));
        }
    }
    Ok(())
}
