//! AWS Signature Version 4 verification (header and presigned-query forms).
//!
//! Server side only, pure: no I/O, no async, the clock and the credential store are injected.
//! The canonical request is built exactly as AWS defines it for every service except S3:
//!
//! * canonical URI: the raw (already percent-encoded) path with dot segments and empty
//!   segments removed, then URI-encoded *again* (`/things/my%3Athing` is signed as
//!   `/things/my%253Athing`), as botocore and aws-sigv4 do for non-S3 services;
//! * canonical query: every `key=value` pair percent-decoded and re-encoded with RFC 3986
//!   unreserved characters, sorted by encoded key then value. A literal `+` is a literal `+`
//!   (encoded `%2B`), never a space;
//! * canonical headers: only the `SignedHeaders`, names lowercased, values trimmed of spaces
//!   with runs of spaces collapsed, repeated headers joined with `,`; `host` must be signed;
//! * hashed payload: the `x-amz-content-sha256` header when present (it must then equal the
//!   body hash unless it is `UNSIGNED-PAYLOAD`), otherwise the body hash the caller passes in.
//!
//! Presigned URLs (`X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=…`) are verified with
//! `X-Amz-Signature` removed from the canonical query; if `X-Amz-Security-Token` is present the
//! signature is accepted both with and without it in the canonical query (AWS IoT's
//! MQTT-over-WSS URLs append it after signing).
//!
//! Signatures are compared in constant time (`aws_lc_rs::hmac::verify`). Errors never contain
//! secrets or signatures.
//!
//! # Error mapping
//!
//! Signature failures are not part of the `iot`/`iot-data` service models; AWS's front end
//! answers them with the common REST-JSON authentication errors, which botocore maps by name
//! (`x-amzn-ErrorType`). See [`SigV4Error::aws_error_code`] and [`SigV4Error::http_status`]:
//!
//! | variant | code | status |
//! |---|---|---|
//! | `MissingAuthentication` | `MissingAuthenticationTokenException` | 403 |
//! | `Malformed`, `HostNotSigned`, `ExpiresOutOfRange` | `IncompleteSignatureException` | 400 |
//! | `UnknownAccessKey` | `UnrecognizedClientException` | 403 |
//! | `WrongRegion`, `WrongService`, `WrongScopeDate`, `SignatureMismatch`, `RequestTimeTooSkewed`, `PresignedUrlExpired` | `InvalidSignatureException` | 403 |
//!
//! (`SignatureDoesNotMatch`/`RequestTimeTooSkewed` are the S3/query-protocol spellings; the
//! JSON services, AWS IoT included, say `InvalidSignatureException` with the message
//! "Signature expired: …" for skew, which botocore's clock-skew retry recognises.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{digest, hmac};

/// The only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Payload hash literal for unsigned payloads.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// SHA-256 of the empty body, lowercase hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Default allowed clock skew (AWS: 15 minutes).
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// Longest `X-Amz-Expires` AWS accepts: 7 days.
pub const MAX_PRESIGN_EXPIRES: u64 = 7 * 24 * 3600;

const MAX_SIGNED_HEADERS: usize = 128;

/// Lowercase hex SHA-256 of `body`, the value to pass as [`SignedRequest::payload_hash`].
pub fn sha256_hex(body: &[u8]) -> String {
    hex_lower(digest::digest(&digest::SHA256, body).as_ref())
}

/// A view of the HTTP request as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `GET`, `POST`, … as sent.
    pub method: &'a str,
    /// The raw path as received, still percent-encoded, without the query.
    pub path: &'a str,
    /// The raw query string without the leading `?` (empty when none).
    pub query: &'a str,
    /// All request headers as received (name case does not matter).
    pub headers: &'a [(&'a str, &'a str)],
    /// Lowercase hex SHA-256 of the body actually received (see [`sha256_hex`]), or
    /// [`UNSIGNED_PAYLOAD`] if the caller has not read the body and accepts an unsigned one.
    pub payload_hash: &'a str,
}

/// Looks up the secret access key for an access key id; `None` when unknown.
pub trait CredentialLookup {
    fn secret_access_key(&self, access_key_id: &str) -> Option<String>;
}

impl<F> CredentialLookup for F
where
    F: Fn(&str) -> Option<String>,
{
    fn secret_access_key(&self, access_key_id: &str) -> Option<String> {
        self(access_key_id)
    }
}

/// What the verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// The one region requests must be scoped to.
    pub region: String,
    /// Acceptable signing names, e.g. `iot`, `iotdata`, `iotdevicegateway`.
    pub services: Vec<String>,
    /// Allowed difference between the request time and now (header form), and how far in the
    /// future a presigned URL's `X-Amz-Date` may be.
    pub max_skew: Duration,
}

impl VerifierConfig {
    pub fn new(region: impl Into<String>, services: &[&str]) -> Self {
        Self {
            region: region.into(),
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            max_skew: DEFAULT_MAX_SKEW,
        }
    }
}

/// Which form of SigV4 authenticated the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthForm {
    /// `Authorization: AWS4-HMAC-SHA256 …` header.
    Header,
    /// `X-Amz-*` query parameters (presigned URL).
    Presigned,
}

/// The identity a valid signature proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub access_key_id: String,
    /// The signing name from the credential scope (one of the configured services).
    pub service: String,
    pub region: String,
    pub form: AuthForm,
    /// Request time (`X-Amz-Date`) as Unix seconds.
    pub signed_at: i64,
    /// For presigned URLs: Unix seconds after which the URL is no longer valid.
    pub expires_at: Option<i64>,
    /// `X-Amz-Security-Token` (query) or `x-amz-security-token` (header), if sent; not verified
    /// here (Ferrocore issues no session tokens).
    pub security_token: Option<String>,
}

/// Why a request was refused. Messages never contain secrets or signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("Missing Authentication Token")]
    MissingAuthentication,
    #[error("Authorization is malformed: {0}")]
    Malformed(&'static str),
    #[error("'Host' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,
    #[error("X-Amz-Expires must be between 1 and 604800 seconds.")]
    ExpiresOutOfRange,
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    #[error("Credential should be scoped to a valid region.")]
    WrongRegion,
    #[error("Credential should be scoped to correct service.")]
    WrongService,
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP."
    )]
    WrongScopeDate,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
    )]
    SignatureMismatch,
    #[error("Signature expired: the request time is outside the allowed clock skew.")]
    RequestTimeTooSkewed,
    #[error("Signature expired: the presigned URL has expired.")]
    PresignedUrlExpired,
}

impl SigV4Error {
    /// The AWS error name sent in `x-amzn-ErrorType`.
    pub fn aws_error_code(&self) -> &'static str {
        match self {
            Self::MissingAuthentication => "MissingAuthenticationTokenException",
            Self::Malformed(_) | Self::HostNotSigned | Self::ExpiresOutOfRange => {
                "IncompleteSignatureException"
            }
            Self::UnknownAccessKey => "UnrecognizedClientException",
            Self::WrongRegion
            | Self::WrongService
            | Self::WrongScopeDate
            | Self::SignatureMismatch
            | Self::RequestTimeTooSkewed
            | Self::PresignedUrlExpired => "InvalidSignatureException",
        }
    }

    /// The HTTP status sent with [`Self::aws_error_code`].
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Malformed(_) | Self::HostNotSigned | Self::ExpiresOutOfRange => 400,
            _ => 403,
        }
    }
}

/// Parsed, not yet verified authentication parameters.
struct AuthParams<'a> {
    form: AuthForm,
    access_key_id: &'a str,
    scope_date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signed_headers_raw: &'a str,
    signature: [u8; 32],
    amz_date: String,
    expires: Option<u64>,
}

/// Verifies `req` at time `now`.
pub fn verify(
    req: &SignedRequest<'_>,
    now: SystemTime,
    credentials: &dyn CredentialLookup,
    config: &VerifierConfig,
) -> Result<VerifiedIdentity, SigV4Error> {
    let query = parse_query(req.query);
    let auth_headers: Vec<&str> = header_values(req.headers, "authorization").collect();
    let presigned = query.iter().any(|(k, _)| {
        k == b"X-Amz-Algorithm" || k == b"X-Amz-Signature" || k == b"X-Amz-Credential"
    });
    let params = match (auth_headers.as_slice(), presigned) {
        ([], false) => return Err(SigV4Error::MissingAuthentication),
        ([_, _, ..], _) => return Err(SigV4Error::Malformed("more than one Authorization header")),
        ([_], true) => {
            return Err(SigV4Error::Malformed(
                "only one auth mechanism allowed: Authorization header or X-Amz-* query",
            ));
        }
        ([auth], false) => parse_authorization(auth, req.headers)?,
        ([], true) => parse_presigned(&query)?,
    };

    if !params
        .signed_headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("host"))
    {
        return Err(SigV4Error::HostNotSigned);
    }
    if params.region != config.region {
        return Err(SigV4Error::WrongRegion);
    }
    if !config.services.iter().any(|s| s == params.service) {
        return Err(SigV4Error::WrongService);
    }
    let signed_at = parse_amz_date(&params.amz_date).ok_or(SigV4Error::Malformed(
        "X-Amz-Date must be in ISO-8601 basic format",
    ))?;
    if params.amz_date.get(..8) != Some(params.scope_date) {
        return Err(SigV4Error::WrongScopeDate);
    }
    let now = unix_seconds(now);
    let skew = i64::try_from(config.max_skew.as_secs()).unwrap_or(i64::MAX);
    let expires_at = match params.expires {
        None => {
            if now.saturating_sub(signed_at) > skew || signed_at.saturating_sub(now) > skew {
                return Err(SigV4Error::RequestTimeTooSkewed);
            }
            None
        }
        Some(expires) => {
            if signed_at.saturating_sub(now) > skew {
                return Err(SigV4Error::RequestTimeTooSkewed);
            }
            let expires_at = signed_at.saturating_add(i64::try_from(expires).unwrap_or(i64::MAX));
            if now > expires_at {
                return Err(SigV4Error::PresignedUrlExpired);
            }
            Some(expires_at)
        }
    };

    let secret = credentials
        .secret_access_key(params.access_key_id)
        .ok_or(SigV4Error::UnknownAccessKey)?;

    let payload_hash = payload_hash(req)?;
    let canonical_uri = canonical_uri(req.path);
    let canonical_headers = canonical_headers(req.headers, &params.signed_headers)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        params.scope_date, params.region, params.service
    );
    let key = signing_key(&secret, params.scope_date, params.region, params.service);

    let security_token = match params.form {
        AuthForm::Presigned => query
            .iter()
            .find(|(k, _)| k == b"X-Amz-Security-Token")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
        AuthForm::Header => header_values(req.headers, "x-amz-security-token")
            .next()
            .map(str::to_owned),
    };

    // Canonical query candidates: for presigned URLs without X-Amz-Signature, and with and
    // without X-Amz-Security-Token when it is present.
    let mut candidates = Vec::with_capacity(2);
    match params.form {
        AuthForm::Header => candidates.push(canonical_query(&query, |_| true)),
        AuthForm::Presigned => {
            candidates.push(canonical_query(&query, |k| k != b"X-Amz-Signature"));
            if security_token.is_some() {
                candidates.push(canonical_query(&query, |k| {
                    k != b"X-Amz-Signature" && k != b"X-Amz-Security-Token"
                }));
            }
        }
    }

    let mut ok = false;
    for canonical_query in &candidates {
        let canonical_request = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            req.method,
            canonical_uri,
            canonical_query,
            canonical_headers,
            params.signed_headers_raw,
            payload_hash
        );
        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            params.amz_date,
            scope,
            sha256_hex(canonical_request.as_bytes())
        );
        // Evaluate every candidate (no early exit) so timing does not depend on which matched.
        ok |= hmac::verify(&key, string_to_sign.as_bytes(), &params.signature).is_ok();
    }
    if !ok {
        return Err(SigV4Error::SignatureMismatch);
    }
    Ok(VerifiedIdentity {
        access_key_id: params.access_key_id.to_owned(),
        service: params.service.to_owned(),
        region: params.region.to_owned(),
        form: params.form,
        signed_at,
        expires_at,
        security_token,
    })
}

fn payload_hash<'a>(req: &SignedRequest<'a>) -> Result<&'a str, SigV4Error> {
    let mut values = header_values(req.headers, "x-amz-content-sha256");
    let Some(declared) = values.next() else {
        return Ok(req.payload_hash);
    };
    if values.next().is_some() {
        return Err(SigV4Error::Malformed(
            "more than one x-amz-content-sha256 header",
        ));
    }
    let declared = declared.trim_matches(' ');
    if declared == UNSIGNED_PAYLOAD
        || (req.payload_hash != UNSIGNED_PAYLOAD && declared.eq_ignore_ascii_case(req.payload_hash))
    {
        Ok(declared)
    } else {
        // The body does not match the hash the client signed.
        Err(SigV4Error::SignatureMismatch)
    }
}

fn header_values<'a>(
    headers: &'a [(&'a str, &'a str)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn parse_signed_headers(raw: &str) -> Result<Vec<&str>, SigV4Error> {
    let names: Vec<&str> = raw.split(';').collect();
    if names.len() > MAX_SIGNED_HEADERS {
        return Err(SigV4Error::Malformed("too many signed headers"));
    }
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(SigV4Error::Malformed("empty name in SignedHeaders"));
        }
        if names
            .iter()
            .skip(i + 1)
            .any(|other| other.eq_ignore_ascii_case(name))
        {
            return Err(SigV4Error::Malformed("duplicate name in SignedHeaders"));
        }
    }
    Ok(names)
}

struct Credential<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

fn parse_credential(raw: &str) -> Result<Credential<'_>, SigV4Error> {
    let mut parts = raw.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some(term), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(SigV4Error::Malformed(
            "Credential must have the form <key>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if access_key_id.is_empty() || region.is_empty() || service.is_empty() {
        return Err(SigV4Error::Malformed("Credential has an empty component"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SigV4Error::Malformed("Credential date must be YYYYMMDD"));
    }
    if term != "aws4_request" {
        return Err(SigV4Error::Malformed(
            "Credential must be terminated by aws4_request",
        ));
    }
    Ok(Credential {
        access_key_id,
        date,
        region,
        service,
    })
}

fn decode_signature(raw: &str) -> Result<[u8; 32], SigV4Error> {
    let bytes = raw.as_bytes();
    let mut out = [0u8; 32];
    if bytes.len() != 64 {
        return Err(SigV4Error::Malformed("Signature must be 64 hex digits"));
    }
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (Some(&h), Some(&l)) = (pair.first(), pair.get(1)) else {
            return Err(SigV4Error::Malformed("Signature must be 64 hex digits"));
        };
        match (hex_val(h), hex_val(l)) {
            (Some(h), Some(l)) => *o = (h << 4) | l,
            _ => return Err(SigV4Error::Malformed("Signature must be 64 hex digits")),
        }
    }
    Ok(out)
}

fn parse_authorization<'a>(
    auth: &'a str,
    headers: &'a [(&'a str, &'a str)],
) -> Result<AuthParams<'a>, SigV4Error> {
    let auth = auth.trim();
    let Some(rest) = auth.strip_prefix(ALGORITHM) else {
        return Err(SigV4Error::Malformed(
            "unsupported Authorization scheme (AWS4-HMAC-SHA256 required)",
        ));
    };
    if !rest.starts_with(' ') {
        return Err(SigV4Error::Malformed(
            "unsupported Authorization scheme (AWS4-HMAC-SHA256 required)",
        ));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(SigV4Error::Malformed(
                "Authorization header parameters must be key=value",
            ));
        };
        let slot = match k.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(v.trim()).is_some() {
            return Err(SigV4Error::Malformed(
                "duplicate parameter in Authorization header",
            ));
        }
    }
    let credential = credential.ok_or(SigV4Error::Malformed(
        "Authorization header requires 'Credential' parameter",
    ))?;
    let signed_headers_raw = signed_headers.ok_or(SigV4Error::Malformed(
        "Authorization header requires 'SignedHeaders' parameter",
    ))?;
    let signature = signature.ok_or(SigV4Error::Malformed(
        "Authorization header requires 'Signature' parameter",
    ))?;
    let cred = parse_credential(credential)?;
    let amz_date = match header_values(headers, "x-amz-date").next() {
        Some(v) => v.trim().to_owned(),
        None => match header_values(headers, "date").next() {
            Some(v) => http_date_to_amz(v.trim())
                .ok_or(SigV4Error::Malformed("Date header must be an IMF-fixdate"))?,
            None => {
                return Err(SigV4Error::Malformed(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header",
                ));
            }
        },
    };
    Ok(AuthParams {
        form: AuthForm::Header,
        access_key_id: cred.access_key_id,
        scope_date: cred.date,
        region: cred.region,
        service: cred.service,
        signed_headers: parse_signed_headers(signed_headers_raw)?,
        signed_headers_raw,
        signature: decode_signature(signature)?,
        amz_date,
        expires: None,
    })
}

fn parse_presigned<'a>(query: &'a [(Vec<u8>, Vec<u8>)]) -> Result<AuthParams<'a>, SigV4Error> {
    let get = |name: &'static str| -> Result<&'a str, SigV4Error> {
        let mut found = query
            .iter()
            .filter(|(k, _)| k.as_slice() == name.as_bytes());
        let first = found.next();
        if found.next().is_some() {
            return Err(SigV4Error::Malformed("duplicate X-Amz-* query parameter"));
        }
        let (_, v) = first.ok_or(SigV4Error::Malformed(
            "presigned URL requires X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature",
        ))?;
        std::str::from_utf8(v).map_err(|_| SigV4Error::Malformed("X-Amz-* parameter is not UTF-8"))
    };
    if get("X-Amz-Algorithm")? != ALGORITHM {
        return Err(SigV4Error::Malformed(
            "X-Amz-Algorithm must be AWS4-HMAC-SHA256",
        ));
    }
    let cred = parse_credential(get("X-Amz-Credential")?)?;
    let amz_date = get("X-Amz-Date")?.to_owned();
    let expires_raw = get("X-Amz-Expires")?;
    let signed_headers_raw = get("X-Amz-SignedHeaders")?;
    let signature = decode_signature(get("X-Amz-Signature")?)?;
    if expires_raw.is_empty()
        || expires_raw.len() > 7
        || !expires_raw.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SigV4Error::ExpiresOutOfRange);
    }
    let expires: u64 = expires_raw
        .parse()
        .map_err(|_| SigV4Error::ExpiresOutOfRange)?;
    if !(1..=MAX_PRESIGN_EXPIRES).contains(&expires) {
        return Err(SigV4Error::ExpiresOutOfRange);
    }
    Ok(AuthParams {
        form: AuthForm::Presigned,
        access_key_id: cred.access_key_id,
        scope_date: cred.date,
        region: cred.region,
        service: cred.service,
        signed_headers: parse_signed_headers(signed_headers_raw)?,
        signed_headers_raw,
        signature,
        amz_date,
        expires: Some(expires),
    })
}

/// Splits a raw query into percent-decoded (key, value) pairs; empty pieces are skipped.
fn parse_query(raw: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k.as_bytes()), percent_decode(v.as_bytes()))
        })
        .collect()
}

fn canonical_query(pairs: &[(Vec<u8>, Vec<u8>)], keep: impl Fn(&[u8]) -> bool) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Normalises the raw path like botocore (`remove_dot_segments`: drops `.`, empty segments,
/// resolves `..`) and encodes it again, keeping `/`.
fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in raw_path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = String::from("/");
    path.push_str(&segments.join("/"));
    if raw_path.ends_with('/') && !segments.is_empty() {
        path.push('/');
    }
    uri_encode(path.as_bytes(), true)
}

fn canonical_headers(headers: &[(&str, &str)], signed: &[&str]) -> Result<String, SigV4Error> {
    let mut out = String::new();
    for name in signed {
        let mut values = header_values(headers, name).peekable();
        if values.peek().is_none() {
            // A signed header that is not in the request cannot verify.
            return Err(SigV4Error::SignatureMismatch);
        }
        out.push_str(&name.to_ascii_lowercase());
        out.push(':');
        for (i, v) in values.enumerate() {
            if i > 0 {
                out.push(',');
            }
            collapse_spaces(v, &mut out);
        }
        out.push('\n');
    }
    Ok(out)
}

fn collapse_spaces(value: &str, out: &mut String) {
    let mut first = true;
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if !first {
            out.push(' ');
        }
        out.push_str(word);
        first = false;
    }
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut k = Vec::with_capacity(4 + secret.len());
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret.as_bytes());
    let tag = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
    };
    let k_date = tag(&k, date);
    let k_region = tag(k_date.as_ref(), region);
    let k_service = tag(k_region.as_ref(), service);
    let k_signing = tag(k_service.as_ref(), "aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                input.get(i + 1).copied().and_then(hex_val),
                input.get(i + 2).copied().and_then(hex_val),
            )
        {
            out.push((h << 4) | l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// RFC 3986 encoding: unreserved characters stay, everything else becomes `%XX`
/// (uppercase); `/` stays too when `keep_slash`.
fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(input.len());
    for &b in input {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            s.push(char::from(b));
        } else {
            s.push('%');
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    s
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn to_unix(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// `YYYYMMDD'T'HHMMSS'Z'` to Unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 || s.get(8..9) != Some("T") || s.get(15..16) != Some("Z") {
        return None;
    }
    to_unix(
        digits(s.get(0..4)?)?,
        digits(s.get(4..6)?)?,
        digits(s.get(6..8)?)?,
        digits(s.get(9..11)?)?,
        digits(s.get(11..13)?)?,
        digits(s.get(13..15)?)?,
    )
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to `19941106T084937Z`.
fn http_date_to_amz(s: &str) -> Option<String> {
    let mut it = s.split(' ').filter(|p| !p.is_empty());
    let (_weekday, day, month, year, time, gmt) = (
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    );
    if it.next().is_some() || gmt != "GMT" || day.len() != 2 || year.len() != 4 || time.len() != 8 {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? + 1;
    let mut hms = time.split(':');
    let (h, mi, sec) = (hms.next()?, hms.next()?, hms.next()?);
    if h.len() != 2 || mi.len() != 2 || sec.len() != 2 {
        return None;
    }
    let amz = format!("{year}{month:02}{day}T{h}{mi}{sec}Z");
    parse_amz_date(&amz)?;
    Some(amz)
}

#[cfg(test)]
#[path = "sigv4/tests.rs"]
mod tests;
