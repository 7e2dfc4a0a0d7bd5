//! The two ends of a stream: [`StreamReceiver`] takes items, [`StreamSender`] sends
//! them, with credit-based flow control underneath (docs/PROTOCOL.md, section 10).
//!
//! The same two types serve both sides of a call: a client's
//! [`Client::open_stream`](crate::Client::open_stream) gives a sender for the call's
//! input and a receiver for its output; a handler registered with
//! [`Router::bidi_stream`](crate::Router::bidi_stream) gets a receiver for the input and
//! a sender for the output.
//!
//! * **Errors.** A receiver yields `Err` for a per-item error
//!   ([`CallError::is_item_error`]), after which the stream goes on, and for the
//!   terminal error that ends it (the peer's error, a cancel, the connection gone),
//!   after which it yields `None`. On a client, a stream that ended normally has its
//!   final result in [`StreamReceiver::result`].
//! * **Flow control.** A sender waits while the peer has granted no credit (a window of
//!   64 items and 1 MiB to start with) or the connection's write queue is full, so a
//!   slow reader holds up its own stream and nothing else; the receiver gives credit
//!   back as items are taken from it. Nothing in between grows without bound.
//! * **Dropping.** Dropping a client's receiver before the end cancels the call
//!   (`$/cancel`); dropping a sender ends the input (`$/send_end`). A handler's streams
//!   go when the call is over, cancelled, or its connection closes — and the handler's
//!   future is dropped then too.
//!
//! ```
//! use futures::StreamExt;
//! use msgwire_rpc::{Client, Dialect, Router, RpcError, Server};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let router = Router::new().server_stream("count", |_ctx, (n,): (u32,)| {
//!     futures::stream::iter((0..n).map(Ok::<_, RpcError>))
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = Server::builder().build(router)?;
//! tokio::spawn(std::future::IntoFuture::into_future(server.serve_tcp(listener)));
//!
//! let client = Client::connect_tcp(addr, Dialect::MsgpackRpc).await?;
//! let items: Vec<u32> = client
//!     .server_stream::<_, u32>("count", &(3,))
//!     .await?
//!     .map(|item| item.unwrap_or(u32::MAX))
//!     .collect()
//!     .await;
//! assert_eq!(items, [0, 1, 2]);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::{Sink, Stream};
use msgwire_wire::{RawValue, RpcError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::connection::Connection;
use crate::error::CallError;
use crate::session::{Input, Output, Session, StreamKey};
use crate::Client;

/// The receiving end of a stream: items from the peer. A [`Stream`] of
/// `Result<T, CallError>` (see the [module docs](self) for what `Err` means).
pub struct StreamReceiver<T> {
    /// Keeps a client's connection open while the stream is read.
    client: Client,
    key: StreamKey,
    done: bool,
    result: Option<RawValue>,
    _item: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for StreamReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReceiver")
            .field("key", &self.key)
            .field("done", &self.done)
            .finish()
    }
}

impl<T> StreamReceiver<T> {
    pub(crate) fn new(client: Client, key: StreamKey) -> Self {
        Self {
            client,
            key,
            done: false,
            result: None,
            _item: PhantomData,
        }
    }

    fn conn(&self) -> &Connection {
        self.client.connection()
    }

    /// The next item as MessagePack bytes, without decoding it.
    pub fn poll_next_raw(
        &mut self,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<RawValue, CallError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let input = match self.conn().poll_recv(&self.key, cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(input) => input,
        };
        Poll::Ready(match input {
            Some(Input::Item(value)) => Some(Ok(value)),
            Some(Input::ItemError(error)) => Some(Err(CallError::Item(error))),
            Some(Input::End(Ok(result))) => {
                self.done = true;
                self.result = Some(result);
                None
            }
            Some(Input::End(Err(error))) => {
                self.done = true;
                Some(Err(error))
            }
            None => {
                self.done = true;
                None
            }
        })
    }

    /// The next item as MessagePack bytes.
    pub async fn next_raw(&mut self) -> Option<Result<RawValue, CallError>> {
        poll_fn(|cx| self.poll_next_raw(cx)).await
    }

    /// Whether the stream has ended (normally or not).
    pub fn is_finished(&self) -> bool {
        self.done
    }

    /// On a client, once the stream has ended normally: the call's final result (`nil`
    /// for a handler that returned nothing).
    pub fn result(&self) -> Option<&RawValue> {
        self.result.as_ref()
    }

    /// [`result`](Self::result) decoded as `R`.
    pub fn result_typed<R: DeserializeOwned>(&self) -> Option<Result<R, CallError>> {
        let result = self.result.as_ref()?;
        Some(
            result
                .deserialize()
                .map_err(|e| CallError::Decode(Arc::new(e))),
        )
    }

    /// Reads to the end, dropping items, and returns the final result (or the terminal
    /// error).
    pub async fn finish(mut self) -> Result<RawValue, CallError> {
        while let Some(item) = self.next_raw().await {
            if let Err(error) = item {
                if !error.is_item_error() {
                    return Err(error);
                }
            }
        }
        Ok(self.result.take().unwrap_or_else(RawValue::nil))
    }

    /// Stops reading: on a client the call is cancelled (the peer is sent `$/cancel`
    /// and drops its handler). The same as dropping the receiver.
    pub fn cancel(self) {}
}

impl<T> Drop for StreamReceiver<T> {
    fn drop(&mut self) {
        if !self.done {
            self.conn().drop_recv(&self.key);
        }
    }
}

impl<T: DeserializeOwned> Stream for StreamReceiver<T> {
    type Item = Result<T, CallError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.poll_next_raw(cx).map(|item| {
            item.map(|item| {
                item.and_then(|raw| {
                    raw.deserialize().map_err(|e| {
                        CallError::Item(RpcError::invalid_argument(format!(
                            "a stream item does not have the expected type: {e}"
                        )))
                    })
                })
            })
        })
    }
}

impl<T> Unpin for StreamReceiver<T> {}

/// The sending end of a stream: items to the peer, sent as the peer's credit allows.
/// Also a [`Sink`] of `T`.
pub struct StreamSender<T> {
    client: Client,
    key: StreamKey,
    closed: bool,
    _item: PhantomData<fn(T)>,
}

impl<T> fmt::Debug for StreamSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSender")
            .field("key", &self.key)
            .field("closed", &self.closed)
            .finish()
    }
}

impl<T> StreamSender<T> {
    pub(crate) fn new(client: Client, key: StreamKey) -> Self {
        Self {
            client,
            key,
            closed: false,
            _item: PhantomData,
        }
    }

    fn conn(&self) -> &Connection {
        self.client.connection()
    }

    /// `Ready(Ok)` once an item may be sent: the peer has granted credit and the write
    /// queue has room. An error once the stream is over.
    pub fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), CallError>> {
        if self.closed {
            return Poll::Ready(Err(CallError::StreamEnded));
        }
        self.conn().poll_send_ready(&self.key, cx)
    }

    /// Waits until an item may be sent.
    pub async fn ready(&mut self) -> Result<(), CallError> {
        poll_fn(|cx| self.poll_ready(cx)).await
    }

    fn output(&mut self, output: Output) -> Result<(), CallError> {
        if self.closed {
            return Err(CallError::StreamEnded);
        }
        self.conn().send_output(&self.key, output)
    }

    /// Sends an item already encoded as MessagePack, once there is credit.
    pub async fn send_raw(&mut self, value: RawValue) -> Result<(), CallError> {
        self.ready().await?;
        let id = self.conn().stream_id(&self.key);
        let params = msgwire_wire::stream::item_params(&id, value.as_bytes());
        self.output(Output::Item(params, value.len()))
    }

    /// Sends a per-item error (the stream goes on), once there is credit.
    pub async fn send_error(&mut self, error: RpcError) -> Result<(), CallError> {
        self.ready().await?;
        self.output(Output::ItemError(error))
    }

    /// Ends the stream from this side: a client's input is complete (`$/send_end`); a
    /// handler's output takes no more items (its return value ends the call).
    pub fn finish(mut self) -> Result<(), CallError> {
        self.end()
    }

    fn end(&mut self) -> Result<(), CallError> {
        if self.closed {
            return Ok(());
        }
        let ended = self.conn().send_output(&self.key, Output::End);
        self.closed = true;
        ended
    }
}

impl<T: Serialize> StreamSender<T> {
    /// Sends an item, once there is credit. The item is encoded at once (the future
    /// does not hold on to it).
    pub fn send(
        &mut self,
        item: &T,
    ) -> impl std::future::Future<Output = Result<(), CallError>> + Send + '_ {
        let output = Session::item_params(&self.key, item);
        async move {
            let output = output?;
            self.ready().await?;
            self.output(output)
        }
    }
}

impl<T> Drop for StreamSender<T> {
    fn drop(&mut self) {
        let _ = self.end();
    }
}

impl<T> Unpin for StreamSender<T> {}

impl<T: Serialize> Sink<T> for StreamSender<T> {
    type Error = CallError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<(), CallError>> {
        StreamSender::poll_ready(self.get_mut(), cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), CallError> {
        let this = self.get_mut();
        let output = Session::item_params(&this.key, &item)?;
        this.output(output)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Result<(), CallError>> {
        // Sent items are queued for the connection's writer, which writes them in order.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Result<(), CallError>> {
        Poll::Ready(self.get_mut().end())
    }
}
