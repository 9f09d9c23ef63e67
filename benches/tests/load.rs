//! The load generator against in-process standalone Paddock servers: short runs of `create`
//! and of `get`, 2 sessions x 4 requests in flight, complete requests without errors; `churn`
//! deletes what it creates; sessions are spread round-robin over the servers listed; `idle`
//! holds its sessions and counts the ones a server refuses.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use paddock_benches::load::{self, LoadOptions, Op};
use paddock_net_real::server::ServerHandle;
use paddock_net_real::{config, server};
use zookeeper_client as zk;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("paddock-load-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts a standalone server on a free loopback port with `extra` appended to its config.
fn start_server(dir: &std::path::Path, extra: &str) -> ServerHandle {
    let text = format!(
        "tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n{extra}",
        dir.display()
    );
    let (cfg, _) = config::parse(&text).unwrap();
    server::start(cfg).unwrap()
}

async fn stop_server(handle: ServerHandle) {
    tokio::task::spawn_blocking(move || handle.shutdown())
        .await
        .unwrap()
        .unwrap();
}

/// The children of `path` on `server`, sorted.
async fn children(server: &str, path: &str) -> Vec<String> {
    let client = zk::Client::connect(server).await.unwrap();
    let mut names = client.list_children(path).await.unwrap();
    names.sort();
    names
}

fn short(server: String, op: Op, prefix: &str) -> LoadOptions {
    LoadOptions {
        server,
        op,
        clients: 2,
        inflight: 4,
        size: 64,
        seconds: Duration::from_secs(1),
        warmup: Duration::from_millis(200),
        prefix: prefix.into(),
        connect_timeout: Duration::from_secs(10),
        count: None,
        tls: None,
    }
}

// `count` stops the run once that many requests were started: creates make exactly that
// many znodes (a multiple of the session count), long before the window ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_loads_exactly_that_many_znodes() {
    let dir = temp_dir("count");
    let handle = start_server(&dir, "");
    let server = handle.client_addr.to_string();
    let opts = LoadOptions {
        seconds: Duration::from_secs(60),
        warmup: Duration::ZERO,
        count: Some(500),
        ..short(server.clone(), Op::Create, "/paddock-load-count")
    };
    let started = std::time::Instant::now();
    let summary = load::run(&opts).await.unwrap();
    assert_eq!(summary.ops, 500, "{summary}");
    assert_eq!(summary.errors, 0, "{summary}");
    assert!(started.elapsed() < Duration::from_secs(50), "{summary}");
    assert_eq!(children(&server, "/paddock-load-count").await.len(), 500);
    stop_server(handle).await;
    let _ = std::fs::remove_dir_all(&dir);
}

// Create and get complete requests without errors, with ordered percentiles; a port nobody
// listens on gives a readable connect error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_get_against_standalone_paddock() {
    let dir = temp_dir("standalone");
    // The load generator retries connecting until the server serves sessions.
    let handle = start_server(&dir, "");
    let server = handle.client_addr.to_string();

    for op in [Op::Create, Op::Get] {
        let opts = short(server.clone(), op, "/paddock-load-test");
        let summary = load::run(&opts).await.unwrap();
        eprintln!("{summary}\n{}", summary.to_json());
        assert_eq!(summary.op, op);
        assert!(summary.ops > 0, "{summary}");
        assert_eq!(summary.errors, 0, "{summary}");
        assert!(summary.p50_us <= summary.p99_us, "{summary}");
        assert!(summary.p99_us <= summary.p999_us, "{summary}");
        assert!(summary.p999_us <= summary.max_us, "{summary}");
    }

    // Nothing listens on a port that was free a moment ago: a readable connect error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = LoadOptions {
        server: format!("127.0.0.1:{port}"),
        seconds: Duration::from_millis(100),
        warmup: Duration::ZERO,
        connect_timeout: Duration::from_millis(500),
        ..LoadOptions::default()
    };
    let err = load::run(&opts).await.unwrap_err();
    assert!(
        err.to_string().starts_with("cannot connect to 127.0.0.1:"),
        "{err}"
    );

    stop_server(handle).await;
    let _ = std::fs::remove_dir_all(&dir);
}

// Churn counts creates and deletes alike and deletes every node whose create succeeded, except
// those of the last creates of each slot (at most clients x inflight nodes are left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_deletes_what_it_creates() {
    let dir = temp_dir("churn");
    let handle = start_server(&dir, "");
    let server = handle.client_addr.to_string();
    // Three seconds, not one: on a machine busy with other work a create and delete each
    // wait for a slow fsync, and the check below needs enough of them.
    let opts = LoadOptions {
        seconds: Duration::from_secs(3),
        ..short(server.clone(), Op::Churn, "/churn")
    };
    let summary = load::run(&opts).await.unwrap();
    eprintln!("{summary}");
    assert_eq!(summary.op, Op::Churn);
    assert_eq!(summary.errors, 0, "{summary}");
    let slots = (opts.clients * opts.inflight) as u64;
    assert!(
        summary.ops > 10 * slots,
        "too few requests to tell: {summary}"
    );
    let left = children(&server, "/churn").await;
    assert!(
        left.len() as u64 <= slots,
        "{} nodes left after {} requests: deletes missing",
        left.len(),
        summary.ops
    );
    stop_server(handle).await;
    let _ = std::fs::remove_dir_all(&dir);
}

// With two independent servers listed, session i works on server i mod 2: each session's node
// exists on its own server only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_round_robin_over_the_servers() {
    let (dir_a, dir_b) = (temp_dir("rr-a"), temp_dir("rr-b"));
    let (a, b) = (start_server(&dir_a, ""), start_server(&dir_b, ""));
    let (addr_a, addr_b) = (a.client_addr.to_string(), b.client_addr.to_string());
    // Prefix "/": each server's tree already has the parent of the session nodes.
    let opts = LoadOptions {
        clients: 4,
        ..short(format!("{addr_a},{addr_b}"), Op::Set, "/")
    };
    let summary = load::run(&opts).await.unwrap();
    assert_eq!(summary.errors, 0, "{summary}");
    let sessions = |names: Vec<String>| -> Vec<String> {
        names.into_iter().filter(|n| n.starts_with('s')).collect()
    };
    assert_eq!(sessions(children(&addr_a, "/").await), ["s0", "s2"]);
    assert_eq!(sessions(children(&addr_b, "/").await), ["s1", "s3"]);
    stop_server(a).await;
    stop_server(b).await;
    let _ = std::fs::remove_dir_all(&dir_a);
    let _ = std::fs::remove_dir_all(&dir_b);
}

// Idle opens the sessions, reports them open before the hold, and keeps going when the server
// refuses some (here its per-address limit of 10): those are errors, the rest are held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_holds_sessions_and_counts_refused_ones() {
    let dir = temp_dir("idle");
    let handle = start_server(&dir, "maxClientCnxns=10\n");
    let opts = LoadOptions {
        clients: 14,
        connect_timeout: Duration::from_secs(1),
        ..short(handle.client_addr.to_string(), Op::Idle, "/")
    };
    let sessions = load::open_idle(&opts).await.unwrap();
    assert_eq!((sessions.open(), sessions.failed()), (10, 4));
    let summary = sessions.hold().await.unwrap();
    eprintln!("{summary}");
    assert_eq!(summary.op, Op::Idle);
    assert_eq!((summary.clients, summary.ops, summary.errors), (14, 10, 4));
    assert!(summary.first_error.is_some(), "{summary}");
    assert!(
        summary.p50_us > 0 && summary.p50_us <= summary.max_us,
        "{summary}"
    );
    // open_idle is for --op idle only.
    assert!(
        load::open_idle(&short(String::new(), Op::Get, "/"))
            .await
            .is_err()
    );
    stop_server(handle).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA, and a server certificate for 127.0.0.1 and a client certificate it issued, as PEM
/// files in `dir`: `ca.pem`, `server.pem` (key then certificate), `client.crt`, `client.key`.
fn tls_files(dir: &std::path::Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa,
        KeyPair,
    };
    let named = |names: Vec<String>, cn: &str| {
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
    };
    let mut params = named(vec![], "load CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = named(vec!["127.0.0.1".into()], "server")
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(
        dir.join("server.pem"),
        format!("{}{}", key.serialize_pem(), cert.pem()),
    )
    .unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = named(vec![], "load client").signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("client.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("client.key"), key.serialize_pem()).unwrap();
}

// Over TLS, against a server with only a secure client port: a short run of creates and
// one of gets complete without errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_over_tls() {
    let dir = temp_dir("tls");
    tls_files(&dir);
    let text = format!(
        "tickTime=200\ndataDir={d}\nsecureClientPort=0\nsecureClientPortAddress=127.0.0.1\n\
         ssl.keyStore.location={d}/server.pem\nssl.trustStore.location={d}/ca.pem\n",
        d = dir.display()
    );
    let (cfg, _) = config::parse(&text).unwrap();
    let handle = server::start(cfg).unwrap();
    assert_eq!(handle.secure_client_addr, Some(handle.client_addr));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let tls = load::LoadTls {
        ca: read("ca.pem"),
        cert: read("client.crt"),
        key: read("client.key"),
    };
    for op in [Op::Create, Op::Get] {
        let opts = LoadOptions {
            tls: Some(tls.clone()),
            ..short(handle.client_addr.to_string(), op, "/load-tls")
        };
        let summary = load::run(&opts).await.unwrap();
        assert!(summary.ops > 0, "{op:?}: {summary:?}");
        assert_eq!(summary.errors, 0, "{op:?}: {summary:?}");
    }
    stop_server(handle).await;
}
