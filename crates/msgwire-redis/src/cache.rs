//! [`RedisCache`]: a [`Cache`] shared by every process that points at one Redis, with
//! one computation per missing key across all of them.
//!
//! ```text
//!  get_or_set("users:1", ttl, compute)           (callers in this process)
//!        │
//!        ├─ a local caller is already on it ── wait ──► its outcome (coalesced)
//!        └─ leader: ACQUIRE script (one round trip, atomic)
//!              ├─ "users:1" is there ──────────────────────────► the bytes (a hit)
//!              ├─ took msgwire:lock:users:1 (SET NX PX lease) ─ compute ─┬─ Ok: SET users:1 PX ttl
//!              │      (lease renewed while computing)                    │    and release, one script
//!              │                                                         └─ Err: release, store nothing
//!              ├─ another process holds the lock ─ poll 5 → 50 ms ─┬─ value appears ─► the bytes
//!              │                                                   ├─ lock gone, no value ─► take it
//!              │                                                   └─ wait deadline ─► compute here
//!              └─ Redis fails or is down ─────────────────► compute here (a fallback)
//! ```
//!
//! # Wire format
//!
//! A value is the MessagePack bytes, unchanged, as a plain Redis string under
//! `{key_prefix}{key}` (`users:1` with the default empty prefix), written with
//! `SET key value PX ttl_ms`. Anything that reads and writes Redis strings shares the
//! cache; in Python:
//!
//! ```python
//! import msgpack, redis
//! r = redis.Redis(port=6379)
//! user = msgpack.unpackb(r.get("users:1"), raw=False)           # what msgwire cached
//! r.set("users:2", msgpack.packb({"id": 2}, use_bin_type=True), ex=60)  # msgwire reads it
//! ```
//!
//! The lock of a key being computed is `{key_prefix}msgwire:lock:{key}` (see
//! [`LOCK_NAMESPACE`]), holding a random token for at most
//! [`RedisCacheConfig::lock_lease`] (renewed while the computation runs); it is deleted
//! only by the holder (a script compares the token). A peer in another language can
//! take part in the protocol the same way or just ignore the locks.
//!
//! # Counts
//!
//! [`Cache::stats`] counts hits, misses, computations and coalesced callers (callers of
//! this process that waited for another caller of this process). `entries`, `bytes`,
//! `evictions` and `expired` stay 0: Redis holds the values and expires them.
//! [`RedisCache::redis_stats`] adds what is specific to Redis: failed operations,
//! fallback computations, waits for another process's lock, and more.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use msgwire_redis::{RedisCache, RedisCacheConfig};
//! use msgwire_services::cache::{key, Cache, CacheExt};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Succeeds while Redis is down: the connection is made in the background.
//! let cache = RedisCache::new(RedisCacheConfig::new("redis://127.0.0.1:6379/"))?;
//! let name: String = cache
//!     .get_or_set_typed(&key("users", 1), Some(Duration::from_secs(60)), async {
//!         Ok::<_, std::io::Error>("Ada".to_owned()) // once, whichever process asks first
//!     })
//!     .await?;
//! assert_eq!(name, "Ada");
//! cache.check().await?; // for /health: Err while Redis is unreachable
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt};
use msgwire_services::cache::{Cache, CacheError, CacheStats, Compute, Key, DEFAULT_TTL, MAX_TTL};
use redis::aio::ConnectionManager;
use redis::{Cmd, FromRedisValue, Script, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::conn::{self, RedisBackendError, SetupError, DEFAULT_TIMEOUT};

/// The namespace, after the key prefix, of the locks `get_or_set` takes:
/// `{key_prefix}msgwire:lock:{namespace}:{id}`. Keep your own keys out of it.
pub const LOCK_NAMESPACE: &str = "msgwire:lock:";

/// Where the cache is and how long it waits. [`RedisCacheConfig::new`] gives the
/// defaults for a URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisCacheConfig {
    /// `redis://[user:password@]host:port/db` (or `rediss://`, `redis+unix://`).
    pub url: String,
    /// Put before every key (`"app1:"` makes `users:1` `app1:users:1`); empty by default.
    pub key_prefix: String,
    /// The time to live of a value stored with `ttl: None`: 60 s (as the in-process cache).
    pub default_ttl: Duration,
    /// The bound on every Redis operation, connecting included: 1 s.
    pub timeout: Duration,
    /// How long a `get_or_set` lock lives if its holder dies: 5 s. It is renewed every
    /// third of it while the computation runs.
    pub lock_lease: Duration,
    /// How long a `get_or_set` waits for another process's computation before it
    /// computes the value itself: 5 s.
    pub wait_deadline: Duration,
    /// The first pause between two looks while waiting for another process: 5 ms …
    pub poll_min: Duration,
    /// … doubled after each look up to this: 50 ms.
    pub poll_max: Duration,
}

impl RedisCacheConfig {
    /// The defaults, for the Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: String::new(),
            default_ttl: DEFAULT_TTL,
            timeout: DEFAULT_TIMEOUT,
            lock_lease: Duration::from_secs(5),
            wait_deadline: Duration::from_secs(5),
            poll_min: Duration::from_millis(5),
            poll_max: Duration::from_millis(50),
        }
    }

    fn validate(&self) -> Result<(), SetupError> {
        conn::check_timeout(self.timeout)?;
        if self.lock_lease < Duration::from_millis(30) || self.lock_lease > MAX_TTL {
            return Err(SetupError::InvalidConfig(
                "lock_lease must be at least 30 ms and at most 30 days",
            ));
        }
        if self.poll_min.is_zero() || self.poll_min > self.poll_max {
            return Err(SetupError::InvalidConfig(
                "poll_min must be more than 0 and at most poll_max",
            ));
        }
        if self.wait_deadline > MAX_TTL || self.poll_max > MAX_TTL {
            return Err(SetupError::InvalidConfig(
                "wait_deadline and poll_max must be at most 30 days",
            ));
        }
        Ok(())
    }
}

impl Default for RedisCacheConfig {
    /// [`RedisCacheConfig::new`] for `redis://127.0.0.1:6379/`.
    fn default() -> Self {
        Self::new("redis://127.0.0.1:6379/")
    }
}

impl fmt::Debug for RedisCacheConfig {
    /// Everything but the URL, which may carry a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheConfig")
            .field("key_prefix", &self.key_prefix)
            .field("default_ttl", &self.default_ttl)
            .field("timeout", &self.timeout)
            .field("lock_lease", &self.lock_lease)
            .field("wait_deadline", &self.wait_deadline)
            .field("poll_min", &self.poll_min)
            .field("poll_max", &self.poll_max)
            .finish_non_exhaustive()
    }
}

/// [`CacheStats`] and what only a shared cache counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisCacheStats {
    /// What [`Cache::stats`] reports (entries, bytes, evictions and expired stay 0).
    pub cache: CacheStats,
    /// Redis operations that failed or timed out.
    pub backend_errors: u64,
    /// `get_or_set` computations made without Redis, because it failed.
    pub fallbacks: u64,
    /// `get_or_set` calls that waited for another process's computation.
    pub lock_waits: u64,
    /// … of which waited past [`RedisCacheConfig::wait_deadline`] and computed.
    pub lock_timeouts: u64,
    /// Computed values that could not be stored (Redis failed meanwhile); the callers
    /// got them all the same.
    pub store_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    computations: AtomicU64,
    coalesced: AtomicU64,
    backend_errors: AtomicU64,
    fallbacks: AtomicU64,
    lock_waits: AtomicU64,
    lock_timeouts: AtomicU64,
    store_failures: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Returns the stored value, or takes the lock (1), or says someone else holds it (0).
const ACQUIRE: &str = r"
local value = redis.call('GET', KEYS[1])
if value then return value end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[2]) == ARGV[1] then return 1 end
return 0
";

/// Stores the value (unless the TTL is 0) and deletes the lock if it is still ours.
const STORE_AND_RELEASE: &str = r"
if ARGV[2] ~= '0' then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
";

/// Deletes the lock if it is still ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Extends the lock's lease if it is still ours; 1 if it was.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

#[derive(Debug)]
struct Scripts {
    acquire: Script,
    store_and_release: Script,
    release: Script,
    renew: Script,
}

/// What a computation ended with, as the callers of this process waiting for it see
/// it: `found` when it was a stored value rather than a computed one.
#[derive(Debug, Clone)]
struct Done {
    result: Result<Bytes, CacheError>,
    found: bool,
}

type Outcome = Option<Done>;

#[derive(Debug)]
struct Flight {
    id: u64,
    outcome: watch::Receiver<Outcome>,
}

#[derive(Debug, Default)]
struct Flights {
    by_key: HashMap<Box<str>, Flight>,
    next: u64,
}

struct Inner {
    config: RedisCacheConfig,
    manager: ConnectionManager,
    scripts: Scripts,
    flights: Mutex<Flights>,
    counters: Counters,
}

/// A [`Cache`] on Redis, shared by every process (and peer) using the same Redis and
/// key prefix. Cheap to clone: clones share the connection and the counts.
///
/// See the [module docs](crate::cache) for the wire format and the `get_or_set` protocol.
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("config", &self.inner.config)
            .field("stats", &self.redis_stats())
            .finish()
    }
}

/// What the ACQUIRE script said.
enum Acquire {
    Found(Bytes),
    Locked,
    Busy,
}

/// What a `get_or_set` caller does after looking at the local flights.
enum Step {
    Wait(watch::Receiver<Outcome>),
    Lead(Leader),
}

impl RedisCache {
    /// A cache on the Redis at `config.url`. Does not connect: the connection is made
    /// in the background and on first use, so this succeeds while Redis is down (the
    /// cache then answers `CacheError::Backend` until Redis is up). Fails on an invalid
    /// URL or configuration, or outside a Tokio runtime.
    pub fn new(config: RedisCacheConfig) -> Result<Self, SetupError> {
        config.validate()?;
        let client = conn::open(&config.url, config.timeout)?;
        let manager = conn::manager(client, config.timeout)?;
        let cache = Self {
            inner: Arc::new(Inner {
                manager,
                scripts: Scripts {
                    acquire: Script::new(ACQUIRE),
                    store_and_release: Script::new(STORE_AND_RELEASE),
                    release: Script::new(RELEASE),
                    renew: Script::new(RENEW),
                },
                flights: Mutex::new(Flights::default()),
                counters: Counters::default(),
                config,
            }),
        };
        // Connect now, in the background, so that the first request finds a connection.
        let warm = cache.clone();
        tokio::spawn(async move {
            let _ = warm.ping().await;
        });
        Ok(cache)
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &RedisCacheConfig {
        &self.inner.config
    }

    /// The connection manager the cache sends its commands on (a clone: it shares the
    /// connection), for commands of your own.
    pub fn connection(&self) -> ConnectionManager {
        self.inner.manager.clone()
    }

    /// The counts so far, with those specific to Redis.
    pub fn redis_stats(&self) -> RedisCacheStats {
        let c = &self.inner.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut cache = CacheStats::default();
        cache.hits = read(&c.hits);
        cache.misses = read(&c.misses);
        cache.computations = read(&c.computations);
        cache.coalesced = read(&c.coalesced);
        RedisCacheStats {
            cache,
            backend_errors: read(&c.backend_errors),
            fallbacks: read(&c.fallbacks),
            lock_waits: read(&c.lock_waits),
            lock_timeouts: read(&c.lock_timeouts),
            store_failures: read(&c.store_failures),
        }
    }

    /// The Redis key of `key`: the prefix, then `namespace:id`.
    pub fn redis_key(&self, key: &Key) -> String {
        format!("{}{}", self.inner.config.key_prefix, key.as_str())
    }

    fn lock_key(&self, key: &str) -> String {
        format!("{}{LOCK_NAMESPACE}{key}", self.inner.config.key_prefix)
    }

    /// `ttl` (or the default) in whole milliseconds for `PX`, at most [`MAX_TTL`]; a
    /// nonzero TTL under 1 ms becomes 1 ms, so only a zero one gives 0.
    fn ttl_ms(&self, ttl: Option<Duration>) -> u64 {
        let ttl = ttl.unwrap_or(self.inner.config.default_ttl).min(MAX_TTL);
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 && !ttl.is_zero() {
            1
        } else {
            ms
        }
    }

    fn backend(&self, error: RedisBackendError) -> CacheError {
        bump(&self.inner.counters.backend_errors);
        CacheError::backend(error)
    }

    /// Runs `cmd`, bounded by the timeout.
    async fn query<T: FromRedisValue>(
        &self,
        op: &'static str,
        cmd: Cmd,
    ) -> Result<T, RedisBackendError> {
        let manager = &self.inner.manager;
        conn::bounded(op, self.inner.config.timeout, || {
            let mut connection = manager.clone();
            let cmd = cmd.clone();
            async move { cmd.query_async(&mut connection).await }
        })
        .await
    }

    /// Runs `script` on `keys` and `args`, bounded by the timeout.
    async fn script(
        &self,
        op: &'static str,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<Value, RedisBackendError> {
        let manager = &self.inner.manager;
        conn::bounded(op, self.inner.config.timeout, || {
            let mut connection = manager.clone();
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(*key);
            }
            for arg in args {
                invocation.arg(*arg);
            }
            async move { invocation.invoke_async::<Value>(&mut connection).await }
        })
        .await
    }

    async fn ping(&self) -> Result<(), RedisBackendError> {
        let pong: String = self.query("PING", redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(RedisBackendError::Unexpected {
                op: "PING",
                detail: format!("{pong:.40}"),
            })
        }
    }

    fn flights(&self) -> MutexGuard<'_, Flights> {
        // Every change to the map is one call: it stays consistent across a panic.
        self.inner
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the computation of `key` under way in this process, or starts one.
    fn step(&self, key: &str) -> Step {
        let mut flights = self.flights();
        if let Some(flight) = flights.by_key.get(key) {
            return Step::Wait(flight.outcome.clone());
        }
        flights.next = flights.next.wrapping_add(1);
        let id = flights.next;
        let (done, outcome) = watch::channel(None);
        flights.by_key.insert(key.into(), Flight { id, outcome });
        Step::Lead(Leader {
            cache: self.clone(),
            key: key.into(),
            id,
            done: Some(done),
        })
    }

    fn count_lookup(&self, found: bool) {
        let c = &self.inner.counters;
        bump(if found { &c.hits } else { &c.misses });
    }

    async fn get_or_set_inner(
        &self,
        key: Box<str>,
        ttl: Option<Duration>,
        compute: Compute<'_>,
    ) -> Result<Bytes, CacheError> {
        let mut first = true;
        loop {
            match self.step(&key) {
                Step::Lead(leader) => {
                    let done = self.lead(&key, ttl, compute).await;
                    self.count_lookup(done.found);
                    return leader.finish(done);
                }
                Step::Wait(mut outcome) => {
                    if first {
                        bump(&self.inner.counters.coalesced);
                    }
                    if let Ok(done) = outcome.wait_for(Option::is_some).await {
                        if let Some(done) = done.as_ref() {
                            self.count_lookup(done.found);
                            return done.result.clone();
                        }
                    }
                    // The leader was dropped before it finished: look again, and lead
                    // if nobody else has started to.
                }
            }
            first = false;
        }
    }

    /// The leader's part: the stored value, or the value computed here or in another
    /// process, or computed here without Redis.
    async fn lead(&self, key: &str, ttl: Option<Duration>, compute: Compute<'_>) -> Done {
        let config = &self.inner.config;
        let counters = &self.inner.counters;
        let stored_key = format!("{}{key}", config.key_prefix);
        let lock_key = self.lock_key(key);
        let token = token();
        let lease_ms = self.ttl_ms(Some(config.lock_lease)).to_string();
        let deadline = Instant::now() + config.wait_deadline;
        let mut pause = config.poll_min;
        let mut waited = false;
        loop {
            let acquired = self
                .script(
                    "EVALSHA (acquire)",
                    &self.inner.scripts.acquire,
                    &[&stored_key, &lock_key],
                    &[token.as_bytes(), lease_ms.as_bytes()],
                )
                .await
                .and_then(parse_acquire);
            match acquired {
                Ok(Acquire::Found(value)) => {
                    return Done {
                        result: Ok(value),
                        found: true,
                    }
                }
                Ok(Acquire::Locked) => {
                    let result = self
                        .compute_locked(&stored_key, &lock_key, &token, ttl, compute)
                        .await;
                    return Done {
                        result,
                        found: false,
                    };
                }
                Ok(Acquire::Busy) => {
                    if !waited {
                        waited = true;
                        bump(&counters.lock_waits);
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        bump(&counters.lock_timeouts);
                        bump(&counters.computations);
                        let result = compute.await;
                        if let Ok(value) = &result {
                            self.store_best_effort(&stored_key, value, ttl).await;
                        }
                        return Done {
                            result,
                            found: false,
                        };
                    }
                    tokio::time::sleep(pause.min(deadline - now)).await;
                    pause = (pause * 2).min(config.poll_max);
                }
                Err(error) => {
                    bump(&counters.backend_errors);
                    bump(&counters.fallbacks);
                    bump(&counters.computations);
                    tracing::debug!(%error, key, "Redis failed: computing without it");
                    return Done {
                        result: compute.await,
                        found: false,
                    };
                }
            }
        }
    }

    /// Computes holding the lock: renews it meanwhile, then stores the value and
    /// releases the lock in one script, or, on an error, releases it. Dropped halfway,
    /// it releases the lock from a task of its own.
    async fn compute_locked(
        &self,
        stored_key: &str,
        lock_key: &str,
        token: &str,
        ttl: Option<Duration>,
        mut compute: Compute<'_>,
    ) -> Result<Bytes, CacheError> {
        bump(&self.inner.counters.computations);
        let mut held = HeldLock {
            cache: Some(self.clone()),
            lock_key: lock_key.to_owned(),
            token: token.to_owned(),
        };
        let lease = self.inner.config.lock_lease;
        let lease_ms = self.ttl_ms(Some(lease)).to_string();
        let renewing = async {
            loop {
                tokio::time::sleep(lease / 3).await;
                let renewed = self
                    .script(
                        "EVALSHA (renew)",
                        &self.inner.scripts.renew,
                        &[lock_key],
                        &[token.as_bytes(), lease_ms.as_bytes()],
                    )
                    .await;
                match renewed {
                    Ok(Value::Int(1)) => {}
                    // Lost (expired and taken) or Redis failed: stop renewing.
                    _ => return,
                }
            }
        };
        let result = tokio::select! {
            biased;
            result = &mut compute => result,
            () = renewing => compute.await,
        };
        match &result {
            Ok(value) => {
                let ttl_ms = self.ttl_ms(ttl).to_string();
                let stored = self
                    .script(
                        "EVALSHA (store)",
                        &self.inner.scripts.store_and_release,
                        &[stored_key, lock_key],
                        &[value, ttl_ms.as_bytes(), token.as_bytes()],
                    )
                    .await;
                if let Err(error) = stored {
                    bump(&self.inner.counters.backend_errors);
                    bump(&self.inner.counters.store_failures);
                    tracing::debug!(%error, key = stored_key, "cannot store the computed value");
                }
            }
            Err(_) => {
                if let Err(error) = self.release(lock_key, token).await {
                    bump(&self.inner.counters.backend_errors);
                    tracing::debug!(%error, lock_key, "cannot release the lock");
                }
            }
        }
        // Done with the lock (released, or left to its lease if Redis failed); dropped
        // before this line, `held` releases it from a task.
        held.cache = None;
        result
    }

    async fn release(&self, lock_key: &str, token: &str) -> Result<Value, RedisBackendError> {
        self.script(
            "EVALSHA (release)",
            &self.inner.scripts.release,
            &[lock_key],
            &[token.as_bytes()],
        )
        .await
    }

    /// Stores a value computed without the lock (after the wait deadline).
    async fn store_best_effort(&self, stored_key: &str, value: &Bytes, ttl: Option<Duration>) {
        let ttl_ms = self.ttl_ms(ttl);
        if ttl_ms == 0 {
            return;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(stored_key)
            .arg(value.as_ref())
            .arg("PX")
            .arg(ttl_ms);
        if let Err(error) = self.query::<()>("SET", cmd).await {
            bump(&self.inner.counters.backend_errors);
            bump(&self.inner.counters.store_failures);
            tracing::debug!(%error, key = stored_key, "cannot store the computed value");
        }
    }
}

/// 16 random bytes in hex: who holds a lock.
fn token() -> String {
    let bytes: [u8; 16] = conn::random_bytes();
    let mut token = String::with_capacity(32);
    for byte in bytes {
        let _ = write!(token, "{byte:02x}");
    }
    token
}

fn parse_acquire(value: Value) -> Result<Acquire, RedisBackendError> {
    match value {
        Value::BulkString(bytes) => Ok(Acquire::Found(Bytes::from(bytes))),
        Value::Int(1) => Ok(Acquire::Locked),
        Value::Int(0) => Ok(Acquire::Busy),
        other => Err(RedisBackendError::Unexpected {
            op: "EVALSHA (acquire)",
            detail: format!("{other:.60?}"),
        }),
    }
}

/// A Redis lock held while computing; dropped with `cache` still set (the computing
/// future was dropped), it releases the lock from a spawned task.
struct HeldLock {
    cache: Option<RedisCache>,
    lock_key: String,
    token: String,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let Some(cache) = self.cache.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // The lease ends it.
        };
        let lock_key = std::mem::take(&mut self.lock_key);
        let token = std::mem::take(&mut self.token);
        runtime.spawn(async move {
            let _ = cache.release(&lock_key, &token).await;
        });
    }
}

/// The caller of this process computing a key: announces its outcome, or, dropped
/// before that, withdraws so that a waiter leads instead.
struct Leader {
    cache: RedisCache,
    key: Box<str>,
    id: u64,
    done: Option<watch::Sender<Outcome>>,
}

impl Leader {
    fn finish(mut self, done: Done) -> Result<Bytes, CacheError> {
        self.withdraw();
        let result = done.result.clone();
        if let Some(sender) = self.done.take() {
            sender.send_replace(Some(done));
        }
        result
    }

    fn withdraw(&self) {
        let mut flights = self.cache.flights();
        if flights
            .by_key
            .get(&self.key)
            .is_some_and(|flight| flight.id == self.id)
        {
            flights.by_key.remove(&self.key);
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if self.done.is_some() {
            // Dropped before finishing: the waiters see the channel close and look again.
            self.withdraw();
        }
    }
}

impl Cache for RedisCache {
    fn get(&self, key: &Key) -> BoxFuture<'_, Result<Option<Bytes>, CacheError>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.redis_key(key));
        async move {
            let found: Option<Vec<u8>> =
                self.query("GET", cmd).await.map_err(|e| self.backend(e))?;
            self.count_lookup(found.is_some());
            Ok(found.map(Bytes::from))
        }
        .boxed()
    }

    /// `SET key value PX ttl`; a zero `ttl` deletes what was there instead (the new
    /// value would be gone at once).
    fn set(
        &self,
        key: &Key,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'_, Result<(), CacheError>> {
        let redis_key = self.redis_key(key);
        let ttl_ms = self.ttl_ms(ttl);
        async move {
            if ttl_ms == 0 {
                let mut cmd = redis::cmd("DEL");
                cmd.arg(redis_key);
                return self
                    .query::<i64>("DEL", cmd)
                    .await
                    .map(drop)
                    .map_err(|e| self.backend(e));
            }
            let mut cmd = redis::cmd("SET");
            cmd.arg(redis_key).arg(value.as_ref()).arg("PX").arg(ttl_ms);
            self.query::<()>("SET", cmd)
                .await
                .map_err(|e| self.backend(e))
        }
        .boxed()
    }

    fn delete(&self, key: &Key) -> BoxFuture<'_, Result<bool, CacheError>> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.redis_key(key));
        async move {
            let removed: i64 = self.query("DEL", cmd).await.map_err(|e| self.backend(e))?;
            Ok(removed > 0)
        }
        .boxed()
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
        self.redis_stats().cache
    }

    /// `PING`, bounded by the timeout.
    fn check(&self) -> BoxFuture<'_, Result<(), CacheError>> {
        async move { self.ping().await.map_err(|e| self.backend(e)) }.boxed()
    }
}
