//! The invoker against an in-process webhook (a plain HTTP/1.1 server on 127.0.0.1:0) and
//! against fake built-in functions; time moved by a manual clock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::*;
use crate::custom_auth::{HttpContext, MqttContext, TlsContext};

const TOKEN: &str = include_str!("../testdata/token.txt");
const SIG_A: &str = include_str!("../testdata/token.sig-a.b64");
const SIG_B: &str = include_str!("../testdata/token.sig-b.b64");
const KEY_A: &str = include_str!("../testdata/rsa2048-a.pub.pem");

const ALLOW: &str = r#"{"isAuthenticated": true, "principalId": "device17",
    "policyDocuments": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Action": "iot:Connect", "Resource": "*"}]}], "refreshAfterInSeconds": 300}"#;
const DENY: &str = r#"{"isAuthenticated": false, "principalId": "device17"}"#;

struct ManualClock(Mutex<Instant>);

impl ManualClock {
    fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(Instant::now())))
    }
    fn advance(&self, by: Duration) {
        *self.0.lock() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock()
    }
}

/// What the test webhook answers.
#[derive(Clone)]
enum Reply {
    Json(u16, String),
    /// Reads the request and never answers.
    Never,
    /// Declares (and starts sending) a body larger than the answer cap.
    Huge,
}

/// A webhook on 127.0.0.1:0 answering `reply` to every POST; keeps the events it got.
struct TestWebhook {
    url: String,
    events: Arc<Mutex<Vec<Value>>>,
}

async fn webhook(reply: Reply) -> TestWebhook {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/authorize?x=1", listener.local_addr().unwrap());
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let reply = reply.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    assert!(n > 0, "request ended early");
                    data.extend_from_slice(&buf[..n]);
                    if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
                assert!(head.starts_with("post /authorize?x=1 http/1.1"), "{head}");
                assert!(head.contains("content-type: application/json"));
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                while data.len() < head_end + length {
                    let n = socket.read(&mut buf).await.unwrap();
                    data.extend_from_slice(&buf[..n]);
                }
                seen.lock()
                    .push(serde_json::from_slice(&data[head_end..]).unwrap());
                let (status, body) = match reply {
                    Reply::Json(status, body) => (status, body),
                    Reply::Never => {
                        std::future::pending::<()>().await;
                        unreachable!()
                    }
                    Reply::Huge => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{{",
                            MAX_ANSWER_BYTES + 1
                        );
                        let _ = socket.write_all(head.as_bytes()).await;
                        return;
                    }
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    TestWebhook { url, events }
}

/// A built-in function answering `answer` (or failing), counting calls, optionally waiting
/// for `gate` before answering.
struct FakeFunction {
    calls: AtomicUsize,
    answer: Mutex<Result<Vec<u8>, InvokeError>>,
    gate: Option<Arc<Notify>>,
    built_in: bool,
    generation: AtomicU64,
}

impl FakeFunction {
    fn new(answer: Result<&str, InvokeError>) -> Arc<FakeFunction> {
        Arc::new(FakeFunction {
            calls: AtomicUsize::new(0),
            answer: Mutex::new(answer.map(|a| a.as_bytes().to_vec())),
            gate: None,
            built_in: false,
            generation: AtomicU64::new(0),
        })
    }
    /// A function that says it is built in (its answers get the built-in rules).
    fn built_in(answer: &str) -> Arc<FakeFunction> {
        Arc::new(FakeFunction {
            calls: AtomicUsize::new(0),
            answer: Mutex::new(Ok(answer.as_bytes().to_vec())),
            gate: None,
            built_in: true,
            generation: AtomicU64::new(0),
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn answer(&self, answer: Result<&str, InvokeError>) {
        *self.answer.lock() = answer.map(|a| a.as_bytes().to_vec());
    }
}

impl AuthorizerFunction for FakeFunction {
    fn invoke<'a>(&'a self, _request: &'a Value) -> InvokeFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            self.answer.lock().clone()
        })
    }
    fn is_built_in(&self) -> bool {
        self.built_in
    }
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

fn record(name: &str, function_arn: &str) -> AuthorizerRecord {
    AuthorizerRecord {
        name: name.into(),
        function_arn: function_arn.into(),
        token_key_name: Some("token".into()),
        token_signing_public_keys: BTreeMap::new(),
        status: AuthorizerStatus::Active,
        signing_disabled: true,
        enable_caching_for_http: false,
        creation_date_ms: 0,
        last_modified_date_ms: 0,
    }
}

fn signed(mut record: AuthorizerRecord) -> AuthorizerRecord {
    record.signing_disabled = false;
    record
        .token_signing_public_keys
        .insert("keyA".into(), KEY_A.into());
    record
}

fn request(token: &str) -> AuthorizerRequest {
    AuthorizerRequest {
        token: Some(token.into()),
        tls: Some(TlsContext {
            server_name: Some("iot.example.com".into()),
        }),
        mqtt: Some(MqttContext {
            username: Some("user?x-amz-customauthorizer-name=auth".into()),
            password: Some(b"secret".to_vec()),
            client_id: Some("device17".into()),
        }),
        connection_id: Some("c0ffee".into()),
        ..AuthorizerRequest::default()
    }
}

fn invoker(config: InvokerConfig) -> AuthorizerInvoker {
    AuthorizerInvoker::new(config, BuiltInFunctions::new())
}

/// An invoker with the built-in function `fake` and a manual clock.
fn invoker_with(
    config: InvokerConfig,
    fake: &Arc<FakeFunction>,
) -> (AuthorizerInvoker, Arc<ManualClock>) {
    let mut built_ins = BuiltInFunctions::new();
    built_ins.insert("fake", Arc::clone(fake) as Arc<dyn AuthorizerFunction>);
    let clock = ManualClock::new();
    let invoker = AuthorizerInvoker::with_clock(config, built_ins, clock.clone());
    (invoker, clock)
}

const FAKE: &str = "ferrocore:function/fake";

#[tokio::test]
async fn webhook_allows_and_receives_aws_event() {
    let hook = webhook(Reply::Json(200, ALLOW.into())).await;
    let invoker = invoker(InvokerConfig::default());
    let answer = invoker
        .authorize(&record("auth", &hook.url), request("tok"), None)
        .await
        .unwrap();
    assert!(answer.authenticated);
    assert_eq!(answer.principal_id, "device17");
    assert_eq!(answer.policies.len(), 1);
    assert_eq!(answer.refresh_after, Some(Duration::from_secs(300)));
    let events = hook.events.lock();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0],
        json!({"token": "tok", "signatureVerified": false, "protocols": ["tls", "mqtt"],
               "protocolData": {"tls": {"serverName": "iot.example.com"},
                 "mqtt": {"username": "user?x-amz-customauthorizer-name=auth",
                          "password": "c2VjcmV0", "clientId": "device17"}},
               "connectionMetadata": {"id": "c0ffee"}})
    );
}

#[tokio::test]
async fn webhook_denial_is_an_answer() {
    let hook = webhook(Reply::Json(200, DENY.into())).await;
    let answer = invoker(InvokerConfig::default())
        .authorize(&record("auth", &hook.url), request("tok"), None)
        .await
        .unwrap();
    assert!(!answer.authenticated);
}

#[tokio::test]
async fn malformed_answers_deny() {
    for (body, check) in [
        ("not json", "not a JSON object"),
        (r#"{"principalId": "a"}"#, "no isAuthenticated"),
        (
            r#"{"isAuthenticated": true, "principalId": "bad id!"}"#,
            "principalId",
        ),
        (
            r#"{"isAuthenticated": true, "principalId": "a", "refreshAfterInSeconds": 10}"#,
            "within 300-86400",
        ),
        (
            r#"{"isAuthenticated": true, "principalId": "a", "policyDocuments": ["{}"]}"#,
            "policyDocuments[0]",
        ),
    ] {
        let hook = webhook(Reply::Json(200, body.into())).await;
        let denial = invoker(InvokerConfig::default())
            .authorize(&record("auth", &hook.url), request("tok"), None)
            .await
            .unwrap_err();
        assert!(
            matches!(denial, Denial::InvalidAnswer(_)),
            "{body}: {denial}"
        );
        assert!(denial.to_string().contains(check), "{body}: {denial}");
    }
}

#[tokio::test]
async fn server_error_denies() {
    let hook = webhook(Reply::Json(503, ALLOW.into())).await;
    let denial = invoker(InvokerConfig::default())
        .authorize(&record("auth", &hook.url), request("tok"), None)
        .await
        .unwrap_err();
    assert_eq!(denial, Denial::Function(InvokeError::Status(503)));
}

#[tokio::test]
async fn oversized_answer_denies() {
    let hook = webhook(Reply::Huge).await;
    let denial = invoker(InvokerConfig::default())
        .authorize(&record("auth", &hook.url), request("tok"), None)
        .await
        .unwrap_err();
    assert_eq!(denial, Denial::Function(InvokeError::TooLarge));
}

#[tokio::test]
async fn silent_webhook_times_out() {
    let hook = webhook(Reply::Never).await;
    let config = InvokerConfig {
        timeout: Duration::from_millis(200),
        ..InvokerConfig::default()
    };
    let denial = invoker(config)
        .authorize(&record("auth", &hook.url), request("tok"), None)
        .await
        .unwrap_err();
    assert_eq!(denial, Denial::Timeout(Duration::from_millis(200)));
}

#[tokio::test]
async fn unreachable_webhook_denies() {
    // A port that was just free: nothing listens there.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let denial = invoker(InvokerConfig::default())
        .authorize(&record("auth", &url), request("tok"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(denial, Denial::Function(InvokeError::Unreachable(_))),
        "{denial}"
    );
}

#[tokio::test]
async fn plain_http_only_to_loopback() {
    // TEST-NET-1: never routed; refused before any connection is tried.
    let denial = invoker(InvokerConfig::default())
        .authorize(
            &record("auth", "http://192.0.2.1:8080/"),
            request("tok"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        denial,
        Denial::Function(InvokeError::PlainHttpNotLoopback("192.0.2.1".into()))
    );
    // localhost resolves to loopback addresses only.
    let hook = webhook(Reply::Json(200, ALLOW.into())).await;
    let url = hook.url.replace("127.0.0.1", "localhost");
    let answer = invoker(InvokerConfig::default())
        .authorize(&record("auth", &url), request("tok"), None)
        .await;
    // Where localhost also resolves to ::1 first, the v4-only server may refuse that
    // address; the next (127.0.0.1) is tried.
    assert!(answer.unwrap().authenticated);
}

#[tokio::test]
async fn inactive_authorizer_is_not_called() {
    let hook = webhook(Reply::Json(200, ALLOW.into())).await;
    let mut inactive = record("auth", &hook.url);
    inactive.status = AuthorizerStatus::Inactive;
    let invoker = invoker(InvokerConfig::default());
    let denial = invoker
        .authorize(&inactive, request("tok"), None)
        .await
        .unwrap_err();
    assert_eq!(denial, Denial::Inactive);
    assert!(hook.events.lock().is_empty());
    // TestInvokeAuthorizer tries an INACTIVE authorizer.
    let answer = invoker
        .test_invoke(&inactive, request("tok"), None)
        .await
        .unwrap();
    assert!(answer.authenticated);
}

#[tokio::test]
async fn signature_checked_before_the_call() {
    let hook = webhook(Reply::Json(200, ALLOW.into())).await;
    let authorizer = signed(record("auth", &hook.url));
    let invoker = invoker(InvokerConfig::default());
    let cases = [
        (request(TOKEN), None, Denial::MissingSignature),
        (
            request(TOKEN),
            Some(SIG_B.trim()),
            Denial::BadSignature(SignatureError::Mismatch),
        ),
        (
            request("tampered"),
            Some(SIG_A.trim()),
            Denial::BadSignature(SignatureError::Mismatch),
        ),
        (
            request(TOKEN),
            Some("not base64!"),
            Denial::BadSignature(SignatureError::NotBase64),
        ),
        (
            AuthorizerRequest::default(),
            Some(SIG_A.trim()),
            Denial::MissingToken,
        ),
    ];
    for (req, signature, expected) in cases {
        let denial = invoker
            .authorize(&authorizer, req, signature)
            .await
            .unwrap_err();
        assert_eq!(denial, expected);
    }
    assert!(hook.events.lock().is_empty(), "no call without a signature");

    let answer = invoker
        .authorize(&authorizer, request(TOKEN), Some(SIG_A.trim()))
        .await
        .unwrap();
    assert!(answer.authenticated);
    assert_eq!(hook.events.lock()[0]["signatureVerified"], json!(true));
}

#[tokio::test]
async fn lambda_and_undeclared_functions_deny() {
    let invoker = invoker(InvokerConfig::default());
    let lambda = record(
        "auth",
        "arn:aws:lambda:us-east-1:123456789012:function:authorize",
    );
    assert_eq!(
        invoker
            .authorize(&lambda, request("tok"), None)
            .await
            .unwrap_err(),
        Denial::LambdaFunction
    );
    let built_in = record("auth2", "ferrocore:function/jwt");
    assert_eq!(
        invoker
            .authorize(&built_in, request("tok"), None)
            .await
            .unwrap_err(),
        Denial::UndeclaredFunction("jwt".into())
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_calls_wait_for_a_slot_within_the_timeout() {
    let gate = Arc::new(Notify::new());
    let fake = Arc::new(FakeFunction {
        calls: AtomicUsize::new(0),
        answer: Mutex::new(Ok(ALLOW.as_bytes().to_vec())),
        gate: Some(Arc::clone(&gate)),
        built_in: false,
        generation: AtomicU64::new(0),
    });
    let config = InvokerConfig {
        max_concurrent_calls: 1,
        timeout: Duration::from_secs(5),
        ..InvokerConfig::default()
    };
    let (invoker, _clock) = invoker_with(config, &fake);
    let invoker = Arc::new(invoker);
    let authorizer = record("auth", FAKE);
    let spawn = |token: &'static str| {
        let invoker = Arc::clone(&invoker);
        let authorizer = authorizer.clone();
        tokio::spawn(async move { invoker.authorize(&authorizer, request(token), None).await })
    };
    let first = spawn("a");
    while fake.calls() == 0 {
        tokio::task::yield_now().await;
    }
    // The second waits for the first's slot instead of being refused.
    let second = spawn("b");
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(fake.calls(), 1, "one call at a time");
    gate.notify_one();
    assert!(first.await.unwrap().unwrap().authenticated);
    while fake.calls() < 2 {
        tokio::task::yield_now().await;
    }
    gate.notify_one();
    assert!(second.await.unwrap().unwrap().authenticated);

    // A slot that stays busy for the whole timeout: the waiting call is refused as busy,
    // the hung one times out.
    let hung = spawn("c");
    while fake.calls() < 3 {
        tokio::task::yield_now().await;
    }
    let waiting = invoker
        .authorize(&authorizer, request("d"), None)
        .await
        .unwrap_err();
    assert_eq!(waiting, Denial::Busy(1));
    assert!(matches!(hung.await.unwrap(), Err(Denial::Timeout(_))));
    assert_eq!(fake.calls(), 3);
}

#[tokio::test]
async fn breaker_opens_then_closes_after_cool_down() {
    let fake = FakeFunction::new(Err(InvokeError::Status(500)));
    let config = InvokerConfig {
        breaker_failures: 2,
        breaker_cool_down: Duration::from_secs(30),
        ..InvokerConfig::default()
    };
    let (invoker, clock) = invoker_with(config, &fake);
    let authorizer = record("auth", FAKE);
    for _ in 0..2 {
        let denial = invoker
            .authorize(&authorizer, request("t"), None)
            .await
            .unwrap_err();
        assert_eq!(denial, Denial::Function(InvokeError::Status(500)));
    }
    let denial = invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap_err();
    assert_eq!(denial, Denial::CircuitOpen(2));
    assert_eq!(fake.calls(), 2, "an open breaker calls nothing");

    // Half-open after the cool-down: one more failure opens it again at once.
    clock.advance(Duration::from_secs(31));
    assert!(
        invoker
            .authorize(&authorizer, request("t"), None)
            .await
            .is_err()
    );
    assert_eq!(fake.calls(), 3);
    assert_eq!(
        invoker
            .authorize(&authorizer, request("t"), None)
            .await
            .unwrap_err(),
        Denial::CircuitOpen(3)
    );

    // A success closes it.
    clock.advance(Duration::from_secs(31));
    fake.answer(Ok(ALLOW));
    assert!(
        invoker
            .authorize(&authorizer, request("t"), None)
            .await
            .is_ok()
    );
    fake.answer(Err(InvokeError::Status(500)));
    assert_eq!(
        invoker
            .authorize(&authorizer, request("u"), None)
            .await
            .unwrap_err(),
        Denial::Function(InvokeError::Status(500)),
        "one failure after a success does not open it"
    );
}

#[tokio::test]
async fn allowed_answers_cached_until_refresh() {
    let fake = FakeFunction::new(Ok(ALLOW));
    let (invoker, clock) = invoker_with(InvokerConfig::default(), &fake);
    let authorizer = record("auth", FAKE);
    for _ in 0..3 {
        invoker
            .authorize(&authorizer, request("t"), None)
            .await
            .unwrap();
    }
    assert_eq!(fake.calls(), 1, "cached across connections");
    // The connection id is not part of the key.
    let mut other_connection = request("t");
    other_connection.connection_id = Some("other".into());
    invoker
        .authorize(&authorizer, other_connection, None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 1);
    invoker
        .authorize(&authorizer, request("other token"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 2, "another request is another key");

    clock.advance(Duration::from_secs(299));
    invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 2);
    clock.advance(Duration::from_secs(2));
    invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 3, "expired after refreshAfterInSeconds");

    // TestInvokeAuthorizer never reads the cache.
    invoker
        .test_invoke(&authorizer, request("t"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 4);
}

#[tokio::test]
async fn https_requests_share_answers_only_with_enable_caching_for_http() {
    let fake = FakeFunction::new(Ok(ALLOW));
    let (invoker, _clock) = invoker_with(InvokerConfig::default(), &fake);
    let https_request = || AuthorizerRequest {
        mqtt: None,
        http: Some(HttpContext {
            headers: vec![("x-token".into(), "t".into())],
            query: String::new(),
        }),
        ..request("t")
    };
    let mut authorizer = record("auth", FAKE);
    for _ in 0..2 {
        invoker
            .authorize(&authorizer, https_request(), None)
            .await
            .unwrap();
    }
    assert_eq!(fake.calls(), 2, "enableCachingForHttp is off");
    authorizer.enable_caching_for_http = true;
    for _ in 0..2 {
        invoker
            .authorize(&authorizer, https_request(), None)
            .await
            .unwrap();
    }
    assert_eq!(fake.calls(), 3, "enableCachingForHttp is on");
}

#[tokio::test]
async fn denials_cached_only_briefly_and_failures_never() {
    let fake = FakeFunction::new(Ok(DENY));
    let (invoker, clock) = invoker_with(InvokerConfig::default(), &fake);
    let authorizer = record("auth", FAKE);
    for _ in 0..2 {
        let answer = invoker
            .authorize(&authorizer, request("t"), None)
            .await
            .unwrap();
        assert!(!answer.authenticated);
    }
    assert_eq!(fake.calls(), 1);
    clock.advance(Duration::from_secs(5));
    invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 2, "a denial is kept at most 5 s");

    fake.answer(Err(InvokeError::Status(500)));
    assert!(
        invoker
            .authorize(&authorizer, request("f"), None)
            .await
            .is_err()
    );
    fake.answer(Ok(ALLOW));
    assert!(
        invoker
            .authorize(&authorizer, request("f"), None)
            .await
            .is_ok()
    );
    assert_eq!(fake.calls(), 4, "a failure is not cached");
}

#[tokio::test]
async fn changes_invalidate_the_cache() {
    let fake = FakeFunction::new(Ok(ALLOW));
    let (invoker, _clock) = invoker_with(InvokerConfig::default(), &fake);
    let mut authorizer = record("auth", FAKE);
    invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap();
    // A changed record (any field) is a new generation.
    authorizer.last_modified_date_ms = 1;
    invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 2);
    assert_eq!(invoker.cache.lock().len(), 1, "the old entries are dropped");
    // A registry change of the authorizer (even to an identical record, e.g. deleted and
    // created again) forgets it.
    invoker.forget("auth");
    assert_eq!(invoker.cache.lock().len(), 0);
    invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 3);
    // Deactivation denies at once, whatever is cached.
    authorizer.status = AuthorizerStatus::Inactive;
    assert_eq!(
        invoker
            .authorize(&authorizer, request("t"), None)
            .await
            .unwrap_err(),
        Denial::Inactive
    );
}

#[tokio::test]
async fn cache_is_bounded() {
    let fake = FakeFunction::new(Ok(ALLOW));
    let config = InvokerConfig {
        max_cached_answers: 2,
        ..InvokerConfig::default()
    };
    let (invoker, _clock) = invoker_with(config, &fake);
    let authorizer = record("auth", FAKE);
    for token in ["a", "b", "c", "d"] {
        invoker
            .authorize(&authorizer, request(token), None)
            .await
            .unwrap();
    }
    assert_eq!(invoker.cache.lock().len(), 2);
}

#[tokio::test]
async fn a_full_cache_evicts_the_answers_expiring_soonest_in_batches() {
    let fake = FakeFunction::new(Ok(ALLOW));
    let config = InvokerConfig {
        max_cached_answers: 16,
        ..InvokerConfig::default()
    };
    let (invoker, clock) = invoker_with(config, &fake);
    let authorizer = record("auth", FAKE);
    let tokens: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
    for token in &tokens {
        invoker
            .authorize(&authorizer, request(token), None)
            .await
            .unwrap();
        // Later answers expire later.
        clock.advance(Duration::from_secs(1));
    }
    assert!(invoker.cache.lock().len() <= 16);
    let calls = fake.calls();
    invoker
        .authorize(&authorizer, request("t39"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), calls, "the newest answer is still cached");
    invoker
        .authorize(&authorizer, request("t0"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), calls + 1, "the oldest went first");
}

#[tokio::test]
async fn a_new_function_generation_bypasses_older_cached_answers() {
    let fake = FakeFunction::new(Ok(ALLOW));
    let (invoker, _clock) = invoker_with(InvokerConfig::default(), &fake);
    let authorizer = record("auth", FAKE);
    for _ in 0..2 {
        invoker
            .authorize(&authorizer, request("t"), None)
            .await
            .unwrap();
    }
    assert_eq!(fake.calls(), 1);
    // The function's data changed (a password file read again).
    fake.generation.store(1, Ordering::SeqCst);
    invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn built_in_answers_get_the_built_in_rules() {
    let short = r#"{"isAuthenticated": true, "principalId": "client-1",
        "disconnectAfterInSeconds": 1, "refreshAfterInSeconds": 1,
        "claims": {"scope": ["read"]}, "context": {"tokenAgeSeconds": "3"}}"#;
    let fake = FakeFunction::built_in(short);
    let (invoker, _clock) = invoker_with(InvokerConfig::default(), &fake);
    let answer = invoker
        .authorize(&record("auth", FAKE), request("t"), None)
        .await
        .unwrap();
    assert_eq!(answer.principal_id, "client-1");
    assert_eq!(answer.disconnect_after, Some(Duration::from_secs(1)));
    assert_eq!(answer.claims["scope"], ["read"]);
    assert_eq!(answer.context["tokenAgeSeconds"], "3");

    // The same answer from a function that is not built in is held to AWS's rules.
    let fake = FakeFunction::new(Ok(short));
    let (invoker, _clock) = invoker_with(InvokerConfig::default(), &fake);
    let denial = invoker
        .authorize(&record("auth", FAKE), request("t"), None)
        .await
        .unwrap_err();
    assert_eq!(
        denial,
        Denial::InvalidAnswer(AnswerError::InvalidPrincipalId)
    );
}

#[tokio::test]
async fn cached_answers_never_outlive_their_disconnect_time() {
    let answer = r#"{"isAuthenticated": true, "principalId": "p",
        "disconnectAfterInSeconds": 600, "refreshAfterInSeconds": 3600}"#;
    let fake = FakeFunction::new(Ok(answer));
    let (invoker, clock) = invoker_with(InvokerConfig::default(), &fake);
    let authorizer = record("auth", FAKE);
    let first = invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap();
    assert_eq!(first.disconnect_after, Some(Duration::from_secs(600)));

    // A hit 100 s later ends when the first connection would: 500 s from now.
    clock.advance(Duration::from_secs(100));
    let hit = invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 1);
    assert_eq!(hit.disconnect_after, Some(Duration::from_secs(500)));
    assert_eq!(hit.refresh_after, Some(Duration::from_secs(3600)));

    clock.advance(Duration::from_millis(499_500));
    let hit = invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 1);
    assert_eq!(hit.disconnect_after, Some(Duration::from_millis(500)));

    // At the disconnect time the entry is a miss, though its refresh time is far.
    clock.advance(Duration::from_millis(500));
    let fresh = invoker
        .authorize(&authorizer, request("t"), None)
        .await
        .unwrap();
    assert_eq!(fake.calls(), 2);
    assert_eq!(fresh.disconnect_after, Some(Duration::from_secs(600)));
}
