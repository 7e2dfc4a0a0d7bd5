//! Warnings about a peer, at most a few per window, so that a peer sending garbage as
//! fast as it can produces a handful of log lines, not a log as large as its input.

use std::time::{Duration, Instant};

/// Warnings allowed per window.
const PER_WINDOW: u32 = 5;
/// The window.
const WINDOW: Duration = Duration::from_secs(10);

/// A per-connection warning budget.
#[derive(Debug)]
pub(super) struct Warnings {
    window_start: Instant,
    shown: u32,
    suppressed: u64,
}

impl Warnings {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            shown: 0,
            suppressed: 0,
        }
    }

    /// Whether a warning may be logged now. When a new window opens after warnings were
    /// held back, says how many.
    pub(super) fn allow(&mut self, now: Instant, peer: Option<&str>) -> bool {
        if now.saturating_duration_since(self.window_start) >= WINDOW {
            if self.suppressed > 0 {
                tracing::warn!(
                    peer = peer.unwrap_or("?"),
                    suppressed = self.suppressed,
                    "more warnings about this peer were not logged"
                );
            }
            self.window_start = now;
            self.shown = 0;
            self.suppressed = 0;
        }
        if self.shown < PER_WINDOW {
            self.shown += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Says how many warnings were held back, if any (when the connection ends).
    pub(super) fn flush(&mut self, peer: Option<&str>) {
        if self.suppressed > 0 {
            tracing::warn!(
                peer = peer.unwrap_or("?"),
                suppressed = self.suppressed,
                "more warnings about this peer were not logged"
            );
            self.suppressed = 0;
        }
    }

    /// Warnings held back in the current window.
    #[cfg(test)]
    pub(super) fn suppressed(&self) -> u64 {
        self.suppressed
    }
}
