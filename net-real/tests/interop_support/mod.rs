//! Shared set-up for the interop tests: tools, free ports, and ensembles of real processes.
//!
//! Owns: installing the reference tools idempotently (Apache ZooKeeper 3.8 from apt and kazoo
//! 2.11.0 in a venv, both through `scripts/zk-reference.sh install`), handing out loopback ports
//! that no other ensemble in this test process uses, and running an ensemble of either Paddock
//! (`paddock serve --config zoo.cfg`) or Apache ZooKeeper (`QuorumPeerMain zoo.cfg`) from the
//! same generated zoo.cfg and myid files. Every process is killed when its `Ensemble` drops, so a
//! failing test leaves nothing running.
//!
//! Invariant: a missing tool is a test failure with a message saying what to install, never a
//! silent skip. It does not decide what the tests check; each test file does.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long a freshly started ensemble may take to serve clients (JVM start-up plus election).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The repository root (the workspace), where `scripts/` lives.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The kazoo venv: `KAZOO_VENV`, else `target/venv-kazoo` in the repository (the same
/// default as zk-reference.sh).
pub fn kazoo_venv() -> PathBuf {
    std::env::var_os("KAZOO_VENV")
        .map_or_else(|| repo_root().join("target/venv-kazoo"), PathBuf::from)
}

/// Serializes the tests of one binary: each starts JVMs or ensembles, and the machine is small.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs ZooKeeper and kazoo once per test process; panics with the installer's output if
/// that fails (for example without network or root), so the test fails loudly.
pub fn ensure_tools() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let script = repo_root().join("scripts/zk-reference.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("install")
            .env("KAZOO_VENV", kazoo_venv())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{} install` failed ({}): the interop tests need Apache ZooKeeper 3.8 \
                 (apt-get install zookeeper, as root) and kazoo 2.11.0 (pip, network).\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(message) = result {
        panic!("{message}");
    }
}

/// A loopback port that was free a moment ago and that no other caller in this process
/// got, below the kernel's ephemeral range so that no outgoing connection takes it before
/// the server binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const HIGH: u32 = 32_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() * 97 + 6_000) % (HIGH - LOW);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(LOW + (start + n) % (HIGH - LOW)).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The Paddock binary: `PADDOCK_BIN` when set (to try another build, e.g. a release one),
/// else the one cargo built for this test.
pub fn paddock_binary() -> PathBuf {
    std::env::var_os("PADDOCK_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_paddock")),
        PathBuf::from,
    )
}

/// Which server program an ensemble runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// This repository's `paddock serve --config zoo.cfg`.
    Paddock,
    /// Apache ZooKeeper 3.8 from the Debian package, run by `QuorumPeerMain`.
    ZooKeeper,
}

/// One server of an ensemble: its ports, its directory and (while it runs) its process.
pub struct Server {
    /// ZooKeeper's `myid`, from 1.
    pub id: u32,
    /// The port clients connect to.
    pub client_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A running ensemble of real server processes, killed on drop.
pub struct Ensemble {
    /// What the servers run.
    pub flavor: Flavor,
    /// The servers, in myid order.
    pub servers: Vec<Server>,
    /// Extra JVM flags of ZooKeeper servers (`-Dzookeeper.snapCount=...`).
    jvm_flags: Vec<String>,
}

impl Ensemble {
    /// Starts `size` servers with generated zoo.cfg and myid files in a fresh temp dir, and
    /// waits until every one serves (its `srvr` answer has a `Mode:` line).
    pub fn start(flavor: Flavor, size: u32) -> Ensemble {
        Ensemble::start_with(flavor, size, &[])
    }

    /// [`Ensemble::start`] with extra JVM flags for ZooKeeper servers.
    pub fn start_with(flavor: Flavor, size: u32, jvm_flags: &[&str]) -> Ensemble {
        let base = std::env::temp_dir().join(format!(
            "paddock-interop-{}-{:?}-{}",
            std::process::id(),
            flavor,
            free_port()
        ));
        let peers: Vec<(u32, u16, u16, u16)> = (1..=size)
            .map(|id| (id, free_port(), free_port(), free_port()))
            .collect();
        let mut servers = Vec::new();
        for &(id, client_port, _, _) in &peers {
            let dir = base.join(format!("server{id}"));
            std::fs::create_dir_all(dir.join("data")).unwrap();
            std::fs::write(dir.join("data/myid"), format!("{id}\n")).unwrap();
            std::fs::write(dir.join("zoo.cfg"), zoo_cfg(&dir, client_port, &peers)).unwrap();
            servers.push(Server {
                id,
                client_port,
                dir,
                child: None,
            });
        }
        let jvm_flags = jvm_flags.iter().map(|f| (*f).to_owned()).collect();
        let mut ensemble = Ensemble {
            flavor,
            servers,
            jvm_flags,
        };
        for index in 0..ensemble.servers.len() {
            ensemble.spawn(index);
        }
        for index in 0..ensemble.servers.len() {
            ensemble.wait_serving(index);
        }
        ensemble
    }

    /// The `--hosts` / connect string: every client port, in myid order.
    pub fn hosts(&self) -> String {
        let hosts: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.client_port))
            .collect();
        hosts.join(",")
    }

    /// The index of the server listening on `client_port`.
    pub fn index_of_port(&self, client_port: u16) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| s.client_port == client_port)
    }

    /// Server `index`'s dataDir.
    pub fn data_dir(&self, index: usize) -> PathBuf {
        self.servers[index].dir.join("data")
    }

    /// Kills server `index` with SIGKILL (no graceful shutdown: the hard case) and reaps it.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.servers[index].child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Restarts server `index` on its old directory and waits until it serves again.
    pub fn restart(&mut self, index: usize) {
        self.spawn(index);
        self.wait_serving(index);
    }

    fn spawn(&mut self, index: usize) {
        let server = &mut self.servers[index];
        let cfg = server.dir.join("zoo.cfg");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(server.dir.join("server.log"))
            .unwrap();
        let mut command = match self.flavor {
            Flavor::Paddock => {
                let mut c = Command::new(paddock_binary());
                c.arg("serve").arg("--config").arg(&cfg);
                c
            }
            Flavor::ZooKeeper => {
                let mut c = Command::new("java");
                c.arg("-Xmx256m")
                    .arg("-Dzookeeper.admin.enableServer=false")
                    .args(&self.jvm_flags)
                    .arg("-cp")
                    // servlet-api: ZooKeeper's AdminServer (Jetty) needs it when a test
                    // turns the AdminServer on.
                    .arg(
                        "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:\
                         /usr/share/java/servlet-api.jar",
                    )
                    .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(&cfg);
                c
            }
        };
        command
            .current_dir(&server.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?} server {}: {e}", self.flavor, server.id));
        server.child = Some(child);
    }

    fn wait_serving(&mut self, index: usize) {
        let start = Instant::now();
        let port = self.servers[index].client_port;
        while start.elapsed() < READY_TIMEOUT {
            if four_letter(port, "srvr").contains("Mode: ") {
                return;
            }
            let child = self.servers[index].child.as_mut();
            if let Some(status) = child.and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "{:?} server {} exited during start-up ({status}); log:\n{}",
                    self.flavor,
                    self.servers[index].id,
                    self.log_tail(index)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{:?} server {} did not serve on port {port} within {READY_TIMEOUT:?}; log:\n{}",
            self.flavor,
            self.servers[index].id,
            self.log_tail(index)
        );
    }

    /// The last lines of server `index`'s log, for failure messages.
    pub fn log_tail(&self, index: usize) -> String {
        let text =
            std::fs::read_to_string(self.servers[index].dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for index in 0..self.servers.len() {
            if let Some(mut child) = self.servers[index].child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(base) = self.servers.first().and_then(|s| s.dir.parent()) {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

/// The zoo.cfg both flavors read. A one-server ensemble has no `server.N` lines (standalone).
fn zoo_cfg(dir: &Path, client_port: u16, peers: &[(u32, u16, u16, u16)]) -> String {
    let mut cfg = format!(
        "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client_port}\n\
         clientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n\
         minSessionTimeout=1000\nmaxSessionTimeout=20000\n",
        dir.join("data").display()
    );
    if peers.len() > 1 {
        for &(id, _, peer_port, election_port) in peers {
            cfg.push_str(&format!(
                "server.{id}=127.0.0.1:{peer_port}:{election_port}\n"
            ));
        }
    }
    cfg
}

/// Sends a four-letter word to a client port; the answer, or "" when nothing answers.
pub fn four_letter(port: u16, word: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(word.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}
