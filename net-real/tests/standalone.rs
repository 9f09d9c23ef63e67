//! A standalone `paddock` server in this process, on a free port, driven through our own
//! wire client: CRUD, watches, four-letter words, limits, bad input, and recovery from
//! its data directory.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{connect, standalone, temp_dir};
use paddock_core::error::ZkError;
use paddock_net_real::client::{self, ClientError};
use paddock_net_real::server;

// Create, get, set, children and delete behave as ZooKeeper's, and a data watch set by
// one session fires when another session changes the znode.
#[test]
fn crud_and_watch() {
    let dir = temp_dir("crud");
    let server = standalone(&dir, "");
    let addr = server.client_addr.to_string();
    let mut a = connect(&addr);
    let mut b = connect(&addr);
    assert_eq!(a.create("/app", b"v1", 0).unwrap(), "/app");
    let seq = a.create("/app/job-", b"", 2).unwrap();
    assert_eq!(seq, "/app/job-0000000000");
    assert!(matches!(
        b.create("/app", b"", 0),
        Err(ClientError::Zk(ZkError::NodeExists))
    ));
    let (data, stat) = b.get("/app", true).unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"v1"[..], 0));
    a.set("/app", b"v2", 0).unwrap();
    let event = b.next_event(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!((event.event_type, event.path.as_str()), (3, "/app"));
    assert_eq!(b.children("/app", false).unwrap(), vec!["job-0000000000"]);
    a.delete(&seq, -1).unwrap();
    assert_eq!(a.exists(&seq, false).unwrap(), None);
    a.close().unwrap();
    b.close().unwrap();
    server.shutdown().unwrap();
}

// The default whitelist answers ruok, srvr, mntr and envi in ZooKeeper's layouts and
// refuses the rest with ZooKeeper's text.
#[test]
fn four_letter_words() {
    let dir = temp_dir("4lw");
    let server = standalone(&dir, "");
    let addr = server.client_addr.to_string();
    assert_eq!(client::four_letter(&addr, "ruok").unwrap(), "imok");
    let srvr = client::four_letter(&addr, "srvr").unwrap();
    assert!(
        srvr.starts_with("Zookeeper version: 3.8.0-paddock"),
        "{srvr}"
    );
    assert!(srvr.contains("\nMode: standalone\n"), "{srvr}");
    assert!(srvr.contains("\nNode count: 4\n"), "{srvr}");
    // Latencies are measured: min <= avg <= max, in ZooKeeper's layout.
    let latency = srvr
        .lines()
        .find_map(|l| l.strip_prefix("Latency min/avg/max: "))
        .unwrap();
    let parts: Vec<f64> = latency.split('/').map(|p| p.parse().unwrap()).collect();
    assert!(
        parts.len() == 3 && parts[0] <= parts[1] && parts[1] <= parts[2],
        "{srvr}"
    );
    // zk_uptime counts whole ms: a server answering within its first ms says 0.
    std::thread::sleep(Duration::from_millis(5));
    let mntr = client::four_letter(&addr, "mntr").unwrap();
    assert!(mntr.contains("zk_server_state\tstandalone\n"), "{mntr}");
    for key in ["zk_avg_latency\t", "zk_max_latency\t", "zk_min_latency\t"] {
        assert!(mntr.contains(key), "{mntr}");
    }
    assert!(mntr.contains("zk_znode_count\t4\n"), "{mntr}");
    let metric = |key: &str| -> f64 {
        mntr.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("mntr reports {key}: {mntr}"))
    };
    assert!(metric("paddock_loop_round_max_ms") > 0.0, "{mntr}");
    assert!(metric("paddock_loop_event_max_ms") > 0.0, "{mntr}");
    assert_eq!(metric("paddock_payload_errors"), 0.0, "{mntr}");
    assert_eq!(metric("paddock_invariant_breaches"), 0.0, "{mntr}");
    // ZooKeeper's keys whose values Paddock has: uptime, no local sessions, and the
    // process's file descriptors (at least its listeners and the data files) under their
    // limit.
    assert!(metric("zk_uptime") > 0.0, "{mntr}");
    assert_eq!(metric("zk_local_sessions"), 0.0, "{mntr}");
    let open = metric("zk_open_file_descriptor_count");
    assert!(
        open >= 3.0 && open < metric("zk_max_file_descriptor_count"),
        "{mntr}"
    );
    let envi = client::four_letter(&addr, "envi").unwrap();
    assert!(envi.starts_with("Environment:\n"), "{envi}");
    assert!(envi.contains("\nzookeeper.version=3.8.0-"), "{envi}");
    assert_eq!(
        client::four_letter(&addr, "stat").unwrap(),
        "stat is not executed because it is not in the whitelist.\n"
    );
    server.shutdown().unwrap();
}

// With the whitelist opened, stat lists the other connections and wchs counts watches.
#[test]
fn four_letter_words_whitelisted() {
    let dir = temp_dir("4lw-all");
    let server = standalone(&dir, "4lw.commands.whitelist=*\n");
    let addr = server.client_addr.to_string();
    let mut a = connect(&addr);
    a.exists("/zookeeper", true).unwrap();
    let stat = client::four_letter(&addr, "stat").unwrap();
    assert!(stat.contains("Clients:\n /127.0.0.1:"), "{stat}");
    let wchs = client::four_letter(&addr, "wchs").unwrap();
    assert_eq!(wchs, "1 connections watching 1 paths\nTotal watches:1\n");
    let conf = client::four_letter(&addr, "conf").unwrap();
    assert!(conf.contains("tickTime=200\n"), "{conf}");
    // cons: the session, its last operation (the exists above), timeout and latencies.
    let cons = client::four_letter(&addr, "cons").unwrap();
    let line = cons
        .lines()
        .find(|l| l.contains(",sid=0x"))
        .unwrap_or_default();
    for field in [
        "lop=EXIS,",
        ",to=",
        ",lzxid=0x",
        ",minlat=",
        ",avglat=",
        ",maxlat=",
    ] {
        assert!(line.contains(field), "{field} missing from {cons}");
    }
    // isro: read-write while serving; dirs: the bytes of dataDir and dataLogDir (one
    // directory here).
    assert_eq!(client::four_letter(&addr, "isro").unwrap(), "rw");
    let dirs = client::four_letter(&addr, "dirs").unwrap();
    let sizes: Vec<u64> = dirs
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(dirs.starts_with("datadir_size: "), "{dirs}");
    assert!(
        sizes.len() == 2 && sizes[0] > 0 && sizes[0] == sizes[1],
        "{dirs}"
    );
    // crst forgets the connections' statistics (the last operation is NA again); srst the
    // server's counters.
    assert_eq!(
        client::four_letter(&addr, "crst").unwrap(),
        "Connection stats reset.\n"
    );
    let cons = client::four_letter(&addr, "cons").unwrap();
    assert!(cons.contains("lop=NA,"), "{cons}");
    let received = |srvr: &str| -> u64 {
        let line = srvr.lines().find(|l| l.starts_with("Received: ")).unwrap();
        line["Received: ".len()..].parse().unwrap()
    };
    let before = received(&client::four_letter(&addr, "srvr").unwrap());
    assert!(before >= 2, "connect and exists: {before}");
    assert_eq!(
        client::four_letter(&addr, "srst").unwrap(),
        "Server stats reset.\n"
    );
    let after = received(&client::four_letter(&addr, "srvr").unwrap());
    assert!(after < before, "{after} after srst, {before} before");
    a.close().unwrap();
    server.shutdown().unwrap();
}

// Garbage on one connection closes that connection only; other sessions carry on.
#[test]
fn malformed_bytes_close_only_that_connection() {
    let dir = temp_dir("malformed");
    let server = standalone(&dir, "");
    let addr = server.client_addr.to_string();
    let mut good = connect(&addr);
    for garbage in [
        &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3][..],
        &[0, 0, 0, 3, 9, 9, 9],
    ] {
        let mut bad = TcpStream::connect(&addr).unwrap();
        bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        bad.write_all(garbage).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(bad.read(&mut buf).unwrap_or(0), 0, "connection left open");
    }
    good.create("/still-here", b"", 0).unwrap();
    good.close().unwrap();
    server.shutdown().unwrap();
}

// maxClientCnxns bounds the connections from one address; closing one makes room.
#[test]
fn max_client_cnxns_per_ip() {
    let dir = temp_dir("cnxns");
    let server = standalone(&dir, "maxClientCnxns=2\n");
    let addr = server.client_addr.to_string();
    let a = connect(&addr);
    let _b = connect(&addr);
    assert!(paddock_net_real::client::Client::connect(&addr, 4000).is_err());
    a.close().unwrap();
    let c = common::eventually("a slot frees up", || {
        paddock_net_real::client::Client::connect(&addr, 4000).ok()
    });
    c.close().unwrap();
    server.shutdown().unwrap();
}

// A restarted server finds every acknowledged write, across snapshots and purges, and a
// torn log tail is cut rather than refused.
#[test]
fn restart_recovers_from_disk() {
    let dir = temp_dir("restart");
    let extra = "snapCount=5\nautopurge.snapRetainCount=3\n";
    let server = standalone(&dir, extra);
    let mut c = connect(&server.client_addr.to_string());
    for i in 0..20 {
        c.create(&format!("/n{i}"), format!("{i}").as_bytes(), 0)
            .unwrap();
    }
    c.close().unwrap();
    server.shutdown().unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("snapshot.")),
        "{names:?}"
    );
    let mut logs: Vec<_> = names.iter().filter(|n| n.starts_with("log.")).collect();
    logs.sort();
    let last_log = dir.join(logs.last().unwrap());
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&last_log)
        .unwrap();
    file.write_all(&[0x55; 7]).unwrap();
    let server = standalone(&dir, extra);
    let mut c = connect(&server.client_addr.to_string());
    for i in 0..20 {
        let (data, _) = c.get(&format!("/n{i}"), false).unwrap();
        assert_eq!(data, format!("{i}").as_bytes());
    }
    c.close().unwrap();
    server.shutdown().unwrap();
}

// A damaged record in the middle of the log stops start-up with a message naming it.
#[test]
fn mid_log_corruption_refuses_to_start() {
    let dir = temp_dir("corrupt");
    let server = standalone(&dir, "");
    let mut c = connect(&server.client_addr.to_string());
    for i in 0..5 {
        c.create(&format!("/n{i}"), b"data", 0).unwrap();
    }
    c.close().unwrap();
    server.shutdown().unwrap();
    let log = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("log."))
        .unwrap();
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(&log, bytes).unwrap();
    let text = format!(
        "dataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n",
        dir.display()
    );
    let (cfg, _) = paddock_net_real::config::parse(&text).unwrap();
    let err = server::start(cfg).unwrap_err().to_string();
    assert!(
        err.contains("refusing to start") && err.contains("corrupt record"),
        "{err}"
    );
}

// Two servers started at the same instant hand out unrelated session passwords: none
// repeats, and any two differ in about half their 128 bits (at least 24 of them: a chance
// below 10^-12 for independent random passwords), as the password key comes from the
// operating system's random source, not from the start time or process id.
#[test]
fn servers_started_together_hand_out_unrelated_passwords() {
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let start = start.clone();
            std::thread::spawn(move || {
                let dir = temp_dir(&format!("passwords-{i}"));
                start.wait();
                let server = standalone(&dir, "");
                let addr = server.client_addr.to_string();
                let passwords: Vec<Vec<u8>> =
                    (0..4).map(|_| connect(&addr).password.clone()).collect();
                drop(server);
                passwords
            })
        })
        .collect();
    let passwords: Vec<Vec<u8>> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    for (i, a) in passwords.iter().enumerate() {
        assert_eq!(a.len(), 16);
        for b in &passwords[i + 1..] {
            let differing: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
            assert!(differing >= 24, "related passwords {a:02x?} and {b:02x?}");
        }
    }
}

// skipACL=yes: a client with no identity reads and changes a node only its owner may
// touch; without it, the same calls are NOAUTH.
#[test]
fn skip_acl_yes_checks_no_acl() {
    for (name, extra, allowed) in [("acl-on", "", false), ("acl-off", "skipACL=yes\n", true)] {
        let dir = temp_dir(name);
        let server = standalone(&dir, extra);
        let addr = server.client_addr.to_string();
        let mut owner = connect(&addr);
        common::create_owned(&mut owner, "/owned", b"secret");
        let mut stranger = connect(&addr);
        let read = stranger.get("/owned", false).map(|(data, _)| data);
        let write = stranger.set("/owned", b"changed", -1).map(|_| ());
        if allowed {
            assert_eq!(read.unwrap(), b"secret");
            write.unwrap();
        } else {
            assert!(
                matches!(read, Err(ClientError::Zk(ZkError::NoAuth))),
                "{read:?}"
            );
            assert!(
                matches!(write, Err(ClientError::Zk(ZkError::NoAuth))),
                "{write:?}"
            );
        }
        stranger.close().unwrap();
        owner.close().unwrap();
        server.shutdown().unwrap();
    }
}

// dump, wchc and wchp list sessions, ephemerals, connections and watches in ZooKeeper
// 3.8's layouts (checked against its answers to the same session).
#[test]
fn dump_wchc_and_wchp_list_what_zookeeper_lists() {
    let dir = temp_dir("dump");
    let server = standalone(&dir, "4lw.commands.whitelist=*\n");
    let addr = server.client_addr.to_string();
    let mut a = connect(&addr);
    a.create("/a", b"x", 0).unwrap();
    a.create("/a/e", b"", 1).unwrap();
    a.get("/a", true).unwrap();
    a.children("/a", true).unwrap();
    assert_eq!(a.exists("/nope", true).unwrap(), None);
    let sid = format!("{:#x}", a.session_id.0);
    let wchc = client::four_letter(&addr, "wchc").unwrap();
    assert_eq!(wchc, format!("{sid}\n\t/a\n\t/nope\n\n"));
    let wchp = client::four_letter(&addr, "wchp").unwrap();
    assert_eq!(wchp, format!("/a\n\t{sid}\n/nope\n\t{sid}\n\n"));
    let dump = client::four_letter(&addr, "dump").unwrap();
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(
        lines[..2],
        ["SessionTracker dump:", "Session Sets (1)/(1):"]
    );
    assert!(
        lines[2].starts_with("1 expire at ") && lines[2].ends_with(':'),
        "{dump}"
    );
    assert_eq!(lines[3], format!("\t{sid}"));
    assert_eq!(
        lines[4..8],
        [
            "ephemeral nodes dump:",
            "Sessions with Ephemerals (1):",
            &format!("{sid}:"),
            "\t/a/e"
        ]
    );
    assert_eq!(lines[8], "Connections dump:");
    assert!(lines[9].starts_with("Connections Sets ("), "{dump}");
    assert!(
        dump.contains(&format!("sessionId: {sid}\n")),
        "the session's connection is listed:\n{dump}"
    );
    server.shutdown().unwrap();
}
