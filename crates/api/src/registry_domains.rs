//! Domain configurations on AWS's paths (`/domainConfigurations[/{name}]`), onto the pure
//! operations of [`ferrocore_identity::registry`] (domains module, which documents the rules,
//! the built-in `iot:Data-ATS` and how server certificates are named).
//!
//! The server certificates themselves are imported through ACM's `ImportCertificate`: see
//! [`crate::acm`].

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use ferrocore_identity::registry::{
    self, CreateDomainConfigurationRequest, ListDomainConfigurationsRequest,
    UpdateDomainConfigurationRequest,
};

use crate::extract::{AwsPath, AwsQuery, json_body, read_json, write_json};
use crate::{ApiError, Shared};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/domainConfigurations", get(list_domain_configurations))
        .route(
            "/domainConfigurations/{domainConfigurationName}",
            get(describe_domain_configuration)
                .post(create_domain_configuration)
                .put(update_domain_configuration)
                .delete(delete_domain_configuration),
        )
}

async fn create_domain_configuration(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: CreateDomainConfigurationRequest = json_body(&body)?;
    req.domain_configuration_name = name;
    write_json(&state, |s, ctx| {
        registry::create_domain_configuration(s, ctx, req)
    })
    .await
}

async fn describe_domain_configuration(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    let endpoint = state.config.endpoint_address.clone();
    read_json(&state, |s, ctx| {
        registry::describe_domain_configuration(s, ctx, &name, &endpoint)
    })
}

async fn list_domain_configurations(
    State(state): State<Shared>,
    AwsQuery(req): AwsQuery<ListDomainConfigurationsRequest>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| {
        registry::list_domain_configurations(s, ctx, &req)
    })
}

async fn update_domain_configuration(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: UpdateDomainConfigurationRequest = json_body(&body)?;
    req.domain_configuration_name = name;
    write_json(&state, |s, ctx| {
        registry::update_domain_configuration(s, ctx, req)
    })
    .await
}

async fn delete_domain_configuration(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    write_json(&state, |s, ctx| {
        registry::delete_domain_configuration(s, ctx, &name)
    })
    .await
}
