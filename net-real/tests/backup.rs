//! `paddock backup` of a running server and `paddock restore` into a fresh directory.
//!
//! The backup is taken while a writer creates nodes one after another, so it races the
//! server's log appends and snapshots: the restored tree must hold every node written
//! before the backup began, exactly as it was served, and of the raced ones a prefix
//! (nothing after a gap, nothing invented).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use common::{connect, standalone, temp_dir};

fn paddock(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_backup_of_a_running_server_restores_a_consistent_state() {
    let dir = temp_dir("backup-source");
    let mut server = standalone(&dir, "snapCount=60\n");
    let addr = server.client_addr.to_string();
    let mut client = connect(&addr);
    client.create("/b", b"", 0).unwrap();
    client.create("/race", b"", 0).unwrap();
    let mut before = Vec::new();
    for i in 0..150 {
        let path = format!("/b/n{i:03}");
        client.create(&path, format!("v{i}").as_bytes(), 0).unwrap();
        if i % 4 == 0 {
            client.set(&path, b"changed", -1).unwrap();
        }
    }
    for i in 0..150 {
        let path = format!("/b/n{i:03}");
        before.push((path.clone(), client.get(&path, false).unwrap()));
    }

    // A writer keeps appending while the backup copies the files.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicU32::new(0));
    let writer = {
        let stop = stop.clone();
        let acknowledged = acknowledged.clone();
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut c = connect(&addr);
            let mut written = 0u32;
            while !stop.load(Ordering::Relaxed) {
                c.create(&format!("/race/k{written:05}"), b"", 0).unwrap();
                written += 1;
                acknowledged.store(written, Ordering::SeqCst);
            }
            written
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    // Every write acknowledged before the backup starts is in it.
    let acknowledged_before = acknowledged.load(Ordering::SeqCst);
    let out = dir.with_extension("backup");
    let (code, said, stderr) = paddock(&[
        "backup",
        "--data-dir",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert_eq!(code, 0, "{said}{stderr}");
    assert!(said.starts_with("backup: "), "{said}");
    client.create("/after", b"", 0).unwrap();
    server.stop_flag().store(true, Ordering::Relaxed);
    server.join().unwrap();

    let restored = temp_dir("backup-restored");
    let (code, said, stderr) = paddock(&[
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--to",
        restored.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{said}{stderr}");
    // Restoring over data is refused; so is a damaged backup.
    let (code, _, stderr) = paddock(&[
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--to",
        restored.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("already holds Paddock data"), "{stderr}");
    let mut damaged = std::fs::read(&out).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x20;
    let damaged_file = dir.with_extension("damaged");
    std::fs::write(&damaged_file, damaged).unwrap();
    let elsewhere = temp_dir("backup-damaged");
    let (code, _, stderr) = paddock(&[
        "restore",
        "--from",
        damaged_file.to_str().unwrap(),
        "--to",
        elsewhere.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("not an intact Paddock snapshot"),
        "{stderr}"
    );

    let mut server = standalone(&restored, "");
    let mut client = connect(&server.client_addr.to_string());
    for (path, served) in &before {
        assert_eq!(&client.get(path, false).unwrap(), served, "{path}");
    }
    assert_eq!(client.exists("/after", false).unwrap(), None);
    let raced = client.children("/race", false).unwrap();
    let expected: Vec<String> = (0..raced.len()).map(|i| format!("k{i:05}")).collect();
    let mut raced_sorted = raced.clone();
    raced_sorted.sort();
    assert_eq!(raced_sorted, expected, "a prefix of the raced writes");
    assert!(raced.len() as u32 <= written);
    assert!(
        raced.len() as u32 >= acknowledged_before,
        "{} raced writes restored, {acknowledged_before} acknowledged before the backup",
        raced.len()
    );
    server.stop_flag().store(true, Ordering::Relaxed);
    server.join().unwrap();
}
