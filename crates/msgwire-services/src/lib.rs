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

pub mod math;
pub mod orders;
pub mod users;
