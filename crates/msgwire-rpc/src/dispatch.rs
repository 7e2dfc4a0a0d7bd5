//! From a request to the future that answers it: the router, or the router behind
//! tower middleware. [`Dispatcher`] is what a connection hands the peer's calls to.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use msgwire_wire::{RawValue, RpcError};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use crate::connection::{Connection, Handler, PendingCall};
use crate::error::{panic_error, rpc_error_from_box, BoxError};
use crate::router::{Router, RpcRequest};
use crate::session::IncomingCall;
use crate::{Client, Context};

/// The router after its middleware: what [`ServerBuilder::layer`](crate::ServerBuilder::layer)
/// layers wrap, and what they must produce (errors are mapped back to [`RpcError`] by
/// [`rpc_error_from_box`]).
pub type RpcService = BoxCloneSyncService<RpcRequest, RawValue, RpcError>;

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
        L::Service: Service<RpcRequest, Response = RawValue> + Clone + Send + Sync + 'static,
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
    /// Whether a notification of `method` might have a handler (behind middleware it
    /// cannot be told, so yes).
    pub(crate) fn may_handle_notification(&self, method: &str) -> bool {
        match self {
            Dispatcher::Router(router) => router.has_notification(method),
            Dispatcher::Service(_) => true,
        }
    }

    /// The future that answers `request`. Nothing runs until it is polled (the
    /// connection polls it catching panics); a panic while it is made is INTERNAL.
    pub(crate) fn start(&self, request: RpcRequest) -> Result<PendingCall, RpcError> {
        let start = AssertUnwindSafe(|| match self {
            Dispatcher::Router(router) => router.dispatch(request),
            Dispatcher::Service(service) => Box::pin(service.clone().oneshot(request)),
        });
        std::panic::catch_unwind(start).map_err(|panic| panic_error(None, panic.as_ref()))
    }
}

impl Handler for Dispatcher {
    fn call(
        &self,
        peer: &Connection,
        call: &IncomingCall,
        method: String,
        params: RawValue,
    ) -> Result<PendingCall, RpcError> {
        let context = Context::new(Client::handle(peer.clone()), Some(call.clone()));
        self.start(RpcRequest::call(method, params, context))
    }

    fn notification(
        &self,
        peer: &Connection,
        method: String,
        params: RawValue,
    ) -> Option<Result<PendingCall, RpcError>> {
        if !self.may_handle_notification(&method) {
            return None;
        }
        let context = Context::new(Client::handle(peer.clone()), None);
        Some(self.start(RpcRequest::notification(method, params, context)))
    }
}
