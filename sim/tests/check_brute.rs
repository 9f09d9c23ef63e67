//! Cross-check of the main write checker against the brute-force linearizability checker
//! on many small generated histories of one register (/r, written with setData, with and
//! without a version). Legal histories (executed in an order consistent with real time)
//! must pass both; whenever the brute force finds no legal order, the main checker must
//! reject too (it trusts the committed order, so it may reject more, never less).
#![allow(clippy::unwrap_used)]

use paddock_core::acl::Acl;
use paddock_core::ids::{ConnId, Epoch, NodeId, SessionId, Zxid};
use paddock_core::node::{Origin, Proposal, ProposalBody};
use paddock_core::tree::{CreateOp, CreateOpcode, DataTree, Op, OpContext, SetDataOp, TreeConfig};
use paddock_core::wire::{CreateRequest, CreateResponse, Request, Response, SetDataRequest};
use paddock_sim::check::{self, brute};
use paddock_sim::history::{History, OpRecord, Outcome};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Builds a history and its committed sequence by executing ops on a real tree.
struct Builder {
    history: History,
    tree: DataTree,
    counter: u32,
}

impl Builder {
    fn new(clients: u32) -> Builder {
        let mut b = Builder {
            history: History::default(),
            tree: DataTree::new(TreeConfig::default()),
            counter: 0,
        };
        for c in 0..clients {
            b.history
                .connected(ConnId(u64::from(c) + 1), c, NodeId(1), 0, Vec::new());
            let session = SessionId(i64::from(c) + 100);
            let op = Op::CreateSession {
                session,
                password: [0; 16],
                timeout_ms: 6000,
            };
            b.execute(c, 0, session, &op);
        }
        let create = Op::Create(CreateOp {
            opcode: CreateOpcode::Create,
            path: "/r".into(),
            data: Some(Vec::new()),
            acl: Acl::open_unsafe(),
            flags: 0,
        });
        let zxid = b.execute(0, 1, SessionId(100), &create).0;
        b.history.ops.push(OpRecord {
            client: 0,
            session: SessionId(100),
            server: NodeId(1),
            xid: 1,
            request: Request::Create(CreateRequest {
                path: "/r".into(),
                data: Some(Vec::new()),
                acl: Acl::open_unsafe(),
                flags: 0,
            }),
            ids: Vec::new(),
            invoked_ms: 0,
            completed_ms: Some(1),
            outcome: Outcome::Reply {
                zxid: zxid.as_wire(),
                err: 0,
                response: Some(Response::Create(CreateResponse { path: "/r".into() })),
            },
        });
        b
    }

    /// Prepares and commits `op` of `client`; returns the zxid and the reply.
    fn execute(
        &mut self,
        client: u32,
        xid: i32,
        session: SessionId,
        op: &Op,
    ) -> (Zxid, i32, Option<Response>) {
        self.counter += 1;
        let zxid = Zxid::new(Epoch(1), self.counter);
        let ctx = OpContext {
            zxid,
            time_ms: 0,
            session,
            session_live: true,
            ids: Vec::new(),
        };
        let (body, err, response) = match self.tree.prepare(op, &ctx) {
            Ok(txn) => {
                let applied = self.tree.apply(&txn);
                let response = match applied.results.first() {
                    Some(paddock_core::tree::OpResult::DataSet(stat)) => {
                        Some(Response::Stat(*stat))
                    }
                    _ => None,
                };
                (ProposalBody::Txn(txn), 0, response)
            }
            Err(error) => (ProposalBody::Failed { error }, error.code(), None),
        };
        let origin = Origin {
            node: NodeId(1),
            conn: ConnId(u64::from(client) + 1),
            seq: 0,
            xid,
        };
        let proposal = Proposal {
            origin: Some(origin),
            body,
        };
        let index = u64::from(self.counter);
        self.history
            .payloads
            .insert(index, (zxid, proposal.encode()));
        (zxid, err, response)
    }
}

struct Call {
    request: SetDataRequest,
    invoked_ms: u64,
    completed_ms: u64,
    committed: bool,
    answered: bool,
}

/// A history of `calls` register calls, one client each. With `legal`, calls take effect
/// in an order consistent with their times; otherwise times are random. `mutate` changes
/// one reply afterwards.
fn generate(rng: &mut ChaCha8Rng, legal: bool, mutate: bool) -> History {
    let count = rng.random_range(2..7u32);
    let mut calls: Vec<Call> = (0..count)
        .map(|k| {
            let version = if rng.random_range(0..2) == 0 {
                -1
            } else {
                rng.random_range(0..3)
            };
            let fate = rng.random_range(0..10);
            Call {
                request: SetDataRequest {
                    path: "/r".into(),
                    data: Some(vec![b'a' + k as u8]),
                    version,
                },
                invoked_ms: 0,
                completed_ms: 0,
                committed: fate != 0,
                answered: fate > 1,
            }
        })
        .collect();
    // The order the calls take effect in.
    let mut order: Vec<usize> = (0..calls.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    for (rank, k) in order.iter().enumerate() {
        let call = &mut calls[*k];
        if legal {
            let point = 20 * (rank as u64 + 1);
            call.invoked_ms = point - rng.random_range(0..15);
            call.completed_ms = point + rng.random_range(0..15);
        } else {
            call.invoked_ms = rng.random_range(2..80);
            call.completed_ms = call.invoked_ms + rng.random_range(0..30);
        }
    }
    let mut b = Builder::new(count + 1);
    let mut outcomes = vec![Outcome::Lost; calls.len()];
    for k in &order {
        let call = &calls[*k];
        if !call.committed {
            continue;
        }
        let client = *k as u32 + 1;
        let op = Op::SetData(SetDataOp {
            path: call.request.path.clone(),
            data: call.request.data.clone(),
            version: call.request.version,
        });
        let (zxid, err, response) = b.execute(client, 1, SessionId(i64::from(client) + 100), &op);
        if call.answered {
            outcomes[*k] = Outcome::Reply {
                zxid: zxid.as_wire(),
                err,
                response,
            };
        }
    }
    if mutate {
        let k = rng.random_range(0..calls.len());
        if let Outcome::Reply { err, response, .. } = &mut outcomes[k] {
            match response {
                Some(Response::Stat(stat)) => stat.version += 1,
                _ => *err = 0,
            }
        }
    }
    for (k, (call, outcome)) in calls.into_iter().zip(outcomes).enumerate() {
        let client = k as u32 + 1;
        b.history.ops.push(OpRecord {
            client,
            session: SessionId(i64::from(client) + 100),
            server: NodeId(1),
            xid: 1,
            request: Request::SetData(call.request),
            ids: Vec::new(),
            invoked_ms: call.invoked_ms,
            completed_ms: Some(call.completed_ms),
            outcome,
        });
    }
    b.history
}

fn verdicts(history: &History) -> (bool, bool) {
    let main = check::check_history(history).is_ok();
    let calls = brute::register_calls(history, "/r");
    let brute = brute::linearizable(&calls, (Vec::new(), 0)).unwrap();
    (main, brute)
}

// Histories executed in real-time order pass both checkers.
#[test]
fn legal_histories_pass_both() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for round in 0..400 {
        let history = generate(&mut rng, true, false);
        assert_eq!(
            verdicts(&history),
            (true, true),
            "round {round}: {history:#?}"
        );
    }
}

// On random and mutated histories, the main checker never accepts what the brute force
// rejects, and both reject a good share of them.
#[test]
fn main_checker_rejects_whatever_brute_force_rejects() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (mut both_reject, mut both_accept) = (0, 0);
    for round in 0..600 {
        let legal = rng.random_range(0..2) == 0;
        let mutate = !legal || rng.random_range(0..2) == 0;
        let history = generate(&mut rng, legal, mutate);
        let (main, brute) = verdicts(&history);
        assert!(
            !main || brute,
            "round {round}: main accepts a non-linearizable history: {history:#?}"
        );
        both_reject += usize::from(!main && !brute);
        both_accept += usize::from(main && brute);
    }
    assert!(both_reject > 100, "{both_reject} rejected by both");
    assert!(both_accept > 50, "{both_accept} accepted by both");
}
