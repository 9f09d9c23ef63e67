//! `Progress`: what a leader knows about one follower or observer, and how it paces
//! `Append` messages to it.
//!
//! Three states, as in Raft implementations: `Probe` (one message at a time until the
//! leader knows where the logs match), `Replicate` (optimistic pipelining, at most
//! `messages_in_flight_max` unacknowledged messages) and `Snapshot` (a snapshot is on its
//! way; nothing else is sent). Invariant: `match_index < next_index`. This module only
//! keeps the bookkeeping; `leader.rs` decides what to send.

use std::collections::VecDeque;

/// How the leader currently sends to one follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProgressState {
    /// Where the logs match is unknown; at most one `Append` is outstanding.
    Probe {
        /// True while a probe is outstanding; cleared by a reply or the next heartbeat
        /// reply, so a lost probe is retried.
        paused: bool,
    },
    /// The follower matches up to `match_index`; appends are pipelined.
    Replicate,
    /// A snapshot is being sent, one piece at a time; wait for its acknowledgement.
    Snapshot {
        /// The index the snapshot covers.
        index: u64,
        /// Where the piece in flight starts: the follower's `SnapshotReply` to it moves
        /// the transfer on, and a piece that got no answer is sent again from here.
        offset: u64,
        /// When the piece in flight was sent, in milliseconds; sent again after an
        /// election timeout without an answer.
        sent_at_ms: u64,
    },
}

/// The leader's view of one other member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log and be durable there.
    pub(crate) match_index: u64,
    /// Next index to send.
    pub(crate) next_index: u64,
    /// How messages are paced.
    pub(crate) state: ProgressState,
    /// The last index of each `Append` in flight, oldest first (pipeline window).
    pub(crate) in_flight: VecDeque<u64>,
    /// True when a message from this member arrived since the last check-quorum.
    pub(crate) recently_active: bool,
    /// When an `Append` was last sent to it or it last acknowledged progress, in
    /// milliseconds: a follower behind and quiet for a heartbeat interval is re-probed.
    pub(crate) last_progress_ms: u64,
    /// The highest commit index this member was told it may apply.
    pub(crate) commit_sent_index: u64,
}

impl Progress {
    /// A follower about which nothing is known yet, probed from `next_index`.
    pub(crate) fn new(next_index: u64) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe { paused: false },
            in_flight: VecDeque::new(),
            recently_active: false,
            last_progress_ms: 0,
            commit_sent_index: 0,
        }
    }

    /// True when no `Append` may be sent now.
    pub(crate) fn is_paused(&self, messages_in_flight_max: u32) -> bool {
        match self.state {
            ProgressState::Probe { paused } => paused,
            ProgressState::Replicate => self.in_flight.len() >= messages_in_flight_max as usize,
            ProgressState::Snapshot { .. } => true,
        }
    }

    /// Records that an `Append` ending at `last_index` was sent.
    pub(crate) fn on_append_sent(&mut self, last_index: u64) {
        match self.state {
            ProgressState::Probe { .. } => self.state = ProgressState::Probe { paused: true },
            ProgressState::Replicate => {
                self.next_index = self.next_index.max(last_index + 1);
                self.in_flight.push_back(last_index);
            }
            ProgressState::Snapshot { .. } => {
                unreachable!("no append is sent while a snapshot is outstanding")
            }
        }
    }

    /// Records an acknowledgement up to `match_index`; returns false for a stale one.
    /// A first acknowledgement ends probing or a snapshot transfer.
    ///
    /// A stale acknowledgement leaves a paused probe paused: it is a duplicate, or the
    /// follower's answer while the probed entries wait for its disk (it acknowledges
    /// only what is durable, and says so again when the disk catches up). Resending at
    /// once would get the same answer at once, a message storm for as long as the
    /// follower's fsync stalls; the next heartbeat reply resumes the probe instead.
    pub(crate) fn on_accepted(&mut self, match_index: u64) -> bool {
        if match_index <= self.match_index && self.match_index != 0 {
            return false;
        }
        self.match_index = self.match_index.max(match_index);
        self.next_index = self.next_index.max(self.match_index + 1);
        while self
            .in_flight
            .front()
            .is_some_and(|last| *last <= self.match_index)
        {
            self.in_flight.pop_front();
        }
        match self.state {
            ProgressState::Probe { .. } => self.become_replicate(),
            ProgressState::Snapshot { .. } => self.become_probe(self.match_index + 1),
            ProgressState::Replicate => {}
        }
        true
    }

    /// Starts pipelining after the match point.
    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.in_flight.clear();
    }

    /// Goes back to one-at-a-time probing from `next_index` (never at or below the match).
    pub(crate) fn become_probe(&mut self, next_index: u64) {
        self.state = ProgressState::Probe { paused: false };
        self.next_index = next_index.max(self.match_index + 1);
        self.in_flight.clear();
    }

    /// Records that the first piece of a snapshot covering `index` was sent at `now_ms`.
    pub(crate) fn become_snapshot(&mut self, index: u64, now_ms: u64) {
        self.state = ProgressState::Snapshot {
            index,
            offset: 0,
            sent_at_ms: now_ms,
        };
        self.in_flight.clear();
    }

    /// The follower answered the snapshot piece at `offset` holding `received_bytes`:
    /// returns where the next piece starts, or `None` for an answer to a piece no longer
    /// in flight (a duplicate or a late one), which changes nothing.
    pub(crate) fn on_snapshot_reply(
        &mut self,
        offset: u64,
        received_bytes: u64,
        now_ms: u64,
    ) -> Option<u64> {
        let ProgressState::Snapshot {
            offset: in_flight,
            sent_at_ms,
            ..
        } = &mut self.state
        else {
            return None;
        };
        if *in_flight != offset {
            return None;
        }
        *in_flight = received_bytes;
        *sent_at_ms = now_ms;
        Some(received_bytes)
    }

    /// A heartbeat reply shows the follower is alive: resume a paused probe, and free one
    /// slot of a full pipeline (its oldest `Append` may have been lost), so sending
    /// resumes and a lost message turns into a rejection or an acknowledgement.
    pub(crate) fn on_heartbeat_reply(&mut self, messages_in_flight_max: u32) {
        match self.state {
            ProgressState::Probe { .. } => self.state = ProgressState::Probe { paused: false },
            ProgressState::Replicate => {
                if self.in_flight.len() >= messages_in_flight_max as usize {
                    self.in_flight.pop_front();
                }
            }
            ProgressState::Snapshot { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A probe pauses after one message; the first acknowledgement switches to
    // pipelining, which stops at the window and drains with acknowledgements.
    #[test]
    fn probe_then_pipeline() {
        let mut p = Progress::new(5);
        assert!(!p.is_paused(2));
        p.on_append_sent(4);
        assert!(p.is_paused(2));
        assert!(p.on_accepted(4));
        assert_eq!(p.state, ProgressState::Replicate);
        assert_eq!(p.next_index, 5);
        p.on_append_sent(6);
        p.on_append_sent(8);
        assert_eq!(p.next_index, 9);
        assert!(p.is_paused(2));
        assert!(p.on_accepted(6));
        assert!(!p.is_paused(2));
        assert!(!p.on_accepted(5), "a stale ack is not progress");
        assert_eq!(p.match_index, 6);
        p.on_heartbeat_reply(2);
        assert_eq!(
            p.in_flight.len(),
            1,
            "a window that is not full keeps its messages"
        );
        p.on_append_sent(10);
        assert!(p.is_paused(2));
        p.on_heartbeat_reply(2);
        assert!(!p.is_paused(2), "a full window frees its oldest slot");
    }

    // A stale acknowledgement (a duplicate, or the follower's answer while the probed
    // entries wait for its disk) leaves the probe paused: no resend storm; the follower's
    // next acknowledgement, or a heartbeat reply, moves it on.
    #[test]
    fn a_stale_ack_does_not_resume_a_probe() {
        let mut p = Progress::new(1);
        assert!(p.on_accepted(6));
        p.become_probe(7);
        p.on_append_sent(9);
        assert!(!p.on_accepted(6));
        assert!(p.is_paused(2), "a stale ack does not resume a probe");
        p.on_heartbeat_reply(2);
        assert!(!p.is_paused(2), "a heartbeat reply does");
        p.on_append_sent(9);
        assert!(p.on_accepted(9));
        assert_eq!(
            (p.match_index, p.state.clone()),
            (9, ProgressState::Replicate)
        );
    }

    // Going back to probing never moves next_index to or below the match index.
    #[test]
    fn probe_never_below_match() {
        let mut p = Progress::new(1);
        assert!(p.on_accepted(7));
        p.become_probe(3);
        assert_eq!(p.next_index, 8);
    }

    // An acceptance of nothing (match 0: a late answer to a probe sent before the
    // snapshot began) ends a snapshot transfer into probing from index 1, not from a
    // wrapped-around index.
    #[test]
    fn an_acceptance_of_nothing_during_a_snapshot_probes_from_the_start() {
        let mut p = Progress::new(1);
        p.become_snapshot(10, 0);
        assert!(p.on_accepted(0));
        assert_eq!(p.state, ProgressState::Probe { paused: false });
        assert_eq!((p.match_index, p.next_index), (0, 1));
    }

    // A snapshot transfer pauses sending until the follower acknowledges it.
    #[test]
    fn snapshot_pauses_until_acknowledged() {
        let mut p = Progress::new(1);
        p.become_snapshot(10, 0);
        assert!(p.is_paused(8));
        assert_eq!(p.on_snapshot_reply(0, 100, 5), Some(100));
        assert_eq!(
            p.on_snapshot_reply(0, 100, 6),
            None,
            "a duplicate answer to a piece no longer in flight changes nothing"
        );
        assert_eq!(p.on_snapshot_reply(100, 150, 7), Some(150));
        assert!(p.is_paused(8), "pieces do not open the append pipeline");
        assert!(p.on_accepted(10));
        assert_eq!(p.state, ProgressState::Probe { paused: false });
        assert_eq!(p.next_index, 11);
    }
}
