//! A small client of the server's `iot` control plane: HTTPS (rustls, aws-lc-rs, trusting only
//! the given CA bundle), HTTP/1.1 keep-alive through hyper-util's pooled client (so a bulk
//! operation reuses its connections), SigV4 by the `aws-sigv4` crate, JSON bodies.
//!
//! Failures become one line: AWS-shaped error bodies as `Code: message`, transport failures
//! as what went wrong and what to check.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::http::{HeaderName, HeaderValue, Method, Request, Uri, header};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tower::ServiceExt as _;

use super::config::{Connection as Settings, EndpointUrl, KeySource};

/// The SigV4 service name of the control plane.
const SERVICE: &str = "iot";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Larger answers are refused (the largest real one is a page of certificates).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The server answered with an error (AWS shape).
    Api {
        status: u16,
        code: String,
        message: String,
        /// Extra advice (e.g. where the access key came from), said after the message.
        hint: Option<String>,
    },
    /// The server could not be reached, the TLS handshake failed, or it timed out.
    Transport(String),
}

impl CallError {
    /// The AWS error name of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Api { code, .. } => Some(code),
            CallError::Transport(_) => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Api {
                code,
                message,
                hint,
                ..
            } => {
                write!(f, "{code}: {message}")?;
                if let Some(h) = hint {
                    write!(f, " ({h})")?;
                }
                Ok(())
            }
            CallError::Transport(m) => f.write_str(m),
        }
    }
}

impl StdError for CallError {}

/// One request: method, path (segments already percent-encoded, see [`encode`]), query
/// pairs, extra headers, JSON body, and the SigV4 service it is signed for (`iot` unless
/// [`Call::service`] says otherwise).
#[derive(Debug, Clone)]
pub struct Call {
    pub service: &'static str,
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl Call {
    pub fn new(method: Method, path: String) -> Call {
        Call {
            service: SERVICE,
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.query.push((name, value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.headers.push((name, value.into()));
        self
    }

    /// Signs for `service` (e.g. `acm`) instead of the control plane's `iot`.
    pub fn service(mut self, service: &'static str) -> Call {
        self.service = service;
        self
    }

    pub fn json(mut self, body: Value) -> Call {
        self.body = Some(body);
        self
    }
}

/// A connected-on-demand, pooled, signing client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: HyperClient<Connector, Full<Bytes>>,
    endpoint: EndpointUrl,
    region: String,
    credentials: Credentials,
    key_source: KeySource,
    ca_bundle: Arc<Path>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint.url)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the TLS configuration from the CA bundle; connects on the first call.
    pub fn new(settings: &Settings) -> Result<Client, String> {
        let pem = std::fs::read(&settings.ca_bundle).map_err(|e| {
            format!(
                "cannot read the CA bundle {}: {e}",
                settings.ca_bundle.display()
            )
        })?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| {
                format!(
                    "the CA bundle {} is not PEM: {e}",
                    settings.ca_bundle.display()
                )
            })?;
            roots.add(cert).map_err(|e| {
                format!(
                    "the CA bundle {} holds an unusable certificate: {e}",
                    settings.ca_bundle.display()
                )
            })?;
        }
        if roots.is_empty() {
            return Err(format!(
                "the CA bundle {} holds no certificate",
                settings.ca_bundle.display()
            ));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server_name = ServerName::try_from(settings.endpoint.host.clone()).map_err(|_| {
            format!(
                "\"{}\" in the endpoint URL is not a host name or IP address",
                settings.endpoint.host
            )
        })?;
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        tcp.set_nodelay(true);
        let connector = Connector {
            tcp,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            server_name,
        };
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Client {
            http,
            endpoint: settings.endpoint.clone(),
            region: settings.region.clone(),
            credentials: Credentials::new(
                settings.key.id.clone(),
                settings.key.secret().to_owned(),
                None,
                None,
                "ferrocore",
            ),
            key_source: settings.key.source,
            ca_bundle: Arc::from(settings.ca_bundle.as_path()),
        })
    }

    /// Sends a signed request and returns the JSON answer (`Null` for an empty body).
    pub async fn call(&self, call: Call) -> Result<Value, CallError> {
        let request = self.signed(&call)?;
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| self.transport_error(&e))?;
            let status = response.status();
            let error_type = response
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    CallError::Transport(format!(
                        "reading the answer from {} failed: {e}",
                        self.endpoint.url
                    ))
                })?
                .to_bytes();
            Ok::<_, CallError>((status, error_type, body))
        })
        .await
        .map_err(|_| {
            CallError::Transport(format!(
                "{} did not answer within {} s",
                self.endpoint.url,
                REQUEST_TIMEOUT.as_secs()
            ))
        })??;
        let (status, error_type, body) = answer;
        if status.is_success() {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&body).map_err(|e| {
                CallError::Transport(format!(
                    "{} answered {} {} with a body that is not JSON ({e}); is it a Ferrocore server?",
                    self.endpoint.url, call.method, call.path
                ))
            });
        }
        let mut error = parse_error(status.as_u16(), error_type.as_deref(), &body);
        if let CallError::Api { code, hint, .. } = &mut error {
            *hint = self.auth_hint(code);
        }
        Err(error)
    }

    /// Advice for authentication failures: where the key came from and what to check.
    fn auth_hint(&self, code: &str) -> Option<String> {
        let source = match self.key_source {
            KeySource::Environment => {
                "the access key came from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; unset them to use the server's credentials file"
            }
            KeySource::CredentialsFile => {
                "the access key came from the credentials file in the data directory; is it this server's?"
            }
        };
        match code {
            "UnrecognizedClientException" => Some(source.to_owned()),
            "InvalidSignatureException" => Some(format!(
                "check --region ({}) and the clock; {source}",
                self.region
            )),
            _ => None,
        }
    }

    fn signed(&self, call: &Call) -> Result<Request<Full<Bytes>>, CallError> {
        let query = call
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let uri = if query.is_empty() {
            format!("{}{}", self.endpoint.url, call.path)
        } else {
            format!("{}{}?{query}", self.endpoint.url, call.path)
        };
        let body = match &call.body {
            Some(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            None => Bytes::new(),
        };
        let mut headers: Vec<(&str, String)> = vec![("host", self.endpoint.authority.clone())];
        if call.body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        headers.extend(call.headers.iter().map(|(k, v)| (*k, v.clone())));

        let bad = |e: &dyn fmt::Display| CallError::Transport(format!("cannot sign {uri}: {e}"));
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(call.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| bad(&e))?
            .into();
        let signable = SignableRequest::new(
            call.method.as_str(),
            uri.as_str(),
            headers.iter().map(|(k, v)| (*k, v.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| bad(&e))?;
        let (instructions, _signature) = sign(signable, &params).map_err(|e| bad(&e))?.into_parts();
        let (signing_headers, _params) = instructions.into_parts();

        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(uri.parse::<Uri>().map_err(|e| bad(&e))?);
        for (name, value) in headers
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(signing_headers.iter().map(|h| (h.name(), h.value())))
        {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
            let value = HeaderValue::from_str(value).map_err(|e| bad(&e))?;
            request = request.header(name, value);
        }
        request = request.header(
            header::USER_AGENT,
            concat!("ferrocore-admin/", env!("CARGO_PKG_VERSION")),
        );
        request.body(Full::new(body)).map_err(|e| bad(&e))
    }

    fn transport_error(&self, e: &hyper_util::client::legacy::Error) -> CallError {
        let url = &self.endpoint.url;
        let mut source: Option<&(dyn StdError + 'static)> = Some(e);
        let mut deepest = e.to_string();
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                if let Some(tls) = io
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    return CallError::Transport(tls_message(url, tls, &self.ca_bundle));
                }
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        return CallError::Transport(format!(
                            "cannot connect to {url}: connection refused; is the server running? \
                             (start it with `ferrocore serve`, or check --endpoint-url / --data-dir)"
                        ));
                    }
                    std::io::ErrorKind::TimedOut => {
                        return CallError::Transport(format!(
                            "cannot connect to {url}: timed out; is the address right and the port open?"
                        ));
                    }
                    _ => {}
                }
            }
            if let Some(tls) = s.downcast_ref::<rustls::Error>() {
                return CallError::Transport(tls_message(url, tls, &self.ca_bundle));
            }
            deepest = s.to_string();
            source = s.source();
        }
        CallError::Transport(format!("cannot reach {url}: {deepest}"))
    }
}

fn tls_message(url: &str, e: &rustls::Error, ca_bundle: &Path) -> String {
    match e {
        rustls::Error::InvalidCertificate(_) => format!(
            "TLS handshake with {url} failed: {e}; is {} the CA that signed the server's \
             certificate, and is the host name in it? (pass --ca-bundle)",
            ca_bundle.display()
        ),
        _ => format!("TLS handshake with {url} failed: {e}"),
    }
}

/// An AWS-shaped error answer as one error: the name from `x-amzn-ErrorType` (before any
/// `:`), else the body's `__type` (after any `#`) or `code`; the message from `message` /
/// `Message`.
pub fn parse_error(status: u16, error_type: Option<&str>, body: &[u8]) -> CallError {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| json.get(n).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let code = error_type
        .map(|t| t.split(':').next().unwrap_or(t).trim().to_owned())
        .filter(|t| !t.is_empty())
        .or_else(|| {
            field(&["__type", "code", "Code"])
                .map(|t| t.rsplit('#').next().unwrap_or(&t).to_owned())
        })
        .unwrap_or_else(|| format!("HTTP{status}"));
    let message = field(&["message", "Message", "errorMessage"]).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            format!("the server answered HTTP {status} with no message")
        } else {
            text.chars().take(300).collect()
        }
    });
    CallError::Api {
        status,
        code,
        message,
        hint: None,
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (a path segment or a query
/// name or value, as botocore does).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// TCP (hyper-util's connector: every resolved address in turn, connect timeout), then TLS.
#[derive(Clone)]
struct Connector {
    tcp: HttpConnector,
    tls: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<TlsTcp>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp = this.tcp.oneshot(uri).await?.into_inner();
            let tls = this.tls.connect(this.server_name, tcp).await?;
            Ok(TokioIo::new(TlsTcp(tls)))
        })
    }
}

/// A TLS connection over TCP, as hyper-util's pool wants it.
struct TlsTcp(TlsStream<TcpStream>);

impl Connection for TlsTcp {
    fn connected(&self) -> Connected {
        self.0.get_ref().0.connected()
    }
}

impl AsyncRead for TlsTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn aws_error_bodies_become_one_line() {
        let e = parse_error(
            404,
            Some("ResourceNotFoundException:http://internal.amazon.com/"),
            br#"{"message":"Thing x cannot be found.","__type":"ResourceNotFoundException"}"#,
        );
        assert_eq!(
            e.to_string(),
            "ResourceNotFoundException: Thing x cannot be found."
        );
        assert_eq!(e.code(), Some("ResourceNotFoundException"));

        // Without the header: `__type` with a namespace, and `Message`.
        let e = parse_error(
            400,
            None,
            br#"{"__type":"com.amazonaws.iot#InvalidRequestException","Message":"bad"}"#,
        );
        assert_eq!(e.to_string(), "InvalidRequestException: bad");

        // Not JSON at all.
        let e = parse_error(502, None, b"Bad Gateway");
        assert_eq!(e.to_string(), "HTTP502: Bad Gateway");
        let e = parse_error(500, None, b"");
        assert_eq!(
            e.to_string(),
            "HTTP500: the server answered HTTP 500 with no message"
        );
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(encode("my:thing_1-a.b~"), "my%3Athing_1-a.b~");
        assert_eq!(
            encode("arn:aws:iot:us-east-1:0:cert/ab"),
            "arn%3Aaws%3Aiot%3Aus-east-1%3A0%3Acert%2Fab"
        );
        assert_eq!(encode("a b+c=é"), "a%20b%2Bc%3D%C3%A9");
    }

    /// The request our client signs is accepted by the server's own verifier, with a path
    /// that needs double encoding, a query and a body.
    #[test]
    fn signatures_verify_with_the_servers_verifier() {
        use ferrocore_identity::sigv4;
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let key = rcgen_ca_pem();
        std::fs::write(&ca, key).unwrap();
        let settings = Settings {
            endpoint: EndpointUrl::parse("https://localhost:8443").unwrap(),
            ca_bundle: ca,
            region: "eu-west-1".into(),
            key: super::super::config::AccessKey::new(
                "AKIATESTTESTTEST0001".into(),
                "secret-secret-secret".into(),
                KeySource::CredentialsFile,
            ),
            data_dir: dir.path().to_path_buf(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let client = Client::new(&settings).unwrap();
        let call = Call::new(Method::PUT, format!("/things/{}/principals", encode("a:b")))
            .query("thingPrincipalType", "EXCLUSIVE_THING")
            .header("x-amzn-principal", "arn:aws:iot:eu-west-1:0:cert/ab")
            .json(serde_json::json!({"k": "v"}));
        let req = client.signed(&call).unwrap();
        let body = serde_json::to_vec(&serde_json::json!({"k": "v"})).unwrap();
        let headers: Vec<(&str, &str)> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        let hash = sigv4::sha256_hex(&body);
        let signed = sigv4::SignedRequest {
            method: req.method().as_str(),
            path: req.uri().path(),
            query: req.uri().query().unwrap_or(""),
            headers: &headers,
            payload_hash: &hash,
        };
        let lookup =
            |id: &str| (id == "AKIATESTTESTTEST0001").then(|| "secret-secret-secret".to_owned());
        let cfg = sigv4::VerifierConfig::new("eu-west-1", &["iot"]);
        let identity = sigv4::verify(&signed, SystemTime::now(), &lookup, &cfg).unwrap();
        assert_eq!(identity.service, "iot");
        assert_eq!(req.uri().path(), "/things/a%3Ab/principals");
        assert!(!format!("{client:?}").contains("secret-secret"));

        // A wrong secret does not verify.
        let wrong = |_: &str| Some("other".to_owned());
        assert!(sigv4::verify(&signed, SystemTime::now(), &wrong, &cfg).is_err());
    }

    /// Nothing listening: one line that says to start the server.
    #[test]
    fn a_closed_port_says_the_server_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, rcgen_ca_pem()).unwrap();
        // A port that was free a moment ago.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = Settings {
            endpoint: EndpointUrl::parse(&format!("https://127.0.0.1:{port}")).unwrap(),
            ca_bundle: ca,
            region: "us-east-1".into(),
            key: super::super::config::AccessKey::new(
                "AKIA".into(),
                "s".into(),
                KeySource::CredentialsFile,
            ),
            data_dir: dir.path().to_path_buf(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt
            .block_on(async {
                let client = Client::new(&settings)?;
                client
                    .call(Call::new(Method::GET, "/things".into()))
                    .await
                    .map_err(|e| e.to_string())
            })
            .unwrap_err();
        assert!(e.starts_with(&format!("cannot connect to https://127.0.0.1:{port}: connection refused; is the server running?")), "{e}");
    }

    #[test]
    fn a_ca_bundle_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let settings = Settings {
            endpoint: EndpointUrl::parse("https://localhost:1").unwrap(),
            ca_bundle: ca,
            region: "us-east-1".into(),
            key: super::super::config::AccessKey::new(
                "AKIA".into(),
                "s".into(),
                KeySource::CredentialsFile,
            ),
            data_dir: dir.path().to_path_buf(),
        };
        let e = Client::new(&settings).unwrap_err();
        assert!(e.contains("holds no certificate"), "{e}");
    }

    fn rcgen_ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }
}
