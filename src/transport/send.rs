//! `POST /rooms/{room}/messages`: validate, append, answer `201 {"id":N}`.
//!
//! An address over the send rate gets `429` (see `ratelimit.rs`); HTTP has
//! no lasting connection to hold a bucket, so the address is the client.
//! The body must arrive within the header timeout ([`read_body_in_time`]):
//! hyper times the head only, and a body sent a byte at a time would hold
//! the connection as long as the sender liked.

use crate::error::ApiError;
use crate::message::Draft;
use crate::ratelimit;
use crate::state::{AppState, Conn, RoomParam};
use crate::stats::Limit;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;

pub async fn post_message(
    State(state): State<AppState>,
    RoomParam(room): RoomParam,
    Conn(conn): Conn,
    body: Result<Json<Draft>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if let Some(ip) = conn.map(|c| c.peer.ip()) {
        if state.admission.limits_apply_to(ip) && !state.http_sends.try_take(ip) {
            state.stats.count(Limit::SendsRateLimited);
            return Err(ApiError::rate_limited(ratelimit::refusal(
                state.http_sends.limit(),
            )));
        }
    }
    let Json(draft) = body?;
    let posted = room.post(draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": posted.id })),
    ))
}

/// Middleware: reads the whole body (at most `max_body_bytes`) within the
/// header timeout, then hands it on; `408` when it does not arrive in time.
pub async fn read_body_in_time(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let limit = state.config.max_body_bytes;
    let deadline = state.config.header_timeout;
    let bytes = match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return Err(ApiError::body_too_large(format!(
                "the body must be at most {limit} bytes"
            )))
        }
        Err(_) => {
            return Err(ApiError::body_too_slow(format!(
                "the body did not arrive within {deadline:?}"
            )))
        }
    };
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
}
