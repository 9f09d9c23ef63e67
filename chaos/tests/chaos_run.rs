//! `paddock-chaos run` end to end, as root: three real servers in network namespaces,
//! clients, a short fault phase of the seed's choosing, the heal, and the checkers'
//! verdict on the real history. The `paddock` binary is the one `cargo test --workspace`
//! builds beside this crate's binary.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One run at a time: each starts three servers and clients, and runs side by side on
/// a two-core machine would slow each other past the session timeouts.
static RUNS: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    RUNS.lock().unwrap_or_else(PoisonError::into_inner)
}

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
    let _turn = one_at_a_time();
    let child = Command::new(env!("CARGO_BIN_EXE_paddock-chaos"))
        .args(["run", "--seed", "3", "--servers", "3", "--clients", "3"])
        .args(["--seconds", "12", "--paddock"])
        .arg(paddock())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run_pid = child.id();
    let out = child.wait_with_output().unwrap();
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
    // The run's namespaces are `pdc{its pid}-…`: none is left.
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let pid_prefix = format!("pdc{run_pid}-");
    let left: Vec<String> = String::from_utf8_lossy(&namespaces.stdout)
        .lines()
        .filter(|l| l.starts_with(&pid_prefix))
        .map(str::to_owned)
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
}

/// `paddock-chaos run` of three servers and three clients with only `faults`; returns
/// the output, having checked it ends `result=ok` with faults of that kind printed
/// (`printed`, the text after `fault: `) and more than 50 operations answered.
fn run_ok(seed: u64, seconds: u64, faults: &str, printed: &str) -> String {
    let _turn = one_at_a_time();
    let out: Output = Command::new(env!("CARGO_BIN_EXE_paddock-chaos"))
        .args(["run", "--seed", &seed.to_string(), "--servers", "3"])
        .args(["--clients", "3", "--seconds", &seconds.to_string()])
        .args(["--faults", faults, "--paddock"])
        .arg(paddock())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with(&format!("paddock-chaos: seed={seed} ")))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}\n{stderr}"));
    assert!(
        out.status.success() && summary.ends_with("result=ok"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!(" fault: {printed}")),
        "no {faults} fault printed:\n{stdout}"
    );
    let answered: u64 = summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("answered="))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(answered > 50, "{summary}");
    stdout
}

// Delay on the peer links (through the harness's proxies, which carry every peer
// connection of a run that may delay) leaves a run that is judged ok.
#[test]
fn a_run_with_peer_delays_is_judged_ok() {
    let stdout = run_ok(1, 10, "delay", "delay ");
    assert!(stdout.contains("peer links for "), "{stdout}");
}

// A bridge (one server reaching two sides that cannot reach each other, a cut no
// grouping expresses) leaves a run that is judged ok.
#[test]
fn a_run_with_a_bridge_is_judged_ok() {
    let stdout = run_ok(1, 10, "bridge", "bridge: server ");
    assert!(stdout.contains("which cannot reach each other"), "{stdout}");
}

// Servers wiped (but for myid) one at a time rejoin — each catches up before the next
// fault — and at least one of them by installing the leader's snapshot, which the
// verdict reads its log after; the run is judged ok.
#[test]
fn a_run_with_wiped_servers_is_judged_ok() {
    let stdout = run_ok(1, 12, "wipe", "wipe server ");
    assert!(stdout.contains(" caught up to zxid "), "{stdout}");
    assert!(
        stdout.contains("that it installed from the leader"),
        "no wiped server rejoined from a snapshot:\n{stdout}"
    );
}

// Servers restarted with their monotonic clock hours ahead and near zero (in time
// namespaces) serve on, and the run is judged ok. Seed 2 draws both directions.
#[test]
fn a_run_with_clock_offsets_is_judged_ok() {
    let stdout = run_ok(2, 10, "clock", "clock: restart server ");
    assert!(stdout.contains(" h ahead"), "{stdout}");
    assert!(stdout.contains("(as just after boot)"), "{stdout}");
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
    let _turn = one_at_a_time();
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

/// `paddock-chaos run` of three servers and 15 clients playing the recipes (three per
/// recipe, with client stalls): its exit code and output.
fn recipes_run(seed: u64, seconds: u64, workload: &str, faults: &str) -> (Option<i32>, String) {
    let _turn = one_at_a_time();
    let out: Output = Command::new(env!("CARGO_BIN_EXE_paddock-chaos"))
        .args(["run", "--seed", &seed.to_string(), "--servers", "3"])
        .args(["--clients", "15", "--seconds", &seconds.to_string()])
        .args(["--workload", workload, "--faults", faults, "--paddock"])
        .arg(paddock())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), stdout)
}

// The recipes, used safely, on real servers under every fault: judged ok by every
// checker, the recipes' own included.
#[test]
fn recipes_used_safely_pass_on_a_real_network() {
    let faults = "partition,isolate,loss,bandwidth,kill,pause,delay,wipe,clock";
    let (code, stdout) = recipes_run(5, 20, "recipes", faults);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains(" result=ok"), "{stdout}");
}

// The pitfall on a real network: locks and leaders acting without their fencing token
// admit two acting holders once a holder stalls past its session timeout, and the run
// says so with the seed and the command that repeats it. (Whether a stall lands while
// holding depends on real timing, so up to three seeds are tried.)
#[test]
fn the_unfenced_lock_admits_two_holders_on_a_real_network() {
    let mut outputs = Vec::new();
    for seed in 1..=3 {
        let (code, stdout) = recipes_run(seed, 30, "recipes-unfenced", "bandwidth");
        if code == Some(1) {
            let summary = stdout
                .lines()
                .find(|l| l.starts_with(&format!("paddock-chaos: seed={seed} ")))
                .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
            assert!(
                summary.contains("result=FAIL recipe-lock: two holders acted")
                    || summary.contains("result=FAIL recipe-election: two holders acted"),
                "{stdout}"
            );
            assert!(stdout.contains("--workload recipes-unfenced"), "{stdout}");
            if let Some(kept) = stdout.lines().find_map(|l| l.strip_prefix("kept: ")) {
                std::fs::remove_dir_all(kept).unwrap();
            }
            return;
        }
        outputs.push(stdout);
    }
    panic!("no seed showed the pitfall:\n{}", outputs.join("\n"));
}
