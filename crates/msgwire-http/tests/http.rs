//! Every HTTP endpoint of the app, both content types, every error status and `Accept`
//! negotiation, driven through the axum router with `oneshot` over the in-process
//! backend (the same path `msgwire serve --http` takes), plus a gateway backend whose
//! upstream cannot be reached (502).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use msgwire_http::app::{router, AppConfig, AppState};
use msgwire_http::backend::{Backend, BackendOptions};
use msgwire_http::metrics::Metrics;
use msgwire_rpc::{Router, Server};
use msgwire_services::{Services, ServicesConfig};
use msgwire_wire::{Code, Limits, RpcError};
use serde_json::{json, Value as Json};
use tower::ServiceExt;

const MSGPACK: &str = "application/x-msgpack";

struct App {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

/// The reference services plus two test methods: `fail(code, message)` answers with
/// that error, `sleep(ms)` answers after that long.
fn test_router(services: &Services) -> Router {
    services
        .router()
        .method("fail", |(code, message): (i64, String)| async move {
            Err::<(), _>(RpcError::new(Code::from_i64(code), message))
        })
        .method("sleep", |(ms,): (u64,)| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, RpcError>(ms)
        })
}

fn app_with(options: BackendOptions, limits: Limits) -> App {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::new(ServicesConfig {
        data_dir: dir.path().into(),
        ..ServicesConfig::default()
    })
    .unwrap();
    let metrics = Metrics::new(msgwire_services::STREAM_METHODS, None);
    let server = Server::builder()
        .layer(metrics.layer())
        .build(test_router(&services))
        .unwrap();
    let backend = Backend::local(server.clone(), options);
    let config = AppConfig::new(backend, metrics)
        .with_cache(std::sync::Arc::clone(services.cache()))
        .with_websocket(server)
        .with_limits(limits);
    App {
        router: router(AppState::new(config)),
        _dir: dir,
    }
}

fn app() -> App {
    app_with(BackendOptions::default(), Limits::default())
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Json {
        assert!(
            self.content_type.starts_with("application/json"),
            "not JSON but {:?}: {}",
            self.content_type,
            String::from_utf8_lossy(&self.body)
        );
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The MessagePack body, shown as JSON for comparisons.
    fn msgpack(&self) -> Json {
        assert_eq!(self.content_type, MSGPACK, "not MessagePack");
        let value = rmpv::decode::read_value(&mut &self.body[..]).unwrap();
        msgwire_http::json::to_json(&value)
    }
}

async fn send(app: &App, request: Request<Body>) -> Answer {
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

async fn get(app: &App, uri: &str, accept: Option<&str>) -> Answer {
    let mut request = Request::get(uri);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

async fn post(
    app: &App,
    uri: &str,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let mut request = Request::post(uri);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    send(app, request.body(Body::from(body)).unwrap()).await
}

/// A POST of a JSON body with the default `Accept`.
async fn post_json(app: &App, uri: &str, body: &[u8]) -> Answer {
    post(app, uri, Some("application/json"), None, body.to_vec()).await
}

fn packed(json: Json) -> Vec<u8> {
    let value = msgwire_http::json::from_json(&json).unwrap();
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &value).unwrap();
    out
}

fn alice() -> Json {
    json!({"id": 1, "name": "Alice", "role": "admin", "email": "alice@example.com"})
}

#[tokio::test]
async fn api_users_answers_json_or_msgpack_by_accept() {
    let app = app();
    let answer = get(&app, "/api/users/1", None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), alice());
    let answer = get(&app, "/api/users/1", Some(MSGPACK)).await;
    assert_eq!(answer.msgpack(), alice());
    let answer = get(
        &app,
        "/api/users/1",
        Some("application/json;q=0.1, application/msgpack"),
    )
    .await;
    assert_eq!(answer.msgpack(), alice());
    let answer = get(&app, "/api/users/1", Some("*/*")).await;
    assert_eq!(answer.json(), alice());

    let missing = get(&app, "/api/users/9", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        json!({"error": "user 9 not found", "code": 5})
    );
    let missing = get(&app, "/api/users/9", Some(MSGPACK)).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.msgpack(),
        json!({"error": "user 9 not found", "code": 5})
    );
    let bad = get(&app, "/api/users/abc", None).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["code"], 3);
    let refused = get(&app, "/api/users/1", Some("text/html")).await;
    assert_eq!(refused.status, 406);
    assert_eq!(refused.json()["code"], 3);
}

#[tokio::test]
async fn api_msgpack_users_is_msgpack_only() {
    let app = app();
    let answer = get(&app, "/api/msgpack/users/1", None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.msgpack(), alice());
    let missing = get(&app, "/api/msgpack/users/7", None).await;
    assert_eq!(
        (missing.status, missing.msgpack()["code"].clone()),
        (StatusCode::NOT_FOUND, json!(5))
    );
    assert_eq!(
        get(&app, "/api/msgpack/users/1", Some("application/json"))
            .await
            .status,
        406
    );
}

#[tokio::test]
async fn dashboard_joins_user_and_orders() {
    let app = app();
    let answer = get(&app, "/api/dashboard/1", None).await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(body["user"], alice());
    let orders = body["orders"].as_array().unwrap();
    assert!(!orders.is_empty());
    assert!(orders.iter().all(|o| o["userId"] == 1), "{orders:?}");
    let packed = get(&app, "/api/dashboard/1", Some(MSGPACK)).await.msgpack();
    assert_eq!(packed, body);
    // One part failing fails the whole with its status, at once.
    let missing = get(&app, "/api/dashboard/42", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], 5);
}

#[tokio::test]
async fn the_services_own_endpoints_speak_msgpack() {
    let app = app();
    let bob = get(&app, "/users/2", None).await;
    assert_eq!(bob.status, 200);
    assert_eq!(bob.msgpack()["name"], "Bob");
    assert_eq!(
        get(&app, "/users/2", Some("application/json")).await.json()["name"],
        "Bob"
    );
    let admins = get(&app, "/users?role=admin", None).await.msgpack();
    assert_eq!(admins, json!([alice()]));
    let everyone = get(&app, "/users", None).await.msgpack();
    assert_eq!(everyone.as_array().unwrap().len(), 3);
    assert_eq!(
        get(&app, "/users?role=nobody", None).await.msgpack(),
        json!([])
    );

    let order = get(&app, "/orders/1001", None).await;
    assert_eq!(order.status, 200);
    assert_eq!(order.msgpack()["id"], 1001);
    let theirs = get(&app, "/orders?userId=1", None).await.msgpack();
    assert!(theirs.as_array().unwrap().iter().all(|o| o["userId"] == 1));
    let all = get(&app, "/orders", None).await.msgpack();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let missing = get(&app, "/orders/9999", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.msgpack()["code"], 5);
    assert_eq!(get(&app, "/orders?userId=x", None).await.status, 400);
    assert_eq!(
        get(&app, "/orders/x", Some("application/json"))
            .await
            .json()["code"],
        3
    );
}

#[tokio::test]
async fn rpc_takes_json_or_msgpack_and_answers_by_accept() {
    let app = app();
    let json_in = post_json(&app, "/rpc/add", b"[2, 3]").await;
    assert_eq!((json_in.status, json_in.json()), (StatusCode::OK, json!(5)));
    let packed_in = post(&app, "/rpc/add", Some(MSGPACK), None, packed(json!([2, 3]))).await;
    assert_eq!(packed_in.msgpack(), json!(5));
    let crossed = post(
        &app,
        "/rpc/add",
        Some("application/json"),
        Some(MSGPACK),
        b"[4, 5]".to_vec(),
    )
    .await;
    assert_eq!(crossed.msgpack(), json!(9));
    let named = post_json(&app, "/rpc/getUser", br#"{"id": 1}"#).await;
    assert_eq!(named.json(), alice());
    let no_params = post(
        &app,
        "/rpc/listUsers",
        None,
        Some("application/json"),
        Vec::new(),
    )
    .await;
    assert_eq!(no_params.json().as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn json_carries_bin_ext_and_non_string_keys_both_ways() {
    let app = app();
    let value = json!([{"b": {"$bin": "AAEC/w=="}, "x": {"$ext": {"type": 7, "data": "qg=="}},
                        "m": {"$map": [[1, "one"], [[2], true]]}, "f": {"$float": "NaN"}}]);
    let echoed = post(
        &app,
        "/rpc/echo",
        Some("application/json"),
        None,
        value.to_string().into_bytes(),
    )
    .await;
    assert_eq!(echoed.status, 200);
    // echo answers its one param.
    assert_eq!(echoed.json(), value[0]);
    // The same value sent as MessagePack comes back as the same MessagePack bytes.
    let back = post(
        &app,
        "/rpc/echo",
        Some(MSGPACK),
        None,
        packed(value.clone()),
    )
    .await;
    assert_eq!(back.body, packed(value[0].clone()));
    assert_eq!(&back.body[..3], &[0x84, 0xa1, b'b']);
}

#[tokio::test]
async fn every_error_code_has_its_status() {
    let app = app();
    for (code, status) in [
        (3, 400),
        (4, 504),
        (5, 404),
        (7, 403),
        (8, 429),
        (12, 404),
        (13, 500),
        (14, 503),
        (16, 401),
        (9, 400),
        (6, 409),
        (15, 500),
    ] {
        let body = json!([code, format!("code {code}")])
            .to_string()
            .into_bytes();
        let answer = post(&app, "/rpc/fail", Some("application/json"), None, body).await;
        assert_eq!(answer.status.as_u16(), status, "code {code}");
        assert_eq!(
            answer.json(),
            json!({"error": format!("code {code}"), "code": code})
        );
        let body = packed(json!([code, "packed"]));
        let answer = post(&app, "/rpc/fail", Some(MSGPACK), None, body).await;
        assert_eq!(answer.status.as_u16(), status, "code {code}");
        assert_eq!(answer.msgpack(), json!({"error": "packed", "code": code}));
    }
    let unknown = post_json(&app, "/rpc/noSuchMethod", b"[]").await;
    assert_eq!(
        (unknown.status, unknown.json()["code"].clone()),
        (StatusCode::NOT_FOUND, json!(12))
    );
    let wrong = post_json(&app, "/rpc/add", br#"["a"]"#).await;
    assert_eq!(
        (wrong.status, wrong.json()["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(3))
    );
    let not_json = post_json(&app, "/rpc/add", b"[1,").await;
    assert_eq!(not_json.status, 400);
    let not_msgpack = post(&app, "/rpc/add", Some(MSGPACK), None, vec![0x92, 0x01]).await;
    assert_eq!(not_msgpack.status, 400);
    let text = post(&app, "/rpc/add", Some("text/plain"), None, b"1 2".to_vec()).await;
    assert_eq!(
        (text.status, text.json()["code"].clone()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, json!(3))
    );
    let untyped = post(&app, "/rpc/add", None, None, b"[1, 2]".to_vec()).await;
    assert_eq!(untyped.status, 415);
    let html = post(
        &app,
        "/rpc/add",
        Some("application/json"),
        Some("text/html"),
        b"[1, 2]".to_vec(),
    )
    .await;
    assert_eq!(html.status, 406);
    let upload = post_json(&app, "/rpc/upload", b"[]").await;
    assert_eq!(upload.status, 400);
    assert!(upload.json()["error"].as_str().unwrap().contains("/ws"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = app_with(BackendOptions::default(), Limits::new(1024, 32).unwrap());
    let big = json!(["x".repeat(2000)]).to_string().into_bytes();
    let answer = post(&app, "/rpc/echo", Some("application/json"), None, big).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["code"], 8);
    // Without a Content-Length (a streamed body), the limit holds as it is read.
    let chunks = futures::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 400]))),
    );
    let request = Request::post("/rpc/echo")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(chunks))
        .unwrap();
    assert_eq!(send(&app, request).await.status, 413);
    let small = post_json(&app, "/rpc/echo", b"[1]").await;
    assert_eq!(small.json(), json!(1));
}

#[tokio::test]
async fn a_call_past_its_deadline_is_504() {
    let options = BackendOptions {
        timeout: Duration::from_millis(100),
        ..BackendOptions::default()
    };
    let app = app_with(options, Limits::default());
    let answer = post_json(&app, "/rpc/sleep", b"[5000]").await;
    assert_eq!(answer.status, 504);
    assert_eq!(answer.json()["code"], 4);
    let quick = post_json(&app, "/rpc/sleep", b"[1]").await;
    assert_eq!(quick.json(), json!(1));
}

#[tokio::test]
async fn an_unreachable_upstream_is_502_and_health_is_degraded() {
    // A port nothing listens on: bound, then closed.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let backend = Backend::gateway(
        &[("users".into(), addr.to_string())],
        BackendOptions {
            connect_timeout: Duration::from_millis(300),
            ..BackendOptions::default()
        },
    );
    let app = App {
        router: router(AppState::new(
            AppConfig::new(backend, Metrics::new(&[], None)).with_role("gateway"),
        )),
        _dir: tempfile::tempdir().unwrap(),
    };
    let answer = get(&app, "/api/users/1", None).await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["code"], 14);
    let orders = get(&app, "/orders/1001", Some("application/json")).await;
    assert_eq!(
        orders.status, 404,
        "no upstream serves orders: UNIMPLEMENTED"
    );
    assert_eq!(orders.json()["code"], 12);
    let health = get(&app, "/health", None).await;
    assert_eq!(health.status, 503);
    let body = health.json();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["role"], "gateway");
    assert_eq!(body["dependencies"][0]["status"], "down");
}

#[tokio::test]
async fn named_checks_show_in_health_and_one_down_or_silent_degrades_it() {
    use futures::FutureExt;
    use msgwire_http::app::Check;
    let backend = Backend::local(
        Server::builder().build(Router::new()).unwrap(),
        BackendOptions::default(),
    );
    let ok: Check =
        std::sync::Arc::new(|| async { Ok("redis://127.0.0.1:6379".to_owned()) }.boxed());
    let down: Check =
        std::sync::Arc::new(|| async { Err("connection refused".to_owned()) }.boxed());
    let silent: Check = std::sync::Arc::new(|| futures::future::pending().boxed());
    let app_of = |checks: Vec<(&str, Check)>| {
        let config = checks.into_iter().fold(
            AppConfig::new(backend.clone(), Metrics::new(&[], None)),
            |config, (name, check)| config.with_check(name, check),
        );
        App {
            router: router(AppState::new(config)),
            _dir: tempfile::tempdir().unwrap(),
        }
    };
    let healthy = get(&app_of(vec![("redis", ok.clone())]), "/health", None).await;
    assert_eq!(healthy.status, 200);
    assert_eq!(
        healthy.json()["dependencies"],
        json!([{"name": "redis", "status": "ok", "detail": "redis://127.0.0.1:6379"}])
    );
    let degraded = get(
        &app_of(vec![("redis", ok), ("kafka", down), ("slow", silent)]),
        "/health",
        None,
    )
    .await;
    assert_eq!(degraded.status, 503);
    let body = degraded.json();
    assert_eq!(body["status"], "degraded");
    let deps = body["dependencies"].as_array().unwrap();
    assert_eq!(
        deps[1],
        json!({"name": "kafka", "status": "down", "detail": "connection refused"})
    );
    assert_eq!(deps[2]["status"], "down");
    assert!(
        deps[2]["detail"]
            .as_str()
            .unwrap()
            .starts_with("no answer within"),
        "{}",
        deps[2]
    );
}

#[tokio::test]
async fn health_reports_in_json_and_msgpack() {
    let app = app();
    // A cache miss and a hit first.
    get(&app, "/api/users/1", None).await;
    get(&app, "/api/users/1", None).await;
    let health = get(&app, "/health", None).await;
    assert_eq!(health.status, 200);
    let body = health.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].as_f64().unwrap() >= 0.0);
    assert!(body["memory"]["rss_bytes"].as_u64().unwrap() > 0);
    assert!(body["connections"].is_object());
    let cache = &body["dependencies"][0];
    assert_eq!(
        (cache["name"].clone(), cache["status"].clone()),
        (json!("cache"), json!("ok"))
    );
    assert!(
        cache["detail"].as_str().unwrap().contains("1 hits"),
        "{cache}"
    );
    let packed = get(&app, "/health", Some(MSGPACK)).await;
    assert_eq!(packed.msgpack()["status"], "ok");
}

#[tokio::test]
async fn a_server_stream_answers_as_it_streams() {
    let app = app();
    for kind in ["login", "logout", "login"] {
        let body = json!({"user_id": 7, "type": kind}).to_string().into_bytes();
        let answer = post(
            &app,
            "/rpc/publishEvent",
            Some("application/json"),
            None,
            body,
        )
        .await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    // subscribeEvents never ends: read the replayed events off the body, then hang up.
    let request = Request::post("/rpc/subscribeEvents")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"user_id": 7, "start_time": 0}).to_string(),
        ))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-ndjson"
    );
    let mut body = response.into_body();
    let mut text = String::new();
    while text.lines().count() < 3 {
        let frame = body.frame().await.unwrap().unwrap();
        text.push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap());
    }
    let kinds: Vec<Json> = text
        .lines()
        .take(3)
        .map(|line| serde_json::from_str::<Json>(line).unwrap()["item"]["type"].clone())
        .collect();
    assert_eq!(kinds, [json!("login"), json!("logout"), json!("login")]);
    drop(body);

    // In MessagePack: u32 BE length-prefixed records.
    let request = Request::post("/rpc/subscribeEvents")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, MSGPACK)
        .body(Body::from(
            json!({"user_id": 7, "start_time": 0, "event_types": ["logout"]}).to_string(),
        ))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-msgpack-stream"
    );
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    let record = loop {
        if bytes.len() >= 4 {
            let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            if bytes.len() >= 4 + len {
                break rmpv::decode::read_value(&mut &bytes[4..4 + len]).unwrap();
            }
        }
        let frame = body.frame().await.unwrap().unwrap();
        bytes.extend_from_slice(frame.data_ref().unwrap());
    };
    assert_eq!(
        msgwire_http::json::to_json(&record)["item"]["type"],
        "logout"
    );

    // A stream that fails before its first item is answered with its status.
    let missing = post_json(&app, "/rpc/download", br#"["nope"]"#).await;
    assert!(missing.status.is_client_error(), "{}", missing.status);
    assert!(missing.json()["code"] == 5 || missing.json()["code"] == 3);
}
