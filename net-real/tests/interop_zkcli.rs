//! Smoke test: ZooKeeper's own command-line client (zkCli.sh from Debian's zookeeper package)
//! against Paddock, driven non-interactively with one-shot commands (`zkCli.sh -server h:p
//! create /x y`).
//!
//! The same commands run against a real ZooKeeper 3.8; their outputs, with run-specific lines
//! removed (zxids, times, session ids, log noise), and exit codes must be identical.

#![allow(clippy::unwrap_used)]

mod interop_support;

use std::process::Command;

use interop_support::{Ensemble, Flavor, ensure_tools, serial};

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// One-shot zkCli commands, in order; each is a fresh JVM and a fresh session.
const COMMANDS: &[&[&str]] = &[
    &["create", "/zkcli", "hello"],
    &["create", "/zkcli", "again"],
    &["get", "/zkcli"],
    &["set", "/zkcli", "world"],
    &["stat", "/zkcli"],
    &["create", "-s", "/zkcli/seq-", "s"],
    &["create", "-e", "/zkcli/eph", "e"],
    &["ls", "/zkcli"],
    &["delete", "/zkcli"],
    &["deleteall", "/zkcli"],
    &["get", "/zkcli"],
];

/// Keeps zkCli's answer, dropping what changes from run to run.
fn normalize(output: &str) -> Vec<String> {
    const NOISE: &[&str] = &[
        "WATCHER::",
        "WatchedEvent state:SyncConnected type:None path:null",
        "SLF4J:",
        "Connecting to",
        "cZxid",
        "ctime",
        "mZxid",
        "mtime",
        "pZxid",
    ];
    output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !NOISE.iter().any(|n| l.starts_with(n)))
        .map(str::to_owned)
        .collect()
}

fn run_commands(hosts: &str) -> Vec<String> {
    let mut transcript = Vec::new();
    for args in COMMANDS {
        let out = Command::new(ZKCLI)
            .arg("-server")
            .arg(hosts)
            .args(*args)
            .env("ZOO_LOG4J_PROP", "ERROR,CONSOLE")
            .output()
            .unwrap();
        let mut lines = normalize(&String::from_utf8_lossy(&out.stdout));
        lines.extend(normalize(&String::from_utf8_lossy(&out.stderr)));
        transcript.push(format!(
            "$ {} -> exit {:?}: {}",
            args.join(" "),
            out.status.code(),
            lines.join(" | ")
        ));
    }
    transcript
}

// Shows that zkCli's create/get/set/stat/ls/delete/deleteall, run one command per process,
// print the same answers and exit codes against Paddock as against ZooKeeper 3.8.
#[test]
fn zkcli_one_shot_commands_on_paddock_match_zookeeper() {
    let _serial = serial();
    ensure_tools();
    let zookeeper = {
        let ensemble = Ensemble::start(Flavor::ZooKeeper, 1);
        run_commands(&ensemble.hosts())
    };
    println!(
        "---- zkCli against ZooKeeper 3.8 ----\n{}",
        zookeeper.join("\n")
    );
    assert!(
        zookeeper
            .iter()
            .any(|l| l.starts_with("$ get /zkcli -> exit Some(0): hello")),
        "zkCli did not read back its own write from ZooKeeper; the harness is broken"
    );
    let paddock = {
        let ensemble = Ensemble::start(Flavor::Paddock, 3);
        run_commands(&ensemble.hosts())
    };
    println!("---- zkCli against Paddock ----\n{}", paddock.join("\n"));
    let differences: Vec<String> = zookeeper
        .iter()
        .zip(paddock.iter())
        .filter(|(z, p)| z != p)
        .map(|(z, p)| format!("  zookeeper: {z}\n  paddock:   {p}"))
        .collect();
    assert!(
        differences.is_empty(),
        "zkCli differs from ZooKeeper 3.8:\n{}",
        differences.join("\n")
    );
}

/// Starts a 3-node ensemble of `flavor`, kills two members and returns what `srvr` on the last
/// one answers once it stops answering with a `Mode:` line (or its last answer after 30 s).
/// An empty answer (the server not accepting yet, or closing before it answered; seen
/// from ZooKeeper on a loaded machine) is asked again.
fn srvr_without_quorum(flavor: Flavor) -> String {
    let mut ensemble = Ensemble::start(flavor, 3);
    ensemble.kill(0);
    ensemble.kill(1);
    let port = ensemble.servers[2].client_port;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = interop_support::four_letter(port, "srvr");
        let answered = !text.is_empty() && !text.contains("Mode:");
        if answered || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

// Shows that a member that lost its quorum answers `srvr` as ZooKeeper 3.8 does: the
// "not currently serving" sentence, not a `Mode: follower` line.
#[test]
fn srvr_without_quorum_says_not_serving_like_zookeeper() {
    let _serial = serial();
    ensure_tools();
    let zookeeper = srvr_without_quorum(Flavor::ZooKeeper);
    let paddock = srvr_without_quorum(Flavor::Paddock);
    assert_eq!(
        zookeeper,
        "This ZooKeeper instance is not currently serving requests\n"
    );
    assert_eq!(paddock, zookeeper);
}
