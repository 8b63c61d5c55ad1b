#![allow(clippy::unwrap_used)]

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};

use super::*;
use crate::registry::tests::{ctx, run};
use crate::registry::{CreateThingRequest, RegistryRecord, WriteOp, create_thing};
use crate::testing::{TestCa, csr_pem, ten_years};
use crate::x509::Validity;

/// `ctx()`'s time in Unix seconds.
const NOW: i64 = 1_700_000_000;

fn make_ca(cn: &str) -> TestCa {
    TestCa::new(cn, ten_years(NOW))
}

/// A device certificate `ca` signs, valid from an hour ago for a year.
fn sign(ca: &TestCa, cn: &str) -> String {
    sign_valid(ca, cn, NOW - 3600, NOW + 365 * 86_400)
}

fn sign_valid(ca: &TestCa, cn: &str, not_before: i64, not_after: i64) -> String {
    ca.sign(
        cn,
        Validity {
            not_before,
            not_after,
        },
    )
}

fn code(s: &mut RegistryState) -> String {
    run(s, get_registration_code).unwrap().registration_code
}

/// Registers `ca` in DEFAULT mode (active unless told otherwise).
fn register_ca(s: &mut RegistryState, ca: &TestCa, active: bool) -> CertificateRegistered {
    let code = code(s);
    let req = RegisterCaCertificateRequest {
        ca_certificate: Some(ca.cert.pem.clone()),
        verification_certificate: Some(sign(ca, &code)),
        set_as_active: active,
        ..Default::default()
    };
    run(s, |s, c| register_ca_certificate(s, c, req)).unwrap()
}

fn register_device(s: &mut RegistryState, pem: &str, status: &str) -> CertificateRegistered {
    let req = RegisterCertificateRequest {
        certificate_pem: Some(pem.to_owned()),
        status: Some(status.to_owned()),
        ..Default::default()
    };
    run(s, |s, c| register_certificate(s, c, req)).unwrap()
}

fn make_thing(s: &mut RegistryState, name: &str) {
    let req = CreateThingRequest {
        thing_name: name.into(),
        ..Default::default()
    };
    run(s, |s, c| create_thing(s, c, req)).unwrap();
}

fn code_of(e: RegistryError) -> &'static str {
    e.aws_error_code()
}

/// Runs `op` as [`run`] does, at `now_ms`.
fn run_at<T>(
    s: &mut RegistryState,
    now_ms: i64,
    op: impl FnOnce(&RegistryState, &Ctx) -> Result<(T, Vec<Change>), RegistryError>,
) -> Result<T, RegistryError> {
    let c = Ctx { now_ms, ..ctx() };
    let (answer, changes) = op(s, &c)?;
    s.apply(&changes);
    Ok(answer)
}

#[test]
fn issued_certificates_are_recorded_without_their_keys() {
    let mut s = RegistryState::default();
    let device_ca = make_ca("Ferrocore device CA");
    let signer = device_ca.signer();
    let cert = issue_from_csr(&csr_pem("sensor-1"), &signer, NOW).unwrap();
    assert_eq!(cert.not_after, x509::AWS_NOT_AFTER);
    let created = run(&mut s, |s, c| {
        record_issued_certificate(s, c, &cert, signer.certificate(), true)
    })
    .unwrap();
    assert_eq!(
        created.certificate_arn,
        format!("arn:aws:iot:us-east-1:123456789012:cert/{}", cert.id)
    );
    let record = &s.certificates[&cert.id];
    assert_eq!(record.status, CertificateStatus::Active);
    assert_eq!(record.ca_certificate_id, None);
    assert_eq!(record.mode, CertificateMode::Default);
    assert_eq!(record.customer_version, 1);
    assert!(!record.pem.contains("PRIVATE KEY"));

    // The same certificate again.
    let err = run(&mut s, |s, c| {
        record_issued_certificate(s, c, &cert, signer.certificate(), false)
    })
    .unwrap_err();
    assert_eq!(
        err,
        RegistryError::ResourceAlreadyExists {
            message: "The certificate is already registered.".into(),
            resource_id: Some(cert.id.clone()),
            resource_arn: Some(created.certificate_arn.clone()),
        }
    );

    // Once the device CA is registered, what it issues names it.
    register_ca(&mut s, &device_ca, true);
    let second = issue_from_csr(&csr_pem("sensor-2"), &signer, NOW).unwrap();
    run(&mut s, |s, c| {
        record_issued_certificate(s, c, &second, signer.certificate(), false)
    })
    .unwrap();
    let record = &s.certificates[&second.id];
    assert_eq!(record.status, CertificateStatus::Inactive);
    assert_eq!(record.ca_certificate_id, Some(device_ca.cert.id.clone()));
}

#[test]
fn malformed_csrs_are_invalid_requests() {
    let signer = make_ca("CA").signer();
    for bad in [
        "",
        "hello",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ] {
        let err = issue_from_csr(bad, &signer, NOW).unwrap_err();
        assert_eq!(code_of(err.clone()), "InvalidRequestException", "{bad:?}");
        assert!(
            err.to_string().contains("certificate signing request"),
            "{err}"
        );
    }
}

#[test]
fn keys_and_certificate_response_shape_and_debug() {
    let signer = std::sync::Arc::new(make_ca("CA").signer());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys = rt
        .block_on(issue_keys_and_certificate(signer, NOW))
        .unwrap();
    let created = CertificateCreated {
        certificate_arn: "arn".into(),
        certificate_id: keys.certificate.id.clone(),
        certificate_pem: keys.certificate.pem.clone(),
    };
    let answer = CreateKeysAndCertificateResponse::new(created, &keys);
    let json = serde_json::to_value(&answer).unwrap();
    let mut members: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    members.sort();
    assert_eq!(
        members,
        [
            "certificateArn",
            "certificateId",
            "certificatePem",
            "keyPair"
        ]
    );
    assert!(
        json["keyPair"]["PrivateKey"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY")
    );
    assert!(
        json["keyPair"]["PublicKey"]
            .as_str()
            .unwrap()
            .contains("PUBLIC KEY")
    );
    let debug = format!("{answer:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    assert!(debug.contains("redacted"));
}

#[test]
fn registration_code_is_stable_until_deleted() {
    let mut s = RegistryState::default();
    let first = code(&mut s);
    assert_eq!(first.len(), 64);
    assert_eq!(code(&mut s), first);
    run(&mut s, delete_registration_code).unwrap();
    assert_eq!(s.registration_code, None);
    run(&mut s, delete_registration_code).unwrap();
    assert_ne!(code(&mut s), first);
}

#[test]
fn ca_registration_rules() {
    let mut s = RegistryState::default();
    let ca = make_ca("Customer CA");
    let req = |verification: Option<String>, mode: Option<&str>| RegisterCaCertificateRequest {
        ca_certificate: Some(ca.cert.pem.clone()),
        verification_certificate: verification,
        certificate_mode: mode.map(str::to_owned),
        ..Default::default()
    };
    // No registration code made yet.
    let err = run(&mut s, |s, c| {
        register_ca_certificate(s, c, req(Some(sign(&ca, "whatever")), None))
    })
    .unwrap_err();
    assert_eq!(code_of(err), "RegistrationCodeValidationException");
    let code = code(&mut s);
    // Wrong CN.
    let err = run(&mut s, |s, c| {
        register_ca_certificate(s, c, req(Some(sign(&ca, "not-the-code")), None))
    })
    .unwrap_err();
    assert_eq!(code_of(err), "RegistrationCodeValidationException");
    // Signed by another key.
    let other = make_ca("Customer CA");
    let err = run(&mut s, |s, c| {
        register_ca_certificate(s, c, req(Some(sign(&other, &code)), None))
    })
    .unwrap_err();
    assert_eq!(code_of(err.clone()), "CertificateValidationException");
    assert!(
        err.to_string().contains("verification certificate"),
        "{err}"
    );
    // DEFAULT needs a verification certificate; SNI_ONLY forbids one.
    let err = run(&mut s, |s, c| {
        register_ca_certificate(s, c, req(None, None))
    })
    .unwrap_err();
    assert_eq!(code_of(err), "InvalidRequestException");
    let err = run(&mut s, |s, c| {
        register_ca_certificate(s, c, req(Some(sign(&ca, &code)), Some("SNI_ONLY")))
    })
    .unwrap_err();
    assert_eq!(code_of(err), "InvalidRequestException");
    let err = run(&mut s, |s, c| {
        register_ca_certificate(s, c, req(None, Some("SOMETIMES")))
    })
    .unwrap_err();
    assert_eq!(code_of(err), "InvalidRequestException");
    // Not a CA, not a certificate.
    let leaf = sign(&ca, "leaf");
    for bad in [leaf.as_str(), "garbage", ""] {
        let r = RegisterCaCertificateRequest {
            ca_certificate: Some(bad.to_owned()),
            certificate_mode: Some("SNI_ONLY".into()),
            ..Default::default()
        };
        let err = run(&mut s, |s, c| register_ca_certificate(s, c, r)).unwrap_err();
        let expected = if bad.is_empty() {
            "InvalidRequestException"
        } else {
            "CertificateValidationException"
        };
        assert_eq!(code_of(err), expected, "{bad:?}");
    }

    let mut good = req(Some(sign(&ca, &code)), None);
    good.allow_auto_registration = true;
    good.registration_config = Some(RegistrationConfig {
        template_name: Some("jitp".into()),
        ..Default::default()
    });
    let registered = run(&mut s, |s, c| register_ca_certificate(s, c, good.clone())).unwrap();
    assert_eq!(registered.certificate_id, ca.cert.id.clone());
    assert_eq!(
        registered.certificate_arn,
        format!("arn:aws:iot:us-east-1:123456789012:cacert/{}", ca.cert.id)
    );
    let d = describe_ca_certificate(&s, &ctx(), &ca.cert.id).unwrap();
    assert_eq!(d.certificate_description.status, CaStatus::Inactive);
    assert_eq!(
        d.certificate_description.auto_registration_status,
        AutoRegistrationStatus::Enable
    );
    assert_eq!(
        d.certificate_description.certificate_mode,
        CertificateMode::Default
    );
    assert_eq!(
        d.registration_config.unwrap().template_name.as_deref(),
        Some("jitp")
    );
    let json =
        serde_json::to_value(describe_ca_certificate(&s, &ctx(), &ca.cert.id).unwrap()).unwrap();
    assert_eq!(
        json["certificateDescription"]["autoRegistrationStatus"],
        "ENABLE"
    );
    assert_eq!(json["registrationConfig"]["templateName"], "jitp");
    assert_eq!(
        json["certificateDescription"]["creationDate"],
        serde_json::json!(1_700_000_000.0)
    );

    // Twice.
    let err = run(&mut s, |s, c| register_ca_certificate(s, c, good)).unwrap_err();
    match err {
        RegistryError::ResourceAlreadyExists {
            resource_id,
            resource_arn,
            ..
        } => {
            assert_eq!(resource_id, Some(ca.cert.id.clone()));
            assert_eq!(resource_arn, Some(registered.certificate_arn));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn at_most_ten_cas_share_a_subject() {
    let mut s = RegistryState::default();
    for _ in 0..MAX_CAS_PER_SUBJECT {
        register_ca(&mut s, &make_ca("Same"), false);
    }
    let eleventh = make_ca("Same");
    let code = code(&mut s);
    let req = RegisterCaCertificateRequest {
        ca_certificate: Some(eleventh.cert.pem.clone()),
        verification_certificate: Some(sign(&eleventh, &code)),
        ..Default::default()
    };
    let err = run(&mut s, |s, c| register_ca_certificate(s, c, req)).unwrap_err();
    assert_eq!(err.aws_error_code(), "LimitExceededException");
    assert_eq!(err.http_status(), 410);
    register_ca(&mut s, &make_ca("Other"), false);
}

#[test]
fn device_certificates_register_under_their_ca() {
    let mut s = RegistryState::default();
    let ca = make_ca("Fleet CA");
    let device = sign(&ca, "device-1");
    let req = |pem: &str, ca_pem: Option<&str>| RegisterCertificateRequest {
        certificate_pem: Some(pem.to_owned()),
        ca_certificate_pem: ca_pem.map(str::to_owned),
        ..Default::default()
    };
    // CA not registered, by name or by PEM.
    let err = run(&mut s, |s, c| {
        register_certificate(s, c, req(&device, None))
    })
    .unwrap_err();
    assert_eq!(code_of(err), "CertificateValidationException");
    let err = run(&mut s, |s, c| {
        register_certificate(s, c, req(&device, Some(&ca.cert.pem)))
    })
    .unwrap_err();
    assert_eq!(code_of(err.clone()), "CertificateValidationException");
    assert!(err.to_string().contains("not registered"), "{err}");

    let ca_id = register_ca(&mut s, &ca, true).certificate_id;
    let registered = run(&mut s, |s, c| {
        register_certificate(s, c, req(&device, None))
    })
    .unwrap();
    let record = &s.certificates[&registered.certificate_id];
    assert_eq!(record.ca_certificate_id.as_deref(), Some(ca_id.as_str()));
    assert_eq!(record.status, CertificateStatus::Inactive);
    assert_eq!(record.mode, CertificateMode::Default);
    assert_eq!(record.subject, "CN=device-1");

    // Again: already exists, with its id and ARN.
    let err = run(&mut s, |s, c| {
        register_certificate(s, c, req(&device, None))
    })
    .unwrap_err();
    assert_eq!(code_of(err), "ResourceAlreadyExistsException");

    // With the CA's PEM; setAsActive wins over status.
    let second = sign(&ca, "device-2");
    let mut r = req(&second, Some(&ca.cert.pem));
    r.set_as_active = true;
    r.status = Some("INACTIVE".into());
    let id = run(&mut s, |s, c| register_certificate(s, c, r))
        .unwrap()
        .certificate_id;
    assert_eq!(s.certificates[&id].status, CertificateStatus::Active);

    // Signed by another CA than the PEM given.
    let other = make_ca("Other CA");
    register_ca(&mut s, &other, true);
    let err = run(&mut s, |s, c| {
        register_certificate(s, c, req(&sign(&ca, "device-3"), Some(&other.cert.pem)))
    })
    .unwrap_err();
    assert_eq!(code_of(err), "CertificateValidationException");

    // Statuses AWS keeps to itself; unknown ones; a status to start REVOKED.
    for (status, expected) in [
        ("PENDING_ACTIVATION", "InvalidRequestException"),
        ("PENDING_TRANSFER", "InvalidRequestException"),
        ("SLEEPING", "InvalidRequestException"),
    ] {
        let mut r = req(&sign(&ca, "device-4"), None);
        r.status = Some(status.into());
        let err = run(&mut s, |s, c| register_certificate(s, c, r)).unwrap_err();
        assert_eq!(code_of(err), expected, "{status}");
    }
    let revoked = register_device(&mut s, &sign(&ca, "device-5"), "REVOKED");
    assert_eq!(
        s.certificates[&revoked.certificate_id].status,
        CertificateStatus::Revoked
    );

    // Expired, malformed, missing.
    let expired = sign_valid(&ca, "old", NOW - 10 * 86_400, NOW - 86_400);
    for (pem, expected) in [
        (expired.as_str(), "CertificateValidationException"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "CertificateValidationException",
        ),
        ("", "InvalidRequestException"),
    ] {
        let err = run(&mut s, |s, c| register_certificate(s, c, req(pem, None))).unwrap_err();
        assert_eq!(code_of(err.clone()), expected, "{pem:?}: {err}");
    }
}

#[test]
fn device_certificates_inherit_an_sni_only_cas_mode() {
    let mut s = RegistryState::default();
    let ca = make_ca("SNI CA");
    let req = RegisterCaCertificateRequest {
        ca_certificate: Some(ca.cert.pem.clone()),
        certificate_mode: Some("SNI_ONLY".into()),
        set_as_active: true,
        ..Default::default()
    };
    run(&mut s, |s, c| register_ca_certificate(s, c, req)).unwrap();
    assert_eq!(s.registration_code, None);
    let id = register_device(&mut s, &sign(&ca, "d"), "ACTIVE").certificate_id;
    assert_eq!(s.certificates[&id].mode, CertificateMode::SniOnly);
}

#[test]
fn two_cas_with_one_subject_and_key_conflict() {
    let mut s = RegistryState::default();
    let key_pem = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem();
    let a = TestCa::with_key("Twin", KeyPair::from_pem(&key_pem).unwrap(), ten_years(NOW));
    let b = TestCa::with_key("Twin", KeyPair::from_pem(&key_pem).unwrap(), ten_years(NOW));
    assert_ne!(a.cert.id.clone(), b.cert.id.clone());
    register_ca(&mut s, &a, true);
    register_ca(&mut s, &b, true);
    let device = sign(&a, "twin-device");
    let req = RegisterCertificateRequest {
        certificate_pem: Some(device.clone()),
        ..Default::default()
    };
    let err = run(&mut s, |s, c| register_certificate(s, c, req)).unwrap_err();
    assert_eq!(err.aws_error_code(), "CertificateConflictException");
    assert_eq!(err.http_status(), 409);
    let req = RegisterCertificateRequest {
        certificate_pem: Some(device),
        ca_certificate_pem: Some(b.cert.pem.clone()),
        ..Default::default()
    };
    let id = run(&mut s, |s, c| register_certificate(s, c, req))
        .unwrap()
        .certificate_id;
    assert_eq!(
        s.certificates[&id].ca_certificate_id,
        Some(b.cert.id.clone())
    );
}

#[test]
fn certificates_without_a_ca_are_sni_only() {
    let mut s = RegistryState::default();
    let ca = make_ca("Unregistered");
    let req = |pem: String, status: Option<&str>| RegisterCertificateWithoutCaRequest {
        certificate_pem: Some(pem),
        status: status.map(str::to_owned),
    };
    let id = run(&mut s, |s, c| {
        register_certificate_without_ca(s, c, req(sign(&ca, "x"), Some("ACTIVE")))
    })
    .unwrap()
    .certificate_id;
    let d = describe_certificate(&s, &ctx(), &id)
        .unwrap()
        .certificate_description;
    assert_eq!(d.certificate_mode, CertificateMode::SniOnly);
    assert_eq!(d.ca_certificate_id, None);
    assert_eq!(d.status, CertificateStatus::Active);
    let expired = sign_valid(&ca, "old", NOW - 10 * 86_400, NOW - 86_400);
    let err = run(&mut s, |s, c| {
        register_certificate_without_ca(s, c, req(expired, None))
    })
    .unwrap_err();
    assert_eq!(code_of(err), "CertificateValidationException");
    let future = sign_valid(&ca, "later", NOW + 86_400, NOW + 10 * 86_400);
    let err = run(&mut s, |s, c| {
        register_certificate_without_ca(s, c, req(future, None))
    })
    .unwrap_err();
    assert_eq!(code_of(err), "CertificateValidationException");
}

#[test]
fn describe_certificate_has_every_member() {
    let mut s = RegistryState::default();
    let ca = make_ca("CA");
    register_ca(&mut s, &ca, true);
    let pem = sign(&ca, "d");
    let id = register_device(&mut s, &pem, "ACTIVE").certificate_id;
    let json = serde_json::to_value(describe_certificate(&s, &ctx(), &id).unwrap()).unwrap();
    let d = &json["certificateDescription"];
    let mut members: Vec<_> = d.as_object().unwrap().keys().cloned().collect();
    members.sort();
    assert_eq!(
        members,
        [
            "caCertificateId",
            "certificateArn",
            "certificateId",
            "certificateMode",
            "certificatePem",
            "creationDate",
            "customerVersion",
            "generationId",
            "lastModifiedDate",
            "ownedBy",
            "status",
            "validity",
        ]
    );
    assert_eq!(d["ownedBy"], "123456789012");
    assert_eq!(d["status"], "ACTIVE");
    assert_eq!(d["certificateMode"], "DEFAULT");
    assert_eq!(
        d["validity"]["notBefore"],
        serde_json::json!((NOW - 3600) as f64)
    );
    assert_eq!(d["certificatePem"], pem.replace("\r\n", "\n"));

    // Ids: 64 hex digits, any case.
    let upper = id.to_ascii_uppercase();
    assert!(describe_certificate(&s, &ctx(), &upper).is_ok());
    for bad in ["", "abc", &"g".repeat(64), &"a".repeat(65)] {
        let err = describe_certificate(&s, &ctx(), bad).unwrap_err();
        assert_eq!(code_of(err), "InvalidRequestException", "{bad:?}");
    }
    let err = describe_certificate(&s, &ctx(), &"0".repeat(64)).unwrap_err();
    assert_eq!(err.http_status(), 404);
}

#[test]
fn update_certificate_status_rules() {
    let mut s = RegistryState::default();
    let ca = make_ca("CA");
    register_ca(&mut s, &ca, true);
    let id = register_device(&mut s, &sign(&ca, "d"), "INACTIVE").certificate_id;
    let update = |s: &mut RegistryState, status: &str| {
        let id = id.clone();
        let status = status.to_owned();
        run(s, move |s, c| update_certificate(s, c, &id, &status))
    };
    let generation = s.certificates[&id].generation_id.clone();
    update(&mut s, "ACTIVE").unwrap();
    let record = &s.certificates[&id];
    assert_eq!(record.status, CertificateStatus::Active);
    assert_eq!(record.customer_version, 2);
    assert_ne!(record.generation_id, generation);
    // Idempotent: the same status changes nothing.
    let (_, changes) = update_certificate(&s, &ctx(), &id, "ACTIVE").unwrap();
    assert!(changes.is_empty());
    for internal in ["PENDING_TRANSFER", "PENDING_ACTIVATION", "NOPE"] {
        let err = update(&mut s, internal).unwrap_err();
        assert_eq!(code_of(err), "InvalidRequestException", "{internal}");
    }
    update(&mut s, "INACTIVE").unwrap();
    update(&mut s, "REGISTER_INACTIVE").unwrap();
    update(&mut s, "REVOKED").unwrap();
    update(&mut s, "REVOKED").unwrap();
    for next in ["ACTIVE", "INACTIVE"] {
        let err = update(&mut s, next).unwrap_err();
        assert_eq!(code_of(err.clone()), "CertificateStateException");
        assert_eq!(err.http_status(), 406);
    }
    assert_eq!(s.certificates[&id].status, CertificateStatus::Revoked);
    let err = run(&mut s, |s, c| {
        update_certificate(s, c, &"1".repeat(64), "ACTIVE")
    })
    .unwrap_err();
    assert_eq!(code_of(err), "ResourceNotFoundException");
}

#[test]
fn delete_certificate_rules() {
    let mut s = RegistryState::default();
    let ca = make_ca("CA");
    register_ca(&mut s, &ca, true);
    let registered = register_device(&mut s, &sign(&ca, "d"), "ACTIVE");
    let id = registered.certificate_id.clone();
    let err = run(&mut s, |s, c| delete_certificate(s, c, &id, false)).unwrap_err();
    assert_eq!(code_of(err), "CertificateStateException");
    run(&mut s, |s, c| update_certificate(s, c, &id, "INACTIVE")).unwrap();
    make_thing(&mut s, "lamp");
    let arn = registered.certificate_arn.clone();
    run(&mut s, |s, c| {
        attach_thing_principal(s, c, "lamp", Some(&arn), None)
    })
    .unwrap();
    for force in [false, true] {
        let err = run(&mut s, |s, c| delete_certificate(s, c, &id, force)).unwrap_err();
        assert_eq!(code_of(err.clone()), "DeleteConflictException");
        assert!(err.to_string().contains("lamp"), "{err}");
    }
    run(&mut s, |s, c| {
        detach_thing_principal(s, c, "lamp", Some(&arn))
    })
    .unwrap();
    run(&mut s, |s, c| delete_certificate(s, c, &id, false)).unwrap();
    assert!(!s.certificates.contains_key(&id));
    let err = run(&mut s, |s, c| delete_certificate(s, c, &id, false)).unwrap_err();
    assert_eq!(code_of(err), "ResourceNotFoundException");
}

#[test]
fn listings_page_by_creation_date() {
    let mut s = RegistryState::default();
    let ca = make_ca("CA");
    let ca_id = register_ca(&mut s, &ca, true).certificate_id;
    let base = ctx().now_ms;
    let mut ids = Vec::new();
    for i in 0..7_i64 {
        let pem = sign(&ca, &format!("d{i}"));
        let req = RegisterCertificateRequest {
            certificate_pem: Some(pem),
            ..Default::default()
        };
        // Two certificates per millisecond: the id breaks the tie.
        let id = run_at(&mut s, base + 1000 + i / 2, |s, c| {
            register_certificate(s, c, req)
        })
        .unwrap()
        .certificate_id;
        ids.push((base + 1000 + i / 2, id));
    }
    let other = make_ca("Other");
    let unrelated = run_at(&mut s, base + 5000, |s, c| {
        register_certificate_without_ca(
            s,
            c,
            RegisterCertificateWithoutCaRequest {
                certificate_pem: Some(sign(&other, "x")),
                status: None,
            },
        )
    })
    .unwrap()
    .certificate_id;
    ids.sort();
    let ascending: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();

    let walk = |s: &RegistryState, asc: bool, size: usize, by_ca: bool| {
        let mut marker = None;
        let mut seen = Vec::new();
        loop {
            let page = MarkerPage {
                page_size: Some(size),
                marker: marker.clone(),
                ascending: asc,
            };
            let answer = if by_ca {
                list_certificates_by_ca(s, &ctx(), &ca_id, &page).unwrap()
            } else {
                list_certificates(s, &ctx(), &page).unwrap()
            };
            assert!(answer.certificates.len() <= size);
            seen.extend(answer.certificates.into_iter().map(|c| c.certificate_id));
            match answer.next_marker {
                Some(m) => marker = Some(m),
                None => return seen,
            }
        }
    };
    for size in [1, 2, 3, 7, 250] {
        assert_eq!(walk(&s, true, size, true), ascending, "size {size}");
        let mut descending = ascending.clone();
        descending.reverse();
        assert_eq!(walk(&s, false, size, true), descending, "size {size}");
    }
    // The unrelated one was registered last: first when newest first.
    let all = walk(&s, false, 3, false);
    assert_eq!(all.len(), 8);
    assert_eq!(all[0], unrelated);
    // Default: 25 per page, newest first.
    let answer = list_certificates(&s, &ctx(), &MarkerPage::default()).unwrap();
    assert_eq!(answer.certificates.len(), 8);
    assert_eq!(answer.next_marker, None);
    assert_eq!(answer.certificates[0].certificate_id, unrelated);
    // Bad sizes and markers.
    for page in [
        MarkerPage {
            page_size: Some(0),
            ..Default::default()
        },
        MarkerPage {
            page_size: Some(251),
            ..Default::default()
        },
        MarkerPage {
            marker: Some("zz".into()),
            ..Default::default()
        },
        MarkerPage {
            marker: Some(encode_token("no-slash")),
            ..Default::default()
        },
    ] {
        let err = list_certificates(&s, &ctx(), &page).unwrap_err();
        assert_eq!(code_of(err), "InvalidRequestException", "{page:?}");
    }
    // An unknown CA lists nothing.
    let none =
        list_certificates_by_ca(&s, &ctx(), &"f".repeat(64), &MarkerPage::default()).unwrap();
    assert!(none.certificates.is_empty());
}

#[test]
fn ca_updates_listing_and_deletion() {
    let mut s = RegistryState::default();
    let a = make_ca("A");
    let b = make_ca("B");
    let a_id = register_ca(&mut s, &a, true).certificate_id;
    let b_id = run_at(&mut s, ctx().now_ms + 5, |s, c| {
        let code = s.registration_code.clone().unwrap();
        register_ca_certificate(
            s,
            c,
            RegisterCaCertificateRequest {
                ca_certificate: Some(b.cert.pem.clone()),
                verification_certificate: Some(sign(&b, &code)),
                ..Default::default()
            },
        )
    })
    .unwrap()
    .certificate_id;
    let update = |s: &mut RegistryState, id: &str, req: UpdateCaCertificateRequest| {
        let id = id.to_owned();
        run(s, move |s, c| update_ca_certificate(s, c, &id, req))
    };
    update(
        &mut s,
        &b_id,
        UpdateCaCertificateRequest {
            new_auto_registration_status: Some("ENABLE".into()),
            registration_config: Some(RegistrationConfig {
                template_name: Some("tmpl".into()),
                role_arn: Some("arn:aws:iam::123456789012:role/jitp".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let record = &s.ca_certificates[&b_id];
    assert!(record.auto_registration);
    assert_eq!(record.customer_version, 2);

    // Newest first by default; the template filter.
    let list = |s: &RegistryState, q: ListCaCertificatesQuery| {
        list_ca_certificates(s, &ctx(), &q)
            .unwrap()
            .certificates
            .into_iter()
            .map(|c| c.certificate_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(&s, ListCaCertificatesQuery::default()),
        [b_id.clone(), a_id.clone()]
    );
    assert_eq!(
        list(
            &s,
            ListCaCertificatesQuery {
                ascending: true,
                ..Default::default()
            }
        ),
        [a_id.clone(), b_id.clone()]
    );
    assert_eq!(
        list(
            &s,
            ListCaCertificatesQuery {
                template_name: Some("tmpl".into()),
                ..Default::default()
            }
        ),
        std::slice::from_ref(&b_id)
    );
    let page = list_ca_certificates(
        &s,
        &ctx(),
        &ListCaCertificatesQuery {
            page_size: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(page.certificates.len(), 1);
    assert!(page.next_marker.is_some());

    update(
        &mut s,
        &b_id,
        UpdateCaCertificateRequest {
            remove_auto_registration: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.ca_certificates[&b_id].registration_config, None);
    // Nothing to change: no change.
    let (_, changes) = update_ca_certificate(
        &s,
        &ctx(),
        &b_id,
        UpdateCaCertificateRequest {
            new_status: Some("INACTIVE".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(changes.is_empty());
    for bad in [
        UpdateCaCertificateRequest {
            new_status: Some("REVOKED".into()),
            ..Default::default()
        },
        UpdateCaCertificateRequest {
            new_auto_registration_status: Some("MAYBE".into()),
            ..Default::default()
        },
        UpdateCaCertificateRequest {
            remove_auto_registration: true,
            registration_config: Some(RegistrationConfig::default()),
            ..Default::default()
        },
        UpdateCaCertificateRequest {
            registration_config: Some(RegistrationConfig {
                template_name: Some("no spaces".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    ] {
        let err = update(&mut s, &b_id, bad).unwrap_err();
        assert_eq!(code_of(err), "InvalidRequestException");
    }

    // A device certificate under A; deleting A needs it INACTIVE, and leaves the device
    // certificate (naming A) in place.
    let device = register_device(&mut s, &sign(&a, "d"), "ACTIVE").certificate_id;
    let err = run(&mut s, |s, c| delete_ca_certificate(s, c, &a_id)).unwrap_err();
    assert_eq!(code_of(err), "CertificateStateException");
    update(
        &mut s,
        &a_id,
        UpdateCaCertificateRequest {
            new_status: Some("INACTIVE".into()),
            ..Default::default()
        },
    )
    .unwrap();
    run(&mut s, |s, c| delete_ca_certificate(s, c, &a_id)).unwrap();
    assert!(!s.ca_certificates.contains_key(&a_id));
    assert_eq!(
        s.certificates[&device].ca_certificate_id.as_deref(),
        Some(a_id.as_str())
    );
    let err = describe_ca_certificate(&s, &ctx(), &a_id).unwrap_err();
    assert_eq!(code_of(err), "ResourceNotFoundException");
}

#[test]
fn crls_attach_replace_and_detach() {
    let mut s = RegistryState::default();
    let ca = make_ca("CRL CA");
    let id = register_ca(&mut s, &ca, true).certificate_id;
    let put = |s: &mut RegistryState, pem: String| {
        let id = id.clone();
        run(s, move |s, c| {
            put_ca_crl(s, c, &id, PutCaCrlRequest { crl_pem: Some(pem) })
        })
    };
    let err = describe_ca_crl(&s, &ctx(), &id).unwrap_err();
    assert_eq!(code_of(err), "ResourceNotFoundException");

    let first = ca.crl(2, NOW - 600, &[&[0x01, 0x02], &[0x03]]);
    let answer = put(&mut s, first.clone()).unwrap();
    assert_eq!(answer.revoked_count, 2);
    assert_eq!(answer.crl_number.as_deref(), Some("02"));
    assert_eq!(answer.this_update, (NOW - 600) as f64);
    assert_eq!(answer.next_update, Some((NOW - 600 + 86_400) as f64));
    assert_eq!(describe_ca_crl(&s, &ctx(), &id).unwrap(), answer);
    let json = serde_json::to_value(&answer).unwrap();
    for member in ["crlPem", "thisUpdate", "nextUpdate", "revokedCount"] {
        assert!(json.get(member).is_some(), "{member}");
    }

    // An older CRL (lower number) is refused; a newer one replaces it.
    let err = put(&mut s, ca.crl(1, NOW - 300, &[])).unwrap_err();
    assert_eq!(code_of(err), "InvalidRequestException");
    let newer = put(&mut s, ca.crl(3, NOW - 300, &[&[0x05]])).unwrap();
    assert_eq!(newer.revoked_count, 1);

    // Another CA's CRL, garbage, nothing.
    let other = make_ca("CRL CA");
    for (pem, expected) in [
        (other.crl(9, NOW, &[]), "CertificateValidationException"),
        ("junk".to_owned(), "CertificateValidationException"),
        (String::new(), "InvalidRequestException"),
    ] {
        let err = put(&mut s, pem).unwrap_err();
        assert_eq!(code_of(err.clone()), expected, "{err}");
    }
    assert_eq!(
        describe_ca_crl(&s, &ctx(), &id)
            .unwrap()
            .crl_number
            .as_deref(),
        Some("03")
    );

    run(&mut s, |s, c| delete_ca_crl(s, c, &id)).unwrap();
    assert_eq!(s.ca_certificates[&id].crl_pem, None);
    run(&mut s, |s, c| delete_ca_crl(s, c, &id)).unwrap();
    // After a delete, an older CRL is accepted again.
    put(&mut s, first).unwrap();
    let err = run(&mut s, |s, c| delete_ca_crl(s, c, &"0".repeat(64))).unwrap_err();
    assert_eq!(code_of(err), "ResourceNotFoundException");
}

#[test]
fn thing_principals_attach_exclusively_or_not() {
    let mut s = RegistryState::default();
    let ca = make_ca("CA");
    register_ca(&mut s, &ca, true);
    let one = register_device(&mut s, &sign(&ca, "one"), "ACTIVE").certificate_arn;
    let two = register_device(&mut s, &sign(&ca, "two"), "ACTIVE").certificate_arn;
    for t in ["a", "b", "c"] {
        make_thing(&mut s, t);
    }
    let attach = |s: &mut RegistryState, thing: &str, p: &str, kind: Option<&str>| {
        let (thing, p, kind) = (thing.to_owned(), p.to_owned(), kind.map(str::to_owned));
        run(s, move |s, c| {
            attach_thing_principal(s, c, &thing, Some(&p), kind.as_deref())
        })
    };
    attach(&mut s, "a", &one, None).unwrap();
    attach(&mut s, "b", &one, Some("NON_EXCLUSIVE_THING")).unwrap();
    attach(&mut s, "b", &one, None).unwrap();
    // Exclusive while attached elsewhere.
    let err = attach(&mut s, "c", &one, Some("EXCLUSIVE_THING")).unwrap_err();
    assert_eq!(code_of(err), "InvalidRequestException");
    // Exclusive on a principal attached nowhere else; then nothing else may take it.
    attach(&mut s, "a", &two, Some("EXCLUSIVE_THING")).unwrap();
    attach(&mut s, "a", &two, Some("EXCLUSIVE_THING")).unwrap();
    let err = attach(&mut s, "b", &two, None).unwrap_err();
    assert_eq!(code_of(err.clone()), "InvalidRequestException");
    assert!(err.to_string().contains("exclusively"), "{err}");
    // Downgrade, then others may attach it.
    attach(&mut s, "a", &two, Some("NON_EXCLUSIVE_THING")).unwrap();
    attach(&mut s, "b", &two, None).unwrap();

    // Unknown things, unknown and malformed principals, bad types.
    let unknown_cert = format!("arn:aws:iot:us-east-1:123456789012:cert/{}", "a".repeat(64));
    let other_region = one.replace("us-east-1", "eu-west-1");
    for (thing, p, kind, expected) in [
        ("nope", one.as_str(), None, "ResourceNotFoundException"),
        (
            "a",
            unknown_cert.as_str(),
            None,
            "ResourceNotFoundException",
        ),
        ("a", other_region.as_str(), None, "InvalidRequestException"),
        ("a", "us-east-1:cognito-id", None, "InvalidRequestException"),
        ("a", "", None, "InvalidRequestException"),
        (
            "a",
            one.as_str(),
            Some("SOMETIMES"),
            "InvalidRequestException",
        ),
    ] {
        let err = attach(&mut s, thing, p, kind).unwrap_err();
        assert_eq!(code_of(err), expected, "{thing} {p} {kind:?}");
    }
    let err = run(&mut s, |s, c| attach_thing_principal(s, c, "a", None, None)).unwrap_err();
    assert_eq!(code_of(err), "InvalidRequestException");
    // An invalid thing name is a 400 like in every other thing operation, not a 404.
    let err = attach(&mut s, "no/such thing", one.as_str(), None).unwrap_err();
    assert_eq!(code_of(err), "InvalidRequestException");
    let err = list_thing_principals(&s, &ctx(), "bad name", &TokenPage::default()).unwrap_err();
    assert_eq!(code_of(err), "InvalidRequestException");

    // Listings.
    let page = TokenPage::default();
    let mut expected = vec![one.clone(), two.clone()];
    expected.sort();
    assert_eq!(
        list_thing_principals(&s, &ctx(), "a", &page)
            .unwrap()
            .principals,
        expected
    );
    let v2 = list_thing_principals_v2(&s, &ctx(), "b", &page, None).unwrap();
    assert_eq!(v2.thing_principal_objects.len(), 2);
    assert!(
        v2.thing_principal_objects
            .iter()
            .all(|o| o.thing_principal_type == ThingPrincipalType::NonExclusiveThing)
    );
    assert_eq!(
        list_principal_things(&s, &ctx(), Some(&one), &page)
            .unwrap()
            .things,
        ["a", "b"]
    );
    attach(&mut s, "c", &one, None).unwrap();
    // One at a time.
    let mut token = None;
    let mut things = Vec::new();
    loop {
        let p = TokenPage {
            next_token: token,
            max_results: Some(1),
        };
        let answer = list_principal_things(&s, &ctx(), Some(&one), &p).unwrap();
        things.extend(answer.things);
        token = answer.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(things, ["a", "b", "c"]);
    let p = TokenPage {
        next_token: None,
        max_results: Some(1),
    };
    let first = list_thing_principals(&s, &ctx(), "a", &p).unwrap();
    let p = TokenPage {
        next_token: first.next_token.clone(),
        max_results: Some(1),
    };
    let second = list_thing_principals(&s, &ctx(), "a", &p).unwrap();
    assert_eq!([first.principals, second.principals].concat(), expected);
    assert_eq!(second.next_token, None);

    // V2 filters by type.
    run(&mut s, |s, c| detach_thing_principal(s, c, "c", Some(&one))).unwrap();
    run(&mut s, |s, c| detach_thing_principal(s, c, "b", Some(&one))).unwrap();
    attach(&mut s, "a", &one, Some("EXCLUSIVE_THING")).unwrap();
    let exclusive =
        list_principal_things_v2(&s, &ctx(), Some(&one), &page, Some("EXCLUSIVE_THING")).unwrap();
    assert_eq!(
        exclusive.principal_thing_objects,
        [PrincipalThingObject {
            thing_name: "a".into(),
            thing_principal_type: ThingPrincipalType::ExclusiveThing,
        }]
    );
    let json = serde_json::to_value(&exclusive).unwrap();
    assert_eq!(
        json["principalThingObjects"][0]["thingPrincipalType"],
        "EXCLUSIVE_THING"
    );
    let non =
        list_thing_principals_v2(&s, &ctx(), "a", &page, Some("NON_EXCLUSIVE_THING")).unwrap();
    assert_eq!(non.thing_principal_objects.len(), 1);
    assert_eq!(non.thing_principal_objects[0].principal, two);

    // Errors of the listings.
    let err = list_thing_principals(&s, &ctx(), "nope", &page).unwrap_err();
    assert_eq!(code_of(err), "ResourceNotFoundException");
    let err = list_principal_things(&s, &ctx(), Some(&unknown_cert), &page).unwrap_err();
    assert_eq!(code_of(err), "ResourceNotFoundException");
    let err = list_principal_things(&s, &ctx(), None, &page).unwrap_err();
    assert_eq!(code_of(err), "InvalidRequestException");
    let bad = TokenPage {
        next_token: None,
        max_results: Some(0),
    };
    let err = list_thing_principals(&s, &ctx(), "a", &bad).unwrap_err();
    assert_eq!(code_of(err), "InvalidRequestException");

    // Detaching what is not attached does nothing; an unknown thing is not found.
    let (_, changes) = detach_thing_principal(&s, &ctx(), "c", Some(&one)).unwrap();
    assert!(changes.is_empty());
    let err = detach_thing_principal(&s, &ctx(), "nope", Some(&one)).unwrap_err();
    assert_eq!(code_of(err), "ResourceNotFoundException");
}

/// An operation reduced to its changes.
type ChangesOf<'a> = dyn Fn(&RegistryState, &Ctx) -> Result<Vec<Change>, RegistryError> + 'a;

#[test]
fn certificate_records_reload_to_the_same_state() {
    let mut s = RegistryState::default();
    let mut all = Vec::new();
    let mut keep = |s: &mut RegistryState, op: &ChangesOf<'_>| {
        let changes = op(s, &ctx()).unwrap();
        s.apply(&changes);
        all.extend(changes);
    };
    let ca = make_ca("CA");
    keep(&mut s, &|s, c| {
        get_registration_code(s, c).map(|(_, ch)| ch)
    });
    let code = s.registration_code.clone().unwrap();
    keep(&mut s, &|s, c| {
        let req = RegisterCaCertificateRequest {
            ca_certificate: Some(ca.cert.pem.clone()),
            verification_certificate: Some(sign(&ca, &code)),
            registration_config: Some(RegistrationConfig {
                template_body: Some("{}".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        register_ca_certificate(s, c, req).map(|(_, ch)| ch)
    });
    let crl = ca.crl(1, NOW, &[&[7]]);
    keep(&mut s, &|s, c| {
        put_ca_crl(
            s,
            c,
            &ca.cert.id,
            PutCaCrlRequest {
                crl_pem: Some(crl.clone()),
            },
        )
        .map(|(_, ch)| ch)
    });
    let device = sign(&ca, "d");
    keep(&mut s, &|s, c| {
        let req = RegisterCertificateRequest {
            certificate_pem: Some(device.clone()),
            status: Some("ACTIVE".into()),
            ..Default::default()
        };
        register_certificate(s, c, req).map(|(_, ch)| ch)
    });
    // Only the last version of each record is stored.
    let mut latest = std::collections::BTreeMap::new();
    for change in &all {
        if let WriteOp::PutRegistry(r) = change.write_op().unwrap() {
            latest.insert((r.kind.clone(), r.key.clone()), r);
        }
    }
    let records: Vec<RegistryRecord> = latest.into_values().collect();
    let reloaded = RegistryState::from_records(&records).unwrap();
    assert_eq!(reloaded.certificates, s.certificates);
    assert_eq!(reloaded.ca_certificates, s.ca_certificates);
    assert_eq!(reloaded.registration_code, s.registration_code);
    assert!(
        reloaded.ca_certificates[&ca.cert.id]
            .crl_pem
            .as_deref()
            .is_some_and(|p| p.contains("X509 CRL"))
    );
}
