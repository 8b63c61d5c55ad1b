#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rcgen::{CertificateParams, DistinguishedName, DnType};

use super::*;
use crate::registry::{Arns, CertificateMode};
use crate::testing::{TestCa, csr_pem, new_key, ten_years};
use crate::x509::{Validity, issue_from_csr, parse_certificate};

const NOW: i64 = 1_780_000_000; // 2026-05-28
const NOW_MS: i64 = NOW * 1000;

fn make_ca(cn: &str) -> TestCa {
    TestCa::new(cn, ten_years(NOW))
}

fn make_ca_valid(cn: &str, not_before: i64, not_after: i64) -> TestCa {
    TestCa::new(
        cn,
        Validity {
            not_before,
            not_after,
        },
    )
}

/// A client certificate issued by `ca`, valid from a day ago for ten years.
fn device_of(ca: &TestCa, cn: &str) -> Certificate {
    device_of_valid(ca, cn, NOW - 86_400, NOW + 3650 * 86_400)
}

fn device_of_valid(ca: &TestCa, cn: &str, not_before: i64, not_after: i64) -> Certificate {
    issue_from_csr(
        csr_pem(cn).as_bytes(),
        &ca.signer(),
        Validity {
            not_before,
            not_after,
        },
    )
    .unwrap()
}

/// A self-signed end-entity certificate (what `RegisterCertificateWithoutCA` takes).
fn self_signed(cn: &str) -> Certificate {
    let key = new_key();
    let mut params = CertificateParams::new(vec![]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    Validity {
        not_before: NOW - 86_400,
        not_after: NOW + 86_400,
    }
    .apply(&mut params)
    .unwrap();
    parse_certificate(params.self_signed(&key).unwrap().pem().as_bytes()).unwrap()
}

fn crl_pem(ca: &TestCa, revoked: &[&Certificate]) -> String {
    let serials: Vec<Vec<u8>> = revoked.iter().map(|c| unhex(&c.serial)).collect();
    let serials: Vec<&[u8]> = serials.iter().map(Vec::as_slice).collect();
    ca.crl(1, NOW - 60, &serials)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn record(cert: &Certificate, status: CertificateStatus, ca: Option<&TestCa>) -> CertificateRecord {
    let mode = if ca.is_some() {
        CertificateMode::Default
    } else {
        CertificateMode::SniOnly
    };
    CertificateRecord::new(&ctx(), cert, status, ca.map(|c| c.cert.id.clone()), mode).unwrap()
}

fn ca_record(ca: &TestCa, status: CaStatus, auto_registration: bool) -> CaCertificateRecord {
    let mode = CertificateMode::Default;
    CaCertificateRecord::new(&ctx(), &ca.cert, status, auto_registration, mode, None).unwrap()
}

fn put_cert(state: &mut RegistryState, r: CertificateRecord) {
    state.apply(&[Change::Certificate {
        id: r.id.clone(),
        new: Some(r),
    }]);
}

fn put_ca(state: &mut RegistryState, r: CaCertificateRecord) {
    state.apply(&[Change::CaCertificate {
        id: r.id.clone(),
        new: Some(r),
    }]);
}

fn ctx() -> Ctx {
    Ctx {
        now_ms: NOW_MS,
        arns: Arns {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
        },
    }
}

fn refusal(check: DeviceCheck) -> Refusal {
    match check {
        DeviceCheck::Refused(r) => r.reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn accepted(check: DeviceCheck) -> AcceptedDevice {
    match check {
        DeviceCheck::Accepted(a) => a,
        other => panic!("expected acceptance, got {other:?}"),
    }
}

#[test]
fn certificates_without_a_ca_need_only_be_registered_active_and_valid() {
    let mut s = RegistryState::default();
    let own = make_ca("Ferrocore device CA");
    let issued = device_of(&own, "issued"); // issued by Ferrocore: no CA record
    let lone = self_signed("lone"); // RegisterCertificateWithoutCA
    put_cert(&mut s, record(&issued, CertificateStatus::Active, None));
    put_cert(&mut s, record(&lone, CertificateStatus::Active, None));

    for c in [&issued, &lone] {
        let a = accepted(s.check_device_certificate(&c.der, NOW));
        assert_eq!(a.certificate_id, c.id);
        assert_eq!(a.ca_certificate_id, None);
        assert_eq!(s.check_certificate_id(&c.id, NOW, &CaCache::new()), Ok(()));
    }

    for status in [
        CertificateStatus::Inactive,
        CertificateStatus::Revoked,
        CertificateStatus::PendingTransfer,
        CertificateStatus::RegisterInactive,
        CertificateStatus::PendingActivation,
    ] {
        put_cert(&mut s, record(&lone, status, None));
        let check = s.check_device_certificate(&lone.der, NOW);
        let DeviceCheck::Refused(r) = check else {
            panic!("{status:?} accepted");
        };
        assert_eq!(r.certificate_id, lone.id);
        assert_eq!(r.reason, Refusal::Status(status));
        // No CA: nothing to announce, even when pending.
        assert_eq!(r.pending_activation, None);
        assert_eq!(
            r.reason.is_revocation(),
            status == CertificateStatus::Revoked
        );
        assert_eq!(
            s.check_certificate_id(&lone.id, NOW, &CaCache::new()),
            Err(Refusal::Status(status))
        );
    }
}

#[test]
fn unknown_and_malformed_certificates_are_refused() {
    let s = RegistryState::default();
    let lone = self_signed("stranger");
    assert_eq!(
        refusal(s.check_device_certificate(&lone.der, NOW)),
        Refusal::NotRegistered
    );
    assert_eq!(
        s.check_certificate_id(&lone.id, NOW, &CaCache::new()),
        Err(Refusal::NotRegistered)
    );
    for junk in [
        &b""[..],
        b"\x30",
        b"not a certificate",
        &lone.der[..lone.der.len() - 1],
    ] {
        let DeviceCheck::Refused(r) = s.check_device_certificate(junk, NOW) else {
            panic!("junk accepted");
        };
        assert!(matches!(r.reason, Refusal::Malformed(_)), "{r:?}");
        assert!(r.reason.is_bad_certificate());
        assert_eq!(r.certificate_id, x509::certificate_id(junk));
    }
}

#[test]
fn validity_comes_from_the_record() {
    let mut s = RegistryState::default();
    let own = make_ca("own");
    let cert = device_of_valid(&own, "short", NOW - 100, NOW + 100);
    put_cert(&mut s, record(&cert, CertificateStatus::Active, None));
    accepted(s.check_device_certificate(&cert.der, NOW));
    accepted(s.check_device_certificate(&cert.der, NOW + 100));
    let expired = refusal(s.check_device_certificate(&cert.der, NOW + 101));
    assert_eq!(expired, Refusal::Expired);
    assert!(expired.is_expiry() && !expired.is_bad_certificate());
    assert_eq!(
        refusal(s.check_device_certificate(&cert.der, NOW - 101)),
        Refusal::NotYetValid
    );
    assert_eq!(
        s.check_certificate_id(&cert.id, NOW + 101, &CaCache::new()),
        Err(Refusal::Expired)
    );
}

#[test]
fn certificates_under_a_ca_need_the_ca_active_and_the_chain() {
    let mut s = RegistryState::default();
    let ca = make_ca("Fleet CA");
    let other = make_ca("Other CA");
    let dev = device_of(&ca, "dev");
    put_ca(&mut s, ca_record(&ca, CaStatus::Active, false));
    put_cert(&mut s, record(&dev, CertificateStatus::Active, Some(&ca)));

    let a = accepted(s.check_device_certificate(&dev.der, NOW));
    assert_eq!(a.ca_certificate_id.as_deref(), Some(ca.cert.id.as_str()));

    put_ca(&mut s, ca_record(&ca, CaStatus::Inactive, false));
    assert_eq!(
        refusal(s.check_device_certificate(&dev.der, NOW)),
        Refusal::CaInactive(ca.cert.id.clone())
    );
    assert_eq!(
        s.check_certificate_id(&dev.id, NOW, &CaCache::new()),
        Err(Refusal::CaInactive(ca.cert.id.clone()))
    );

    s.apply(&[Change::CaCertificate {
        id: ca.cert.id.clone(),
        new: None,
    }]);
    assert_eq!(
        refusal(s.check_device_certificate(&dev.der, NOW)),
        Refusal::CaNotRegistered(ca.cert.id.clone())
    );

    // A record naming a CA that did not sign it (the registry would never make one, but
    // the chain is checked anyway).
    put_ca(&mut s, ca_record(&other, CaStatus::Active, false));
    put_cert(
        &mut s,
        record(&dev, CertificateStatus::Active, Some(&other)),
    );
    let r = refusal(s.check_device_certificate(&dev.der, NOW));
    assert!(
        matches!(&r, Refusal::Chain { ca, .. } if *ca == other.cert.id),
        "{r:?}"
    );
    assert!(r.is_bad_certificate());
    // The id-only check trusts the registry (the chain was checked at registration).
    assert_eq!(
        s.check_certificate_id(&dev.id, NOW, &CaCache::new()),
        Ok(())
    );
}

#[test]
fn an_expired_ca_fails_the_chain() {
    let mut s = RegistryState::default();
    let ca = make_ca_valid("Old CA", NOW - 1000, NOW + 10);
    let dev = device_of(&ca, "dev");
    put_ca(&mut s, ca_record(&ca, CaStatus::Active, false));
    put_cert(&mut s, record(&dev, CertificateStatus::Active, Some(&ca)));
    accepted(s.check_device_certificate(&dev.der, NOW));
    let r = refusal(s.check_device_certificate(&dev.der, NOW + 11));
    assert!(
        matches!(
            &r,
            Refusal::Chain {
                error: X509Error::Expired(_),
                ..
            }
        ),
        "{r:?}"
    );
    assert!(r.is_expiry() && !r.is_bad_certificate());

    // The same through a cache that remembers the chain verified earlier.
    let cache = CaCache::new();
    accepted(s.check_device_certificate_cached(&dev.der, NOW, &cache));
    accepted(s.check_device_certificate_cached(&dev.der, NOW, &cache));
    assert_eq!(
        refusal(s.check_device_certificate_cached(&dev.der, NOW + 11, &cache)),
        r
    );
}

#[test]
fn a_remembered_chain_still_checks_the_device_validity_and_a_new_ca() {
    let mut s = RegistryState::default();
    let ca = make_ca("CA");
    let dev = device_of_valid(&ca, "dev", NOW - 10, NOW + 10);
    put_ca(&mut s, ca_record(&ca, CaStatus::Active, false));
    put_cert(&mut s, record(&dev, CertificateStatus::Active, Some(&ca)));
    let cache = CaCache::new();
    accepted(s.check_device_certificate_cached(&dev.der, NOW, &cache));
    assert_eq!(
        refusal(s.check_device_certificate_cached(&dev.der, NOW + 11, &cache)),
        Refusal::Expired
    );
    // The CA record re-registered with another certificate under the same id (impossible
    // through the API, ids being hashes): the memory is the old certificate's, not reused.
    let other = make_ca("CA");
    let mut car = ca_record(&ca, CaStatus::Active, false);
    car.pem = other.cert.pem.clone();
    put_ca(&mut s, car);
    let r = refusal(s.check_device_certificate_cached(&dev.der, NOW, &cache));
    assert!(matches!(r, Refusal::Chain { .. }), "{r:?}");
}

#[test]
fn the_cas_crl_refuses_listed_serials() {
    let mut s = RegistryState::default();
    let ca = make_ca("CRL CA");
    let good = device_of(&ca, "good");
    let bad = device_of(&ca, "bad");
    let mut car = ca_record(&ca, CaStatus::Active, false);
    car.crl_pem = Some(crl_pem(&ca, &[&bad]));
    put_ca(&mut s, car.clone());
    put_cert(&mut s, record(&good, CertificateStatus::Active, Some(&ca)));
    put_cert(&mut s, record(&bad, CertificateStatus::Active, Some(&ca)));

    let cache = CaCache::new();
    accepted(s.check_device_certificate_cached(&good.der, NOW, &cache));
    let r = refusal(s.check_device_certificate_cached(&bad.der, NOW, &cache));
    assert_eq!(r, Refusal::RevokedByCrl(ca.cert.id.clone()));
    assert!(r.is_revocation());
    assert_eq!(
        s.check_certificate_id(&bad.id, NOW, &cache),
        Err(Refusal::RevokedByCrl(ca.cert.id.clone()))
    );
    assert_eq!(cache.len(), 1);

    // A new CRL replaces the old one in the cache without being told.
    car.crl_pem = Some(crl_pem(&ca, &[&good]));
    put_ca(&mut s, car.clone());
    accepted(s.check_device_certificate_cached(&bad.der, NOW, &cache));
    assert_eq!(
        s.check_certificate_id(&good.id, NOW, &cache),
        Err(Refusal::RevokedByCrl(ca.cert.id.clone()))
    );
    // And removing it un-revokes.
    car.crl_pem = None;
    put_ca(&mut s, car.clone());
    accepted(s.check_device_certificate_cached(&good.der, NOW, &cache));
    cache.forget(&ca.cert.id);
    assert!(cache.is_empty());

    // A CRL that cannot be used (here: signed by another CA) fails closed.
    let other = make_ca("CRL CA"); // same name, other key
    car.crl_pem = Some(crl_pem(&other, &[]));
    put_ca(&mut s, car);
    let r = refusal(s.check_device_certificate_cached(&good.der, NOW, &cache));
    assert!(
        matches!(&r, Refusal::CaUnusable { ca: id, .. } if *id == ca.cert.id),
        "{r:?}"
    );
    assert!(!r.is_revocation());
}

#[test]
fn an_unusable_ca_record_fails_closed() {
    let mut s = RegistryState::default();
    let ca = make_ca("CA");
    let dev = device_of(&ca, "dev");
    let mut car = ca_record(&ca, CaStatus::Active, true);
    car.pem = "garbage".into();
    put_ca(&mut s, car);
    put_cert(&mut s, record(&dev, CertificateStatus::Active, Some(&ca)));
    let r = refusal(s.check_device_certificate(&dev.der, NOW));
    assert!(matches!(r, Refusal::CaUnusable { .. }), "{r:?}");
}

#[test]
fn jitr_registers_unknown_certificates_of_an_auto_registering_ca() {
    let mut s = RegistryState::default();
    let ca = make_ca("JITR CA");
    let dev = device_of(&ca, "newcomer");

    // Auto-registration off: just unknown.
    put_ca(&mut s, ca_record(&ca, CaStatus::Active, false));
    assert_eq!(
        refusal(s.check_device_certificate(&dev.der, NOW)),
        Refusal::NotRegistered
    );
    // INACTIVE CA: unknown too.
    put_ca(&mut s, ca_record(&ca, CaStatus::Inactive, true));
    assert_eq!(
        refusal(s.check_device_certificate(&dev.der, NOW)),
        Refusal::NotRegistered
    );

    put_ca(&mut s, ca_record(&ca, CaStatus::Active, true));
    let DeviceCheck::AutoRegister(reg) = s.check_device_certificate(&dev.der, NOW) else {
        panic!("not auto-registered");
    };
    assert_eq!(reg.ca_certificate_id, ca.cert.id);
    assert_eq!(reg.certificate, dev);

    // A self-signed stranger or another CA's certificate with the same issuer name is not.
    let impostor_ca = make_ca("JITR CA");
    let impostor = device_of(&impostor_ca, "impostor");
    assert_eq!(
        refusal(s.check_device_certificate(&impostor.der, NOW)),
        Refusal::NotRegistered
    );

    let (event, changes) = auto_register(&s, &ctx(), &reg).unwrap();
    let event = event.unwrap();
    assert_eq!(
        event,
        CertificateRegisteredEvent {
            certificate_id: dev.id.clone(),
            ca_certificate_id: ca.cert.id.clone(),
            timestamp_ms: NOW_MS,
            registered_at_ms: NOW_MS,
            account_id: "123456789012".into(),
        }
    );
    let [Change::Certificate { id, new: Some(r) }] = changes.as_slice() else {
        panic!("{changes:?}");
    };
    assert_eq!(id, &dev.id);
    assert_eq!(r.status, CertificateStatus::PendingActivation);
    assert_eq!(r.ca_certificate_id.as_deref(), Some(ca.cert.id.as_str()));
    assert_eq!(r.mode, CertificateMode::Default);
    assert_eq!(r.pem, dev.pem);
    assert_eq!(r.serial, dev.serial);
    assert_eq!((r.not_before, r.not_after), (dev.not_before, dev.not_after));
    assert_eq!(r.creation_date_ms, NOW_MS);
    assert_eq!(r.owned_by, "123456789012");
    s.apply(&changes);

    // Now PENDING_ACTIVATION: refused, announced again.
    let DeviceCheck::Refused(refused) = s.check_device_certificate(&dev.der, NOW + 5) else {
        panic!("pending certificate accepted");
    };
    assert_eq!(
        refused.reason,
        Refusal::Status(CertificateStatus::PendingActivation)
    );
    let pending = refused.pending_activation.unwrap();
    assert_eq!(
        pending,
        PendingActivation {
            ca_certificate_id: ca.cert.id.clone(),
            registered_at_ms: NOW_MS,
        }
    );
    let again =
        CertificateRegisteredEvent::pending(&dev.id, &pending, "123456789012", NOW_MS + 5000);
    assert_eq!(again.registered_at_ms, NOW_MS);
    assert_eq!(again.timestamp_ms, NOW_MS + 5000);

    // A racing second registration changes nothing but still announces.
    let (event, changes) = auto_register(&s, &ctx(), &reg).unwrap();
    assert!(changes.is_empty());
    assert_eq!(event.unwrap().registered_at_ms, NOW_MS);

    // Activated by the operator: accepted, and auto_register neither changes nor announces.
    let mut active = s.certificates[&dev.id].clone();
    active.status = CertificateStatus::Active;
    put_cert(&mut s, active);
    accepted(s.check_device_certificate(&dev.der, NOW));
    assert_eq!(auto_register(&s, &ctx(), &reg).unwrap(), (None, Vec::new()));
}

#[test]
fn auto_register_checks_the_ca_again() {
    let mut s = RegistryState::default();
    let ca = make_ca("JITR CA");
    let dev = device_of(&ca, "late");
    put_ca(&mut s, ca_record(&ca, CaStatus::Active, true));
    let DeviceCheck::AutoRegister(reg) = s.check_device_certificate(&dev.der, NOW) else {
        panic!()
    };
    // Between the handshake and the write the CA stopped allowing it, went INACTIVE, went.
    put_ca(&mut s, ca_record(&ca, CaStatus::Active, false));
    assert_eq!(auto_register(&s, &ctx(), &reg).unwrap(), (None, Vec::new()));
    put_ca(&mut s, ca_record(&ca, CaStatus::Inactive, true));
    assert_eq!(auto_register(&s, &ctx(), &reg).unwrap(), (None, Vec::new()));
    s.apply(&[Change::CaCertificate {
        id: ca.cert.id.clone(),
        new: None,
    }]);
    assert_eq!(auto_register(&s, &ctx(), &reg).unwrap(), (None, Vec::new()));
}

#[test]
fn jitr_picks_the_ca_that_signed_among_same_named_ones_and_honours_its_crl() {
    let mut s = RegistryState::default();
    let decoy = make_ca("Shared Name");
    let real = make_ca("Shared Name");
    put_ca(&mut s, ca_record(&decoy, CaStatus::Active, true));
    let dev = device_of(&real, "dev");
    let revoked = device_of(&real, "revoked");
    let mut car = ca_record(&real, CaStatus::Active, true);
    car.crl_pem = Some(crl_pem(&real, &[&revoked]));
    put_ca(&mut s, car);
    let DeviceCheck::AutoRegister(reg) = s.check_device_certificate(&dev.der, NOW) else {
        panic!()
    };
    assert_eq!(reg.ca_certificate_id, real.cert.id);
    assert_eq!(
        refusal(s.check_device_certificate(&revoked.der, NOW)),
        Refusal::RevokedByCrl(real.cert.id.clone())
    );
    // An expired newcomer is not registered.
    let old = device_of_valid(&real, "old", NOW - 1000, NOW - 10);
    assert_eq!(
        refusal(s.check_device_certificate(&old.der, NOW)),
        Refusal::NotRegistered
    );
}

#[test]
fn registered_event_payload_is_aws_shaped() {
    let e = CertificateRegisteredEvent {
        certificate_id: "c".repeat(64),
        ca_certificate_id: "a".repeat(64),
        timestamp_ms: 1_700_000_000_123,
        registered_at_ms: 1_700_000_000_000,
        account_id: "123456789012".into(),
    };
    assert_eq!(
        e.topic(),
        format!("$aws/events/certificates/registered/{}", "a".repeat(64))
    );
    let v: serde_json::Value = serde_json::from_str(&e.payload()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "certificateId": "c".repeat(64),
            "caCertificateId": "a".repeat(64),
            "timestamp": 1_700_000_000_123_i64,
            "certificateStatus": "PENDING_ACTIVATION",
            "awsAccountId": "123456789012",
            "certificateRegistrationTimestamp": 1_700_000_000_000_i64,
        })
    );
}

/// Rough cost of the checks (run: `cargo test --release -p ferrocore-identity
/// check_cost -- --ignored --nocapture`).
#[test]
#[ignore = "measurement, not a test"]
fn check_cost() {
    let mut s = RegistryState::default();
    let ca = make_ca("Bench CA");
    let own = make_ca("own");
    let under_ca = device_of(&ca, "dev");
    let plain = device_of(&own, "plain");
    let mut car = ca_record(&ca, CaStatus::Active, true);
    let listed: Vec<Certificate> = (0..100).map(|i| device_of(&ca, &format!("r{i}"))).collect();
    car.crl_pem = Some(crl_pem(&ca, &listed.iter().collect::<Vec<_>>()));
    put_ca(&mut s, car);
    put_cert(
        &mut s,
        record(&under_ca, CertificateStatus::Active, Some(&ca)),
    );
    put_cert(&mut s, record(&plain, CertificateStatus::Active, None));
    let unknown = device_of(&ca, "unknown");
    let cache = CaCache::new();
    let time = |what: &str, f: &dyn Fn()| {
        let n = 2000;
        f();
        let start = std::time::Instant::now();
        for _ in 0..n {
            f();
        }
        println!("{what}: {:?} per check", start.elapsed() / n);
    };
    time("no CA", &|| {
        accepted(s.check_device_certificate_cached(&plain.der, NOW, &cache));
    });
    time("under a CA with a 100-entry CRL, cached", &|| {
        accepted(s.check_device_certificate_cached(&under_ca.der, NOW, &cache));
    });
    time("under a CA with a 100-entry CRL, uncached", &|| {
        accepted(s.check_device_certificate(&under_ca.der, NOW));
    });
    time("by id at CONNECT, cached", &|| {
        s.check_certificate_id(&under_ca.id, NOW, &cache).unwrap();
    });
    time("JITR candidate, cached", &|| {
        let _ = s.check_device_certificate_cached(&unknown.der, NOW, &cache);
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_or_pass(data in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let s = fixed_state();
        let check = s.check_device_certificate(&data, NOW);
        prop_assert!(matches!(check, DeviceCheck::Refused(_)));
    }

    #[test]
    fn mutated_registered_certificates_never_pass(idx in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let s = fixed_state();
        let (_, dev) = fixed();
        let mut der = dev.der.clone();
        let i = idx.index(der.len());
        prop_assume!(der[i] != byte);
        der[i] = byte;
        // Any change changes the id, so the record no longer matches: refused or JITR of a
        // certificate that still verifies (impossible without the CA's key).
        let check = s.check_device_certificate(&der, NOW);
        prop_assert!(matches!(check, DeviceCheck::Refused(_)), "{:?}", check);
    }
}

fn fixed() -> &'static (TestCa, Certificate) {
    static FIXED: std::sync::OnceLock<(TestCa, Certificate)> = std::sync::OnceLock::new();
    FIXED.get_or_init(|| {
        let ca = make_ca("Fixed CA");
        let dev = device_of(&ca, "fixed");
        (ca, dev)
    })
}

fn fixed_state() -> RegistryState {
    let (ca, dev) = fixed();
    let mut s = RegistryState::default();
    put_ca(&mut s, ca_record(ca, CaStatus::Active, true));
    put_cert(&mut s, record(dev, CertificateStatus::Active, Some(ca)));
    s
}
