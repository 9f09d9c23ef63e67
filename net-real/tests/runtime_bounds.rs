//! The runtime's resource bounds, against an in-process standalone server or a `paddock`
//! process: idle connections cost no thread; a client that pipelines requests and never
//! reads its replies is disconnected before its unsent replies pass their byte budget,
//! and many such clients cannot make the server hold more than the budget of all
//! clients together; `globalOutstandingLimit` throttles pipelining clients without
//! losing a request; a well-behaved client is served throughout.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{connect, eventually, standalone, temp_dir};
use paddock_core::ids::SessionId;
use paddock_core::wire::{
    self, ConnectRequest, FrameSplitter, OpCode, PathWatchRequest, Reply, Request, RequestHeader,
    Response, SetDataRequest,
};
use paddock_net_real::client;
use paddock_net_real::client_io::CLIENTS_QUEUED_BYTES_MAX;

/// Threads of process `pid`.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

/// A `paddock` process, killed when dropped (also when its test fails).
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `paddock` process serving a standalone server on a free loopback port with `extra`
/// config lines (so what it uses can be measured apart from the tests), and its address.
fn serve_process(dir: &std::path::Path, extra: &str) -> (ServerProcess, String) {
    let port = common::free_port();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n{extra}",
            dir.display()
        ),
    )
    .unwrap();
    let server = ServerProcess(common::paddock(
        &["serve", "--config", cfg.to_str().unwrap()],
        &dir.join("server.log"),
    ));
    let addr = format!("127.0.0.1:{port}");
    common::wait_serving(&addr);
    (server, addr)
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
    let (server, addr) = serve_process(&dir, "maxClientCnxns=0\n");
    let before = threads(server.0.id());
    let idle: Vec<_> = (0..500).map(|_| connect(&addr)).collect();
    let during = threads(server.0.id());
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

// A client that sends many reads of a 1 MB node and never reads the replies is no
// longer read once 1 MiB of replies waits for it (a few are answered at once, so it
// may hold up to its 16 MiB bound), and is disconnected: by that bound, or when its
// session expires as its pings wait unread. Meanwhile and afterwards another client is
// served.
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
    // A committed write first: the election's hard state is on disk by then (writing it
    // needs a descriptor, and a disk error stops the server by design).
    connect(&addr).create("/before-exhaustion", b"", 0).unwrap();
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

/// A value of `mntr`.
fn mntr(addr: &str, key: &str) -> u64 {
    let text = client::four_letter(addr, "mntr").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in mntr:\n{text}"))
}

/// A session on a raw socket, for clients that pipeline: the connect request (asking for
/// a session timeout of `timeout_ms`) is sent and its answer read.
fn raw_session(addr: &str, timeout_ms: i32) -> (TcpStream, FrameSplitter) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut payload = Vec::new();
    wire::encode_connect_request(
        &ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id: SessionId(0),
            passwd: vec![0; 16],
            read_only: Some(false),
        },
        &mut payload,
    );
    stream.write_all(&wire::frame(&payload)).unwrap();
    let mut splitter = FrameSplitter::new(4 * 1024 * 1024);
    let connected = read_frame(&mut stream, &mut splitter);
    let response = wire::decode_connect_response(&connected).unwrap();
    assert!(response.timeout_ms > 0, "session refused");
    (stream, splitter)
}

/// One request as a frame.
fn request_frame(xid: i32, request: &Request) -> Vec<u8> {
    let mut payload = Vec::new();
    let header = RequestHeader {
        xid,
        op: request.op_code(),
    };
    wire::encode_request(&header, request, &mut payload);
    wire::frame(&payload)
}

fn read_frame(stream: &mut TcpStream, splitter: &mut FrameSplitter) -> Vec<u8> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some(frame) = splitter.next_frame().unwrap() {
            return frame;
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed by the server");
        splitter.push(&buf[..n]);
    }
}

// With globalOutstandingLimit=10, 20 clients each pipeline 300 requests (setData then
// getData of their own node, in turn) without waiting. Reading pauses for connections
// that push the count over the limit, so the count stays near it, and each client gets
// every reply, in order, each read seeing the write just before it; a client doing one
// request at a time is served throughout. Afterwards nothing is outstanding (the count
// did not leak) and the server still takes a new burst.
#[test]
fn global_outstanding_limit_throttles_without_losing_requests() {
    const LIMIT: u64 = 10;
    const CLIENTS: usize = 20;
    const PAIRS: i32 = 150;
    let dir = temp_dir("outstanding-limit");
    let server = standalone(&dir, &format!("globalOutstandingLimit={LIMIT}\n"));
    let addr = server.client_addr.to_string();
    let mut setup = connect(&addr);
    for i in 0..CLIENTS {
        setup.create(&format!("/p{i}"), b"", 0).unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let well_behaved = {
        let (addr, stop) = (addr.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut c = connect(&addr);
            let mut calls = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || calls < 20 {
                let value = calls.to_string();
                c.set("/p0", value.as_bytes(), -1).unwrap_or_else(|e| {
                    panic!("well-behaved client failed after {calls} calls: {e}")
                });
                calls += 1;
            }
            calls
        })
    };
    let run_burst = |tag: &str| {
        let pipeliners: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let addr = addr.clone();
                let path = format!("/p{}", i);
                let tag = tag.to_owned();
                std::thread::spawn(move || {
                    let (mut stream, mut splitter) = raw_session(&addr, 30_000);
                    let mut writer = stream.try_clone().unwrap();
                    let path_w = path.clone();
                    let tag_w = tag.clone();
                    let sender = std::thread::spawn(move || {
                        let mut bytes = Vec::new();
                        for k in 0..PAIRS {
                            let set = Request::SetData(SetDataRequest {
                                path: path_w.clone(),
                                data: Some(format!("{tag_w}{k}").into_bytes()),
                                version: -1,
                            });
                            let get = Request::GetData(PathWatchRequest {
                                path: path_w.clone(),
                                watch: false,
                            });
                            bytes.extend(request_frame(2 * k + 1, &set));
                            bytes.extend(request_frame(2 * k + 2, &get));
                        }
                        writer.write_all(&bytes).unwrap();
                    });
                    for k in 0..PAIRS {
                        for (xid, op) in
                            [(2 * k + 1, OpCode::SetData), (2 * k + 2, OpCode::GetData)]
                        {
                            let frame = read_frame(&mut stream, &mut splitter);
                            let (header, reply) = wire::decode_reply(&frame, op).unwrap();
                            assert_eq!(header.xid, xid, "{path}: reply out of order");
                            assert_eq!(header.err, 0, "{path}: xid {xid} failed");
                            if let Reply::Response(Some(Response::GetData(body))) = reply {
                                // /p0 is also set by the well-behaved client.
                                if path != "/p0" {
                                    assert_eq!(body.data, Some(format!("{tag}{k}").into_bytes()));
                                }
                            } else if op == OpCode::GetData {
                                panic!("{path}: xid {xid}: {reply:?}");
                            }
                        }
                    }
                    sender.join().unwrap();
                })
            })
            .collect();
        for p in pipeliners {
            p.join().unwrap();
        }
    };
    run_burst("a");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls = well_behaved.join().unwrap();
    assert!(calls >= 20, "{calls}");
    let throttled = mntr(&addr, "paddock_reads_throttled");
    let max = mntr(&addr, "paddock_outstanding_requests_max");
    // The count passes the limit by at most one request per connection (ZooKeeper lets a
    // connection with nothing outstanding always send one); 23 connections at most are
    // open here. Unthrottled, the 6000 pipelined requests pile up far beyond.
    let bound = LIMIT + CLIENTS as u64 + 3;
    assert!(throttled > 0, "reading was never paused");
    assert!(
        max <= bound,
        "{max} requests outstanding at once (bound {bound})"
    );
    eventually("nothing outstanding once every reply is in", || {
        (mntr(&addr, "zk_outstanding_requests") == 0).then_some(())
    });
    // Not wedged: another burst goes through.
    run_burst("b");
    assert_eq!(
        setup.get("/p1", false).unwrap().0,
        format!("b{}", PAIRS - 1).as_bytes()
    );
    eprintln!("reads throttled {throttled} times; at most {max} outstanding");
}

/// Resident set of process `pid` now and at its peak, bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// 24 clients each pipeline 100 reads of a 1 MB znode (2.4 GB of replies in all) and
// never read them. The server's peak resident set grows by no more than the budget of
// unsent replies of all clients (64 MiB) plus a generous margin: the bounds of each
// connection alone would let them hold over 250 MiB (16 frames answered at once, less
// what the kernel's socket buffers take, each). The budget closes some flooders; the
// others, no longer read, lose their sessions; a well-behaved client is served
// throughout.
#[test]
fn clients_that_never_read_cannot_grow_the_server_beyond_its_budget() {
    const FLOODERS: usize = 24;
    const MARGIN: u64 = 80 * 1024 * 1024;
    let dir = temp_dir("reply-budget");
    let (server, addr) = serve_process(&dir, "maxClientCnxns=0\n");
    let pid = server.0.id();
    let mut writer = connect(&addr);
    writer.create("/big", &vec![7u8; 1_000_000], 0).unwrap();
    writer.create("/small", b"0", 0).unwrap();
    writer.close().unwrap();
    let (_, baseline) = rss(pid);
    let connections_before = connections(&addr);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let well_behaved = {
        let (addr, stop) = (addr.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut c = connect(&addr);
            let mut calls = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.set("/small", calls.to_string().as_bytes(), -1)
                    .unwrap_or_else(|e| panic!("well-behaved client failed after {calls}: {e}"));
                assert_eq!(
                    c.get("/small", false).unwrap().0,
                    calls.to_string().as_bytes()
                );
                calls += 1;
            }
            calls
        })
    };
    // Sessions first, then every pipeline at once, so the floods overlap.
    // Sessions of the shortest timeout (2 ticks): a flooder the server stops reading
    // loses its session soon, as its pings wait unread.
    let mut flooders: Vec<TcpStream> = (0..FLOODERS).map(|_| raw_session(&addr, 4000).0).collect();
    let mut bytes = Vec::new();
    for xid in 1..=100 {
        let request = Request::GetData(PathWatchRequest {
            path: "/big".into(),
            watch: false,
        });
        bytes.extend(request_frame(xid, &request));
    }
    for stream in &mut flooders {
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = stream.write_all(&bytes);
    }
    let mut rss_max = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        rss_max = rss_max.max(rss(pid).0);
        // Only the well-behaved client and this srvr connection remain.
        if connections(&addr) <= connections_before + 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "flooding clients still connected"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls = well_behaved.join().unwrap();
    let peak = rss(pid).1.max(rss_max);
    let closed = mntr(&addr, "paddock_slow_clients_closed");
    eprintln!(
        "baseline {} MiB, peak {} MiB (+{} MiB), sampled max {} MiB; {closed} clients closed; \
         {calls} calls of the well-behaved client",
        baseline >> 20,
        peak >> 20,
        (peak - baseline) >> 20,
        rss_max >> 20
    );
    assert!(
        peak - baseline <= CLIENTS_QUEUED_BYTES_MAX as u64 + MARGIN,
        "peak resident set grew by {} MiB",
        (peak - baseline) >> 20
    );
    assert!(closed > 0, "the budget of all clients closed none");
    assert!(calls > 0);
    let mut after = connect(&addr);
    after.set("/big", b"small", -1).unwrap();
    assert_eq!(after.get("/big", false).unwrap().0, b"small");
    drop(flooders);
    drop(server);
}
