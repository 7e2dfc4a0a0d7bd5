//! Self-delimited MessagePack: decoding any input whole, byte by byte and in pieces over
//! every buffer strategy must agree; and every value the scanner measures must be one
//! that rmpv-free checks accept (its length never exceeds the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use msgwire_frame::msgpack::{measure, SelfDelimited};

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let [depth, max, piece, data @ ..] = data else { return };
    let make = || {
        SelfDelimited::builder()
            .max_depth(usize::from(*depth % 64))
            .max_frame_length(usize::from(*max) * 16)
            .build()
    };
    check_all(make, data, usize::from(*piece) + 1);
    if let Ok(Some(len)) = measure(data) {
        assert!(len <= data.len());
        // A measured value re-measures the same on its own.
        assert_eq!(measure(&data[..len]).ok().flatten(), Some(len));
    }
});
