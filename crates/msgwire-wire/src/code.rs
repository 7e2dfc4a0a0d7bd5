//! Status codes: the gRPC canonical codes, shared by every dialect.

use std::fmt;

/// Why a call failed. The numbers are gRPC's canonical status codes, so that peers that
/// already map gRPC codes need no new table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// 1: the caller cancelled the call.
    Cancelled,
    /// 2: an error that fits no other code.
    Unknown,
    /// 3: the params are wrong (missing, of the wrong type, out of range for the method).
    InvalidArgument,
    /// 4: the call's deadline passed before it finished.
    DeadlineExceeded,
    /// 5: the thing asked for does not exist.
    NotFound,
    /// 6: the thing to create already exists.
    AlreadyExists,
    /// 7: the caller may not do this.
    PermissionDenied,
    /// 8: a limit was hit (in-flight calls, frame size, queue space).
    ResourceExhausted,
    /// 9: the system is not in a state the call needs.
    FailedPrecondition,
    /// 10: the call was aborted (a conflict).
    Aborted,
    /// 11: a value is past the valid range.
    OutOfRange,
    /// 12: no such method.
    Unimplemented,
    /// 13: a bug on the server side (a handler panicked, an invariant broke).
    Internal,
    /// 14: the service cannot answer now; retrying may help.
    Unavailable,
    /// 15: data was lost or corrupted (a checksum did not match).
    DataLoss,
    /// 16: the caller did not say who it is.
    Unauthenticated,
    /// A code this version does not know, kept as received.
    Other(i64),
}

impl Code {
    /// The number on the wire.
    pub fn as_i64(self) -> i64 {
        match self {
            Code::Cancelled => 1,
            Code::Unknown => 2,
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::NotFound => 5,
            Code::AlreadyExists => 6,
            Code::PermissionDenied => 7,
            Code::ResourceExhausted => 8,
            Code::FailedPrecondition => 9,
            Code::Aborted => 10,
            Code::OutOfRange => 11,
            Code::Unimplemented => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::DataLoss => 15,
            Code::Unauthenticated => 16,
            Code::Other(n) => n,
        }
    }

    /// The code for a number received from the wire.
    pub fn from_i64(n: i64) -> Code {
        match n {
            1 => Code::Cancelled,
            2 => Code::Unknown,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            other => Code::Other(other),
        }
    }

    /// The gRPC name, e.g. `INVALID_ARGUMENT`.
    pub fn name(self) -> &'static str {
        match self {
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Other(_) => "OTHER",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_i64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for n in -3..40 {
            assert_eq!(Code::from_i64(n).as_i64(), n);
        }
        assert_eq!(Code::InvalidArgument.as_i64(), 3);
        assert_eq!(Code::Unimplemented.to_string(), "UNIMPLEMENTED (12)");
    }
}
