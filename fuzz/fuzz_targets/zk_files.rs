//! cargo-fuzz entry point of `zk_files`; the body is `paddock_fuzz_targets::zk_files::run`
//! (see its documentation for what it checks), shared with the corpus replay test.
#![no_main]

use paddock_fuzz_targets::alloc_guard::PeakAllocator;

#[global_allocator]
static ALLOCATOR: PeakAllocator = PeakAllocator;

libfuzzer_sys::fuzz_target!(|data: &[u8]| paddock_fuzz_targets::zk_files::run(data));
