//! Peer messages are untrusted input: a replica must never panic on them, whatever they
//! say. Three replicas exchange their real messages (so they reach real states: leaders,
//! logs, snapshots) while forged messages from members and strangers are mixed in, with
//! random indexes, epochs, zxids and entries, many of them well-formed enough to pass
//! validation and reach the handlers. Only the absence of panics (including our own
//! invariant assertions) is checked: forged messages may legitimately break agreement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;

use paddock_core::ids::{Epoch, NodeId, Zxid};
use paddock_core::replication::{
    AppendOutcome, DurableState, Entry, Input, Message, MessageBody, Output, Replica,
    ReplicationConfig, SnapshotMeta, SnapshotSend,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn zxid(rng: &mut ChaCha8Rng) -> Zxid {
    Zxid::new(Epoch(rng.random_range(0..6)), rng.random_range(0..12))
}

fn index(rng: &mut ChaCha8Rng) -> u64 {
    match rng.random_range(0..20) {
        0 => u64::MAX,
        1 => u64::MAX >> 1,
        _ => rng.random_range(0..40),
    }
}

/// Entries that are often contiguous and increasing, so they pass validation.
fn entries(rng: &mut ChaCha8Rng, prev_index: u64, prev_zxid: Zxid, epoch: u32) -> Vec<Entry> {
    let mut zxid_before = prev_zxid;
    let mut index_before = prev_index;
    let count = rng.random_range(0..6);
    let mut entries = Vec::new();
    for _ in 0..count {
        let well_formed = rng.random_range(0..10) > 0;
        let index = if well_formed {
            index_before.saturating_add(1)
        } else {
            index_before
        };
        let next_epoch = rng.random_range(zxid_before.epoch().0..=epoch.max(zxid_before.epoch().0));
        let counter = if next_epoch == zxid_before.epoch().0 {
            zxid_before.counter().saturating_add(1)
        } else {
            rng.random_range(0..3)
        };
        let zxid = Zxid::new(Epoch(next_epoch), counter);
        let payload = if counter == 0 {
            vec![]
        } else {
            vec![1; rng.random_range(0..4)]
        };
        entries.push(Entry {
            index,
            zxid,
            payload,
        });
        (index_before, zxid_before) = (index, zxid);
    }
    entries
}

fn forged(rng: &mut ChaCha8Rng) -> Message {
    let epoch = rng.random_range(0..6);
    let body = match rng.random_range(0..10) {
        0 => MessageBody::PreVote {
            last_index: index(rng),
            last_zxid: zxid(rng),
        },
        1 => MessageBody::PreVoteReply {
            granted: rng.random(),
        },
        2 => MessageBody::Vote {
            last_index: index(rng),
            last_zxid: zxid(rng),
        },
        3 => MessageBody::VoteReply {
            granted: rng.random(),
        },
        4 => {
            let prev_index = index(rng);
            let prev_zxid = zxid(rng);
            MessageBody::Append {
                prev_index,
                prev_zxid,
                entries: entries(rng, prev_index, prev_zxid, epoch),
                commit_index: index(rng),
            }
        }
        5 => MessageBody::AppendReply(AppendOutcome::Accepted {
            match_index: index(rng),
        }),
        6 => MessageBody::AppendReply(AppendOutcome::Rejected {
            rejected_index: index(rng),
            hint_index: index(rng),
            hint_epoch: Epoch(rng.random_range(0..6)),
        }),
        7 => MessageBody::Heartbeat {
            commit_index: index(rng),
        },
        8 => MessageBody::HeartbeatReply,
        9 => MessageBody::SnapshotReply {
            index: index(rng),
            offset: rng.random_range(0..8),
            received_bytes: rng.random_range(0..8),
        },
        _ => {
            let total_bytes = rng.random_range(0..8);
            MessageBody::Snapshot {
                meta: SnapshotMeta {
                    index: index(rng),
                    zxid: zxid(rng),
                },
                offset: rng.random_range(0..=total_bytes),
                total_bytes,
                bytes: vec![0; rng.random_range(0..4)],
            }
        }
    };
    Message {
        epoch: Epoch(epoch),
        body,
    }
}

fn run(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let voters: std::collections::BTreeSet<NodeId> = [1, 2, 3].map(NodeId).into();
    let mut replicas: Vec<Replica> = (1..=3)
        .map(|id| {
            let mut config = ReplicationConfig::new(NodeId(id), voters.clone());
            config.heartbeat_interval_ms = 10;
            config.election_timeout_ms_min = 50;
            config.election_timeout_ms_max = 100;
            config.entries_per_message_max = 4;
            config.payload_bytes_max = 16;
            Replica::new(config, DurableState::default(), seed ^ id).unwrap()
        })
        .collect();
    let mut queue: VecDeque<(usize, Input)> = VecDeque::new();
    let mut now_ms = 0;
    for _ in 0..400 {
        now_ms += rng.random_range(0..8);
        let target = rng.random_range(0..3);
        let input = match rng.random_range(0..10) {
            0..=3 => queue.pop_front(),
            4 => Some((target, Input::Tick)),
            5 => {
                let from = NodeId(rng.random_range(0..5));
                Some((
                    target,
                    Input::Message {
                        from,
                        msg: forged(&mut rng),
                    },
                ))
            }
            6 => {
                let persisted = Input::Persisted {
                    index: index(&mut rng),
                    zxid: zxid(&mut rng),
                };
                Some((target, persisted))
            }
            7 => {
                let _ = replicas[target].propose(vec![2; rng.random_range(0..20)]);
                let applied = replicas[target].status().applied_index;
                let _ = replicas[target].compact(applied);
                Some((target, Input::Tick))
            }
            _ => queue.pop_front(),
        };
        let Some((target, input)) = input else {
            continue;
        };
        let mut out = Vec::new();
        let _ = replicas[target].step(now_ms, input, &mut out);
        let me = NodeId(target as u64 + 1);
        for output in out {
            match output {
                Output::Send { to, msg } => {
                    if let Some(t) = (1..=3).position(|id| NodeId(id) == to) {
                        queue.push_back((t, Input::Message { from: me, msg }));
                    }
                }
                Output::SendSnapshot(send) => {
                    // This harness keeps no snapshot files: it frames a one-byte state as
                    // the storage engine would, and sends the piece asked for.
                    if let Some(t) = (1..=3).position(|id| NodeId(id) == send.to) {
                        let body = snapshot_piece(&send).into_body();
                        let msg = Message {
                            epoch: send.epoch,
                            body,
                        };
                        queue.push_back((t, Input::Message { from: me, msg }));
                    }
                }
                Output::PersistHardState { hard_state } => {
                    queue.push_back((target, Input::HardStatePersisted { hard_state }))
                }
                Output::PersistEntries { entries, .. } => {
                    if let Some(last) = entries.last() {
                        let persisted = Input::Persisted {
                            index: last.index,
                            zxid: last.zxid,
                        };
                        queue.push_back((target, persisted));
                    }
                }
                Output::InstallSnapshot { meta, .. } => {
                    queue.push_back((target, Input::SnapshotInstalled { meta }))
                }
                Output::Committed { .. } | Output::LeaderChanged { .. } | Output::Resynced => {}
            }
        }
        if queue.len() > 2000 {
            queue.truncate(1000);
        }
    }
}

// Thousands of mixed honest and forged inputs never make a replica panic.
#[test]
fn forged_messages_never_panic() {
    let seeds: u64 = std::env::var("PADDOCK_SEED_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for seed in 0..seeds {
        let result = std::panic::catch_unwind(|| run(seed));
        assert!(result.is_ok(), "replica panicked (seed {seed})");
    }
}

/// The piece `send` asks for of a snapshot file at its meta holding a one-byte state.
fn snapshot_piece(send: &SnapshotSend) -> paddock_core::storage::SnapshotPiece {
    let mut files = paddock_core::storage::MemFiles::new();
    let limits = paddock_core::limits::Limits::default();
    paddock_core::storage::write_snapshot_file(&mut files, &limits, send.meta, &[3])
        .expect("in-memory write");
    paddock_core::storage::read_snapshot_piece(&mut files, send.meta, send.offset, send.bytes_max)
        .expect("in-memory read")
        .expect("the snapshot just written")
}
