//! The authenticated peer port, in both of its modes, each with three `paddock serve`
//! processes on 127.0.0.1, .2 and .3:
//!
//! - quorum TLS (`sslQuorum=true`), each member with a key and certificate made here for
//!   its own address by a CA made here. Forgers: a plaintext connection, a TLS client
//!   whose certificate another CA issued, and a TLS client holding member 2's own key
//!   while it claims to be member 3.
//! - quorum SASL (`quorum.auth.enableSasl=true`, `serverRequireSasl=true`), credentials in
//!   a JAAS file written here. Forgers: a connection that does not authenticate, one with
//!   the members' user name and a wrong proof, and one with an unknown user.
//!
//! The ensemble elects and replicates; then the forgers are refused on every peer port
//! before anything they send is acted on. Each sends what changes the ensemble when the
//! port trusts it (a far epoch, which makes it re-elect; see tests/ensemble.rs), a
//! forwarded create and a snapshot piece; none of it has any effect.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Member, eventually, free_port, mode, start_member, temp_dir};
use paddock_core::ids::{Epoch, NodeId, SessionId, Zxid};
use paddock_core::node::{PeerMessage, Write, WriteOp};
use paddock_core::replication::{Message, MessageBody, SnapshotMeta};
use paddock_core::tree::{CreateOp, CreateOpcode, Op};
use paddock_net_real::client::{self, Client};
use paddock_net_real::peer::{handshake_encode, handshake_encode_with};
use paddock_net_real::peer_auth::SASL_MAGIC;
use paddock_net_real::tls::QuorumTls;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA: its certificate (PEM) and what signs with it.
fn new_ca() -> (String, CertifiedIssuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    (issuer.pem(), issuer)
}

/// A key store as ZooKeeper's PEM store type holds it: the private key, then the
/// certificate, issued by `ca` for `host`.
fn key_store(ca: &CertifiedIssuer<'static, KeyPair>, host: &str) -> String {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![host.to_owned()])
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    format!("{}{}", key.serialize_pem(), cert.pem())
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_owned()
}

/// The epoch of the zxid `srvr` reports.
fn epoch(addr: &str) -> Option<u64> {
    let text = client::four_letter(addr, "srvr").ok()?;
    let zxid = text.lines().find_map(|l| l.strip_prefix("Zxid: "))?;
    u64::from_str_radix(zxid.trim_start_matches("0x"), 16)
        .ok()
        .map(|z| z >> 32)
}

fn all_serving(members: &[Member]) -> usize {
    eventually("every member serving", || {
        let modes: Vec<String> = members
            .iter()
            .filter_map(|m| mode(&m.client_addr))
            .collect();
        let serving =
            modes.len() == members.len() && modes.iter().all(|m| m == "leader" || m == "follower");
        serving
            .then(|| modes.iter().position(|m| m == "leader"))
            .flatten()
    })
}

/// What a forger sends after its handshake: a far epoch, a forwarded create of
/// `/forged`, and a snapshot piece, each framed as the peer port frames them.
fn forged_frames(epoch: u32) -> Vec<u8> {
    let far_epoch = PeerMessage::Replication(Message {
        epoch: Epoch(epoch + 1000),
        body: MessageBody::HeartbeatReply,
    });
    let forward = PeerMessage::Forward {
        epoch: Epoch(epoch),
        stream: 77,
        first_seq: 0,
        writes: vec![Write {
            origin: None,
            session: SessionId(0),
            ids: vec![],
            op: WriteOp::Tree(Op::Create(CreateOp {
                opcode: CreateOpcode::Create,
                path: "/forged".into(),
                data: Some(b"forged".to_vec()),
                acl: paddock_core::acl::Acl::open_unsafe(),
                flags: 0,
            })),
        }],
    };
    let snapshot = PeerMessage::Replication(Message {
        epoch: Epoch(epoch),
        body: MessageBody::Snapshot {
            meta: SnapshotMeta {
                index: 1_000_000,
                zxid: Zxid::new(Epoch(epoch), 999_999),
            },
            offset: 0,
            total_bytes: 4,
            bytes: b"junk".to_vec(),
        },
    });
    let mut bytes = Vec::new();
    for msg in [far_epoch, forward, snapshot] {
        let body = msg.encode();
        bytes.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        bytes.extend_from_slice(&body);
    }
    bytes
}

/// The forged frames after a plain handshake claiming member `claimed`.
fn forgeries(claimed: u64, epoch: u32) -> Vec<u8> {
    let mut bytes = handshake_encode(NodeId(claimed)).to_vec();
    bytes.extend(forged_frames(epoch));
    bytes
}

/// The forged frames after a SASL handshake claiming member `claimed` as `user`, with a
/// proof made up (the challenge is not even read).
fn sasl_forgeries(claimed: u64, user: &str, epoch: u32) -> Vec<u8> {
    let mut bytes = handshake_encode_with(SASL_MAGIC, NodeId(claimed)).to_vec();
    bytes.push(u8::try_from(user.len()).unwrap());
    bytes.extend_from_slice(user.as_bytes());
    bytes.extend_from_slice(&[7u8; 32]);
    bytes.extend_from_slice(&[9u8; 32]);
    bytes.extend(forged_frames(epoch));
    bytes
}

/// Sends `bytes` to `peer_addr`, over TLS with `tls` (as if to `host`) when given, and
/// keeps the connection a moment. Write errors are the refusal itself, so ignored.
fn send(peer_addr: &str, tls: Option<(&QuorumTls, &str)>, bytes: &[u8]) {
    let tcp = TcpStream::connect(peer_addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    match tls {
        None => {
            let mut tcp = tcp;
            let _ = tcp.write_all(bytes);
        }
        Some((tls, host)) => {
            if let Ok(mut stream) = tls.connect(host, tcp) {
                let _ = stream.write_all(bytes).and_then(|()| stream.flush());
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
}

fn log_count(members: &[Member], needle: &str) -> usize {
    members
        .iter()
        .map(|m| {
            std::fs::read_to_string(m.dir.with_extension("log"))
                .unwrap_or_default()
                .matches(needle)
                .count()
        })
        .sum()
}

const HOSTS: [&str; 3] = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];

/// Starts three members under `root`, member `i`'s config ending with `security(i)`;
/// once they serve, writes `/acked` and waits for it at a follower. Returns the members,
/// the leader's index and its epoch.
fn ensemble(root: &Path, security: impl Fn(usize) -> String) -> (Vec<Member>, usize, u64) {
    let hosts = HOSTS;
    let ports: Vec<(u16, u16, u16)> = (0..3)
        .map(|_| (free_port(), free_port(), free_port()))
        .collect();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer, election))| {
            format!("server.{}={}:{peer}:{election}\n", i + 1, hosts[i])
        })
        .collect();
    let mut members: Vec<Member> = (0..3)
        .map(|i| {
            let dir = root.join(format!("node{}", i + 1));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("myid"), format!("{}\n", i + 1)).unwrap();
            let cfg = root.join(format!("zoo{}.cfg", i + 1));
            std::fs::write(
                &cfg,
                format!(
                    "tickTime=200\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
                     {servers}{}",
                    dir.display(),
                    ports[i].0,
                    security(i),
                ),
            )
            .unwrap();
            Member {
                dir,
                cfg,
                client_addr: format!("127.0.0.1:{}", ports[i].0),
                peer_addr: format!("{}:{}", hosts[i], ports[i].1),
                child: None,
            }
        })
        .collect();
    for m in members.iter_mut() {
        start_member(m);
    }
    let leader = all_serving(&members);
    let mut c = Client::connect(&members[leader].client_addr, 4000).unwrap();
    c.create("/acked", b"acked", 0).unwrap();
    c.close().unwrap();
    let follower = (leader + 1) % 3;
    eventually("the write reaches a follower", || {
        let mut c = Client::connect(&members[follower].client_addr, 4000).ok()?;
        let got = c.get("/acked", false).ok().map(|(d, _)| d);
        let _ = c.close();
        (got.as_deref() == Some(&b"acked"[..])).then_some(())
    });
    assert_eq!(log_count(&members, "peer connection refused"), 0);
    let epoch = epoch(&members[leader].client_addr).unwrap();
    (members, leader, epoch)
}

/// After the forgers: nothing they sent was acted on (no re-election, no `/forged`, the
/// data intact).
fn nothing_forged(members: &[Member], leader: usize, epoch_before: u64) {
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(all_serving(members), leader, "the leader changed");
    for m in members {
        assert_eq!(
            epoch(&m.client_addr),
            Some(epoch_before),
            "{}",
            m.client_addr
        );
        let mut c = Client::connect(&m.client_addr, 4000).unwrap();
        assert_eq!(c.get("/acked", false).unwrap().0, b"acked");
        assert!(c.exists("/forged", false).unwrap().is_none());
        c.close().unwrap();
    }
}

#[test]
fn quorum_tls_serves_members_and_refuses_forgers() {
    let root = temp_dir("quorum-tls");
    let (ca_pem, ca) = new_ca();
    let trust = write(&root.join("trust.pem"), &ca_pem);
    let hosts = HOSTS;
    for (i, host) in hosts.iter().enumerate() {
        write(
            &root.join(format!("key{}.pem", i + 1)),
            &key_store(&ca, host),
        );
    }
    let (members, leader, epoch_before) = ensemble(&root, |i| {
        format!(
            "sslQuorum=true\nssl.quorum.keyStore.location={}\n\
             ssl.quorum.trustStore.location={}\n",
            root.join(format!("key{}.pem", i + 1)).display(),
            trust.display()
        )
    });

    // The forgers: a rogue CA's certificate for a member's address, and member 2's own
    // key and certificate (stolen) used to claim member 3. Both trust the real CA, so
    // their side of the handshake goes through.
    let (_, rogue_ca) = new_ca();
    let rogue = QuorumTls::load(
        &write(&root.join("rogue.pem"), &key_store(&rogue_ca, hosts[2])),
        &trust,
        true,
    )
    .unwrap();
    let stolen = QuorumTls::load(&root.join("key2.pem"), &trust, true).unwrap();
    let epoch_now = u32::try_from(epoch_before).unwrap();
    for (i, m) in members.iter().enumerate() {
        let claimed = if i == 2 { 1 } else { 3 };
        send(&m.peer_addr, None, &forgeries(claimed, epoch_now));
        send(
            &m.peer_addr,
            Some((&rogue, hosts[i])),
            &forgeries(claimed, epoch_now),
        );
        if i != 2 {
            // Member 2's certificate claiming member 3 (to members 1 and 2).
            send(
                &m.peer_addr,
                Some((&stolen, hosts[i])),
                &forgeries(3, epoch_now),
            );
        }
    }
    eventually("every forger refused", || {
        let tls = log_count(&members, "peer connection refused: TLS handshake failed");
        let names = log_count(&members, "not valid for the host of the member it claims");
        (tls >= 6 && names >= 2).then_some(())
    });
    nothing_forged(&members, leader, epoch_before);
}

#[test]
fn quorum_sasl_serves_members_and_refuses_forgers() {
    let root = temp_dir("quorum-sasl");
    let jaas = write(
        &root.join("jaas.conf"),
        "QuorumServer {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         user_member=\"m3mb3r-s3cret\";\n};\n\
         QuorumLearner {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         username=\"member\"\n  password=\"m3mb3r-s3cret\";\n};\n",
    );
    let (members, leader, epoch_before) = ensemble(&root, |_| {
        format!(
            "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
             quorum.auth.serverRequireSasl=true\njava.security.auth.login.config={}\n",
            jaas.display()
        )
    });
    assert_eq!(log_count(&members, "quorum SASL failed"), 0);
    let epoch_now = u32::try_from(epoch_before).unwrap();
    for (i, m) in members.iter().enumerate() {
        let claimed = if i == 2 { 1 } else { 3 };
        send(&m.peer_addr, None, &forgeries(claimed, epoch_now));
        send(
            &m.peer_addr,
            None,
            &sasl_forgeries(claimed, "member", epoch_now),
        );
        send(
            &m.peer_addr,
            None,
            &sasl_forgeries(claimed, "intruder", epoch_now),
        );
    }
    eventually("every forger refused", || {
        let unauthenticated = log_count(&members, "it did not authenticate");
        let wrong = log_count(&members, "wrong password for user \"member\"");
        let unknown = log_count(&members, "unknown user \"intruder\"");
        (unauthenticated >= 3 && wrong >= 3 && unknown >= 3).then_some(())
    });
    nothing_forged(&members, leader, epoch_before);
}
