//! One storage engine: the data directories the simulator saves (`paddock-sim run
//! --save-disks`) are served by the real server exactly as the simulator says, for seeds
//! with crashes, torn writes and bit flips; a disk the simulator refuses, the server
//! refuses too; and a torn tail cut into a saved segment is recovered the same way by
//! both.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use paddock_core::acl::Acl;
use paddock_core::wire::{PathRequest, Reply, Request, Response};
use paddock_net_real::client::Client;
use paddock_net_real::{config, server};
use paddock_sim::options::RunOptions;
use paddock_sim::saved::{self, SUPER_CREDENTIAL, SavedServer};

/// Starts a standalone server on a saved directory (its own zoo.cfg, on a free port).
fn serve(dir: &Path) -> Result<server::ServerHandle, String> {
    let text = fs::read_to_string(dir.join("zoo.cfg")).unwrap();
    let text = text.replace("clientPort=2181", "clientPort=0");
    let (cfg, _) = config::parse(&text).unwrap();
    server::start(cfg).map_err(|error| error.to_string())
}

/// The tree a client reads from `addr` as the super user, in `saved::tree_lines` form.
fn served_lines(addr: &str) -> Vec<String> {
    let mut client = Client::connect(addr, 30_000).unwrap();
    client
        .add_auth("digest", SUPER_CREDENTIAL.as_bytes())
        .unwrap();
    let mut lines = Vec::new();
    let mut stack = vec!["/".to_owned()];
    while let Some(path) = stack.pop() {
        if path == "/zookeeper" {
            continue;
        }
        let (data, stat) = client.get(&path, false).unwrap();
        let acl = match client.call(&Request::GetAcl(PathRequest { path: path.clone() })) {
            Ok((_, Reply::Response(Some(Response::GetAcl(body))))) => body.acl,
            other => panic!("getACL {path}: {other:?}"),
        };
        let acl: Vec<String> = acl
            .iter()
            .map(|Acl { perms, id }| format!("{}:{}:{perms}", id.scheme, id.id))
            .collect();
        lines.push(saved::znode_line(&path, &stat, &acl, &data));
        let base = if path == "/" { "" } else { path.as_str() };
        for child in client.children(&path, false).unwrap() {
            stack.push(format!("{base}/{child}"));
        }
    }
    lines.sort();
    lines
}

/// Serves `server`'s directory and checks the server agrees with the simulator.
fn check_served(seed: u64, server: &SavedServer) {
    let what = format!("seed {seed} server {}", server.id.0);
    match (&server.tree, serve(&server.dir)) {
        (Ok(expected), Ok(handle)) => {
            let addr = handle.client_addr.to_string();
            common::wait_serving(&addr);
            let served = served_lines(&addr);
            handle.shutdown().unwrap();
            assert!(expected.len() > 1, "{what}: an empty tree proves little");
            assert_eq!(&served, expected, "{what}: served tree differs");
        }
        (Err(refused), Err(error)) => {
            assert!(
                error.contains("refusing to start"),
                "{what}: {error} ({refused})"
            );
        }
        (Ok(_), Err(error)) => {
            panic!("{what}: the simulator starts from this disk, the server does not: {error}")
        }
        (Err(refused), Ok(handle)) => {
            handle.shutdown().unwrap();
            panic!("{what}: the server starts from a disk the simulator refuses: {refused}")
        }
    }
}

// Seeds chosen by what their faults left on the disks: the first seed, then seeds until
// one had a torn write, one left a disk that recovery refuses (bit flips, or a lost
// newest segment, which a standalone server cannot be re-synced from) and one had disk
// errors (EIO, ENOSPC, failed fsyncs). Every server of each is served and compared.
#[test]
fn saved_disks_are_served_as_the_simulator_says() {
    let (mut need_torn, mut need_refused, mut need_errors) = (true, true, true);
    let mut checked = Vec::new();
    for seed in 0..300 {
        if !(need_torn || need_refused || need_errors) {
            break;
        }
        let options = RunOptions {
            seed,
            ops: 300,
            ..RunOptions::default()
        };
        let counts = paddock_sim::run(&options, None).unwrap().fault_counts;
        let errors = counts.write_errors + counts.disk_full + counts.fsync_errors;
        let damaged = counts.bit_flips + counts.lost_segments;
        let useful = checked.is_empty()
            || (need_torn && counts.torn_writes > 0)
            || (need_refused && damaged > 0)
            || (need_errors && errors > 0);
        if !useful {
            continue;
        }
        let dir = common::temp_dir(&format!("sim-disks-{seed}"));
        let (report, servers) = paddock_sim::run_and_save_disks(&options, None, &dir).unwrap();
        assert!(report.result.is_ok(), "{}", report.summary_line());
        assert_eq!(servers.len(), 5);
        for server in &servers {
            need_refused &= server.tree.is_ok();
            check_served(seed, server);
        }
        need_torn &= counts.torn_writes == 0;
        need_errors &= errors == 0;
        checked.push(seed);
    }
    assert!(
        !(need_torn || need_refused || need_errors),
        "seeds {checked:?}: torn {need_torn} refused {need_refused} errors {need_errors}"
    );
}

// A tail torn into a saved segment (as a crash mid-append leaves it, here the last
// third of the newest segment, mid-record): both cut it the same way and serve the same,
// older tree.
#[test]
fn torn_tail_is_cut_alike() {
    let dir = common::temp_dir("sim-disks-torn");
    let options = RunOptions {
        ops: 300,
        seed: 7,
        ..RunOptions::default()
    };
    let (_, servers) = paddock_sim::run_and_save_disks(&options, None, &dir).unwrap();
    let newest_segment = |server: &SavedServer| {
        let mut segments: Vec<_> = fs::read_dir(server.dir.join("log"))
            .unwrap()
            .map(|item| item.unwrap().path())
            .collect();
        segments.sort();
        segments.pop().unwrap()
    };
    // The server whose newest segment is largest: cutting a third of it drops writes.
    let server = servers
        .into_iter()
        .max_by_key(|server| fs::metadata(newest_segment(server)).unwrap().len())
        .unwrap();
    let log = server.dir.join("log");
    let last = &newest_segment(&server);
    // The segment being written is padded with zeros: cut inside its records.
    let bytes = fs::read(last).unwrap();
    let records_end = bytes.iter().rposition(|b| *b != 0).unwrap() as u64 + 1;
    assert!(records_end > 1000, "the last segment holds records");
    fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(records_end * 2 / 3 + 3)
        .unwrap();
    let files = saved::load(&server.dir.join("data"), &log).unwrap();
    let expected = saved::listing(files, paddock_core::limits::Limits::default()).unwrap();
    assert_ne!(
        Ok(&expected),
        server.tree.as_ref(),
        "the cut changed nothing"
    );
    let torn = SavedServer {
        tree: Ok(expected),
        ..server
    };
    check_served(7, &torn);
}

// The other way round: the simulator starts a run from a data directory a real server
// wrote (`paddock-sim run --from-disks DIR`, every simulated server from a copy), and
// judges it from that state: the checkers' model starts from the server's snapshot, so
// a server that loaded anything else would disagree with it. The real server's znodes
// are still there at the end, and its ephemeral, whose session no client resumes,
// expired.
#[test]
fn the_simulator_starts_from_a_data_directory_a_real_server_wrote() {
    let dir = common::temp_dir("sim-from-real");
    let text = format!(
        "tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\nsnapCount=20\n",
        dir.display()
    );
    let (cfg, _) = config::parse(&text).unwrap();
    let handle = server::start(cfg).unwrap();
    let addr = handle.client_addr.to_string();
    common::wait_serving(&addr);
    let mut client = Client::connect(&addr, 30_000).unwrap();
    client.create("/real", b"", 0).unwrap();
    for i in 0..10 {
        client.create(&format!("/real/n{i}"), b"v0", 0).unwrap();
    }
    for round in 1..=5 {
        for i in 0..10 {
            let data = format!("v{round}");
            client
                .set(&format!("/real/n{i}"), data.as_bytes(), -1)
                .unwrap();
        }
    }
    client.create("/real/eph", b"e", 1).unwrap();
    handle.shutdown().unwrap();
    drop(client);
    let files: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        files.iter().any(|f| f.starts_with("snapshot."))
            && files.iter().any(|f| f.starts_with("log.")),
        "the real server left a snapshot and a log: {files:?}"
    );

    for seed in 0..3 {
        let options = RunOptions {
            seed,
            nodes: 3,
            ops: 300,
            from_disks: Some(dir.clone()),
            ..RunOptions::default()
        };
        let saved = common::temp_dir(&format!("sim-from-real-{seed}"));
        let (report, servers) = paddock_sim::run_and_save_disks(&options, None, &saved).unwrap();
        assert!(report.result.is_ok(), "{}", report.summary_line());
        assert!(
            report.committed > 64,
            "the run went on from the loaded log: {}",
            report.summary_line()
        );
        for server in servers.iter().filter_map(|s| s.tree.as_ref().ok()) {
            for i in 0..10 {
                let path = format!("/real/n{i} ");
                assert!(
                    server.iter().any(|l| l.starts_with(&path)),
                    "seed {seed}: {path} lost: {server:?}"
                );
            }
            assert!(
                !server.iter().any(|l| l.starts_with("/real/eph ")),
                "seed {seed}: the ephemeral of a session nobody resumed outlived it"
            );
        }
    }
}
