//! `paddock import-zookeeper` on data directories the real Apache ZooKeeper 3.8 wrote.
//!
//! A ZooKeeper server taking a snapshot every few dozen txns (each taken while writes go on,
//! so fuzzy) is given every kind of znode and change by kazoo (scripts/interop/zk_tree.py),
//! then killed with a session still open. Its data directory is imported in place and
//! Paddock started on it: every znode must read back as ZooKeeper served it (data, ACL and
//! every Stat field), the open session must resume with the password ZooKeeper gave it and
//! still own its ephemerals, and new zxids must follow ZooKeeper's.

#![allow(clippy::unwrap_used)]

mod interop_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use interop_support::{
    Ensemble, Flavor, ensure_tools, kazoo_venv, paddock_binary, repo_root, serial,
};

fn tree_script(args: &[&str]) -> String {
    let out = Command::new(kazoo_venv().join("bin/python"))
        .arg(repo_root().join("scripts/interop/zk_tree.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zk_tree.py {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn paddock(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(paddock_binary()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The newest `log.*` of a ZooKeeper data directory.
fn newest_log(data_dir: &Path) -> PathBuf {
    let dir = data_dir.join("version-2");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("log."))
        .max_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            u64::from_str_radix(&name["log.".len()..], 16).unwrap()
        })
        .unwrap()
}

/// Writes the start of a record over the zero padding after a log's last record: a write
/// the server never finished (a checksum, a length of 64, no end marker).
fn tear(log: &Path) {
    let mut bytes = std::fs::read(log).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    assert_eq!(bytes[end - 1], b'B', "the last record ends with its marker");
    let torn = [0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 64, 1, 2, 3];
    if bytes.len() < end + 200 {
        bytes.resize(end + 200, 0);
    }
    bytes[end..end + torn.len()].copy_from_slice(&torn);
    std::fs::write(log, bytes).unwrap();
}

/// Fills a ZooKeeper server started with `jvm_flags`, kills it, imports its data in place
/// and serves it with Paddock; checks the tree, the session and the zxids. Returns
/// import's output.
fn migrate(jvm_flags: &[&str], count: u32, torn: bool) -> String {
    let mut ensemble = Ensemble::start_with(Flavor::ZooKeeper, 1, jvm_flags);
    let hosts = ensemble.hosts();
    let populated = tree_script(&["populate", "--hosts", &hosts, "--count", &count.to_string()]);
    let session: Vec<&str> = populated.split_whitespace().collect();
    assert_eq!(session.len(), 3, "{populated}");
    let zookeeper = tree_script(&["dump", "--hosts", &hosts]);
    ensemble.kill(0);
    let data = ensemble.data_dir(0);
    let cfg = data.parent().unwrap().join("zoo.cfg");
    if torn {
        tear(&newest_log(&data));
    }

    // Paddock refuses ZooKeeper's data until it is imported, naming the command.
    let (code, _, stderr) = paddock(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("paddock import-zookeeper"), "{stderr}");

    let dir = data.to_str().unwrap();
    let (code, imported, stderr) = paddock(&["import-zookeeper", "--from", dir, "--to", dir]);
    assert_eq!(code, 0, "{imported}{stderr}");
    println!("---- import ----\n{imported}{stderr}");
    // A second import would overwrite what the first wrote: refused.
    let (code, _, stderr) = paddock(&["import-zookeeper", "--from", dir, "--to", dir]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("already holds Paddock data"), "{stderr}");

    // inspect reads both servers' files: ZooKeeper's newest log and the imported snapshot.
    let log = newest_log(&data);
    let (code, text, stderr) = paddock(&["inspect", log.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.starts_with("zookeeper transaction log, "), "{text}");
    let snapshot = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snapshot.")
        })
        .unwrap();
    let (code, json, stderr) = paddock(&["inspect", "--json", snapshot.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(json.contains("\"path\": \"/app\""), "{json}");

    ensemble.flavor = Flavor::Paddock;
    ensemble.restart(0);
    let served = tree_script(&["dump", "--hosts", &hosts]);
    assert_eq!(served, zookeeper, "Paddock serves what ZooKeeper served");
    let resumed = tree_script(&[
        "resume",
        "--hosts",
        &hosts,
        "--session",
        session[1],
        "--password",
        session[2],
    ]);
    let lines: Vec<&str> = resumed.lines().collect();
    assert_eq!(
        lines[..3],
        ["resumed True", "owns e1 seq-0000000001", "after close "],
        "{resumed}"
    );
    let last = imported
        .split("last zxid 0x")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap();
    let last = u64::from_str_radix(last, 16).unwrap();
    let new = u64::from_str_radix(lines[3].strip_prefix("new czxid ").unwrap(), 16).unwrap();
    assert!(new > last, "new zxid {new:#x} after the imported {last:#x}");
    imported
}

// A fuzzy snapshot plus log replay, a torn last record and an open session: all of the
// tree and the session come over.
#[test]
fn a_zookeeper_data_directory_imports_exactly() {
    let _serial = serial();
    ensure_tools();
    let imported = migrate(
        &[
            "-Dzookeeper.snapCount=40",
            "-Dzookeeper.extendedTypesEnabled=true",
        ],
        200,
        true,
    );
    assert!(imported.contains("last record torn"), "{imported}");
    assert!(imported.contains("snapshot   "), "{imported}");
}

// Snapshots compressed with gzip and with snappy (zookeeper.snapshot.compression.method).
#[test]
fn compressed_zookeeper_snapshots_import() {
    let _serial = serial();
    ensure_tools();
    for method in ["gz", "snappy"] {
        let flag = format!("-Dzookeeper.snapshot.compression.method={method}");
        let imported = migrate(
            &[
                "-Dzookeeper.snapCount=30",
                "-Dzookeeper.extendedTypesEnabled=true",
                &flag,
            ],
            60,
            false,
        );
        let suffix = format!(".{method}\n");
        assert!(
            imported
                .lines()
                .next()
                .unwrap()
                .ends_with(&suffix[..suffix.len() - 1]),
            "{imported}"
        );
    }
}

// The way back: a Paddock server's data exported as a ZooKeeper snapshot, on which the
// real ZooKeeper 3.8 starts and serves the same tree.
#[test]
fn a_paddock_data_directory_exports_to_zookeeper() {
    let _serial = serial();
    ensure_tools();
    let mut ensemble = Ensemble::start_with(
        Flavor::Paddock,
        1,
        &["-Dzookeeper.extendedTypesEnabled=true"],
    );
    let hosts = ensemble.hosts();
    tree_script(&["populate", "--hosts", &hosts, "--count", "100"]);
    let paddock_tree = tree_script(&["dump", "--hosts", &hosts]);
    ensemble.kill(0);
    let dir = ensemble.data_dir(0);
    let dir = dir.to_str().unwrap();
    let (code, exported, stderr) = paddock(&["export-zookeeper", "--from", dir, "--to", dir]);
    assert_eq!(code, 0, "{exported}{stderr}");
    println!("---- export ----\n{exported}");
    // A second export would stand beside the first: refused.
    let (code, _, stderr) = paddock(&["export-zookeeper", "--from", dir, "--to", dir]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("already holds ZooKeeper data"), "{stderr}");
    ensemble.flavor = Flavor::ZooKeeper;
    ensemble.restart(0);
    let zookeeper_tree = tree_script(&["dump", "--hosts", &hosts]);
    assert_eq!(
        zookeeper_tree, paddock_tree,
        "ZooKeeper serves what Paddock served"
    );
}
