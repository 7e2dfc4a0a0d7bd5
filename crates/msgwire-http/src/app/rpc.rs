//! `POST /rpc/{method}`: any method over HTTP.
//!
//! The body is the params — an array (positional) or a map (named) — in JSON
//! (`Content-Type: application/json`) or MessagePack (`application/x-msgpack`); an
//! empty body is no params. The answer is the result in the format `Accept` asks for
//! (by default the request's own).
//!
//! A server stream (`subscribeEvents`, `download`) answers once its first item (or its
//! end) is there — so a stream that fails at once gets its proper status — and then as
//! it streams, one record per item, then one for the end:
//!
//! ```text
//! JSON (application/x-ndjson)           MessagePack (application/x-msgpack-stream)
//! {"item": <value>}\n                    [u32 BE length] {"item": <value>}
//! {"item_error": {"error", "code"}}\n    [u32 BE length] {"item_error": {...}}
//! {"result": <value>}\n   (or            [u32 BE length] {"result": <value>}
//! {"error": m, "code": n}\n  at the end)
//! ```
//!
//! The HTTP client closing the connection cancels the stream. Client and
//! bidirectional streams (`upload`, `chat`) need input HTTP cannot give: they are
//! answered 400 and pointed at `/ws`.

use std::borrow::Cow;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures::stream;
use msgwire_rpc::{CallError, StreamReceiver};
use msgwire_wire::{Code, RawValue};
use serde::Serialize;

use super::api::{negotiate, ok};
use super::AppState;
use crate::backend::{kind_of, MethodKind};
use crate::error::{ApiError, Failure};
use crate::json::msgpack_to_json_vec;
use crate::negotiate::{content_type, Format};

/// The media type of a JSON stream.
pub const NDJSON: &str = "application/x-ndjson";
/// The media type of a length-prefixed MessagePack stream.
pub const MSGPACK_STREAM: &str = "application/x-msgpack-stream";

/// `POST /rpc/{method}`.
pub(super) async fn rpc(
    State(state): State<AppState>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    let sent = content_type(&headers)
        .map_err(|e| Failure(ApiError::unsupported_media_type(e), Format::Json))?;
    let format = negotiate(&headers, sent.unwrap_or(Format::Json))?;
    let config = state.config();
    let body = read_body(body, &headers, config.max_body, format).await?;
    let params = match (sent, body.is_empty()) {
        (_, true) => RawValue::empty_array(),
        (None, false) => {
            return Err(Failure(
                ApiError::unsupported_media_type(
                    "a body needs a Content-Type: application/json or application/x-msgpack",
                ),
                format,
            ))
        }
        (Some(sent), false) => sent
            .decode(&body, &config.limits)
            .map_err(|e| Failure(ApiError::new(Code::InvalidArgument, e), format))?,
    };
    match kind_of(&method) {
        MethodKind::Unary { .. } => {
            let result = config
                .backend
                .call(&method, params)
                .await
                .map_err(|e| Failure(e, format))?;
            Ok(ok(&result, format))
        }
        MethodKind::ServerStream => {
            let receiver = config
                .backend
                .server_stream(&method, params)
                .await
                .map_err(|e| Failure(e, format))?;
            stream_answer(receiver, format).await
        }
        MethodKind::InputStream => Err(Failure(
            ApiError::new(
                Code::InvalidArgument,
                format!("{method} streams input, which HTTP cannot carry: call it over /ws"),
            ),
            format,
        )),
    }
}

/// The body, at most `limit` bytes (413 past it, told by `Content-Length` before
/// anything is read when the client sends one).
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    format: Format,
) -> Result<Bytes, Failure> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Failure(ApiError::body_too_large(limit), format));
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let too_long = std::error::Error::source(&error)
            .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
        if too_long {
            Failure(ApiError::body_too_large(limit), format)
        } else {
            Failure(
                ApiError::new(
                    Code::InvalidArgument,
                    format!("cannot read the body: {error}"),
                ),
                format,
            )
        }
    })
}

#[derive(Serialize)]
struct ErrorRecord<'a> {
    error: &'a str,
    code: i64,
}

enum Record {
    Item(RawValue),
    ItemError(ApiError),
    Result(RawValue),
    Error(ApiError),
}

impl Record {
    fn is_last(&self) -> bool {
        matches!(self, Record::Result(_) | Record::Error(_))
    }

    /// The record as MessagePack: a map of one key.
    fn to_msgpack(&self) -> Vec<u8> {
        let error = |e: &ApiError| {
            RawValue::serialize(&ErrorRecord {
                error: &e.message,
                code: e.code.as_i64(),
            })
            .map(RawValue::into_bytes)
            .unwrap_or_default()
        };
        let (key, value): (&str, Cow<'_, [u8]>) = match self {
            Record::Item(v) => ("item", Cow::Borrowed(v.as_bytes())),
            Record::Result(v) => ("result", Cow::Borrowed(v.as_bytes())),
            Record::ItemError(e) => ("item_error", Cow::Owned(error(e).to_vec())),
            Record::Error(e) => return error(e).to_vec(),
        };
        let mut out = Vec::with_capacity(key.len() + value.len() + 2);
        out.push(0x81);
        out.push(0xa0 | key.len() as u8);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&value);
        out
    }

    /// The record in `format`, framed: a JSON line, or a u32 BE length and MessagePack.
    fn frame(&self, format: Format) -> Bytes {
        let msgpack = self.to_msgpack();
        match format {
            Format::Msgpack => {
                let mut out = Vec::with_capacity(msgpack.len() + 4);
                out.extend_from_slice(&(msgpack.len() as u32).to_be_bytes());
                out.extend_from_slice(&msgpack);
                Bytes::from(out)
            }
            Format::Json => {
                let mut line = msgpack_to_json_vec(&msgpack).unwrap_or_else(|_| {
                    br#"{"error":"a record cannot be shown as JSON","code":13}"#.to_vec()
                });
                line.push(b'\n');
                Bytes::from(line)
            }
        }
    }
}

async fn next_record(receiver: &mut StreamReceiver<RawValue>) -> Record {
    match receiver.next_raw().await {
        Some(Ok(item)) => Record::Item(item),
        Some(Err(error)) if error.is_item_error() => Record::ItemError(ApiError::from(&error)),
        Some(Err(error)) => Record::Error(ApiError::from(&error)),
        None => match receiver.result() {
            Some(result) => Record::Result(result.clone()),
            None => Record::Error(ApiError::from(&CallError::Closed)),
        },
    }
}

/// Answers with the stream: waits for its first record, so that a stream that fails
/// at once is answered with its own status, then streams the rest.
async fn stream_answer(
    mut receiver: StreamReceiver<RawValue>,
    format: Format,
) -> Result<Response, Failure> {
    let first = next_record(&mut receiver).await;
    if let Record::Error(error) = first {
        return Err(Failure(error, format));
    }
    let records = stream::unfold(
        (Some(first), Some(receiver)),
        move |(pending, receiver)| async move {
            let mut receiver = receiver?;
            let record = match pending {
                Some(record) => record,
                None => next_record(&mut receiver).await,
            };
            let last = record.is_last();
            let framed = Ok::<_, std::convert::Infallible>(record.frame(format));
            Some((framed, (None, (!last).then_some(receiver))))
        },
    );
    let mut response = Response::new(Body::from_stream(records));
    *response.status_mut() = StatusCode::OK;
    let media = match format {
        Format::Json => NDJSON,
        Format::Msgpack => MSGPACK_STREAM,
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    Ok(response)
}
