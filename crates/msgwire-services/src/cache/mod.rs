//! cache: MessagePack values under namespaced keys, each kept for a time to live — the
//! narrow interface the services read through, and [`MemoryCache`], its in-process
//! default.
//!
//! ```text
//!  get_or_set("users:1", ttl, compute)
//!        │
//!        ├─ stored and not expired ───────────────────────► the bytes (a hit)
//!        ├─ another caller is computing "users:1" ── wait ─► its result, Ok or Err
//!        └─ nobody is ── compute ─┬─ Ok(bytes) ── store for ttl ─► bytes, to all waiters
//!                                 ├─ Err(e) ── store nothing ────► e, to all waiters
//!                                 └─ dropped ── one waiter computes instead
//! ```
//!
//! A [`Cache`] stores opaque [`Bytes`] — MessagePack by convention — so one backend
//! serves every value type; [`CacheExt`] adds the typed helpers, which write structs as
//! maps with their field names (as `rmp_serde::to_vec_named` does, like the rest of
//! msgwire). Keys are [`Key`]s, `namespace:id`: `users:1`.
//!
//! [`Cache::get_or_set`] belongs to the implementation, not to a helper over `get` and
//! `set`: the in-process cache computes each missing key once however many callers ask
//! at the same time (single flight), and a shared backend (Redis) can make that hold
//! across processes with a lock of its own.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use msgwire_services::cache::{key, Cache, CacheError, CacheExt, MemoryCache};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), CacheError> {
//! let cache = MemoryCache::default();
//! let greeting: String = cache
//!     .get_or_set_typed(&key("greetings", 1), None, async {
//!         Ok::<_, CacheError>("hello".to_owned()) // computed: the key was missing
//!     })
//!     .await?;
//! assert_eq!(greeting, "hello");
//!
//! let again: Option<String> = cache.get_typed(&key("greetings", 1)).await?;
//! assert_eq!(again.as_deref(), Some("hello"));
//! assert_eq!((cache.stats().hits, cache.stats().misses), (1, 1));
//!
//! cache.set_typed(&key("greetings", 2), &"hi", Some(Duration::from_secs(5))).await?;
//! assert!(cache.delete(&key("greetings", 2)).await?);
//! # Ok(()) }
//! ```

mod memory;
mod store;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt};
use msgwire_wire::{Code, RpcError};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use memory::{
    MemoryCache, MemoryCacheConfig, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, DEFAULT_TTL, MAX_TTL,
};

/// Any error, boxed: what a computation may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A value's computation for [`Cache::get_or_set`]: run only by the caller that
/// computes, never by those that wait.
pub type Compute<'a> = BoxFuture<'a, Result<Bytes, CacheError>>;

/// A namespaced key: `namespace:id`, as in `users:1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// `namespace:id`. The namespace should not contain `:`.
    pub fn new(namespace: &str, id: impl fmt::Display) -> Self {
        Key(format!("{namespace}:{id}"))
    }

    /// The whole key, `namespace:id`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `Key::new(namespace, id)`.
pub fn key(namespace: &str, id: impl fmt::Display) -> Key {
    Key::new(namespace, id)
}

/// Why a cache operation failed. Cheap to clone: a failed computation's error goes to
/// every caller that waited for it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The value could not be written as MessagePack.
    #[error("cannot encode the cached value: {0}")]
    Encode(#[source] Arc<rmp_serde::encode::Error>),
    /// The stored bytes are not the MessagePack of the type asked for.
    #[error("cannot decode the cached value: {0}")]
    Decode(#[source] Arc<rmp_serde::decode::Error>),
    /// The computation of a missing value failed; nothing was stored.
    #[error("{0}")]
    Compute(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// The backend (a Redis connection, say) failed or cannot be reached.
    #[error("cache backend: {0}")]
    Backend(#[source] Arc<dyn std::error::Error + Send + Sync>),
}

impl CacheError {
    /// A computation's failure.
    pub fn compute(error: impl Into<BoxError>) -> Self {
        CacheError::Compute(Arc::from(error.into()))
    }

    /// A backend's failure.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        CacheError::Backend(Arc::from(error.into()))
    }
}

impl From<CacheError> for RpcError {
    /// A computation's own [`RpcError`] as it was (NOT_FOUND stays NOT_FOUND, for every
    /// caller that waited for it); any other computation failure or an encoding failure
    /// INTERNAL (13); a backend failure UNAVAILABLE (14), since it may come back.
    fn from(error: CacheError) -> Self {
        match &error {
            CacheError::Compute(e) => match e.downcast_ref::<RpcError>() {
                Some(rpc) => rpc.clone(),
                None => RpcError::internal(error.to_string()),
            },
            CacheError::Backend(_) => RpcError::new(Code::Unavailable, error.to_string()),
            CacheError::Encode(_) | CacheError::Decode(_) => RpcError::internal(error.to_string()),
        }
    }
}

/// What a cache has done since it was made: counts that only grow, and what it holds
/// now. A backend fills in what it can tell and leaves the rest at zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups (`get`, `get_or_set`) answered with a stored value.
    pub hits: u64,
    /// Lookups that found no live value (a `get_or_set` counts once, whether it then
    /// computed or waited).
    pub misses: u64,
    /// Values stored now (expired ones may be among them until they are pruned).
    pub entries: u64,
    /// Bytes stored now: keys and values.
    pub bytes: u64,
    /// Values removed to make room.
    pub evictions: u64,
    /// Values removed because their time to live had passed.
    pub expired: u64,
    /// Computations `get_or_set` started.
    pub computations: u64,
    /// `get_or_set` calls that waited for another caller's computation.
    pub coalesced: u64,
}

/// A TTL cache of MessagePack values. Object safe: services hold an `Arc<dyn Cache>`.
///
/// `ttl: None` means the cache's default time to live; a zero `ttl` stores nothing.
/// The futures of `get`, `set` and `delete` borrow only `self`: an implementation copies
/// `key` before its first `.await`.
pub trait Cache: Send + Sync + fmt::Debug {
    /// The value stored under `key`, if it has not expired.
    fn get(&self, key: &Key) -> BoxFuture<'_, Result<Option<Bytes>, CacheError>>;

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    fn set(
        &self,
        key: &Key,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'_, Result<(), CacheError>>;

    /// Removes `key`; whether a live value was stored under it.
    fn delete(&self, key: &Key) -> BoxFuture<'_, Result<bool, CacheError>>;

    /// The value under `key`, or else `compute`'s, stored for `ttl`.
    ///
    /// Callers asking for the same missing key at the same time share one computation:
    /// the first computes, the others wait for its result. A failed computation is
    /// every waiter's error and nothing is stored; if the computing caller is dropped
    /// before it finishes, a waiter computes instead (with its own `compute`).
    fn get_or_set<'a>(
        &'a self,
        key: &Key,
        ttl: Option<Duration>,
        compute: Compute<'a>,
    ) -> BoxFuture<'a, Result<Bytes, CacheError>>;

    /// The counts so far; cheap, callable at any time (metrics read it at each scrape).
    fn stats(&self) -> CacheStats;

    /// Whether the cache can serve: `Ok` for the in-process cache; a backend checks its
    /// connection. For `/health`.
    fn check(&self) -> BoxFuture<'_, Result<(), CacheError>>;
}

/// Typed helpers over any [`Cache`]: values written with serde as MessagePack, structs
/// as maps with their field names.
pub trait CacheExt: Cache {
    /// The value under `key`, decoded as `T`.
    fn get_typed<T>(&self, key: &Key) -> impl Future<Output = Result<Option<T>, CacheError>> + Send
    where
        T: DeserializeOwned + Send,
    {
        let lookup = self.get(key);
        async move { lookup.await?.map(|bytes| decode(&bytes)).transpose() }
    }

    /// Stores `value`, encoded, under `key` for `ttl`.
    fn set_typed<T>(
        &self,
        key: &Key,
        value: &T,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<(), CacheError>> + Send
    where
        T: Serialize + ?Sized,
    {
        let stored = encode(value).map(|bytes| self.set(key, bytes, ttl));
        async move { stored?.await }
    }

    /// [`Cache::get_or_set`] with `compute`'s value encoded and the answer decoded as
    /// `T`. `compute`'s error reaches the caller as [`CacheError::Compute`] (and back as
    /// itself through `RpcError::from` when it is an [`RpcError`]).
    fn get_or_set_typed<'a, T, E, Fut>(
        &'a self,
        key: &Key,
        ttl: Option<Duration>,
        compute: Fut,
    ) -> impl Future<Output = Result<T, CacheError>> + Send + 'a
    where
        T: Serialize + DeserializeOwned + Send + 'a,
        E: Into<BoxError> + 'a,
        Fut: Future<Output = Result<T, E>> + Send + 'a,
    {
        let compute = async move {
            let value = compute.await.map_err(CacheError::compute)?;
            encode(&value)
        };
        let answer = self.get_or_set(key, ttl, compute.boxed());
        async move { decode(&answer.await?) }
    }
}

impl<C: Cache + ?Sized> CacheExt for C {}

/// `value` as MessagePack, structs as maps with their field names.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, CacheError> {
    rmp_serde::to_vec_named(value)
        .map(Bytes::from)
        .map_err(|e| CacheError::Encode(Arc::new(e)))
}

/// MessagePack `bytes` as a `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CacheError> {
    rmp_serde::from_slice(bytes).map_err(|e| CacheError::Decode(Arc::new(e)))
}

#[cfg(test)]
mod tests;
