//! The session table against docs/protocol.md, Handshake and Sessions: timeout clamping,
//! tick rounding, ZooKeeper's session id layout, seeded passwords, reattach checks,
//! closing, expiry order, re-arming by a new leader, iteration order and snapshot round
//! trips.

use std::num::NonZeroU64;

use paddock_core::error::ZkError;
use paddock_core::ids::{NodeId, SessionId};
use paddock_core::session::{
    PASSWORD_BYTES, Session, SessionError, SessionIdGenerator, SessionTable, TICK_MS_DEFAULT,
    generate_password, negotiate_timeout, round_up_to_tick,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const PW: [u8; PASSWORD_BYTES] = [7; PASSWORD_BYTES];

fn tick(ms: u64) -> NonZeroU64 {
    NonZeroU64::new(ms).expect("test ticks are not zero")
}

/// A table with the default 2000 ms tick and sessions 1..=n, each with `timeout_ms`,
/// created at `now_ms`.
fn table_with(n: i64, timeout_ms: u32, now_ms: u64) -> SessionTable {
    let mut table = SessionTable::new(TICK_MS_DEFAULT);
    for raw in 1..=n {
        table
            .create(SessionId(raw), PW, timeout_ms, now_ms)
            .expect("fresh id");
    }
    table
}

// Requested timeouts are clamped to [min, max]; a negative request gets the minimum; with
// inverted bounds the maximum wins, as in ZooKeeper's order of checks.
#[test]
fn timeout_is_clamped() {
    assert_eq!(negotiate_timeout(10_000, 4_000, 40_000), 10_000);
    assert_eq!(negotiate_timeout(1_000, 4_000, 40_000), 4_000);
    assert_eq!(negotiate_timeout(60_000, 4_000, 40_000), 40_000);
    assert_eq!(negotiate_timeout(4_000, 4_000, 40_000), 4_000);
    assert_eq!(negotiate_timeout(40_000, 4_000, 40_000), 40_000);
    assert_eq!(negotiate_timeout(-5, 4_000, 40_000), 4_000);
    assert_eq!(negotiate_timeout(i32::MAX, 4_000, 40_000), 40_000);
    assert_eq!(negotiate_timeout(5_000, 9_000, 8_000), 8_000);
}

// roundUpToTick(x) = (x / tick + 1) * tick: always strictly later, even on a boundary.
#[test]
fn tick_rounding() {
    let t = TICK_MS_DEFAULT;
    assert_eq!(t.get(), 2000);
    assert_eq!(round_up_to_tick(0, t), 2000);
    assert_eq!(round_up_to_tick(1, t), 2000);
    assert_eq!(round_up_to_tick(1999, t), 2000);
    assert_eq!(round_up_to_tick(2000, t), 4000);
    assert_eq!(round_up_to_tick(10_001, tick(3000)), 12_000);
    assert_eq!(round_up_to_tick(u64::MAX, t), u64::MAX);
}

// A new session's deadline is roundUpToTick(now + timeout) on the table's tick.
#[test]
fn create_arms_the_deadline() {
    let mut table = SessionTable::new(tick(3000));
    table
        .create(SessionId(5), PW, 10_000, 1_500)
        .expect("fresh id");
    let session = table.get(SessionId(5)).expect("just created");
    let expected = Session {
        id: SessionId(5),
        password: PW,
        timeout_ms: 10_000,
        expires_at_ms: 12_000,
        closing: false,
    };
    assert_eq!(session, &expected);
    assert_eq!(table.tick_ms(), tick(3000));
    assert_eq!(table.next_expiry_ms(), Some(12_000));
}

// Creating an id twice is refused and leaves the first session as it was.
#[test]
fn create_duplicate_is_refused() {
    let mut table = table_with(1, 4_000, 0);
    let again = table.create(SessionId(1), [1; PASSWORD_BYTES], 9_000, 50_000);
    assert_eq!(again, Err(SessionError::AlreadyExists(SessionId(1))));
    assert_eq!(
        table.get(SessionId(1)).map(|s| s.expires_at_ms),
        Some(6_000)
    );
    assert_eq!(table.get(SessionId(1)).map(|s| s.password), Some(PW));
}

// Session ids: (serverId << 56) | ((now << 24) >>> 8), then +1 per session.
#[test]
fn session_ids_follow_zookeeper_layout() {
    let now_ms: u64 = 0x0123_4567_89ab;
    let mut ids = SessionIdGenerator::new(NodeId(1), now_ms);
    // The clock's low 40 bits (0x23456789ab) land in bits 16..56, server 1 in the top byte.
    assert_eq!(ids.next_id(), SessionId(0x0123_4567_89ab_0000));
    assert_eq!(ids.next_id(), SessionId(0x0123_4567_89ab_0001));
    assert_eq!(ids.next_id(), SessionId(0x0123_4567_89ab_0002));
    // Servers in the top half of the id space give negative ids, as ZooKeeper's signed long.
    let mut high = SessionIdGenerator::new(NodeId(200), 1);
    assert_eq!(
        high.next_id(),
        SessionId(((200u64 << 56) | (1 << 16)) as i64)
    );
    // Only the low 8 bits of the server id are used.
    let mut wrapped = SessionIdGenerator::new(NodeId(0x101), 1);
    assert_eq!(wrapped.next_id(), SessionId((1 << 56) | (1 << 16)));
}

// The reserved ids 0 ("no session") and i64::MIN (container owner marker) are never handed out.
#[test]
fn session_ids_skip_reserved_values() {
    let mut zero = SessionIdGenerator::new(NodeId(0), 0);
    assert_eq!(zero.next_id(), SessionId(1));
    let mut min = SessionIdGenerator::new(NodeId(128), 0);
    assert_eq!(min.next_id(), SessionId(i64::MIN + 1));
    assert_eq!(min.next_id(), SessionId(i64::MIN + 2));
}

// Passwords are 16 bytes from the caller's seeded RNG: the same seed gives the same
// passwords, successive draws differ.
#[test]
fn passwords_come_from_the_seeded_rng() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let first = generate_password(&mut rng);
    let second = generate_password(&mut rng);
    assert_ne!(first, second);
    assert_ne!(first, [0; PASSWORD_BYTES]);
    let mut replay = ChaCha8Rng::seed_from_u64(42);
    assert_eq!(generate_password(&mut replay), first);
    let dyn_rng: &mut dyn rand::Rng = &mut replay;
    assert_eq!(generate_password(dyn_rng), second);
}

// Reattach succeeds with the right password on a live session and fails, each with its
// own error, for an unknown id, a wrong or wrongly sized password, or a closing session.
#[test]
fn reattach_checks() {
    let mut table = table_with(2, 4_000, 0);
    let ok = table.check_reattach(SessionId(1), &PW).map(|s| s.id);
    assert_eq!(ok, Ok(SessionId(1)));
    let unknown = table.check_reattach(SessionId(9), &PW).map(|s| s.id);
    assert_eq!(unknown, Err(SessionError::Unknown(SessionId(9))));
    let wrong = table
        .check_reattach(SessionId(1), &[0; PASSWORD_BYTES])
        .map(|s| s.id);
    assert_eq!(wrong, Err(SessionError::WrongPassword(SessionId(1))));
    let short = table.check_reattach(SessionId(1), &PW[..15]).map(|s| s.id);
    assert_eq!(short, Err(SessionError::WrongPassword(SessionId(1))));
    assert!(table.mark_closing(SessionId(2)));
    let closing = table.check_reattach(SessionId(2), &PW).map(|s| s.id);
    assert_eq!(closing, Err(SessionError::Closing(SessionId(2))));
}

// A touch moves the deadline to roundUpToTick(now + timeout); unknown or closing sessions
// are not touched and report false.
#[test]
fn touch_moves_the_deadline() {
    let mut table = table_with(2, 4_000, 0);
    assert!(table.touch(SessionId(1), 5_000));
    assert_eq!(
        table.get(SessionId(1)).map(|s| s.expires_at_ms),
        Some(10_000)
    );
    assert_eq!(table.expired(6_000), vec![SessionId(2)]);
    assert!(!table.touch(SessionId(9), 5_000));
    assert!(table.mark_closing(SessionId(2)));
    assert!(!table.touch(SessionId(2), 5_000));
    assert_eq!(table.expired(u64::MAX), vec![SessionId(1)]);
}

// Expiry: a session is expired once now reaches its deadline (inclusive), the list is in
// id order whatever the deadlines, and closing sessions are never listed again.
#[test]
fn expired_is_sorted_and_skips_closing() {
    let mut table = SessionTable::new(TICK_MS_DEFAULT);
    table.create(SessionId(30), PW, 4_000, 0).expect("fresh id"); // 6000
    table.create(SessionId(10), PW, 8_000, 0).expect("fresh id"); // 10000
    table.create(SessionId(20), PW, 2_000, 0).expect("fresh id"); // 4000
    table
        .create(SessionId(-5), PW, 30_000, 0)
        .expect("fresh id"); // 32000
    assert_eq!(table.expired(3_999), vec![]);
    assert_eq!(table.expired(4_000), vec![SessionId(20)]);
    assert_eq!(
        table.expired(10_000),
        vec![SessionId(10), SessionId(20), SessionId(30)]
    );
    assert!(table.mark_closing(SessionId(20)));
    assert!(table.mark_closing(SessionId(20)));
    assert_eq!(table.expired(10_000), vec![SessionId(10), SessionId(30)]);
    assert_eq!(table.next_expiry_ms(), Some(6_000));
    assert!(!table.mark_closing(SessionId(99)));
}

// next_expiry_ms is the earliest deadline of a live session, None with none left.
#[test]
fn next_expiry_tracks_the_earliest_live_deadline() {
    let mut table = table_with(2, 4_000, 0);
    assert!(table.touch(SessionId(2), 3_000));
    assert_eq!(table.next_expiry_ms(), Some(6_000));
    assert!(table.mark_closing(SessionId(1)));
    assert_eq!(table.next_expiry_ms(), Some(8_000));
    assert_eq!(table.remove(SessionId(2)).map(|s| s.id), Some(SessionId(2)));
    assert_eq!(table.next_expiry_ms(), None);
    assert_eq!(table.remove(SessionId(2)), None);
    assert_eq!(table.len(), 1);
    assert_eq!(table.remove(SessionId(1)).map(|s| s.closing), Some(true));
    assert!(table.is_empty());
}

// A new leader re-arms every live session from its own now: sessions long past their old
// deadline get a full timeout again; closing sessions stay out of the schedule.
#[test]
fn rearm_all_gives_every_live_session_a_full_timeout() {
    let mut table = SessionTable::new(TICK_MS_DEFAULT);
    table.create(SessionId(1), PW, 4_000, 0).expect("fresh id");
    table.create(SessionId(2), PW, 10_000, 0).expect("fresh id");
    table.create(SessionId(3), PW, 4_000, 0).expect("fresh id");
    assert!(table.mark_closing(SessionId(3)));
    table.rearm_all(100_000);
    assert_eq!(table.expired(100_000), vec![]);
    let deadlines: Vec<_> = table
        .iter()
        .map(|s| (s.id, s.expires_at_ms, s.closing))
        .collect();
    assert_eq!(
        deadlines,
        vec![
            (SessionId(1), 106_000, false),
            (SessionId(2), 112_000, false),
            (SessionId(3), 6_000, true),
        ]
    );
    assert_eq!(table.next_expiry_ms(), Some(106_000));
    assert_eq!(table.expired(112_000), vec![SessionId(1), SessionId(2)]);
}

// Iteration is in id order (signed), whatever the creation order.
#[test]
fn iteration_is_in_id_order() {
    let mut table = SessionTable::new(TICK_MS_DEFAULT);
    for raw in [5, -3, 12, 1] {
        table
            .create(SessionId(raw), PW, 4_000, 0)
            .expect("fresh id");
    }
    let ids: Vec<_> = table.iter().map(|s| s.id.0).collect();
    assert_eq!(ids, vec![-3, 1, 5, 12]);
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).expect("encodes")
}

fn decode(bytes: &[u8]) -> Result<SessionTable, bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map(|(t, _)| t)
}

// A snapshot round trip gives an equal table whose deadline index works: expiry, touch and
// next_expiry behave as on the original.
#[test]
fn snapshot_round_trip() {
    let mut table = table_with(3, 4_000, 0);
    assert!(table.touch(SessionId(2), 10_000));
    assert!(table.mark_closing(SessionId(3)));
    let mut decoded = decode(&encode(&table)).expect("decodes");
    assert_eq!(decoded, table);
    assert_eq!(decoded.expired(6_000), vec![SessionId(1)]);
    assert_eq!(decoded.next_expiry_ms(), Some(6_000));
    assert!(decoded.touch(SessionId(1), 20_000));
    assert_eq!(decoded.next_expiry_ms(), Some(16_000));
}

/// The serialized shape of a table, to forge bad snapshots.
#[derive(serde::Serialize)]
struct ForgedTable {
    tick_ms: u64,
    sessions: Vec<Session>,
}

// Bad snapshots are typed errors, not panics: a session listed twice, a zero tick, and
// truncated bytes.
#[test]
fn bad_snapshots_are_rejected() {
    let session = table_with(1, 4_000, 0)
        .get(SessionId(1))
        .cloned()
        .expect("created");
    let valid = ForgedTable {
        tick_ms: 2000,
        sessions: vec![session.clone()],
    };
    assert!(decode(&encode(&valid)).is_ok());
    let duplicate = ForgedTable {
        tick_ms: 2000,
        sessions: vec![session.clone(), session.clone()],
    };
    let error = decode(&encode(&duplicate)).expect_err("duplicate id");
    assert!(error.to_string().contains("appears twice"), "{error}");
    let zero_tick = ForgedTable {
        tick_ms: 0,
        sessions: vec![session],
    };
    assert!(decode(&encode(&zero_tick)).is_err());
    let bytes = encode(&table_with(2, 4_000, 0));
    for cut in 0..bytes.len() {
        assert!(
            decode(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes decoded"
        );
    }
}

// Requests on an unknown or closing session get SESSIONEXPIRED; a live one passes.
#[test]
fn check_session_refuses_unknown_and_closing() {
    let mut table = table_with(2, 4_000, 0);
    assert_eq!(
        table.check_session(SessionId(1)).map(|s| s.id),
        Ok(SessionId(1))
    );
    assert!(table.mark_closing(SessionId(2)));
    let closing = table.check_session(SessionId(2)).map(|s| s.id);
    assert_eq!(closing, Err(ZkError::SessionExpired));
    let unknown = table.check_session(SessionId(3)).map(|s| s.id);
    assert_eq!(unknown, Err(ZkError::SessionExpired));
}
