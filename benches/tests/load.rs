//! The load generator against an in-process standalone Paddock: a short run of `create` and
//! of `get`, 2 sessions x 4 requests in flight, completes requests without errors.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use paddock_benches::load::{self, LoadOptions, Op};
use paddock_net_real::{config, server};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("paddock-load-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_get_against_standalone_paddock() {
    let dir = temp_dir("standalone");
    let text = format!(
        "tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n",
        dir.display()
    );
    let (cfg, _) = config::parse(&text).unwrap();
    // The load generator retries connecting until the server serves sessions.
    let handle = server::start(cfg).unwrap();
    let server = handle.client_addr.to_string();

    for op in [Op::Create, Op::Get] {
        let opts = LoadOptions {
            server: server.clone(),
            op,
            clients: 2,
            inflight: 4,
            size: 64,
            seconds: Duration::from_secs(1),
            warmup: Duration::from_millis(200),
            prefix: "/paddock-load-test".into(),
            connect_timeout: Duration::from_secs(10),
        };
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

    tokio::task::spawn_blocking(move || handle.shutdown())
        .await
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
