//! IoT policies, their versions and attachments, GetEffectivePolicies and TestAuthorization
//! on AWS's paths, onto the pure operations of [`ferrocore_identity::registry`] (policies
//! module).
//!
//! AWS's surprises kept: `DetachPolicy`, `ListAttachedPolicies`, `ListTargetsForPolicy`,
//! `GetEffectivePolicies` and `TestAuthorization` are `POST`s; `ListAttachedPolicies` carries
//! its target (an ARN, percent-encoded) in the path; `TestAuthorization` takes `clientId` and
//! `GetEffectivePolicies` `thingName` in the query string. GetEffectivePolicies and
//! TestAuthorization are answered by the resolver and compiled policies the broker enforces.
//!
//! Beyond AWS: `POST /explain-authorization` (`ExplainAuthorization`, behind `ferrocore policy
//! explain`): a JSON body naming a principal (certificate ARN or id) or a thing, or policy
//! documents, with an action, a resource (full or short form) and optional variables; the
//! answer is the decision, the statement that made it and every statement's outcome, from the
//! same resolver and compiled policies (see `ferrocore_identity::registry::explain_authorization`).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post, put};
use bytes::Bytes;
use ferrocore_identity::registry::{
    self, CreatePolicyRequest, CreatePolicyVersionRequest, ExplainAuthorizationRequest,
    GetEffectivePoliciesRequest, ListAttachedPoliciesRequest, ListTargetsForPolicyRequest,
    MarkerPage, PolicyTargetBody, TestAuthorizationRequest,
};
use serde::Deserialize;

use crate::extract::{AwsPath, AwsQuery, json_body, read_json, write_json};
use crate::{ApiError, Shared};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/policies", get(list_policies))
        .route(
            "/policies/{policyName}",
            post(create_policy).get(get_policy).delete(delete_policy),
        )
        .route(
            "/policies/{policyName}/version",
            post(create_policy_version).get(list_policy_versions),
        )
        .route(
            "/policies/{policyName}/version/{policyVersionId}",
            get(get_policy_version)
                .patch(set_default_policy_version)
                .delete(delete_policy_version),
        )
        .route(
            "/target-policies/{policyName}",
            put(attach_policy).post(detach_policy),
        )
        .route("/attached-policies/{target}", post(list_attached_policies))
        .route(
            "/policy-targets/{policyName}",
            post(list_targets_for_policy),
        )
        .route("/effective-policies", post(get_effective_policies))
        .route("/test-authorization", post(test_authorization))
        .route("/explain-authorization", post(explain_authorization))
}

async fn create_policy(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: CreatePolicyRequest = json_body(&body)?;
    req.policy_name = name;
    write_json(&state, |s, ctx| registry::create_policy(s, ctx, req)).await
}

async fn get_policy(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| registry::get_policy(s, ctx, &name))
}

async fn list_policies(
    State(state): State<Shared>,
    AwsQuery(page): AwsQuery<MarkerPage>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| registry::list_policies(s, ctx, &page))
}

async fn delete_policy(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    write_json(&state, |s, ctx| registry::delete_policy(s, ctx, &name)).await
}

#[derive(Deserialize)]
struct SetAsDefault {
    #[serde(rename = "setAsDefault", default)]
    set_as_default: bool,
}

async fn create_policy_version(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    AwsQuery(q): AwsQuery<SetAsDefault>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: CreatePolicyVersionRequest = json_body(&body)?;
    req.policy_name = name;
    req.set_as_default = q.set_as_default;
    write_json(&state, |s, ctx| {
        registry::create_policy_version(s, ctx, req)
    })
    .await
}

async fn list_policy_versions(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| {
        registry::list_policy_versions(s, ctx, &name)
    })
}

async fn get_policy_version(
    State(state): State<Shared>,
    AwsPath((name, version)): AwsPath<(String, String)>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| {
        registry::get_policy_version(s, ctx, &name, &version)
    })
}

async fn set_default_policy_version(
    State(state): State<Shared>,
    AwsPath((name, version)): AwsPath<(String, String)>,
) -> Result<Response, ApiError> {
    write_json(&state, |s, ctx| {
        registry::set_default_policy_version(s, ctx, &name, &version)
    })
    .await
}

async fn delete_policy_version(
    State(state): State<Shared>,
    AwsPath((name, version)): AwsPath<(String, String)>,
) -> Result<Response, ApiError> {
    write_json(&state, |s, ctx| {
        registry::delete_policy_version(s, ctx, &name, &version)
    })
    .await
}

async fn attach_policy(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PolicyTargetBody = json_body(&body)?;
    write_json(&state, |s, ctx| {
        registry::attach_policy(s, ctx, &name, req.target.as_deref())
    })
    .await
}

async fn detach_policy(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PolicyTargetBody = json_body(&body)?;
    write_json(&state, |s, ctx| {
        registry::detach_policy(s, ctx, &name, req.target.as_deref())
    })
    .await
}

async fn list_attached_policies(
    State(state): State<Shared>,
    AwsPath(target): AwsPath<String>,
    AwsQuery(mut req): AwsQuery<ListAttachedPoliciesRequest>,
) -> Result<Response, ApiError> {
    req.target = target;
    read_json(&state, |s, ctx| {
        registry::list_attached_policies(s, ctx, req)
    })
}

async fn list_targets_for_policy(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    AwsQuery(mut req): AwsQuery<ListTargetsForPolicyRequest>,
) -> Result<Response, ApiError> {
    req.policy_name = name;
    read_json(&state, |s, ctx| {
        registry::list_targets_for_policy(s, ctx, req)
    })
}

#[derive(Deserialize)]
struct ThingNameQuery {
    #[serde(rename = "thingName")]
    thing_name: Option<String>,
}

async fn get_effective_policies(
    State(state): State<Shared>,
    AwsQuery(q): AwsQuery<ThingNameQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: GetEffectivePoliciesRequest = json_body(&body)?;
    req.thing_name = q.thing_name;
    read_json(&state, |s, ctx| {
        registry::get_effective_policies(s, ctx, req)
    })
}

#[derive(Deserialize)]
struct ClientIdQuery {
    #[serde(rename = "clientId")]
    client_id: Option<String>,
}

async fn test_authorization(
    State(state): State<Shared>,
    AwsQuery(q): AwsQuery<ClientIdQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: TestAuthorizationRequest = json_body(&body)?;
    req.client_id = q.client_id;
    let cache = state.registry.policy_cache();
    read_json(&state, |s, ctx| {
        registry::test_authorization(s, ctx, cache, req)
    })
}

/// `ExplainAuthorization` (a Ferrocore extension).
async fn explain_authorization(
    State(state): State<Shared>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: ExplainAuthorizationRequest = json_body(&body)?;
    let cache = state.registry.policy_cache();
    read_json(&state, |s, ctx| {
        registry::explain_authorization(s, ctx, cache, req)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn routes_do_not_conflict() {
        // axum panics on building conflicting routes.
        let _ = super::routes();
    }
}
