//! What a handler knows about the request it answers, and its way back to the peer.

use std::ops::Deref;

use msgwire_wire::CallId;

use crate::connection::Connection;
use crate::session::{IncomingCall, StreamKey};
use crate::stream::{StreamReceiver, StreamSender};
use crate::Client;

/// Handed to handlers registered with
/// [`Router::method_with_context`](crate::Router::method_with_context) (and to every
/// [`RpcRequest`](crate::RpcRequest)): the id of the call being answered and a handle to
/// the peer on the same connection, so a server can call its client back (as Neovim
/// calls its plugin hosts). It derefs to that [`Client`]: `ctx.call(…)`,
/// `ctx.notify(…)` and every other call go to the peer.
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
    call: Option<IncomingCall>,
}

impl Context {
    pub(crate) fn new(peer: Client, call: Option<IncomingCall>) -> Self {
        Self { peer, call }
    }

    /// A context that belongs to no connection, for driving a [`Router`](crate::Router)
    /// directly (in tests, with `tower::ServiceExt::oneshot`). Calls through it fail with
    /// [`CallError::Closed`](crate::CallError::Closed).
    pub fn detached() -> Self {
        Self::new(Client::handle(Connection::detached()), None)
    }

    /// The peer on the same connection. The handle does not keep the connection open.
    pub fn peer(&self) -> &Client {
        &self.peer
    }

    /// The id of the call being answered, exactly as the peer sent it; `None` for a
    /// notification.
    pub fn request_id(&self) -> Option<&CallId> {
        self.call.as_ref().map(IncomingCall::id)
    }

    /// The call's stream key, for a call (not a notification).
    fn stream_key(&self) -> Option<StreamKey> {
        self.call.clone().map(StreamKey::Theirs)
    }

    /// The call's input stream: the items the peer sends with `$/send` (see
    /// [`crate::stream`]). `None` for a notification. The stream routers build for
    /// [`Router::client_stream`](crate::Router::client_stream) and
    /// [`Router::bidi_stream`](crate::Router::bidi_stream) handlers is this one.
    pub fn input<T>(&self) -> Option<StreamReceiver<T>> {
        Some(StreamReceiver::new(self.peer.clone(), self.stream_key()?))
    }

    /// The call's output stream: items sent to the peer as `$/item`, before the
    /// handler's result. `None` for a notification.
    pub fn output<T>(&self) -> Option<StreamSender<T>> {
        Some(StreamSender::new(self.peer.clone(), self.stream_key()?))
    }
}

impl Deref for Context {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.peer
    }
}
