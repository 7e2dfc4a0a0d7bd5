//! [`MsgpackScanner::scan_many`] against repeated [`MsgpackScanner::scan`]: the same
//! values and errors wherever the stream is cut.

use std::ops::Range;

use super::*;

/// Where a run ended up: every value's absolute range, then the error (as text) with
/// the absolute offset of the value that failed, and whether the scanner was left
/// inside a value.
type Outcome = (Vec<Range<usize>>, Option<(usize, String)>, bool);

/// Repeated `scan`, fed `wire` up to each of `ends` in turn; like a reader, the
/// buffer keeps the bytes after the last whole value.
fn by_scan(mut scanner: MsgpackScanner, wire: &[u8], ends: &[usize]) -> Outcome {
    let mut base = 0;
    let mut values = Vec::new();
    for &end in ends {
        loop {
            match scanner.scan(&wire[base..end]) {
                Ok(Scan::Complete(n)) => {
                    values.push(base..base + n);
                    base += n;
                }
                Ok(Scan::Incomplete { .. }) => break,
                Err(e) => return (values, Some((base, format!("{e:?}"))), false),
            }
        }
    }
    (values, None, scanner.is_mid_value())
}

/// The same with `scan_many`, checking that the ranges of a call are back to back
/// from byte 0 and end where the returned count says.
fn by_scan_many(mut scanner: MsgpackScanner, wire: &[u8], ends: &[usize]) -> Outcome {
    let mut base = 0;
    let mut values = Vec::new();
    for &end in ends {
        let mut got: Vec<Range<usize>> = Vec::new();
        let result = scanner.scan_many(&wire[base..end], |r| got.push(r));
        let mut next = 0;
        for r in &got {
            assert_eq!(r.start, next, "ranges back to back");
            assert!(r.end > r.start);
            next = r.end;
        }
        values.extend(got.iter().map(|r| base + r.start..base + r.end));
        match result {
            Ok(used) => {
                assert_eq!(used, next);
                base += used;
            }
            Err(e) => return (values, Some((base + next, format!("{e:?}"))), false),
        }
    }
    (values, None, scanner.is_mid_value())
}

/// Both ways, fed in two reads split at every point, and byte by byte.
fn assert_batch_agrees(make: impl Fn() -> MsgpackScanner, wire: &[u8]) -> Outcome {
    let whole = by_scan(make(), wire, &[wire.len()]);
    for cut in 0..=wire.len() {
        let ends = [cut, wire.len()];
        assert_eq!(
            by_scan_many(make(), wire, &ends),
            by_scan(make(), wire, &ends),
            "split at {cut}"
        );
        // Where the stream is cut does not matter.
        assert_eq!(by_scan(make(), wire, &ends), whole, "split at {cut}");
    }
    let bytewise: Vec<usize> = (0..=wire.len()).collect();
    assert_eq!(by_scan_many(make(), wire, &bytewise), whole, "bytewise");
    whole
}

#[test]
fn scan_many_finds_the_same_values_as_scan_wherever_the_stream_is_cut() {
    let mut wire = Vec::new();
    let mut lengths = Vec::new();
    for (_, bytes) in every_family() {
        wire.extend_from_slice(&bytes);
        lengths.push(bytes.len());
        // Runs of top-level scalars between the others, for the fast path.
        wire.extend_from_slice(&[0x01, 0xc0, 0xcd, 0x01, 0x02, 0xa2, b'h', b'i']);
        lengths.extend([1, 1, 3, 3]);
    }
    let (values, error, mid) = assert_batch_agrees(MsgpackScanner::new, &wire);
    assert_eq!(error, None);
    assert!(!mid);
    assert_eq!(values.iter().map(|r| r.len()).collect::<Vec<_>>(), lengths);
    // A partial value at the end stays in progress, in both.
    let (values, error, mid) = assert_batch_agrees(MsgpackScanner::new, &wire[..wire.len() - 1]);
    assert_eq!((values.len(), error, mid), (lengths.len() - 1, None, true));
}

#[test]
fn scan_many_fails_where_scan_fails() {
    let cases: &[(&[u8], usize)] = &[
        (&[0x01, 0x02, 0xc1, 0x03], 2),
        (&[0x01, 0xcd, 0x00, 0x01, 0x92, 0x01, 0xc1], 4),
        (&[0xa1, b'x', 0x81, 0xa1, b'k', 0xc1, 0x01], 2),
        (&[0xc1], 0),
    ];
    for (wire, at) in cases {
        let (values, error, _) = assert_batch_agrees(MsgpackScanner::new, wire);
        let (start, text) = error.unwrap();
        assert_eq!(start, *at, "{wire:02x?}");
        assert!(text.contains("InvalidMarker"), "{text}");
        assert_eq!(values.last().map_or(0, |r| r.end), *at);
    }
}

#[test]
fn scan_many_applies_the_same_limits_as_scan() {
    // Depth 1, at most 8 bytes: each case is whole values then one over a limit.
    let limited = || MsgpackScanner::with_limits(1, 8);
    let too_long = |length| Error::TooLong { length, max: 8 };
    let cases: Vec<(&[u8], Error)> = vec![
        // float64 is 9 bytes: over on its marker, in the fast path's table too.
        (&[0x01, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0], too_long(9)),
        // fixstr of 7 fits, of 8 does not.
        (&[0xa7, 1, 2, 3, 4, 5, 6, 7, 0xa8], too_long(9)),
        (&[0xc0, 0xd8, 0x01], too_long(18)),
        (
            &[0x92, 0x01, 0x02, 0x91, 0x91, 0x01],
            MsgpackError::TooDeep { max: 1 }.into(),
        ),
        (&[0xc3, 0x97, 1, 2, 3, 4, 5, 6, 7, 0x98], too_long(9)),
        (&[0x01, 0xd9, 0x07], too_long(9)),
    ];
    for (wire, want) in cases {
        let (_, error, _) = assert_batch_agrees(limited, wire);
        assert_eq!(error.unwrap().1, format!("{want:?}"), "{wire:02x?}");
    }
    // A zero-length limit: nothing fits, an empty input is only incomplete.
    let zero = || MsgpackScanner::with_limits(4, 0);
    let (values, error, _) = assert_batch_agrees(zero, &[0x01]);
    assert!(values.is_empty());
    assert!(error.unwrap().1.contains("TooLong"));
    assert_eq!(
        MsgpackScanner::with_limits(4, 0)
            .scan_many(&[], |_| {})
            .unwrap(),
        0
    );
    // Depth 0 still allows top-level scalars, through the fast path.
    let (values, error, _) = assert_batch_agrees(
        || MsgpackScanner::with_limits(0, 8),
        &[0x01, 0xa1, 0x41, 0x90],
    );
    assert_eq!(values, [0..1, 1..3]);
    assert!(error.unwrap().1.contains("TooDeep"));
}

#[test]
fn scan_many_resets_after_an_error_and_mixes_with_scan() {
    let mut scanner = MsgpackScanner::new();
    assert_eq!(
        scanner.scan(&[0x92, 0x01]).unwrap(),
        Scan::Incomplete { min_len: 3 }
    );
    let mut got = Vec::new();
    // The array in progress finishes, then two scalars, then a partial str8 header.
    let used = scanner
        .scan_many(&[0x92, 0x01, 0x02, 0x05, 0xc3, 0xd9], |r| got.push(r))
        .unwrap();
    assert_eq!((used, &got[..]), (5, &[0..3, 3..4, 4..5][..]));
    assert_eq!(
        scanner.scan(&[0xd9, 0x01, b'a']).unwrap(),
        Scan::Complete(3)
    );
    assert!(scanner.scan_many(&[0x01, 0x91, 0xc1], |_| {}).is_err());
    assert!(!scanner.is_mid_value());
    assert_eq!(scanner.scan_many(&[0x07], |_| {}).unwrap(), 1);
}

#[test]
fn scan_many_waits_for_long_payloads_in_constant_time() {
    let mut wire = vec![0x01, 0xc6, 0x00, 0x01, 0x00, 0x00]; // 1, bin32 of 64 KiB
    let mut scanner = MsgpackScanner::new();
    let mut count = 0;
    assert_eq!(scanner.scan_many(&wire, |_| count += 1).unwrap(), 1);
    wire.drain(..1);
    let examined = scanner.examined;
    for _ in 0..(1 << 16) - 1 {
        wire.push(0xc1);
        assert_eq!(scanner.scan_many(&wire, |_| count += 1).unwrap(), 0);
    }
    assert_eq!(
        scanner.examined, examined,
        "payload bytes are never looked at"
    );
    wire.extend_from_slice(&[0xc1, 0x02]);
    assert_eq!(
        scanner.scan_many(&wire, |_| count += 1).unwrap(),
        wire.len()
    );
    assert_eq!(count, 3);
}

/// Every value's depth, by `scan_many_with_depth` fed `wire` up to each of `ends`.
fn depths_by_scan_many(wire: &[u8], ends: &[usize]) -> Vec<usize> {
    let mut scanner = MsgpackScanner::new();
    let mut base = 0;
    let mut depths = Vec::new();
    for &end in ends {
        base += scanner
            .scan_many_with_depth(&wire[base..end], |_, depth| depths.push(depth))
            .unwrap();
        assert_eq!(
            scanner.last_depth(),
            depths.last().copied().unwrap_or(0),
            "last_depth is the last value's"
        );
    }
    depths
}

#[test]
fn scan_many_with_depth_agrees_with_scan_wherever_the_stream_is_cut() {
    // Scalars for the fast path, between containers.
    let (wire, want) = family_stream_with_depths(&[0x01, 0xa1, b'x']);
    assert_eq!(depths_by_scan_many(&wire, &[wire.len()]), want);
    for cut in 0..=wire.len() {
        assert_eq!(
            depths_by_scan_many(&wire, &[cut, wire.len()]),
            want,
            "split at {cut}"
        );
    }
    let bytewise: Vec<usize> = (0..=wire.len()).collect();
    assert_eq!(depths_by_scan_many(&wire, &bytewise), want, "bytewise");
    // scan_many keeps last_depth right too, fast path last or not.
    let mut scanner = MsgpackScanner::new();
    scanner.scan_many(&[0x91, 0x90, 0x05], |_| {}).unwrap();
    assert_eq!(scanner.last_depth(), 0);
    scanner.scan_many(&[0x05, 0x91, 0x90], |_| {}).unwrap();
    assert_eq!(scanner.last_depth(), 2);
}
