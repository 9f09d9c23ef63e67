//! A global allocator that records the largest single allocation a piece of code makes,
//! so the decoding targets can check that no length field makes a decoder allocate more
//! than its input justifies.
//!
//! Install it with `#[global_allocator] static A: PeakAllocator = PeakAllocator;` in every
//! binary that runs the targets (the cargo-fuzz wrappers and the replay test); the
//! targets refuse to run their allocation checks without it (see [`measure`]), so a
//! forgotten installation fails loudly instead of checking nothing. The record is per
//! thread, so tests running in parallel do not see each other's allocations. It does not
//! limit anything: it only measures.
#![allow(unsafe_code)] // implementing `GlobalAlloc` is unsafe by definition; see each block.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// The system allocator, plus a per-thread record of the largest allocation.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeakAllocator;

/// Set by the first allocation that goes through [`PeakAllocator`].
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The largest allocation (or reallocation target) on this thread since the last reset,
    /// in bytes. Const-initialised with no destructor, so using it never allocates.
    static LARGEST_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn note(size_bytes: usize) {
    INSTALLED.store(true, Ordering::Relaxed);
    // `try_with` fails only during thread teardown, when nothing is being measured.
    let _ = LARGEST_BYTES.try_with(|largest| {
        if size_bytes > largest.get() {
            largest.set(size_bytes);
        }
    });
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is a non-allocating record of the size.
unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees on `layout` are passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as in `dealloc`, and the caller's guarantees on `new_size` are kept.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `work` and returns its result with the largest single allocation it made on this
/// thread, in bytes.
///
/// Panics if [`PeakAllocator`] is not the global allocator: a measurement of zero would
/// then pass every bound without checking anything.
pub fn measure<R>(work: impl FnOnce() -> R) -> (R, usize) {
    // A probe allocation proves the allocator is installed (the first one sets the flag).
    drop(std::hint::black_box(Vec::<u8>::with_capacity(1)));
    assert!(
        INSTALLED.load(Ordering::Relaxed),
        "alloc_guard::PeakAllocator must be the #[global_allocator] of this binary"
    );
    LARGEST_BYTES.with(|largest| largest.set(0));
    let result = work();
    let largest_bytes = LARGEST_BYTES.with(Cell::get);
    (result, largest_bytes)
}
