//! Self-delimited MessagePack: decoding any input whole, byte by byte and in pieces over
//! every buffer strategy must agree; the batch scanner (`scan_many`) must find the same
//! values and errors as repeated `scan`; a measured value re-measures the same alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msgwire_frame::msgpack::{measure, MsgpackScanner, Scan, SelfDelimited};

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let [depth, max, piece, data @ ..] = data else {
        return;
    };
    let make = || {
        SelfDelimited::builder()
            .max_depth(usize::from(*depth % 64))
            .max_frame_length(usize::from(*max) * 16)
            .build()
    };
    check_all(make, data, usize::from(*piece) + 1);
    // The batch scanner finds exactly the values (and the error) repeated `scan` finds.
    let (max_depth, max_len) = (usize::from(*depth % 64), usize::from(*max) * 16);
    let mut one = MsgpackScanner::with_limits(max_depth, max_len);
    let mut singles = Vec::new();
    let mut pos = 0;
    let single_failed = loop {
        match one.scan(&data[pos..]) {
            Ok(Scan::Complete(n)) => {
                singles.push(pos..pos + n);
                pos += n;
            }
            Ok(Scan::Incomplete { .. }) => break false,
            Err(_) => break true,
        }
    };
    let mut many = MsgpackScanner::with_limits(max_depth, max_len);
    let mut batch = Vec::new();
    let batch_failed = many.scan_many(data, |r| batch.push(r)).is_err();
    assert_eq!(batch, singles, "scan_many vs scan");
    assert_eq!(batch_failed, single_failed, "scan_many vs scan: error");
    if let Ok(Some(len)) = measure(data) {
        assert!(len <= data.len());
        // A measured value re-measures the same on its own.
        assert_eq!(measure(&data[..len]).ok().flatten(), Some(len));
    }
});
