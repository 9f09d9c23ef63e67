//! `ZkError`: the error codes ZooKeeper clients see on the wire (KeeperException.Code).
//!
//! Other boundaries have their own enums next to their code (`wire::DecodeError`, ...).

use serde::{Deserialize, Serialize};

/// A ZooKeeper error code as carried in `ReplyHeader.err` and multi results
/// (`KeeperException.Code`; docs/protocol.md, Error codes). `Ok` exists because multi
/// results carry 0 for rolled-back ops.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    thiserror::Error,
)]
#[allow(missing_docs)] // each variant is named exactly as ZooKeeper names it
pub enum ZkError {
    #[error("ok")]
    Ok,
    #[error("system error")]
    SystemError,
    #[error("runtime inconsistency")]
    RuntimeInconsistency,
    #[error("data inconsistency")]
    DataInconsistency,
    #[error("connection loss")]
    ConnectionLoss,
    #[error("marshalling error")]
    MarshallingError,
    #[error("unimplemented")]
    Unimplemented,
    #[error("operation timeout")]
    OperationTimeout,
    #[error("bad arguments")]
    BadArguments,
    #[error("unknown session")]
    UnknownSession,
    #[error("new config has no quorum")]
    NewConfigNoQuorum,
    #[error("reconfig in progress")]
    ReconfigInProgress,
    #[error("api error")]
    ApiError,
    #[error("no node")]
    NoNode,
    #[error("not authorized")]
    NoAuth,
    #[error("bad version")]
    BadVersion,
    #[error("ephemerals cannot have children")]
    NoChildrenForEphemerals,
    #[error("node exists")]
    NodeExists,
    #[error("directory not empty")]
    NotEmpty,
    #[error("session expired")]
    SessionExpired,
    #[error("invalid callback")]
    InvalidCallback,
    #[error("invalid ACL")]
    InvalidAcl,
    #[error("authentication failed")]
    AuthFailed,
    #[error("session moved")]
    SessionMoved,
    #[error("not a read-only call")]
    NotReadOnly,
    #[error("ephemeral on local session")]
    EphemeralOnLocalSession,
    #[error("no watcher")]
    NoWatcher,
    #[error("request timeout")]
    RequestTimeout,
    #[error("reconfig disabled")]
    ReconfigDisabled,
    #[error("session closed, requires SASL auth")]
    SessionClosedRequireSaslAuth,
    #[error("quota exceeded")]
    QuotaExceeded,
    #[error("throttled operation")]
    ThrottledOp,
}

/// Every code with its wire value, in one table so `code` and `from_code` cannot disagree.
const CODES: &[(ZkError, i32)] = &[
    (ZkError::Ok, 0),
    (ZkError::SystemError, -1),
    (ZkError::RuntimeInconsistency, -2),
    (ZkError::DataInconsistency, -3),
    (ZkError::ConnectionLoss, -4),
    (ZkError::MarshallingError, -5),
    (ZkError::Unimplemented, -6),
    (ZkError::OperationTimeout, -7),
    (ZkError::BadArguments, -8),
    (ZkError::UnknownSession, -12),
    (ZkError::NewConfigNoQuorum, -13),
    (ZkError::ReconfigInProgress, -14),
    (ZkError::ApiError, -100),
    (ZkError::NoNode, -101),
    (ZkError::NoAuth, -102),
    (ZkError::BadVersion, -103),
    (ZkError::NoChildrenForEphemerals, -108),
    (ZkError::NodeExists, -110),
    (ZkError::NotEmpty, -111),
    (ZkError::SessionExpired, -112),
    (ZkError::InvalidCallback, -113),
    (ZkError::InvalidAcl, -114),
    (ZkError::AuthFailed, -115),
    (ZkError::SessionMoved, -118),
    (ZkError::NotReadOnly, -119),
    (ZkError::EphemeralOnLocalSession, -120),
    (ZkError::NoWatcher, -121),
    (ZkError::RequestTimeout, -122),
    (ZkError::ReconfigDisabled, -123),
    (ZkError::SessionClosedRequireSaslAuth, -124),
    (ZkError::QuotaExceeded, -125),
    (ZkError::ThrottledOp, -127),
];

impl ZkError {
    /// The code on the wire.
    pub fn code(self) -> i32 {
        CODES
            .iter()
            .find(|(e, _)| *e == self)
            .map_or(-1, |(_, c)| *c)
    }

    /// The error for a wire code, or `None` for a code ZooKeeper 3.8 does not define.
    pub fn from_code(code: i32) -> Option<ZkError> {
        CODES.iter().find(|(_, c)| *c == code).map(|(e, _)| *e)
    }

    /// Every defined code, in the order of its wire value (0 first).
    pub fn all() -> impl Iterator<Item = ZkError> {
        CODES.iter().map(|(e, _)| *e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every code maps to a distinct wire value and back; undefined values map to None.
    #[test]
    fn codes_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for e in ZkError::all() {
            assert!(seen.insert(e.code()), "duplicate code {}", e.code());
            assert_eq!(ZkError::from_code(e.code()), Some(e));
        }
        assert_eq!(ZkError::NoNode.code(), -101);
        assert_eq!(ZkError::from_code(-9), None);
        assert_eq!(ZkError::from_code(-126), None);
    }
}
