//! The webhook authorizer function: POSTs AWS's authorizer event JSON to an `http://` or
//! `https://` URL and reads AWS's response JSON back, so an existing Lambda authorizer runs
//! behind a thin HTTP wrapper.
//!
//! - Any 2xx with a body of at most [`MAX_ANSWER_BYTES`] is an answer (validated by the
//!   caller); another status, a larger body or a connection error is an [`InvokeError`].
//! - `https://` trusts the system's roots (`rustls-native-certs`, which honours
//!   `SSL_CERT_FILE` / `SSL_CERT_DIR`) plus [`WebhookOptions::extra_roots`], on rustls with
//!   aws-lc-rs.
//! - Plain `http://` is sent only to loopback addresses (every address the host resolves to
//!   must be one): a token and password must not cross a network in clear.
//!   [`WebhookOptions::allow_plain_http`] lifts that, for a webhook on a trusted network.
//! - One request per connection (HTTP/1.1, no pool): answers are cached, and a pool would
//!   keep connections to authorizers that may have changed.
//!
//! [`WebhookClient::get`] reads a document the same way (built-in functions fetch their
//! keys with it, e.g. an identity provider's JWKS).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::Request;
use hyper::Uri;
use hyper::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{AuthorizerFunction, InvokeError, InvokeFuture};
use crate::custom_auth::MAX_ANSWER_BYTES;

/// How webhooks are reached.
#[derive(Debug, Clone, Default)]
pub struct WebhookOptions {
    /// CA certificates trusted for `https://` webhooks besides the system's roots (e.g. a
    /// company CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Allows plain `http://` to hosts that are not loopback addresses.
    pub allow_plain_http: bool,
}

/// What every webhook shares: the options and the TLS configuration, built on first use (the
/// system's roots are read once).
pub struct WebhookClient {
    options: WebhookOptions,
    tls: OnceLock<Result<TlsConnector, String>>,
}

impl WebhookClient {
    pub fn new(options: WebhookOptions) -> WebhookClient {
        WebhookClient {
            options,
            tls: OnceLock::new(),
        }
    }

    fn tls(&self) -> Result<TlsConnector, InvokeError> {
        self.tls
            .get_or_init(|| tls_connector(&self.options.extra_roots))
            .clone()
            .map_err(InvokeError::Unreachable)
    }

    /// GETs `url` (JSON expected): a 2xx body of at most [`MAX_ANSWER_BYTES`], under the same
    /// rules as a webhook's answer (plain http only to loopback unless allowed).
    pub async fn get(&self, url: &HttpUrl) -> Result<Vec<u8>, InvokeError> {
        let request = Request::get(url.path_and_query.as_str())
            .header(HOST, url.authority.as_str())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, "ferrocore-authorizer")
            .body(Full::new(Bytes::new()))
            .map_err(|e| InvokeError::BadUrl(e.to_string()))?;
        self.send(url, request).await
    }

    /// Sends `request` to `url` on a fresh connection and reads the answer.
    async fn send(
        &self,
        url: &HttpUrl,
        request: Request<Full<Bytes>>,
    ) -> Result<Vec<u8>, InvokeError> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|e| InvokeError::Unreachable(format!("resolving {}: {e}", url.host)))?
            .collect();
        if addresses.is_empty() {
            return Err(InvokeError::Unreachable(format!(
                "{} has no address",
                url.host
            )));
        }
        if !url.https
            && !self.options.allow_plain_http
            && !addresses.iter().all(|a| a.ip().is_loopback())
        {
            return Err(InvokeError::PlainHttpNotLoopback(url.host.clone()));
        }
        let tcp = connect(&addresses).await?;
        if url.https {
            let server_name = ServerName::try_from(url.host.clone())
                .map_err(|_| InvokeError::BadUrl("the host is not a valid TLS name".into()))?;
            let tls = self
                .tls()?
                .connect(server_name, tcp)
                .await
                .map_err(|e| InvokeError::Unreachable(format!("TLS: {e}")))?;
            exchange(TokioIo::new(tls), request).await
        } else {
            exchange(TokioIo::new(tcp), request).await
        }
    }
}

fn tls_connector(extra_roots: &[CertificateDer<'static>]) -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "reading the system's CA certificates for webhooks");
    }
    let (_, unusable) = roots.add_parsable_certificates(native.certs);
    if unusable > 0 {
        tracing::warn!(unusable, "system CA certificates skipped for webhooks");
    }
    for root in extra_roots {
        roots
            .add(root.clone())
            .map_err(|e| format!("an extra webhook CA certificate is unusable: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no trusted CA certificates for https:// webhooks".into());
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// An `http://` or `https://` URL as the client uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    https: bool,
    host: String,
    port: u16,
    /// The `Host` header: the URL's authority.
    authority: String,
    path_and_query: String,
}

impl HttpUrl {
    /// Parses `url` (`http://` or `https://`; no credentials in the URL).
    pub fn parse(url: &str) -> Result<HttpUrl, InvokeError> {
        let bad = |why: &str| InvokeError::BadUrl(why.to_owned());
        let uri: Uri = url.parse().map_err(|_| bad("it is not a valid URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        Ok(HttpUrl {
            https,
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            host,
            authority: authority.as_str().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The host (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// One webhook URL.
pub struct Webhook {
    url: HttpUrl,
    client: Arc<WebhookClient>,
}

impl Webhook {
    /// A webhook at `url` (`http://` or `https://`; no credentials in the URL).
    pub fn new(url: &str, client: Arc<WebhookClient>) -> Result<Webhook, InvokeError> {
        Ok(Webhook {
            url: HttpUrl::parse(url)?,
            client,
        })
    }

    async fn post(&self, event: &Value) -> Result<Vec<u8>, InvokeError> {
        let body = Bytes::from(event.to_string());
        let request = Request::post(self.url.path_and_query.as_str())
            .header(HOST, self.url.authority.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, body.len())
            .header(USER_AGENT, "ferrocore-authorizer")
            .body(Full::new(body))
            .map_err(|e| InvokeError::BadUrl(e.to_string()))?;
        self.client.send(&self.url, request).await
    }
}

impl AuthorizerFunction for Webhook {
    fn invoke<'a>(&'a self, request: &'a Value) -> InvokeFuture<'a> {
        Box::pin(self.post(request))
    }
}

/// The first of `addresses` that accepts a connection.
async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, InvokeError> {
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                // Latency matters more than packet count for one small request.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last_error = Some(format!("{address}: {e}")),
        }
    }
    Err(InvokeError::Unreachable(
        last_error.unwrap_or_else(|| "no address".into()),
    ))
}

/// Sends `request` on a fresh connection and reads the answer. The connection is driven in
/// this future (not a spawned task), so dropping it (on timeout) closes the connection.
async fn exchange<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<Vec<u8>, InvokeError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| InvokeError::Unreachable(e.to_string()))?;
    let answer = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| InvokeError::Unreachable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(InvokeError::Status(status.as_u16()));
        }
        let declared_too_large = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|length| length > MAX_ANSWER_BYTES as u64);
        if declared_too_large {
            return Err(InvokeError::TooLarge);
        }
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    InvokeError::TooLarge
                } else {
                    InvokeError::Unreachable(e.to_string())
                }
            })?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::pin!(answer);
    tokio::select! {
        biased;
        result = &mut answer => result,
        closed = connection => match closed {
            // The connection ended after the answer's last byte: the answer is complete.
            Ok(()) => answer.await,
            Err(e) => Err(InvokeError::Unreachable(e.to_string())),
        },
    }
}
