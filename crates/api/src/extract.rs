//! Request parts as AWS's REST-JSON protocol sends them, with AWS-shaped errors for bad input
//! (axum's own rejections are plain text), and the JSON answers of registry operations.

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, HeaderValue};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ferrocore_identity::registry::{Change, Ctx, RegistryError, RegistryState};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ApiError, ApiState};

/// Path parameters, percent-decoded.
pub(crate) struct AwsPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AwsPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| AwsPath(v))
            .map_err(|e| ApiError::invalid_request(format!("Invalid path: {e}")))
    }
}

/// The query string, deserialised (`?name=value&...`).
pub(crate) struct AwsQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AwsQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(AwsQuery)
            .map_err(|e| ApiError::invalid_request(format!("Invalid query string: {e}")))
    }
}

/// A JSON request body; an empty body reads as `{}`.
pub(crate) fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_request(format!("Invalid JSON in the request body: {e}")))
}

/// A 200 answer with a JSON body.
pub(crate) fn ok_json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(body),
        Err(e) => ApiError::new(500, "InternalFailureException", e.to_string()).into_response(),
    }
}

/// A 200 answer whose body is JSON already.
pub(crate) fn json_bytes(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Runs a read operation at the current time and answers with its JSON.
pub(crate) fn read_json<T: Serialize>(
    state: &ApiState,
    op: impl FnOnce(&RegistryState, &Ctx) -> Result<T, RegistryError>,
) -> Result<Response, ApiError> {
    let ctx = state.registry.ctx();
    let answer = state.registry.read(|s| op(s, &ctx))?;
    Ok(ok_json(&answer))
}

/// Runs a write operation (durable before it answers) and answers with its JSON.
pub(crate) async fn write_json<T: Serialize>(
    state: &ApiState,
    op: impl FnOnce(&RegistryState, &Ctx) -> Result<(T, Vec<Change>), RegistryError>,
) -> Result<Response, ApiError> {
    let answer = state.registry.write(op).await?;
    Ok(ok_json(&answer))
}
