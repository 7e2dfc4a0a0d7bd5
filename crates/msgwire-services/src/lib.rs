//! msgwire's reference services — math, users, orders, files, chat, events and chunked
//! arrays.
//!
//! The unary services are plain typed functions: each takes a params struct that serde
//! fills from positional (`[1, 2]`) or named (`{"a": 1, "b": 2}`) params, and returns a
//! value or an [`RpcError`] with its code. The stream services keep state — a data
//! directory, chat rooms, an event store — in [`Services`], built from a
//! [`ServicesConfig`]. `msgwire serve` registers them all on an RPC router under these
//! names:
//!
//! | method | kind | params | result |
//! |---|---|---|---|
//! | `add` | unary | `a, b` numbers | `a + b` (OUT_OF_RANGE on integer overflow) |
//! | `multiply` | unary | `a, b` numbers | `a * b` |
//! | `greet` | unary | `name` | `"Hello, <name>!"` |
//! | `echo` | unary | `value` | `value` |
//! | `getUser` | unary | `id` | the user, or NOT_FOUND |
//! | `listUsers` | unary | `role?` | users, optionally of one role |
//! | `getOrder` | unary | `id` | the order, or NOT_FOUND |
//! | `listOrders` | unary | `userId?` | orders, optionally of one user |
//! | `upload` | client stream | none; items: `{filename, total_size, content_type?, checksum}` then bins or `{data}` | `{file_id, bytes_uploaded, checksum_verified, checksum}` ([`files`]) |
//! | `download` | server stream | `file_id` | items `{data, offset, size, total_size}` of 64 KiB; result the file's info |
//! | `fileInfo` | unary | `file_id` | `{file_id, filename, content_type, size, checksum, uploaded_at}` |
//! | `chat` | bidirectional | none; items: `{user_id, room_id, content, type}` both ways | `{user_id, room_id}` on leaving ([`chat`]) |
//! | `subscribeEvents` | server stream | `user_id, event_types?, start_time?` | items: events, heartbeats ([`events`]) |
//! | `publishEvent` | unary | `user_id, type, data?` | the event |
//! | `sumChunked` | client stream | none; items: a `chunked_start`, `chunk`…, `chunked_end` sequence of numbers | `{count, sum}` ([`chunked`]) |
//!
//! [`router`] gives the unary services alone, which need no state;
//! [`Services::router`] gives everything, with `getUser` read through the services'
//! [`cache`]. [`STREAM_METHODS`] names the methods that stream.
//!
//! [`RpcError`]: msgwire_wire::RpcError
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bus;
pub mod cache;
pub mod chat;
pub mod chunked;
pub mod events;
pub mod files;
pub mod math;
pub mod orders;
mod services;
pub mod users;

pub use services::{
    sum_chunked_call, ChunkedSum, FileIdParams, PublishParams, Services, ServicesConfig,
    SubscribeParams, DEFAULT_CHAT_BACKLOG, DEFAULT_DATA_DIR, DEFAULT_EVENT_HISTORY,
    DEFAULT_HEARTBEAT,
};

use msgwire_rpc::Router;

/// The methods of [`Services::router`] that stream (items in, out, or both), as opposed
/// to the unary ones: what metrics count as streams open while their calls run.
pub const STREAM_METHODS: &[&str] = &[
    "upload",
    "download",
    "chat",
    "subscribeEvents",
    "sumChunked",
];

/// The unary services — math, users, orders — on a new router: the ones that need no
/// state. [`Services::router`] has these and the stream services.
pub fn router() -> Router {
    register(Router::new())
}

/// Adds the unary services to `router`.
pub fn register(router: Router) -> Router {
    router
        .method("add", |p| async move { math::add(p) })
        .method("multiply", |p| async move { math::multiply(p) })
        .method("greet", |p| async move { math::greet(p) })
        .method_raw("echo", |_ctx, p| async move { math::echo(&p) })
        .method("getUser", |p| async move { users::get_user(p) })
        .method("listUsers", |p| async move { users::list_users(p) })
        .method("getOrder", |p| async move { orders::get_order(p) })
        .method("listOrders", |p| async move { orders::list_orders(p) })
}
