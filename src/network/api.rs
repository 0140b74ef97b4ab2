//! `GET /network` and `PUT /network`: read and change the conditions while
//! the proxy runs. The demo page's network panel and the tests use them.
//!
//! - `GET /network` -> `{"addr":"127.0.0.1:3001","conditions":{...},
//!   "spec":"rtt=50ms","counters":{...}}`;
//! - `PUT /network` with a JSON object of the fields to change (see
//!   [`Patch`]; `{"reset":true}` first clears everything) -> the same body
//!   as GET. Unknown fields, wrong types and values out of bounds are a
//!   `400` that says which, and change nothing;
//! - `POST /network/drop` cuts every connection through the network now.
//!
//! A server started without `--network-addr` answers `404` to all three.
//! The body is bounded by the router's body limit, and the values by
//! `conditions.rs`.

use super::conditions::Patch;
use super::Network;
use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

type Shared = Option<Arc<Network>>;

/// The routes, for any router state: they carry their own.
pub fn routes<S: Clone + Send + Sync + 'static>(network: Shared) -> Router<S> {
    Router::new()
        .route("/network", get(read).put(change))
        .route("/network/drop", post(drop_now))
        .with_state(network)
}

fn network(shared: &Shared) -> Result<&Arc<Network>, ApiError> {
    shared.as_ref().ok_or_else(ApiError::no_network)
}

fn answer(network: &Network) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(network.to_json()),
    )
        .into_response()
}

async fn read(State(shared): State<Shared>) -> Result<Response, ApiError> {
    Ok(answer(network(&shared)?))
}

async fn change(
    State(shared): State<Shared>,
    patch: Result<Json<Patch>, JsonRejection>,
) -> Result<Response, ApiError> {
    let network = network(&shared)?;
    let Json(patch) = patch?;
    network.patch(&patch).map_err(ApiError::bad_request)?;
    Ok(answer(network))
}

async fn drop_now(State(shared): State<Shared>) -> Result<Response, ApiError> {
    let network = network(&shared)?;
    network.cut_all();
    Ok(answer(network))
}
