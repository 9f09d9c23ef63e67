//! `paddock-chaos run` end to end, as root: three real servers in network namespaces,
//! clients, a short fault phase of the seed's choosing, the heal, and the checkers'
//! verdict on the real history. The `paddock` binary is the one `cargo test --workspace`
//! builds beside this crate's binary.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn paddock() -> PathBuf {
    let chaos = PathBuf::from(env!("CARGO_BIN_EXE_paddock-chaos"));
    let paddock = chaos.with_file_name("paddock");
    assert!(
        paddock.is_file(),
        "{} is missing: run the workspace's tests (cargo test --workspace), which build it",
        paddock.display()
    );
    paddock
}

// A short run under faults ends with result=ok, having injected faults and checked
// answered operations; the namespaces it made are gone afterwards.
#[test]
fn a_short_run_is_judged_ok() {
    let out = Command::new(env!("CARGO_BIN_EXE_paddock-chaos"))
        .args(["run", "--seed", "3", "--servers", "3", "--clients", "3"])
        .args(["--seconds", "12", "--paddock"])
        .arg(paddock())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("paddock-chaos: seed=3 "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}\n{stderr}"));
    assert!(
        out.status.success() && summary.ends_with("result=ok"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" fault: "), "{stdout}");
    let answered: u64 = summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("answered="))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(answered > 100, "{summary}");
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let pid_prefix = "pdc";
    let left: Vec<String> = String::from_utf8_lossy(&namespaces.stdout)
        .lines()
        .filter(|l| l.starts_with(pid_prefix))
        .map(str::to_owned)
        .collect();
    // Other tests of this file may run at once; none runs here now, so none is left.
    assert!(left.is_empty(), "namespaces left: {left:?}");
}

// It can fail: with the server built with a planted bug (the leader commits without a
// quorum), a short run that cuts the leader off reports it, keeps the run's artefacts
// and prints the command that repeats the faults. The buggy server is built here, into
// its own target directory (`net-real`'s `planted-bugs` feature; release builds never
// have it).
#[test]
fn a_planted_bug_is_reported() {
    let chaos = PathBuf::from(env!("CARGO_BIN_EXE_paddock-chaos"));
    let target = chaos
        .parent()
        .and_then(|debug| debug.parent())
        .unwrap()
        .join("planted-bugs");
    let build = Command::new(env!("CARGO"))
        .args(["build", "-p", "paddock-net-real", "--bin", "paddock"])
        .args(["--features", "planted-bugs", "--target-dir"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let keep = std::env::temp_dir().join(format!("paddock-chaos-test-{}", std::process::id()));
    std::fs::create_dir_all(&keep).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_paddock-chaos"))
        .args(["run", "--seed", "5", "--servers", "3", "--clients", "3"])
        .args(["--seconds", "10", "--faults", "isolate", "--paddock"])
        .arg(target.join("debug/paddock"))
        .arg("--keep")
        .arg(&keep)
        .env("PADDOCK_PLANTED_BUG", "commit-without-quorum")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("paddock-chaos: seed=5 "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    assert!(summary.contains(" result=FAIL "), "{summary}");
    assert!(
        stdout.contains("replay the faults: paddock-chaos run --seed 5 --servers 3 --clients 3 --seconds 10 --faults isolate"),
        "{stdout}"
    );
    let kept = stdout
        .lines()
        .find_map(|l| l.strip_prefix("kept: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no kept folder:\n{stdout}"));
    for artefact in ["history.txt", "s1/server.log", "s1/myid", "s3/zoo.cfg"] {
        assert!(kept.join(artefact).exists(), "{artefact} not kept");
    }
    std::fs::remove_dir_all(&keep).unwrap();
}
