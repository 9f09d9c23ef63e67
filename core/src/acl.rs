//! ACL data types: `Id{scheme, id}` and `Acl{perms, id}`, with ZooKeeper's permission bits.

use serde::{Deserialize, Serialize};

/// Permission bits (ZooDefs.Perms).
pub mod perms {
    /// Read data and children.
    pub const READ: i32 = 1;
    /// setData.
    pub const WRITE: i32 = 2;
    /// Create children.
    pub const CREATE: i32 = 4;
    /// Delete children.
    pub const DELETE: i32 = 8;
    /// setACL.
    pub const ADMIN: i32 = 16;
    /// Every permission.
    pub const ALL: i32 = 31;
}

/// An identity: `scheme` (world, auth, digest, ip, super) and the id within it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Id {
    /// The scheme, e.g. `digest`.
    pub scheme: String,
    /// The id within the scheme, e.g. `user:base64sha1`.
    pub id: String,
}

/// One ACL entry: the permission bits granted to an identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Acl {
    /// Bitwise OR of [`perms`] values.
    pub perms: i32,
    /// Who is granted them.
    pub id: Id,
}

impl Id {
    /// Builds an id from its scheme and value.
    pub fn new(scheme: &str, id: &str) -> Id {
        Id { scheme: scheme.to_owned(), id: id.to_owned() }
    }
}

impl Acl {
    /// `[31, world:anyone]`: ZooKeeper's OPEN_ACL_UNSAFE.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl { perms: perms::ALL, id: Id::new("world", "anyone") }]
    }

    /// `[1, world:anyone]`: ZooKeeper's READ_ACL_UNSAFE.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl { perms: perms::READ, id: Id::new("world", "anyone") }]
    }
}
