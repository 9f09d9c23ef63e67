//! Three `paddock serve` processes on loopback: writes through one server are read
//! through another, the leader is killed (SIGKILL) and the others carry on, and the
//! killed server, restarted with an empty dataDir, rejoins by snapshot.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{Member, connect, eventually, free_port, mode, start_member, temp_dir};
use paddock_net_real::client::{self, Client};

fn write_configs(root: &Path, extra: &str) -> Vec<Member> {
    let ports: Vec<(u16, u16, u16)> = (0..3)
        .map(|_| (free_port(), free_port(), free_port()))
        .collect();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer, election))| format!("server.{}=127.0.0.1:{peer}:{election}\n", i + 1))
        .collect();
    (0..3)
        .map(|i| {
            let dir = root.join(format!("node{}", i + 1));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("myid"), format!("{}\n", i + 1)).unwrap();
            let cfg = root.join(format!("zoo{}.cfg", i + 1));
            let client_port = ports[i].0;
            std::fs::write(
                &cfg,
                format!(
                    "tickTime=200\ndataDir={}\nclientPort={client_port}\n\
                     clientPortAddress=127.0.0.1\n{extra}{servers}",
                    dir.display()
                ),
            )
            .unwrap();
            Member {
                dir,
                cfg,
                client_addr: format!("127.0.0.1:{client_port}"),
                peer_addr: format!("127.0.0.1:{}", ports[i].1),
                child: None,
            }
        })
        .collect()
}

fn leader(members: &[Member]) -> usize {
    eventually("a leader is elected", || {
        members
            .iter()
            .position(|m| m.child.is_some() && mode(&m.client_addr).as_deref() == Some("leader"))
    })
}

fn read_eventually(addr: &str, path: &str, want: &[u8]) {
    eventually(&format!("{path} reaches {addr}"), || {
        let mut c = Client::connect(addr, 4000).ok()?;
        let got = c.get(path, false).ok().map(|(d, _)| d);
        let _ = c.close();
        (got.as_deref() == Some(want)).then_some(())
    });
}

/// Sends what a confused or hostile host might to a peer port: a foreign handshake, a
/// stranger's id, and a known id followed by an oversized frame. Each connection must be
/// closed by the server, which carries on.
fn peer_port_garbage(addr: &str) {
    use paddock_net_real::peer::handshake_encode;
    use std::io::{Read, Write};
    let mut oversized = handshake_encode(paddock_core::ids::NodeId(2)).to_vec();
    oversized.extend_from_slice(&u32::MAX.to_le_bytes());
    let attempts: [Vec<u8>; 3] = [
        b"GET / HTTP/1.0\r\n\r\nxxxxxxxxxx".to_vec(),
        handshake_encode(paddock_core::ids::NodeId(77)).to_vec(),
        oversized,
    ];
    for bytes in attempts {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.write_all(&bytes).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            s.read(&mut buf).unwrap_or(0),
            0,
            "peer connection left open"
        );
    }
}

// The whole story of an ensemble's life; see the module documentation.
#[test]
fn three_nodes_survive_leader_kill_and_rejoin_by_snapshot() {
    let root = temp_dir("ensemble");
    let mut members = write_configs(&root, "snapCount=10\n");
    for m in members.iter_mut() {
        start_member(m);
    }
    let first = leader(&members);
    peer_port_garbage(&members[first].peer_addr);
    let follower = (first + 1) % 3;
    let other = (first + 2) % 3;
    let mut c = connect(&members[follower].client_addr);
    c.create("/cfg", b"v0", 0).unwrap();
    c.close().unwrap();
    read_eventually(&members[other].client_addr, "/cfg", b"v0");

    members[first].child.take().unwrap().kill().unwrap();
    let second = leader(&members);
    assert_ne!(second, first);
    let survivor = if second == follower { other } else { follower };
    let mut c = connect(&members[survivor].client_addr);
    // More than snapCount writes, so the leader's log no longer reaches back to the
    // start and a server with an empty disk must catch up by snapshot.
    for i in 0..30 {
        c.set("/cfg", format!("v{i}").as_bytes(), -1).unwrap();
    }
    c.close().unwrap();

    let wiped = members[first].dir.clone();
    for item in std::fs::read_dir(&wiped).unwrap() {
        let path = item.unwrap().path();
        if path.file_name().unwrap() != "myid" {
            std::fs::remove_file(path).unwrap();
        }
    }
    start_member(&mut members[first]);
    read_eventually(&members[first].client_addr, "/cfg", b"v29");
    let has_snapshot = std::fs::read_dir(&wiped).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_str()
            .unwrap()
            .starts_with("snapshot.")
    });
    assert!(has_snapshot, "the rejoined server holds no snapshot");

    for m in members.iter_mut() {
        if let Some(mut child) = m.child.take() {
            let pid = child.id().to_string();
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            assert!(child.wait().unwrap().success(), "graceful stop failed");
        }
    }
}

fn wipe_keeping_myid(dir: &Path) {
    for item in std::fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.file_name().unwrap() != "myid" {
            if path.is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
}

fn snapshot_files(dir: &Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_str().unwrap().starts_with("snapshot."))
        .map(|e| e.metadata().unwrap().len())
        .collect()
}

// A snapshot larger than a peer message travels in pieces: with messages capped at
// 1 MiB (`paddock.peerMessageBytesMax`, the smallest allowed), a follower restarted with
// an empty disk catches up from a leader whose log no longer reaches back to the start
// (over 8 MiB of writes, so the log kept behind its snapshot is cut), by a snapshot of
// over 12 MB that no single peer frame could carry; and again once the ensemble is idle.
#[test]
fn follower_catches_up_by_a_snapshot_larger_than_a_peer_message() {
    const LIMIT: u64 = 1 << 20;
    let root = temp_dir("ensemble-pieces");
    let extra =
        format!("snapCount=20\njute.maxbuffer=262144\npaddock.peerMessageBytesMax={LIMIT}\n");
    let mut members = write_configs(&root, &extra);
    for m in members.iter_mut() {
        start_member(m);
    }
    let first = leader(&members);
    let behind = (first + 1) % 3;
    members[behind].child.take().unwrap().kill().unwrap();
    let mut c = connect(&members[first].client_addr);
    let value = vec![7u8; 200_000];
    for i in 0..64 {
        c.create(&format!("/big{i}"), &value, 0).unwrap();
    }
    c.create("/last", b"done", 0).unwrap();
    c.close().unwrap();
    // The leader's log must no longer reach back to the start: wait until it holds a
    // snapshot larger than the 8 MiB of log it keeps behind one (a loaded machine writes
    // it later than the follower would come back).
    eventually("the leader's snapshot covers most of the writes", || {
        snapshot_files(&members[first].dir)
            .into_iter()
            .any(|len| len > 9 * 1024 * 1024)
            .then_some(())
    });

    wipe_keeping_myid(&members[behind].dir);
    start_member(&mut members[behind]);
    read_eventually(&members[behind].client_addr, "/last", b"done");
    let leader_now = leader(&members);
    let sizes = snapshot_files(&members[behind].dir);
    assert!(
        sizes.iter().any(|len| *len > LIMIT + 64 * 1024),
        "the caught-up server holds no snapshot larger than a peer frame: {sizes:?}"
    );
    let leader_log =
        std::fs::read_to_string(members[leader_now].dir.with_extension("log")).unwrap();
    assert!(
        leader_log.contains("sending a snapshot"),
        "the leader sent no snapshot; its log:\n{leader_log}"
    );
    let mut c = connect(&members[behind].client_addr);
    assert_eq!(c.get("/big63", false).unwrap().0, value);
    c.close().unwrap();

    // Wiped again while the ensemble is idle: the leader counts it as caught up and has
    // nothing to send, so only the follower can tell it that its log is gone.
    // (Watched through `srvr`: a client session would itself be a write.)
    members[behind].child.take().unwrap().kill().unwrap();
    wipe_keeping_myid(&members[behind].dir);
    let leader_zxid = zxid(&members[leader_now].client_addr).unwrap();
    start_member(&mut members[behind]);
    eventually("the wiped follower catches up with no write", || {
        (zxid(&members[behind].client_addr)? == leader_zxid).then_some(())
    });
    read_eventually(&members[behind].client_addr, "/last", b"done");
}

/// The last zxid a server applied, from `srvr`.
fn zxid(addr: &str) -> Option<String> {
    let text = client::four_letter(addr, "srvr").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Zxid: "))
        .map(str::to_owned)
}

/// Connects to `peer_addr` claiming to be member `claimed`, sends `msg` in one frame and
/// keeps the connection open a moment, as an attacker on the peer port could. Returns the
/// number of bytes written.
fn forge(peer_addr: &str, claimed: u64, msg: &paddock_core::node::PeerMessage) -> usize {
    use paddock_net_real::peer::handshake_encode;
    use std::io::Write;
    let body = msg.encode();
    let mut bytes = handshake_encode(paddock_core::ids::NodeId(claimed)).to_vec();
    bytes.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(&body);
    let mut s = std::net::TcpStream::connect(peer_addr).unwrap();
    s.write_all(&bytes).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    bytes.len()
}

fn epoch_reply(epoch: u32) -> paddock_core::node::PeerMessage {
    use paddock_core::replication::{Message, MessageBody};
    paddock_core::node::PeerMessage::Replication(Message {
        epoch: paddock_core::ids::Epoch(epoch),
        body: MessageBody::HeartbeatReply,
    })
}

/// Every member answers `srvr` as leader or follower, and one of them leads.
fn all_serving(members: &[Member]) {
    eventually("every member serving", || {
        let modes: Vec<String> = members
            .iter()
            .filter_map(|m| mode(&m.client_addr))
            .collect();
        let serving = modes.len() == members.len()
            && modes.iter().all(|m| m == "leader" || m == "follower")
            && modes.iter().any(|m| m == "leader");
        serving.then_some(())
    });
}

// One 31-byte write to a peer port (the handshake claiming a member's id, then a reply
// carrying epoch 2^32 - 1) once stopped every election for good, across restarts. Now
// such an epoch is refused; an epoch far ahead but believable makes the ensemble
// re-elect, and it serves again within seconds with every acknowledged write.
#[test]
fn forged_epoch_on_the_peer_port_does_not_wedge_the_ensemble() {
    let root = temp_dir("forged-epoch");
    let mut members = write_configs(&root, "snapCount=10\n");
    for m in members.iter_mut() {
        start_member(m);
    }
    let first = leader(&members);
    let mut c = connect(&members[first].client_addr);
    c.create("/acked", b"before", 0).unwrap();
    c.close().unwrap();

    let target = (first + 1) % 3;
    let claimed = ((first + 2) % 3) as u64 + 1;
    let written = forge(&members[target].peer_addr, claimed, &epoch_reply(u32::MAX));
    assert_eq!(written, 31, "the attack of the report is 31 bytes");
    // The same forgery to every member, claiming each other id in turn.
    for (i, m) in members.iter().enumerate() {
        forge(
            &m.peer_addr,
            ((i + 1) % 3) as u64 + 1,
            &epoch_reply(u32::MAX - 1),
        );
    }
    all_serving(&members);
    // A far but believable epoch: adopted, so the ensemble re-elects, then serves.
    forge(&members[target].peer_addr, claimed, &epoch_reply(60_000));
    all_serving(&members);
    let mut c = connect(&members[target].client_addr);
    assert_eq!(c.get("/acked", false).unwrap().0, b"before");
    c.create("/after", b"x", 0).unwrap();
    c.close().unwrap();

    // Across a restart of every member too.
    for m in members.iter_mut() {
        let mut child = m.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
    for m in members.iter_mut() {
        start_member(m);
    }
    all_serving(&members);
    for m in &members {
        read_eventually(&m.client_addr, "/after", b"x");
    }
}

fn threads(member: &Member) -> usize {
    let pid = member.child.as_ref().unwrap().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

// Connections to the peer port are capped (each costs a thread): 200 silent connections
// to one member leave it with a bounded number of threads, the ensemble serving and
// replicating; and they are closed by the server, at the latest when their handshake is
// overdue.
#[test]
fn peer_port_connections_are_capped() {
    use paddock_net_real::peer::{PEER_CONNECTIONS_MIN, PEER_HANDSHAKE_TIMEOUT};
    use std::io::Read;
    let root = temp_dir("peer-flood");
    let mut members = write_configs(&root, "");
    for m in members.iter_mut() {
        start_member(m);
    }
    all_serving(&members);
    let target = &members[0];
    let before = threads(target);
    let flood: Vec<std::net::TcpStream> = (0..200)
        .filter_map(|_| std::net::TcpStream::connect(&target.peer_addr).ok())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let during = threads(target);
    assert!(
        during <= before + PEER_CONNECTIONS_MIN,
        "{before} threads before, {during} with 200 connections"
    );
    let mut c = connect(&members[1].client_addr);
    c.create("/during-flood", b"x", 0).unwrap();
    c.close().unwrap();
    read_eventually(&target.client_addr, "/during-flood", b"x");
    // Every flooding connection ends: refused at once, or closed once its handshake is
    // overdue.
    let deadline = std::time::Instant::now() + PEER_HANDSHAKE_TIMEOUT * 2;
    for mut s in flood {
        s.set_read_timeout(Some(
            deadline.saturating_duration_since(std::time::Instant::now()),
        ))
        .unwrap();
        let mut buf = [0u8; 1];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a flooding connection left open: {other:?}"),
        }
    }
    all_serving(&members);
}

// An ensemble configured as ZooKeeper 3.5+ writes it: zoo.cfg names a dynamic config file
// that holds the server lines, and no clientPort; each member takes its client address
// from its own line (`;127.0.0.1:PORT`). The three serve, and a write through one is read
// through another.
#[test]
fn an_ensemble_from_a_dynamic_config_file() {
    let root = temp_dir("ensemble-dynamic");
    let ports: Vec<(u16, u16, u16)> = (0..3)
        .map(|_| (free_port(), free_port(), free_port()))
        .collect();
    let dynamic = root.join("zoo.cfg.dynamic.100000000");
    let lines: String = ports
        .iter()
        .enumerate()
        .map(|(i, (client, peer, election))| {
            format!(
                "server.{}=127.0.0.1:{peer}:{election}:participant;127.0.0.1:{client}\n",
                i + 1
            )
        })
        .collect();
    std::fs::write(&dynamic, lines).unwrap();
    let mut members: Vec<Member> = (0..3)
        .map(|i| {
            let dir = root.join(format!("node{}", i + 1));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("myid"), format!("{}\n", i + 1)).unwrap();
            let cfg = root.join(format!("zoo{}.cfg", i + 1));
            let text = format!(
                "tickTime=200\ndataDir={}\ndynamicConfigFile={}\n",
                dir.display(),
                dynamic.display()
            );
            std::fs::write(&cfg, text).unwrap();
            Member {
                dir,
                cfg,
                client_addr: format!("127.0.0.1:{}", ports[i].0),
                peer_addr: format!("127.0.0.1:{}", ports[i].1),
                child: None,
            }
        })
        .collect();
    for member in &mut members {
        start_member(member);
    }
    all_serving(&members);
    let mut c = connect(&members[0].client_addr);
    c.create("/dynamic", b"yes", 0).unwrap();
    read_eventually(&members[2].client_addr, "/dynamic", b"yes");
}
