//! A request in the text form of `common/http_text.rs` (method, target, headers, body) into
//! `sigv4::verify` with a fixed key and a fixed `now`, twice:
//!
//! 1. as given (with the body's hash and with `UNSIGNED-PAYLOAD`): any `Authorization`
//!    header or `X-Amz-*` query parameters in the input are what is checked. Must not panic;
//!    an accepted request must name the fixed key, region and a configured service, with
//!    times that are within the allowed skew (header form) or not expired (presigned form);
//!    a refusal must be a 400 or 403 that does not contain the secret.
//! 2. re-signed: the input's own authentication removed, the rest signed again by the
//!    aws-sigv4 crate (header form, or presigned when the input was, with its session token
//!    if it had one), so that mutated methods, paths, queries, headers and bodies reach the
//!    canonicalisation and the signature check instead of stopping at the first parse error.
//!    Must not panic either; where both sides define the request the same way (see
//!    [`comparable`]) it must be accepted.
//!
//! `seeds/sigv4_verify` holds requests signed by aws-sigv4 at `SIGNED_AT` (`now` is a minute
//! later): header form (JSON body, query, session token, `x-amz-content-sha256`, repeated and
//! padded headers, dot segments) and presigned (plain, with a session token signed or appended
//! after signing, with a body), and one signed by hand with a `Date` header instead of
//! `X-Amz-Date`.

#![no_main]

#[path = "../common/http_text.rs"]
mod http_text;

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrocore_identity::sigv4::{
    self, AuthForm, MAX_PRESIGN_EXPIRES, SigV4Error, SignedRequest, UNSIGNED_PAYLOAD,
    VerifiedIdentity, VerifierConfig,
};
use http_text::{ACCESS_KEY, HOST, REGION, SECRET_KEY, TextRequest, aws_sign, lookup};
use libfuzzer_sys::fuzz_target;

/// 2024-05-17T12:34:56Z: when the seeds were signed.
const SIGNED_AT: u64 = 1_715_949_296;
const SERVICES: [&str; 3] = ["iot", "iotdata", "iotdevicegateway"];

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(SIGNED_AT + 60)
}

static CONFIG: LazyLock<VerifierConfig> = LazyLock::new(|| VerifierConfig::new(REGION, &SERVICES));

/// Headers the signature itself consists of; the re-signed variant drops the input's.
const AUTH_HEADERS: [&str; 4] = [
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

fuzz_target!(|data: &[u8]| {
    let req = TextRequest::parse(data);
    let method = String::from_utf8_lossy(req.method);
    let (path, query) = req.path_and_query();
    let path = String::from_utf8_lossy(path);
    let query = String::from_utf8_lossy(query);
    let headers: Vec<(Cow<str>, Cow<str>)> = req
        .headers
        .iter()
        .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v)))
        .collect();
    let body_hash = sigv4::sha256_hex(req.body);

    // 1. As given.
    let as_given: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (&**k, &**v)).collect();
    for payload_hash in [body_hash.as_str(), UNSIGNED_PAYLOAD] {
        let _ = check(&SignedRequest {
            method: &method,
            path: &path,
            query: &query,
            headers: &as_given,
            payload_hash,
        });
    }

    // 2. Re-signed by aws-sigv4.
    let query_pairs: Vec<(&str, Vec<u8>)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            (
                p,
                http_text::percent_decode(p.split('=').next().unwrap_or(p).as_bytes()),
            )
        })
        .collect();
    let presigned = query_pairs.iter().any(|(_, k)| {
        matches!(
            k.as_slice(),
            b"X-Amz-Algorithm" | b"X-Amz-Signature" | b"X-Amz-Credential"
        )
    });
    let expires = query_pairs
        .iter()
        .find(|(_, k)| k == b"X-Amz-Expires")
        .and_then(|(p, _)| p.split_once('=')?.1.parse::<u64>().ok())
        .filter(|e| (1..=MAX_PRESIGN_EXPIRES).contains(e))
        .unwrap_or(300);
    let token = query_pairs
        .iter()
        .find(|(_, k)| k == b"X-Amz-Security-Token")
        .map(|(p, _)| {
            let v = p.split_once('=').map_or("", |(_, v)| v);
            String::from_utf8_lossy(&http_text::percent_decode(v.as_bytes())).into_owned()
        })
        .or_else(|| {
            as_given
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-security-token"))
                .map(|(_, v)| (*v).to_owned())
        })
        // aws-sigv4 signs its session-token header as given, not trimmed as other values are
        // (and as a server receives it): give it one without spaces to trim.
        .map(|t| {
            t.split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        });
    let rest_query = query_pairs
        .iter()
        .filter(|(_, k)| !k.starts_with(b"X-Amz-"))
        .map(|(p, _)| *p)
        .collect::<Vec<_>>()
        .join("&");
    let mut kept: Vec<(&str, &str)> = as_given
        .iter()
        .copied()
        .filter(|(k, _)| !AUTH_HEADERS.iter().any(|a| k.eq_ignore_ascii_case(a)))
        .collect();
    let service = SERVICES[data.len() % SERVICES.len()];
    // The URL form AWS IoT uses for MQTT over WebSocket: the token appended after signing.
    let token_after = presigned && token.is_some() && data.len() % 2 == 0;
    let Some(signature) = aws_sign(
        &method,
        &path,
        &rest_query,
        &kept,
        req.body,
        service,
        now(),
        presigned.then(|| Duration::from_secs(expires)),
        if token_after { None } else { token.as_deref() },
    ) else {
        return;
    };
    let mut signed_query = signature.query;
    if token_after && let Some(token) = &token {
        signed_query.push_str("&X-Amz-Security-Token=");
        signed_query.push_str(&http_text::uri_encode(token.as_bytes()));
    }
    if !kept.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        kept.push(("host", HOST));
    }
    kept.extend(
        signature
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let result = check(&SignedRequest {
        method: &method,
        path: &path,
        query: &signed_query,
        headers: &kept,
        payload_hash: &body_hash,
    });
    if let Err(e) = result
        && comparable(&path, &rest_query)
    {
        panic!(
            "aws-sigv4 signed it, verify refused: {e:?}\n{method} {path}?{signed_query}\n{kept:#?}"
        );
    }
});

/// Verifies at `now`; checks what an answer may be.
fn check(req: &SignedRequest<'_>) -> Result<VerifiedIdentity, SigV4Error> {
    let result = sigv4::verify(req, now(), &lookup, &CONFIG);
    let now = (SIGNED_AT + 60) as i64;
    let skew = CONFIG.max_skew.as_secs() as i64;
    match &result {
        Ok(id) => {
            assert_eq!(id.access_key_id, ACCESS_KEY);
            assert_eq!(id.region, REGION);
            assert!(SERVICES.contains(&id.service.as_str()), "{id:?}");
            match id.form {
                AuthForm::Header => {
                    assert_eq!(id.expires_at, None);
                    assert!((id.signed_at - now).abs() <= skew, "{id:?}");
                }
                AuthForm::Presigned => {
                    let expires_at = id.expires_at.expect("presigned URLs expire");
                    assert!(id.signed_at - now <= skew, "{id:?}");
                    assert!(now <= expires_at, "{id:?}");
                    assert!(
                        (1..=MAX_PRESIGN_EXPIRES as i64).contains(&(expires_at - id.signed_at))
                    );
                }
            }
        }
        Err(e) => {
            assert!(matches!(e.http_status(), 400 | 403), "{e:?}");
            assert!(e.aws_error_code().ends_with("Exception"));
            assert!(!e.to_string().contains(SECRET_KEY));
        }
    }
    result
}

/// Requests both signers define the same way. Outside:
/// - a `#`: aws-sigv4 parses the URL, where a `#` starts a fragment it leaves out; on the
///   wire it is part of the raw path the server verifies;
/// - a path whose last segment is `.` or `..` (`/a/b/..`): aws-sigv4 normalises it as
///   RFC 3986 does, to `/a/`, the verifier as botocore does, to `/a`;
/// - a raw `+` in the query: aws-sigv4 reads it as a space, as HTML forms do; the verifier as
///   a `+`, as AWS does for REST APIs;
/// - a query whose percent-decoded bytes are not UTF-8 (aws-sigv4 replaces them).
fn comparable(path: &str, query: &str) -> bool {
    !path.contains('#')
        && !matches!(path.rsplit('/').next(), Some("." | ".."))
        && !query.contains(['#', '+'])
        && query
            .split(['&', '='])
            .all(|p| std::str::from_utf8(&http_text::percent_decode(p.as_bytes())).is_ok())
}
