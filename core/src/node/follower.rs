//! The half of a node that does not lead ([`Follower`], the node's `Role::Follower`): the
//! forward stream that carries its clients' writes to the leader, in order and once each,
//! and the touches that keep its clients' sessions alive there. A server is in this role
//! from its start, whenever replication reports a change of leader or epoch, and while it
//! is elected but not serving yet (its writes then wait in the route until it leads).

use std::collections::{BTreeSet, VecDeque};

use super::{Node, Output, Role};
use crate::ids::{ConnId, Epoch, NodeId, SessionId};
use crate::node::message::{PeerMessage, Write};

/// This server's stream of writes to the leader the route names, and its timers.
#[derive(Debug)]
pub(super) struct Follower {
    /// This server's stream id (random per start and per leader).
    stream: u64,
    /// Sequence number the next sent write gets.
    next_seq: u64,
    /// Sent, not yet acknowledged, with their sequence numbers.
    unacked: VecDeque<(u64, Write)>,
    /// When to send the unacknowledged writes again.
    retransmit_at: Option<u64>,
    /// Sessions that showed life here since the last touch sent to the leader.
    touched: BTreeSet<SessionId>,
    /// When to send the next touch.
    touch_at: Option<u64>,
}

impl Follower {
    /// A follower whose stream to the leader is numbered `stream`.
    pub(super) fn new(stream: u64) -> Follower {
        Follower {
            stream,
            next_seq: 0,
            unacked: VecDeque::new(),
            retransmit_at: None,
            touched: BTreeSet::new(),
            touch_at: None,
        }
    }

    /// The earliest of its timers.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        match (self.retransmit_at, self.touch_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The stream's id.
    #[cfg(test)]
    pub(super) fn stream(&self) -> u64 {
        self.stream
    }

    /// Writes sent and not yet acknowledged (`MemoryUse::forwarded` with the route's).
    pub(super) fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// `session` showed life on a connection here: the leader hears of it with the next
    /// touch.
    pub(super) fn touch(&mut self, session: SessionId) {
        self.touched.insert(session);
    }

    /// The message carrying `writes`, the first numbered `first_seq`, in this stream to
    /// the leader of `epoch`.
    fn forward(&self, epoch: Epoch, first_seq: u64, writes: Vec<Write>) -> PeerMessage {
        PeerMessage::Forward {
            epoch,
            stream: self.stream,
            first_seq,
            writes,
        }
    }

    /// The leader changed: a new stream, numbered `stream`, replaces the old one, whose
    /// unacknowledged writes are forgotten. Returns the connections they came from (their
    /// outcome is unknown). Touches not sent yet stay, for the next leader that is another
    /// server (none are sent while no leader is known or this server is the leader).
    fn restart(&mut self, stream: u64) -> impl Iterator<Item = ConnId> {
        self.stream = stream;
        self.next_seq = 0;
        self.retransmit_at = None;
        std::mem::take(&mut self.unacked)
            .into_iter()
            .filter_map(|(_, w)| w.origin.map(|o| o.conn))
    }
}

impl Node {
    /// Sends the writes waiting in the route to `leader` (another server) as the next in
    /// this server's stream, and arms their retransmission.
    pub(super) fn follower_send(&mut self, now_ms: u64, leader: NodeId, out: &mut Vec<Output>) {
        let Role::Follower(follower) = &mut self.role else {
            return;
        };
        let first_seq = follower.next_seq;
        let writes: Vec<Write> = self.route.unsent.drain(..).collect();
        for write in &writes {
            follower
                .unacked
                .push_back((follower.next_seq, write.clone()));
            follower.next_seq += 1;
        }
        out.push(Output::Peer {
            to: leader,
            msg: follower.forward(self.route.epoch, first_seq, writes),
        });
        follower
            .retransmit_at
            .get_or_insert(now_ms + self.config.forward_retransmit_ms);
    }

    /// The leader acknowledged this server's writes before `next_seq` (of its stream
    /// `stream` in `epoch`): they are forgotten, and the retransmission stops once none
    /// is left. An acknowledgement of another stream, epoch or leader is stale.
    pub(super) fn follower_acked(
        &mut self,
        from: NodeId,
        (epoch, stream): (Epoch, u64),
        next_seq: u64,
    ) {
        let Role::Follower(follower) = &mut self.role else {
            return;
        };
        if epoch != self.route.epoch || stream != follower.stream || Some(from) != self.route.leader
        {
            return;
        }
        while follower
            .unacked
            .front()
            .is_some_and(|(seq, _)| *seq < next_seq)
        {
            follower.unacked.pop_front();
        }
        if follower.unacked.is_empty() {
            follower.retransmit_at = None;
        }
    }

    /// The leader changed (the route names the new one once this returns): the stream
    /// restarts, numbered `stream`. Returns the connections of the writes sent and not
    /// acknowledged.
    pub(super) fn follower_restart(&mut self, stream: u64) -> Vec<ConnId> {
        let Role::Follower(follower) = &mut self.role else {
            return Vec::new();
        };
        follower.restart(stream).collect()
    }

    /// Arms the touch timer when sessions showed life and none is armed.
    pub(super) fn follower_touch_arm(&mut self, now_ms: u64) {
        if let Role::Follower(follower) = &mut self.role
            && !follower.touched.is_empty()
            && follower.touch_at.is_none()
        {
            follower.touch_at = Some(now_ms + (self.config.tick_ms / 2).max(1));
        }
    }

    /// Fires the follower's timers that are due: retransmission, then the touch.
    pub(super) fn follower_timers(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let Role::Follower(follower) = &mut self.role else {
            return;
        };
        if follower.retransmit_at.is_some_and(|at| at <= now_ms) {
            follower.retransmit_at = None;
            self.follower_retransmit(now_ms, out);
        }
        let Role::Follower(follower) = &mut self.role else {
            return;
        };
        if follower.touch_at.is_some_and(|at| at <= now_ms) {
            follower.touch_at = None;
            self.follower_touch_send(out);
        }
    }

    /// Sends every unacknowledged write again (the network may have lost them).
    fn follower_retransmit(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let Role::Follower(follower) = &mut self.role else {
            return;
        };
        let Some(leader) = self.route.leader.filter(|l| *l != self.config.id()) else {
            return;
        };
        let Some(first_seq) = follower.unacked.front().map(|(seq, _)| *seq) else {
            return;
        };
        let writes: Vec<Write> = follower.unacked.iter().map(|(_, w)| w.clone()).collect();
        out.push(Output::Peer {
            to: leader,
            msg: follower.forward(self.route.epoch, first_seq, writes),
        });
        follower.retransmit_at = Some(now_ms + self.config.forward_retransmit_ms);
    }

    /// Tells the leader which sessions showed life here (not when this server is the
    /// leader, elected and not serving yet: its own clients touch its sessions).
    fn follower_touch_send(&mut self, out: &mut Vec<Output>) {
        let Role::Follower(follower) = &mut self.role else {
            return;
        };
        let sessions: Vec<SessionId> = std::mem::take(&mut follower.touched).into_iter().collect();
        if let (Some(leader), false) = (self.route.leader, sessions.is_empty())
            && leader != self.config.id()
        {
            out.push(Output::Peer {
                to: leader,
                msg: PeerMessage::Touch { sessions },
            });
        }
    }
}
