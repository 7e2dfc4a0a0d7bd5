//! Varint-prefixed framing: decoding any input whole, byte by byte and in pieces over
//! every buffer strategy must agree, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msgwire_frame::varint::VarintPrefixed;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let [max, piece, data @ ..] = data else {
        return;
    };
    let make = || {
        VarintPrefixed::builder()
            .max_frame_length(usize::from(*max) * 8)
            .build()
    };
    check_all(make, data, usize::from(*piece) + 1);
});
