//! `POST /rooms/{room}/messages`: validate, append, answer `201 {"id":N}`.
//!
//! An address over the send rate gets `429` (see `ratelimit.rs`); HTTP has
//! no lasting connection to hold a bucket, so the address is the client.

use crate::app::{AppState, Conn, RoomParam};
use crate::error::ApiError;
use crate::message::Draft;
use crate::ratelimit;
use crate::stats::Limit;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
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
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ratelimit::refusal(state.http_sends.limit()),
            ));
        }
    }
    let Json(draft) = body?;
    let posted = room.post(draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": posted.id })),
    ))
}
