//! Shared by the HTTP targets: the text form of a request their inputs (and seeds) use, and
//! signing with the aws-sigv4 crate (the SDKs' signer).
//!
//! ```text
//! POST /things/lamp?a=b          <- request line: method, one space, target (path?query)
//! content-type: application/json <- header lines, `name: value`, up to an empty line
//!
//! {"attributePayload": {}}       <- the body: every byte after the empty line
//! ```
//!
//! Lines end with `\n` (a `\r` before it is dropped); a header line without `:` is a header
//! with an empty value; input without an empty line has no body.

#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

/// The access key the targets accept (the one of the identity crate's tests).
pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const REGION: &str = "us-east-1";
pub const HOST: &str = "localhost:8443";

pub fn lookup(access_key_id: &str) -> Option<String> {
    (access_key_id == ACCESS_KEY).then(|| SECRET_KEY.to_owned())
}

/// A request in the text form, as slices of the input.
pub struct TextRequest<'a> {
    pub method: &'a [u8],
    /// Path and query, as on the request line.
    pub target: &'a [u8],
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    pub body: &'a [u8],
}

impl<'a> TextRequest<'a> {
    pub fn parse(data: &'a [u8]) -> TextRequest<'a> {
        let (line, mut rest) = next_line(data);
        let (method, target) = match line.iter().position(|b| *b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        };
        let mut headers = Vec::new();
        let mut body: &[u8] = &[];
        while !rest.is_empty() {
            let (line, after) = next_line(rest);
            rest = after;
            if line.is_empty() {
                body = rest;
                break;
            }
            let (name, value) = match line.iter().position(|b| *b == b':') {
                Some(i) => (&line[..i], &line[i + 1..]),
                None => (line, &[][..]),
            };
            let value = value.strip_prefix(b" ").unwrap_or(value);
            headers.push((name, value));
        }
        TextRequest {
            method,
            target,
            headers,
            body,
        }
    }

    /// The target split at its first `?` into path and query.
    pub fn path_and_query(&self) -> (&'a [u8], &'a [u8]) {
        match self.target.iter().position(|b| *b == b'?') {
            Some(i) => (&self.target[..i], &self.target[i + 1..]),
            None => (self.target, &[]),
        }
    }
}

fn next_line(data: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), rest)
}

/// What signing adds to a request.
pub struct Signature {
    /// `authorization`, `x-amz-date`, `x-amz-security-token` (header form).
    pub headers: Vec<(String, String)>,
    /// `query` with the `X-Amz-*` parameters appended (presigned form), else `query`.
    pub query: String,
}

/// Signs with aws-sigv4 at `time`, for `https://HOST{path}?{query}` (the `host` header is
/// HOST unless `headers` has one). `presign`: query form with that expiry. `None` when
/// aws-sigv4 refuses the request (a URI or header it cannot parse).
#[allow(clippy::too_many_arguments)]
pub fn aws_sign(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    service: &str,
    time: SystemTime,
    presign: Option<Duration>,
    token: Option<&str>,
) -> Option<Signature> {
    let identity = Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        token.map(str::to_owned),
        None,
        "fuzz",
    )
    .into();
    let mut settings = SigningSettings::default();
    if let Some(expires) = presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .ok()?
        .into();
    if !path.starts_with('/') {
        return None;
    }
    let uri = if query.is_empty() {
        format!("https://{HOST}{path}")
    } else {
        format!("https://{HOST}{path}?{query}")
    };
    let signable = SignableRequest::new(
        method,
        uri,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .ok()?;
    let (instructions, _) = sign(signable, &params).ok()?.into_parts();
    let (new_headers, new_params) = instructions.into_parts();
    let mut query = query.to_owned();
    for (k, v) in new_params {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(k);
        query.push('=');
        query.push_str(&uri_encode(v.as_bytes()));
    }
    Some(Signature {
        headers: new_headers
            .into_iter()
            .map(|h| (h.name().to_owned(), h.value().to_owned()))
            .collect(),
        query,
    })
}

/// RFC 3986: unreserved characters stay, everything else becomes `%XX`.
pub fn uri_encode(input: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(input.len());
    for &b in input {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            s.push(char::from(b));
        } else {
            s.push('%');
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    s
}

/// `%XX` decoded; a `%` not followed by two hex digits stays, `+` stays `+` (as the verifier).
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(h), Some(l)) = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h << 4) | l);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}
