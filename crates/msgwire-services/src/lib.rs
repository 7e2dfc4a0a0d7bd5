//! msgwire's reference services — math, users and orders — as plain typed functions.
//!
//! Each function takes a params struct that serde fills from positional (`[1, 2]`) or
//! named (`{"a": 1, "b": 2}`) params, and returns a value or an [`RpcError`] with its
//! code. `msgwire serve` registers them on an RPC router under these names:
//!
//! | method | params | result |
//! |---|---|---|
//! | `add` | `a, b` numbers | `a + b` (OUT_OF_RANGE on integer overflow) |
//! | `multiply` | `a, b` numbers | `a * b` |
//! | `greet` | `name` | `"Hello, <name>!"` |
//! | `echo` | `value` | `value` |
//! | `getUser` | `id` | the user, or NOT_FOUND |
//! | `listUsers` | `role?` | users, optionally of one role |
//! | `getOrder` | `id` | the order, or NOT_FOUND |
//! | `listOrders` | `userId?` | orders, optionally of one user |
//!
//! [`RpcError`]: msgwire_wire::RpcError
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bus;
pub mod chat;
pub mod chunked;
pub mod events;
pub mod files;
pub mod math;
pub mod orders;
pub mod users;

use msgwire_rpc::Router;

/// Every reference service on one router, under the names in the table above.
pub fn router() -> Router {
    register(Router::new())
}

/// Adds every reference service to `router`.
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
