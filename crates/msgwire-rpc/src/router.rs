//! Handlers by method name, and the router as a `tower::Service`.
//!
//! ```
//! use msgwire_rpc::{Context, Router, RpcError, Value};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct AddParams { a: i64, b: i64 }
//!
//! let router = Router::new()
//!     // [1, 2] and {"a": 1, "b": 2} both reach this handler.
//!     .method("add", |p: AddParams| async move { Ok::<_, RpcError>(p.a + p.b) })
//!     // A handler with one non-collection argument gets the single element: ["Alice"].
//!     .method("greet", |name: String| async move { Ok::<_, RpcError>(format!("Hello, {name}!")) })
//!     // A handler that calls back the peer on the same connection.
//!     .method_with_context("ask", |ctx: Context, question: String| async move {
//!         let answer = ctx.call("answer", vec![Value::from(question)]).await?;
//!         Ok::<_, RpcError>(answer)
//!     })
//!     // Params as they came, no conversion.
//!     .method_raw("echo", |_ctx, params| async move { Ok(params) })
//!     .notification("log", |line: String| async move { println!("{line}") });
//! # let _ = router;
//! ```
//!
//! Through the router:
//!
//! * unknown method → UNIMPLEMENTED (12), naming the method;
//! * params that do not fit the handler's type → INVALID_ARGUMENT (3), naming the method,
//!   quoting serde's complaint and saying what was expected;
//! * a handler's own [`RpcError`] → that error, code and message;
//! * a handler that panics → INTERNAL (13); the connection carries on.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::future::{BoxFuture, FutureExt};
use msgwire_wire::RpcError;
use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use crate::error::{rpc_error_from_box, BoxError};
use crate::params::{self, Shape};
use crate::Context;

/// Whether a request wants an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestKind {
    /// A call: the peer waits for a response.
    Call,
    /// A notification: no response is sent.
    Notification,
}

/// One incoming call or notification, as the router and tower middleware see it.
#[derive(Debug)]
pub struct RpcRequest {
    method: String,
    params: Value,
    context: Context,
    kind: RequestKind,
}

impl RpcRequest {
    /// A call of `method` with `params` from the peer behind `context`.
    pub fn call(method: impl Into<String>, params: Value, context: Context) -> Self {
        Self {
            method: method.into(),
            params,
            context,
            kind: RequestKind::Call,
        }
    }

    /// A notification of `method` with `params` from the peer behind `context`.
    pub fn notification(method: impl Into<String>, params: Value, context: Context) -> Self {
        Self {
            method: method.into(),
            params,
            context,
            kind: RequestKind::Notification,
        }
    }

    /// The method name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The params: an array (positional) or a map (named).
    pub fn params(&self) -> &Value {
        &self.params
    }

    /// The connection the request came from.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// A call or a notification.
    pub fn kind(&self) -> RequestKind {
        self.kind
    }

    /// Method, params and context.
    pub fn into_parts(self) -> (String, Value, Context) {
        (self.method, self.params, self.context)
    }
}

type CallHandler =
    dyn Fn(Context, String, Value) -> BoxFuture<'static, Result<Value, RpcError>> + Send + Sync;
type NotificationHandler = dyn Fn(Context, String, Value) -> BoxFuture<'static, ()> + Send + Sync;

#[derive(Default, Clone)]
struct Routes {
    calls: HashMap<Box<str>, Arc<CallHandler>>,
    notifications: HashMap<Box<str>, Arc<NotificationHandler>>,
}

/// Handlers by method name. Cheap to clone (the table is shared).
///
/// Registering is one line per method; see the [module docs](self) for every kind of
/// handler. A name registered twice keeps the last handler. Calls and notifications
/// have separate tables: a call of a method registered only as a notification is
/// UNIMPLEMENTED, and the other way round the notification is dropped.
#[derive(Clone, Default)]
pub struct Router {
    routes: Arc<Routes>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut calls: Vec<&str> = self.routes.calls.keys().map(AsRef::as_ref).collect();
        let mut notifications: Vec<&str> = self
            .routes
            .notifications
            .keys()
            .map(AsRef::as_ref)
            .collect();
        calls.sort_unstable();
        notifications.sort_unstable();
        f.debug_struct("Router")
            .field("calls", &calls)
            .field("notifications", &notifications)
            .finish()
    }
}

impl Router {
    /// A router with no methods.
    pub fn new() -> Self {
        Self::default()
    }

    fn routes(&mut self) -> &mut Routes {
        Arc::make_mut(&mut self.routes)
    }

    /// Registers a typed method: `handler` receives the params decoded as `P` and its
    /// `Ok` value is sent back encoded with serde (structs as maps).
    ///
    /// `P` decodes from an array (positional) or a map (named); params that do not fit
    /// are answered INVALID_ARGUMENT without calling `handler`.
    pub fn method<P, R, E, F, Fut>(self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        E: Into<RpcError> + 'static,
        F: Fn(P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.method_with_context(name, move |_ctx: Context, p: P| handler(p))
    }

    /// Like [`method`](Self::method), with the request's [`Context`]: the handler can
    /// call or notify the peer on the same connection.
    pub fn method_with_context<P, R, E, F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        E: Into<RpcError> + 'static,
        F: Fn(Context, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let shape = Arc::new(Shape::of::<P>());
        let handler = Arc::new(handler);
        let call: Arc<CallHandler> = Arc::new(move |ctx, method, params| {
            let handler = Arc::clone(&handler);
            let shape = Arc::clone(&shape);
            Box::pin(async move {
                let work = async {
                    let p = params::decode::<P>(&method, &shape, params)?;
                    let result = (*handler)(ctx, p).await.map_err(Into::into)?;
                    params::encode(&result).map_err(|e| {
                        RpcError::internal(format!(
                            "the result of method \"{method}\" cannot be encoded: {e}"
                        ))
                    })
                };
                caught(&method, work).await
            })
        });
        self.routes().calls.insert(name.into(), call);
        self
    }

    /// Registers a method that takes the params and returns the result as MessagePack
    /// values, with no serde conversion.
    pub fn method_raw<F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        F: Fn(Context, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let call: Arc<CallHandler> = Arc::new(move |ctx, method, params| {
            let handler = Arc::clone(&handler);
            Box::pin(async move { caught(&method, async { (*handler)(ctx, params).await }).await })
        });
        self.routes().calls.insert(name.into(), call);
        self
    }

    /// Registers a typed notification handler. Params that do not fit `P` are logged
    /// and dropped (a notification has no response to carry an error).
    pub fn notification<P, F, Fut>(self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.notification_with_context(name, move |_ctx: Context, p: P| handler(p))
    }

    /// Like [`notification`](Self::notification), with the request's [`Context`].
    pub fn notification_with_context<P, F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(Context, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shape = Arc::new(Shape::of::<P>());
        let handler = Arc::new(handler);
        let notify: Arc<NotificationHandler> = Arc::new(move |ctx, method, params| {
            let handler = Arc::clone(&handler);
            let shape = Arc::clone(&shape);
            Box::pin(async move {
                match params::decode::<P>(&method, &shape, params) {
                    Ok(p) => {
                        let work = async {
                            (*handler)(ctx, p).await;
                            Ok(Value::Nil)
                        };
                        if let Err(error) = caught(&method, work).await {
                            tracing::warn!(%error, "notification handler failed");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "dropped a notification"),
                }
            })
        });
        self.routes().notifications.insert(name.into(), notify);
        self
    }

    /// Whether a call of `method` has a handler.
    pub fn has_method(&self, method: &str) -> bool {
        self.routes.calls.contains_key(method)
    }

    /// Runs the handler for `request`. A notification resolves to `Ok(Value::Nil)` once
    /// its handler is done, or to UNIMPLEMENTED if it has none.
    pub fn dispatch(&self, request: RpcRequest) -> BoxFuture<'static, Result<Value, RpcError>> {
        let RpcRequest {
            method,
            params,
            context,
            kind,
        } = request;
        match kind {
            RequestKind::Call => match self.routes.calls.get(method.as_str()) {
                Some(handler) => handler(context, method, params),
                None => Box::pin(futures::future::ready(Err(RpcError::unimplemented(
                    &method,
                )))),
            },
            RequestKind::Notification => match self.routes.notifications.get(method.as_str()) {
                Some(handler) => {
                    let done = handler(context, method, params);
                    Box::pin(done.map(|()| Ok(Value::Nil)))
                }
                None => Box::pin(futures::future::ready(Err(RpcError::unimplemented(
                    &method,
                )))),
            },
        }
    }
}

/// Runs `work`, turning a panic into INTERNAL naming `method`.
async fn caught<Fut>(method: &str, work: Fut) -> Result<Value, RpcError>
where
    Fut: Future<Output = Result<Value, RpcError>>,
{
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(panic_error(Some(method), panic.as_ref())),
    }
}

/// INTERNAL for a handler that panicked, quoting the panic message when it is text.
pub(crate) fn panic_error(method: Option<&str>, panic: &(dyn std::any::Any + Send)) -> RpcError {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    tracing::error!(method, panic = text, "handler panicked");
    match method {
        Some(method) => RpcError::internal(format!(
            "the handler for method \"{method}\" panicked: {text}"
        )),
        None => RpcError::internal(format!("the handler panicked: {text}")),
    }
}

impl Service<RpcRequest> for Router {
    type Response = Value;
    type Error = RpcError;
    type Future = BoxFuture<'static, Result<Value, RpcError>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: RpcRequest) -> Self::Future {
        self.dispatch(request)
    }
}

/// The router after its middleware: what [`ServerBuilder::layer`](crate::ServerBuilder::layer)
/// layers wrap, and what they must produce (errors are mapped back to [`RpcError`] by
/// [`rpc_error_from_box`]).
pub type RpcService = BoxCloneSyncService<RpcRequest, Value, RpcError>;

type ApplyLayer = dyn Fn(RpcService) -> RpcService + Send + Sync;

/// Tower layers to wrap a router in, first added outermost (as in
/// `tower::ServiceBuilder`).
#[derive(Clone, Default)]
pub(crate) struct LayerStack {
    layers: Vec<Arc<ApplyLayer>>,
}

impl fmt::Debug for LayerStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayerStack({} layers)", self.layers.len())
    }
}

impl LayerStack {
    pub(crate) fn push<L>(&mut self, layer: L)
    where
        L: Layer<RpcService> + Send + Sync + 'static,
        L::Service: Service<RpcRequest, Response = Value> + Clone + Send + Sync + 'static,
        <L::Service as Service<RpcRequest>>::Error: Into<BoxError>,
        <L::Service as Service<RpcRequest>>::Future: Send + 'static,
    {
        self.layers.push(Arc::new(move |inner: RpcService| {
            let service =
                layer
                    .layer(inner)
                    .map_err(|e: <L::Service as Service<RpcRequest>>::Error| {
                        rpc_error_from_box(e.into())
                    });
            BoxCloneSyncService::new(service)
        }));
    }

    /// The router wrapped in the layers; the bare router if there are none.
    pub(crate) fn wrap(&self, router: Router) -> Dispatcher {
        if self.layers.is_empty() {
            return Dispatcher::Router(router);
        }
        let mut service = BoxCloneSyncService::new(router);
        for apply in self.layers.iter().rev() {
            service = apply(service);
        }
        Dispatcher::Service(service)
    }
}

/// What a connection hands its requests to: the router itself (the fast path), or the
/// router behind middleware.
#[derive(Clone)]
pub(crate) enum Dispatcher {
    Router(Router),
    Service(RpcService),
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dispatcher::Router(r) => r.fmt(f),
            Dispatcher::Service(_) => f.write_str("Dispatcher::Service(..)"),
        }
    }
}

impl Dispatcher {
    /// The future that answers `request`. Nothing runs until it is polled; poll it with
    /// [`poll_once`] and [`finish`], which catch panics.
    pub(crate) fn start(&self, request: RpcRequest) -> Result<PendingCall, RpcError> {
        let start = AssertUnwindSafe(|| match self {
            Dispatcher::Router(router) => router.dispatch(request),
            Dispatcher::Service(service) => Box::pin(service.clone().oneshot(request)),
        });
        std::panic::catch_unwind(start).map_err(|panic| panic_error(None, panic.as_ref()))
    }
}

/// A started request.
pub(crate) type PendingCall = BoxFuture<'static, Result<Value, RpcError>>;

/// Polls `call` once, right now, with a waker that does nothing: a handler that has its
/// answer at once (most do) is answered without a task of its own. If it is not ready,
/// the caller moves it into a task, whose first poll registers the real waker. A panic
/// becomes INTERNAL.
pub(crate) fn poll_once(call: &mut PendingCall) -> Poll<Result<Value, RpcError>> {
    let mut cx = TaskContext::from_waker(futures::task::noop_waker_ref());
    std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(&mut cx)))
        .unwrap_or_else(|panic| Poll::Ready(Err(panic_error(None, panic.as_ref()))))
}

/// Runs `call` to its end; a panic anywhere on the way (a middleware's too) becomes
/// INTERNAL.
pub(crate) async fn finish(call: PendingCall) -> Result<Value, RpcError> {
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(panic_error(None, panic.as_ref())),
    }
}
