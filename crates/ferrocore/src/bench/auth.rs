//! Custom authentication for the connection scenarios: what each client presents in CONNECT
//! (a username naming the authorizer, a password) and the authorizer's function, which the
//! bench serves itself on a loopback address so that a slow function never limits the rate:
//!
//! - `webhook`: answers every POST with AWS's authorizer answer JSON — authenticated, a fixed
//!   allow-all policy, refresh and disconnect after 24 h (so the broker caches the answer for
//!   a day) — without looking at the request, and counts the calls.
//! - `jwt`: an OpenID issuer `http://<addr>` for the `jwt` built-in: the discovery document
//!   (`/.well-known/openid-configuration`) and the JWKS (`/jwks.json`) with one RSA key — from
//!   `--jwt-key-file`, else an RSA-2048 key made at start — whose `kid` is derived from the key
//!   (so a server that knows another bench's key fetches the new one); each client sends an RS256 token of its own (`sub` = `device<i>`,
//!   audience [`JWT_AUDIENCE`], an hour's lifetime), minted before the ramp, as its MQTT
//!   password. Counts the requests (discovery and JWKS fetches).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use clap::ValueEnum;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject as _;
use tokio::net::TcpListener;

use super::conn::{Login, Passwords};

/// The authorizer function the bench serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CustomAuth {
    /// An HTTP webhook answering AWS's authorizer answer JSON with a fixed allow policy.
    Webhook,
    /// An OpenID issuer (discovery document and JWKS) for the `jwt` built-in; RS256 tokens.
    Jwt,
}

/// The `aud` of the bench's tokens (the `jwt` function's `audience` must contain it).
pub const JWT_AUDIENCE: &str = "ferrocore-bench";

/// Lifetime of the bench's tokens.
const JWT_LIFETIME_S: u64 = 3600;

/// The function's name in labels and summaries.
pub fn kind_name(kind: CustomAuth) -> &'static str {
    match kind {
        CustomAuth::Webhook => "webhook",
        CustomAuth::Jwt => "jwt",
    }
}

/// What the function's requests are, in the summary.
pub fn requests_name(kind: CustomAuth) -> &'static str {
    match kind {
        CustomAuth::Webhook => "webhook calls",
        CustomAuth::Jwt => "issuer requests (discovery, JWKS)",
    }
}

/// The password every client sends to the webhook (which does not check it).
const WEBHOOK_PASSWORD: &[u8] = b"bench-password";

/// The webhook's answer to every call.
const WEBHOOK_ANSWER: &str = r#"{"isAuthenticated":true,"principalId":"bench","disconnectAfterInSeconds":86400,"refreshAfterInSeconds":86400,"policyDocuments":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}]}"#;

/// The CONNECT username: `bench`, naming `authorizer` the way AWS's devices do if given (else
/// the listener's or the account's default authorizer decides).
pub fn username(authorizer: Option<&str>) -> String {
    match authorizer {
        Some(name) => format!("bench?x-amz-customauthorizer-name={name}"),
        None => "bench".to_owned(),
    }
}

/// The running function server; counts the requests it has answered.
pub struct AuthServer {
    /// The issuer's signing key and its `kid` (`jwt`).
    signing_key: Option<(KeyPair, String)>,
    issuer: String,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// What the server answers, made once.
struct Answers {
    kind: CustomAuth,
    /// `jwt`: the discovery document and the JWKS.
    discovery: Bytes,
    jwks: Bytes,
}

impl AuthServer {
    /// Serves `kind` on `addr` (HTTP/1.1, one task per connection) until dropped; `jwt` signs
    /// with the PKCS#8 PEM key in `jwt_key_file`, else with a new RSA-2048 key.
    pub async fn start(
        kind: CustomAuth,
        addr: SocketAddr,
        jwt_key_file: Option<&Path>,
    ) -> anyhow::Result<AuthServer> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listen on {addr} for the {kind:?} authorizer function"))?;
        let issuer = format!("http://{addr}");
        let signing_key = match kind {
            CustomAuth::Webhook => None,
            CustomAuth::Jwt => {
                let key = match jwt_key_file {
                    Some(path) => read_signing_key(path)?,
                    None => KeyPair::generate(KeySize::Rsa2048)
                        .map_err(|_| anyhow!("could not make an RSA-2048 signing key"))?,
                };
                let kid = key_id(&key);
                Some((key, kid))
            }
        };
        let answers = Arc::new(Answers {
            kind,
            discovery: Bytes::from(
                serde_json::json!({
                    "issuer": issuer,
                    "jwks_uri": format!("{issuer}/jwks.json"),
                    "id_token_signing_alg_values_supported": ["RS256"],
                })
                .to_string(),
            ),
            jwks: Bytes::from(
                signing_key
                    .as_ref()
                    .map_or(String::new(), |(key, kid)| jwks(key, kid)),
            ),
        });
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let counter = counter.clone();
                let answers = answers.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let counter = counter.clone();
                        let answers = answers.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            // Read the whole body, so that a keep-alive connection stays usable.
                            let _ = req.into_body().collect().await;
                            counter.fetch_add(1, Ordering::Relaxed);
                            Ok::<_, Infallible>(answers.answer(&path))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Ok(AuthServer {
            signing_key,
            issuer,
            requests,
            task,
        })
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// What client `i` of `clients` presents: the username naming `authorizer` (else the
    /// default authorizer decides) and a password (`webhook`) or a token of its own (`jwt`).
    pub fn login(&self, authorizer: Option<&str>, clients: usize) -> anyhow::Result<Login> {
        let passwords = match &self.signing_key {
            None => Passwords::Same(Bytes::from_static(WEBHOOK_PASSWORD)),
            Some((key, kid)) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .context("the clock is before 1970")?
                    .as_secs();
                let rng = SystemRandom::new();
                let tokens = (0..clients)
                    .map(|i| {
                        let subject = format!("device{i}");
                        mint(key, kid, &rng, &self.issuer, &subject, now)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Passwords::PerClient(tokens)
            }
        };
        Ok(Login {
            username: username(authorizer),
            passwords,
        })
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Answers {
    fn answer(&self, path: &str) -> Response<Full<Bytes>> {
        let body = match self.kind {
            CustomAuth::Webhook => Some(Bytes::from_static(WEBHOOK_ANSWER.as_bytes())),
            CustomAuth::Jwt if path.ends_with("/.well-known/openid-configuration") => {
                Some(self.discovery.clone())
            }
            CustomAuth::Jwt if path.ends_with("/jwks.json") => Some(self.jwks.clone()),
            CustomAuth::Jwt => None,
        };
        let found = body.is_some();
        let mut response = Response::new(Full::new(body.unwrap_or_default()));
        *response.status_mut() = if found {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// An RSA private key from a PKCS#8 PEM file (`openssl genpkey -algorithm RSA` writes one).
fn read_signing_key(path: &Path) -> anyhow::Result<KeyPair> {
    let der = PrivatePkcs8KeyDer::from_pem_file(path)
        .with_context(|| format!("read a PKCS#8 private key from {}", path.display()))?;
    KeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| {
        anyhow!(
            "{} is not an RSA key of 2048 bits or more: {e}",
            path.display()
        )
    })
}

/// The `kid` of `key`: the first 8 bytes of SHA-256 of its modulus, hex.
fn key_id(key: &KeyPair) -> String {
    let modulus = key.public_key().modulus();
    let hash = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        modulus.big_endian_without_leading_zero(),
    );
    hash.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The JWKS of `key`: one RS256 signing key.
fn jwks(key: &KeyPair, kid: &str) -> String {
    let public = key.public_key();
    serde_json::json!({"keys": [{
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    }]})
    .to_string()
}

/// An RS256 JWT from `issuer` for `subject`, issued at `now` (Unix seconds).
fn mint(
    key: &KeyPair,
    kid: &str,
    rng: &SystemRandom,
    issuer: &str,
    subject: &str,
    now: u64,
) -> anyhow::Result<Bytes> {
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let claims = serde_json::json!({
        "iss": issuer,
        "sub": subject,
        "aud": JWT_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + JWT_LIFETIME_S,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        rng,
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| anyhow!("could not sign a token"))?;
    Ok(Bytes::from(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_names_the_authorizer_as_devices_do() {
        assert_eq!(
            username(Some("hook")),
            "bench?x-amz-customauthorizer-name=hook"
        );
        assert_eq!(username(None), "bench");
    }

    #[test]
    fn webhook_answer_is_a_valid_allow() {
        let answer =
            ferrocore_identity::custom_auth::AuthorizerAnswer::from_json(WEBHOOK_ANSWER.as_bytes())
                .expect("AWS's answer format");
        assert!(answer.authenticated);
    }

    #[test]
    fn tokens_verify_with_the_jwks_key() {
        let key = KeyPair::generate(KeySize::Rsa2048).expect("key");
        let kid = key_id(&key);
        assert_eq!(kid.len(), 16);
        let rng = SystemRandom::new();
        let token = mint(&key, &kid, &rng, "http://127.0.0.1:9", "device7", 1000).expect("token");
        let token = std::str::from_utf8(&token).expect("ASCII");
        let (signing_input, signature) = token.rsplit_once('.').expect("three parts");
        let (header, claims) = signing_input.split_once('.').expect("three parts");
        let decode = |part: &str| -> serde_json::Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
        };
        assert_eq!(decode(header)["kid"], kid.as_str());
        let claims = decode(claims);
        assert_eq!(
            (&claims["iss"], &claims["sub"], &claims["aud"]),
            (
                &serde_json::json!("http://127.0.0.1:9"),
                &serde_json::json!("device7"),
                &serde_json::json!(JWT_AUDIENCE)
            )
        );
        assert_eq!(claims["exp"], 1000 + JWT_LIFETIME_S);

        // The JWKS's n and e verify the signature.
        let jwks: serde_json::Value = serde_json::from_str(&jwks(&key, &kid)).expect("JSON");
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["kid"], kid.as_str());
        let component = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(jwk[name].as_str().expect("string"))
                .expect("base64url")
        };
        let public = aws_lc_rs::signature::RsaPublicKeyComponents {
            n: component("n"),
            e: component("e"),
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        public
            .verify(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                signing_input.as_bytes(),
                &signature,
            )
            .expect("signature verifies with the published key");
    }

    #[test]
    fn signing_key_from_a_pkcs8_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("issuer.key");
        let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        std::fs::write(&path, rsa.serialize_pem()).expect("write key");
        let key = read_signing_key(&path).expect("an RSA key");
        assert_eq!(
            key_id(&key),
            key_id(&read_signing_key(&path).expect("again"))
        );

        let p256 = rcgen::KeyPair::generate().expect("P-256 key");
        std::fs::write(&path, p256.serialize_pem()).expect("write key");
        assert!(read_signing_key(&path).is_err(), "not an RSA key");
        assert!(read_signing_key(&dir.path().join("missing.key")).is_err());
    }
}
