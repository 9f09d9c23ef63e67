//! The write path between servers: the forward stream from any server to the leader, and
//! the leader turning writes into proposals against its prepared state.

use super::{Node, Output, Timer};
use crate::ids::{Epoch, NodeId};
use crate::node::message::{Origin, PeerMessage, Proposal, ProposalBody, Write, WriteOp};
use crate::tree::{Op, OpContext, Txn, TxnKind};

impl Node {
    /// Queues a write for the leader; `after_step` sends it.
    pub(super) fn forward_submit(&mut self, write: Write) {
        self.forwarding.unsent.push_back(write);
    }

    /// Sends held writes to the leader, or proposes them when this server leads. Returns
    /// true when something was proposed (replication then needs a step to send it).
    pub(super) fn forward_flush(&mut self, now_ms: u64, out: &mut Vec<Output>) -> bool {
        if self.forwarding.unsent.is_empty() {
            return false;
        }
        let Some(leader) = self.forwarding.leader else {
            return false;
        };
        if leader == self.id() {
            if self.leading.is_none() {
                return false;
            }
            // At `proposals_uncommitted_max` the rest wait here for commits to make room.
            let mut proposed = false;
            while !self.replica.proposals_full() {
                let Some(write) = self.forwarding.unsent.pop_front() else {
                    break;
                };
                proposed |= self.leader_take(now_ms, write, out);
            }
            return proposed;
        }
        let first_seq = self.forwarding.next_seq;
        let writes: Vec<Write> = self.forwarding.unsent.drain(..).collect();
        for write in &writes {
            self.forwarding
                .unacked
                .push_back((self.forwarding.next_seq, write.clone()));
            self.forwarding.next_seq += 1;
        }
        let epoch = self.forwarding.epoch;
        out.push(Output::Peer {
            to: leader,
            msg: PeerMessage::Forward {
                epoch,
                stream: self.forwarding.stream,
                first_seq,
                writes,
            },
        });
        self.timers
            .entry(Timer::ForwardRetransmit)
            .or_insert(now_ms + self.config.forward_retransmit_ms);
        false
    }

    /// Sends every unacknowledged write again (the network may have lost them).
    pub(super) fn forward_retransmit(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let Some(leader) = self.forwarding.leader.filter(|l| *l != self.id()) else {
            return;
        };
        let Some(first_seq) = self.forwarding.unacked.front().map(|(seq, _)| *seq) else {
            return;
        };
        let writes: Vec<Write> = self
            .forwarding
            .unacked
            .iter()
            .map(|(_, w)| w.clone())
            .collect();
        let epoch = self.forwarding.epoch;
        out.push(Output::Peer {
            to: leader,
            msg: PeerMessage::Forward {
                epoch,
                stream: self.forwarding.stream,
                first_seq,
                writes,
            },
        });
        self.timers.insert(
            Timer::ForwardRetransmit,
            now_ms + self.config.forward_retransmit_ms,
        );
    }

    /// The leader receives a follower's forwarded writes: takes them strictly in sequence
    /// order, once each, as long as it has room to propose, and acknowledges what it took.
    pub(super) fn leader_forwarded(
        &mut self,
        now_ms: u64,
        from: NodeId,
        (epoch, stream): (Epoch, u64),
        first_seq: u64,
        writes: Vec<Write>,
        out: &mut Vec<Output>,
    ) {
        let Some(leading) = &self.leading else {
            return;
        };
        if epoch != self.forwarding.epoch {
            return;
        }
        // A new stream (the follower restarted) numbers from 0; messages of a stream it
        // replaced may still be in flight and must never be taken again.
        let state = leading.streams.get(&from);
        if state.is_some_and(|st| st.retired.contains(&stream)) {
            return;
        }
        let mut expected = match state {
            Some(st) if st.stream == stream => st.next,
            _ => 0,
        };
        let mut proposed = false;
        for (offset, write) in writes.into_iter().enumerate() {
            let seq = first_seq.saturating_add(offset as u64);
            if seq < expected {
                continue;
            }
            // Out of order, or no room for more proposals: the acknowledgement below stops
            // at `expected`, and the follower sends the rest again.
            if seq > expected || self.replica.proposals_full() {
                break;
            }
            proposed |= self.leader_take(now_ms, write, out);
            expected += 1;
        }
        if let Some(leading) = &mut self.leading {
            let st = leading.streams.entry(from).or_insert(super::Stream {
                stream,
                next: 0,
                retired: std::collections::VecDeque::new(),
            });
            if st.stream != stream {
                st.retired.push_back(st.stream);
                if st.retired.len() > super::STREAMS_RETIRED_MAX {
                    st.retired.pop_front();
                }
                st.stream = stream;
            }
            st.next = expected;
        }
        out.push(Output::Peer {
            to: from,
            msg: PeerMessage::ForwardAck {
                epoch,
                stream,
                next_seq: expected,
            },
        });
        if proposed {
            self.proposals_flush(now_ms, out);
        }
    }

    /// Validates a write against the prepared state and proposes it. Returns true when a
    /// proposal was made; a write that cannot be proposed fails its connection.
    pub(super) fn leader_take(&mut self, now_ms: u64, write: Write, out: &mut Vec<Output>) -> bool {
        let (Some(leading), Some(zxid)) = (&self.leading, self.replica.next_proposal_zxid()) else {
            self.write_refuse(write.origin, out);
            return false;
        };
        // `sessions_max` counts the sessions prepared here, so it holds however many
        // connects are in flight: one more is refused, and its connection closed.
        if matches!(write.op, WriteOp::Tree(Op::CreateSession { .. }))
            && leading.sessions.len() >= self.config.limits.sessions_max as usize
        {
            self.write_refuse(write.origin, out);
            return false;
        }
        // A request the leader takes is activity on its session, wherever the client
        // is connected: a follower's touch may arrive a tick later than its forward.
        self.sessions.touch(write.session, now_ms);
        let body = match &write.op {
            WriteOp::Sync => ProposalBody::Sync,
            WriteOp::Tree(op) => {
                let ctx = OpContext {
                    zxid,
                    time_ms: i64::try_from(now_ms).unwrap_or(i64::MAX),
                    session: write.session,
                    session_live: leading
                        .sessions
                        .get(write.session)
                        .is_some_and(|s| !s.closing),
                    ids: write.ids.clone(),
                };
                match leading.tree.prepare(op, &ctx) {
                    Ok(txn) => ProposalBody::Txn(txn),
                    Err(error) => ProposalBody::Failed { error },
                }
            }
        };
        let proposal = Proposal {
            origin: write.origin,
            body,
        };
        match self.replica.propose(proposal.encode()) {
            Ok(proposed_zxid) => {
                assert_eq!(
                    proposed_zxid, zxid,
                    "replication assigned another zxid than announced"
                );
                if let ProposalBody::Txn(txn) = proposal.body {
                    self.leader_prepared_apply(now_ms, proposal.origin, txn);
                }
                true
            }
            Err(_) => {
                self.write_refuse(write.origin, out);
                false
            }
        }
    }

    /// Advances the prepared state by a proposed transaction.
    fn leader_prepared_apply(&mut self, now_ms: u64, origin: Option<Origin>, txn: Txn) {
        let Some(leading) = &mut self.leading else {
            return;
        };
        leading.tree.apply(&txn);
        match &txn.kind {
            TxnKind::CreateSession {
                session,
                password,
                timeout_ms,
            } => {
                let timeout = u32::try_from(*timeout_ms).unwrap_or(0);
                let _ = leading
                    .sessions
                    .create(*session, *password, timeout, now_ms);
            }
            TxnKind::CloseSession { session } => {
                leading.sessions.remove(*session);
            }
            _ => {}
        }
        leading.pending.push_back((origin, txn));
    }

    fn write_refuse(&mut self, origin: Option<Origin>, out: &mut Vec<Output>) {
        let Some(origin) = origin else {
            return;
        };
        if origin.node == self.id() {
            self.conn_close(origin.conn, out);
        } else {
            out.push(Output::Peer {
                to: origin.node,
                msg: PeerMessage::ForwardRefused { origin },
            });
        }
    }

    /// Lets replication persist and send what `propose` queued (`Input::Flush`: no timer
    /// fires). Nothing it emits is applied here: entries it could report committed wait
    /// in the apply queue for the next step.
    pub(super) fn proposals_flush(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        self.replica_step(now_ms, crate::replication::Input::Flush, out);
    }
}
