//! [`MemoryCache`]: the in-process [`Cache`], bounded in entries and bytes, with one
//! computation per missing key however many callers ask for it at once.
//!
//! Expiry is lazy — a lookup that finds an expired value removes it — and every insert
//! first prunes whatever has expired, then evicts the least recently used values until
//! the new one fits. Time is [`tokio::time::Instant`], so a test with
//! `tokio::time::pause()` moves it by hand.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use msgwire_services::cache::{key, Cache, MemoryCache, MemoryCacheConfig};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), msgwire_services::cache::CacheError> {
//! let cache = MemoryCache::new(MemoryCacheConfig {
//!     default_ttl: Duration::from_secs(30),
//!     max_entries: 2,
//!     ..MemoryCacheConfig::default()
//! });
//! for id in 1..=3 {
//!     cache.set(&key("orders", id), Bytes::from_static(b"\x01"), None).await?;
//! }
//! // The oldest made room for the third.
//! assert_eq!(cache.get(&key("orders", 1)).await?, None);
//! assert_eq!(cache.stats().evictions, 1);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::future::{self, BoxFuture, FutureExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::store::{Bounds, Removed, Store};
use super::{Cache, CacheError, CacheStats, Compute, Key};

/// How long a value lives when the caller gives no `ttl`: 60 s.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The default bound on stored values: 10 000.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// The default bound on stored bytes (keys and values): 64 MiB.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

/// The longest time to live; longer ones are cut to it: 30 days.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// How a [`MemoryCache`] is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCacheConfig {
    /// The time to live of a value stored with `ttl: None`.
    pub default_ttl: Duration,
    /// At most this many values are stored.
    pub max_entries: usize,
    /// At most this many bytes (keys and values) are stored; a larger value is not
    /// stored at all.
    pub max_bytes: usize,
}

impl Default for MemoryCacheConfig {
    /// [`DEFAULT_TTL`], [`DEFAULT_MAX_ENTRIES`], [`DEFAULT_MAX_BYTES`].
    fn default() -> Self {
        Self {
            default_ttl: DEFAULT_TTL,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// The outcome of a computation, as the callers waiting for it see it: `None` until it
/// is done.
type Outcome = Option<Result<Bytes, CacheError>>;

/// A computation under way: its id, and where its outcome will be.
#[derive(Debug)]
struct Flight {
    id: u64,
    outcome: watch::Receiver<Outcome>,
}

#[derive(Debug)]
struct State {
    store: Store,
    flights: HashMap<Box<str>, Flight>,
    next_flight: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    entries: AtomicU64,
    bytes: AtomicU64,
    evictions: AtomicU64,
    expired: AtomicU64,
    computations: AtomicU64,
    coalesced: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    if by > 0 {
        counter.fetch_add(by, Ordering::Relaxed);
    }
}

struct Inner {
    default_ttl: Duration,
    state: Mutex<State>,
    counters: Counters,
}

/// The in-process cache, bounded by a [`MemoryCacheConfig`]. Cheap to clone: clones
/// share the values.
///
/// Expiry is lazy (a lookup removes the expired value it finds) and every insert first
/// prunes what has expired, then evicts the least recently used values until the new
/// one fits; each step is O(log n). `get_or_set` computes a missing key once for all
/// the callers asking for it at the same time.
#[derive(Clone)]
pub struct MemoryCache {
    inner: Arc<Inner>,
}

impl Default for MemoryCache {
    /// A cache with [`MemoryCacheConfig::default`].
    fn default() -> Self {
        Self::new(MemoryCacheConfig::default())
    }
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("default_ttl", &self.inner.default_ttl)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What a `get_or_set` caller does after looking.
enum Step {
    Found(Bytes),
    Wait(watch::Receiver<Outcome>),
    Compute(Leader),
}

impl MemoryCache {
    /// An empty cache bounded by `config`.
    pub fn new(config: MemoryCacheConfig) -> Self {
        let bounds = Bounds {
            max_entries: config.max_entries,
            max_bytes: config.max_bytes,
        };
        Self {
            inner: Arc::new(Inner {
                default_ttl: config.default_ttl,
                state: Mutex::new(State {
                    store: Store::new(bounds),
                    flights: HashMap::new(),
                    next_flight: 0,
                }),
                counters: Counters::default(),
            }),
        }
    }

    /// A snapshot of the counts, as [`Cache::stats`].
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            hits: read(&c.hits),
            misses: read(&c.misses),
            entries: read(&c.entries),
            bytes: read(&c.bytes),
            evictions: read(&c.evictions),
            expired: read(&c.expired),
            computations: read(&c.computations),
            coalesced: read(&c.coalesced),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts what `store` removed and what it holds now. Called with the lock held.
    fn account(&self, store: &Store, removed: Removed) {
        let c = &self.inner.counters;
        bump(&c.expired, removed.expired);
        bump(&c.evictions, removed.evicted);
        c.entries.store(store.len() as u64, Ordering::Relaxed);
        c.bytes.store(store.bytes() as u64, Ordering::Relaxed);
    }

    /// The live value under `key`, counting the hit (a miss is the caller's to count).
    fn lookup(&self, state: &mut State, key: &str) -> Option<Bytes> {
        let (found, removed) = state.store.get(key, Instant::now());
        self.account(&state.store, removed);
        if found.is_some() {
            bump(&self.inner.counters.hits, 1);
        }
        found
    }

    fn store(&self, state: &mut State, key: &str, value: Bytes, ttl: Option<Duration>) {
        let now = Instant::now();
        let ttl = ttl.unwrap_or(self.inner.default_ttl).min(MAX_TTL);
        let removed = match now.checked_add(ttl) {
            Some(expires) => state.store.insert(key, value, expires, now),
            // Only on a clock near its end; storing nothing is safe.
            None => {
                state.store.remove(key);
                Removed::default()
            }
        };
        self.account(&state.store, removed);
    }

    /// Looks `key` up for `get_or_set`: its value, the computation to wait for, or the
    /// duty to compute it.
    fn step(&self, key: &str) -> Step {
        let mut state = self.lock();
        if let Some(value) = self.lookup(&mut state, key) {
            return Step::Found(value);
        }
        if let Some(flight) = state.flights.get(key) {
            return Step::Wait(flight.outcome.clone());
        }
        state.next_flight = state.next_flight.wrapping_add(1);
        let id = state.next_flight;
        let (done, outcome) = watch::channel(None);
        state.flights.insert(key.into(), Flight { id, outcome });
        Step::Compute(Leader {
            cache: self.clone(),
            key: key.into(),
            id,
            done: Some(done),
        })
    }

    async fn get_or_set_inner(
        &self,
        key: Box<str>,
        ttl: Option<Duration>,
        compute: Compute<'_>,
    ) -> Result<Bytes, CacheError> {
        let counters = &self.inner.counters;
        let mut first = true;
        loop {
            let step = self.step(&key);
            if first && !matches!(step, Step::Found(_)) {
                bump(&counters.misses, 1);
            }
            match step {
                Step::Found(value) => return Ok(value),
                Step::Compute(leader) => {
                    bump(&counters.computations, 1);
                    let outcome = compute.await;
                    return leader.finish(outcome, ttl);
                }
                Step::Wait(mut outcome) => {
                    if first {
                        bump(&counters.coalesced, 1);
                    }
                    if let Ok(done) = outcome.wait_for(Option::is_some).await {
                        if let Some(result) = done.as_ref() {
                            return result.clone();
                        }
                    }
                    // The computing caller was dropped: look again, and compute if
                    // nobody else has started to.
                }
            }
            first = false;
        }
    }
}

/// The caller computing a key: stores and announces its outcome, or, dropped before
/// that, withdraws so that a waiter computes instead.
struct Leader {
    cache: MemoryCache,
    key: Box<str>,
    id: u64,
    done: Option<watch::Sender<Outcome>>,
}

impl Leader {
    fn finish(
        mut self,
        outcome: Result<Bytes, CacheError>,
        ttl: Option<Duration>,
    ) -> Result<Bytes, CacheError> {
        {
            let mut state = self.cache.lock();
            if let Ok(value) = &outcome {
                self.cache.store(&mut state, &self.key, value.clone(), ttl);
            }
            self.withdraw(&mut state);
        }
        if let Some(done) = self.done.take() {
            done.send_replace(Some(outcome.clone()));
        }
        outcome
    }

    /// Removes this computation from the flights, if it is still there.
    fn withdraw(&self, state: &mut State) {
        if state
            .flights
            .get(&self.key)
            .is_some_and(|f| f.id == self.id)
        {
            state.flights.remove(&self.key);
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if self.done.is_some() {
            // Dropped before finishing: the waiters see the channel close, look again
            // and one of them computes.
            let cache = self.cache.clone();
            self.withdraw(&mut cache.lock());
        }
    }
}

impl Cache for MemoryCache {
    fn get(&self, key: &Key) -> BoxFuture<'_, Result<Option<Bytes>, CacheError>> {
        let found = {
            let mut state = self.lock();
            self.lookup(&mut state, key.as_str())
        };
        if found.is_none() {
            bump(&self.inner.counters.misses, 1);
        }
        future::ready(Ok(found)).boxed()
    }

    fn set(
        &self,
        key: &Key,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'_, Result<(), CacheError>> {
        self.store(&mut self.lock(), key.as_str(), value, ttl);
        future::ready(Ok(())).boxed()
    }

    fn delete(&self, key: &Key) -> BoxFuture<'_, Result<bool, CacheError>> {
        let mut state = self.lock();
        let live = match state.store.get(key.as_str(), Instant::now()) {
            (Some(_), _) => state.store.remove(key.as_str()),
            (None, removed) => {
                self.account(&state.store, removed);
                false
            }
        };
        self.account(&state.store, Removed::default());
        future::ready(Ok(live)).boxed()
    }

    fn get_or_set<'a>(
        &'a self,
        key: &Key,
        ttl: Option<Duration>,
        compute: Compute<'a>,
    ) -> BoxFuture<'a, Result<Bytes, CacheError>> {
        self.get_or_set_inner(key.as_str().into(), ttl, compute)
            .boxed()
    }

    fn stats(&self) -> CacheStats {
        MemoryCache::stats(self)
    }

    fn check(&self) -> BoxFuture<'_, Result<(), CacheError>> {
        future::ready(Ok(())).boxed()
    }
}
