//! Custom authentication's parsers of untrusted input: an MQTT CONNECT username (also used as
//! an HTTP query string and header value) and an authorizer's answer, separated by the first
//! NUL byte of the input (no NUL: all of it is the username, and also the answer).
//!
//! ```sh
//! mkdir -p corpus/custom_auth
//! cargo +nightly fuzz run custom_auth corpus/custom_auth seeds/custom_auth -- -max_total_time=600
//! ```
//!
//! Nothing may panic. A parsed username keeps its part before `?` as sent and yields only a
//! valid authorizer name, signature and token; its signature is checked against a test key (which
//! signed one token);
//! the authorizer request built from it is a JSON object that reads back as itself, with
//! HTTP headers and query within 8 KB, and a cache key that depends on the generation. A
//! valid answer keeps AWS's rules: principal id, at most 10 policies whose texts parse again,
//! durations within 300-86400 s.

#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use ferrocore_identity::custom_auth::{
    AuthorizerAnswer, AuthorizerRequest, CustomAuthParams, HttpContext, MAX_ANSWER_POLICIES,
    MAX_HTTP_CONTEXT_BYTES, MAX_TOKEN_CHARS, MqttContext, MqttUsername, ParsedKey, TlsContext,
    check_authorizer_name, check_signature_format, verify_token_signature,
};
use libfuzzer_sys::fuzz_target;

const TOKEN_KEY_NAME: &str = "tok";
const SIGNED_TOKEN: &str = include_str!("../../crates/identity/src/custom_auth/testdata/token.txt");

static KEYS: LazyLock<Vec<ParsedKey>> = LazyLock::new(|| {
    let pem = include_str!("../../crates/identity/src/custom_auth/testdata/rsa2048-a.pub.pem");
    vec![ParsedKey::from_pem(pem).expect("the test key parses")]
});

fuzz_target!(|data: &[u8]| {
    let (username, answer) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, data),
    };
    if let Ok(username) = std::str::from_utf8(username) {
        check_username(username);
    }
    check_answer(answer);
});

fn check_username(raw: &str) {
    let parsed = MqttUsername::parse(raw);
    let from_http = CustomAuthParams::from_http(
        &[("x-amz-customauthorizer-name", raw), (TOKEN_KEY_NAME, raw)],
        raw,
    );
    if let Ok(params) = &from_http {
        check_params(params);
    }
    let Ok(parsed) = parsed else {
        return;
    };
    assert_eq!(parsed.user, raw.split('?').next().unwrap_or(raw));
    let token = check_params(&parsed.params);

    let request = AuthorizerRequest {
        token: token.map(str::to_owned),
        signature_verified: parsed.params.signature().is_some(),
        tls: Some(TlsContext {
            server_name: Some(parsed.user.clone()),
        }),
        http: Some(HttpContext {
            headers: vec![
                ("x-user".into(), raw.into()),
                ("X-User".into(), parsed.user.clone()),
            ],
            query: raw.to_owned(),
        }),
        mqtt: Some(MqttContext {
            username: Some(raw.to_owned()),
            password: Some(raw.as_bytes().to_vec()),
            client_id: Some(parsed.user.clone()),
        }),
        connection_id: Some("c-1".into()),
    };
    let event = request.to_json();
    let text = event.to_string();
    let back: serde_json::Value = serde_json::from_str(&text).expect("the event is JSON");
    assert_eq!(back, event);
    let http = &event["protocolData"]["http"];
    let headers = http["headers"].as_object().expect("headers are an object");
    let size: usize = headers
        .iter()
        .map(|(name, value)| name.len() + value.as_str().expect("header values are strings").len())
        .sum::<usize>()
        + http["queryString"].as_str().map_or(0, str::len);
    assert!(
        size <= MAX_HTTP_CONTEXT_BYTES,
        "{size} bytes of HTTP context"
    );
    let key = request.cache_key("Auth", 1);
    assert_eq!(key, request.cache_key("Auth", 1));
    assert_ne!(key, request.cache_key("Auth", 2));
}

/// The token under `tok`, after checking what the parameters hold.
fn check_params(params: &CustomAuthParams) -> Option<&str> {
    if let Some(name) = params.authorizer_name() {
        assert_eq!(check_authorizer_name(name), Ok(()));
    }
    if let Some(signature) = params.signature() {
        assert_eq!(check_signature_format(signature), Ok(()));
    }
    let token = params.token(TOKEN_KEY_NAME).ok().flatten();
    if let Some(token) = token {
        assert!(!token.is_empty() && token.chars().count() <= MAX_TOKEN_CHARS);
    }
    if let (Some(token), Some(signature)) = (token, params.signature()) {
        // The test key signed one token (the `signed` seed); any other accepted would be a
        // finding.
        if verify_token_signature(token, signature, &KEYS).is_ok() {
            assert_eq!(token, SIGNED_TOKEN);
        }
    }
    token
}

fn check_answer(body: &[u8]) {
    let Ok(answer) = AuthorizerAnswer::from_json(body) else {
        return;
    };
    let id = &answer.principal_id;
    assert!((1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(answer.policies.len() <= MAX_ANSWER_POLICIES);
    for policy in &answer.policies {
        ferrocore_policy::parse(&policy.text).expect("an accepted policy parses again");
    }
    let range = Duration::from_secs(300)..=Duration::from_secs(86_400);
    for duration in [answer.disconnect_after, answer.refresh_after]
        .into_iter()
        .flatten()
    {
        assert!(range.contains(&duration));
    }
    let _ = answer.policy_set();
}
