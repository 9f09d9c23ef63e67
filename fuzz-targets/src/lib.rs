//! paddock-fuzz-targets: the bodies of Paddock's fuzz targets as plain functions over
//! bytes, so that two drivers share them: the thin `fuzz_target!` wrappers under `fuzz/`
//! (cargo-fuzz, coverage-guided) and `tests/replay.rs`, which runs every committed corpus
//! and regression input through the same function in a normal `cargo test`.
//!
//! Each target takes any byte string and either returns (the input was handled as the
//! code under test promises: a typed error or a correct result) or panics with the
//! property that broke; a panic is what the fuzzer reports as a crash. Targets must be
//! deterministic (no clock, no unseeded randomness) so a saved input replays the same
//! failure forever. They need [`alloc_guard::PeakAllocator`] as the global allocator.

pub mod alloc_guard;
pub mod auth_parsers;
pub mod node_client_stream;
pub mod peer_decode;
pub mod sim_cluster;
pub mod storage_recover;
pub mod tree_model;
pub mod tree_ops;
pub mod wire_decode;
pub mod wire_roundtrip;
pub mod zk_files;
pub mod zoo_cfg;

/// One fuzz target: its name (the folder under `fuzz/corpus/` and `fuzz/regressions/`,
/// and the file under `fuzz/fuzz_targets/`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in a fixed order.
pub const TARGETS: [Target; 10] = [
    ("wire_decode", wire_decode::run),
    ("wire_roundtrip", wire_roundtrip::run),
    ("peer_decode", peer_decode::run),
    ("storage_recover", storage_recover::run),
    ("tree_ops", tree_ops::run),
    ("node_client_stream", node_client_stream::run),
    ("zoo_cfg", zoo_cfg::run),
    ("sim_cluster", sim_cluster::run),
    ("auth_parsers", auth_parsers::run),
    ("zk_files", zk_files::run),
];
