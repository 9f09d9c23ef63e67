//! The AdminServer and the Prometheus metrics endpoint of a running server, over HTTP.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{connect, standalone, temp_dir};

/// `GET path` (or another request line) on `addr`: status code, headers, body.
fn request(addr: SocketAddr, line: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "{line}\r\nHost: test\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

const ENDPOINTS: &str = "admin.serverAddress=127.0.0.1\nadmin.serverPort=0\n\
    metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
    metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=0\n4lw.commands.whitelist=srvr\n";

#[test]
fn metrics_parse_as_prometheus_text_and_follow_the_tree() {
    let dir = temp_dir("http-metrics");
    let server = standalone(&dir, ENDPOINTS);
    let metrics = server.metrics_addr.unwrap();
    let mut client = connect(&server.client_addr.to_string());
    for i in 0..7 {
        client.create(&format!("/m{i}"), b"", 0).unwrap();
    }
    let (status, head, body) = request(metrics, "GET /metrics HTTP/1.1");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let value = |name: &str| {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .unwrap_or_else(|| panic!("{name} missing:\n{body}"));
        match sample.value {
            prometheus_parse::Value::Gauge(v) => v,
            ref other => panic!("{name} is {other:?}"),
        }
    };
    // The root, /zookeeper, its quota and config nodes, and the seven made here: the
    // same figure mntr gives (the whitelist, which allows only srvr, does not apply).
    assert_eq!(value("znode_count"), 11.0);
    assert_eq!(value("num_alive_connections"), 1.0);
    assert_eq!(value("paddock_invariant_breaches"), 0.0);
    assert!(value("uptime") > 0.0);
    // fsync times as ZooKeeper's summary: a count and a sum (every create synced).
    let fsyncs: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric.starts_with("fsynctime"))
        .map(|s| (s.metric.clone(), format!("{:?}", s.value)))
        .collect();
    assert!(!fsyncs.is_empty(), "fsynctime missing:\n{body}");
    assert!(body.contains("# TYPE fsynctime summary\n"), "{body}");
    assert!(body.contains("\nfsynctime_count "), "{body}");
    // Only /metrics is there, only GET and HEAD are answered.
    assert_eq!(request(metrics, "GET /other HTTP/1.1").0, 404);
    assert_eq!(request(metrics, "POST /metrics HTTP/1.1").0, 405);
    let (status, _, body) = request(metrics, "HEAD /metrics HTTP/1.1");
    assert_eq!((status, body.as_str()), (200, ""));
    server.shutdown().unwrap();
}

#[test]
fn admin_commands_answer_json() {
    let dir = temp_dir("http-admin");
    let server = standalone(&dir, ENDPOINTS);
    let admin = server.admin_addr.unwrap();
    let (status, _, body) = request(admin, "GET /commands HTTP/1.1");
    assert_eq!(status, 200);
    assert!(body.contains("/commands/monitor"), "{body}");
    let (status, head, body) = request(admin, "GET /commands/mntr HTTP/1.1");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("application/json"), "{head}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["command"], "monitor");
    assert_eq!(json["error"], serde_json::Value::Null);
    assert_eq!(json["znode_count"], 4);
    assert_eq!(json["server_state"], "standalone");
    let (_, _, body) = request(admin, "GET /commands/configuration HTTP/1.1");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["data_dir"], dir.display().to_string());
    assert_eq!(json["tick_time"], 200);
    let (_, _, body) = request(admin, "GET /commands/is_read_only HTTP/1.1");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["read_only"], false);
    let (status, _, body) = request(admin, "GET /commands/dump HTTP/1.1");
    assert_eq!(status, 200);
    assert!(body.contains("Unknown command: dump"), "{body}");
    // A head that never ends is cut at 8 KiB, not buffered without end.
    let mut stream = TcpStream::connect(admin).unwrap();
    let long = format!("GET /commands/{} HTTP/1.1\r\n", "x".repeat(20_000));
    let _ = stream.write_all(long.as_bytes());
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    server.shutdown().unwrap();
}

#[test]
fn endpoints_are_off_unless_asked_and_a_taken_port_does_not_stop_the_server() {
    let dir = temp_dir("http-off");
    let server = standalone(&dir, "admin.enableServer=false\n");
    assert_eq!(server.admin_addr, None);
    assert_eq!(server.metrics_addr, None);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = temp_dir("http-taken");
    let server2 = standalone(
        &dir,
        &format!("admin.serverAddress=127.0.0.1\nadmin.serverPort={port}\n"),
    );
    assert_eq!(server2.admin_addr, None);
    server2.shutdown().unwrap();
    server.shutdown().unwrap();
}
