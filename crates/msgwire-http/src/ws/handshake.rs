//! The opening handshake, server side (RFC 6455 section 4.2): check the client's
//! request, answer 101 with the accept key, and hand the upgraded stream on.
//!
//! ```text
//! GET /ws HTTP/1.1                                HTTP/1.1 101 Switching Protocols
//! Host: example.com                               Upgrade: websocket
//! Upgrade: websocket                              Connection: Upgrade
//! Connection: Upgrade                       ──►   Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
//! Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==     Sec-WebSocket-Protocol: msgpack-rpc   (if offered)
//! Sec-WebSocket-Version: 13
//! Sec-WebSocket-Protocol: msgpack-rpc             (no Sec-WebSocket-Extensions:
//! Sec-WebSocket-Extensions: permessage-deflate     every extension is declined)
//! ```
//!
//! The accept key is `base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))`.
//! A request that is not a WebSocket handshake is refused before anything is upgraded:
//! 405 for a method other than GET, 426 with `Sec-WebSocket-Version: 13` for another
//! version, 400 for a missing or wrong `Upgrade`, `Connection` or `Sec-WebSocket-Key`
//! (the key must be 16 bytes in base64), and 500 when the connection cannot be upgraded
//! at all (the request did not come from an HTTP/1.1 server with upgrades on).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};

use super::{serve_socket, WsConfig, SUBPROTOCOL};

/// The GUID of RFC 6455 section 1.3, appended to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
///
/// ```
/// // RFC 6455 section 1.3
/// assert_eq!(
///     msgwire_http::ws::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Whether a comma-separated header (all its lines) lists `token`, case-insensitively.
fn lists_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|item| item.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// A refusal: the status and a line of text saying why.
fn refuse(status: StatusCode, why: &'static str) -> Response {
    let mut response = Response::new(Body::from(why));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn bad_request(why: &'static str) -> Box<Response> {
    Box::new(refuse(StatusCode::BAD_REQUEST, why))
}

/// Checks the handshake; the accept key on success.
fn check(request: &Request) -> Result<String, Box<Response>> {
    if request.method() != Method::GET {
        let mut response = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket handshake is a GET",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return Err(Box::new(response));
    }
    let headers = request.headers();
    if !lists_token(headers, header::UPGRADE, "websocket") {
        return Err(bad_request("expected Upgrade: websocket"));
    }
    if !lists_token(headers, header::CONNECTION, "upgrade") {
        return Err(bad_request("expected Connection: upgrade"));
    }
    let version = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes().trim_ascii());
    if version != Some(b"13") {
        let mut response = refuse(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is supported",
        );
        let headers = response.headers_mut();
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return Err(Box::new(response));
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(bad_request("expected one Sec-WebSocket-Key"));
    };
    let key = key.as_bytes().trim_ascii();
    // 16 bytes are 24 characters of base64; checking the length first bounds the work.
    let decoded = (key.len() == 24)
        .then(|| base64::engine::general_purpose::STANDARD.decode(key).ok())
        .flatten();
    if decoded.map(|k| k.len()) != Some(16) {
        return Err(bad_request("Sec-WebSocket-Key must be 16 bytes in base64"));
    }
    Ok(accept_key(key))
}

/// Validates the handshake (RFC 6455 section 4.2.1: GET, `Upgrade: websocket`, a
/// `Connection` listing `upgrade`, `Sec-WebSocket-Version: 13` — else 426 with
/// `Sec-WebSocket-Version: 13` — and a `Sec-WebSocket-Key` of 16 bytes in base64),
/// answers 101 with `Sec-WebSocket-Accept`, declines every extension
/// (permessage-deflate included: the answer has no `Sec-WebSocket-Extensions`), accepts
/// the subprotocol `msgpack-rpc` if offered, and once hyper has upgraded the connection
/// spawns [`serve_socket`] on it. `keep` is dropped when the socket's life ends (or at
/// once if the handshake is refused).
///
/// See the [module docs](super) for an axum route using it.
pub fn upgrade(
    mut request: Request,
    server: msgwire_rpc::Server,
    config: WsConfig,
    keep: impl Send + 'static,
) -> Response {
    let accept = match check(&request) {
        Ok(accept) => accept,
        Err(refusal) => return *refusal,
    };
    if request
        .extensions()
        .get::<hyper::upgrade::OnUpgrade>()
        .is_none()
    {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this connection cannot be upgraded (not HTTP/1.1 with upgrades)",
        );
    }
    let subprotocol = lists_token(
        request.headers(),
        header::SEC_WEBSOCKET_PROTOCOL,
        SUBPROTOCOL,
    );
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => serve_socket(TokioIo::new(upgraded), server, config).await,
            Err(error) => tracing::debug!(%error, "the WebSocket upgrade failed"),
        }
        drop(keep);
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    if subprotocol {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake() -> Request {
        Request::builder()
            .method("GET")
            .uri("/ws")
            .header("upgrade", "WebSocket")
            .header("connection", "keep-alive, Upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(Body::empty())
            .unwrap()
    }

    #[test]
    fn a_good_handshake_gets_the_rfc_accept_key() {
        let accept = check(&handshake()).unwrap();
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn bad_handshakes_are_refused_with_their_status() {
        let status = |request: Request| check(&request).unwrap_err().status();
        let mut post = handshake();
        *post.method_mut() = Method::POST;
        assert_eq!(status(post), StatusCode::METHOD_NOT_ALLOWED);
        let mut no_key = handshake();
        no_key.headers_mut().remove("sec-websocket-key");
        assert_eq!(status(no_key), StatusCode::BAD_REQUEST);
        let mut short_key = handshake();
        short_key.headers_mut().insert(
            "sec-websocket-key",
            HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAA"),
        );
        assert_eq!(status(short_key), StatusCode::BAD_REQUEST);
        let mut v8 = handshake();
        v8.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("8"));
        let refusal = check(&v8).unwrap_err();
        assert_eq!(refusal.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(refusal.headers()["sec-websocket-version"], "13");
        let mut no_upgrade = handshake();
        no_upgrade.headers_mut().remove("upgrade");
        assert_eq!(status(no_upgrade), StatusCode::BAD_REQUEST);
        let mut no_connection = handshake();
        no_connection
            .headers_mut()
            .insert("connection", HeaderValue::from_static("keep-alive"));
        assert_eq!(status(no_connection), StatusCode::BAD_REQUEST);
    }
}
