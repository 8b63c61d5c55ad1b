#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use ferrocore_store::{Durability, Store};

use super::super::tests::{ctx, run};
use super::*;
use crate::registry::{Ctx, Empty, Registry, uuid_v4};

const RSA_2048: &str = include_str!("testdata/rsa2048.pem");
const RSA_2048_SECOND: &str = include_str!("testdata/rsa2048-second.pem");
const RSA_4096: &str = include_str!("testdata/rsa4096.pem");
const RSA_1024: &str = include_str!("testdata/rsa1024.pem");
const EC_P256: &str = include_str!("testdata/ec-p256.pem");

const WEBHOOK: &str = "https://auth.example.com/iot/authorize";

fn keys(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A signed authorizer request: token key `token`, key `k1`.
fn signed(name: &str) -> CreateAuthorizerRequest {
    CreateAuthorizerRequest {
        authorizer_name: name.into(),
        authorizer_function_arn: Some(WEBHOOK.into()),
        token_key_name: Some("token".into()),
        token_signing_public_keys: Some(keys(&[("k1", RSA_2048)])),
        ..Default::default()
    }
}

fn unsigned(name: &str) -> CreateAuthorizerRequest {
    CreateAuthorizerRequest {
        authorizer_name: name.into(),
        authorizer_function_arn: Some(WEBHOOK.into()),
        signing_disabled: Some(true),
        ..Default::default()
    }
}

fn create(
    s: &mut RegistryState,
    req: CreateAuthorizerRequest,
) -> Result<AuthorizerSummary, RegistryError> {
    run(s, |s, c| create_authorizer(s, c, req))
}

fn update(
    s: &mut RegistryState,
    req: UpdateAuthorizerRequest,
) -> Result<AuthorizerSummary, RegistryError> {
    run(s, |s, c| update_authorizer(s, c, req))
}

fn set_status(s: &mut RegistryState, name: &str, status: AuthorizerStatus) {
    update(
        s,
        UpdateAuthorizerRequest {
            authorizer_name: name.into(),
            status: Some(status),
            ..Default::default()
        },
    )
    .unwrap();
}

fn delete(s: &mut RegistryState, name: &str) -> Result<Empty, RegistryError> {
    run(s, |s, c| delete_authorizer(s, c, name))
}

fn set_default(s: &mut RegistryState, name: &str) -> Result<AuthorizerSummary, RegistryError> {
    let req = SetDefaultAuthorizerRequest {
        authorizer_name: Some(name.into()),
    };
    run(s, |s, c| set_default_authorizer(s, c, req))
}

fn code(e: RegistryError) -> &'static str {
    e.aws_error_code()
}

fn describe(s: &RegistryState, name: &str) -> AuthorizerDescription {
    describe_authorizer(s, &ctx(), name)
        .unwrap()
        .authorizer_description
}

#[test]
fn create_and_describe_a_signed_authorizer() {
    let mut s = RegistryState::default();
    let created = create(&mut s, signed("dev-auth")).unwrap();
    assert_eq!(created.authorizer_name, "dev-auth");
    assert_eq!(
        created.authorizer_arn,
        "arn:aws:iot:us-east-1:123456789012:authorizer/dev-auth"
    );
    let d = describe(&s, "dev-auth");
    assert_eq!(d.authorizer_function_arn, WEBHOOK);
    assert_eq!(d.token_key_name.as_deref(), Some("token"));
    assert_eq!(d.token_signing_public_keys, keys(&[("k1", RSA_2048)]));
    assert_eq!(d.status, AuthorizerStatus::Inactive, "AWS's default status");
    assert!(!d.signing_disabled);
    assert!(!d.enable_caching_for_http);
    assert_eq!(d.creation_date, ctx().now_seconds());
    assert_eq!(d.last_modified_date, d.creation_date);
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["status"], "INACTIVE");
    assert_eq!(json["tokenSigningPublicKeys"]["k1"], RSA_2048);
    assert_eq!(s.authorizer("dev-auth").unwrap().name, "dev-auth");
    assert!(s.authorizer("other").is_none());
}

#[test]
fn an_unsigned_authorizer_describes_without_keys() {
    let mut s = RegistryState::default();
    let mut req = unsigned("plain");
    req.status = Some(AuthorizerStatus::Active);
    req.enable_caching_for_http = Some(true);
    create(&mut s, req).unwrap();
    let d = describe(&s, "plain");
    assert_eq!(d.status, AuthorizerStatus::Active);
    assert!(d.signing_disabled && d.enable_caching_for_http);
    let json = serde_json::to_value(&d).unwrap();
    assert!(json.get("tokenSigningPublicKeys").is_none());
    assert!(json.get("tokenKeyName").is_none());
}

#[test]
fn names_are_validated() {
    let mut s = RegistryState::default();
    for good in ["a", "A_b=c,d@e-f", &"n".repeat(128)] {
        create(&mut s, unsigned(good)).unwrap();
        let req = UpdateAuthorizerRequest {
            authorizer_name: good.to_owned(),
            status: Some(AuthorizerStatus::Inactive),
            ..Default::default()
        };
        update(&mut s, req).unwrap();
        delete(&mut s, good).unwrap();
    }
    for bad in ["", "a b", "x/y", "a.b", "a+b", &"n".repeat(129)] {
        assert_eq!(
            code(create(&mut s, unsigned(bad)).unwrap_err()),
            "InvalidRequestException",
            "{bad:?}"
        );
        let err = describe_authorizer(&s, &ctx(), bad).unwrap_err();
        assert_eq!(code(err), "InvalidRequestException", "{bad:?}");
        assert_eq!(
            code(delete(&mut s, bad).unwrap_err()),
            "InvalidRequestException"
        );
    }
    let mut bad_token_key = signed("t");
    bad_token_key.token_key_name = Some("a.b".into());
    let err = create(&mut s, bad_token_key).unwrap_err();
    assert!(err.to_string().contains("tokenKeyName"), "{err}");
    let mut bad_key_name = signed("t");
    bad_key_name.token_signing_public_keys = Some(keys(&[("k 1", RSA_2048)]));
    let err = create(&mut s, bad_key_name).unwrap_err();
    assert!(err.to_string().contains("key name"), "{err}");
    let mut colon_key_name = signed("t");
    colon_key_name.token_signing_public_keys = Some(keys(&[("prod:2024_a-1", RSA_2048)]));
    create(&mut s, colon_key_name).unwrap();
}

#[test]
fn function_names_follow_the_documented_scheme() {
    fn ok(arn: &str) -> AuthorizerFunction<'_> {
        AuthorizerFunction::parse(arn).unwrap()
    }
    assert_eq!(
        ok("https://auth.example.com:8443/a?x=1"),
        AuthorizerFunction::Webhook("https://auth.example.com:8443/a?x=1")
    );
    assert_eq!(
        ok("http://127.0.0.1:9000"),
        AuthorizerFunction::Webhook("http://127.0.0.1:9000")
    );
    assert_eq!(
        ok("ferrocore:function/okta_jwt-1"),
        AuthorizerFunction::BuiltIn("okta_jwt-1")
    );
    let lambda = "arn:aws:lambda:us-east-1:123456789012:function:my-authorizer";
    assert_eq!(ok(lambda), AuthorizerFunction::Lambda(lambda));
    let alias = "arn:aws-cn:lambda:cn-north-1:123456789012:function:auth:prod";
    assert_eq!(ok(alias), AuthorizerFunction::Lambda(alias));
    for bad in [
        "",
        "not-an-arn",
        "ftp://example.com/",
        "https://",
        "https:///path",
        "https://:443/",
        "https://example.com/a b",
        "https://example.com/#frag",
        "ferrocore:function/",
        "ferrocore:function/a.b",
        "ferrocore:function/a/b",
        "arn:aws:lambda:us-east-1:123:function:f",
        "arn:aws:lambda:us-east-1:123456789012:layer:f",
        "arn:aws:iot:us-east-1:123456789012:authorizer/a",
        "arn:aws:lambda:us-east-1:123456789012:function:f:1:2",
    ] {
        let err = AuthorizerFunction::parse(bad).unwrap_err();
        assert_eq!(code(err.clone()), "InvalidRequestException", "{bad:?}");
        assert!(
            err.to_string().contains("ferrocore:function/<name>"),
            "{err}"
        );
    }
    let long = format!("https://example.com/{}", "a".repeat(MAX_FUNCTION_ARN_LEN));
    assert!(AuthorizerFunction::parse(&long).is_err());

    let mut s = RegistryState::default();
    let mut req = unsigned("a");
    req.authorizer_function_arn = None;
    let err = create(&mut s, req).unwrap_err();
    assert!(
        err.to_string()
            .contains("authorizerFunctionArn is required")
    );
    let mut req = unsigned("a");
    req.authorizer_function_arn = Some("lambda".into());
    assert_eq!(
        code(create(&mut s, req).unwrap_err()),
        "InvalidRequestException"
    );
    let mut req = unsigned("a");
    req.authorizer_function_arn = Some("ferrocore:function/passwords".into());
    create(&mut s, req).unwrap();
    assert_eq!(
        s.authorizer("a").unwrap().function().unwrap(),
        AuthorizerFunction::BuiltIn("passwords")
    );
}

#[test]
fn signing_keys_must_be_rsa_of_at_least_2048_bits() {
    let mut s = RegistryState::default();
    let with_key = |name: &str, pem: &str| {
        let mut req = signed(name);
        req.token_signing_public_keys = Some(keys(&[("k1", pem)]));
        req
    };
    create(&mut s, with_key("rsa2048", RSA_2048)).unwrap();
    create(&mut s, with_key("rsa4096", RSA_4096)).unwrap();
    // Text before the PEM block is skipped; the value is stored as given.
    let prefixed = format!("my signing key\n{RSA_2048}");
    create(&mut s, with_key("prefixed", &prefixed)).unwrap();
    assert_eq!(
        s.authorizer("prefixed").unwrap().token_signing_public_keys["k1"],
        prefixed
    );

    let base64: String = RSA_2048
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let no_end = format!("-----BEGIN PUBLIC KEY-----\n{base64}\n");
    let oversized = format!("{}{RSA_2048}", " ".repeat(5120));
    let certificate_only = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    for (pem, why) in [
        (RSA_1024, "1024 bits"),
        (EC_P256, "not RSA"),
        ("garbage", "no `PUBLIC KEY`"),
        ("", "no `PUBLIC KEY`"),
        (base64.as_str(), "no `PUBLIC KEY`"),
        (certificate_only, "no `PUBLIC KEY`"),
        (no_end.as_str(), "malformed PEM"),
        (oversized.as_str(), "at most 5120"),
    ] {
        let err = create(&mut s, with_key("refused", pem)).unwrap_err();
        assert_eq!(code(err.clone()), "InvalidRequestException", "{why}");
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
    assert!(s.authorizer("refused").is_none());
}

#[test]
fn signing_needs_a_token_key_and_one_or_two_keys() {
    let mut s = RegistryState::default();
    let mut no_token_key = signed("a");
    no_token_key.token_key_name = None;
    let err = create(&mut s, no_token_key).unwrap_err();
    assert!(err.to_string().contains("tokenKeyName"), "{err}");

    for count in [0, 3] {
        let mut req = signed("a");
        let pems = [RSA_2048, RSA_2048_SECOND, RSA_4096];
        let entries: Vec<(String, &str)> = (0..count).map(|i| (format!("k{i}"), pems[i])).collect();
        req.token_signing_public_keys = Some(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), (*v).to_owned()))
                .collect(),
        );
        let err = create(&mut s, req).unwrap_err();
        assert!(err.to_string().contains("one or two"), "{count}: {err}");
    }
    let mut no_keys = signed("a");
    no_keys.token_signing_public_keys = None;
    assert_eq!(
        code(create(&mut s, no_keys).unwrap_err()),
        "InvalidRequestException"
    );

    let mut two = signed("two");
    two.token_signing_public_keys = Some(keys(&[("old", RSA_2048), ("new", RSA_2048_SECOND)]));
    create(&mut s, two).unwrap();

    // Without signing: no keys, a token key name is allowed.
    let mut disabled_with_keys = unsigned("u");
    disabled_with_keys.token_signing_public_keys = Some(keys(&[("k1", RSA_2048)]));
    let err = create(&mut s, disabled_with_keys).unwrap_err();
    assert!(err.to_string().contains("signingDisabled"), "{err}");
    let mut disabled_with_token_key = unsigned("u");
    disabled_with_token_key.token_key_name = Some("token".into());
    disabled_with_token_key.token_signing_public_keys = Some(BTreeMap::new());
    create(&mut s, disabled_with_token_key).unwrap();
}

#[test]
fn duplicates_and_the_limit_are_refused() {
    let mut s = RegistryState::default();
    create(&mut s, unsigned("a")).unwrap();
    let mut other = signed("a");
    other.status = Some(AuthorizerStatus::Active);
    let err = create(&mut s, other).unwrap_err();
    assert_eq!(err.http_status(), 409);
    let RegistryError::ResourceAlreadyExists { resource_arn, .. } = err else {
        panic!("{err:?}");
    };
    assert_eq!(
        resource_arn.as_deref(),
        Some("arn:aws:iot:us-east-1:123456789012:authorizer/a")
    );
    assert!(describe(&s, "a").signing_disabled, "unchanged");

    for i in 1..MAX_AUTHORIZERS {
        create(&mut s, unsigned(&format!("a{i}"))).unwrap();
    }
    let err = create(&mut s, unsigned("one-too-many")).unwrap_err();
    assert_eq!(code(err.clone()), "LimitExceededException");
    assert_eq!(err.http_status(), 410);
    delete(&mut s, "a").unwrap();
    create(&mut s, unsigned("one-too-many")).unwrap();
}

#[test]
fn update_sets_what_it_is_given_and_merges_keys() {
    let mut s = RegistryState::default();
    create(&mut s, signed("a")).unwrap();
    let later = Ctx {
        now_ms: ctx().now_ms + 5_000,
        ..ctx()
    };
    let req = UpdateAuthorizerRequest {
        authorizer_name: "a".into(),
        status: Some(AuthorizerStatus::Active),
        enable_caching_for_http: Some(true),
        authorizer_function_arn: Some("ferrocore:function/jwt".into()),
        token_key_name: Some("jwt".into()),
        ..Default::default()
    };
    let (answer, changes) = update_authorizer(&s, &later, req).unwrap();
    assert_eq!(answer.authorizer_name, "a");
    s.apply(&changes);
    let d = describe(&s, "a");
    assert_eq!(d.status, AuthorizerStatus::Active);
    assert!(d.enable_caching_for_http);
    assert_eq!(d.authorizer_function_arn, "ferrocore:function/jwt");
    assert_eq!(d.token_key_name.as_deref(), Some("jwt"));
    assert_eq!(d.creation_date, ctx().now_seconds());
    assert_eq!(d.last_modified_date, later.now_seconds());
    assert_eq!(d.token_signing_public_keys, keys(&[("k1", RSA_2048)]));

    // Keys merge by name: add a second, then replace one.
    let with_keys = |entries: &[(&str, &str)]| UpdateAuthorizerRequest {
        authorizer_name: "a".into(),
        token_signing_public_keys: Some(keys(entries)),
        ..Default::default()
    };
    update(&mut s, with_keys(&[("k2", RSA_2048_SECOND)])).unwrap();
    update(&mut s, with_keys(&[("k1", RSA_4096)])).unwrap();
    assert_eq!(
        describe(&s, "a").token_signing_public_keys,
        keys(&[("k1", RSA_4096), ("k2", RSA_2048_SECOND)])
    );
    let err = update(&mut s, with_keys(&[("k3", RSA_2048)])).unwrap_err();
    assert!(err.to_string().contains("one or two"), "{err}");
    let err = update(&mut s, with_keys(&[("k1", RSA_1024)])).unwrap_err();
    assert!(err.to_string().contains("1024"), "{err}");
    assert_eq!(describe(&s, "a").token_signing_public_keys.len(), 2);

    let bad_function = UpdateAuthorizerRequest {
        authorizer_name: "a".into(),
        authorizer_function_arn: Some("nowhere".into()),
        ..Default::default()
    };
    assert_eq!(
        code(update(&mut s, bad_function).unwrap_err()),
        "InvalidRequestException"
    );
    let missing = UpdateAuthorizerRequest {
        authorizer_name: "missing".into(),
        ..Default::default()
    };
    assert_eq!(
        code(update(&mut s, missing).unwrap_err()),
        "ResourceNotFoundException"
    );
}

#[test]
fn signing_disabled_cannot_change() {
    let mut s = RegistryState::default();
    create(&mut s, signed("signed")).unwrap();
    create(&mut s, unsigned("plain")).unwrap();
    for (name, value) in [("signed", true), ("plain", false), ("plain", true)] {
        let req = UpdateAuthorizerRequest {
            authorizer_name: name.into(),
            signing_disabled: Some(value),
            ..Default::default()
        };
        let err = update(&mut s, req).unwrap_err();
        assert!(
            err.to_string().contains("signingDisabled cannot change"),
            "{err}"
        );
    }
    let keys_on_unsigned = UpdateAuthorizerRequest {
        authorizer_name: "plain".into(),
        token_signing_public_keys: Some(keys(&[("k1", RSA_2048)])),
        ..Default::default()
    };
    assert_eq!(
        code(update(&mut s, keys_on_unsigned).unwrap_err()),
        "InvalidRequestException"
    );
    assert!(describe(&s, "plain").signing_disabled);
    assert!(!describe(&s, "signed").signing_disabled);
}

#[test]
fn delete_needs_an_inactive_authorizer_that_is_not_the_default() {
    let mut s = RegistryState::default();
    let mut active = unsigned("a");
    active.status = Some(AuthorizerStatus::Active);
    create(&mut s, active).unwrap();
    let err = delete(&mut s, "a").unwrap_err();
    assert_eq!(code(err.clone()), "InvalidRequestException");
    assert!(err.to_string().contains("INACTIVE"), "{err}");

    set_status(&mut s, "a", AuthorizerStatus::Inactive);
    set_default(&mut s, "a").unwrap();
    assert_eq!(
        code(delete(&mut s, "a").unwrap_err()),
        "DeleteConflictException"
    );

    run(&mut s, clear_default_authorizer).unwrap();
    delete(&mut s, "a").unwrap();
    assert!(s.authorizer("a").is_none());
    assert_eq!(
        code(delete(&mut s, "a").unwrap_err()),
        "ResourceNotFoundException"
    );
    let err = describe_authorizer(&s, &ctx(), "a").unwrap_err();
    assert_eq!(code(err), "ResourceNotFoundException");
    // The name is free again.
    create(&mut s, unsigned("a")).unwrap();
}

#[test]
fn the_default_authorizer_is_set_replaced_described_and_cleared() {
    let mut s = RegistryState::default();
    let err = describe_default_authorizer(&s, &ctx()).unwrap_err();
    assert_eq!(code(err), "ResourceNotFoundException");
    assert_eq!(
        code(run(&mut s, clear_default_authorizer).unwrap_err()),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(set_default(&mut s, "missing").unwrap_err()),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(set_default(&mut s, "a b").unwrap_err()),
        "InvalidRequestException"
    );
    let none = SetDefaultAuthorizerRequest {
        authorizer_name: None,
    };
    let err = run(&mut s, |s, c| set_default_authorizer(s, c, none)).unwrap_err();
    assert!(err.to_string().contains("authorizerName is required"));

    create(&mut s, unsigned("first")).unwrap();
    create(&mut s, signed("second")).unwrap();
    // An INACTIVE authorizer may be the default (as on AWS).
    let set = set_default(&mut s, "first").unwrap();
    assert_eq!(set.authorizer_name, "first");
    assert_eq!(
        set.authorizer_arn,
        "arn:aws:iot:us-east-1:123456789012:authorizer/first"
    );
    assert_eq!(s.default_authorizer().unwrap().name, "first");
    let err = set_default(&mut s, "first").unwrap_err();
    assert_eq!(code(err), "ResourceAlreadyExistsException");

    set_default(&mut s, "second").unwrap();
    let d = describe_default_authorizer(&s, &ctx()).unwrap();
    assert_eq!(d.authorizer_description, describe(&s, "second"));

    run(&mut s, clear_default_authorizer).unwrap();
    assert!(s.default_authorizer().is_none());
    assert!(describe_default_authorizer(&s, &ctx()).is_err());
}

#[test]
fn list_pages_by_creation_date_and_filters_by_status() {
    let mut s = RegistryState::default();
    for (i, name) in ["c", "a", "b"].into_iter().enumerate() {
        let at = Ctx {
            now_ms: ctx().now_ms + i as i64,
            ..ctx()
        };
        let (_, changes) = create_authorizer(&s, &at, unsigned(name)).unwrap();
        s.apply(&changes);
    }
    set_status(&mut s, "a", AuthorizerStatus::Active);
    let list = |req: ListAuthorizersRequest| {
        let page = list_authorizers(&s, &ctx(), &req).unwrap();
        let names: Vec<String> = page
            .authorizers
            .iter()
            .map(|a| a.authorizer_name.clone())
            .collect();
        (names, page.next_marker)
    };
    assert_eq!(list(Default::default()).0, ["b", "a", "c"], "newest first");
    let ascending = ListAuthorizersRequest {
        ascending: true,
        ..Default::default()
    };
    assert_eq!(list(ascending).0, ["c", "a", "b"]);
    let active = ListAuthorizersRequest {
        status: Some(AuthorizerStatus::Active),
        ..Default::default()
    };
    assert_eq!(list(active).0, ["a"]);
    let inactive = ListAuthorizersRequest {
        status: Some(AuthorizerStatus::Inactive),
        ..Default::default()
    };
    assert_eq!(list(inactive).0, ["b", "c"]);

    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let (names, next) = list(ListAuthorizersRequest {
            page_size: Some(1),
            marker: marker.clone(),
            ..Default::default()
        });
        assert_eq!(names.len(), 1);
        seen.extend(names);
        match next {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(seen, ["b", "a", "c"]);
    let bad_size = ListAuthorizersRequest {
        page_size: Some(0),
        ..Default::default()
    };
    assert!(list_authorizers(&s, &ctx(), &bad_size).is_err());
    let bad_marker = ListAuthorizersRequest {
        marker: Some("zz".into()),
        ..Default::default()
    };
    assert!(list_authorizers(&s, &ctx(), &bad_marker).is_err());
}

#[test]
fn requests_parse_from_aws_json() {
    let create: CreateAuthorizerRequest = serde_json::from_str(
        r#"{"authorizerFunctionArn":"https://a.example","tokenKeyName":"t",
            "tokenSigningPublicKeys":{"k":"pem"},"status":"ACTIVE","signingDisabled":false,
            "enableCachingForHttp":true,"tags":[{"Key":"team","Value":"a"}]}"#,
    )
    .unwrap();
    assert_eq!(create.status, Some(AuthorizerStatus::Active));
    assert_eq!(create.enable_caching_for_http, Some(true));
    assert!(serde_json::from_str::<CreateAuthorizerRequest>(r#"{"status":"ON"}"#).is_err());
}

#[tokio::test]
async fn authorizers_and_the_default_survive_a_reopen() {
    let dir = std::env::temp_dir().join(format!("ferrocore-authorizers-{}", uuid_v4().unwrap()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("registry.db");
    let open = || async {
        let store = Store::open_sqlite(&path, Durability::Process)
            .await
            .unwrap();
        let registry = Registry::open(store.clone(), ctx().arns).await.unwrap();
        (store, registry)
    };
    let (store, registry) = open().await;
    for req in [signed("kept"), unsigned("gone")] {
        registry
            .write(|s, c| create_authorizer(s, c, req))
            .await
            .unwrap();
    }
    let req = SetDefaultAuthorizerRequest {
        authorizer_name: Some("kept".into()),
    };
    registry
        .write(|s, c| set_default_authorizer(s, c, req))
        .await
        .unwrap();
    registry
        .write(|s, c| delete_authorizer(s, c, "gone"))
        .await
        .unwrap();
    store.close().await.unwrap();
    drop(registry);

    let (store, registry) = open().await;
    registry.read(|s| {
        let kept = s.authorizer("kept").unwrap();
        assert_eq!(kept.token_signing_public_keys, keys(&[("k1", RSA_2048)]));
        assert_eq!(kept.token_key_name.as_deref(), Some("token"));
        assert!(s.authorizer("gone").is_none());
        assert_eq!(s.default_authorizer().unwrap().name, "kept");
    });
    registry.write(clear_default_authorizer).await.unwrap();
    store.close().await.unwrap();
    drop(registry);

    let (store, registry) = open().await;
    assert!(registry.read(|s| s.default_authorizer().is_none()));
    assert!(registry.read(|s| s.authorizer("kept").is_some()));
    store.close().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
