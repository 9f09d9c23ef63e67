//! Checks of order and presence over the history once the replay placed every op in the
//! committed sequence:
//! - durability: every op answered through the log (a write, even with an error code,
//!   or a sync) is in the committed sequence at the zxid its reply carried;
//! - real-time order of writes: A answered before B was sent implies zxid(A) < zxid(B);
//! - a session's reply zxids never go back, across reconnects;
//! - a sync, and the session's next read after it, reflect every write answered before
//!   the sync was sent.
//!
//! Each is a sort plus a sweep: O(ops log ops).

use std::collections::BTreeMap;

use super::Failure;
use super::expect::{self, Kind};
use super::model::{Replayed, describe};
use crate::history::{History, OpRecord, Outcome};

fn reply_zxid(op: &OpRecord) -> Option<i64> {
    match op.outcome {
        Outcome::Reply { zxid, .. } => Some(zxid),
        _ => None,
    }
}

fn through_log(op: &OpRecord) -> bool {
    matches!(
        expect::kind(&op.request, op.session),
        Kind::Write(_) | Kind::Sync(_)
    )
}

/// Every op answered through the log is committed at its reply's zxid. Ops answered
/// beyond the replayed part of the sequence (after a hole in the history) are skipped.
pub fn durability(history: &History, replayed: &Replayed, complete: bool) -> Result<(), Failure> {
    for (position, op) in history.ops.iter().enumerate() {
        let Some(zxid) = reply_zxid(op) else {
            continue;
        };
        if !through_log(op) || (!complete && zxid > replayed.last_zxid.as_wire()) {
            continue;
        }
        match replayed.commits.get(&position) {
            None => {
                return Err(Failure::new(
                    "durability",
                    format!(
                        "{} was answered at zxid 0x{zxid:x} but is not in the committed sequence",
                        describe(position, op)
                    ),
                ));
            }
            Some((index, committed)) if committed.as_wire() != zxid => {
                return Err(Failure::new(
                    "durability",
                    format!(
                        "{} was answered at zxid 0x{zxid:x} but committed at index {index} zxid {committed}",
                        describe(position, op)
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Real-time order of committed writes: sweep invocations and answers by time; an
/// answer at the same millisecond as an invocation does not count as "before".
pub fn real_time(history: &History, replayed: &Replayed) -> Result<(), Failure> {
    // (time, 0 = invocation / 1 = answer, op position)
    let mut moments: Vec<(u64, u8, usize)> = Vec::new();
    for (position, op) in history.ops.iter().enumerate() {
        if !replayed.commits.contains_key(&position) {
            continue;
        }
        moments.push((op.invoked_ms, 0, position));
        if let (Some(done), Some(_)) = (op.completed_ms, reply_zxid(op)) {
            moments.push((done, 1, position));
        }
    }
    moments.sort_unstable();
    let mut latest: Option<(u64, usize)> = None;
    for (_, moment, position) in moments {
        let Some((_, zxid)) = replayed.commits.get(&position) else {
            continue;
        };
        if moment == 1 {
            if latest.is_none_or(|(z, _)| zxid.0 > z) {
                latest = Some((zxid.0, position));
            }
            continue;
        }
        if let Some((answered, before)) = latest
            && zxid.0 < answered
        {
            return Err(Failure::new(
                "linearizable",
                format!(
                    "{} committed at zxid {zxid}, before {} which was answered (zxid 0x{answered:x}) before it was sent",
                    describe(position, &history.ops[position]),
                    describe(before, &history.ops[before]),
                ),
            ));
        }
    }
    Ok(())
}

/// A session's reply zxids never go back; checked per client, since a client carries its
/// last zxid across reconnects (and into a new session).
pub fn monotonic_sessions(history: &History) -> Result<(), Failure> {
    let mut last: BTreeMap<u32, (i64, usize)> = BTreeMap::new();
    for (position, op) in history.ops.iter().enumerate() {
        let Some(zxid) = reply_zxid(op) else {
            continue;
        };
        if matches!(expect::kind(&op.request, op.session), Kind::Other) {
            continue;
        }
        if let Some((seen, before)) = last.get(&op.client).copied()
            && zxid < seen
        {
            return Err(Failure::new(
                "reads",
                format!(
                    "{} answered at zxid 0x{zxid:x}, after {} was answered at 0x{seen:x}: the session went back in time",
                    describe(position, op),
                    describe(before, &history.ops[before])
                ),
            ));
        }
        last.insert(op.client, (zxid, position));
    }
    Ok(())
}

/// A sync reflects every write answered before it was sent, and so does the session's
/// next read.
pub fn read_after_sync(history: &History, replayed: &Replayed) -> Result<(), Failure> {
    let mut answers: Vec<(u64, i64)> = history
        .ops
        .iter()
        .enumerate()
        .filter(|(p, op)| {
            replayed.commits.contains_key(p)
                && matches!(expect::kind(&op.request, op.session), Kind::Write(_))
        })
        .filter_map(|(_, op)| Some((op.completed_ms?, reply_zxid(op)?)))
        .collect();
    answers.sort_unstable();
    let mut syncs: Vec<usize> = history
        .ops
        .iter()
        .enumerate()
        .filter(|(_, op)| {
            matches!(expect::kind(&op.request, op.session), Kind::Sync(_))
                && reply_zxid(op).is_some()
        })
        .map(|(p, _)| p)
        .collect();
    syncs.sort_by_key(|p| history.ops[*p].invoked_ms);
    let next_read = next_reads(history);
    let (mut cursor, mut needed) = (0, 0i64);
    for sync in syncs {
        let op = &history.ops[sync];
        while let Some((done, zxid)) = answers.get(cursor).copied()
            && done < op.invoked_ms
        {
            needed = needed.max(zxid);
            cursor += 1;
        }
        let mut after = vec![sync];
        after.extend(next_read.get(&sync).copied());
        for position in after {
            let read = &history.ops[position];
            if reply_zxid(read).is_some_and(|z| z < needed) {
                return Err(Failure::new(
                    "reads",
                    format!(
                        "{} answered at an older zxid than 0x{needed:x}, a write answered before {} was sent",
                        describe(position, read),
                        describe(sync, op)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// For each sync, the same session's next read that got a reply.
fn next_reads(history: &History) -> BTreeMap<usize, usize> {
    let mut pending: BTreeMap<u32, usize> = BTreeMap::new();
    let mut next = BTreeMap::new();
    for (position, op) in history.ops.iter().enumerate() {
        let key = op.client;
        match expect::kind(&op.request, op.session) {
            Kind::Sync(_) if reply_zxid(op).is_some() => {
                pending.insert(key, position);
            }
            Kind::Read if reply_zxid(op).is_some() => {
                if let Some(sync) = pending.remove(&key) {
                    next.insert(sync, position);
                }
            }
            _ => {}
        }
    }
    next
}
