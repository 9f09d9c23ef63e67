//! ZooKeeper's snapshot file (`FileSnap`): decoding with every seal checked, and encoding
//! one ZooKeeper 3.8 loads.

use std::collections::BTreeMap;

use crate::acl::Acl;
use crate::tree::PersistedZnode;
use crate::wire::{Reader, Writer};

use super::{FILE_VERSION, SNAPSHOT_MAGIC, ZkFileError, adler32};

/// The ACL key ZooKeeper's ACL cache reserves for OPEN_ACL_UNSAFE (never listed).
const OPEN_UNSAFE_ACL_KEY: i64 = -1;

/// Bytes of one session entry (`long id, int timeout`).
const SESSION_ENTRY_BYTES: usize = 12;
/// The fewest bytes of one ACL cache entry (`long key`, an empty vector's count).
const ACL_ENTRY_MIN_BYTES: usize = 12;

/// A decoded snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkSnapshot {
    /// The database id of the file header (ZooKeeper writes 0).
    pub dbid: i64,
    /// Every session with its timeout in ms, in the file's order.
    pub sessions: Vec<(i64, i32)>,
    /// Every znode with its path (the root as `/`), in the file's order (depth first).
    pub znodes: Vec<(String, PersistedZnode)>,
    /// The tree digest ZooKeeper 3.6+ appends: the zxid it was taken at and its value.
    pub digest: Option<(i64, i64)>,
}

/// Decodes a whole (decompressed) snapshot file, checking its seal and those of the
/// sections ZooKeeper 3.6+ appends. A snapshot is fuzzy: it may hold changes after the
/// zxid in its name; replay the logs from that zxid on ([`super::ZkState`]).
pub fn decode_snapshot(bytes: &[u8]) -> Result<ZkSnapshot, ZkFileError> {
    let mut r = Reader::new(bytes);
    let magic = r.read_int("FileHeader.magic")?;
    if magic != SNAPSHOT_MAGIC {
        return Err(ZkFileError::Magic {
            kind: "snapshot",
            found: magic,
            expected: SNAPSHOT_MAGIC,
        });
    }
    let version = r.read_int("FileHeader.version")?;
    if version != FILE_VERSION {
        return Err(ZkFileError::Invalid(format!(
            "snapshot format version {version}, expected {FILE_VERSION}"
        )));
    }
    let dbid = r.read_long("FileHeader.dbid")?;
    let count = read_count(&mut r, "snapshot session count", SESSION_ENTRY_BYTES)?;
    let mut sessions = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.read_long("session id")?;
        let timeout = r.read_int("session timeout")?;
        sessions.push((id, timeout));
    }
    let count = read_count(&mut r, "ACL cache count", ACL_ENTRY_MIN_BYTES)?;
    let mut acls: BTreeMap<i64, Vec<Acl>> = BTreeMap::new();
    for _ in 0..count {
        let key = r.read_long("ACL cache key")?;
        let list = r.read_vector::<Acl>("ACL cache list")?;
        acls.insert(key, list);
    }
    let mut znodes = Vec::new();
    loop {
        let at = r.offset();
        let path = r.read_ustring("znode path")?;
        if path == "/" {
            break;
        }
        let data = r.read_buffer("DataNode.data")?;
        let key = r.read_long("DataNode.acl")?;
        let acl = if key == OPEN_UNSAFE_ACL_KEY {
            Acl::open_unsafe()
        } else {
            acls.get(&key).cloned().ok_or_else(|| {
                ZkFileError::Invalid(format!(
                    "znode {path:?} at offset {at} names ACL key {key}, which the ACL cache lacks"
                ))
            })?
        };
        let znode = PersistedZnode {
            data,
            acl,
            czxid: r.read_long("StatPersisted.czxid")?,
            mzxid: r.read_long("StatPersisted.mzxid")?,
            ctime: r.read_long("StatPersisted.ctime")?,
            mtime: r.read_long("StatPersisted.mtime")?,
            version: r.read_int("StatPersisted.version")?,
            cversion: r.read_int("StatPersisted.cversion")?,
            aversion: r.read_int("StatPersisted.aversion")?,
            ephemeral_owner: r.read_long("StatPersisted.ephemeralOwner")?,
            pzxid: r.read_long("StatPersisted.pzxid")?,
        };
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        znodes.push((path, znode));
    }
    check_seal(bytes, &mut r)?;
    // ZooKeeper 3.6+: the digest section and its seal (absent from older snapshots).
    let mut digest = None;
    if r.remaining_bytes() > 0 {
        let zxid = r.read_long("digest zxid")?;
        let digest_version = r.read_int("digest version")?;
        let value = if digest_version < 2 {
            let hex = r.read_ustring("digest")?;
            i64::from_str_radix(&hex, 16).unwrap_or(0)
        } else {
            r.read_long("digest")?
        };
        check_seal(bytes, &mut r)?;
        if zxid > 0 {
            digest = Some((zxid, value));
        }
    }
    // ZooKeeper 3.9: the last processed zxid and its seal.
    if r.remaining_bytes() > 0 {
        r.read_long("lastProcessedZxid")?;
        check_seal(bytes, &mut r)?;
    }
    r.finish("snapshot")?;
    Ok(ZkSnapshot {
        dbid,
        sessions,
        znodes,
        digest,
    })
}

/// A non-negative int count whose entries of at least `min_entry_bytes` fit in what is
/// left (so it may be allocated).
fn read_count(
    r: &mut Reader<'_>,
    field: &'static str,
    min_entry_bytes: usize,
) -> Result<usize, ZkFileError> {
    let at = r.offset();
    let count = r.read_int(field)?;
    usize::try_from(count)
        .ok()
        .filter(|count| count.saturating_mul(min_entry_bytes) <= r.remaining_bytes())
        .ok_or_else(|| {
            ZkFileError::Invalid(format!(
                "{field} {count} at offset {at} does not fit in the {} bytes left",
                r.remaining_bytes()
            ))
        })
}

/// Reads a seal (`long adler32, ustring "/"`) and checks it against every byte before it.
fn check_seal(bytes: &[u8], r: &mut Reader<'_>) -> Result<(), ZkFileError> {
    let offset = r.offset();
    let computed = adler32(bytes.get(..offset).unwrap_or_default());
    let stored = r.read_long("seal checksum")?;
    let slash = r.read_ustring("seal path")?;
    if slash != "/" {
        return Err(ZkFileError::Invalid(format!(
            "seal at offset {offset} ends with {slash:?}, not \"/\""
        )));
    }
    if stored != computed {
        return Err(ZkFileError::Checksum {
            what: "snapshot seal",
            offset,
            stored,
            computed,
        });
    }
    Ok(())
}

/// Encodes a snapshot as ZooKeeper 3.8 writes one (no digest section: ZooKeeper loads a
/// snapshot without it and computes its own). `znodes` must be in path order with the
/// root first; the root is written as `""`, as ZooKeeper names it.
pub fn encode_snapshot<'a>(
    sessions: impl IntoIterator<Item = (i64, i32)>,
    znodes: impl IntoIterator<Item = (&'a str, PersistedZnode)>,
) -> Vec<u8> {
    let znodes: Vec<(&str, PersistedZnode)> = znodes.into_iter().collect();
    let sessions: Vec<(i64, i32)> = sessions.into_iter().collect();
    // ACL lists are numbered in order of first use; OPEN_ACL_UNSAFE is the reserved -1.
    let open = Acl::open_unsafe();
    let mut keys: BTreeMap<&[Acl], i64> = BTreeMap::new();
    let mut lists: Vec<&[Acl]> = Vec::new();
    for (_, znode) in &znodes {
        if znode.acl != open && !keys.contains_key(znode.acl.as_slice()) {
            keys.insert(znode.acl.as_slice(), lists.len() as i64 + 1);
            lists.push(znode.acl.as_slice());
        }
    }
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.write_int(SNAPSHOT_MAGIC);
    w.write_int(FILE_VERSION);
    w.write_long(0);
    w.write_int(i32::try_from(sessions.len()).unwrap_or(i32::MAX));
    for (id, timeout) in &sessions {
        w.write_long(*id);
        w.write_int(*timeout);
    }
    w.write_int(i32::try_from(lists.len()).unwrap_or(i32::MAX));
    for (key, list) in lists.iter().enumerate() {
        w.write_long(key as i64 + 1);
        w.write_vector(list);
    }
    for (path, znode) in &znodes {
        w.write_ustring(if *path == "/" { "" } else { path });
        w.write_buffer(znode.data.as_deref());
        let key = keys
            .get(znode.acl.as_slice())
            .copied()
            .unwrap_or(OPEN_UNSAFE_ACL_KEY);
        w.write_long(key);
        w.write_long(znode.czxid);
        w.write_long(znode.mzxid);
        w.write_long(znode.ctime);
        w.write_long(znode.mtime);
        w.write_int(znode.version);
        w.write_int(znode.cversion);
        w.write_int(znode.aversion);
        w.write_long(znode.ephemeral_owner);
        w.write_long(znode.pzxid);
    }
    w.write_ustring("/");
    let sum = adler32(&out);
    let mut w = Writer::new(&mut out);
    w.write_long(sum);
    w.write_ustring("/");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::acl::Id;

    fn znode(acl: Vec<Acl>, owner: i64) -> PersistedZnode {
        PersistedZnode {
            data: Some(b"d".to_vec()),
            acl,
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: owner,
            pzxid: 8,
        }
    }

    fn sample() -> Vec<u8> {
        let digest = vec![Acl {
            perms: 31,
            id: Id::new("digest", "u:p"),
        }];
        let znodes = vec![
            ("/", znode(Acl::open_unsafe(), 0)),
            ("/a", znode(digest.clone(), 0)),
            ("/a/b", znode(digest, 0x77)),
        ];
        encode_snapshot([(0x77, 30_000)], znodes)
    }

    #[test]
    fn an_encoded_snapshot_decodes_to_what_was_written() {
        let snap = decode_snapshot(&sample()).unwrap();
        assert_eq!(snap.sessions, vec![(0x77, 30_000)]);
        let paths: Vec<&str> = snap.znodes.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["/", "/a", "/a/b"]);
        assert_eq!(snap.znodes[2].1.ephemeral_owner, 0x77);
        assert_eq!(snap.znodes[1].1.acl[0].id.scheme, "digest");
        assert_eq!(snap.znodes[0].1.acl, Acl::open_unsafe());
        assert_eq!(snap.digest, None);
    }

    // Every truncation and every single-bit flip is an error (Adler-32 sees any one-bit
    // change), never a panic.
    #[test]
    fn damaged_snapshots_are_refused() {
        let good = sample();
        for at in 0..good.len() {
            assert!(decode_snapshot(&good[..at]).is_err(), "cut at {at}");
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            assert!(decode_snapshot(&bad).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn a_digest_section_with_its_seal_is_read() {
        let mut bytes = sample();
        let mut w = Writer::new(&mut bytes);
        w.write_long(0x1_0000_0005);
        w.write_int(2);
        w.write_long(42);
        let sum = adler32(&bytes);
        let mut w = Writer::new(&mut bytes);
        w.write_long(sum);
        w.write_ustring("/");
        let snap = decode_snapshot(&bytes).unwrap();
        assert_eq!(snap.digest, Some((0x1_0000_0005, 42)));
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        assert!(decode_snapshot(&bytes).is_err());
    }
}
