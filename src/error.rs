//! The one place errors become HTTP: a status and `{"error": "..."}`.
//!
//! Handlers return `Result<_, ApiError>`; the room's and axum's own error
//! types convert into it here, and every other refusal has a constructor
//! here named for its cause, so no handler picks an error status by hand
//! and no rejection reaches a client as plain text. Two answers are not
//! errors of a request and are made where they are decided: `/healthz`
//! reports `503 {"status":"degraded"}` as its health (`app.rs`), and a
//! connection over the connection limits is answered 503 or 429 on the
//! raw socket before any HTTP is served (`admission.rs`).

use crate::room::RoomError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A `/network` route on a server started without a network in between.
    pub fn no_network() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "this server has no network in between (start it with --network-addr)",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no such route")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    }

    /// A page from an origin that may not use the rooms.
    pub fn origin_refused(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// A request for a name a loopback server does not answer (`host.rs`).
    pub fn host_refused(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// A held long poll that a newer one from the same client replaced.
    pub fn superseded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// Over a rate limit.
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, message)
    }

    /// A body over the size limit.
    pub fn body_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// A body that did not arrive in time.
    pub fn body_too_slow(message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        let status = match e {
            RoomError::BadName => StatusCode::NOT_FOUND,
            RoomError::Invalid(_) => StatusCode::BAD_REQUEST,
            RoomError::Backbone(_) | RoomError::Full { .. } => StatusCode::SERVICE_UNAVAILABLE,
            RoomError::CreationRefused(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for RoomError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let status = match e.status() {
            // axum says 422 for well-formed JSON of the wrong shape; the
            // contract calls every invalid input a 400.
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            other => other,
        };
        let message = match &e {
            JsonRejection::MissingJsonContentType(_) => {
                "expected a body with Content-Type: application/json".to_owned()
            }
            _ => e.body_text(),
        };
        Self::new(status, message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::bad_request(e.body_text())
    }
}

impl From<WebSocketUpgradeRejection> for ApiError {
    fn from(e: WebSocketUpgradeRejection) -> Self {
        Self::new(e.status(), e.body_text())
    }
}
