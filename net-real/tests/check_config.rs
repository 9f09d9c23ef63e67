//! `paddock check-config`: the exit codes and messages an operator sees.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn run(text: &str) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir().join(format!("paddock-cfg-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("zoo-{}.cfg", text.len()));
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&file.display().to_string(), "zoo.cfg");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

// A bad value stops with exit code 2 and names the file, line, key and reason.
#[test]
fn bad_config_exits_2_with_line() {
    let (code, _, stderr) = run("tickTime=2000\ndataDir=/tmp/x\nclientPort=twenty\n");
    assert_eq!(code, Some(2));
    insta::assert_snapshot!(stderr, @r#"zoo.cfg:3: error: clientPort: "twenty" is not a TCP port (0-65535)"#);
}

// A good config exits 0; unknown keys are printed as warnings with their line.
#[test]
fn good_config_warns_unknown_keys() {
    let (code, stdout, stderr) = run("dataDir=/tmp/x\nmystery=1\nserver.1=127.0.0.1:2888:3888\n");
    assert_eq!(code, Some(0));
    insta::assert_snapshot!(stderr, @"zoo.cfg:2: warning: unknown key mystery; ignored");
    assert!(stdout.contains("peer_port: 2888"), "{stdout}");
}

// A dynamicConfigFile's server lines are read (zoo.cfg holds none); an error in that file
// names it and its line, and a missing one exits 3.
#[test]
fn dynamic_config_file_is_read() {
    let dir = std::env::temp_dir().join(format!("paddock-cfg-dyn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dynamic = dir.join("zoo.cfg.dynamic.100000000");
    std::fs::write(
        &dynamic,
        "server.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.2:2888:3888;2181\n",
    )
    .unwrap();
    let text = format!("dataDir=/tmp/x\ndynamicConfigFile={}\n", dynamic.display());
    let (code, stdout, stderr) = run(&text);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("host: \"127.0.0.2\""), "{stdout}");
    std::fs::write(&dynamic, "server.1=127.0.0.1:2888:3888\nweight.1=3\n").unwrap();
    let (code, _, stderr) = run(&text);
    assert_eq!(code, Some(2));
    let stderr = stderr.replace(&dynamic.display().to_string(), "zoo.cfg.dynamic");
    insta::assert_snapshot!(stderr, @"zoo.cfg.dynamic:2: error: weight.1: hierarchical quorums (weights and groups) are not supported");
    std::fs::remove_file(&dynamic).unwrap();
    let (code, _, _) = run(&text);
    assert_eq!(code, Some(3));
}

// An unreadable file exits 3.
#[test]
fn missing_file_exits_3() {
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["check-config", "/nonexistent/zoo.cfg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}
