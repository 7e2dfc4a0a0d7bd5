//! The HTTP application: an axum [`Router`] over a [`Backend`], kept apart from serving
//! it, so tests drive it with `tower::ServiceExt::oneshot` or over a socket alike.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/users/{id}` | the user, JSON (MessagePack if `Accept` asks) |
//! | `GET /api/msgpack/users/{id}` | the user, MessagePack |
//! | `GET /api/dashboard/{userId}` | `{user, orders}`, both fetched at once |
//! | `GET /users/{id}`, `GET /users?role=` | the services' own endpoints, MessagePack (JSON if `Accept` asks) |
//! | `GET /orders/{id}`, `GET /orders?userId=` | likewise |
//! | `POST /rpc/{method}` | any method: params in the body (JSON or MessagePack by `Content-Type`), the answer by `Accept`; a server stream as it streams |
//! | `GET /health` | status, version, uptime, connections, memory, dependencies (503 when degraded) |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /ws` | msgpack-rpc over WebSocket (`msgwire serve` only) |
//! | `GET /` | the playground page |
//!
//! Errors answer with the status of [`crate::error`] and `{"error", "code"}` in the
//! negotiated format.
//!
//! ```
//! # async fn demo() -> std::io::Result<()> {
//! use axum::body::Body;
//! use axum::http::Request;
//! use msgwire_http::app::{router, AppConfig, AppState};
//! use msgwire_http::backend::{Backend, BackendOptions};
//! use msgwire_http::metrics::Metrics;
//! use tower::ServiceExt;
//!
//! let metrics = Metrics::new(&[], None);
//! let server = msgwire_rpc::Server::builder()
//!     .layer(metrics.layer())
//!     .build(msgwire_services::router())
//!     .map_err(std::io::Error::other)?;
//! let backend = Backend::local(server.clone(), BackendOptions::default());
//! let app = router(AppState::new(AppConfig::new(backend, metrics).with_websocket(server)));
//! let answer = app
//!     .oneshot(Request::get("/api/users/1").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(answer.status(), 200);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

mod api;
mod health;
mod rpc;
mod serving;

pub use rpc::{MSGPACK_STREAM, NDJSON};
pub use serving::{serve, HttpLimits};

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::future::BoxFuture;
use msgwire_rpc::Server;
use msgwire_services::cache::Cache;
use msgwire_wire::Limits;

use crate::backend::Backend;
use crate::metrics::{Metrics, Transport};
use crate::ws::WsConfig;

/// The largest request body by default: 16 MiB, as the largest frame.
pub const DEFAULT_MAX_BODY: usize = msgwire_wire::DEFAULT_MAX_FRAME;

/// A dependency's check for `/health`: `Ok(detail)` when it can serve, `Err(what is
/// wrong)` when not. It is given a bounded time; one that takes longer counts as down.
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// The named checks, shown by name in `Debug`.
#[derive(Clone, Default)]
struct Checks(Vec<(String, Check)>);

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

/// What the app is made of.
#[derive(Debug, Clone)]
pub struct AppConfig {
    backend: Backend,
    metrics: Metrics,
    cache: Option<Arc<dyn Cache>>,
    checks: Checks,
    websocket: Option<(Server, WsConfig)>,
    limits: Limits,
    max_body: usize,
    role: &'static str,
    http_limits: HttpLimits,
}

impl AppConfig {
    /// An app over `backend`, counting into `metrics`; no cache, no WebSocket.
    pub fn new(backend: Backend, metrics: Metrics) -> Self {
        Self {
            backend,
            metrics,
            cache: None,
            checks: Checks::default(),
            websocket: None,
            limits: Limits::default(),
            max_body: DEFAULT_MAX_BODY,
            role: "serve",
            http_limits: HttpLimits::default(),
        }
    }

    /// Reports the dependency `name` in `/health`, as `check` finds it (a Redis or
    /// Kafka connection, say).
    pub fn with_check(mut self, name: impl Into<String>, check: Check) -> Self {
        self.checks.0.push((name.into(), check));
        self
    }

    /// Reports `cache` in `/health`.
    pub fn with_cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Serves `/ws` with `server` and the default WebSocket settings.
    pub fn with_websocket(self, server: Server) -> Self {
        self.with_websocket_config(server, WsConfig::default())
    }

    /// Serves `/ws` with `server` and `config`.
    pub fn with_websocket_config(mut self, server: Server, config: WsConfig) -> Self {
        self.websocket = Some((server, config));
        self
    }

    /// Depth and length limits for bodies (the length also bounds each body).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.max_body = limits.max_frame_length();
        self.limits = limits;
        self
    }

    /// Bounds on HTTP connections when served by [`serve`].
    pub fn with_http_limits(mut self, limits: HttpLimits) -> Self {
        self.http_limits = limits;
        self
    }

    /// The name `/health` gives this process's role (`serve`, `gateway`).
    pub fn with_role(mut self, role: &'static str) -> Self {
        self.role = role;
        self
    }
}

/// The app's shared state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: AppConfig,
    started: Instant,
}

impl AppState {
    /// The state for `config`, started now (for the uptime in `/health`).
    pub fn new(config: AppConfig) -> Self {
        Self(Arc::new(Inner {
            config,
            started: Instant::now(),
        }))
    }

    fn config(&self) -> &AppConfig {
        &self.0.config
    }
}

/// Every route in the [module docs](self), over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/users/{id}", get(api::api_user))
        .route("/api/msgpack/users/{id}", get(api::api_msgpack_user))
        .route("/api/dashboard/{user_id}", get(api::dashboard))
        .route("/users", get(api::list_users))
        .route("/users/{id}", get(api::user))
        .route("/orders", get(api::list_orders))
        .route("/orders/{id}", get(api::order))
        .route("/rpc/{method}", post(rpc::rpc))
        .route("/health", get(health::health))
        .route("/metrics", get(metrics))
        .route("/ws", get(websocket))
        .merge(crate::page::routes())
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.config().metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}

async fn websocket(State(state): State<AppState>, request: Request) -> Response {
    match &state.config().websocket {
        Some((server, config)) => {
            let guard = state.config().metrics.connection(Transport::WebSocket);
            crate::ws::upgrade(request, server.clone(), config.clone(), guard)
        }
        None => crate::error::ApiError::new(
            msgwire_wire::Code::Unimplemented,
            "this process serves no WebSocket: connect to a msgwire serve",
        )
        .respond(crate::negotiate::Format::Json),
    }
}
