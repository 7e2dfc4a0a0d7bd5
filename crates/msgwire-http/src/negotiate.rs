//! Which format a request's body is in (`Content-Type`) and which one its answer should
//! be in (`Accept`), and turning bodies into MessagePack params and results back into
//! bodies.
//!
//! | media type | format |
//! |---|---|
//! | `application/json` (and `*/*+json`) | [`Format::Json`] |
//! | `application/x-msgpack`, `application/msgpack`, `application/vnd.msgpack` | [`Format::Msgpack`] |
//!
//! `Accept` is read as RFC 9110 §12.5.1 says: comma-separated ranges with optional
//! `q` weights; the highest weight wins, `q=0` excludes, `*/*` and `application/*`
//! take the endpoint's default. No `Accept` at all means the default too.
//!
//! ```
//! use axum::http::{header, HeaderMap, HeaderValue};
//! use msgwire_http::negotiate::{accept, Format};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(header::ACCEPT, HeaderValue::from_static("application/json;q=0.5, application/x-msgpack"));
//! assert_eq!(accept(&headers, Format::Json), Ok(Format::Msgpack));
//! headers.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
//! assert!(accept(&headers, Format::Json).is_err());
//! ```

use axum::http::{header, HeaderMap};
use msgwire_wire::{Limits, RawValue};

use crate::json::{from_json, msgpack_to_json_vec};

/// A body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON, with MessagePack's extra types in the tagged forms of [`crate::json`].
    Json,
    /// MessagePack.
    Msgpack,
}

/// The media type msgwire answers MessagePack with.
pub const MSGPACK: &str = "application/x-msgpack";
/// The media type msgwire answers JSON with.
pub const JSON: &str = "application/json";

impl Format {
    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => JSON,
            Format::Msgpack => MSGPACK,
        }
    }

    /// The format of a media type (parameters such as `charset` ignored), if msgwire
    /// speaks it.
    pub fn of_media_type(media_type: &str) -> Option<Format> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Format::Json),
            "application/x-msgpack" | "application/msgpack" | "application/vnd.msgpack" => {
                Some(Format::Msgpack)
            }
            other if other.starts_with("application/") && other.ends_with("+json") => {
                Some(Format::Json)
            }
            _ => None,
        }
    }

    /// `params` (or a result) as a body in this format.
    pub fn encode(self, value: &RawValue) -> Result<Vec<u8>, String> {
        match self {
            Format::Msgpack => Ok(value.as_bytes().to_vec()),
            Format::Json => msgpack_to_json_vec(value.as_bytes())
                .map_err(|e| format!("the answer cannot be shown as JSON: {e}")),
        }
    }

    /// A body in this format as one MessagePack value, within `limits` (depth, length).
    pub fn decode(self, body: &[u8], limits: &Limits) -> Result<RawValue, String> {
        match self {
            Format::Msgpack => RawValue::from_bytes(body.to_vec(), limits)
                .map_err(|e| format!("the body is not one MessagePack value: {e}")),
            Format::Json => {
                let json: serde_json::Value = serde_json::from_slice(body)
                    .map_err(|e| format!("the body is not JSON: {e}"))?;
                let value = from_json(&json)?;
                let raw = RawValue::from_value(&value);
                // The same depth limit as MessagePack from the network: JSON nested past
                // it is refused rather than handed to a handler.
                RawValue::from_bytes(raw.into_bytes(), limits)
                    .map_err(|e| format!("the body is too deep or too long: {e}"))
            }
        }
    }
}

/// The request body's format, from its `Content-Type`. A missing one is `None` (the
/// caller decides: an empty body needs none).
pub fn content_type(headers: &HeaderMap) -> Result<Option<Format>, String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| "the Content-Type header is not text".to_owned())?;
    Format::of_media_type(text).map(Some).ok_or_else(|| {
        format!("unsupported Content-Type {text:?}: send application/json or {MSGPACK}")
    })
}

/// The answer's format: the best of `Accept` that msgwire speaks, `default` for
/// `*/*`, `application/*` or no header. An `Accept` naming nothing msgwire speaks is an
/// error (406).
pub fn accept(headers: &HeaderMap, default: Format) -> Result<Format, String> {
    let mut best: Option<(f32, Format)> = None;
    let mut any = false;
    for value in headers.get_all(header::ACCEPT) {
        let text = value
            .to_str()
            .map_err(|_| "the Accept header is not text".to_owned())?;
        for range in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            any = true;
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q <= 0.0 {
                continue;
            }
            let format = match media.as_str() {
                "*/*" | "application/*" => Some(default),
                other => Format::of_media_type(other),
            };
            if let Some(format) = format {
                // Ties keep the first named (as listed), except that an explicit type
                // beats a wildcard of the same weight.
                let better = match best {
                    None => true,
                    Some((best_q, _)) => q > best_q,
                };
                if better {
                    best = Some((q, format));
                }
            }
        }
    }
    match best {
        Some((_, format)) => Ok(format),
        None if !any => Ok(default),
        None => Err(format!(
            "nothing in Accept is served here: ask for application/json or {MSGPACK}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn accept_weights_and_wildcards() {
        let a = |v| accept(&with(header::ACCEPT, v), Format::Msgpack);
        assert_eq!(accept(&HeaderMap::new(), Format::Json), Ok(Format::Json));
        assert_eq!(a("*/*"), Ok(Format::Msgpack));
        assert_eq!(a("application/json"), Ok(Format::Json));
        assert_eq!(
            a("application/json;q=0.2, application/msgpack;q=0.9"),
            Ok(Format::Msgpack)
        );
        assert_eq!(a("text/html, application/json"), Ok(Format::Json));
        assert_eq!(
            a("application/x-msgpack;q=0, application/json"),
            Ok(Format::Json)
        );
        assert!(a("text/html").is_err());
        assert!(a("application/x-msgpack;q=0").is_err());
        assert_eq!(a("application/problem+json"), Ok(Format::Json));
    }

    #[test]
    fn content_types() {
        let c = |v| content_type(&with(header::CONTENT_TYPE, v));
        assert_eq!(c("application/json; charset=utf-8"), Ok(Some(Format::Json)));
        assert_eq!(c("Application/X-Msgpack"), Ok(Some(Format::Msgpack)));
        assert!(c("text/plain").is_err());
        assert_eq!(content_type(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn bodies_round_trip_and_respect_the_depth_limit() {
        let limits = Limits::default();
        let raw = Format::Json
            .decode(br#"[1, {"$bin": "AQID"}]"#, &limits)
            .unwrap();
        assert_eq!(raw.as_bytes(), &[0x92, 0x01, 0xc4, 3, 1, 2, 3]);
        assert_eq!(
            Format::Json.encode(&raw).unwrap(),
            br#"[1,{"$bin":"AQID"}]"#
        );
        assert_eq!(Format::Msgpack.encode(&raw).unwrap(), raw.as_bytes());
        assert!(Format::Msgpack.decode(&[0x92, 0x01], &limits).is_err());
        let deep = format!(
            "{}{}",
            "[".repeat(limits.max_depth() + 2),
            "]".repeat(limits.max_depth() + 2)
        );
        assert!(Format::Json.decode(deep.as_bytes(), &limits).is_err());
        assert!(Format::Json.decode(b"{nope", &limits).is_err());
    }
}
