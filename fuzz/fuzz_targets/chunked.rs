//! HTTP/1.1 chunked transfer coding: decoding any input whole, byte by byte and in pieces
//! over every buffer strategy must agree, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msgwire_frame::chunked::Chunked;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let [max, ext, piece, data @ ..] = data else {
        return;
    };
    let make = || {
        Chunked::builder()
            .max_chunk_length(usize::from(*max) * 8)
            .max_extension_length(usize::from(*ext))
            .max_trailer_length(usize::from(*ext) * 4)
            .build()
    };
    check_all(make, data, usize::from(*piece) + 1);
});
