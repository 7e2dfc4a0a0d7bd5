//! Timing helpers, input generation and the machine description.

use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};

/// Runs `f` `rounds` times after one warm-up and returns the median duration.
pub fn median_of<F: FnMut()>(rounds: usize, mut f: F) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Cuts `len` bytes into read sizes, the same for every contender: uniformly random
/// between 1 byte and `max_read`, as TCP reads of a busy socket look.
pub fn read_sizes(len: usize, max_read: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sizes = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = rng.gen_range(1..=max_read).min(left);
        sizes.push(n);
        left -= n;
    }
    sizes
}

/// The stream cut into the reads `sizes` describes.
pub fn pieces<'a>(wire: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(sizes.len());
    let mut pos = 0;
    for &n in sizes {
        out.push(&wire[pos..pos + n]);
        pos += n;
    }
    out
}

/// Operations per second.
pub fn per_sec(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

/// `1.23 M` style.
pub fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

/// CPU model, cores and rustc, for the report header.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("Machine: {cpu}, {cores} cores; {rustc}; release profile.")
}
