//! Custom authorizers and the account's default authorizer on AWS's paths, onto the pure
//! operations of [`ferrocore_identity::registry`] (authorizers module, which documents the
//! rules and how `authorizerFunctionArn` names a webhook or a built-in function).
//!
//! AWS's surprise kept: ListAuthorizers is `GET /authorizers/` with a trailing slash (the path
//! without it is answered too).
//!
//! TestInvokeAuthorizer (`POST /authorizer/{name}/test`) runs the authorizer as a device
//! connection would, through [`AuthorizerInvoker::test_invoke`] (no cache; an INACTIVE
//! authorizer is tried too, since authorizers are created INACTIVE and are tested before being
//! activated). The request's contexts become the authorizer event (`protocols` lists `tls`,
//! `http`, `mqtt` for the contexts given). Answers:
//! - 200 with the answer, `policyDocuments` as JSON strings, also when `isAuthenticated` is
//!   false;
//! - ResourceNotFoundException for an unknown authorizer;
//! - InvalidRequestException for a malformed request, a missing or non-verifying token
//!   signature when signing is enabled, and a function that cannot be called here (a Lambda
//!   ARN, an undeclared built-in, plain http:// to a non-loopback host);
//! - InvalidResponseException when the function gave no valid answer (unreachable, non-2xx,
//!   timeout, malformed answer, busy or its breaker open), with the reason.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use ferrocore_identity::custom_auth::{
    AuthorizerAnswer, AuthorizerInvoker, AuthorizerRequest, Denial, HttpContext, MAX_TOKEN_CHARS,
    MqttContext, TlsContext, check_signature_format,
};
use ferrocore_identity::registry::{
    self, CreateAuthorizerRequest, ListAuthorizersRequest, SetDefaultAuthorizerRequest,
    UpdateAuthorizerRequest, validate_authorizer_name,
};
use serde::{Deserialize, Serialize};

use crate::extract::{AwsPath, AwsQuery, json_body, ok_json, read_json, write_json};
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
            "/authorizer/{authorizerName}/test",
            post(test_invoke_authorizer),
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

/// `TestInvokeAuthorizer`'s body (the model's members).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestInvokeAuthorizerRequest {
    token: Option<String>,
    token_signature: Option<String>,
    http_context: Option<TestHttpContext>,
    mqtt_context: Option<TestMqttContext>,
    tls_context: Option<TestTlsContext>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestHttpContext {
    headers: Option<BTreeMap<String, String>>,
    query_string: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestMqttContext {
    username: Option<String>,
    /// A blob: base64 in the JSON.
    password: Option<String>,
    client_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestTlsContext {
    server_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TestInvokeAuthorizerResponse {
    is_authenticated: bool,
    principal_id: String,
    policy_documents: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_after_in_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_after_in_seconds: Option<u64>,
}

/// The model's limits on the request's strings.
const MAX_QUERY_STRING_CHARS: usize = 4096;
const MAX_SERVER_NAME_CHARS: usize = 253;
const MAX_MQTT_FIELD_BYTES: usize = 65_535;

async fn test_invoke_authorizer(
    State(state): State<Shared>,
    AwsPath(name): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: TestInvokeAuthorizerRequest = json_body(&body)?;
    validate_authorizer_name(&name)?;
    let record = state
        .registry
        .read(|s| s.authorizer(&name).cloned())
        .ok_or_else(|| {
            ApiError::new(
                404,
                "ResourceNotFoundException",
                format!("Authorizer {name} not found."),
            )
        })?;
    let signature = req.token_signature.clone();
    let request = authorizer_request(req)?;
    let invoker: &AuthorizerInvoker = &state.authorizer_invoker;
    match invoker
        .test_invoke(&record, request, signature.as_deref())
        .await
    {
        Ok(answer) => Ok(ok_json(&test_answer(&answer))),
        Err(denial) => Err(denial_error(&name, &denial)),
    }
}

/// The authorizer event of a TestInvokeAuthorizer request, checked against the model.
fn authorizer_request(req: TestInvokeAuthorizerRequest) -> Result<AuthorizerRequest, ApiError> {
    let too_long = |member: &str, max: usize| {
        ApiError::invalid_request(format!("{member} must be 1 to {max} characters long."))
    };
    if let Some(token) = &req.token
        && (token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS)
    {
        return Err(too_long("token", MAX_TOKEN_CHARS));
    }
    if let Some(signature) = &req.token_signature {
        check_signature_format(signature)
            .map_err(|e| ApiError::invalid_request(format!("tokenSignature is invalid: {e}.")))?;
    }
    let http = match req.http_context {
        None => None,
        Some(context) => {
            let query = context.query_string.unwrap_or_default();
            if query.chars().count() > MAX_QUERY_STRING_CHARS {
                return Err(too_long("httpContext.queryString", MAX_QUERY_STRING_CHARS));
            }
            Some(HttpContext {
                headers: context.headers.unwrap_or_default().into_iter().collect(),
                // The model's example writes it with its `?`; the event adds one.
                query: query.strip_prefix('?').unwrap_or(&query).to_owned(),
            })
        }
    };
    let mqtt = match req.mqtt_context {
        None => None,
        Some(context) => {
            let password = context
                .password
                .map(|b64| {
                    BASE64.decode(b64.as_bytes()).map_err(|_| {
                        ApiError::invalid_request("mqttContext.password must be base64.")
                    })
                })
                .transpose()?;
            let oversized = context
                .username
                .as_ref()
                .is_some_and(|u| u.len() > MAX_MQTT_FIELD_BYTES)
                || context
                    .client_id
                    .as_ref()
                    .is_some_and(|c| c.len() > MAX_MQTT_FIELD_BYTES)
                || password
                    .as_ref()
                    .is_some_and(|p| p.len() > MAX_MQTT_FIELD_BYTES);
            if oversized {
                return Err(ApiError::invalid_request(format!(
                    "mqttContext members are at most {MAX_MQTT_FIELD_BYTES} bytes."
                )));
            }
            Some(MqttContext {
                username: context.username,
                password,
                client_id: context.client_id,
            })
        }
    };
    let tls = match req.tls_context {
        None => None,
        Some(context) => {
            if context
                .server_name
                .as_ref()
                .is_some_and(|n| n.chars().count() > MAX_SERVER_NAME_CHARS)
            {
                return Err(too_long("tlsContext.serverName", MAX_SERVER_NAME_CHARS));
            }
            Some(TlsContext {
                server_name: context.server_name,
            })
        }
    };
    Ok(AuthorizerRequest {
        token: req.token,
        signature_verified: false,
        tls,
        http,
        mqtt,
        connection_id: None,
    })
}

fn test_answer(answer: &AuthorizerAnswer) -> TestInvokeAuthorizerResponse {
    TestInvokeAuthorizerResponse {
        is_authenticated: answer.authenticated,
        principal_id: answer.principal_id.clone(),
        policy_documents: answer.policies.iter().map(|p| p.text.clone()).collect(),
        refresh_after_in_seconds: answer.refresh_after.map(|d| d.as_secs()),
        disconnect_after_in_seconds: answer.disconnect_after.map(|d| d.as_secs()),
    }
}

/// InvalidRequestException when the request or the authorizer's configuration is at fault,
/// InvalidResponseException when the function gave no valid answer.
fn denial_error(name: &str, denial: &Denial) -> ApiError {
    let message = format!("Authorizer {name}: {denial}.");
    if denial.is_function_failure() {
        ApiError::new(400, "InvalidResponseException", message)
    } else {
        ApiError::invalid_request(message)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn routes_do_not_conflict() {
        // axum panics on building conflicting routes.
        let _ = super::routes();
    }
}
