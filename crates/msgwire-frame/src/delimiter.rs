//! Delimiter framing. (Being written.)
