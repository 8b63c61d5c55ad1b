//! Registry event configurations: `DescribeEventConfigurations` and
//! `UpdateEventConfigurations`, onto [`ferrocore_identity::registry`]'s operations.

use crate::extract::{json_body, read_json, write_json};
use crate::{ApiError, Shared};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use ferrocore_identity::registry::{self, UpdateEventConfigurationsRequest};

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route(
        "/event-configurations",
        get(describe_event_configurations).patch(update_event_configurations),
    )
}

async fn describe_event_configurations(State(state): State<Shared>) -> Result<Response, ApiError> {
    read_json(&state, registry::describe_event_configurations)
}

async fn update_event_configurations(
    State(state): State<Shared>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: UpdateEventConfigurationsRequest = json_body(&body)?;
    write_json(&state, |s, ctx| {
        registry::update_event_configurations(s, ctx, req)
    })
    .await
}
