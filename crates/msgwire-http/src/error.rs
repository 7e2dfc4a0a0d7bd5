//! Errors as HTTP answers: a status from the error's code and a body
//! `{"error": message, "code": n}` in the negotiated format.
//!
//! | code | HTTP status |
//! |---|---|
//! | INVALID_ARGUMENT (3), FAILED_PRECONDITION (9), OUT_OF_RANGE (11) | 400 |
//! | UNAUTHENTICATED (16) | 401 |
//! | PERMISSION_DENIED (7) | 403 |
//! | NOT_FOUND (5), UNIMPLEMENTED (12) | 404 |
//! | ALREADY_EXISTS (6), ABORTED (10) | 409 |
//! | RESOURCE_EXHAUSTED (8) | 429 (413 for a request body over the limit) |
//! | CANCELLED (1) | 499 |
//! | UNAVAILABLE (14) from an upstream that cannot be reached | 502 |
//! | UNAVAILABLE (14) otherwise | 503 |
//! | DEADLINE_EXCEEDED (4) | 504 |
//! | anything else (INTERNAL, DATA_LOSS, UNKNOWN, …) | 500 |
//!
//! Plus the errors about HTTP itself: 415 for a `Content-Type` msgwire does not read
//! and 406 for an `Accept` it cannot serve (that body is JSON: nothing else was
//! acceptable either).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use msgwire_rpc::CallError;
use msgwire_wire::{Code, RawValue, RpcError};
use serde::Serialize;

use crate::negotiate::Format;

/// An error on its way to an HTTP client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The RPC code in the body.
    pub code: Code,
    /// What went wrong, for people.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    code: i64,
}

impl ApiError {
    /// An error with `code`, its status from the table in the module docs.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            status: status_of(code),
            code,
            message: message.into(),
        }
    }

    /// An error with an explicit status.
    pub fn with_status(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 415: a body in a format msgwire does not read.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::InvalidArgument,
            message,
        )
    }

    /// 406: an `Accept` msgwire cannot serve.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::NOT_ACCEPTABLE, Code::InvalidArgument, message)
    }

    /// 413: a request body over the limit.
    pub fn body_too_large(limit: usize) -> Self {
        Self::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::ResourceExhausted,
            format!("the request body is over the limit of {limit} bytes"),
        )
    }

    /// 502: an upstream service that cannot be reached.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::BAD_GATEWAY, Code::Unavailable, message)
    }

    /// The body: `{"error": message, "code": n}` in `format`.
    pub fn body(&self, format: Format) -> Vec<u8> {
        let body = Body {
            error: &self.message,
            code: self.code.as_i64(),
        };
        match format {
            Format::Json => serde_json::to_vec(&body).unwrap_or_default(),
            Format::Msgpack => RawValue::serialize(&body)
                .map(|raw| raw.as_bytes().to_vec())
                .unwrap_or_default(),
        }
    }

    /// The whole answer in `format`.
    pub fn respond(&self, format: Format) -> Response {
        let mut response = (self.status, self.body(format)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        response
    }
}

impl From<RpcError> for ApiError {
    fn from(error: RpcError) -> Self {
        ApiError::new(error.code, error.message)
    }
}

impl From<&CallError> for ApiError {
    fn from(error: &CallError) -> Self {
        match error.rpc_error() {
            Some(e) => ApiError::new(e.code, e.message.clone()),
            None => ApiError::new(error.code(), error.to_string()),
        }
    }
}

/// An [`ApiError`] and the format to send it in: what handlers return.
#[derive(Debug)]
pub struct Failure(pub ApiError, pub Format);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        self.0.respond(self.1)
    }
}

/// The HTTP status for an RPC code (see the module docs).
pub fn status_of(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound | Code::Unimplemented => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_bodies() {
        assert_eq!(status_of(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status_of(Code::Unimplemented), StatusCode::NOT_FOUND);
        assert_eq!(status_of(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(
            status_of(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status_of(Code::DeadlineExceeded),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(status_of(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(status_of(Code::Cancelled).as_u16(), 499);
        let e = ApiError::new(Code::NotFound, "user 9 not found");
        assert_eq!(
            e.body(Format::Json),
            br#"{"error":"user 9 not found","code":5}"#
        );
        let packed = e.body(Format::Msgpack);
        assert_eq!(packed[0], 0x82); // a map of two
        assert_eq!(
            ApiError::body_too_large(10).status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
