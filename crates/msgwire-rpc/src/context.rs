//! What a handler knows about the request it answers, and its way back to the peer.

use std::sync::Arc;

use msgwire_wire::{CallId, Dialect};
use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::connection::Shared;
use crate::{CallError, CallOptions, Client};

/// Handed to handlers registered with
/// [`Router::method_with_context`](crate::Router::method_with_context) (and to every
/// [`RpcRequest`](crate::RpcRequest)): the id of the call being answered and a handle to
/// the peer on the same connection, so a server can call its client back (as Neovim
/// calls its plugin hosts).
///
/// ```
/// use msgwire_rpc::{Context, Router, RpcError, Value};
///
/// let router = Router::new().method_with_context("double_via_client", |ctx: Context, n: i64| async move {
///     // Ask the client, on the connection this call came in on.
///     let doubled: i64 = ctx.call_typed("double", &(n,)).await?;
///     Ok::<_, RpcError>(doubled)
/// });
/// # let _ = router;
/// ```
#[derive(Debug, Clone)]
pub struct Context {
    peer: Client,
    request_id: Option<CallId>,
}

impl Context {
    pub(crate) fn new(peer: Client, request_id: Option<CallId>) -> Self {
        Self { peer, request_id }
    }

    /// A context that belongs to no connection, for driving a [`Router`](crate::Router)
    /// directly (in tests, with `tower::ServiceExt::oneshot`). Calls through it fail with
    /// [`CallError::Closed`].
    pub fn detached() -> Self {
        let shared = Arc::new(Shared::detached(Dialect::MsgpackRpc));
        Self::new(Client::from_shared(shared), None)
    }

    /// The peer on the same connection. The handle does not keep the connection open.
    pub fn peer(&self) -> &Client {
        &self.peer
    }

    /// The id of the call being answered; `None` for a notification.
    pub fn request_id(&self) -> Option<CallId> {
        self.request_id
    }

    /// The connection's dialect.
    pub fn dialect(&self) -> Dialect {
        self.peer.dialect()
    }

    /// Calls the peer: [`Client::call`].
    pub async fn call(
        &self,
        method: impl Into<String>,
        params: impl Into<Value>,
    ) -> Result<Value, CallError> {
        self.peer.call(method, params).await
    }

    /// Calls the peer with options: [`Client::call_with`].
    pub async fn call_with(
        &self,
        method: impl Into<String>,
        params: impl Into<Value>,
        options: CallOptions,
    ) -> Result<Value, CallError> {
        self.peer.call_with(method, params, options).await
    }

    /// Calls the peer with serde types: [`Client::call_typed`].
    pub async fn call_typed<P, R>(
        &self,
        method: impl Into<String>,
        params: &P,
    ) -> Result<R, CallError>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.peer.call_typed(method, params).await
    }

    /// Notifies the peer: [`Client::notify`].
    pub async fn notify(
        &self,
        method: impl Into<String>,
        params: impl Into<Value>,
    ) -> Result<(), CallError> {
        self.peer.notify(method, params).await
    }
}
