//! Sessions: the replicated session table and its expiry bookkeeping (docs/protocol.md,
//! Handshake and Sessions). Pure bookkeeping: the caller passes `now_ms`; nothing here
//! reads a clock.
//!
//! A session has an id, a 16-byte password (kept here so any server can check a resume),
//! a negotiated timeout, a deadline and a `closing` flag. A touch (any frame received on
//! the session) moves the deadline to `round_up_to_tick(now_ms + timeout_ms)`, ZooKeeper's
//! `ExpiryQueue` rule, so deadlines fall on tick boundaries and expire in batches. The tick
//! is configurable; Paddock's default is [`TICK_MS_DEFAULT`] (2000 ms, the sample
//! `zoo.cfg`'s tickTime, rather than the 3000 ms ZooKeeper uses when none is configured).
//!
//! Invariants: `deadlines` holds exactly one `(expires_at_ms, id)` pair for each session that
//! is not closing, and none for closing sessions; so [`SessionTable::expired`] and
//! [`SessionTable::next_expiry_ms`] are O(log n) plus the size of the answer. Every order
//! that reaches an output is by `SessionId` or by deadline, never by a hash.
//!
//! Not done here: deciding *who* expires sessions (only a leader with a quorum,
//! docs/consensus.md §14), proposing the closeSession transaction, deleting ephemerals,
//! closing connections, and which server owns a session's connection (SESSIONMOVED): those
//! belong to the node.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};

use crate::error::ZkError;
use crate::ids::{NodeId, SessionId};

/// Paddock's default tick, ms: the sample `zoo.cfg`'s tickTime.
pub const TICK_MS_DEFAULT: NonZeroU64 = NonZeroU64::new(2000).expect("2000 is not zero");

/// Length of a session password, bytes. Exactly 16: the C client breaks on any other length.
pub const PASSWORD_BYTES: usize = 16;

/// Why a session operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No session with this id (never created, or already removed).
    #[error("unknown session {0}")]
    Unknown(SessionId),
    /// A resume carried a password that does not match the session's.
    #[error("wrong password for session {0}")]
    WrongPassword(SessionId),
    /// The session is being closed or expired; it takes no further requests or resumes.
    #[error("session {0} is closing")]
    Closing(SessionId),
    /// A create for an id that is already in the table.
    #[error("session {0} already exists")]
    AlreadyExists(SessionId),
    /// A decoded snapshot lists the same session twice.
    #[error("session {0} appears twice in a snapshot")]
    DuplicateInSnapshot(SessionId),
}

/// One client session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session id (never 0, which means "no session" on the wire).
    pub id: SessionId,
    /// The password a resume must present.
    pub password: [u8; PASSWORD_BYTES],
    /// The negotiated timeout, ms.
    pub timeout_ms: u32,
    /// When the session expires unless touched again, ms on the clock of the server that
    /// last armed it; a multiple of the table's tick (unless saturated at `u64::MAX`).
    /// Kept but no longer scheduled while `closing`.
    pub expires_at_ms: u64,
    /// Set once a close or expiry is under way: further requests get SESSIONEXPIRED and a
    /// resume is refused.
    pub closing: bool,
}

/// Clamps a requested timeout into `[min_ms, max_ms]`, as ZooKeeper does (first raised to
/// the minimum, then lowered to the maximum, so `max_ms` wins if the bounds are inverted).
/// The request is the wire's signed int: a negative one gets the minimum.
pub fn negotiate_timeout(requested_ms: i32, min_ms: u32, max_ms: u32) -> u32 {
    let raised = u32::try_from(requested_ms).unwrap_or(0).max(min_ms);
    raised.min(max_ms)
}

/// The first tick boundary strictly after `time_ms`: `(time_ms / tick_ms + 1) * tick_ms`
/// (ZooKeeper's `ExpiryQueue.roundToNextInterval`). Saturates instead of overflowing.
pub fn round_up_to_tick(time_ms: u64, tick_ms: NonZeroU64) -> u64 {
    let tick_ms = tick_ms.get();
    (time_ms / tick_ms)
        .saturating_add(1)
        .saturating_mul(tick_ms)
}

/// Draws a 16-byte session password from the caller's RNG (the node keeps a ChaCha20
/// stream keyed by the runtime's entropy for this alone).
pub fn generate_password<R: rand::Rng + ?Sized>(rng: &mut R) -> [u8; PASSWORD_BYTES] {
    let mut password = [0; PASSWORD_BYTES];
    rng.fill_bytes(&mut password);
    password
}

/// Hands out session ids as ZooKeeper does. The first id is
/// `(server_id << 56) | ((now_ms << 24) >>> 8)`: the server in the top byte, the low 40 bits
/// of the clock below it, 16 zero bits; then it counts up by one per session. Ids 0 ("no
/// session") and `i64::MIN` (ZooKeeper's container owner marker) are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdGenerator {
    next_id: i64,
}

impl SessionIdGenerator {
    /// A generator for server `server_id` (only its low 8 bits are used; ZooKeeper's myid
    /// is 1..=255) started at `now_ms`.
    pub fn new(server_id: NodeId, now_ms: u64) -> SessionIdGenerator {
        let clock_bits = (now_ms << 24) >> 8;
        let raw = ((server_id.0 & 0xff) << 56) | clock_bits;
        SessionIdGenerator {
            next_id: raw as i64,
        }
    }

    /// The next id.
    pub fn next_id(&mut self) -> SessionId {
        while self.next_id == 0 || self.next_id == i64::MIN {
            self.next_id = self.next_id.wrapping_add(1);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        SessionId(id)
    }
}

/// The session table. Serialized (for snapshots) as its tick and its sessions in id order;
/// the deadline index is rebuilt when decoding. Deadlines are on the clock of the server
/// that armed them, so a server that loads a snapshot and then leads calls
/// [`SessionTable::rearm_all`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "SessionTableRepr", try_from = "SessionTableRepr")]
pub struct SessionTable {
    tick_ms: NonZeroU64,
    sessions: BTreeMap<SessionId, Session>,
    /// `(expires_at_ms, id)` of every session that is not closing.
    deadlines: BTreeSet<(u64, SessionId)>,
}

/// The serialized form of a [`SessionTable`].
#[derive(Serialize, Deserialize)]
struct SessionTableRepr {
    tick_ms: NonZeroU64,
    sessions: Vec<Session>,
}

impl From<SessionTable> for SessionTableRepr {
    fn from(table: SessionTable) -> SessionTableRepr {
        SessionTableRepr {
            tick_ms: table.tick_ms,
            sessions: table.sessions.into_values().collect(),
        }
    }
}

impl TryFrom<SessionTableRepr> for SessionTable {
    type Error = SessionError;

    fn try_from(repr: SessionTableRepr) -> Result<SessionTable, SessionError> {
        let mut table = SessionTable::new(repr.tick_ms);
        for session in repr.sessions {
            let id = session.id;
            if !session.closing {
                table.deadlines.insert((session.expires_at_ms, id));
            }
            if table.sessions.insert(id, session).is_some() {
                return Err(SessionError::DuplicateInSnapshot(id));
            }
        }
        Ok(table)
    }
}

impl SessionTable {
    /// An empty table whose deadlines fall on multiples of `tick_ms`.
    pub fn new(tick_ms: NonZeroU64) -> SessionTable {
        SessionTable {
            tick_ms,
            sessions: BTreeMap::new(),
            deadlines: BTreeSet::new(),
        }
    }

    /// The tick deadlines are rounded to, ms.
    pub fn tick_ms(&self) -> NonZeroU64 {
        self.tick_ms
    }

    /// The deadline a touch at `now_ms` gives a session with `timeout_ms`.
    fn deadline_ms(&self, now_ms: u64, timeout_ms: u32) -> u64 {
        round_up_to_tick(now_ms.saturating_add(u64::from(timeout_ms)), self.tick_ms)
    }

    /// Adds a session (applying a createSession transaction) armed from `now_ms`.
    /// `AlreadyExists` if the id is taken; the table is then unchanged.
    pub fn create(
        &mut self,
        id: SessionId,
        password: [u8; PASSWORD_BYTES],
        timeout_ms: u32,
        now_ms: u64,
    ) -> Result<(), SessionError> {
        if self.sessions.contains_key(&id) {
            return Err(SessionError::AlreadyExists(id));
        }
        let expires_at_ms = self.deadline_ms(now_ms, timeout_ms);
        let session = Session {
            id,
            password,
            timeout_ms,
            expires_at_ms,
            closing: false,
        };
        self.sessions.insert(id, session);
        self.deadlines.insert((expires_at_ms, id));
        Ok(())
    }

    /// Records activity on a session at `now_ms`, moving its deadline. `false` (and nothing
    /// changes) if the session is unknown or closing.
    pub fn touch(&mut self, id: SessionId, now_ms: u64) -> bool {
        let Some(session) = self.sessions.get(&id) else {
            return false;
        };
        if session.closing {
            return false;
        }
        let expires_at_ms = self.deadline_ms(now_ms, session.timeout_ms);
        self.rearm(id, expires_at_ms);
        true
    }

    /// Moves the deadline of a session that is not closing, keeping the index in step.
    fn rearm(&mut self, id: SessionId, expires_at_ms: u64) {
        let session = self
            .sessions
            .get_mut(&id)
            .expect("caller found the session");
        assert!(
            !session.closing,
            "closing session {id} has no deadline to move"
        );
        let was_indexed = self.deadlines.remove(&(session.expires_at_ms, id));
        assert!(was_indexed, "session {id} missing from the deadline index");
        session.expires_at_ms = expires_at_ms;
        self.deadlines.insert((expires_at_ms, id));
    }

    /// Checks a resume (ConnectRequest with a session id and password). The node turns any
    /// error into the "expired" ConnectResponse `{0, 0, 0, zeros}`. Does not touch.
    pub fn check_reattach(&self, id: SessionId, password: &[u8]) -> Result<&Session, SessionError> {
        let session = self.sessions.get(&id).ok_or(SessionError::Unknown(id))?;
        if session.password.as_slice() != password {
            return Err(SessionError::WrongPassword(id));
        }
        if session.closing {
            return Err(SessionError::Closing(id));
        }
        Ok(session)
    }

    /// Checks that a request may run on this session: `SessionExpired` if the session is
    /// unknown or closing (ZooKeeper's `SessionTracker.checkSession`; ownership, which gives
    /// SESSIONMOVED, is the node's business).
    pub fn check_session(&self, id: SessionId) -> Result<&Session, ZkError> {
        match self.sessions.get(&id) {
            Some(session) if !session.closing => Ok(session),
            _ => Err(ZkError::SessionExpired),
        }
    }

    /// Marks a session as closing (a close or expiry was proposed): it leaves the expiry
    /// schedule and answers SESSIONEXPIRED from now on. `false` if unknown; marking twice
    /// is harmless.
    pub fn mark_closing(&mut self, id: SessionId) -> bool {
        let Some(session) = self.sessions.get_mut(&id) else {
            return false;
        };
        if !session.closing {
            session.closing = true;
            self.deadlines.remove(&(session.expires_at_ms, id));
        }
        true
    }

    /// Removes a session (applying its closeSession transaction); returns it if it existed.
    pub fn remove(&mut self, id: SessionId) -> Option<Session> {
        let session = self.sessions.remove(&id)?;
        if !session.closing {
            self.deadlines.remove(&(session.expires_at_ms, id));
        }
        Some(session)
    }

    /// The sessions that are not closing and whose deadline is at or before `now_ms`,
    /// ascending by id. They stay listed until marked closing or removed.
    pub fn expired(&self, now_ms: u64) -> Vec<SessionId> {
        let upper = (now_ms, SessionId(i64::MAX));
        let mut ids: Vec<SessionId> = self.deadlines.range(..=upper).map(|(_, id)| *id).collect();
        ids.sort_unstable();
        ids
    }

    /// The earliest deadline of a session that is not closing, ms; `None` when there is
    /// none (no session timer needs arming).
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.deadlines
            .first()
            .map(|(expires_at_ms, _)| *expires_at_ms)
    }

    /// Re-arms every session that is not closing from `now_ms`: a new leader gives every
    /// session a full timeout from its own clock, so no session expires because of an
    /// election or another server's clock (docs/consensus.md §14).
    pub fn rearm_all(&mut self, now_ms: u64) {
        self.deadlines.clear();
        let tick_ms = self.tick_ms;
        for session in self.sessions.values_mut().filter(|s| !s.closing) {
            let deadline = now_ms.saturating_add(u64::from(session.timeout_ms));
            session.expires_at_ms = round_up_to_tick(deadline, tick_ms);
            self.deadlines.insert((session.expires_at_ms, session.id));
        }
    }

    /// The session with this id, if any.
    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Every session, ascending by id.
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values().inspect(|_| crate::work::visit(1))
    }

    /// Number of sessions, closing ones included.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether the table has no session.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Touch, close and remove keep the deadline index equal to the non-closing sessions.
    #[test]
    fn deadline_index_tracks_sessions() {
        let mut table = SessionTable::new(TICK_MS_DEFAULT);
        for raw in 1..=4 {
            table
                .create(SessionId(raw), [0; 16], 4000, 0)
                .expect("fresh id");
        }
        assert!(table.touch(SessionId(2), 5000));
        assert!(table.mark_closing(SessionId(3)));
        assert!(table.remove(SessionId(4)).is_some());
        assert!(table.remove(SessionId(3)).is_some());
        let expected: BTreeSet<_> = [(6000, SessionId(1)), (10000, SessionId(2))].into();
        assert_eq!(table.deadlines, expected);
    }
}
