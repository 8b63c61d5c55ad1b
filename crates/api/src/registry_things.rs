//! Things, thing types and thing groups.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use ferrocore_identity::registry::{self, CreateThingRequest};

use crate::extract::{AwsPath, json_body, ok_json};
use crate::{ApiError, Shared};

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route(
        "/things/{thingName}",
        post(create_thing).get(describe_thing),
    )
}

async fn create_thing(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: CreateThingRequest = json_body(&body)?;
    req.thing_name = name;
    let answer = state
        .registry
        .write(|s, ctx| registry::create_thing(s, ctx, req))
        .await?;
    Ok(ok_json(&answer))
}

async fn describe_thing(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    let ctx = state.registry.ctx();
    let answer = state
        .registry
        .read(|s| registry::describe_thing(s, &ctx, &name))?;
    Ok(ok_json(&answer))
}
