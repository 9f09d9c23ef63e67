//! The SASL request (opcode 102) on a real `Node`: a DIGEST-MD5 exchange with the users of
//! the node's config gives the connection the `sasl:<user>` identity (and `super` for the
//! SASL super user), answered with zxid 0 as ZooKeeper does; a wrong password, or SASL on
//! a node with no SASL users, is AUTHFAILED and closes the connection. The client side is
//! computed here from RFC 2831, independently of `paddock_core::sasl`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster_support;

use cluster_support::*;
use md5::{Digest, Md5};
use paddock_core::acl::{Acl, Id, perms};
use paddock_core::error::ZkError;
use paddock_core::ids::ConnId;
use paddock_core::wire::{CreateRequest, Reply, Request, Response, SaslToken};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5(parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

/// A client's digest-response to `challenge` for `user`/`password` (md5-sess, qop=auth).
fn respond(challenge: &[u8], user: &str, password: &str) -> Vec<u8> {
    let challenge = String::from_utf8(challenge.to_vec()).unwrap();
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a nonce in the challenge");
    let (realm, uri, cnonce) = ("zk-sasl-md5", "zookeeper/zk-sasl-md5", "c1i2e3n4t5");
    let inner = md5(&[format!("{user}:{realm}:{password}").as_bytes()]);
    let a1 = md5(&[&inner, format!(":{nonce}:{cnonce}").as_bytes()]);
    let a2 = md5(&[format!("AUTHENTICATE:{uri}").as_bytes()]);
    let response =
        md5(&[format!("{}:{nonce}:00000001:{cnonce}:auth:{}", hex(&a1), hex(&a2)).as_bytes()]);
    format!(
        "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,\
         cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={},qop=auth",
        hex(&response)
    )
    .into_bytes()
}

fn sasl(c: &mut Cluster, conn: ConnId, token: &[u8]) -> (i32, i64, Vec<u8>) {
    let (header, reply) = c
        .call(
            conn,
            Request::Sasl(SaslToken {
                token: token.to_vec(),
            }),
        )
        .expect("answered");
    let token = match reply {
        Reply::Response(Some(Response::Sasl(t))) => t.token,
        _ => Vec::new(),
    };
    (header.err, header.zxid, token)
}

fn cluster() -> Cluster {
    Cluster::new(1, 7, |config| {
        config.sasl.users.insert("bob".into(), "bobsecret".into());
        config
            .sasl
            .users
            .insert("admin".into(), "adminsecret".into());
        config.sasl.super_user = Some("admin".into());
    })
}

fn bob_only() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id::new("sasl", "bob"),
    }]
}

#[test]
fn digest_md5_gives_the_sasl_identity() {
    let mut c = cluster();
    let writer = c.connect(1);
    let request = Request::Create(CreateRequest {
        path: "/bob".into(),
        data: Some(b"d".to_vec()),
        acl: bob_only(),
        flags: 0,
    });
    assert_eq!(c.call(writer, request).unwrap().0.err, 0);
    let bob = c.connect(1);
    assert_eq!(c.get(bob, "/bob", false), Err(ZkError::NoAuth));
    let (err, zxid, challenge) = sasl(&mut c, bob, b"");
    assert_eq!((err, zxid), (0, 0));
    assert!(
        String::from_utf8_lossy(&challenge).contains("realm=\"zk-sasl-md5\""),
        "{challenge:?}"
    );
    let (err, zxid, rspauth) = sasl(&mut c, bob, &respond(&challenge, "bob", "bobsecret"));
    assert_eq!((err, zxid), (0, 0));
    assert!(rspauth.starts_with(b"rspauth="), "{rspauth:?}");
    assert_eq!(c.get(bob, "/bob", false), Ok(b"d".to_vec()));
    let (_, reply) = c.call(bob, Request::WhoAmI).unwrap();
    assert!(format!("{reply:?}").contains("sasl"), "{reply:?}");

    // The SASL super user reads what only bob may.
    let admin = c.connect(1);
    let (_, _, challenge) = sasl(&mut c, admin, b"");
    sasl(&mut c, admin, &respond(&challenge, "admin", "adminsecret"));
    assert_eq!(c.get(admin, "/bob", false), Ok(b"d".to_vec()));
}

// `addauth ip` with any address succeeds, keeps the connection, and leaves it holding its
// own address only, as ZooKeeper 3.8's IP provider does (it ignores the credential).
#[test]
fn addauth_ip_is_accepted_and_proves_nothing_new() {
    let mut c = cluster();
    let conn = c.connect(1);
    let auth = Request::Auth(paddock_core::wire::AuthPacket {
        auth_type: 0,
        scheme: "ip".into(),
        auth: b"10.9.8.7".to_vec(),
    });
    assert_eq!(c.call(conn, auth).unwrap().0.err, 0);
    let (header, reply) = c.call(conn, Request::WhoAmI).unwrap();
    assert_eq!(header.err, 0);
    let text = format!("{reply:?}");
    assert!(
        text.contains("\"ip\"") && !text.contains("10.9.8.7"),
        "{text}"
    );
    assert!(!c.clients[&conn].closed);
}

#[test]
fn a_wrong_password_fails_and_closes() {
    let mut c = cluster();
    let guesser = c.connect(1);
    let (_, _, challenge) = sasl(&mut c, guesser, b"");
    let (err, _, _) = sasl(&mut c, guesser, &respond(&challenge, "bob", "guess"));
    assert_eq!(err, ZkError::AuthFailed.code());
    c.run_until(1_000, |c| c.clients[&guesser].closed);
    assert!(c.clients[&guesser].closed, "the connection stays open");
}

#[test]
fn sasl_without_users_fails_and_closes() {
    let mut c = Cluster::new(1, 7, |_| {});
    let conn = c.connect(1);
    let (err, _, _) = sasl(&mut c, conn, b"");
    assert_eq!(err, ZkError::AuthFailed.code());
    c.run_until(1_000, |c| c.clients[&conn].closed);
    assert!(c.clients[&conn].closed, "the connection stays open");
}
