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
