//! The secure client port with real clients: kazoo 2.11 (`use_ssl=True`) and the Java
//! client of ZooKeeper 3.8 (`zookeeper.client.secure=true`, Netty), against a `paddock
//! serve` whose config sets only `secureClientPort` (so it opens no plaintext port), with
//! certificates made here by a CA made here. Client certificates are needed (ZooKeeper's
//! default `ssl.clientAuth`), and a certificate's subject is the client's `x509` identity:
//! kazoo creates a node only its own certificate may touch, another certificate is refused
//! it, the Java client holding the first certificate reads it, and clients without a
//! certificate or without TLS get nothing.
#![allow(clippy::unwrap_used)]

mod interop_support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use interop_support::{ensure_tools, free_port, kazoo_venv, paddock_binary, repo_root, serial};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
};

const SUBJECT: &str = "CN=client1,O=Paddock Test";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes the CA (`ca.pem`), the server's key store (`server.pem`, for 127.0.0.1) and two
/// clients' keys and certificates (`clientN.key`, `clientN.crt`, and both in `clientN.pem`)
/// into `dir`.
fn certificates(dir: &Path) {
    // Distinct subjects: OpenSSL (under kazoo) takes a certificate whose subject is its
    // issuer's for a self-signed one.
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Paddock Test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "paddock server");
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::write(
        dir.join("server.pem"),
        format!("{}{}", key.serialize_pem(), cert.pem()),
    )
    .unwrap();
    for name in ["client1", "client2"] {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Paddock Test");
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(
            dir.join(format!("{name}.pem")),
            format!("{}{}", key.serialize_pem(), cert.pem()),
        )
        .unwrap();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("paddock-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(dir: &Path, port: u16) -> Server {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={d}/data\nsecureClientPort={port}\n\
             secureClientPortAddress=127.0.0.1\nssl.keyStore.location={d}/server.pem\n\
             ssl.trustStore.location={d}/ca.pem\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new(paddock_binary())
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "secure port not open");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server(child)
}

fn java_get(dir: &Path, port: u16, path: &str) -> String {
    let classpath = Command::new("bash")
        .arg(repo_root().join("scripts/zk-reference.sh"))
        .arg("classpath")
        .output()
        .unwrap();
    // The Netty client socket (the only one that speaks TLS) needs Netty's jars, which the
    // Debian package installs beside ZooKeeper's without listing them all in its manifest.
    let mut classpath = String::from_utf8(classpath.stdout)
        .unwrap()
        .trim()
        .to_owned();
    for module in [
        "buffer",
        "codec",
        "common",
        "handler",
        "resolver",
        "transport",
    ] {
        classpath.push_str(&format!(":/usr/share/java/netty-{module}.jar"));
    }
    classpath.push_str(":/usr/share/java/netty-transport-native-epoll.jar");
    classpath.push_str(":/usr/share/java/netty-transport-native-unix-common.jar");
    let d = dir.display();
    let out = Command::new("java")
        .args([
            "-Dzookeeper.client.secure=true".to_owned(),
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".to_owned(),
            format!("-Dzookeeper.ssl.keyStore.location={d}/client1.pem"),
            "-Dzookeeper.ssl.keyStore.type=PEM".to_owned(),
            format!("-Dzookeeper.ssl.trustStore.location={d}/ca.pem"),
            "-Dzookeeper.ssl.trustStore.type=PEM".to_owned(),
            "-cp".to_owned(),
            classpath,
            "org.apache.zookeeper.ZooKeeperMain".to_owned(),
            "-server".to_owned(),
            format!("127.0.0.1:{port}"),
            "get".to_owned(),
            path.to_owned(),
        ])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn kazoo_and_the_java_client_over_tls_with_x509_identities() {
    let _serial = serial();
    ensure_tools();
    let dir = temp_dir("client-tls");
    certificates(&dir);
    let port = free_port();
    let _server = start(&dir, port);

    let out = Command::new(kazoo_venv().join("bin/python"))
        .arg(repo_root().join("scripts/interop/kazoo_tls.py"))
        .args(["--hosts", &format!("127.0.0.1:{port}")])
        .args(["--ca", dir.join("ca.pem").to_str().unwrap()])
        .args(["--dir", dir.to_str().unwrap()])
        .args(["--subject", SUBJECT])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "kazoo over TLS failed:\n{stdout}\n{}\nserver log:\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "client1-get: over tls version=0",
            &format!("client1-acl: x509:{SUBJECT} perms=31"),
            "client2-get: NoAuthError",
            "no-certificate: refused (KazooTimeoutError)",
        ],
        "server log:\n{log}"
    );

    // The Java client, holding client1's key, reads the node only client1 may read.
    let java = java_get(&dir, port, "/tls-kazoo");
    assert!(
        java.lines().any(|l| l.trim() == "over tls"),
        "the Java client over TLS did not read the node:\n{java}"
    );

    // A plaintext client on the secure port gets no session, and there is no plaintext
    // port at all (the config sets only secureClientPort).
    assert!(paddock_net_real::client::Client::connect(&format!("127.0.0.1:{port}"), 2000).is_err());
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        !log.contains("0.0.0.0:2181") && !log.contains("client_addr=127.0.0.1:2181"),
        "{log}"
    );
}
