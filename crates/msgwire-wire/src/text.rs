//! Peer-supplied text in logs and error messages, cut to a short prefix.
//!
//! A method name, an error message or serde's complaint about params can quote what a
//! peer sent; a peer can send megabytes. Whatever msgwire writes to a log or into an
//! error it sends back quotes at most [`EXCERPT_LEN`] bytes of it.
//!
//! ```
//! use msgwire_wire::text::excerpt;
//!
//! assert_eq!(excerpt("getUser", 64), "getUser");
//! let long = "x".repeat(1000);
//! assert_eq!(excerpt(&long, 8), "xxxxxxxx… (1000 bytes)");
//! assert_eq!(excerpt("ééé", 3), "é… (6 bytes)"); // cut on a char boundary
//! ```

use std::borrow::Cow;

/// How much of a peer's text msgwire quotes by default.
pub const EXCERPT_LEN: usize = 128;

/// `text` if it is at most `max` bytes; otherwise its first `max` bytes (fewer, to end
/// on a char boundary), an ellipsis and the full length.
pub fn excerpt(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len()))
}

/// At most `max` bytes of what `value` displays as, without ever building more of it:
/// for errors whose text quotes a peer's value (serde's "invalid type: string \"…\"").
///
/// ```
/// use msgwire_wire::text::display_excerpt;
///
/// let long = "y".repeat(10_000_000);
/// assert_eq!(display_excerpt(&long, 4), "yyyy…");
/// assert_eq!(display_excerpt(&42, 4), "42");
/// ```
pub fn display_excerpt(value: &dyn std::fmt::Display, max: usize) -> String {
    struct Capped {
        out: String,
        max: usize,
        cut: bool,
    }
    impl std::fmt::Write for Capped {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = self.max - self.out.len();
            if s.len() <= room {
                self.out.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.out.push_str(&s[..end]);
            self.cut = true;
            // Stops the formatting: nothing more is rendered.
            Err(std::fmt::Error)
        }
    }
    let mut capped = Capped {
        out: String::new(),
        max,
        cut: false,
    };
    let _ = std::fmt::write(&mut capped, format_args!("{value}"));
    if capped.cut {
        capped.out.push('…');
    }
    capped.out
}
