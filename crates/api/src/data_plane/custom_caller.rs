//! Data-plane callers decided by a custom authorizer, as AWS lets devices publish over HTTPS
//! with custom authentication: an unsigned request without a device certificate, on a
//! listener that accepts custom authentication, naming its authorizer in the
//! `x-amz-customauthorizer-name` header or query parameter (else the listener's or the
//! account's default authorizer applies), with the token in the authorizer's `tokenKeyName`
//! header or query parameter and, with signing, `x-amz-customauthorizer-signature`.
//!
//! The authorizer gets AWS's request JSON with `protocols` `["tls", "http"]` (or `["http"]`
//! on a plain listener) and the request's headers and query; its policies decide each
//! operation as they decide a certificate caller's. Answers are cached across requests only
//! when the authorizer has `enableCachingForHttp` (AWS's rule).

use std::net::SocketAddr;

use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use ferrocore_broker::{
    Caller, CustomAuthAttempt, CustomAuthDenied, CustomAuthProtocol, HttpUpgrade, Transport,
};

use super::DataPlane;
use crate::ApiError;

/// Where a request arrived, when its listener accepts custom authentication; the server puts
/// it in the request's extensions.
#[derive(Debug, Clone)]
pub struct CustomAuthListener {
    /// The listener's name (its default authorizer may apply).
    pub listener: String,
    pub peer: SocketAddr,
    /// The TLS server name (SNI), if any.
    pub server_name: Option<String>,
    /// Whether the request came over TLS.
    pub tls: bool,
}

/// What a custom authorizer sees of an HTTP request (an HTTPS data-plane request, or the
/// WebSocket upgrade of MQTT over WebSocket): its headers (names lowercase, as the `http`
/// crate keeps them; values that are not UTF-8 left out, as no credential can be in them)
/// and raw query.
pub fn custom_auth_http(headers: &HeaderMap, uri: &Uri) -> HttpUpgrade {
    HttpUpgrade {
        headers: headers
            .iter()
            .filter_map(|(name, value)| {
                let value = std::str::from_utf8(value.as_bytes()).ok()?;
                Some((name.as_str().to_owned(), value.to_owned()))
            })
            .collect(),
        query: uri.query().unwrap_or_default().to_owned(),
    }
}

/// The caller a custom authorizer makes of the request `parts`, or `None` when no authorizer
/// applies (none named, no default): the request then needs other credentials.
pub(crate) async fn custom_caller(
    data_plane: &DataPlane,
    listener: &CustomAuthListener,
    parts: &Parts,
) -> Result<Option<Caller>, ApiError> {
    let attempt = CustomAuthAttempt {
        username: None,
        password: None,
        client_id: String::new(),
        server_name: listener.server_name.clone(),
        peer: listener.peer,
        transport: if listener.tls {
            Transport::Tls
        } else {
            Transport::Tcp
        },
        listener: listener.listener.clone(),
        http: Some(custom_auth_http(&parts.headers, &parts.uri)),
        connection_id: ferrocore_identity::registry::uuid_v4().unwrap_or_default(),
        protocol: CustomAuthProtocol::Http,
    };
    match data_plane.broker.custom_caller(attempt).await {
        Ok(caller) => Ok(Some(caller)),
        Err(CustomAuthDenied::NoAuthorizer) => Ok(None),
        Err(CustomAuthDenied::NotAuthorized(_)) => Err(ApiError::new(
            401,
            "UnauthorizedException",
            "The custom authorizer did not authorize the request",
        )),
        Err(CustomAuthDenied::Unavailable(_)) => Err(ApiError::new(
            503,
            "ServiceUnavailableException",
            "The custom authorizer could not be reached; try again later",
        )),
    }
}
