//! Things, thing types and thing groups: AWS's paths, methods and members, onto the pure
//! operations of [`ferrocore_identity::registry`].
//!
//! Writes go through [`Registry::write`](ferrocore_identity::registry::Registry::write)
//! (durable before they answer); reads through `Registry::read`.

use crate::extract::{AwsPath, AwsQuery, json_body, read_json, write_json};
use crate::{ApiError, Shared};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post, put};
use bytes::Bytes;
use ferrocore_identity::registry::{
    self, CreateThingGroupRequest, CreateThingRequest, CreateThingTypeRequest,
    DeleteThingGroupRequest, DeleteThingRequest, DeprecateThingTypeRequest,
    ListThingGroupsForThingRequest, ListThingGroupsRequest, ListThingTypesRequest,
    ListThingsInThingGroupRequest, ListThingsRequest, ThingGroupMembershipRequest,
    UpdateThingGroupRequest, UpdateThingRequest, UpdateThingTypeRequest,
};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/things", get(list_things))
        .route(
            "/things/{thingName}",
            post(create_thing)
                .get(describe_thing)
                .patch(update_thing)
                .delete(delete_thing),
        )
        .route(
            "/things/{thingName}/thing-groups",
            get(list_thing_groups_for_thing),
        )
        .route("/thing-types", get(list_thing_types))
        .route(
            "/thing-types/{thingTypeName}",
            post(create_thing_type)
                .get(describe_thing_type)
                .patch(update_thing_type)
                .delete(delete_thing_type),
        )
        .route(
            "/thing-types/{thingTypeName}/deprecate",
            post(deprecate_thing_type),
        )
        .route("/thing-groups", get(list_thing_groups))
        .route(
            "/thing-groups/{thingGroupName}",
            post(create_thing_group)
                .get(describe_thing_group)
                .patch(update_thing_group)
                .delete(delete_thing_group),
        )
        .route(
            "/thing-groups/{thingGroupName}/things",
            get(list_things_in_thing_group),
        )
        .route(
            "/thing-groups/addThingToThingGroup",
            put(add_thing_to_thing_group),
        )
        .route(
            "/thing-groups/removeThingFromThingGroup",
            put(remove_thing_from_thing_group),
        )
}

// ------------------------------------------------------------------------------------- things

async fn create_thing(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: CreateThingRequest = json_body(&body)?;
    req.thing_name = name;
    write_json(&state, |s, ctx| registry::create_thing(s, ctx, req)).await
}

async fn describe_thing(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| registry::describe_thing(s, ctx, &name))
}

async fn list_things(
    State(state): State<Shared>,
    AwsQuery(req): AwsQuery<ListThingsRequest>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| registry::list_things(s, ctx, req))
}

async fn update_thing(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: UpdateThingRequest = json_body(&body)?;
    req.thing_name = name;
    write_json(&state, |s, ctx| registry::update_thing(s, ctx, req)).await
}

async fn delete_thing(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    AwsQuery(mut req): AwsQuery<DeleteThingRequest>,
) -> Result<Response, ApiError> {
    req.thing_name = name;
    write_json(&state, |s, ctx| registry::delete_thing(s, ctx, req)).await
}

async fn list_thing_groups_for_thing(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    AwsQuery(mut req): AwsQuery<ListThingGroupsForThingRequest>,
) -> Result<Response, ApiError> {
    req.thing_name = name;
    read_json(&state, |s, ctx| {
        registry::list_thing_groups_for_thing(s, ctx, req)
    })
}

// -------------------------------------------------------------------------------- thing types

async fn create_thing_type(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: CreateThingTypeRequest = json_body(&body)?;
    req.thing_type_name = name;
    write_json(&state, |s, ctx| registry::create_thing_type(s, ctx, req)).await
}

async fn describe_thing_type(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| {
        registry::describe_thing_type(s, ctx, &name)
    })
}

async fn list_thing_types(
    State(state): State<Shared>,
    AwsQuery(req): AwsQuery<ListThingTypesRequest>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| registry::list_thing_types(s, ctx, req))
}

async fn update_thing_type(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: UpdateThingTypeRequest = json_body(&body)?;
    req.thing_type_name = name;
    write_json(&state, |s, ctx| registry::update_thing_type(s, ctx, req)).await
}

async fn deprecate_thing_type(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: DeprecateThingTypeRequest = json_body(&body)?;
    req.thing_type_name = name;
    write_json(&state, |s, ctx| registry::deprecate_thing_type(s, ctx, req)).await
}

async fn delete_thing_type(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    write_json(&state, |s, ctx| registry::delete_thing_type(s, ctx, &name)).await
}

// ------------------------------------------------------------------------------- thing groups

async fn create_thing_group(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: CreateThingGroupRequest = json_body(&body)?;
    req.thing_group_name = name;
    write_json(&state, |s, ctx| registry::create_thing_group(s, ctx, req)).await
}

async fn describe_thing_group(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| {
        registry::describe_thing_group(s, ctx, &name)
    })
}

async fn list_thing_groups(
    State(state): State<Shared>,
    AwsQuery(req): AwsQuery<ListThingGroupsRequest>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| registry::list_thing_groups(s, ctx, req))
}

async fn update_thing_group(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: UpdateThingGroupRequest = json_body(&body)?;
    req.thing_group_name = name;
    write_json(&state, |s, ctx| registry::update_thing_group(s, ctx, req)).await
}

async fn delete_thing_group(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    AwsQuery(mut req): AwsQuery<DeleteThingGroupRequest>,
) -> Result<Response, ApiError> {
    req.thing_group_name = name;
    write_json(&state, |s, ctx| registry::delete_thing_group(s, ctx, req)).await
}

async fn list_things_in_thing_group(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    AwsQuery(mut req): AwsQuery<ListThingsInThingGroupRequest>,
) -> Result<Response, ApiError> {
    req.thing_group_name = name;
    read_json(&state, |s, ctx| {
        registry::list_things_in_thing_group(s, ctx, req)
    })
}

async fn add_thing_to_thing_group(
    State(state): State<Shared>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: ThingGroupMembershipRequest = json_body(&body)?;
    write_json(&state, |s, ctx| {
        registry::add_thing_to_thing_group(s, ctx, req)
    })
    .await
}

async fn remove_thing_from_thing_group(
    State(state): State<Shared>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: ThingGroupMembershipRequest = json_body(&body)?;
    write_json(&state, |s, ctx| {
        registry::remove_thing_from_thing_group(s, ctx, req)
    })
    .await
}
