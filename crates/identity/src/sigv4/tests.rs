#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use proptest::prelude::*;

const AK: &str = "AKIDEXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const HOST: &str = "localhost:8443";

fn lookup(ak: &str) -> Option<String> {
    (ak == AK).then(|| SK.to_owned())
}

fn config() -> VerifierConfig {
    VerifierConfig::new("us-east-1", &["iot", "iotdata", "iotdevicegateway"])
}

/// 2024-05-17T12:34:56Z, the time the botocore vectors were signed at.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_715_949_296)
}

struct Req {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn verify_at(&self, now: SystemTime) -> Result<VerifiedIdentity, SigV4Error> {
        self.verify_with(now, &config())
    }
    fn verify_with(
        &self,
        now: SystemTime,
        cfg: &VerifierConfig,
    ) -> Result<VerifiedIdentity, SigV4Error> {
        self.verify_against(now, cfg, &lookup)
    }
    fn verify_against(
        &self,
        now: SystemTime,
        cfg: &VerifierConfig,
        credentials: &dyn CredentialLookup,
    ) -> Result<VerifiedIdentity, SigV4Error> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let hash = sha256_hex(&self.body);
        let req = SignedRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            payload_hash: &hash,
        };
        verify(&req, now, credentials, cfg)
    }
    fn set_header(&mut self, name: &str, value: &str) {
        for (k, v) in &mut self.headers {
            if k.eq_ignore_ascii_case(name) {
                *v = value.to_owned();
            }
        }
    }
}

/// Signs with the aws-sigv4 crate (the oracle). `presign`: query form with that expiry.
#[allow(clippy::too_many_arguments)]
fn aws_sign(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    service: &str,
    secret: &str,
    time: SystemTime,
    presign: Option<Duration>,
    token: Option<&str>,
) -> Req {
    let identity = Credentials::new(AK, secret, token.map(str::to_owned), None, "test").into();
    let mut settings = SigningSettings::default();
    if let Some(exp) = presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(exp);
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let mut all_headers: Vec<(String, String)> = vec![("host".into(), HOST.into())];
    all_headers.extend(
        headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let uri = if query.is_empty() {
        format!("https://{HOST}{path}")
    } else {
        format!("https://{HOST}{path}?{query}")
    };
    let signable = SignableRequest::new(
        method,
        uri,
        all_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _sig) = sign(signable, &params).unwrap().into_parts();
    let (new_headers, new_params) = instructions.into_parts();
    for h in new_headers {
        all_headers.push((h.name().to_owned(), h.value().to_owned()));
    }
    let mut query = query.to_owned();
    for (k, v) in new_params {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(k);
        query.push('=');
        query.push_str(&uri_encode(v.as_bytes(), false));
    }
    Req {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        headers: all_headers,
        body: body.to_vec(),
    }
}

fn simple(service: &str, time: SystemTime) -> Req {
    aws_sign(
        "POST",
        "/things/my%3Athing",
        "namePrefix=a%20b&maxResults=10",
        &[("content-type", "application/json")],
        b"{\"a\":1}",
        service,
        SK,
        time,
        None,
        None,
    )
}

// ---------------------------------------------------------------- botocore vectors

struct BotoVector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
}

/// Produced by botocore 1.43.11 clients (`iot`, `iot-data`, endpoint
/// `https://localhost:8443`, clock fixed at 2024-05-17T12:34:56Z) and `SigV4QueryAuth` for the
/// WSS URL; `Host` is what urllib3 sends.
const BOTO: &[BotoVector] = &[
    BotoVector {
        name: "describe_thing",
        method: "GET",
        path: "/things/my%3Athing",
        query: "",
        headers: &[
            (
                "User-Agent",
                "Botocore/1.43.11 ua/2.1 os/linux#6.18.44-fc-v657 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/D,N,e,Z,b cfg/retry-mode#legacy",
            ),
            ("X-Amz-Date", "20240517T123456Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240517/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature=d3857d73172c26bc947d59113e5ad12d9fcfa0f72f728041134970d9df98ac77",
            ),
            ("Host", "localhost:8443"),
        ],
        body: "",
    },
    BotoVector {
        name: "list_things",
        method: "GET",
        path: "/things",
        query: "attributeName=color&attributeValue=dark%20blue%2Bgreen%2Fx&maxResults=10",
        headers: &[
            (
                "User-Agent",
                "Botocore/1.43.11 ua/2.1 os/linux#6.18.44-fc-v657 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/D,N,e,Z,b cfg/retry-mode#legacy",
            ),
            ("X-Amz-Date", "20240517T123456Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240517/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature=5dfe9ef2cf27e87b62540f7dc684be8c9254b3bef8fcbbef29f206a0af1a38b3",
            ),
            ("Host", "localhost:8443"),
        ],
        body: "",
    },
    BotoVector {
        name: "create_thing",
        method: "POST",
        path: "/things/thing-1",
        query: "",
        headers: &[
            ("Content-Type", "application/json"),
            (
                "User-Agent",
                "Botocore/1.43.11 ua/2.1 os/linux#6.18.44-fc-v657 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/D,N,e,Z,b cfg/retry-mode#legacy",
            ),
            ("X-Amz-Date", "20240517T123456Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240517/us-east-1/iot/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=3a26b440244d38776a492409dfb10e17becf79daf0428ecfa246c3ba2264c15a",
            ),
            ("Host", "localhost:8443"),
        ],
        body: "{\"attributePayload\": {\"attributes\": {\"k\": \"v w\"}}}",
    },
    BotoVector {
        name: "iotdata_publish",
        method: "POST",
        path: "/topics/a%2Fb%2Fc%20d",
        query: "qos=1",
        headers: &[
            (
                "User-Agent",
                "Botocore/1.43.11 ua/2.1 os/linux#6.18.44-fc-v657 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/D,N,e,Z,b cfg/retry-mode#legacy",
            ),
            ("X-Amz-Date", "20240517T123456Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240517/us-east-1/iotdata/aws4_request, SignedHeaders=host;x-amz-date, Signature=82927d543d4f0dec3d2cd5f9b68b896a5c27a72010bd60c454eaccd9683b8092",
            ),
            ("Host", "localhost:8443"),
        ],
        body: "hello",
    },
    BotoVector {
        name: "wss_presigned",
        method: "GET",
        path: "/mqtt",
        query: "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240517%2Fus-east-1%2Fiotdevicegateway%2Faws4_request&X-Amz-Date=20240517T123456Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=ee86178ad6191cd9c71c1c6f5112f627a2128caec53004c73a85eeabb428de91",
        headers: &[("Host", "localhost:8443")],
        body: "",
    },
];

impl BotoVector {
    fn req(&self) -> Req {
        Req {
            method: self.method.into(),
            path: self.path.into(),
            query: self.query.into(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: self.body.as_bytes().to_vec(),
        }
    }
}

#[test]
fn botocore_vectors_verify() {
    for v in BOTO {
        let id = v
            .req()
            .verify_at(t0())
            .unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
        assert_eq!(id.access_key_id, AK);
        assert_eq!(id.region, "us-east-1");
    }
    let wss = BOTO.iter().find(|v| v.name == "wss_presigned").unwrap();
    let id = wss.req().verify_at(t0()).unwrap();
    assert_eq!(id.service, "iotdevicegateway");
    assert_eq!(id.form, AuthForm::Presigned);
    assert_eq!(id.expires_at, Some(1_715_949_296 + 3600));
}

/// Flipping any single byte of a signed component must fail verification.
#[test]
fn botocore_vectors_reject_every_one_byte_tamper() {
    fn tamper(s: &str, i: usize) -> String {
        let mut b = s.as_bytes().to_vec();
        // Swap to another character that keeps the string ASCII and meaningful.
        b[i] = match b[i] {
            b'z' => b'y',
            b'Z' => b'Y',
            b'9' => b'8',
            c if c.is_ascii_alphanumeric() => c + 1,
            _ => b'x',
        };
        String::from_utf8(b).unwrap()
    }
    for v in BOTO {
        let base = v.req();
        for i in 0..v.method.len() {
            let mut r = v.req();
            r.method = tamper(&base.method, i);
            assert!(r.verify_at(t0()).is_err(), "{} method {i}", v.name);
        }
        for i in 0..v.path.len() {
            let mut r = v.req();
            r.path = tamper(&base.path, i);
            if r.path.contains("%3B") || r.path.contains("%3b") {
                continue;
            }
            assert!(
                r.verify_at(t0()).is_err(),
                "{} path {i}: {}",
                v.name,
                r.path
            );
        }
        for i in 0..v.query.len() {
            let mut r = v.req();
            r.query = tamper(&base.query, i);
            assert!(
                r.verify_at(t0()).is_err(),
                "{} query {i}: {}",
                v.name,
                r.query
            );
        }
        for i in 0..v.body.len() {
            let mut r = v.req();
            r.body = tamper(v.body, i).into_bytes();
            assert!(r.verify_at(t0()).is_err(), "{} body {i}", v.name);
        }
        for (h, (name, value)) in v.headers.iter().enumerate() {
            if name.eq_ignore_ascii_case("user-agent") {
                continue; // not signed
            }
            for i in 0..value.len() {
                let mut r = v.req();
                r.headers[h].1 = tamper(value, i);
                assert!(r.verify_at(t0()).is_err(), "{} header {name} {i}", v.name);
            }
        }
    }
}

#[test]
fn unsigned_user_agent_may_change() {
    let v = BOTO.first().unwrap();
    let mut r = v.req();
    r.set_header("user-agent", "something else");
    assert!(r.verify_at(t0()).is_ok());
}

// ---------------------------------------------------------------- header form

#[test]
fn header_form_round_trip_all_services() {
    for svc in ["iot", "iotdata", "iotdevicegateway"] {
        let id = simple(svc, t0()).verify_at(t0()).unwrap();
        assert_eq!(id.service, svc);
        assert_eq!(id.form, AuthForm::Header);
        assert_eq!(id.signed_at, 1_715_949_296);
    }
}

#[test]
fn clock_skew() {
    let r = simple("iot", t0());
    let min = Duration::from_secs(60);
    assert!(r.verify_at(t0() + 14 * min).is_ok());
    assert!(r.verify_at(t0() - 14 * min).is_ok());
    // expired: request signed more than 15 minutes ago
    assert_eq!(
        r.verify_at(t0() + 16 * min),
        Err(SigV4Error::RequestTimeTooSkewed)
    );
    // in the future beyond the skew
    assert_eq!(
        r.verify_at(t0() - 16 * min),
        Err(SigV4Error::RequestTimeTooSkewed)
    );
    let mut cfg = config();
    cfg.max_skew = Duration::from_secs(60);
    assert_eq!(
        r.verify_with(t0() + 2 * min, &cfg),
        Err(SigV4Error::RequestTimeTooSkewed)
    );
}

#[test]
fn wrong_secret_unknown_key_scope() {
    let r = aws_sign(
        "GET",
        "/things",
        "",
        &[],
        b"",
        "iot",
        "not-the-secret",
        t0(),
        None,
        None,
    );
    assert_eq!(r.verify_at(t0()), Err(SigV4Error::SignatureMismatch));

    let r = simple("iot", t0());
    let nobody = |_: &str| -> Option<String> { None };
    assert_eq!(
        r.verify_against(t0(), &config(), &nobody),
        Err(SigV4Error::UnknownAccessKey)
    );
    assert_eq!(
        r.verify_with(t0(), &VerifierConfig::new("eu-west-1", &["iot"])),
        Err(SigV4Error::WrongRegion)
    );
    assert_eq!(
        r.verify_with(t0(), &VerifierConfig::new("us-east-1", &["iotdata"])),
        Err(SigV4Error::WrongService)
    );
}

#[test]
fn tampered_body_header_query_path_method() {
    let base = simple("iot", t0());
    let check = |f: &dyn Fn(&mut Req)| {
        let mut r = simple("iot", t0());
        f(&mut r);
        assert_eq!(r.verify_at(t0()), Err(SigV4Error::SignatureMismatch));
    };
    assert!(base.verify_at(t0()).is_ok());
    check(&|r| r.body.push(b' '));
    check(&|r| r.set_header("content-type", "text/plain"));
    check(&|r| r.set_header("host", "evil:8443"));
    check(&|r| r.set_header("x-amz-date", "20240517T123457Z"));
    check(&|r| r.query.push_str("&extra=1"));
    check(&|r| r.query = r.query.replace("maxResults=10", "maxResults=11"));
    check(&|r| r.query = r.query.replace("a%20b", "a+b"));
    check(&|r| r.path = "/things/my%3Athinh".into());
    check(&|r| r.path = "/things/my:thing/x".into());
    check(&|r| r.method = "PUT".into());
    // a signed header removed
    check(&|r| r.headers.retain(|(k, _)| k != "content-type"));
}

#[test]
fn path_decoded_equivalents() {
    // `:` raw and `%3A` are different on the wire, so different canonical URIs.
    let mut r = simple("iot", t0());
    r.path = "/things/my:thing".into();
    assert_eq!(r.verify_at(t0()), Err(SigV4Error::SignatureMismatch));
    // Lowercase hex in the signature is what clients send; uppercase is also accepted.
    let mut r = simple("iot", t0());
    let auth = r
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1
        .clone();
    let (head, sig) = auth.rsplit_once("Signature=").unwrap();
    r.set_header(
        "authorization",
        &format!("{head}Signature={}", sig.to_uppercase()),
    );
    assert!(r.verify_at(t0()).is_ok());
}

#[test]
fn host_must_be_signed() {
    let mut r = simple("iot", t0());
    let auth = r
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1
        .clone();
    r.set_header(
        "authorization",
        &auth.replace("content-type;host;x-amz-date", "content-type;x-amz-date"),
    );
    let e = r.verify_at(t0()).unwrap_err();
    assert_eq!(e, SigV4Error::HostNotSigned);
    assert_eq!(e.http_status(), 400);
}

#[test]
fn content_sha256_header() {
    // Signed with x-amz-content-sha256 equal to the body hash.
    let body = b"payload";
    let h = sha256_hex(body);
    let r = aws_sign(
        "POST",
        "/topics/t",
        "",
        &[("x-amz-content-sha256", &h)],
        body,
        "iotdata",
        SK,
        t0(),
        None,
        None,
    );
    assert!(r.verify_at(t0()).is_ok());
    let mut bad = r;
    bad.body = b"other".to_vec();
    assert_eq!(bad.verify_at(t0()), Err(SigV4Error::SignatureMismatch));
}

#[test]
fn missing_and_malformed() {
    let r = Req {
        method: "GET".into(),
        path: "/things".into(),
        query: String::new(),
        headers: vec![("host".into(), HOST.into())],
        body: vec![],
    };
    let e = r.verify_at(t0()).unwrap_err();
    assert_eq!(e, SigV4Error::MissingAuthentication);
    assert_eq!(
        (e.aws_error_code(), e.http_status()),
        ("MissingAuthenticationTokenException", 403)
    );
    let bad_auth = [
        "Bearer abc",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=AK/20240517/us-east-1/iot, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AK/2024051/us-east-1/iot/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AK/20240517/us-east-1/iot/aws4_request, SignedHeaders=host, Signature=zz",
        "AWS4-HMAC-SHA256 Credential=AK/20240517/us-east-1/iot/aws4_request, SignedHeaders=host;;x, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AK/20240517/us-east-1/iot/aws4_request,SignedHeaders=host,Signature=é",
        "AWS4-HMAC-SHA256 Credential",
    ];
    for a in bad_auth {
        let mut r = simple("iot", t0());
        r.set_header("authorization", a);
        let e = r.verify_at(t0()).unwrap_err();
        assert!(matches!(e, SigV4Error::Malformed(_)), "{a}: {e:?}");
        assert_eq!(e.aws_error_code(), "IncompleteSignatureException");
        assert!(!e.to_string().contains(SK));
    }
    // Both mechanisms at once.
    let mut r = simple("iot", t0());
    r.query.push_str("&X-Amz-Algorithm=AWS4-HMAC-SHA256");
    assert!(matches!(r.verify_at(t0()), Err(SigV4Error::Malformed(_))));
    // Bad date.
    let mut r = simple("iot", t0());
    r.set_header("x-amz-date", "20240532T123456Z");
    assert!(matches!(r.verify_at(t0()), Err(SigV4Error::Malformed(_))));
    // Scope date differs from the request date.
    let mut r = simple("iot", t0());
    r.set_header("x-amz-date", "20240518T123456Z");
    assert_eq!(
        r.verify_at(t0() + Duration::from_secs(86_400)),
        Err(SigV4Error::WrongScopeDate)
    );
}

#[test]
fn error_mapping() {
    use SigV4Error::*;
    let cases = [
        (
            MissingAuthentication,
            "MissingAuthenticationTokenException",
            403,
        ),
        (Malformed("x"), "IncompleteSignatureException", 400),
        (HostNotSigned, "IncompleteSignatureException", 400),
        (ExpiresOutOfRange, "IncompleteSignatureException", 400),
        (UnknownAccessKey, "UnrecognizedClientException", 403),
        (WrongRegion, "InvalidSignatureException", 403),
        (WrongService, "InvalidSignatureException", 403),
        (WrongScopeDate, "InvalidSignatureException", 403),
        (SignatureMismatch, "InvalidSignatureException", 403),
        (RequestTimeTooSkewed, "InvalidSignatureException", 403),
        (PresignedUrlExpired, "InvalidSignatureException", 403),
    ];
    for (e, code, status) in cases {
        assert_eq!((e.aws_error_code(), e.http_status()), (code, status));
    }
    assert!(
        RequestTimeTooSkewed
            .to_string()
            .starts_with("Signature expired")
    );
}

#[test]
fn date_header_fallback() {
    assert_eq!(
        http_date_to_amz("Fri, 17 May 2024 12:34:56 GMT").as_deref(),
        Some("20240517T123456Z")
    );
    assert_eq!(http_date_to_amz("Fri, 17 Mai 2024 12:34:56 GMT"), None);
    assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
    assert_eq!(parse_amz_date("20240517T123456Z"), Some(1_715_949_296));
    assert!(parse_amz_date("20240229T000000Z").is_some());
    assert_eq!(parse_amz_date("20230229T000000Z"), None);
    assert_eq!(parse_amz_date("2024051712345Z"), None);
    assert_eq!(parse_amz_date("2024-517T123456Z"), None);
}

#[test]
fn canonical_uri_double_encodes_and_normalises() {
    assert_eq!(canonical_uri("/things/my%3Athing"), "/things/my%253Athing");
    assert_eq!(canonical_uri("/topics/a%2Fb"), "/topics/a%252Fb");
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(canonical_uri("/a//b/./c/../d/"), "/a/b/d/");
    assert_eq!(canonical_uri("/a b:é"), "/a%20b%3A%C3%A9");
}

// ---------------------------------------------------------------- presigned

#[test]
fn presigned_valid_expired_future() {
    let r = aws_sign(
        "GET",
        "/mqtt",
        "",
        &[],
        b"",
        "iotdevicegateway",
        SK,
        t0(),
        Some(Duration::from_secs(300)),
        None,
    );
    assert!(r.query.contains("X-Amz-Signature="));
    let id = r.verify_at(t0() + Duration::from_secs(299)).unwrap();
    assert_eq!(id.form, AuthForm::Presigned);
    // Beyond the header-form skew but within X-Amz-Expires: still fine.
    let long = aws_sign(
        "GET",
        "/mqtt",
        "",
        &[],
        b"",
        "iotdevicegateway",
        SK,
        t0(),
        Some(Duration::from_secs(86_400)),
        None,
    );
    assert!(
        long.verify_at(t0() + Duration::from_secs(3600 * 20))
            .is_ok()
    );
    assert_eq!(
        r.verify_at(t0() + Duration::from_secs(301)),
        Err(SigV4Error::PresignedUrlExpired)
    );
    assert_eq!(
        r.verify_at(t0() - Duration::from_secs(16 * 60)),
        Err(SigV4Error::RequestTimeTooSkewed)
    );
    // tampered query / signed header / extra parameter
    let mut t = aws_sign(
        "GET",
        "/mqtt",
        "x=1",
        &[],
        b"",
        "iotdevicegateway",
        SK,
        t0(),
        Some(Duration::from_secs(300)),
        None,
    );
    assert!(t.verify_at(t0()).is_ok());
    t.query = t.query.replace("x=1", "x=2");
    assert_eq!(t.verify_at(t0()), Err(SigV4Error::SignatureMismatch));
    let mut t = r.clone_req();
    t.query.push_str("&y=1");
    assert_eq!(t.verify_at(t0()), Err(SigV4Error::SignatureMismatch));
    let mut t = r.clone_req();
    t.set_header("host", "other:8443");
    assert_eq!(t.verify_at(t0()), Err(SigV4Error::SignatureMismatch));
    let mut t = r.clone_req();
    t.query = t.query.replace("X-Amz-Expires=300", "X-Amz-Expires=3000");
    assert_eq!(t.verify_at(t0()), Err(SigV4Error::SignatureMismatch));
}

impl Req {
    fn clone_req(&self) -> Req {
        Req {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
    }
}

#[test]
fn presigned_expires_range() {
    let r = aws_sign(
        "GET",
        "/mqtt",
        "",
        &[],
        b"",
        "iotdevicegateway",
        SK,
        t0(),
        Some(Duration::from_secs(300)),
        None,
    );
    for bad in ["0", "604801", "-1", "", "99999999999999999999", "1e3"] {
        let mut t = r.clone_req();
        t.query = t
            .query
            .replace("X-Amz-Expires=300", &format!("X-Amz-Expires={bad}"));
        assert_eq!(
            t.verify_at(t0()),
            Err(SigV4Error::ExpiresOutOfRange),
            "{bad}"
        );
    }
    let mut t = r.clone_req();
    t.query = t
        .query
        .replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-a");
    assert_eq!(t.verify_at(t0()), Err(SigV4Error::HostNotSigned));
    let mut t = r.clone_req();
    t.query = t.query.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256&", "");
    assert!(matches!(t.verify_at(t0()), Err(SigV4Error::Malformed(_))));
}

#[test]
fn presigned_security_token_appended_or_signed() {
    // Appended after signing (AWS IoT WSS): not part of the canonical query.
    let r = aws_sign(
        "GET",
        "/mqtt",
        "",
        &[],
        b"",
        "iotdevicegateway",
        SK,
        t0(),
        Some(Duration::from_secs(300)),
        None,
    );
    let mut t = r.clone_req();
    t.query.push_str("&X-Amz-Security-Token=abc%2Fdef%3D%3D");
    let id = t.verify_at(t0()).unwrap();
    assert_eq!(id.security_token.as_deref(), Some("abc/def=="));
    // Signed as part of the canonical query (aws-sigv4 default).
    let r = aws_sign(
        "GET",
        "/mqtt",
        "",
        &[],
        b"",
        "iotdevicegateway",
        SK,
        t0(),
        Some(Duration::from_secs(300)),
        Some("tok/en=="),
    );
    assert!(r.query.contains("X-Amz-Security-Token"));
    let id = r.verify_at(t0()).unwrap();
    assert_eq!(id.security_token.as_deref(), Some("tok/en=="));
    // The botocore WSS vector with a token appended.
    let v = BOTO.iter().find(|v| v.name == "wss_presigned").unwrap();
    let mut t = v.req();
    t.query.push_str("&X-Amz-Security-Token=xyz");
    assert!(t.verify_at(t0()).is_ok());
}

#[test]
fn arbitrary_input_never_panics() {
    let inputs = [
        "",
        "%",
        "%%%",
        "&&&",
        "=",
        "X-Amz-Algorithm",
        "X-Amz-Credential=%2F%2F%2F%2F%2F",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a/20240517/us-east-1/iot/aws4_request&X-Amz-Date=20240517T123456Z&X-Amz-Expires=1&X-Amz-SignedHeaders=host&X-Amz-Signature=",
    ];
    for q in inputs {
        for p in ["", "/", "//..//.", "%", "/é/%zz"] {
            let r = Req {
                method: "GET".into(),
                path: p.into(),
                query: q.into(),
                headers: vec![
                    ("host".into(), "h".into()),
                    ("Date".into(), "garbage".into()),
                ],
                body: vec![],
            };
            let _ = r.verify_at(t0());
        }
    }
}

// ---------------------------------------------------------------- oracle property tests

fn raw_component() -> impl Strategy<Value = String> {
    // Characters that need encoding, including multi-byte UTF-8 and reserved ones.
    proptest::string::string_regex("[a-zA-Z0-9._~ :@!$&'()*+,;=/?#%é\u{1F600}-]{1,12}").unwrap()
}

fn encode_segment(s: &str) -> String {
    // Encode like an SDK does for a path label, leaving some sub-delims raw.
    let mut out = String::new();
    for b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@!$'()*,".contains(b) {
            out.push(char::from(*b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

prop_compose! {
    fn arb_request()(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
        segments in prop::collection::vec(raw_component(), 0..4),
        trailing in any::<bool>(),
        query in prop::collection::vec((raw_component(), proptest::string::string_regex("[a-zA-Z0-9 +/=%é-]{0,8}").unwrap()), 0..4),
        headers in prop::collection::vec((
            proptest::string::string_regex("x-[a-z0-9-]{1,8}").unwrap(),
            proptest::string::string_regex("[ -~]{0,16}").unwrap(),
        ), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..64),
        service in prop::sample::select(vec!["iot", "iotdata", "iotdevicegateway"]),
        presign in any::<bool>(),
    ) -> (String, String, String, Vec<(String, String)>, Vec<u8>, String, bool) {
        let segments: Vec<String> = segments.iter().map(|s| encode_segment(s)).filter(|s| s != "." && s != "..").collect();
        let mut path = format!("/{}", segments.join("/"));
        if trailing && !segments.is_empty() { path.push('/'); }
        let query = query.iter().map(|(k, v)| format!("{}={}", uri_encode(k.as_bytes(), false), uri_encode(v.as_bytes(), false))).collect::<Vec<_>>().join("&");
        let mut seen = std::collections::HashSet::new();
        let headers = headers.into_iter().filter(|(k, _)| seen.insert(k.clone()) && k != "x-amz-date" && k != "x-amz-security-token" && k != "x-amz-content-sha256" && !k.starts_with("x-amzn-")).collect();
        (method.to_owned(), path, query, headers, body, service.to_owned(), presign)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn oracle_signed_requests_verify_and_tampers_fail(
        (method, path, query, headers, body, service, presign) in arb_request(),
        tamper in 0usize..6,
    ) {
        let hdrs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = aws_sign(&method, &path, &query, &hdrs, &body, &service, SK, t0(),
            presign.then_some(Duration::from_secs(600)), None);
        let id = r.verify_at(t0());
        prop_assert!(id.is_ok(), "{:?} for {} {} ? {} {:?}", id, method, path, r.query, r.headers);
        prop_assert_eq!(id.unwrap().service, service);

        let mut t = r.clone_req();
        match tamper {
            0 => t.method = if method == "GET" { "HEAD".into() } else { "GET".into() },
            1 => t.path = format!("{path}x"),
            2 => t.query = if t.query.is_empty() { "z=1".into() } else { format!("{}&z=1", t.query) },
            3 => t.body.push(0),
            4 => match t.headers.iter_mut().find(|(k, _)| k.starts_with("x-") && !k.starts_with("x-amz")) {
                Some((_, v)) => v.push('!'),
                None => t.set_header("host", "localhost:8444"),
            },
            _ => t.set_header("host", "localhost:8444"),
        }
        // A presigned GET covers the body hash too (the hash of the body it was signed with).
        prop_assert!(t.verify_at(t0()).is_err(), "tamper {} accepted", tamper);
    }
}
