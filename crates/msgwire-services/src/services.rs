//! Every reference service on one router, with the state the stream services keep: a
//! data directory for files, the chat rooms, the event store and its bus, and the cache
//! `getUser` reads through (`users:<id>`; a [`MemoryCache`] unless
//! [`Services::with_cache`] gives another).
//!
//! ```
//! use msgwire_services::{Services, ServicesConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let services = Services::new(ServicesConfig {
//!     data_dir: dir.path().into(),
//!     max_upload: 200 << 20,
//!     ..ServicesConfig::default()
//! })?;
//! let router = services.router();
//! assert!(router.has_method("upload") && router.has_method("add"));
//! assert_eq!(services.cache().stats().entries, 0);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use msgwire_rpc::{Context, Router, StreamReceiver, StreamSender, Value};
use msgwire_wire::{RawValue, RpcError};
use serde::{Deserialize, Serialize};

use crate::bus::{Bus, InProcessBus};
use crate::cache::{Cache, MemoryCache, MemoryCacheConfig};
use crate::chat::{chat_call, ChatHub, ChatMessage};
use crate::chunked::{ChunkLimits, ChunkMessage, Reassembler};
use crate::events::{EventLog, EventStore, StreamEvent};
use crate::files::{download_call, upload_call, DownloadChunk, FileStore, DEFAULT_MAX_UPLOAD};
use crate::math::{self, Number, Pair};
use crate::users::{self, GetUserParams};

/// The default data directory, relative to the working directory: `msgwire-data`.
pub const DEFAULT_DATA_DIR: &str = "msgwire-data";

/// The default chat backlog: unread messages a member may have before it is removed.
pub const DEFAULT_CHAT_BACKLOG: usize = 256;

/// The default number of events kept for `start_time` replays.
pub const DEFAULT_EVENT_HISTORY: usize = 10_000;

/// The default time without an item after which an event stream sends a heartbeat.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// How the stream services are set up.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// Where files are stored (created at the first upload).
    pub data_dir: PathBuf,
    /// The largest upload, in bytes.
    pub max_upload: u64,
    /// Unread messages a chat member may have before it is removed from its room.
    pub chat_backlog: usize,
    /// Events kept (of all users) for `subscribeEvents` with a `start_time`.
    pub event_history: usize,
    /// An event stream that has sent nothing for this long sends a heartbeat.
    pub heartbeat: Duration,
    /// What one `sumChunked` call may send.
    pub chunk_limits: ChunkLimits,
    /// The bounds and default time to live of the in-process cache (unused when
    /// [`Services::with_cache`] gives another cache).
    pub cache: MemoryCacheConfig,
}

impl Default for ServicesConfig {
    /// [`DEFAULT_DATA_DIR`], [`DEFAULT_MAX_UPLOAD`] (1 GiB), [`DEFAULT_CHAT_BACKLOG`],
    /// [`DEFAULT_EVENT_HISTORY`], [`DEFAULT_HEARTBEAT`], [`ChunkLimits::default`],
    /// [`MemoryCacheConfig::default`].
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            max_upload: DEFAULT_MAX_UPLOAD,
            chat_backlog: DEFAULT_CHAT_BACKLOG,
            event_history: DEFAULT_EVENT_HISTORY,
            heartbeat: DEFAULT_HEARTBEAT,
            chunk_limits: ChunkLimits::default(),
            cache: MemoryCacheConfig::default(),
        }
    }
}

/// The reference services and their state. Cloning shares the state.
#[derive(Debug, Clone)]
pub struct Services {
    files: FileStore,
    chat: ChatHub,
    events: Arc<EventStore>,
    heartbeat: Duration,
    chunk_limits: ChunkLimits,
    cache: Arc<dyn Cache>,
}

impl Services {
    /// The services with an in-process bus. Clears the temporary files that a crashed
    /// server left in the data directory, if it exists; fails if they cannot be read
    /// or removed.
    pub fn new(config: ServicesConfig) -> std::io::Result<Self> {
        let chat = ChatHub::new(config.chat_backlog);
        Self::assemble(config, Arc::new(InProcessBus::new()), chat)
    }

    /// As [`Services::new`], with events published on `bus` and chat rooms relayed over
    /// it: with a bus shared between processes (Redis, say), a room and a user's event
    /// stream span them (see [`ChatHub::with_bus`] and [`crate::events`]).
    pub fn with_bus(config: ServicesConfig, bus: Arc<dyn Bus>) -> std::io::Result<Self> {
        let chat = ChatHub::with_bus(config.chat_backlog, Arc::clone(&bus));
        Self::assemble(config, bus, chat)
    }

    fn assemble(config: ServicesConfig, bus: Arc<dyn Bus>, chat: ChatHub) -> std::io::Result<Self> {
        let files = FileStore::new(config.data_dir, config.max_upload);
        files.remove_leftovers()?;
        Ok(Self {
            files,
            chat,
            events: Arc::new(EventStore::new(bus, config.event_history)),
            heartbeat: config.heartbeat,
            chunk_limits: config.chunk_limits,
            cache: Arc::new(MemoryCache::new(config.cache)),
        })
    }

    /// The services with events appended to `log` (a Kafka topic, say) before they are
    /// delivered, and `start_time` replays read from it: see
    /// [`EventStore::with_log`]. The event store is replaced (its bus kept), so call
    /// this before making routers.
    pub fn with_event_log(mut self, log: Arc<dyn EventLog>) -> Self {
        let bus = Arc::clone(self.events.bus());
        self.events = Arc::new(EventStore::new(bus, 0).with_log(log));
        self
    }

    /// The services reading through `cache` instead of their in-process one (a shared
    /// backend, say). Routers made before this keep the cache they were made with.
    pub fn with_cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = cache;
        self
    }

    /// The cache the services read through; its stats are the metrics' cache hits and
    /// misses.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// The file store.
    pub fn files(&self) -> &FileStore {
        &self.files
    }

    /// The chat rooms.
    pub fn chat(&self) -> &ChatHub {
        &self.chat
    }

    /// The event store.
    pub fn events(&self) -> &Arc<EventStore> {
        &self.events
    }

    /// Every service on a new router.
    pub fn router(&self) -> Router {
        self.register(Router::new())
    }

    /// Adds every service to `router`: [`crate::register`]'s, with `getUser` read
    /// through the cache, and the stream services.
    pub fn register(&self, router: Router) -> Router {
        let (files, uploads) = (self.files.clone(), self.files.clone());
        let info_files = self.files.clone();
        let chat = self.chat.clone();
        let (events, publisher) = (Arc::clone(&self.events), Arc::clone(&self.events));
        let heartbeat = self.heartbeat;
        let limits = self.chunk_limits;
        let cache = Arc::clone(&self.cache);
        crate::register(router)
            // Replaces the uncached one: the last handler registered under a name wins.
            .method_with_raw_result("getUser", move |_ctx: Context, p: GetUserParams| {
                let cache = Arc::clone(&cache);
                async move { users::get_user_cached_raw(cache.as_ref(), None, p).await }
            })
            .method_with_context("upload", move |ctx: Context, (): ()| {
                let store = uploads.clone();
                let input = ctx.input::<RawValue>();
                async move { upload_call(&store, stream_call(input)?).await }
            })
            .server_stream_with(
                "download",
                move |_ctx: Context, p: FileIdParams, out: StreamSender<DownloadChunk>| {
                    let store = files.clone();
                    async move { download_call(&store, &p.file_id, out).await }
                },
            )
            .method("fileInfo", move |p: FileIdParams| {
                let store = info_files.clone();
                async move { store.info(&p.file_id).await }
            })
            .method_with_context("chat", move |ctx: Context, (): ()| {
                let hub = chat.clone();
                let streams = ctx.input::<RawValue>().zip(ctx.output::<ChatMessage>());
                async move {
                    let (input, out) = streams.ok_or_else(notified)?;
                    chat_call(&hub, input, out).await
                }
            })
            .server_stream_with(
                "subscribeEvents",
                move |_ctx: Context, p: SubscribeParams, out: StreamSender<StreamEvent>| {
                    let store = Arc::clone(&events);
                    async move { subscribe_call(&store, p, heartbeat, out).await }
                },
            )
            .method("publishEvent", move |p: PublishParams| {
                let store = Arc::clone(&publisher);
                async move { store.publish(p.user_id, &p.event_type, p.data).await }
            })
            .method_with_context("sumChunked", move |ctx: Context, (): ()| {
                let input = ctx.input::<RawValue>();
                async move { sum_chunked_call(limits, stream_call(input)?).await }
            })
    }
}

// The stream methods whose items are read as they came (`RawValue`, which is not a
// serde type) are registered with `method_with_context` and take their streams from the
// context, as `Router::client_stream` and `bidi_stream` do for serde types.

/// A handler's input stream, or INVALID_ARGUMENT for a stream method notified.
fn stream_call<T>(input: Option<StreamReceiver<T>>) -> Result<StreamReceiver<T>, RpcError> {
    input.ok_or_else(notified)
}

fn notified() -> RpcError {
    RpcError::invalid_argument("a stream method must be called as a request, not notified")
}

/// `download` and `fileInfo` params: `[file_id]` or `{"file_id": ..}`.
#[derive(Debug, Clone, Deserialize)]
pub struct FileIdParams {
    /// The file's id, as `upload` answered it.
    pub file_id: String,
}

/// `subscribeEvents` params: `[user_id, event_types?, start_time?]` or by name.
#[derive(Debug, Clone, Deserialize)]
pub struct SubscribeParams {
    /// Whose events.
    pub user_id: u64,
    /// Only these types (all when absent, nil or empty).
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Replay the kept events from this time on (milliseconds since the Unix epoch),
    /// and only deliver events from then on.
    #[serde(default)]
    pub start_time: Option<i64>,
}

/// `publishEvent` params: `[user_id, type, data?]` or by name.
#[derive(Debug, Clone, Deserialize)]
pub struct PublishParams {
    /// Whose event.
    pub user_id: u64,
    /// `login`, `logout`, `profile_update` or `password_change`; `type` on the wire.
    #[serde(rename = "type", alias = "event_type")]
    pub event_type: String,
    /// Details: a map, or absent.
    #[serde(default)]
    pub data: Option<Value>,
}

async fn subscribe_call(
    store: &EventStore,
    p: SubscribeParams,
    heartbeat: Duration,
    mut out: StreamSender<StreamEvent>,
) -> Result<(), RpcError> {
    use futures::StreamExt;
    let mut events = store
        .subscribe(p.user_id, p.event_types, p.start_time, heartbeat)
        .await?;
    while let Some(item) = events.next().await {
        out.send(&item).await?;
    }
    Ok(())
}

/// The answer of `sumChunked`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkedSum {
    /// How many items the reassembled array has.
    pub count: u64,
    /// Their sum (an integer while every item is one; OUT_OF_RANGE on overflow).
    pub sum: Number,
}

/// `sumChunked`: a client stream whose items are one chunked sequence of numbers (see
/// [`crate::chunked`]); answers their count and sum once the input ends. Any check the
/// [`Reassembler`] fails ends the call with its error.
pub async fn sum_chunked_call(
    limits: ChunkLimits,
    mut input: StreamReceiver<RawValue>,
) -> Result<ChunkedSum, RpcError> {
    let mut reassembler = Reassembler::new(limits);
    let mut whole = None;
    while let Some(item) = input.next_raw().await {
        let item = item?;
        let message = ChunkMessage::<Number>::from_raw(&item)?;
        whole = reassembler.push(message, item.len())?;
    }
    let items =
        whole.ok_or_else(|| RpcError::invalid_argument("the stream ended before chunked_end"))?;
    let sum = items
        .iter()
        .try_fold(Number::Int(0), |a, &b| math::add(Pair { a, b }))?;
    Ok(ChunkedSum {
        count: items.len() as u64,
        sum,
    })
}
