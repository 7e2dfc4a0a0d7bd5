//! Delimiter framing with a fuzzed delimiter, limit and discard mode: decoding any input
//! whole, byte by byte and in pieces over every buffer strategy must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msgwire_frame::delimiter::Delimited;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let [opts, max, piece, rest @ ..] = data else {
        return;
    };
    let delim_len = usize::from(opts % 4) + 1;
    if rest.len() < delim_len {
        return;
    }
    let (delimiter, data) = rest.split_at(delim_len);
    let make = || {
        Delimited::builder(delimiter)
            .max_length(usize::from(*max))
            .discard_oversized(opts & 0x10 != 0)
            .strip_trailing_cr(opts & 0x20 != 0)
            .build()
            .expect("non-empty delimiter")
    };
    check_all(make, data, usize::from(*piece) + 1);
});
