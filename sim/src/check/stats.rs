//! The statistics a server reports (`srvr`, `stat`, `mntr`: request latencies) agree
//! with what its clients saw.
//!
//! A server counts every request it answers, from the frame's arrival to the answer on
//! its own clock. So, over what a running server answered since it last started:
//! - it counted at least the operations its clients saw answered (pings and connects
//!   count too);
//! - its smallest latency is no larger than the smallest a client measured for an
//!   operation it answered (a client's figure adds the network both ways), allowing for
//!   the server's clock drift and a millisecond of rounding;
//! - its minimum, mean and maximum are in that order;
//! - the zxid it reports as applied (`srvr`'s `Zxid`, `mntr`) is that of the committed
//!   entry at its applied index.
//!
//! Per connection (`cons`), checked as the run goes (`World` calls [`connection`]):
//! - once a client has its answer and nothing else outstanding on the connection, the
//!   server names that request as the connection's last (`lop`, `lxid`);
//! - the requests the server counts as outstanding on a connection (what the runtime sums
//!   for `globalOutstandingLimit`) include every request queued on it.
//!
//! Operators read these figures to tell a slow ensemble from a slow client; a server
//! whose figures are wrong sends them looking in the wrong place.

use super::{Failure, ServerFinal};
use crate::history::{History, Outcome};
use paddock_core::node::ConnStats;
use paddock_core::wire::OpCode;

/// The xid every auth packet carries (ZooKeeper's `AUTHPACKET_XID`).
const XID_AUTH: i32 = -4;

/// ZooKeeper's four-letter name of an operation in `cons` (`lop=`), written out here
/// independently of the server's table.
pub fn op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Ping => "PING",
        OpCode::CreateSession => "SESS",
        OpCode::CloseSession => "CLOS",
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => "CREA",
        OpCode::Delete | OpCode::DeleteContainer => "DELE",
        OpCode::SetData => "SETD",
        OpCode::SetAcl => "SETA",
        OpCode::Reconfig => "RECO",
        OpCode::Check => "CHEC",
        OpCode::Multi => "MULT",
        OpCode::MultiRead => "MLTR",
        OpCode::Sync => "SYNC",
        OpCode::Exists => "EXIS",
        OpCode::GetData => "GETD",
        OpCode::GetAcl => "GETA",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::GetAllChildrenNumber => "GETACN",
        OpCode::GetEphemerals => "GETE",
        OpCode::SetWatches | OpCode::SetWatches2 => "SETW",
        OpCode::CheckWatches => "CHKW",
        OpCode::RemoveWatches => "REMW",
        OpCode::AddWatch => "ADDW",
        OpCode::WhoAmI => "HOMI",
        OpCode::Auth => "AUTH",
        _ => "NA",
    }
}

/// What a server shows of one connection (`stats`, and `outstanding` as
/// `Node::conn_requests_outstanding` counts it), judged against what its client knows:
/// `answered` is the request (xid, opcode) the client just had answered with nothing
/// else outstanding, if that is why it is checked.
pub fn connection(
    stats: &ConnStats,
    outstanding: usize,
    answered: Option<(i32, OpCode)>,
) -> Result<(), String> {
    if (outstanding as u64) < stats.queued {
        return Err(format!(
            "counts {outstanding} requests outstanding with {} queued",
            stats.queued
        ));
    }
    // An auth packet travels with ZooKeeper's fixed xid, whatever the client counts.
    let on_the_wire = |xid, op| if op == OpCode::Auth { XID_AUTH } else { xid };
    if let Some((xid, op)) = answered
        && (stats.last_xid != on_the_wire(xid, op) || stats.last_op != op_name(op))
    {
        return Err(format!(
            "shows lop={} lxid={:#x} after answering {} (xid {xid:#x}) last",
            stats.last_op,
            stats.last_xid,
            op_name(op)
        ));
    }
    Ok(())
}

/// Checks every running server's latency figures against the history.
pub fn check(history: &History, servers: &[ServerFinal]) -> Result<(), Failure> {
    for server in servers {
        if let Some((zxid, _)) = history.payloads.get(&server.applied_index)
            && *zxid != server.applied_zxid
        {
            return Err(Failure::new(
                "stats",
                format!(
                    "server {} reports zxid {:#x} applied, but the entry at its applied index {} is {:#x}",
                    server.id.0, server.applied_zxid.0, server.applied_index, zxid.0
                ),
            ));
        }
        let answered: Vec<u64> = history
            .ops
            .iter()
            .filter(|op| op.server == server.id && op.invoked_ms >= server.started_ms)
            .filter(|op| matches!(op.outcome, Outcome::Reply { .. }))
            .filter_map(|op| Some(op.completed_ms? - op.invoked_ms))
            .collect();
        let stats = &server.latency;
        let fail = |what: String| {
            Err(Failure::new(
                "stats",
                format!("server {} reports {stats:?}: {what}", server.id.0),
            ))
        };
        if stats.count < answered.len() as u64 {
            return fail(format!(
                "fewer answers than the {} its clients saw since it started at {} ms",
                answered.len(),
                server.started_ms
            ));
        }
        if let Some(fastest) = answered.iter().min() {
            let drift_ppm = server.clock_drift_ppm.unsigned_abs();
            let allowed = fastest + fastest * drift_ppm / 1_000_000 + 1;
            if stats.min_ms > allowed {
                return fail(format!(
                    "its smallest latency is above the {fastest} ms a client measured for one of its answers"
                ));
            }
        }
        if stats.count > 0
            && (stats.min_ms > stats.max_ms
                || stats.total_ms < stats.min_ms.saturating_mul(stats.count)
                || stats.total_ms > stats.max_ms.saturating_mul(stats.count))
        {
            return fail("its minimum, mean and maximum are out of order".to_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::history::OpRecord;
    use paddock_core::ids::{NodeId, SessionId, Zxid};
    use paddock_core::node::LatencyStats;
    use paddock_core::wire::Request;

    fn op(server: u64, invoked_ms: u64, completed_ms: u64) -> OpRecord {
        OpRecord {
            client: 0,
            session: SessionId(1),
            server: NodeId(server),
            xid: 1,
            request: Request::Ping,
            ids: Vec::new(),
            invoked_ms,
            completed_ms: Some(completed_ms),
            outcome: Outcome::Reply {
                zxid: 0,
                err: 0,
                response: None,
            },
        }
    }

    fn server(latencies: &[u64], started_ms: u64) -> ServerFinal {
        let mut latency = LatencyStats::default();
        for ms in latencies {
            latency.record(*ms);
        }
        ServerFinal {
            id: NodeId(1),
            applied_index: 0,
            applied_zxid: Zxid(0),
            digest: 0,
            ephemerals: Default::default(),
            latency,
            started_ms,
            clock_drift_ppm: 20_000,
        }
    }

    #[test]
    fn a_connection_must_show_its_last_answer_and_count_its_queue() {
        let mut stats = ConnStats {
            session: None,
            timeout_ms: None,
            queued: 2,
            last_op: "GETD",
            last_xid: 7,
            last_zxid: 0,
            last_latency_ms: 0,
            latency: LatencyStats::default(),
        };
        connection(&stats, 2, Some((7, OpCode::GetData))).unwrap();
        connection(&stats, 3, None).unwrap();
        let err = connection(&stats, 1, None).unwrap_err();
        assert!(
            err.contains("1 requests outstanding with 2 queued"),
            "{err}"
        );
        let err = connection(&stats, 2, Some((8, OpCode::GetData))).unwrap_err();
        assert!(err.contains("lxid=0x7"), "{err}");
        let err = connection(&stats, 2, Some((7, OpCode::Create2))).unwrap_err();
        assert!(err.contains("after answering CREA"), "{err}");
        stats.last_op = "CREA";
        connection(&stats, 2, Some((7, OpCode::Create2))).unwrap();
        // Auth packets carry xid -4 whatever the client counted.
        stats.last_op = "AUTH";
        let err = connection(&stats, 2, Some((7, OpCode::Auth))).unwrap_err();
        assert!(err.contains("after answering AUTH"), "{err}");
        stats.last_xid = -4;
        connection(&stats, 2, Some((7, OpCode::Auth))).unwrap();
    }

    #[test]
    fn figures_that_match_the_clients_pass_and_wrong_ones_fail() {
        let history = History {
            ops: vec![op(1, 100, 110), op(1, 200, 205), op(2, 300, 301)],
            ..History::default()
        };
        check(&history, &[server(&[9, 4, 0], 0)]).unwrap();
        // Nothing counted.
        let failure = check(&history, &[server(&[], 0)]).unwrap_err();
        assert!(failure.event.contains("fewer answers"), "{}", failure.event);
        // Answers from before the restart are not this incarnation's.
        check(&history, &[server(&[], 250)]).unwrap();
        // A minimum above the fastest answer a client saw (5 ms, + 2 % + 1).
        let failure = check(&history, &[server(&[7, 9], 0)]).unwrap_err();
        assert!(failure.event.contains("smallest"), "{}", failure.event);
        check(&history, &[server(&[6, 9], 0)]).unwrap();
        // Out of order.
        let mut odd = server(&[3, 4], 0);
        odd.latency.max_ms = 2;
        let failure = check(&history, &[odd]).unwrap_err();
        assert!(failure.event.contains("out of order"), "{}", failure.event);
        // The applied zxid must be the committed entry's at the applied index.
        let mut history = history;
        history
            .payloads
            .insert(3, (Zxid(0x1_0000_0003), Vec::new()));
        let mut lagging = server(&[9, 4, 0], 0);
        lagging.applied_index = 3;
        let failure = check(&history, std::slice::from_ref(&lagging)).unwrap_err();
        assert!(failure.event.contains("reports zxid"), "{}", failure.event);
        lagging.applied_zxid = Zxid(0x1_0000_0003);
        check(&history, &[lagging]).unwrap();
    }
}
