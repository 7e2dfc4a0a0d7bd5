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
//!     // Params as they came, as MessagePack bytes (no tree, no conversion).
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
use futures::StreamExt;
use msgwire_wire::{RawValue, RpcError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower::Service;

use crate::error::panic_error;
use crate::params::{self, Shape};
use crate::stream::{StreamReceiver, StreamSender};
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
    params: RawValue,
    context: Context,
    kind: RequestKind,
}

impl RpcRequest {
    /// A call of `method` with `params` from the peer behind `context`.
    pub fn call(method: impl Into<String>, params: RawValue, context: Context) -> Self {
        Self {
            method: method.into(),
            params,
            context,
            kind: RequestKind::Call,
        }
    }

    /// A notification of `method` with `params` from the peer behind `context`.
    pub fn notification(method: impl Into<String>, params: RawValue, context: Context) -> Self {
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

    /// The params: an array (positional) or a map (named), as MessagePack bytes.
    pub fn params(&self) -> &RawValue {
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
    pub fn into_parts(self) -> (String, RawValue, Context) {
        (self.method, self.params, self.context)
    }
}

type CallHandler = dyn Fn(Context, String, RawValue) -> BoxFuture<'static, Result<RawValue, RpcError>>
    + Send
    + Sync;
type NotificationHandler =
    dyn Fn(Context, String, RawValue) -> BoxFuture<'static, ()> + Send + Sync;

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
    pub fn method_with_context<P, R, E, F, Fut>(self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        E: Into<RpcError> + 'static,
        F: Fn(Context, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.typed_method(name, handler, |method, result: &R| {
            RawValue::serialize(result).map_err(|e| {
                RpcError::internal(format!(
                    "the result of method \"{}\" cannot be encoded: {e}",
                    msgwire_wire::text::excerpt(method, 64)
                ))
            })
        })
    }

    /// Like [`method_with_context`](Self::method_with_context), with the result already
    /// MessagePack ([`RawValue`]), sent as it is: for a handler that has its answer as
    /// bytes (from a cache, say) and would otherwise decode and encode it again.
    pub fn method_with_raw_result<P, E, F, Fut>(self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        E: Into<RpcError> + 'static,
        F: Fn(Context, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<RawValue, E>> + Send + 'static,
    {
        self.typed_method(name, handler, |_, result: &RawValue| Ok(result.clone()))
    }

    /// A method whose params are decoded as `P` and whose `R` is made MessagePack by
    /// `encode`.
    fn typed_method<P, R, E, F, Fut>(
        mut self,
        name: &str,
        handler: F,
        encode: fn(&str, &R) -> Result<RawValue, RpcError>,
    ) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: 'static,
        E: Into<RpcError> + 'static,
        F: Fn(Context, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let shape = Arc::new(Shape::of::<P>());
        let handler = Arc::new(handler);
        let call: Arc<CallHandler> = Arc::new(move |ctx, method, params| {
            let handler = Arc::clone(&handler);
            let shape = Arc::clone(&shape);
            // Each step is guarded against panics on its own, and the handler's future
            // is made inside what awaits it (`caught`): a future held in a local and
            // then moved into a `catch_unwind` wrapper was stored twice in this one
            // (rustc keeps a moved-from local's room), which doubled the memory of
            // every running call — 5.2 KiB for an open `subscribeEvents` stream.
            Box::pin(async move {
                let p = guarded(&method, || params::decode::<P>(&method, &shape, &params))?;
                drop(params);
                let result = caught(&method, || (*handler)(ctx, p)).await?;
                guarded(&method, || encode(&method, &result))
            })
        });
        self.routes().calls.insert(name.into(), call);
        self
    }

    /// Registers a method that takes the params and returns the result as MessagePack
    /// bytes ([`RawValue`]), with no serde conversion and no tree: the params are a
    /// slice of the frame they arrived in. For handlers that pass values through
    /// (`echo`, a proxy) or read them with [`RawValue::array_items`] and
    /// [`RawValue::get`].
    pub fn method_raw<F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        F: Fn(Context, RawValue) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<RawValue, RpcError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let call: Arc<CallHandler> = Arc::new(move |ctx, method, params| {
            let handler = Arc::clone(&handler);
            Box::pin(async move { caught(&method, || (*handler)(ctx, params)).await })
        });
        self.routes().calls.insert(name.into(), call);
        self
    }

    /// Registers a server-stream method: `handler` returns a [`Stream`] whose `Ok`
    /// items go to the caller as they come (each waiting for the caller's credit), and
    /// whose end ends the call with a `nil` result. An `Err` item is the terminal
    /// error: the call ends with it. (For per-item errors, after which the stream goes
    /// on, use [`server_stream_with`](Self::server_stream_with) and
    /// [`StreamSender::send_error`].) If the caller cancels or goes away, the stream is
    /// dropped.
    ///
    /// [`Stream`]: futures::Stream
    pub fn server_stream<P, T, S, F>(self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        T: Serialize + Send + 'static,
        S: futures::Stream<Item = Result<T, RpcError>> + Send + 'static,
        F: Fn(Context, P) -> S + Send + Sync + 'static,
    {
        self.server_stream_with(name, move |ctx: Context, p: P, mut out: StreamSender<T>| {
            let items = handler(ctx, p);
            async move {
                let mut items = std::pin::pin!(items);
                while let Some(item) = items.next().await {
                    out.send(&item?).await?;
                }
                Ok::<(), RpcError>(())
            }
        })
    }

    /// Registers a server-stream method whose handler sends its items itself, on a
    /// [`StreamSender`] (items with [`send`](StreamSender::send), per-item errors with
    /// [`send_error`](StreamSender::send_error)), and whose return value is the call's
    /// final result or terminal error.
    pub fn server_stream_with<P, T, R, E, F, Fut>(self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        T: Serialize + Send + 'static,
        R: Serialize + 'static,
        E: Into<RpcError> + 'static,
        F: Fn(Context, P, StreamSender<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.method_with_context(name, move |ctx: Context, p: P| {
            let work = ctx.output::<T>().map(|out| handler(ctx, p, out));
            stream_work(work)
        })
    }

    /// Registers a client-stream method: `handler` gets the params and a
    /// [`StreamReceiver`] of the caller's items (`None` after `$/send_end`), and its
    /// return value is the call's result (returning early, with an error typically,
    /// ends the call and the caller stops sending).
    pub fn client_stream<P, In, R, E, F, Fut>(self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        In: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        E: Into<RpcError> + 'static,
        F: Fn(Context, P, StreamReceiver<In>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.method_with_context(name, move |ctx: Context, p: P| {
            let work = ctx.input::<In>().map(|input| handler(ctx, p, input));
            stream_work(work)
        })
    }

    /// Registers a bidirectional method: `handler` gets the caller's items and a
    /// sender for its own, which flow independently; its return value ends the call.
    pub fn bidi_stream<P, In, Out, R, E, F, Fut>(self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        In: DeserializeOwned + Send + 'static,
        Out: Serialize + Send + 'static,
        R: Serialize + 'static,
        E: Into<RpcError> + 'static,
        F: Fn(Context, P, StreamReceiver<In>, StreamSender<Out>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.method_with_context(name, move |ctx: Context, p: P| {
            let streams = ctx.input::<In>().zip(ctx.output::<Out>());
            let work = streams.map(|(input, output)| handler(ctx, p, input, output));
            stream_work(work)
        })
    }

    /// Registers a typed notification handler. Params that do not fit `P` are dropped,
    /// logged at debug level (a notification has no response to carry an error, and a
    /// peer must not be able to fill the log).
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
                match params::decode::<P>(&method, &shape, &params) {
                    Ok(p) => {
                        drop(params);
                        // A panic is logged (once, rate-free: it is this end's bug) by
                        // `caught`; nothing else can fail here.
                        let run = || (*handler)(ctx, p).map(Ok::<(), RpcError>);
                        let _ = caught(&method, run).await;
                    }
                    // The peer's params do not fit: a notification has no answer to
                    // carry the error, and a peer must not be able to flood the log.
                    Err(error) => tracing::debug!(%error, "dropped a notification"),
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

    /// Whether a notification of `method` has a handler.
    pub fn has_notification(&self, method: &str) -> bool {
        self.routes.notifications.contains_key(method)
    }

    /// Runs the handler for `request`. A notification resolves to `Ok(nil)` once its
    /// handler is done, or to UNIMPLEMENTED if it has none.
    pub fn dispatch(&self, request: RpcRequest) -> BoxFuture<'static, Result<RawValue, RpcError>> {
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
                    Box::pin(done.map(|()| Ok(RawValue::nil())))
                }
                None => Box::pin(futures::future::ready(Err(RpcError::unimplemented(
                    &method,
                )))),
            },
        }
    }
}

/// The handler's work, or INVALID_ARGUMENT for a stream method called as a
/// notification (it has no id for its items to name).
/// What [`stream_work`] returns.
type StreamWork<Fut, R, E> =
    futures::future::Either<futures::future::MapErr<Fut, fn(E) -> RpcError>, Notified<R>>;

/// A stream handler's future, or (without one: the method was notified, so there is no
/// stream) INVALID_ARGUMENT. A combinator rather than an `async` block, which would hold
/// the handler's future twice (in `work` and in what it awaits).
fn stream_work<Fut, R, E>(work: Option<Fut>) -> StreamWork<Fut, R, E>
where
    Fut: futures::TryFuture<Ok = R, Error = E>,
    E: Into<RpcError>,
{
    use futures::TryFutureExt;
    match work {
        Some(work) => futures::future::Either::Left(work.map_err(Into::into as fn(E) -> RpcError)),
        None => futures::future::Either::Right(Notified(std::marker::PhantomData)),
    }
}

/// A stream method that was notified: INVALID_ARGUMENT at once. (Holds no `R`, so it
/// is `Send` whatever the result type.)
struct Notified<R>(std::marker::PhantomData<fn() -> R>);

impl<R> Future for Notified<R> {
    type Output = Result<R, RpcError>;

    fn poll(self: std::pin::Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Poll::Ready(Err(RpcError::invalid_argument(
            "a stream method must be called as a request, not notified",
        )))
    }
}

/// Runs `work` (a step of a call that does not wait), turning a panic into INTERNAL
/// naming `method`.
fn guarded<T>(method: &str, work: impl FnOnce() -> Result<T, RpcError>) -> Result<T, RpcError> {
    match std::panic::catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(panic) => Err(panic_error(Some(method), panic.as_ref())),
    }
}

/// Runs `work`, turning a panic into INTERNAL naming `method`.
///
/// The future is made by `make` when first polled (a panic while making it is caught
/// too), inside the combinator that runs it: an `async fn` taking the future would
/// store it twice (its parameter's room is kept beside the wrapper's).
fn caught<'a, T, E, Fut>(
    method: &'a str,
    make: impl FnOnce() -> Fut + 'a,
) -> impl Future<Output = Result<T, RpcError>> + 'a
where
    Fut: Future<Output = Result<T, E>> + 'a,
    E: Into<RpcError>,
{
    AssertUnwindSafe(futures::future::lazy(move |_| make()).flatten())
        .catch_unwind()
        .map(move |outcome| match outcome {
            Ok(result) => result.map_err(Into::into),
            Err(panic) => Err(panic_error(Some(method), panic.as_ref())),
        })
}

impl Service<RpcRequest> for Router {
    type Response = RawValue;
    type Error = RpcError;
    type Future = BoxFuture<'static, Result<RawValue, RpcError>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: RpcRequest) -> Self::Future {
        self.dispatch(request)
    }
}
