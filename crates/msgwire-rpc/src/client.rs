//! The calling side of a connection: [`Client`], [`ClientBuilder`], [`CallOptions`].
//!
//! A `Client` is a handle to one connection. Clones share it, and any number of tasks
//! can call through it at once: each call gets its id from the connection's session,
//! waits on its own oneshot channel, and the connection's single writer batches the
//! requests of all of them. A deadline is kept by the session, which fails the call and
//! sends the peer `"$/cancel"` when it passes.
//!
//! ```no_run
//! use std::time::Duration;
//! use msgwire_rpc::{CallError, CallOptions, Client, Dialect, Value};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect_tcp("127.0.0.1:7420", Dialect::MsgpackRpc).await?;
//! let three = client.call("add", vec![Value::from(1), Value::from(2)]).await?;
//! let sum: i64 = client.call_typed("add", &(1, 2)).await?;
//! match client
//!     .call_with("slow", Vec::<Value>::new(), CallOptions::timeout(Duration::from_millis(50)))
//!     .await
//! {
//!     Err(CallError::DeadlineExceeded) => { /* the server was told to cancel it */ }
//!     other => println!("{other:?}"),
//! }
//! client.notify("log", vec![Value::from("done")]).await?;
//! # let _ = (three, sum);
//! # Ok(())
//! # }
//! ```
//!
//! The connection closes when the last `Client` clone made by [`Client::new`],
//! [`Client::connect_tcp`] or a [`ClientBuilder`](crate::ClientBuilder) is dropped, or
//! on [`Client::close`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgwire_wire::{Dialect, RawValue};
use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::connection::{self, Connection};
use crate::error::CallError;
use crate::session::StreamKey;
use crate::stream::{StreamReceiver, StreamSender};

/// Per-call options: a deadline.
///
/// ```
/// use std::time::Duration;
/// use msgwire_rpc::CallOptions;
///
/// let options = CallOptions::timeout(Duration::from_secs(2));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    deadline: Option<Instant>,
}

impl CallOptions {
    /// No deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The call fails with [`CallError::DeadlineExceeded`] if its answer has not arrived
    /// `timeout` after it starts.
    pub fn timeout(timeout: Duration) -> Self {
        Self::new().with_timeout(timeout)
    }

    /// The call fails with [`CallError::DeadlineExceeded`] if its answer has not arrived
    /// by `deadline`.
    pub fn deadline(deadline: Instant) -> Self {
        Self::new().with_deadline(deadline)
    }

    /// Sets the timeout; with a deadline too, the earlier of the two applies.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the deadline; with a timeout too, the earlier of the two applies.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The deadline of a call that starts now.
    fn deadline_from_now(&self) -> Option<Instant> {
        let from_timeout = self.timeout.and_then(|t| connection::now().checked_add(t));
        let from_deadline = self.deadline;
        match (from_timeout, from_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Closes the connection when the last user-held [`Client`] goes.
#[derive(Debug)]
struct Owner(Connection);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A handle to one connection: call and notify the peer, from any number of tasks.
///
/// Cheap to clone. See the [module docs](self) for an example.
#[derive(Clone)]
pub struct Client {
    conn: Connection,
    /// `None` for the handles a connection gives its own handlers (a [`crate::Context`]):
    /// they do not keep the connection open.
    _owner: Option<Arc<Owner>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("dialect", &self.conn.dialect())
            .field("closed", &self.conn.is_closed())
            .finish()
    }
}

impl Client {
    /// A handle that keeps the connection open while it or a clone lives.
    pub(crate) fn owning(conn: Connection) -> Client {
        Client {
            _owner: Some(Arc::new(Owner(conn.clone()))),
            conn,
        }
    }

    /// A handle that does not keep the connection open.
    pub(crate) fn handle(conn: Connection) -> Client {
        Client { conn, _owner: None }
    }

    /// The connection this handle is for.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The dialect this connection speaks.
    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    /// Whether the connection is closed: every call now fails at once.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Waits until the connection is closed and what was queued before has been
    /// written to the socket (or dropped after the linger time, if the peer stopped
    /// reading). After `close()`, awaiting this makes sure a cancel notification or a
    /// last notification really left before the program exits.
    pub async fn closed(&self) {
        self.conn.closed().await;
    }

    /// Closes the connection: calls still waiting fail with [`CallError::Closed`], and
    /// what is already queued is still sent (await [`closed`](Self::closed) to know
    /// when).
    pub fn close(&self) {
        self.conn.close();
    }

    /// Calls `method` with `params` (an array for positional params, a map for named
    /// ones) and waits for the answer, with no deadline.
    pub async fn call(
        &self,
        method: impl Into<String>,
        params: impl Into<Value>,
    ) -> Result<Value, CallError> {
        self.call_with(method, params, CallOptions::new()).await
    }

    /// Like [`call`](Self::call), with [`CallOptions`]. When the deadline passes first the
    /// call fails with [`CallError::DeadlineExceeded`] and the peer is sent the cancel
    /// notification (`"$/cancel"`, `[id]`) so it can stop working on it.
    pub async fn call_with(
        &self,
        method: impl Into<String>,
        params: impl Into<Value>,
        options: CallOptions,
    ) -> Result<Value, CallError> {
        let params = RawValue::from(params.into());
        let result = self.call_raw(method, params, options).await?;
        result.to_value().map_err(|e| {
            CallError::Decode(Arc::new(rmp_serde::decode::Error::Syntax(e.to_string())))
        })
    }

    /// Calls `method` with params and result as MessagePack bytes: no tree is built
    /// either way.
    pub async fn call_raw(
        &self,
        method: impl Into<String>,
        params: RawValue,
        options: CallOptions,
    ) -> Result<RawValue, CallError> {
        self.conn
            .call(method.into(), params, options.deadline_from_now())
            .await
    }

    /// Calls `method` with serde types: `params` is encoded with serde (a tuple becomes
    /// positional params, a struct named ones) and the result is decoded as `R`.
    pub async fn call_typed<P, R>(
        &self,
        method: impl Into<String>,
        params: &P,
    ) -> Result<R, CallError>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.call_typed_with(method, params, CallOptions::new())
            .await
    }

    /// [`call_typed`](Self::call_typed) with [`CallOptions`].
    pub async fn call_typed_with<P, R>(
        &self,
        method: impl Into<String>,
        params: &P,
        options: CallOptions,
    ) -> Result<R, CallError>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let params = RawValue::serialize(params).map_err(CallError::Encode)?;
        let result = self.call_raw(method, params, options).await?;
        result
            .deserialize()
            .map_err(|e| CallError::Decode(Arc::new(e)))
    }

    /// Sends a notification: no answer, no id. Returns once it is queued for the writer.
    pub async fn notify(
        &self,
        method: impl Into<String>,
        params: impl Into<Value>,
    ) -> Result<(), CallError> {
        self.notify_raw(method, RawValue::from(params.into())).await
    }

    /// [`notify`](Self::notify) with params as MessagePack bytes.
    pub async fn notify_raw(
        &self,
        method: impl Into<String>,
        params: RawValue,
    ) -> Result<(), CallError> {
        self.conn.notify(method.into(), params).await
    }

    /// [`notify`](Self::notify) with serde-encoded params.
    pub async fn notify_typed<P>(
        &self,
        method: impl Into<String>,
        params: &P,
    ) -> Result<(), CallError>
    where
        P: Serialize + ?Sized,
    {
        let params = RawValue::serialize(params).map_err(CallError::Encode)?;
        self.notify_raw(method, params).await
    }

    // ---- streams ------------------------------------------------------------------

    /// Opens a stream call with params and items as MessagePack bytes: a sender for
    /// the call's input (drop or [`finish`](StreamSender::finish) it when there is
    /// none) and a receiver for its output, ending with the final result. The options'
    /// deadline covers the whole stream.
    pub async fn open_stream_raw(
        &self,
        method: impl Into<String>,
        params: RawValue,
        options: CallOptions,
    ) -> Result<(StreamSender<RawValue>, StreamReceiver<RawValue>), CallError> {
        let (tx, rx) = self.open(method.into(), params, options).await?;
        Ok((tx, rx))
    }

    /// Opens a stream call with serde types: `In` items go to the peer, `Out` items
    /// come back (see [`crate::stream`]).
    pub async fn open_stream<P, In, Out>(
        &self,
        method: impl Into<String>,
        params: &P,
        options: CallOptions,
    ) -> Result<(StreamSender<In>, StreamReceiver<Out>), CallError>
    where
        P: Serialize + ?Sized,
        In: Serialize,
        Out: DeserializeOwned,
    {
        let params = RawValue::serialize(params).map_err(CallError::Encode)?;
        self.open(method.into(), params, options).await
    }

    async fn open<In, Out>(
        &self,
        method: String,
        params: RawValue,
        options: CallOptions,
    ) -> Result<(StreamSender<In>, StreamReceiver<Out>), CallError> {
        let id = self
            .conn
            .open_stream(method, params, options.deadline_from_now())
            .await?;
        let key = StreamKey::Mine(id);
        Ok((
            StreamSender::new(self.clone(), key.clone()),
            StreamReceiver::new(self.clone(), key),
        ))
    }

    /// Calls a server-stream method: the items of its output, then its end. Dropping
    /// the receiver before the end cancels the call.
    pub async fn server_stream<P, T>(
        &self,
        method: impl Into<String>,
        params: &P,
    ) -> Result<StreamReceiver<T>, CallError>
    where
        P: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let (input, output) = self
            .open_stream::<P, (), T>(method, params, CallOptions::new())
            .await?;
        input.finish()?;
        Ok(output)
    }

    /// Calls a client-stream method: sends every item of `input` as the peer's credit
    /// allows, ends the input, and returns the call's result. If the peer answers
    /// before the input is all sent (an error, typically), the rest is not sent and
    /// that answer is returned.
    pub async fn client_stream<P, In, R, S>(
        &self,
        method: impl Into<String>,
        params: &P,
        input: S,
    ) -> Result<R, CallError>
    where
        P: Serialize + ?Sized,
        In: Serialize,
        R: DeserializeOwned,
        S: futures::Stream<Item = In>,
    {
        use futures::StreamExt;
        let params = RawValue::serialize(params).map_err(CallError::Encode)?;
        let (mut tx, rx): (StreamSender<In>, StreamReceiver<RawValue>) =
            self.open(method.into(), params, CallOptions::new()).await?;
        let pump = async move {
            let mut input = std::pin::pin!(input);
            while let Some(item) = input.next().await {
                if tx.send(&item).await.is_err() {
                    return;
                }
            }
            let _ = tx.finish();
        };
        let answer = rx.finish();
        tokio::pin!(pump, answer);
        let result = tokio::select! {
            result = &mut answer => result,
            () = &mut pump => answer.await,
        }?;
        result
            .deserialize()
            .map_err(|e| CallError::Decode(Arc::new(e)))
    }
}
