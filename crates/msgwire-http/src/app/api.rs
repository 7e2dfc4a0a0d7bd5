//! The fixed endpoints: users, orders and the dashboard, as the seed's gateway and
//! services serve them.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use msgwire_wire::{Code, RawValue};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::error::{ApiError, Failure};
use crate::negotiate::{accept, Format};

/// An answer: `value` in `format`, 200.
pub(super) fn ok(value: &RawValue, format: Format) -> Response {
    match format.encode(value) {
        Ok(body) => {
            let mut response = body.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            response
        }
        Err(error) => ApiError::new(Code::Internal, error).respond(format),
    }
}

/// The format `headers` accept, `default` when they say nothing; a 406 otherwise.
pub(super) fn negotiate(headers: &HeaderMap, default: Format) -> Result<Format, Failure> {
    accept(headers, default).map_err(|e| Failure(ApiError::not_acceptable(e), Format::Json))
}

/// A path id as a number, or 400.
fn id(text: &str, what: &str, format: Format) -> Result<u64, Failure> {
    text.parse().map_err(|_| {
        Failure(
            ApiError::new(
                Code::InvalidArgument,
                format!("{what} must be a non-negative integer, not {text:?}"),
            ),
            format,
        )
    })
}

fn params<T: Serialize>(value: &T, format: Format) -> Result<RawValue, Failure> {
    RawValue::serialize(value)
        .map_err(|e| Failure(ApiError::new(Code::Internal, e.to_string()), format))
}

#[derive(Serialize)]
struct IdParams {
    id: u64,
}

/// One call answered in `format`.
async fn answer(
    state: &AppState,
    method: &str,
    params: RawValue,
    format: Format,
) -> Result<Response, Failure> {
    let result = state
        .config()
        .backend
        .call(method, params)
        .await
        .map_err(|e| Failure(e, format))?;
    Ok(ok(&result, format))
}

async fn get_by_id(
    state: &AppState,
    method: &str,
    what: &str,
    text: &str,
    format: Format,
) -> Result<Response, Failure> {
    let id = id(text, what, format)?;
    answer(state, method, params(&IdParams { id }, format)?, format).await
}

/// `GET /api/users/{id}`: JSON unless `Accept` asks for MessagePack.
pub(super) async fn api_user(
    State(state): State<AppState>,
    Path(text): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let format = negotiate(&headers, Format::Json)?;
    get_by_id(&state, "getUser", "the user id", &text, format).await
}

/// `GET /api/msgpack/users/{id}`: always MessagePack (a JSON-only `Accept` is 406).
pub(super) async fn api_msgpack_user(
    State(state): State<AppState>,
    Path(text): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    match negotiate(&headers, Format::Msgpack)? {
        Format::Msgpack => {
            get_by_id(&state, "getUser", "the user id", &text, Format::Msgpack).await
        }
        Format::Json => Err(Failure(
            ApiError::not_acceptable("this endpoint answers application/x-msgpack only"),
            Format::Json,
        )),
    }
}

/// `GET /users/{id}`: MessagePack unless `Accept` asks for JSON.
pub(super) async fn user(
    State(state): State<AppState>,
    Path(text): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let format = negotiate(&headers, Format::Msgpack)?;
    get_by_id(&state, "getUser", "the user id", &text, format).await
}

/// `GET /orders/{id}`.
pub(super) async fn order(
    State(state): State<AppState>,
    Path(text): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let format = negotiate(&headers, Format::Msgpack)?;
    get_by_id(&state, "getOrder", "the order id", &text, format).await
}

#[derive(Debug, Deserialize, Serialize)]
pub(super) struct RoleQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// `GET /users?role=`.
pub(super) async fn list_users(
    State(state): State<AppState>,
    query: Result<Query<RoleQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let format = negotiate(&headers, Format::Msgpack)?;
    let Query(query) = query.map_err(|e| bad_query(&e, format))?;
    answer(&state, "listUsers", params(&query, format)?, format).await
}

#[derive(Debug, Deserialize)]
pub(super) struct UserQuery {
    #[serde(rename = "userId")]
    user_id: Option<String>,
}

#[derive(Serialize)]
struct UserIdParams {
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    user_id: Option<u64>,
}

/// `GET /orders?userId=`.
pub(super) async fn list_orders(
    State(state): State<AppState>,
    query: Result<Query<UserQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let format = negotiate(&headers, Format::Msgpack)?;
    let Query(query) = query.map_err(|e| bad_query(&e, format))?;
    let user_id = match &query.user_id {
        Some(text) => Some(id(text, "userId", format)?),
        None => None,
    };
    answer(
        &state,
        "listOrders",
        params(&UserIdParams { user_id }, format)?,
        format,
    )
    .await
}

fn bad_query(error: &QueryRejection, format: Format) -> Failure {
    Failure(
        ApiError::new(Code::InvalidArgument, format!("bad query string: {error}")),
        format,
    )
}

/// `GET /api/dashboard/{userId}`: `{user, orders}` from both services at once. Either
/// failing answers with its error.
pub(super) async fn dashboard(
    State(state): State<AppState>,
    Path(text): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let format = negotiate(&headers, Format::Json)?;
    let user_id = id(&text, "the user id", format)?;
    let backend = &state.config().backend;
    let (user, orders) = tokio::join!(
        backend.call("getUser", params(&IdParams { id: user_id }, format)?),
        backend.call(
            "listOrders",
            params(
                &UserIdParams {
                    user_id: Some(user_id)
                },
                format
            )?
        ),
    );
    let user = user.map_err(|e| Failure(e, format))?;
    let orders = orders.map_err(|e| Failure(e, format))?;
    // Both parts are MessagePack already: the map around them is two keys.
    let mut body = vec![0x82, 0xa4];
    body.extend_from_slice(b"user");
    body.extend_from_slice(user.as_bytes());
    body.push(0xa6);
    body.extend_from_slice(b"orders");
    body.extend_from_slice(orders.as_bytes());
    let limits = msgwire_wire::Limits::default();
    let joined = RawValue::from_bytes(body, &limits)
        .map_err(|e| Failure(ApiError::new(Code::Internal, e.to_string()), format))?;
    Ok(ok(&joined, format))
}
