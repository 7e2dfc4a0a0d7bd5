//! [`MsgpackScanner::scan`]: exact lengths, resumption, limits, linear time.

use super::*;
use crate::msgpack::scanner::FIXED_LEN;
use crate::DEFAULT_MAX_FRAME;

#[test]
fn every_family_measures_exactly_and_stops_before_the_next_value() {
    for (name, bytes) in every_family() {
        let mut input = bytes.clone();
        input.push(0xc1); // the next "value" would be invalid: must not be read
        assert_eq!(
            scan_fresh(&input).unwrap(),
            Scan::Complete(bytes.len()),
            "{name}"
        );
        assert_eq!(
            scan_fresh(&bytes).unwrap(),
            Scan::Complete(bytes.len()),
            "{name}"
        );
        assert_eq!(measure(&input).unwrap(), Some(bytes.len()), "{name}");
    }
}

#[test]
fn every_strict_prefix_is_incomplete() {
    for (name, bytes) in every_family() {
        for cut in 0..bytes.len() {
            match scan_fresh(&bytes[..cut]).unwrap() {
                Scan::Incomplete { min_len } => {
                    assert!(min_len > cut && min_len <= bytes.len(), "{name} at {cut}")
                }
                other => panic!("{name} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn resumes_byte_by_byte_and_resets_after_complete() {
    let mut scanner = MsgpackScanner::new();
    for (name, bytes) in every_family() {
        for cut in 0..bytes.len() {
            assert!(
                matches!(
                    scanner.scan(&bytes[..cut]).unwrap(),
                    Scan::Incomplete { .. }
                ),
                "{name} at {cut}"
            );
        }
        assert_eq!(
            scanner.scan(&bytes).unwrap(),
            Scan::Complete(bytes.len()),
            "{name}"
        );
        assert!(!scanner.is_mid_value());
    }
}

#[test]
fn min_len_is_exact() {
    let cases: &[(&[u8], usize)] = &[
        (&[], 1),
        (&[0x92, 0x01], 3),
        (&[0xcd, 0x01], 3),
        (&[0xcf], 9),
        (&[0xdc, 0x00], 3),
        (&[0xdd], 5),
        (&[0xc7, 0x02], 5), // marker, len, type, 2 bytes
        (&[0xc9, 0, 0, 1, 0], 6 + 256),
        (&[0xd8], 18),
        (&[0xdb, 0, 0, 1, 0, b'a'], 5 + 256),
        (&[0x91, 0xc4, 0x03], 6),
        (&[0x81, 0x01], 3),
    ];
    for (input, want) in cases {
        assert_eq!(
            scan_fresh(input).unwrap(),
            Scan::Incomplete { min_len: *want },
            "{input:02x?}"
        );
    }
}

#[test]
fn value_whose_last_payload_is_pending_completes_when_it_arrives() {
    let wire = [0x91, 0xc4, 0x03, 1, 2, 3, 0xc1];
    let mut scanner = MsgpackScanner::new();
    assert_eq!(
        scanner.scan(&wire[..3]).unwrap(),
        Scan::Incomplete { min_len: 6 }
    );
    assert_eq!(
        scanner.scan(&wire[..5]).unwrap(),
        Scan::Incomplete { min_len: 6 }
    );
    assert_eq!(scanner.scan(&wire).unwrap(), Scan::Complete(6));
    // And a fixed-size scalar at the top level.
    assert_eq!(
        scanner.scan(&[0xcd]).unwrap(),
        Scan::Incomplete { min_len: 3 }
    );
    assert_eq!(
        scanner.scan(&[0xcd, 1, 2, 0xff]).unwrap(),
        Scan::Complete(3)
    );
}

#[test]
fn invalid_marker_reports_byte_and_offset() {
    for (input, offset) in [
        (&[0xc1][..], 0usize),
        (&[0x93, 0x01, 0xc1][..], 2),
        (&[0x81, 0xa1, b'k', 0xc1][..], 3),
        (&[0x92, 0xcd, 0x00, 0x01, 0xc1][..], 4),
    ] {
        match scan_fresh(input) {
            Err(Error::Msgpack(MsgpackError::InvalidMarker {
                byte: 0xc1,
                offset: o,
            })) => {
                assert_eq!(o, offset, "{input:02x?}")
            }
            other => panic!("{input:02x?}: {other:?}"),
        }
    }
    // 0xc1 inside a payload is data, not a marker.
    assert_eq!(scan_fresh(&[0xa1, 0xc1]).unwrap(), Scan::Complete(2));
    assert_eq!(scan_fresh(&[0xcc, 0xc1]).unwrap(), Scan::Complete(2));
}

#[test]
fn scanner_resets_after_an_error() {
    let mut scanner = MsgpackScanner::new();
    assert!(scanner.scan(&[0x92, 0x01]).is_ok());
    assert!(scanner.scan(&[0x92, 0x01, 0xc1]).is_err());
    assert!(!scanner.is_mid_value());
    assert_eq!(scanner.scan(&[0x01]).unwrap(), Scan::Complete(1));
}

#[test]
fn nesting_bomb_fails_too_deep_without_recursion() {
    let bomb = vec![0x91u8; 100_000];
    let mut scanner = MsgpackScanner::new();
    match scanner.scan(&bomb) {
        Err(Error::Msgpack(MsgpackError::TooDeep { max: 128 })) => {}
        other => panic!("{other:?}"),
    }
    assert!(scanner.stack.capacity() <= 2 * DEFAULT_MAX_DEPTH);
    // Maps nest too (as keys).
    let map_bomb = vec![0x81u8; 100_000];
    assert!(matches!(
        scan_fresh(&map_bomb),
        Err(Error::Msgpack(MsgpackError::TooDeep { max: 128 }))
    ));
}

#[test]
fn depth_limit_is_exact_and_counts_empty_containers() {
    let mut ok = vec![0x91u8; 128];
    ok.push(0x01);
    assert_eq!(scan_fresh(&ok).unwrap(), Scan::Complete(129));
    let mut ok_empty = vec![0x91u8; 127];
    ok_empty.push(0x90);
    assert_eq!(scan_fresh(&ok_empty).unwrap(), Scan::Complete(128));
    let mut deep = vec![0x91u8; 128];
    deep.push(0x90);
    assert!(matches!(
        scan_fresh(&deep),
        Err(Error::Msgpack(MsgpackError::TooDeep { max: 128 }))
    ));
    let mut zero = MsgpackScanner::with_limits(0, 100);
    assert_eq!(zero.scan(&[0x05]).unwrap(), Scan::Complete(1));
    assert!(matches!(
        zero.scan(&[0x80]),
        Err(Error::Msgpack(MsgpackError::TooDeep { max: 0 }))
    ));
    let mut one = MsgpackScanner::with_limits(1, 100);
    assert!(matches!(
        one.scan(&[0x92, 0x01, 0x90]),
        Err(Error::Msgpack(MsgpackError::TooDeep { max: 1 }))
    ));
    assert_eq!(one.scan(&[0x92, 0x01, 0x02]).unwrap(), Scan::Complete(3));
}

#[test]
fn four_billion_element_array_header_fails_at_once_without_allocating() {
    let max = DEFAULT_MAX_FRAME as u64;
    let mut scanner = MsgpackScanner::new();
    assert_too_long(
        scanner.scan(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
        5 + 0xffff_ffff,
        max,
    );
    assert_eq!(scanner.stack.capacity(), 0, "nothing allocated");
    // A map of n pairs is 2n elements.
    assert_too_long(
        scanner.scan(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
        5 + 2 * 0xffff_ffff,
        max,
    );
    assert_eq!(scanner.stack.capacity(), 0);
    // Inside an array, the outer pending elements count too.
    let mut small = MsgpackScanner::with_limits(128, 20);
    assert_too_long(small.scan(&[0x93, 0xdc, 0x00, 0x10]), 4 + 16 + 2, 20);
    assert_eq!(
        small.scan(&[0x93, 0xdc, 0x00, 0x0e]).unwrap(),
        Scan::Incomplete { min_len: 5 }
    );
}

#[test]
fn four_gib_str_bin_ext_headers_fail_at_once() {
    let max = DEFAULT_MAX_FRAME as u64;
    assert_too_long(
        scan_fresh(&[0xdb, 0xff, 0xff, 0xff, 0xff]),
        5 + 0xffff_ffff,
        max,
    );
    assert_too_long(
        scan_fresh(&[0xc6, 0xff, 0xff, 0xff, 0xff]),
        5 + 0xffff_ffff,
        max,
    );
    assert_too_long(
        scan_fresh(&[0xc9, 0xff, 0xff, 0xff, 0xff]),
        6 + 0xffff_ffff,
        max,
    );
    // Just over the default limit, declared by a str32 header.
    let over = (DEFAULT_MAX_FRAME - 4) as u32;
    let mut header = vec![0xdb];
    header.extend_from_slice(&over.to_be_bytes());
    assert_too_long(scan_fresh(&header), max + 1, max);
    let mut header = vec![0xdb];
    header.extend_from_slice(&(over - 1).to_be_bytes());
    assert_eq!(
        scan_fresh(&header).unwrap(),
        Scan::Incomplete {
            min_len: DEFAULT_MAX_FRAME
        }
    );
}

#[test]
fn limit_is_exact_for_every_kind_of_growth() {
    // str: 9 bytes fit in 9, not in 8.
    let s = [0xa8, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h'];
    assert_eq!(
        MsgpackScanner::with_limits(4, 9).scan(&s).unwrap(),
        Scan::Complete(9)
    );
    assert_too_long(MsgpackScanner::with_limits(4, 8).scan(&s[..1]), 9, 8);
    // A fixed-size scalar fails on its marker.
    assert_too_long(MsgpackScanner::with_limits(4, 5).scan(&[0xcf]), 9, 5);
    // An array header, counting one byte per element.
    assert_too_long(MsgpackScanner::with_limits(4, 4).scan(&[0x94]), 5, 4);
    assert_eq!(
        MsgpackScanner::with_limits(4, 4)
            .scan(&[0x93, 1, 2, 3])
            .unwrap(),
        Scan::Complete(4)
    );
    // Elements that are bigger than one byte push it over later.
    assert_eq!(
        MsgpackScanner::with_limits(4, 4)
            .scan(&[0x92, 0xcc])
            .unwrap(),
        Scan::Incomplete { min_len: 3 }
    );
    assert_too_long(MsgpackScanner::with_limits(4, 4).scan(&[0x92, 0xcd]), 5, 4);
    // Zero: nothing fits, but an empty input is only incomplete.
    let mut zero = MsgpackScanner::with_limits(4, 0);
    assert_eq!(zero.scan(&[]).unwrap(), Scan::Incomplete { min_len: 1 });
    assert_too_long(zero.scan(&[0x01]), 1, 0);
    // usize::MAX does not overflow anything.
    let mut huge = MsgpackScanner::with_limits(4, usize::MAX);
    assert_eq!(
        huge.scan(&[0xdd, 0xff, 0xff, 0xff, 0xff]).unwrap(),
        Scan::Incomplete { min_len: 6 }
    );
}

#[test]
fn unbounded_limit_4_gib_headers_reserve_little_and_are_truncated_at_eof() {
    for header in [
        &[0xdb, 0xff, 0xff, 0xff, 0xff][..], // str32
        &[0xc6, 0xff, 0xff, 0xff, 0xff],     // bin32
        &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x01],
        &[0xdd, 0xff, 0xff, 0xff, 0xff], // array32: 4 billion elements
        &[0xdf, 0xff, 0xff, 0xff, 0xff],
    ] {
        let mut framing = SelfDelimited::builder()
            .max_frame_length(usize::MAX)
            .build();
        crate::testing::assert_waits_with_capped_room(&mut framing, header);
    }
}

#[test]
fn long_payload_waits_in_constant_time() {
    let mut wire = vec![0xc6, 0x00, 0x10, 0x00, 0x00]; // bin32, 1 MiB
    let mut scanner = MsgpackScanner::new();
    assert_eq!(
        scanner.scan(&wire).unwrap(),
        Scan::Incomplete {
            min_len: 5 + (1 << 20)
        }
    );
    let examined = scanner.examined;
    for _ in 0..(1 << 20) - 1 {
        wire.push(0xc1);
        assert!(matches!(
            scanner.scan(&wire).unwrap(),
            Scan::Incomplete { .. }
        ));
    }
    assert_eq!(
        scanner.examined, examined,
        "payload bytes are never looked at"
    );
    wire.push(0xc1);
    assert_eq!(scanner.scan(&wire).unwrap(), Scan::Complete(5 + (1 << 20)));
}

#[test]
fn one_mib_array_fed_bytewise_is_scanned_in_linear_time() {
    let n = 1usize << 20;
    let mut wire = vec![0xdd];
    wire.extend_from_slice(&(n as u32).to_be_bytes());
    wire.extend(std::iter::repeat_n(0x01, n));
    let mut scanner = MsgpackScanner::new();
    for cut in 0..wire.len() {
        assert!(matches!(
            scanner.scan(&wire[..cut]).unwrap(),
            Scan::Incomplete { .. }
        ));
    }
    assert_eq!(scanner.scan(&wire).unwrap(), Scan::Complete(wire.len()));
    // Each element byte once; the 5-byte header re-read while it was partial.
    assert!(
        scanner.examined <= wire.len() as u64 + 16,
        "examined {} bytes of {}",
        scanner.examined,
        wire.len()
    );
}

#[test]
fn fixed_len_table_matches_the_spec() {
    let variable =
        |m: u8| matches!(m, 0x80..=0x9f | 0xdc..=0xdf | 0xc4..=0xc9 | 0xd9..=0xdb | 0xc1);
    for m in 0..=255u8 {
        let fixed = usize::from(FIXED_LEN[usize::from(m)]);
        assert_eq!(fixed == 0, variable(m), "marker {m:#04x}");
        if fixed != 0 {
            let mut input = vec![m];
            input.extend_from_slice(&[0xc1; 40]);
            assert_eq!(
                scan_fresh(&input).unwrap(),
                Scan::Complete(fixed),
                "{m:#04x}"
            );
            assert_eq!(
                scan_fresh(&input[..fixed - 1]).unwrap(),
                Scan::Incomplete { min_len: fixed },
                "{m:#04x}"
            );
        }
        // Only 0xc1 is refused as a marker.
        let result = scan_fresh(&[m, 0, 0, 0, 0]);
        let invalid = matches!(
            result,
            Err(Error::Msgpack(MsgpackError::InvalidMarker {
                offset: 0,
                ..
            }))
        );
        assert_eq!(invalid, m == 0xc1, "{m:#04x}: {result:?}");
    }
}

#[test]
fn last_depth_counts_like_max_depth_whole_and_resumed() {
    let mut whole = MsgpackScanner::new();
    let mut resumed = MsgpackScanner::new();
    for (name, bytes) in every_family() {
        let want = rmpv_depth(&bytes);
        assert_eq!(whole.scan(&bytes).unwrap(), Scan::Complete(bytes.len()));
        assert_eq!(whole.last_depth(), want, "{name}");
        for cut in 0..bytes.len() {
            assert!(matches!(
                resumed.scan(&bytes[..cut]).unwrap(),
                Scan::Incomplete { .. }
            ));
        }
        assert_eq!(resumed.scan(&bytes).unwrap(), Scan::Complete(bytes.len()));
        assert_eq!(resumed.last_depth(), want, "{name} fed byte by byte");
    }
    // Known depths: `[1]` 1, `[[]]` 2, `{[]: 1}` 2, `[1, [[]], 2]` 3; the deepest
    // branch counts, not the last.
    for (wire, want) in [
        (&[0x91, 0x01][..], 1),
        (&[0x91, 0x90], 2),
        (&[0x81, 0x90, 0x01], 2),
        (&[0x93, 0x01, 0x91, 0x90, 0x02], 3),
    ] {
        let mut scanner = MsgpackScanner::new();
        assert_eq!(scanner.scan(wire).unwrap(), Scan::Complete(wire.len()));
        assert_eq!(scanner.last_depth(), want, "{wire:02x?}");
    }
}

#[test]
fn last_depth_reaches_max_depth_exactly_and_survives_an_error() {
    let mut scanner = MsgpackScanner::new();
    let mut deepest = vec![0x91u8; DEFAULT_MAX_DEPTH - 1];
    deepest.push(0x90);
    assert_eq!(
        scanner.scan(&deepest).unwrap(),
        Scan::Complete(DEFAULT_MAX_DEPTH)
    );
    assert_eq!(scanner.last_depth(), DEFAULT_MAX_DEPTH);
    // Too deep: an error, and the last complete value's depth stays.
    assert!(scanner.scan(&[0x91u8; DEFAULT_MAX_DEPTH + 1]).is_err());
    assert_eq!(scanner.last_depth(), DEFAULT_MAX_DEPTH);
    // A deep value in progress does not leak into the next one.
    assert!(matches!(
        scanner.scan(&[0x91, 0x91, 0x91]).unwrap(),
        Scan::Incomplete { .. }
    ));
    scanner.reset();
    assert_eq!(scanner.scan(&[0x91, 0x01]).unwrap(), Scan::Complete(2));
    assert_eq!(scanner.last_depth(), 1);
}
