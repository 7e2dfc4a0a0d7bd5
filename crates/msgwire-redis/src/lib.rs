//! msgwire-redis: the shared cache and bus on Redis.
//!
//! Two backends for the narrow interfaces of `msgwire-services`, so that several
//! msgwire processes (and peers in other languages) share one cache and one bus:
//!
//! - [`RedisCache`], a [`Cache`](msgwire_services::cache::Cache): MessagePack values
//!   as plain Redis strings, one computation per missing key across processes
//!   (local single flight plus a Redis lock);
//! - [`RedisBus`], a [`Bus`](msgwire_services::bus::Bus): local delivery at once plus
//!   Redis `PUBLISH`/`SUBSCRIBE` between processes, each payload delivered exactly once
//!   to every subscriber of every process while Redis is up.
//!
//! ```text
//!   process A                                   process B
//!  ┌──────────────────────────┐               ┌──────────────────────────┐
//!  │ RedisCache ── manager ───┼──┐         ┌──┼─── manager ── RedisCache │
//!  │ RedisBus ─┬─ manager ────┼──┤ Redis   ├──┼──── manager ─┬─ RedisBus │
//!  │           └─ pub/sub ────┼──┘         └──┼──── pub/sub ─┘           │
//!  └──────────────────────────┘               └──────────────────────────┘
//!     "users:1" = MessagePack bytes (SET … PX ttl), "events:7" = channel
//! ```
//!
//! # Failure model
//!
//! Nothing waits forever: every Redis operation is bounded by
//! [`RedisCacheConfig::timeout`] / [`RedisBusConfig::timeout`] (1 s by default). Both
//! constructors succeed while Redis is down (they only check the URL): a server starts
//! degraded rather than not at all, and both backends recover by themselves when Redis
//! comes back — the cache's `ConnectionManager` reconnects on the next command, the
//! bus's reader task reconnects with backoff and subscribes again.
//!
//! While Redis is down: [`RedisCache`]'s `get`/`set`/`delete`/`check` fail with
//! `CacheError::Backend`, `get_or_set` computes the value itself (counted in
//! [`RedisCacheStats::fallbacks`]); [`RedisBus`] still delivers to the subscribers of
//! its own process and its `publish` reports `BusError::Backend`.
//!
//! # Wire format (for peers in other languages)
//!
//! - Cache value: the MessagePack bytes as a Redis string under
//!   `{key_prefix}{namespace}:{id}` (no prefix by default: `users:1`), stored with
//!   `SET key value PX ttl_ms`. Python: `msgpack.unpackb(r.get("users:1"), raw=False)`
//!   and `r.set("users:1", msgpack.packb(v, use_bin_type=True), ex=60)`.
//! - Cache lock: `{key_prefix}msgwire:lock:{namespace}:{id}`, a random token, `NX PX`.
//! - Bus: channel `{channel_prefix}{topic}`; each message is an 8-byte origin id (random
//!   per [`RedisBus`]) followed by the payload. A Python peer publishes
//!   `os.urandom(8) + msgpack.packb(v)` and strips the first 8 bytes of what it receives.

pub mod bus;
pub mod cache;
mod conn;

pub use bus::{RedisBus, RedisBusConfig, RedisBusStats, ORIGIN_LEN};
pub use cache::{RedisCache, RedisCacheConfig, RedisCacheStats, LOCK_NAMESPACE};
pub use conn::{RedisBackendError, SetupError, DEFAULT_TIMEOUT};
