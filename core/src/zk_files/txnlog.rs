//! ZooKeeper's transaction log file (`FileTxnLog`): its records and the txns they hold.

use crate::acl::Acl;
use crate::wire::{Reader, Writer};

use super::{FILE_VERSION, LOG_MAGIC, ZkFileError, adler32};

/// The byte after every record (`'B'`, "end of record").
const END_OF_RECORD: u8 = b'B';

/// ZooKeeper's opcodes of the txns its logs hold.
mod op {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const SET_DATA: i32 = 5;
    pub const SET_ACL: i32 = 7;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// A txn's header (`TxnHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZkTxnHeader {
    /// The session that asked.
    pub client_id: i64,
    /// Its request number.
    pub cxid: i32,
    /// The txn's zxid.
    pub zxid: i64,
    /// The leader's clock at proposal, ms since the Unix epoch.
    pub time: i64,
    /// The opcode.
    pub kind: i32,
}

/// A txn, as ZooKeeper's `DataTree.processTxn` applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkTxn {
    /// createSession: the session's timeout.
    CreateSession {
        /// Negotiated timeout, ms.
        timeout_ms: i32,
    },
    /// closeSession, with the ephemerals to delete when the txn lists them (3.6+).
    CloseSession {
        /// The paths listed, if any.
        paths: Option<Vec<String>>,
    },
    /// create, create2, createContainer or createTTL.
    Create {
        /// The node's final path.
        path: String,
        /// Its data.
        data: Option<Vec<u8>>,
        /// Its ACL list.
        acl: Vec<Acl>,
        /// The stored ephemeral owner it gets (0, the session, the container mark or the
        /// TTL form).
        ephemeral_owner: i64,
        /// The parent's cversion after the create (-1: one more than it is).
        parent_cversion: i32,
    },
    /// delete or deleteContainer.
    Delete {
        /// The node.
        path: String,
    },
    /// setData or reconfig (which sets `/zookeeper/config`).
    SetData {
        /// The node.
        path: String,
        /// The new data.
        data: Option<Vec<u8>>,
        /// The version after the change.
        version: i32,
    },
    /// setACL.
    SetAcl {
        /// The node.
        path: String,
        /// The new list.
        acl: Vec<Acl>,
        /// The aversion after the change.
        version: i32,
    },
    /// A check inside a multi (changes nothing).
    Check,
    /// A failed request (or a failed multi's op): changes nothing.
    Error {
        /// The error code.
        err: i32,
    },
    /// A multi: its ops in order.
    Multi(Vec<ZkTxn>),
}

/// One log record: a txn and its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkLogRecord {
    /// The header.
    pub header: ZkTxnHeader,
    /// The txn.
    pub txn: ZkTxn,
}

/// How a log's records end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEnd {
    /// At the end of the file or at its zero padding: every record written is here.
    Clean,
    /// Inside a record (cut short, or without its end marker): a write the server did not
    /// finish, which ZooKeeper's own recovery drops too.
    Torn {
        /// Where the torn record starts.
        offset: usize,
    },
}

/// A decoded transaction log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkLog {
    /// The database id of the file header.
    pub dbid: i64,
    /// Every complete record, in order.
    pub records: Vec<ZkLogRecord>,
    /// How the records end.
    pub end: LogEnd,
}

/// Decodes a whole log file. A record whose checksum does not match its bytes is an error
/// (as for ZooKeeper, which refuses to start on one); a record cut short at the end of the
/// file is the log's torn end ([`LogEnd::Torn`]).
pub fn decode_log(bytes: &[u8]) -> Result<ZkLog, ZkFileError> {
    let mut r = Reader::new(bytes);
    let magic = r.read_int("FileHeader.magic")?;
    if magic != LOG_MAGIC {
        return Err(ZkFileError::Magic {
            kind: "transaction log",
            found: magic,
            expected: LOG_MAGIC,
        });
    }
    let version = r.read_int("FileHeader.version")?;
    if version != FILE_VERSION {
        return Err(ZkFileError::Invalid(format!(
            "transaction log format version {version}, expected {FILE_VERSION}"
        )));
    }
    let dbid = r.read_long("FileHeader.dbid")?;
    let mut records = Vec::new();
    let end = loop {
        let start = r.offset();
        if r.remaining_bytes() == 0 {
            break LogEnd::Clean;
        }
        // A record: checksum, entry, end marker. Running out of bytes anywhere in it is
        // the torn end; a zero length is the padding.
        let Ok(stored) = r.read_long("record checksum") else {
            break LogEnd::Torn { offset: start };
        };
        let Ok(len) = r.read_int("record length") else {
            break LogEnd::Torn { offset: start };
        };
        if len == 0 {
            break LogEnd::Clean;
        }
        let entry = match usize::try_from(len) {
            Ok(len) if len <= r.remaining_bytes() => r.read_raw("record entry", len)?,
            _ => break LogEnd::Torn { offset: start },
        };
        match r.read_byte("end of record") {
            Ok(END_OF_RECORD) => {}
            _ => break LogEnd::Torn { offset: start },
        }
        let computed = adler32(entry);
        if stored != computed {
            return Err(ZkFileError::Checksum {
                what: "log record",
                offset: start,
                stored,
                computed,
            });
        }
        let record = decode_txn_entry(entry)
            .map_err(|e| ZkFileError::Invalid(format!("log record at offset {start}: {e}")))?;
        records.push(record);
    };
    Ok(ZkLog { dbid, records, end })
}

/// Decodes one log entry: a header and the txn of its type (a digest after it, which
/// ZooKeeper 3.6+ writes, is skipped).
pub fn decode_txn_entry(entry: &[u8]) -> Result<ZkLogRecord, ZkFileError> {
    let mut r = Reader::new(entry);
    let header = ZkTxnHeader {
        client_id: r.read_long("TxnHeader.clientId")?,
        cxid: r.read_int("TxnHeader.cxid")?,
        zxid: r.read_long("TxnHeader.zxid")?,
        time: r.read_long("TxnHeader.time")?,
        kind: r.read_int("TxnHeader.type")?,
    };
    let txn = match header.kind {
        op::CREATE_SESSION => ZkTxn::CreateSession {
            timeout_ms: r.read_int("CreateSessionTxn.timeOut")?,
        },
        // Before 3.6 the closeSession txn had no body.
        op::CLOSE_SESSION if r.remaining_bytes() == 0 => ZkTxn::CloseSession { paths: None },
        op::CLOSE_SESSION => ZkTxn::CloseSession {
            paths: Some(r.read_vector::<String>("CloseSessionTxn.paths2Delete")?),
        },
        op::MULTI => {
            let count = r.read_int("MultiTxn.txns")?;
            let count = usize::try_from(count).unwrap_or(0);
            let mut ops = Vec::new();
            for _ in 0..count {
                let kind = r.read_int("Txn.type")?;
                let data = r.read_buffer("Txn.data")?.unwrap_or_default();
                let mut sub = Reader::new(&data);
                ops.push(decode_txn(kind, header.client_id, &mut sub)?);
            }
            ZkTxn::Multi(ops)
        }
        kind => decode_txn(kind, header.client_id, &mut r)?,
    };
    Ok(ZkLogRecord { header, txn })
}

/// One txn of `kind` (not a session or multi txn) at the reader's position.
fn decode_txn(kind: i32, client_id: i64, r: &mut Reader<'_>) -> Result<ZkTxn, ZkFileError> {
    Ok(match kind {
        op::CREATE | op::CREATE2 => {
            let path = r.read_ustring("CreateTxn.path")?;
            let data = r.read_buffer("CreateTxn.data")?;
            let acl = r.read_vector::<Acl>("CreateTxn.acl")?;
            let ephemeral = r.read_bool("CreateTxn.ephemeral")?;
            // A version-0 create (before parentCVersion existed) ends here.
            let parent_cversion = if r.remaining_bytes() >= 4 {
                r.read_int("CreateTxn.parentCVersion")?
            } else {
                -1
            };
            ZkTxn::Create {
                path,
                data,
                acl,
                ephemeral_owner: if ephemeral { client_id } else { 0 },
                parent_cversion,
            }
        }
        op::CREATE_CONTAINER => ZkTxn::Create {
            path: r.read_ustring("CreateContainerTxn.path")?,
            data: r.read_buffer("CreateContainerTxn.data")?,
            acl: r.read_vector::<Acl>("CreateContainerTxn.acl")?,
            parent_cversion: r.read_int("CreateContainerTxn.parentCVersion")?,
            ephemeral_owner: i64::MIN,
        },
        op::CREATE_TTL => {
            let path = r.read_ustring("CreateTTLTxn.path")?;
            let data = r.read_buffer("CreateTTLTxn.data")?;
            let acl = r.read_vector::<Acl>("CreateTTLTxn.acl")?;
            let parent_cversion = r.read_int("CreateTTLTxn.parentCVersion")?;
            let ttl = r.read_long("CreateTTLTxn.ttl")?;
            if !(1..1 << 40).contains(&ttl) {
                return Err(ZkFileError::Invalid(format!(
                    "createTTL of {path:?} with ttl {ttl}"
                )));
            }
            ZkTxn::Create {
                path,
                data,
                acl,
                parent_cversion,
                ephemeral_owner: (0xFF00_0000_0000_0000u64 | ttl as u64) as i64,
            }
        }
        op::DELETE | op::DELETE_CONTAINER => ZkTxn::Delete {
            path: r.read_ustring("DeleteTxn.path")?,
        },
        op::SET_DATA | op::RECONFIG => ZkTxn::SetData {
            path: r.read_ustring("SetDataTxn.path")?,
            data: r.read_buffer("SetDataTxn.data")?,
            version: r.read_int("SetDataTxn.version")?,
        },
        op::SET_ACL => ZkTxn::SetAcl {
            path: r.read_ustring("SetACLTxn.path")?,
            acl: r.read_vector::<Acl>("SetACLTxn.acl")?,
            version: r.read_int("SetACLTxn.version")?,
        },
        op::CHECK => {
            r.read_ustring("CheckVersionTxn.path")?;
            r.read_int("CheckVersionTxn.version")?;
            ZkTxn::Check
        }
        op::ERROR => ZkTxn::Error {
            err: r.read_int("ErrorTxn.err")?,
        },
        other => {
            return Err(ZkFileError::Invalid(format!("unknown txn type {other}")));
        }
    })
}

/// Encodes records as a log file with its header (for tests, and to hand a log back).
pub fn encode_log_records(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.write_int(LOG_MAGIC);
    w.write_int(FILE_VERSION);
    w.write_long(0);
    for entry in entries {
        w.write_long(adler32(entry));
        w.write_buffer(Some(entry));
        w.write_raw(&[END_OF_RECORD]);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn header(kind: i32, zxid: i64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.write_long(0x55);
        w.write_int(1);
        w.write_long(zxid);
        w.write_long(1_700_000_000_000);
        w.write_int(kind);
        out
    }

    fn create(path: &str, zxid: i64) -> Vec<u8> {
        let mut out = header(op::CREATE, zxid);
        let mut w = Writer::new(&mut out);
        w.write_ustring(path);
        w.write_buffer(Some(b"v"));
        w.write_vector(&Acl::open_unsafe());
        w.write_bool(true);
        w.write_int(3);
        // A 3.6+ digest, skipped.
        w.write_int(2);
        w.write_long(99);
        out
    }

    #[test]
    fn records_decode_and_zero_padding_ends_the_log() {
        let mut bytes =
            encode_log_records(&[create("/a", 0x1_0000_0001), create("/b", 0x1_0000_0002)]);
        bytes.extend_from_slice(&[0; 64]);
        let log = decode_log(&bytes).unwrap();
        assert_eq!(log.end, LogEnd::Clean);
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.records[1].header.zxid, 0x1_0000_0002);
        assert_eq!(
            log.records[0].txn,
            ZkTxn::Create {
                path: "/a".into(),
                data: Some(b"v".to_vec()),
                acl: Acl::open_unsafe(),
                ephemeral_owner: 0x55,
                parent_cversion: 3,
            }
        );
    }

    // A log cut anywhere keeps the records before the cut; a flipped bit is an error
    // or an earlier end, never a changed record.
    #[test]
    fn a_torn_tail_is_dropped_and_a_flip_refused() {
        let records = [create("/a", 1), create("/b", 2)];
        let bytes = encode_log_records(&records);
        let first_end = 16 + 8 + 4 + records[0].len() + 1;
        for cut in 16..bytes.len() {
            let log = decode_log(&bytes[..cut]).unwrap();
            let whole = if cut >= first_end { 1 } else { 0 };
            assert_eq!(log.records.len(), whole, "cut at {cut}");
            let torn = cut != 16 && cut != first_end;
            assert_eq!(matches!(log.end, LogEnd::Torn { .. }), torn, "cut at {cut}");
        }
        let full = decode_log(&bytes).unwrap();
        for at in 16..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x04;
            if let Ok(log) = decode_log(&bad) {
                assert!(full.records.starts_with(&log.records), "flip at {at}");
            }
        }
    }

    #[test]
    fn multi_and_session_txns_decode() {
        let mut sub = Vec::new();
        Writer::new(&mut sub).write_ustring("/gone");
        let mut entry = header(op::MULTI, 7);
        let mut w = Writer::new(&mut entry);
        w.write_int(2);
        w.write_int(op::DELETE);
        w.write_buffer(Some(&sub));
        w.write_int(op::ERROR);
        let mut err = Vec::new();
        Writer::new(&mut err).write_int(-101);
        w.write_buffer(Some(&err));
        let record = decode_txn_entry(&entry).unwrap();
        assert_eq!(
            record.txn,
            ZkTxn::Multi(vec![
                ZkTxn::Delete {
                    path: "/gone".into()
                },
                ZkTxn::Error { err: -101 }
            ])
        );
        let close = header(op::CLOSE_SESSION, 8);
        assert_eq!(
            decode_txn_entry(&close).unwrap().txn,
            ZkTxn::CloseSession { paths: None }
        );
        let mut unknown = header(99, 9);
        unknown.push(0);
        assert!(decode_txn_entry(&unknown).is_err());
    }
}
