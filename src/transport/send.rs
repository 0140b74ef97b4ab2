//! `POST /rooms/{room}/messages`: validate, append, answer `201 {"id":N}`.

use crate::app::RoomParam;
use crate::error::ApiError;
use crate::message::Draft;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::Json;

pub async fn post_message(
    RoomParam(room): RoomParam,
    body: Result<Json<Draft>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Json(draft) = body?;
    let posted = room.post(draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": posted.id })),
    ))
}
