//! The browser playground: a page at `/` that calls the reference services from a
//! browser over `/ws` (msgpack-rpc, one message per binary WebSocket message).
//!
//! ```text
//!  GET /                      index.html       the page: call form, stream panel, chat room
//!  GET /playground.js         playground.js    the protocol (msgpack-rpc + streams) and the UI
//!  GET /playground.css        playground.css   the look
//!  GET /favicon.svg           favicon.svg      the tab's icon
//!  GET /vendor/msgpack.min.js @msgpack/msgpack 3.1.3, as npm ships it (assets/vendor/)
//!
//!  browser ──/ws──► [0, 7, "add", [2, 3]]                    ──► services
//!          ◄──────  [1, 7, nil, 5]
//!          ──────►  [0, 8, "subscribeEvents", [1]]           a server stream
//!          ◄──────  [2, "$/item", [8, {...}]] ...            items, shown as they come
//!          ──────►  [2, "$/credit", [8, 32, n]]              every 32 items taken
//!          ──────►  [2, "$/cancel", [8]]                     the Cancel button
//! ```
//!
//! Everything is built into the binary (`include_bytes!`), so the page needs no files
//! at run time and no build step: the script is plain JavaScript. Each answer carries:
//!
//! * `Cache-Control: no-cache` and a strong `ETag` (a SHA-1 of the body): a browser
//!   keeps its copy but asks each time, and gets `304 Not Modified` while the binary is
//!   the same, so a new binary's page is never mixed with an old script;
//! * a `Content-Security-Policy` that allows only the server's own scripts and styles
//!   (no inline code, no other origin) and connections to itself — `ws:` and `wss:` are
//!   named as well, since not every browser counts a WebSocket to the same host as
//!   `'self'`;
//! * `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
//!
//! The page's elements have stable `id`s and `data-testid`s; `tests/browser/` drives
//! it in Chromium.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use tower::ServiceExt;
//!
//! let app: axum::Router = msgwire_http::page::routes();
//! let request = Request::get("/").body(Body::empty()).unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
//! # }
//! ```

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha1::{Digest, Sha1};

/// The page's Content-Security-Policy: its own scripts, styles and images only, no
/// inline code, WebSockets to itself, and no framing by other sites.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One file of the playground.
#[derive(Debug, Clone, Copy)]
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every file the playground serves, by path.
const ASSETS: [Asset; 5] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../assets/index.html"),
    },
    Asset {
        path: "/playground.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/playground.js"),
    },
    Asset {
        path: "/playground.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/playground.css"),
    },
    Asset {
        path: "/favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../assets/favicon.svg"),
    },
    Asset {
        path: "/vendor/msgpack.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/vendor/msgpack.min.js"),
    },
];

/// The playground's routes: `GET` (and `HEAD`) of `/`, `/playground.js`,
/// `/playground.css`, `/favicon.svg` and `/vendor/msgpack.min.js`. They need no state, so they merge
/// into a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        let asset = *asset;
        let etag = etag(asset.body);
        router.route(
            asset.path,
            get(move |headers: HeaderMap| async move { respond(asset, &etag, &headers) }),
        )
    })
}

/// A strong entity tag for `body`: its SHA-1, quoted.
fn etag(body: &[u8]) -> HeaderValue {
    let digest = Sha1::digest(body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    // Hex digits and quotes are always a valid header value.
    HeaderValue::try_from(format!("\"{hex}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// Whether an `If-None-Match` header names `etag` (or is `*`): RFC 9110 section
/// 13.1.2, which compares weakly, so `W/"x"` matches `"x"`.
fn matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else {
        return false;
    };
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

fn respond(asset: Asset, etag: &HeaderValue, request: &HeaderMap) -> Response {
    let fresh = request
        .get(IF_NONE_MATCH)
        .is_some_and(|tags| matches(tags, etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    if !fresh {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    }
    headers.insert(ETAG, etag.clone());
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests;
