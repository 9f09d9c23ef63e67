//! Forged peer traffic against whole servers: whatever bytes arrive on a peer link under
//! a member's id, the ensemble must never wedge. Each case runs a 3-server cluster, has a
//! client write, then delivers forged frames to random servers under random member ids —
//! random bytes, byte-level mutations (bit flips, truncations) of real peer messages
//! recorded on the way, and real messages with their epoch replaced by an extreme or
//! random value — and afterwards requires, within seconds of simulated time, a single
//! serving leader that commits a fresh client write.
//!
//! What forgeries may still do until members are authenticated: a forged acknowledgement
//! or entry under a member's id is indistinguishable from that member's, so it can make a
//! leader count a write as replicated or a follower take entries no leader sent. Forged
//! messages that only claim epochs, votes, heartbeats or refusals cannot: for those, the
//! acknowledged writes must also survive (`epoch_only_forgeries_lose_nothing`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster_support;

use cluster_support::*;
use paddock_core::ids::{ConnId, Epoch, NodeId};
use paddock_core::node::PeerMessage;
use paddock_core::replication::{AppendOutcome, MessageBody};
use proptest::prelude::*;

/// One forged frame: what it is built from, where it goes and whose id it claims.
#[derive(Debug, Clone)]
enum Forgery {
    /// Arbitrary bytes as the frame body.
    Random(Vec<u8>),
    /// A recorded message's encoding with bytes flipped and maybe cut short.
    Mutated {
        pick: usize,
        flips: Vec<(usize, u8)>,
        cut: Option<usize>,
    },
    /// A recorded replication message with its epoch replaced.
    Epoch { pick: usize, epoch: u32 },
}

fn forgery() -> impl Strategy<Value = (Forgery, u64, u64, u64)> {
    let kind = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..48).prop_map(Forgery::Random),
        (
            any::<usize>(),
            proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
            proptest::option::of(any::<usize>())
        )
            .prop_map(|(pick, flips, cut)| Forgery::Mutated { pick, flips, cut }),
        (any::<usize>(), epoch()).prop_map(|(pick, epoch)| Forgery::Epoch { pick, epoch }),
    ];
    // target server, claimed sender, delay before delivery (ms)
    (kind, 1u64..=3, 1u64..=3, 0u64..200)
}

fn epoch() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(u32::MAX),
        Just(u32::MAX - 1),
        Just(1 << 16),
        (1u32 << 16)..=u32::MAX,
        0u32..16,
    ]
}

/// The peer messages now in flight, as a recording of real traffic.
fn record(c: &Cluster, seen: &mut Vec<PeerMessage>) {
    for event in c.queue.values() {
        if let Event::Peer { msg, .. } = event
            && seen.len() < 512
        {
            seen.push(msg.clone());
        }
    }
}

/// The frame a forgery delivers, if its bytes decode (the runtime closes a link whose
/// frame does not, so an undecodable forgery reaches no node).
fn build(forgery: &Forgery, seen: &[PeerMessage]) -> Option<PeerMessage> {
    let pick = |i: usize| seen.get(i % seen.len().max(1)).cloned();
    match forgery {
        Forgery::Random(bytes) => PeerMessage::decode(bytes).ok(),
        Forgery::Mutated {
            pick: i,
            flips,
            cut,
        } => {
            let mut bytes = pick(*i)?.encode();
            for (at, mask) in flips {
                let len = bytes.len();
                if len > 0 {
                    bytes[at % len] ^= mask;
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            PeerMessage::decode(&bytes).ok()
        }
        Forgery::Epoch { pick: i, epoch } => match pick(*i)? {
            PeerMessage::Replication(mut msg) => {
                msg.epoch = Epoch(*epoch);
                Some(PeerMessage::Replication(msg))
            }
            _ => None,
        },
    }
}

/// True for a message that claims no acknowledgement and carries no entries or state:
/// one an unauthenticated forger cannot use to fake replication.
fn epoch_only(msg: &PeerMessage) -> bool {
    match msg {
        PeerMessage::Replication(m) => !matches!(
            &m.body,
            MessageBody::AppendReply(AppendOutcome::Accepted { .. })
                | MessageBody::Append { .. }
                | MessageBody::Snapshot { .. }
                | MessageBody::Heartbeat { .. }
        ),
        _ => false,
    }
}

/// A cluster with an elected leader, and a client that wrote `/w0`..`/w4` (acknowledged).
fn cluster_with_writes(seed: u64) -> (Cluster, ConnId) {
    let mut c = cluster(3, seed);
    let leader = elect(&mut c);
    let conn = c.connect(leader.0);
    for i in 0..5 {
        c.create(conn, &format!("/w{i}"), b"acked", 0).unwrap();
    }
    (c, conn)
}

/// Delivers the forgeries, interleaved with real traffic, keeping only those `keep`
/// accepts. Returns how many were delivered.
fn deliver_forgeries(
    c: &mut Cluster,
    forgeries: &[(Forgery, u64, u64, u64)],
    keep: impl Fn(&PeerMessage) -> bool,
) -> usize {
    let mut seen = Vec::new();
    let mut delivered = 0;
    for (forgery, to, claimed, delay_ms) in forgeries {
        record(c, &mut seen);
        c.run_for(*delay_ms);
        let Some(msg) = build(forgery, &seen).filter(|m| keep(m)) else {
            continue;
        };
        // A frame under the receiver's own id is refused by the runtime's handshake.
        let from = if claimed == to { to % 3 + 1 } else { *claimed };
        let at = c.now_ms;
        c.schedule(
            at,
            Event::Peer {
                from: NodeId(from),
                to: NodeId(*to),
                msg,
            },
        );
        delivered += 1;
    }
    delivered
}

/// Within 10 s of simulated time: one leader, which commits a fresh session's write.
fn serving_again(c: &mut Cluster) -> NodeId {
    assert!(
        c.run_until(10_000, |c| c.leaders() == 1),
        "no leader within 10 s after the forgeries"
    );
    let mut last = None;
    for _ in 0..20 {
        let Some(leader) = c.leader() else {
            c.run_for(500);
            continue;
        };
        let conn = c.client_open(leader.0, None, 0);
        c.run_until(5_000, |c| {
            c.clients[&conn].connected.is_some() || c.clients[&conn].closed
        });
        if c.clients[&conn].connected.is_some() {
            match c.create(conn, "/after", b"x", 0) {
                // NodeExists: an earlier attempt committed, its answer lost with a leader.
                Ok(_) | Err(paddock_core::error::ZkError::NodeExists) => return leader,
                Err(e) => last = Some(e),
            }
        }
        c.run_for(500);
    }
    panic!("the ensemble does not serve writes after the forgeries: {last:?}");
}

fn cases() -> u32 {
    std::env::var("PADDOCK_FORGERY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// The seed of the generated cases: fixed, so every run tries the same forgeries
/// (`PADDOCK_FORGERY_SEED` explores others).
fn seed() -> u64 {
    std::env::var("PADDOCK_FORGERY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed()),
        ..ProptestConfig::default()
    })]

    // Any forged frames under members' ids: the ensemble serves again within seconds.
    #[test]
    fn forged_peer_frames_never_wedge_the_ensemble(
        seed in any::<u64>(),
        forgeries in proptest::collection::vec(forgery(), 1..40),
    ) {
        let (mut c, _) = cluster_with_writes(seed);
        deliver_forgeries(&mut c, &forgeries, |_| true);
        serving_again(&mut c);
    }

    // Forgeries that claim only epochs, votes and refusals: the ensemble serves again and
    // every acknowledged write is still there, on every server.
    #[test]
    fn epoch_only_forgeries_lose_nothing(
        seed in any::<u64>(),
        forgeries in proptest::collection::vec(forgery(), 1..40),
    ) {
        let (mut c, _) = cluster_with_writes(seed);
        deliver_forgeries(&mut c, &forgeries, epoch_only);
        let leader = serving_again(&mut c);
        for id in 1..=3u64 {
            let conn = c.connect(id);
            // A sync first, so a follower has caught up with the leader's commits.
            let _ = c.call(
                conn,
                paddock_core::wire::Request::Sync(paddock_core::wire::PathRequest {
                    path: "/".into(),
                }),
            );
            for i in 0..5 {
                prop_assert_eq!(
                    c.get(conn, &format!("/w{i}"), false),
                    Ok(b"acked".to_vec()),
                    "server {} (leader {})", id, leader.0
                );
            }
        }
    }
}

// The forgery of the report, at the node level: a reply carrying epoch 2^32 - 1 under a
// member's id, to every server. Nothing moves, and the ensemble keeps serving.
#[test]
fn the_reported_forgery_is_refused_by_every_server() {
    let (mut c, conn) = cluster_with_writes(11);
    let before: Vec<Epoch> = (1..=3)
        .map(|id| c.node(id).status().replication.epoch)
        .collect();
    for to in 1..=3u64 {
        let msg = PeerMessage::Replication(paddock_core::replication::Message {
            epoch: Epoch(u32::MAX),
            body: MessageBody::HeartbeatReply,
        });
        let at = c.now_ms;
        c.schedule(
            at,
            Event::Peer {
                from: NodeId(to % 3 + 1),
                to: NodeId(to),
                msg,
            },
        );
    }
    c.run_for(3_000);
    let after: Vec<Epoch> = (1..=3)
        .map(|id| c.node(id).status().replication.epoch)
        .collect();
    assert_eq!(before, after, "no epoch moved");
    assert_eq!(c.create(conn, "/still", b"ok", 0), Ok("/still".into()));
}
