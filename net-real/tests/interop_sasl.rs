//! Client SASL (DIGEST-MD5) with real clients: kazoo 2.11 (`sasl_options`, pure-sasl) and
//! the Java client of ZooKeeper 3.8 (a JAAS `Client` section), against a `paddock serve`
//! configured as ZooKeeper's operators do it: `SERVER_JVMFLAGS` naming a JAAS file whose
//! `Server` section holds `user_NAME="password"` entries, and `zookeeper.superUser`.
//! kazoo's bob creates a node only the SASL user bob may touch; a client without SASL is
//! refused it, the SASL super user reads it, a wrong password gets nothing; the Java client
//! authenticating as bob reads it, and without credentials it is refused.
#![allow(clippy::unwrap_used)]

mod interop_support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use interop_support::{ensure_tools, free_port, kazoo_venv, paddock_binary, repo_root, serial};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("paddock-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(dir: &Path, port: u16) -> Server {
    std::fs::write(
        dir.join("jaas.conf"),
        "Server {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
         user_bob=\"bobsecret\"\n    user_admin=\"adminsecret\";\n};\n",
    )
    .unwrap();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={d}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new(paddock_binary())
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env(
            "SERVER_JVMFLAGS",
            format!(
                "-Xmx512m -Djava.security.auth.login.config={}/jaas.conf \
                 -Dzookeeper.superUser=admin",
                dir.display()
            ),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "client port not open");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server(child)
}

/// `zkCli get PATH` from the Java client, with the JAAS file `jaas` when given.
fn java_get(port: u16, jaas: Option<&Path>, path: &str) -> String {
    let classpath = Command::new("bash")
        .arg(repo_root().join("scripts/zk-reference.sh"))
        .arg("classpath")
        .output()
        .unwrap();
    let classpath = String::from_utf8(classpath.stdout).unwrap();
    let mut args = Vec::new();
    if let Some(jaas) = jaas {
        args.push(format!(
            "-Djava.security.auth.login.config={}",
            jaas.display()
        ));
    }
    args.extend([
        "-cp".to_owned(),
        classpath.trim().to_owned(),
        "org.apache.zookeeper.ZooKeeperMain".to_owned(),
        "-server".to_owned(),
        format!("127.0.0.1:{port}"),
        "get".to_owned(),
        path.to_owned(),
    ]);
    let out = Command::new("java").args(args).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn kazoo_and_the_java_client_with_sasl_digest_md5() {
    let _serial = serial();
    ensure_tools();
    let dir = temp_dir("client-sasl");
    let port = free_port();
    let _server = start(&dir, port);

    let out = Command::new(kazoo_venv().join("bin/python"))
        .arg(repo_root().join("scripts/interop/kazoo_sasl.py"))
        .args(["--hosts", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "kazoo with SASL failed:\n{stdout}\n{}\nserver log:\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "bob-get: over sasl version=0",
            "bob-acl: sasl:bob perms=31",
            "anonymous-get: NoAuthError",
            "admin-get: over sasl",
            "wrong-password: refused",
        ],
        "server log:\n{log}"
    );

    // The Java client authenticating as bob reads the node only bob may read; without
    // credentials it is refused.
    let client_jaas = dir.join("client.conf");
    std::fs::write(
        &client_jaas,
        "Client {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
         username=\"bob\"\n    password=\"bobsecret\";\n};\n",
    )
    .unwrap();
    let java = java_get(port, Some(&client_jaas), "/sasl-kazoo");
    assert!(
        java.contains("SaslAuthenticated") && java.lines().any(|l| l.trim() == "over sasl"),
        "the Java client with SASL did not read the node:\n{java}"
    );
    let java = java_get(port, None, "/sasl-kazoo");
    assert!(
        java.contains("Insufficient permission"),
        "the Java client without SASL read the node:\n{java}"
    );
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}
