//! The part of AWS Certificate Manager (`acm`, JSON 1.1: `POST /` with
//! `X-Amz-Target: CertificateManager.<Operation>`) that domain configurations need: their
//! server certificates are named by ACM ARNs, so they are imported the ACM way.
//!
//! | operation | what |
//! |---|---|
//! | `ImportCertificate` | `Certificate`, `PrivateKey` (PEM, base64 blobs in the JSON), optional `CertificateChain`; with `CertificateArn` a re-import replacing that certificate and key (domains present the new one at once) |
//! | `DescribeCertificate` | the certificate's names, dates and `InUseBy` (never the key) |
//! | `ListCertificates` | every imported certificate (`CertificateSummaryList`, one page) |
//! | `DeleteCertificate` | refused with ResourceInUseException while a domain uses it |
//!
//! `aws acm import-certificate --certificate fileb://cert.pem --private-key fileb://key.pem`
//! and boto3's `acm` client work against the server, as does `ferrocore server-cert import`.
//! Signed like every API here (SigV4, admin credentials, service `acm`).

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use ferrocore_identity::registry::{
    self, ImportServerCertificateRequest, RegistryError, ServerCertificateDetail,
};
use serde::Deserialize;
use serde_json::json;

use crate::extract::{json_body, ok_json};
use crate::{ApiError, Shared};

/// The SigV4 signing name of ACM.
pub const SERVICE_ACM: &str = "acm";
const TARGET_PREFIX: &str = "CertificateManager.";

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/", post(operation))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportCertificateRequest {
    certificate_arn: Option<String>,
    certificate: Option<String>,
    private_key: Option<String>,
    certificate_chain: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArnRequest {
    certificate_arn: Option<String>,
}

/// ACM's names for the registry's refusals (ACM answers 400 to all of them).
fn acm_error(e: RegistryError) -> ApiError {
    let code = match &e {
        RegistryError::ResourceNotFound(_) => "ResourceNotFoundException",
        RegistryError::DeleteConflict(_) => "ResourceInUseException",
        RegistryError::LimitExceeded(_) => "LimitExceededException",
        RegistryError::InternalFailure(_) => {
            return ApiError::new(500, "InternalFailure", e.to_string());
        }
        _ => "ValidationException",
    };
    ApiError::new(400, code, e.to_string())
}

fn blob(member: &str, value: Option<String>) -> Result<Option<Vec<u8>>, ApiError> {
    value
        .map(|b64| {
            BASE64.decode(b64.trim()).map_err(|_| {
                ApiError::new(
                    400,
                    "ValidationException",
                    format!("{member} is not base64."),
                )
            })
        })
        .transpose()
}

fn arn(req: ArnRequest) -> Result<String, ApiError> {
    let arn = req
        .certificate_arn
        .ok_or_else(|| ApiError::new(400, "ValidationException", "CertificateArn is required."))?;
    if !(arn.starts_with("arn:") && arn.contains(":acm:")) {
        return Err(ApiError::new(
            400,
            "InvalidArnException",
            format!(
                "'{}' is not a certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>).",
                arn.chars().take(200).collect::<String>()
            ),
        ));
    }
    Ok(arn)
}

async fn operation(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let operation = target.strip_prefix(TARGET_PREFIX).unwrap_or_default();
    match operation {
        "ImportCertificate" => {
            let req: ImportCertificateRequest = json_body(&body)?;
            let required = |member: &str, v: Option<Vec<u8>>| {
                v.ok_or_else(|| {
                    ApiError::new(400, "ValidationException", format!("{member} is required."))
                })
            };
            let certificate_arn = match req.certificate_arn {
                Some(a) => Some(arn(ArnRequest {
                    certificate_arn: Some(a),
                })?),
                None => None,
            };
            let import = ImportServerCertificateRequest {
                certificate_arn,
                certificate: required("Certificate", blob("Certificate", req.certificate)?)?,
                private_key: required("PrivateKey", blob("PrivateKey", req.private_key)?)?,
                certificate_chain: blob("CertificateChain", req.certificate_chain)?,
            };
            let arn = state
                .registry
                .write(|s, ctx| registry::import_server_certificate(s, ctx, import))
                .await
                .map_err(acm_error)?;
            Ok(ok_json(&json!({ "CertificateArn": arn })))
        }
        "DescribeCertificate" => {
            let arn = arn(json_body(&body)?)?;
            let ctx = state.registry.ctx();
            let detail = state
                .registry
                .read(|s| registry::describe_server_certificate(s, &ctx, &arn))
                .map_err(acm_error)?;
            Ok(ok_json(&json!({ "Certificate": detail })))
        }
        "ListCertificates" => {
            let ctx = state.registry.ctx();
            let all = state
                .registry
                .read(|s| registry::list_server_certificates(s, &ctx));
            let summaries: Vec<_> = all.iter().map(summary).collect();
            Ok(ok_json(&json!({ "CertificateSummaryList": summaries })))
        }
        "DeleteCertificate" => {
            let arn = arn(json_body(&body)?)?;
            state
                .registry
                .write(|s, ctx| registry::delete_server_certificate(s, ctx, &arn))
                .await
                .map_err(acm_error)?;
            Ok(ok_json(&json!({})))
        }
        _ => Err(ApiError::new(
            400,
            "UnknownOperationException",
            format!(
                "Operation '{}' is not served: this server implements ACM's ImportCertificate, \
                 DescribeCertificate, ListCertificates and DeleteCertificate.",
                target.chars().take(100).collect::<String>()
            ),
        )),
    }
}

/// ACM's `CertificateSummary` of a certificate.
fn summary(d: &ServerCertificateDetail) -> serde_json::Value {
    json!({
        "CertificateArn": d.certificate_arn,
        "DomainName": d.domain_name,
        "SubjectAlternativeNameSummaries": d.subject_alternative_names,
        "Status": d.status,
        "Type": d.r#type,
        "KeyAlgorithm": d.key_algorithm,
        "InUse": !d.in_use_by.is_empty(),
        "NotBefore": d.not_before,
        "NotAfter": d.not_after,
        "CreatedAt": d.created_at,
        "ImportedAt": d.imported_at,
    })
}
