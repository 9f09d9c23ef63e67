//! The AdminServer's JSON next to the real ZooKeeper 3.8's: every field Paddock answers
//! (but its own `paddock*` ones) is one ZooKeeper answers, with a value of the same JSON
//! type, so dashboards and scripts reading ZooKeeper's read Paddock's.

#![allow(clippy::unwrap_used)]

mod common;
mod interop_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use interop_support::{Ensemble, Flavor, ensure_tools, free_port, serial};
use serde_json::Value;

fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    body.to_owned()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        _ => "structure",
    }
}

#[test]
fn admin_commands_answer_as_zookeepers() {
    let _serial = serial();
    ensure_tools();
    assert!(
        std::path::Path::new("/usr/share/java/servlet-api.jar").exists(),
        "ZooKeeper's AdminServer needs /usr/share/java/servlet-api.jar (apt-get install \
         libservlet-api-java)"
    );
    let zk_port = free_port();
    let zookeeper = Ensemble::start_with(
        Flavor::ZooKeeper,
        1,
        &[
            "-Dzookeeper.admin.enableServer=true",
            "-Dzookeeper.admin.serverAddress=127.0.0.1",
            &format!("-Dzookeeper.admin.serverPort={zk_port}"),
        ],
    );
    let zk_admin: SocketAddr = format!("127.0.0.1:{zk_port}").parse().unwrap();
    let dir = common::temp_dir("interop-admin");
    let paddock = common::standalone(&dir, "admin.serverAddress=127.0.0.1\nadmin.serverPort=0\n");
    let pd_admin = paddock.admin_addr.unwrap();

    let zk_list = get(zk_admin, "/commands");
    let pd_list = get(pd_admin, "/commands");
    for line in pd_list.lines().filter(|l| l.starts_with("<a ")) {
        assert!(
            zk_list.contains(line),
            "{line} is not in ZooKeeper's list:\n{zk_list}"
        );
    }
    for command in [
        "monitor",
        "configuration",
        "environment",
        "dirs",
        "is_read_only",
        "ruok",
        "watch_summary",
        "mntr",
        "nope",
    ] {
        let path = format!("/commands/{command}");
        let zk: Value = serde_json::from_str(&get(zk_admin, &path)).unwrap();
        let pd: Value = serde_json::from_str(&get(pd_admin, &path)).unwrap();
        let (zk, pd) = (zk.as_object().unwrap(), pd.as_object().unwrap());
        for (key, value) in pd {
            if key.starts_with("paddock") {
                continue;
            }
            let theirs = zk
                .get(key)
                .unwrap_or_else(|| panic!("{command}: ZooKeeper has no {key:?}: {zk:?}"));
            assert_eq!(
                kind(value),
                kind(theirs),
                "{command}: {key} is {value} here, {theirs} in ZooKeeper"
            );
        }
        assert_eq!(pd["command"], zk["command"], "{command}");
        assert_eq!(pd["error"], zk["error"], "{command}");
    }
    drop(zookeeper);
    paddock.shutdown().unwrap();
}
