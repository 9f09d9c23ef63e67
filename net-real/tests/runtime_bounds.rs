//! The runtime's resource bounds, against an in-process standalone server: idle
//! connections cost no thread, and a client that pipelines requests and never reads its
//! replies is disconnected before its unsent replies pass their byte budget, while a
//! well-behaved client is served throughout.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{connect, eventually, standalone, temp_dir};
use paddock_core::ids::SessionId;
use paddock_core::wire::{self, ConnectRequest, PathWatchRequest, Request, RequestHeader};
use paddock_net_real::client;

/// Threads of this test process (the server runs inside it).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The server's open client connections, from `srvr`.
fn connections(addr: &str) -> u64 {
    let text = client::four_letter(addr, "srvr").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("Connections: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

// 500 idle connections with sessions: the server's thread count does not grow with
// them (all client sockets share one event-driven thread), and it keeps serving.
#[test]
fn idle_connections_cost_no_thread() {
    let dir = temp_dir("idle-connections");
    let server = standalone(&dir, "maxClientCnxns=0\n");
    let addr = server.client_addr.to_string();
    let before = threads();
    let idle: Vec<_> = (0..500).map(|_| connect(&addr)).collect();
    let during = threads();
    assert!(
        during <= before + 2,
        "{} threads for 500 idle connections (was {before})",
        during
    );
    let mut c = connect(&addr);
    c.create("/still-serving", b"yes", 0).unwrap();
    assert!(connections(&addr) >= 501);
    drop(idle);
}

// A client that sends many reads of a 1 MB node and never reads the replies is
// disconnected once its unsent replies pass the budget (16 MiB beyond what the sockets
// hold); meanwhile and afterwards another client is served.
#[test]
fn client_that_never_reads_is_disconnected() {
    let dir = temp_dir("never-reads");
    let server = standalone(&dir, "jute.maxbuffer=2000000\n");
    let addr = server.client_addr.to_string();
    let mut writer = connect(&addr);
    writer.create("/big", &vec![7u8; 1_000_000], 0).unwrap();

    let mut flood = TcpStream::connect(&addr).unwrap();
    let mut connect_payload = Vec::new();
    wire::encode_connect_request(
        &ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30_000,
            session_id: SessionId(0),
            passwd: vec![0; 16],
            read_only: Some(false),
        },
        &mut connect_payload,
    );
    flood.write_all(&wire::frame(&connect_payload)).unwrap();
    flood
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // 200 reads of 1 MB: 200 MB of replies, far beyond the budget and any socket buffer.
    for xid in 1..=200 {
        let mut payload = Vec::new();
        let request = Request::GetData(PathWatchRequest {
            path: "/big".into(),
            watch: false,
        });
        let header = RequestHeader {
            xid,
            op: request.op_code(),
        };
        wire::encode_request(&header, &request, &mut payload);
        if flood.write_all(&wire::frame(&payload)).is_err() {
            break; // already disconnected
        }
    }
    let mut other = connect(&addr);
    eventually("the flooding client is disconnected", || {
        // `writer`, `other` and the srvr connection itself remain.
        (connections(&addr) <= 3).then_some(())
    });
    other.set("/big", b"small", -1).unwrap();
    assert_eq!(writer.get("/big", false).unwrap().0, b"small");
}

/// True once the server has closed `stream` (a read returns end of stream or an error).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

// A connection that never completes the handshake (silent, or a connect request cut in
// the middle) is closed after `nio.sessionlessCnxnTimeout`; a client that connects
// normally meanwhile keeps its session.
#[test]
fn sessionless_connections_are_closed() {
    let dir = temp_dir("sessionless");
    let server = standalone(&dir, "nio.sessionlessCnxnTimeout=300\n");
    let addr = server.client_addr.to_string();
    let mut silent = TcpStream::connect(&addr).unwrap();
    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(&[0, 0, 0, 44, 0, 0]).unwrap();
    let mut good = connect(&addr);
    eventually("sessionless connections closed", || {
        (closed_by_server(&mut silent) && closed_by_server(&mut half)).then_some(())
    });
    good.create("/after-timeout", b"x", 0).unwrap();
    assert_eq!(good.get("/after-timeout", false).unwrap().0, b"x");
}

// maxCnxns bounds the open connections in all: one more is closed at once, and closing
// one makes room again.
#[test]
fn max_cnxns_bounds_all_connections() {
    let dir = temp_dir("max-cnxns");
    let server = standalone(&dir, "maxCnxns=3\nmaxClientCnxns=0\n");
    let addr = server.client_addr.to_string();
    let first = connect(&addr);
    let _second = connect(&addr);
    let _third = connect(&addr);
    let mut fourth = TcpStream::connect(&addr).unwrap();
    eventually("the connection beyond maxCnxns is closed", || {
        closed_by_server(&mut fourth).then_some(())
    });
    first.close().unwrap();
    let mut again = eventually("room after a close", || {
        paddock_net_real::client::Client::connect(&addr, 4000).ok()
    });
    again.create("/room", b"", 0).unwrap();
}

// Out of file descriptors: a server limited to 64 of them gets 200 connection attempts.
// Those it cannot accept wait in the backlog or are refused while the server keeps
// running; once they go, a well-behaved client is served again at once.
#[test]
fn descriptor_exhaustion_refuses_connections_but_never_stops_the_server() {
    let dir = temp_dir("fd-exhaustion");
    let port = common::free_port();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut server = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec {} serve --config {}",
            env!("CARGO_BIN_EXE_paddock"),
            cfg.display()
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    common::wait_serving(&addr);
    // Beyond the descriptors and the listen backlog, connecting times out: refused.
    let target: std::net::SocketAddr = addr.parse().unwrap();
    let flood: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect_timeout(&target, Duration::from_millis(200)).ok())
        .collect();
    assert!(
        flood.len() > 64,
        "only {} connections got through",
        flood.len()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.try_wait().unwrap().is_none(),
        "the server stopped when it ran out of descriptors"
    );
    drop(flood);
    let mut c = connect(&addr);
    c.create("/after-exhaustion", b"ok", 0).unwrap();
    assert_eq!(c.get("/after-exhaustion", false).unwrap().0, b"ok");
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert!(log.contains("accept failed"), "{log}");
    server.kill().unwrap();
    server.wait().unwrap();
}
