//! users: `getUser(id)`, `listUsers(role?)` over a fixed directory — Alice (admin), Bob
//! (editor), Charlie (viewer).

use msgwire_wire::RpcError;
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
