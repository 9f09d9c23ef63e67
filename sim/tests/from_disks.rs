//! Runs that start from existing disks (`paddock-sim run --from-disks DIR`): the disks an
//! earlier run saved, one per server, are where the next run begins, and its checkers
//! judge it from there.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use paddock_sim::options::RunOptions;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("paddock-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// A run from the disks of another run's servers passes every checker and goes on from
// their state: it commits beyond where they stopped.
#[test]
fn a_run_starts_from_the_disks_another_run_saved() {
    let dir = temp_dir("sim-from-saved");
    let first = RunOptions {
        seed: 11,
        ops: 300,
        ..RunOptions::default()
    };
    let (report, _) = paddock_sim::run_and_save_disks(&first, None, &dir).unwrap();
    assert!(report.result.is_ok(), "{}", report.summary_line());
    for seed in [12, 13] {
        let next = RunOptions {
            seed,
            ops: 300,
            from_disks: Some(dir.clone()),
            ..RunOptions::default()
        };
        let again = paddock_sim::run(&next, None).unwrap();
        assert!(again.result.is_ok(), "{}", again.summary_line());
        assert!(
            again.committed > report.committed,
            "seed {seed} committed {} after a start at {}",
            again.committed,
            report.committed
        );
        assert!(
            again.options.replay_command().contains("--from-disks"),
            "{}",
            again.options.replay_command()
        );
    }
}

// A directory with nothing to start from is refused, not run from empty disks.
#[test]
fn a_start_from_nothing_is_refused() {
    let dir = temp_dir("sim-from-nothing");
    let error = paddock_sim::saved::load_start(&dir, 3).unwrap_err();
    assert!(error.to_string().contains("no data directory"), "{error}");
}
