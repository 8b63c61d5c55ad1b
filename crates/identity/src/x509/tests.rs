#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;
use rcgen::{BasicConstraints, CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};

use crate::testing::{TestCa, ten_years};

const NOW: i64 = 1_780_000_000; // 2026-05-28

fn make_ca(cn: &str) -> TestCa {
    TestCa::new(cn, ten_years(NOW))
}

fn csr_pem(cn: &str) -> String {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.distinguished_name.push(DnType::CountryName, "DE");
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn long() -> Validity {
    Validity::aws_default(NOW)
}

#[test]
fn hex_and_pem_helpers() {
    assert_eq!(hex(&[0x00, 0xab, 0x0f]), "00ab0f");
    assert_eq!(
        pem_encode("X", b"f"),
        "-----BEGIN X-----\nZg==\n-----END X-----\n"
    );
    assert_eq!(
        pem_encode("X", b"foob"),
        "-----BEGIN X-----\nZm9vYg==\n-----END X-----\n"
    );
    assert_eq!(
        pem_encode("X", b"foobar"),
        "-----BEGIN X-----\nZm9vYmFy\n-----END X-----\n"
    );
}

#[test]
fn csr_round_trip() {
    let ca = make_ca("Test CA");
    let signer = ca.signer();
    let cert = issue_from_csr(csr_pem("device-1").as_bytes(), &signer, long()).unwrap();
    assert_eq!(cert.id.len(), 64);
    assert_eq!(cert.id, certificate_id(&cert.der));
    assert!(
        cert.id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(cert.subject_cn.as_deref(), Some("device-1"));
    assert!(cert.subject.contains("C=DE"), "{}", cert.subject);
    assert_eq!(cert.issuer_cn.as_deref(), Some("Test CA"));
    assert_eq!(cert.not_before, NOW);
    assert_eq!(cert.not_after, AWS_NOT_AFTER);
    assert!(!cert.is_ca);
    assert_eq!(cert.client_auth, Some(true));
    assert!(!cert.serial.is_empty());

    // PEM and DER parse to the same thing.
    let again = parse_certificate(cert.pem.as_bytes()).unwrap();
    assert_eq!(again, cert);
    assert_eq!(parse_certificate(&cert.der).unwrap(), cert);

    let ca_cert = parse_certificate(ca.cert.pem.as_bytes()).unwrap();
    assert!(ca_cert.is_ca && ca_cert.self_issued);
    verify_chain(&cert, &ca_cert, NOW + 1).unwrap();

    // Key usage: digitalSignature.
    let (_, x) = x509_parser::parse_x509_certificate(&cert.der).unwrap();
    let ku = x.key_usage().unwrap().unwrap();
    assert!(ku.value.digital_signature());
}

#[test]
fn csr_with_new_label_and_der() {
    let ca = make_ca("Test CA");
    let signer = ca.signer();
    let pem = csr_pem("dev").replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
    issue_from_csr(pem.as_bytes(), &signer, long()).unwrap();
}

#[test]
fn csr_with_bad_signature_is_refused() {
    let ca = make_ca("Test CA");
    let signer = ca.signer();
    let pem = csr_pem("dev");
    let der = decode_one(pem.as_bytes(), SectionKind::Csr, "CERTIFICATE REQUEST").unwrap();
    let mut der = der;
    let last = der.len() - 1;
    der[last] ^= 0x01;
    assert_eq!(
        issue_from_csr(&der, &signer, long()).unwrap_err(),
        X509Error::CsrSignature
    );
    // A certificate where a CSR is expected.
    let err = issue_from_csr(ca.cert.pem.as_bytes(), &signer, long()).unwrap_err();
    assert!(matches!(err, X509Error::WrongPemLabel { .. }), "{err:?}");
}

#[test]
fn bad_validity_is_refused() {
    let ca = make_ca("Test CA");
    let signer = ca.signer();
    let v = Validity {
        not_before: NOW,
        not_after: NOW,
    };
    let err = issue_from_csr(csr_pem("d").as_bytes(), &signer, v).unwrap_err();
    assert!(matches!(err, X509Error::InvalidValidity { .. }));
}

#[test]
fn create_keys_and_certificate_chains() {
    let ca = make_ca("Test CA");
    let signer = ca.signer();
    let out = create_keys_and_certificate(&signer, long()).unwrap();
    assert_eq!(out.certificate.subject_cn.as_deref(), Some(CREATE_KEYS_CN));
    assert!(out.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(
        out.private_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let parsed = parse_certificate(out.certificate.pem.as_bytes()).unwrap();
    let ca_cert = parse_certificate(ca.cert.pem.as_bytes()).unwrap();
    verify_chain(&parsed, &ca_cert, NOW + 60).unwrap();
    // The private key is RSA-2048 and matches the certificate.
    let key = KeyPair::from_pem(&out.private_key_pem).unwrap();
    assert_eq!(key.algorithm(), &rcgen::PKCS_RSA_SHA256);
    let (_, x) = x509_parser::parse_x509_certificate(&parsed.der).unwrap();
    assert_eq!(
        rcgen::PublicKeyData::der_bytes(&key),
        x.public_key().subject_public_key.as_ref()
    );
}

#[test]
fn chain_rejects_other_ca_and_expired() {
    let ca = make_ca("Test CA");
    let other = make_ca("Test CA"); // same name, different key
    let cert = issue_from_csr(
        csr_pem("d").as_bytes(),
        &ca.signer(),
        Validity {
            not_before: NOW,
            not_after: NOW + 3600,
        },
    )
    .unwrap();
    let ca_cert = parse_certificate(ca.cert.pem.as_bytes()).unwrap();
    let other_cert = parse_certificate(other.cert.pem.as_bytes()).unwrap();
    verify_chain(&cert, &ca_cert, NOW + 10).unwrap();
    assert!(matches!(
        verify_chain(&cert, &other_cert, NOW + 10),
        Err(X509Error::Chain(_))
    ));
    let third = make_ca("Another CA");
    let third_cert = parse_certificate(third.cert.pem.as_bytes()).unwrap();
    assert!(matches!(
        verify_chain(&cert, &third_cert, NOW + 10),
        Err(X509Error::Chain(_))
    ));
    assert_eq!(
        verify_chain(&cert, &ca_cert, NOW + 7200),
        Err(X509Error::Expired("certificate"))
    );
    assert_eq!(
        verify_chain(&cert, &ca_cert, NOW - 7200),
        Err(X509Error::NotYetValid("certificate"))
    );
    // A non-CA as the anchor.
    assert!(matches!(
        verify_chain(&cert, &cert, NOW + 10),
        Err(X509Error::NotACa(_))
    ));
}

#[test]
fn ca_registration() {
    let ca = make_ca("Customer CA");
    let code = registration_code().unwrap();
    assert_eq!(code.len(), 64);
    assert_ne!(code, registration_code().unwrap());
    let v = Validity {
        not_before: NOW - 60,
        not_after: NOW + 86_400,
    };
    let good = ca.sign(&code, v);
    let ok = verify_ca_registration(ca.cert.pem.as_bytes(), good.as_bytes(), &code, NOW).unwrap();
    assert!(ok.is_ca);

    let wrong_cn = ca.sign("not-the-code", v);
    assert_eq!(
        verify_ca_registration(ca.cert.pem.as_bytes(), wrong_cn.as_bytes(), &code, NOW),
        Err(X509Error::RegistrationCodeMismatch)
    );

    // Signed by another key with the same subject name.
    let impostor = make_ca("Customer CA");
    let other_key = impostor.sign(&code, v);
    assert_eq!(
        verify_ca_registration(ca.cert.pem.as_bytes(), other_key.as_bytes(), &code, NOW),
        Err(X509Error::NotSignedByCa)
    );

    // A non-CA certificate offered as the CA.
    let leaf = ca.sign("leaf", v);
    assert!(matches!(
        verify_ca_registration(leaf.as_bytes(), good.as_bytes(), &code, NOW),
        Err(X509Error::NotACa(_))
    ));
    assert!(matches!(
        CaSigner::from_pem(leaf.as_bytes(), ca.key_pem.as_bytes()),
        Err(X509Error::NotACa(_))
    ));

    // Expired verification certificate.
    assert_eq!(
        verify_ca_registration(
            ca.cert.pem.as_bytes(),
            good.as_bytes(),
            &code,
            NOW + 2 * 86_400
        ),
        Err(X509Error::Expired("verification certificate"))
    );
}

#[test]
fn ca_signer_refuses_foreign_key() {
    let ca = make_ca("A");
    let other = make_ca("B");
    assert_eq!(
        CaSigner::from_pem(ca.cert.pem.as_bytes(), other.key_pem.as_bytes()).unwrap_err(),
        X509Error::KeyMismatch
    );
    assert!(matches!(
        CaSigner::from_pem(ca.cert.pem.as_bytes(), b"garbage"),
        Err(X509Error::BadKey(_))
    ));
}

#[test]
fn malformed_inputs() {
    let ca = make_ca("Test CA");
    assert_eq!(parse_certificate(b""), Err(X509Error::Empty));
    assert_eq!(parse_certificate(b"  \n"), Err(X509Error::Empty));
    assert!(matches!(
        parse_certificate(b"hello world"),
        Err(X509Error::MalformedPem(_))
    ));
    // Truncated PEM: no END line.
    let truncated = &ca.cert.pem[..ca.cert.pem.len() / 2];
    assert!(
        matches!(
            parse_certificate(truncated.as_bytes()),
            Err(X509Error::MalformedPem(_))
        ),
        "{:?}",
        parse_certificate(truncated.as_bytes())
    );
    // A private key where a certificate is expected.
    match parse_certificate(ca.key_pem.as_bytes()) {
        Err(X509Error::WrongPemLabel { expected, found }) => {
            assert_eq!(expected, "CERTIFICATE");
            assert_eq!(found, "PrivateKey");
        }
        other => panic!("{other:?}"),
    }
    // Unknown label.
    let unknown = ca.cert.pem.replace("CERTIFICATE", "WIDGET");
    assert_eq!(
        parse_certificate(unknown.as_bytes()),
        Err(X509Error::WrongPemLabel {
            expected: "CERTIFICATE",
            found: "WIDGET".into()
        })
    );
    // Two certificates.
    let two = format!("{}{}", ca.cert.pem, ca.cert.pem);
    assert_eq!(
        parse_certificate(two.as_bytes()),
        Err(X509Error::MultipleItems {
            expected: "CERTIFICATE",
            count: 2
        })
    );
    // Bad DER inside valid PEM, and bad raw DER.
    let junk = pem_encode("CERTIFICATE", b"\x30\x03\x02\x01\x01");
    assert!(matches!(
        parse_certificate(junk.as_bytes()),
        Err(X509Error::BadDer { .. })
    ));
    assert!(matches!(
        parse_certificate(b"\x30\x82\xff"),
        Err(X509Error::BadDer { .. })
    ));
    // Trailing bytes after DER.
    let mut der = parse_certificate(ca.cert.pem.as_bytes()).unwrap().der;
    der.push(0);
    assert_eq!(
        parse_certificate(&der),
        Err(X509Error::TrailingData("certificate"))
    );
    // Bad base64.
    let bad64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        parse_certificate(bad64.as_bytes()),
        Err(X509Error::MalformedPem(_))
    ));
    // Garbage CSRs.
    assert!(parse_csr(b"garbage").is_err());
    assert!(matches!(
        parse_csr(b"\x30\x00"),
        Err(X509Error::BadDer { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_certificate(&data);
        let _ = parse_csr(&data);
    }

    #[test]
    fn arbitrary_pem_wrapped_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        label in prop::sample::select(vec!["CERTIFICATE", "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST", "PRIVATE KEY", "X"]),
    ) {
        let pem = pem_encode(label, &data);
        let _ = parse_certificate(pem.as_bytes());
        let _ = parse_csr(pem.as_bytes());
        let mut der = data.clone();
        der.insert(0, 0x30);
        let _ = parse_certificate(&der);
        let _ = parse_csr(&der);
    }

    #[test]
    fn mutated_certificate_never_panics(idx in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let ca = fixed_cert();
        let mut der = ca.clone();
        let i = idx.index(der.len());
        der[i] = byte;
        if let Ok(c) = parse_certificate(&der) {
            let anchor = parse_certificate(&ca).unwrap();
            let _ = verify_chain(&c, &anchor, NOW);
        }
    }
}

fn fixed_cert() -> Vec<u8> {
    use std::sync::OnceLock;
    static CERT: OnceLock<Vec<u8>> = OnceLock::new();
    CERT.get_or_init(|| {
        parse_certificate(make_ca("Fixed").cert.pem.as_bytes())
            .unwrap()
            .der
    })
    .clone()
}

#[path = "crl_tests.rs"]
mod crl_tests;

#[test]
fn indented_pem_is_accepted() {
    let ca = make_ca("Indented CA");
    let indented: String = ca
        .cert
        .pem
        .lines()
        .map(|l| format!("    {l}\r\n"))
        .collect();
    let parsed = parse_certificate(indented.as_bytes()).unwrap();
    assert_eq!(parsed, parse_certificate(ca.cert.pem.as_bytes()).unwrap());
}

#[test]
fn debug_never_shows_the_private_key() {
    let made = create_keys_and_certificate(&make_ca("Debug CA").signer(), long()).unwrap();
    let shown = format!("{made:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains(&made.certificate.id));
}
