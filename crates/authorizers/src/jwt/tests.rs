//! The `jwt` function against an identity provider served in the test (discovery and JWKS
//! over plain HTTP on 127.0.0.1:0), with keys made in the test; refetch intervals and key
//! ages moved by a manual clock.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ferrocore_identity::custom_auth::{
    AnswerRules, AuthorizerAnswer, AuthorizerInvoker, AuthorizerRequest, BuiltInFunctions, HttpUrl,
    InvokerConfig,
};
use ferrocore_identity::registry::{AuthorizerRecord, AuthorizerStatus};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::keys::{MAX_KEY_AGE, MAX_KEYS, MIN_REFETCH_INTERVAL};
use super::options::KeySource;
use super::*;

const BASE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;
const ADMIN_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*"}]}"#;

/// A signing key made in the test, published under `kid`.
struct TestKey {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    public_pem: String,
}

impl TestKey {
    fn generate(kid: &str, algorithm: Algorithm) -> TestKey {
        let rcgen_algorithm = match algorithm {
            Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            _ => &rcgen::PKCS_RSA_SHA256,
        };
        let pair = rcgen::KeyPair::generate_for(rcgen_algorithm).unwrap();
        let pem = pair.serialize_pem();
        let encoding = match algorithm {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        };
        TestKey {
            kid: kid.to_owned(),
            algorithm,
            encoding,
            public_pem: pair.public_key_pem(),
        }
    }

    /// The public JWK, with `alg` unless `with_alg` is false.
    fn jwk(&self, with_alg: bool) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.algorithm).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        if !with_alg {
            jwk.common.key_algorithm = None;
        }
        serde_json::to_value(jwk).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// Keys are made once per test binary (RSA key generation is slow).
fn keys() -> &'static [TestKey; 3] {
    static KEYS: OnceLock<[TestKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            TestKey::generate("rsa-a", Algorithm::RS256),
            TestKey::generate("rsa-b", Algorithm::RS256),
            TestKey::generate("ec-c", Algorithm::ES256),
        ]
    })
}

fn rsa_a() -> &'static TestKey {
    &keys()[0]
}
fn rsa_b() -> &'static TestKey {
    &keys()[1]
}
fn ec_c() -> &'static TestKey {
    &keys()[2]
}

/// An identity provider: discovery document and JWKS, counting the GETs of each path.
struct Provider {
    issuer: String,
    documents: Arc<Mutex<HashMap<String, String>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

const DISCOVERY: &str = "/.well-known/openid-configuration";
const JWKS: &str = "/keys";

impl Provider {
    async fn start(published: &[Value]) -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let documents = Arc::new(Mutex::new(HashMap::new()));
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let provider = Provider {
            issuer: issuer.clone(),
            documents: Arc::clone(&documents),
            hits: Arc::clone(&hits),
        };
        documents.lock().insert(
            DISCOVERY.to_owned(),
            json!({"issuer": issuer, "jwks_uri": format!("{issuer}{JWKS}")}).to_string(),
        );
        provider.publish(published);
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let documents = Arc::clone(&documents);
                let hits = Arc::clone(&hits);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = socket.read(&mut buf).await.unwrap();
                        assert!(n > 0, "request ended early");
                        head.extend_from_slice(&buf[..n]);
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head
                        .strip_prefix("GET ")
                        .and_then(|rest| rest.split(' ').next())
                        .unwrap()
                        .to_owned();
                    *hits.lock().entry(path.clone()).or_default() += 1;
                    let body = documents.lock().get(&path).cloned();
                    let (status, body) = body.map_or((404, String::new()), |b| (200, b));
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        provider
    }

    fn publish(&self, keys: &[Value]) {
        self.documents
            .lock()
            .insert(JWKS.to_owned(), json!({"keys": keys}).to_string());
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().get(path).copied().unwrap_or(0)
    }
}

struct ManualClock(Mutex<Instant>);

impl ManualClock {
    fn advance(&self, by: Duration) {
        *self.0.lock() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock()
    }
}

/// The function's options: the provider, audience `ferrocore`, RS256 / RS384 / ES256, the
/// `roles` claim, `Base` for every token and `Admin` for the role `admin`; `extra` lines
/// come first.
fn options_toml(issuer: &str, extra: &str) -> toml::Table {
    let text = format!(
        r#"{extra}
issuer = "{issuer}"
audience = ["ferrocore", "other"]
algorithms = ["RS256", "RS384", "ES256"]
allow_http = true
roles_claim = "roles"
default_policies = ["Base"]
[role_policies]
admin = ["Admin", "Base"]
operator = ["Missing"]
"#
    );
    text.parse().unwrap()
}

fn function_with(provider: &Provider, extra: &str) -> (JwtFunction, Arc<ManualClock>) {
    let options = JwtOptions::parse(&options_toml(&provider.issuer, extra)).unwrap();
    let named: NamedPolicy = Box::new(|name| match name {
        "Base" => Some(BASE_POLICY.to_owned()),
        "Admin" => Some(ADMIN_POLICY.to_owned()),
        _ => None,
    });
    let clock = Arc::new(ManualClock(Mutex::new(Instant::now())));
    let function = JwtFunction::new(options, named, Arc::clone(&clock) as Arc<dyn Clock>);
    (function, clock)
}

fn function(provider: &Provider) -> (JwtFunction, Arc<ManualClock>) {
    function_with(provider, "")
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// Claims of a valid token of `provider` (valid for 600 s, issued 5 s ago).
fn claims(provider: &Provider) -> Value {
    json!({
        "iss": provider.issuer, "aud": "ferrocore", "sub": "client-1",
        "exp": now() + 600, "iat": now() - 5, "nbf": now() - 5,
        "roles": ["admin", "guest"], "scope": "telemetry:write fleet:read",
        "tenant": "acme", "level": 3, "active": true,
        "address": {"country": "FR"}
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

/// The request of an MQTT client sending `token` under the token key.
fn request(token: &str) -> Value {
    json!({"token": token, "signatureVerified": false, "protocols": ["tls", "mqtt"],
           "protocolData": {"mqtt": {"clientId": "dev1"}}})
}

async fn answer(function: &JwtFunction, request: &Value) -> AuthorizerAnswer {
    let body = function.invoke(request).await.unwrap();
    // Whatever the function answers passes the invoker's validation for built-ins.
    AuthorizerAnswer::from_json_with(&body, AnswerRules::BuiltIn).unwrap()
}

async fn assert_refused(function: &JwtFunction, token: &str, case: &str) {
    let answer = answer(function, &request(token)).await;
    assert!(!answer.authenticated, "{case}: allowed");
    assert_eq!(answer.principal_id, UNAUTHENTICATED, "{case}");
    assert!(answer.policies.is_empty(), "{case}");
}

#[tokio::test]
async fn a_valid_token_is_allowed_with_its_role_policies_claims_and_lifetime() {
    let provider = Provider::start(&[rsa_a().jwk(true), ec_c().jwk(true)]).await;
    let (function, _clock) = function(&provider);
    let token = rsa_a().sign(&claims(&provider));
    let answer = answer(&function, &request(&token)).await;
    assert!(answer.authenticated);
    assert_eq!(answer.principal_id, "client-1");
    // Base (default), then Admin and Base again for the role admin: each once, in order;
    // the role guest maps to nothing.
    let texts: Vec<&str> = answer.policies.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, [BASE_POLICY, ADMIN_POLICY]);
    assert_eq!(answer.claims["sub"], ["client-1"]);
    assert_eq!(answer.claims["scope"], ["telemetry:write", "fleet:read"]);
    assert_eq!(answer.claims["roles"], ["admin", "guest"]);
    assert_eq!(answer.claims["aud"], ["ferrocore"]);
    assert_eq!(answer.claims["level"], ["3"]);
    assert_eq!(answer.claims["active"], ["true"]);
    assert!(
        !answer.claims.contains_key("address"),
        "objects are left out"
    );
    let age: u64 = answer.context["tokenAgeSeconds"].parse().unwrap();
    assert!((5..60).contains(&age), "{age}");
    let lifetime = answer.disconnect_after.unwrap().as_secs();
    assert!((500..=600).contains(&lifetime), "{lifetime}");
    assert_eq!(answer.refresh_after, answer.disconnect_after);
    assert_eq!((provider.hits(DISCOVERY), provider.hits(JWKS)), (1, 1));

    // Keys are kept: the next tokens fetch nothing. ES256 works with its own key.
    let token = ec_c().sign(&with(claims(&provider), "roles", json!("admin")));
    let answer = self::answer(&function, &request(&token)).await;
    assert!(answer.authenticated);
    assert_eq!(answer.policies.len(), 2);
    assert_eq!(provider.hits(JWKS), 1);
}

#[tokio::test]
async fn long_tokens_refresh_hourly_and_short_ones_end_at_exp() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    let (function, _clock) = function(&provider);
    let long = rsa_a().sign(&with(claims(&provider), "exp", json!(now() + 7200)));
    let answer = answer(&function, &request(&long)).await;
    assert_eq!(answer.refresh_after, Some(Duration::from_secs(3600)));
    assert!(answer.disconnect_after.unwrap() > Duration::from_secs(3600));
    // Expired 10 s ago, within the 30 s leeway: admitted for the shortest time.
    let late = rsa_a().sign(&with(claims(&provider), "exp", json!(now() - 10)));
    let answer = self::answer(&function, &request(&late)).await;
    assert!(answer.authenticated);
    assert_eq!(answer.disconnect_after, Some(Duration::from_secs(1)));
    // A week-long token: AWS's longest lifetime.
    let week = rsa_a().sign(&with(claims(&provider), "exp", json!(now() + 7 * 86_400)));
    let answer = self::answer(&function, &request(&week)).await;
    assert_eq!(answer.disconnect_after, Some(Duration::from_secs(86_400)));
}

#[tokio::test]
async fn tokens_come_from_the_token_key_a_bearer_header_or_the_password() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    let (function, _clock) = function(&provider);
    let token = rsa_a().sign(&claims(&provider));
    let header = json!({"protocols": ["tls", "http", "mqtt"], "protocolData": {
        "http": {"headers": {"Authorization": format!("Bearer {token}")}, "queryString": ""},
        "mqtt": {"clientId": "dev1", "password": STANDARD.encode("wrong")}}});
    assert!(answer(&function, &header).await.authenticated);
    let password = json!({"protocols": ["tls", "mqtt"], "protocolData": {
        "mqtt": {"clientId": "dev1", "password": STANDARD.encode(&token)}}});
    assert!(answer(&function, &password).await.authenticated);
    // The token key comes first: a bad token there is not saved by a good password.
    let mut first = password.clone();
    first["token"] = json!("not-a-jwt");
    assert!(!answer(&function, &first).await.authenticated);
    // Another scheme is no bearer token.
    let basic =
        json!({"protocolData": {"http": {"headers": {"authorization": format!("Basic {token}")}}}});
    assert!(!answer(&function, &basic).await.authenticated);
    assert!(!answer(&function, &json!({})).await.authenticated);
}

#[tokio::test]
async fn invalid_tokens_are_refused() {
    let provider = Provider::start(&[rsa_a().jwk(true), ec_c().jwk(true)]).await;
    let (function, _clock) = function(&provider);
    let valid = claims(&provider);
    let payload = rsa_a().sign(&valid).split('.').nth(1).unwrap().to_owned();
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"rsa-a","typ":"JWT"}"#);
    // HS256 keyed with the RSA key's public PEM: what a verifier confusing the key types
    // would accept.
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("rsa-a".into());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &valid,
        &EncodingKey::from_secret(rsa_a().public_pem.as_bytes()),
    )
    .unwrap();
    // Signed by rsa-b but naming rsa-a.
    let mut impostor = Header::new(Algorithm::RS256);
    impostor.kid = Some("rsa-a".into());
    let impostor = jsonwebtoken::encode(&impostor, &valid, &rsa_b().encoding).unwrap();
    // The EC key's kid on an RS256 token.
    let mut mismatch = Header::new(Algorithm::RS256);
    mismatch.kid = Some("ec-c".into());
    let mismatch = jsonwebtoken::encode(&mismatch, &valid, &rsa_a().encoding).unwrap();
    let mut critical = Header::new(Algorithm::RS256);
    critical.kid = Some("rsa-a".into());
    critical.crit = Some(vec!["exp".into()]);
    let critical = jsonwebtoken::encode(&critical, &valid, &rsa_a().encoding).unwrap();
    let oversized = rsa_a().sign(&with(valid.clone(), "pad", json!("x".repeat(6200))));
    assert!(oversized.len() > token::MAX_TOKEN_BYTES);
    let mut tampered = rsa_a().sign(&valid);
    tampered.truncate(tampered.len() - 4);
    tampered.push_str("AAAA");

    let a = |claims: Value| rsa_a().sign(&claims);
    let cases = [
        (
            "expired",
            a(with(valid.clone(), "exp", json!(now() - 3600))),
        ),
        (
            "not yet valid",
            a(with(valid.clone(), "nbf", json!(now() + 3600))),
        ),
        (
            "issued in the future",
            a(with(valid.clone(), "iat", json!(now() + 3600))),
        ),
        ("no exp", a(without(valid.clone(), "exp"))),
        (
            "exp not a number",
            a(with(valid.clone(), "exp", json!("tomorrow"))),
        ),
        (
            "wrong aud",
            a(with(valid.clone(), "aud", json!("someone-else"))),
        ),
        ("no aud", a(without(valid.clone(), "aud"))),
        (
            "wrong iss",
            a(with(
                valid.clone(),
                "iss",
                json!("https://evil.example.com"),
            )),
        ),
        (
            "iss with a slash more",
            a(with(
                valid.clone(),
                "iss",
                json!(format!("{}/", provider.issuer)),
            )),
        ),
        (
            "principal with a slash",
            a(with(valid.clone(), "sub", json!("a/b"))),
        ),
        (
            "principal with a wildcard",
            a(with(valid.clone(), "sub", json!("a+b"))),
        ),
        ("no principal", a(without(valid.clone(), "sub"))),
        ("alg none", format!("{none_header}.{payload}.")),
        ("HS256 with the RSA public key as secret", confused),
        ("signed by another key", impostor),
        ("the algorithm of another key", mismatch),
        ("crit header", critical),
        ("oversized", oversized),
        ("tampered signature", tampered),
        ("not a JWT", "a.b".to_owned()),
    ];
    for (case, token) in &cases {
        assert_refused(&function, token, case).await;
    }
    assert_eq!(provider.hits(JWKS), 1, "none of these refetched the keys");
    // An audience list holding one of ours is fine.
    let listed = a(with(valid.clone(), "aud", json!(["x", "other"])));
    assert!(answer(&function, &request(&listed)).await.authenticated);
}

#[tokio::test]
async fn the_principal_may_come_from_another_claim_or_a_nested_one() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    let extra = "principal_claim = \"address.country\"";
    let (function, _clock) = function_with(&provider, extra);
    let token = rsa_a().sign(&claims(&provider));
    assert_eq!(answer(&function, &request(&token)).await.principal_id, "FR");
    let (function, _clock) = function_with(&provider, "principal_claim = \"email\"");
    let token = rsa_a().sign(&with(claims(&provider), "email", json!("ops@example.com")));
    assert_eq!(
        answer(&function, &request(&token)).await.principal_id,
        "ops@example.com"
    );
}

#[tokio::test]
async fn nested_roles_map_to_policies_and_reach_the_claims() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    let text = format!(
        r#"issuer = "{}"
audience = "ferrocore"
allow_http = true
roles_claim = "realm_access.roles"
[role_policies]
admin = ["Admin"]
"#,
        provider.issuer
    );
    let options = JwtOptions::parse(&text.parse().unwrap()).unwrap();
    let named: NamedPolicy = Box::new(|name| (name == "Admin").then(|| ADMIN_POLICY.to_owned()));
    let clock = Arc::new(ManualClock(Mutex::new(Instant::now())));
    let function = JwtFunction::new(options, named, clock);
    let token = rsa_a().sign(&with(
        claims(&provider),
        "realm_access",
        json!({"roles": ["admin", "offline_access"]}),
    ));
    let answer = answer(&function, &request(&token)).await;
    assert!(answer.authenticated);
    assert_eq!(answer.policies.len(), 1);
    assert_eq!(
        answer.claims["realm_access.roles"],
        ["admin", "offline_access"]
    );
}

#[tokio::test]
async fn more_than_ten_policies_refuse_the_token() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    let roles: String = (0..11).map(|i| format!("r{i} = [\"P{i}\"]\n")).collect();
    let text = format!(
        "issuer = \"{}\"\naudience = \"ferrocore\"\nallow_http = true\nroles_claim = \"roles\"\n[role_policies]\n{roles}",
        provider.issuer
    );
    let options = JwtOptions::parse(&text.parse().unwrap()).unwrap();
    let named: NamedPolicy = Box::new(|_| Some(BASE_POLICY.to_owned()));
    let clock = Arc::new(ManualClock(Mutex::new(Instant::now())));
    let function = JwtFunction::new(options, named, clock);
    let all: Vec<String> = (0..11).map(|i| format!("r{i}")).collect();
    let token = rsa_a().sign(&with(claims(&provider), "roles", json!(all)));
    assert_refused(&function, &token, "11 policies").await;
    let ten = &all[..10];
    let token = rsa_a().sign(&with(claims(&provider), "roles", json!(ten)));
    assert_eq!(answer(&function, &request(&token)).await.policies.len(), 10);
}

#[tokio::test]
async fn an_unknown_kid_refetches_once_then_is_refused() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    let (function, clock) = function(&provider);
    assert!(
        answer(&function, &request(&rsa_a().sign(&claims(&provider))))
            .await
            .authenticated
    );
    assert_eq!(provider.hits(JWKS), 1);

    // Within 10 s of the last fetch, an unknown kid fetches nothing.
    let unknown = rsa_b().sign(&claims(&provider));
    assert_refused(&function, &unknown, "unknown kid").await;
    assert_eq!(provider.hits(JWKS), 1);
    // Later, rsa-b (still not published) makes one refetch, then is refused; more such
    // tokens within the interval fetch nothing.
    clock.advance(MIN_REFETCH_INTERVAL);
    for _ in 0..3 {
        assert_refused(&function, &unknown, "unknown kid").await;
    }
    assert_eq!(provider.hits(JWKS), 2);
    assert_eq!(
        provider.hits(DISCOVERY),
        2,
        "discovery is asked again with each fetch"
    );
    clock.advance(MIN_REFETCH_INTERVAL);
    assert_refused(&function, &unknown, "unknown kid").await;
    assert_eq!(provider.hits(JWKS), 3);
    // The known key still works without fetching.
    assert!(
        answer(&function, &request(&rsa_a().sign(&claims(&provider))))
            .await
            .authenticated
    );
    assert_eq!(provider.hits(JWKS), 3);
}

#[tokio::test]
async fn concurrent_unknown_kids_fetch_once() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    let (function, _clock) = function(&provider);
    let function = Arc::new(function);
    let unknown = rsa_b().sign(&claims(&provider));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let function = Arc::clone(&function);
            let request = request(&unknown);
            tokio::spawn(async move { function.invoke(&request).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(provider.hits(JWKS), 1, "one fetch for all of them");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    let (function, clock) = function(&provider);
    assert!(
        answer(&function, &request(&rsa_a().sign(&claims(&provider))))
            .await
            .authenticated
    );
    // The provider rotates to rsa-b (and drops rsa-a).
    provider.publish(&[rsa_b().jwk(false)]);
    clock.advance(MIN_REFETCH_INTERVAL);
    let rotated = rsa_b().sign(&claims(&provider));
    let before = function.generation();
    assert!(answer(&function, &request(&rotated)).await.authenticated);
    assert_eq!(provider.hits(JWKS), 2);
    assert_ne!(
        function.generation(),
        before,
        "other key ids: answers cached under the old keys are not used"
    );
    // rsa-a is gone with the refetch.
    clock.advance(MIN_REFETCH_INTERVAL);
    assert_refused(&function, &rsa_a().sign(&claims(&provider)), "retired key").await;
}

#[tokio::test]
async fn keys_older_than_an_hour_are_fetched_again() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    let (function, clock) = function(&provider);
    let token = rsa_a().sign(&claims(&provider));
    assert!(answer(&function, &request(&token)).await.authenticated);
    clock.advance(MAX_KEY_AGE - Duration::from_secs(1));
    assert!(answer(&function, &request(&token)).await.authenticated);
    assert_eq!(provider.hits(JWKS), 1);
    clock.advance(Duration::from_secs(1));
    // Retired meanwhile: the fresh set no longer has it.
    provider.publish(&[rsa_b().jwk(true)]);
    assert_refused(&function, &token, "retired after an hour").await;
    assert_eq!(provider.hits(JWKS), 2);
}

#[tokio::test]
async fn keys_are_pinned_bounded_and_never_symmetric() {
    let provider = Provider::start(&[]).await;
    let (function, _clock) = function(&provider);
    let rsa = rsa_a().jwk(true);
    let mut published: Vec<Value> = (0..MAX_KEYS + 6)
        .map(|i| with(rsa.clone(), "kid", json!(format!("k{i}"))))
        .collect();
    // Unusable: an HMAC secret, an encryption key, an RSA key claiming ES256, a key for an
    // algorithm not accepted (PS256), garbage.
    published.insert(
        0,
        json!({"kty": "oct", "kid": "hs", "k": URL_SAFE_NO_PAD.encode(b"secret")}),
    );
    published.insert(
        1,
        with(with(rsa.clone(), "kid", json!("enc")), "use", json!("enc")),
    );
    published.insert(
        2,
        with(
            with(rsa.clone(), "kid", json!("liar")),
            "alg",
            json!("ES256"),
        ),
    );
    published.insert(
        3,
        with(
            with(rsa.clone(), "kid", json!("pss")),
            "alg",
            json!("PS256"),
        ),
    );
    published.insert(4, json!({"kty": "RSA", "kid": "broken"}));
    provider.publish(&published);
    let token = rsa_a().sign(&claims(&provider));
    // rsa-a's kid is not among them (they are renamed): refused, but the set was fetched.
    assert_refused(&function, &token, "renamed key").await;
    assert_eq!(function.keys.len(), MAX_KEYS);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k0".into());
    let k0 = jsonwebtoken::encode(&header, &claims(&provider), &rsa_a().encoding).unwrap();
    assert!(answer(&function, &request(&k0)).await.authenticated);
    for kid in ["enc", "liar", "pss", "hs", &format!("k{MAX_KEYS}")] {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &claims(&provider), &rsa_a().encoding).unwrap();
        assert_refused(&function, &token, kid).await;
    }
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("hs".into());
    let token = jsonwebtoken::encode(
        &hs,
        &claims(&provider),
        &EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert_refused(&function, &token, "HS256 with a published oct key").await;
}

#[tokio::test]
async fn a_key_with_an_explicit_alg_verifies_only_that_alg() {
    let provider = Provider::start(&[with(rsa_a().jwk(true), "alg", json!("RS384"))]).await;
    let (function, _clock) = function(&provider);
    assert_refused(
        &function,
        &rsa_a().sign(&claims(&provider)),
        "RS256 on an RS384 key",
    )
    .await;
    let mut header = Header::new(Algorithm::RS384);
    header.kid = Some("rsa-a".into());
    let token = jsonwebtoken::encode(&header, &claims(&provider), &rsa_a().encoding).unwrap();
    assert!(answer(&function, &request(&token)).await.authenticated);
}

#[tokio::test]
async fn an_unreachable_provider_is_a_function_failure() {
    // A port that was just free: nothing listens there.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let provider = Provider {
        issuer,
        documents: Arc::default(),
        hits: Arc::default(),
    };
    let (function, _clock) = function(&provider);
    let token = rsa_a().sign(&claims(&provider));
    let error = function.invoke(&request(&token)).await.unwrap_err();
    assert!(matches!(error, InvokeError::Unreachable(_)), "{error}");
    // Within the refetch interval: still a failure, without trying again.
    let error = function.invoke(&request(&token)).await.unwrap_err();
    assert!(
        error.to_string().contains("could not be fetched"),
        "{error}"
    );
}

#[tokio::test]
async fn a_discovery_document_of_another_issuer_is_a_failure() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    provider.documents.lock().insert(
        DISCOVERY.to_owned(),
        json!({"issuer": "https://elsewhere.example.com", "jwks_uri": format!("{}{JWKS}", provider.issuer)}).to_string(),
    );
    let (function, _clock) = function(&provider);
    let error = function
        .invoke(&request(&rsa_a().sign(&claims(&provider))))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("names the issuer"), "{error}");
    assert_eq!(provider.hits(JWKS), 0);
}

#[tokio::test]
async fn jwks_url_skips_discovery() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    let extra = format!("jwks_url = \"{}{JWKS}\"", provider.issuer);
    let (function, _clock) = function_with(&provider, &extra);
    assert!(
        answer(&function, &request(&rsa_a().sign(&claims(&provider))))
            .await
            .authenticated
    );
    assert_eq!((provider.hits(DISCOVERY), provider.hits(JWKS)), (0, 1));
}

#[tokio::test]
async fn through_the_invoker_lifetimes_below_300_s_are_kept() {
    let provider = Provider::start(&[rsa_a().jwk(true)]).await;
    let (function, _clock) = function(&provider);
    let mut built_ins = BuiltInFunctions::new();
    built_ins.insert("idp", Arc::new(function) as Arc<dyn AuthorizerFunction>);
    let invoker = AuthorizerInvoker::new(InvokerConfig::default(), built_ins);
    let record = AuthorizerRecord {
        name: "oidc".into(),
        function_arn: "ferrocore:function/idp".into(),
        token_key_name: Some("token".into()),
        token_signing_public_keys: Default::default(),
        status: AuthorizerStatus::Active,
        signing_disabled: true,
        enable_caching_for_http: false,
        creation_date_ms: 0,
        last_modified_date_ms: 0,
    };
    let token = rsa_a().sign(&with(claims(&provider), "exp", json!(now() + 20)));
    let request = AuthorizerRequest {
        token: Some(token),
        ..Default::default()
    };
    let answer = invoker.authorize(&record, request, None).await.unwrap();
    assert!(answer.authenticated);
    assert!(answer.disconnect_after.unwrap() <= Duration::from_secs(20));
    assert_eq!(answer.principal_id, "client-1");
}

#[test]
fn options_are_checked_without_the_network() {
    let ok = |extra: &str, issuer: &str| JwtOptions::parse(&options_toml(issuer, extra));
    let https = "https://idp.example.com/";
    let parsed = ok("", https).unwrap();
    assert_eq!(parsed.leeway, Duration::from_secs(30));
    assert_eq!(parsed.principal_claim, "sub");
    // Discovery under the issuer, whatever its trailing slash.
    let discovery = KeySource::Discovery(
        HttpUrl::parse("https://idp.example.com/.well-known/openid-configuration").unwrap(),
    );
    assert_eq!(parsed.keys, discovery);
    assert_eq!(ok("", "https://idp.example.com").unwrap().keys, discovery);
    assert_eq!(
        ok("leeway = \"5m\"", https).unwrap().leeway,
        Duration::from_secs(300)
    );
    assert_eq!(
        ok("leeway = 10", https).unwrap().leeway,
        Duration::from_secs(10)
    );

    let error = |table: &str| JwtOptions::parse(&table.parse().unwrap()).unwrap_err();
    let base = "issuer = \"https://idp.example.com\"\naudience = \"a\"\n";
    for (extra, expected) in [
        ("algorithms = [\"HS256\"]", "HS256 is refused"),
        ("algorithms = [\"none\"]", "never accepted"),
        ("algorithms = [\"XS1\"]", "unknown algorithm"),
        ("algorithms = []", "at least one"),
        ("leeway = \"6m\"", "at most 5m"),
        ("leeway = \"soon\"", "`leeway`"),
        ("audiences = \"a\"", "unknown option `audiences`"),
        ("roles_claim = \"\"", "must not be empty"),
        ("[role_policies]\nadmin = [\"A\"]", "needs `roles_claim`"),
        ("default_policies = [\"bad name!\"]", "`default_policies`"),
        (
            "jwks_url = \"http://192.0.2.1/keys\"",
            "set allow_http = true",
        ),
        (
            "jwks_url = \"http://192.0.2.1/keys\"\nallow_http = true",
            "not a loopback host",
        ),
        ("jwks_url = \"ftp://x/keys\"", "`jwks_url`"),
    ] {
        let message = error(&format!("{base}{extra}"));
        assert!(message.contains(expected), "{extra}: {message}");
    }
    assert!(error("audience = \"a\"").contains("`issuer` is required"));
    assert!(error("issuer = \"https://x\"").contains("`audience` is required"));
    assert!(error("issuer = \"http://idp.example.com\"\naudience = \"a\"").contains("allow_http"));
    assert!(
        error("issuer = \"http://idp.example.com\"\naudience = \"a\"\nallow_http = true")
            .contains("not a loopback host")
    );
    // Loopback over plain http with the flag: fine, and building fetches nothing.
    for issuer in [
        "http://127.0.0.1:1",
        "http://localhost:1/realms/x",
        "http://[::1]:1",
    ] {
        let table = format!("issuer = \"{issuer}\"\naudience = \"a\"\nallow_http = true");
        assert!(
            JwtOptions::parse(&table.parse().unwrap()).is_ok(),
            "{issuer}"
        );
    }
}
