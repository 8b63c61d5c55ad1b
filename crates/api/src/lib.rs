//! The HTTP APIs on the HTTPS port: AWS IoT's control plane (`iot`, REST-JSON) and its data
//! plane (`iot-data`: shadows, publish, retained messages, connections; see [`data_plane`]).
//!
//! A request carrying a SigV4 signature (header or presigned query) must be signed by a known
//! access key; the credential scope's service then picks the API: `iot` reaches the control
//! plane, `iotdata` / `iotdevicegateway` the data plane, as the admin. An unsigned request on
//! a connection that presented a device certificate reaches the data plane only, decided by
//! the certificate's policies: a certificate never reaches the control plane. The scope's
//! service `acm` reaches the part of AWS Certificate Manager that imports the server
//! certificates of domain configurations ([`acm`]).
//!
//! Errors have AWS's shape (status, `x-amzn-ErrorType`, `{"message": …}`) so each SDK raises
//! the matching exception; see [`error`].

pub mod acm;
pub mod data_plane;
pub mod error;
mod extract;
mod registry_authorizers;
mod registry_certificates;
mod registry_domains;
mod registry_events;
mod registry_policies;
mod registry_things;

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ferrocore_identity::custom_auth::{AuthorizerInvoker, BuiltInFunctions, InvokerConfig};
use ferrocore_identity::registry::Registry;
use ferrocore_identity::sigv4::{self, CredentialLookup, SignedRequest, VerifierConfig};
use ferrocore_identity::x509::CaSigner;
use tower::ServiceExt;

pub use data_plane::{ClientCertificate, CustomAuthListener, DataPlane, custom_auth_http};
pub use error::ApiError;
use ferrocore_broker::Caller;

/// SigV4 signing names of the APIs served here.
pub const SERVICE_CONTROL_PLANE: &str = "iot";
pub const SERVICES_DATA_PLANE: [&str; 2] = ["iotdata", "iotdevicegateway"];

/// Requests with a larger body get a 400 InvalidRequestException before their signature is
/// checked.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the APIs need to know about the installation.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub region: String,
    pub account_id: String,
    /// What `DescribeEndpoint` answers: the host name devices connect to.
    pub endpoint_address: String,
    pub max_body_bytes: usize,
}

/// Shared by every request.
pub struct ApiState {
    pub registry: Arc<Registry>,
    pub credentials: Arc<dyn CredentialLookup + Send + Sync>,
    /// Signs the device certificates `CreateKeysAndCertificate` and
    /// `CreateCertificateFromCsr` issue.
    pub device_ca: Arc<CaSigner>,
    pub config: ApiConfig,
    /// The data plane; without it, its operations answer UnknownOperationException.
    pub data_plane: Option<DataPlane>,
    /// Runs authorizers for TestInvokeAuthorizer; share the server's (see
    /// [`with_authorizer_invoker`](Self::with_authorizer_invoker)).
    pub authorizer_invoker: Arc<AuthorizerInvoker>,
    verifier: VerifierConfig,
}

impl ApiState {
    pub fn new(
        registry: Arc<Registry>,
        credentials: Arc<dyn CredentialLookup + Send + Sync>,
        device_ca: Arc<CaSigner>,
        config: ApiConfig,
    ) -> ApiState {
        let mut services = vec![SERVICE_CONTROL_PLANE, acm::SERVICE_ACM];
        services.extend(SERVICES_DATA_PLANE);
        let verifier = VerifierConfig::new(config.region.clone(), &services);
        ApiState {
            registry,
            credentials,
            device_ca,
            config,
            data_plane: None,
            authorizer_invoker: Arc::new(AuthorizerInvoker::new(
                InvokerConfig::default(),
                BuiltInFunctions::new(),
            )),
            verifier,
        }
    }

    /// Uses `invoker` (the one devices are authorized with) for TestInvokeAuthorizer, so that
    /// it calls the same built-in functions with the same webhook settings.
    pub fn with_authorizer_invoker(mut self, invoker: Arc<AuthorizerInvoker>) -> ApiState {
        self.authorizer_invoker = invoker;
        self
    }

    pub fn with_data_plane(mut self, data_plane: DataPlane) -> ApiState {
        self.data_plane = Some(data_plane);
        self
    }
}

pub(crate) type Shared = Arc<ApiState>;

/// The router of every signed API; mount it as the fallback of the HTTPS port.
pub fn router(state: Arc<ApiState>) -> Router {
    let control = Router::new()
        .merge(registry_things::routes())
        .merge(registry_certificates::routes())
        .merge(registry_policies::routes())
        .merge(registry_events::routes())
        .merge(registry_authorizers::routes())
        .merge(registry_domains::routes())
        .fallback(unknown_operation)
        .method_not_allowed_fallback(unknown_operation)
        .with_state(state.clone());
    let data = Router::new()
        .merge(data_plane::routes())
        .fallback(unknown_operation)
        .method_not_allowed_fallback(unknown_operation)
        .with_state(state.clone());
    // What a device certificate may call: anything else (the control plane) wants SigV4.
    let device_data = Router::new()
        .merge(data_plane::routes())
        .fallback(missing_authentication)
        .method_not_allowed_fallback(unknown_operation)
        .with_state(state.clone());
    let certificate_manager = Router::new()
        .merge(acm::routes())
        .fallback(unknown_operation)
        .method_not_allowed_fallback(unknown_operation)
        .with_state(state.clone());
    let apis = Apis {
        control,
        data,
        device_data,
        certificate_manager,
    };
    Router::new().fallback(move |req: Request| dispatch(state.clone(), apis.clone(), req))
}

/// The routers a request may be dispatched to.
#[derive(Clone)]
struct Apis {
    control: Router,
    /// The data plane for SigV4 callers (the admin).
    data: Router,
    /// The data plane for device-certificate callers.
    device_data: Router,
    /// ACM's server-certificate import (service `acm`).
    certificate_manager: Router,
}

/// Whether a request claims a SigV4 signature (then it must verify, whatever else it has).
/// An `Authorization` header of another scheme (a custom authorizer's `Bearer` token) is
/// not one.
fn is_signed(parts: &axum::http::request::Parts) -> bool {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes().starts_with(b"AWS4-"))
        || parts.uri.query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv.starts_with("X-Amz-Signature=") || kv.starts_with("X-Amz-Algorithm="))
        })
}

/// The device an unsigned request acts as: the device certificate of its connection, else
/// (on a listener with custom authentication) what a custom authorizer makes of it; `None`
/// when neither applies.
async fn device_caller(
    data_plane: &DataPlane,
    parts: &axum::http::request::Parts,
) -> Result<Option<Caller>, ApiError> {
    if let Some(cert) = parts.extensions.get::<ClientCertificate>() {
        return match data_plane.broker.certificate_caller(
            &cert.id,
            &cert.der,
            cert.peer.ip(),
            cert.server_name.as_deref(),
        ) {
            Some(caller) => Ok(Some(caller)),
            None => Err(ApiError::new(
                401,
                "UnauthorizedException",
                "The certificate is not authorized",
            )),
        };
    }
    match parts.extensions.get::<CustomAuthListener>() {
        Some(listener) => data_plane::custom_caller(data_plane, listener, parts).await,
        None => Ok(None),
    }
}

/// Checks the signature, then hands the request to the API its credential scope names; an
/// unsigned request from a device (certificate or custom authorizer) goes to the data plane
/// as that device.
async fn dispatch(state: Shared, apis: Apis, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_body(body, state.config.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let device = match &state.data_plane {
        Some(dp) if !is_signed(&parts) => match device_caller(dp, &parts).await {
            Ok(device) => device,
            Err(e) => return e.into_response(),
        },
        _ => None,
    };
    if let Some(caller) = device {
        let mut req = Request::from_parts(parts, Body::from(body));
        req.extensions_mut().insert(caller);
        return match apis.device_data.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    let payload_hash = sigv4::sha256_hex(&body);
    let mut headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    // HTTP/2 carries the host in `:authority`, which hyper puts in the URI.
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
    {
        headers.push(("host", authority.as_str()));
    }
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        payload_hash: &payload_hash,
    };
    let identity = match sigv4::verify(
        &signed,
        SystemTime::now(),
        &*state.credentials,
        &state.verifier,
    ) {
        Ok(identity) => identity,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let service = identity.service.clone();
    let mut req = Request::from_parts(parts, Body::from(body));
    req.extensions_mut().insert(identity);
    let api = if service == SERVICE_CONTROL_PLANE {
        apis.control
    } else if service == acm::SERVICE_ACM {
        apis.certificate_manager
    } else {
        req.extensions_mut().insert(Caller::admin());
        apis.data
    };
    match api.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// How much of a too-large body is read and discarded so that the client, still sending,
/// gets the error instead of a reset connection; beyond this the connection is closed.
const DRAIN_FACTOR: usize = 8;

/// The whole body, or a 400 when it is larger than `limit` or ends early.
async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    use futures_util::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::invalid_request(format!("The request body could not be read: {e}"))
        })?;
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
            break;
        }
    }
    if seen > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(buf.freeze())
}

async fn missing_authentication() -> Response {
    ApiError::from(sigv4::SigV4Error::MissingAuthentication).into_response()
}

async fn unknown_operation(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    ApiError::unknown_operation(&method, uri.path()).into_response()
}
