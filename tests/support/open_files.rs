//! How many sockets a memory test may open: the tests that measure 1,000 connections
//! (`idle_memory` against `msgwire serve`, `stalled_connections` in process) measure
//! fewer, and say so, where the soft limit on open files is too low for them.
//! Included by each with `#[path]`.
#![allow(dead_code)]

/// The soft limit on this process's open files, from `/proc/self/limits`.
pub fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `wanted` connections, or fewer if this process may not open `fds_each` descriptors
/// for each of them (with 100 to spare).
pub fn connections_within_limit(wanted: usize, fds_each: usize) -> usize {
    match open_files_limit() {
        Some(limit) if limit < wanted * fds_each + 100 => {
            let n = (limit.saturating_sub(100) / fds_each).max(50);
            eprintln!("open files limited to {limit}: measuring {n} connections, not {wanted}");
            n
        }
        _ => wanted,
    }
}
