//! ACLs: the `Id{scheme, id}` and `Acl{perms, id}` types with ZooKeeper's permission bits,
//! and the ACL logic of ZooKeeper 3.8 (docs/protocol.md, ACLs): the permission check, the
//! fix-up of ACL lists on create/setACL, digest ids and the auth-packet handling.
//!
//! Invariants: an ACL list that passed [`fixup_acl`] is non-empty, has no duplicate entry
//! and holds no `auth` entry (those are expanded into the caller's ids). Supported schemes
//! are `world` (only `anyone`), `digest`, `ip` (IPv4 only, as ZooKeeper 3.8), `x509` (the
//! subject of the certificate a client presented over TLS, in RFC 2253 form as Java's
//! `X500Principal.getName()` prints it; the runtime gives a connection that identity),
//! `sasl` (the user a connection authenticated as with a SASL request; a caller whose SASL
//! user is `super` matches every `sasl` entry, as in ZooKeeper) and, on the caller side
//! only, `super`. Auth packets for `x509` and `sasl` are AUTHFAILED: those identities come
//! from the TLS handshake and the SASL exchange only. This module does not know
//! connections: callers pass the identities a connection holds.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha1::Digest;

use crate::error::ZkError;

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
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Id {
    /// The scheme, e.g. `digest`.
    pub scheme: String,
    /// The id within the scheme, e.g. `user:base64sha1`.
    pub id: String,
}

/// One ACL entry: the permission bits granted to an identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Acl {
    /// Bitwise OR of [`perms`] values.
    pub perms: i32,
    /// Who is granted them.
    pub id: Id,
}

impl Id {
    /// Builds an id from its scheme and value.
    pub fn new(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.to_owned(),
            id: id.to_owned(),
        }
    }
}

impl Acl {
    /// `[31, world:anyone]`: ZooKeeper's OPEN_ACL_UNSAFE.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: perms::ALL,
            id: Id::new("world", "anyone"),
        }]
    }

    /// `[1, world:anyone]`: ZooKeeper's READ_ACL_UNSAFE.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: perms::READ,
            id: Id::new("world", "anyone"),
        }]
    }

    /// `[31, auth:""]`: ZooKeeper's CREATOR_ALL_ACL (expanded by [`fixup_acl`]).
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl {
            perms: perms::ALL,
            id: Id::new("auth", ""),
        }]
    }
}

/// Whether a caller holding `caller_ids` may do `wanted` (one or more [`perms`] bits, any of
/// which suffices) on a node whose ACL is `acl` (ZooKeeperServer.checkACL): an empty ACL
/// allows everything, a `super` id allows everything, otherwise some entry granting one of
/// the wanted bits must be `world:anyone` or match one of the caller's ids of its scheme.
pub fn check(acl: &[Acl], caller_ids: &[Id], wanted: i32) -> Result<(), ZkError> {
    if acl.is_empty() || caller_ids.iter().any(|id| id.scheme == "super") {
        return Ok(());
    }
    let granted = acl
        .iter()
        .filter(|entry| entry.perms & wanted != 0)
        .any(|entry| {
            is_world_anyone(&entry.id)
                || caller_ids
                    .iter()
                    .filter(|caller| caller.scheme == entry.id.scheme)
                    .any(|caller| id_matches(&entry.id.scheme, &caller.id, &entry.id.id))
        });
    if granted {
        Ok(())
    } else {
        Err(ZkError::NoAuth)
    }
}

fn is_world_anyone(id: &Id) -> bool {
    id.scheme == "world" && id.id == "anyone"
}

/// Whether a caller's id (`caller`) of `scheme` matches the ACL entry's id expression.
fn id_matches(scheme: &str, caller: &str, acl_expr: &str) -> bool {
    match scheme {
        "digest" | "x509" => caller == acl_expr,
        "sasl" => caller == acl_expr || caller == "super",
        "ip" => ip_matches(caller, acl_expr),
        _ => false,
    }
}

/// IPAuthenticationProvider.matches: `acl_expr` is `a.b.c.d` or `a.b.c.d/bits`, and the
/// first `bits` bits (32 when absent) of the caller's address must equal the expression's.
fn ip_matches(caller: &str, acl_expr: &str) -> bool {
    let Some((acl_addr, bits)) = parse_ip_expr(acl_expr) else {
        return false;
    };
    let Some(caller_addr) = parse_ipv4(caller) else {
        return false;
    };
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    acl_addr & mask == caller_addr & mask
}

/// Parses `a.b.c.d[/bits]` into the address and the prefix length (0..=32).
fn parse_ip_expr(expr: &str) -> Option<(u32, u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((addr, bits)) => (addr, bits.parse::<i32>().ok()?),
        None => (expr, 32),
    };
    let bits = u32::try_from(bits).ok().filter(|b| *b <= 32)?;
    Some((parse_ipv4(addr)?, bits))
}

/// Parses a dotted-quad IPv4 address the way ZooKeeper's `addr2Bytes` does: exactly four
/// parts, each an integer (Java's `Integer.parseInt`, so `+1` and `001` pass) in 0..=255.
fn parse_ipv4(addr: &str) -> Option<u32> {
    let mut value: u32 = 0;
    let mut count = 0;
    for part in addr.split('.') {
        let octet = part
            .parse::<i32>()
            .ok()
            .and_then(|v| u8::try_from(v).ok())?;
        value = (value << 8) | u32::from(octet);
        count += 1;
    }
    (count == 4).then_some(value)
}

/// Whether an ACL id is well formed for its scheme (the providers' `isValid`).
fn is_valid_id(id: &Id) -> bool {
    match id.scheme.as_str() {
        "world" => id.id == "anyone",
        // Exactly one `:` and a non-empty hash after it (Java's `split(":").length == 2`).
        "digest" => {
            let mut parts = id.id.split(':');
            matches!((parts.next(), parts.next(), parts.next()), (Some(_), Some(h), None) if !h.is_empty())
        }
        "ip" => parse_ip_expr(&id.id).is_some(),
        "x509" => !id.id.is_empty(),
        "sasl" => is_principal(&id.id),
        _ => false,
    }
}

/// A SASL ACL id as ZooKeeper's `KerberosName` parses it: `name[/host][@realm]`, each part
/// free of `/` and `@`, the name non-empty.
fn is_principal(id: &str) -> bool {
    let (rest, realm) = id.split_once('@').unwrap_or((id, ""));
    let (name, host) = rest.split_once('/').unwrap_or((rest, ""));
    !name.is_empty() && [realm, host].iter().all(|p| !p.contains(['/', '@']))
}

/// Whether a caller id counts as "authenticated" for the `auth` scheme: ip ids do not
/// (every connection has one), and `super` has no ACL form, so only digest, x509 and
/// sasl ids do.
fn is_authenticated(id: &Id) -> bool {
    matches!(id.scheme.as_str(), "digest" | "x509" | "sasl")
}

/// PrepRequestProcessor.fixupACL for create and setACL: drops duplicate entries (keeping the
/// first), refuses an empty list or an entry with an unknown scheme or invalid id
/// (INVALIDACL), and replaces each `auth` entry by one entry per authenticated id of the
/// caller (INVALIDACL when the caller has none).
pub fn fixup_acl(acl: &[Acl], caller_ids: &[Id]) -> Result<Vec<Acl>, ZkError> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(ZkError::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for entry in unique {
        if entry.id.scheme == "auth" {
            let before = fixed.len();
            fixed.extend(
                caller_ids
                    .iter()
                    .filter(|id| is_authenticated(id))
                    .map(|id| Acl {
                        perms: entry.perms,
                        id: id.clone(),
                    }),
            );
            if fixed.len() == before {
                return Err(ZkError::InvalidAcl);
            }
        } else if is_valid_id(&entry.id) {
            fixed.push(entry.clone());
        } else {
            return Err(ZkError::InvalidAcl);
        }
    }
    Ok(fixed)
}

/// The ACL list getACL returns to a caller without ADMIN on the node: digest ids are masked
/// to `user:x` (everything from the first `:` on is replaced), as ZooKeeper 3.6+ does.
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|entry| {
            if entry.id.scheme != "digest" {
                return entry.clone();
            }
            let masked = match entry.id.id.split_once(':') {
                Some((user, _)) => format!("{user}:x"),
                None => entry.id.id.clone(),
            };
            Acl {
                perms: entry.perms,
                id: Id::new("digest", &masked),
            }
        })
        .collect()
}

/// The digest id of a credential `user:password`: `user:base64(sha1("user:password"))`
/// (DigestAuthenticationProvider.generateDigest).
pub fn digest_id(user: &str, password: &str) -> String {
    digest_of_credential(&format!("{user}:{password}"))
}

/// generateDigest on a whole credential string: the user is the part before the first `:`
/// (the whole string if there is none) and the hash covers the whole string.
fn digest_of_credential(credential: &str) -> String {
    let user = credential
        .split_once(':')
        .map_or(credential, |(user, _)| user);
    let hash = sha1::Sha1::digest(credential.as_bytes());
    let encoded = base64::engine::general_purpose::STANDARD.encode(hash.as_slice());
    format!("{user}:{encoded}")
}

/// Handles an auth packet: the ids it adds to the connection. `digest` always succeeds
/// (checking happens against ACLs) and adds `digest:<digest id>`, preceded by `super:` when
/// the digest equals `super_digest` (the configured `super:<hash>`). Any other scheme fails
/// with AUTHFAILED. Credentials that are not UTF-8 are read lossily, as Java's `new String`.
pub fn add_auth(scheme: &str, auth: &[u8], super_digest: Option<&str>) -> Result<Vec<Id>, ZkError> {
    // ZooKeeper's IP provider takes the connection's address whatever the credential
    // says: every connection here holds its `ip` id from the start, so nothing is added.
    if scheme == "ip" {
        return Ok(Vec::new());
    }
    if scheme != "digest" {
        return Err(ZkError::AuthFailed);
    }
    let digest = digest_of_credential(&String::from_utf8_lossy(auth));
    let mut ids = Vec::with_capacity(2);
    if super_digest == Some(digest.as_str()) {
        ids.push(Id::new("super", ""));
    }
    ids.push(Id::new("digest", &digest));
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }

    // `addauth ip ANYTHING` succeeds and proves nothing new (the connection's address is
    // already its ip id); an unknown scheme fails.
    #[test]
    fn add_auth_ip_adds_nothing() {
        assert_eq!(add_auth("ip", b"10.9.8.7", None), Ok(Vec::new()));
        assert_eq!(add_auth("ip", b"", None), Ok(Vec::new()));
        assert_eq!(add_auth("krb", b"x", None), Err(ZkError::AuthFailed));
    }

    // The digest test vectors of docs/protocol.md, ACLs (`super:test` is the super digest of
    // ZooKeeper's own tests).
    #[test]
    fn digest_vectors() {
        assert_eq!(
            digest_id("user", "password"),
            "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="
        );
        assert_eq!(
            digest_id("super", "test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
        assert_eq!(
            digest_id("bob", "secret"),
            "bob:fyVmFCwVbTJYrznoSu1koqYEYF0="
        );
    }

    // A digest auth packet always succeeds; the super digest adds `super` first; other
    // schemes fail with AUTHFAILED.
    // x509: an ACL entry for a certificate subject is valid, matches exactly that
    // subject, and an `auth` entry expands to the caller's x509 identity (as to its digest
    // ones); an x509 auth packet fails (the identity comes from TLS only).
    #[test]
    fn x509_scheme() {
        let subject = "CN=client1,O=Example";
        let acl = vec![Acl {
            perms: perms::READ,
            id: Id::new("x509", subject),
        }];
        assert_eq!(fixup_acl(&acl, &[]), Ok(acl.clone()));
        let empty = vec![Acl {
            perms: perms::READ,
            id: Id::new("x509", ""),
        }];
        assert_eq!(fixup_acl(&empty, &[]), Err(ZkError::InvalidAcl));
        let holder = [Id::new("ip", "10.0.0.1"), Id::new("x509", subject)];
        let other = [Id::new("x509", "CN=client2,O=Example")];
        assert_eq!(check(&acl, &holder, perms::READ), Ok(()));
        assert_eq!(check(&acl, &other, perms::READ), Err(ZkError::NoAuth));
        let auth = vec![Acl {
            perms: perms::ALL,
            id: Id::new("auth", ""),
        }];
        assert_eq!(
            fixup_acl(&auth, &holder),
            Ok(vec![Acl {
                perms: perms::ALL,
                id: Id::new("x509", subject),
            }])
        );
        assert_eq!(add_auth("x509", b"CN=me", None), Err(ZkError::AuthFailed));
    }

    #[test]
    fn add_auth_schemes() {
        let ids = add_auth("digest", b"bob:secret", None).expect("digest auth succeeds");
        assert_eq!(
            ids,
            vec![Id::new("digest", "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=")]
        );
        let sup = Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        let ids = add_auth("digest", b"super:test", sup).expect("digest auth succeeds");
        assert_eq!(ids[0], Id::new("super", ""));
        assert_eq!(
            ids[1],
            Id::new("digest", "super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
        let ids = add_auth("digest", b"super:wrong", sup).expect("digest auth succeeds");
        assert_eq!(ids.len(), 1);
        assert_eq!(
            add_auth("ip", b"1.2.3.4", None),
            Ok(Vec::new()),
            "as ZooKeeper 3.8"
        );
        assert_eq!(add_auth("nope", b"x", None), Err(ZkError::AuthFailed));
        // No `:` at all: the user is the whole credential.
        let ids = add_auth("digest", b"alone", None).expect("digest auth succeeds");
        assert!(ids[0].id.starts_with("alone:"));
    }

    // The check algorithm: empty ACL allows, super allows, world:anyone allows only the
    // granted bits, digest matches exactly, ip matches by prefix.
    #[test]
    fn check_algorithm() {
        let ip = [Id::new("ip", "10.1.2.3")];
        assert_eq!(check(&[], &ip, perms::ADMIN), Ok(()));
        let read_only = Acl::read_unsafe();
        assert_eq!(check(&read_only, &ip, perms::READ), Ok(()));
        assert_eq!(check(&read_only, &ip, perms::WRITE), Err(ZkError::NoAuth));
        assert_eq!(check(&read_only, &ip, perms::WRITE | perms::READ), Ok(()));
        let sup = [Id::new("ip", "10.1.2.3"), Id::new("super", "")];
        assert_eq!(check(&read_only, &sup, perms::WRITE), Ok(()));

        let bob = digest_id("bob", "secret");
        let digest_acl = [acl(perms::ALL, "digest", &bob)];
        assert_eq!(check(&digest_acl, &ip, perms::READ), Err(ZkError::NoAuth));
        let with_bob = [Id::new("ip", "10.1.2.3"), Id::new("digest", &bob)];
        assert_eq!(check(&digest_acl, &with_bob, perms::READ), Ok(()));
        let alice = [Id::new("digest", &digest_id("alice", "secret"))];
        assert_eq!(
            check(&digest_acl, &alice, perms::READ),
            Err(ZkError::NoAuth)
        );

        for (expr, allowed) in [
            ("10.1.2.3", true),
            ("10.1.2.4", false),
            ("10.1.0.0/16", true),
            ("10.2.0.0/16", false),
            ("0.0.0.0/0", true),
            ("10.1.2.2/31", true),
            ("10.1.2.4/31", false),
            ("10.1.2.3/33", false),
            ("10.1.2", false),
        ] {
            let got = check(&[acl(perms::READ, "ip", expr)], &ip, perms::READ);
            assert_eq!(got.is_ok(), allowed, "ip expression {expr}");
        }
        // A digest id never matches an ip entry, even with the same text.
        let digest_caller = [Id::new("digest", "10.1.2.3")];
        assert!(check(&[acl(perms::READ, "ip", "10.1.2.3")], &digest_caller, 1).is_err());
    }

    // fixupACL: dedupe keeping order, INVALIDACL for empty/unknown/invalid, `auth` expands
    // to the caller's digest ids only.
    #[test]
    fn fixup_rules() {
        let ip_only = [Id::new("ip", "127.0.0.1")];
        let open = Acl::open_unsafe();
        let doubled = [open[0].clone(), open[0].clone()];
        assert_eq!(fixup_acl(&doubled, &ip_only), Ok(open.clone()));
        assert_eq!(fixup_acl(&[], &ip_only), Err(ZkError::InvalidAcl));
        for (scheme, id) in [
            ("world", "someone"),
            ("super", ""),
            ("x509", ""),
            ("sasl", ""),
            ("sasl", "a/b/c"),
            ("sasl", "a@b@c"),
            ("digest", "user"),
            ("digest", "user:"),
            ("digest", "a:b:c"),
            ("ip", "1.2.3"),
            ("ip", "1.2.3.4/40"),
            ("ip", "1.2.3.256"),
        ] {
            assert_eq!(
                fixup_acl(&[acl(1, scheme, id)], &ip_only),
                Err(ZkError::InvalidAcl),
                "{scheme}:{id}"
            );
        }
        assert!(fixup_acl(&[acl(1, "digest", "u:h")], &ip_only).is_ok());
        assert!(fixup_acl(&[acl(1, "ip", "1.2.3.4/8")], &ip_only).is_ok());
        assert_eq!(
            fixup_acl(&Acl::creator_all(), &ip_only),
            Err(ZkError::InvalidAcl)
        );
        let bob = Id::new("digest", &digest_id("bob", "secret"));
        let amy = Id::new("digest", &digest_id("amy", "secret"));
        let caller = [
            ip_only[0].clone(),
            Id::new("super", ""),
            bob.clone(),
            amy.clone(),
        ];
        assert_eq!(
            fixup_acl(&Acl::creator_all(), &caller),
            Ok(vec![Acl { perms: 31, id: bob }, Acl { perms: 31, id: amy }])
        );
    }

    // sasl: an entry names a principal (`name[/host][@realm]`), matches exactly that SASL
    // user (or the SASL user `super`), `auth` expands to the caller's SASL identity, and a
    // sasl auth packet fails (the identity comes from the SASL exchange only).
    #[test]
    fn sasl_scheme() {
        let entry = [acl(perms::READ, "sasl", "bob")];
        assert_eq!(fixup_acl(&entry, &[]), Ok(entry.to_vec()));
        for id in ["zookeeper/host@EXAMPLE.COM", "bob@EXAMPLE.COM", "svc/host"] {
            assert!(fixup_acl(&[acl(1, "sasl", id)], &[]).is_ok(), "{id}");
        }
        let bob = [Id::new("ip", "10.0.0.1"), Id::new("sasl", "bob")];
        assert_eq!(check(&entry, &bob, perms::READ), Ok(()));
        assert_eq!(
            check(&entry, &[Id::new("sasl", "amy")], perms::READ),
            Err(ZkError::NoAuth)
        );
        assert_eq!(
            check(&entry, &[Id::new("digest", "bob")], perms::READ),
            Err(ZkError::NoAuth)
        );
        assert_eq!(
            check(&entry, &[Id::new("sasl", "super")], perms::READ),
            Ok(())
        );
        assert_eq!(
            fixup_acl(&Acl::creator_all(), &bob),
            Ok(vec![Acl {
                perms: perms::ALL,
                id: Id::new("sasl", "bob"),
            }])
        );
        assert_eq!(add_auth("sasl", b"bob", None), Err(ZkError::AuthFailed));
    }

    // getACL masking keeps the user and replaces the hash by `x`.
    #[test]
    fn masking() {
        let list = [acl(1, "digest", "bob:abc"), acl(2, "world", "anyone")];
        assert_eq!(
            mask_digests(&list),
            vec![acl(1, "digest", "bob:x"), acl(2, "world", "anyone")]
        );
    }
}
