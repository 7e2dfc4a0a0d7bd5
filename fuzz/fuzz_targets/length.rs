//! Length-field framing under every option combination: decoding any input whole, byte by
//! byte and in pieces over every buffer strategy must agree, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msgwire_frame::length::LengthPrefixed;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let &[a, b, c, piece, ref data @ ..] = data else {
        return;
    };
    let width = [1, 2, 3, 4, 8][usize::from(a % 5)];
    let make = || {
        let mut builder = LengthPrefixed::builder()
            .length_field_width(width)
            .length_field_offset(usize::from((a >> 3) % 4))
            .length_adjustment(i64::from(b % 16) - 8)
            .max_frame_length(usize::from(c) * 4)
            .discard_oversized(b & 0x40 != 0)
            .fail_fast(b & 0x80 != 0);
        if a & 0x80 != 0 {
            builder = builder.little_endian();
        }
        if c & 1 == 1 {
            builder = builder.strip(usize::from(b >> 4));
        }
        builder.build().expect("valid width")
    };
    check_all(make, data, usize::from(piece) + 1);
});
