//! `paddock ctl` against an in-process server: the everyday verbs print what zkCli users
//! expect and fail with exit code 1 on a server error; `watch` prints the next event.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{connect, standalone, temp_dir};

fn ctl(addr: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["ctl", "--server", addr])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

// create, get, set, ls, stat and delete round-trip; errors exit 1.
#[test]
fn everyday_verbs() {
    let dir = temp_dir("ctl");
    let server = standalone(&dir, "");
    let addr = server.client_addr.to_string();
    assert_eq!(ctl(&addr, &["create", "/a", "one"]), (0, "/a\n".into()));
    assert_eq!(ctl(&addr, &["get", "/a"]), (0, "one\n".into()));
    assert_eq!(ctl(&addr, &["set", "/a", "two"]).0, 0);
    assert_eq!(ctl(&addr, &["get", "/a"]), (0, "two\n".into()));
    assert_eq!(ctl(&addr, &["ls", "/"]), (0, "a\nzookeeper\n".into()));
    let (code, stat) = ctl(&addr, &["stat", "/a"]);
    assert_eq!(code, 0);
    assert!(stat.contains("version: 1"), "{stat}");
    assert_eq!(ctl(&addr, &["delete", "/a"]).0, 0);
    assert_eq!(ctl(&addr, &["get", "/a"]).0, 1);
    assert_eq!(ctl(&addr, &["cmd", "ruok"]), (0, "imok\n".into()));
    server.shutdown().unwrap();
}

// `watch` prints the first event on the path and exits.
#[test]
fn watch_prints_the_next_event() {
    let dir = temp_dir("ctl-watch");
    let server = standalone(&dir, "");
    let addr = server.client_addr.to_string();
    let mut c = connect(&addr);
    c.create("/w", b"", 0).unwrap();
    let watcher = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["ctl", "--server", &addr, "watch", "/w"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The watcher sets its watch some time after it starts: change the data until it
    // has seen a change and exited.
    let mut output = None;
    let mut watcher = Some(watcher);
    for i in 0..100 {
        c.set("/w", format!("{i}").as_bytes(), -1).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        if let Some(child) = watcher.as_mut()
            && child.try_wait().unwrap().is_some()
        {
            output = Some(watcher.take().unwrap().wait_with_output().unwrap());
            break;
        }
    }
    let output = output.expect("watch did not exit");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "event type=3 path=/w\n"
    );
    c.close().unwrap();
    server.shutdown().unwrap();
}

// `bench` arguments the clock or the allocator cannot honour are refused by the argument
// parser (exit 2, naming the flag); they used to panic (Instant + Duration overflow, a
// capacity overflow) before any connection was made.
#[test]
fn bench_refuses_out_of_range_arguments() {
    for args in [
        ["--seconds", "18446744073709551615"],
        ["--seconds", "0"],
        ["--size", "18446744073709551615"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
            .args(["ctl", "--server", "127.0.0.1:1", "bench"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(args[0]), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
