//! A few multiplexed RPC connections to one place, made when first needed and made
//! again when they close.
//!
//! A [`Pool`] holds `size` slots. A caller takes the next slot in turn; a slot whose
//! connection is open hands out a clone of its [`Client`] (calls on one connection are
//! multiplexed, so nothing waits for a slot to be free); a slot with none, or with a
//! closed one, connects first — one connect per slot at a time, bounded by the connect
//! timeout, so a dead upstream costs a caller at most that long and never a hang.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use msgwire_rpc::Client;
use tokio::sync::Mutex;

/// How a pool makes a connection.
pub type Connect = Arc<dyn Fn() -> BoxFuture<'static, io::Result<Client>> + Send + Sync>;

/// Connections to one place; see the [module docs](self).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    connect: Connect,
    connect_timeout: Duration,
    slots: Vec<Mutex<Option<Client>>>,
    next: AtomicUsize,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.inner.name)
            .field("size", &self.inner.slots.len())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool named `name` (for errors and health) of `size` connections (at least one)
    /// made by `connect`, each attempt given `connect_timeout`.
    pub fn new(
        name: impl Into<String>,
        size: usize,
        connect_timeout: Duration,
        connect: Connect,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                connect,
                connect_timeout,
                slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
                next: AtomicUsize::new(0),
            }),
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// An open connection: the next slot's, connected now if it has none.
    pub async fn client(&self) -> io::Result<Client> {
        let slots = &self.inner.slots;
        let index = self.inner.next.fetch_add(1, Ordering::Relaxed) % slots.len();
        let mut slot = slots[index].lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        *slot = None;
        let client = tokio::time::timeout(self.inner.connect_timeout, (self.inner.connect)())
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no connection within {} ms",
                        self.inner.connect_timeout.as_millis()
                    ),
                )
            })??;
        *slot = Some(client.clone());
        Ok(client)
    }
}
