//! Close frame payloads (RFC 6455 sections 5.5.1 and 7.4).

use bytes::{BufMut, BytesMut};

use super::{WebSocketError, MAX_CONTROL_PAYLOAD};

/// Whether `code` may be sent in a close frame: 1000–1003, 1007–1014 (the IANA-registered
/// codes, 1012–1014 included) and 3000–4999 (registered and private use). 1004, 1005,
/// 1006 and 1015 are reserved or "never on the wire"; anything else is invalid.
///
/// ```
/// use msgwire_frame::websocket::is_valid_close_code;
///
/// assert!(is_valid_close_code(1000));
/// assert!(is_valid_close_code(4999));
/// assert!(!is_valid_close_code(1005));
/// assert!(!is_valid_close_code(2000));
/// ```
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The payload of a close frame that carries a status code: the code and a UTF-8 reason.
/// (A close frame may also be empty; [`parse`](Self::parse) returns `None` for that.)
///
/// ```text
/// +---------------+-----------------------------+
/// | code: u16 BE  | reason: UTF-8, 0..=123 bytes |
/// +---------------+-----------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code.
    pub code: u16,
    /// Why, for humans; may be empty.
    pub reason: &'a str,
}

impl<'a> CloseFrame<'a> {
    /// Parses a close payload: `Ok(None)` when empty, the code and reason when it holds at
    /// least 2 bytes. A 1-byte payload, an invalid code or a reason that is not UTF-8 is
    /// an error.
    ///
    /// ```
    /// use msgwire_frame::websocket::{CloseFrame, WebSocketError};
    ///
    /// let close = CloseFrame::parse(b"\x03\xe8bye")?.expect("has a code");
    /// assert_eq!((close.code, close.reason), (1000, "bye"));
    /// assert_eq!(CloseFrame::parse(b"")?, None);
    /// assert_eq!(CloseFrame::parse(b"\x03\xed"), Err(WebSocketError::InvalidCloseCode(1005)));
    /// # Ok::<(), WebSocketError>(())
    /// ```
    pub fn parse(payload: &'a [u8]) -> Result<Option<CloseFrame<'a>>, WebSocketError> {
        match payload {
            [] => Ok(None),
            [_] => Err(WebSocketError::CloseTooShort),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !is_valid_close_code(code) {
                    return Err(WebSocketError::InvalidCloseCode(code));
                }
                let reason =
                    std::str::from_utf8(reason).map_err(|_| WebSocketError::InvalidUtf8)?;
                Ok(Some(CloseFrame { code, reason }))
            }
        }
    }

    /// Appends the payload (code, then reason). Fails if the code is not valid or the
    /// payload would be over the 125 bytes a control frame can hold.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WebSocketError> {
        if !is_valid_close_code(self.code) {
            return Err(WebSocketError::InvalidCloseCode(self.code));
        }
        let len = 2 + self.reason.len();
        if len > MAX_CONTROL_PAYLOAD {
            return Err(WebSocketError::ControlFrameTooLong(len as u64));
        }
        dst.reserve(len);
        dst.put_u16(self.code);
        dst.put_slice(self.reason.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_ranges() {
        let valid = [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ];
        for code in valid {
            assert!(is_valid_close_code(code), "{code}");
        }
        for code in [3000u16, 3999, 4000, 4999] {
            assert!(is_valid_close_code(code), "{code}");
        }
        let invalid = [
            0u16,
            999,
            1004,
            1005,
            1006,
            1015,
            1016,
            2000,
            2999,
            5000,
            u16::MAX,
        ];
        for code in invalid {
            assert!(!is_valid_close_code(code), "{code}");
        }
    }

    #[test]
    fn parse_empty_code_and_reason() {
        assert_eq!(CloseFrame::parse(b""), Ok(None));
        assert_eq!(
            CloseFrame::parse(b"\x03\xe8"),
            Ok(Some(CloseFrame {
                code: 1000,
                reason: ""
            }))
        );
        assert_eq!(
            CloseFrame::parse(b"\x0f\xa0h\xc3\xa9"),
            Ok(Some(CloseFrame {
                code: 4000,
                reason: "h\u{e9}"
            }))
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            CloseFrame::parse(b"\x03"),
            Err(WebSocketError::CloseTooShort)
        );
        for code in [999u16, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            let payload = code.to_be_bytes();
            assert_eq!(
                CloseFrame::parse(&payload),
                Err(WebSocketError::InvalidCloseCode(code))
            );
        }
        assert_eq!(
            CloseFrame::parse(b"\x03\xe8\xff"),
            Err(WebSocketError::InvalidUtf8)
        );
    }

    #[test]
    fn encode_checks_code_and_length() {
        let mut dst = BytesMut::new();
        CloseFrame {
            code: 1001,
            reason: "away",
        }
        .encode(&mut dst)
        .unwrap();
        assert_eq!(&dst[..], b"\x03\xe9away");
        let long = "x".repeat(124);
        assert_eq!(
            CloseFrame {
                code: 1000,
                reason: &long
            }
            .encode(&mut dst),
            Err(WebSocketError::ControlFrameTooLong(126))
        );
        assert_eq!(
            CloseFrame {
                code: 1006,
                reason: ""
            }
            .encode(&mut dst),
            Err(WebSocketError::InvalidCloseCode(1006))
        );
    }
}
