//! A brute-force linearizability checker for tiny histories of one register (a znode's
//! data and version) with read, write and compare-and-set (setData with a version)
//! calls. It tries every order consistent with real time — a call answered before
//! another was sent comes first — and accepts if one of them explains every answer.
//! Calls without an answer (lost) may take effect at any point after they were sent, or
//! never. It exists to cross-check the main write checker, which instead trusts the
//! committed order as the witness; it is exponential and meant for a dozen calls.

use std::collections::BTreeSet;

use paddock_core::error::ZkError;
use paddock_core::wire::{Request, Response};

use crate::history::{History, Outcome};

/// The most calls `linearizable` accepts (the search is exponential).
pub const CALLS_MAX: usize = 16;

/// What a call asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOp {
    /// Read data and version.
    Read,
    /// Write unconditionally.
    Write(Vec<u8>),
    /// Write if the version is `expected_version`.
    Cas {
        /// The version the caller expects.
        expected_version: i32,
        /// The new data.
        data: Vec<u8>,
    },
}

/// What a call was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterResult {
    /// The write happened; the register's version after it.
    Written(i32),
    /// The compare-and-set found another version.
    BadVersion,
    /// The read saw this data and version.
    Read(Vec<u8>, i32),
}

/// One call of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterCall {
    /// When it was sent, ms.
    pub invoked_ms: u64,
    /// Its answer and when it arrived; `None` when it never came (lost or pending).
    pub answer: Option<(u64, RegisterResult)>,
    /// What it asks.
    pub op: RegisterOp,
}

type State = (Vec<u8>, i32);

fn step(state: &State, op: &RegisterOp) -> (State, RegisterResult) {
    match op {
        RegisterOp::Read => (
            state.clone(),
            RegisterResult::Read(state.0.clone(), state.1),
        ),
        RegisterOp::Write(data) => {
            let next = (data.clone(), state.1 + 1);
            let version = next.1;
            (next, RegisterResult::Written(version))
        }
        RegisterOp::Cas {
            expected_version,
            data,
        } if *expected_version == state.1 => {
            let next = (data.clone(), state.1 + 1);
            let version = next.1;
            (next, RegisterResult::Written(version))
        }
        RegisterOp::Cas { .. } => (state.clone(), RegisterResult::BadVersion),
    }
}

/// True when some order of `calls` consistent with real time explains every answer,
/// starting from `initial` (data, version). `None` when there are more than
/// [`CALLS_MAX`] calls.
pub fn linearizable(calls: &[RegisterCall], initial: State) -> Option<bool> {
    if calls.len() > CALLS_MAX {
        return None;
    }
    let mut seen = BTreeSet::new();
    Some(search(calls, 0, &initial, &mut seen))
}

/// Depth-first over "which call takes effect next": `done` is the set of calls already
/// placed (a bit per call); a (set, state) pair that failed once fails again.
fn search(
    calls: &[RegisterCall],
    done: u32,
    state: &State,
    seen: &mut BTreeSet<(u32, State)>,
) -> bool {
    let placed = |i: usize| done & (1 << i) != 0;
    // Finished when every answered call is placed; unanswered ones may never happen.
    if (0..calls.len()).all(|i| placed(i) || calls[i].answer.is_none()) {
        return true;
    }
    if !seen.insert((done, state.clone())) {
        return false;
    }
    // The earliest answer among calls not yet placed: a call sent after it cannot go next.
    let horizon = (0..calls.len())
        .filter(|i| !placed(*i))
        .filter_map(|i| calls[i].answer.as_ref().map(|(at, _)| *at))
        .min()
        .unwrap_or(u64::MAX);
    for (i, call) in calls.iter().enumerate() {
        if placed(i) || call.invoked_ms > horizon {
            continue;
        }
        // Strictly after: an answer in the same millisecond as a send is not "before".
        let blocked = (0..calls.len()).any(|j| {
            j != i
                && !placed(j)
                && calls[j]
                    .answer
                    .as_ref()
                    .is_some_and(|(at, _)| *at < call.invoked_ms)
        });
        if blocked {
            continue;
        }
        let (next, result) = step(state, &call.op);
        let explains = call.answer.as_ref().is_none_or(|(_, r)| *r == result);
        if explains && search(calls, done | (1 << i), &next, seen) {
            return true;
        }
    }
    false
}

/// The register calls on `path` in a history: getData is a read, setData with version -1
/// a write, setData with another version a compare-and-set.
pub fn register_calls(history: &History, path: &str) -> Vec<RegisterCall> {
    let mut calls = Vec::new();
    for op in &history.ops {
        let call = match &op.request {
            Request::GetData(r) if r.path == path => RegisterOp::Read,
            Request::SetData(r) if r.path == path && r.version == -1 => {
                RegisterOp::Write(r.data.clone().unwrap_or_default())
            }
            Request::SetData(r) if r.path == path => RegisterOp::Cas {
                expected_version: r.version,
                data: r.data.clone().unwrap_or_default(),
            },
            _ => continue,
        };
        let result = match &op.outcome {
            Outcome::Reply {
                err: 0,
                response: Some(Response::Stat(stat)),
                ..
            } => Some(RegisterResult::Written(stat.version)),
            Outcome::Reply {
                err: 0,
                response: Some(Response::GetData(r)),
                ..
            } => Some(RegisterResult::Read(
                r.data.clone().unwrap_or_default(),
                r.stat.version,
            )),
            Outcome::Reply { err, .. } if *err == ZkError::BadVersion.code() => {
                Some(RegisterResult::BadVersion)
            }
            _ => None,
        };
        calls.push(RegisterCall {
            invoked_ms: op.invoked_ms,
            answer: result.and_then(|r| Some((op.completed_ms?, r))),
            op: call,
        });
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        invoked_ms: u64,
        answered_ms: u64,
        op: RegisterOp,
        result: RegisterResult,
    ) -> RegisterCall {
        RegisterCall {
            invoked_ms,
            answer: Some((answered_ms, result)),
            op,
        }
    }

    // Two overlapping writes may take effect in either order, but a read answered after
    // both cannot see the first one's data at the last version.
    #[test]
    fn overlapping_writes_and_a_late_read() {
        let w1 = call(
            0,
            10,
            RegisterOp::Write(b"a".to_vec()),
            RegisterResult::Written(2),
        );
        let w2 = call(
            1,
            9,
            RegisterOp::Write(b"b".to_vec()),
            RegisterResult::Written(1),
        );
        let good = call(
            20,
            21,
            RegisterOp::Read,
            RegisterResult::Read(b"a".to_vec(), 2),
        );
        let bad = call(
            20,
            21,
            RegisterOp::Read,
            RegisterResult::Read(b"b".to_vec(), 2),
        );
        let initial = (Vec::new(), 0);
        assert_eq!(
            linearizable(&[w1.clone(), w2.clone(), good], initial.clone()),
            Some(true)
        );
        assert_eq!(linearizable(&[w1, w2, bad], initial), Some(false));
    }

    // A write answered before another was sent must take effect first; a lost write may
    // take effect late or never; a compare-and-set fails only against another version.
    #[test]
    fn real_time_lost_calls_and_cas() {
        let initial = (Vec::new(), 0);
        let first = call(
            0,
            1,
            RegisterOp::Write(b"a".to_vec()),
            RegisterResult::Written(2),
        );
        let second = call(
            5,
            6,
            RegisterOp::Write(b"b".to_vec()),
            RegisterResult::Written(1),
        );
        assert_eq!(linearizable(&[first, second], initial.clone()), Some(false));
        let lost = RegisterCall {
            invoked_ms: 0,
            answer: None,
            op: RegisterOp::Write(b"x".to_vec()),
        };
        let read_x = call(
            10,
            11,
            RegisterOp::Read,
            RegisterResult::Read(b"x".to_vec(), 1),
        );
        let read_empty = call(
            10,
            11,
            RegisterOp::Read,
            RegisterResult::Read(Vec::new(), 0),
        );
        assert_eq!(
            linearizable(&[lost.clone(), read_x], initial.clone()),
            Some(true)
        );
        assert_eq!(
            linearizable(&[lost, read_empty], initial.clone()),
            Some(true)
        );
        let cas = |expected_version| RegisterOp::Cas {
            expected_version,
            data: b"c".to_vec(),
        };
        let refused = call(0, 1, cas(0), RegisterResult::BadVersion);
        assert_eq!(linearizable(&[refused], initial.clone()), Some(false));
        let accepted = call(0, 1, cas(0), RegisterResult::Written(1));
        assert_eq!(linearizable(&[accepted], initial), Some(true));
    }
}
