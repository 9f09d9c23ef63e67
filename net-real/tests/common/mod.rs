//! Helpers shared by the runtime's integration tests: temporary directories, free ports,
//! in-process servers and `paddock` processes.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paddock_net_real::client::{self, Client};
use paddock_net_real::config;
use paddock_net_real::server::{self, ServerHandle};

/// A fresh, empty directory unique to this test process and `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("paddock-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts an in-process standalone server on a free port with `extra` config lines.
pub fn standalone(dir: &std::path::Path, extra: &str) -> ServerHandle {
    let text = format!(
        "tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n{extra}",
        dir.display()
    );
    let (cfg, _) = config::parse(&text).unwrap();
    let handle = server::start(cfg).unwrap();
    wait_serving(&handle.client_addr.to_string());
    handle
}

/// Waits until the server at `addr` answers `srvr` with a mode (it has a leader).
pub fn wait_serving(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if client::four_letter(addr, "srvr").is_ok_and(|t| t.contains("Mode:")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{addr} not serving after 10 s");
}

/// Retries `f` for up to 10 s (an ensemble may be electing a leader).
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within 10 s");
}

/// Connects a session, retrying while the server is not ready.
pub fn connect(addr: &str) -> Client {
    eventually(&format!("connect to {addr}"), || {
        Client::connect(addr, 4000).ok()
    })
}

/// Runs the `paddock` binary with `args`; stderr goes to `log`.
pub fn paddock(args: &[&str], log: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}
