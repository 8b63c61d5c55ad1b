//! CRL tests: a child of `x509::tests`, so the CA and CSR helpers there are in scope.

use super::*;
use crate::testing::crl_params;
use rcgen::{
    CertificateRevocationListParams, CrlDistributionPoint, CrlIssuingDistributionPoint, CrlScope,
    SigningKey,
};

/// `thisUpdate` the hand-built CRLs carry: `NOW - 60` as UTCTime.
const RAW_THIS_UPDATE: &[u8] = b"260528202540Z";
const ECDSA_WITH_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// OID contents: cRLNumber, reasonCode, deltaCRLIndicator, certificateIssuer,
/// issuingDistributionPoint, and a private
/// OID (1.3.6.1.4.1.99999) no one understands.
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
const OID_REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
const OID_DELTA_CRL: &[u8] = &[0x55, 0x1d, 0x1b];
const OID_CERT_ISSUER: &[u8] = &[0x55, 0x1d, 0x1d];
const OID_IDP: &[u8] = &[0x55, 0x1d, 0x1c];
const OID_PRIVATE: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f];

fn raw_serial(cert: &Certificate) -> Vec<u8> {
    let (_, x) = x509_parser::parse_x509_certificate(&cert.der).unwrap();
    x.raw_serial().to_vec()
}

/// A CRL made by rcgen, signed by `ca`: [`crl_params`] with cRLNumber 0x1000; `edit` may
/// change the parameters.
fn rcgen_crl(
    ca: &TestCa,
    revoked: &[&[u8]],
    this_update: i64,
    edit: impl FnOnce(&mut CertificateRevocationListParams),
) -> rcgen::CertificateRevocationList {
    let mut params = crl_params(&[0x10, 0x00], this_update, revoked);
    edit(&mut params);
    params.signed_by(&ca.issuer()).unwrap()
}

fn crl_der(ca: &TestCa, revoked: &[&[u8]]) -> Vec<u8> {
    rcgen_crl(ca, revoked, NOW - 60, |_| {}).der().to_vec()
}

// Hand-built DER, for what rcgen cannot write (delta CRLs, arbitrary extensions, versions).

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn ext(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts = vec![tlv(0x06, oid)];
    if critical {
        parts.push(vec![0x01, 0x01, 0xff]);
    }
    parts.push(tlv(0x04, value));
    seq(&parts)
}

fn entry(serial: &[u8], exts: &[Vec<u8>]) -> Vec<u8> {
    let mut parts = vec![tlv(0x02, serial), tlv(0x17, RAW_THIS_UPDATE)];
    if !exts.is_empty() {
        parts.push(seq(exts));
    }
    seq(&parts)
}

/// A CRL signed by `ca`'s key with the given version, issuer name (DER; the CA's subject
/// when `None`), entries and CRL extensions.
fn raw_crl(
    ca: &TestCa,
    version: Option<u8>,
    issuer: Option<Vec<u8>>,
    entries: &[Vec<u8>],
    exts: &[Vec<u8>],
) -> Vec<u8> {
    let issuer = issuer.unwrap_or_else(|| {
        let der = ca.cert.der.clone();
        let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
        x.subject().as_raw().to_vec()
    });
    let mut tbs = Vec::new();
    if let Some(v) = version {
        tbs.push(tlv(0x02, &[v]));
    }
    tbs.push(ECDSA_WITH_SHA256.to_vec());
    tbs.push(issuer);
    tbs.push(tlv(0x17, RAW_THIS_UPDATE));
    if !entries.is_empty() {
        tbs.push(seq(entries));
    }
    if !exts.is_empty() {
        tbs.push(tlv(0xa0, &seq(exts)));
    }
    let tbs = seq(&tbs);
    let signature = KeyPair::from_pem(&ca.key_pem).unwrap().sign(&tbs).unwrap();
    let bits = [&[0u8][..], &signature].concat();
    seq(&[tbs, ECDSA_WITH_SHA256.to_vec(), tlv(0x03, &bits)])
}

/// A CA like `make_ca` but with the given key usages.
fn make_ca_with_usages(cn: &str, usages: Vec<KeyUsagePurpose>) -> TestCa {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = usages;
    long().apply(&mut params).unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    TestCa {
        cert: parse_certificate(pem.as_bytes()).unwrap(),
        key_pem: key.serialize_pem(),
    }
}

#[test]
fn revoked_and_good_device_certificates() {
    let ca = make_ca("Test CA");
    let signer = ca.signer();
    let revoked = issue_from_csr(csr_pem("revoked").as_bytes(), &signer, long()).unwrap();
    let good = issue_from_csr(csr_pem("good").as_bytes(), &signer, long()).unwrap();
    let ca_cert = ca.cert.clone();

    let crl = rcgen_crl(&ca, &[&raw_serial(&revoked)], NOW - 60, |_| {});
    let from_pem = parse_crl(crl.pem().unwrap().as_bytes(), &ca_cert, NOW).unwrap();
    let from_der = parse_crl(crl.der(), &ca_cert, NOW).unwrap();
    assert_eq!(from_pem, from_der);
    assert_eq!(from_der.der, crl.der().to_vec());
    assert_eq!(from_der.issuer, ca_cert.subject);
    assert_eq!(from_der.this_update, NOW - 60);
    assert_eq!(from_der.next_update, Some(NOW - 60 + 86_400));
    assert_eq!(from_der.crl_number.as_deref(), Some("1000"));
    assert_eq!(from_der.revoked_serials, vec![revoked.serial.clone()]);
    assert!(from_der.is_revoked(&revoked.serial));
    assert!(!from_der.is_revoked(&good.serial));
    assert!(!from_der.is_revoked(""));

    // Blank lines and text around the PEM section are fine, as for certificates.
    let padded = format!("\n\nCRL of Test CA\n{}\n\n", crl.pem().unwrap());
    assert_eq!(
        parse_crl(padded.as_bytes(), &ca_cert, NOW).unwrap(),
        from_der
    );
}

#[test]
fn serials_match_certificate_serial_format() {
    // A serial with the top bit set gets a leading 00 in DER; Certificate::serial keeps it,
    // and so must the CRL.
    let ca = make_ca("Test CA");
    let issuer = ca.issuer();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(&[0x80, 0x01]));
    long().apply(&mut params).unwrap();
    let high =
        parse_certificate(params.signed_by(&key, &issuer).unwrap().pem().as_bytes()).unwrap();
    assert_eq!(high.serial, "008001");

    let crl = parse_crl(
        &crl_der(&ca, &[&[0x80, 0x01], &[0x05], &[0x05], &[0x01, 0x00]]),
        &ca.cert,
        NOW,
    )
    .unwrap();
    // Sorted as strings, deduplicated.
    assert_eq!(crl.revoked_serials, ["008001", "0100", "05"]);
    assert!(crl.is_revoked(&high.serial));
    assert!(crl.is_revoked("05") && crl.is_revoked("0100"));
    assert!(!crl.is_revoked("8001") && !crl.is_revoked("5") && !crl.is_revoked("01"));
}

#[test]
fn empty_crl_and_optional_fields() {
    let ca = make_ca("Test CA");
    let crl = parse_crl(&crl_der(&ca, &[]), &ca.cert, NOW).unwrap();
    assert!(crl.revoked_serials.is_empty());
    assert!(!crl.is_revoked("01"));

    // A v1 CRL: no version, no nextUpdate, no extensions.
    let v1 = raw_crl(&ca, None, None, &[entry(&[0x2a], &[])], &[]);
    let crl = parse_crl(&v1, &ca.cert, NOW).unwrap();
    assert_eq!(crl.next_update, None);
    assert_eq!(crl.crl_number, None);
    assert_eq!(crl.this_update, NOW - 60);
    assert_eq!(crl.revoked_serials, vec!["2a".to_string()]);
    // Version 3 does not exist for CRLs.
    assert!(matches!(
        parse_crl(&raw_crl(&ca, Some(2), None, &[], &[]), &ca.cert, NOW),
        Err(X509Error::BadDer { what: "CRL", .. })
    ));
}

#[test]
fn crl_from_another_ca_is_refused() {
    let ca = make_ca("Test CA");
    let ca_cert = ca.cert.clone();
    // Same name, different key: the name matches but the signature does not.
    let impostor = make_ca("Test CA");
    assert_eq!(
        parse_crl(&crl_der(&impostor, &[&[1]]), &ca_cert, NOW),
        Err(X509Error::CrlSignature)
    );
    // Another name (and key).
    let other = make_ca("Other CA");
    match parse_crl(&crl_der(&other, &[&[1]]), &ca_cert, NOW) {
        Err(X509Error::CrlIssuerMismatch { crl, ca }) => {
            assert_eq!(crl, other.cert.subject);
            assert_eq!(ca, ca_cert.subject);
        }
        other => panic!("{other:?}"),
    }
    // Signed by the right key but naming another issuer.
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Somebody else");
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let somebody = params.self_signed(&key).unwrap();
    let (_, x) = x509_parser::parse_x509_certificate(somebody.der()).unwrap();
    let renamed = raw_crl(&ca, Some(1), Some(x.subject().as_raw().to_vec()), &[], &[]);
    assert!(matches!(
        parse_crl(&renamed, &ca_cert, NOW),
        Err(X509Error::CrlIssuerMismatch { .. })
    ));
    // The control: the same hand-built CRL with the CA's own name is fine.
    parse_crl(&raw_crl(&ca, Some(1), None, &[], &[]), &ca_cert, NOW).unwrap();

    // A flipped bit in the signature.
    let mut der = crl_der(&ca, &[&[1]]);
    let last = der.len() - 1;
    der[last] ^= 0x01;
    assert_eq!(parse_crl(&der, &ca_cert, NOW), Err(X509Error::CrlSignature));
}

#[test]
fn the_ca_must_be_allowed_to_sign_crls() {
    let no_crl_sign = make_ca_with_usages("Test CA", vec![KeyUsagePurpose::KeyCertSign]);
    let crl = raw_crl(&no_crl_sign, Some(1), None, &[entry(&[1], &[])], &[]);
    assert_eq!(
        parse_crl(&crl, &no_crl_sign.cert, NOW),
        Err(X509Error::NotACa("keyUsage lacks cRLSign"))
    );
    // No keyUsage extension at all: allowed.
    let no_ku = make_ca_with_usages("Test CA", vec![]);
    let crl = raw_crl(&no_ku, Some(1), None, &[entry(&[1], &[])], &[]);
    assert!(parse_crl(&crl, &no_ku.cert, NOW).unwrap().is_revoked("01"));
    // A device certificate is not a CA.
    let ca = make_ca("Test CA");
    let leaf = issue_from_csr(csr_pem("d").as_bytes(), &ca.signer(), long()).unwrap();
    assert!(matches!(
        parse_crl(&crl_der(&ca, &[]), &leaf, NOW),
        Err(X509Error::NotACa(_))
    ));
}

#[test]
fn this_update_in_the_future_and_stale_crls() {
    let ca = make_ca("Test CA");
    let ca_cert = ca.cert.clone();
    let at = |t: i64| rcgen_crl(&ca, &[&[7]], t, |_| {}).der().to_vec();
    parse_crl(&at(NOW + CRL_MAX_CLOCK_SKEW), &ca_cert, NOW).unwrap();
    assert_eq!(
        parse_crl(&at(NOW + CRL_MAX_CLOCK_SKEW + 1), &ca_cert, NOW),
        Err(X509Error::NotYetValid("CRL"))
    );
    // nextUpdate long past: still accepted, and still revokes.
    let stale = parse_crl(&at(NOW - 30 * 86_400), &ca_cert, NOW).unwrap();
    assert!(stale.next_update.unwrap() < NOW);
    assert!(stale.is_revoked("07"));
    // Extreme clocks do not overflow.
    parse_crl(&at(NOW), &ca_cert, i64::MAX).unwrap();
    assert_eq!(
        parse_crl(&at(NOW), &ca_cert, i64::MIN),
        Err(X509Error::NotYetValid("CRL"))
    );
}

#[test]
fn only_complete_direct_crls_are_accepted() {
    let ca = make_ca("Test CA");
    let ca_cert = ca.cert.clone();
    let unsupported = |der: &[u8]| match parse_crl(der, &ca_cert, NOW) {
        Err(X509Error::UnsupportedCrl(why)) => why,
        other => panic!("{other:?}"),
    };
    let idp = |scope| {
        rcgen_crl(&ca, &[&[1]], NOW - 60, |p| {
            p.issuing_distribution_point = Some(CrlIssuingDistributionPoint {
                distribution_point: CrlDistributionPoint {
                    uris: vec!["http://crl.example/ca.crl".into()],
                },
                scope,
            });
        })
        .der()
        .to_vec()
    };
    // A distribution point, alone or for user certificates only, is still a full list.
    parse_crl(&idp(None), &ca_cert, NOW).unwrap();
    parse_crl(&idp(Some(CrlScope::UserCertsOnly)), &ca_cert, NOW).unwrap();
    assert!(unsupported(&idp(Some(CrlScope::CaCertsOnly))).contains("CA certificates"));
    // Hand-built: indirectCRL [4] TRUE, onlySomeReasons [3] {keyCompromise}.
    let indirect = ext(OID_IDP, true, &[0x30, 0x03, 0x84, 0x01, 0xff]);
    let der = raw_crl(&ca, Some(1), None, &[], &[indirect]);
    assert!(unsupported(&der).starts_with("indirect CRL"));
    let some_reasons = ext(OID_IDP, true, &[0x30, 0x04, 0x83, 0x02, 0x06, 0x40]);
    let der = raw_crl(&ca, Some(1), None, &[], &[some_reasons]);
    assert!(unsupported(&der).contains("some revocation reasons"));

    // Delta CRL (deltaCRLIndicator, critical, base CRL number 1).
    let delta = ext(OID_DELTA_CRL, true, &tlv(0x02, &[1]));
    let number = ext(OID_CRL_NUMBER, false, &tlv(0x02, &[2]));
    let der = raw_crl(&ca, Some(1), None, &[], &[number.clone(), delta]);
    assert_eq!(unsupported(&der), "delta CRL");

    // Unknown extensions: ignored unless critical.
    let private = |critical| ext(OID_PRIVATE, critical, &[0x05, 0x00]);
    let der = raw_crl(&ca, Some(1), None, &[], &[number.clone(), private(false)]);
    assert_eq!(
        parse_crl(&der, &ca_cert, NOW)
            .unwrap()
            .crl_number
            .as_deref(),
        Some("02")
    );
    let der = raw_crl(&ca, Some(1), None, &[], &[private(true)]);
    assert!(unsupported(&der).starts_with("critical extension"));
    let der = raw_crl(&ca, Some(1), None, &[entry(&[1], &[private(false)])], &[]);
    parse_crl(&der, &ca_cert, NOW).unwrap();
    let der = raw_crl(&ca, Some(1), None, &[entry(&[1], &[private(true)])], &[]);
    assert!(unsupported(&der).starts_with("critical extension"));

    // Indirect CRL entry (certificateIssuer) and removeFromCRL.
    let cert_issuer = ext(OID_CERT_ISSUER, true, &seq(&[]));
    let der = raw_crl(&ca, Some(1), None, &[entry(&[1], &[cert_issuer])], &[]);
    assert!(unsupported(&der).contains("certificateIssuer"));
    let remove = ext(OID_REASON_CODE, false, &tlv(0x0a, &[8]));
    let der = raw_crl(&ca, Some(1), None, &[entry(&[1], &[remove])], &[]);
    assert!(unsupported(&der).contains("removeFromCRL"));
    let hold = ext(OID_REASON_CODE, false, &tlv(0x0a, &[6]));
    let der = raw_crl(&ca, Some(1), None, &[entry(&[1], &[hold])], &[]);
    assert!(parse_crl(&der, &ca_cert, NOW).unwrap().is_revoked("01"));

    // The same extension twice, and a malformed known one.
    let der = raw_crl(&ca, Some(1), None, &[], &[number.clone(), number]);
    assert!(matches!(
        parse_crl(&der, &ca_cert, NOW),
        Err(X509Error::BadDer { what: "CRL", .. })
    ));
    let bad_number = ext(OID_CRL_NUMBER, false, &[0x04, 0x00]);
    let der = raw_crl(&ca, Some(1), None, &[], &[bad_number]);
    assert!(matches!(
        parse_crl(&der, &ca_cert, NOW),
        Err(X509Error::BadDer { what: "CRL", .. })
    ));
}

#[test]
fn malformed_crls_are_errors() {
    let ca = make_ca("Test CA");
    let ca_cert = ca.cert.clone();
    let crl = rcgen_crl(&ca, &[&[1]], NOW - 60, |_| {});
    let pem = crl.pem().unwrap();
    let der = crl.der().to_vec();
    let parse = |input: &[u8]| parse_crl(input, &ca_cert, NOW);

    assert_eq!(parse(b""), Err(X509Error::Empty));
    assert_eq!(parse(b" \r\n\t"), Err(X509Error::Empty));
    assert!(matches!(parse(b"garbage"), Err(X509Error::MalformedPem(_))));
    // A certificate where a CRL is expected (PEM and DER).
    match parse(ca.cert.pem.as_bytes()) {
        Err(X509Error::WrongPemLabel { expected, found }) => {
            assert_eq!(expected, "X509 CRL");
            assert_eq!(found, "Certificate");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(&ca_cert.der),
        Err(X509Error::BadDer { what: "CRL", .. })
    ));
    // Unknown label, two CRLs, truncated PEM, bad base64.
    assert_eq!(
        parse(pem.replace("X509 CRL", "CRL").as_bytes()),
        Err(X509Error::WrongPemLabel {
            expected: "X509 CRL",
            found: "CRL".into()
        })
    );
    assert_eq!(
        parse(format!("{pem}{pem}").as_bytes()),
        Err(X509Error::MultipleItems {
            expected: "X509 CRL",
            count: 2
        })
    );
    assert!(matches!(
        parse(&pem.as_bytes()[..pem.len() / 2]),
        Err(X509Error::MalformedPem(_))
    ));
    assert!(matches!(
        parse(b"-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n"),
        Err(X509Error::MalformedPem(_))
    ));
    // Trailing data after DER, and after the DER inside PEM.
    let mut trailing = der.clone();
    trailing.push(0);
    assert_eq!(parse(&trailing), Err(X509Error::TrailingData("CRL")));
    assert_eq!(
        parse(pem_encode("X509 CRL", &trailing).as_bytes()),
        Err(X509Error::TrailingData("CRL"))
    );
    // Every truncation of the DER.
    for len in 0..der.len() {
        let err = parse(&der[..len]).unwrap_err();
        assert!(
            matches!(
                err,
                X509Error::Empty | X509Error::MalformedPem(_) | X509Error::BadDer { .. }
            ),
            "{len}: {err:?}"
        );
    }
}

/// An Ed25519 CA and a CRL it signed with `openssl ca -gencrl` (OpenSSL 3.0): four entries
/// (one with a high-bit serial, reason codes, an invalidity date), AKI and cRLNumber 4096.
/// The same CA signs the CRL fuzz target's seeds.
const OPENSSL_CA: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBXjCCARCgAwIBAgICD8AwBQYDK2VwMDUxGjAYBgNVBAMMEUZlcnJvY29yZSBm\n\
dXp6IENBMRcwFQYDVQQKDA5GZXJyb2NvcmUgdGVzdDAgFw0yNjExMjEwNDEwMzJa\n\
GA8yMTI2MTAyODA0MTAzMlowNTEaMBgGA1UEAwwRRmVycm9jb3JlIGZ1enogQ0Ex\n\
FzAVBgNVBAoMDkZlcnJvY29yZSB0ZXN0MCowBQYDK2VwAyEAwToXrsGwcIuQDVu/\n\
CtX/Tr50utxDQLm8/xw/i/eDq4ijQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0P\n\
AQH/BAQDAgEGMB0GA1UdDgQWBBSGMOja22xYqnVg5cbyeF/yYbeHeDAFBgMrZXAD\n\
QQC6vS/qcRVYn4IYi9hRgGMKFVFwMFrIj9qPYoX6r1D48hYpNh3YXH2BS3d9u+Ke\n\
fxHPIpnWaF1utrEdaT2VAHQL\n\
-----END CERTIFICATE-----\n\
";
const OPENSSL_CRL: &str = "-----BEGIN X509 CRL-----\n\
MIIBijCCATwCAQEwBQYDK2VwMDUxGjAYBgNVBAMMEUZlcnJvY29yZSBmdXp6IENB\n\
MRcwFQYDVQQKDA5GZXJyb2NvcmUgdGVzdBcNMjYxMjAxMDAwMDAwWhcNMjYxMjMx\n\
MDAwMDAwWjCBqDASAgEBFw0yNjExMDMwMDAwMDBaMCICA0o/EBcNMjYxMTAxMDAw\n\
MDAwWjAMMAoGA1UdFQQDCgEBMCMCBACA/wEXDTI2MTEwMjAwMDAwMFowDDAKBgNV\n\
HRUEAwoBBjBJAhB/ESIzRFVmd4iZqrvM3e7/Fw0yNjExMDQwMDAwMDBaMCYwCgYD\n\
VR0VBAMKAQEwGAYDVR0YBBEYDzIwMjYxMDAxMDAwMDAwWqAwMC4wHwYDVR0jBBgw\n\
FoAUhjDo2ttsWKp1YOXG8nhf8mG3h3gwCwYDVR0UBAQCAhAAMAUGAytlcANBALuF\n\
fqYtx8qTJ9ahCcin6QHVZmzd8xjF1aP2ysvf9cbNiOlvurDdB9p3qrBuUolDsIUH\n\
Zg2nuryJOnXkaCRSHwg=\n\
-----END X509 CRL-----\n\
";

#[test]
fn openssl_crl_parses() {
    let ca = parse_certificate(OPENSSL_CA.as_bytes()).unwrap();
    let now = 1_796_083_200; // 2026-12-01, the CRL's thisUpdate
    let crl = parse_crl(OPENSSL_CRL.as_bytes(), &ca, now).unwrap();
    assert_eq!(crl.issuer, "CN=Ferrocore fuzz CA, O=Ferrocore test");
    assert_eq!(crl.this_update, now);
    assert_eq!(crl.next_update, Some(now + 30 * 86_400));
    assert_eq!(crl.crl_number.as_deref(), Some("1000"));
    assert_eq!(
        crl.revoked_serials,
        [
            "0080ff01",
            "01",
            "4a3f10",
            "7f112233445566778899aabbccddeeff"
        ]
    );
    assert_eq!(
        parse_crl(OPENSSL_CRL.as_bytes(), &ca, now - CRL_MAX_CLOCK_SKEW - 1),
        Err(X509Error::NotYetValid("CRL"))
    );
}

fn fixed_crl() -> &'static (Certificate, Vec<u8>) {
    use std::sync::OnceLock;
    static CRL: OnceLock<(Certificate, Vec<u8>)> = OnceLock::new();
    CRL.get_or_init(|| {
        let ca = make_ca("Fixed CA");
        let der = rcgen_crl(&ca, &[&[1], &[0x80, 2], &[3, 4, 5]], NOW - 60, |p| {
            p.revoked_certs[0].invalidity_date = Some(p.this_update);
            p.issuing_distribution_point = Some(CrlIssuingDistributionPoint {
                distribution_point: CrlDistributionPoint {
                    uris: vec!["http://crl.example/ca.crl".into()],
                },
                scope: Some(CrlScope::UserCertsOnly),
            });
        })
        .der()
        .to_vec();
        (ca.cert.clone(), der)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (ca, _) = fixed_crl();
        let _ = parse_crl(&data, ca, NOW);
        let _ = parse_crl(pem_encode("X509 CRL", &data).as_bytes(), ca, NOW);
        let mut der = data;
        der.insert(0, 0x30);
        let _ = parse_crl(&der, ca, NOW);
    }

    #[test]
    fn mutated_crl_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (ca, good) = fixed_crl();
        prop_assert!(parse_crl(good, ca, NOW).is_ok());
        let mut der = good.clone();
        for (idx, byte) in &edits {
            let i = idx.index(der.len());
            der[i] = *byte;
        }
        if truncate {
            der.truncate(cut.index(der.len()));
        }
        if let Ok(crl) = parse_crl(&der, ca, NOW) {
            // Anything that still verifies is internally consistent.
            prop_assert!(crl.revoked_serials.windows(2).all(|w| w[0] < w[1]));
            for serial in &crl.revoked_serials {
                prop_assert!(crl.is_revoked(serial));
            }
        }
    }
}
