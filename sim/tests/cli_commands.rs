//! The command line as users see it: the names of commands and options, the format of the
//! summary lines and the exit codes. Numbers that change as the simulator grows (hashes,
//! op and event counts, timings) are redacted before the snapshots; their format is
//! asserted instead.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paddock-sim"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Keys whose values depend on what the simulator does rather than on the options.
const VARYING_KEYS: [&str; 6] = [
    "ops",
    "committed",
    "events",
    "virtual_ms",
    "ops_completed",
    "trace",
];

/// Replaces the value of each varying `key=value` with `<key>`, after checking that a
/// trace hash is 16 hex digits and that counts are numbers; a line without `key=value`
/// tokens (the speed line) has its numbers replaced by `<n>`.
fn redact(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        if !line.contains('=') {
            let words: Vec<String> = line
                .split(' ')
                .map(|w| {
                    if w.starts_with(|c: char| c.is_ascii_digit()) {
                        "<n>".to_owned()
                            + w.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
                    } else {
                        w.to_owned()
                    }
                })
                .collect();
            out.push(words.join(" "));
            continue;
        }
        let words: Vec<String> = line
            .split(' ')
            .map(|w| match w.split_once('=') {
                Some((key, value)) if VARYING_KEYS.contains(&key) => {
                    if key == "trace" {
                        assert_eq!(value.len(), 16, "{line}");
                        assert!(value.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
                    } else {
                        assert!(value.parse::<u64>().is_ok(), "{line}");
                    }
                    format!("{key}=<{key}>")
                }
                _ => w.to_owned(),
            })
            .collect();
        out.push(words.join(" "));
    }
    out.join("\n")
}

// A passing run prints its options, its counts and ends with the one summary line, and
// exits 0.
#[test]
fn run_prints_the_summary_line() {
    let output = sim(&[
        "run",
        "--seed",
        "1",
        "--nodes",
        "3",
        "--clients",
        "2",
        "--ops",
        "40",
        "--faults",
        "none",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = stdout(&output);
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("seed=1 nodes=3 ops="), "{last}");
    assert!(
        last.contains(" faults=none trace=") && last.ends_with(" result=ok"),
        "{last}"
    );
    insta::assert_snapshot!(redact(&text));
}

// --save-disks writes each server's data directory with a zoo.cfg to serve it and the
// tree it serves, and names them; the same run saves the same bytes twice.
#[test]
fn run_saves_the_disks() {
    let dir = std::env::temp_dir().join(format!("paddock-sim-cli-{}", std::process::id()));
    let save = |sub: &str| {
        let path = dir.join(sub);
        let args = [
            "run",
            "--seed",
            "3",
            "--nodes",
            "3",
            "--ops",
            "60",
            "--save-disks",
        ];
        let mut args: Vec<&str> = args.to_vec();
        let path_text = path.to_str().unwrap().to_owned();
        args.push(&path_text);
        let output = sim(&args);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        (path, stdout(&output))
    };
    let (a, text) = save("a");
    for id in 1..=3 {
        let server = a.join(format!("server-{id}"));
        assert!(
            text.contains(&format!(
                "disk of server {id}: {} (serves ",
                server.display()
            )),
            "{text}"
        );
        let cfg = std::fs::read_to_string(server.join("zoo.cfg")).unwrap();
        assert!(cfg.contains(&format!("dataDir={}", server.join("data").display())));
        let tree = std::fs::read_to_string(server.join("tree.txt")).unwrap();
        assert!(tree.starts_with("/ czxid=0x0 "), "{tree}");
        assert!(std::fs::read_dir(server.join("log")).unwrap().count() > 0);
    }
    let (b, _) = save("b");
    let bytes = |root: &std::path::Path| {
        let mut files = Vec::new();
        for sub in ["data", "log"] {
            let mut names: Vec<_> = std::fs::read_dir(root.join("server-1").join(sub))
                .unwrap()
                .map(|item| item.unwrap().path())
                .collect();
            names.sort();
            for name in names {
                files.push((
                    name.file_name().unwrap().to_owned(),
                    std::fs::read(&name).unwrap(),
                ));
            }
        }
        files
    };
    assert_eq!(bytes(&a), bytes(&b));
    let _ = std::fs::remove_dir_all(&dir);
}

// The same command twice, in two processes, prints the same output: the trace hash does
// not depend on the process (addresses, hash seeds, time).
#[test]
fn run_is_the_same_in_two_processes() {
    let args = [
        "run",
        "--seed",
        "9",
        "--clients",
        "3",
        "--ops",
        "100",
        "--faults",
        "all",
    ];
    let a = sim(&args);
    let b = sim(&args);
    assert_eq!(stdout(&a), stdout(&b));
    assert_eq!(a.status.code(), b.status.code());
}

// An unknown fault name, a cluster size other than 3, 5 or 7 and an empty seed range
// are refused with exit code 2 and a message that names what is allowed.
#[test]
fn bad_options_exit_2() {
    let faults = sim(&["run", "--seed", "1", "--faults", "crash,bogus"]);
    assert_eq!(faults.status.code(), Some(2));
    let err = String::from_utf8(faults.stderr).unwrap();
    insta::assert_snapshot!("bad_fault", err);
    let nodes = sim(&["run", "--seed", "1", "--nodes", "4"]);
    assert_eq!(nodes.status.code(), Some(2));
    assert!(
        String::from_utf8(nodes.stderr)
            .unwrap()
            .contains("expected 3, 5 or 7")
    );
    let seeds = sim(&["campaign", "--seeds", "5..5"]);
    assert_eq!(seeds.status.code(), Some(2));
    assert!(
        String::from_utf8(seeds.stderr)
            .unwrap()
            .contains("empty seed range")
    );
}

// `--trace FILE` writes one JSON object per line with the time, node, kind and details,
// including decoded client requests and peer messages.
#[test]
fn run_writes_a_json_lines_trace() {
    let path = std::env::temp_dir().join(format!("paddock-cli-trace-{}.jsonl", std::process::id()));
    let output = sim(&[
        "run",
        "--seed",
        "2",
        "--nodes",
        "3",
        "--clients",
        "2",
        "--ops",
        "30",
        "--faults",
        "none",
        "--trace",
        path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(value["t"].is_u64() && value["node"].is_u64(), "{line}");
        assert!(value["details"].is_string(), "{line}");
        kinds.insert(value["kind"].as_str().unwrap().to_owned());
    }
    for kind in ["start", "deliver", "apply", "to_server", "to_client"] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    assert!(text.contains("connect session="), "no decoded handshake");
}

// A campaign runs every seed, prints the speed line and ends with `N passed, M failed`.
#[test]
fn campaign_ends_with_counts() {
    let output = sim(&[
        "campaign",
        "--seeds",
        "0..4",
        "--jobs",
        "2",
        "--nodes",
        "3",
        "--clients",
        "2",
        "--ops",
        "30",
        "--faults",
        "none",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = stdout(&output);
    assert_eq!(text.lines().last(), Some("4 passed, 0 failed"));
    insta::assert_snapshot!(redact(&text));
}

// Shrinking a seed that passes is refused with exit code 1.
#[test]
fn shrink_refuses_a_passing_seed() {
    let output = sim(&[
        "shrink",
        "--seed",
        "3",
        "--nodes",
        "3",
        "--clients",
        "2",
        "--ops",
        "30",
        "--faults",
        "none",
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stdout(&output).contains("seed 3 does not fail: nothing to shrink"));
}

// Without the `planted-bugs` feature there is no `--bug`: asking for one is a usage error,
// so a release build can never plant a bug.
#[cfg(not(feature = "planted-bugs"))]
#[test]
fn bug_needs_the_feature() {
    let output = sim(&["run", "--seed", "1", "--bug", "ack-before-persist"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

// With the feature, `--bug NAME` reaches the run and is named in its first line.
#[cfg(feature = "planted-bugs")]
#[test]
fn bug_is_passed_to_the_run() {
    let output = sim(&[
        "run",
        "--seed",
        "1",
        "--nodes",
        "3",
        "--clients",
        "2",
        "--ops",
        "20",
        "--faults",
        "none",
        "--bug",
        "ack-before-persist",
    ]);
    let text = stdout(&output);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with(" bug=ack-before-persist"),
        "{text}"
    );
}
