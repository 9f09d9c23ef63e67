//! Rule-by-rule tests of one `Replica` driven by hand: each feeds a few inputs and checks
//! the exact outputs, so a broken rule shows up as a named test, not only as a seed of
//! the cluster test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn config(id: u64, voters: &[u64]) -> ReplicationConfig {
    let mut config =
        ReplicationConfig::new(NodeId(id), voters.iter().copied().map(NodeId).collect());
    config.heartbeat_interval_ms = 10;
    config.election_timeout_ms_min = 100;
    config.election_timeout_ms_max = 200;
    config
}

fn entry(index: u64, epoch: u32, counter: u32) -> Entry {
    Entry {
        index,
        zxid: Zxid::new(Epoch(epoch), counter),
        payload: if counter == 0 {
            vec![]
        } else {
            vec![counter as u8]
        },
    }
}

fn replica(id: u64, voters: &[u64], durable: DurableState) -> Replica {
    let mut r = Replica::new(config(id, voters), durable, 7).unwrap();
    let mut out = Vec::new();
    r.step(0, Input::Tick, &mut out).unwrap();
    r
}

fn msg(epoch: u32, body: MessageBody) -> Message {
    Message {
        epoch: Epoch(epoch),
        body,
    }
}

fn deliver(r: &mut Replica, now_ms: u64, from: u64, m: Message) -> Vec<Output> {
    let mut out = Vec::new();
    r.step(
        now_ms,
        Input::Message {
            from: NodeId(from),
            msg: m,
        },
        &mut out,
    )
    .unwrap();
    out
}

fn sends(out: &[Output]) -> Vec<(NodeId, Message)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

fn vote(epoch: u32, last_index: u64, last_zxid: Zxid) -> Message {
    msg(
        epoch,
        MessageBody::Vote {
            last_index,
            last_zxid,
        },
    )
}

// A vote is made durable before it is sent: the reply appears only after
// HardStatePersisted, and a second candidate of the same epoch is refused.
#[test]
fn vote_is_sent_only_once_durable_and_only_once_per_epoch() {
    let mut r = replica(1, &[1, 2, 3], DurableState::default());
    let out = deliver(&mut r, 1, 2, vote(1, 0, Zxid::ZERO));
    let hard_state = HardState {
        epoch: Epoch(1),
        voted_for: Some(NodeId(2)),
    };
    assert!(out.contains(&Output::PersistHardState { hard_state }));
    assert!(sends(&out).is_empty(), "vote held until durable: {out:?}");

    let mut out = Vec::new();
    r.step(2, Input::HardStatePersisted { hard_state }, &mut out)
        .unwrap();
    let granted = msg(1, MessageBody::VoteReply { granted: true });
    assert_eq!(sends(&out), vec![(NodeId(2), granted)]);

    let out = deliver(&mut r, 3, 3, vote(1, 5, Zxid::new(Epoch(1), 9)));
    let refused = msg(1, MessageBody::VoteReply { granted: false });
    assert_eq!(sends(&out), vec![(NodeId(3), refused.clone())]);

    // Following the leader it elected keeps the vote: a late candidate of the same epoch
    // is still refused, and no hard state without the vote is written.
    let heartbeat = MessageBody::Append {
        prev_index: 0,
        prev_zxid: Zxid::ZERO,
        entries: vec![],
        commit_index: 0,
    };
    let out = deliver(&mut r, 4, 2, msg(1, heartbeat));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::PersistHardState { .. })),
        "{out:?}"
    );
    // (After the leader's lease, which alone would refuse it.)
    let out = deliver(&mut r, 3_000, 3, vote(1, 5, Zxid::new(Epoch(1), 9)));
    assert_eq!(sends(&out), vec![(NodeId(3), refused)]);
}

// A candidate that learns of the epoch's leader follows it and keeps its vote (for
// itself): a later candidate of the same epoch is refused, even after the lease.
#[test]
fn a_candidate_following_its_epochs_leader_keeps_its_vote() {
    let mut r = Replica::new(config(1, &[1, 2, 3]), DurableState::default(), 1).unwrap();
    let mut out = Vec::new();
    r.step(0, Input::Tick, &mut out).unwrap();
    let t = r.next_deadline().unwrap();
    r.step(t, Input::Tick, &mut out).unwrap();
    deliver(
        &mut r,
        t,
        2,
        msg(1, MessageBody::PreVoteReply { granted: true }),
    );
    assert_eq!(r.role(), Role::Candidate);
    let hard_state = HardState {
        epoch: Epoch(1),
        voted_for: Some(NodeId(1)),
    };
    r.step(t, Input::HardStatePersisted { hard_state }, &mut out)
        .unwrap();
    // Server 2 won epoch 1 (with 3's vote): its heartbeat makes this one follow it.
    let out = deliver(
        &mut r,
        t + 1,
        2,
        msg(1, MessageBody::Heartbeat { commit_index: 0 }),
    );
    assert_eq!(r.role(), Role::Follower);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::PersistHardState { .. })),
        "the vote was dropped: {out:?}"
    );
    let out = deliver(&mut r, t + 3_000, 3, vote(1, 9, Zxid::new(Epoch(1), 9)));
    let refused = msg(1, MessageBody::VoteReply { granted: false });
    assert_eq!(sends(&out), vec![(NodeId(3), refused)]);
}

// A voter refuses a candidate whose log is less up to date than its own.
#[test]
fn vote_refused_to_a_less_up_to_date_log() {
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(2),
            voted_for: None,
        },
        entries: vec![entry(1, 2, 0)],
        ..DurableState::default()
    };
    let mut r = replica(1, &[1, 2, 3], durable);
    // Longer log, older epoch: refused (and the epoch moves to 3 all the same).
    let out = deliver(&mut r, 1, 2, vote(3, 9, Zxid::new(Epoch(1), 9)));
    let reply = sends(&out);
    // The reply waits for the new epoch to be durable.
    assert!(reply.is_empty());
    let hard_state = HardState {
        epoch: Epoch(3),
        voted_for: None,
    };
    let mut out = Vec::new();
    r.step(2, Input::HardStatePersisted { hard_state }, &mut out)
        .unwrap();
    let refused = msg(3, MessageBody::VoteReply { granted: false });
    assert_eq!(sends(&out), vec![(NodeId(2), refused)]);
}

// A follower acknowledges an append only after Persisted covers it, and a Persisted
// report for entries it no longer holds is refused as stale.
#[test]
fn follower_acknowledges_only_durable_entries() {
    let mut r = replica(2, &[1, 2, 3], DurableState::default());
    let append = MessageBody::Append {
        prev_index: 0,
        prev_zxid: Zxid::ZERO,
        entries: vec![entry(1, 1, 0), entry(2, 1, 1)],
        commit_index: 0,
    };
    let out = deliver(&mut r, 1, 1, msg(1, append));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::PersistEntries { truncate_after: None, entries } if entries.len() == 2
    )));
    assert!(sends(&out).is_empty(), "no ack before durability: {out:?}");

    let mut out = Vec::new();
    let stale = Input::Persisted {
        index: 2,
        zxid: Zxid::new(Epoch(9), 9),
    };
    assert_eq!(r.step(2, stale, &mut out), Err(StepError::StalePersisted));
    let hard_state = HardState {
        epoch: Epoch(1),
        voted_for: None,
    };
    r.step(2, Input::HardStatePersisted { hard_state }, &mut out)
        .unwrap();
    assert!(
        sends(&out).is_empty(),
        "still nothing durable to acknowledge"
    );
    let durable = Input::Persisted {
        index: 2,
        zxid: Zxid::new(Epoch(1), 1),
    };
    let mut out = Vec::new();
    r.step(3, durable, &mut out).unwrap();
    let ack = MessageBody::AppendReply(AppendOutcome::Accepted { match_index: 2 });
    assert_eq!(sends(&out), vec![(NodeId(1), msg(1, ack))]);
}

// While a leader is heard from, a pre-vote is refused and a vote for a newer epoch is
// ignored; neither moves the epoch. After the lease, the pre-vote is granted, still
// without touching the hard state.
#[test]
fn leader_lease_refuses_pre_votes_and_votes() {
    let mut r = replica(2, &[1, 2, 3], DurableState::default());
    let heartbeat = msg(0, MessageBody::Heartbeat { commit_index: 0 });
    deliver(&mut r, 10, 1, heartbeat);
    let pre_vote = MessageBody::PreVote {
        last_index: 0,
        last_zxid: Zxid::ZERO,
    };
    let out = deliver(&mut r, 20, 3, msg(1, pre_vote.clone()));
    let refused = msg(0, MessageBody::PreVoteReply { granted: false });
    assert_eq!(sends(&out), vec![(NodeId(3), refused)]);
    let out = deliver(&mut r, 21, 3, vote(1, 0, Zxid::ZERO));
    assert!(out.is_empty(), "vote ignored in the lease: {out:?}");
    assert_eq!(r.status().epoch, Epoch(0));

    let out = deliver(&mut r, 200, 3, msg(1, pre_vote));
    let granted = msg(1, MessageBody::PreVoteReply { granted: true });
    assert_eq!(sends(&out), vec![(NodeId(3), granted)]);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::PersistHardState { .. }))
    );
    assert_eq!(r.status().epoch, Epoch(0));
}

// The lease lasts the minimum election timeout from the leader's last message, that
// instant excluded: heard at 10 with a 100 ms minimum, a pre-vote at 109 is refused and
// one at 110 granted.
#[test]
fn leader_lease_ends_at_the_minimum_election_timeout() {
    let pre_vote = MessageBody::PreVote {
        last_index: 0,
        last_zxid: Zxid::ZERO,
    };
    for (at, granted) in [(109, false), (110, true)] {
        let mut r = replica(2, &[1, 2, 3], DurableState::default());
        let heartbeat = msg(0, MessageBody::Heartbeat { commit_index: 0 });
        deliver(&mut r, 10, 1, heartbeat);
        let out = deliver(&mut r, at, 3, msg(1, pre_vote.clone()));
        let epoch = if granted { 1 } else { 0 };
        let reply = msg(epoch, MessageBody::PreVoteReply { granted });
        assert_eq!(sends(&out), vec![(NodeId(3), reply)], "at {at} ms");
    }
}

// A pre-vote names the epoch its sender would campaign in, one past its own: a pre-vote
// at our own epoch comes from a server one epoch behind us, and is refused (answered at
// our epoch), whatever the state of its log.
#[test]
fn a_pre_vote_for_our_own_epoch_is_refused() {
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(3),
            voted_for: None,
        },
        ..DurableState::default()
    };
    let mut r = replica(2, &[1, 2, 3], durable);
    let pre_vote = |epoch| {
        msg(
            epoch,
            MessageBody::PreVote {
                last_index: 0,
                last_zxid: Zxid::ZERO,
            },
        )
    };
    let out = deliver(&mut r, 1, 3, pre_vote(3));
    let refused = msg(3, MessageBody::PreVoteReply { granted: false });
    assert_eq!(sends(&out), vec![(NodeId(3), refused)]);
    let out = deliver(&mut r, 2, 3, pre_vote(4));
    let granted = msg(4, MessageBody::PreVoteReply { granted: true });
    assert_eq!(sends(&out), vec![(NodeId(3), granted)]);
    assert_eq!(r.status().epoch, Epoch(3), "a pre-vote moves no epoch");
}

// Refusals of a pre-vote come back at the refuser's epoch, which is ours: a majority of
// them ends the pre-campaign at once (back to follower, no leader known), instead of
// waiting for the next election timeout.
#[test]
fn a_majority_of_pre_vote_refusals_ends_the_pre_campaign() {
    let mut r = replica(1, &[1, 2, 3], DurableState::default());
    let mut out = Vec::new();
    r.step(0, Input::Tick, &mut out).unwrap();
    let t = r.next_deadline().unwrap();
    r.step(t, Input::Tick, &mut out).unwrap();
    assert_eq!(r.role(), Role::PreCandidate);
    let refused = msg(0, MessageBody::PreVoteReply { granted: false });
    deliver(&mut r, t, 2, refused.clone());
    assert_eq!(
        r.role(),
        Role::PreCandidate,
        "one refusal is not a majority"
    );
    deliver(&mut r, t, 3, refused);
    assert_eq!(r.role(), Role::Follower, "two of three refused");
    assert_eq!(r.status().epoch, Epoch(0));
}

// A pre-vote from an older epoch (a server that was away) is refused at once, at our
// epoch, so that its sender learns the newer epoch and stops campaigning, as a stale vote
// request is; neither moves our epoch.
#[test]
fn a_stale_pre_vote_or_vote_is_refused_at_our_epoch() {
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(5),
            voted_for: None,
        },
        ..DurableState::default()
    };
    let mut r = replica(2, &[1, 2, 3], durable);
    let pre_vote = MessageBody::PreVote {
        last_index: 0,
        last_zxid: Zxid::ZERO,
    };
    let out = deliver(&mut r, 1, 3, msg(3, pre_vote));
    let refused = msg(5, MessageBody::PreVoteReply { granted: false });
    assert_eq!(sends(&out), vec![(NodeId(3), refused)]);
    let out = deliver(&mut r, 2, 3, vote(4, 0, Zxid::ZERO));
    let refused = msg(5, MessageBody::VoteReply { granted: false });
    assert_eq!(sends(&out), vec![(NodeId(3), refused)]);
    assert_eq!(r.status().epoch, Epoch(5));
}

// The epoch space ends at `EPOCH_MAX` = 2^32 - 2: a member there has no next epoch to
// campaign in (2^32 - 1 stays unused, the forged value a far-epoch check refuses), so at
// its election timeouts it only waits for a leader (and arms no election timer).
#[test]
fn a_member_at_the_last_epoch_never_campaigns() {
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(u32::MAX - 1),
            voted_for: None,
        },
        ..DurableState::default()
    };
    let mut r = replica(1, &[1, 2, 3], durable);
    let mut out = Vec::new();
    for t in [1_000, 5_000, 60_000] {
        r.step(t, Input::Tick, &mut out).unwrap();
        assert_eq!(r.role(), Role::Follower, "at {t} ms");
    }
    assert!(sends(&out).is_empty(), "{out:?}");
}

// A lone voter elects itself at its first tick (it has no one to wait for), commits its
// NEWLEADER entry and then proposals once they are durable, and outputs them in order.
#[test]
fn single_voter_commits_on_its_own_durability() {
    let mut r = replica(1, &[1], DurableState::default());
    assert_eq!(
        r.role(),
        Role::Leader,
        "elected at the first tick, at time 0"
    );
    let deadline = 0;
    assert_eq!(r.propose(vec![42]).unwrap(), Zxid::new(Epoch(1), 1));
    let mut out = Vec::new();
    r.step(deadline, Input::Tick, &mut out).unwrap();
    assert!(!out.iter().any(|o| matches!(o, Output::Committed { .. })));
    let durable = Input::Persisted {
        index: 2,
        zxid: Zxid::new(Epoch(1), 1),
    };
    r.step(deadline + 1, durable, &mut out).unwrap();
    let committed: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Output::Committed { entries } => Some(entries.iter().map(|e| e.index)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(committed, vec![1, 2]);
    assert!(r.status().leader_ready);
}

// A lone voter's log is read by no one else: once entries are committed and output, it
// keeps none of them in memory, only the ones not yet durable. (A voter among others keeps
// them for its followers until a snapshot covers them: snapshot_offers_bound_the_log_cut.)
#[test]
fn single_voter_keeps_no_committed_entries() {
    let mut r = replica(1, &[1], DurableState::default());
    let first = r.propose(vec![1]).unwrap();
    let mut out = Vec::new();
    r.step(0, Input::Tick, &mut out).unwrap();
    let second = r.propose(vec![2]).unwrap();
    r.step(0, Input::Tick, &mut out).unwrap();
    r.step(
        1,
        Input::Persisted {
            index: 2,
            zxid: first,
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(
        r.zxid_at(1),
        None,
        "the NEWLEADER entry, applied, is dropped"
    );
    assert_eq!(
        r.zxid_at(2),
        Some(first),
        "the log now starts after index 2"
    );
    assert_eq!(r.zxid_at(3), Some(second), "not durable yet: kept");
    r.step(
        2,
        Input::Persisted {
            index: 3,
            zxid: second,
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(r.zxid_at(2), None);
    let committed: Vec<(u64, Vec<u8>)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Committed { entries } => {
                Some(entries.iter().map(|e| (e.index, e.payload.clone())))
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(committed, vec![(1, vec![]), (2, vec![1]), (3, vec![2])]);
}

// Messages from strangers and malformed messages are refused with a typed error and
// counted, and change nothing.
#[test]
fn bad_messages_are_refused_and_counted() {
    let mut r = replica(2, &[1, 2, 3], DurableState::default());
    let mut out = Vec::new();
    let heartbeat = msg(5, MessageBody::Heartbeat { commit_index: 0 });
    let stranger = Input::Message {
        from: NodeId(9),
        msg: heartbeat,
    };
    assert!(matches!(
        r.step(1, stranger, &mut out),
        Err(StepError::BadMessage(MessageError::UnknownSender { .. }))
    ));
    let future = MessageBody::Append {
        prev_index: 0,
        prev_zxid: Zxid::ZERO,
        entries: vec![entry(1, 7, 1)],
        commit_index: 0,
    };
    let bad = Input::Message {
        from: NodeId(1),
        msg: msg(5, future),
    };
    assert!(matches!(
        r.step(1, bad, &mut out),
        Err(StepError::BadMessage(MessageError::FutureEpoch { .. }))
    ));
    assert_eq!(r.status().messages_refused, 2);
    assert_eq!(r.status().epoch, Epoch(0));
    assert!(out.is_empty());
}

// An append that disagrees with a committed entry is rejected; the log is unchanged.
#[test]
fn append_disagreeing_with_committed_entry_is_rejected() {
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(1),
            voted_for: None,
        },
        entries: vec![entry(1, 1, 0), entry(2, 1, 1)],
        ..DurableState::default()
    };
    let mut r = replica(2, &[1, 2, 3], durable);
    deliver(
        &mut r,
        1,
        1,
        msg(1, MessageBody::Heartbeat { commit_index: 2 }),
    );
    assert_eq!(r.status().commit_index, 2);
    let rewrite = MessageBody::Append {
        prev_index: 1,
        prev_zxid: Zxid::new(Epoch(1), 0),
        entries: vec![entry(2, 1, 5)],
        commit_index: 2,
    };
    // Entries at or below the commit index are skipped, then must match our entry 2.
    let out = deliver(&mut r, 2, 1, msg(1, rewrite));
    assert!(matches!(
        sends(&out).as_slice(),
        [(
            _,
            Message {
                body: MessageBody::AppendReply(AppendOutcome::Rejected { .. }),
                ..
            }
        )]
    ));
    assert_eq!(r.zxid_at(2), Some(Zxid::new(Epoch(1), 1)));
}

// A leader message from an older epoch is answered with the newer epoch, and a leader
// that hears of a newer epoch steps down and refuses proposals.
#[test]
fn stale_leader_learns_newer_epoch_and_steps_down() {
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(4),
            voted_for: None,
        },
        ..DurableState::default()
    };
    let mut r = replica(2, &[1, 2, 3], durable);
    let out = deliver(
        &mut r,
        1,
        1,
        msg(3, MessageBody::Heartbeat { commit_index: 0 }),
    );
    assert_eq!(
        sends(&out),
        vec![(NodeId(1), msg(4, MessageBody::HeartbeatReply))]
    );

    let mut leader3 = Replica::new(config(1, &[1, 2, 3]), DurableState::default(), 1).unwrap();
    let mut out = Vec::new();
    leader3.step(0, Input::Tick, &mut out).unwrap();
    let t = leader3.next_deadline().unwrap();
    leader3.step(t, Input::Tick, &mut out).unwrap();
    let pre_granted = msg(1, MessageBody::PreVoteReply { granted: true });
    deliver(&mut leader3, t, 2, pre_granted);
    assert_eq!(leader3.role(), Role::Candidate);
    let hard_state = HardState {
        epoch: Epoch(1),
        voted_for: Some(NodeId(1)),
    };
    leader3
        .step(t, Input::HardStatePersisted { hard_state }, &mut out)
        .unwrap();
    deliver(
        &mut leader3,
        t,
        2,
        msg(1, MessageBody::VoteReply { granted: true }),
    );
    assert_eq!(leader3.role(), Role::Leader);
    deliver(&mut leader3, t + 1, 3, msg(2, MessageBody::HeartbeatReply));
    assert_eq!(leader3.role(), Role::Follower);
    assert_eq!(
        leader3.propose(vec![1]),
        Err(ProposeError::NotLeader { leader_hint: None })
    );
}

// An observer never campaigns, but one whose leader fell silent for an election timeout
// stops naming it (its forwarded writes would go to a deposed leader) until a leader
// speaks again.
#[test]
fn an_observer_forgets_a_silent_leader_and_never_campaigns() {
    let mut config = config(3, &[1, 2]);
    config.observers.insert(NodeId(3));
    let mut r = Replica::new(config, DurableState::default(), 5).unwrap();
    r.step(0, Input::Tick, &mut Vec::new()).unwrap();
    deliver(
        &mut r,
        1,
        1,
        msg(1, MessageBody::Heartbeat { commit_index: 0 }),
    );
    assert_eq!(r.role(), Role::Observer);
    assert_eq!(r.status().leader, Some(NodeId(1)));
    deliver(
        &mut r,
        150,
        1,
        msg(1, MessageBody::Heartbeat { commit_index: 0 }),
    );
    let mut out = Vec::new();
    r.step(250, Input::Tick, &mut out).unwrap();
    assert_eq!(
        r.status().leader,
        Some(NodeId(1)),
        "heard within the timeout"
    );
    let deadline = r.next_deadline().expect("an observer keeps a timer");
    assert!(deadline <= 350);
    r.step(deadline, Input::Tick, &mut out).unwrap();
    assert_eq!(r.status().leader, None);
    assert_eq!(r.role(), Role::Observer);
    assert!(sends(&out).is_empty(), "no pre-vote: {out:?}");
    deliver(
        &mut r,
        400,
        2,
        msg(2, MessageBody::Heartbeat { commit_index: 0 }),
    );
    assert_eq!(r.status().leader, Some(NodeId(2)));
}

// Within one epoch, an append that would truncate entries the same leader already
// confirmed is refused as a faulty message, and nothing is truncated.
#[test]
fn append_dropping_confirmed_entries_is_refused() {
    let mut r = replica(2, &[1, 2, 3], DurableState::default());
    let first = MessageBody::Append {
        prev_index: 0,
        prev_zxid: Zxid::ZERO,
        entries: vec![entry(1, 1, 0), entry(2, 1, 1), entry(3, 1, 2)],
        commit_index: 0,
    };
    deliver(&mut r, 1, 1, msg(1, first));
    let rewrite = MessageBody::Append {
        prev_index: 1,
        prev_zxid: Zxid::new(Epoch(1), 0),
        entries: vec![entry(2, 1, 7)],
        commit_index: 0,
    };
    let mut out = Vec::new();
    let input = Input::Message {
        from: NodeId(1),
        msg: msg(1, rewrite),
    };
    assert_eq!(
        r.step(2, input, &mut out),
        Err(StepError::BadMessage(
            MessageError::ConflictsWithConfirmed { index: 2 }
        ))
    );
    assert_eq!(r.status().last_index, 3);
    assert_eq!(r.zxid_at(2), Some(Zxid::new(Epoch(1), 1)));
}

// A follower with a divergent uncommitted suffix rejects with a hint naming its last
// entry and that entry's epoch (from which the leader skips the whole epoch in its own
// log), then truncates the suffix when the leader's entries arrive.
#[test]
fn divergent_suffix_hint_and_truncation() {
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(2),
            voted_for: None,
        },
        entries: vec![
            entry(1, 1, 0),
            entry(2, 2, 0),
            entry(3, 2, 1),
            entry(4, 2, 2),
        ],
        ..DurableState::default()
    };
    let mut r = replica(2, &[1, 2, 3], durable);
    let probe = MessageBody::Append {
        prev_index: 4,
        prev_zxid: Zxid::new(Epoch(3), 1),
        entries: vec![],
        commit_index: 1,
    };
    let out = deliver(&mut r, 1, 1, msg(3, probe));
    let hard_state = HardState {
        epoch: Epoch(3),
        voted_for: None,
    };
    let mut out2 = Vec::new();
    r.step(1, Input::HardStatePersisted { hard_state }, &mut out2)
        .unwrap();
    assert!(sends(&out).is_empty());
    let hint = AppendOutcome::Rejected {
        rejected_index: 4,
        hint_index: 4,
        hint_epoch: Epoch(2),
    };
    assert_eq!(
        sends(&out2),
        vec![(NodeId(1), msg(3, MessageBody::AppendReply(hint)))]
    );

    let fix = MessageBody::Append {
        prev_index: 1,
        prev_zxid: Zxid::new(Epoch(1), 0),
        entries: vec![entry(2, 3, 0), entry(3, 3, 1)],
        commit_index: 1,
    };
    let out = deliver(&mut r, 2, 1, msg(3, fix));
    let persist = Output::PersistEntries {
        truncate_after: Some(1),
        entries: vec![entry(2, 3, 0), entry(3, 3, 1)],
    };
    assert!(out.contains(&persist), "{out:?}");
    assert_eq!(r.status().last_index, 3);
    assert_eq!(r.status().persisted_index, 1);
}

/// Replica 1 of {1, 2, 3} elected leader of epoch `hard_state.epoch + 1` by hand (pre-vote
/// and vote granted by 2), at time 1000 ms. Small limits: 4 entries per message, 2
/// messages in flight.
fn leader_of_three(durable: DurableState) -> (Replica, u64) {
    let mut config = config(1, &[1, 2, 3]);
    config.entries_per_message_max = 4;
    config.messages_in_flight_max = 2;
    config.proposals_uncommitted_max = 30;
    config.payload_bytes_max = 8;
    let epoch = Epoch(durable.hard_state.epoch.0 + 1);
    let mut r = Replica::new(config, durable, 3).unwrap();
    let now_ms = 1000;
    let mut out = Vec::new();
    r.step(0, Input::Tick, &mut out).unwrap();
    r.step(now_ms, Input::Tick, &mut out).unwrap();
    assert_eq!(r.role(), Role::PreCandidate);
    deliver(
        &mut r,
        now_ms,
        2,
        msg(epoch.0, MessageBody::PreVoteReply { granted: true }),
    );
    let hard_state = HardState {
        epoch,
        voted_for: Some(NodeId(1)),
    };
    r.step(now_ms, Input::HardStatePersisted { hard_state }, &mut out)
        .unwrap();
    deliver(
        &mut r,
        now_ms,
        2,
        msg(epoch.0, MessageBody::VoteReply { granted: true }),
    );
    assert_eq!(r.role(), Role::Leader);
    (r, now_ms)
}

fn appends_to(out: &[Output], to: u64) -> Vec<(u64, Vec<u64>)> {
    sends(out)
        .into_iter()
        .filter(|(id, _)| *id == NodeId(to))
        .filter_map(|(_, m)| match m.body {
            MessageBody::Append {
                prev_index,
                entries,
                ..
            } => Some((prev_index, entries.iter().map(|e| e.index).collect())),
            _ => None,
        })
        .collect()
}

// A burst of proposals goes out as one PersistEntries and, to a follower in replicate
// state, as pipelined Appends bounded by entries_per_message_max and
// messages_in_flight_max; an acknowledgement opens the window again. A follower still
// being probed gets nothing more until it answers.
#[test]
fn proposals_are_batched_and_pipelined_within_bounds() {
    let (mut r, now_ms) = leader_of_three(DurableState::default());
    let ack = |match_index| {
        msg(
            1,
            MessageBody::AppendReply(AppendOutcome::Accepted { match_index }),
        )
    };
    deliver(&mut r, now_ms, 2, ack(1));
    for i in 0..20u8 {
        r.propose(vec![i]).unwrap();
    }
    let mut out = Vec::new();
    r.step(now_ms, Input::Tick, &mut out).unwrap();
    let persists: Vec<usize> = out
        .iter()
        .filter_map(|o| match o {
            Output::PersistEntries { entries, .. } => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(persists, vec![20], "one write for the whole burst");
    assert_eq!(
        appends_to(&out, 2),
        vec![(1, vec![2, 3, 4, 5]), (5, vec![6, 7, 8, 9])],
        "two messages of four entries, then the window is full"
    );
    assert_eq!(appends_to(&out, 3), vec![], "follower 3 is still probed");

    let out = deliver(&mut r, now_ms + 1, 2, ack(5));
    assert_eq!(appends_to(&out, 2), vec![(9, vec![10, 11, 12, 13])]);
    assert_eq!(r.status().followers[0].match_index, 5);
}

// The leader refuses proposals beyond its limits with typed errors; a payload of exactly
// the limit is taken.
#[test]
fn proposals_beyond_limits_are_refused() {
    let (mut r, _) = leader_of_three(DurableState::default());
    assert_eq!(
        r.propose(vec![0; 9]),
        Err(ProposeError::PayloadTooLarge {
            size_bytes: 9,
            limit_bytes: 8
        })
    );
    r.propose(vec![0; 8]).unwrap();
    for _ in 0..28 {
        r.propose(vec![1]).unwrap();
    }
    assert_eq!(
        r.propose(vec![1]),
        Err(ProposeError::TooManyUncommitted { uncommitted: 30 })
    );
}

// A rejection hint makes the leader skip, in its own log, every entry of an epoch newer
// than the hint's: the next probe starts after the last entry both may share.
#[test]
fn rejection_hint_skips_divergent_epoch() {
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(2),
            voted_for: None,
        },
        entries: vec![
            entry(1, 1, 0),
            entry(2, 1, 1),
            entry(3, 2, 0),
            entry(4, 2, 1),
        ],
        ..DurableState::default()
    };
    let (mut r, now_ms) = leader_of_three(durable);
    let reject = AppendOutcome::Rejected {
        rejected_index: 4,
        hint_index: 4,
        hint_epoch: Epoch(1),
    };
    let out = deliver(&mut r, now_ms, 2, msg(3, MessageBody::AppendReply(reject)));
    assert_eq!(appends_to(&out, 2), vec![(2, vec![3, 4, 5])]);
    // A stale rejection (not of the current probe) changes nothing.
    let out = deliver(&mut r, now_ms, 2, msg(3, MessageBody::AppendReply(reject)));
    assert_eq!(appends_to(&out, 2), vec![]);
}

/// A leader of epoch 2 over five entries of epoch 1 (its NEWLEADER entry is 6), whose
/// follower 2 has acknowledged everything: it replicates to 2 from there.
fn leader_with_follower_2_at_6() -> (Replica, u64) {
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(1),
            voted_for: None,
        },
        entries: (1..=5).map(|i| entry(i, 1, i as u32)).collect(),
        ..DurableState::default()
    };
    let (mut r, now_ms) = leader_of_three(durable);
    let accepted = AppendOutcome::Accepted { match_index: 6 };
    deliver(
        &mut r,
        now_ms,
        2,
        msg(2, MessageBody::AppendReply(accepted)),
    );
    (r, now_ms)
}

// To a leader replicating to a follower, a rejection of an append at or below what the
// follower acknowledged is stale (sent before the acknowledgement): it changes nothing,
// no probe is sent.
#[test]
fn a_rejection_at_the_acknowledged_index_is_stale() {
    let (mut r, now_ms) = leader_with_follower_2_at_6();
    let reject = |index| AppendOutcome::Rejected {
        rejected_index: index,
        hint_index: index,
        hint_epoch: Epoch(1),
    };
    for stale in [5, 6] {
        let out = deliver(
            &mut r,
            now_ms + 1,
            2,
            msg(2, MessageBody::AppendReply(reject(stale))),
        );
        assert_eq!(appends_to(&out, 2), vec![], "rejected at {stale}");
    }
    // Still so with a new entry in flight after the acknowledged one.
    r.propose(vec![1]).unwrap();
    let mut out = Vec::new();
    r.step(now_ms + 2, Input::Tick, &mut out).unwrap();
    let out = deliver(
        &mut r,
        now_ms + 3,
        2,
        msg(2, MessageBody::AppendReply(reject(6))),
    );
    assert!(appends_to(&out, 2).is_empty(), "{out:?}");
}

// A follower acknowledged index 6; a rejection of entry 7 sends the leader probing
// after 6 (never below what the follower acknowledged). When that probe is rejected too,
// with a hint at 2, the follower lost synced writes: the leader forgets the match down to
// where the logs may meet, so that it neither counts entries the follower no longer holds
// nor probes above them.
#[test]
fn a_rejection_below_the_match_forgets_the_lost_entries() {
    let (mut r, now_ms) = leader_with_follower_2_at_6();
    let match_of_2 = |r: &Replica| {
        r.status()
            .followers
            .iter()
            .find(|f| f.id == NodeId(2))
            .map(|f| f.match_index)
    };
    let reject = |rejected_index, hint_index| {
        msg(
            2,
            MessageBody::AppendReply(AppendOutcome::Rejected {
                rejected_index,
                hint_index,
                hint_epoch: Epoch(1),
            }),
        )
    };
    r.propose(vec![1]).unwrap();
    let mut out = Vec::new();
    r.step(now_ms + 1, Input::Tick, &mut out).unwrap();
    assert_eq!(appends_to(&out, 2), vec![(6, vec![7])]);
    let out = deliver(&mut r, now_ms + 2, 2, reject(7, 3));
    assert_eq!(appends_to(&out, 2), vec![(6, vec![7])], "probed after 6");
    assert_eq!(match_of_2(&r), Some(6));
    let out = deliver(&mut r, now_ms + 3, 2, reject(6, 2));
    assert_eq!(match_of_2(&r), Some(2));
    assert_eq!(
        appends_to(&out, 2),
        vec![(2, vec![3, 4, 5, 6])],
        "probed after 2"
    );
}

// Durable state whose log is ahead of its durable epoch is refused, not trusted.
#[test]
fn durable_log_ahead_of_epoch_is_refused() {
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(1),
            voted_for: None,
        },
        entries: vec![entry(1, 2, 0)],
        ..DurableState::default()
    };
    let result = Replica::new(config(1, &[1, 2, 3]), durable, 0);
    assert!(matches!(
        result,
        Err(ReplicaError::EpochBehindLog {
            epoch: Epoch(1),
            log_epoch: Epoch(2)
        })
    ));
}

// A write reported durable proves nothing above a truncation emitted after it, even when
// the same zxids were appended again since: the disk may hold the truncation and not yet
// the re-append. Writes: A = entries 1..=3 of epoch 1; B (leader of epoch 2) truncates
// after 1 and writes its own 2..=3; C (leader of epoch 3, which has A's entries) truncates
// after 1 and writes A's 2..=3 again. A's report must not make 3 durable; C's does.
#[test]
fn durability_report_is_capped_by_later_truncation() {
    let mut r = replica(2, &[1, 2, 3], DurableState::default());
    let append = |epoch: u32, prev_index: u64, prev_zxid: Zxid, entries: Vec<Entry>| {
        msg(
            epoch,
            MessageBody::Append {
                prev_index,
                prev_zxid,
                entries,
                commit_index: 0,
            },
        )
    };
    let a = vec![entry(1, 1, 0), entry(2, 1, 1), entry(3, 1, 2)];
    deliver(&mut r, 1, 1, append(1, 0, Zxid::ZERO, a.clone()));
    let first = Zxid::new(Epoch(1), 0);
    deliver(
        &mut r,
        2,
        3,
        append(2, 1, first, vec![entry(2, 2, 0), entry(3, 2, 1)]),
    );
    let out = deliver(&mut r, 3, 1, append(3, 1, first, a[1..].to_vec()));
    let rewrite = Output::PersistEntries {
        truncate_after: Some(1),
        entries: a[1..].to_vec(),
    };
    assert!(out.contains(&rewrite), "{out:?}");

    let report = |entry: &Entry| Input::Persisted {
        index: entry.index,
        zxid: entry.zxid,
    };
    let mut out = Vec::new();
    r.step(4, report(&a[2]), &mut out).unwrap();
    assert_eq!(
        r.status().persisted_index,
        1,
        "A proves only what B and C kept"
    );
    r.step(5, report(&entry(3, 2, 1)), &mut out).unwrap();
    assert_eq!(r.status().persisted_index, 1);
    r.step(6, report(&a[2]), &mut out).unwrap();
    assert_eq!(r.status().persisted_index, 3, "C's own report");
    assert_eq!(
        r.step(7, report(&a[2]), &mut out),
        Err(StepError::StalePersisted)
    );
}

// A message claiming an epoch beyond the ceiling (here the forged 2^32 - 1 that once
// wedged an ensemble) is refused before it moves anything: no new hard state, no role
// change, and the member can still campaign in the next epoch.
#[test]
fn forged_far_epoch_is_refused_and_changes_nothing() {
    let mut r = replica(1, &[1, 2, 3], DurableState::default());
    for epoch in [u32::MAX, EPOCH_MAX.0, EPOCH_JUMP_MAX + 1] {
        let forged = Input::Message {
            from: NodeId(2),
            msg: msg(epoch, MessageBody::HeartbeatReply),
        };
        let mut out = Vec::new();
        assert!(matches!(
            r.step(5, forged, &mut out),
            Err(StepError::BadMessage(MessageError::EpochTooFar { .. }))
        ));
        assert!(out.is_empty(), "{out:?}");
    }
    assert_eq!(r.status().epoch, Epoch(0));
    assert_eq!(r.status().messages_refused, 3);
    // The highest believable epoch is still adopted: the ceiling is inclusive.
    deliver(
        &mut r,
        5,
        2,
        msg(EPOCH_JUMP_MAX, MessageBody::HeartbeatReply),
    );
    assert_eq!(r.status().epoch, Epoch(EPOCH_JUMP_MAX));
    let deadline = r.next_deadline().unwrap();
    let mut out = Vec::new();
    r.step(deadline, Input::Tick, &mut out).unwrap();
    assert_eq!(r.role(), Role::PreCandidate, "the next epoch is computable");
}

// The ceiling rises with time and never with messages: a member that missed more
// elections than EPOCH_JUMP_MAX is deaf to the ensemble at first, and follows it once
// enough time has passed for that many elections to be believable.
#[test]
fn epoch_ceiling_rises_with_time_only() {
    let mut r = replica(3, &[1, 2, 3], DurableState::default());
    assert_eq!(r.epoch_ceiling(), Epoch(EPOCH_JUMP_MAX));
    deliver(
        &mut r,
        0,
        2,
        msg(EPOCH_JUMP_MAX, MessageBody::HeartbeatReply),
    );
    assert_eq!(
        r.epoch_ceiling(),
        Epoch(EPOCH_JUMP_MAX),
        "messages do not move it"
    );
    let far = EPOCH_JUMP_MAX + 40;
    let heartbeat = msg(far, MessageBody::Heartbeat { commit_index: 0 });
    let mut out = Vec::new();
    let early = Input::Message {
        from: NodeId(1),
        msg: heartbeat.clone(),
    };
    assert!(r.step(10, early, &mut out).is_err());
    // 40 epochs need 5 election timeouts (8 per 100 ms timeout).
    deliver(&mut r, 500, 1, heartbeat);
    assert_eq!(r.status().epoch, Epoch(far));
    assert_eq!(r.status().leader, Some(NodeId(1)));
}

// A leader that uses up its epoch's zxid counters steps down at once, and the next
// election starts a new epoch whose counters begin again at 1.
#[test]
fn zxid_counter_rollover_forces_a_new_epoch() {
    let mut config = config(1, &[1]);
    config.zxid_counter_max = 3;
    let mut r = Replica::new(config, DurableState::default(), 7).unwrap();
    let mut out = Vec::new();
    r.step(0, Input::Tick, &mut out).unwrap();
    let deadline = r.next_deadline().unwrap();
    r.step(deadline, Input::Tick, &mut out).unwrap();
    assert_eq!(r.role(), Role::Leader);
    for counter in 1..=3 {
        assert_eq!(r.next_proposal_zxid(), Some(Zxid::new(Epoch(1), counter)));
        assert_eq!(r.propose(vec![1]).unwrap(), Zxid::new(Epoch(1), counter));
    }
    assert_eq!(r.next_proposal_zxid(), None);
    assert_eq!(r.propose(vec![1]), Err(ProposeError::ZxidCounterExhausted));
    r.step(deadline, Input::Tick, &mut out).unwrap();
    assert_eq!(r.role(), Role::Follower, "stepped down on rollover");
    let again = r.next_deadline().unwrap();
    r.step(again, Input::Tick, &mut out).unwrap();
    assert_eq!(r.role(), Role::Leader);
    assert_eq!(r.status().epoch, Epoch(2));
    assert_eq!(r.propose(vec![2]).unwrap(), Zxid::new(Epoch(2), 1));
}

// The owner offers each durable snapshot as what followers short of the log are sent,
// and cuts the log behind it: offers only move forward and only to applied
// entries, and the log is never cut beyond the snapshot offered last (a follower sent it
// must find the log going on right after it).
#[test]
fn snapshot_offers_bound_the_log_cut() {
    // A lone voter with an observer: it commits on its own durability, and keeps its log
    // for the observer.
    let mut config = config(1, &[1]);
    config.observers.insert(NodeId(2));
    let mut r = Replica::new(config, DurableState::default(), 7).unwrap();
    r.step(0, Input::Tick, &mut Vec::new()).unwrap();
    for i in 0..8u8 {
        r.propose(vec![i]).unwrap();
    }
    let mut out = Vec::new();
    r.step(0, Input::Tick, &mut out).unwrap();
    let zxid = r.zxid_at(9).unwrap();
    r.step(1, Input::Persisted { index: 9, zxid }, &mut out)
        .unwrap();
    assert_eq!(r.status().applied_index, 9);
    let at = |r: &Replica, index| SnapshotMeta {
        index,
        zxid: r.zxid_at(index).unwrap(),
    };
    assert_eq!(
        r.compact_log(3),
        Err(CompactError::NotCovered {
            index: 3,
            snapshot_index: 0
        })
    );
    let forged = SnapshotMeta {
        index: 4,
        zxid: at(&r, 5).zxid,
    };
    assert!(matches!(
        r.snapshot_offer(forged),
        Err(CompactError::NotApplied { .. })
    ));
    r.snapshot_offer(at(&r, 4)).unwrap();
    r.snapshot_offer(at(&r, 8)).unwrap();
    assert!(matches!(
        r.snapshot_offer(at(&r, 6)),
        Err(CompactError::AlreadyCompacted { snapshot_index: 8 })
    ));
    assert!(matches!(
        r.compact_log(9),
        Err(CompactError::NotCovered { .. })
    ));
    assert_eq!(r.compact_log(4).unwrap(), at(&r, 4));
    assert_eq!(r.zxid_at(3), None, "cut");
    assert!(r.zxid_at(5).is_some(), "kept after the cut");
    // `compact` cuts and offers at once, but never offers a snapshot older than the one
    // offered last.
    assert_eq!(r.compact(6).unwrap().index, 6);
    assert_eq!(r.zxid_at(5), None, "cut");
    assert!(matches!(
        r.snapshot_offer(at(&r, 7)),
        Err(CompactError::AlreadyCompacted { snapshot_index: 8 })
    ));
    // The entries a cut forgets are handed back too, oldest first.
    let (meta, dropped) = r.compact_log_taking(8).unwrap();
    assert_eq!(meta.index, 8);
    let indexes: Vec<u64> = dropped.iter().map(|e| e.index).collect();
    assert_eq!(indexes, vec![7, 8]);
}

// A follower that needs entries the log no longer holds is sent the snapshot offered
// last, by reference: the replica keeps no snapshot bytes, and asks the runtime to send
// the durable ones (`Output::SendSnapshot`), once per attempt.
#[test]
fn follower_behind_the_log_is_sent_the_snapshot_by_reference() {
    let snapshot = SnapshotMeta {
        index: 4,
        zxid: Zxid::new(Epoch(1), 4),
    };
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(1),
            voted_for: None,
        },
        snapshot,
        snapshot_bytes: vec![9; 3],
        entries: vec![entry(5, 1, 5)],
        log_lost: false,
    };
    let (mut r, now_ms) = leader_of_three(durable);
    let reject = AppendOutcome::Rejected {
        rejected_index: 5,
        hint_index: 0,
        hint_epoch: Epoch(0),
    };
    let out = deliver(&mut r, now_ms, 2, msg(2, MessageBody::AppendReply(reject)));
    let snapshot_sends: Vec<&Output> = out
        .iter()
        .filter(|o| matches!(o, Output::SendSnapshot { .. }))
        .collect();
    assert_eq!(
        snapshot_sends,
        vec![&Output::SendSnapshot(SnapshotSend {
            to: NodeId(2),
            epoch: Epoch(2),
            meta: snapshot,
            offset: 0,
            bytes_max: MESSAGE_BYTES_MAX_DEFAULT,
        })]
    );
    assert!(
        sends(&out)
            .iter()
            .all(|(_, m)| !matches!(m.body, MessageBody::Snapshot { .. })),
        "no snapshot bytes in the replica's own sends: {out:?}"
    );
    // Until the follower answers (or the retry time passes), nothing is sent again.
    let out = deliver(&mut r, now_ms + 1, 2, msg(2, MessageBody::HeartbeatReply));
    assert!(
        !out.iter().any(|o| matches!(o, Output::SendSnapshot { .. })),
        "{out:?}"
    );
}

// A member that lost its newest log segment neither campaigns nor votes (its log may
// lack entries it acknowledged) until a leader's append brings it a committed entry of
// the leader's epoch; then it reports `Resynced` and votes again.
#[test]
fn member_with_a_lost_log_waits_for_a_leader_to_resync_it() {
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(1),
            voted_for: None,
        },
        entries: vec![entry(1, 1, 0), entry(2, 1, 1)],
        log_lost: true,
        ..DurableState::default()
    };
    let mut r = replica(1, &[1, 2, 3], durable);
    assert!(r.status().resync_needed);
    // Its election timer fires again and again: no pre-vote goes out.
    for now_ms in (100..2_000).step_by(100) {
        let mut out = Vec::new();
        r.step(now_ms, Input::Tick, &mut out).unwrap();
        assert!(sends(&out).is_empty(), "campaigned at {now_ms}: {out:?}");
    }
    // A candidate with a log as good as its own is refused.
    let out = deliver(&mut r, 2_000, 2, vote(1, 2, Zxid::new(Epoch(1), 1)));
    assert_eq!(
        sends(&out),
        vec![(NodeId(2), msg(1, MessageBody::VoteReply { granted: false }))]
    );
    // The leader of epoch 2 sends its entries; the first append's commit index is still
    // in epoch 1: not yet re-synced.
    let append = |commit_index| MessageBody::Append {
        prev_index: 2,
        prev_zxid: Zxid::new(Epoch(1), 1),
        entries: vec![entry(3, 2, 0)],
        commit_index,
    };
    let out = deliver(&mut r, 2_010, 2, msg(2, append(2)));
    assert!(!out.contains(&Output::Resynced));
    let hard_state = HardState {
        epoch: Epoch(2),
        voted_for: None,
    };
    let mut out = Vec::new();
    r.step(2_011, Input::HardStatePersisted { hard_state }, &mut out)
        .unwrap();
    let out = deliver(&mut r, 2_020, 2, msg(2, append(3)));
    assert!(out.contains(&Output::Resynced), "{out:?}");
    assert!(!r.status().resync_needed);
    // Once the leader's lease has run out, it votes again.
    let out = deliver(&mut r, 2_500, 3, vote(3, 3, Zxid::new(Epoch(2), 0)));
    assert!(
        out.contains(&Output::PersistHardState {
            hard_state: HardState {
                epoch: Epoch(3),
                voted_for: Some(NodeId(3)),
            }
        }),
        "{out:?}"
    );
}

fn piece_sends(out: &[Output]) -> Vec<(NodeId, u64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::SendSnapshot(send) => Some((send.to, send.offset)),
            _ => None,
        })
        .collect()
}

fn snapshot_reply(offset: u64, received_bytes: u64) -> Message {
    msg(
        2,
        MessageBody::SnapshotReply {
            index: 4,
            offset,
            received_bytes,
        },
    )
}

// A snapshot goes in pieces, one in flight: each answer moves the transfer to where the
// follower stands, a duplicate answer sends nothing, and a piece that got no answer
// (lost, or its connection dropped) is sent again from the same offset after the retry
// time: the transfer resumes instead of starting over. The last piece is answered by an
// acknowledgement, which ends the transfer.
#[test]
fn snapshot_pieces_are_paced_by_answers_and_resume_after_a_loss() {
    let snapshot = SnapshotMeta {
        index: 4,
        zxid: Zxid::new(Epoch(1), 4),
    };
    let durable = DurableState {
        hard_state: HardState {
            epoch: Epoch(1),
            voted_for: None,
        },
        snapshot,
        entries: vec![entry(5, 1, 5)],
        ..DurableState::default()
    };
    let (mut r, now_ms) = leader_of_three(durable);
    let reject = AppendOutcome::Rejected {
        rejected_index: 5,
        hint_index: 0,
        hint_epoch: Epoch(0),
    };
    let out = deliver(&mut r, now_ms, 2, msg(2, MessageBody::AppendReply(reject)));
    assert_eq!(piece_sends(&out), vec![(NodeId(2), 0)]);
    let out = deliver(&mut r, now_ms + 1, 2, snapshot_reply(0, 100));
    assert_eq!(piece_sends(&out), vec![(NodeId(2), 100)]);
    let out = deliver(&mut r, now_ms + 2, 2, snapshot_reply(0, 100));
    assert_eq!(
        piece_sends(&out),
        vec![],
        "a duplicate answer sends nothing"
    );
    // The piece at 100 is lost: heartbeats go on, and after the retry time (the
    // election timeout's upper bound) it is sent again from 100, not from 0.
    let mut out = Vec::new();
    r.step(now_ms + 50, Input::Tick, &mut out).unwrap();
    assert_eq!(piece_sends(&out), vec![]);
    let mut out = Vec::new();
    r.step(now_ms + 2 + 200, Input::Tick, &mut out).unwrap();
    assert_eq!(piece_sends(&out), vec![(NodeId(2), 100)]);
    let out = deliver(&mut r, now_ms + 210, 2, snapshot_reply(100, 150));
    assert_eq!(piece_sends(&out), vec![(NodeId(2), 150)]);
    let accepted = AppendOutcome::Accepted { match_index: 4 };
    let out = deliver(
        &mut r,
        now_ms + 211,
        2,
        msg(2, MessageBody::AppendReply(accepted)),
    );
    assert!(piece_sends(&out).is_empty());
    assert_eq!(
        appends_to(&out, 2),
        vec![(4, vec![5, 6])],
        "after the snapshot, entries follow: {out:?}"
    );
}

/// A snapshot file of `bytes` at `meta`, as the storage engine writes it.
fn snapshot_file(meta: SnapshotMeta, bytes: &[u8]) -> Vec<u8> {
    let mut files = crate::storage::MemFiles::new();
    let limits = crate::limits::Limits::default();
    crate::storage::write_snapshot_file(&mut files, &limits, meta, bytes).unwrap();
    let piece = crate::storage::read_snapshot_piece(&mut files, meta, 0, u64::MAX)
        .unwrap()
        .unwrap();
    assert_eq!(piece.meta, meta);
    assert_eq!(piece.total_bytes, piece.bytes.len() as u64);
    piece.bytes
}

fn piece(meta: SnapshotMeta, file: &[u8], offset: usize, len: usize) -> Message {
    let end = (offset + len).min(file.len());
    msg(
        2,
        MessageBody::Snapshot {
            meta,
            offset: offset as u64,
            total_bytes: file.len() as u64,
            bytes: file[offset..end].to_vec(),
        },
    )
}

fn snapshot_replies(out: &[Output]) -> Vec<(u64, u64)> {
    sends(out)
        .into_iter()
        .filter_map(|(_, m)| match m.body {
            MessageBody::SnapshotReply {
                offset,
                received_bytes,
                ..
            } => Some((offset, received_bytes)),
            _ => None,
        })
        .collect()
}

// A follower gathers a snapshot's pieces in order and answers each with what it holds;
// a piece that does not follow (a resend after a loss, one from beyond what it holds) is
// not taken, and its answer says where to go on. The last piece installs the snapshot.
#[test]
fn follower_gathers_snapshot_pieces_and_installs_the_whole() {
    let meta = SnapshotMeta {
        index: 9,
        zxid: Zxid::new(Epoch(2), 3),
    };
    let state = vec![7u8; 100];
    let file = snapshot_file(meta, &state);
    let mut r = replica(1, &[1, 2, 3], DurableState::default());
    let out = deliver(&mut r, 1, 2, piece(meta, &file, 0, 40));
    let hard_state = HardState {
        epoch: Epoch(2),
        voted_for: None,
    };
    let mut out2 = Vec::new();
    r.step(2, Input::HardStatePersisted { hard_state }, &mut out2)
        .unwrap();
    let mut replies = snapshot_replies(&out);
    replies.extend(snapshot_replies(&out2));
    assert_eq!(replies, vec![(0, 40)], "{out:?} {out2:?}");
    let out = deliver(&mut r, 3, 2, piece(meta, &file, 80, 40));
    assert_eq!(snapshot_replies(&out), vec![(80, 40)], "a gap is not taken");
    let out = deliver(&mut r, 4, 2, piece(meta, &file, 0, 40));
    assert_eq!(
        snapshot_replies(&out),
        vec![(0, 40)],
        "a resend is not taken twice"
    );
    let out = deliver(&mut r, 5, 2, piece(meta, &file, 40, 40));
    assert_eq!(snapshot_replies(&out), vec![(40, 80)]);
    let out = deliver(&mut r, 6, 2, piece(meta, &file, 80, 1000));
    assert!(snapshot_replies(&out).is_empty(), "{out:?}");
    assert!(
        out.contains(&Output::InstallSnapshot { meta, bytes: state }),
        "{out:?}"
    );
    assert_eq!(r.status().commit_index, 9);
    // A piece sent again while the snapshot is being written gets no answer (one below
    // 9 would send the leader back to the start); once it is durable, the answer is 9.
    let out = deliver(&mut r, 7, 2, piece(meta, &file, 80, 1000));
    assert!(sends(&out).is_empty(), "{out:?}");
    let mut out = Vec::new();
    r.step(8, Input::SnapshotInstalled { meta }, &mut out)
        .unwrap();
    let accepted = AppendOutcome::Accepted { match_index: 9 };
    assert_eq!(
        sends(&out),
        vec![(NodeId(2), msg(2, MessageBody::AppendReply(accepted)))]
    );
    // Sent again once durable (a leader that lost the answer), it is answered at once:
    // the follower holds that snapshot.
    let out = deliver(&mut r, 9, 2, piece(meta, &file, 80, 1000));
    assert_eq!(
        sends(&out),
        vec![(NodeId(2), msg(2, MessageBody::AppendReply(accepted)))]
    );
}

// A follower part-way through one snapshot that is sent the first piece of a newer one
// starts over with the newer one (its answer counts only that piece), and installs it
// whole: pieces of two snapshots are never joined.
#[test]
fn a_newer_snapshot_replaces_one_being_gathered() {
    let old = SnapshotMeta {
        index: 9,
        zxid: Zxid::new(Epoch(2), 3),
    };
    let new = SnapshotMeta {
        index: 12,
        zxid: Zxid::new(Epoch(2), 6),
    };
    let old_file = snapshot_file(old, &[7u8; 100]);
    let state = vec![8u8; 100];
    let new_file = snapshot_file(new, &state);
    let mut r = replica(1, &[1, 2, 3], DurableState::default());
    deliver(&mut r, 1, 2, piece(old, &old_file, 0, 40));
    let hard_state = HardState {
        epoch: Epoch(2),
        voted_for: None,
    };
    r.step(2, Input::HardStatePersisted { hard_state }, &mut Vec::new())
        .unwrap();
    let out = deliver(&mut r, 3, 2, piece(new, &new_file, 0, 30));
    assert_eq!(snapshot_replies(&out), vec![(0, 30)], "{out:?}");
    let out = deliver(&mut r, 4, 2, piece(new, &new_file, 30, 1000));
    assert!(
        out.contains(&Output::InstallSnapshot {
            meta: new,
            bytes: state
        }),
        "{out:?}"
    );
    assert_eq!(r.status().commit_index, 12);

    // A file whose own header names another snapshot than its pieces claim is refused.
    let mut r = replica(1, &[1, 2, 3], DurableState::default());
    let claimed = msg(
        2,
        MessageBody::Snapshot {
            meta: new,
            offset: 0,
            total_bytes: old_file.len() as u64,
            bytes: old_file.clone(),
        },
    );
    let mut out = Vec::new();
    let refused = r.step(
        1,
        Input::Message {
            from: NodeId(2),
            msg: claimed,
        },
        &mut out,
    );
    assert_eq!(
        refused,
        Err(StepError::BadMessage(MessageError::SnapshotDamaged {
            index: 12
        }))
    );
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::InstallSnapshot { .. })),
        "{out:?}"
    );
    assert_eq!(r.status().commit_index, 0);
}

// What a follower holds of an arriving snapshot is bounded (`snapshot_bytes_max`), and a
// snapshot that arrives whole but damaged is refused and started over; neither changes
// the follower's log.
#[test]
fn snapshot_pieces_over_the_limit_or_damaged_are_refused() {
    let meta = SnapshotMeta {
        index: 9,
        zxid: Zxid::new(Epoch(2), 3),
    };
    let file = snapshot_file(meta, &[7u8; 100]);
    let mut config = config(1, &[1, 2, 3]);
    config.snapshot_bytes_max = 64;
    let mut r = Replica::new(config, DurableState::default(), 7).unwrap();
    let mut out = Vec::new();
    r.step(0, Input::Tick, &mut out).unwrap();
    let refused = r.step(
        1,
        Input::Message {
            from: NodeId(2),
            msg: piece(meta, &file, 0, 40),
        },
        &mut out,
    );
    assert_eq!(
        refused,
        Err(StepError::BadMessage(MessageError::SnapshotTooLarge {
            total_bytes: file.len() as u64,
            limit: 64
        }))
    );
    // A snapshot of exactly the limit is taken.
    let mut exact = self::config(1, &[1, 2, 3]);
    exact.snapshot_bytes_max = file.len() as u64;
    let mut r = Replica::new(exact, DurableState::default(), 7).unwrap();
    r.step(0, Input::Tick, &mut out).unwrap();
    let taken = r.step(
        1,
        Input::Message {
            from: NodeId(2),
            msg: piece(meta, &file, 0, 40),
        },
        &mut out,
    );
    assert_eq!(taken, Ok(()));

    let mut r = replica(1, &[1, 2, 3], DurableState::default());
    let mut damaged = file.clone();
    damaged[60] ^= 1;
    deliver(&mut r, 1, 2, piece(meta, &damaged, 0, 100));
    let hard_state = HardState {
        epoch: Epoch(2),
        voted_for: None,
    };
    let mut out = Vec::new();
    r.step(1, Input::HardStatePersisted { hard_state }, &mut out)
        .unwrap();
    let mut out = Vec::new();
    let refused = r.step(
        2,
        Input::Message {
            from: NodeId(2),
            msg: piece(meta, &damaged, 100, 100),
        },
        &mut out,
    );
    assert_eq!(
        refused,
        Err(StepError::BadMessage(MessageError::SnapshotDamaged {
            index: 9
        }))
    );
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::InstallSnapshot { .. })),
        "{out:?}"
    );
    assert_eq!(r.status().commit_index, 0);
    // It starts over: a piece beyond 0 is answered with 0.
    let out = deliver(&mut r, 3, 2, piece(meta, &file, 100, 100));
    assert_eq!(snapshot_replies(&out), vec![(100, 0)]);
}

// A follower told by a heartbeat that it may commit beyond its log (it restarted with a
// wiped or lost log, while the leader counts it as caught up) says where its log ends;
// an idle leader then probes it from there at once, instead of never sending anything.
#[test]
fn a_follower_that_lost_its_log_is_probed_even_by_an_idle_leader() {
    let mut r = replica(2, &[1, 2, 3], DurableState::default());
    let out = deliver(
        &mut r,
        1,
        1,
        msg(1, MessageBody::Heartbeat { commit_index: 7 }),
    );
    let hard_state = HardState {
        epoch: Epoch(1),
        voted_for: None,
    };
    let mut held = Vec::new();
    r.step(2, Input::HardStatePersisted { hard_state }, &mut held)
        .unwrap();
    let replies: Vec<MessageBody> = sends(&out)
        .into_iter()
        .chain(sends(&held))
        .map(|(_, m)| m.body)
        .collect();
    assert!(
        replies.contains(&MessageBody::AppendReply(AppendOutcome::Missing {
            last_index: 0
        })),
        "{replies:?}"
    );

    // The leader's side: a follower acknowledged up to 6, then says its log ends at 0.
    let (mut r, now_ms) = leader_with_follower_2_at_6();
    let missing = AppendOutcome::Missing { last_index: 0 };
    let out = deliver(
        &mut r,
        now_ms + 1,
        2,
        msg(2, MessageBody::AppendReply(missing)),
    );
    assert_eq!(
        appends_to(&out, 2),
        vec![(0, vec![1, 2, 3, 4])],
        "probed from the start of its log: {out:?}"
    );
    // A late `Missing` from before the follower caught up changes nothing.
    let accepted = AppendOutcome::Accepted { match_index: 6 };
    deliver(
        &mut r,
        now_ms + 2,
        2,
        msg(2, MessageBody::AppendReply(accepted)),
    );
    let late = AppendOutcome::Missing { last_index: 6 };
    let out = deliver(
        &mut r,
        now_ms + 3,
        2,
        msg(2, MessageBody::AppendReply(late)),
    );
    assert!(appends_to(&out, 2).is_empty(), "{out:?}");
    // A log that ends mid-way is probed right after its end, not one entry before.
    let partial = AppendOutcome::Missing { last_index: 3 };
    let out = deliver(
        &mut r,
        now_ms + 4,
        2,
        msg(2, MessageBody::AppendReply(partial)),
    );
    assert_eq!(appends_to(&out, 2), vec![(3, vec![4, 5, 6])], "{out:?}");
}
