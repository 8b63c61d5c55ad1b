//! Certificates, CA certificates, thing principals and `DescribeEndpoint`, on AWS's paths.
//!
//! The rules are in `ferrocore_identity::registry` (certificates module); this maps paths,
//! query strings, headers and bodies onto them. Beyond AWS: a CA's certificate revocation
//! list at `/cacertificate/{caCertificateId}/crl` (`PUT` `{"crlPem": ...}`, `GET`, `DELETE`),
//! which the `ferrocore` admin CLI drives.
//!
//! `CreateKeysAndCertificate` answers with a private key: it exists only in that response
//! (never in the registry, the store or a log line).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post, put};
use bytes::Bytes;
use ferrocore_identity::registry::{
    self, CreateKeysAndCertificateResponse, ListCaCertificatesQuery, MarkerPage, PutCaCrlRequest,
    RegisterCaCertificateRequest, RegisterCertificateRequest, RegisterCertificateWithoutCaRequest,
    TokenPage, UpdateCaCertificateRequest,
};
use serde::{Deserialize, Serialize};

use crate::extract::{AwsPath, AwsQuery, json_body, ok_json, read_json, write_json};
use crate::{ApiError, Shared};

/// The header AWS carries principals in.
const PRINCIPAL_HEADER: &str = "x-amzn-principal";

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/keys-and-certificate", post(create_keys_and_certificate))
        .route(
            "/certificates",
            post(create_certificate_from_csr).get(list_certificates),
        )
        .route(
            "/certificates/{certificateId}",
            get(describe_certificate)
                .put(update_certificate)
                .delete(delete_certificate),
        )
        .route("/certificate/register", post(register_certificate))
        .route(
            "/certificate/register-no-ca",
            post(register_certificate_without_ca),
        )
        .route(
            "/certificates-by-ca/{caCertificateId}",
            get(list_certificates_by_ca),
        )
        .route(
            "/registrationcode",
            get(get_registration_code).delete(delete_registration_code),
        )
        .route("/cacertificate", post(register_ca_certificate))
        .route("/cacertificates", get(list_ca_certificates))
        .route(
            "/cacertificate/{caCertificateId}",
            get(describe_ca_certificate)
                .put(update_ca_certificate)
                .delete(delete_ca_certificate),
        )
        .route(
            "/cacertificate/{caCertificateId}/crl",
            put(put_ca_crl).get(describe_ca_crl).delete(delete_ca_crl),
        )
        .route(
            "/things/{thingName}/principals",
            put(attach_thing_principal)
                .delete(detach_thing_principal)
                .get(list_thing_principals),
        )
        .route(
            "/things/{thingName}/principals-v2",
            get(list_thing_principals_v2),
        )
        .route("/principals/things", get(list_principal_things))
        .route("/principals/things-v2", get(list_principal_things_v2))
        .route("/endpoint", get(describe_endpoint))
}

#[derive(Deserialize)]
struct SetAsActive {
    #[serde(rename = "setAsActive", default)]
    set_as_active: bool,
}

async fn create_keys_and_certificate(
    State(state): State<Shared>,
    AwsQuery(q): AwsQuery<SetAsActive>,
) -> Result<Response, ApiError> {
    let now = state.registry.ctx().now_ms.div_euclid(1000);
    let keys = registry::issue_keys_and_certificate(Arc::clone(&state.device_ca), now).await?;
    let issuer = state.device_ca.certificate();
    let created = state
        .registry
        .write(|s, ctx| {
            registry::record_issued_certificate(s, ctx, &keys.certificate, issuer, q.set_as_active)
        })
        .await?;
    let answer = CreateKeysAndCertificateResponse::new(created, &keys);
    Ok(ok_json(&answer))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateCertificateFromCsrBody {
    certificate_signing_request: Option<String>,
}

async fn create_certificate_from_csr(
    State(state): State<Shared>,
    AwsQuery(q): AwsQuery<SetAsActive>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateCertificateFromCsrBody = json_body(&body)?;
    let csr = req
        .certificate_signing_request
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::invalid_request("certificateSigningRequest is required."))?;
    let now = state.registry.ctx().now_ms.div_euclid(1000);
    let cert = registry::issue_from_csr(&csr, &state.device_ca, now)?;
    let issuer = state.device_ca.certificate();
    write_json(&state, |s, ctx| {
        registry::record_issued_certificate(s, ctx, &cert, issuer, q.set_as_active)
    })
    .await
}

async fn register_certificate(
    State(state): State<Shared>,
    AwsQuery(q): AwsQuery<SetAsActive>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: RegisterCertificateRequest = json_body(&body)?;
    req.set_as_active = q.set_as_active;
    write_json(&state, |s, ctx| registry::register_certificate(s, ctx, req)).await
}

async fn register_certificate_without_ca(
    State(state): State<Shared>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: RegisterCertificateWithoutCaRequest = json_body(&body)?;
    write_json(&state, |s, ctx| {
        registry::register_certificate_without_ca(s, ctx, req)
    })
    .await
}

async fn describe_certificate(
    State(state): State<Shared>,
    AwsPath(id): AwsPath<String>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| registry::describe_certificate(s, ctx, &id))
}

async fn list_certificates(
    State(state): State<Shared>,
    AwsQuery(page): AwsQuery<MarkerPage>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| registry::list_certificates(s, ctx, &page))
}

async fn list_certificates_by_ca(
    State(state): State<Shared>,
    AwsPath(ca_id): AwsPath<String>,
    AwsQuery(page): AwsQuery<MarkerPage>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| {
        registry::list_certificates_by_ca(s, ctx, &ca_id, &page)
    })
}

#[derive(Deserialize)]
struct UpdateCertificateQuery {
    #[serde(rename = "newStatus")]
    new_status: Option<String>,
}

async fn update_certificate(
    State(state): State<Shared>,
    AwsPath(id): AwsPath<String>,
    AwsQuery(q): AwsQuery<UpdateCertificateQuery>,
) -> Result<Response, ApiError> {
    let new_status = q
        .new_status
        .ok_or_else(|| ApiError::invalid_request("newStatus is required."))?;
    write_json(&state, |s, ctx| {
        registry::update_certificate(s, ctx, &id, &new_status)
    })
    .await
}

#[derive(Deserialize)]
struct DeleteCertificateQuery {
    #[serde(rename = "forceDelete", default)]
    force_delete: bool,
}

async fn delete_certificate(
    State(state): State<Shared>,
    AwsPath(id): AwsPath<String>,
    AwsQuery(q): AwsQuery<DeleteCertificateQuery>,
) -> Result<Response, ApiError> {
    write_json(&state, |s, ctx| {
        registry::delete_certificate(s, ctx, &id, q.force_delete)
    })
    .await
}

async fn get_registration_code(State(state): State<Shared>) -> Result<Response, ApiError> {
    write_json(&state, registry::get_registration_code).await
}

async fn delete_registration_code(State(state): State<Shared>) -> Result<Response, ApiError> {
    write_json(&state, registry::delete_registration_code).await
}

#[derive(Deserialize)]
struct RegisterCaQuery {
    #[serde(rename = "setAsActive", default)]
    set_as_active: bool,
    #[serde(rename = "allowAutoRegistration", default)]
    allow_auto_registration: bool,
}

async fn register_ca_certificate(
    State(state): State<Shared>,
    AwsQuery(q): AwsQuery<RegisterCaQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: RegisterCaCertificateRequest = json_body(&body)?;
    req.set_as_active = q.set_as_active;
    req.allow_auto_registration = q.allow_auto_registration;
    write_json(&state, |s, ctx| {
        registry::register_ca_certificate(s, ctx, req)
    })
    .await
}

async fn describe_ca_certificate(
    State(state): State<Shared>,
    AwsPath(id): AwsPath<String>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| {
        registry::describe_ca_certificate(s, ctx, &id)
    })
}

async fn list_ca_certificates(
    State(state): State<Shared>,
    AwsQuery(query): AwsQuery<ListCaCertificatesQuery>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| {
        registry::list_ca_certificates(s, ctx, &query)
    })
}

#[derive(Deserialize)]
struct UpdateCaQuery {
    #[serde(rename = "newStatus")]
    new_status: Option<String>,
    #[serde(rename = "newAutoRegistrationStatus")]
    new_auto_registration_status: Option<String>,
}

async fn update_ca_certificate(
    State(state): State<Shared>,
    AwsPath(id): AwsPath<String>,
    AwsQuery(q): AwsQuery<UpdateCaQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut req: UpdateCaCertificateRequest = json_body(&body)?;
    req.new_status = q.new_status;
    req.new_auto_registration_status = q.new_auto_registration_status;
    write_json(&state, |s, ctx| {
        registry::update_ca_certificate(s, ctx, &id, req)
    })
    .await
}

async fn delete_ca_certificate(
    State(state): State<Shared>,
    AwsPath(id): AwsPath<String>,
) -> Result<Response, ApiError> {
    write_json(&state, |s, ctx| {
        registry::delete_ca_certificate(s, ctx, &id)
    })
    .await
}

async fn put_ca_crl(
    State(state): State<Shared>,
    AwsPath(id): AwsPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PutCaCrlRequest = json_body(&body)?;
    write_json(&state, |s, ctx| registry::put_ca_crl(s, ctx, &id, req)).await
}

async fn describe_ca_crl(
    State(state): State<Shared>,
    AwsPath(id): AwsPath<String>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| registry::describe_ca_crl(s, ctx, &id))
}

async fn delete_ca_crl(
    State(state): State<Shared>,
    AwsPath(id): AwsPath<String>,
) -> Result<Response, ApiError> {
    write_json(&state, |s, ctx| registry::delete_ca_crl(s, ctx, &id)).await
}

/// The principal header; a value that is not visible ASCII is refused.
fn principal(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get(PRINCIPAL_HEADER)
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                ApiError::invalid_request("The x-amzn-principal header is not valid text.")
            })
        })
        .transpose()
}

#[derive(Deserialize)]
struct ThingPrincipalTypeQuery {
    #[serde(rename = "thingPrincipalType")]
    thing_principal_type: Option<String>,
}

async fn attach_thing_principal(
    State(state): State<Shared>,
    AwsPath(thing): AwsPath<String>,
    AwsQuery(q): AwsQuery<ThingPrincipalTypeQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = principal(&headers)?;
    write_json(&state, |s, ctx| {
        registry::attach_thing_principal(
            s,
            ctx,
            &thing,
            principal.as_deref(),
            q.thing_principal_type.as_deref(),
        )
    })
    .await
}

async fn detach_thing_principal(
    State(state): State<Shared>,
    AwsPath(thing): AwsPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = principal(&headers)?;
    write_json(&state, |s, ctx| {
        registry::detach_thing_principal(s, ctx, &thing, principal.as_deref())
    })
    .await
}

/// `nextToken`, `maxResults` and (V2) `thingPrincipalType`.
#[derive(Deserialize)]
struct PrincipalsQuery {
    #[serde(rename = "nextToken")]
    next_token: Option<String>,
    #[serde(rename = "maxResults")]
    max_results: Option<usize>,
    #[serde(rename = "thingPrincipalType")]
    thing_principal_type: Option<String>,
}

impl PrincipalsQuery {
    fn page(&self) -> TokenPage {
        TokenPage {
            next_token: self.next_token.clone(),
            max_results: self.max_results,
        }
    }
}

async fn list_thing_principals(
    State(state): State<Shared>,
    AwsPath(thing): AwsPath<String>,
    AwsQuery(q): AwsQuery<PrincipalsQuery>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| {
        registry::list_thing_principals(s, ctx, &thing, &q.page())
    })
}

async fn list_thing_principals_v2(
    State(state): State<Shared>,
    AwsPath(thing): AwsPath<String>,
    AwsQuery(q): AwsQuery<PrincipalsQuery>,
) -> Result<Response, ApiError> {
    read_json(&state, |s, ctx| {
        registry::list_thing_principals_v2(
            s,
            ctx,
            &thing,
            &q.page(),
            q.thing_principal_type.as_deref(),
        )
    })
}

async fn list_principal_things(
    State(state): State<Shared>,
    AwsQuery(q): AwsQuery<PrincipalsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = principal(&headers)?;
    read_json(&state, |s, ctx| {
        registry::list_principal_things(s, ctx, principal.as_deref(), &q.page())
    })
}

async fn list_principal_things_v2(
    State(state): State<Shared>,
    AwsQuery(q): AwsQuery<PrincipalsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = principal(&headers)?;
    read_json(&state, |s, ctx| {
        registry::list_principal_things_v2(
            s,
            ctx,
            principal.as_deref(),
            &q.page(),
            q.thing_principal_type.as_deref(),
        )
    })
}

#[derive(Deserialize)]
struct EndpointQuery {
    #[serde(rename = "endpointType")]
    endpoint_type: Option<String>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeEndpointResponse {
    endpoint_address: String,
}

/// The endpoint types `DescribeEndpoint` knows (AWS's).
const ENDPOINT_TYPES: [&str; 4] = [
    "iot:Data",
    "iot:Data-ATS",
    "iot:CredentialProvider",
    "iot:Jobs",
];

/// `DescribeEndpoint`: one Ferrocore serves every API on the same host, so every type
/// (`iot:Data` when none is given, as AWS) answers the configured endpoint address (the first
/// `--endpoint-name`, else `localhost`); ports are the listeners'. An unknown type is an
/// `InvalidRequestException`.
fn endpoint_for(
    endpoint_type: Option<&str>,
    address: &str,
) -> Result<DescribeEndpointResponse, ApiError> {
    let t = endpoint_type.unwrap_or("iot:Data");
    if !ENDPOINT_TYPES.contains(&t) {
        return Err(ApiError::invalid_request(format!(
            "Endpoint type '{}' is invalid: it must be one of {}.",
            t.chars().take(128).collect::<String>(),
            ENDPOINT_TYPES.join(", ")
        )));
    }
    Ok(DescribeEndpointResponse {
        endpoint_address: address.to_owned(),
    })
}

async fn describe_endpoint(
    State(state): State<Shared>,
    AwsQuery(q): AwsQuery<EndpointQuery>,
) -> Result<Response, ApiError> {
    let answer = endpoint_for(q.endpoint_type.as_deref(), &state.config.endpoint_address)?;
    Ok(ok_json(&answer))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn endpoint_types() {
        for t in [
            None,
            Some("iot:Data"),
            Some("iot:Data-ATS"),
            Some("iot:Jobs"),
        ] {
            assert_eq!(
                endpoint_for(t, "iot.example").unwrap().endpoint_address,
                "iot.example"
            );
        }
        let err = endpoint_for(Some("iot:Nope"), "iot.example").unwrap_err();
        assert_eq!(err.code, "InvalidRequestException");
        assert_eq!(err.status.as_u16(), 400);
    }
}
