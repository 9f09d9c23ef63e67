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

/// A loopback port that was free a moment ago and that no other caller in this process
/// got. It is taken below the kernel's ephemeral range (32768 and up here), so no outgoing
/// connection of this or another test can be given it between now and the server binding
/// it (that race once made an ensemble member fail with "address already in use").
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const HIGH: u32 = 32_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Processes start at different places, so test binaries rarely meet.
    let start = (std::process::id() * 97) % (HIGH - LOW);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(LOW + (start + n) % (HIGH - LOW)).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
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

/// Creates `path` holding `data` that only digest user `owner:pw` may touch: the client
/// authenticates as that user and creates it with the `auth` ACL.
pub fn create_owned(c: &mut Client, path: &str, data: &[u8]) {
    use paddock_core::acl::{Acl, Id, perms};
    use paddock_core::wire::{CreateRequest, Request};
    c.add_auth("digest", b"owner:pw").unwrap();
    let request = Request::Create(CreateRequest {
        path: path.to_owned(),
        data: Some(data.to_vec()),
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id::new("auth", ""),
        }],
        flags: 0,
    });
    let (header, _) = c.call(&request).unwrap();
    assert_eq!(header.err, 0, "create {path}");
}

/// One `paddock serve` process of a test ensemble: its data directory, config, addresses
/// and process (killed when dropped, so a failed assertion leaves no server running).
pub struct Member {
    pub dir: PathBuf,
    pub cfg: PathBuf,
    pub client_addr: String,
    pub peer_addr: String,
    pub child: Option<Child>,
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `member`'s server, its stderr in `<dir>.log`.
pub fn start_member(member: &mut Member) {
    let log = member.dir.with_extension("log");
    member.child = Some(paddock(
        &["serve", "--config", member.cfg.to_str().unwrap()],
        &log,
    ));
}

/// The `Mode:` a server's `srvr` reports (leader, follower, standalone), if it answers.
pub fn mode(addr: &str) -> Option<String> {
    let text = client::four_letter(addr, "srvr").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(str::to_owned)
}
