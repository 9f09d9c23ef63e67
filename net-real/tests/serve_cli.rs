//! `paddock serve` start-up failures: the exit codes and messages an operator sees.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::temp_dir;

fn serve(cfg_text: &str, name: &str) -> (Option<i32>, String) {
    let dir = temp_dir(name);
    let cfg_text = cfg_text.replace("DIR", dir.to_str().unwrap());
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, cfg_text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace(dir.to_str().unwrap(), "DIR");
    (out.status.code(), stderr)
}

// A bad value exits 2 naming the file, the line, the key and the reason.
#[test]
fn bad_value_exits_2_with_file_and_line() {
    let (code, stderr) = serve("dataDir=DIR\ntickTime=2000\nmaxClientCnxns=lots\n", "bad");
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("DIR/zoo.cfg:3: error: maxClientCnxns: "),
        "{stderr}"
    );
}

// An ensemble member without a readable myid exits 2 naming the file.
#[test]
fn missing_myid_exits_2() {
    let (code, stderr) = serve(
        "dataDir=DIR\nclientPort=0\nserver.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\n",
        "myid",
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("DIR/myid: cannot read"), "{stderr}");
}

// A client port already in use exits 4 naming the address.
#[test]
fn port_in_use_exits_4() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, stderr) = serve(
        &format!("dataDir=DIR\nclientPort={port}\nclientPortAddress=127.0.0.1\n"),
        "port",
    );
    assert_eq!(code, Some(4));
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

// A dataDir that holds a ZooKeeper server's data and no Paddock data exits 4 naming its
// version-2 directory, instead of serving an empty tree beside it.
#[test]
fn zookeeper_data_dir_exits_4() {
    let dir = temp_dir("zkdata");
    std::fs::create_dir_all(dir.join("version-2")).unwrap();
    std::fs::write(dir.join("version-2/snapshot.0"), b"ZKSN").unwrap();
    let cfg = dir.join("zoo.cfg");
    let text = format!("dataDir={}\nclientPort=0\n", dir.display());
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace(dir.to_str().unwrap(), "DIR");
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("DIR/version-2 holds Apache ZooKeeper's data, and DIR no Paddock data"),
        "{stderr}"
    );
}

// Quorum SASL without a JAAS file to take the credentials from stops start-up with exit 2
// and the line, instead of serving an unauthenticated peer port.
#[test]
fn quorum_sasl_without_jaas_exits_2() {
    let (code, stderr) = serve(
        "dataDir=DIR\nclientPort=0\nquorum.auth.enableSasl=true\n",
        "qsasl",
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("DIR/zoo.cfg:3: error: quorum.auth.enableSasl: needs a JAAS file"),
        "{stderr}"
    );
}

// The super digest comes from SERVER_JVMFLAGS as ZooKeeper's operators set it: the super
// user (`super:test`) reads a node only its owner may; a bad value there exits 2 naming
// the variable.
#[test]
fn super_digest_from_server_jvmflags() {
    use common::{connect, free_port};
    let dir = temp_dir("jvmflags");
    let port = free_port();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n",
            dir.display()
        ),
    )
    .unwrap();
    let flags = "-Xmx1g -Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=";
    let mut child = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env("SERVER_JVMFLAGS", flags)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut owner = connect(&addr);
    common::create_owned(&mut owner, "/owned", b"secret");
    let mut admin = connect(&addr);
    assert!(admin.get("/owned", false).is_err(), "no identity yet");
    admin.add_auth("digest", b"super:test").unwrap();
    assert_eq!(admin.get("/owned", false).unwrap().0, b"secret");
    child.kill().unwrap();
    child.wait().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env(
            "SERVER_JVMFLAGS",
            "-Dzookeeper.DigestAuthenticationProvider.superDigest=nocolon",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "SERVER_JVMFLAGS/JVMFLAGS: error: -Dzookeeper.DigestAuthenticationProvider.superDigest: "
        ),
        "{stderr}"
    );
}
