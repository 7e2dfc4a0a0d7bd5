//! The instrument of the memory tests (`no_alloc_before_limit`, `stalled_headers`): a
//! global allocator that forwards every call to `System` and counts, in atomics, the
//! bytes live now and the largest single allocation made while [`MEASURING`] is set.
//! Each test binary that uses it installs it with
//! `#[global_allocator] static GLOBAL: Counting = Counting;`.
#![allow(unsafe_code, dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

/// The counting allocator.
pub struct Counting;

/// Bytes allocated and not yet freed.
pub static LIVE: AtomicUsize = AtomicUsize::new(0);
/// While true, [`LARGEST`] records allocation sizes.
pub static MEASURING: AtomicBool = AtomicBool::new(false);
/// The largest allocation (or reallocation) seen while [`MEASURING`].
pub static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn record(size: usize) {
    if MEASURING.load(SeqCst) {
        LARGEST.fetch_max(size, SeqCst);
    }
}

// SAFETY: forwards every call to `System` unchanged; only records sizes in atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same layout the caller gave us; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), SeqCst);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), SeqCst);
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), SeqCst);
            LIVE.fetch_add(new_size, SeqCst);
        }
        new
    }
}
