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
