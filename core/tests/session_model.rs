//! Random create / touch / close / remove / rearm sequences give the same answers from the
//! session table (with its deadline index) as from a naive map that scans every session,
//! so `expired` and `next_expiry_ms` stay right however the index is updated.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use paddock_core::error::ZkError;
use paddock_core::ids::SessionId;
use paddock_core::session::{SessionTable, round_up_to_tick};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Create(i64, u32),
    Touch(i64),
    MarkClosing(i64),
    Remove(i64),
    RearmAll,
    Advance(u64),
}

/// The reference: id → (timeout_ms, expires_at_ms, closing).
type Naive = BTreeMap<i64, (u32, u64, bool)>;

fn op() -> impl Strategy<Value = Op> {
    let id = || -3i64..6;
    prop_oneof![
        3 => (id(), 1u32..20_000).prop_map(|(i, t)| Op::Create(i, t)),
        3 => id().prop_map(Op::Touch),
        1 => id().prop_map(Op::MarkClosing),
        1 => id().prop_map(Op::Remove),
        1 => Just(Op::RearmAll),
        3 => (0u64..7_000).prop_map(Op::Advance),
    ]
}

proptest! {
    // After every operation the table and the naive map agree on expiry, the next
    // deadline, each session's state and the request check.
    #[test]
    fn table_matches_naive_map(
        tick_ms in 1u64..5_000,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let tick = NonZeroU64::new(tick_ms).expect("strategy starts at 1");
        let deadline = |now_ms: u64, timeout_ms: u32| round_up_to_tick(now_ms + u64::from(timeout_ms), tick);
        let mut table = SessionTable::new(tick);
        let mut naive = Naive::new();
        let mut now_ms = 0u64;
        for op in ops {
            match op {
                Op::Create(id, timeout_ms) => {
                    let created = table.create(SessionId(id), [0; 16], timeout_ms, now_ms).is_ok();
                    prop_assert_eq!(created, !naive.contains_key(&id));
                    naive.entry(id).or_insert((timeout_ms, deadline(now_ms, timeout_ms), false));
                }
                Op::Touch(id) => {
                    let live = matches!(naive.get(&id), Some((_, _, false)));
                    prop_assert_eq!(table.touch(SessionId(id), now_ms), live);
                    if let Some((timeout_ms, expires_at_ms, false)) = naive.get_mut(&id) {
                        *expires_at_ms = deadline(now_ms, *timeout_ms);
                    }
                }
                Op::MarkClosing(id) => {
                    prop_assert_eq!(table.mark_closing(SessionId(id)), naive.contains_key(&id));
                    if let Some(entry) = naive.get_mut(&id) {
                        entry.2 = true;
                    }
                }
                Op::Remove(id) => {
                    prop_assert_eq!(table.remove(SessionId(id)).is_some(), naive.remove(&id).is_some());
                }
                Op::RearmAll => {
                    table.rearm_all(now_ms);
                    for (timeout_ms, expires_at_ms, closing) in naive.values_mut() {
                        if !*closing {
                            *expires_at_ms = deadline(now_ms, *timeout_ms);
                        }
                    }
                }
                Op::Advance(ms) => now_ms += ms,
            }
            let live = naive.iter().filter(|(_, (_, _, closing))| !closing);
            let expired: Vec<SessionId> =
                live.clone().filter(|(_, (_, e, _))| *e <= now_ms).map(|(id, _)| SessionId(*id)).collect();
            prop_assert_eq!(table.expired(now_ms), expired);
            prop_assert_eq!(table.next_expiry_ms(), live.map(|(_, (_, e, _))| *e).min());
            let states: Vec<_> = table.iter().map(|s| (s.id.0, (s.timeout_ms, s.expires_at_ms, s.closing))).collect();
            prop_assert_eq!(states, naive.clone().into_iter().collect::<Vec<_>>());
            for id in -3..6 {
                let expected = match naive.get(&id) {
                    Some((_, _, false)) => Ok(SessionId(id)),
                    _ => Err(ZkError::SessionExpired),
                };
                prop_assert_eq!(table.check_session(SessionId(id)).map(|s| s.id), expected);
            }
        }
    }
}
