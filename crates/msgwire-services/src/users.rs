//! users: `getUser(id)`, `listUsers(role?)` over a fixed directory — Alice (admin), Bob
//! (editor), Charlie (viewer).
//!
//! [`get_user_cached`] is `getUser` read through a [`Cache`] under `users:<id>`, as
//! [`Services`](crate::Services) serves it:
//!
//! ```
//! use msgwire_services::cache::{Cache, MemoryCache};
//! use msgwire_services::users::{get_user_cached, GetUserParams};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), msgwire_wire::RpcError> {
//! let cache = MemoryCache::default();
//! let bob = get_user_cached(&cache, None, GetUserParams { id: 2 }).await?;
//! let again = get_user_cached(&cache, None, GetUserParams { id: 2 }).await?;
//! assert_eq!(bob.name, "Bob");
//! assert_eq!(again, bob);
//! assert_eq!((cache.stats().misses, cache.stats().hits), (1, 1));
//! # Ok(()) }
//! ```

use std::time::Duration;

use msgwire_wire::{Limits, RawValue, RpcError};

use crate::cache::{encode, key, Cache, CacheError};
use serde::{Deserialize, Serialize};

/// A user record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// `admin`, `editor` or `viewer`.
    pub role: String,
    /// Email address.
    pub email: String,
}

/// The directory.
pub fn directory() -> Vec<User> {
    [
        (1, "Alice", "admin"),
        (2, "Bob", "editor"),
        (3, "Charlie", "viewer"),
    ]
    .into_iter()
    .map(|(id, name, role)| User {
        id,
        name: name.to_owned(),
        role: role.to_owned(),
        email: format!("{}@example.com", name.to_lowercase()),
    })
    .collect()
}

/// `getUser` params: `[id]` or `{"id": ..}`.
#[derive(Debug, Clone, Deserialize)]
pub struct GetUserParams {
    /// The user's id.
    pub id: u64,
}

/// The user with that id, or NOT_FOUND.
pub fn get_user(p: GetUserParams) -> Result<User, RpcError> {
    directory()
        .into_iter()
        .find(|u| u.id == p.id)
        .ok_or_else(|| RpcError::not_found(format!("user {} not found", p.id)))
}

/// [`get_user`] read through `cache` under `users:<id>`, stored for `ttl` (`None`: the
/// cache's default). NOT_FOUND is not cached: an unknown id is looked up every time
/// (callers asking for it at once still share one lookup, and its error).
pub async fn get_user_cached(
    cache: &dyn Cache,
    ttl: Option<Duration>,
    p: GetUserParams,
) -> Result<User, RpcError> {
    let raw = get_user_cached_raw(cache, ttl, p).await?;
    raw.deserialize()
        .map_err(|e| RpcError::internal(format!("a cached user cannot be read: {e}")))
}

/// [`get_user_cached`] as the MessagePack the cache holds, not decoded: what the
/// `getUser` method answers with, so a hit costs no decoding and encoding.
pub async fn get_user_cached_raw(
    cache: &dyn Cache,
    ttl: Option<Duration>,
    p: GetUserParams,
) -> Result<RawValue, RpcError> {
    let id = p.id;
    let lookup = Box::pin(async move { encode(&get_user(p).map_err(CacheError::compute)?) });
    let bytes = cache.get_or_set(&key("users", id), ttl, lookup).await?;
    RawValue::from_bytes(bytes, &Limits::default())
        .map_err(|e| RpcError::internal(format!("the cached users:{id} is not MessagePack: {e}")))
}

/// `listUsers` params: `[]`, `[role]` or `{"role": ..}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListUsersParams {
    /// Only users with this role.
    pub role: Option<String>,
}

/// Every user, or those with the given role.
pub fn list_users(p: ListUsersParams) -> Result<Vec<User>, RpcError> {
    Ok(directory()
        .into_iter()
        .filter(|u| p.role.as_ref().is_none_or(|r| &u.role == r))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(
            get_user(GetUserParams { id: 2 })
                .map(|u| u.name)
                .ok()
                .as_deref(),
            Some("Bob")
        );
        let missing = get_user(GetUserParams { id: 99 }).err();
        assert_eq!(
            missing.map(|e| e.message),
            Some("user 99 not found".to_owned())
        );
        assert_eq!(
            list_users(ListUsersParams::default()).map(|v| v.len()).ok(),
            Some(3)
        );
        let admins = list_users(ListUsersParams {
            role: Some("admin".into()),
        })
        .unwrap_or_default();
        assert_eq!(admins.len(), 1);
        assert_eq!(admins[0].name, "Alice");
    }
}
