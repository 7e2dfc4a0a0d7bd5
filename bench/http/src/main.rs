//! `bare-axum ADDR`: GET /api/users/{id} answered by a plain axum handler from a fixed
//! table, with the same JSON as msgwire's `/api/users/{id}` — the floor the gateway's
//! overhead is measured against. Prints `listening on ADDR` once bound.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

#[derive(Serialize)]
struct User {
    id: u64,
    name: &'static str,
    role: &'static str,
    email: &'static str,
}

const USERS: [(u64, &str, &str, &str); 3] = [
    (1, "Alice", "admin", "alice@example.com"),
    (2, "Bob", "editor", "bob@example.com"),
    (3, "Charlie", "viewer", "charlie@example.com"),
];

async fn user(Path(id): Path<u64>) -> Result<Json<User>, StatusCode> {
    USERS
        .iter()
        .find(|u| u.0 == id)
        .map(|&(id, name, role, email)| {
            Json(User {
                id,
                name,
                role,
                email,
            })
        })
        .ok_or(StatusCode::NOT_FOUND)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let app = Router::new().route("/api/users/{id}", get(user));
    axum::serve(listener, app).await
}
