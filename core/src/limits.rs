//! `Limits`: every bound the node enforces, in one struct, each with its unit and default.
//!
//! A limit is checked at the earliest point that can say no cleanly: the
//! leader refuses an oversized write before proposing it, so no follower ever receives a
//! transaction it cannot log or apply. `Limits::validate` checks the relations between
//! fields once, at startup; the same relations hold for the defaults at compile time (the
//! `const _` asserts below), so `Limits::default()` is always valid.
//!
//! This module only holds numbers and their relations. It does not read zoo.cfg (that is
//! the config layer's job, which maps ZooKeeper's keys onto these fields) and it does not
//! enforce anything itself: each owner checks its own limit.

/// ZooKeeper's `jute.maxbuffer` default (0xfffff): the largest frame, in bytes, a client or
/// server accepts (docs/protocol.md, Framing).
pub const FRAME_BYTES_MAX_DEFAULT: u32 = 1_048_575;

/// The largest length a wire frame can announce: its length prefix is a signed int32.
pub const FRAME_BYTES_MAX_WIRE: u32 = i32::MAX as u32;

/// Bytes a getData reply spends around the data: ReplyHeader (16), the buffer's length
/// prefix (4) and the Stat (68) (docs/protocol.md, Jute encoding).
pub const GET_DATA_REPLY_OVERHEAD_BYTES: u32 = 16 + 4 + 68;

/// Default for [`Limits::znode_data_bytes_max`]: the most a getData reply can carry within
/// `jute.maxbuffer` (1_048_487 bytes), so that every znode a client may write it can also
/// read back. ZooKeeper accepts a little more (any data whose request fits a frame) and
/// then sends replies its clients refuse to read.
pub const ZNODE_DATA_BYTES_MAX_DEFAULT: u32 =
    FRAME_BYTES_MAX_DEFAULT - GET_DATA_REPLY_OVERHEAD_BYTES;

/// Bytes a logged transaction may add to the client request it came from: the txn header
/// (session, cxid, zxid, time, type) and what the leader fixes in `prepare` (a sequential
/// name, resolved ACLs, the multi envelope). Generous on purpose: the record limit must
/// never refuse a transaction whose request passed the frame limit.
pub const RECORD_TXN_OVERHEAD_BYTES: u32 = 65_536;

/// Default for [`Limits::record_bytes_max`]: 2 MiB.
pub const RECORD_BYTES_MAX_DEFAULT: u32 = 2 * 1024 * 1024;

/// Default for [`Limits::snapshot_bytes_max`]: 4 GiB.
pub const SNAPSHOT_BYTES_MAX_DEFAULT: u64 = 4 * 1024 * 1024 * 1024;

/// Default for [`Limits::log_batch_records_max`]: ZooKeeper's `zookeeper.maxBatchSize`.
pub const LOG_BATCH_RECORDS_MAX_DEFAULT: u32 = 1_000;

/// Default for [`Limits::watches_per_connection_max`].
pub const WATCHES_PER_CONNECTION_MAX_DEFAULT: u32 = 65_536;

/// Default for [`Limits::sessions_max`].
pub const SESSIONS_MAX_DEFAULT: u32 = 100_000;

/// Default for [`Limits::connections_per_ip_max`]: ZooKeeper's `maxClientCnxns` default.
pub const CONNECTIONS_PER_IP_MAX_DEFAULT: u32 = 60;

// The relations `Limits::validate` checks at runtime, proven here for the defaults.
const _: () = assert!(FRAME_BYTES_MAX_DEFAULT <= FRAME_BYTES_MAX_WIRE);
const _: () = assert!(
    ZNODE_DATA_BYTES_MAX_DEFAULT + GET_DATA_REPLY_OVERHEAD_BYTES <= FRAME_BYTES_MAX_DEFAULT
);
const _: () =
    assert!(FRAME_BYTES_MAX_DEFAULT + RECORD_TXN_OVERHEAD_BYTES <= RECORD_BYTES_MAX_DEFAULT);
const _: () = assert!(RECORD_BYTES_MAX_DEFAULT as u64 <= SNAPSHOT_BYTES_MAX_DEFAULT);

/// Every bound of one node. Build with `Limits::default()` and override fields; call
/// [`Limits::validate`] before use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest client frame accepted or sent, in bytes, length prefix excluded. Default
    /// 1_048_575 (`jute.maxbuffer`); clients apply the same limit to what they receive.
    pub frame_bytes_max: u32,
    /// Largest znode data create and setData accept, in bytes (larger is BADARGUMENTS).
    /// Default 1_048_487, so that a getData reply always fits a frame.
    pub znode_data_bytes_max: u32,
    /// Largest payload of one log record (one transaction), in bytes. Default 2 MiB. A
    /// record length field above it is read as corruption, never allocated.
    pub record_bytes_max: u32,
    /// Largest snapshot payload (tree and sessions), in bytes. Default 4 GiB. A snapshot
    /// announcing more is refused as corrupt.
    pub snapshot_bytes_max: u64,
    /// Records the node asks the runtime to make durable in one `Persist`, in records:
    /// more entries to persist at once (a follower catching up, a leader's burst) become
    /// several writes, each completed on its own. Default 1000 (ZooKeeper's
    /// `zookeeper.maxBatchSize`).
    pub log_batch_records_max: u32,
    /// Paths one client connection may hold watches on, in paths (its watches of several
    /// kinds on one path count once). Default 65_536; a request that would watch one more
    /// (a read with a watch, addWatch, or a setWatches listing that many new paths) fails
    /// with QUOTAEXCEEDED and changes nothing. ZooKeeper has no such bound, and a runaway
    /// client can exhaust its heap.
    pub watches_per_connection_max: u32,
    /// Live sessions in the ensemble, in sessions. Default 100_000; the leader refuses
    /// one more (counting those it has proposed), and the connection that asked for it is
    /// closed, as ZooKeeper closes one it cannot serve.
    pub sessions_max: u32,
    /// Open client connections from one IP address, in connections. Default 60
    /// (`maxClientCnxns`). zoo.cfg's 0 ("no limit") is mapped by the config layer to
    /// `u32::MAX`.
    pub connections_per_ip_max: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            znode_data_bytes_max: ZNODE_DATA_BYTES_MAX_DEFAULT,
            record_bytes_max: RECORD_BYTES_MAX_DEFAULT,
            snapshot_bytes_max: SNAPSHOT_BYTES_MAX_DEFAULT,
            log_batch_records_max: LOG_BATCH_RECORDS_MAX_DEFAULT,
            watches_per_connection_max: WATCHES_PER_CONNECTION_MAX_DEFAULT,
            sessions_max: SESSIONS_MAX_DEFAULT,
            connections_per_ip_max: CONNECTIONS_PER_IP_MAX_DEFAULT,
        }
    }
}

/// Why a set of limits cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// A limit is zero, which would refuse everything.
    #[error("limit `{field}` is 0; it must be at least 1")]
    Zero {
        /// The field's name in [`Limits`].
        field: &'static str,
    },
    /// The frame limit exceeds what a signed 32-bit length prefix can announce.
    #[error("frame_bytes_max {frame_bytes_max} exceeds the wire's maximum {FRAME_BYTES_MAX_WIRE}")]
    FrameOverWire {
        /// The configured frame limit, in bytes.
        frame_bytes_max: u32,
    },
    /// A getData reply for the largest allowed znode would not fit in a frame.
    #[error(
        "znode_data_bytes_max {znode_data_bytes_max} + {GET_DATA_REPLY_OVERHEAD_BYTES} reply \
         bytes exceeds frame_bytes_max {frame_bytes_max}"
    )]
    ZnodeDataOverFrame {
        /// The configured znode data limit, in bytes.
        znode_data_bytes_max: u32,
        /// The configured frame limit, in bytes.
        frame_bytes_max: u32,
    },
    /// A transaction built from a frame-sized request might not fit in one log record.
    #[error(
        "record_bytes_max {record_bytes_max} is below frame_bytes_max {frame_bytes_max} + \
         {RECORD_TXN_OVERHEAD_BYTES} transaction bytes"
    )]
    RecordBelowFrame {
        /// The configured record limit, in bytes.
        record_bytes_max: u32,
        /// The configured frame limit, in bytes.
        frame_bytes_max: u32,
    },
    /// A snapshot could not even hold one record's worth of data.
    #[error("snapshot_bytes_max {snapshot_bytes_max} is below record_bytes_max {record_bytes_max}")]
    SnapshotBelowRecord {
        /// The configured snapshot limit, in bytes.
        snapshot_bytes_max: u64,
        /// The configured record limit, in bytes.
        record_bytes_max: u32,
    },
}

impl Limits {
    /// Checks every field is usable and every relation between fields holds.
    pub fn validate(&self) -> Result<(), LimitsError> {
        self.validate_nonzero()?;
        if self.frame_bytes_max > FRAME_BYTES_MAX_WIRE {
            return Err(LimitsError::FrameOverWire {
                frame_bytes_max: self.frame_bytes_max,
            });
        }
        let reply_bytes =
            u64::from(self.znode_data_bytes_max) + u64::from(GET_DATA_REPLY_OVERHEAD_BYTES);
        if reply_bytes > u64::from(self.frame_bytes_max) {
            return Err(LimitsError::ZnodeDataOverFrame {
                znode_data_bytes_max: self.znode_data_bytes_max,
                frame_bytes_max: self.frame_bytes_max,
            });
        }
        let txn_bytes = u64::from(self.frame_bytes_max) + u64::from(RECORD_TXN_OVERHEAD_BYTES);
        if u64::from(self.record_bytes_max) < txn_bytes {
            return Err(LimitsError::RecordBelowFrame {
                record_bytes_max: self.record_bytes_max,
                frame_bytes_max: self.frame_bytes_max,
            });
        }
        if self.snapshot_bytes_max < u64::from(self.record_bytes_max) {
            return Err(LimitsError::SnapshotBelowRecord {
                snapshot_bytes_max: self.snapshot_bytes_max,
                record_bytes_max: self.record_bytes_max,
            });
        }
        Ok(())
    }

    /// `validate`'s first step: no limit may be zero.
    fn validate_nonzero(&self) -> Result<(), LimitsError> {
        let fields: [(&'static str, u64); 8] = [
            ("frame_bytes_max", u64::from(self.frame_bytes_max)),
            ("znode_data_bytes_max", u64::from(self.znode_data_bytes_max)),
            ("record_bytes_max", u64::from(self.record_bytes_max)),
            ("snapshot_bytes_max", self.snapshot_bytes_max),
            (
                "log_batch_records_max",
                u64::from(self.log_batch_records_max),
            ),
            (
                "watches_per_connection_max",
                u64::from(self.watches_per_connection_max),
            ),
            ("sessions_max", u64::from(self.sessions_max)),
            (
                "connections_per_ip_max",
                u64::from(self.connections_per_ip_max),
            ),
        ];
        match fields.iter().find(|(_, value)| *value == 0) {
            Some((field, _)) => Err(LimitsError::Zero { field }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The defaults are valid (the const asserts prove the relations; this proves validate
    // agrees with them) and carry ZooKeeper's numbers where ZooKeeper has one.
    #[test]
    fn defaults_are_valid() {
        let limits = Limits::default();
        assert_eq!(limits.validate(), Ok(()));
        assert_eq!(limits.frame_bytes_max, 1_048_575);
        assert_eq!(limits.connections_per_ip_max, 60);
    }

    // Each relation is checked: breaking exactly one yields exactly its error.
    #[test]
    fn each_relation_is_checked() {
        let base = Limits::default();
        let cases: Vec<(Limits, LimitsError)> = vec![
            (
                Limits {
                    sessions_max: 0,
                    ..base.clone()
                },
                LimitsError::Zero {
                    field: "sessions_max",
                },
            ),
            (
                Limits {
                    connections_per_ip_max: 0,
                    ..base.clone()
                },
                LimitsError::Zero {
                    field: "connections_per_ip_max",
                },
            ),
            (
                Limits {
                    frame_bytes_max: FRAME_BYTES_MAX_WIRE + 1,
                    record_bytes_max: u32::MAX,
                    ..base.clone()
                },
                LimitsError::FrameOverWire {
                    frame_bytes_max: FRAME_BYTES_MAX_WIRE + 1,
                },
            ),
            (
                Limits {
                    znode_data_bytes_max: 1_048_575 - 87,
                    ..base.clone()
                },
                LimitsError::ZnodeDataOverFrame {
                    znode_data_bytes_max: 1_048_575 - 87,
                    frame_bytes_max: 1_048_575,
                },
            ),
            (
                Limits {
                    record_bytes_max: 1_048_575 + 65_535,
                    ..base.clone()
                },
                LimitsError::RecordBelowFrame {
                    record_bytes_max: 1_048_575 + 65_535,
                    frame_bytes_max: 1_048_575,
                },
            ),
            (
                Limits {
                    snapshot_bytes_max: 1024,
                    ..base.clone()
                },
                LimitsError::SnapshotBelowRecord {
                    snapshot_bytes_max: 1024,
                    record_bytes_max: RECORD_BYTES_MAX_DEFAULT,
                },
            ),
        ];
        for (limits, expected) in cases {
            assert_eq!(limits.validate(), Err(expected));
        }
    }

    // The boundary cases are allowed: a reply of exactly a frame, a record of exactly a
    // frame plus overhead.
    #[test]
    fn boundaries_are_inclusive() {
        let limits = Limits {
            znode_data_bytes_max: 1_048_575 - 88,
            record_bytes_max: 1_048_575 + 65_536,
            ..Limits::default()
        };
        assert_eq!(limits.validate(), Ok(()));
    }
}
