//! The whole control-plane request path: a request in the text form of `common/http_text.rs`,
//! signed by the aws-sigv4 crate (so that it gets past authentication), through
//! `ferrocore_api::router` with a registry on a temporary SQLite store.
//!
//! The input's request line, headers and body become an HTTP request:
//!
//! - method: `GET`, `POST`, `PUT`, `PATCH`, `DELETE` or `HEAD` (any case), with a `/p` suffix
//!   for a presigned URL instead of an `Authorization` header; another token picks one by its
//!   first byte;
//! - path: as given when it starts with `/`, else its first byte picks one of [`PREFIXES`]
//!   (the routes, and the fixtures' resources) and the rest follows; bytes a URI cannot carry
//!   are percent-encoded;
//! - query: its `name=value` pairs percent-decoded and encoded again the way the SDKs send
//!   them (RFC 3986), so both signers agree on them;
//! - headers: as given (`x-amzn-principal` included) except those signing sets (`host`,
//!   `authorization`, `x-amz-date`, `x-amz-security-token`, `x-amz-content-sha256`); values
//!   that are not visible ASCII go unsigned;
//! - body: as given, or, when it starts with a 0 byte, a JSON object built from the rest
//!   (member names and values of the AWS IoT operations, the fixtures' names, ARNs and PEMs).
//!
//! Each answer must be 2xx (with a JSON body) or 4xx/5xx with `x-amzn-ErrorType` and a JSON
//! body whose `message` is a string and whose `__type` is that error type (HEAD answers have
//! no body). `POST /keys-and-certificate` is skipped: it generates an RSA-2048 key (tens of
//! milliseconds) and has no input beyond `?setAsActive`, which `POST /certificates` shares.
//!
//! The registry persists across inputs (one store for the process). At start, and again every
//! `REFIXTURE_EVERY` inputs, the fixtures are (re)created: registration code, the device CA
//! registered as a CA (verification certificate signed at start), a certificate it signed and
//! a self-signed one, a thing type, a thing with attributes, a parent and a child group with
//! the thing, the thing's principal and the CA's CRL, so that inputs reach existing resources
//! as well as missing ones. The counts of answers by status and error type are printed every
//! power of two of inputs from 1024 on; requests this target signed that the server refused
//! as badly signed (but for the expected cases in [`check`]) and 5xx answers are printed (the
//! first 20) as they happen; with
//! `API_REQUEST_VERBOSE` set, every request and answer is (for checking seeds).

#![no_main]

#[path = "../common/http_text.rs"]
mod http_text;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use ferrocore_api::{ApiConfig, ApiState};
use ferrocore_identity::registry::{Arns, Registry};
use ferrocore_identity::sigv4::CredentialLookup;
use ferrocore_identity::x509::CaSigner;
use ferrocore_store::{Durability, Store};
use http_text::{HOST, REGION, TextRequest, aws_sign, lookup, percent_decode, uri_encode};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

const ACCOUNT: &str = "123456789012";
const REFIXTURE_EVERY: u64 = 4096;

// Test PKI, made once with Python's `cryptography` (P-256, valid 2020-01-01..2120-01-01); the
// `*_ID`s are the SHA-256 of each certificate's DER, as certificate ids are.

/// `CN=Ferrocore fuzz device CA, O=Ferrocore test`, P-256, CA, keyCertSign + cRLSign,
/// 2020-01-01..2120-01-01: signs the certificates `CreateCertificateFromCsr` issues, and is
/// registered as a CA certificate. Test key, public on purpose.
const CA_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBqzCCAVKgAwIBAgICD8AwCgYIKoZIzj0EAwIwPDEhMB8GA1UEAwwYRmVycm9j
b3JlIGZ1enogZGV2aWNlIENBMRcwFQYDVQQKDA5GZXJyb2NvcmUgdGVzdDAgFw0y
MDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFowPDEhMB8GA1UEAwwYRmVycm9j
b3JlIGZ1enogZGV2aWNlIENBMRcwFQYDVQQKDA5GZXJyb2NvcmUgdGVzdDBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABCGxUyXU2pxYIYqp6m8g7EHOQJRGGmNuog1o
DX79pFpFDhJz1scE4yepX3fOLsIbK8zMSXhsH/gsQP8P7mbSAmajQjBAMA8GA1Ud
EwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBT/P+QvVnvtrjNV
/jyxpKnf3uvKcDAKBggqhkjOPQQDAgNHADBEAiB7Mq0IBDDzeapr+GaQAvpn8/k0
q7ticQrBDdc/2k7B/AIgCQXOBI+DH13u5VV1RkGRxMQ2P91HDCu5Fkm8Rsh2x7w=
-----END CERTIFICATE-----
";
const CA_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJ1XeOXxuB2VfBAyp
r4tPgPoVK36t3Ti6Nb1+cZP8zAahRANCAAQhsVMl1NqcWCGKqepvIOxBzkCURhpj
bqINaA1+/aRaRQ4Sc9bHBOMnqV93zi7CGyvMzEl4bB/4LED/D+5m0gJm
-----END PRIVATE KEY-----
";
const CA_ID: &str = "14d54a22e6420a516b9c30ca3fb74860db25d94740d214e515db4c6ed423e0a1";
/// `CN=fuzz-device`, signed by the CA (serial 0x1001).
const DEVICE_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBlzCCAT2gAwIBAgICEAEwCgYIKoZIzj0EAwIwPDEhMB8GA1UEAwwYRmVycm9j
b3JlIGZ1enogZGV2aWNlIENBMRcwFQYDVQQKDA5GZXJyb2NvcmUgdGVzdDAgFw0y
MDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFowFjEUMBIGA1UEAwwLZnV6ei1k
ZXZpY2UwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARsMnxPgUJfzE0WFDO2RgRB
TIDHApQYpZ0CX3EXlyW1UqZcH6qOKTvwwa55FziQdJvkFU+tB44nGnW9WU2nW6dP
o1MwUTAJBgNVHRMEAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEF
BQcDAjAfBgNVHSMEGDAWgBT/P+QvVnvtrjNV/jyxpKnf3uvKcDAKBggqhkjOPQQD
AgNIADBFAiEAu68kNpx3v54Us8hOGJxrOWdfjDavR6HezAdoV0tH8hkCIFkvF1Pb
NOEuPbbv+jyNcV89SzpUTcIgn61AKOf7NMau
-----END CERTIFICATE-----
";
const DEVICE_ID: &str = "a1a6430520a846d953c9b8a925b2be2e79e1beaa41c495192f5b9b77932b585a";
/// `CN=fuzz-self-signed`, not a CA: registered without a CA.
const SELF_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBNjCB3qADAgECAgIQAjAKBggqhkjOPQQDAjAbMRkwFwYDVQQDDBBmdXp6LXNl
bGYtc2lnbmVkMCAXDTIwMDEwMTAwMDAwMFoYDzIxMjAwMTAxMDAwMDAwWjAbMRkw
FwYDVQQDDBBmdXp6LXNlbGYtc2lnbmVkMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD
QgAESHmt3VQal9iQKTx1zVM4ju5/mPL9qXWXWk4UmnpmpJ99CYoWdi4yxfNWrsvH
3DBPeWHAYonLjtOsgK7//kYUSKMQMA4wDAYDVR0TAQH/BAIwADAKBggqhkjOPQQD
AgNHADBEAiAiyZ4LRzA9VwUEz08uHkwroUZ9VbMQw5pIz3lBHMQLJwIgWknqAiCo
HqRgP/UhHb+YHR/+35BDh+WX56YEw5CqVgc=
-----END CERTIFICATE-----
";
const SELF_ID: &str = "0ee4734352223593528fb913d66da96da153937ac8b60b9d988364f0b828cc75";
/// `CN=Ferrocore fuzz other CA`, self-signed CA: for `SNI_ONLY` registrations.
const OTHER_CA_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBeDCCAR6gAwIBAgICD8EwCgYIKoZIzj0EAwIwIjEgMB4GA1UEAwwXRmVycm9j
b3JlIGZ1enogb3RoZXIgQ0EwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAw
MDBaMCIxIDAeBgNVBAMMF0ZlcnJvY29yZSBmdXp6IG90aGVyIENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEboSmV/MRxNDGzSRVlmpc/KYmGCf4yt0267/JGBpc
mwEidX3Z9RDsj6t0nRgnxguOW+gUiy3fA/idl+me3oVS+6NCMEAwDwYDVR0TAQH/
BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFHSkhga76Ddhvy26i0FX
8txM7D9lMAoGCCqGSM49BAMCA0gAMEUCIQDjEHUzwIvH6EUWbdO43+8Rx1eSfz5+
KX3MSDt06wtnHQIgM7PrUNbmyp854cuwohz6pa6xAdOUx/GROn/0xWrEYIo=
-----END CERTIFICATE-----
";
/// A CSR of `CN=fuzz-csr, O=Ferrocore test`, P-256.
const CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIHnMIGOAgEAMCwxETAPBgNVBAMMCGZ1enotY3NyMRcwFQYDVQQKDA5GZXJyb2Nv
cmUgdGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABG2N1b90xIdisWBn6Vob
U+j56Hf8QlfCChkEOb8r0BVuet3g5ZsSTA7fu7l1vYA4yOz2N+Q3dvY6kEfxMCKj
EqKgADAKBggqhkjOPQQDAgNIADBFAiEAvZVTEEvHP9itbu8wxrzwikOZQtvRr0OE
BSTeWQWn6nMCIDCqqDlEAgdAQ5cUyTBmyvkoOjwO21717RJtft193IDc
-----END CERTIFICATE REQUEST-----
";
/// The CA's CRL (serial 0x2002 revoked), 2020-01-01..2120-01-01.
const CRL: &str = "-----BEGIN X509 CRL-----
MIIBGzCBwwIBATAKBggqhkjOPQQDAjA8MSEwHwYDVQQDDBhGZXJyb2NvcmUgZnV6
eiBkZXZpY2UgQ0ExFzAVBgNVBAoMDkZlcnJvY29yZSB0ZXN0Fw0yMDAxMDEwMDAw
MDBaGA8yMTIwMDEwMTAwMDAwMFowIzAhAgIgAhcNMjAwMTAxMDAwMDAwWjAMMAoG
A1UdFQQDCgEBoC8wLTAKBgNVHRQEAwIBATAfBgNVHSMEGDAWgBT/P+QvVnvtrjNV
/jyxpKnf3uvKcDAKBggqhkjOPQQDAgNHADBEAiBr7M9PggzbkzhS8PciG71cAGO2
tpmapvnRCxMaFtssIQIgBnzNkF08U5aSEmEgxSvZ4UGPABsACPk3F0SadnfGqEA=
-----END X509 CRL-----
";

const THING: &str = "fuzz-thing";
const THING_TYPE: &str = "fuzz-type";
const GROUP: &str = "fuzz-group";
const CHILD_GROUP: &str = "fuzz-child";
const POLICY: &str = "fuzz-policy";
const POLICY_DOCUMENT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/${iot:ClientId}/*"}]}"#;

/// The routes, and the fixtures' resources under them.
const PREFIXES: &[&str] = &[
    "/things",
    "/things/",
    "/things/fuzz-thing",
    "/things/fuzz-thing/principals",
    "/things/fuzz-thing/principals-v2",
    "/things/fuzz-thing/thing-groups",
    "/thing-types",
    "/thing-types/",
    "/thing-types/fuzz-type",
    "/thing-types/fuzz-type/deprecate",
    "/thing-groups",
    "/thing-groups/",
    "/thing-groups/fuzz-group",
    "/thing-groups/fuzz-child",
    "/thing-groups/fuzz-group/things",
    "/thing-groups/addThingToThingGroup",
    "/thing-groups/removeThingFromThingGroup",
    "/certificates",
    "/certificates/",
    "/certificates/a1a6430520a846d953c9b8a925b2be2e79e1beaa41c495192f5b9b77932b585a",
    "/certificates/0ee4734352223593528fb913d66da96da153937ac8b60b9d988364f0b828cc75",
    "/certificates-by-ca/",
    "/certificates-by-ca/14d54a22e6420a516b9c30ca3fb74860db25d94740d214e515db4c6ed423e0a1",
    "/certificate/register",
    "/certificate/register-no-ca",
    "/registrationcode",
    "/cacertificate",
    "/cacertificate/",
    "/cacertificate/14d54a22e6420a516b9c30ca3fb74860db25d94740d214e515db4c6ed423e0a1",
    "/cacertificate/14d54a22e6420a516b9c30ca3fb74860db25d94740d214e515db4c6ed423e0a1/crl",
    "/cacertificates",
    "/principals/things",
    "/principals/things-v2",
    "/endpoint",
    "/policies",
    "/policies/fuzz-policy",
    "/policies/fuzz-policy/version",
    "/policies/fuzz-policy/version/1",
    "/target-policies/fuzz-policy",
    "/attached-policies/",
    "/policy-targets/fuzz-policy",
    "/effective-policies",
    "/test-authorization",
];

const METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
];

/// Headers the signature consists of (and `host`, which the target sets).
const SIGNING_HEADERS: [&str; 5] = [
    "host",
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

struct Env {
    rt: tokio::runtime::Runtime,
    router: Router,
    execs: AtomicU64,
    answers: Mutex<BTreeMap<(u16, String), u64>>,
    reported: AtomicU64,
}

/// The store's directory, removed at exit.
static DIR: Mutex<Option<tempfile::TempDir>> = Mutex::new(None);

extern "C" fn remove_dir() {
    if let Ok(mut dir) = DIR.lock() {
        drop(dir.take());
    }
}

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::Builder::new()
        .prefix("ferrocore-fuzz-api-")
        .tempdir()
        .expect("temporary directory");
    let db = dir.path().join("ferrocore.db");
    *DIR.lock().expect("dir") = Some(dir);
    // SAFETY: registers a plain function to run at exit.
    unsafe { libc::atexit(remove_dir) };
    let router = rt.block_on(async {
        let store = Store::open_sqlite(&db, Durability::Process)
            .await
            .expect("store");
        let arns = Arns {
            region: REGION.to_owned(),
            account_id: ACCOUNT.to_owned(),
        };
        let registry = Registry::open(store, arns).await.expect("registry");
        let ca = CaSigner::from_pem(CA_CERT.as_bytes(), CA_KEY.as_bytes()).expect("device CA");
        let credentials: Arc<dyn CredentialLookup + Send + Sync> =
            Arc::new(lookup as fn(&str) -> Option<String>);
        let state = ApiState::new(
            Arc::new(registry),
            credentials,
            Arc::new(ca),
            ApiConfig {
                region: REGION.to_owned(),
                account_id: ACCOUNT.to_owned(),
                endpoint_address: "iot.fuzz.example".to_owned(),
                max_body_bytes: ferrocore_api::DEFAULT_MAX_BODY_BYTES,
            },
        );
        ferrocore_api::router(Arc::new(state))
    });
    let env = Env {
        rt,
        router,
        execs: AtomicU64::new(0),
        answers: Mutex::new(BTreeMap::new()),
        reported: AtomicU64::new(0),
    };
    fixtures(&env);
    env
});

fuzz_target!(|data: &[u8]| {
    let env = &*ENV;
    let n = env.execs.fetch_add(1, Ordering::Relaxed) + 1;
    if n % REFIXTURE_EVERY == 0 {
        fixtures(env);
    }
    if n >= 1024 && n.is_power_of_two() {
        eprintln!("api_request: {n} inputs, answers by status and error type:");
        for ((status, code), count) in env.answers.lock().expect("answers").iter() {
            eprintln!("  {status} {code}: {count}");
        }
    }
    let Some(input) = Input::from_fuzz(data) else {
        return;
    };
    if input.method == Method::POST && input.path == "/keys-and-certificate" {
        return;
    }
    let Some(req) = input.signed() else {
        return;
    };
    let (status, headers, body) = send(env, req);
    if *VERBOSE {
        eprintln!(
            "{} {}?{} presigned={} {:?}\n  -> {status} {}",
            input.method,
            input.path,
            input.query,
            input.presign,
            input.headers,
            String::from_utf8_lossy(&body)
        );
    }
    check(env, &input, status, &headers, &body);
});

static VERBOSE: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("API_REQUEST_VERBOSE").is_some());

/// A request before signing.
struct Input {
    method: Method,
    presign: bool,
    path: String,
    query: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
}

impl Input {
    fn from_fuzz(data: &[u8]) -> Option<Input> {
        let text = TextRequest::parse(data);
        let (method, presign) = method(text.method);
        let (path, query) = text.path_and_query();
        let path = match path.split_first() {
            Some((b'/', _)) => encode_path(path),
            Some((first, rest)) => {
                let prefix = PREFIXES[usize::from(*first) % PREFIXES.len()];
                let mut p = prefix.to_owned();
                p.push_str(&encode_path(rest));
                p
            }
            None => "/".to_owned(),
        };
        let mut headers = Vec::new();
        for (name, value) in &text.headers {
            let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            else {
                continue;
            };
            if SIGNING_HEADERS.contains(&name.as_str()) {
                continue;
            }
            headers.push((name, value));
        }
        let body = match text.body.split_first() {
            Some((0, rest)) => {
                serde_json::to_vec(&json_object(&mut Unstructured::new(rest), 0)).ok()?
            }
            _ => text.body.to_vec(),
        };
        Some(Input {
            method,
            presign,
            path,
            query: canonical_query(query),
            headers,
            body,
        })
    }

    /// Input for the fixtures.
    fn new(method: Method, target: &str, headers: &[(&str, &str)], body: Value) -> Input {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Input {
            method,
            presign: false,
            path: path.to_owned(),
            query: canonical_query(query.as_bytes()),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                        HeaderValue::from_str(v).expect("header value"),
                    )
                })
                .collect(),
            body: if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            },
        }
    }

    /// The request, signed by aws-sigv4 now; `None` when aws-sigv4 cannot sign it.
    fn signed(&self) -> Option<Request<Body>> {
        let mut to_sign: Vec<(&str, &str)> = vec![("host", HOST)];
        to_sign.extend(
            self.headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
        );
        let signature = aws_sign(
            self.method.as_str(),
            &self.path,
            &self.query,
            &to_sign,
            &self.body,
            "iot",
            SystemTime::now(),
            self.presign.then_some(Duration::from_secs(300)),
            None,
        )?;
        let uri = if signature.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, signature.query)
        };
        let mut req = Request::builder()
            .method(self.method.clone())
            .uri(uri)
            .header("host", HOST);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        for (k, v) in &signature.headers {
            req = req.header(k, v);
        }
        req.body(Body::from(self.body.clone())).ok()
    }
}

fn method(token: &[u8]) -> (Method, bool) {
    let (token, presign) = match token.len().checked_sub(2) {
        Some(i) if token[i..].eq_ignore_ascii_case(b"/p") => (&token[..i], true),
        _ => (token, false),
    };
    let method = METHODS
        .iter()
        .find(|m| m.as_str().as_bytes().eq_ignore_ascii_case(token))
        .cloned()
        .unwrap_or_else(|| {
            let i = token.first().map_or(0, |b| usize::from(*b));
            METHODS[i % METHODS.len()].clone()
        });
    (method, presign)
}

/// The path's bytes, percent-encoding those a URI path cannot carry (a `%` stays).
fn encode_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query as the SDKs send it: each pair percent-decoded (a `+` is a `+`), not-UTF-8
/// replaced, and encoded again (RFC 3986); a pair without `=` stays without.
fn canonical_query(query: &[u8]) -> String {
    let mut out = Vec::new();
    for pair in query.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let mut parts = pair.splitn(2, |b| *b == b'=');
        let key = parts.next().unwrap_or_default();
        let key = uri_encode(String::from_utf8_lossy(&percent_decode(key)).as_bytes());
        match parts.next() {
            Some(value) => {
                let value = uri_encode(String::from_utf8_lossy(&percent_decode(value)).as_bytes());
                out.push(format!("{key}={value}"));
            }
            None => out.push(key),
        }
    }
    out.join("&")
}

/// Member names of the operations' bodies.
const MEMBERS: &[&str] = &[
    "thingName",
    "thingTypeName",
    "attributePayload",
    "attributes",
    "merge",
    "expectedVersion",
    "removeThingType",
    "billingGroupName",
    "thingTypeProperties",
    "thingTypeDescription",
    "searchableAttributes",
    "mqtt5Configuration",
    "propagatingAttributes",
    "userPropertyKey",
    "thingAttribute",
    "connectionAttribute",
    "tags",
    "Key",
    "Value",
    "undoDeprecate",
    "thingGroupName",
    "thingGroupArn",
    "thingArn",
    "parentGroupName",
    "thingGroupProperties",
    "thingGroupDescription",
    "overrideDynamicGroups",
    "certificateSigningRequest",
    "certificatePem",
    "caCertificatePem",
    "status",
    "setAsActive",
    "caCertificate",
    "verificationCertificate",
    "registrationConfig",
    "templateBody",
    "templateName",
    "roleArn",
    "certificateMode",
    "allowAutoRegistration",
    "removeAutoRegistration",
    "crlPem",
];

/// Values that mean something to the operations.
fn strings() -> Vec<String> {
    let arn = |r: &str| format!("arn:aws:iot:{REGION}:{ACCOUNT}:{r}");
    vec![
        THING.into(),
        THING_TYPE.into(),
        GROUP.into(),
        CHILD_GROUP.into(),
        arn(&format!("thing/{THING}")),
        arn(&format!("thinggroup/{GROUP}")),
        arn(&format!("cert/{DEVICE_ID}")),
        arn(&format!("cert/{SELF_ID}")),
        arn(&format!("cacert/{CA_ID}")),
        DEVICE_ID.into(),
        CA_ID.into(),
        "ACTIVE".into(),
        "INACTIVE".into(),
        "REVOKED".into(),
        "PENDING_TRANSFER".into(),
        "PENDING_ACTIVATION".into(),
        "DEFAULT".into(),
        "SNI_ONLY".into(),
        "iot:ClientId".into(),
        "iot:Thing.ThingName".into(),
        String::new(),
        CA_CERT.into(),
        DEVICE_CERT.into(),
        SELF_CERT.into(),
        OTHER_CA_CERT.into(),
        CSR.into(),
        CRL.into(),
    ]
}

static STRINGS: LazyLock<Vec<String>> = LazyLock::new(strings);

fn json_object(u: &mut Unstructured<'_>, depth: u32) -> Value {
    let mut map = Map::new();
    let n = u.int_in_range(0..=5u8).unwrap_or(0);
    for _ in 0..n {
        let key = if u.ratio(7u8, 8u8).unwrap_or(true) {
            (*u.choose(MEMBERS).unwrap_or(&"thingName")).to_owned()
        } else {
            u.arbitrary::<String>().unwrap_or_default()
        };
        map.insert(key, json_value(u, depth + 1));
    }
    Value::Object(map)
}

fn json_value(u: &mut Unstructured<'_>, depth: u32) -> Value {
    let kinds = if depth >= 4 { 6 } else { 8 };
    match u.int_in_range(0..=kinds - 1).unwrap_or(0) {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary().unwrap_or_default()),
        2 => json!(u.arbitrary::<i64>().unwrap_or_default()),
        3 => json!(u.arbitrary::<f64>().unwrap_or_default()),
        4 => Value::String(u.arbitrary::<String>().unwrap_or_default()),
        5 => Value::String(u.choose(&STRINGS[..]).cloned().unwrap_or_default()),
        6 => {
            let n = u.int_in_range(0..=4u8).unwrap_or(0);
            Value::Array((0..n).map(|_| json_value(u, depth + 1)).collect())
        }
        _ => json_object(u, depth),
    }
}

fn send(env: &Env, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    env.rt.block_on(async {
        let response = match env.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("response body");
        (parts.status, parts.headers, body)
    })
}

/// What every answer must look like.
fn check(env: &Env, input: &Input, status: StatusCode, headers: &HeaderMap, body: &[u8]) {
    let head = input.method == Method::HEAD;
    let code = if status.is_success() {
        if !head {
            let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
                panic!(
                    "{status} body is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(body)
                )
            });
            assert!(v.is_object(), "{status} body is not an object: {v}");
        }
        String::new()
    } else {
        assert!(
            status.is_client_error() || status.is_server_error(),
            "status {status} is neither 2xx nor an error"
        );
        let code = headers
            .get("x-amzn-errortype")
            .unwrap_or_else(|| panic!("{status} without x-amzn-ErrorType"))
            .to_str()
            .expect("x-amzn-ErrorType is text")
            .to_owned();
        if !head {
            let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
                panic!(
                    "{status} {code} body is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(body)
                )
            });
            assert!(
                v["message"].is_string(),
                "{status} {code} without message: {v}"
            );
            assert_eq!(v["__type"], Value::String(code.clone()), "{status}: {v}");
        }
        code
    };
    *env.answers
        .lock()
        .expect("answers")
        .entry((status.as_u16(), code.clone()))
        .or_default() += 1;
    let badly_signed = matches!(
        code.as_str(),
        "InvalidSignatureException"
            | "IncompleteSignatureException"
            | "MissingAuthenticationTokenException"
            | "UnrecognizedClientException"
    );
    // Expected refusals, not worth reporting: `X-Amz-*` names in the input's own query (a
    // header-signed request then has two mechanisms), and a path whose last segment is `.` or
    // `..` (aws-sigv4 normalises `/a/.` to `/a/` as RFC 3986 does, the verifier to `/a` as
    // botocore does; see sigv4_verify's `comparable`).
    let expected =
        input.query.contains("X-Amz-") || matches!(input.path.rsplit('/').next(), Some("." | ".."));
    if ((badly_signed && !expected) || status.is_server_error())
        && env.reported.fetch_add(1, Ordering::Relaxed) < 20
    {
        eprintln!(
            "api_request: {status} {code} {}\n  {} {}?{} presigned={} headers={:?}",
            String::from_utf8_lossy(body),
            input.method,
            input.path,
            input.query,
            input.presign,
            input.headers,
        );
    }
}

/// Creates the fixtures (again); refusals (they exist already) are expected.
fn fixtures(env: &Env) {
    let run = |input: Input| {
        let req = input.signed().expect("fixture signs");
        send(env, req)
    };
    let (_, _, body) = run(Input::new(
        Method::GET,
        "/registrationcode",
        &[],
        Value::Null,
    ));
    let code: Value = serde_json::from_slice(&body).expect("registration code");
    let code = code["registrationCode"].as_str().expect("registrationCode");
    let verification = {
        let key = rcgen::KeyPair::from_pem(CA_KEY).expect("CA key");
        let issuer = rcgen::Issuer::from_ca_cert_pem(CA_CERT, key).expect("CA issuer");
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, code);
        let v_key = rcgen::KeyPair::generate().expect("verification key");
        params
            .signed_by(&v_key, &issuer)
            .expect("verification certificate")
            .pem()
    };
    let principal = format!("arn:aws:iot:{REGION}:{ACCOUNT}:cert/{DEVICE_ID}");
    let steps = [
        Input::new(
            Method::POST,
            "/cacertificate?setAsActive=true&allowAutoRegistration=true",
            &[],
            json!({"caCertificate": CA_CERT, "verificationCertificate": verification}),
        ),
        Input::new(
            Method::POST,
            "/certificate/register?setAsActive=true",
            &[],
            json!({"certificatePem": DEVICE_CERT, "caCertificatePem": CA_CERT}),
        ),
        Input::new(
            Method::POST,
            "/certificate/register-no-ca",
            &[],
            json!({"certificatePem": SELF_CERT, "status": "ACTIVE"}),
        ),
        Input::new(
            Method::POST,
            &format!("/thing-types/{THING_TYPE}"),
            &[],
            json!({"thingTypeProperties": {"searchableAttributes": ["room"]}}),
        ),
        Input::new(
            Method::POST,
            &format!("/things/{THING}"),
            &[],
            json!({"thingTypeName": THING_TYPE, "attributePayload": {"attributes": {"room": "lab"}}}),
        ),
        Input::new(
            Method::POST,
            &format!("/thing-groups/{GROUP}"),
            &[],
            json!({"thingGroupProperties": {"thingGroupDescription": "fuzz"}}),
        ),
        Input::new(
            Method::POST,
            &format!("/thing-groups/{CHILD_GROUP}"),
            &[],
            json!({"parentGroupName": GROUP}),
        ),
        Input::new(
            Method::PUT,
            "/thing-groups/addThingToThingGroup",
            &[],
            json!({"thingGroupName": CHILD_GROUP, "thingName": THING}),
        ),
        Input::new(
            Method::PUT,
            &format!("/things/{THING}/principals"),
            &[("x-amzn-principal", &principal)],
            Value::Null,
        ),
        Input::new(
            Method::PUT,
            &format!("/cacertificate/{CA_ID}/crl"),
            &[],
            json!({"crlPem": CRL}),
        ),
        Input::new(
            Method::POST,
            &format!("/policies/{POLICY}"),
            &[],
            json!({"policyDocument": POLICY_DOCUMENT}),
        ),
        Input::new(
            Method::PUT,
            &format!("/target-policies/{POLICY}"),
            &[],
            json!({"target": principal}),
        ),
    ];
    for step in steps {
        run(step);
    }
}
