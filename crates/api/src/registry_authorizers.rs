//! Custom authorizers and the account's default authorizer on AWS's paths, onto the pure
//! operations of [`ferrocore_identity::registry`] (authorizers module, which documents the
//! rules and how `authorizerFunctionArn` names a webhook or a built-in function).
//!
//! AWS's surprise kept: ListAuthorizers is `GET /authorizers/` with a trailing slash (the path
//! without it is answered too).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use ferrocore_identity::registry::{
    self, CreateAuthorizerRequest, ListAuthorizersRequest, SetDefaultAuthorizerRequest,
    UpdateAuthorizerRequest,
};

use crate::extract::{AwsPath, AwsQuery, json_body, read_json, write_json};
use crate::{ApiError, Shared};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/authorizers/", get(list_authorizers))
        .route("/authorizers", get(list_authorizers))
        .route(
            "/authorizer/{authorizerName}",
            post(create_authorizer)
                .get(describe_authorizer)
                .put(update_authorizer)
                .delete(delete_authorizer),
        )
        .route(
            "/default-authorizer",
            post(set_default_authorizer)
                .get(describe_default_authorizer)
                .delete(clear_default_authorizer),
        )
}

async fn create_authorizer(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: CreateAuthorizerRequest = json_body(&body)?;
    req.authorizer_name = name;
    write_json(&state, |s, ctx| registry::create_authorizer(s, ctx, req)).await
}

async fn describe_authorizer(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| {
        registry::describe_authorizer(s, ctx, &name)
    })
}

async fn list_authorizers(
    State(state): State<Shared>,
    AwsQuery(req): AwsQuery<ListAuthorizersRequest>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| registry::list_authorizers(s, ctx, &req))
}

async fn update_authorizer(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: UpdateAuthorizerRequest = json_body(&body)?;
    req.authorizer_name = name;
    write_json(&state, |s, ctx| registry::update_authorizer(s, ctx, req)).await
}

async fn delete_authorizer(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    write_json(&state, |s, ctx| registry::delete_authorizer(s, ctx, &name)).await
}

async fn set_default_authorizer(
    State(state): State<Shared>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: SetDefaultAuthorizerRequest = json_body(&body)?;
    write_json(&state, |s, ctx| {
        registry::set_default_authorizer(s, ctx, req)
    })
    .await
}

async fn describe_default_authorizer(State(state): State<Shared>) -> Result<Response, ApiError> {
    read_json(&state, registry::describe_default_authorizer)
}

async fn clear_default_authorizer(State(state): State<Shared>) -> Result<Response, ApiError> {
    write_json(&state, registry::clear_default_authorizer).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn routes_do_not_conflict() {
        // axum panics on building conflicting routes.
        let _ = super::routes();
    }
}
