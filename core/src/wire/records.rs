//! The jute records of the client protocol (zookeeper.jute, 3.8), as plain Rust types in
//! wire field order, plus [`OpCode`]. Field values are kept as sent (raw `i32`/`i64` codes
//! and zxids) so that decoding then encoding reproduces real traffic byte for byte;
//! meaning (which error, which event type) is given by helper methods.
//!
//! Each record implements [`Record`]. Messages (header + body, multi, connect) are in the
//! sibling modules; no record here checks semantics (paths, versions, flags).

use serde::{Deserialize, Serialize};

use super::jute::{DecodeError, Reader, Record, Writer};
use crate::acl::Acl;
use crate::error::ZkError;
use crate::ids::SessionId;
use crate::stat::Stat;

/// Every opcode of ZooKeeper 3.8 (ZooDefs.OpCode; docs/protocol.md, Opcodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[allow(missing_docs)] // each variant is named as ZooKeeper names the opcode
pub enum OpCode {
    Notification,
    Create,
    Delete,
    Exists,
    GetData,
    SetData,
    GetAcl,
    SetAcl,
    GetChildren,
    Sync,
    Ping,
    GetChildren2,
    Check,
    Multi,
    Create2,
    Reconfig,
    CheckWatches,
    RemoveWatches,
    CreateContainer,
    DeleteContainer,
    CreateTtl,
    MultiRead,
    Auth,
    SetWatches,
    Sasl,
    GetEphemerals,
    GetAllChildrenNumber,
    SetWatches2,
    AddWatch,
    WhoAmI,
    CreateSession,
    CloseSession,
    Error,
}

/// Every opcode with its wire value, in one table so both directions agree.
const OP_CODES: [(OpCode, i32); 33] = [
    (OpCode::Notification, 0),
    (OpCode::Create, 1),
    (OpCode::Delete, 2),
    (OpCode::Exists, 3),
    (OpCode::GetData, 4),
    (OpCode::SetData, 5),
    (OpCode::GetAcl, 6),
    (OpCode::SetAcl, 7),
    (OpCode::GetChildren, 8),
    (OpCode::Sync, 9),
    (OpCode::Ping, 11),
    (OpCode::GetChildren2, 12),
    (OpCode::Check, 13),
    (OpCode::Multi, 14),
    (OpCode::Create2, 15),
    (OpCode::Reconfig, 16),
    (OpCode::CheckWatches, 17),
    (OpCode::RemoveWatches, 18),
    (OpCode::CreateContainer, 19),
    (OpCode::DeleteContainer, 20),
    (OpCode::CreateTtl, 21),
    (OpCode::MultiRead, 22),
    (OpCode::Auth, 100),
    (OpCode::SetWatches, 101),
    (OpCode::Sasl, 102),
    (OpCode::GetEphemerals, 103),
    (OpCode::GetAllChildrenNumber, 104),
    (OpCode::SetWatches2, 105),
    (OpCode::AddWatch, 106),
    (OpCode::WhoAmI, 107),
    (OpCode::CreateSession, -10),
    (OpCode::CloseSession, -11),
    (OpCode::Error, -1),
];

/// A wire value that is not a ZooKeeper 3.8 opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown opcode {0}")]
pub struct UnknownOpCode(pub i32);

impl OpCode {
    /// The wire value.
    pub fn code(self) -> i32 {
        OP_CODES
            .iter()
            .find(|(op, _)| *op == self)
            .map_or(-1, |(_, code)| *code)
    }

    /// Every opcode, in the order of the table above.
    pub fn all() -> impl Iterator<Item = OpCode> {
        OP_CODES.iter().map(|(op, _)| *op)
    }
}

impl TryFrom<i32> for OpCode {
    type Error = UnknownOpCode;
    fn try_from(code: i32) -> Result<OpCode, UnknownOpCode> {
        OP_CODES
            .iter()
            .find(|(_, c)| *c == code)
            .map(|(op, _)| *op)
            .ok_or(UnknownOpCode(code))
    }
}

/// Implements [`Record`] for a struct whose fields are read and written in order by the
/// given reader/writer methods (or `record` for a nested record).
macro_rules! jute_record {
    ($ty:ident, $min:expr, { $($field:ident : $kind:ident = $name:literal),* $(,)? }) => {
        impl Record for $ty {
            const MIN_WIRE_BYTES: usize = $min;
            fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($ty { $($field: jute_record!(@read reader, $kind, $name)),* })
            }
            fn write(&self, writer: &mut Writer<'_>) {
                $(jute_record!(@write writer, $kind, self.$field);)*
            }
        }
    };
    (@read $r:ident, int, $name:literal) => { $r.read_int($name)? };
    (@read $r:ident, long, $name:literal) => { $r.read_long($name)? };
    (@read $r:ident, bool, $name:literal) => { $r.read_bool($name)? };
    (@read $r:ident, ustring, $name:literal) => { $r.read_ustring($name)? };
    (@read $r:ident, buffer, $name:literal) => { $r.read_buffer($name)? };
    (@read $r:ident, bytes, $name:literal) => { $r.read_buffer($name)?.unwrap_or_default() };
    (@read $r:ident, vector, $name:literal) => { $r.read_vector($name)? };
    (@read $r:ident, record, $name:literal) => { Record::read($r)? };
    (@write $w:ident, int, $v:expr) => { $w.write_int($v) };
    (@write $w:ident, long, $v:expr) => { $w.write_long($v) };
    (@write $w:ident, bool, $v:expr) => { $w.write_bool($v) };
    (@write $w:ident, ustring, $v:expr) => { $w.write_ustring(&$v) };
    (@write $w:ident, buffer, $v:expr) => { $w.write_buffer($v.as_deref()) };
    (@write $w:ident, bytes, $v:expr) => { $w.write_buffer(Some(&$v)) };
    (@write $w:ident, vector, $v:expr) => { $w.write_vector(&$v) };
    (@write $w:ident, record, $v:expr) => { $v.write($w) };
}

/// The header of every client frame after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct RequestHeader {
    /// Client-chosen request id (≥ 1), or a reserved one: -2 ping, -4 auth, -8 setWatches
    /// from the C client (the Java client 3.8.0 sends setWatches with an ordinary xid).
    pub xid: i32,
    /// The opcode as sent (kept raw so unknown opcodes survive decoding).
    pub op: i32,
}
jute_record!(RequestHeader, 8, { xid: int = "RequestHeader.xid", op: int = "RequestHeader.type" });

/// The header of every server frame after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ReplyHeader {
    /// The request's xid echoed (whatever setWatches was sent with: -8 from the C client, an
    /// ordinary xid from the Java client), or -1 for a notification.
    pub xid: i32,
    /// The server's last processed zxid when the reply was produced (-1 on notifications).
    pub zxid: i64,
    /// 0 or a [`ZkError`] code; non-zero replies carry no body.
    pub err: i32,
}
jute_record!(ReplyHeader, 16, {
    xid: int = "ReplyHeader.xid",
    zxid: long = "ReplyHeader.zxid",
    err: int = "ReplyHeader.err",
});

impl ReplyHeader {
    /// The header of a watch notification: `{-1, -1, 0}`.
    pub const NOTIFICATION: ReplyHeader = ReplyHeader {
        xid: -1,
        zxid: -1,
        err: 0,
    };

    /// The error this header reports: `None` for 0 (success) and for codes ZooKeeper 3.8 does
    /// not define (see `err` for the raw value).
    pub fn error(&self) -> Option<ZkError> {
        ZkError::from_code(self.err).filter(|e| *e != ZkError::Ok)
    }
}

/// The first frame of a client (no RequestHeader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// The highest zxid the client has seen (0 for a fresh client).
    pub last_zxid_seen: i64,
    /// Requested session timeout.
    pub timeout_ms: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: SessionId,
    /// The session password (16 bytes; zeros for a new session). A null buffer reads as empty.
    pub passwd: Vec<u8>,
    /// The hand-appended readOnly byte; `None` when absent (clients older than 3.4).
    pub read_only: Option<bool>,
}

/// The first frame of the server (no ReplyHeader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated session timeout; 0 means the session is expired or invalid.
    pub timeout_ms: i32,
    /// The session id (0 when invalid).
    pub session_id: SessionId,
    /// The session password (exactly 16 bytes for the C client). A null buffer reads as empty.
    pub passwd: Vec<u8>,
    /// The readOnly byte, sent only if the request had one; `None` when absent.
    pub read_only: Option<bool>,
}

/// `CreateRequest`, the body of create (1), create2 (15) and createContainer (19).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreateRequest {
    /// The path to create (the prefix, for sequential nodes).
    pub path: String,
    /// The data; `None` is null (distinct from empty).
    pub data: Option<Vec<u8>>,
    /// The ACL (a null vector reads as empty).
    pub acl: Vec<Acl>,
    /// CreateMode flags (0..=6, see docs/protocol.md, Create).
    pub flags: i32,
}
jute_record!(CreateRequest, 16, {
    path: ustring = "CreateRequest.path",
    data: buffer = "CreateRequest.data",
    acl: vector = "CreateRequest.acl",
    flags: int = "CreateRequest.flags",
});

/// `CreateTTLRequest` (21).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreateTtlRequest {
    /// The path to create.
    pub path: String,
    /// The data; `None` is null.
    pub data: Option<Vec<u8>>,
    /// The ACL.
    pub acl: Vec<Acl>,
    /// CreateMode flags (5 or 6 are valid).
    pub flags: i32,
    /// Time to live after the last change.
    pub ttl_ms: i64,
}
jute_record!(CreateTtlRequest, 24, {
    path: ustring = "CreateTTLRequest.path",
    data: buffer = "CreateTTLRequest.data",
    acl: vector = "CreateTTLRequest.acl",
    flags: int = "CreateTTLRequest.flags",
    ttl_ms: long = "CreateTTLRequest.ttl",
});

/// `DeleteRequest` (2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DeleteRequest {
    /// The node to delete.
    pub path: String,
    /// Expected version, -1 for any.
    pub version: i32,
}
jute_record!(DeleteRequest, 8, {
    path: ustring = "DeleteRequest.path",
    version: int = "DeleteRequest.version",
});

/// `{path; watch}`: the body of exists (3), getData (4), getChildren (8) and getChildren2 (12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct PathWatchRequest {
    /// The node.
    pub path: String,
    /// Whether to leave a one-shot watch.
    pub watch: bool,
}
jute_record!(PathWatchRequest, 5, {
    path: ustring = "Request.path",
    watch: bool = "Request.watch",
});

/// `{path}`: the body of getACL (6), sync (9) and getAllChildrenNumber (104).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct PathRequest {
    /// The node.
    pub path: String,
}
jute_record!(PathRequest, 4, { path: ustring = "Request.path" });

/// `SetDataRequest` (5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SetDataRequest {
    /// The node.
    pub path: String,
    /// The new data; `None` is null.
    pub data: Option<Vec<u8>>,
    /// Expected version, -1 for any.
    pub version: i32,
}
jute_record!(SetDataRequest, 12, {
    path: ustring = "SetDataRequest.path",
    data: buffer = "SetDataRequest.data",
    version: int = "SetDataRequest.version",
});

/// `SetACLRequest` (7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SetAclRequest {
    /// The node.
    pub path: String,
    /// The new ACL.
    pub acl: Vec<Acl>,
    /// Expected aversion, -1 for any.
    pub version: i32,
}
jute_record!(SetAclRequest, 12, {
    path: ustring = "SetACLRequest.path",
    acl: vector = "SetACLRequest.acl",
    version: int = "SetACLRequest.version",
});

/// `CheckVersionRequest` (13, only valid inside multi).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CheckVersionRequest {
    /// The node.
    pub path: String,
    /// Expected version, -1 for any.
    pub version: i32,
}
jute_record!(CheckVersionRequest, 8, {
    path: ustring = "CheckVersionRequest.path",
    version: int = "CheckVersionRequest.version",
});

/// `ReconfigRequest` (16). Null strings read as `""`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ReconfigRequest {
    /// Servers to add (incremental mode).
    pub joining_servers: String,
    /// Server ids to remove (incremental mode).
    pub leaving_servers: String,
    /// The whole new member list (non-incremental mode).
    pub new_members: String,
    /// Expected current config version, -1 for any.
    pub cur_config_id: i64,
}
jute_record!(ReconfigRequest, 20, {
    joining_servers: ustring = "ReconfigRequest.joiningServers",
    leaving_servers: ustring = "ReconfigRequest.leavingServers",
    new_members: ustring = "ReconfigRequest.newMembers",
    cur_config_id: long = "ReconfigRequest.curConfigId",
});

/// `{path; type}`: the body of checkWatches (17) and removeWatches (18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct WatchesRequest {
    /// The node.
    pub path: String,
    /// WatcherType: 1 Children, 2 Data, 3 Any (3.9 adds 4 Persistent, 5 PersistentRecursive).
    pub watcher_type: i32,
}
jute_record!(WatchesRequest, 8, {
    path: ustring = "WatchesRequest.path",
    watcher_type: int = "WatchesRequest.type",
});

/// `AuthPacket` (100). kazoo sends the credential as a ustring: the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AuthPacket {
    /// Always 0.
    pub auth_type: i32,
    /// The scheme, e.g. `digest`.
    pub scheme: String,
    /// The credential, e.g. `user:password` (a null buffer reads as empty).
    pub auth: Vec<u8>,
}
jute_record!(AuthPacket, 12, {
    auth_type: int = "AuthPacket.type",
    scheme: ustring = "AuthPacket.scheme",
    auth: bytes = "AuthPacket.auth",
});

/// `SetWatches` (101): watches to re-arm after a reconnect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SetWatches {
    /// The client's lastZxidSeen.
    pub relative_zxid: i64,
    /// Paths with data watches (getData).
    pub data_watches: Vec<String>,
    /// Paths with exist watches (exists on an absent node).
    pub exist_watches: Vec<String>,
    /// Paths with child watches.
    pub child_watches: Vec<String>,
}
jute_record!(SetWatches, 20, {
    relative_zxid: long = "SetWatches.relativeZxid",
    data_watches: vector = "SetWatches.dataWatches",
    exist_watches: vector = "SetWatches.existWatches",
    child_watches: vector = "SetWatches.childWatches",
});

/// `SetWatches2` (105): [`SetWatches`] plus persistent watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SetWatches2 {
    /// The client's lastZxidSeen.
    pub relative_zxid: i64,
    /// Paths with data watches.
    pub data_watches: Vec<String>,
    /// Paths with exist watches.
    pub exist_watches: Vec<String>,
    /// Paths with child watches.
    pub child_watches: Vec<String>,
    /// Paths with persistent watches.
    pub persistent_watches: Vec<String>,
    /// Paths with persistent recursive watches.
    pub persistent_recursive_watches: Vec<String>,
}
jute_record!(SetWatches2, 28, {
    relative_zxid: long = "SetWatches2.relativeZxid",
    data_watches: vector = "SetWatches2.dataWatches",
    exist_watches: vector = "SetWatches2.existWatches",
    child_watches: vector = "SetWatches2.childWatches",
    persistent_watches: vector = "SetWatches2.persistentWatches",
    persistent_recursive_watches: vector = "SetWatches2.persistentRecursiveWatches",
});

/// `{buffer token}`: GetSASLRequest (102) and SetSASLResponse. A null token reads as empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SaslToken {
    /// The SASL token.
    pub token: Vec<u8>,
}
jute_record!(SaslToken, 4, { token: bytes = "SASL.token" });

/// `GetEphemeralsRequest` (103).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct GetEphemeralsRequest {
    /// Only paths starting with this; `""` or `/` means all.
    pub prefix_path: String,
}
jute_record!(GetEphemeralsRequest, 4, { prefix_path: ustring = "GetEphemeralsRequest.prefixPath" });

/// `AddWatchRequest` (106).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AddWatchRequest {
    /// The node.
    pub path: String,
    /// 0 PERSISTENT, 1 PERSISTENT_RECURSIVE.
    pub mode: i32,
}
jute_record!(AddWatchRequest, 8, {
    path: ustring = "AddWatchRequest.path",
    mode: int = "AddWatchRequest.mode",
});

/// `CreateResponse` (op 1): the created path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreateResponse {
    /// The actual path (with the sequence suffix, if any).
    pub path: String,
}
jute_record!(CreateResponse, 4, { path: ustring = "CreateResponse.path" });

/// `Create2Response` (ops 15, 19, 21): the created path and its Stat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Create2Response {
    /// The actual path.
    pub path: String,
    /// The new node's Stat.
    pub stat: Stat,
}
jute_record!(Create2Response, 72, {
    path: ustring = "Create2Response.path",
    stat: record = "Create2Response.stat",
});

/// `GetDataResponse` (getData, reconfig).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct GetDataResponse {
    /// The data; `None` is null (a node created with null data).
    pub data: Option<Vec<u8>>,
    /// The node's Stat.
    pub stat: Stat,
}
jute_record!(GetDataResponse, 72, {
    data: buffer = "GetDataResponse.data",
    stat: record = "GetDataResponse.stat",
});

/// `GetACLResponse` (6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct GetAclResponse {
    /// The ACL.
    pub acl: Vec<Acl>,
    /// The node's Stat.
    pub stat: Stat,
}
jute_record!(GetAclResponse, 72, {
    acl: vector = "GetACLResponse.acl",
    stat: record = "GetACLResponse.stat",
});

/// `GetChildren2Response` (12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct GetChildren2Response {
    /// Child names, in any order.
    pub children: Vec<String>,
    /// The parent's Stat.
    pub stat: Stat,
}
jute_record!(GetChildren2Response, 72, {
    children: vector = "GetChildren2Response.children",
    stat: record = "GetChildren2Response.stat",
});

/// `ErrorResponse{int err}`: addWatch's 4-byte body and the body of multi error entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ErrorResponse {
    /// 0 or a [`ZkError`] code.
    pub err: i32,
}
jute_record!(ErrorResponse, 4, { err: int = "ErrorResponse.err" });

/// One `ClientInfo` of a WhoAmIResponse (107).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ClientInfo {
    /// The scheme, e.g. `ip` or `digest`.
    pub auth_scheme: String,
    /// The user within it, e.g. `127.0.0.1` or `bob`.
    pub user: String,
}
jute_record!(ClientInfo, 8, {
    auth_scheme: ustring = "ClientInfo.authScheme",
    user: ustring = "ClientInfo.user",
});

/// `MultiHeader{type; done; err}` (9 bytes), in front of each op and result of a multi.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MultiHeader {
    /// The op or result type; -1 for the end marker and error entries.
    pub op_type: i32,
    /// True only on the end marker.
    pub done: bool,
    /// -1 in requests; 0 or an error code in results.
    pub err: i32,
}
jute_record!(MultiHeader, 9, {
    op_type: int = "MultiHeader.type",
    done: bool = "MultiHeader.done",
    err: int = "MultiHeader.err",
});

impl MultiHeader {
    /// The marker ending a multi request or response: `{-1, true, -1}`.
    pub const END: MultiHeader = MultiHeader {
        op_type: -1,
        done: true,
        err: -1,
    };
}

/// `WatcherEvent{type; state; path}`, the body of a notification (xid -1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct WatcherEvent {
    /// EventType: 1 NodeCreated, 2 NodeDeleted, 3 NodeDataChanged, 4 NodeChildrenChanged.
    pub event_type: i32,
    /// KeeperState: always 3 (SyncConnected) from a server.
    pub state: i32,
    /// The full server path of the node.
    pub path: String,
}
jute_record!(WatcherEvent, 12, {
    event_type: int = "WatcherEvent.type",
    state: int = "WatcherEvent.state",
    path: ustring = "WatcherEvent.path",
});

impl WatcherEvent {
    /// KeeperState SyncConnected, the only state a server sends.
    pub const STATE_SYNC_CONNECTED: i32 = 3;

    /// The event a server sends for `event_type` on `path`.
    pub fn new(event_type: crate::watch::EventType, path: &str) -> WatcherEvent {
        WatcherEvent {
            event_type: event_type.code(),
            state: WatcherEvent::STATE_SYNC_CONNECTED,
            path: path.to_owned(),
        }
    }
}
