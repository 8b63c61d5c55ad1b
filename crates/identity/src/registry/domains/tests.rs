#![allow(clippy::unwrap_used)]

use super::super::tests::{ctx, run};
use super::*;
use crate::registry::{CreateAuthorizerRequest, Registry, create_authorizer};

/// A self-signed server certificate for `names` and its key, PEM.
fn server_cert(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn import(
    s: &mut RegistryState,
    arn: Option<&str>,
    (cert, key): &(String, String),
) -> Result<String, RegistryError> {
    let req = ImportServerCertificateRequest {
        certificate_arn: arn.map(str::to_owned),
        certificate: cert.as_bytes().to_vec(),
        private_key: key.as_bytes().to_vec(),
        certificate_chain: None,
    };
    run(s, |s, c| import_server_certificate(s, c, req))
}

fn create_req(name: &str, domain: &str, arn: &str) -> CreateDomainConfigurationRequest {
    CreateDomainConfigurationRequest {
        domain_configuration_name: name.into(),
        domain_name: Some(domain.into()),
        server_certificate_arns: Some(vec![arn.into()]),
        ..Default::default()
    }
}

fn create(
    s: &mut RegistryState,
    req: CreateDomainConfigurationRequest,
) -> Result<DomainConfigurationReference, RegistryError> {
    run(s, |s, c| create_domain_configuration(s, c, req))
}

fn update(
    s: &mut RegistryState,
    req: UpdateDomainConfigurationRequest,
) -> Result<DomainConfigurationReference, RegistryError> {
    run(s, |s, c| update_domain_configuration(s, c, req))
}

fn describe(s: &RegistryState, name: &str) -> DescribeDomainConfigurationResponse {
    describe_domain_configuration(s, &ctx(), name, "endpoint.example.test").unwrap()
}

fn add_authorizer(s: &mut RegistryState, name: &str) {
    let req = CreateAuthorizerRequest {
        authorizer_name: name.into(),
        authorizer_function_arn: Some("https://auth.example.com/".into()),
        signing_disabled: Some(true),
        ..Default::default()
    };
    run(s, |s, c| create_authorizer(s, c, req)).unwrap();
}

fn code(e: RegistryError) -> &'static str {
    e.aws_error_code()
}

#[test]
fn import_names_the_certificate_by_an_acm_arn_and_keeps_the_key_out_of_answers() {
    let mut s = RegistryState::default();
    let pair = server_cert(&["iot.example.test", "*.devices.example.test"]);
    let arn = import(&mut s, None, &pair).unwrap();
    assert!(
        arn.starts_with("arn:aws:acm:us-east-1:123456789012:certificate/"),
        "{arn}"
    );
    let record = &s.server_certificates[&arn];
    assert_eq!(
        record.subject_alternative_names,
        ["iot.example.test", "*.devices.example.test"]
    );
    assert!(record.covers("iot.example.test"));
    assert!(record.covers("a.devices.example.test"));
    assert!(!record.covers("a.b.devices.example.test"));
    assert!(!record.covers("other.example.test"));
    record.certified_key().unwrap();
    assert!(!format!("{record:?}").contains("PRIVATE KEY"));
    let detail =
        serde_json::to_string(&describe_server_certificate(&s, &ctx(), &arn).unwrap()).unwrap();
    assert!(!detail.contains("PRIVATE KEY"), "{detail}");
    assert!(detail.contains("\"Type\":\"IMPORTED\""), "{detail}");
}

#[test]
fn import_refuses_a_key_of_another_certificate_and_unknown_arns() {
    let mut s = RegistryState::default();
    let (cert, _) = server_cert(&["iot.example.test"]);
    let (_, other_key) = server_cert(&["iot.example.test"]);
    let err = import(&mut s, None, &(cert.clone(), other_key)).unwrap_err();
    assert_eq!(code(err), "InvalidRequestException");
    let err = import(&mut s, None, &(cert.clone(), "not a key".into())).unwrap_err();
    assert_eq!(code(err), "InvalidRequestException");
    let pair = server_cert(&["iot.example.test"]);
    let unknown = "arn:aws:acm:us-east-1:123456789012:certificate/nope";
    let err = import(&mut s, Some(unknown), &pair).unwrap_err();
    assert_eq!(code(err), "ResourceNotFoundException");
}

#[test]
fn reimport_replaces_under_the_same_arn_but_must_still_cover_its_domains() {
    let mut s = RegistryState::default();
    let arn = import(&mut s, None, &server_cert(&["iot.example.test"])).unwrap();
    create(&mut s, create_req("custom", "iot.example.test", &arn)).unwrap();
    let before = s.server_certificates[&arn].certificate_pem.clone();
    let again = import(&mut s, Some(&arn), &server_cert(&["iot.example.test"])).unwrap();
    assert_eq!(again, arn);
    assert_ne!(s.server_certificates[&arn].certificate_pem, before);
    let err = import(&mut s, Some(&arn), &server_cert(&["other.example.test"])).unwrap_err();
    assert_eq!(code(err), "CertificateValidationException");
    let err = run(&mut s, |s, c| delete_server_certificate(s, c, &arn)).unwrap_err();
    assert_eq!(code(err), "DeleteConflictException");
}

#[test]
fn create_describe_list_with_aws_shapes_and_defaults() {
    let mut s = RegistryState::default();
    let arn = import(&mut s, None, &server_cert(&["IoT.Example.Test"])).unwrap();
    let created = create(&mut s, create_req("custom", "IoT.Example.test", &arn)).unwrap();
    assert!(
        created
            .domain_configuration_arn
            .starts_with("arn:aws:iot:us-east-1:123456789012:domainconfiguration/custom/"),
        "{}",
        created.domain_configuration_arn
    );
    let d = describe(&s, "custom");
    assert_eq!(d.domain_configuration_arn, created.domain_configuration_arn);
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["domainName"], "iot.example.test");
    assert_eq!(json["domainConfigurationStatus"], "ENABLED");
    assert_eq!(json["serviceType"], "DATA");
    assert_eq!(json["domainType"], "CUSTOMER_MANAGED");
    assert_eq!(json["authenticationType"], "DEFAULT");
    assert_eq!(json["applicationProtocol"], "DEFAULT");
    assert_eq!(
        json["tlsConfig"]["securityPolicy"],
        "IoTSecurityPolicy_TLS13_1_2_2022_10"
    );
    assert_eq!(json["serverCertificates"][0]["serverCertificateArn"], arn);
    assert_eq!(
        json["serverCertificates"][0]["serverCertificateStatus"],
        "VALID"
    );

    let builtin = serde_json::to_value(describe(&s, DEFAULT_ENDPOINT_DOMAIN)).unwrap();
    assert_eq!(builtin["domainType"], "ENDPOINT");
    assert_eq!(builtin["domainName"], "endpoint.example.test");

    let listed = list_domain_configurations(&s, &ctx(), &Default::default()).unwrap();
    let names: Vec<_> = listed
        .domain_configurations
        .iter()
        .map(|d| d.domain_configuration_name.as_str())
        .collect();
    assert_eq!(names, ["custom", DEFAULT_ENDPOINT_DOMAIN]);
    let first = list_domain_configurations(
        &s,
        &ctx(),
        &ListDomainConfigurationsRequest {
            page_size: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(first.domain_configurations.len(), 1);
    let rest = list_domain_configurations(
        &s,
        &ctx(),
        &ListDomainConfigurationsRequest {
            marker: first.next_marker,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        rest.domain_configurations[0].domain_configuration_name,
        DEFAULT_ENDPOINT_DOMAIN
    );
    assert!(rest.next_marker.is_none());
}

#[test]
fn create_refuses_what_aws_refuses() {
    let mut s = RegistryState::default();
    let arn = import(&mut s, None, &server_cert(&["iot.example.test"])).unwrap();
    let cases: Vec<(CreateDomainConfigurationRequest, &str)> = vec![
        (
            create_req("bad name", "iot.example.test", &arn),
            "InvalidRequestException",
        ),
        (
            create_req("iot:Data-ATS", "iot.example.test", &arn),
            "InvalidRequestException",
        ),
        (
            CreateDomainConfigurationRequest {
                domain_name: None,
                ..create_req("d", "iot.example.test", &arn)
            },
            "InvalidRequestException",
        ),
        (
            create_req("d", "not a name", &arn),
            "InvalidRequestException",
        ),
        (
            create_req("d", "other.example.test", &arn),
            "CertificateValidationException",
        ),
        (
            create_req(
                "d",
                "iot.example.test",
                "arn:aws:acm:us-east-1:1:certificate/x",
            ),
            "InvalidRequestException",
        ),
        (
            CreateDomainConfigurationRequest {
                authentication_type: Some(AuthenticationType::CustomAuthX509),
                ..create_req("d", "iot.example.test", &arn)
            },
            "InvalidRequestException",
        ),
        (
            CreateDomainConfigurationRequest {
                service_type: Some(ServiceType::Jobs),
                ..create_req("d", "iot.example.test", &arn)
            },
            "InvalidRequestException",
        ),
        (
            CreateDomainConfigurationRequest {
                authorizer_config: Some(AuthorizerConfig {
                    default_authorizer_name: Some("missing".into()),
                    allow_authorizer_override: None,
                }),
                ..create_req("d", "iot.example.test", &arn)
            },
            "InvalidRequestException",
        ),
        (
            CreateDomainConfigurationRequest {
                tls_config: Some(TlsConfig {
                    security_policy: Some("TLS1.0".into()),
                }),
                ..create_req("d", "iot.example.test", &arn)
            },
            "InvalidRequestException",
        ),
    ];
    for (req, expected) in cases {
        let shown = format!("{req:?}");
        assert_eq!(code(create(&mut s, req).unwrap_err()), expected, "{shown}");
    }
    create(&mut s, create_req("d", "iot.example.test", &arn)).unwrap();
    let err = create(&mut s, create_req("d", "iot.example.test", &arn)).unwrap_err();
    assert_eq!(code(err), "ResourceAlreadyExistsException");
    let err = create(&mut s, create_req("e", "IOT.example.test", &arn)).unwrap_err();
    assert_eq!(
        code(err),
        "ResourceAlreadyExistsException",
        "same domain name"
    );
}

#[test]
fn update_authorizer_config_status_and_delete_only_when_disabled() {
    let mut s = RegistryState::default();
    add_authorizer(&mut s, "hook");
    let arn = import(&mut s, None, &server_cert(&["iot.example.test"])).unwrap();
    create(&mut s, create_req("d", "iot.example.test", &arn)).unwrap();
    update(
        &mut s,
        UpdateDomainConfigurationRequest {
            domain_configuration_name: "d".into(),
            authorizer_config: Some(AuthorizerConfig {
                default_authorizer_name: Some("hook".into()),
                allow_authorizer_override: Some(false),
            }),
            authentication_type: Some(AuthenticationType::CustomAuth),
            application_protocol: Some(ApplicationProtocol::SecureMqtt),
            ..Default::default()
        },
    )
    .unwrap();
    let d = s.domain_for_server_name(Some("IOT.example.test")).unwrap();
    assert_eq!(d.default_authorizer(), Some("hook"));
    assert!(!d.allows_authorizer_override());
    assert_eq!(d.authentication_type, AuthenticationType::CustomAuth);
    assert!(
        s.domain_for_server_name(Some("other.example.test"))
            .is_none()
    );
    assert!(s.domain_for_server_name(None).is_none());

    let err = run(&mut s, |s, c| delete_domain_configuration(s, c, "d")).unwrap_err();
    assert_eq!(code(err), "InvalidRequestException", "ENABLED");
    let remove_and_set = UpdateDomainConfigurationRequest {
        domain_configuration_name: "d".into(),
        authorizer_config: Some(AuthorizerConfig::default()),
        remove_authorizer_config: Some(true),
        ..Default::default()
    };
    assert_eq!(
        code(update(&mut s, remove_and_set).unwrap_err()),
        "InvalidRequestException"
    );
    update(
        &mut s,
        UpdateDomainConfigurationRequest {
            domain_configuration_name: "d".into(),
            domain_configuration_status: Some(DomainConfigurationStatus::Disabled),
            remove_authorizer_config: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    let d = describe(&s, "d");
    assert_eq!(
        d.domain_configuration_status,
        DomainConfigurationStatus::Disabled
    );
    assert!(d.authorizer_config.is_none());
    run(&mut s, |s, c| delete_domain_configuration(s, c, "d")).unwrap();
    assert_eq!(
        code(describe_domain_configuration(&s, &ctx(), "d", "e").unwrap_err()),
        "ResourceNotFoundException"
    );
    run(&mut s, |s, c| delete_server_certificate(s, c, &arn)).unwrap();
}

#[test]
fn the_builtin_endpoint_is_updatable_but_never_disabled_or_deleted() {
    let mut s = RegistryState::default();
    add_authorizer(&mut s, "hook");
    let err = update(
        &mut s,
        UpdateDomainConfigurationRequest {
            domain_configuration_name: DEFAULT_ENDPOINT_DOMAIN.into(),
            domain_configuration_status: Some(DomainConfigurationStatus::Disabled),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(code(err), "InvalidRequestException");
    update(
        &mut s,
        UpdateDomainConfigurationRequest {
            domain_configuration_name: DEFAULT_ENDPOINT_DOMAIN.into(),
            authorizer_config: Some(AuthorizerConfig {
                default_authorizer_name: Some("hook".into()),
                allow_authorizer_override: Some(true),
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let applies = s
        .domain_for_server_name(Some("anything.example.test"))
        .unwrap();
    assert_eq!(applies.default_authorizer(), Some("hook"));
    assert!(applies.allows_authorizer_override());
    let err = run(&mut s, |s, c| {
        delete_domain_configuration(s, c, DEFAULT_ENDPOINT_DOMAIN)
    })
    .unwrap_err();
    assert_eq!(code(err), "InvalidRequestException");
}

#[tokio::test]
async fn records_survive_a_restart_of_the_registry() {
    use ferrocore_store::{Durability, Store};
    let dir = std::env::temp_dir().join(format!("ferrocore-domains-{}", uuid_v4().unwrap()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let pair = server_cert(&["iot.example.test"]);
    let arns = ctx().arns;
    {
        let store = Store::open_sqlite(&path, Durability::Process)
            .await
            .unwrap();
        let registry = Registry::open(store.clone(), arns.clone()).await.unwrap();
        let req = ImportServerCertificateRequest {
            certificate_arn: None,
            certificate: pair.0.as_bytes().to_vec(),
            private_key: pair.1.as_bytes().to_vec(),
            certificate_chain: None,
        };
        let arn = registry
            .write(|s, c| import_server_certificate(s, c, req))
            .await
            .unwrap();
        registry
            .write(|s, c| {
                create_domain_configuration(s, c, create_req("d", "iot.example.test", &arn))
            })
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    let store = Store::open_sqlite(&path, Durability::Process)
        .await
        .unwrap();
    let registry = Registry::open(store, arns).await.unwrap();
    let (domain, key_ok) = registry.read(|s| {
        let d = s.domain_for_server_name(Some("iot.example.test")).cloned();
        let ok = s
            .server_certificates
            .values()
            .all(|c| c.certified_key().is_ok());
        (d, ok)
    });
    assert_eq!(domain.unwrap().name, "d");
    assert!(key_ok);
    let _ = std::fs::remove_dir_all(&dir);
}
