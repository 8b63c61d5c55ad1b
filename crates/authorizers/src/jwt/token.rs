//! The token: where it is found in the authorizer request, and whether it is valid.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::options::JwtOptions;

/// Tokens longer than this are refused before anything is decoded.
pub(super) const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token is refused: the device is not authorized. Never holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refusal {
    #[error(
        "no token (none under the token key, in an Authorization: Bearer header or in the MQTT \
         password)"
    )]
    NoToken,
    #[error("the token is {0} bytes; at most {MAX_TOKEN_BYTES} are accepted")]
    TooLong(usize),
    #[error(
        "the token is not a JWT signed with a known algorithm (unreadable, or alg none, which is \
         never accepted)"
    )]
    Malformed,
    #[error("the token's header has `crit` extensions, which are not supported")]
    Critical,
    #[error("the token's algorithm {0:?} is not among the accepted algorithms")]
    AlgorithmNotAccepted(Algorithm),
    #[error("the identity provider has no signing key {0}")]
    UnknownKey(String),
    #[error("key {kid} verifies {key:?} only; the token says {token:?}")]
    AlgorithmMismatch {
        kid: String,
        key: Algorithm,
        token: Algorithm,
    },
    #[error("the signature does not verify, or the payload is not a JSON object")]
    BadSignature,
    #[error("the issuer (iss) is not the configured issuer")]
    WrongIssuer,
    #[error("the audience (aud) holds none of the configured audiences")]
    WrongAudience,
    #[error("the token has no expiry (exp)")]
    NoExpiry,
    #[error("the claim {0} is not a number of seconds")]
    NotNumericDate(&'static str),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued in the future (iat)")]
    IssuedInFuture,
    #[error(
        "the principal claim {0} is missing or not a valid principal id (1 to 128 printable \
         ASCII characters other than * $ + ? # /)"
    )]
    Principal(String),
    #[error("the token maps to {0} policies; an answer holds at most 10")]
    TooManyPolicies(usize),
}

/// The token of an authorizer request, from the first place that has one: the `token`
/// member (the authorizer's `tokenKeyName` parameter), an `Authorization: Bearer` header
/// (HTTP requests, the WebSocket upgrade), the MQTT password.
pub(super) fn find(request: &Value) -> Option<String> {
    if let Some(token) = request.get("token").and_then(Value::as_str)
        && !token.is_empty()
    {
        return Some(token.to_owned());
    }
    let protocols = request.get("protocolData");
    let bearer = protocols
        .and_then(|p| p.pointer("/http/headers"))
        .and_then(Value::as_object)
        .and_then(|headers| {
            headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        })
        .and_then(|(_, value)| value.as_str())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    if let Some(token) = bearer {
        return Some(token.to_owned());
    }
    let password = protocols
        .and_then(|p| p.pointer("/mqtt/password"))
        .and_then(Value::as_str)
        .and_then(|b64| BASE64.decode(b64).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())?;
    let password = password.trim();
    (!password.is_empty()).then(|| password.to_owned())
}

/// The validated token's claims and times.
#[derive(Debug)]
pub(super) struct ValidToken {
    pub claims: Map<String, Value>,
    /// Seconds from now until `exp` (negative within the leeway).
    pub seconds_left: f64,
    /// Seconds since `iat`, if the token has one.
    pub age_seconds: Option<f64>,
}

/// What the header says, before the key is looked up.
pub(super) struct Header {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
}

/// Reads the token's header: no signature checked yet.
pub(super) fn header(token: &str, options: &JwtOptions) -> Result<Header, Refusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::TooLong(token.len()));
    }
    // Refuses `alg: none` (not an `Algorithm`) and anything that is not three parts.
    let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Malformed)?;
    if header.crit.is_some() {
        return Err(Refusal::Critical);
    }
    if !options.algorithms.contains(&header.alg) {
        return Err(Refusal::AlgorithmNotAccepted(header.alg));
    }
    Ok(Header {
        kid: header.kid,
        algorithm: header.alg,
    })
}

/// Verifies `token` with `key` (pinned to `algorithm`) and checks its claims at `now`.
pub(super) fn verify(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    algorithm: Algorithm,
    options: &JwtOptions,
    now: SystemTime,
) -> Result<ValidToken, Refusal> {
    // The signature only, with the key's one algorithm; the claims are checked below (the
    // library's checks read the system clock and know no `iat` rule).
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
        .map_err(|_| Refusal::BadSignature)?
        .claims;

    if claims.get("iss").and_then(Value::as_str) != Some(options.issuer.as_str()) {
        return Err(Refusal::WrongIssuer);
    }
    let audience_matches = match claims.get("aud") {
        Some(Value::String(aud)) => options.audience.contains(aud),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| options.audience.iter().any(|a| a == aud)),
        _ => false,
    };
    if !audience_matches {
        return Err(Refusal::WrongAudience);
    }
    let now = unix_seconds(now);
    let leeway = options.leeway.as_secs_f64();
    let exp = numeric_date(&claims, "exp")?.ok_or(Refusal::NoExpiry)?;
    if now >= exp + leeway {
        return Err(Refusal::Expired);
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")?
        && nbf > now + leeway
    {
        return Err(Refusal::NotYetValid);
    }
    let iat = numeric_date(&claims, "iat")?;
    if iat.is_some_and(|iat| iat > now + leeway) {
        return Err(Refusal::IssuedInFuture);
    }
    Ok(ValidToken {
        seconds_left: exp - now,
        age_seconds: iat.map(|iat| (now - iat).max(0.0)),
        claims,
    })
}

/// A NumericDate claim (seconds since the epoch, possibly fractional), if present.
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, Refusal> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or(Refusal::NotNumericDate(name)),
        Some(_) => Err(Refusal::NotNumericDate(name)),
    }
}

fn unix_seconds(time: SystemTime) -> f64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}
